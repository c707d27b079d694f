//! The keeper's crankers on the in-process chain, through the same `Chain`
//! interface they use over RPC. After every cycle the harness's invariants
//! are checked (vault = Σ collateral + entry quote + pending maker quote +
//! fees + funding balances; Σ base lots = 0; open interest; reservations).
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_keeper::cranks::{is_race, Keeper, Liquidator, MAX_MAKERS_PER_CRANK};
use kestrel_sdk::client::Chain;
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const PRICE: u64 = 15_000;

fn keeper_for(h: &Harness, liquidator: Option<&User>) -> Keeper {
    Keeper::new(
        h.trading_markets.clone(),
        liquidator.map(|user| Liquidator {
            authority: user.key.insecure_clone(),
            margin_account: user.margin_account,
            unwind_slippage_bps: None,
        }),
    )
}

/// More makers than one crank transaction can name, each filled by one
/// sweep: the keeper needs several transactions and consumes every event.
#[tokio::test]
async fn the_keeper_consumes_every_event_in_batches() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let makers_count = MAX_MAKERS_PER_CRANK + 4;
    let mut makers = Vec::new();
    for i in 0..makers_count {
        let maker = h.user(1_000 * ONE_TOKEN).await;
        h.deposit(&maker, 1_000 * ONE_TOKEN).await;
        h.place(
            &maker,
            &market,
            order(OrderSide::Ask, OrderType::Limit, PRICE + i as u64, 2),
        )
        .await;
        makers.push(maker);
    }
    let taker = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&taker, 10_000 * ONE_TOKEN).await;
    // Two sweeps (32 fills at most each): every maker filled in full.
    for _ in 0..2 {
        h.place(
            &taker,
            &market,
            order(
                OrderSide::Bid,
                OrderType::ImmediateOrCancel,
                PRICE + 100,
                2 * 16,
            ),
        )
        .await;
    }
    let pending = h.pending_events(&market).await;
    assert_eq!(pending, makers_count, "one fill per maker");

    let keeper = keeper_for(&h, Some(&taker));
    let report = keeper.run_cycle(&mut h.chain).await.expect("chain answers");
    assert_eq!(report.events_consumed, makers_count as u64);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(h.pending_events(&market).await, 0);
    for maker in &makers {
        let account = h.margin_account(&maker.margin_account).await;
        assert_eq!(account.position(0).map(|p| p.base_lots), Some(-2));
    }
    h.check_invariants("after the keeper's cycle").await;

    // A second keeper arriving late finds nothing to do and sends nothing;
    // a crank built on a stale view is refused, and that is a race.
    let late = keeper_for(&h, None);
    let report = late.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!((report.events_consumed, report.races), (0, 0));
    let stale = ix::consume_events(&market, &[makers[0].margin_account], None, 8);
    let refused = h.chain.submit(&[stale], &[]).await.unwrap_err();
    assert!(is_race(&refused), "{refused}");
    assert_eq!(
        keeper
            .metrics
            .events_consumed
            .load(std::sync::atomic::Ordering::Relaxed),
        makers_count as u64
    );
}

struct Leveraged {
    h: Harness,
    market: MarketAccounts,
    bob: User,
    carol: User,
}

/// `maker` asks `lots` at 150.00 and `taker` buys them all.
async fn open_long(
    h: &mut Harness,
    market: &MarketAccounts,
    maker: &User,
    taker: &User,
    lots: u64,
) {
    let ask = order(OrderSide::Ask, OrderType::Limit, PRICE, lots);
    h.place(maker, market, ask).await;
    let take = order(OrderSide::Bid, OrderType::ImmediateOrCancel, PRICE, lots);
    h.place(taker, market, take).await;
}

/// Bob long 600 lots (900 USDC) on 100 USDC against alice; carol, the
/// keeper's liquidator, holds 10,000.
async fn leveraged_long() -> Leveraged {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(2_000 * ONE_TOKEN).await;
    let bob = h.user(100 * ONE_TOKEN).await;
    let carol = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&alice, 2_000 * ONE_TOKEN).await;
    h.deposit(&bob, 100 * ONE_TOKEN).await;
    h.deposit(&carol, 10_000 * ONE_TOKEN).await;
    open_long(&mut h, &market, &alice, &bob, 600).await;
    Leveraged {
        h,
        market,
        bob,
        carol,
    }
}

