//! Regression tests for the price-integrity review (docs/SECURITY.md, "Audit
//! findings"), one per finding and named after it, on the real program
//! (natively and on the `.so`). Each failed on the code before its fix.
use kestrel::error::KestrelError;
use kestrel::instructions::{OrderSide, OrderType, SelfTradeBehavior};
use kestrel::state::MarketStatus;
use kestrel_sdk::{ix, pda, Pubkey};
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

/// Alice rests `lots` at 150.00 on `side`'s other side; `taker` takes them.
async fn trade(
    h: &mut Harness,
    market: &ix::MarketAccounts,
    maker: &User,
    taker: &User,
    taker_side: OrderSide,
    lots: u64,
) {
    let maker_side = if taker_side == BID { ASK } else { BID };
    h.place(
        maker,
        market,
        order(maker_side, OrderType::Limit, 15_000, lots),
    )
    .await;
    h.place(
        taker,
        market,
        order(taker_side, OrderType::ImmediateOrCancel, 15_000, lots),
    )
    .await;
    h.crank(market, 8).await;
}

/// A trader long 600 lots (6 SOL) from 150.00 on 95 USDC, bought from
/// alice; a third user with 5,000 USDC.
struct Leveraged {
    h: Harness,
    market: ix::MarketAccounts,
    alice: User,
    trader: User,
    third: User,
}

async fn leveraged() -> Leveraged {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(10_000 * ONE_TOKEN).await;
    let trader = h.user(1_000 * ONE_TOKEN).await;
    let third = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&trader, 95 * ONE_TOKEN).await;
    h.deposit(&third, 5_000 * ONE_TOKEN).await;
    trade(&mut h, &market, &alice, &trader, BID, 600).await;
    Leveraged {
        h,
        market,
        alice,
        trader,
        third,
    }
}

/// C-1: with no usable price, a reduce-only order used to fill at whatever a
/// resting maker asked (10^13 ticks), draining the vault. Now a quote that
/// far never rests, and a reduce-only order with stale feeds (and an old
/// update passed) fills only inside the band around the last good price.
#[tokio::test]
async fn c1_reduce_only_without_a_usable_price_fills_only_in_the_band() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, attacker) = (
        h.user(1_000 * ONE_TOKEN).await,
        h.user(1_000 * ONE_TOKEN).await,
    );
    let accomplice = h.user(1_000 * ONE_TOKEN).await;
    for user in [&alice, &attacker, &accomplice] {
        h.deposit(user, 100 * ONE_TOKEN).await;
    }
    // The attacker is short 5 lots.
    trade(&mut h, &market, &alice, &attacker, ASK, 5).await;
    // The accomplice's ask at 10^13 ticks is refused outright.
    let far = h
        .place_ix(
            &accomplice,
            &market,
            order(ASK, OrderType::Limit, 10_000_000_000_000, 1),
        )
        .await;
    h.refused(
        "far ask",
        &[far],
        &[&accomplice.key],
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    // It rests at the edge of the resting band instead (150% of 150.00).
    h.place(
        &accomplice,
        &market,
        order(ASK, OrderType::Limit, 22_400, 1),
    )
    .await;
    // The feeds go stale, and the attacker passes an older Pyth update too.
    h.chain.advance_clock(120).await;
    let old = Pubkey::new_unique();
    let now = h.now().await;
    h.chain.set_account(
        &old,
        oracles::pyth_update(PYTH_FEED, 15_000_000_000, 1_000_000, -8, now - 200, 1),
    );
    let older = ix::UnderlyingAccounts {
        primary_oracle: old,
        ..market.underlying
    };
    // The refresh reads it and keeps the newer record: nothing changes.
    let before_refresh = h.underlying_state(&market.underlying.underlying).await;
    h.ok(
        "refresh with an older update",
        &[ix::refresh_underlying(&older)],
        &[],
    )
    .await;
    let after_refresh = h.underlying_state(&market.underlying.underlying).await;
    assert_eq!(before_refresh.prices, after_refresh.prices);
    let mut close = order(BID, OrderType::Market, 10_000_000_000_000, 5);
    close.reduce_only = true;
    let before = h.collateral(&attacker.margin_account).await;
    let place = h.place_ix(&attacker, &market, close).await;
    h.ok("reduce-only bid on stale feeds", &[place], &[&attacker.key])
        .await;
    // Nothing within the band (last good 150.00 +4% = 156.00) was offered:
    // the far ask stayed unfilled and the attacker's collateral is intact.
    assert_eq!(h.collateral(&attacker.margin_account).await, before);
    assert_eq!(h.market_state(&market.market).await.pending_fills, 0);
    // New risk on stale feeds is refused with the feed's reason.
    let open = h
        .place_ix(
            &accomplice,
            &market,
            order(BID, OrderType::Limit, 14_900, 1),
        )
        .await;
    h.refused(
        "new risk on stale feeds",
        &[open],
        &[&accomplice.key],
        code(KestrelError::OracleStale),
    )
    .await;
}

