//! An underlying's price limit (`set_price_limit`, `engine::price_limit`)
//! in a genuine crash: the feeds fall a third at once, the accepted price
//! follows at the limit, and the lag lends nobody anything. Initial health
//! values a losing long at the feeds' price, so it cannot withdraw or add
//! risk against the lagging one; liquidators take it over step by step at
//! the accepted price (their own check reads no feed), while it is still
//! solvent. The single print upwards is in `mango_replay.rs`.
//!
//! Market 0 as in `trading.rs`: 150 USDC per SOL is 15,000 ticks, a lot
//! 0.01 SOL; 10 % initial margin, 5 % maintenance.
use fixed::types::I80F48;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_sdk::ix;
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
/// 10 SOL.
const LOTS: u64 = 1_000;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

/// The accepted price, whole USDC per SOL.
async fn accepted(h: &mut Harness, underlying: &kestrel_sdk::Pubkey) -> f64 {
    let state = h.underlying_state(underlying).await;
    state.last_good_price().unwrap().to_num::<f64>() * 1_000.0
}

#[tokio::test]
async fn only_the_admin_sets_a_price_limit_within_its_bound() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let underlying = market.underlying.underlying;
    let intruder = h.user(ONE_TOKEN).await;
    let set = ix::set_price_limit(&intruder.pubkey(), &underlying, 20);
    h.refused(
        "set_price_limit by another",
        &[set],
        &[&intruder.key],
        code(KestrelError::NotAdmin),
    )
    .await;
    let admin = h.admin.insecure_clone();
    let too_fast = ix::set_price_limit(&admin.pubkey(), &underlying, 501);
    h.refused(
        "set_price_limit too fast",
        &[too_fast],
        &[&admin],
        code(KestrelError::InvalidPriceLimit),
    )
    .await;
    let set = ix::set_price_limit(&admin.pubkey(), &underlying, 500);
    h.ok("set_price_limit", &[set], &[&admin]).await;
    let state = h.underlying_state(&underlying).await;
    assert_eq!(state.price_limit.max_move_bps_per_second, 500);
    // It starts from the price accepted last.
    assert_eq!(state.price_limit().price(), state.prices.last_good_price());
}

#[tokio::test]
async fn a_lagging_limit_lends_nothing_in_a_crash() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let underlying = market.underlying.underlying;
    let admin = h.admin.insecure_clone();
    let set = ix::set_price_limit(&admin.pubkey(), &underlying, 20);
    h.ok("set_price_limit", &[set], &[&admin]).await;
    let maker = h.user(100_000 * ONE_TOKEN).await;
    h.deposit(&maker, 100_000 * ONE_TOKEN).await;
    let long = h.user(400 * ONE_TOKEN).await;
    h.deposit(&long, 400 * ONE_TOKEN).await;
    // A keeper with twice the position's notional.
    let keeper = h.user(3_000 * ONE_TOKEN).await;
    h.deposit(&keeper, 3_000 * ONE_TOKEN).await;
    h.place(&maker, &market, order(ASK, OrderType::Limit, 15_000, LOTS))
        .await;
    h.place(
        &long,
        &market,
        order(BID, OrderType::FillOrKill, 15_000, LOTS),
    )
    .await;
    h.crank(&market, 8).await;
    let fund_at_start = h.token_balance(&h.insurance_vault.clone()).await;

    // The feeds fall to 100 at once; the markets see 2 % of it.
    h.advance_clock(15).await;
    h.set_oracle_price(&market, 100).await;
    let price = accepted(&mut h, &underlying).await;
    assert!((price - 147.0).abs() < 1e-6, "{price}");
    let health = h.health_preview(&long.margin_account).await;
    // Maintenance at 147: 400 less the 0.75 taker fee − 30 − 5 % of 1,470.
    let maintenance = health.maintenance.to_num::<f64>() / 1e6;
    assert!((maintenance - 295.75).abs() < 1e-3, "{maintenance}");
    // Initial at the feeds' 100, margined at 147: 399.25 − 500 − 147.
    let initial = health.initial.to_num::<f64>() / 1e6;
    assert!((initial + 247.75).abs() < 1e-3, "{initial}");
    // At the lagging price alone it would be +222.25: withdrawing 200, or
    // adding a lot, is refused.
    let withdraw = h.withdraw_ix(&long, 200 * ONE_TOKEN).await;
    let long_key = long.key.insecure_clone();
    let insufficient = code(KestrelError::InsufficientHealth);
    h.refused(
        "withdraw against the lag",
        &[withdraw],
        &[&long_key],
        insufficient,
    )
    .await;
    h.place(&maker, &market, order(ASK, OrderType::Limit, 14_700, 1))
        .await;
    let add = h
        .place_ix(
            &long,
            &market,
            order(BID, OrderType::ImmediateOrCancel, 14_700, 1),
        )
        .await;
    h.refused(
        "add risk against the lag",
        &[add],
        &[&long_key],
        insufficient,
    )
    .await;

    // The accepted price follows 2 % a refresh; the keeper liquidates the
    // long whenever it is under maintenance, at the accepted price.
    let mut liquidations = 0;
    for step in 0..40 {
        h.advance_clock(15).await;
        h.set_oracle_price(&market, 100).await;
        loop {
            let health = h.health_preview(&long.margin_account).await;
            let position = h.margin_account(&long.margin_account).await;
            if health.maintenance >= 0 || position.active_positions().next().is_none() {
                break;
            }
            let liquidate = h
                .liquidate_ix(&keeper, &long.margin_account, &market, u64::MAX)
                .await;
            let key = keeper.key.insecure_clone();
            h.ok("liquidate at the lagging price", &[liquidate], &[&key])
                .await;
            liquidations += 1;
        }
        let account = h.margin_account(&long.margin_account).await;
        assert!(
            account.collateral >= 0,
            "step {step}: {}",
            account.collateral
        );
        let price = accepted(&mut h, &underlying).await;
        let equity = account.collateral as f64
            + account
                .active_positions()
                .map(|(_, p)| p.base_lots as f64 * price * 1e4 + p.quote_native as f64)
                .sum::<f64>();
        assert!(equity >= 0.0, "step {step}: equity {equity} at {price}");
    }
    let price = accepted(&mut h, &underlying).await;
    assert!((price - 100.0).abs() < 1e-6, "caught up: {price}");
    assert!(liquidations > 0);
    let fund_at_end = h.token_balance(&h.insurance_vault.clone()).await;
    assert!(fund_at_end >= fund_at_start);
    let health = h.health_preview(&long.margin_account).await;
    assert!(health.maintenance >= I80F48::ZERO);
    println!(
        "[price limit] a 33 % crash at 20 bp/s: {liquidations} liquidations, each solvent; the fund \
         took {:.2} in fees",
        (fund_at_end - fund_at_start) as f64 / 1e6
    );
}