#[tokio::test]
async fn the_keeper_liquidates_within_one_cycle_of_the_price_move() {
    let Leveraged {
        mut h,
        market,
        bob,
        carol,
    } = leveraged_long().await;
    let keeper = keeper_for(&h, Some(&carol));
    let quiet = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(quiet.liquidatable.is_empty() && quiet.liquidations.is_empty());
    assert_eq!(quiet.events_consumed, 1, "alice's fill");

    h.set_oracle_price(&market, 138).await;
    assert!(h.health_preview(&bob.margin_account).await.maintenance < 0);
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.liquidatable, vec![bob.margin_account]);
    assert_eq!(report.liquidations.len(), 1, "{report:?}");
    let done = &report.liquidations[0];
    assert_eq!(
        (done.account, done.base_lots_before),
        (bob.margin_account, 600)
    );
    assert!(
        0 < done.base_lots_after && done.base_lots_after < 600,
        "partial: {done:?}"
    );
    let after = h.health_preview(&bob.margin_account).await;
    assert!(
        after.maintenance >= 0 && after.liquidation_end >= 0,
        "{after:?}"
    );
    let carol_state = h.margin_account(&carol.margin_account).await;
    assert_eq!(
        carol_state.position(0).map(|p| p.base_lots),
        Some(600 - done.base_lots_after)
    );
    h.check_invariants("after the liquidation cycle").await;

    // Healthy again: the next cycle leaves bob alone.
    let next = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(next.liquidations.is_empty() && next.liquidatable.is_empty());
}

/// Two accounts under maintenance at once: the larger shortfall is
/// liquidated first, and both in the same cycle.
#[tokio::test]
async fn the_keeper_liquidates_the_largest_shortfall_first() {
    let Leveraged {
        mut h,
        market,
        bob,
        carol,
    } = leveraged_long().await;
    // Dave: 560 lots on 85 USDC, thinner than bob's 600 on 100.
    let alice_again = h.user(2_000 * ONE_TOKEN).await;
    h.deposit(&alice_again, 2_000 * ONE_TOKEN).await;
    let dave = h.user(85 * ONE_TOKEN).await;
    h.deposit(&dave, 85 * ONE_TOKEN).await;
    open_long(&mut h, &market, &alice_again, &dave, 560).await;
    let keeper = keeper_for(&h, Some(&carol));
    keeper.run_cycle(&mut h.chain).await.unwrap();

    h.set_oracle_price(&market, 138).await;
    let (bob_health, dave_health) = (
        h.health_preview(&bob.margin_account).await.maintenance,
        h.health_preview(&dave.margin_account).await.maintenance,
    );
    assert!(
        dave_health < bob_health && bob_health < 0,
        "{dave_health} {bob_health}"
    );
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.liquidatable,
        vec![dave.margin_account, bob.margin_account]
    );
    let order: Vec<_> = report.liquidations.iter().map(|l| l.account).collect();
    assert_eq!(order, vec![dave.margin_account, bob.margin_account]);
    for account in [&dave, &bob] {
        assert!(h.health_preview(&account.margin_account).await.maintenance >= 0);
    }
    h.check_invariants("after two liquidations").await;
}

/// A crash past bob's collateral: the keeper liquidates the whole position
/// and, in the same cycle, settles the bankruptcy it leaves (the insurance
/// fund first, the rest socialized over open interest).
#[tokio::test]
async fn the_keeper_settles_the_bankruptcy_a_crash_leaves() {
    let Leveraged {
        mut h,
        market,
        bob,
        carol,
    } = leveraged_long().await;
    let keeper = keeper_for(&h, Some(&carol));
    keeper.run_cycle(&mut h.chain).await.unwrap();
    h.set_oracle_price(&market, 120).await;
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.liquidations.len(), 1);
    assert_eq!(report.liquidations[0].base_lots_after, 0, "all of it");
    assert_eq!(report.bankruptcies_settled, vec![bob.margin_account]);
    let bob_state = h.margin_account(&bob.margin_account).await;
    assert_eq!(bob_state.collateral, 0, "made whole");
    h.check_invariants("after liquidation and bankruptcy").await;
}

