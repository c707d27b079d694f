use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::UnstakeRequested;
use crate::state::*;

/// Starts the cooldown for taking `shares` out of the insurance fund. The
/// shares keep sharing gains and losses until `unstake`; a new request
/// replaces the previous one and restarts the cooldown.
#[derive(Accounts)]
pub struct RequestUnstake<'info> {
    pub owner: Signer<'info>,
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

#[inline(never)]
pub fn request_unstake(ctx: Context<RequestUnstake>, shares: u64) -> Result<()> {
    require!(shares > 0, KestrelError::ZeroAmount);
    let exchange = ctx.accounts.exchange.load()?;
    exchange
        .pause_flags()
        .ensure_running(Operation::Insurance)?;
    let mut account = ctx.accounts.margin_account.load_mut()?;
    account.refresh_insurance(exchange.insurance_epoch);
    require!(
        shares <= account.insurance_shares,
        KestrelError::InsufficientShares
    );
    let now = Clock::get()?.unix_timestamp;
    account.unstake_shares = shares;
    account.unstake_requested_at = now;
    emit!(UnstakeRequested {
        margin_account: ctx.accounts.margin_account.key(),
        shares,
        requested_at: now,
    });
    Ok(())
}
