//! Randomized trading: four traders place every kind of order, cancel,
//! deposit and withdraw while the oracle drifts and sometimes jumps, the clock
//! runs, the crank comes and goes, funding accrues, a liquidator takes over
//! the accounts a jump leaves under maintenance and bankruptcies are settled
//! from the insurance fund. Among them, an attacker's steps: stale and
//! out-of-order updates of the same feed at prices of its choosing, quotes far
//! outside the band, the book moved for the instant of an `update_funding`,
//! and self-trades cranked for the reward. The harness checks the exchange's
//! invariants after every transaction (every fill inside the band around the
//! accepted price among them); here every refusal must be a named error that
//! changed nothing, none may be an internal accounting mismatch or an
//! overflow, and the market's accepted price is always one the honest oracle
//! published. The underlying's margin fractions follow its realized
//! volatility (a 50 % baseline, quickly: the jumps move the scale within
//! the run) and position size, and initial health reads its stable price.
//! A second run trades a perpetual and two options of one underlying with a
//! scenario grid, half the traders in portfolio mode, while implied
//! volatility swings.
//!
//! `KESTREL_RANDOM_SEED` picks the sequence (default: a fixed one, so CI is
//! reproducible); `KESTREL_RANDOM_STEPS` its length.
use std::collections::{BTreeMap, BTreeSet};

use kestrel::instructions::{OrderSide, OrderType, PlaceOrderArgs, SelfTradeBehavior};
use kestrel_sdk::{errors, ix};
use kestrel_tests::*;
use solana_sdk::instruction::Instruction;
use solana_sdk::signer::Signer;

/// xorshift64*: small, seedable, good enough to pick test operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// `what`'s outcome as the runs count it: `ok`, or the refusal's name,
/// which must be a named error that changed nothing, never an internal
/// accounting mismatch or an overflow.
fn outcome(seed: u64, what: &str, result: Result<(), u32>) -> String {
    match result {
        Ok(()) => format!("{what}: ok"),
        Err(code) => {
            let name = errors::error_name(code);
            assert!(
                !matches!(
                    name.as_str(),
                    "AccountingMismatch" | "MathOverflow" | "Unreachable"
                ),
                "seed {seed:#x}: {what} refused with {name}"
            );
            format!("{what}: {name}")
        }
    }
}

