//! Trading: orders, the fill crank, positions, fees, health and oracles.
//!
//! Market 0 is SOL-PERP-like: a base lot is 0.01 SOL, a tick 0.0001 USDC per
//! lot, so 150 USDC per SOL is 15,000 ticks and one lot there is 1.5 USDC.
//! Fees: taker 5 bps, maker rebate 2 bps; margins 10% initial, 5% maintenance.
use kestrel::instructions::{OrderSide, OrderType, PlaceOrderArgs};
use kestrel::state::{MarketStatus, OracleKind};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
/// 150 USDC per SOL in ticks.
const PRICE: u64 = 15_000;
/// Native quote units of `lots` at `ticks` (quote lot = 100 native).
const fn notional(lots: u64, ticks: u64) -> u64 {
    lots * ticks * 100
}

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

struct Trading {
    h: Harness,
    market: MarketAccounts,
    alice: User,
    bob: User,
}

/// Market 0 and two traders with 1,000 USDC of collateral each.
async fn setup() -> Trading {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 1_000 * ONE_TOKEN).await;
    Trading {
        h,
        market,
        alice,
        bob,
    }
}

/// Alice rests 100 lots at 150; Bob takes 40 of them.
async fn crossed() -> Trading {
    let mut t = setup().await;
    t.h.place(
        &t.alice,
        &t.market,
        order(ASK, OrderType::Limit, PRICE, 100),
    )
    .await;
    t.h.place(&t.bob, &t.market, order(BID, OrderType::Limit, 15_100, 40))
        .await;
    t
}

async fn refused_order(t: &mut Trading, user: &User, args: PlaceOrderArgs, error: u32) {
    let place = t.h.place_ix(user, &t.market, args).await;
    t.h.refused("place_order", &[place], &[&user.key], error)
        .await;
}

#[tokio::test]
async fn two_traders_cross_and_the_crank_settles_the_maker() {
    let mut t = crossed().await;
    let quote = notional(40, PRICE) as i64; // 60 USDC
    let taker_fee = quote * 5 / 10_000; // 0.03 USDC
    let rebate = quote * 2 / 10_000;

    // The taker settled at once: position, entry quote and fee.
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    let position = bob.position(0).expect("bob holds a position");
    assert_eq!((position.base_lots, position.quote_native), (40, -quote));
    assert_eq!(bob.collateral, 1_000 * ONE_TOKEN as i64 - taker_fee);
    let market = t.h.market_state(&t.market.market).await;
    assert_eq!(market.fees_accrued, taker_fee as u64);
    assert_eq!(market.rebates_reserved, rebate as u64);

    // The maker waits for the crank: her 100 lots are still reserved.
    let alice = t.h.margin_account(&t.alice.margin_account).await;
    let position = alice.position(0).expect("alice's order keeps a slot");
    assert_eq!((position.base_lots, position.asks_base_lots), (0, 100));
    assert_eq!(t.h.pending_events(&t.market).await, 1);

    // A third party cranks and is paid from the fees.
    let cranker = t.h.user(0).await;
    let crank =
        t.h.crank_ix(&t.market, 8, Some(cranker.margin_account))
            .await;
    t.h.ok("consume_events", &[crank], &[]).await;
    assert_eq!(t.h.pending_events(&t.market).await, 0);
    let alice = t.h.margin_account(&t.alice.margin_account).await;
    let position = alice.position(0).unwrap();
    assert_eq!(
        (
            position.base_lots,
            position.quote_native,
            position.asks_base_lots
        ),
        (-40, quote, 60)
    );
    assert_eq!(alice.collateral, 1_000 * ONE_TOKEN as i64 + rebate);
    assert_eq!(t.h.collateral(&cranker.margin_account).await, 100);
    let market = t.h.market_state(&t.market.market).await;
    let left = (taker_fee - rebate - 100) as u64;
    assert_eq!((market.fees_accrued, market.rebates_reserved), (left, 0));

    // Fees leave for the fee vault, once.
    t.h.ok("sweep_fees", &[ix::sweep_fees(&t.market.market)], &[])
        .await;
    let fee_vault = t.h.fee_vault;
    assert_eq!(t.h.token_balance(&fee_vault).await, left);
    t.h.refused(
        "sweep_fees",
        &[ix::sweep_fees(&t.market.market)],
        &[],
        code(KestrelError::NoFeesToSweep),
    )
    .await;
    // An empty queue is refused by name.
    let crank = t.h.crank_ix(&t.market, 8, None).await;
    t.h.refused(
        "consume_events",
        &[crank],
        &[],
        code(KestrelError::NoEventsToConsume),
    )
    .await;
    assert!(t.h.invariant_checks() > 10);
}

