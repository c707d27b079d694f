//! The demo's second half: the insurance fund, a leveraged long, funding
//! from a book quoted above the oracle, an oracle path down to where the
//! long is liquidatable, with the keeper's crankers cycling after every step,
//! and the keeper unwinding what its liquidator took over once the book
//! quotes around the new price.
use kestrel::engine::event_queue::Event;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_keeper::cranks::{CycleReport, Keeper, Liquidator};
use kestrel_sdk::client::Chain;
use kestrel_sdk::health::{self, Health};
use kestrel_sdk::{ix, pda};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

use super::{format_units, publish_oracle_price, Demo, Trader, UNIT};

/// Where the oracle goes, in whole USDC per SOL, one step per keeper cycle.
pub const ORACLE_PATH: [i64; 6] = [150, 147, 144, 141, 138, 138];
/// Seconds between oracle steps.
const STEP_SECONDS: i64 = 120;

/// What the keeper did over the demo.
#[derive(Default)]
pub struct KeeperTally {
    pub cycles: usize,
    pub underlying_refreshes: u64,
    /// Fills cranked before the keeper started (the walk-through's own crank).
    pub fills_before: u64,
    pub fills_seen: u64,
    pub events_consumed: u64,
    pub funding_updates: u64,
    pub basis_updates: u64,
    pub settlement_samples: u64,
    pub volatility_refreshes: u64,
    /// As `name: lots in market N for value`.
    pub positions_settled: Vec<String>,
    /// Markets whose settlement price the keeper fixed, and those it closed.
    pub markets_settled: Vec<u16>,
    pub markets_closed: Vec<u16>,
    pub liquidations: Vec<String>,
    pub unwinds: Vec<String>,
    pub bankruptcies: usize,
    pub races: u64,
    pub failures: Vec<String>,
}

impl KeeperTally {
    fn add(&mut self, report: &CycleReport, names: &dyn Fn(&kestrel_sdk::Pubkey) -> String) {
        self.cycles += 1;
        self.underlying_refreshes += report.underlying_refreshes;
        self.events_consumed += report.events_consumed;
        self.funding_updates += report.funding_updates;
        self.basis_updates += report.basis_updates;
        self.settlement_samples += report.settlement_samples;
        self.volatility_refreshes += report.volatility_refreshes;
        self.markets_settled.extend(&report.markets_settled);
        self.markets_closed.extend(&report.markets_closed);
        for p in &report.positions_settled {
            self.positions_settled.push(format!(
                "{}: {:+} lots in market {} for {}",
                names(&p.account),
                p.base_lots,
                p.market_index,
                format_units(p.value_native.into())
            ));
        }
        self.races += report.races;
        self.bankruptcies += report.bankruptcies_settled.len();
        self.failures.extend(report.failures.iter().cloned());
        for l in &report.liquidations {
            self.liquidations.push(format!(
                "{}: {:+} -> {:+} lots in market {}",
                names(&l.account),
                l.base_lots_before,
                l.base_lots_after,
                l.market_index
            ));
        }
        for u in &report.unwinds {
            self.unwinds.push(format!(
                "{:+} -> {:+} lots in market {}",
                u.base_lots_before, u.base_lots_after, u.market_index
            ));
        }
    }
}

impl Demo {
    /// A new trader with `wallet` in their token account and `deposit` of it
    /// in margin account 0.
    pub(super) async fn join(&mut self, name: &'static str, wallet: u64, deposit: u64) -> usize {
        let key = Keypair::new();
        self.chain.fund(&key.pubkey(), 1_000_000_000).await;
        let token_account = self
            .chain
            .create_token_account(&self.mint, &key.pubkey())
            .await;
        self.chain
            .mint_to(&self.mint, &self.mint_authority, &token_account, wallet)
            .await;
        let margin_account = pda::margin_account(&pda::exchange(), &key.pubkey(), 0);
        let open = ix::create_margin_account(&key.pubkey(), 0, None);
        self.expect_ok("create_margin_account", open, &key).await;
        let put = ix::deposit(&key.pubkey(), &margin_account, &token_account, deposit);
        self.expect_ok("deposit", put, &key).await;
        self.traders.push(Trader {
            name,
            key,
            wallet: token_account,
            margin_account,
        });
        self.traders.len() - 1
    }

    async fn place(
        &mut self,
        trader: usize,
        side: OrderSide,
        kind: OrderType,
        price: u64,
        lots: u64,
    ) {
        let market = self.market.expect("the market is set up");
        self.place_in(market, trader, side, kind, price, lots).await;
    }

