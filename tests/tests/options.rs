//! European options on an underlying shared with a perpetual: listing
//! (and what it refuses), the implied-volatility input validated like a
//! price, trading around the model value, marking as spot and volatility
//! move, the margin refusal of an over-sized short, the liquidation of a
//! short after a spot move, reduce-only without a fresh volatility, and
//! cash settlement at expiry in and out of the money. The harness checks
//! conservation, Σ contracts = 0 per market and the books after every
//! transaction.
use fixed::types::I80F48;
use kestrel::engine::black_scholes::{self, OptionSide, PricingInputs};
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{FutureParams, MarketStatus, OptionParams};
use kestrel_sdk::ix;
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const DAY: i64 = 86_400;
const WINDOW: u32 = 1_800;
/// 80 % at the money.
const VOLATILITY_BPS: u64 = 8_000;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

/// A whole quote per base price (USDC per SOL) in native units (6 and 9
/// decimals).
fn native(price: f64) -> I80F48 {
    I80F48::from_num(price) / 1_000
}

fn expiry_in(now: i64, seconds: i64) -> FutureParams {
    FutureParams {
        expiry: minute_of(now + seconds),
        settlement_window_seconds: WINDOW,
        max_basis_bps: 0,
        basis_window_seconds: 0,
        convergence_seconds: 0,
    }
}

fn series(side: OptionSide, strike: f64) -> OptionParams {
    OptionParams {
        strike: kestrel::engine::funding::to_parts(native(strike)),
        volatility_term_bps: 10_000,
        volatility_skew_bps: 0,
        band_spot_bps: 50,
        side: side as u8,
        padding: [0; 3],
    }
}

/// The option market parameters: the perpetual's fees and bands (the
/// margin fractions are not used by options but validated).
fn option_params() -> kestrel::state::MarketParams {
    perp_params()
}

struct Listed {
    h: Harness,
    perp: ix::MarketAccounts,
    call: ix::MarketAccounts,
    put: ix::MarketAccounts,
    expiry: FutureParams,
    feed: solana_sdk::pubkey::Pubkey,
    alice: User,
    bob: User,
}

/// SOL-PERP (market 0, SOL at 150), SOL options at 80 % expiring in a
/// week: a 150 call (market 1) and a 140 put (market 2). Alice and bob
/// hold 1,000 USDC each.
async fn listed() -> Listed {
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    let feed = h
        .configure_options(&perp.underlying, option_config, VOLATILITY_BPS)
        .await;
    let expiry = expiry_in(h.now().await, 7 * DAY);
    let call = h
        .create_option_on(
            1,
            &perp.underlying,
            option_params(),
            expiry,
            series(OptionSide::Call, 150.0),
        )
        .await;
    let put = h
        .create_option_on(
            2,
            &perp.underlying,
            option_params(),
            expiry,
            series(OptionSide::Put, 140.0),
        )
        .await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 1_000 * ONE_TOKEN).await;
    Listed {
        h,
        perp,
        call,
        put,
        expiry,
        feed,
        alice,
        bob,
    }
}

/// The model value per unit (native) the program computes now.
async fn model_value(
    t: &mut Listed,
    market: &ix::MarketAccounts,
    spot: f64,
    volatility_bps: u64,
) -> I80F48 {
    let state = t.h.market_state(&market.market).await;
    let now = t.h.now().await;
    black_scholes::price(&PricingInputs {
        side: state.option.side().unwrap(),
        spot: native(spot),
        strike: state.option.strike(),
        seconds_to_expiry: state.future.params.expiry - now,
        volatility: I80F48::from_num(volatility_bps) / 10_000,
        rate: I80F48::ZERO,
    })
    .unwrap()
}

/// The fill band's half-width per unit at `value` and `spot`: 4 % of the
/// value and 0.5 % of the spot (`price_band_bps`, `band_spot_bps`), what
/// an option requires beyond its value for maintenance (and twice for a
/// long's initial).
fn slack(value: I80F48, spot: f64) -> I80F48 {
    value * 400 / 10_000 + native(spot) * 50 / 10_000
}

/// A value per unit in ticks of the harness's lots (0.01 SOL, 0.0001 USDC).
fn ticks(value: I80F48) -> u64 {
    (value * 100_000).round().to_num()
}