/// H-1: a liquidator passed an older update of the primary feed, so the
/// program fell over to the fallback (2.5% lower, inside the 3% bound) and
/// liquidated a healthy account. The market now records the newest update
/// of each feed and never uses an older one.
#[tokio::test]
async fn h1_an_older_update_of_the_same_feed_cannot_choose_the_price() {
    let Leveraged {
        mut h,
        market,
        alice,
        trader,
        third: liquidator,
    } = leveraged().await;
    // The honest price falls to 143; Switchboard lags at 139.50 (2.4% away).
    h.set_oracle_price(&market, 143).await;
    let sb = market.underlying.fallback_oracle.unwrap();
    h.set_switchboard(&sb, 1_395 * 10i128.pow(17), 0).await;
    // Someone trades: the market records Pyth's 143.
    h.place(&alice, &market, order(BID, OrderType::Limit, 14_000, 1))
        .await;
    let health = h.health_preview(&trader.margin_account).await;
    assert!(health.maintenance > 0, "healthy at 143: {health:?}");
    // The liquidator passes an update of the same feed from 70 s ago.
    let old = Pubkey::new_unique();
    let now = h.now().await;
    h.chain.set_account(
        &old,
        oracles::pyth_update(PYTH_FEED, 14_300_000_000, 1_000_000, -8, now - 70, 1),
    );
    let older = ix::UnderlyingAccounts {
        primary_oracle: old,
        ..market.underlying
    };
    let liquidate = h
        .liquidate_ix(&liquidator, &trader.margin_account, &market, u64::MAX)
        .await;
    h.refused(
        "liquidate after a refresh on an older update",
        &[ix::refresh_underlying(&older), liquidate],
        &[&liquidator.key],
        code(KestrelError::NotLiquidatable),
    )
    .await;
    let recorded = h
        .underlying_state(&market.underlying.underlying)
        .await
        .prices;
    assert_eq!(recorded.last_good_source, 1, "the primary stays in use");
}

/// H-1, the pin: an underlying may name the one Pyth account it reads (a
/// sponsored feed updated in place); any other update of the feed id is
/// refused.
#[tokio::test]
async fn h1_a_pinned_pyth_account_is_the_only_one_read() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    // The admin pins a sponsored Pyth account; the harness's own update
    // account for the market is then not read.
    let pinned = Pubkey::new_unique();
    let now = h.now().await;
    let slot = h.next_oracle_slot();
    h.chain.set_account(
        &pinned,
        oracles::pyth_update(PYTH_FEED, 15_000_000_000, 1_000_000, -8, now, slot),
    );
    let mut config = oracle_config(&market.underlying.fallback_oracle.unwrap());
    config.primary_account = pinned.to_bytes();
    let admin = h.admin.insecure_clone();
    let unpinned = ix::set_underlying_oracle(&admin.pubkey(), &market.underlying, config);
    h.refused(
        "pin another account",
        &[unpinned],
        &[&admin],
        code(KestrelError::WrongOracleAccount),
    )
    .await;
    let at_pin = ix::UnderlyingAccounts {
        primary_oracle: pinned,
        ..market.underlying
    };
    let pin = ix::set_underlying_oracle(&admin.pubkey(), &at_pin, config);
    h.ok("pin", &[pin], &[&admin]).await;
    h.underlyings[0] = at_pin;
    // The pin replaced the feed: its record starts again, so a price needs a
    // refresh from the pinned account, and no other account refreshes it.
    h.advance_clock(61).await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 100 * ONE_TOKEN).await;
    let bid = order(BID, OrderType::Limit, 14_900, 1);
    h.refused(
        "unpinned update",
        &[ix::refresh_underlying(&market.underlying)],
        &[],
        code(KestrelError::WrongOracleAccount),
    )
    .await;
    let place = h.place_ix(&alice, &market, bid).await;
    h.refused(
        "no current price",
        &[place],
        &[&alice.key],
        code(KestrelError::OracleStale),
    )
    .await;
    h.set_pyth(&pinned, 15_000_000_000, 1_000_000, 0).await;
    h.place(&alice, &market, bid).await;
}

