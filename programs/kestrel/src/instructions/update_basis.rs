use anchor_lang::prelude::*;

use crate::engine::book_side::{best_live_price, BestLive};
use crate::engine::funding;
use crate::error::{KestrelError, OrOverflow};
use crate::instructions::update_funding::MARK_SAMPLE_ORDERS;
use crate::state::*;

/// Permissionless crank of a dated future before its expiry (the keeper's,
/// as funding is for perpetuals): samples the book's premium over the
/// underlying's price (the mid of the best live bid and ask, clamped into
/// the band) into the basis its mark carries. The basis starts at zero; the
/// interval since the last sample counts the smaller of the premiums at its
/// two ends (`funding::interval_premium`), so the book of one instant moves
/// nothing, and a second sample in one second does nothing; an empty side,
/// or one hidden behind expired orders, samples no premium.
#[derive(Accounts)]
pub struct UpdateBasis<'info> {
    #[account(
        mut,
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
pub fn update_basis(ctx: Context<UpdateBasis>) -> Result<()> {
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(
        market.kind()? == InstrumentKind::Future,
        KestrelError::WrongMarketKind
    );
    require!(
        !market.is_expired(clock.unix_timestamp),
        KestrelError::MarketExpired
    );
    let price = accounts
        .underlying
        .load()?
        .current_price(clock.unix_timestamp, clock.slot)?;
    let oracle_per_lot = market.price_per_lot(price)?.0;
    let band = market
        .oracle_ticks(price)
        .and_then(|ticks| market.price_band(ticks))
        .or_overflow()?;
    let now = u64::try_from(clock.unix_timestamp).ok().or_overflow()?;
    let best = |side: &AccountLoader<BookSideAccount>| -> Result<_> {
        Ok(best_live_price(&side.load()?.data, now, MARK_SAMPLE_ORDERS)
            .map_err(|_| KestrelError::WrongMarketAccounts)?)
    };
    let mut basis = market.future.basis();
    // One sample per second: a second call in the same second would change
    // no basis but could rewrite the premium the next interval starts from.
    if basis.samples > 0 && clock.unix_timestamp <= basis.last_update {
        return Ok(());
    }
    let premium = match (best(&accounts.bids)?, best(&accounts.asks)?) {
        (BestLive::Price(bid), BestLive::Price(ask)) => {
            let per_lot = funding::book_premium(
                Some(bid),
                Some(ask),
                &band,
                market.quote_lot_size,
                oracle_per_lot,
            )
            .or_overflow()?;
            per_lot
                .checked_div_int(i128::from(market.base_lot_size))
                .or_overflow()?
        }
        // An empty side, or one hidden behind expired orders, has no
        // premium: the basis decays toward zero (an end frozen by stale
        // orders would let an earlier premium stand for as long as they do).
        _ => fixed::types::I80F48::ZERO,
    };
    // The first sample only starts the clock: the basis starts at zero and
    // moves by the time its premiums stand, so the book of one instant
    // cannot set it.
    let counted = if basis.samples == 0 {
        None
    } else {
        let paid =
            funding::interval_premium(funding::from_parts(market.future.last_premium), premium);
        Some(price.checked_add(paid).or_overflow()?)
    };
    let params = market.future.params;
    basis
        .sample(
            clock.unix_timestamp,
            price,
            counted.filter(|mid| *mid > 0),
            params.max_basis_bps,
            params.basis_window_seconds,
        )
        .map_err(KestrelError::from)?;
    market.future.set_basis(basis);
    market.future.last_premium = funding::to_parts(premium);
    Ok(())
}
