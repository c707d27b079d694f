//! Markets: creation with their book and queue accounts, parameters, status.
use kestrel::engine::{BookSide, EventQueue, Side, BOOK_SIDE_ORDERS, EVENT_QUEUE_EVENTS};
use kestrel::state::{MarketStatus, OracleKind};
use kestrel_sdk::{decode, ix, pda, Pubkey};
use kestrel_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

struct Setup {
    h: Harness,
    admin: Keypair,
    pyth: Pubkey,
    switchboard: Pubkey,
}

async fn setup() -> Setup {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let (pyth, switchboard) = h.oracle_accounts().await;
    Setup {
        h,
        admin,
        pyth,
        switchboard,
    }
}

/// Copies account data into 8-byte-aligned memory, past the discriminator.
fn slab(data: &[u8]) -> Vec<u64> {
    let mut words = vec![0u64; (data.len() - 8) / 8];
    bytemuck::cast_slice_mut::<u64, u8>(&mut words).copy_from_slice(&data[8..]);
    words
}

#[tokio::test]
async fn create_market_records_params_and_formats_book_and_queue() {
    let Setup {
        mut h,
        admin,
        pyth,
        switchboard,
    } = setup().await;
    let (bids, asks, queue) = h.market_accounts().await;
    let args = market_args(0, market_params(&switchboard));
    let create = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.ok("create_market", &[create], &[&admin]).await;

    let address = pda::market(&h.exchange, 0);
    let market = decode::market(&h.chain.account(&address).await.unwrap().data).unwrap();
    assert_eq!(
        (market.bids, market.asks, market.event_queue),
        (bids, asks, queue)
    );
    assert_eq!(&market.name[..8], b"SOL-PERP");
    assert_eq!(
        (market.base_lot_size, market.quote_lot_size),
        (10_000_000, 100)
    );
    assert_eq!(
        (market.initial_margin_bps, market.maintenance_margin_bps),
        (1_000, 500)
    );
    assert_eq!((market.maker_fee_bps, market.taker_fee_bps), (-2, 5));
    assert_eq!(market.primary_kind, OracleKind::Pyth as u8);
    assert_eq!(market.fallback_feed, switchboard.to_bytes());
    assert_eq!(market.status(), MarketStatus::Active);

    for (account, side) in [(bids, Side::Bid), (asks, Side::Ask)] {
        let mut words = slab(&h.chain.account(&account).await.unwrap().data);
        let book = BookSide::load(bytemuck::cast_slice_mut(&mut words)).unwrap();
        assert_eq!(
            (book.side(), book.capacity(), book.len()),
            (side, BOOK_SIDE_ORDERS, 0)
        );
        book.check_invariants().unwrap();
    }
    let mut words = slab(&h.chain.account(&queue).await.unwrap().data);
    let events = EventQueue::load(bytemuck::cast_slice_mut(&mut words)).unwrap();
    assert_eq!((events.capacity(), events.len()), (EVENT_QUEUE_EVENTS, 0));

    // The same index again is refused: the market account exists.
    let (b2, a2, q2) = h.market_accounts().await;
    let again = ix::create_market(
        &admin.pubkey(),
        args,
        &b2,
        &a2,
        &q2,
        &pyth,
        Some(switchboard),
    );
    h.refused_with("create_market", &[again], &[&admin], REINIT_REFUSAL)
        .await;
}

#[tokio::test]
async fn only_the_admin_creates_markets_with_valid_params() {
    let Setup {
        mut h,
        admin,
        pyth,
        switchboard,
    } = setup().await;
    let (bids, asks, queue) = h.market_accounts().await;
    let mallory = h.user(0).await;
    let args = market_args(0, market_params(&switchboard));
    let create = ix::create_market(
        &mallory.pubkey(),
        args,
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;

    let mut loose = market_params(&switchboard);
    loose.maintenance_margin_bps = loose.initial_margin_bps;
    let create = ix::create_market(
        &admin.pubkey(),
        market_args(0, loose),
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::InvalidMarginFractions),
    )
    .await;

    let mut generous = market_params(&switchboard);
    generous.maker_fee_bps = -6; // a rebate above the 5 bps taker fee
    let create = ix::create_market(
        &admin.pubkey(),
        market_args(0, generous),
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::InvalidFees),
    )
    .await;

    let mut no_lots = market_args(0, market_params(&switchboard));
    no_lots.base_lot_size = 0;
    let create = ix::create_market(
        &admin.pubkey(),
        no_lots,
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::InvalidLotSize),
    )
    .await;
}

