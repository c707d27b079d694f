//! The keeper's refresh crank and its market discovery on the in-process
//! chain, set up from migrations/markets.toml as the demo is.
use kestrel_keeper::config::MarketOracles;
use kestrel_keeper::cranks::{refresh_reason, Keeper, RefreshReason};
use kestrel_keeper::daemon::{discover, DiscoverError};
use kestrel_sdk::client::Chain;
use kestrel_sdk::health::REFRESH_MARGIN_SECONDS;
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::Pubkey;
use kestrel_sim::chain::{LocalChain, ProgramMode};
use kestrel_sim::demo::{publish_oracle_price, write_oracle_fixtures, MARKETS_TOML};
use solana_sdk::signer::Signer;

/// The demo's exchange, underlying and market (no lookup table).
async fn set_up() -> (LocalChain, kestrel_migrations::Config) {
    let mut chain = LocalChain::start(ProgramMode::from_env()).await;
    chain.silence_native_program_output();
    let admin = chain.deployer().insecure_clone();
    let mint = chain.create_mint(&admin.pubkey(), 6).await;
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
    (chain, config)
}

fn entry(primary_oracle: Option<Pubkey>) -> MarketOracles {
    MarketOracles {
        index: 0,
        primary_oracle,
        fallback_oracle: None,
    }
}

async fn market_of(chain: &mut LocalChain, config: &kestrel_migrations::Config) -> MarketAccounts {
    let underlying = &config.underlyings[0];
    let (primary, fallback) = underlying.oracle_accounts().unwrap();
    chain.market_accounts(0, primary, fallback).await.unwrap()
}