/// H-2: one post-only ask at 10^13 for the instant of an `update_funding`
/// set the mark TWAP for hours. Now the quote cannot rest, a quote at the
/// resting band's edge counts only up to the band, and an instant's premium
/// is paid by neither interval around it.
#[tokio::test]
async fn h2_one_instant_cannot_set_the_funding_mark() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, attacker) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(10_000 * ONE_TOKEN).await,
    );
    let bob = h.user(10_000 * ONE_TOKEN).await;
    for user in [&alice, &attacker, &bob] {
        h.deposit(user, 1_000 * ONE_TOKEN).await;
    }
    // Open interest, and an honest book of one bid at 149.90 and no asks: no premium.
    trade(&mut h, &market, &alice, &bob, BID, 10).await;
    h.place(&alice, &market, order(BID, OrderType::Limit, 14_990, 1))
        .await;
    h.update_funding(&market).await;
    let index = |m: &kestrel::state::Market| m.long_funding_index();
    let start = index(&h.market_state(&market.market).await);
    for _ in 0..3 {
        h.chain.advance_clock(60).await;
        h.set_oracle_price(&market, 150).await;
        // The attacker's ask for the instant of the update.
        let far = h
            .place_ix(
                &attacker,
                &market,
                order(ASK, OrderType::PostOnly, 10_000_000_000_000, 1),
            )
            .await;
        h.refused(
            "far ask",
            &[far],
            &[&attacker.key],
            code(KestrelError::PriceOutsideBand),
        )
        .await;
        let edge = h
            .place_ix(
                &attacker,
                &market,
                order(ASK, OrderType::PostOnly, 22_400, 1),
            )
            .await;
        let cancel =
            ix::cancel_order_by_client_id(&attacker.pubkey(), &attacker.margin_account, &market, 0);
        h.ok(
            "ask, update_funding, cancel",
            &[edge, ix::update_funding(&market), cancel],
            &[&attacker.key],
        )
        .await;
        let premium = kestrel::engine::funding::from_parts(
            h.market_state(&market.market).await.perp.mark_premium,
        );
        // Clamped: the ask counts as the band's top (156.00, rounded in):
        // (149.90 + 156.00) / 2 - 150.00 per lot of 0.01 SOL, about 0.0295 USDC.
        assert!(premium > 29_400 && premium <= 29_500, "premium {premium}");
        // An honest update a minute on.
        h.chain.advance_clock(60).await;
        h.set_oracle_price(&market, 150).await;
        h.update_funding(&market).await;
    }
    assert_eq!(
        index(&h.market_state(&market.market).await),
        start,
        "no funding paid for the attacker's instants"
    );
}

/// H-2: an Out event (here a one-lot self-trade) used to hold `update_funding`
/// off with `CrankRequired`; only waiting fills do now.
#[tokio::test]
async fn h2_a_waiting_out_event_does_not_hold_funding() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let attacker = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&attacker, 100 * ONE_TOKEN).await;
    h.update_funding(&market).await;
    self_trade(&mut h, &market, &attacker).await;
    assert!(h.pending_events(&market).await > 0);
    h.chain.advance_clock(60).await;
    h.set_oracle_price(&market, 150).await;
    h.update_funding(&market).await;
}

async fn self_trade(h: &mut Harness, market: &ix::MarketAccounts, user: &User) {
    let make = h
        .place_ix(user, market, order(ASK, OrderType::PostOnly, 15_000, 1))
        .await;
    let mut take = order(BID, OrderType::ImmediateOrCancel, 15_000, 1);
    take.self_trade = SelfTradeBehavior::CancelProvide;
    let take = h.place_ix(user, market, take).await;
    h.ok("self-trade", &[make, take], &[&user.key]).await;
}

