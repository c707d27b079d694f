//! The keeper's settlement crank on the in-process chain, set up from
//! migrations/markets.toml (SOL-PERP and the dated future SOL-FUT on SOL):
//! capturing a settlement window's checkpoints while the refresh crank keeps
//! the underlying's price integral covered, settling an expired future
//! nobody traded,
//! one whose settlement leaves an account in deficit (a bankruptcy: waiting
//! while nothing can cover it, settled once the insurance fund can), and a
//! perpetual delisted in an emergency; with the other cranks leaving an
//! expired, settled or closed market alone. The vault is audited after.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{MarginAccount, MarketStatus, PauseFlags};
use kestrel_keeper::audit;
use kestrel_keeper::cranks::{CycleReport, Keeper, Liquidator};
use kestrel_sdk::client::{AccountFilter, Chain};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::{pda, Pubkey};
use kestrel_sim::chain::{LocalChain, ProgramMode};
use kestrel_sim::demo::{publish_oracle_price, write_oracle_fixtures, MARKETS_TOML};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

const UNIT: u64 = 1_000_000;

struct World {
    chain: LocalChain,
    config: kestrel_migrations::Config,
    admin: Keypair,
    mint: Pubkey,
    mint_authority: Keypair,
    perp: MarketAccounts,
    future: MarketAccounts,
}

struct Trader {
    key: Keypair,
    wallet: Pubkey,
    margin_account: Pubkey,
}

async fn world() -> World {
    let mut chain = LocalChain::start(ProgramMode::from_env()).await;
    chain.silence_native_program_output();
    let admin = chain.deployer().insecure_clone();
    let mint_authority = Keypair::new();
    let mint = chain.create_mint(&mint_authority.pubkey(), 6).await;
    let program_data = chain.program_data();
    chain
        .send_ok(
            &[ix::init_exchange(&admin.pubkey(), &mint, program_data)],
            &[&admin],
        )
        .await;
    let mut config = kestrel_migrations::Config::parse(MARKETS_TOML).unwrap();
    config.lookup_table = None;
    let now = chain.clock().await.unix_timestamp;
    write_oracle_fixtures(&mut chain, &config, now);
    kestrel_migrations::apply(&mut chain, &admin, &mut config)
        .await
        .unwrap();
    let (primary, fallback) = config.underlyings[0].oracle_accounts().unwrap();
    let perp = chain.market_accounts(0, primary, fallback).await.unwrap();
    let future = chain.market_accounts(1, primary, fallback).await.unwrap();
    World {
        chain,
        config,
        admin,
        mint,
        mint_authority,
        perp,
        future,
    }
}

impl World {
    fn markets(&self) -> Vec<MarketAccounts> {
        vec![self.perp, self.future]
    }

    async fn trader(&mut self, deposit: u64) -> Trader {
        let key = Keypair::new();
        self.chain.fund(&key.pubkey(), 1_000_000_000).await;
        let wallet = self
            .chain
            .create_token_account(&self.mint, &key.pubkey())
            .await;
        self.chain
            .mint_to(&self.mint, &self.mint_authority, &wallet, 10_000 * UNIT)
            .await;
        let margin_account = pda::margin_account(&pda::exchange(), &key.pubkey(), 0);
        let open = ix::create_margin_account(&key.pubkey(), 0, None);
        let put = ix::deposit(&key.pubkey(), &margin_account, &wallet, deposit);
        self.chain.send_ok(&[open, put], &[&key]).await;
        Trader {
            key,
            wallet,
            margin_account,
        }
    }

    async fn place(
        &mut self,
        who: &Trader,
        market: MarketAccounts,
        side: OrderSide,
        kind: OrderType,
        price: u64,
        lots: u64,
    ) {
        let account = self
            .chain
            .margin_account(&who.margin_account)
            .await
            .unwrap();
        let health = ix::health_accounts(&account, Some(market.market_index), &self.markets());
        let args = ix::order_args(side, kind, price, lots, 0);
        let place = ix::place_order(
            &who.key.pubkey(),
            &who.margin_account,
            &market,
            args,
            health,
        );
        let place = self.chain.refreshed(&market, vec![place]).await.unwrap();
        self.chain.send_ok(&place, &[&who.key]).await;
    }

