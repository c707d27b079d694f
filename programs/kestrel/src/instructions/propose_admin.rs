use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::AdminProposed;
use crate::state::Exchange;

/// First step of an admin transfer: the current admin names a successor, who
/// must accept. Proposing `Pubkey::default()` withdraws a pending proposal.
#[derive(Accounts)]
pub struct ProposeAdmin<'info> {
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
}

#[inline(never)]
pub fn propose_admin(ctx: Context<ProposeAdmin>, proposed_admin: Pubkey) -> Result<()> {
    let mut exchange = ctx.accounts.exchange.load_mut()?;
    exchange.pending_admin = proposed_admin;
    emit!(AdminProposed {
        current_admin: exchange.admin,
        proposed_admin,
    });
    Ok(())
}