/// The underlying's margin follows its realized volatility over a 50 %
/// baseline, up to 1.1 times, quickly (half a scale an hour): the runs'
/// jumps move it within them.
async fn scale_margin_quickly(h: &mut Harness, underlying: &solana_sdk::pubkey::Pubkey) {
    let admin = h.admin.insecure_clone();
    let scaling = kestrel::state::RiskScaling {
        baseline_volatility_bps: 5_000,
        max_scale_bps: 11_000,
        max_scale_change_bps_per_hour: 5_000,
        size_margin_bps: 10,
    };
    let set = ix::set_risk_scaling(&admin.pubkey(), underlying, scaling);
    h.ok("set_risk_scaling", &[set], &[&admin]).await;
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn random_trading_keeps_every_invariant() {
    let seed = env_or("KESTREL_RANDOM_SEED", 0x5eed_cafe);
    let steps = env_or("KESTREL_RANDOM_STEPS", 1_200);
    let mut rng = Rng(seed.max(1));
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    scale_margin_quickly(&mut h, &market.underlying.underlying).await;
    let mut traders = Vec::new();
    for _ in 0..4 {
        let user = h.user(10_000 * ONE_TOKEN).await;
        h.deposit(&user, 400 * ONE_TOKEN).await;
        traders.push(user);
    }
    // A saver only deposits and withdraws: whatever the traders do, her
    // collateral must end exactly at what she put in less what she took out.
    let saver = h.user(10_000 * ONE_TOKEN).await;
    let liquidator = h.user(100_000 * ONE_TOKEN).await;
    h.deposit(&liquidator, 50_000 * ONE_TOKEN).await;
    let staker = h.user(10_000 * ONE_TOKEN).await;
    let cranker = h.user(ONE_TOKEN).await;
    h.stake(&staker, 1_000 * ONE_TOKEN).await;
    let mut saved: i64 = 0;
    let mut oracle_price: i64 = 150;
    // Every price the honest oracle published, in whole quote per base; the
    // attacker's updates carry a fraction, so they can never be mistaken.
    let mut honest: BTreeSet<i64> = BTreeSet::from([150]);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |what: &str, result: Result<(), u32>| {
        *outcomes.entry(outcome(seed, what, result)).or_default() += 1;
    };

    for _ in 0..steps {
        let user = &traders[rng.below(traders.len() as u64) as usize];
        match rng.below(128) {
            0..=54 => {
                let types = [
                    OrderType::Limit,
                    OrderType::PostOnly,
                    OrderType::PostOnlySlide,
                    OrderType::ImmediateOrCancel,
                    OrderType::FillOrKill,
                    OrderType::Market,
                ];
                let behaviours = [
                    SelfTradeBehavior::DecrementTake,
                    SelfTradeBehavior::CancelProvide,
                    SelfTradeBehavior::AbortTransaction,
                ];
                let center = oracle_price as u64 * 100;
                // Now and then an order near a trader's whole margin, so
                // that the oracle's jumps leave some under maintenance.
                let max_lots = match rng.below(100) {
                    0..=4 => 5_000,
                    5..=19 => 1_500,
                    _ => 60,
                };
                let now = h.now().await as u64;
                let args = PlaceOrderArgs {
                    side: if rng.chance(50) {
                        OrderSide::Bid
                    } else {
                        OrderSide::Ask
                    },
                    order_type: types[rng.below(6) as usize],
                    // Mostly inside the 4% band, sometimes beyond it.
                    price: center - 900 + rng.below(1_800),
                    quantity: 1 + rng.below(max_lots),
                    client_order_id: rng.below(8),
                    reduce_only: rng.chance(10),
                    expiry: if rng.chance(10) {
                        now + 1 + rng.below(30)
                    } else {
                        0
                    },
                    self_trade: behaviours[rng.below(3) as usize],
                };
                let place = h.place_ix(user, &market, args).await;
                let result = h.attempt("place_order", &[place], &[&user.key]).await;
                record("place_order", result);
            }
            55..=66 => {
                let account = h.margin_account(&user.margin_account).await;
                let open: Vec<_> = account.active_orders().map(|(_, o)| o).collect();
                let cancel = match rng.below(3) {
                    0 if !open.is_empty() => {
                        let order = open[rng.below(open.len() as u64) as usize];
                        ix::cancel_order(
                            &user.pubkey(),
                            &user.margin_account,
                            &market,
                            order.order_id(),
                        )
                    }
                    1 => ix::cancel_order_by_client_id(
                        &user.pubkey(),
                        &user.margin_account,
                        &market,
                        rng.below(8),
                    ),
                    _ => ix::cancel_all(
                        &user.pubkey(),
                        &user.margin_account,
                        &market,
                        None,
                        1 + rng.below(8) as u8,
                    ),
                };
                let result = h.attempt("cancel", &[cancel], &[&user.key]).await;
                record("cancel", result);
            }
            67..=81 => {
                let reward = rng.chance(50).then_some(user.margin_account);
                let crank = h.crank_ix(&market, 1 + rng.below(24) as u16, reward).await;
                let result = h.attempt("consume_events", &[crank], &[]).await;
                record("consume_events", result);
            }
            82..=87 => {
                oracle_price = (oracle_price + rng.below(7) as i64 - 3).clamp(90, 220);
                h.chain.advance_clock(rng.below(20) as i64).await;
                h.set_oracle_price(&market, oracle_price).await;
                honest.insert(oracle_price);
                if rng.chance(20) {
                    // The primary goes stale: the fallback carries on.
                    let pyth = market.underlying.primary_oracle;
                    h.set_pyth(&pyth, oracle_price * 100_000_000, 1_000_000, 100)
                        .await;
                }
            }
            88 | 90..=93 => {
                let amount = 1 + rng.below(500 * ONE_TOKEN);
                let withdraw = h.withdraw_ix(user, amount).await;
                let result = h.attempt("withdraw", &[withdraw], &[&user.key]).await;
                record("withdraw", result);
            }
            89 => {
                let amount = 1 + rng.below(300 * ONE_TOKEN);
                let (deposit, withdraw) = (
                    ix::deposit(
                        &saver.pubkey(),
                        &saver.margin_account,
                        &saver.token_account,
                        amount,
                    ),
                    ix::withdraw(
                        &saver.pubkey(),
                        &saver.margin_account,
                        &saver.token_account,
                        amount,
                    ),
                );
                if rng.chance(60) {
                    if h.attempt("saver deposit", &[deposit], &[&saver.key])
                        .await
                        .is_ok()
                    {
                        saved += amount as i64;
                    }
                } else if h
                    .attempt("saver withdraw", &[withdraw], &[&saver.key])
                    .await
                    .is_ok()
                {
                    saved -= amount as i64;
                }
            }
            94..=96 => {
                let deposit = ix::deposit(
                    &user.pubkey(),
                    &user.margin_account,
                    &user.token_account,
                    1 + rng.below(200 * ONE_TOKEN),
                );
                let result = h.attempt("deposit", &[deposit], &[&user.key]).await;
                record("deposit", result);
            }
            97..=99 => {
                let result = h
                    .attempt("sweep_fees", &[ix::sweep_fees(&market.market)], &[])
                    .await;
                record("sweep_fees", result);
            }
            100..=103 => {
                // Minutes pass: the oracle is refreshed (it goes stale after
                // 60 s), funding is updated and one trader settles it.
                h.chain.advance_clock(60 + rng.below(600) as i64).await;
                h.set_oracle_price(&market, oracle_price).await;
                honest.insert(oracle_price);
                let result = h
                    .attempt("update_funding", &[ix::update_funding(&market)], &[])
                    .await;
                record("update_funding", result);
                let settle = ix::settle_funding(&market.market, &user.margin_account);
                let result = h.attempt("settle_funding", &[settle], &[]).await;
                record("settle_funding", result);
            }
            104..=108 => {
                let max_base_lots = if rng.chance(50) {
                    u64::MAX
                } else {
                    1 + rng.below(200)
                };
                let liquidate = h
                    .liquidate_ix(&liquidator, &user.margin_account, &market, max_base_lots)
                    .await;
                let result = h
                    .attempt("liquidate", &[liquidate], &[&liquidator.key])
                    .await;
                record("liquidate", result);
            }
            109..=110 => {
                let settle = ix::settle_bankruptcy(&user.margin_account, &market);
                let result = h.attempt("settle_bankruptcy", &[settle], &[]).await;
                record("settle_bankruptcy", result);
            }
            111..=112 => {
                // A jump of 5% to 15% either way.
                let jump = oracle_price * (5 + rng.below(11) as i64) / 100;
                let signed = if rng.chance(50) { jump } else { -jump };
                oracle_price = (oracle_price + signed).clamp(90, 220);
                h.chain.advance_clock(1).await;
                h.set_oracle_price(&market, oracle_price).await;
                honest.insert(oracle_price);
            }
            118..=119 => {
                // The attacker replays an older update of a feed (the same
                // feed id, verified) at a price 20% its way, then trades or
                // withdraws on it.
                let skew = if rng.chance(50) { 120 } else { 80 };
                let fake = oracle_price * skew * 1_000_000 + 12_345_678;
                let age = 1 + rng.below(120) as i64;
                if rng.chance(70) {
                    h.set_pyth(&market.underlying.primary_oracle, fake, 1_000_000, age)
                        .await;
                } else {
                    let sb = market.underlying.fallback_oracle.expect("a fallback");
                    h.set_switchboard(&sb, i128::from(fake) * 10i128.pow(10), age)
                        .await;
                }
                let center = oracle_price as u64 * 100;
                let args = order(
                    if skew > 100 {
                        OrderSide::Ask
                    } else {
                        OrderSide::Bid
                    },
                    OrderType::Market,
                    if skew > 100 { 1 } else { center * 2 },
                    1 + rng.below(50),
                );
                let place = h.place_ix(user, &market, args).await;
                let result = h
                    .attempt("stale replay: order", &[place], &[&user.key])
                    .await;
                record("stale replay: order", result);
                let withdraw = h.withdraw_ix(user, 1 + rng.below(300 * ONE_TOKEN)).await;
                let result = h
                    .attempt("stale replay: withdraw", &[withdraw], &[&user.key])
                    .await;
                record("stale replay: withdraw", result);
            }
            120..=121 => {
                // Quotes far outside the band never rest.
                let (side, price) = if rng.chance(50) {
                    (OrderSide::Ask, 10_000_000_000_000)
                } else {
                    (OrderSide::Bid, 1)
                };
                let mut args = order(side, OrderType::PostOnly, price, 1);
                args.reduce_only = rng.chance(50);
                let place = h.place_ix(user, &market, args).await;
                let result = h.attempt("far quote", &[place], &[&user.key]).await;
                if !args.reduce_only {
                    assert_eq!(
                        result.map_err(errors::error_name),
                        Err("PriceOutsideBand".to_string()),
                        "seed {seed:#x}: a quote at {price} ticks"
                    );
                }
                record("far quote", result);
            }
            122..=123 => {
                // The book moved for the instant of one funding sample: an
                // ask at the resting band's top, the update, the cancel.
                h.chain.advance_clock(1 + rng.below(5) as i64).await;
                let center = oracle_price as u64 * 100;
                let before = h.market_state(&market.market).await;
                let ask = h
                    .place_ix(
                        user,
                        &market,
                        order(OrderSide::Ask, OrderType::PostOnly, center * 14 / 10, 1),
                    )
                    .await;
                let cancel =
                    ix::cancel_order_by_client_id(&user.pubkey(), &user.margin_account, &market, 0);
                let result = h
                    .attempt(
                        "mark spike",
                        &[ask, ix::update_funding(&market), cancel],
                        &[&user.key],
                    )
                    .await;
                if result.is_ok() {
                    // The spike weighs nothing: the interval before it pays at
                    // most the premium that stood at its start, so funding
                    // moves no more than the averages held before it allow.
                    let after = h.market_state(&market.market).await;
                    let f = |parts| kestrel::engine::funding::from_parts(parts).to_num::<f64>();
                    let moved = f(after.long_funding_index) - f(before.long_funding_index);
                    let elapsed =
                        (after.perp.funding_updated_at - before.perp.funding_updated_at) as f64;
                    let period = f64::from(before.params.funding_period_seconds);
                    let weight = elapsed.min(period) / period;
                    let lag = f(before.perp.mark_twap) - f(before.perp.oracle_twap);
                    let bound = ((1.0 - weight) * lag.abs()
                        + weight * f(before.perp.mark_premium).abs())
                        * elapsed
                        / period;
                    assert!(
                        before.perp.funding_updated_at == 0 || moved.abs() <= bound + 1e-6,
                        "seed {seed:#x}: a one-instant spike moved funding by {moved} (bound {bound})"
                    );
                }
                record("mark spike", result);
            }
            124..=125 => {
                // A self-trade inside the spread makes only an Out event;
                // cranked for the reward, it pays the cranker nothing.
                while h.pending_events(&market).await > 0 {
                    h.crank(&market, 32).await;
                }
                let best = |data: Vec<u8>| {
                    kestrel::engine::book_side::best_price(&data[8..]).expect("a book side")
                };
                let bid = best(h.chain.account(&market.bids).await.expect("bids").data);
                let ask = best(h.chain.account(&market.asks).await.expect("asks").data);
                let center = oracle_price as u64 * 100;
                let price = bid.map_or(center - 100, |b| b.0 + 1);
                if ask.is_some_and(|a| a.0 <= price) {
                    continue;
                }
                let make = h
                    .place_ix(
                        user,
                        &market,
                        order(OrderSide::Ask, OrderType::PostOnly, price, 1),
                    )
                    .await;
                let mut take = order(OrderSide::Bid, OrderType::ImmediateOrCancel, price, 1);
                take.self_trade = SelfTradeBehavior::CancelProvide;
                let take = h.place_ix(user, &market, take).await;
                let result = h.attempt("self-trade", &[make, take], &[&user.key]).await;
                record("self-trade", result);
                if result.is_ok() && h.pending_events(&market).await > 0 {
                    let before = h.collateral(&cranker.margin_account).await;
                    let crank = h.crank_ix(&market, 512, Some(cranker.margin_account)).await;
                    let cranked = h.attempt("self-trade crank", &[crank], &[]).await;
                    record("self-trade crank", cranked);
                    assert_eq!(
                        h.collateral(&cranker.margin_account).await,
                        before,
                        "seed {seed:#x}: a self-trade's out event paid a crank reward"
                    );
                }
            }
            113..=116 => {
                // Two traders open opposite positions on most of the smaller
                // one's margin: a later jump leaves one under maintenance.
                let other = &traders[rng.below(traders.len() as u64) as usize];
                if other.margin_account == user.margin_account {
                    continue;
                }
                let headroom = h
                    .health_preview(&user.margin_account)
                    .await
                    .initial
                    .min(h.health_preview(&other.margin_account).await.initial);
                // A lot (0.01 SOL) needs 10% of its notional as initial margin.
                let margin_per_lot = oracle_price * 1_000;
                let lots = (headroom.to_num::<i64>() * 8 / 10) / margin_per_lot;
                if lots <= 0 {
                    continue;
                }
                let (maker_side, taker_side) = if rng.chance(50) {
                    (OrderSide::Ask, OrderSide::Bid)
                } else {
                    (OrderSide::Bid, OrderSide::Ask)
                };
                let price = oracle_price as u64 * 100;
                let lots = lots as u64;
                let make = h
                    .place_ix(
                        other,
                        &market,
                        order(maker_side, OrderType::Limit, price, lots),
                    )
                    .await;
                let result = h.attempt("lever up", &[make], &[&other.key]).await;
                record("lever up (maker)", result);
                let take = h
                    .place_ix(
                        user,
                        &market,
                        order(taker_side, OrderType::ImmediateOrCancel, price, lots),
                    )
                    .await;
                let result = h.attempt("lever up", &[take], &[&user.key]).await;
                record("lever up (taker)", result);
            }
            _ => {
                let stake = ix::stake(
                    &staker.pubkey(),
                    &staker.margin_account,
                    &staker.token_account,
                    1 + rng.below(100 * ONE_TOKEN),
                );
                let result = h.attempt("stake", &[stake], &[&staker.key]).await;
                record("stake", result);
            }
        }
        // The accepted price is always one the honest oracle published.
        let accepted = h
            .underlying_state(&market.underlying.underlying)
            .await
            .prices
            .last_good_price();
        let whole = accepted.expect("a last good price").to_num::<f64>() * 1_000.0;
        assert!(
            (whole - whole.round()).abs() < 1e-6 && honest.contains(&(whole.round() as i64)),
            "seed {seed:#x}: the market accepted {whole}, which the oracle never published"
        );
    }
    // Drain the queue: every maker ends settled.
    assert!(honest.len() > 1, "seed {seed:#x}: the oracle never moved");
    h.set_oracle_price(&market, oracle_price).await;
    while h.pending_events(&market).await > 0 {
        h.crank(&market, 32).await;
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!("seed {seed:#x}: {}", summary.join(", "));
    let underlying = h.underlying_state(&market.underlying.underlying).await;
    let scale = underlying.risk_scaling.scale_bps();
    println!(
        "seed {seed:#x}: realized volatility {:?}, margin scale {scale} bps",
        underlying
            .realized()
            .volatility()
            .map(|v| v.to_num::<f64>())
    );
    assert!(
        scale > 10_000,
        "seed {seed:#x}: the volatility never scaled the margin"
    );
    // The run must have exercised trading, not only refusals.
    for needed in [
        "place_order: ok",
        "consume_events: ok",
        "cancel: ok",
        "withdraw: ok",
        "update_funding: ok",
        "liquidate: ok",
        "settle_bankruptcy: ok",
        "stale replay: order: ok",
        "far quote: PriceOutsideBand",
        "mark spike: ok",
        "self-trade crank: ok",
    ] {
        assert!(
            outcomes.get(needed).copied().unwrap_or(0) > 0,
            "seed {seed:#x}: no `{needed}` in {summary:?}"
        );
    }
    let fills: i64 = {
        let mut base = 0;
        for user in &traders {
            let account = h.margin_account(&user.margin_account).await;
            base += account.position(0).map_or(0, |p| p.base_lots.abs());
        }
        base
    };
    assert!(fills > 0, "seed {seed:#x}: nobody holds a position");
    assert_eq!(
        h.collateral(&saver.margin_account).await,
        saved,
        "seed {seed:#x}: the saver's collateral moved"
    );
    assert!(h.invariant_checks() as u64 > steps / 2);
}

/// Randomized trading on a perpetual and two options of one underlying
/// with a scenario grid, half the traders in portfolio mode (and switching
/// back and forth): orders on every market, the risk-array crank now in the
/// same transaction, now missing (then health must refuse by name, never
/// read an array computed at another spot or volatility), implied
/// volatility swinging between 40 % and 150 %, spot drifting and jumping,
/// liquidations of either mode with and without a fresh array, and
/// bankruptcies. After every transaction the harness checks the invariants;
/// after every accepted withdrawal and mode switch the SDK's preview of
/// the account's initial health, read from the same accounts, must be at
/// least zero: the program and the SDK agree on portfolio health.
#[tokio::test]
async fn random_portfolio_trading_keeps_every_invariant() {
    use kestrel::engine::black_scholes::OptionSide;
    use kestrel::state::{FutureParams, MarginMode};
    let seed = env_or("KESTREL_RANDOM_SEED", 0x0b7_10a5);
    let steps = env_or("KESTREL_RANDOM_STEPS", 900);
    let mut rng = Rng(seed.max(1));
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    let underlying = perp.underlying.underlying;
    scale_margin_quickly(&mut h, &underlying).await;
    let admin = h.admin.insecure_clone();
    let mut volatility_bps = 8_000;
    let feed = h
        .configure_options(&perp.underlying, option_config, volatility_bps)
        .await;
    let expiry = FutureParams {
        expiry: minute_of(h.now().await + 7 * 86_400),
        settlement_window_seconds: 1_800,
        max_basis_bps: 0,
        basis_window_seconds: 0,
        convergence_seconds: 0,
    };
    let call = h
        .create_option_on(
            1,
            &perp.underlying,
            perp_params(),
            expiry,
            option_series(OptionSide::Call, 150.0),
        )
        .await;
    let put = h
        .create_option_on(
            2,
            &perp.underlying,
            perp_params(),
            expiry,
            option_series(OptionSide::Put, 140.0),
        )
        .await;
    let set = ix::set_scenario_margin(&admin.pubkey(), &underlying, scenario_grid());
    h.ok("set_scenario_margin", &[set], &[&admin]).await;
    let markets = [perp, call, put];
    let refresh = || ix::refresh_risk_arrays(&underlying, &[call.market, put.market]);
    h.ok("refresh_risk_arrays", &[refresh()], &[]).await;

    let mut traders = Vec::new();
    let mut modes = Vec::new();
    for i in 0..4 {
        let user = h.user(10_000 * ONE_TOKEN).await;
        h.deposit(&user, 400 * ONE_TOKEN).await;
        if i % 2 == 0 {
            let account = h.margin_account(&user.margin_account).await;
            let health = ix::health_accounts(&account, None, &h.trading_markets);
            let switch = ix::set_margin_mode(
                &user.pubkey(),
                &user.margin_account,
                MarginMode::Portfolio,
                health,
            );
            h.ok("set_margin_mode", &[switch], &[&user.key]).await;
            modes.push(MarginMode::Portfolio);
        } else {
            modes.push(MarginMode::Standard);
        }
        traders.push(user);
    }
    let liquidator = h.user(100_000 * ONE_TOKEN).await;
    h.deposit(&liquidator, 50_000 * ONE_TOKEN).await;
    // The whale quotes whatever the traders want to lever up with.
    let whale = h.user(1_000_000 * ONE_TOKEN).await;
    h.deposit(&whale, 1_000_000 * ONE_TOKEN).await;
    let staker = h.user(10_000 * ONE_TOKEN).await;
    h.stake(&staker, 1_000 * ONE_TOKEN).await;
    let mut oracle_price: i64 = 150;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |what: &str, mode: MarginMode, result: Result<(), u32>| {
        let what = match mode {
            MarginMode::Portfolio => format!("{what} (portfolio)"),
            MarginMode::Standard => what.to_string(),
        };
        *outcomes.entry(outcome(seed, &what, result)).or_default() += 1;
    };

    for _ in 0..steps {
        let who = rng.below(traders.len() as u64) as usize;
        let user = &traders[who];
        let mode = modes[who];
        let market = markets[rng.below(3) as usize];
        // Most transactions of a portfolio-mode account carry the crank.
        let fresh = rng.chance(80);
        let with_refresh = |instruction: Instruction| {
            if fresh {
                vec![refresh(), instruction]
            } else {
                vec![instruction]
            }
        };
        match rng.below(100) {
            // 34..=39 and 96..=99: lever up (the last arm).
            0..=33 => {
                let center = if market.market_index == 0 {
                    oracle_price as u64 * 100
                } else {
                    h.option_value_ticks(&market, volatility_bps).await
                };
                let types = [
                    OrderType::Limit,
                    OrderType::PostOnly,
                    OrderType::ImmediateOrCancel,
                    OrderType::Market,
                ];
                let max_lots = match rng.below(100) {
                    0..=9 => 1_500,
                    _ => 100,
                };
                let spread = (center / 25).max(2);
                let args = PlaceOrderArgs {
                    side: if rng.chance(50) {
                        OrderSide::Bid
                    } else {
                        OrderSide::Ask
                    },
                    order_type: types[rng.below(4) as usize],
                    price: (center - spread / 2 + rng.below(spread)).max(1),
                    quantity: 1 + rng.below(max_lots),
                    client_order_id: rng.below(8),
                    reduce_only: rng.chance(10),
                    expiry: 0,
                    self_trade: SelfTradeBehavior::DecrementTake,
                };
                let place = h.place_ix(user, &market, args).await;
                let result = h
                    .attempt("place_order", &with_refresh(place), &[&user.key])
                    .await;
                let label = if market.market_index == 0 {
                    "place_order perp"
                } else {
                    "place_order option"
                };
                record(label, mode, result);
            }
            40..=47 => {
                let cancel = ix::cancel_all(
                    &user.pubkey(),
                    &user.margin_account,
                    &market,
                    None,
                    1 + rng.below(8) as u8,
                );
                let result = h.attempt("cancel_all", &[cancel], &[&user.key]).await;
                record("cancel_all", mode, result);
            }
            48..=59 => {
                let crank = h.crank_ix(&market, 1 + rng.below(24) as u16, None).await;
                let result = h.attempt("consume_events", &[crank], &[]).await;
                record("consume_events", MarginMode::Standard, result);
            }
            60..=65 => {
                oracle_price = (oracle_price + rng.below(7) as i64 - 3).clamp(100, 210);
                h.chain.advance_clock(rng.below(20) as i64).await;
                h.set_oracle_price(&perp, oracle_price).await;
            }
            66..=67 => {
                let jump = oracle_price * (5 + rng.below(16) as i64) / 100;
                let signed = if rng.chance(50) { jump } else { -jump };
                oracle_price = (oracle_price + signed).clamp(100, 210);
                h.chain.advance_clock(1).await;
                h.set_oracle_price(&perp, oracle_price).await;
                // A keeper's pass: every account, each market it holds,
                // the arrays refreshed in the same transaction.
                for (i, trader) in traders.iter().enumerate() {
                    let account = h.margin_account(&trader.margin_account).await;
                    let held: Vec<u16> = account
                        .active_positions()
                        .filter(|(_, p)| p.base_lots != 0)
                        .map(|(_, p)| p.market_index)
                        .collect();
                    for index in held {
                        let market = markets[usize::from(index)];
                        let liquidate = h
                            .liquidate_ix(&liquidator, &trader.margin_account, &market, u64::MAX)
                            .await;
                        let result = h
                            .attempt("liquidate", &[refresh(), liquidate], &[&liquidator.key])
                            .await;
                        record("liquidate", modes[i], result);
                    }
                }
            }
            68..=70 => {
                // Implied volatility swings: every array computed before
                // is stale at once.
                volatility_bps = 4_000 + rng.below(11_001);
                h.set_volatility(&feed, volatility_bps).await;
            }
            71..=75 => {
                let withdraw = h.withdraw_ix(user, 1 + rng.below(300 * ONE_TOKEN)).await;
                let result = h
                    .attempt("withdraw", &with_refresh(withdraw), &[&user.key])
                    .await;
                if result.is_ok() {
                    let health = h.health_preview(&user.margin_account).await;
                    assert!(
                        health.initial >= 0,
                        "seed {seed:#x}: a withdrawal left {mode:?} initial health {health:?}"
                    );
                }
                record("withdraw", mode, result);
            }
            76..=78 => {
                let deposit = ix::deposit(
                    &user.pubkey(),
                    &user.margin_account,
                    &user.token_account,
                    1 + rng.below(200 * ONE_TOKEN),
                );
                let result = h.attempt("deposit", &[deposit], &[&user.key]).await;
                record("deposit", mode, result);
            }
            79..=80 => {
                let result = h.attempt("refresh_risk_arrays", &[refresh()], &[]).await;
                record("refresh_risk_arrays", MarginMode::Standard, result);
            }
            81..=83 => {
                let other = match mode {
                    MarginMode::Portfolio => MarginMode::Standard,
                    MarginMode::Standard => MarginMode::Portfolio,
                };
                let account = h.margin_account(&user.margin_account).await;
                let health = ix::health_accounts(&account, None, &h.trading_markets);
                let switch =
                    ix::set_margin_mode(&user.pubkey(), &user.margin_account, other, health);
                let result = h
                    .attempt("set_margin_mode", &with_refresh(switch), &[&user.key])
                    .await;
                if result.is_ok() {
                    modes[who] = other;
                    let health = h.health_preview(&user.margin_account).await;
                    assert!(
                        health.initial >= 0,
                        "seed {seed:#x}: a switch to {other:?} left initial health {health:?}"
                    );
                }
                record("set_margin_mode", other, result);
            }
            84..=90 => {
                // In a market the account holds, most of the time.
                let account = h.margin_account(&user.margin_account).await;
                let held: Vec<u16> = account
                    .active_positions()
                    .map(|(_, p)| p.market_index)
                    .collect();
                let market = match held.len() {
                    0 => market,
                    n => markets[usize::from(held[rng.below(n as u64) as usize])],
                };
                let max_base_lots = if rng.chance(50) {
                    u64::MAX
                } else {
                    1 + rng.below(200)
                };
                let liquidate = h
                    .liquidate_ix(&liquidator, &user.margin_account, &market, max_base_lots)
                    .await;
                let result = h
                    .attempt("liquidate", &with_refresh(liquidate), &[&liquidator.key])
                    .await;
                record("liquidate", mode, result);
            }
            91..=92 => {
                let settle = ix::settle_bankruptcy(&user.margin_account, &market);
                let result = h.attempt("settle_bankruptcy", &[settle], &[]).await;
                record("settle_bankruptcy", mode, result);
            }
            93..=95 => {
                // Minutes pass: the feeds are republished, funding updated.
                h.chain.advance_clock(60 + rng.below(600) as i64).await;
                h.set_oracle_price(&perp, oracle_price).await;
                h.set_volatility(&feed, volatility_bps).await;
                let result = h
                    .attempt("update_funding", &[ix::update_funding(&perp)], &[])
                    .await;
                record("update_funding", MarginMode::Standard, result);
            }
            _ => {
                // The trader takes most of its margin's worth from the
                // whale's quote: a later jump leaves it under maintenance.
                let headroom = h
                    .health_preview_with_fresh_arrays(&user.margin_account)
                    .await
                    .initial
                    .to_num::<i64>();
                // A lot of the perpetual needs 10 % of its notional in
                // standard mode, the scan range's 15 % and more in
                // portfolio mode; an option's short side about as much.
                let per_lot = oracle_price * 1_000;
                let margin_per_lot = match (mode, market.market_index) {
                    (MarginMode::Standard, 0) => per_lot,
                    _ => per_lot * 2,
                };
                let lots = headroom * 9 / 10 / margin_per_lot;
                if lots <= 0 {
                    continue;
                }
                let price = if market.market_index == 0 {
                    oracle_price as u64 * 100
                } else {
                    h.option_value_ticks(&market, volatility_bps).await
                };
                let (maker_side, taker_side) = if rng.chance(50) {
                    (OrderSide::Ask, OrderSide::Bid)
                } else {
                    (OrderSide::Bid, OrderSide::Ask)
                };
                let lots = lots as u64;
                let make = h
                    .place_ix(
                        &whale,
                        &market,
                        order(maker_side, OrderType::Limit, price, lots),
                    )
                    .await;
                let result = h.attempt("whale quotes", &[make], &[&whale.key]).await;
                record("whale quotes", MarginMode::Standard, result);
                let take = h
                    .place_ix(
                        user,
                        &market,
                        order(taker_side, OrderType::ImmediateOrCancel, price, lots),
                    )
                    .await;
                let result = h
                    .attempt("lever up", &with_refresh(take), &[&user.key])
                    .await;
                record("lever up", mode, result);
                let cancel =
                    ix::cancel_all(&whale.pubkey(), &whale.margin_account, &market, None, 8);
                let result = h.attempt("whale cancels", &[cancel], &[&whale.key]).await;
                record("whale cancels", MarginMode::Standard, result);
            }
        }
    }
    h.set_oracle_price(&perp, oracle_price).await;
    for market in markets {
        while h.pending_events(&market).await > 0 {
            h.crank(&market, 32).await;
        }
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!("seed {seed:#x}: {}", summary.join(", "));
    let scale = h
        .underlying_state(&underlying)
        .await
        .risk_scaling
        .scale_bps();
    println!("seed {seed:#x}: margin scale {scale} bps");
    for needed in [
        "place_order option (portfolio): ok",
        "place_order option: ok",
        "place_order perp (portfolio): ok",
        "place_order option (portfolio): RiskArrayStale",
        "withdraw (portfolio): ok",
        "set_margin_mode (portfolio): ok",
        "set_margin_mode: ok",
        "liquidate (portfolio): ok",
        "liquidate: ok",
        "refresh_risk_arrays: ok",
        "consume_events: ok",
    ] {
        assert!(
            outcomes.get(needed).copied().unwrap_or(0) > 0,
            "seed {seed:#x}: no `{needed}` in {summary:?}"
        );
    }
    assert!(h.invariant_checks() as u64 > steps / 2);
}