#[tokio::test]
async fn pnl_is_realized_when_a_position_closes_after_an_oracle_move() {
    let mut t = crossed().await;
    t.h.crank(&t.market, 8).await;
    // The oracle moves to 160.
    let (pyth, sb) = (
        t.market.underlying.primary_oracle,
        t.market.underlying.fallback_oracle.unwrap(),
    );
    t.h.set_pyth(&pyth, 16_000_000_000, 1_000_000, 0).await;
    t.h.set_switchboard(&sb, 160 * 10i128.pow(18), 0).await;
    // Alice withdraws the rest of her ask, now below the band.
    let alice = t_user(&t.alice);
    let cancel = ix::cancel_all(&alice.pubkey(), &alice.margin_account, &t.market, None, 8);
    t.h.ok("cancel_all", &[cancel], &[&alice.key]).await;
    let carol = t.h.user(1_000 * ONE_TOKEN).await;
    t.h.deposit(&carol, 1_000 * ONE_TOKEN).await;
    t.h.place(
        &carol,
        &t.market,
        order(BID, OrderType::PostOnly, 16_000, 40),
    )
    .await;

    let before = t.h.collateral(&t.bob.margin_account).await;
    t.h.place(
        &t.bob,
        &t.market,
        order(ASK, OrderType::ImmediateOrCancel, 16_000, 40),
    )
    .await;
    let proceeds = notional(40, 16_000) as i64;
    let pnl = proceeds - notional(40, PRICE) as i64; // +4 USDC
    let fee = proceeds * 5 / 10_000;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert_eq!(bob.collateral, before + pnl - fee);
    assert!(bob.position(0).is_none(), "a flat position frees its slot");
    assert_eq!(bob.positions[0].realized_pnl_native, 0, "slot reset");

    // Bob's profit is cash now: he can withdraw all of it.
    let all = bob.collateral as u64;
    t.h.withdraw(&t.bob, all).await;
    assert_eq!(
        t.h.token_balance(&t.bob.token_account).await,
        all,
        "deposited 1,000, took out 1,000 + pnl - fees"
    );
    t.h.crank(&t.market, 8).await;
}