    /// Alice sells `lots` of `market` to bob at 150.00.
    async fn trade(&mut self, market: MarketAccounts, alice: &Trader, bob: &Trader, lots: u64) {
        self.place(
            alice,
            market,
            OrderSide::Ask,
            OrderType::Limit,
            15_000,
            lots,
        )
        .await;
        self.place(
            bob,
            market,
            OrderSide::Bid,
            OrderType::ImmediateOrCancel,
            15_000,
            lots,
        )
        .await;
    }

    /// Moves the clock to unix time `at` and publishes `price` on both feeds.
    async fn at(&mut self, at: i64, price: i64) {
        let now = self.chain.clock().await.unix_timestamp;
        self.chain.advance_clock(at - now).await;
        publish_oracle_price(&mut self.chain, &self.config, at, price);
    }

    /// Publishes `price` and runs a keeper cycle every minute from now until
    /// unix time `until` (the refresh crank keeps the underlying's price
    /// integral, so the settlement average, covered); their reports.
    async fn cycle_each_minute(
        &mut self,
        keeper: &Keeper,
        until: i64,
        price: i64,
    ) -> Vec<CycleReport> {
        let mut reports = Vec::new();
        loop {
            let now = self.chain.clock().await.unix_timestamp;
            if now >= until {
                return reports;
            }
            self.at((now + 60).min(until), price).await;
            reports.push(self.cycle(keeper).await);
        }
    }

    async fn cycle(&mut self, keeper: &Keeper) -> CycleReport {
        let report = keeper.run_cycle(&mut self.chain).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        report
    }

    async fn market(&mut self, market: MarketAccounts) -> kestrel::state::Market {
        self.chain.market(&market.market).await.unwrap()
    }

    async fn collateral(&mut self, who: &Trader) -> i64 {
        self.chain
            .margin_account(&who.margin_account)
            .await
            .unwrap()
            .collateral
    }

    /// The vault against every margin account and both markets.
    async fn conserved(&mut self) -> audit::Conservation {
        let vault = self
            .chain
            .account(&pda::collateral_vault(&pda::exchange()))
            .await
            .unwrap();
        let accounts = self
            .chain
            .scan_program_accounts(AccountFilter::of::<MarginAccount>())
            .await
            .unwrap();
        let mut data = Vec::new();
        for market in self.markets() {
            for key in [market.market, market.bids, market.asks, market.event_queue] {
                data.push(self.chain.account(&key).await.unwrap().data);
            }
        }
        let markets = data.chunks(4).map(|d| audit::MarketData {
            market: &d[0],
            bids: &d[1],
            asks: &d[2],
            event_queue: &d[3],
        });
        audit::conservation(
            &vault.data,
            accounts.iter().map(|(k, a)| (*k, a.data.as_slice())),
            markets,
        )
        .unwrap()
    }
}

