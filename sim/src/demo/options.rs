//! The demo's options part: SOL-W1, the week's series of European calls
//! and puts migrations/markets.toml lists on SOL (strikes 140, 150 and 160).
//! Erin, a market maker, quotes every series two per cent either side of
//! the program's own model value (the SDK's option chain prices it with the
//! program's code); bob buys the 150/160 call spread and the 140 put from
//! her, and his offer of 200 uncovered 160 calls is refused by the margin
//! check. SOL rallies from 145 to 158 (the report shows both traders'
//! greeks and model PnL before and after), the clock runs to the series'
//! settlement window, SOL trades at 162 through it, the keeper refreshing
//! SOL and its volatility and capturing the checkpoints every minute; at
//! expiry the keeper settles every position at its intrinsic value (the
//! 150 call in the money, the 160 call too, the put worthless), cancels
//! erin's quotes and closes the six markets. The section reconciles the
//! vault again.
use std::fmt::Write as _;

use fixed::types::I80F48;
use kestrel::engine::black_scholes::OptionSide;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::MarketStatus;
use kestrel_keeper::cranks::Keeper;
use kestrel_migrations::expiry::format_rfc3339;
use kestrel_sdk::client::Chain;
use kestrel_sdk::ix;
use kestrel_sdk::options::{account_greeks, option_chains, ExpiryChain, SeriesQuote};

use super::{format_units, write_reconciliation, Demo, UNIT};

/// Progress steps this part prints.
pub const STEPS: usize = 6;

/// SOL's path after the trades, one keeper cycle every ten minutes.
pub const RALLY: [i64; 3] = [150, 154, 158];
/// SOL through the settlement window.
pub const SETTLEMENT_SPOT: i64 = 162;
/// Lots (0.01 SOL) erin quotes on each side of every series.
const QUOTE_LOTS: u64 = 300;
/// Lots of each leg bob buys or sells: one SOL.
const TRADE_LOTS: u64 = 100;
/// Erin's quotes lie this far either side of the model value.
const QUOTE_SPREAD_BPS: i64 = 200;

/// What the options part ends with.
#[derive(Clone, Debug, Default)]
pub struct OptionsReport {
    pub text: String,
    /// The vault reconciled after the settlement, and no keeper refusal.
    pub conservation_held: bool,
    /// Bob's fills, as `SOL-W1-150C: +100 lots at 4.12`.
    pub trades: Vec<String>,
    /// The settlement price, USDC per SOL (6 decimals).
    pub settlement_price: String,
    /// The keeper's settlements, as `name: +lots in market N for value`,
    /// sorted.
    pub positions_settled: Vec<String>,
    /// The six markets' statuses at the end.
    pub statuses: Vec<Option<MarketStatus>>,
    pub refusals: Vec<String>,
    pub volatility_refreshes: u64,
    pub keeper_failures: Vec<String>,
    /// Bob's options PnL at settlement (settlement value + premiums), in
    /// collateral units.
    pub bob_settled_pnl: i128,
}

/// USDC per SOL (6 decimals) of a price in native quote per native base.
fn per_sol(price: I80F48, base_decimals: u8) -> String {
    let per_unit = price
        .checked_mul_int(10i128.pow(u32::from(base_decimals)))
        .expect("a price per SOL fits");
    format_units(per_unit.to_num::<i128>())
}

/// USDC per SOL in one native quote unit per native base unit (1,000 for
/// 6-decimal USDC and 9-decimal SOL): what turns a gamma per native price
/// into one per USDC.
fn price_per_native(base_decimals: u8) -> f64 {
    10f64.powi(i32::from(base_decimals)) / UNIT as f64
}

/// A series' name from its market account.
fn series_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .trim_end_matches('\0')
        .to_string()
}

/// Ticks (0.01 USDC per SOL here) as `1.23`.
fn ticks(t: u64) -> String {
    format!("{}.{:02}", t / 100, t % 100)
}

impl Demo {
    /// The option chains of every option market the demo lists, now.
    async fn chains(&mut self) -> Vec<ExpiryChain> {
        let mut views = Vec::new();
        for market in self.options.clone() {
            views.push(
                self.chain
                    .fetch_market(&market)
                    .await
                    .expect("option market"),
            );
        }
        let clock = Chain::clock(&mut self.chain).await.expect("clock");
        option_chains(&views, clock.unix_timestamp, clock.slot).expect("the series price")
    }

