use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::funding;
use crate::engine::insurance;
use crate::error::{KestrelError, OrOverflow};
use crate::events::BankruptcySettled;
use crate::instructions::shared::transfer_from_vault;
use crate::state::*;

/// Permissionless: settles the deficit of a margin account left with
/// negative collateral and no positions, in this order:
///
/// 1. the account's own insurance shares: as many as cover the deficit
///    (rounded up), at the fund's value (a requested share at most at its
///    value at the request), move from the insurance vault to its
///    collateral; shares beyond the deficit stay staked (a bankruptcy is no
///    way round the cooldown), and a pending unstake request is cancelled;
/// 2. the rest of the insurance fund, what it can;
/// 3. the rest is socialized over the open interest of the market where the
///    loss arose (`MarginAccount::bankruptcy_market_index`: of the positions
///    closed while the account was in deficit, the one that lost most):
///    each open lot, long or short, owes the same share (rounded up),
///    charged through the market's funding indexes, so it settles with
///    funding and counts in health at once.
///
/// A fund left depleted (empty, or more than `MAX_SHARES_PER_UNIT` shares
/// per unit) ends its epoch: every share of it is retired, and whatever
/// dust is left belongs to nobody in the next one.
///
/// Socializing needs no fill waiting in the market's queue (a waiting
/// fill's maker has not yet taken its position, so open interest would be
/// wrong); out events do not hold it up.
#[derive(Accounts)]
pub struct SettleBankruptcy<'info> {
    #[account(
        mut,
        has_one = collateral_vault @ KestrelError::WrongVault,
        has_one = insurance_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn settle_bankruptcy(ctx: Context<SettleBankruptcy>) -> Result<()> {
    let accounts = &ctx.accounts;
    let mut exchange = accounts.exchange.load_mut()?;
    exchange
        .pause_flags()
        .ensure_running(Operation::Liquidation)?;
    let bump = exchange.bump;
    let mut account = accounts.margin_account.load_mut()?;
    require!(
        account.collateral < 0 && account.active_positions().next().is_none(),
        KestrelError::NotBankrupt
    );
    let mut market = accounts.market.load_mut()?;
    require!(
        market.market_index == account.bankruptcy_market_index(),
        KestrelError::WrongBankruptcyMarket
    );

    let deficit = account.collateral.unsigned_abs();
    let fund = accounts.insurance_vault.amount;
    // 1. The account's own stake, at the fund's value.
    account.refresh_insurance(exchange.insurance_epoch);
    account.forfeit_unstake_gains(&mut exchange.insurance_shares, fund)?;
    let (own_shares, own) = insurance::Fund {
        shares: exchange.insurance_shares,
        assets: fund,
    }
    .redeem_for_deficit(account.insurance_shares, deficit)
    .ok_or(KestrelError::AccountingMismatch)?;
    if own_shares > 0 {
        account.insurance_shares -= own_shares;
        exchange.insurance_shares = exchange
            .insurance_shares
            .checked_sub(own_shares)
            .ok_or(KestrelError::AccountingMismatch)?;
        account.clear_unstake_request();
    }
    // value_of never exceeds the fund, nor the deficit here.
    let fund_left = fund - own;
    let deficit_left = deficit - own;
    // 2. The other stakers' fund.
    let covered = deficit_left.min(fund_left);
    let remainder = deficit_left - covered;
    // 3. Open interest.
    let open_lots = market
        .long_lots
        .checked_add(market.short_lots)
        .or_overflow()?;
    let mut per_lot = fixed::types::I80F48::ZERO;
    let socialized = if remainder > 0 && open_lots > 0 {
        // A waiting fill has moved its taker's open interest, not its
        // maker's: the loss would be spread over lots that do not net.
        require!(market.pending_fills == 0, KestrelError::CrankRequired);
        per_lot = funding::loss_per_lot(remainder, open_lots).or_overflow()?;
        let long = market
            .long_funding_index()
            .checked_add(per_lot)
            .or_overflow()?;
        let short = market
            .short_funding_index()
            .checked_sub(per_lot)
            .or_overflow()?;
        market.long_funding_index = funding::to_parts(long);
        market.short_funding_index = funding::to_parts(short);
        // The market fronts the loss now and collects it as positions settle.
        market.book_funding(-i64::try_from(remainder).ok().or_overflow()?)?;
        market.socialized_loss_native = market
            .socialized_loss_native
            .checked_add(remainder)
            .or_overflow()?;
        remainder
    } else {
        0
    };
    // With no open interest, what the fund cannot cover waits on the account
    // for a later call; refused if nothing at all can be settled now.
    let from_vault = own.checked_add(covered).or_overflow()?;
    require!(
        from_vault > 0 || socialized > 0,
        KestrelError::CannotSocializeLoss
    );
    account.credit(from_vault.checked_add(socialized).or_overflow()?)?;
    if account.collateral >= 0 {
        account.clear_deficit_market();
    }
    // A fund too small for its shares ends its epoch (its shares are worth
    // nothing from now on, and new stakes start afresh).
    let epoch_ended = insurance::Fund {
        shares: exchange.insurance_shares,
        assets: fund_left - covered,
    }
    .is_depleted();
    if epoch_ended {
        exchange.insurance_shares = 0;
        exchange.insurance_epoch = exchange.insurance_epoch.checked_add(1).or_overflow()?;
    }
    let market_key = accounts.market.key();
    drop(market);
    drop(account);
    drop(exchange);

    if from_vault > 0 {
        transfer_from_vault(
            &accounts.token_program,
            &accounts.exchange.to_account_info(),
            bump,
            &accounts.insurance_vault,
            &accounts.collateral_vault,
            from_vault,
        )?;
    }
    emit!(BankruptcySettled {
        market: market_key,
        margin_account: accounts.margin_account.key(),
        deficit_native: deficit,
        covered_by_insurance_native: covered,
        socialized_native: socialized,
        loss_per_lot_bits: per_lot.to_bits(),
        covered_by_own_stake_native: own,
        own_shares_redeemed: own_shares,
        insurance_epoch_ended: epoch_ended,
    });
    Ok(())
}
