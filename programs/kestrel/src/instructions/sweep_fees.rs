use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::error::KestrelError;
use crate::instructions::shared::transfer_from_vault;
use crate::state::*;

/// Permissionless: moves a market's accrued fees, less rebates still owed to
/// makers, from the collateral vault to the fee vault.
#[derive(Accounts)]
pub struct SweepFees<'info> {
    #[account(
        has_one = collateral_vault @ KestrelError::WrongVault,
        has_one = fee_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub fee_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn sweep_fees(ctx: Context<SweepFees>) -> Result<()> {
    let accounts = &ctx.accounts;
    let bump = accounts.exchange.load()?.bump;
    let amount = {
        let mut market = accounts.market.load_mut()?;
        require!(market.fees_available() > 0, KestrelError::NoFeesToSweep);
        market.take_fees(u64::MAX)?
    };
    transfer_from_vault(
        &accounts.token_program,
        &accounts.exchange.to_account_info(),
        bump,
        &accounts.collateral_vault,
        &accounts.fee_vault,
        amount,
    )
}