    /// `trader`'s greeks on SOL and the options' model PnL (model value of
    /// the option positions plus their entry quote), in collateral units.
    async fn option_book(&mut self, trader: usize, base_decimals: u8) -> (String, i128) {
        let address = self.traders[trader].margin_account;
        let account = self
            .chain
            .margin_account(&address)
            .await
            .expect("margin account");
        let mut snapshots = Vec::new();
        for market in self.markets() {
            snapshots.push(self.chain.market_snapshot(&market).await.expect("market"));
        }
        let clock = Chain::clock(&mut self.chain).await.expect("clock");
        let (now, slot) = (clock.unix_timestamp, clock.slot);
        let greeks = account_greeks(&account, &snapshots, now, slot).expect("greeks");
        let sol = greeks.first().map(|(_, g)| *g).unwrap_or_default();
        let chains = self.chains().await;
        let mut pnl: i128 = 0;
        for (_, position) in account.active_positions() {
            let Some(quote) = chains
                .iter()
                .flat_map(|c| c.series.iter())
                .find(|q| q.market_index == position.market_index)
            else {
                continue;
            };
            // Model ticks per lot × quote lot size × lots: native quote.
            let value =
                quote.model_ticks * I80F48::from_num(100) * I80F48::from_num(position.base_lots);
            pnl += value.to_num::<i128>() + i128::from(position.quote_native);
        }
        let sol_unit = 10f64.powi(i32::from(base_decimals));
        let line = format!(
            "delta {:+.2} SOL, gamma {:+.4} SOL per USDC, vega {} USDC per volatility point, theta {} USDC a day",
            sol.delta.to_num::<f64>() / sol_unit,
            // Lamports per (native quote per lamport): SOL per USDC of price.
            sol.gamma.to_num::<f64>() / sol_unit / price_per_native(base_decimals),
            format_units((sol.vega / 100).to_num::<i128>()),
            format_units((sol.theta / 365).to_num::<i128>()),
        );
        (line, pnl)
    }
}

/// The chain as a table, per SOL.
fn write_chain(text: &mut String, chain: &ExpiryChain, base_decimals: u8) {
    let _ = writeln!(
        text,
        "  {:<13} {:>8} {:>8} {:>9} {:>7} {:>8} {:>10} {:>11}",
        "series", "bid", "ask", "model", "delta", "gamma", "vega/pt", "theta/day"
    );
    for q in &chain.series {
        let v = &q.valuation;
        let side = match q.side {
            OptionSide::Call => " call",
            OptionSide::Put => " put",
        };
        let unit = 10i128.pow(u32::from(base_decimals));
        let _ = writeln!(
            text,
            "  {:<13} {:>8} {:>8} {:>9} {:>+7.3} {:>8.5} {:>10} {:>11}",
            format!(
                "{}{side}",
                (q.strike * I80F48::from_num(price_per_native(base_decimals))).round()
            ),
            q.best_bid.map_or("-".into(), |t| ticks(t.0)),
            q.best_ask.map_or("-".into(), |t| ticks(t.0)),
            format!("{:.4}", q.model_ticks.to_num::<f64>() / 100.0),
            v.delta.to_num::<f64>(),
            // Delta per USDC of SOL's price.
            v.gamma.to_num::<f64>() / price_per_native(base_decimals),
            format_units((v.vega * I80F48::from_num(unit) / 100).to_num::<i128>()),
            format_units((v.theta * I80F48::from_num(unit) / 365).to_num::<i128>()),
        );
    }
}

/// The series of `side` struck at `strike_usdc` USDC per SOL.
fn quote_of(
    chain: &[ExpiryChain],
    strike_usdc: i64,
    side: OptionSide,
    base_decimals: u8,
) -> SeriesQuote {
    // A strike is stored in native quote per native base (0.15 for 150):
    // binary, so compared rounded to the whole USDC.
    let per_native = I80F48::from_num(price_per_native(base_decimals));
    chain
        .iter()
        .flat_map(|c| c.series.iter())
        .find(|q| q.side == side && (q.strike * per_native).round() == strike_usdc)
        .copied()
        .expect("the series is listed")
}

