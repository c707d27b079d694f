use anchor_lang::prelude::*;
use anchor_spl::token::TokenAccount;

use crate::engine::insurance;
use crate::error::KestrelError;
use crate::events::UnstakeRequested;
use crate::state::*;

/// Starts the cooldown for taking `shares` out of the insurance fund and
/// fixes their value: redeemed after the cooldown (within the redemption
/// window) they pay the lesser of their value now and their value then. So
/// they still bear the fund's losses but no longer share its gains, which
/// stay with the other stakers.
///
/// A new request replaces the previous one and restarts the cooldown; the
/// shares of the previous request first give up what they earned since it
/// (the shares beyond those worth its value are burnt), so letting a request
/// lapse does not give its gains back. `shares` may not exceed the shares
/// held; after that forfeiture the request covers at most what is left.
#[derive(Accounts)]
pub struct RequestUnstake<'info> {
    pub owner: Signer<'info>,
    #[account(mut, has_one = insurance_vault @ KestrelError::WrongVault)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub insurance_vault: Account<'info, TokenAccount>,
}

#[inline(never)]
pub fn request_unstake(ctx: Context<RequestUnstake>, shares: u64) -> Result<()> {
    require!(shares > 0, KestrelError::ZeroAmount);
    let mut exchange = ctx.accounts.exchange.load_mut()?;
    exchange
        .pause_flags()
        .ensure_running(Operation::Insurance)?;
    let mut account = ctx.accounts.margin_account.load_mut()?;
    account.refresh_insurance(exchange.insurance_epoch);
    require!(
        shares <= account.insurance_shares,
        KestrelError::InsufficientShares
    );
    let assets = ctx.accounts.insurance_vault.amount;
    account.forfeit_unstake_gains(&mut exchange.insurance_shares, assets)?;
    let shares = shares.min(account.insurance_shares);
    require!(shares > 0, KestrelError::ZeroShares);
    let value = insurance::Fund {
        shares: exchange.insurance_shares,
        assets,
    }
    .value_of(shares)
    .ok_or(KestrelError::AccountingMismatch)?;
    let now = Clock::get()?.unix_timestamp;
    account.unstake_shares = shares;
    account.unstake_requested_at = now;
    account.unstake_value = value;
    emit!(UnstakeRequested {
        margin_account: ctx.accounts.margin_account.key(),
        shares,
        requested_at: now,
        value_native: value,
    });
    Ok(())
}
