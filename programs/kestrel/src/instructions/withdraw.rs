use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::error::KestrelError;
use crate::events::Withdrawn;
use crate::state::*;

/// Moves `amount` native units of free collateral from the vault to any token
/// account of the collateral mint. Only the owner may withdraw, never the delegate.
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

pub fn withdraw(ctx: Context<Withdraw>, amount: u64) -> Result<()> {
    require!(amount > 0, KestrelError::ZeroAmount);
    let accounts = &ctx.accounts;
    let bump = {
        let exchange = accounts.exchange.load()?;
        require!(
            !exchange.pause_flags().is_paused(PauseFlags::WITHDRAW),
            KestrelError::WithdrawalsPaused
        );
        exchange.bump
    };

    let collateral_after = {
        let mut margin_account = accounts.margin_account.load_mut()?;
        margin_account.debit_free(amount)?;
        margin_account.collateral
    };

    // The exchange PDA is the vault's token authority. Its borrow above is
    // released: the CPI needs the account unborrowed.
    let bump = [bump];
    let signer_seeds: &[&[&[u8]]] = &[&exchange_signer_seeds(&bump)];
    token::transfer(
        CpiContext::new_with_signer(
            accounts.token_program.key(),
            Transfer {
                from: accounts.collateral_vault.to_account_info(),
                to: accounts.destination.to_account_info(),
                authority: accounts.exchange.to_account_info(),
            },
            signer_seeds,
        ),
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
