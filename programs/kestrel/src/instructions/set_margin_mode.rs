use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarginModeSet;
use crate::portfolio::{self, RemainingAccounts};
use crate::state::*;

/// The owner moves the account between standard and portfolio margin
/// ([`MarginMode`]). With positions or orders open, initial health in the
/// new mode must be at least zero, so the switch itself cannot open risk;
/// remaining accounts are then the health accounts of every position (see
/// `portfolio.rs`), and in portfolio mode each option's risk array must be
/// fresh (`refresh_risk_arrays` in the same transaction).
#[derive(Accounts)]
pub struct SetMarginMode<'info> {
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
pub fn set_margin_mode<'info>(
    ctx: Context<'info, SetMarginMode<'info>>,
    mode: MarginMode,
) -> Result<()> {
    let mut account = ctx.accounts.margin_account.load_mut()?;
    require!(
        account.margin_mode() != mode,
        KestrelError::MarginModeUnchanged
    );
    account.margin_mode = mode as u8;
    if account.active_positions().next().is_some() {
        let mut retriever = RemainingAccounts::new(
            ctx.remaining_accounts.iter(),
            ctx.accounts.exchange.key(),
            &Clock::get()?,
        );
        let portfolio = portfolio::from_remaining_accounts(&account, None, &[], &mut retriever)?;
        require!(
            portfolio.initial_health(account.collateral)? >= 0,
            KestrelError::InsufficientHealth
        );
    }
    emit!(MarginModeSet {
        margin_account: ctx.accounts.margin_account.key(),
        mode: mode as u8,
    });
    Ok(())
}
