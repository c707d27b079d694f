//! Settle what expires: dated futures, and perpetuals delisted in an
//! emergency (which settle the same way).
//!
//! - From the settlement window's start until the settlement average is
//!   complete, a cycle sends `sample_settlement` once a checkpoint newer
//!   than the market's last capture can exist (one a minute): it copies the
//!   underlying's price-integral checkpoints into the market. Whoever sends
//!   it copies the same ones; the keeper's part is that the ring (16
//!   minutes) never drops one the market needs. The refresh crank keeps
//!   the underlying's price fresh, so the integral covers the window.
//! - From expiry on, once the average is complete and the market's queue is
//!   empty (the consume crank
//!   runs first; `settle_expired` refuses while a fill waits, and an account
//!   whose outs wait keeps reservations it cannot settle), `settle_expired`
//!   for every margin account holding a position slot in the market: the
//!   first call fixes the settlement price (the market becomes Settled),
//!   each settles one account in cash and cancels its orders there, and the
//!   last leaves the market Closed. With no account left holding one, a call
//!   naming none fixes the price (and closes an empty market).
//!
//! An account left with negative collateral by its settlement is then a
//! bankruptcy, which the bankruptcy crank settles in this same cycle.
//! `settle_expired` stops while trading is paused; nothing is sent then.
use fixed::types::I80F48;
use kestrel::engine::future::settlement_value;
use kestrel::engine::price_integral::CHECKPOINT_SECONDS;
use kestrel::state::{Market, MarketStatus};
use kestrel_sdk::client::{Chain, ChainError, FetchError};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::{Operation, Pubkey};

use super::{CycleReport, Keeper};

/// One position this keeper settled in cash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledPosition {
    pub account: Pubkey,
    pub market_index: u16,
    /// The position settled, in base lots (0: a slot holding only orders,
    /// which were cancelled).
    pub base_lots: i64,
    /// What it settled for at the settlement price, native quote units: a
    /// long receives it (rounded down), a short pays it (negative, rounded
    /// up), as the program computes it.
    pub value_native: i64,
}

/// Where a market with an expiry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettlementStage {
    /// Before its settlement window.
    Trading,
    /// Inside the window: sampled every cycle.
    Window,
    /// Expired, its settlement price not fixed yet.
    Expired,
    /// Its settlement price fixed; positions left to settle.
    Settled,
    /// Settled, and no position or order left.
    Closed,
}

/// The stage of `market` at `now`; `None` for a market without an expiry
/// (a perpetual never delisted).
pub fn settlement_stage(market: &Market, now: i64) -> Option<SettlementStage> {
    if !market.has_expiry() {
        return None;
    }
    let params = market.future.params;
    Some(match market.status() {
        Ok(MarketStatus::Closed) if market.settlement_price().is_some() => SettlementStage::Closed,
        Ok(MarketStatus::Settled) => SettlementStage::Settled,
        _ if now >= params.expiry => SettlementStage::Expired,
        _ if now >= params.window_start() => SettlementStage::Window,
        _ => SettlementStage::Trading,
    })
}

/// Whether `sample_settlement` could copy a new checkpoint at `now`: the
/// window open, its average not complete, the market neither settled nor
/// closed, and a minute passed since the last checkpoint it copied.
pub fn sample_due(market: &Market, now: i64) -> bool {
    let params = market.future.params;
    let capture = market.future.settlement();
    market.has_expiry()
        && now >= params.window_start()
        && !capture.is_complete(params.expiry, params.settlement_window_seconds)
        && matches!(
            market.status(),
            Ok(MarketStatus::Active | MarketStatus::ReduceOnly | MarketStatus::Paused)
        )
        && now >= capture.end.time.saturating_add(CHECKPOINT_SECONDS)
}

/// Whether `settle_expired` can fix the price: expired, and the average
/// complete (or the price fixed already).
pub fn settlement_ready(market: &Market, now: i64) -> bool {
    let params = market.future.params;
    now >= params.expiry
        && (market.settlement_price().is_some()
            || market
                .future
                .settlement()
                .is_complete(params.expiry, params.settlement_window_seconds))
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    state: &Market,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let Some(stage) = settlement_stage(state, now) else {
        return Ok(());
    };
    let index = market.market_index;
    let mut observed = *state;
    if sample_due(state, now) {
        let what = format!("capture the settlement checkpoints of market {index}");
        let sample = [ix::sample_settlement(market)];
        if keeper.send(chain, &what, &sample, &[], report).await? {
            report.settlement_samples += 1;
            observed = chain
                .market(&market.market)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            let capture = observed.future.settlement();
            tracing::debug!(
                market = index,
                through = capture.end.time,
                covered_seconds = capture.covered_seconds(),
                "settlement checkpoints captured"
            );
        }
    }
    if stage != SettlementStage::Closed && now >= state.future.params.expiry {
        if !settlement_ready(&observed, now) {
            tracing::info!(
                market = index,
                covered_seconds = observed.future.settlement().covered_seconds(),
                "expired: the settlement average waits for the underlying to cover three quarters of its window"
            );
        } else if let Some(after) = settle(keeper, chain, market, &observed, report).await? {
            observed = after;
        }
    }
    keeper.metrics.observe_expiry(index, &observed, now);
    Ok(())
}

