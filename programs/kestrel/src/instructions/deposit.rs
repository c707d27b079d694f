use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::error::KestrelError;
use crate::events::Deposited;
use crate::state::*;

/// Moves `amount` native units from the depositor's token account into the
/// collateral vault and credits the margin account. The owner or its delegate
/// may deposit; the tokens come from whichever token account the signer controls.
#[derive(Accounts)]
pub struct Deposit<'info> {
    pub depositor: Signer<'info>,
    #[account(
        has_one = collateral_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        constraint = margin_account.load()?.is_owner_or_delegate(depositor.key)
            @ KestrelError::NotOwnerOrDelegate,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = source.mint == collateral_vault.mint @ KestrelError::WrongMint,
    )]
    pub source: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn deposit(ctx: Context<Deposit>, amount: u64) -> Result<()> {
    require!(amount > 0, KestrelError::ZeroAmount);
    let accounts = &ctx.accounts;
    accounts
        .exchange
        .load()?
        .pause_flags()
        .ensure_running(Operation::Deposit)?;

    let collateral_after = {
        let mut margin_account = accounts.margin_account.load_mut()?;
        margin_account.credit(amount)?;
        margin_account.collateral
    };

    // The token program checks that the depositor may spend from `source`.
    token::transfer(
        CpiContext::new(
            accounts.token_program.key(),
            Transfer {
                from: accounts.source.to_account_info(),
                to: accounts.collateral_vault.to_account_info(),
                authority: accounts.depositor.to_account_info(),
            },
        ),
        amount,
    )?;

    emit!(Deposited {
        margin_account: accounts.margin_account.key(),
        depositor: accounts.depositor.key(),
        amount,
        collateral_after,
    });
    Ok(())
}
