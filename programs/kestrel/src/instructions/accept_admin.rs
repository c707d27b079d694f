use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::AdminAccepted;
use crate::state::Exchange;

/// Second step of an admin transfer: the proposed admin signs to take over, so
/// the role can never pass to a key nobody controls.
#[derive(Accounts)]
pub struct AcceptAdmin<'info> {
    pub new_admin: Signer<'info>,
    #[account(mut)]
    pub exchange: AccountLoader<'info, Exchange>,
}

#[inline(never)]
pub fn accept_admin(ctx: Context<AcceptAdmin>) -> Result<()> {
    let mut exchange = ctx.accounts.exchange.load_mut()?;
    require!(
        exchange.pending_admin != Pubkey::default(),
        KestrelError::NoPendingAdmin
    );
    let new_admin = ctx.accounts.new_admin.key();
    require_keys_eq!(
        exchange.pending_admin,
        new_admin,
        KestrelError::NotPendingAdmin
    );

    let previous_admin = exchange.admin;
    exchange.admin = new_admin;
    exchange.pending_admin = Pubkey::default();
    emit!(AdminAccepted {
        previous_admin,
        new_admin,
    });
    Ok(())
}