/// Fixes the settlement price and settles every account holding the
/// market; returns the market as left (`None`: nothing was sent).
async fn settle(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    state: &Market,
    report: &mut CycleReport,
) -> Result<Option<Market>, ChainError> {
    let fetch = |e: FetchError| ChainError(e.to_string());
    let index = market.market_index;
    let exchange = chain.exchange().await.map_err(fetch)?;
    if exchange.pause_flags().is_paused(Operation::Trading) {
        tracing::debug!(market = index, "trading is paused: settlement waits");
        return Ok(None);
    }
    if !chain
        .pending_events(market)
        .await
        .map_err(fetch)?
        .is_empty()
    {
        // The consume crank drains it, this cycle or the next.
        tracing::debug!(market = index, "events wait in the queue: settlement waits");
        return Ok(None);
    }
    let mut holders: Vec<(Pubkey, i64)> = chain
        .margin_accounts()
        .await?
        .into_iter()
        .filter_map(|(address, account)| {
            account
                .position(index)
                .map(|position| (address, position.base_lots))
        })
        .collect();
    holders.sort();
    let price_was_fixed = state.settlement_price().is_some();
    if holders.is_empty() {
        if price_was_fixed {
            tracing::warn!(
                market = index,
                "settled, with no account holding it found, and not closed"
            );
            return Ok(None);
        }
        let what = format!("fix the settlement price of market {index}");
        let fix = ix::settle_expired(market, None);
        keeper.send(chain, &what, &[fix], &[], report).await?;
    }
    let mut settled = Vec::with_capacity(holders.len());
    for (address, base_lots) in holders {
        let what = format!("settle {address} in market {index}");
        let settle = ix::settle_expired(market, Some(address));
        if !keeper.send(chain, &what, &[settle], &[], report).await? {
            continue;
        }
        let account = chain.margin_account(&address).await.map_err(fetch)?;
        if account.position(index).is_none() {
            settled.push((address, base_lots));
        }
    }
    let after = chain.market(&market.market).await.map_err(fetch)?;
    let price = after.settlement_price();
    if let (Some(price), false) = (price, price_was_fixed) {
        let capture = after.future.settlement();
        tracing::info!(
            market = index,
            %price,
            from = capture.start.time,
            to = capture.end.time,
            covered_seconds = capture.covered_seconds(),
            "settlement price fixed"
        );
        report.markets_settled.push(index);
    }
    for (account, base_lots) in settled {
        let value_native = value_of(base_lots, &after, price);
        tracing::info!(%account, market = index, base_lots, value_native, "position settled");
        report.positions_settled.push(SettledPosition {
            account,
            market_index: index,
            base_lots,
            value_native,
        });
    }
    if after.status().ok() == Some(MarketStatus::Closed) {
        tracing::info!(market = index, "closed: every position settled");
        report.markets_closed.push(index);
    }
    Ok(Some(after))
}

