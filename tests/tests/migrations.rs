//! migrations/markets.toml applied to the chain: created once, then only
//! what changed, and nothing when it matches.
use kestrel::state::{MarketStatus, PauseFlags};
use kestrel_migrations::{Config, Step};
use kestrel_sdk::{decode, pda};
use kestrel_sim::demo::{write_oracle_fixtures, MARKETS_TOML};
use kestrel_tests::*;

#[tokio::test]
async fn applying_twice_changes_nothing_and_changes_apply_exactly() {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let mut config = Config::parse(MARKETS_TOML).unwrap();
    let now = h.now().await;
    write_oracle_fixtures(&mut h.chain, &config, now);

    let first = kestrel_migrations::apply(&mut h.chain, &admin, &config)
        .await
        .unwrap();
    h.check_invariants("migrations").await;
    assert!(
        matches!(first.as_slice(), [Step::CreateMarket { .. }]),
        "{first:?}"
    );
    let market = pda::market(&h.exchange, config.markets[0].index);
    let before = h.chain.account(&market).await.unwrap();
    assert!(kestrel_migrations::apply(&mut h.chain, &admin, &config)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        h.chain.account(&market).await.unwrap(),
        before,
        "a no-op apply changes nothing"
    );

    config.markets[0].taker_fee_bps = 7;
    config.markets[0].status = "paused".into();
    config.exchange.paused = vec!["trading".into()];
    let second = kestrel_migrations::apply(&mut h.chain, &admin, &config)
        .await
        .unwrap();
    h.check_invariants("migrations").await;
    assert_eq!(second.len(), 3, "{second:?}");
    let state = decode::market(&h.chain.account(&market).await.unwrap().data).unwrap();
    assert_eq!(
        (state.taker_fee_bps, state.status()),
        (7, MarketStatus::Paused)
    );
    assert_eq!(h.exchange_state().await.pause_flags, PauseFlags::TRADING);
    assert!(kestrel_migrations::apply(&mut h.chain, &admin, &config)
        .await
        .unwrap()
        .is_empty());
}