/// M-3: an account below initial health could still buy while far resting
/// asks made its worst case shrink. Now it may only reduce.
#[tokio::test]
async fn m3_an_unhealthy_account_cannot_add_exposure() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, trader) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(1_000 * ONE_TOKEN).await,
    );
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&trader, 61 * ONE_TOKEN).await;
    // Long 100 from 150, then asks of 500 lots at 155.00: worst case 400 lots.
    trade(&mut h, &market, &alice, &trader, BID, 100).await;
    h.place(&trader, &market, order(ASK, OrderType::Limit, 15_500, 500))
        .await;
    h.set_oracle_price(&market, 140).await;
    let health = h.health_preview(&trader.margin_account).await;
    assert!(
        health.initial < 0,
        "below initial health at 140: {health:?}"
    );
    // Buying 20 more would shrink the worst case (400 -> 380) and leave health
    // still below zero, but grow the position.
    h.place(&alice, &market, order(ASK, OrderType::Limit, 14_000, 20))
        .await;
    let buy = h
        .place_ix(
            &trader,
            &market,
            order(BID, OrderType::ImmediateOrCancel, 14_000, 20),
        )
        .await;
    h.refused(
        "buy while unhealthy",
        &[buy],
        &[&trader.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
    // Cancelling and reducing remain open to it.
    let cancel = ix::cancel_all(&trader.pubkey(), &trader.margin_account, &market, None, 8);
    h.ok("cancel", &[cancel], &[&trader.key]).await;
    h.place(&trader, &market, order(ASK, OrderType::Limit, 14_500, 10))
        .await;
}

/// L-1: a fee-free self-trade's Out event paid the crank reward. Rewards are
/// now paid for fills only, capped by what the fill earned the exchange.
#[tokio::test]
async fn l1_crank_rewards_are_paid_for_fills_only_and_capped_by_their_fees() {
    let mut h = Harness::new().await;
    let market = h
        .create_market(0, |sb| {
            let mut params = market_params(sb);
            // A reward far above a one-lot fill's fees.
            params.crank_reward_native = ONE_TOKEN;
            params
        })
        .await;
    let (alice, bob, cranker) = (
        h.user(1_000 * ONE_TOKEN).await,
        h.user(1_000 * ONE_TOKEN).await,
        h.user(0).await,
    );
    h.deposit(&alice, 100 * ONE_TOKEN).await;
    h.deposit(&bob, 100 * ONE_TOKEN).await;
    // One lot at 150.00 (1.5 USDC): taker fee 750, maker rebate 300; 450
    // earned, and left in the market's fees (cranked without a reward).
    trade(&mut h, &market, &alice, &bob, BID, 1).await;
    assert_eq!(h.market_state(&market.market).await.fees_available(), 450);
    self_trade(&mut h, &market, &alice).await;
    let crank = h.crank_ix(&market, 8, Some(cranker.margin_account)).await;
    h.ok("crank the out", &[crank], &[]).await;
    assert_eq!(
        h.collateral(&cranker.margin_account).await,
        0,
        "an out earns nothing"
    );
    let fees = h.market_state(&market.market).await.fees_accrued;
    h.place(&alice, &market, order(ASK, OrderType::Limit, 15_000, 1))
        .await;
    h.place(
        &bob,
        &market,
        order(BID, OrderType::ImmediateOrCancel, 15_000, 1),
    )
    .await;
    let crank = h.crank_ix(&market, 8, Some(cranker.margin_account)).await;
    h.ok("crank the fill", &[crank], &[]).await;
    assert_eq!(h.collateral(&cranker.margin_account).await, 450);
    // The fill's net fee went to the cranker, up to the reward.
    assert_eq!(h.market_state(&market.market).await.fees_accrued, fees);
}

/// L-4: another sub-account of the same owner could liquidate an account
/// and recover most of the fee.
#[tokio::test]
async fn l4_an_owner_cannot_liquidate_its_own_sub_account() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, trader) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(10_000 * ONE_TOKEN).await,
    );
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&trader, 100 * ONE_TOKEN).await;
    trade(&mut h, &market, &alice, &trader, BID, 600).await;
    h.set_oracle_price(&market, 140).await;
    assert!(h.health_preview(&trader.margin_account).await.maintenance < 0);
    // The trader's sub-account 1, funded, as the liquidator.
    let create = ix::create_margin_account(&trader.pubkey(), 1, None);
    h.ok("sub-account", &[create], &[&trader.key]).await;
    let sub = User {
        key: trader.key.insecure_clone(),
        token_account: trader.token_account,
        margin_account: pda::margin_account(&h.exchange, &trader.pubkey(), 1),
    };
    h.deposit(&sub, 1_000 * ONE_TOKEN).await;
    let liquidate = h
        .liquidate_ix(&sub, &trader.margin_account, &market, u64::MAX)
        .await;
    h.refused(
        "self-liquidation",
        &[liquidate],
        &[&trader.key],
        code(KestrelError::CannotLiquidateSelf),
    )
    .await;
    let liquidate = h
        .liquidate_ix(&alice, &trader.margin_account, &market, u64::MAX)
        .await;
    h.ok("another owner liquidates", &[liquidate], &[&alice.key])
        .await;
}

