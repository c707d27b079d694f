use anchor_lang::prelude::*;

use crate::engine::fastdiv::div_pow10;
use crate::error::{KestrelError, OrOverflow};
use crate::oracle;
use crate::state::*;

/// Permissionless (the keeper's job): reads the underlying's
/// implied-volatility feed and stores its value, validated like a price:
/// the feed account must be the configured one, owned by Switchboard
/// On-Demand and of its layout; the update must be newer than the stored
/// one (an older or the same one changes nothing), within the maximum age
/// and within the bounds. Options of the underlying read the stored value
/// read-only, and are reduce-only while it is stale.
#[derive(Accounts)]
pub struct RefreshVolatility<'info> {
    #[account(mut)]
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: read by `oracle::switchboard::read` (owner program, layout,
    /// and the configured feed's address).
    pub volatility_feed: UncheckedAccount<'info>,
}

#[inline(never)]
pub fn refresh_volatility(ctx: Context<RefreshVolatility>) -> Result<()> {
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut underlying = accounts.underlying.load_mut()?;
    let state = &mut underlying.volatility;
    require!(state.is_configured(), KestrelError::VolatilityUnavailable);
    let feed = accounts.volatility_feed.as_ref();
    let raw = {
        let data = feed
            .try_borrow_data()
            .map_err(|_| KestrelError::OracleBadData)?;
        oracle::switchboard::read(
            feed.key,
            feed.owner,
            &data,
            &Pubkey::new_from_array(state.config.volatility_feed),
        )
        .map_err(KestrelError::from)?
    };
    require!(raw.mantissa > 0, KestrelError::VolatilityOutOfBounds);
    let volatility = fraction(raw.mantissa.unsigned_abs(), raw.exponent).or_overflow()?;
    state.accept(
        volatility,
        raw.publish_time,
        raw.publish_slot,
        clock.unix_timestamp,
    )?;
    Ok(())
}

/// `mantissa × 10^exponent` for a negative exponent (Switchboard's 18
/// decimals), as I80F48; `None` past it.
fn fraction(mantissa: u128, exponent: i32) -> Option<fixed::types::I80F48> {
    let decimals = u32::try_from(exponent.checked_neg()?).ok()?;
    // A volatility is below 1,000 % (validated bounds), so the mantissa is
    // below 10^(decimals + 1); checked all the same.
    let shifted = mantissa.checked_shl(48).filter(|s| s >> 48 == mantissa)?;
    let bits = div_pow10(shifted, decimals);
    i128::try_from(bits)
        .ok()
        .map(fixed::types::I80F48::from_bits)
}