#[tokio::test]
async fn the_keeper_finds_the_underlyings_oracle_accounts_itself() {
    let (mut chain, config) = set_up().await;
    let expected = market_of(&mut chain, &config).await;
    assert_eq!(
        expected.underlying.underlying,
        config.underlyings[0].address()
    );
    // The Pyth account is pinned and the fallback is Switchboard: neither
    // needs naming.
    let found = discover(&mut chain, &[entry(None)]).await.unwrap();
    assert_eq!(found, [expected]);
    let named = MarketOracles {
        fallback_oracle: expected.underlying.fallback_oracle,
        ..entry(Some(expected.underlying.primary_oracle))
    };
    assert_eq!(discover(&mut chain, &[named]).await.unwrap(), [expected]);
    // An account the underlying does not read is a configuration error.
    match discover(&mut chain, &[entry(Some(Pubkey::new_unique()))]).await {
        Err(DiscoverError::Config(e)) => {
            assert!(e.0.starts_with("`market[0].primary_oracle`: "), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // So is a market that does not exist.
    let missing = MarketOracles {
        index: 9,
        ..entry(None)
    };
    match discover(&mut chain, &[missing]).await {
        Err(DiscoverError::Config(e)) => assert!(e.0.starts_with("market 9: "), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// The whole-USDC price the markets read now.
async fn accepted(chain: &mut LocalChain, market: &MarketAccounts) -> f64 {
    let clock = chain.clock().await;
    let stored = chain.underlying_snapshot(&market.underlying).await.unwrap();
    let price = stored
        .underlying
        .current_price(clock.unix_timestamp, clock.slot)
        .unwrap();
    price.to_num::<f64>() * 1_000.0
}

#[tokio::test]
async fn the_keeper_moves_a_price_the_limit_holds_back_on() {
    let (mut chain, config) = set_up().await;
    let market = market_of(&mut chain, &config).await;
    let keeper = Keeper::new(vec![market], None);
    let admin = chain.deployer().insecure_clone();
    let limit = ix::set_price_limit(&admin.pubkey(), &market.underlying.underlying, 40, 0);
    chain.send_ok(&[limit], &[&admin]).await;
    // One print 10 % up, then nothing newer: each refresh ten seconds
    // apart moves the accepted price 4 % on (40 bp a second), until it
    // meets the feeds.
    chain.advance_clock(10).await;
    let now = chain.clock().await.unix_timestamp;
    publish_oracle_price(&mut chain, &config, now, 165);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let report = keeper.run_cycle(&mut chain).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        seen.push((
            report.underlying_refreshes,
            accepted(&mut chain, &market).await,
        ));
        // The same second again: no step to take, nothing sent.
        let clock = chain.clock().await;
        let snapshot = chain.underlying_snapshot(&market.underlying).await.unwrap();
        assert_eq!(
            refresh_reason(&snapshot, clock.unix_timestamp, clock.slot),
            None
        );
        chain.advance_clock(10).await;
        let clock = chain.clock().await;
        let snapshot = chain.underlying_snapshot(&market.underlying).await.unwrap();
        let lagging = snapshot.underlying.price_limit().lagging_feed().is_some();
        assert_eq!(
            refresh_reason(&snapshot, clock.unix_timestamp, clock.slot),
            lagging.then_some(RefreshReason::PriceLimitLagging)
        );
    }
    let expected = [(1, 156.0), (1, 162.24), (1, 165.0), (0, 165.0)];
    for ((refreshes, price), (want_refreshes, want_price)) in seen.iter().zip(expected) {
        assert_eq!(*refreshes, want_refreshes, "{seen:?}");
        assert!((price - want_price).abs() < 1e-6, "{seen:?}");
    }
}

#[tokio::test]
async fn the_keeper_refreshes_on_a_newer_update_or_before_the_price_lapses() {
    let (mut chain, config) = set_up().await;
    let market = market_of(&mut chain, &config).await;
    let keeper = Keeper::new(vec![market], None);
    assert_eq!(keeper.underlyings(), [market.underlying]);

    // Created from the feeds' current updates: nothing to do.
    let report = keeper.run_cycle(&mut chain).await.unwrap();
    assert_eq!(report.underlying_refreshes, 0, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // A newer update while the stored price is still current: refreshed,
    // and the markets now read the new price.
    chain.advance_clock(1).await;
    let now = chain.clock().await.unix_timestamp;
    publish_oracle_price(&mut chain, &config, now, 151);
    let snapshot = chain.underlying_snapshot(&market.underlying).await.unwrap();
    let slot = chain.clock().await.slot;
    assert_eq!(
        refresh_reason(&snapshot, now, slot),
        Some(RefreshReason::NewerUpdate)
    );
    let report = keeper.run_cycle(&mut chain).await.unwrap();
    assert_eq!(report.underlying_refreshes, 1, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let stored = chain.underlying_snapshot(&market.underlying).await.unwrap();
    let price = stored.underlying.current_price(now, slot).unwrap();
    // 151 USDC per SOL: 151e6 native quote per 1e9 native base.
    assert!((price.to_num::<f64>() - 0.151).abs() < 1e-12, "{price}");
    assert_eq!(refresh_reason(&stored, now, slot), None);

    // Nothing newer while the stored price lapses: a refresh could change
    // nothing, so none is sent (the feeds are down; a transaction each
    // cycle would only cost fees).
    let max_age = i64::from(stored.underlying.oracle.max_age_seconds);
    chain
        .advance_clock(max_age - REFRESH_MARGIN_SECONDS + 1)
        .await;
    let now = chain.clock().await.unix_timestamp;
    let snapshot = chain.underlying_snapshot(&market.underlying).await.unwrap();
    assert!(!snapshot.needs_refresh(now, slot), "nothing newer to store");
    assert_eq!(refresh_reason(&snapshot, now, slot), None);
    let report = keeper.run_cycle(&mut chain).await.unwrap();
    assert_eq!(report.underlying_refreshes, 0, "{report:?}");
    // A newer update: refreshed again.
    publish_oracle_price(&mut chain, &config, now, 152);
    let report = keeper.run_cycle(&mut chain).await.unwrap();
    assert_eq!(report.underlying_refreshes, 1, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let metrics = keeper.metrics.render();
    for line in [
        "kestrel_keeper_underlying_refreshes_total 2",
        "kestrel_keeper_underlying_price_current{underlying=\"0\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
}
