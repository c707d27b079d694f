//! Dated futures on an underlying shared with a perpetual: trading at the
//! underlying's price plus a basis, the settlement average over the
//! underlying's price integral (uncovered minutes not counted, captures by
//! anyone alike), expiry, settlement in cash
//! account by account, Settled -> Closed; and the same path delisting a
//! perpetual in an emergency. The harness checks conservation, Σ base lots
//! = 0 and the books after every transaction.
use fixed::types::I80F48;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{FutureParams, MarketStatus};
use kestrel_sdk::ix;
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const HOUR: i64 = 3_600;
/// Settlement window and the rest of the future's parameters.
const WINDOW: u32 = 1_800;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

fn future_params(now: i64) -> FutureParams {
    FutureParams {
        // On the minute grid of the underlying's price integral.
        expiry: minute_of(now + 2 * HOUR),
        settlement_window_seconds: WINDOW,
        max_basis_bps: 200,
        basis_window_seconds: 600,
        convergence_seconds: 3_600,
    }
}

struct Listed {
    h: Harness,
    perp: ix::MarketAccounts,
    future: ix::MarketAccounts,
    params: FutureParams,
    alice: User,
    bob: User,
}

/// SOL-PERP (market 0, underlying 0) and a SOL future (market 1) on the
/// same underlying; alice and bob hold 1,000 USDC each.
async fn listed() -> Listed {
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    let params = future_params(h.now().await);
    let future = h
        .create_future_on(1, &perp.underlying, perp_params(), params)
        .await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 1_000 * ONE_TOKEN).await;
    Listed {
        h,
        perp,
        future,
        params,
        alice,
        bob,
    }
}

/// Alice asks `lots` at `price`; bob takes them: bob long, alice short.
async fn trade(t: &mut Listed, price: u64, lots: u64) {
    let future = t.future;
    let ask = order(ASK, OrderType::Limit, price, lots);
    t.h.place(&t.alice, &future, ask).await;
    let take = order(BID, OrderType::ImmediateOrCancel, price, lots);
    t.h.place(&t.bob, &future, take).await;
    t.h.crank(&future, 8).await;
}

/// Moves the clock to `at` (unix seconds) and publishes `price`.
async fn at(t: &mut Listed, at: i64, price: i64) {
    let now = t.h.now().await;
    t.h.advance_clock(at - now).await;
    let perp = t.perp;
    t.h.set_oracle_price(&perp, price).await;
}