    /// The instruction placing `trader`'s order in `market` (health accounts
    /// for every market the demo trades).
    pub(super) async fn place_ix(
        &mut self,
        market: ix::MarketAccounts,
        trader: usize,
        args: kestrel::instructions::PlaceOrderArgs,
    ) -> Vec<solana_sdk::instruction::Instruction> {
        let t = &self.traders[trader];
        let key = t.key.pubkey();
        let margin_account = t.margin_account;
        let account = self
            .chain
            .margin_account(&margin_account)
            .await
            .expect("margin account");
        let health = ix::health_accounts(&account, Some(market.market_index), &self.markets());
        let place = ix::place_order(&key, &margin_account, &market, args, health);
        // The underlying's stored price first, should it be about to lapse.
        self.chain
            .refreshed(&market, vec![place])
            .await
            .expect("the market's underlying")
    }

    pub(super) async fn place_in(
        &mut self,
        market: ix::MarketAccounts,
        trader: usize,
        side: OrderSide,
        kind: OrderType,
        price: u64,
        lots: u64,
    ) {
        let args = ix::order_args(side, kind, price, lots, 0);
        let place = self.place_ix(market, trader, args).await;
        let key = self.traders[trader].key.insecure_clone();
        self.expect_all_ok("place_order", &place, &key).await;
    }

    /// Fills waiting in the markets' queues (the keeper is about to consume
    /// them).
    pub(super) async fn pending_fills(&mut self) -> u64 {
        let mut fills = 0;
        for market in self.markets() {
            let view = self.chain.fetch_market(&market).await.expect("market");
            fills += view
                .events
                .iter()
                .filter(|e| matches!(e.decode(), Some(Event::Fill(_))))
                .count() as u64;
        }
        fills
    }

    /// The keeper, configured with every market the demo trades so far,
    /// liquidating with the margin account of the trader named "keeper".
    pub(super) fn keeper(&self) -> Keeper {
        let operator = self
            .traders
            .iter()
            .find(|t| t.name == "keeper")
            .expect("the keeper's operator has joined");
        let mut keeper = Keeper::new(
            self.markets(),
            Some(Liquidator {
                authority: operator.key.insecure_clone(),
                margin_account: operator.margin_account,
                unwind_slippage_bps: Some(100),
            }),
        );
        keeper.funding_interval_seconds = 600;
        // The table migrations/markets.toml asked for: the keeper sends v0.
        keeper.lookup_table = self.config.lookup_table_address().ok().flatten();
        keeper
    }

    pub(super) async fn keeper_cycle(&mut self, keeper: &Keeper) -> CycleReport {
        let fills = self.pending_fills().await;
        let report = keeper
            .run_cycle(&mut self.chain)
            .await
            .expect("the local chain answers");
        let names: Vec<_> = self
            .traders
            .iter()
            .map(|t| (t.margin_account, t.name))
            .collect();
        let name = |key: &kestrel_sdk::Pubkey| {
            names
                .iter()
                .find(|(k, _)| k == key)
                .map_or_else(|| key.to_string(), |(_, n)| n.to_string())
        };
        self.keeper.fills_seen += fills;
        self.keeper.add(&report, &name);
        report
    }

    async fn health_of(&mut self, trader: usize) -> Health {
        let market = self.market.expect("the market is set up");
        let address = self.traders[trader].margin_account;
        let account = self
            .chain
            .margin_account(&address)
            .await
            .expect("margin account");
        let mut snapshots = vec![self.chain.market_snapshot(&market).await.expect("market")];
        if let Some(future) = self.future {
            snapshots.push(self.chain.market_snapshot(&future).await.expect("future"));
        }
        let clock = Chain::clock(&mut self.chain).await.expect("clock");
        // At the price the program would read now: the stored one, or the
        // feeds' newest where it has lapsed.
        health::preview(&account, &snapshots, clock.unix_timestamp, clock.slot)
            .expect("health of a trader in a configured market")
    }

    /// Moves the clock and publishes `price` on both feeds; the markets see
    /// it once the underlying is refreshed (the keeper's next cycle does).
    pub(super) async fn advance_and_publish(&mut self, seconds: i64, price: i64) {
        self.chain.advance_clock(seconds).await;
        let now = self.chain.clock().await.unix_timestamp;
        publish_oracle_price(&mut self.chain, &self.config, now, price);
    }
}

