//! Markets: creation with their book and queue accounts, parameters, status.
use kestrel::engine::{BookSide, EventQueue, Side, BOOK_SIDE_ORDERS, EVENT_QUEUE_EVENTS};
use kestrel::instructions::CreateMarketArgs;
use kestrel::state::{MarketStatus, OracleKind};
use kestrel_sdk::{decode, ix, pda, Pubkey};
use kestrel_tests::*;
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

/// An exchange with fresh oracle feeds, an underlying reading them and
/// unformatted market accounts.
struct Setup {
    h: Harness,
    admin: Keypair,
    pyth: Pubkey,
    switchboard: Pubkey,
    underlying: ix::UnderlyingAccounts,
    bids: Pubkey,
    asks: Pubkey,
    queue: Pubkey,
}

impl Setup {
    async fn new() -> Self {
        let mut h = Harness::new().await;
        let admin = h.admin.insecure_clone();
        let (pyth, switchboard) = h.oracle_accounts().await;
        let underlying = h
            .create_underlying(1, oracle_config(&switchboard), pyth, switchboard)
            .await;
        let (bids, asks, queue) = h.market_accounts().await;
        Self {
            h,
            admin,
            pyth,
            switchboard,
            underlying,
            bids,
            asks,
            queue,
        }
    }

    /// Market 0 on the setup's underlying.
    fn args(&self) -> CreateMarketArgs {
        market_args(0, perp_params())
    }

    /// `create_market` by the admin with this setup's accounts.
    fn create(&self, args: CreateMarketArgs) -> Instruction {
        self.create_with(args, self.asks)
    }

    /// As [`Self::create`], with other asks.
    fn create_with(&self, args: CreateMarketArgs, asks: Pubkey) -> Instruction {
        ix::create_market(
            &self.admin.pubkey(),
            args,
            &self.bids,
            &asks,
            &self.queue,
            &self.underlying.underlying,
        )
    }

    /// `create_underlying` 2 by the admin from these oracle accounts.
    fn create_underlying(&self, primary: Pubkey, fallback: Option<Pubkey>) -> Instruction {
        ix::create_underlying(
            &self.admin.pubkey(),
            underlying_args(2, oracle_config(&self.switchboard)),
            &primary,
            fallback,
        )
    }