/// Funding is updated once it is due and not before; the queue is cranked
/// first in the same cycle, since the program refuses funding over pending fills.
#[tokio::test]
async fn the_keeper_updates_funding_when_due() {
    let Leveraged { mut h, market, .. } = leveraged_long().await;
    let mut keeper = keeper_for(&h, None);
    keeper.funding_interval_seconds = 600;
    h.advance_clock(600).await;
    h.set_oracle_price(&market, 150).await;
    let first = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!(
        (first.events_consumed, first.funding_updates),
        (1, 1),
        "{first:?}"
    );
    let updated_at = h.market_state(&market.market).await.perp.funding_updated_at;
    assert_eq!(updated_at, h.now().await);
    h.advance_clock(300).await;
    h.set_oracle_price(&market, 150).await;
    let early = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!(early.funding_updates, 0, "not due for another 300 s");
    h.check_invariants("after funding").await;
}

/// A keeper configured without the market bob trades cannot value him: it
/// sends nothing, says so in the report and its metric (not as a refused
/// transaction), and a keeper configured with that market liquidates him.
#[tokio::test]
async fn work_in_a_market_the_keeper_does_not_watch_is_reported_not_failed() {
    let Leveraged {
        mut h,
        market,
        bob,
        carol,
    } = leveraged_long().await;
    let other = h.create_market(1, market_params).await;
    let mut blind = keeper_for(&h, Some(&carol));
    blind.markets = vec![other];
    h.set_oracle_price(&market, 138).await;
    assert!(h.health_preview(&bob.margin_account).await.maintenance < 0);

    let report = blind.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.liquidatable.is_empty() && report.liquidations.is_empty());
    let expected = format!(
        "{} holds market 0: its health is unknown",
        bob.margin_account
    );
    assert!(report.unconfigured.contains(&expected), "{report:?}");
    // Alice, bob's counterparty, holds market 0 as well.
    assert_eq!(report.unconfigured.len(), 2, "{report:?}");
    let metrics = blind.metrics.render();
    for line in [
        "kestrel_keeper_unconfigured_work_total 2",
        "kestrel_keeper_tx_failures_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let untouched = h.margin_account(&bob.margin_account).await;
    assert_eq!(untouched.position(0).map(|p| p.base_lots), Some(600));

    let watching = keeper_for(&h, Some(&carol));
    let report = watching.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.unconfigured.is_empty(), "{report:?}");
    assert_eq!(report.liquidatable, vec![bob.margin_account]);
    assert_eq!(report.liquidations.len(), 1);
    h.check_invariants("after the liquidation by the configured keeper")
        .await;
}

