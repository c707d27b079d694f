//! Dated futures on an underlying shared with a perpetual: trading at the
//! underlying's price plus a basis, the settlement window's TWAP sampled by
//! a crank (a missed sample held, not fatal), expiry, settlement in cash
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
        expiry: now + 2 * HOUR,
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
    late.expiry = t.h.now().await + i64::from(WINDOW);
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

    // The window: 150 at its start, 160 after 10 minutes; the keeper misses
    // the last 10 minutes (the price is 170 then, unsampled).
    let start = expiry - i64::from(WINDOW);
    at(&mut t, start, 150).await;
    t.h.ok("sample_settlement", &[ix::sample_settlement(&future)], &[])
        .await;
    // A second keeper in the same second changes nothing.
    let before = t.h.market_state(&future.market).await.future.settlement;
    t.h.ok("sample again", &[ix::sample_settlement(&future)], &[])
        .await;
    assert_eq!(
        t.h.market_state(&future.market).await.future.settlement,
        before
    );
    // Ten minutes in, at 160, the keeper is down: carol's order samples
    // the window (every order in it does), so a sampler cannot pick the
    // prices that count by sampling only when they suit it.
    at(&mut t, start + 600, 160).await;
    let carol = t.h.user(100 * ONE_TOKEN).await;
    t.h.deposit(&carol, 100 * ONE_TOKEN).await;
    t.h.place(&carol, &future, order(BID, OrderType::PostOnly, 15_100, 1))
        .await;
    let twap = t.h.market_state(&future.market).await.future.settlement;
    assert_eq!((twap.samples, twap.last_time), (2, start + 600));
    at(&mut t, start + 1_200, 170).await;

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
    t.h.refused(
        "sample after the window",
        &[ix::sample_settlement(&future)],
        &[],
        code(KestrelError::OutsideSettlementWindow),
    )
    .await;

    // Until its price is fixed an expired future counts at the window's
    // average so far (what it settles at), not the spot price: bob's long of
    // 10 lots bought at 151.00 shows the profit at 156.67, not at 170.
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let at_twap = I80F48::from_num(1_000 * ONE_TOKEN - 7_550 + 566_666 - 783_333);
    assert!(
        (health.maintenance - at_twap).abs() < 5,
        "{health:?} vs {at_twap}"
    );
    // The first settlement call fixes the price: (150 x 600 + 160 x 1200) /
    // 1800 = 156.666..., 170 never counted.
    let (alice_before, bob_before) = (
        t.h.collateral(&t.alice.margin_account).await,
        t.h.collateral(&t.bob.margin_account).await,
    );
    t.h.ok("settle_expired", &[ix::settle_expired(&future, None)], &[])
        .await;
    let market = t.h.market_state(&future.market).await;
    assert_eq!(market.status(), MarketStatus::Settled);
    let price = market.settlement_price().expect("fixed");
    let exact = I80F48::from_num(470) / 3_000; // 156.67 USDC per SOL, native
    assert!((price - exact).abs() < I80F48::from_num(1) / 1_000_000_000);
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
    // 10 lots of 0.01 SOL: bob bought at 151.00 (15.10 USDC) and receives
    // 15.666666 (rounded down); alice pays 15.666667 (rounded up).
    assert_eq!(
        t.h.collateral(&t.bob.margin_account).await - bob_before,
        15_666_666 - 15_100_000
    );
    assert_eq!(
        t.h.collateral(&t.alice.margin_account).await - alice_before,
        15_100_000 - 15_666_667
    );
    let market = t.h.market_state(&future.market).await;
    assert_eq!(market.status(), MarketStatus::Closed, "nothing left");
    assert_eq!((market.long_lots, market.short_lots), (0, 0));
    assert_eq!(market.funding_balance_native, 1, "the rounding stays");
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
    // profit 100,000, initial margin 10% of 15.20 USDC.
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let expected = I80F48::from_num(1_000 * ONE_TOKEN - 7_550 + 100_000 - 1_520_000);
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
async fn an_emergency_delist_settles_a_perpetual_at_its_twap() {
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
    t.h.ok("sample_settlement", &[ix::sample_settlement(&perp)], &[])
        .await;
    t.h.advance_clock(300).await;
    t.h.set_oracle_price(&perp, 140).await;
    t.h.ok("sample_settlement", &[ix::sample_settlement(&perp)], &[])
        .await;
    t.h.advance_clock(300).await;
    t.h.set_oracle_price(&perp, 140).await;
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
    assert_eq!(market.status(), MarketStatus::Closed);
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