#[tokio::test]
async fn a_dated_future_trades_expires_and_settles_in_cash() {
    let mut t = listed().await;
    let (future, expiry) = (t.future, t.params.expiry);
    // Listing checks the future's own parameters.
    let admin = t.h.admin.insecure_clone();
    let (bids, asks, queue) = t.h.market_accounts().await;
    let mut late = future_params(t.h.now().await);
    late.expiry = minute_of(t.h.now().await + i64::from(WINDOW));
    let create = ix::create_future_market(
        &admin.pubkey(),
        market_args(2, perp_params()),
        late,
        &bids,
        &asks,
        &queue,
        &future.underlying.underlying,
    );
    t.h.refused(
        "a future expiring inside its window",
        &[create],
        &[&admin],
        code(KestrelError::InvalidFutureParams),
    )
    .await;

    // Bob buys 10 lots at 151.00 from alice; she keeps a bid at 150.00 and
    // an ask at 152.00 resting: the book's mid is 151.00, 1.00 over the
    // underlying.
    trade(&mut t, 15_100, 10).await;
    // The position is tagged with its market's kind, in a versioned account.
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert_eq!(bob.version, kestrel::state::MARGIN_ACCOUNT_VERSION);
    assert_eq!(
        bob.position(1).map(|p| p.kind),
        Some(kestrel::state::InstrumentKind::Future as u8)
    );
    t.h.place(&t.alice, &future, order(BID, OrderType::Limit, 15_000, 5))
        .await;
    t.h.place(&t.alice, &future, order(ASK, OrderType::Limit, 15_200, 5))
        .await;
    // The first sample starts the basis at zero; the book standing for a
    // whole basis window (600 s) then carries it to the premium.
    t.h.ok("update_basis", &[ix::update_basis(&future)], &[])
        .await;
    let zero = t.h.market_state(&future.market).await.future.basis();
    assert_eq!(zero.basis(), I80F48::ZERO, "one instant sets nothing");
    let now = t.h.now().await;
    at(&mut t, now + 600, 150).await;
    t.h.ok("update_basis", &[ix::update_basis(&future)], &[])
        .await;
    let basis = t.h.market_state(&future.market).await.future.basis();
    // 1.00 USDC per SOL: 0.001 native quote per native base.
    let one = I80F48::from_num(1) / 1_000;
    assert!((basis.basis() - one).abs() < I80F48::from_num(1) / 1_000_000_000);
    // Funding is a perpetual's: a future has none.
    t.h.refused(
        "update_funding on a future",
        &[ix::update_funding(&future)],
        &[],
        code(KestrelError::WrongMarketKind),
    )
    .await;
    // Before the window nothing is sampled, and nothing settles.
    t.h.refused(
        "sample before the window",
        &[ix::sample_settlement(&future)],
        &[],
        code(KestrelError::OutsideSettlementWindow),
    )
    .await;
    t.h.refused(
        "settle before expiry",
        &[ix::settle_expired(&future, Some(t.bob.margin_account))],
        &[],
        code(KestrelError::MarketNotExpired),
    )
    .await;

    // Off the minute grid, no window can be averaged between checkpoints.
    let mut off_grid = future_params(t.h.now().await);
    off_grid.expiry += 30;
    let create = ix::create_future_market(
        &admin.pubkey(),
        market_args(2, perp_params()),
        off_grid,
        &bids,
        &asks,
        &queue,
        &future.underlying.underlying,
    );
    t.h.refused(
        "an expiry off the minute grid",
        &[create],
        &[&admin],
        code(KestrelError::InvalidFutureParams),
    )
    .await;

    // The window: the underlying refreshed every minute at 150 for ten
    // minutes, then at 160 for fifteen; then its feed falls silent until
    // after expiry. Only refreshed prices count, each for at most the
    // underlying's maximum age (60 s): the last five minutes are uncovered
    // (an average must cover three quarters of its window).
    let start = expiry - i64::from(WINDOW);
    at(&mut t, start - 120, 150).await;
    let perp = t.perp;
    t.h.publish_each_minute(&perp, start, 150).await;
    t.h.ok("sample_settlement", &[ix::sample_settlement(&future)], &[])
        .await;
    let captured = t.h.market_state(&future.market).await.future.settlement();
    assert_eq!(
        (captured.start.time, captured.covered_seconds()),
        (start, 0)
    );
    // A second capture changes nothing.
    t.h.ok("sample again", &[ix::sample_settlement(&future)], &[])
        .await;
    assert_eq!(
        t.h.market_state(&future.market).await.future.settlement(),
        captured
    );
    // Each price counts until the next or for a minute (its maximum age):
    // 150 published through minute 9 covers the first ten minutes, 160
    // through minute 24 the next fifteen.
    t.h.publish_each_minute(&perp, start + 540, 150).await;
    t.h.publish_each_minute(&perp, start + 1_440, 160).await;
    // Carol's order in the window captures too: what anyone copies is the
    // underlying's integral, so when a capture happens decides nothing.
    let carol = t.h.user(100 * ONE_TOKEN).await;
    t.h.deposit(&carol, 100 * ONE_TOKEN).await;
    t.h.place(&carol, &future, order(BID, OrderType::PostOnly, 15_100, 1))
        .await;
    let captured = t.h.market_state(&future.market).await.future.settlement();
    assert_eq!(
        (captured.end.time, captured.covered_seconds()),
        (start + 1_440, 1_440)
    );

    // At expiry trading stops; positions are no longer liquidated but settled.
    at(&mut t, expiry + 1, 170).await;
    let bid =
        t.h.place_ix(&t.bob, &future, order(BID, OrderType::Limit, 17_000, 1))
            .await;
    t.h.refused(
        "an order at expiry",
        &[bid],
        &[&t.bob.key],
        code(KestrelError::MarketExpired),
    )
    .await;
    // The refresh at expiry wrote the expiry's checkpoint; a capture after
    // expiry copies it (170, published after expiry, never counts).
    t.h.ok(
        "sample after expiry",
        &[ix::sample_settlement(&future)],
        &[],
    )
    .await;
    let captured = t.h.market_state(&future.market).await.future.settlement();
    assert_eq!(
        (captured.end.time, captured.covered_seconds()),
        (expiry, 1_500)
    );

    // Until its price is fixed an expired future counts at the average so
    // far (what it settles at), not the spot price: bob's long of 10 lots
    // bought at 151.00 shows the profit at 156.00, not at 170.
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let at_average = I80F48::from_num(1_000 * ONE_TOKEN - 7_550 + 500_000 - 780_000);
    assert!(
        (health.maintenance - at_average).abs() < 5,
        "{health:?} vs {at_average}"
    );
    // The first settlement call fixes the price: (150 x 600 + 160 x 900) /
    // 1500 = 156.00 over the covered 25 minutes, 170 never counted.
    let (alice_before, bob_before) = (
        t.h.collateral(&t.alice.margin_account).await,
        t.h.collateral(&t.bob.margin_account).await,
    );
    t.h.ok("settle_expired", &[ix::settle_expired(&future, None)], &[])
        .await;
    let market = t.h.market_state(&future.market).await;
    assert_eq!(market.status().ok(), Some(MarketStatus::Settled));
    let price = market.settlement_price().expect("fixed");
    let exact = I80F48::from_num(156) / 1_000; // 156.00 USDC per SOL, native
    assert!((price - exact).abs() < I80F48::from_num(1) / 1_000_000_000);
    // 10 lots of 0.01 SOL: bob bought at 151.00 (15.10 USDC) and receives
    // the value rounded down; alice pays it rounded up.
    let value = |lots| {
        kestrel::engine::future::settlement_value(lots, market.base_lot_size, price).unwrap()
    };
    let (long_value, short_value) = (value(10), value(-10));
    assert!((15_599_999..=15_600_000).contains(&long_value));
    for user in [&t.bob, &t.alice, &carol] {
        let settle = ix::settle_expired(&future, Some(user.margin_account));
        t.h.ok("settle_expired", std::slice::from_ref(&settle), &[])
            .await;
        let account = t.h.margin_account(&user.margin_account).await;
        assert!(account.position(1).is_none(), "settled and released");
        // An account settles once: again (while others are left), nothing
        // changes.
        if user.margin_account != carol.margin_account {
            t.h.ok("settle an account again", &[settle], &[]).await;
            let again = t.h.margin_account(&user.margin_account).await;
            assert_eq!(again.collateral, account.collateral);
        }
    }
    assert_eq!(
        t.h.collateral(&t.bob.margin_account).await - bob_before,
        long_value - 15_100_000
    );
    assert_eq!(
        t.h.collateral(&t.alice.margin_account).await - alice_before,
        15_100_000 + short_value
    );
    let market = t.h.market_state(&future.market).await;
    assert_eq!(
        market.status().ok(),
        Some(MarketStatus::Closed),
        "nothing left"
    );
    assert_eq!((market.long_lots, market.short_lots), (0, 0));
    assert_eq!(
        market.funding_balance_native,
        -(long_value + short_value),
        "the rounding stays"
    );
    // Closed is terminal: nothing settles again; the perpetual trades on.
    t.h.refused(
        "settle a closed market",
        &[ix::settle_expired(&future, Some(t.bob.margin_account))],
        &[],
        code(KestrelError::MarketNotTrading),
    )
    .await;
    let perp = t.perp;
    t.h.place(&t.alice, &perp, order(ASK, OrderType::Limit, 17_100, 1))
        .await;
}