#[tokio::test]
async fn an_over_leveraged_order_is_refused() {
    let mut t = setup().await;
    let dave = t.h.user(10 * ONE_TOKEN).await;
    t.h.deposit(&dave, 10 * ONE_TOKEN).await;
    // 100 lots = 1 SOL = 150 USDC: 15 USDC of initial margin, Dave has 10.
    refused_order(
        &mut t,
        &dave,
        order(BID, OrderType::Limit, 14_900, 100),
        code(KestrelError::InsufficientHealth),
    )
    .await;
    // 60 lots need 9.
    t.h.place(&dave, &t.market, order(BID, OrderType::Limit, 14_900, 60))
        .await;
    // Resting orders count as filled: 10 more lots would need 10.5.
    refused_order(
        &mut t,
        &dave,
        order(BID, OrderType::Limit, 14_000, 10),
        code(KestrelError::InsufficientHealth),
    )
    .await;
    // An order on the other side does not add to the worst case.
    t.h.place(&dave, &t.market, order(ASK, OrderType::Limit, 15_500, 50))
        .await;
    // Nor may he withdraw what the resting bid needs.
    let withdraw = t.h.withdraw_ix(&dave, 2 * ONE_TOKEN).await;
    t.h.refused(
        "withdraw",
        &[withdraw],
        &[&dave.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
}

#[tokio::test]
async fn withdraw_is_refused_when_it_would_break_initial_health() {
    let mut t = crossed().await;
    // Bob is long 0.4 SOL (60 USDC at the oracle): 6 USDC of initial margin.
    let collateral = t.h.collateral(&t.bob.margin_account).await as u64;
    let too_much = collateral - 6 * ONE_TOKEN + 1;
    let withdraw = t.h.withdraw_ix(&t.bob, too_much).await;
    t.h.refused(
        "withdraw",
        &[withdraw],
        &[&t.bob.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
    // The SDK's preview, the program's own code on fetched accounts, agrees:
    // 6 USDC of initial and 3 of maintenance margin, no PnL at 150.
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let unit = fixed::types::I80F48::from_num(1);
    assert!(
        (health.initial - fixed::types::I80F48::from_num(collateral - 6 * ONE_TOKEN)).abs() <= unit
    );
    assert!(
        (health.maintenance - fixed::types::I80F48::from_num(collateral - 3 * ONE_TOKEN)).abs()
            <= unit
    );
    // Without the market and oracles health cannot be computed: refused.
    let bare = ix::withdraw(
        &t.bob.pubkey(),
        &t.bob.margin_account,
        &t.bob.token_account,
        1,
    );
    t.h.refused(
        "withdraw",
        &[bare],
        &[&t.bob.key],
        code(KestrelError::WrongHealthAccounts),
    )
    .await;
    // One unit inside the boundary (the oracle price is binary fixed point,
    // so exactly on it the sign is down to rounding).
    let withdraw = t.h.withdraw_ix(&t.bob, too_much - 2).await;
    t.h.ok("withdraw", &[withdraw], &[&t.bob.key]).await;
    // An account with a position cannot be closed.
    t.h.refused(
        "close_margin_account",
        &[ix::close_margin_account(
            &t.bob.pubkey(),
            &t.bob.margin_account,
        )],
        &[&t.bob.key],
        code(KestrelError::MarginAccountNotEmpty),
    )
    .await;
}

#[tokio::test]
async fn unusable_oracles_are_refused_by_name() {
    let mut h = Harness::new().await;
    // Market 1 has a Pyth feed and no fallback.
    let market = h
        .create_market(1, |sb| {
            let mut params = market_params(sb);
            params.oracle.fallback_kind = OracleKind::None;
            params.oracle.fallback_feed = [0; 32];
            params
        })
        .await;
    let alice = h.user(100 * ONE_TOKEN).await;
    h.deposit(&alice, 100 * ONE_TOKEN).await;
    let pyth = market.underlying.primary_oracle;
    let bid = order(BID, OrderType::Limit, 14_000, 1);
    // The update the market recorded at creation ages past 60 s.
    h.chain.advance_clock(61).await;
    let place = h.place_ix(&alice, &market, bid).await;
    h.refused(
        "place_order",
        &[place],
        &[&alice.key],
        code(KestrelError::OracleStale),
    )
    .await;
    // Newer updates that are unusable: each is refused by its reason.
    let cases: [(i64, u64, KestrelError); 2] = [
        // Confidence 6.7% of the price; the market allows 2%.
        (
            15_000_000_000,
            1_000_000_000,
            KestrelError::OracleConfidenceTooWide,
        ),
        (0, 0, KestrelError::OracleNonPositivePrice),
    ];
    for (price, conf, error) in cases {
        h.set_pyth(&pyth, price, conf, 0).await;
        let place = h.place_ix(&alice, &market, bid).await;
        h.refused("place_order", &[place], &[&alice.key], code(error))
            .await;
    }
    h.set_pyth(&pyth, 15_000_000_000, 1_000_000, 0).await;
    h.place(&alice, &market, bid).await;
}

#[tokio::test]
async fn the_fallback_oracle_is_used_when_the_primary_is_stale() {
    let mut t = setup().await;
    let (pyth, sb) = (
        t.market.underlying.primary_oracle,
        t.market.underlying.fallback_oracle.unwrap(),
    );
    // Both current: the primary's 150 becomes the last good price.
    t.h.place(
        &t.alice,
        &t.market,
        order(BID, OrderType::Limit, 14_900, 10),
    )
    .await;
    // A minute on, only the fallback has a current update (within 3% of the
    // last good price): it carries the market.
    t.h.chain.advance_clock(61).await;
    t.h.set_switchboard(&sb, 149 * 10i128.pow(18), 0).await;
    // An older Pyth update changes nothing: the newer one recorded is stale.
    t.h.set_pyth(&pyth, 15_000_000_000, 1_000_000, 120).await;
    t.h.place(
        &t.alice,
        &t.market,
        order(BID, OrderType::Limit, 14_900, 10),
    )
    .await;
    let underlying = t.h.underlying_state(&t.market.underlying.underlying).await;
    assert_eq!(
        underlying.prices.last_good_source, 2,
        "the fallback was used"
    );
    // Both stale: new risk is refused with the primary's reason.
    t.h.chain.advance_clock(61).await;
    let alice = t_user(&t.alice);
    refused_order(
        &mut t,
        &alice,
        order(BID, OrderType::Limit, 14_900, 10),
        code(KestrelError::OracleStale),
    )
    .await;
}

/// A second handle on a user (the harness takes `&User` and `&mut Trading` apart).
fn t_user(user: &User) -> User {
    User {
        key: user.key.insecure_clone(),
        token_account: user.token_account,
        margin_account: user.margin_account,
    }
}

#[tokio::test]
async fn deviating_oracles_make_the_market_reduce_only() {
    let mut t = crossed().await;
    t.h.crank(&t.market, 8).await;
    // The fallback says 160, the primary 150: more than the 3% allowed.
    let sb = t.market.underlying.fallback_oracle.unwrap();
    t.h.set_switchboard(&sb, 160 * 10i128.pow(18), 0).await;
    let bob = t_user(&t.bob);
    refused_order(
        &mut t,
        &bob,
        order(BID, OrderType::Limit, 14_900, 10),
        code(KestrelError::OracleDeviation),
    )
    .await;
    // Closing still works: Bob (long 40) sells 10 reduce-only.
    let mut close = order(ASK, OrderType::Limit, 15_500, 10);
    close.reduce_only = true;
    t.h.place(&bob, &t.market, close).await;
    let position =
        *t.h.margin_account(&bob.margin_account)
            .await
            .position(0)
            .unwrap();
    assert_eq!(position.asks_base_lots, 10);
    // Reduce-only cannot open: Carol is flat.
    let carol = t.h.user(10 * ONE_TOKEN).await;
    t.h.deposit(&carol, 10 * ONE_TOKEN).await;
    let mut open = order(BID, OrderType::Limit, 14_900, 1);
    open.reduce_only = true;
    refused_order(
        &mut t,
        &carol,
        open,
        code(KestrelError::ReduceOnlyWouldIncrease),
    )
    .await;
    // A reduce-only quantity is cut to the position: 50 asked, 30 left to close.
    let mut big = order(ASK, OrderType::Limit, 15_600, 50);
    big.reduce_only = true;
    t.h.place(&bob, &t.market, big).await;
    let position =
        *t.h.margin_account(&bob.margin_account)
            .await
            .position(0)
            .unwrap();
    assert_eq!(position.asks_base_lots, 40);
}

#[tokio::test]
async fn market_status_and_the_pause_flag_gate_new_orders() {
    let mut t = setup().await;
    let admin = t.h.admin.insecure_clone();
    let status = ix::set_market_status(&admin.pubkey(), &t.market.market, MarketStatus::ReduceOnly);
    t.h.ok("set_market_status", &[status], &[&admin]).await;
    let alice = t_user(&t.alice);
    let bid = order(BID, OrderType::Limit, 14_900, 1);
    refused_order(&mut t, &alice, bid, code(KestrelError::MarketReduceOnly)).await;
    let status = ix::set_market_status(&admin.pubkey(), &t.market.market, MarketStatus::Paused);
    t.h.ok("set_market_status", &[status], &[&admin]).await;
    refused_order(&mut t, &alice, bid, code(KestrelError::MarketNotTrading)).await;
    let status = ix::set_market_status(&admin.pubkey(), &t.market.market, MarketStatus::Active);
    t.h.ok("set_market_status", &[status], &[&admin]).await;
    t.h.set_pause(kestrel::state::PauseFlags::TRADING).await;
    refused_order(&mut t, &alice, bid, code(KestrelError::TradingPaused)).await;
    t.h.set_pause(0).await;
    t.h.place(&alice, &t.market, bid).await;
    // Someone else cannot trade Alice's account.
    let mut place = t.h.place_ix(&alice, &t.market, bid).await;
    let mallory = t.h.user(0).await;
    place.accounts[0].pubkey = mallory.pubkey();
    t.h.refused(
        "place_order",
        &[place],
        &[&mallory.key],
        code(KestrelError::NotOwnerOrDelegate),
    )
    .await;
}

/// Fills happen only within 5% of the oracle. After a move, a stale order
/// beyond the band cannot trade, and the first taker to reach it takes it off
/// the book (its reservation is released at the crank) instead of being
/// refused: otherwise one stale order would block a whole side of the book.
#[tokio::test]
async fn fills_happen_only_inside_the_price_band() {
    let mut t = setup().await;
    let bob = t_user(&t.bob);
    // The band is 5%: 14,250..=15,750 ticks.
    refused_order(
        &mut t,
        &bob,
        order(BID, OrderType::Limit, 15_751, 1),
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    let alice = t_user(&t.alice);
    refused_order(
        &mut t,
        &alice,
        order(ASK, OrderType::Limit, 14_249, 1),
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, PRICE, 10))
        .await;
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, 15_750, 10))
        .await;
    // The oracle rises to 160 (band 15,200..=16,800): Alice's ask at 15,000
    // is stale. Bob's buy takes it off the book and fills at 15,750 behind it.
    let (pyth, sb) = (
        t.market.underlying.primary_oracle,
        t.market.underlying.fallback_oracle.unwrap(),
    );
    t.h.set_pyth(&pyth, 16_000_000_000, 1_000_000, 0).await;
    t.h.set_switchboard(&sb, 160 * 10i128.pow(18), 0).await;
    t.h.place(
        &bob,
        &t.market,
        order(BID, OrderType::ImmediateOrCancel, 16_000, 20),
    )
    .await;
    let position =
        |account: &kestrel::state::MarginAccount| account.position(0).map(|p| p.base_lots);
    let bob_state = t.h.margin_account(&bob.margin_account).await;
    assert_eq!(
        position(&bob_state),
        Some(10),
        "only the ask at 15,750 filled"
    );
    assert_eq!(
        t.h.pending_events(&t.market).await,
        2,
        "the stale ask out, the fill"
    );
    t.h.crank(&t.market, 8).await;
    let alice_state = t.h.margin_account(&alice.margin_account).await;
    assert_eq!(position(&alice_state), Some(-10));
    assert!(
        alice_state.active_orders().next().is_none(),
        "the stale ask is gone and its reservation released"
    );
    // A market buy "at any price" is held to the band: an ask at 16,900 is
    // beyond 16,800 and not reached.
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, 16_900, 10))
        .await;
    t.h.place(&bob, &t.market, order(BID, OrderType::Market, u64::MAX, 20))
        .await;
    let bob_state = t.h.margin_account(&bob.margin_account).await;
    assert_eq!(position(&bob_state), Some(10));
}

