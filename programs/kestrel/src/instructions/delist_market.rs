use anchor_lang::prelude::*;

use crate::engine::price_integral::CHECKPOINT_SECONDS;
use crate::error::{KestrelError, OrOverflow};
use crate::events::MarketDelisted;
use crate::state::*;

/// The disaster-recovery route for a broken perpetual: the admin delists a
/// paused market, which then settles as a dated future does. Funding stops;
/// the settlement window opens at the next minute (a checkpoint of the
/// underlying's price integral) and ends `settlement_window_seconds` (whole
/// minutes) later, at the expiry it sets; `settle_expired` then closes every
/// position at the underlying's average price over it. Trading stays stopped (the market is Paused) and cannot
/// resume.
#[derive(Accounts)]
pub struct DelistMarket<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
}

#[inline(never)]
pub fn delist_market(ctx: Context<DelistMarket>, settlement_window_seconds: u32) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    require!(
        market.kind()? == InstrumentKind::Perp,
        KestrelError::WrongMarketKind
    );
    require!(!market.has_expiry(), KestrelError::MarketDelisted);
    // Behind the pause: trading must have stopped first.
    require!(
        market.status()? == MarketStatus::Paused,
        KestrelError::InvalidStatusTransition
    );
    let window = i64::from(settlement_window_seconds);
    require!(
        (MIN_SETTLEMENT_WINDOW_SECONDS..=MAX_SETTLEMENT_WINDOW_SECONDS)
            .contains(&settlement_window_seconds)
            && window % CHECKPOINT_SECONDS == 0,
        KestrelError::InvalidFutureParams
    );
    // The window opens at the next checkpoint of the underlying's price
    // integral, so both its ends are checkpoints.
    let opens = Clock::get()?
        .unix_timestamp
        .div_euclid(CHECKPOINT_SECONDS)
        .checked_add(1)
        .and_then(|minutes| minutes.checked_mul(CHECKPOINT_SECONDS))
        .or_overflow()?;
    let expiry = opens.checked_add(window).or_overflow()?;
    market.future.params = FutureParams {
        expiry,
        settlement_window_seconds,
        ..FutureParams::default()
    };
    emit!(MarketDelisted {
        market: ctx.accounts.market.key(),
        expiry,
    });
    Ok(())
}
