use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarketDelisted;
use crate::state::*;

/// The disaster-recovery route for a broken perpetual: the admin delists a
/// paused market, which then settles as a dated future does. Funding stops;
/// the settlement window opens now and ends `settlement_window_seconds`
/// later, at the expiry it sets; `sample_settlement` averages the
/// underlying's price over it and `settle_expired` closes every position at
/// that average. Trading stays stopped (the market is Paused) and cannot
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
        market.status() == MarketStatus::Paused,
        KestrelError::InvalidStatusTransition
    );
    require!(
        (1..=MAX_SETTLEMENT_WINDOW_SECONDS).contains(&settlement_window_seconds),
        KestrelError::InvalidFutureParams
    );
    let expiry = Clock::get()?
        .unix_timestamp
        .checked_add(i64::from(settlement_window_seconds))
        .ok_or(KestrelError::MathOverflow)?;
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