#[tokio::test]
async fn cancels_release_reservations_and_slots() {
    let mut t = setup().await;
    let alice = t_user(&t.alice);
    let mut first = order(BID, OrderType::Limit, 14_000, 5);
    first.client_order_id = 7;
    t.h.place(&alice, &t.market, first).await;
    t.h.place(&alice, &t.market, order(BID, OrderType::Limit, 14_100, 6))
        .await;
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, 16_000, 7))
        .await;
    let account = t.h.margin_account(&alice.margin_account).await;
    let position = *account.position(0).unwrap();
    assert_eq!((position.bids_base_lots, position.asks_base_lots), (11, 7));
    let second_id = account
        .active_orders()
        .map(|(_, o)| o)
        .find(|o| o.client_order_id == 0 && o.side == 0)
        .unwrap()
        .order_id();

    // Nobody else can cancel them.
    let bob = t_user(&t.bob);
    t.h.refused(
        "cancel_order",
        &[ix::cancel_order(
            &bob.pubkey(),
            &bob.margin_account,
            &t.market,
            second_id,
        )],
        &[&bob.key],
        code(KestrelError::OrderNotFound),
    )
    .await;
    let cancel = ix::cancel_order(&alice.pubkey(), &alice.margin_account, &t.market, second_id);
    t.h.ok("cancel_order", std::slice::from_ref(&cancel), &[&alice.key])
        .await;
    t.h.refused(
        "cancel_order",
        &[cancel],
        &[&alice.key],
        code(KestrelError::OrderNotFound),
    )
    .await;
    let by_client =
        ix::cancel_order_by_client_id(&alice.pubkey(), &alice.margin_account, &t.market, 7);
    t.h.ok("cancel_order_by_client_id", &[by_client], &[&alice.key])
        .await;
    let position =
        *t.h.margin_account(&alice.margin_account)
            .await
            .position(0)
            .unwrap();
    assert_eq!((position.bids_base_lots, position.asks_base_lots), (0, 7));
    let all = ix::cancel_all(&alice.pubkey(), &alice.margin_account, &t.market, None, 32);
    t.h.ok("cancel_all", &[all], &[&alice.key]).await;
    let account = t.h.margin_account(&alice.margin_account).await;
    assert!(account.position(0).is_none());
    assert!(account.active_orders().next().is_none());
    // A post-only order that would take is refused by name.
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, 15_000, 1))
        .await;
    refused_order(
        &mut t,
        &bob,
        order(BID, OrderType::PostOnly, 15_000, 1),
        code(KestrelError::PostOnlyWouldCross),
    )
    .await;
}

