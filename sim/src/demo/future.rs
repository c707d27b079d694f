//! The demo's last part: SOL-FUT, the dated future migrations/markets.toml
//! lists on SOL beside the perpetual. Alice sells it to bob above SOL's
//! price and quotes around it, so the keeper samples a premium into its
//! basis on the funding schedule; the clock then runs through the
//! settlement window a minute at a time, SOL climbing, the keeper
//! refreshing SOL and capturing the settlement checkpoints every minute
//! but for five minutes it is down on purpose (those minutes count SOL's
//! last price for its maximum age, then nothing); the future expires, an
//! order is refused, and the keeper fixes the settlement price (the
//! average over the covered part of the window) and settles both positions
//! in cash, cancelling alice's quotes, which closes the market. A cycle
//! later nothing is left to do there. The section reports the settlement
//! and reconciles the vault again.
use std::fmt::Write as _;

use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::MarketStatus;
use kestrel_keeper::cranks::Keeper;
use kestrel_migrations::expiry::format_rfc3339;
use kestrel_migrations::Expiry;
use kestrel_sdk::client::Chain;

use super::{format_units, write_reconciliation, Demo};

/// Progress steps this part prints.
pub const STEPS: usize = 5;

/// SOL's price in whole USDC at minute `minute` of the settlement window
/// (0..30): 140 climbing to 144, a dollar every six minutes.
pub fn window_price(minute: i64) -> i64 {
    140 + minute / 6
}

/// The minutes of the window the keeper is down on purpose: SOL's price is
/// published but not refreshed, so the minute before counts its 60-second
/// maximum age and these count nothing.
pub const MISSED: core::ops::Range<i64> = 15..20;

/// Alice sells bob this many lots (0.01 SOL) of the future at 139.00.
const LOTS: u64 = 200;

/// What the future's part ends with.
#[derive(Clone, Debug, Default)]
pub struct FutureReport {
    pub text: String,
    /// The vault reconciled after the settlement, and no keeper refusal.
    pub conservation_held: bool,
    /// Seconds from listing to expiry (`expiry_in_seconds`).
    pub expiry_after_listing: i64,
    /// Seconds of the window the settlement average covers.
    pub covered_seconds: i64,
    /// The settlement price, USDC per SOL (6 decimals).
    pub settlement_price: String,
    /// The average of the minutes refreshed, as computed here.
    pub expected_price: String,
    /// What it would have been had the keeper not been down.
    pub price_without_the_miss: String,
    /// The keeper's settlements, as `name: +lots in market N for value`.
    pub positions_settled: Vec<String>,
    /// Orders the settlement cancelled (alice's quotes).
    pub orders_cancelled: usize,
    /// The market's status at the end (`None` before the part runs).
    pub status: Option<MarketStatus>,
    pub refusals: Vec<String>,
    pub basis_updates: u64,
    pub settlement_samples: u64,
    pub keeper_failures: Vec<String>,
}

/// USDC per SOL (6 decimals) of a price in native quote per native base.
fn per_sol(price: fixed::types::I80F48, base_decimals: u8) -> String {
    let per_unit = price
        .checked_mul_int(10i128.pow(u32::from(base_decimals)))
        .expect("a price per SOL fits");
    format_units(per_unit.to_num::<i128>())
}

/// The average of [`window_price`] over the window's `minutes`, skipping
/// `missed` ones, in USDC per SOL: each refreshed minute's price covers
/// that minute (a minute is the maximum age), a missed one nothing.
fn average_of_the_path(minutes: i64, missed: core::ops::Range<i64>) -> String {
    let covered: Vec<i64> = (0..minutes).filter(|m| !missed.contains(m)).collect();
    let total: i128 = covered
        .iter()
        .map(|m| i128::from(window_price(*m)) * 1_000_000)
        .sum();
    format_units(total / covered.len() as i128)
}

