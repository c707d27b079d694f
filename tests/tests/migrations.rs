//! migrations/markets.toml applied to the chain: created once, then only
//! what changed, and nothing when it matches.
use kestrel::state::{MarketStatus, PauseFlags};
use kestrel_migrations::{Config, Step};
use kestrel_sdk::client::Chain;
use kestrel_sdk::ix::MarketAccounts;
use kestrel_sdk::{decode, lookup_table, pda};
use kestrel_sim::demo::{write_oracle_fixtures, MARKETS_TOML};
use kestrel_tests::*;
use solana_sdk::signer::Signer;

fn state_underlying(config: &Config) -> kestrel_sdk::Pubkey {
    config.underlyings[0].address()
}

#[tokio::test]
async fn applying_twice_changes_nothing_and_changes_apply_exactly() {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let mut config = Config::parse(MARKETS_TOML).unwrap();
    let now = h.now().await;
    write_oracle_fixtures(&mut h.chain, &config, now);

    assert_eq!(
        config.lookup_table,
        Some(Default::default()),
        "a table, none yet"
    );
    // Through the harness's Chain: the invariants are checked after every
    // transaction the applier sends.
    let first = kestrel_migrations::apply(&mut h, &admin, &mut config)
        .await
        .unwrap();
    // The underlying (with its option terms), SOL-PERP and SOL-FUT; then,
    // planned again once the underlying exists (a strike needs its
    // decimals), the option series' six markets; then the table.
    assert!(
        matches!(
            first.as_slice(),
            [
                Step::CreateUnderlying { .. },
                Step::SetOptionConfig {
                    underlying_index: 0,
                    ..
                },
                Step::CreateMarket { .. },
                Step::SetMarketLimits {
                    market_index: 0,
                    ..
                },
                Step::CreateFutureMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateOptionMarket { .. },
                Step::CreateLookupTable,
                Step::ExtendLookupTable { table: Some(_), .. }
            ]
        ),
        "{first:?}"
    );
    // The series as listed: SOL-W1-140C at market 2, a call at 140 USDC per
    // SOL (0.14 native quote per native base), through SOL-W1-160P at 7.
    let listed = |index| pda::market(&h.exchange, index);
    let first_option = decode::market(&h.chain.account(&listed(2)).await.unwrap().data).unwrap();
    assert_eq!(&first_option.name[..11], b"SOL-W1-140C");
    assert_eq!(first_option.option.side, 0);
    let strike = first_option.option.strike();
    assert!(
        (strike - fixed::types::I80F48::from_num(0.14)).abs() < 1e-12,
        "{strike}"
    );
    let last_option = decode::market(&h.chain.account(&listed(7)).await.unwrap().data).unwrap();
    assert_eq!(&last_option.name[..11], b"SOL-W1-160P");
    assert_eq!(
        h.underlying_state(&state_underlying(&config))
            .await
            .volatility
            .config,
        config.underlyings[0]
            .options
            .as_ref()
            .unwrap()
            .option_config()
            .unwrap()
    );
    let market = pda::market(&h.exchange, config.markets[0].index);
    // The table was recorded in the config and holds the exchange's and the
    // market's accounts, usable now.
    let table = config.lookup_table_address().unwrap().expect("recorded");
    let stored = h.lookup_table(&table).await.unwrap().expect("created");
    let state = decode::market(&h.chain.account(&market).await.unwrap().data).unwrap();
    let underlying = config
        .underlying_of(&config.markets[0])
        .unwrap()
        .accounts()
        .unwrap();
    assert_eq!(underlying.underlying, state.underlying);
    let accounts = MarketAccounts {
        market_index: config.markets[0].index,
        market,
        bids: state.bids,
        asks: state.asks,
        event_queue: state.event_queue,
        underlying,
    };
    // And the dated future's (SOL-FUT, market 1, on the same underlying).
    let future = h
        .chain
        .market_accounts(
            config.markets[1].index,
            underlying.primary_oracle,
            underlying.fallback_oracle,
        )
        .await
        .unwrap();
    // And the options'.
    let chain_state = kestrel_migrations::chain_state(&mut h, &config)
        .await
        .unwrap();
    let listed_markets = kestrel_migrations::existing_markets(&config, &chain_state).unwrap();
    assert_eq!(listed_markets.len(), 8);
    assert_eq!(&listed_markets[..2], &[accounts, future]);
    assert_eq!(
        stored.addresses,
        lookup_table::exchange_addresses(&listed_markets)
    );
    assert_eq!(stored.authority, Some(admin.pubkey()));
    assert!(Chain::clock(&mut h).await.unwrap().slot > stored.last_extended_slot);
    let before = h.chain.account(&market).await.unwrap();
    assert!(kestrel_migrations::apply(&mut h, &admin, &mut config)
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
    let second = kestrel_migrations::apply(&mut h, &admin, &mut config)
        .await
        .unwrap();
    assert_eq!(second.len(), 3, "{second:?}");
    let state = decode::market(&h.chain.account(&market).await.unwrap().data).unwrap();
    assert_eq!(
        (state.params.taker_fee_bps, state.status().ok()),
        (7, Some(MarketStatus::Paused))
    );
    assert_eq!(h.exchange_state().await.pause_flags, PauseFlags::TRADING);
    assert!(kestrel_migrations::apply(&mut h, &admin, &mut config)
        .await
        .unwrap()
        .is_empty());

    // A second market: created, then capped, and only its accounts are
    // added to the table.
    let mut added = config.markets[0].clone();
    added.index = 8; // 1 is SOL-FUT, 2 to 7 the option series
    added.name = "SOL-PERP-2".into();
    added.status = "active".into();
    added.max_position_lots = 5_000;
    config.markets.push(added);
    let third = kestrel_migrations::apply(&mut h, &admin, &mut config)
        .await
        .unwrap();
    assert!(
        matches!(
            third.as_slice(),
            [
                Step::CreateMarket { .. },
                Step::SetMarketLimits { market_index: 8, .. },
                Step::ExtendLookupTable { table: Some(t), addresses }
            ]
                if *t == table && addresses.len() == 4
        ),
        "the market and its book accounts; the underlying is shared: {third:?}"
    );
    let capped = decode::market(
        &h.chain
            .account(&pda::market(&pda::exchange(), 8))
            .await
            .unwrap()
            .data,
    )
    .unwrap();
    assert_eq!(
        (
            capped.limits.max_open_interest_lots,
            capped.limits.max_position_lots
        ),
        (1_000_000, 5_000)
    );
    assert_eq!(
        h.lookup_table(&table)
            .await
            .unwrap()
            .unwrap()
            .addresses
            .len(),
        stored.addresses.len() + 4
    );
    assert!(kestrel_migrations::apply(&mut h, &admin, &mut config)
        .await
        .unwrap()
        .is_empty());
}