/// A liquidator takes a position over at the accepted price of the
/// liquidated market's underlying, but on every other underlying it is
/// judged as a withdrawal would be: a keeper whose short elsewhere is
/// underwater at a pumped feed the limit holds back cannot add the
/// liquidated risk on top, while a keeper without it can.
#[tokio::test]
async fn a_liquidator_is_judged_at_the_feeds_away_from_the_liquidated_underlying() {
    let mut h = Harness::new().await;
    let crashing = h.create_market(0, market_params).await;
    let pumped = h.create_market(1, market_params).await;
    let admin = h.admin.insecure_clone();
    for market in [&crashing, &pumped] {
        let set = ix::set_price_limit(&admin.pubkey(), &market.underlying.underlying, 20);
        h.ok("set_price_limit", &[set], &[&admin]).await;
    }
    let maker = h.user(100_000 * ONE_TOKEN).await;
    h.deposit(&maker, 100_000 * ONE_TOKEN).await;
    let long = h.user(400 * ONE_TOKEN).await;
    h.deposit(&long, 400 * ONE_TOKEN).await;
    let shorted_keeper = h.user(600 * ONE_TOKEN).await;
    h.deposit(&shorted_keeper, 600 * ONE_TOKEN).await;
    let honest_keeper = h.user(600 * ONE_TOKEN).await;
    h.deposit(&honest_keeper, 600 * ONE_TOKEN).await;
    h.place(
        &maker,
        &crashing,
        order(ASK, OrderType::Limit, 15_000, LOTS),
    )
    .await;
    h.place(
        &long,
        &crashing,
        order(BID, OrderType::FillOrKill, 15_000, LOTS),
    )
    .await;
    h.crank(&crashing, 8).await;
    h.place(&maker, &pumped, order(BID, OrderType::Limit, 15_000, LOTS))
        .await;
    h.place(
        &shorted_keeper,
        &pumped,
        order(ASK, OrderType::FillOrKill, 15_000, LOTS),
    )
    .await;
    h.crank(&pumped, 8).await;

    // The first underlying's feeds fall to 100; its accepted price follows
    // until the long is under maintenance.
    let mut steps = 0;
    while h.health_preview(&long.margin_account).await.maintenance >= 0 {
        h.advance_clock(15).await;
        h.set_oracle_price(&crashing, 100).await;
        steps += 1;
        assert!(steps < 40, "the long never fell under maintenance");
    }
    // The second's feeds jump to 200; the markets see 153.
    h.set_oracle_price(&pumped, 200).await;
    let price = accepted(&mut h, &pumped.underlying.underlying).await;
    assert!((price - 153.0).abs() < 1e-6, "{price}");
    // The shorted keeper at the feeds: 600 less its 0.75 taker fee − 500
    // lost − 10 % of 2,000. At the accepted 153 it would be +554.
    let health = h.health_preview(&shorted_keeper.margin_account).await;
    let initial = health.initial.to_num::<f64>() / 1e6;
    assert!((initial + 100.75).abs() < 1e-3, "{initial}");

    let insufficient = code(KestrelError::InsufficientHealth);
    let liquidate = h
        .liquidate_ix(&shorted_keeper, &long.margin_account, &crashing, u64::MAX)
        .await;
    let key = shorted_keeper.key.insecure_clone();
    h.refused(
        "liquidate on top of a short the feeds put underwater",
        &[liquidate],
        &[&key],
        insufficient,
    )
    .await;
    let liquidate = h
        .liquidate_ix(&honest_keeper, &long.margin_account, &crashing, u64::MAX)
        .await;
    let key = honest_keeper.key.insecure_clone();
    h.ok(
        "liquidate by a keeper with nothing else",
        &[liquidate],
        &[&key],
    )
    .await;
    let taken = h.margin_account(&honest_keeper.margin_account).await;
    assert!(taken.active_positions().next().is_some());
}