/// With unwinding on, the liquidator sells what it took over to the book,
/// never further than its slippage from the oracle: a bid below that limit
/// is left alone (nothing fills, nothing fails) and the position waits; a
/// bid within it takes the whole position in the next cycle.
#[tokio::test]
async fn the_liquidator_unwinds_within_its_slippage_of_the_oracle() {
    let Leveraged {
        mut h,
        market,
        bob: _,
        carol,
    } = leveraged_long().await;
    let mut keeper = keeper_for(&h, Some(&carol));
    if let Some(liquidator) = keeper.liquidator.as_mut() {
        liquidator.unwind_slippage_bps = Some(100);
    }
    keeper.run_cycle(&mut h.chain).await.unwrap();
    let erin = h.user(5_000 * ONE_TOKEN).await;
    h.deposit(&erin, 5_000 * ONE_TOKEN).await;
    // Oracle 138.00: a sale may go no lower than 136.62. Erin bids 136.00.
    h.set_oracle_price(&market, 138).await;
    let low_bid = order(OrderSide::Bid, OrderType::Limit, 13_600, 1_000);
    h.place(&erin, &market, low_bid).await;

    let seq_before = h.market_state(&market.market).await.seq_num;
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.liquidations.len(), 1, "{report:?}");
    let taken = 600 - report.liquidations[0].base_lots_after;
    assert!(report.unwinds.is_empty(), "{report:?}");
    assert_eq!(
        h.market_state(&market.market).await.seq_num,
        seq_before,
        "no order sent: nothing on the book was within the slippage"
    );
    let held = h.margin_account(&carol.margin_account).await;
    assert_eq!(held.position(0).map(|p| p.base_lots), Some(taken));
    let gauge = format!("kestrel_keeper_liquidator_position_lots{{market=\"0\"}} {taken}");
    let metrics = keeper.metrics.render();
    assert!(metrics.lines().any(|l| l == gauge), "{gauge} in\n{metrics}");

    // Erin bids 137.50, inside the limit: the next cycle sells it all there.
    let good_bid = order(OrderSide::Bid, OrderType::Limit, 13_750, 1_000);
    h.place(&erin, &market, good_bid).await;
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.unwinds,
        vec![kestrel_keeper::cranks::Unwind {
            market_index: 0,
            base_lots_before: taken,
            base_lots_after: 0,
        }]
    );
    let flat = h.margin_account(&carol.margin_account).await;
    assert_eq!(flat.position(0).map_or(0, |p| p.base_lots), 0);
    let metrics = keeper.metrics.render();
    for line in [
        "kestrel_keeper_unwinds_total 1",
        "kestrel_keeper_liquidator_position_lots{market=\"0\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // Erin's fill reaches her account at the next crank.
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!(report.events_consumed, 1, "{report:?}");
    let erin_state = h.margin_account(&erin.margin_account).await;
    assert_eq!(erin_state.position(0).map(|p| p.base_lots), Some(taken));
    h.check_invariants("after the unwind").await;
}

/// `maker` quotes `lots` at `price` ticks and `taker` takes them.
async fn trade(
    h: &mut Harness,
    market: &MarketAccounts,
    (maker, taker): (&User, &User),
    taker_side: OrderSide,
    (price, lots): (u64, u64),
) {
    let maker_side = match taker_side {
        OrderSide::Bid => OrderSide::Ask,
        OrderSide::Ask => OrderSide::Bid,
    };
    h.place(
        maker,
        market,
        order(maker_side, OrderType::Limit, price, lots),
    )
    .await;
    let take = h
        .place_ix(
            taker,
            market,
            order(taker_side, OrderType::ImmediateOrCancel, price, lots),
        )
        .await;
    let refresh = ix::refresh_risk_arrays(
        &market.underlying.underlying,
        &h.trading_markets
            .iter()
            .filter(|m| m.market_index == 1)
            .map(|m| m.market)
            .collect::<Vec<_>>(),
    );
    h.ok("take", &[refresh, take], &[&taker.key]).await;
    h.crank(market, 8).await;
}

/// SOL-PERP (market 0) with a scenario grid and, on the same underlying, a
/// week's 150 call (market 1) and a month's future (market 3); alice
/// quotes, carol is in portfolio mode with `collateral`, dave is the
/// keeper's liquidator.
async fn portfolio_book(collateral: u64) -> (Harness, [MarketAccounts; 3], [User; 3]) {
    use kestrel::state::{FutureParams, MarginMode};
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    h.configure_options(&perp.underlying, option_config, 8_000)
        .await;
    let now = h.now().await;
    // An option has no basis; a future's converges over its last hour.
    let expiry = |days: i64| FutureParams {
        expiry: minute_of(now + days * 86_400),
        settlement_window_seconds: 1_800,
        max_basis_bps: 0,
        basis_window_seconds: 0,
        convergence_seconds: 0,
    };
    let call = option_series(kestrel::engine::black_scholes::OptionSide::Call, 150.0);
    let call = h
        .create_option_on(1, &perp.underlying, perp_params(), expiry(7), call)
        .await;
    let future = h
        .create_future_on(
            3,
            &perp.underlying,
            perp_params(),
            FutureParams {
                max_basis_bps: 200,
                basis_window_seconds: 600,
                convergence_seconds: 3_600,
                ..expiry(30)
            },
        )
        .await;
    let admin = h.admin.insecure_clone();
    let set = ix::set_scenario_margin(
        &admin.pubkey(),
        &perp.underlying.underlying,
        scenario_grid(),
    );
    h.ok("set_scenario_margin", &[set], &[&admin]).await;
    let alice = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&alice, 10_000 * ONE_TOKEN).await;
    let carol = h.user(collateral).await;
    h.deposit(&carol, collateral).await;
    let account = h.margin_account(&carol.margin_account).await;
    let health = ix::health_accounts(&account, None, &h.trading_markets);
    let switch = ix::set_margin_mode(
        &carol.pubkey(),
        &carol.margin_account,
        MarginMode::Portfolio,
        health,
    );
    h.ok("set_margin_mode", &[switch], &[&carol.key]).await;
    let dave = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&dave, 10_000 * ONE_TOKEN).await;
    (h, [perp, call, future], [alice, carol, dave])
}