/// The perpetual's story; returns the keeper (configured with every market,
/// the future's too) for the future's.
pub(super) async fn run(demo: &mut Demo) -> Keeper {
    let market = demo.market.expect("the market is set up");
    let (alice, bob) = (0, 1);

    let stake = {
        let a = &demo.traders[alice];
        ix::stake(&a.key.pubkey(), &a.margin_account, &a.wallet, 500 * UNIT)
    };
    let alice_key = demo.traders[alice].key.insecure_clone();
    demo.expect_ok("stake", stake, &alice_key).await;
    demo.join("keeper", 5_000 * UNIT, 5_000 * UNIT).await;
    let dave = demo.join("dave", 1_000 * UNIT, 150 * UNIT).await;
    demo.progress(
        "alice stakes 500 in the insurance fund; the keeper's liquidator deposits 5,000; dave 150",
    );

    // Dave buys 9 SOL (1,350 USDC) on 150: 10x, just inside initial margin.
    demo.place(alice, OrderSide::Ask, OrderType::Limit, 15_000, 800)
        .await;
    demo.place(
        dave,
        OrderSide::Bid,
        OrderType::ImmediateOrCancel,
        15_000,
        900,
    )
    .await;
    // The book then quotes 151.00 / 153.00 around a 150.00 oracle: the mark
    // is above the index, so longs pay shorts.
    demo.place(bob, OrderSide::Bid, OrderType::PostOnly, 15_100, 10)
        .await;
    demo.place(alice, OrderSide::Ask, OrderType::PostOnly, 15_300, 10)
        .await;
    demo.progress("dave buys 9 SOL at 150.00 on 150 (10x); the book quotes 151.00 / 153.00");

    let keeper = demo.keeper();
    // Half an hour at a 152 mark: the first funding update.
    demo.advance_and_publish(1_800, ORACLE_PATH[0]).await;
    let report = demo.keeper_cycle(&keeper).await;
    demo.progress(
        "30 minutes later the keeper refreshes SOL's price, cranks the fills and updates funding",
    );
    println!(
        "      keeper: {} underlying refresh, {} events consumed, {} funding update",
        report.underlying_refreshes, report.events_consumed, report.funding_updates
    );

    demo.progress(
        "the oracle falls to 138.00, the keeper cycling every 2 minutes; it liquidates dave in the cycle he crosses maintenance",
    );
    for (step, price) in ORACLE_PATH.into_iter().enumerate().skip(1) {
        demo.advance_and_publish(STEP_SECONDS, price).await;
        let before = demo.health_of(dave).await;
        let report = demo.keeper_cycle(&keeper).await;
        let after = demo.health_of(dave).await;
        let mut line = format!(
            "      t+{:>2} min  oracle {price}.00  dave maintenance health {:>9}",
            30 + step as i64 * STEP_SECONDS / 60,
            format_units(before.maintenance.to_num::<i128>()),
        );
        for l in &report.liquidations {
            line.push_str(&format!(
                "  -> keeper liquidates {:+} -> {:+} lots, health now {}",
                l.base_lots_before,
                l.base_lots_after,
                format_units(after.maintenance.to_num::<i128>())
            ));
        }
        if report.funding_updates > 0 {
            line.push_str("  (funding updated)");
        }
        println!("{line}");
    }

    // The only bid left, bob's 151.00, lies outside the band around 138: the
    // keeper's unwind waited. Bob quotes 137.00; the next cycle sells to it.
    demo.place(bob, OrderSide::Bid, OrderType::PostOnly, 13_700, 800)
        .await;
    demo.progress(
        "bob bids 137.00 for 8 SOL; the keeper unwinds what it took over, within 1% of the oracle",
    );
    let report = demo.keeper_cycle(&keeper).await;
    for u in &report.unwinds {
        println!(
            "      keeper sells {} lots: {:+} -> {:+}; bob's stale 151.00 bid, outside the band, left the book unfilled",
            u.base_lots_before - u.base_lots_after,
            u.base_lots_before,
            u.base_lots_after
        );
    }
    demo.advance_and_publish(STEP_SECONDS, 138).await;
    let report = demo.keeper_cycle(&keeper).await;
    println!(
        "      keeper: {} events consumed (bob's fill and his stale bid's release)",
        report.events_consumed
    );

    // Settle everyone's funding so the report shows it paid, not pending.
    let settles: Vec<_> = demo.traders.iter().map(|t| t.margin_account).collect();
    let payer = demo.chain.payer().insecure_clone();
    for account in settles {
        let held = demo
            .chain
            .margin_account(&account)
            .await
            .ok()
            .and_then(|a| a.position(market.market_index).copied());
        if held.is_some() {
            let settle = ix::settle_funding(&market.market, &account);
            demo.expect_ok("settle_funding", settle, &payer).await;
        }
    }
    keeper
}
