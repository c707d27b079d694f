//! Close the positions liquidations hand the keeper's own account, with
//! reduce-only market orders no worse than `unwind_slippage_bps` from the
//! mark (the oracle's price; a dated future's carries its basis): the
//! liquidator earns the liquidation fee without carrying the market risk.
//! What the book cannot absorb within that limit waits for the next cycle;
//! when nothing on the book is within it, nothing is sent. A position in a
//! market that takes no orders (paused, past its expiry, settled, closed)
//! is held: an expired one is settled in cash by the settlement crank.
use fixed::types::I80F48;
use kestrel::instructions::{OrderSide, OrderType, PlaceOrderArgs, SelfTradeBehavior};
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::ix;
use kestrel_sdk::Operation;

use super::{CycleReport, Keeper};

/// Client order id of the keeper's unwinding orders, to tell them apart in
/// fills and logs.
pub const UNWIND_CLIENT_ORDER_ID: u64 = 0x4b45_4550_554e_5744; // "KEEPUNWD"

/// One unwinding order that filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwind {
    pub market_index: u16,
    /// The liquidator's position before and after, in base lots.
    pub base_lots_before: i64,
    pub base_lots_after: i64,
}

/// The worst price, in ticks, of the order closing a position on `side`:
/// `slippage_bps` below the mark (`mark_ticks`: the oracle's price for a
/// perpetual, plus the basis for a dated future) for a sale, above it for a
/// purchase, rounded towards the mark so the limit is never exceeded.
pub fn unwind_limit(mark_ticks: I80F48, side: OrderSide, slippage_bps: u32) -> Option<u64> {
    let factor = match side {
        OrderSide::Ask => 10_000i128.saturating_sub(i128::from(slippage_bps)).max(0),
        OrderSide::Bid => 10_000 + i128::from(slippage_bps),
    };
    let limit = mark_ticks
        .checked_mul_int(factor)?
        .checked_div_int(10_000)?;
    let ticks = match side {
        OrderSide::Ask => limit.checked_ceil()?,
        OrderSide::Bid => limit.floor(),
    };
    ticks.checked_to_num::<u64>().map(|t| t.max(1))
}

/// (market, base lots) of every open position.
fn held_positions(account: &kestrel_sdk::MarginAccount) -> Vec<(u16, i64)> {
    account
        .active_positions()
        .filter(|(_, p)| p.base_lots != 0)
        .map(|(_, p)| (p.market_index, p.base_lots))
        .collect()
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let Some(liquidator) = &keeper.liquidator else {
        return Ok(());
    };
    let mut account = chain
        .margin_account(&liquidator.margin_account)
        .await
        .map_err(|e| ChainError(e.to_string()))?;
    let held = held_positions(&account);
    keeper.metrics.observe_liquidator(&held);
    let Some(slippage_bps) = liquidator.unwind_slippage_bps else {
        return Ok(());
    };
    let exchange = chain
        .exchange()
        .await
        .map_err(|e| ChainError(e.to_string()))?;
    if exchange.pause_flags().is_paused(Operation::Trading) {
        return Ok(());
    }
    // Every order's health check names all of the account's markets.
    if let Some((_, missing)) = account
        .active_positions()
        .find(|(_, p)| keeper.market(p.market_index).is_none())
    {
        report.unconfigured.push(format!(
            "the liquidator holds market {}: it cannot unwind",
            missing.market_index
        ));
        return Ok(());
    }
    let clock = chain.clock().await?;
    for (market_index, base_lots) in held {
        let Some(market) = keeper.market(market_index) else {
            continue; // checked above
        };
        let view = chain
            .fetch_market(market)
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        if !super::trades(&view.snapshot.market, clock.unix_timestamp, true) {
            tracing::debug!(market_index, "the market takes no orders; unwind deferred");
            continue;
        }
        let priced = view
            .snapshot
            .mark_ticks_and_band(clock.unix_timestamp, clock.slot);
        let (mark_ticks, band) = match priced {
            Ok(priced) => priced,
            Err(e) => {
                tracing::debug!(market_index, %e, "no usable oracle price; unwind deferred");
                continue;
            }
        };
        let side = if base_lots > 0 {
            OrderSide::Ask
        } else {
            OrderSide::Bid
        };
        let Some(price) = unwind_limit(mark_ticks, side, slippage_bps) else {
            continue;
        };
        let (best_bid, best_ask) = view.best_prices_in(&band, clock.unix_timestamp);
        let reachable = match side {
            OrderSide::Ask => best_bid.is_some_and(|bid| bid.0 >= price),
            OrderSide::Bid => best_ask.is_some_and(|ask| ask.0 <= price),
        };
        if !reachable {
            tracing::debug!(
                market_index,
                price,
                "no order within the slippage; unwind deferred"
            );
            continue;
        }
        let args = PlaceOrderArgs {
            side,
            order_type: OrderType::Market,
            price,
            quantity: base_lots.unsigned_abs(),
            client_order_id: UNWIND_CLIENT_ORDER_ID,
            reduce_only: true,
            expiry: 0,
            self_trade: SelfTradeBehavior::CancelProvide,
        };
        let health = ix::health_accounts(&account, Some(market_index), &keeper.markets);
        let place = ix::place_order(
            &solana_sdk::signer::Signer::pubkey(&liquidator.authority),
            &liquidator.margin_account,
            market,
            args,
            health,
        );
        let what = format!("unwind {base_lots} lots in market {market_index}");
        let place = keeper.refreshed(chain, market, vec![place]).await?;
        if !keeper
            .send(chain, &what, &place, &[&liquidator.authority], report)
            .await?
        {
            continue;
        }
        account = chain
            .margin_account(&liquidator.margin_account)
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        keeper.metrics.observe_liquidator(&held_positions(&account));
        let after = account.position(market_index).map_or(0, |p| p.base_lots);
        if after != base_lots {
            tracing::info!(market_index, before = base_lots, after, price, "unwound");
            report.unwinds.push(Unwind {
                market_index,
                base_lots_before: base_lots,
                base_lots_after: after,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(value: &str) -> I80F48 {
        value.parse().unwrap()
    }

    #[test]
    fn the_limit_lies_within_the_slippage_rounded_towards_the_oracle() {
        // 15,000 ticks, 1%: sell no lower than 14,850, buy no higher than 15,150.
        let oracle = I80F48::from_num(15_000);
        assert_eq!(unwind_limit(oracle, OrderSide::Ask, 100), Some(14_850));
        assert_eq!(unwind_limit(oracle, OrderSide::Bid, 100), Some(15_150));
        // 1,234.5 ticks, 1%: 1,222.155 -> 1,223 (up), 1,246.845 -> 1,246 (down).
        let oracle = ticks("1234.5");
        assert_eq!(unwind_limit(oracle, OrderSide::Ask, 100), Some(1_223));
        assert_eq!(unwind_limit(oracle, OrderSide::Bid, 100), Some(1_246));
        // No slippage: the oracle itself, rounded inwards.
        assert_eq!(unwind_limit(oracle, OrderSide::Ask, 0), Some(1_235));
        assert_eq!(unwind_limit(oracle, OrderSide::Bid, 0), Some(1_234));
        // A price never falls below one tick; a slippage of 100% or more sells at any price.
        assert_eq!(unwind_limit(ticks("0.5"), OrderSide::Ask, 100), Some(1));
        assert_eq!(unwind_limit(oracle, OrderSide::Ask, 10_000), Some(1));
        assert_eq!(unwind_limit(oracle, OrderSide::Ask, 20_000), Some(1));
    }
}
