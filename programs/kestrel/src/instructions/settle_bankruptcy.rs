use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::event_queue::pending_count;
use crate::engine::funding;
use crate::error::KestrelError;
use crate::events::BankruptcySettled;
use crate::state::*;

/// Permissionless: settles the deficit of a margin account left with
/// negative collateral and no positions. The insurance fund covers what it
/// can; the rest is socialized over the open interest of the last market the
/// account held a position in: each open lot, long or short, owes the same
/// share (rounded up), charged through the market's funding indexes, so it
/// settles with funding and counts in health at once.
///
/// Socializing needs the market's event queue empty (a waiting fill's maker
/// has not yet taken its position, so open interest would be wrong).
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
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = event_queue @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    pub event_queue: AccountLoader<'info, EventQueueAccount>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn settle_bankruptcy(ctx: Context<SettleBankruptcy>) -> Result<()> {
    let accounts = &ctx.accounts;
    let overflow = || error!(KestrelError::MathOverflow);
    let bump = {
        let exchange = accounts.exchange.load()?;
        exchange
            .pause_flags()
            .ensure_running(Operation::Liquidation)?;
        exchange.bump
    };
    let mut account = accounts.margin_account.load_mut()?;
    require!(
        account.collateral < 0 && account.positions.iter().all(|p| p.in_use == 0),
        KestrelError::NotBankrupt
    );
    let mut market = accounts.market.load_mut()?;
    require!(
        market.market_index == account.last_market_index,
        KestrelError::WrongBankruptcyMarket
    );

    let deficit = account.collateral.unsigned_abs();
    let fund = accounts.insurance_vault.amount;
    let covered = deficit.min(fund);
    let remainder = deficit - covered;
    let open_lots = market
        .long_lots
        .checked_add(market.short_lots)
        .ok_or_else(overflow)?;
    let mut per_lot = fixed::types::I80F48::ZERO;
    let socialized = if remainder > 0 && open_lots > 0 {
        let pending = pending_count(&accounts.event_queue.load()?.data)
            .map_err(|_| KestrelError::WrongMarketAccounts)?;
        require!(pending == 0, KestrelError::CrankRequired);
        per_lot = funding::loss_per_lot(remainder, open_lots).ok_or_else(overflow)?;
        let long = market
            .long_funding_index()
            .checked_add(per_lot)
            .ok_or_else(overflow)?;
        let short = market
            .short_funding_index()
            .checked_sub(per_lot)
            .ok_or_else(overflow)?;
        market.long_funding_index = funding::to_parts(long);
        market.short_funding_index = funding::to_parts(short);
        // The market fronts the loss now and collects it as positions settle.
        market.book_funding(-i64::try_from(remainder).map_err(|_| overflow())?)?;
        market.socialized_loss_native = market
            .socialized_loss_native
            .checked_add(remainder)
            .ok_or_else(overflow)?;
        remainder
    } else {
        0
    };
    // With no open interest, what the fund cannot cover waits on the account
    // for a later call; refused if nothing at all can be settled now.
    require!(
        covered > 0 || socialized > 0,
        KestrelError::CannotSocializeLoss
    );
    account.credit(covered.checked_add(socialized).ok_or_else(overflow)?)?;
    let market_key = accounts.market.key();
    drop(market);
    drop(account);

    if covered > 0 {
        if covered == fund {
            // The fund is empty: its shares are worth nothing from now on.
            let mut exchange = accounts.exchange.load_mut()?;
            exchange.insurance_shares = 0;
            exchange.insurance_epoch = exchange
                .insurance_epoch
                .checked_add(1)
                .ok_or_else(overflow)?;
        }
        transfer_from_vault(
            &accounts.token_program,
            &accounts.exchange.to_account_info(),
            bump,
            &accounts.insurance_vault,
            &accounts.collateral_vault,
            covered,
        )?;
    }
    emit!(BankruptcySettled {
        market: market_key,
        margin_account: accounts.margin_account.key(),
        deficit_native: deficit,
        covered_by_insurance_native: covered,
        socialized_native: socialized,
        loss_per_lot_bits: per_lot.to_bits(),
    });
    Ok(())
}