#[tokio::test]
async fn a_full_event_queue_refuses_takers_until_cranked() {
    let mut t = setup().await;
    let capacity = kestrel::engine::EVENT_QUEUE_EVENTS;
    t.h.place(
        &t_user(&t.alice),
        &t.market,
        order(ASK, OrderType::Limit, PRICE, capacity as u64 + 100),
    )
    .await;
    // One-lot takes, eight per transaction: one fill event each.
    let bob = t_user(&t.bob);
    let take = order(BID, OrderType::ImmediateOrCancel, PRICE, 1);
    for _ in 0..capacity / 8 {
        let mut batch = Vec::new();
        for i in 0..8 {
            let mut args = take;
            args.client_order_id = i;
            batch.push(t.h.place_ix(&bob, &t.market, args).await);
        }
        t.h.ok("place_order x8", &batch, &[&bob.key]).await;
    }
    assert_eq!(t.h.pending_events(&t.market).await, capacity);
    refused_order(&mut t, &bob, take, code(KestrelError::EventQueueFull)).await;
    // A resting order needs no event and is still accepted.
    t.h.place(&bob, &t.market, order(BID, OrderType::Limit, 14_000, 1))
        .await;
    t.h.crank(&t.market, 64).await;
    assert_eq!(t.h.pending_events(&t.market).await, capacity - 64);
    t.h.place(&bob, &t.market, take).await;
    while t.h.pending_events(&t.market).await > 0 {
        t.h.crank(&t.market, 64).await;
    }
    let alice = t.h.margin_account(&t.alice.margin_account).await;
    assert_eq!(alice.position(0).unwrap().base_lots, -(capacity as i64 + 1));
}

