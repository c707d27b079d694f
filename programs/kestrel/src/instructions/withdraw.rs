use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::error::KestrelError;
use crate::events::Withdrawn;
use crate::instructions::shared::transfer_from_vault;
use crate::portfolio::{self, RemainingAccounts};
use crate::state::*;

/// Moves `amount` native units of free collateral from the vault to any token
/// account of the collateral mint. Only the owner may withdraw, never the
/// delegate. With positions or orders open, initial health must stay >= 0;
/// remaining accounts are then the health accounts of every position (see
/// `portfolio.rs`).
#[derive(Accounts)]
pub struct Withdraw<'info> {
    pub owner: Signer<'info>,
    #[account(
        has_one = collateral_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = destination.mint == collateral_vault.mint @ KestrelError::WrongMint,
    )]
    pub destination: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn withdraw<'info>(ctx: Context<'info, Withdraw<'info>>, amount: u64) -> Result<()> {
    require!(amount > 0, KestrelError::ZeroAmount);
    let accounts = &ctx.accounts;
    let bump = {
        let exchange = accounts.exchange.load()?;
        exchange.pause_flags().ensure_running(Operation::Withdraw)?;
        exchange.bump
    };

    let collateral_after = {
        let mut margin_account = accounts.margin_account.load_mut()?;
        margin_account.debit_free(amount)?;
        if margin_account.active_positions().next().is_some() {
            let mut retriever = RemainingAccounts::new(
                ctx.remaining_accounts.iter(),
                accounts.exchange.key(),
                &Clock::get()?,
            );
            let portfolio =
                portfolio::from_remaining_accounts(&margin_account, None, &[], &mut retriever)?;
            require!(
                portfolio.initial_health(margin_account.collateral)? >= 0,
                KestrelError::InsufficientHealth
            );
        }
        margin_account.collateral
    };

    // The exchange's borrow above is released: the CPI passes the account.
    transfer_from_vault(
        &accounts.token_program,
        &accounts.exchange.to_account_info(),
        bump,
        &accounts.collateral_vault,
        &accounts.destination,
        amount,
    )?;

    emit!(Withdrawn {
        margin_account: accounts.margin_account.key(),
        owner: accounts.owner.key(),
        amount,
        collateral_after,
    });
    Ok(())
}