pub(super) async fn run(demo: &mut Demo) -> OptionsReport {
    let refusals_before = demo.refusals.len();
    let indices: Vec<u16> = demo
        .config
        .series_indices()
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    let underlying = demo.config.underlyings[0].clone();
    let base_decimals = underlying.base_decimals;
    let (primary, fallback) = underlying.oracle_accounts().expect("validated");
    for index in indices {
        let accounts = demo
            .chain
            .market_accounts(index, primary, fallback)
            .await
            .expect("the series is listed");
        demo.options.push(accounts);
    }
    let keeper: Keeper = demo.keeper();
    let bob = 1;
    let erin = demo.join("erin", 20_000 * UNIT, 20_000 * UNIT).await;

    // SOL is at 145 after the future's story; the keeper's next cycle
    // refreshes it and the implied volatility (80 %).
    demo.advance_and_publish(60, 145).await;
    demo.keeper_cycle(&keeper).await;
    let first = demo.options[0];
    let state = demo.chain.market(&first.market).await.expect("option");
    let expiry = state.future.params.expiry;
    let window_start = state.future.params.window_start();
    let window = i64::from(state.future.params.settlement_window_seconds);
    let now = demo.chain.clock().await.unix_timestamp;
    let chains = demo.chains().await;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\nOptions SOL-W1 (markets {}..={}, on SOL), expiring {} ({:.1} days after the quotes)",
        demo.options[0].market_index,
        demo.options[demo.options.len() - 1].market_index,
        format_rfc3339(expiry),
        (expiry - now) as f64 / 86_400.0
    );
    let _ = writeln!(
        text,
        "Chain at SOL 145.00, volatility 80 %, before quoting (USDC per SOL)"
    );
    write_chain(&mut text, &chains[0], base_decimals);
    demo.progress(
        "SOL-W1: the SDK prices the week's calls and puts at 140, 150 and 160 with the program's Black-Scholes (SOL 145.00, volatility 80 %)",
    );

    // Erin quotes every series 2 % either side of the model.
    for quote in &chains[0].series {
        let model = quote.model_ticks;
        let spread = I80F48::from_num(QUOTE_SPREAD_BPS) / 10_000;
        let bid = (model * (I80F48::ONE - spread))
            .floor()
            .to_num::<u64>()
            .max(1);
        let ask = (model * (I80F48::ONE + spread)).ceil().to_num::<u64>();
        let market = demo
            .options
            .iter()
            .copied()
            .find(|m| m.market_index == quote.market_index)
            .expect("listed");
        demo.place_in(
            market,
            erin,
            OrderSide::Bid,
            OrderType::PostOnly,
            bid,
            QUOTE_LOTS,
        )
        .await;
        demo.place_in(
            market,
            erin,
            OrderSide::Ask,
            OrderType::PostOnly,
            ask,
            QUOTE_LOTS,
        )
        .await;
    }
    demo.progress("erin quotes 3 SOL of every series 2 % either side of the model value");

    // Bob's call spread (buy the 150 call, sell the 160) and a 140 put.
    let chains = demo.chains().await;
    let legs = [
        (150, OptionSide::Call, OrderSide::Bid),
        (160, OptionSide::Call, OrderSide::Ask),
        (140, OptionSide::Put, OrderSide::Bid),
    ];
    let mut trades = Vec::new();
    for (strike, side, order_side) in legs {
        let quote = quote_of(&chains, strike, side, base_decimals);
        let price = match order_side {
            OrderSide::Bid => quote.best_ask,
            OrderSide::Ask => quote.best_bid,
        }
        .expect("erin quotes it")
        .0;
        let market = demo
            .options
            .iter()
            .copied()
            .find(|m| m.market_index == quote.market_index)
            .expect("listed");
        demo.place_in(
            market,
            bob,
            order_side,
            OrderType::ImmediateOrCancel,
            price,
            TRADE_LOTS,
        )
        .await;
        let name = series_name(
            &demo
                .chain
                .market(&market.market)
                .await
                .expect("option")
                .name,
        );
        let sign = if order_side == OrderSide::Bid {
            '+'
        } else {
            '-'
        };
        trades.push(format!(
            "{name}: {sign}{TRADE_LOTS} lots at {}",
            ticks(price)
        ));
    }
    demo.progress(
        "bob buys the 150/160 call spread and the 140 put from erin, one SOL each, at her quotes",
    );
    // Uncovered: 200 SOL of 160 calls would need about 3,300 of margin.
    let uncovered = quote_of(&chains, 160, OptionSide::Call, base_decimals);
    let market = demo
        .options
        .iter()
        .copied()
        .find(|m| m.market_index == uncovered.market_index)
        .expect("listed");
    let offer = uncovered.best_ask.expect("erin's ask").0 + 5;
    let args = ix::order_args(OrderSide::Ask, OrderType::PostOnly, offer, 20_000, 0);
    let place = demo.place_ix(market, bob, args).await;
    let bob_key = demo.traders[bob].key.insecure_clone();
    demo.expect_all_refused(
        "bob offers 200 SOL of uncovered 160 calls",
        &place,
        &bob_key,
    )
    .await;

    // The keeper settles erin's side of the fills.
    demo.advance_and_publish(60, 145).await;
    demo.keeper_cycle(&keeper).await;
    let _ = writeln!(text, "Trades     bob {}", trades.join(", "));
    let (bob_greeks, bob_pnl) = demo.option_book(bob, base_decimals).await;
    let (erin_greeks, erin_pnl) = demo.option_book(erin, base_decimals).await;
    let _ = writeln!(
        text,
        "At SOL 145.00 (bob's SOL-PERP long counts in his delta)\n  bob      {bob_greeks}; options' model PnL {}\n  erin     {erin_greeks}; options' model PnL {}",
        format_units(bob_pnl),
        format_units(erin_pnl)
    );

    demo.progress("SOL rallies to 158.00 over half an hour, the keeper cycling every 10 minutes");
    for price in RALLY {
        demo.advance_and_publish(600, price).await;
        demo.keeper_cycle(&keeper).await;
    }
    let (bob_greeks, bob_pnl) = demo.option_book(bob, base_decimals).await;
    let (erin_greeks, erin_pnl) = demo.option_book(erin, base_decimals).await;
    let _ = writeln!(
        text,
        "At SOL 158.00\n  bob      {bob_greeks}; options' model PnL {}\n  erin     {erin_greeks}; options' model PnL {}",
        format_units(bob_pnl),
        format_units(erin_pnl)
    );
    let _ = writeln!(text, "Chain at SOL 158.00 (erin's quotes stale)");
    write_chain(&mut text, &demo.chains().await[0], base_decimals);

    demo.progress(&format!(
        "the clock runs to SOL-W1's settlement window; SOL at {SETTLEMENT_SPOT}.00 through it, the keeper refreshing SOL and its volatility and capturing checkpoints every minute"
    ));
    let now = demo.chain.clock().await.unix_timestamp;
    demo.advance_and_publish(window_start - now, SETTLEMENT_SPOT)
        .await;
    demo.keeper_cycle(&keeper).await;
    for _ in 1..window / 60 {
        demo.advance_and_publish(60, SETTLEMENT_SPOT).await;
        demo.keeper_cycle(&keeper).await;
    }

    // A minute after expiry the keeper settles every position.
    let mut before = Vec::new();
    for (i, trader) in demo.traders.iter().enumerate() {
        let Ok(account) = demo.chain.margin_account(&trader.margin_account).await else {
            continue;
        };
        let held: Vec<_> = account
            .active_positions()
            .filter(|(_, p)| {
                demo.options
                    .iter()
                    .any(|m| m.market_index == p.market_index)
            })
            .map(|(_, p)| *p)
            .collect();
        let orders = account
            .active_orders()
            .filter(|(_, o)| {
                demo.options
                    .iter()
                    .any(|m| m.market_index == o.market_index)
            })
            .count();
        if !held.is_empty() || orders > 0 {
            before.push((i, held, account.collateral, orders));
        }
    }
    let now = demo.chain.clock().await.unix_timestamp;
    demo.advance_and_publish(expiry + 60 - now, SETTLEMENT_SPOT)
        .await;
    let report = demo.keeper_cycle(&keeper).await;
    demo.progress(
        "SOL-W1 expires: the keeper fixes the settlement price, settles every position at its intrinsic value, cancels erin's quotes and closes the six markets",
    );
    demo.advance_and_publish(120, SETTLEMENT_SPOT).await;
    let quiet = demo.keeper_cycle(&keeper).await;

    let state = demo.chain.market(&first.market).await.expect("option");
    let price = state.settlement_price().expect("settled");
    let _ = writeln!(
        text,
        "Settlement {} USDC per SOL, the average of SOL's accepted price over the last {} minutes",
        per_sol(price, base_decimals),
        window / 60
    );
    let mut bob_settled_pnl = 0;
    for (i, held, collateral, orders) in &before {
        let trader = &demo.traders[*i];
        let after = demo
            .chain
            .margin_account(&trader.margin_account)
            .await
            .expect("margin account");
        let mut legs = Vec::new();
        let mut pnl: i128 = 0;
        // Erin's quoted series she never traded hold no lots.
        for position in held.iter().filter(|p| p.base_lots != 0) {
            let value = report
                .positions_settled
                .iter()
                .find(|p| {
                    p.account == trader.margin_account && p.market_index == position.market_index
                })
                .map_or(0, |p| p.value_native);
            let address = demo
                .options
                .iter()
                .find(|m| m.market_index == position.market_index)
                .expect("an option position")
                .market;
            let name = series_name(&demo.chain.market(&address).await.expect("option").name);
            pnl += i128::from(value) + i128::from(position.quote_native);
            legs.push(format!(
                "{name} {:+} lots for {} (premium {})",
                position.base_lots,
                format_units(value.into()),
                format_units(position.quote_native.into())
            ));
        }
        if *i == bob {
            bob_settled_pnl = pnl;
        }
        let _ = writeln!(
            text,
            "  {:<8} {}; PnL {}, {orders} orders cancelled; collateral {} -> {}",
            trader.name,
            if legs.is_empty() {
                "no positions".to_string()
            } else {
                legs.join(", ")
            },
            format_units(pnl),
            format_units((*collateral).into()),
            format_units(after.collateral.into()),
        );
    }
    let mut statuses = Vec::new();
    let mut open_interest = 0;
    let mut resting = 0;
    for market in demo.options.clone() {
        let state = demo.chain.market(&market.market).await.expect("option");
        statuses.push(state.status().ok());
        open_interest += state.long_lots + state.short_lots;
        let view = demo.chain.fetch_market(&market).await.expect("option");
        resting += view.bids.orders.len() + view.asks.orders.len();
    }
    let all_closed = statuses.iter().all(|s| *s == Some(MarketStatus::Closed));
    let _ = writeln!(
        text,
        "Status     {}: open interest {open_interest}, {resting} orders on the books; a cycle later {} settlement transactions",
        if all_closed { "all six Closed" } else { "NOT all closed" },
        quiet.settlement_samples + quiet.positions_settled.len() as u64
    );
    let refusals: Vec<String> = demo.refusals[refusals_before..].to_vec();
    let _ = writeln!(text, "Refused    {}", refusals.join("; "));
    let k = &demo.keeper;
    let _ = writeln!(
        text,
        "Keeper     {} cycles, {} events consumed, {} volatility refreshes, {} settlement captures, {} positions settled, {} races, {} refusals",
        k.cycles,
        k.events_consumed,
        k.volatility_refreshes,
        k.settlement_samples,
        k.positions_settled.len(),
        k.races,
        k.failures.len()
    );
    let failures = k.failures.clone();
    let audit = demo.audit().await;
    let held = audit.holds() && failures.is_empty();
    write_reconciliation(&mut text, &audit, held);
    let k = &demo.keeper;
    OptionsReport {
        text,
        conservation_held: held,
        trades,
        settlement_price: per_sol(price, base_decimals),
        positions_settled: {
            let mut settled = k.positions_settled.clone();
            settled.sort();
            settled
        },
        statuses,
        refusals,
        volatility_refreshes: k.volatility_refreshes,
        keeper_failures: failures,
        bob_settled_pnl,
    }
}