#[tokio::test]
async fn an_untraded_future_is_sampled_then_settled_and_closed_then_left_alone() {
    let mut w = world().await;
    let keeper = Keeper::new(w.markets(), None);
    let params = w.market(w.future).await.future.params;

    // Before the window: the basis is sampled on the funding schedule, no
    // settlement capture.
    let report = w.cycle(&keeper).await;
    assert_eq!((report.basis_updates, report.settlement_samples), (1, 0));
    // Inside it: the refresh writes the window's first checkpoint, the
    // capture copies it; again at once, no newer checkpoint can exist yet.
    w.at(params.window_start() + 10, 150).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(report.settlement_samples, 1, "{report:?}");
    let report = w.cycle(&keeper).await;
    assert_eq!(report.settlement_samples, 0, "no newer checkpoint yet");
    let capture = w.market(w.future).await.future.settlement();
    assert_eq!(capture.start.time, params.window_start());
    // A cycle a minute through the window captures each new checkpoint.
    let reports = w.cycle_each_minute(&keeper, params.expiry - 50, 150).await;
    let mut captures = 1 + reports.iter().map(|r| r.settlement_samples).sum::<u64>();
    assert_eq!(captures, reports.len() as u64 + 1, "one a minute");

    // After expiry: the refresh writes the expiry's checkpoint; the capture
    // completes the average; no position, so one call fixes the price and
    // closes the market.
    w.at(params.expiry + 5, 160).await;
    let report = w.cycle(&keeper).await;
    captures += report.settlement_samples;
    assert_eq!(report.settlement_samples, 1, "the expiry's checkpoint");
    assert_eq!(report.basis_updates, 0, "expired");
    assert_eq!(report.markets_settled, [1]);
    assert_eq!(report.markets_closed, [1]);
    assert!(report.positions_settled.is_empty());
    let market = w.market(w.future).await;
    assert_eq!(market.status().ok(), Some(MarketStatus::Closed));
    // 150 all through the window; 160, published after expiry, never counts.
    let price = market.settlement_price().unwrap();
    assert!((price.to_num::<f64>() - 0.150).abs() < 1e-9, "{price}");
    let capture = market.future.settlement();
    assert_eq!(capture.end.time, params.expiry);
    // Every second but the first ten (the price before was older than its
    // maximum age).
    let window = i64::from(params.settlement_window_seconds);
    assert_eq!(capture.covered_seconds(), window - 10);

    // A closed market gives no crank anything to do, or to fail at.
    w.at(params.expiry + 120, 160).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(
        (
            report.settlement_samples,
            report.basis_updates,
            report.markets_settled.len(),
            report.events_consumed,
            report.races
        ),
        (0, 0, 0, 0, 0),
        "{report:?}"
    );
    let metrics = keeper.metrics.render();
    for line in [
        format!("kestrel_keeper_settlement_samples_total {captures}"),
        "kestrel_keeper_markets_settled_total 1".into(),
        "kestrel_keeper_markets_closed_total 1".into(),
        "kestrel_keeper_settlement_stage{market=\"1\"} 4".into(),
        format!(
            "kestrel_keeper_settlement_covered_seconds{{market=\"1\"}} {}",
            window - 10
        ),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(w.conserved().await.holds());
}

#[tokio::test]
async fn a_deficit_left_by_settlement_is_a_bankruptcy_and_an_expired_market_is_not_liquidated() {
    let mut w = world().await;
    let alice = w.trader(2_000 * UNIT).await;
    let bob = w.trader(100 * UNIT).await;
    let liquidator = w.trader(5_000 * UNIT).await;
    let keeper = Keeper::new(
        w.markets(),
        Some(Liquidator {
            authority: liquidator.key.insecure_clone(),
            margin_account: liquidator.margin_account,
            unwind_slippage_bps: Some(100),
        }),
    );
    // Bob buys 6 SOL of the future at 150 on 100 USDC: 9x.
    let future = w.future;
    w.trade(future, &alice, &bob, 600).await;
    let expiry = w.market(future).await.future.params.expiry;

    // SOL falls to 120 as the settlement window opens and stays there; a
    // keeper with no liquidator refreshes it every minute (its first cycle
    // consumes alice's fill), so the average covers the window.
    let window_start = w.market(future).await.future.params.window_start();
    let sampler = Keeper::new(w.markets(), None);
    w.at(window_start - 30, 120).await;
    assert_eq!(
        w.cycle(&sampler).await.events_consumed,
        1,
        "alice's fill first"
    );
    w.cycle_each_minute(&sampler, expiry - 1, 120).await;

    // A second after expiry trading is paused: bob is far under
    // maintenance, but an expired market is not liquidated, and settlement
    // waits for trading.
    w.at(expiry + 1, 120).await;
    let admin = w.admin.insecure_clone();
    w.chain
        .send_ok(
            &[ix::set_pause(&admin.pubkey(), PauseFlags::TRADING)],
            &[&admin],
        )
        .await;
    let report = w.cycle(&keeper).await;
    assert_eq!(report.liquidatable, [bob.margin_account]);
    assert!(report.liquidations.is_empty(), "{report:?}");
    assert_eq!(report.races, 0, "not sent at all: {report:?}");
    assert!(report.positions_settled.is_empty(), "trading is paused");

    // Resumed: both settle at 120 (the window's average); bob's
    // loss of 180 exceeds his 100 and the insurance fund is empty, and the
    // closed future has no open interest: the bankruptcy waits, unsent.
    w.chain
        .send_ok(&[ix::set_pause(&admin.pubkey(), 0)], &[&admin])
        .await;
    let report = w.cycle(&keeper).await;
    let settled: Vec<(Pubkey, i64)> = report
        .positions_settled
        .iter()
        .map(|p| (p.account, p.base_lots))
        .collect();
    assert_eq!(settled.len(), 2, "{report:?}");
    assert!(settled.contains(&(bob.margin_account, 600)));
    assert!(settled.contains(&(alice.margin_account, -600)));
    let bob_value = report
        .positions_settled
        .iter()
        .find(|p| p.account == bob.margin_account)
        .unwrap()
        .value_native;
    assert!(
        (719_999_999..=720_000_000).contains(&bob_value),
        "{bob_value}"
    );
    assert_eq!(report.markets_closed, [1]);
    assert!(w.collateral(&bob).await < 0);
    assert_eq!(report.bankruptcies_waiting, [bob.margin_account]);
    assert!(report.bankruptcies_settled.is_empty());
    assert!(w.conserved().await.holds());

    // Once the fund holds enough, the next cycle covers it from there.
    let stake = ix::stake(
        &alice.key.pubkey(),
        &alice.margin_account,
        &alice.wallet,
        500 * UNIT,
    );
    w.chain.send_ok(&[stake], &[&alice.key]).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(report.bankruptcies_settled, [bob.margin_account]);
    assert!(report.bankruptcies_waiting.is_empty());
    assert_eq!(w.collateral(&bob).await, 0);
    let conservation = w.conserved().await;
    assert!(conservation.holds(), "{conservation}");
}

#[tokio::test]
async fn a_delisted_perpetual_is_sampled_and_settled_not_funded() {
    let mut w = world().await;
    let alice = w.trader(2_000 * UNIT).await;
    let bob = w.trader(2_000 * UNIT).await;
    let mut keeper = Keeper::new(w.markets(), None);
    keeper.funding_interval_seconds = 60;
    let perp = w.perp;
    w.trade(perp, &alice, &bob, 100).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(report.events_consumed, 1);

    // SOL at 151 from now on, refreshed.
    let now = w.chain.clock().await.unix_timestamp;
    w.at(now + 1, 151).await;
    w.cycle(&keeper).await;
    // The admin pauses the perpetual and delists it: it settles at the
    // average of the 10 minutes from the next whole minute.
    let admin = w.admin.insecure_clone();
    let pause = ix::set_market_status(&admin.pubkey(), &perp.market, MarketStatus::Paused);
    let delist = ix::delist_market(&admin.pubkey(), &perp.market, 600);
    w.chain.send_ok(&[pause, delist], &[&admin]).await;
    let expiry = w.market(perp).await.future.params.expiry;
    for report in w.cycle_each_minute(&keeper, expiry - 1, 151).await {
        assert_eq!(
            report.funding_updates, 0,
            "a delisted perpetual is not funded"
        );
    }
    let capture = w.market(perp).await.future.settlement();
    assert!(capture.covered_seconds() >= 500, "{capture:?}");
    w.at(expiry + 1, 151).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(report.positions_settled.len(), 2, "{report:?}");
    assert_eq!(report.markets_closed, [0]);
    let market = w.market(perp).await;
    assert_eq!(market.status().ok(), Some(MarketStatus::Closed));
    let price = market.settlement_price().unwrap();
    assert!((price.to_num::<f64>() - 0.151).abs() < 1e-9, "{price}");
    // Nothing left to do there, nor to fail at.
    w.at(expiry + 200, 151).await;
    let report = w.cycle(&keeper).await;
    assert_eq!(
        (
            report.funding_updates,
            report.settlement_samples,
            report.races
        ),
        (0, 0, 0)
    );
    assert!(w.conserved().await.holds());
}
