use anchor_lang::prelude::*;

use fixed::types::I80F48;

use crate::engine::book_side::{best_live_price, BestLive};
use crate::engine::funding;
use crate::error::{KestrelError, OrOverflow};
use crate::events::FundingUpdated;
use crate::state::*;

/// Orders a mark sample looks through for one that has not expired.
pub const MARK_SAMPLE_ORDERS: usize = 8;

/// Permissionless crank: samples the book's premium over the oracle (the mid
/// of the best live bid and ask clamped into the price band, less the oracle
/// price; none when a side is empty) and the oracle price into their TWAPs,
/// then moves both funding indexes by the capped premium, pro rata to the
/// time since the last update. A side whose first orders have all expired
/// keeps the last premium rather than reading as empty. The interval since the last update pays the
/// smaller of the premiums at its two ends (`funding::interval_premium`), so
/// a book moved for the instant of one call moves nothing.
///
/// No fill may wait in the queue: a fill there has moved its taker but not
/// yet its maker, and funding accrued meanwhile would not net to zero. Out
/// events do not hold it up. The keeper cranks first.
#[derive(Accounts)]
pub struct UpdateFunding<'info> {
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = bids @ KestrelError::WrongMarketAccounts,
        has_one = asks @ KestrelError::WrongMarketAccounts,
        has_one = underlying @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    pub bids: AccountLoader<'info, BookSideAccount>,
    pub asks: AccountLoader<'info, BookSideAccount>,
    /// Read only: its stored price must be fresh (`refresh_underlying`).
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
    let accounts = &ctx.accounts;
    accounts
        .exchange
        .load()?
        .pause_flags()
        .ensure_running(Operation::Funding)?;
    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(
        market.kind()? == InstrumentKind::Perp,
        KestrelError::WrongMarketKind
    );
    require!(!market.has_expiry(), KestrelError::MarketDelisted);
    require!(market.pending_fills == 0, KestrelError::CrankRequired);
    require!(
        !matches!(
            market.status()?,
            MarketStatus::Closed | MarketStatus::Settled
        ),
        KestrelError::MarketNotTrading
    );
    let elapsed = clock
        .unix_timestamp
        .checked_sub(market.perp.funding_updated_at)
        .filter(|&e| e > 0)
        .ok_or(KestrelError::FundingUpToDate)? as u64;

    let price = accounts
        .underlying
        .load()?
        .current_price(clock.unix_timestamp, clock.slot)?;
    let oracle_sample = market.price_per_lot(price)?.0;
    let band = market
        .oracle_ticks(price)
        .and_then(|ticks| market.price_band(ticks))
        .or_overflow()?;
    let now = u64::try_from(clock.unix_timestamp).ok().or_overflow()?;
    let best = |side: &AccountLoader<BookSideAccount>| -> Result<_> {
        Ok(best_live_price(&side.load()?.data, now, MARK_SAMPLE_ORDERS)
            .map_err(|_| KestrelError::WrongMarketAccounts)?)
    };
    let premium = match (best(&accounts.bids)?, best(&accounts.asks)?) {
        // A side hidden behind expired orders says nothing new: the last
        // premium stands, so stale orders cannot switch funding off.
        (BestLive::OnlyExpired, _) | (_, BestLive::OnlyExpired) => {
            funding::from_parts(market.perp.mark_premium)
        }
        (bid, ask) => {
            let price = |best| match best {
                BestLive::Price(price) => Some(price),
                _ => None,
            };
            funding::book_premium(
                price(bid),
                price(ask),
                &band,
                market.quote_lot_size,
                oracle_sample,
            )
            .or_overflow()?
        }
    };

    let period = u64::from(market.params.funding_period_seconds);
    let (mark_twap, oracle_twap, per_lot) = if market.perp.funding_updated_at == 0 {
        // The first update starts the averages; nothing has accrued yet.
        (oracle_sample, oracle_sample, I80F48::ZERO)
    } else {
        let paid =
            funding::interval_premium(funding::from_parts(market.perp.mark_premium), premium);
        let mark_sample = oracle_sample.checked_add(paid).or_overflow()?;
        let mark_twap = funding::twap_step(
            funding::from_parts(market.perp.mark_twap),
            mark_sample,
            elapsed,
            period,
        )
        .or_overflow()?;
        let oracle_twap = funding::twap_step(
            funding::from_parts(market.perp.oracle_twap),
            oracle_sample,
            elapsed,
            period,
        )
        .or_overflow()?;
        let per_lot = funding::funding_per_lot(
            mark_twap,
            oracle_twap,
            market.params.funding_cap_bps,
            elapsed,
            period,
        )
        .or_overflow()?;
        (mark_twap, oracle_twap, per_lot)
    };
    let long_index = market
        .long_funding_index()
        .checked_add(per_lot)
        .or_overflow()?;
    let short_index = market
        .short_funding_index()
        .checked_add(per_lot)
        .or_overflow()?;
    market.long_funding_index = funding::to_parts(long_index);
    market.short_funding_index = funding::to_parts(short_index);
    market.perp.mark_twap = funding::to_parts(mark_twap);
    market.perp.oracle_twap = funding::to_parts(oracle_twap);
    market.perp.mark_premium = funding::to_parts(premium);
    market.perp.funding_updated_at = clock.unix_timestamp;

    emit!(FundingUpdated {
        market: accounts.market.key(),
        funding_per_lot_bits: per_lot.to_bits(),
        mark_twap_bits: mark_twap.to_bits(),
        oracle_twap_bits: oracle_twap.to_bits(),
        elapsed_seconds: elapsed,
    });
    Ok(())
}