#[tokio::test]
async fn oracle_accounts_must_be_the_configured_feeds_of_the_real_programs() {
    let Setup {
        mut h,
        admin,
        pyth,
        switchboard,
    } = setup().await;
    let (bids, asks, queue) = h.market_accounts().await;
    let args = market_args(0, market_params(&switchboard));

    // A Pyth-shaped account owned by someone else.
    let impostor = Pubkey::new_unique();
    let mut fake = oracles::pyth_update(PYTH_FEED, 1, 0, 0, 0);
    fake.owner = Pubkey::new_unique();
    h.chain.set_account(&impostor, fake);
    let create = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &asks,
        &queue,
        &impostor,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::OracleWrongOwner),
    )
    .await;

    // A real Pyth update of another feed.
    let other_feed = Pubkey::new_unique();
    h.chain
        .set_account(&other_feed, oracles::pyth_update([9; 32], 1, 0, 0, 0));
    let create = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &asks,
        &queue,
        &other_feed,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::OracleWrongFeed),
    )
    .await;

    // A Switchboard feed other than the configured one.
    let other_switchboard = Pubkey::new_unique();
    h.chain
        .set_account(&other_switchboard, oracles::switchboard_feed(1, 0, 0, 1));
    let create = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(other_switchboard),
    );
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::OracleWrongFeed),
    )
    .await;

    // A fallback configured but not passed.
    let create = ix::create_market(&admin.pubkey(), args, &bids, &asks, &queue, &pyth, None);
    h.refused(
        "create_market",
        &[create],
        &[&admin],
        error_code(KestrelError::InvalidOracleConfig),
    )
    .await;
}

#[tokio::test]
async fn book_and_queue_accounts_must_be_distinct_and_sized() {
    let Setup {
        mut h,
        admin,
        pyth,
        switchboard,
    } = setup().await;
    let (bids, _asks, queue) = h.market_accounts().await;
    let args = market_args(0, market_params(&switchboard));
    // One account as both sides: Anchor's `zero` refuses a repeated account.
    let same = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &bids,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[same],
        &[&admin],
        error_code(AnchorErrorCode::ConstraintZero),
    )
    .await;
    // An event-queue-sized account as the asks.
    let small = h
        .chain
        .create_owned_account(&kestrel::ID, ix::EVENT_QUEUE_ACCOUNT_LEN)
        .await;
    let wrong_size = ix::create_market(
        &admin.pubkey(),
        args,
        &bids,
        &small,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.refused(
        "create_market",
        &[wrong_size],
        &[&admin],
        error_code(KestrelError::InvalidMarketAccount),
    )
    .await;
}

#[tokio::test]
async fn params_and_status_change_only_by_the_admin_and_only_validly() {
    let Setup {
        mut h,
        admin,
        pyth,
        switchboard,
    } = setup().await;
    let (bids, asks, queue) = h.market_accounts().await;
    let create = ix::create_market(
        &admin.pubkey(),
        market_args(0, market_params(&switchboard)),
        &bids,
        &asks,
        &queue,
        &pyth,
        Some(switchboard),
    );
    h.ok("create_market", &[create], &[&admin]).await;
    let market = pda::market(&h.exchange, 0);

    let mut tighter = market_params(&switchboard);
    tighter.initial_margin_bps = 2_000;
    tighter.oracle.fallback_kind = OracleKind::None;
    tighter.oracle.fallback_feed = [0; 32];
    let set = ix::set_market_params(&admin.pubkey(), &market, tighter, &pyth, None);
    h.ok("set_market_params", &[set], &[&admin]).await;
    let state = decode::market(&h.chain.account(&market).await.unwrap().data).unwrap();
    assert_eq!(
        (state.initial_margin_bps, state.fallback_kind),
        (2_000, OracleKind::None as u8)
    );

    let mallory = h.user(0).await;
    let set = ix::set_market_params(&mallory.pubkey(), &market, tighter, &pyth, None);
    h.refused(
        "set_market_params",
        &[set],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let mut invalid = tighter;
    invalid.max_fills_per_order = 0;
    let set = ix::set_market_params(&admin.pubkey(), &market, invalid, &pyth, None);
    h.refused(
        "set_market_params",
        &[set],
        &[&admin],
        error_code(KestrelError::InvalidMatchLimit),
    )
    .await;

    let status = |s| ix::set_market_status(&admin.pubkey(), &market, s);
    h.refused(
        "set_market_status",
        &[status(MarketStatus::Closed)],
        &[&admin],
        error_code(KestrelError::InvalidStatusTransition),
    )
    .await;
    h.ok(
        "set_market_status",
        &[status(MarketStatus::ReduceOnly)],
        &[&admin],
    )
    .await;
    h.ok(
        "set_market_status",
        &[status(MarketStatus::Paused)],
        &[&admin],
    )
    .await;
    h.ok(
        "set_market_status",
        &[status(MarketStatus::Closed)],
        &[&admin],
    )
    .await;
    h.refused(
        "set_market_status",
        &[status(MarketStatus::Active)],
        &[&admin],
        error_code(KestrelError::InvalidStatusTransition),
    )
    .await;
    let set = ix::set_market_params(&admin.pubkey(), &market, tighter, &pyth, None);
    h.refused(
        "set_market_params",
        &[set],
        &[&admin],
        error_code(KestrelError::InvalidStatusTransition),
    )
    .await;
    let mallory_status = ix::set_market_status(&mallory.pubkey(), &market, MarketStatus::Active);
    h.refused(
        "set_market_status",
        &[mallory_status],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
}