#[tokio::test]
async fn expired_orders_leave_at_the_next_take_and_the_crank_releases_them() {
    let mut t = setup().await;
    let alice = t_user(&t.alice);
    let now = t.h.now().await as u64;
    let mut expiring = order(ASK, OrderType::Limit, PRICE, 5);
    expiring.expiry = now + 10;
    t.h.place(&alice, &t.market, expiring).await;
    t.h.place(&alice, &t.market, order(ASK, OrderType::Limit, 15_010, 5))
        .await;
    t.h.chain.advance_clock(11).await;
    t.h.set_oracle_price(&t.market, 150).await;

    // Bob's take passes the expired ask (an out event) and fills the other.
    let bob = t_user(&t.bob);
    t.h.place(
        &bob,
        &t.market,
        order(BID, OrderType::ImmediateOrCancel, 15_010, 5),
    )
    .await;
    let position =
        *t.h.margin_account(&bob.margin_account)
            .await
            .position(0)
            .unwrap();
    assert_eq!(
        (position.base_lots, position.quote_native),
        (5, -(notional(5, 15_010) as i64))
    );
    assert_eq!(t.h.pending_events(&t.market).await, 2);
    t.h.crank(&t.market, 8).await;
    let account = t.h.margin_account(&alice.margin_account).await;
    let position = *account.position(0).unwrap();
    assert_eq!((position.base_lots, position.asks_base_lots), (-5, 0));
    assert!(account.active_orders().next().is_none());
}