#[tokio::test]
async fn the_futures_mark_carries_the_basis_and_one_instant_cannot_move_it() {
    let mut t = listed().await;
    let future = t.future;
    trade(&mut t, 15_100, 10).await;
    // A book at 149.00 / 155.00: mid 152.00, 2.00 over the underlying
    // (inside the 2% bound, 3.00).
    t.h.place(&t.alice, &future, order(BID, OrderType::Limit, 14_900, 1))
        .await;
    t.h.place(&t.alice, &future, order(ASK, OrderType::Limit, 15_500, 1))
        .await;
    t.h.ok("update_basis", &[ix::update_basis(&future)], &[])
        .await;
    let now = t.h.now().await;
    at(&mut t, now + 600, 150).await;
    t.h.ok("update_basis", &[ix::update_basis(&future)], &[])
        .await;
    let basis = |m: &kestrel::state::Market| m.future.basis().basis();
    let two = I80F48::from_num(2) / 1_000; // 2.00 USDC per SOL, native
    let first = basis(&t.h.market_state(&future.market).await);
    assert!((first - two).abs() < I80F48::from_num(1) / 1_000_000_000);
    // A spoofed bid and a second sample in the same second change nothing,
    // not even the premium the next interval starts from.
    let before = t.h.market_state(&future.market).await.future;
    t.h.place(&t.bob, &future, order(BID, OrderType::PostOnly, 15_400, 1))
        .await;
    t.h.ok("update_basis again", &[ix::update_basis(&future)], &[])
        .await;
    assert_eq!(t.h.market_state(&future.market).await.future, before);
    let cancel = ix::cancel_all(&t.bob.pubkey(), &t.bob.margin_account, &future, None, 8);
    t.h.ok("cancel_all", &[cancel], &[&t.bob.key]).await;
    // Bob's long of 10 lots bought at 151.00 is marked at 152.00: fee 7,550,
    // profit 100,000 (of which initial health counts half), initial margin
    // 10% of 15.20 USDC.
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let expected = I80F48::from_num(1_000 * ONE_TOKEN - 7_550 + 100_000 / 2 - 1_520_000);
    assert!((health.initial - expected).abs() < 2, "{health:?}");
    // Orders band around the mark (152.00 +- 4%), not the bare underlying
    // (150.00 +- 4%): a bid at 157.00 trades, one at 158.10 does not.
    let over =
        t.h.place_ix(&t.bob, &future, order(BID, OrderType::Limit, 15_810, 1))
            .await;
    t.h.refused(
        "a bid over the mark's band",
        &[over],
        &[&t.bob.key],
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    t.h.place(&t.bob, &future, order(BID, OrderType::Limit, 15_700, 1))
        .await;
    t.h.crank(&future, 8).await;
    // An attacker's book of one instant, sampled after a long gap: 155.00 /
    // 156.00 (a 5.50 premium, past the bound). The interval counts the
    // smaller of its two ends' premiums, so the basis stays at 2.00.
    t.h.advance_clock(3_000).await;
    let perp = t.perp;
    t.h.set_oracle_price(&perp, 150).await;
    let cancel = ix::cancel_all(&t.alice.pubkey(), &t.alice.margin_account, &future, None, 8);
    t.h.ok("cancel_all", &[cancel], &[&t.alice.key]).await;
    t.h.place(&t.alice, &future, order(BID, OrderType::Limit, 15_500, 1))
        .await;
    t.h.place(&t.alice, &future, order(ASK, OrderType::Limit, 15_600, 1))
        .await;
    t.h.ok("update_basis", &[ix::update_basis(&future)], &[])
        .await;
    let after = basis(&t.h.market_state(&future.market).await);
    assert!(
        (after - two).abs() < I80F48::from_num(1) / 1_000_000_000,
        "{after}"
    );
    // The mark meets the underlying at expiry: the basis fades over the
    // last hour, so at expiry bob's long counts at the underlying's price.
    let expiry = t.params.expiry;
    at(&mut t, expiry - 1, 150).await;
    let late = t.h.health_preview(&t.bob.margin_account).await;
    assert!(
        late.initial < health.initial,
        "the basis has faded: {late:?}"
    );
}

#[tokio::test]
async fn an_emergency_delist_settles_a_perpetual_at_its_average_price() {
    let mut t = listed().await;
    let perp = t.perp;
    // Bob long 10 at 150.00 on the perpetual.
    t.h.place(&t.alice, &perp, order(ASK, OrderType::Limit, 15_000, 10))
        .await;
    t.h.place(
        &t.bob,
        &perp,
        order(BID, OrderType::ImmediateOrCancel, 15_000, 10),
    )
    .await;
    t.h.place(&t.alice, &perp, order(ASK, OrderType::Limit, 15_100, 3))
        .await;
    let admin = t.h.admin.insecure_clone();
    // Not by anyone else, and not while it trades.
    let by_bob = ix::delist_market(&t.bob.pubkey(), &perp.market, 600);
    t.h.refused(
        "delist by a user",
        &[by_bob],
        &[&t.bob.key],
        code(KestrelError::NotAdmin),
    )
    .await;
    let off_grid = ix::delist_market(&admin.pubkey(), &perp.market, 630);
    let delist = ix::delist_market(&admin.pubkey(), &perp.market, 600);
    t.h.refused(
        "delist while trading",
        std::slice::from_ref(&delist),
        &[&admin],
        code(KestrelError::InvalidStatusTransition),
    )
    .await;
    let pause = ix::set_market_status(&admin.pubkey(), &perp.market, MarketStatus::Paused);
    t.h.ok("pause", &[pause], &[&admin]).await;
    t.h.refused(
        "a window of no whole minutes",
        &[off_grid],
        &[&admin],
        code(KestrelError::InvalidFutureParams),
    )
    .await;
    t.h.ok("delist_market", std::slice::from_ref(&delist), &[&admin])
        .await;
    // A market with an expiry closes by settling, not by the admin.
    let close = ix::set_market_status(&admin.pubkey(), &perp.market, MarketStatus::Closed);
    t.h.refused(
        "close a delisted market",
        &[close],
        &[&admin],
        code(KestrelError::InvalidStatusTransition),
    )
    .await;
    t.h.refused(
        "delist twice",
        &[delist],
        &[&admin],
        code(KestrelError::MarketDelisted),
    )
    .await;
    // Funding stops; the window is open at once; a fill waiting in the
    // queue holds settlement up until the crank.
    t.h.refused(
        "funding on a delisted market",
        &[ix::update_funding(&perp)],
        &[],
        code(KestrelError::MarketDelisted),
    )
    .await;
    // It cannot trade again.
    let resume = ix::set_market_status(&admin.pubkey(), &perp.market, MarketStatus::Active);
    t.h.refused(
        "resume a delisted market",
        &[resume],
        &[&admin],
        code(KestrelError::MarketDelisted),
    )
    .await;
    // The window opens at the next minute and lasts ten: 150 for five
    // minutes, then 140, refreshed every minute.
    let params = t.h.market_state(&perp.market).await.future.params;
    assert_eq!(params.window_start() % 60, 0, "on the minute grid");
    assert_eq!(params.expiry - params.window_start(), 600);
    t.h.publish_each_minute(&perp, params.window_start(), 150)
        .await;
    t.h.ok("sample_settlement", &[ix::sample_settlement(&perp)], &[])
        .await;
    t.h.publish_each_minute(&perp, params.window_start() + 240, 150)
        .await;
    t.h.publish_each_minute(&perp, params.expiry, 140).await;
    t.h.refused(
        "settle with a fill waiting",
        &[ix::settle_expired(&perp, None)],
        &[],
        code(KestrelError::CrankRequired),
    )
    .await;
    t.h.crank(&perp, 8).await;
    for user in [&t.alice, &t.bob] {
        let settle = ix::settle_expired(&perp, Some(user.margin_account));
        t.h.ok("settle_expired", &[settle], &[]).await;
    }
    // (150 x 300 + 140 x 300) / 600 = 145.00: bob loses 5.00 x 0.1 SOL.
    let market = t.h.market_state(&perp.market).await;
    assert_eq!(market.status().ok(), Some(MarketStatus::Closed));
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(bob.position(0).is_none());
    // The average is rounded down (binary fixed point), and bob's value
    // with it: he may receive one unit less, never more.
    let expected = 1_000 * ONE_TOKEN as i64 - 500_000 - 7_500;
    assert!(
        (expected - 1..=expected).contains(&bob.collateral),
        "the loss at 145.00 and the taker fee: {}",
        bob.collateral
    );
}

/// Whoever captures the settlement, and whenever, copies the underlying's
/// price integral: a future captured every minute through a swinging
/// window and its twin captured only at the window's start and after
/// expiry (by one who would pick the moments that suit it) settle at the
/// same price, the exact average of every refreshed minute.
#[tokio::test]
async fn who_captures_the_settlement_and_when_decides_nothing() {
    let mut t = listed().await;
    let params = t.params;
    let underlying = t.perp.underlying;
    let twin =
        t.h.create_future_on(2, &underlying, perp_params(), params)
            .await;
    let (future, perp) = (t.future, t.perp);
    let start = params.window_start();
    at(&mut t, start - 120, 150).await;
    t.h.publish_each_minute(&perp, start, 150).await;
    t.h.ok(
        "capture the twin's start",
        &[ix::sample_settlement(&twin)],
        &[],
    )
    .await;
    // 140 and 170 by turns, a minute each; at expiry itself 200, which
    // counts for neither.
    let price_of = |minute: i64| match minute {
        30 => 200,
        m if m % 2 == 0 => 140,
        _ => 170,
    };
    for minute in 1..=30 {
        t.h.publish_each_minute(&perp, start + 60 * minute, price_of(minute))
            .await;
        t.h.ok(
            "capture every minute",
            &[ix::sample_settlement(&future)],
            &[],
        )
        .await;
    }
    t.h.ok(
        "capture the twin once",
        &[ix::sample_settlement(&twin)],
        &[],
    )
    .await;
    for market in [&future, &twin] {
        t.h.ok("settle_expired", &[ix::settle_expired(market, None)], &[])
            .await;
    }
    let settled = t.h.market_state(&future.market).await;
    let twin_settled = t.h.market_state(&twin.market).await;
    assert_eq!(
        settled.future.settlement(),
        twin_settled.future.settlement()
    );
    assert_eq!(settled.settlement_price(), twin_settled.settlement_price());
    // (150 + 15 x 170 + 14 x 140) / 30 minutes = 155.33 USDC per SOL.
    let exact = I80F48::from_num(4_660) / 30_000;
    let price = settled.settlement_price().expect("fixed");
    assert!(
        (price - exact).abs() < I80F48::from_num(1) / 1_000_000_000,
        "{price}"
    );
    assert_eq!(settled.future.settlement().covered_seconds(), 1_800);
}

/// A window the underlying's feed left uncovered (nobody refreshed it)
/// does not settle at whatever price comes first: `settle_expired` waits,
/// and the average runs on past expiry, minute checkpoint by checkpoint,
/// until it covers three quarters of the window.
#[tokio::test]
async fn an_uncovered_window_waits_for_coverage_after_expiry() {
    let mut t = listed().await;
    let (future, perp, expiry) = (t.future, t.perp, t.params.expiry);
    trade(&mut t, 15_100, 10).await;
    at(&mut t, expiry + 1, 160).await;
    t.h.refused(
        "settle an uncovered window",
        &[ix::settle_expired(&future, None)],
        &[],
        code(KestrelError::SettlementNotCovered),
    )
    .await;
    // Refreshed every minute from expiry on, and captured each minute (as
    // the keeper does: a refused settlement stores nothing, and the ring
    // holds 16 minutes): settled once three quarters of the window (22.5
    // minutes) is covered, at the prices that covered it.
    let mut minutes = 0;
    loop {
        minutes += 1;
        assert!(minutes <= 30, "coverage must come");
        let now = t.h.now().await;
        t.h.publish_each_minute(&perp, now + 60, 160).await;
        t.h.ok("capture", &[ix::sample_settlement(&future)], &[])
            .await;
        let settle = ix::settle_expired(&future, None);
        match t.h.attempt("settle while covering", &[settle], &[]).await {
            Ok(()) => break,
            Err(refusal) => assert_eq!(refusal, code(KestrelError::SettlementNotCovered)),
        }
    }
    let market = t.h.market_state(&future.market).await;
    assert_eq!(market.status().ok(), Some(MarketStatus::Settled));
    let capture = market.future.settlement();
    assert!(capture.end.time > expiry && capture.covered_seconds() >= 1_350);
    let exact = I80F48::from_num(160) / 1_000;
    let price = market.settlement_price().expect("fixed");
    assert!(
        (price - exact).abs() < I80F48::from_num(1) / 1_000_000_000,
        "{price}"
    );
    for user in [&t.alice, &t.bob] {
        let settle = ix::settle_expired(&future, Some(user.margin_account));
        t.h.ok("settle_expired", &[settle], &[]).await;
    }
    assert_eq!(
        t.h.market_state(&future.market).await.status().ok(),
        Some(MarketStatus::Closed)
    );
}