/// `maker` asks `lots` at `price`; `taker` takes them.
async fn sell_to(
    h: &mut Harness,
    maker: &User,
    taker: &User,
    market: &ix::MarketAccounts,
    price: u64,
    lots: u64,
) {
    h.place(maker, market, order(ASK, OrderType::Limit, price, lots))
        .await;
    h.place(
        taker,
        market,
        order(BID, OrderType::ImmediateOrCancel, price, lots),
    )
    .await;
    h.crank(market, 8).await;
}

#[tokio::test]
async fn listing_checks_the_series_and_the_volatility_input() {
    let mut t = listed().await;
    let admin = t.h.admin.insecure_clone();
    // An underlying without an implied-volatility input lists no option.
    let other = t.h.create_market(3, market_params).await;
    let now = t.h.now().await;
    let (bids, asks, queue) = t.h.market_accounts().await;
    let list = |index, underlying: &ix::UnderlyingAccounts, expiry, option| {
        ix::create_option_market(
            &admin.pubkey(),
            market_args(index, option_params()),
            expiry,
            option,
            &bids,
            &asks,
            &queue,
            &underlying.underlying,
        )
    };
    let cases = [
        (
            "an option on an underlying without volatility",
            list(
                4,
                &other.underlying,
                expiry_in(now, DAY),
                series(OptionSide::Call, 150.0),
            ),
            KestrelError::VolatilityUnavailable,
        ),
        (
            "a strike of zero",
            list(
                4,
                &t.perp.underlying,
                expiry_in(now, DAY),
                OptionParams {
                    strike: [0; 2],
                    ..series(OptionSide::Call, 150.0)
                },
            ),
            KestrelError::InvalidOptionParams,
        ),
        (
            "a side that is neither call nor put",
            list(
                4,
                &t.perp.underlying,
                expiry_in(now, DAY),
                OptionParams {
                    side: 2,
                    ..series(OptionSide::Call, 150.0)
                },
            ),
            KestrelError::InvalidOptionParams,
        ),
        (
            "an option with a basis",
            list(
                4,
                &t.perp.underlying,
                FutureParams {
                    max_basis_bps: 100,
                    ..expiry_in(now, DAY)
                },
                series(OptionSide::Call, 150.0),
            ),
            KestrelError::InvalidFutureParams,
        ),
        (
            "an expiry past ten years",
            list(
                4,
                &t.perp.underlying,
                expiry_in(now, 11 * 365 * DAY),
                series(OptionSide::Call, 150.0),
            ),
            KestrelError::InvalidFutureParams,
        ),
        (
            "an option without a spot band (a worthless one could not trade)",
            list(
                4,
                &t.perp.underlying,
                expiry_in(now, DAY),
                OptionParams {
                    band_spot_bps: 0,
                    ..series(OptionSide::Call, 150.0)
                },
            ),
            KestrelError::InvalidOptionParams,
        ),
    ];
    // A liquidation fee at the band's share of the value: a lot liquidated
    // could free less than it costs.
    let mut fee_at_band = option_params();
    fee_at_band.liquidation_fee_bps = fee_at_band.price_band_bps;
    let costly = ix::create_option_market(
        &admin.pubkey(),
        market_args(4, fee_at_band),
        expiry_in(now, DAY),
        series(OptionSide::Call, 150.0),
        &bids,
        &asks,
        &queue,
        &t.perp.underlying.underlying,
    );
    let cases = cases.into_iter().chain([(
        "a liquidation fee at the band",
        costly,
        KestrelError::InvalidLiquidationParams,
    )]);
    for (label, instruction, error) in cases {
        t.h.refused(label, &[instruction], &[&admin], code(error))
            .await;
    }
    // The same bound when the admin changes a listed option's parameters.
    let mut costly_params = option_params();
    costly_params.liquidation_fee_bps = costly_params.price_band_bps;
    let set = ix::set_market_params(&admin.pubkey(), &t.call.market, costly_params);
    t.h.refused(
        "an option's liquidation fee raised to its band",
        &[set],
        &[&admin],
        code(KestrelError::InvalidLiquidationParams),
    )
    .await;
    // The option terms are validated field by field; only the admin sets them.
    let mut broken = option_config(&t.feed);
    broken.maintenance_b_bps = 0;
    let mut negative_rate = option_config(&t.feed);
    negative_rate.rate_bps = -100;
    for (label, config) in [
        ("a zero short-margin floor", broken),
        ("a negative rate", negative_rate),
    ] {
        let set = ix::set_option_config(&admin.pubkey(), &t.perp.underlying.underlying, config);
        t.h.refused(
            label,
            &[set],
            &[&admin],
            code(KestrelError::InvalidOptionConfig),
        )
        .await;
    }
    let mallory = t.h.user(0).await;
    let set = ix::set_option_config(
        &mallory.pubkey(),
        &t.perp.underlying.underlying,
        option_config(&t.feed),
    );
    t.h.refused(
        "options set by a non-admin",
        &[set],
        &[&mallory.key],
        code(KestrelError::NotAdmin),
    )
    .await;

    // The volatility feed is read like a price: only the configured
    // account, within bounds and age; an update no newer changes nothing.
    let underlying = t.perp.underlying.underlying;
    let impostor = solana_sdk::pubkey::Pubkey::new_unique();
    let now = t.h.now().await;
    t.h.chain.set_account(
        &impostor,
        oracles::switchboard_feed(9 * 10i128.pow(17), 0, now, 1_000),
    );
    t.h.refused(
        "another feed's volatility",
        &[ix::refresh_volatility(&underlying, &impostor)],
        &[],
        code(KestrelError::OracleWrongFeed),
    )
    .await;
    let slot = t.h.next_oracle_slot();
    t.h.chain.set_account(
        &t.feed,
        oracles::switchboard_feed(60 * 10i128.pow(18), 0, now, slot),
    );
    t.h.refused(
        "a volatility of 6,000 %",
        &[ix::refresh_volatility(&underlying, &t.feed)],
        &[],
        code(KestrelError::VolatilityOutOfBounds),
    )
    .await;
    // Three hours on, an update two hours old is newer than the stored
    // one but past the maximum age (an hour).
    t.h.advance_clock(3 * 3_600).await;
    let now = t.h.now().await;
    let slot = t.h.next_oracle_slot();
    t.h.chain.set_account(
        &t.feed,
        oracles::switchboard_feed(7 * 10i128.pow(17), 0, now - 2 * 3_600, slot),
    );
    t.h.refused(
        "a volatility published two hours ago",
        &[ix::refresh_volatility(&underlying, &t.feed)],
        &[],
        code(KestrelError::VolatilityStale),
    )
    .await;
    let before = t.h.underlying_state(&underlying).await.volatility;
    let slot = t.h.next_oracle_slot();
    t.h.chain.set_account(
        &t.feed,
        oracles::switchboard_feed(7 * 10i128.pow(17), 0, before.publish_time - 1, slot),
    );
    t.h.ok(
        "an older volatility update",
        &[ix::refresh_volatility(&underlying, &t.feed)],
        &[],
    )
    .await;
    assert_eq!(
        t.h.underlying_state(&underlying).await.volatility,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn an_option_trades_at_its_model_value_and_is_marked_as_spot_moves() {
    let mut t = listed().await;
    let call = t.call;
    let value = model_value(&mut t, &call, 150.0, VOLATILITY_BPS).await;
    let model = ticks(value);
    // A week at the money at 80 %: about 6.6 USDC per SOL.
    assert!((600..700).contains(&model), "{model} ticks");
    // The band is around the model: an ask at twice the model rests
    // nowhere near it.
    let far =
        t.h.place_ix(
            &t.alice,
            &call,
            order(ASK, OrderType::PostOnly, 2 * model + 200, 1),
        )
        .await;
    t.h.refused(
        "an ask at twice the model",
        &[far],
        &[&t.alice.key],
        code(KestrelError::PriceOutsideBand),
    )
    .await;
    // Bob buys 10 calls at the model plus 5 ticks from alice.
    sell_to(&mut t.h, &t.alice, &t.bob, &call, model + 5, 10).await;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert_eq!(bob.position(1).map(|p| p.base_lots), Some(10));
    assert_eq!(
        bob.position(1).map(|p| p.kind),
        Some(kestrel::state::InstrumentKind::Option as u8)
    );
    // Health marks the long at the model value: maintenance counts it,
    // initial does not (a premium is paid, never financed by the option).
    let lots_units = I80F48::from_num(10 * 10_000_000u64);
    let paid = I80F48::from_num((model + 5) * 10 * 100);
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let collateral = I80F48::from_num(t.h.collateral(&t.bob.margin_account).await);
    let expected_maintenance =
        collateral + value * lots_units - paid - slack(value, 150.0) * lots_units;
    assert!(
        (health.maintenance - expected_maintenance).abs() < 2,
        "{health:?} vs {expected_maintenance}"
    );
    let expected_initial = collateral - paid - slack(value, 150.0) * 2 * lots_units;
    assert!(
        (health.initial - expected_initial).abs() < 2,
        "{health:?} vs {expected_initial}"
    );

    // Spot to 165: the call gains about delta × 15 per unit.
    t.h.set_oracle_price(&t.perp, 165).await;
    let higher = model_value(&mut t, &call, 165.0, VOLATILITY_BPS).await;
    assert!(higher > value + native(7.0), "{higher} vs {value}");
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let expected = collateral + higher * lots_units - paid - slack(higher, 165.0) * lots_units;
    assert!(
        (health.maintenance - expected).abs() < 2,
        "{health:?} vs {expected}"
    );
    // Volatility to 120 %: worth more again.
    let feed = t.feed;
    t.h.set_volatility(&feed, 12_000).await;
    let richer = model_value(&mut t, &call, 165.0, 12_000).await;
    assert!(richer > higher);
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let expected = collateral + richer * lots_units - paid - slack(richer, 165.0) * lots_units;
    assert!(
        (health.maintenance - expected).abs() < 2,
        "{health:?} vs {expected}"
    );

    // The program's own valuation (value_option, for simulation) agrees.
    let outcome =
        t.h.ok(
            "value_option",
            &[ix::value_option(&call.market, &call.underlying.underlying)],
            &[],
        )
        .await;
    // On the .so the valuation comes back as return data (and in the logs,
    // as a cluster's simulation shows it); solana-program-test's native
    // processor carries no return data, so there the SDK's valuation (the
    // same code) stands in.
    let valuation = if t.h.mode() == kestrel_sim::chain::ProgramMode::Sbf {
        let valuation = kestrel_sdk::options::valuation_from_return_data(&outcome.return_data)
            .expect("value_option's return data");
        assert_eq!(
            kestrel_sdk::options::valuation_from_logs(&outcome.logs),
            Some(valuation)
        );
        valuation
    } else {
        let now = t.h.now().await;
        let inputs = PricingInputs {
            side: OptionSide::Call,
            spot: native(165.0),
            strike: native(150.0),
            seconds_to_expiry: t.expiry.expiry - now,
            volatility: I80F48::from_num(12_000) / 10_000,
            rate: I80F48::ZERO,
        };
        let v = black_scholes::valuation(&inputs).unwrap();
        kestrel::instructions::OptionValuation {
            spot_bits: inputs.spot.to_bits(),
            volatility_bits: inputs.volatility.to_bits(),
            price_bits: v.price.to_bits(),
            delta_bits: v.delta.to_bits(),
            gamma_bits: v.gamma.to_bits(),
            vega_bits: v.vega.to_bits(),
            theta_bits: v.theta.to_bits(),
            rho_bits: v.rho.to_bits(),
        }
    };
    let delta = I80F48::from_bits(valuation.delta_bits);
    assert!(delta > I80F48::from_num(0.5) && delta < 1, "{delta}");
    assert!(valuation.gamma_bits > 0 && valuation.vega_bits > 0 && valuation.theta_bits < 0);
    // value_option is an option's only.
    let perp = t.perp;
    t.h.refused(
        "value_option on a perpetual",
        &[ix::value_option(&perp.market, &perp.underlying.underlying)],
        &[],
        code(KestrelError::WrongMarketKind),
    )
    .await;
}

#[tokio::test]
async fn an_oversized_short_is_refused_and_a_short_under_water_is_liquidated() {
    let mut t = listed().await;
    let call = t.call;
    // Carol has 20 USDC. A short call at the money requires its value and
    // 15 % of spot (22.5 USDC per SOL, 0.225 per lot) at initial.
    let carol = t.h.user(20 * ONE_TOKEN).await;
    t.h.deposit(&carol, 20 * ONE_TOKEN).await;
    let model = ticks(model_value(&mut t, &call, 150.0, VOLATILITY_BPS).await);
    // The SDK's order preview says so before anything is sent: 150 short
    // calls take initial health below zero, 60 do not.
    let ask = kestrel::engine::Side::Ask;
    let over =
        t.h.order_preview(&carol.margin_account, &call, ask, 150)
            .await;
    let fits =
        t.h.order_preview(&carol.margin_account, &call, ask, 60)
            .await;
    assert!(over.initial < 0 && fits.initial >= 0, "{over:?} {fits:?}");
    let too_many =
        t.h.place_ix(&carol, &call, order(ASK, OrderType::Limit, model, 150))
            .await;
    t.h.refused(
        "a short of 150 calls on 20 USDC",
        &[too_many],
        &[&carol.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
    // 60 fit: bob buys them.
    t.h.place(&carol, &call, order(ASK, OrderType::Limit, model, 60))
        .await;
    t.h.place(
        &t.bob,
        &call,
        order(BID, OrderType::ImmediateOrCancel, model, 60),
    )
    .await;
    t.h.crank(&call, 8).await;
    assert!(t.h.health_preview(&carol.margin_account).await.maintenance > 0);

    // SOL to 190: the call is deep in the money; carol's short is under water.
    t.h.set_oracle_price(&t.perp, 190).await;
    let health = t.h.health_preview(&carol.margin_account).await;
    assert!(health.maintenance < 0, "{health:?}");
    // Alice liquidates: carol buys back at the model value plus the fee.
    let value = model_value(&mut t, &call, 190.0, VOLATILITY_BPS).await;
    let insurance_vault = t.h.insurance_vault;
    let insurance_before = t.h.token_balance(&insurance_vault).await;
    let liquidate =
        t.h.liquidate_ix(&t.alice, &carol.margin_account, &call, u64::MAX)
            .await;
    t.h.ok("liquidate a short call", &[liquidate], &[&t.alice.key])
        .await;
    let after = t.h.margin_account(&carol.margin_account).await;
    let left = after.position(1).map(|p| p.base_lots).unwrap_or(0);
    let lots = 60 + left;
    assert!(lots > 0, "some lots bought back: {left} left");
    // Alice took the short over, at the value plus 2.5 %, rounded against
    // carol.
    let alice = t.h.margin_account(&t.alice.margin_account).await;
    let taken = alice.position(1).expect("alice holds the short");
    assert_eq!(taken.base_lots, -lots);
    let expected =
        value * I80F48::from_num(10_000_000u64) * I80F48::from_num(lots) * 10_250 / 10_000;
    assert!(
        (I80F48::from_num(taken.quote_native) - expected).abs() <= 1,
        "{} vs {expected}",
        taken.quote_native
    );
    assert!(
        t.h.token_balance(&insurance_vault).await > insurance_before,
        "the fund's share of the fee"
    );
    // Liquidated no further than needed: carol's end health is not negative
    // unless the whole short went.
    let health = t.h.health_preview(&carol.margin_account).await;
    assert!(left == 0 || health.liquidation_end >= 0, "{health:?}");
}

#[tokio::test]
async fn without_a_fresh_volatility_the_options_are_reduce_only() {
    let mut t = listed().await;
    let call = t.call;
    let model = ticks(model_value(&mut t, &call, 150.0, VOLATILITY_BPS).await);
    sell_to(&mut t.h, &t.alice, &t.bob, &call, model, 5).await;
    // Two hours pass: the price is republished, the volatility is not
    // (its maximum age is an hour).
    t.h.advance_clock(2 * 3_600).await;
    let perp = t.perp;
    t.h.set_oracle_price(&perp, 150).await;
    let new_risk =
        t.h.place_ix(&t.bob, &call, order(BID, OrderType::Limit, model, 1))
            .await;
    t.h.refused(
        "a new long with a stale volatility",
        &[new_risk],
        &[&t.bob.key],
        code(KestrelError::VolatilityStale),
    )
    .await;
    // The perpetual trades on; bob may still reduce his calls (banded at
    // the recent volatility).
    let reduce = kestrel::instructions::PlaceOrderArgs {
        reduce_only: true,
        ..order(ASK, OrderType::Limit, model, 5)
    };
    t.h.place(&t.bob, &call, reduce).await;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(bob.active_orders().any(|(_, o)| o.market_index == 1));
    // Withdrawing needs the option's value: refused until a refresh.
    let withdraw = t.h.withdraw_ix(&t.bob, ONE_TOKEN).await;
    t.h.refused(
        "a withdrawal with a stale volatility",
        &[withdraw],
        &[&t.bob.key],
        code(KestrelError::VolatilityStale),
    )
    .await;
    let feed = t.feed;
    t.h.set_volatility(&feed, VOLATILITY_BPS).await;
    t.h.place(&t.bob, &call, order(BID, OrderType::Limit, model / 2, 1))
        .await;
}

#[tokio::test]
async fn options_settle_at_expiry_for_their_intrinsic_value() {
    let mut t = listed().await;
    let (call, put) = (t.call, t.put);
    let carol = t.h.user(100 * ONE_TOKEN).await;
    t.h.deposit(&carol, 100 * ONE_TOKEN).await;
    // Bob buys 10 calls at 150, carol 4 puts at 140, both from alice.
    let call_price = ticks(model_value(&mut t, &call, 150.0, VOLATILITY_BPS).await);
    let put_price = ticks(model_value(&mut t, &put, 150.0, VOLATILITY_BPS).await);
    sell_to(&mut t.h, &t.alice, &t.bob, &call, call_price, 10).await;
    sell_to(&mut t.h, &t.alice, &carol, &put, put_price.max(1), 4).await;
    // Alice leaves an ask resting: settlement releases it.
    t.h.place(
        &t.alice,
        &call,
        order(ASK, OrderType::Limit, call_price + 50, 1),
    )
    .await;

    // The week passes; through the settlement window SOL is refreshed at 160
    // every minute (the volatility too, so that everything stays priced).
    let expiry = t.expiry.expiry;
    let start = expiry - i64::from(WINDOW);
    let now = t.h.now().await;
    t.h.advance_clock(start - 120 - now).await;
    let (perp, feed) = (t.perp, t.feed);
    t.h.set_volatility(&feed, VOLATILITY_BPS).await;
    t.h.publish_each_minute(&perp, start, 160).await;
    // The keeper captures the window's start (the underlying's ring holds
    // 16 minutes), as every order in the window would.
    for market in [call, put] {
        t.h.ok("sample_settlement", &[ix::sample_settlement(&market)], &[])
            .await;
    }
    t.h.publish_each_minute(&perp, expiry, 160).await;
    t.h.advance_clock(1).await;
    t.h.set_oracle_price(&perp, 175).await;
    let order_after =
        t.h.place_ix(&t.bob, &call, order(BID, OrderType::Limit, call_price, 1))
            .await;
    t.h.refused(
        "an order at expiry",
        &[order_after],
        &[&t.bob.key],
        code(KestrelError::MarketExpired),
    )
    .await;
    // And its end.
    for market in [call, put] {
        t.h.ok("sample_settlement", &[ix::sample_settlement(&market)], &[])
            .await;
    }
    // Past expiry, before settlement, the call counts at its intrinsic value
    // at the average so far (10 USDC per SOL), not at 175.
    let bob_before = t.h.collateral(&t.bob.margin_account).await;
    let health = t.h.health_preview(&t.bob.margin_account).await;
    let paid = i64::try_from(call_price * 10 * 100).unwrap();
    // It keeps its requirement until settled: the band's half-width at
    // the intrinsic value and today's spot (175).
    let units = I80F48::from_num(10 * 10_000_000u64);
    let at_average =
        I80F48::from_num(bob_before - paid + 10 * 100_000) - slack(native(10.0), 175.0) * units;
    assert!(
        (health.maintenance - at_average).abs() < 5,
        "{health:?} vs {at_average}"
    );

    // Settle: the call pays 10 USDC per SOL (0.10 per lot), the put nothing.
    let (alice_before, carol_before) = (
        t.h.collateral(&t.alice.margin_account).await,
        t.h.collateral(&carol.margin_account).await,
    );
    for market in [call, put] {
        t.h.ok("settle_expired", &[ix::settle_expired(&market, None)], &[])
            .await;
        let state = t.h.market_state(&market.market).await;
        assert_eq!(state.status().ok(), Some(MarketStatus::Settled));
        let price = state.settlement_price().unwrap();
        assert!(
            (price - native(160.0)).abs() < I80F48::from_num(1) / 1_000_000_000,
            "{price}"
        );
    }
    for user in [
        t.bob.margin_account,
        t.alice.margin_account,
        carol.margin_account,
    ] {
        for market in [call, put] {
            // Only accounts with something there: a market whose last
            // position settled is Closed, and settles nothing more.
            let index = market.market_index;
            let account = t.h.margin_account(&user).await;
            let has_orders = account
                .active_orders()
                .any(|(_, o)| o.market_index == index);
            if account.position(index).is_none() && !has_orders {
                continue;
            }
            t.h.ok(
                "settle_expired",
                &[ix::settle_expired(&market, Some(user))],
                &[],
            )
            .await;
        }
        let account = t.h.margin_account(&user).await;
        assert!(account.position(1).is_none() && account.position(2).is_none());
    }
    // Bob paid the premium and receives 10 × 0.10 USDC (rounded down);
    // alice received both premiums and pays it (rounded up); carol's put
    // expired worthless: her premium is gone, nothing more.
    let bob_gain = t.h.collateral(&t.bob.margin_account).await - bob_before;
    assert!(
        (999_999..=1_000_000).contains(&(bob_gain + paid)),
        "{bob_gain}"
    );
    let alice_change = t.h.collateral(&t.alice.margin_account).await - alice_before;
    let premiums = paid + i64::try_from(put_price.max(1) * 4 * 100).unwrap();
    assert!(
        (premiums - 1_000_001..=premiums - 1_000_000).contains(&alice_change),
        "{alice_change}"
    );
    assert_eq!(
        t.h.collateral(&carol.margin_account).await,
        carol_before - i64::try_from(put_price.max(1) * 4 * 100).unwrap()
    );
    for market in [call, put] {
        let state = t.h.market_state(&market.market).await;
        assert_eq!(
            state.status().ok(),
            Some(MarketStatus::Closed),
            "nothing left"
        );
        assert_eq!((state.long_lots, state.short_lots), (0, 0));
    }
}

#[tokio::test]
async fn a_resting_bid_filled_at_the_band_edge_leaves_its_maker_above_maintenance() {
    // A far out-of-the-money call (strike 220, worth a few ticks) has a band
    // of mostly spot share (0.5 % of 150 per SOL: 75 ticks): a bid resting
    // at its top pays many times the model when an accomplice sells into
    // it. The maker's requirement reserves the whole half-width, so the
    // fill leaves it above maintenance.
    let mut t = listed().await;
    let now = t.h.now().await;
    let expiry = expiry_in(now, 7 * DAY);
    let far =
        t.h.create_option_on(
            4,
            &t.perp.underlying,
            option_params(),
            expiry,
            series(OptionSide::Call, 220.0),
        )
        .await;
    let model = ticks(model_value(&mut t, &far, 150.0, VOLATILITY_BPS).await);
    let state = t.h.market_state(&far.market).await;
    let spot_ticks = state.oracle_ticks(native(150.0)).unwrap();
    let value_ticks = state
        .oracle_ticks(model_value(&mut t, &far, 150.0, VOLATILITY_BPS).await)
        .unwrap();
    let (band, _) = state.bands(value_ticks, native(150.0)).unwrap();
    assert!(band.high.0 > 10 * model.max(1), "{band:?} vs {model}");
    let _ = spot_ticks;
    // Dave has 10 USDC: as many lots as his initial health allows at the
    // band's top.
    let dave = t.h.user(10 * ONE_TOKEN).await;
    t.h.deposit(&dave, 10 * ONE_TOKEN).await;
    let bid = kestrel::engine::Side::Bid;
    let mut lots = 1u64;
    while t
        .h
        .order_preview(&dave.margin_account, &far, bid, lots * 2)
        .await
        .initial
        >= 0
    {
        lots *= 2;
    }
    t.h.place(&dave, &far, order(BID, OrderType::Limit, band.high.0, lots))
        .await;
    // Alice sells into it at Dave's price.
    t.h.place(
        &t.alice,
        &far,
        order(ASK, OrderType::ImmediateOrCancel, band.high.0, lots),
    )
    .await;
    t.h.crank(&far, 8).await;
    let position = t.h.margin_account(&dave.margin_account).await;
    assert_eq!(position.position(4).map(|p| p.base_lots), Some(lots as i64));
    let health = t.h.health_preview(&dave.margin_account).await;
    assert!(health.maintenance >= 0, "{health:?}");
}