/// L-4: positions in a closed market were priced from its feeds in every
/// health check, so its dead feeds blocked withdrawals everywhere. A closed
/// market now counts at the last good price it closed on.
#[tokio::test]
async fn l4_a_closed_market_counts_at_its_last_good_price() {
    let mut h = Harness::new().await;
    let live = h.create_market(0, market_params).await;
    let closing = h.create_market(1, market_params).await;
    let (alice, trader) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(10_000 * ONE_TOKEN).await,
    );
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&trader, 1_000 * ONE_TOKEN).await;
    trade(&mut h, &closing, &alice, &trader, BID, 10).await;
    trade(&mut h, &live, &alice, &trader, BID, 10).await;
    let admin = h.admin.insecure_clone();
    for status in [MarketStatus::Paused, MarketStatus::Closed] {
        let set = ix::set_market_status(&admin.pubkey(), &closing.market, status);
        h.ok("close market 1", &[set], &[&admin]).await;
    }
    // Market 1's feeds die (stale for good); market 0's stay current.
    h.chain.advance_clock(3_600).await;
    h.set_oracle_price(&live, 150).await;
    let withdraw = h.withdraw_ix(&trader, 10 * ONE_TOKEN).await;
    h.ok(
        "withdraw beside a closed market",
        &[withdraw],
        &[&trader.key],
    )
    .await;
}

/// L-4: a band as wide as the maintenance margin let a single fill at its
/// edge take an account from initial health past maintenance.
#[tokio::test]
async fn l4_the_price_band_must_stay_below_maintenance() {
    let mut h = Harness::new().await;
    let (bids, asks, queue) = h.market_accounts().await;
    let (pyth, sb) = h.oracle_accounts().await;
    let underlying = h.create_underlying(0, oracle_config(&sb), pyth, sb).await;
    let mut params = perp_params();
    params.price_band_bps = params.maintenance_margin_bps;
    let admin = h.admin.insecure_clone();
    let create = ix::create_market(
        &admin.pubkey(),
        market_args(0, params),
        &bids,
        &asks,
        &queue,
        &underlying.underlying,
    );
    h.refused(
        "band at maintenance",
        &[create],
        &[&admin],
        code(KestrelError::InvalidPriceBand),
    )
    .await;
}

