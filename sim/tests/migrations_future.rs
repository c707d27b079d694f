//! migrations/markets.toml's dated future applied to the in-process chain:
//! listed at its relative expiry with its terms, nothing to do the second
//! time, a differing expiry or term an error naming the key (not a step),
//! and nothing to do either once the future has settled and closed.
use kestrel::state::{InstrumentKind, MarketStatus};
use kestrel_migrations::{Config, Step};
use kestrel_sdk::client::Chain;
use kestrel_sdk::{ix, lookup_table};
use kestrel_sim::chain::{LocalChain, ProgramMode};
use kestrel_sim::demo::{publish_oracle_price, write_oracle_fixtures, MARKETS_TOML};
use solana_sdk::signer::Signer;

#[tokio::test]
async fn the_future_is_listed_once_and_its_terms_are_fixed() {
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
    let mut config = Config::parse(MARKETS_TOML).unwrap();
    // The future's own test: the file's options left out (tests/migrations.rs
    // covers the series).
    config.series.clear();
    config.underlyings[0].options = None;
    let listed_at = chain.clock().await.unix_timestamp;
    write_oracle_fixtures(&mut chain, &config, listed_at);

    let first = kestrel_migrations::apply(&mut chain, &admin, &mut config)
        .await
        .unwrap();
    assert!(
        matches!(
            first.as_slice(),
            [
                Step::CreateUnderlying { .. },
                Step::CreateMarket { .. },
                Step::SetMarketLimits { .. },
                Step::CreateFutureMarket { args, future, .. },
                Step::CreateLookupTable,
                Step::ExtendLookupTable { .. },
            ] if args.market_index == 1 && future.expiry == on_the_minute(listed_at + 7_200)
        ),
        "{first:?}"
    );
    let (primary, fallback) = config.underlyings[0].oracle_accounts().unwrap();
    let future = chain.market_accounts(1, primary, fallback).await.unwrap();
    let perp = chain.market_accounts(0, primary, fallback).await.unwrap();
    let state = chain.market(&future.market).await.unwrap();
    assert!(matches!(state.kind(), Ok(InstrumentKind::Future)));
    assert_eq!(
        state.future.params,
        config.markets[1]
            .future()
            .unwrap()
            .unwrap()
            .params(listed_at)
    );
    // The table holds both markets' accounts (their underlying's once).
    let table = config.lookup_table_address().unwrap().unwrap();
    let stored = chain.lookup_table(&table).await.unwrap().unwrap();
    assert_eq!(
        stored.addresses,
        lookup_table::exchange_addresses(&[perp, future])
    );

    // Later, the relative expiry is not counted again: nothing to do.
    chain.advance_clock(600).await;
    assert_eq!(
        kestrel_migrations::apply(&mut chain, &admin, &mut config)
            .await
            .unwrap(),
        vec![]
    );
    // An absolute expiry must be the one on chain.
    let expiry = state.future.params.expiry;
    let mut absolute = config.clone();
    absolute.markets[1].expiry_in_seconds = None;
    absolute.markets[1].expiry = Some(kestrel_migrations::expiry::ExpiryValue::Unix(expiry + 60));
    let error = kestrel_migrations::plan_for(&mut chain, &absolute)
        .await
        .unwrap_err();
    assert!(
        error.starts_with("market 1.expiry: fixed at listing: "),
        "{error}"
    );
    absolute.markets[1].expiry = Some(kestrel_migrations::expiry::ExpiryValue::Text(
        kestrel_migrations::expiry::format_rfc3339(expiry),
    ));
    assert_eq!(
        kestrel_migrations::plan_for(&mut chain, &absolute)
            .await
            .unwrap(),
        vec![]
    );
    let mut window = config.clone();
    window.markets[1].settlement_window_seconds = Some(900);
    let error = kestrel_migrations::plan_for(&mut chain, &window)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "market 1.settlement_window_seconds: fixed at listing: 1800 on chain, 900 in the file"
    );

    // Through the settlement window a minute at a time, SOL refreshed and
    // the window captured each minute (so the settlement average covers
    // it); then expired, settled
    // (nobody holds it) and closed: the file's status no longer applies,
    // and nothing is to do.
    let payer = chain.payer().insecure_clone();
    let now = chain.clock().await.unix_timestamp;
    chain
        .advance_clock(state.future.params.window_start() - now)
        .await;
    loop {
        let now = chain.clock().await.unix_timestamp;
        publish_oracle_price(&mut chain, &config, now, 150);
        // Refreshed, and captured (the keeper's two cranks).
        let refresh = ix::refresh_underlying(&future.underlying);
        let capture = ix::sample_settlement(&future);
        chain.send_ok(&[refresh, capture], &[&payer]).await;
        if now >= expiry {
            break;
        }
        chain.advance_clock(60).await;
    }
    let settle = ix::settle_expired(&future, None);
    chain.send_ok(&[settle], &[&payer]).await;
    assert_eq!(
        chain.market(&future.market).await.unwrap().status().ok(),
        Some(MarketStatus::Closed)
    );
    assert_eq!(
        kestrel_migrations::apply(&mut chain, &admin, &mut config)
            .await
            .unwrap(),
        vec![]
    );
}

/// A relative expiry as migrations resolve it: rounded down to the minute.
fn on_the_minute(unix: i64) -> i64 {
    unix - unix.rem_euclid(60)
}
