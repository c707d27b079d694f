use anchor_lang::prelude::*;

use crate::engine::book_side::best_price;
use crate::engine::event_queue::pending_count;
use crate::engine::funding;
use crate::error::KestrelError;
use crate::events::FundingUpdated;
use crate::oracle;
use crate::state::*;

/// Permissionless crank: samples the mark price (the book's mid; the oracle
/// when a side is empty, so an empty book pays no premium) and the oracle
/// price into their TWAPs, then moves both funding indexes by the capped
/// premium, pro rata to the time since the last update.
///
/// The event queue must hold no events: a fill waiting there has moved its
/// taker but not yet its maker, and funding accrued meanwhile would not net
/// to zero. The keeper cranks first.
#[derive(Accounts)]
pub struct UpdateFunding<'info> {
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = bids @ KestrelError::WrongMarketAccounts,
        has_one = asks @ KestrelError::WrongMarketAccounts,
        has_one = event_queue @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    pub bids: AccountLoader<'info, BookSideAccount>,
    pub asks: AccountLoader<'info, BookSideAccount>,
    pub event_queue: AccountLoader<'info, EventQueueAccount>,
    /// CHECK: checked by `oracle::market_price` against the market's config.
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required when the market has a fallback.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
}

#[inline(never)]
pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
    let accounts = &ctx.accounts;
    let quote_decimals = {
        let exchange = accounts.exchange.load()?;
        exchange.pause_flags().ensure_running(Operation::Funding)?;
        exchange.collateral_decimals
    };
    let pending = pending_count(&accounts.event_queue.load()?.data)
        .map_err(|_| KestrelError::WrongMarketAccounts)?;
    require!(pending == 0, KestrelError::CrankRequired);

    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(
        market.status() != MarketStatus::Closed,
        KestrelError::MarketNotTrading
    );
    let elapsed = clock
        .unix_timestamp
        .checked_sub(market.funding_updated_at)
        .filter(|&e| e > 0)
        .ok_or(KestrelError::FundingUpToDate)? as u64;

    let price = oracle::market_price(
        &market,
        quote_decimals,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
        &clock,
    )??;
    let oracle_sample = market.price_per_lot(price.price)?;
    let best_bid =
        best_price(&accounts.bids.load()?.data).map_err(|_| KestrelError::WrongMarketAccounts)?;
    let best_ask =
        best_price(&accounts.asks.load()?.data).map_err(|_| KestrelError::WrongMarketAccounts)?;
    let mark_sample = match (best_bid, best_ask) {
        (Some(bid), Some(ask)) => {
            // Ticks are quote lots per base lot.
            let mid_lots =
                (u128::from(bid.0) + u128::from(ask.0)) * u128::from(market.quote_lot_size);
            fixed::types::I80F48::checked_from_num(mid_lots).ok_or(KestrelError::MathOverflow)? / 2
        }
        _ => oracle_sample,
    };

    let period = u64::from(market.funding_period_seconds);
    let overflow = || error!(KestrelError::MathOverflow);
    let (mark_twap, oracle_twap, per_lot) = if market.funding_updated_at == 0 {
        // The first update starts the averages; nothing has accrued yet.
        (mark_sample, oracle_sample, fixed::types::I80F48::ZERO)
    } else {
        let mark_twap = funding::twap_step(
            funding::from_parts(market.mark_twap),
            mark_sample,
            elapsed,
            period,
        )
        .ok_or_else(overflow)?;
        let oracle_twap = funding::twap_step(
            funding::from_parts(market.oracle_twap),
            oracle_sample,
            elapsed,
            period,
        )
        .ok_or_else(overflow)?;
        let per_lot = funding::funding_per_lot(
            mark_twap,
            oracle_twap,
            market.funding_cap_bps,
            elapsed,
            period,
        )
        .ok_or_else(overflow)?;
        (mark_twap, oracle_twap, per_lot)
    };
    let long_index = market
        .long_funding_index()
        .checked_add(per_lot)
        .ok_or_else(overflow)?;
    let short_index = market
        .short_funding_index()
        .checked_add(per_lot)
        .ok_or_else(overflow)?;
    market.long_funding_index = funding::to_parts(long_index);
    market.short_funding_index = funding::to_parts(short_index);
    market.mark_twap = funding::to_parts(mark_twap);
    market.oracle_twap = funding::to_parts(oracle_twap);
    market.funding_updated_at = clock.unix_timestamp;

    emit!(FundingUpdated {
        market: accounts.market.key(),
        funding_per_lot_bits: per_lot.to_bits(),
        mark_twap_bits: mark_twap.to_bits(),
        oracle_twap_bits: oracle_twap.to_bits(),
        elapsed_seconds: elapsed,
    });
    Ok(())
}