/// Review of the fixes, H-A: a reduce-only order skipped every health rule,
/// so an account under maintenance could sell its whole position at the
/// band's edge to a friend's bid and leave the loss to the insurance fund.
/// Under maintenance it now reduces no worse than a liquidation would price
/// it (the oracle less the liquidation fee).
#[tokio::test]
async fn review_an_account_under_maintenance_reduces_no_worse_than_a_liquidation() {
    let Leveraged {
        mut h,
        market,
        alice,
        trader,
        third: friend,
    } = leveraged().await;
    h.set_oracle_price(&market, 141).await;
    assert!(h.health_preview(&trader.margin_account).await.maintenance < 0);
    // The friend bids at the band's bottom (141.00 - 4% = 135.36).
    h.place(&friend, &market, order(BID, OrderType::Limit, 13_540, 600))
        .await;
    let before = h.margin_account(&trader.margin_account).await;
    // A reduce-only market sell is held to 141.00 - 2.5% = 137.48: the
    // friend's bid is not reached and nothing trades.
    let mut dump = order(ASK, OrderType::Market, 1, 600);
    dump.reduce_only = true;
    let place = h.place_ix(&trader, &market, dump).await;
    h.ok("reduce-only dump", &[place], &[&trader.key]).await;
    let after = h.margin_account(&trader.margin_account).await;
    assert_eq!(after.position(0).unwrap().base_lots, 600);
    assert_eq!(after.collateral, before.collateral);
    // A reduce-only limit ask beyond that price is refused.
    let mut limit = order(ASK, OrderType::ImmediateOrCancel, 13_540, 600);
    limit.reduce_only = true;
    let place = h.place_ix(&trader, &market, limit).await;
    h.refused(
        "reduce-only ask past the liquidation price",
        &[place],
        &[&trader.key],
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    // A bid within it is taken.
    h.place(&alice, &market, order(BID, OrderType::Limit, 13_800, 100))
        .await;
    let place = h.place_ix(&trader, &market, dump).await;
    h.ok("reduce-only sell at 138.00", &[place], &[&trader.key])
        .await;
    let after = h.margin_account(&trader.margin_account).await;
    assert_eq!(after.position(0).unwrap().base_lots, 500);
}

/// Review of the fixes, C-1 residue: the last good price banded reduce-only
/// orders however old it was, so orders resting from before an outage could
/// fill at a price the market had long left. It bands them for ten maximum
/// ages (10 minutes here); after that only cancels work.
#[tokio::test]
async fn review_dead_feeds_leave_only_cancels_after_ten_maximum_ages() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, trader) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(1_000 * ONE_TOKEN).await,
    );
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&trader, 500 * ONE_TOKEN).await;
    trade(&mut h, &market, &alice, &trader, BID, 10).await;
    h.place(&alice, &market, order(BID, OrderType::Limit, 14_900, 5))
        .await;
    let mut close = order(ASK, OrderType::Limit, 15_100, 1);
    close.reduce_only = true;
    // Nine minutes of dead feeds: reduce-only orders still trade.
    h.chain.advance_clock(540).await;
    let place = h.place_ix(&trader, &market, close).await;
    h.ok(
        "reduce-only within ten maximum ages",
        &[place],
        &[&trader.key],
    )
    .await;
    // Past ten minutes: refused, and cancels still work.
    h.chain.advance_clock(61).await;
    let place = h.place_ix(&trader, &market, close).await;
    h.refused(
        "reduce-only on a long-dead market",
        &[place],
        &[&trader.key],
        code(KestrelError::OracleStale),
    )
    .await;
    let cancel = ix::cancel_all(&alice.pubkey(), &alice.margin_account, &market, None, 8);
    h.ok("cancel on a long-dead market", &[cancel], &[&alice.key])
        .await;
}

/// Review of the fixes, M-B: eight one-lot orders expiring at once made a
/// side read as empty, so the premium, and funding with it, went to zero.
/// A side hidden behind expired orders now keeps the last premium.
#[tokio::test]
async fn review_expired_orders_do_not_switch_funding_off() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let (alice, attacker) = (
        h.user(10_000 * ONE_TOKEN).await,
        h.user(10_000 * ONE_TOKEN).await,
    );
    h.deposit(&alice, 5_000 * ONE_TOKEN).await;
    h.deposit(&attacker, 5_000 * ONE_TOKEN).await;
    // A book quoting above the oracle: bid 149.90, ask 154.00.
    h.place(&alice, &market, order(BID, OrderType::Limit, 14_990, 5))
        .await;
    h.place(&alice, &market, order(ASK, OrderType::Limit, 15_400, 5))
        .await;
    h.update_funding(&market).await;
    h.chain.advance_clock(60).await;
    h.set_oracle_price(&market, 150).await;
    h.update_funding(&market).await;
    let premium = h.market_state(&market.market).await.perp.mark_premium;
    assert_ne!(premium, [0, 0]);
    // Eight asks in front of alice's, each expiring in a second.
    let now = h.now().await as u64;
    for client in 0..8 {
        let mut ask = order(ASK, OrderType::PostOnly, 15_010 + client, 1);
        ask.expiry = now + 1;
        ask.client_order_id = client;
        h.place(&attacker, &market, ask).await;
    }
    h.chain.advance_clock(60).await;
    h.set_oracle_price(&market, 150).await;
    h.update_funding(&market).await;
    assert_eq!(
        h.market_state(&market.market).await.perp.mark_premium,
        premium,
        "the last premium stands"
    );
}