/// The program's settlement value of `base_lots` in `market` at `price`:
/// the price per unit for a future, the intrinsic value for an option (0
/// without a price, which a landed settlement always has).
fn value_of(base_lots: i64, market: &Market, price: Option<I80F48>) -> i64 {
    let Some(price) = price else {
        return 0;
    };
    let value = match market.settlement_value_per_unit(price) {
        // Out of the money: the program settles it for nothing.
        Ok(per_unit) if per_unit == 0 => return 0,
        Ok(per_unit) => settlement_value(base_lots, market.base_lot_size, per_unit)
            .map_err(|error| format!("{error:?}")),
        Err(error) => Err(error.to_string()),
    };
    value.unwrap_or_else(|error| {
        // The program settled it, so it computed this: a report that cannot
        // is a decoding or version mismatch worth seeing.
        tracing::warn!(market = market.market_index, base_lots, %price, %error, "settlement value not computable");
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel::state::InstrumentKind;

    fn future(expiry: i64, window: u32) -> Market {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        market.kind = InstrumentKind::Future as u8;
        market.future.params.expiry = expiry;
        market.future.params.settlement_window_seconds = window;
        market
    }

    #[test]
    fn the_stage_follows_the_clock_then_the_settlement() {
        use SettlementStage::*;
        let mut market = future(10_000, 1_800);
        assert_eq!(settlement_stage(&market, 8_199), Some(Trading));
        assert_eq!(settlement_stage(&market, 8_200), Some(Window));
        assert_eq!(settlement_stage(&market, 9_999), Some(Window));
        assert_eq!(settlement_stage(&market, 10_000), Some(Expired));
        market.status = MarketStatus::Settled as u8;
        market.future.settlement_price = [0, 1];
        assert_eq!(settlement_stage(&market, 10_000), Some(Settled));
        market.status = MarketStatus::Closed as u8;
        assert_eq!(settlement_stage(&market, 10_000), Some(Closed));
        // Closed by the admin before it expired: it still settles then.
        market.future.settlement_price = [0, 0];
        assert_eq!(settlement_stage(&market, 9_000), Some(Window));
        assert_eq!(settlement_stage(&market, 10_000), Some(Expired));
        let perp: Market = bytemuck::Zeroable::zeroed();
        assert_eq!(settlement_stage(&perp, 10_000), None);
    }

    #[test]
    fn captures_are_due_once_a_minute_until_the_average_is_complete() {
        let mut market = future(10_020, 1_800);
        assert!(!sample_due(&market, 8_219));
        assert!(sample_due(&market, 8_220));
        market.future.settlement.start.time = 8_220;
        market.future.settlement.end.time = 9_000;
        market.future.settlement.end.covered = 780;
        assert!(!sample_due(&market, 9_059), "no newer checkpoint yet");
        assert!(sample_due(&market, 9_060));
        assert!(
            !settlement_ready(&market, 10_020),
            "the average is not complete"
        );
        // Through expiry and covering three quarters of the window: complete.
        market.future.settlement.end.time = 10_020;
        market.future.settlement.end.covered = 1_350;
        assert!(!sample_due(&market, 10_200));
        assert!(settlement_ready(&market, 10_020));
        assert!(!settlement_ready(&market, 10_019));
        // Past expiry but uncovered: captures go on.
        market.future.settlement.end.covered = 1_349;
        assert!(sample_due(&market, 10_080));
        for status in [MarketStatus::Settled, MarketStatus::Closed] {
            market.status = status as u8;
            assert!(!sample_due(&market, 10_080), "{status:?}");
        }
        let perp: Market = bytemuck::Zeroable::zeroed();
        assert!(!sample_due(&perp, 0));
    }

    #[test]
    fn values_are_the_program_s() {
        // 200 lots of 0.01 SOL at 142.5 USDC per SOL (0.1425 native): a
        // long receives 285 USDC, rounded down; a short pays it, rounded up.
        let mut market = future(10_000, 1_800);
        market.base_lot_size = 10_000_000;
        let price = I80F48::from_num(1425) / 10_000;
        let long = value_of(200, &market, Some(price));
        let short = value_of(-200, &market, Some(price));
        assert!((284_999_999..=285_000_000).contains(&long), "{long}");
        assert!(short == -long || short == -long - 1, "{short}");
        assert_eq!(value_of(200, &market, None), 0);
    }

    #[test]
    fn an_option_settles_for_its_intrinsic_value() {
        use kestrel::engine::black_scholes::OptionSide;
        // Struck at 140 USDC per SOL (0.14 native), settled at 142.5: a
        // call pays 2.5 per SOL, 5 USDC on 2 SOL; the put nothing.
        let mut market = future(10_000, 1_800);
        market.kind = InstrumentKind::Option as u8;
        market.base_lot_size = 10_000_000;
        market.option.strike = kestrel::engine::funding::to_parts(I80F48::from_num(14) / 100);
        let price = I80F48::from_num(1425) / 10_000;
        market.option.side = OptionSide::Call as u8;
        let long = value_of(200, &market, Some(price));
        assert!((4_999_999..=5_000_000).contains(&long), "{long}");
        let short = value_of(-200, &market, Some(price));
        assert!(short == -long || short == -long - 1, "{short}");
        market.option.side = OptionSide::Put as u8;
        assert_eq!(value_of(200, &market, Some(price)), 0);
        assert_eq!(value_of(-200, &market, Some(price)), 0);
    }
}
