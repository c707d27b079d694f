use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::insurance;
use crate::error::{KestrelError, OrOverflow};
use crate::events::Unstaked;
use crate::instructions::shared::transfer_from_vault;
use crate::state::*;

/// Once the cooldown has passed and before the redemption window after it
/// closes, redeems the requested shares at the lesser of their value now
/// and their value at the request (rounded down: the remaining stakers keep
/// the fraction and whatever the shares would have earned meanwhile) and
/// credits the amount to the margin account's collateral, from where the
/// owner may withdraw it. A request not redeemed in its window lapses
/// (`UnstakeRequestExpired`): only a new request, with a new cooldown, lets
/// the shares out, so a standing request is no way to leave at will ahead
/// of a loss.
#[derive(Accounts)]
pub struct Unstake<'info> {
    pub owner: Signer<'info>,
    #[account(
        mut,
        has_one = collateral_vault @ KestrelError::WrongVault,
        has_one = insurance_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut)]
    pub insurance_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn unstake(ctx: Context<Unstake>) -> Result<()> {
    let accounts = &ctx.accounts;
    let (bump, shares, amount, total_shares) = {
        let mut exchange = accounts.exchange.load_mut()?;
        exchange
            .pause_flags()
            .ensure_running(Operation::Insurance)?;
        let mut account = accounts.margin_account.load_mut()?;
        account.refresh_insurance(exchange.insurance_epoch);
        require!(account.unstake_shares > 0, KestrelError::NoUnstakeRequest);
        let ready_at = account
            .unstake_requested_at
            .checked_add(INSURANCE_UNSTAKE_COOLDOWN_SECONDS)
            .or_overflow()?;
        let expires_at = ready_at
            .checked_add(INSURANCE_REDEMPTION_WINDOW_SECONDS)
            .or_overflow()?;
        let now = Clock::get()?.unix_timestamp;
        require!(now >= ready_at, KestrelError::UnstakeCooldown);
        require!(now < expires_at, KestrelError::UnstakeRequestExpired);
        let shares = account.unstake_shares.min(account.insurance_shares);
        let amount = insurance::Fund {
            shares: exchange.insurance_shares,
            assets: accounts.insurance_vault.amount,
        }
        .redemption(shares, account.unstake_value)
        .ok_or(KestrelError::AccountingMismatch)?;
        exchange.insurance_shares = exchange
            .insurance_shares
            .checked_sub(shares)
            .ok_or(KestrelError::AccountingMismatch)?;
        account.insurance_shares -= shares;
        account.clear_unstake_request();
        account.credit(amount)?;
        (exchange.bump, shares, amount, exchange.insurance_shares)
    };
    if amount > 0 {
        transfer_from_vault(
            &accounts.token_program,
            &accounts.exchange.to_account_info(),
            bump,
            &accounts.insurance_vault,
            &accounts.collateral_vault,
            amount,
        )?;
    }
    emit!(Unstaked {
        margin_account: accounts.margin_account.key(),
        shares,
        amount,
        total_shares,
    });
    Ok(())
}
