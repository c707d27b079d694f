use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::engine::insurance;
use crate::error::{KestrelError, OrOverflow};
use crate::events::Staked;
use crate::state::*;

/// Moves `amount` native units from the owner's token account into the
/// insurance vault for shares of the fund, recorded on the margin account.
/// Shares are priced at the vault's balance with the virtual offset
/// (`engine::insurance`), rounded down, so a new staker never dilutes the
/// others and the first staker of an epoch buys at the initial price
/// (`VIRTUAL_SHARES` per unit) whatever the vault already holds: a balance
/// nobody owns (fees paid in while no share was outstanding, a donation)
/// stays the fund's. Stakers share the fund's gains (liquidation fees) and
/// losses (bankruptcies) pro rata; no instruction lets the admin take from it.
#[derive(Accounts)]
pub struct Stake<'info> {
    pub owner: Signer<'info>,
    #[account(mut, has_one = insurance_vault @ KestrelError::WrongVault)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(
        mut,
        constraint = source.mint == insurance_vault.mint @ KestrelError::WrongMint,
    )]
    pub source: Account<'info, TokenAccount>,
    #[account(mut)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn stake(ctx: Context<Stake>, amount: u64) -> Result<()> {
    require!(amount > 0, KestrelError::ZeroAmount);
    let accounts = &ctx.accounts;
    let (shares, total_shares) = {
        let mut exchange = accounts.exchange.load_mut()?;
        exchange
            .pause_flags()
            .ensure_running(Operation::Insurance)?;
        let mut account = accounts.margin_account.load_mut()?;
        account.refresh_insurance(exchange.insurance_epoch);
        let fund = insurance::Fund {
            shares: exchange.insurance_shares,
            assets: accounts.insurance_vault.amount,
        };
        // A depleted fund's shares are retired by the bankruptcy that
        // depletes it, so the price is bounded and only a stake of more than
        // about 2^64 / MAX_SHARES_PER_UNIT units can overflow.
        let shares = fund.shares_for(amount).or_overflow()?;
        require!(shares > 0, KestrelError::ZeroShares);
        exchange.insurance_shares = exchange
            .insurance_shares
            .checked_add(shares)
            .or_overflow()?;
        account.insurance_shares = account.insurance_shares.checked_add(shares).or_overflow()?;
        (shares, exchange.insurance_shares)
    };

    // The token program checks that the owner may spend from `source`.
    token::transfer(
        CpiContext::new(
            accounts.token_program.key(),
            Transfer {
                from: accounts.source.to_account_info(),
                to: accounts.insurance_vault.to_account_info(),
                authority: accounts.owner.to_account_info(),
            },
        ),
        amount,
    )?;
    emit!(Staked {
        margin_account: accounts.margin_account.key(),
        amount,
        shares,
        total_shares,
    });
    Ok(())
}
