use anchor_lang::prelude::*;

use crate::oracle;
use crate::state::*;

/// Permissionless: reads the underlying's feeds and stores what they give.
/// A feed's record is replaced only by a strictly newer update, a fallback
/// is used only within the deviation bound of the stored price, and a feed
/// that cannot be used now is recorded as such (the markets then see no
/// current price). Every other instruction reads the stored price
/// read-only, so this is the one write lock per update on the underlying.
#[derive(Accounts)]
pub struct RefreshUnderlying<'info> {
    #[account(mut)]
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked by `oracle::refresh_price` against the underlying's config.
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required when the underlying has a fallback.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
}

#[inline(never)]
pub fn refresh_underlying(ctx: Context<RefreshUnderlying>) -> Result<()> {
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut underlying = accounts.underlying.load_mut()?;
    let reading = oracle::refresh_price(
        &underlying,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
        &clock,
    )?;
    underlying.store(&reading, clock.unix_timestamp);
    Ok(())
}
