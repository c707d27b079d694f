use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::PauseFlagsSet;
use crate::state::{Exchange, PauseFlags};

/// Sets the whole pause bit set at once (see `PauseFlags`), so the result does
/// not depend on the order in which concurrent admin transactions land.
#[derive(Accounts)]
pub struct SetPause<'info> {
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
}

#[inline(never)]
pub fn set_pause(ctx: Context<SetPause>, pause_flags: u32) -> Result<()> {
    let flags = PauseFlags::validated(pause_flags)?;
    let mut exchange = ctx.accounts.exchange.load_mut()?;
    let previous = exchange.pause_flags;
    exchange.pause_flags = flags.0;
    emit!(PauseFlagsSet {
        previous,
        current: flags.0,
    });
    Ok(())
}