/// Carol, in portfolio mode, is short naked calls. The keeper keeps the
/// call's risk array usable (every cycle that finds it stale recomputes
/// it), so after SOL jumps it values carol as the program will, finds her
/// under maintenance and liquidates her in the same cycle.
#[tokio::test]
async fn the_keeper_refreshes_risk_arrays_and_liquidates_a_portfolio_account() {
    let (mut h, [perp, call, _], [alice, carol, dave]) = portfolio_book(20 * ONE_TOKEN).await;
    let keeper = keeper_for(&h, Some(&dave));
    let first = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!(first.risk_array_refreshes, 1, "{first:?}");
    let quiet = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert_eq!(quiet.risk_array_refreshes, 0, "still usable: {quiet:?}");
    // Carol sells 0.6 SOL of calls at their value.
    let value = h.option_value_ticks(&call, 8_000).await;
    trade(&mut h, &call, (&alice, &carol), OrderSide::Ask, (value, 60)).await;

    h.set_oracle_price(&perp, 175).await;
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.risk_array_refreshes, 1,
        "SOL moved past the tolerance"
    );
    assert_eq!(report.liquidatable, vec![carol.margin_account]);
    let done = report.liquidations.first().expect("a liquidation");
    assert_eq!((done.market_index, done.base_lots_before), (1, -60));
    assert!(done.base_lots_after > -60, "{done:?}");
    h.check_invariants("after the keeper's cycle").await;
}

/// Carol holds a hedge (long the perpetual, short the future) on little
/// collateral, and a wider oracle add-on leaves her under maintenance. No
/// lot of either leg raises her health on its own: the keeper's first
/// liquidation takes one leg whole at the mark (no fee), its second the
/// now naked leg, in one cycle, with no refusal.
#[tokio::test]
async fn the_keeper_closes_out_a_hedge_under_water() {
    let (mut h, [perp, _, future], [alice, carol, dave]) = portfolio_book(40 * ONE_TOKEN).await;
    trade(
        &mut h,
        &perp,
        (&alice, &carol),
        OrderSide::Bid,
        (PRICE, 100),
    )
    .await;
    trade(
        &mut h,
        &future,
        (&alice, &carol),
        OrderSide::Ask,
        (PRICE, 100),
    )
    .await;
    let health = h
        .health_preview_with_fresh_arrays(&carol.margin_account)
        .await;
    let spare = health.initial.to_num::<u64>() - ONE_TOKEN;
    let withdraw = h.withdraw_ix(&carol, spare).await;
    h.ok("withdraw", &[withdraw], &[&carol.key]).await;
    let admin = h.admin.insecure_clone();
    let wider = kestrel::state::ScenarioConfig {
        confidence_bps: 500,
        ..scenario_grid()
    };
    let set = ix::set_scenario_margin(&admin.pubkey(), &perp.underlying.underlying, wider);
    h.ok("set_scenario_margin", &[set], &[&admin]).await;

    let keeper = keeper_for(&h, Some(&dave));
    let report = keeper.run_cycle(&mut h.chain).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.liquidatable, vec![carol.margin_account]);
    assert_eq!(report.liquidations.len(), 2, "{:?}", report.liquidations);
    assert_eq!(
        report.liquidations[0].base_lots_after, 0,
        "the first leg whole"
    );
    let after = h
        .health_preview_with_fresh_arrays(&carol.margin_account)
        .await;
    assert!(after.maintenance >= 0, "{after:?}");
    h.check_invariants("after the keeper's cycle").await;
}
