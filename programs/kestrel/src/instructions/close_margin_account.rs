use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarginAccountClosed;
use crate::state::MarginAccount;

/// Closes an empty margin account and returns its rent to the owner.
#[derive(Accounts)]
pub struct CloseMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(
        mut,
        has_one = owner @ KestrelError::NotMarginAccountOwner,
        close = owner,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

#[inline(never)]
pub fn close_margin_account(ctx: Context<CloseMarginAccount>) -> Result<()> {
    require!(
        ctx.accounts.margin_account.load()?.is_empty(),
        KestrelError::MarginAccountNotEmpty
    );
    emit!(MarginAccountClosed {
        margin_account: ctx.accounts.margin_account.key(),
        owner: ctx.accounts.owner.key(),
    });
    Ok(())
}
