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
    let set = ix::set_price_limit(&intruder.pubkey(), &underlying, 20, 0);
    h.refused(
        "set_price_limit by another",
        &[set],
        &[&intruder.key],
        code(KestrelError::NotAdmin),
    )
    .await;
    let admin = h.admin.insecure_clone();
    let too_fast = ix::set_price_limit(&admin.pubkey(), &underlying, 501, 0);
    h.refused(
        "set_price_limit too fast",
        &[too_fast],
        &[&admin],
        code(KestrelError::InvalidPriceLimit),
    )
    .await;
    // A band narrower than 1 %, wider than the price, or without a speed.
    for (rate, band, label) in [
        (20, 99, "set_price_limit with too narrow a band"),
        (20, 10_001, "set_price_limit with too wide a band"),
        (0, 2_000, "set_price_limit with a band and no speed"),
    ] {
        let set = ix::set_price_limit(&admin.pubkey(), &underlying, rate, band);
        h.refused(
            label,
            &[set],
            &[&admin],
            code(KestrelError::InvalidPriceLimit),
        )
        .await;
    }
    let set = ix::set_price_limit(&admin.pubkey(), &underlying, 500, 2_000);
    h.ok("set_price_limit", &[set], &[&admin]).await;
    let state = h.underlying_state(&underlying).await;
    assert_eq!(state.price_limit.max_move_bps_per_second, 500);
    assert_eq!(
        (
            state.price_limit.band_bps,
            state.price_limit().width_bps(),
            state.price_band.held
        ),
        (2_000, 2_000, 0)
    );
    // It starts from the price accepted last.
    assert_eq!(state.price_limit().price(), state.prices.last_good_price());
}

/// Market 0 under a limit of 20 bp a second and a band of `band_bps`: a
/// long of 10 SOL at 150 on 400 USDC, bought from a well-funded maker, and
/// a keeper with twice the position's notional.
struct Crash {
    h: Harness,
    market: ix::MarketAccounts,
    underlying: kestrel_sdk::Pubkey,
    maker: User,
    long: User,
    keeper: User,
}

async fn crash_setup(band_bps: u32) -> Crash {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let underlying = market.underlying.underlying;
    let admin = h.admin.insecure_clone();
    let set = ix::set_price_limit(&admin.pubkey(), &underlying, 20, band_bps);
    h.ok("set_price_limit", &[set], &[&admin]).await;
    let maker = h.user(100_000 * ONE_TOKEN).await;
    h.deposit(&maker, 100_000 * ONE_TOKEN).await;
    let long = h.user(400 * ONE_TOKEN).await;
    h.deposit(&long, 400 * ONE_TOKEN).await;
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
    Crash {
        h,
        market,
        underlying,
        maker,
        long,
        keeper,
    }
}

/// What a keeper does after each price: liquidates `long` at the accepted
/// price while it is under maintenance; the number of liquidations.
async fn liquidate_while_under_maintenance(
    h: &mut Harness,
    keeper: &User,
    long: &User,
    market: &ix::MarketAccounts,
) -> u32 {
    let mut liquidations = 0;
    loop {
        let health = h.health_preview(&long.margin_account).await;
        let account = h.margin_account(&long.margin_account).await;
        if health.maintenance >= 0 || account.active_positions().next().is_none() {
            return liquidations;
        }
        let liquidate = h
            .liquidate_ix(keeper, &long.margin_account, market, u64::MAX)
            .await;
        let key = keeper.key.insecure_clone();
        h.ok("liquidate at the accepted price", &[liquidate], &[&key])
            .await;
        liquidations += 1;
    }
}

#[tokio::test]
async fn a_lagging_limit_lends_nothing_in_a_crash() {
    let Crash {
        mut h,
        market,
        underlying,
        maker,
        long,
        keeper,
    } = crash_setup(0).await;
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
        liquidations += liquidate_while_under_maintenance(&mut h, &keeper, &long, &market).await;
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

/// A 10 % band around the delay price (150) and the feeds falling to 100 at
/// once: the band holds, the accepted price stops near 135, and the market
/// takes reduce-only orders only (a long closing, a short covering) while
/// liquidations go on; the hold widens the band 10 % every ten minutes
/// until the markets see 100, and trading opens again.
#[tokio::test]
async fn a_held_band_halts_new_risk_and_widens_to_a_genuine_move() {
    let Crash {
        mut h,
        market,
        underlying,
        maker,
        long,
        keeper,
    } = crash_setup(1_000).await;

    // Held from the first refresh: the feeds are past the band. The price
    // falls at the limit to the band's edge (widened by then 25 bps a
    // refresh).
    let mut now = 0;
    let mut price = 150.0;
    while price > 136.0 {
        h.advance_clock(15).await;
        now += 15;
        h.set_oracle_price(&market, 100).await;
        assert!(h
            .underlying_state(&underlying)
            .await
            .price_limit()
            .is_held());
        price = accepted(&mut h, &underlying).await;
        assert!(
            price >= 135.0 - 0.375 * f64::from(now / 15),
            "{price} at {now} s"
        );
        assert!(now < 300, "the band never stopped the price: {price}");
    }
    // New risk is refused by name, whoever asks: the maker adding to its
    // short, the long adding to its long.
    let held = code(KestrelError::PriceBandHeld);
    let add_short = h
        .place_ix(&maker, &market, order(ASK, OrderType::Limit, 13_600, 1))
        .await;
    let add_long = h
        .place_ix(
            &long,
            &market,
            order(BID, OrderType::ImmediateOrCancel, 13_600, 1),
        )
        .await;
    let maker_key = maker.key.insecure_clone();
    let long_key = long.key.insecure_clone();
    h.refused("add a short while held", &[add_short], &[&maker_key], held)
        .await;
    h.refused("add a long while held", &[add_long], &[&long_key], held)
        .await;
    // Reduce-only orders trade: the maker covers, the long closes a
    // fifth.
    let mut cover = order(BID, OrderType::Limit, 13_500, LOTS / 5);
    cover.reduce_only = true;
    h.place(&maker, &market, cover).await;
    let mut close = order(ASK, OrderType::ImmediateOrCancel, 13_500, LOTS / 5);
    close.reduce_only = true;
    h.place(&long, &market, close).await;
    h.crank(&market, 8).await;
    let position = h.margin_account(&long.margin_account).await;
    assert_eq!(
        position.position(0).unwrap().base_lots,
        (LOTS - LOTS / 5) as i64
    );

    // The feeds stay at 100: the band widens, liquidations go on.
    let held_at = now;
    let mut liquidations = 0;
    while accepted(&mut h, &underlying).await > 100.0 + 1e-6 {
        h.advance_clock(15).await;
        now += 15;
        h.set_oracle_price(&market, 100).await;
        liquidations += liquidate_while_under_maintenance(&mut h, &keeper, &long, &market).await;
        assert!(h.margin_account(&long.margin_account).await.collateral >= 0);
        assert!(now - held_at < 3_600, "still held an hour on");
    }
    // A third of the delay price is 2.3 widenings of 10 %.
    let waited = now - held_at;
    assert!(waited <= 1_500, "{waited} s");
    assert!(liquidations > 0);
    let state = h.underlying_state(&underlying).await;
    assert!(!state.price_limit().is_held());
    // Trading opens again.
    h.place(&maker, &market, order(ASK, OrderType::Limit, 10_100, 1))
        .await;
    println!(
        "[price band] a 33 % fall under a 10 % band: held near 135, caught up {waited} s later, \
         {liquidations} liquidations on the way"
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
        let set = ix::set_price_limit(&admin.pubkey(), &market.underlying.underlying, 20, 0);
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