#[tokio::test]
async fn a_delegate_trades_for_the_owner_and_self_trades_are_prevented() {
    let mut t = setup().await;
    let delegate = solana_sdk::signature::Keypair::new();
    let alice = t_user(&t.alice);
    let set = ix::set_delegate(
        &alice.pubkey(),
        &alice.margin_account,
        Some(delegate.pubkey()),
    );
    t.h.ok("set_delegate", &[set], &[&alice.key]).await;
    let ask = order(ASK, OrderType::Limit, PRICE, 5);
    let place = ix::place_order(
        &delegate.pubkey(),
        &alice.margin_account,
        &t.market,
        ask,
        vec![],
    );
    t.h.ok("place_order", &[place], &[&delegate]).await;
    // Alice's own bid meets her ask: decrement-take trades nothing and takes
    // the overlap off both.
    t.h.place(&alice, &t.market, order(BID, OrderType::Limit, PRICE, 3))
        .await;
    let account = t.h.margin_account(&alice.margin_account).await;
    assert_eq!(account.position(0).unwrap().base_lots, 0);
    assert_eq!(t.h.pending_events(&t.market).await, 1, "one out event");
    t.h.crank(&t.market, 8).await;
    let position =
        *t.h.margin_account(&alice.margin_account)
            .await
            .position(0)
            .unwrap();
    assert_eq!((position.bids_base_lots, position.asks_base_lots), (0, 2));
    // Abort refuses instead.
    let mut abort = order(BID, OrderType::Limit, PRICE, 1);
    abort.self_trade = kestrel::instructions::SelfTradeBehavior::AbortTransaction;
    refused_order(&mut t, &alice, abort, code(KestrelError::SelfTradeAborted)).await;
}