    async fn refused(&mut self, instruction: Instruction, code: u32) {
        let admin = self.admin.insecure_clone();
        self.h
            .refused("create_market", &[instruction], &[&admin], code)
            .await;
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
    let mut s = Setup::new().await;
    let create = s.create(s.args());
    let admin = s.admin.insecure_clone();
    s.h.ok("create_market", &[create], &[&admin]).await;

    let address = pda::market(&s.h.exchange, 0);
    let market = decode::market(&s.h.chain.account(&address).await.unwrap().data).unwrap();
    assert_eq!(
        (market.bids, market.asks, market.event_queue),
        (s.bids, s.asks, s.queue)
    );
    assert_eq!(&market.name[..8], b"SOL-PERP");
    assert_eq!(
        (market.base_lot_size, market.quote_lot_size),
        (10_000_000, 100)
    );
    assert_eq!(
        (
            market.params.initial_margin_bps,
            market.params.maintenance_margin_bps
        ),
        (1_000, 500)
    );
    assert_eq!(
        (market.params.maker_fee_bps, market.params.taker_fee_bps),
        (-2, 5)
    );
    assert_eq!(market.underlying, s.underlying.underlying);
    assert_eq!(market.underlying_index, 1);
    let underlying = s.h.underlying_state(&s.underlying.underlying).await;
    assert_eq!(underlying.oracle.primary_kind, OracleKind::Pyth as u8);
    assert_eq!(underlying.oracle.fallback_feed, s.switchboard.to_bytes());
    assert!(
        underlying.prices.last_good_price().is_some(),
        "priced at listing"
    );
    assert_eq!(market.status().ok(), Some(MarketStatus::Active));

    for (account, side) in [(s.bids, Side::Bid), (s.asks, Side::Ask)] {
        let mut words = slab(&s.h.chain.account(&account).await.unwrap().data);
        let book = BookSide::load(bytemuck::cast_slice_mut(&mut words)).unwrap();
        assert_eq!(
            (book.side(), book.capacity(), book.len()),
            (side, BOOK_SIDE_ORDERS, 0)
        );
        book.check_invariants().unwrap();
    }
    let mut words = slab(&s.h.chain.account(&s.queue).await.unwrap().data);
    let events = EventQueue::load(bytemuck::cast_slice_mut(&mut words)).unwrap();
    assert_eq!((events.capacity(), events.len()), (EVENT_QUEUE_EVENTS, 0));

    // The same index again is refused: the market account exists.
    let (bids, asks, queue) = s.h.market_accounts().await;
    let again = ix::create_market(
        &admin.pubkey(),
        s.args(),
        &bids,
        &asks,
        &queue,
        &s.underlying.underlying,
    );
    s.h.refused_with("create_market", &[again], &[&admin], REINIT_REFUSAL)
        .await;
}

#[tokio::test]
async fn only_the_admin_creates_markets_with_valid_params() {
    let mut s = Setup::new().await;
    let mallory = s.h.user(0).await;
    let args = s.args();
    let by_mallory = ix::create_market(
        &mallory.pubkey(),
        args,
        &s.bids,
        &s.asks,
        &s.queue,
        &s.underlying.underlying,
    );
    s.h.refused(
        "create_market",
        &[by_mallory],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;

    let mut loose = s.args();
    loose.params.maintenance_margin_bps = loose.params.initial_margin_bps;
    s.refused(
        s.create(loose),
        error_code(KestrelError::InvalidMarginFractions),
    )
    .await;

    let mut generous = s.args();
    generous.params.maker_fee_bps = -6; // a rebate above the 5 bps taker fee
    s.refused(s.create(generous), error_code(KestrelError::InvalidFees))
        .await;

    let mut no_lots = s.args();
    no_lots.base_lot_size = 0;
    s.refused(s.create(no_lots), error_code(KestrelError::InvalidLotSize))
        .await;

    let mut nameless = s.args();
    nameless.name = [0; 16];
    s.refused(
        s.create(nameless),
        error_code(KestrelError::InvalidMarketName),
    )
    .await;
}

#[tokio::test]
async fn oracle_accounts_must_be_the_configured_feeds_of_the_real_programs() {
    let mut s = Setup::new().await;
    let refused = |code| error_code(code);
    let admin = s.admin.insecure_clone();

    // A Pyth-shaped account owned by someone else.
    let impostor = Pubkey::new_unique();
    let mut fake = oracles::pyth_update(PYTH_FEED, 1, 0, 0, 0, 1);
    fake.owner = Pubkey::new_unique();
    s.h.chain.set_account(&impostor, fake);
    let cases = [
        (
            impostor,
            Some(s.switchboard),
            KestrelError::OracleWrongOwner,
        ),
        // A fallback configured but not passed.
        (s.pyth, None, KestrelError::InvalidOracleConfig),
    ];
    for (primary, fallback, code) in cases {
        let create = s.create_underlying(primary, fallback);
        s.h.refused("create_underlying", &[create], &[&admin], refused(code))
            .await;
    }

    // A real Pyth update of another feed.
    let other_feed = Pubkey::new_unique();
    s.h.chain
        .set_account(&other_feed, oracles::pyth_update([9; 32], 1, 0, 0, 0, 1));
    let create = s.create_underlying(other_feed, Some(s.switchboard));
    s.h.refused(
        "create_underlying",
        &[create],
        &[&admin],
        refused(KestrelError::OracleWrongFeed),
    )
    .await;

    // A Switchboard feed other than the configured one.
    let other_switchboard = Pubkey::new_unique();
    s.h.chain
        .set_account(&other_switchboard, oracles::switchboard_feed(1, 0, 0, 1));
    let create = s.create_underlying(s.pyth, Some(other_switchboard));
    s.h.refused(
        "create_underlying",
        &[create],
        &[&admin],
        refused(KestrelError::OracleWrongFeed),
    )
    .await;

    // Refresh checks the same: the configured feeds only.
    let refresh = ix::refresh_underlying(&ix::UnderlyingAccounts {
        primary_oracle: other_feed,
        ..s.underlying
    });
    s.h.refused(
        "refresh_underlying",
        &[refresh],
        &[],
        refused(KestrelError::OracleWrongFeed),
    )
    .await;
    let refresh = ix::refresh_underlying(&ix::UnderlyingAccounts {
        fallback_oracle: None,
        ..s.underlying
    });
    s.h.refused(
        "refresh_underlying",
        &[refresh],
        &[],
        refused(KestrelError::WrongOracleAccount),
    )
    .await;
}

#[tokio::test]
async fn book_and_queue_accounts_must_be_distinct_and_sized() {
    let mut s = Setup::new().await;
    // One account as both sides: Anchor's `zero` refuses a repeated account.
    let same = s.create_with(s.args(), s.bids);
    s.refused(same, error_code(AnchorErrorCode::ConstraintZero))
        .await;
    // An event-queue-sized account as the asks.
    let small =
        s.h.chain
            .create_owned_account(&kestrel::ID, ix::EVENT_QUEUE_ACCOUNT_LEN)
            .await;
    let wrong_size = s.create_with(s.args(), small);
    s.refused(wrong_size, error_code(KestrelError::InvalidMarketAccount))
        .await;
}

#[tokio::test]
async fn params_and_status_change_only_by_the_admin_and_only_validly() {
    let mut s = Setup::new().await;
    let admin = s.admin.insecure_clone();
    s.h.ok("create_market", &[s.create(s.args())], &[&admin])
        .await;
    let market = pda::market(&s.h.exchange, 0);
    let h = &mut s.h;

    let mut tighter = perp_params();
    tighter.initial_margin_bps = 2_000;
    let set = |params| ix::set_market_params(&admin.pubkey(), &market, params);
    h.ok("set_market_params", &[set(tighter)], &[&admin]).await;
    let state = decode::market(&h.chain.account(&market).await.unwrap().data).unwrap();
    assert_eq!(state.params.initial_margin_bps, 2_000);

    // The underlying's oracle: the fallback dropped, by the admin only.
    let mut primary_only = oracle_config(&s.switchboard);
    primary_only.fallback_kind = OracleKind::None;
    primary_only.fallback_feed = [0; 32];
    let pyth_only = ix::UnderlyingAccounts {
        fallback_oracle: None,
        ..s.underlying
    };
    let mallory = h.user(0).await;
    let by_mallory = ix::set_underlying_oracle(&mallory.pubkey(), &pyth_only, primary_only);
    h.refused(
        "set_underlying_oracle",
        &[by_mallory],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let set_oracle = ix::set_underlying_oracle(&admin.pubkey(), &pyth_only, primary_only);
    h.ok("set_underlying_oracle", &[set_oracle], &[&admin])
        .await;
    let underlying = h.underlying_state(&s.underlying.underlying).await;
    assert_eq!(underlying.oracle.fallback_kind, OracleKind::None as u8);
    assert_eq!(
        underlying.prices.fallback,
        Default::default(),
        "a replaced feed starts a new record"
    );

    let by_mallory = ix::set_market_params(&mallory.pubkey(), &market, tighter);
    h.refused(
        "set_market_params",
        &[by_mallory],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let mut invalid = tighter;
    invalid.max_fills_per_order = 0;
    h.refused(
        "set_market_params",
        &[set(invalid)],
        &[&admin],
        error_code(KestrelError::InvalidMatchLimit),
    )
    .await;

    let status = |status| ix::set_market_status(&admin.pubkey(), &market, status);
    let not_allowed = error_code(KestrelError::InvalidStatusTransition);
    h.refused(
        "set_market_status",
        &[status(MarketStatus::Closed)],
        &[&admin],
        not_allowed,
    )
    .await;
    for next in [
        MarketStatus::ReduceOnly,
        MarketStatus::Paused,
        MarketStatus::Closed,
    ] {
        h.ok("set_market_status", &[status(next)], &[&admin]).await;
    }
    h.refused(
        "set_market_status",
        &[status(MarketStatus::Active)],
        &[&admin],
        not_allowed,
    )
    .await;
    h.refused("set_market_params", &[set(tighter)], &[&admin], not_allowed)
        .await;
    let by_mallory = ix::set_market_status(&mallory.pubkey(), &market, MarketStatus::Active);
    h.refused(
        "set_market_status",
        &[by_mallory],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
}

/// Every accepted price feeds the underlying's realized volatility: minute
/// returns (a refresh within the minute leaves the anchor), averaged as the
/// engine computes it from the same prices and publish times.
#[tokio::test]
async fn refreshes_feed_the_realized_volatility() {
    use kestrel::engine::realized_volatility::RealizedVolatility;
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let underlying = market.underlying.underlying;
    let mut expected = RealizedVolatility::default();
    let mut record = |state: &kestrel::state::Underlying| {
        let last = &state.prices.last_good;
        expected.record(last.price().unwrap(), last.publish_time);
        expected
    };
    let state = h.underlying_state(&underlying).await;
    record(&state);
    assert_eq!(
        state.realized().volatility(),
        None,
        "one price: no return yet"
    );
    for (seconds, price) in [(30, 151), (30, 149), (60, 152), (600, 147), (3_600, 150)] {
        h.advance_clock(seconds).await;
        h.set_oracle_price(&market, price).await;
        let state = h.underlying_state(&underlying).await;
        assert_eq!(
            *state.realized(),
            record(&state),
            "after {seconds} s at {price}"
        );
    }
    let state = h.underlying_state(&underlying).await;
    let volatility = state.realized().volatility().unwrap().to_num::<f64>();
    // Four returns (the first half-minute's refreshes moved no anchor).
    assert!(volatility > 0.1 && volatility < 10.0, "{volatility}");
    h.check_invariants("realized volatility").await;
}
