use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::PriceLimitSet;
use crate::state::*;

/// Sets how fast the underlying's accepted price may follow its feeds
/// (`engine::price_limit`): at most `max_move_bps_per_second` a second
/// since the last refresh, ten seconds of a longer wait at most; 0 lets it
/// follow them at once (every reader then sees the feeds' price, a held-back
/// print included: the admin's call). The limit starts from the price
/// accepted last (the last good price for an underlying not refreshed
/// since it was upgraded), and the time before this call does not count
/// towards the next step. `band_bps` (0: none) keeps the accepted price
/// within that many basis points of the hourly delay price, widened while
/// it holds; a held band makes its markets reduce-only.
#[derive(Accounts)]
pub struct SetPriceLimit<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn set_price_limit(
    ctx: Context<SetPriceLimit>,
    max_move_bps_per_second: u32,
    band_bps: u32,
) -> Result<()> {
    validate_price_limit(max_move_bps_per_second, band_bps)?;
    let now = Clock::get()?.unix_timestamp;
    let mut underlying = ctx.accounts.underlying.load_mut()?;
    let last_good = underlying.prices.last_good_price();
    let mut limit = underlying.price_limit();
    limit.configure(max_move_bps_per_second, band_bps, last_good, now);
    underlying.set_price_limit(&limit);
    emit!(PriceLimitSet {
        underlying: ctx.accounts.underlying.key(),
        max_move_bps_per_second,
        band_bps,
    });
    Ok(())
}