pub(super) async fn run(demo: &mut Demo, keeper: &Keeper) -> FutureReport {
    let future = demo.future.expect("the future is listed");
    let (alice, bob) = (0, 1);
    let refusals_before = demo.refusals.len();
    let entry = demo
        .config
        .markets
        .iter()
        .find(|m| m.index == future.market_index)
        .expect("the future's entry")
        .clone();
    let base_decimals = demo
        .config
        .underlying_of(&entry)
        .expect("validated")
        .base_decimals;
    let listed_after = match entry.future().expect("validated").expect("a future").expiry {
        Expiry::AfterListing(seconds) => i64::from(seconds),
        Expiry::At(_) => panic!("the demo's future expires relative to its listing"),
    };
    let state = demo.chain.market(&future.market).await.expect("the future");
    let params = state.future.params;
    let (expiry, window_start) = (params.expiry, params.window_start());
    let window = i64::from(params.settlement_window_seconds);

    // SOL is at 138 after the perpetual's story: the future trades a dollar over.
    demo.place_in(
        future,
        alice,
        OrderSide::Ask,
        OrderType::Limit,
        13_900,
        LOTS,
    )
    .await;
    demo.place_in(
        future,
        bob,
        OrderSide::Bid,
        OrderType::ImmediateOrCancel,
        13_900,
        LOTS,
    )
    .await;
    demo.place_in(
        future,
        alice,
        OrderSide::Bid,
        OrderType::PostOnly,
        13_850,
        50,
    )
    .await;
    demo.place_in(
        future,
        alice,
        OrderSide::Ask,
        OrderType::PostOnly,
        13_950,
        50,
    )
    .await;
    demo.progress(
        "SOL-FUT: alice sells bob 2 SOL at 139.00, a dollar over SOL, and quotes 138.50 / 139.50",
    );

    // Up to the window, the keeper cycling on the funding schedule.
    demo.progress(
        "the keeper cranks the fill and samples the book's premium into the future's basis every 10 minutes (a premium counts once it stands from one sample to the next)",
    );
    for before_window in [1_800, 600] {
        let price = 138;
        let now = demo.chain.clock().await.unix_timestamp;
        assert!(
            window_start - before_window > now,
            "the perpetual's story outlasted the future's run-up: list it with a later expiry"
        );
        demo.advance_and_publish(window_start - before_window - now, price)
            .await;
        let report = demo.keeper_cycle(keeper).await;
        let basis = demo
            .chain
            .market(&future.market)
            .await
            .expect("the future")
            .future
            .basis();
        println!(
            "      {:>2} min before the window  SOL {price}.00  keeper: events consumed {}, basis updates {}; basis now {} USDC per SOL",
            before_window / 60,
            report.events_consumed,
            report.basis_updates,
            per_sol(basis.basis(), base_decimals)
        );
    }

    demo.progress(
        "the settlement window (the last 30 minutes): SOL climbs from 140 to 144; the keeper refreshes SOL and captures the settlement checkpoints every minute, but is down for five minutes on purpose",
    );
    let minutes = window / 60;
    for minute in 0..minutes {
        let price = window_price(minute);
        let now = demo.chain.clock().await.unix_timestamp;
        demo.advance_and_publish(window_start + minute * 60 - now, price)
            .await;
        let to_expiry = minutes - minute;
        if MISSED.contains(&minute) {
            if minute == MISSED.start {
                println!(
                    "      {to_expiry:>2} min to expiry  SOL {price}.00  the keeper is down for {} minutes (on purpose): SOL is not refreshed",
                    MISSED.end - MISSED.start
                );
            }
            continue;
        }
        let report = demo.keeper_cycle(keeper).await;
        if minute % 5 == 0 {
            let capture = demo
                .chain
                .market(&future.market)
                .await
                .expect("the future")
                .future
                .settlement();
            println!(
                "      {to_expiry:>2} min to expiry  SOL {price}.00  keeper: underlyings refreshed {}, checkpoints captured {}; the average covers {} s so far",
                report.underlying_refreshes,
                report.settlement_samples,
                capture.covered_seconds()
            );
        }
    }

    // A minute after expiry: trading has stopped; the keeper settles.
    let now = demo.chain.clock().await.unix_timestamp;
    let last = window_price(window / 60);
    demo.advance_and_publish(expiry + 60 - now, last).await;
    demo.progress(
        "SOL-FUT expires: trading stops; the keeper fixes its settlement price and settles alice and bob in cash, cancelling alice's quotes, and the market closes",
    );
    let late = ix_args(OrderSide::Bid, 14_500);
    let place = demo.place_ix(future, bob, late).await;
    let bob_key = demo.traders[bob].key.insecure_clone();
    demo.expect_all_refused("bob bids for SOL-FUT after its expiry", &place, &bob_key)
        .await;
    let mut before = Vec::new();
    for (i, trader) in demo.traders.iter().enumerate() {
        let Ok(account) = demo.chain.margin_account(&trader.margin_account).await else {
            continue;
        };
        if let Some(position) = account.position(future.market_index) {
            let orders = account
                .active_orders()
                .filter(|(_, o)| o.market_index == future.market_index)
                .count();
            before.push((i, *position, account.collateral, orders));
        }
    }
    let report = demo.keeper_cycle(keeper).await;
    for (i, _, _, _) in &before {
        let trader = &demo.traders[*i];
        if let Some(p) = report
            .positions_settled
            .iter()
            .find(|p| p.account == trader.margin_account)
        {
            println!(
                "      keeper settles {}: {:+} lots for {}",
                trader.name,
                p.base_lots,
                format_units(p.value_native.into())
            );
        }
    }

    // Nothing is left to do in the closed market; no crank trips on it.
    demo.advance_and_publish(120, last).await;
    let quiet = demo.keeper_cycle(keeper).await;
    demo.progress(&format!(
        "a cycle later: {} settlement transactions, {} refusals (the closed market is left alone)",
        quiet.settlement_samples + quiet.positions_settled.len() as u64 + quiet.basis_updates,
        quiet.failures.len()
    ));

    let state = demo.chain.market(&future.market).await.expect("the future");
    let price = state.settlement_price().expect("settled");
    let covered_seconds = state.future.settlement().covered_seconds();
    let mut text = String::new();
    let name = String::from_utf8_lossy(&state.name)
        .trim_end_matches('\0')
        .to_string();
    let _ = writeln!(
        text,
        "\nDated future {name} (market {}, on SOL)",
        future.market_index
    );
    let _ = writeln!(
        text,
        "Expiry     {} (unix {expiry}), {} h after listing",
        format_rfc3339(expiry),
        listed_after / 3_600
    );
    let _ = writeln!(
        text,
        "Trade      bob bought {LOTS} lots from alice at 139.00 with SOL at 138.00; {} basis updates by the keeper before expiry",
        demo.keeper.basis_updates
    );
    let _ = writeln!(
        text,
        "Window     the last {} minutes, SOL refreshed every minute but for {} to {} minutes before expiry (the keeper down on purpose: those minutes are not covered); the average covers {covered_seconds} of {window} s",
        window / 60,
        window / 60 - MISSED.start,
        window / 60 - MISSED.end,
    );
    let _ = writeln!(
        text,
        "Settlement {} USDC per SOL, the average of SOL's accepted price over the covered minutes ({} had the keeper not been down)",
        per_sol(price, base_decimals),
        average_of_the_path(window / 60, 0..0)
    );
    let mut orders_cancelled = 0;
    for (i, position, collateral, orders) in &before {
        let trader = &demo.traders[*i];
        let after = demo
            .chain
            .margin_account(&trader.margin_account)
            .await
            .expect("margin account");
        let settled = report
            .positions_settled
            .iter()
            .find(|p| p.account == trader.margin_account);
        let value = settled.map_or(0, |p| p.value_native);
        // The entry quote is what the position cost (negative for a long).
        let pnl = i128::from(value) + i128::from(position.quote_native);
        orders_cancelled += orders;
        let closed = if after.position(future.market_index).is_none() {
            "position closed"
        } else {
            "position still open"
        };
        let _ = writeln!(
            text,
            "  {:<8} {:+} lots settled for {} (entry quote {}: PnL {}), {orders} orders cancelled, {closed}; collateral {} -> {}",
            trader.name,
            position.base_lots,
            format_units(value.into()),
            format_units(position.quote_native.into()),
            format_units(pnl),
            format_units((*collateral).into()),
            format_units(after.collateral.into()),
        );
    }
    let _ = writeln!(
        text,
        "Status     {:?}: open interest {} long / {} short, {} orders on the book",
        state
            .status()
            .expect("the program stores known statuses only"),
        state.long_lots,
        state.short_lots,
        demo.chain
            .fetch_market(&future)
            .await
            .map(|v| v.bids.orders.len() + v.asks.orders.len())
            .unwrap_or(0)
    );
    let refusals: Vec<String> = demo.refusals[refusals_before..].to_vec();
    let _ = writeln!(text, "Refused    {}", refusals.join("; "));
    let k = &demo.keeper;
    let _ = writeln!(
        text,
        "Keeper     {} cycles, {} events consumed, {} basis updates, {} settlement captures, {} positions settled, {} funding updates (SOL-PERP), {} races, {} refusals",
        k.cycles,
        k.events_consumed,
        k.basis_updates,
        k.settlement_samples,
        k.positions_settled.len(),
        k.funding_updates,
        k.races,
        k.failures.len()
    );
    let failures_none = k.failures.is_empty();
    let audit = demo.audit().await;
    let k = &demo.keeper;
    let held = audit.holds() && failures_none;
    write_reconciliation(&mut text, &audit, held);
    FutureReport {
        text,
        conservation_held: held,
        expiry_after_listing: listed_after,
        covered_seconds,
        settlement_price: per_sol(price, base_decimals),
        expected_price: average_of_the_path(window / 60, MISSED),
        price_without_the_miss: average_of_the_path(window / 60, 0..0),
        positions_settled: {
            // In the order of the traders' names, not of the keeper's scan.
            let mut settled = k.positions_settled.clone();
            settled.sort();
            settled
        },
        orders_cancelled,
        status: state.status().ok(),
        refusals,
        basis_updates: k.basis_updates,
        settlement_samples: k.settlement_samples,
        keeper_failures: k.failures.clone(),
    }
}

/// A one-lot limit order at `price` ticks.
fn ix_args(side: OrderSide, price: u64) -> kestrel::instructions::PlaceOrderArgs {
    kestrel_sdk::ix::order_args(side, OrderType::Limit, price, 1, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_s_average_counts_the_covered_minutes() {
        // 140 .. 144, six minutes each: 142.00.
        assert_eq!(average_of_the_path(30, 0..0), "142.000000");
        // Without minutes 15-19: (6·140 + 6·141 + 3·142 + 4·143 + 6·144) / 25.
        assert_eq!(average_of_the_path(30, MISSED), "141.920000");
    }
}
