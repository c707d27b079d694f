//! Portfolio margin on the real program: an underlying's scenario grid
//! (`set_scenario_margin`), option risk arrays computed by the permissionless
//! crank (`refresh_risk_arrays`), margin accounts that opt in
//! (`set_margin_mode`), health that refuses a stale array, and the
//! liquidation of a portfolio-mode account sized against its whole book.
//! The harness checks conservation, Σ contracts = 0 per market and the
//! books after every transaction.
use fixed::types::I80F48;
use kestrel::engine::black_scholes::OptionSide;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{FutureParams, MarginAccount, MarginMode, ScenarioConfig};
use kestrel_sdk::client::Chain;
use kestrel_sdk::health::Health;
use kestrel_sdk::ix;
use kestrel_tests::*;
use solana_sdk::instruction::Instruction;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const DAY: i64 = 86_400;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

fn grid() -> ScenarioConfig {
    scenario_grid()
}

struct Book {
    h: Harness,
    perp: ix::MarketAccounts,
    call: ix::MarketAccounts,
    put: ix::MarketAccounts,
    bob: User,
}

/// SOL-PERP (market 0, SOL at 150) with the grid, and SOL options at 80 %
/// expiring in a week: a 150 call (market 1) and a 140 put (market 2). Bob
/// holds 10,000 USDC and trades against everyone.
async fn book() -> Book {
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    h.configure_options(&perp.underlying, option_config, 8_000)
        .await;
    let expiry = FutureParams {
        expiry: minute_of(h.now().await + 7 * DAY),
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
    let admin = h.admin.insecure_clone();
    let set = ix::set_scenario_margin(&admin.pubkey(), &perp.underlying.underlying, grid());
    h.ok("set_scenario_margin", &[set], &[&admin]).await;
    let bob = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&bob, 10_000 * ONE_TOKEN).await;
    Book {
        h,
        perp,
        call,
        put,
        bob,
    }
}

impl Book {
    /// A dated future of the perpetual's underlying (market 3) expiring
    /// `seconds` from now, its basis converging over the last hour.
    async fn list_future(&mut self, seconds: i64) -> (ix::MarketAccounts, FutureParams) {
        let future = FutureParams {
            expiry: minute_of(self.h.now().await + seconds),
            settlement_window_seconds: 1_800,
            max_basis_bps: 200,
            basis_window_seconds: 600,
            convergence_seconds: 3_600,
        };
        let underlying = self.perp.underlying;
        let dated = self
            .h
            .create_future_on(3, &underlying, perp_params(), future)
            .await;
        (dated, future)
    }

    /// A new user with `collateral` deposited, in portfolio mode.
    async fn portfolio_user(&mut self, collateral: u64) -> User {
        let user = self.h.user(collateral).await;
        self.h.deposit(&user, collateral).await;
        let switch = self.mode_ix(&user, MarginMode::Portfolio).await;
        self.h
            .ok("set_margin_mode portfolio", &[switch], &[&user.key])
            .await;
        user
    }

    fn refresh_ix(&self) -> Instruction {
        ix::refresh_risk_arrays(
            &self.perp.underlying.underlying,
            &[self.call.market, self.put.market],
        )
    }

    async fn mode_ix(&mut self, user: &User, mode: MarginMode) -> Instruction {
        let account = self.h.margin_account(&user.margin_account).await;
        let health = ix::health_accounts(&account, None, &self.h.trading_markets);
        ix::set_margin_mode(&user.pubkey(), &user.margin_account, mode, health)
    }

    /// `user` takes `lots` from bob's ask (or bid) at `price` ticks.
    async fn take(
        &mut self,
        user: &User,
        market: &ix::MarketAccounts,
        side: OrderSide,
        price: u64,
        lots: u64,
    ) {
        let maker_side = if side == BID { ASK } else { BID };
        let make = self
            .h
            .place_ix(
                &self.bob,
                market,
                order(maker_side, OrderType::Limit, price, lots),
            )
            .await;
        self.h.ok("bob quotes", &[make], &[&self.bob.key]).await;
        let take = self
            .h
            .place_ix(
                user,
                market,
                order(side, OrderType::ImmediateOrCancel, price, lots),
            )
            .await;
        self.h.ok("take", &[take], &[&user.key]).await;
        self.h.crank(market, 8).await;
    }

    /// The SDK's preview of `user`'s account as if it were in `mode`.
    async fn preview_in(&mut self, user: &User, mode: MarginMode) -> Health {
        let mut account: MarginAccount = self.h.margin_account(&user.margin_account).await;
        account.margin_mode = mode as u8;
        let mut snapshots = Vec::new();
        for market in self.h.trading_markets.clone() {
            snapshots.push(self.h.market_snapshot(&market).await.expect("snapshot"));
        }
        let clock = self.h.chain.clock().await;
        kestrel_sdk::health::preview(&account, &snapshots, clock.unix_timestamp, clock.slot)
            .expect("preview")
    }

    /// The call's model value at 80 %, in the harness's ticks.
    async fn call_ticks(&mut self) -> u64 {
        let call = self.call;
        self.h.option_value_ticks(&call, 8_000).await
    }
}

/// A covered call (long a perpetual, short the call) on 30 USDC: standard
/// mode sums 10 % of the perpetual and the call's own requirement and
/// refuses it; portfolio mode sees the hedge and takes it. Health in
/// portfolio mode refuses an array that is missing or stale, and the same
/// transaction's refresh makes it usable.
#[tokio::test]
async fn a_covered_call_fits_in_portfolio_mode_and_stale_arrays_are_refused() {
    let mut t = book().await;
    let carol = t.h.user(30 * ONE_TOKEN).await;
    t.h.deposit(&carol, 30 * ONE_TOKEN).await;
    let perp = t.perp;
    let call = t.call;
    // Long 1 SOL of the perpetual at 150 (15 USDC of initial margin).
    t.take(&carol, &perp, BID, 15_000, 100).await;

    // Selling 1 SOL of calls against it: refused in standard mode.
    let value = t.call_ticks().await;
    let sell =
        t.h.place_ix(&carol, &call, order(ASK, OrderType::Limit, value, 100))
            .await;
    t.h.refused(
        "a covered call in standard mode",
        &[sell],
        &[&carol.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;

    // Portfolio mode: only the owner switches, and not to the mode it has.
    let intruder = t.h.user(0).await;
    let account = t.h.margin_account(&carol.margin_account).await;
    let health = ix::health_accounts(&account, None, &t.h.trading_markets);
    let switch = ix::set_margin_mode(
        &intruder.pubkey(),
        &carol.margin_account,
        MarginMode::Portfolio,
        health,
    );
    t.h.refused(
        "set_margin_mode by another",
        &[switch],
        &[&intruder.key],
        code(KestrelError::NotMarginAccountOwner),
    )
    .await;
    let same = t.mode_ix(&carol, MarginMode::Standard).await;
    t.h.refused(
        "set_margin_mode to the mode it has",
        &[same],
        &[&carol.key],
        code(KestrelError::MarginModeUnchanged),
    )
    .await;
    let switch = t.mode_ix(&carol, MarginMode::Portfolio).await;
    t.h.ok("set_margin_mode portfolio", &[switch], &[&carol.key])
        .await;

    // The call's array has never been computed: refused, by name.
    let sell =
        t.h.place_ix(&carol, &call, order(ASK, OrderType::Limit, value, 100))
            .await;
    t.h.refused(
        "a short call without its risk array",
        std::slice::from_ref(&sell),
        &[&carol.key],
        code(KestrelError::RiskArrayStale),
    )
    .await;
    // With the refresh in the same transaction it rests, and bob buys it.
    let refresh = t.refresh_ix();
    t.h.ok("refresh and sell the call", &[refresh, sell], &[&carol.key])
        .await;
    let buy =
        t.h.place_ix(
            &t.bob,
            &call,
            order(BID, OrderType::ImmediateOrCancel, value, 100),
        )
        .await;
    t.h.ok("bob buys the calls", &[buy], &[&t.bob.key]).await;
    t.h.crank(&call, 8).await;
    let account = t.h.margin_account(&carol.margin_account).await;
    assert_eq!(account.position(0).unwrap().base_lots, 100);
    assert_eq!(account.position(1).unwrap().base_lots, -100);

    // The hedge needs less than the sum of its standard requirements (15
    // USDC for the perpetual, 22.5 beyond its value for the call), and no
    // less than a scenario's loss: at −15 % with volatility up the pair
    // loses about 17 USDC, so initial health is below 30 − 17.
    let portfolio = t.preview_in(&carol, MarginMode::Portfolio).await;
    let standard = t.preview_in(&carol, MarginMode::Standard).await;
    assert!(portfolio.initial >= 0, "{portfolio:?}");
    assert!(standard.initial < 0, "{standard:?}");
    assert!(
        portfolio.initial < I80F48::from_num(30 - 17) * 1_000_000,
        "{portfolio:?}"
    );
    // Back to standard mode would leave it under: refused.
    let back = t.mode_ix(&carol, MarginMode::Standard).await;
    let refresh = t.refresh_ix();
    t.h.refused(
        "set_margin_mode standard under water",
        &[refresh, back],
        &[&carol.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;

    // SOL to 152.5 (1.7 %, past the 1 % tolerance): withdrawing needs a
    // fresh array, which the same transaction can compute.
    t.h.set_oracle_price(&perp, 152).await;
    let withdraw = t.h.withdraw_ix(&carol, ONE_TOKEN).await;
    t.h.refused(
        "a withdrawal against a stale array",
        std::slice::from_ref(&withdraw),
        &[&carol.key],
        code(KestrelError::RiskArrayStale),
    )
    .await;
    let refresh = t.refresh_ix();
    t.h.ok("refresh and withdraw", &[refresh, withdraw], &[&carol.key])
        .await;
    // Ten minutes on, the array is too old whatever the price.
    t.h.advance_clock(601).await;
    t.h.set_oracle_price(&perp, 152).await;
    let withdraw = t.h.withdraw_ix(&carol, ONE_TOKEN).await;
    t.h.refused(
        "a withdrawal against an old array",
        &[withdraw],
        &[&carol.key],
        code(KestrelError::RiskArrayStale),
    )
    .await;
    // A new grid (version 2) makes every array stale at once.
    let admin = t.h.admin.insecure_clone();
    let refresh = t.refresh_ix();
    t.h.ok("refresh", &[refresh], &[]).await;
    let tighter = ScenarioConfig {
        scan_range_bps: 1_600,
        ..grid()
    };
    let set = ix::set_scenario_margin(&admin.pubkey(), &perp.underlying.underlying, tighter);
    t.h.ok("set_scenario_margin", &[set], &[&admin]).await;
    let withdraw = t.h.withdraw_ix(&carol, ONE_TOKEN).await;
    t.h.refused(
        "a withdrawal against an array of the old grid",
        &[withdraw],
        &[&carol.key],
        code(KestrelError::RiskArrayStale),
    )
    .await;
}

/// The admin's and the crank's refusals: a grid out of range or from
/// another key, arrays for a market that is not an option of the
/// underlying, or for an underlying without a grid.
#[tokio::test]
async fn the_grid_and_the_crank_refuse_what_they_cannot_use() {
    let mut t = book().await;
    let admin = t.h.admin.insecure_clone();
    let underlying = t.perp.underlying.underlying;
    let intruder = t.h.user(0).await;
    let set = ix::set_scenario_margin(&intruder.pubkey(), &underlying, grid());
    t.h.refused(
        "set_scenario_margin by another",
        &[set],
        &[&intruder.key],
        code(KestrelError::NotAdmin),
    )
    .await;
    let bad: [fn(&mut ScenarioConfig); 7] = [
        |c| c.scan_range_bps = 5_001,
        // 40 % × 2.5 = 100 % of the spot.
        |c| {
            c.scan_range_bps = 4_000;
            c.extreme_move_bps = 25_000
        },
        |c| c.maintenance_factor_bps = 10_001,
        |c| c.array_tolerance_bps = 0,
        |c| c.array_max_age_seconds = 0,
        |c| c.short_option_bps = 1_001,
        // A basis add-on above twice the floor: health not concave.
        |c| c.basis_bps = 2 * c.linear_floor_bps + 1,
    ];
    for change in bad {
        let mut config = grid();
        change(&mut config);
        let set = ix::set_scenario_margin(&admin.pubkey(), &underlying, config);
        t.h.refused(
            "an invalid grid",
            &[set],
            &[&admin],
            code(KestrelError::InvalidScenarioMargin),
        )
        .await;
    }
    // The perpetual has no array.
    let perp = ix::refresh_risk_arrays(&underlying, &[t.perp.market]);
    t.h.refused(
        "risk arrays of a perpetual",
        &[perp],
        &[],
        code(KestrelError::NotAnOptionMarket),
    )
    .await;
    // An option of this underlying named against another underlying.
    let other = t.h.create_market(3, market_params).await;
    let wrong = ix::refresh_risk_arrays(&other.underlying.underlying, &[t.call.market]);
    t.h.refused(
        "risk arrays of another underlying's option",
        &[wrong],
        &[],
        code(KestrelError::NoScenarioMargin),
    )
    .await;
    let set = ix::set_scenario_margin(&admin.pubkey(), &other.underlying.underlying, grid());
    t.h.ok("grid on the other underlying", &[set], &[&admin])
        .await;
    let wrong = ix::refresh_risk_arrays(&other.underlying.underlying, &[t.call.market]);
    t.h.refused(
        "risk arrays of another underlying's option",
        &[wrong],
        &[],
        code(KestrelError::NotAnOptionMarket),
    )
    .await;
    // The array the crank stores is the program's: at the accepted price.
    let refresh = t.refresh_ix();
    t.h.ok("refresh_risk_arrays", &[refresh], &[]).await;
    let state = t.h.market_state(&t.call.market).await;
    let array = state.risk_array.read().expect("computed");
    assert_eq!(array.spot, I80F48::from_num(150) / 1_000);
    assert_eq!(array.config_version, 1);
    assert_eq!(array.scan_range_bps, 1_500);
    // Entries are a long call's change per unit: a gain at +15 % (both
    // volatility shocks), a loss at −15 %.
    assert!(array.entries[10] > 0 && array.entries[11] > 0 && array.entries[12] < 0);
}

/// A portfolio-mode account short naked calls is liquidated after a jump
/// in the spot, the liquidator refreshing the arrays in the same
/// transaction (refused without), to no more lots than bring its health at
/// the liquidation end to zero. A hedge leg whose closing would lower
/// health is not liquidated.
#[tokio::test]
async fn a_portfolio_account_is_liquidated_against_its_whole_book() {
    let mut t = book().await;
    let carol = t.h.user(20 * ONE_TOKEN).await;
    t.h.deposit(&carol, 20 * ONE_TOKEN).await;
    let switch = t.mode_ix(&carol, MarginMode::Portfolio).await;
    t.h.ok("set_margin_mode portfolio", &[switch], &[&carol.key])
        .await;
    let call = t.call;
    let perp = t.perp;
    let value = t.call_ticks().await;
    let refresh = t.refresh_ix();
    t.h.ok("refresh", &[refresh], &[]).await;
    t.take(&carol, &call, ASK, value, 60).await;
    let health = t.preview_in(&carol, MarginMode::Portfolio).await;
    assert!(health.maintenance > 0, "{health:?}");

    // SOL to 175: carol is under water.
    t.h.set_oracle_price(&perp, 175).await;
    let refresh = t.refresh_ix();
    t.h.ok("refresh", &[refresh], &[]).await;
    let health = t.preview_in(&carol, MarginMode::Portfolio).await;
    assert!(health.maintenance < 0, "{health:?}");
    // A stale array (SOL moved on to 178) refuses the liquidation.
    t.h.set_oracle_price(&perp, 178).await;
    let alice = t.h.user(1_000 * ONE_TOKEN).await;
    t.h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    let liquidate =
        t.h.liquidate_ix(&alice, &carol.margin_account, &call, u64::MAX)
            .await;
    t.h.refused(
        "liquidation against a stale array",
        std::slice::from_ref(&liquidate),
        &[&alice.key],
        code(KestrelError::RiskArrayStale),
    )
    .await;
    let refresh = t.refresh_ix();
    t.h.ok(
        "refresh and liquidate",
        &[refresh, liquidate],
        &[&alice.key],
    )
    .await;
    let after = t.h.margin_account(&carol.margin_account).await;
    let left = after.position(1).map(|p| p.base_lots).unwrap_or(0);
    assert!(left > -60, "some lots bought back: {left} left");
    let taken = t.h.margin_account(&alice.margin_account).await;
    assert_eq!(taken.position(1).unwrap().base_lots, -(60 + left));
    // No further than needed, and not left under maintenance.
    let health = t.preview_in(&carol, MarginMode::Portfolio).await;
    assert!(left == 0 || health.liquidation_end >= 0, "{health:?}");
    assert!(health.maintenance >= 0, "{health:?}");
}

/// Long the perpetual and short a dated future of the same underlying, on
/// little collateral: the grid sees a hedge. Taking one leg off with a
/// reduce-only order would leave the other naked, so portfolio mode checks
/// reduce-only orders too (refused by name). Under water (a wider oracle
/// add-on), no lot of either leg raises health: the liquidator takes the
/// leg over whole at the mark, without the fee (the insurance fund's
/// balance does not move), and then the naked leg, which does raise it,
/// at the fee, held to what carol is worth.
#[tokio::test]
async fn a_hedge_leg_is_neither_dropped_reduce_only_nor_left_unliquidatable() {
    let mut t = book().await;
    let (dated, _) = t.list_future(30 * DAY).await;
    let carol = t.portfolio_user(40 * ONE_TOKEN).await;
    let perp = t.perp;
    // 1 SOL long of the perpetual, 1 SOL short of the future, at 150; then
    // carol withdraws all but a USDC above the hedge's requirement (30
    // USDC of margin in standard mode).
    t.take(&carol, &perp, BID, 15_000, 100).await;
    t.take(&carol, &dated, ASK, 15_000, 100).await;
    let health = t.preview_in(&carol, MarginMode::Portfolio).await;
    let spare = health.initial.to_num::<u64>() - ONE_TOKEN;
    let withdraw = t.h.withdraw_ix(&carol, spare).await;
    t.h.ok("withdraw", &[withdraw], &[&carol.key]).await;
    let collateral = t.h.collateral(&carol.margin_account).await;
    assert!(collateral < 10 * ONE_TOKEN as i64, "{collateral}");

    // Selling the perpetual reduce-only would leave the short naked.
    let mut drop_leg = order(ASK, OrderType::Limit, 15_000, 100);
    drop_leg.reduce_only = true;
    let drop_leg = t.h.place_ix(&carol, &perp, drop_leg).await;
    t.h.refused(
        "a reduce-only order dropping a hedge leg",
        &[drop_leg],
        &[&carol.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;

    // An oracle add-on of 5 % a unit held: carol is under maintenance.
    let admin = t.h.admin.insecure_clone();
    let wider = ScenarioConfig {
        confidence_bps: 500,
        ..grid()
    };
    let set = ix::set_scenario_margin(&admin.pubkey(), &perp.underlying.underlying, wider);
    t.h.ok("set_scenario_margin", &[set], &[&admin]).await;
    let health = t.preview_in(&carol, MarginMode::Portfolio).await;
    assert!(health.maintenance < 0, "{health:?}");

    let alice = t.h.user(1_000 * ONE_TOKEN).await;
    t.h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    let vault = t.h.insurance_vault;
    let fund_before = t.h.token_balance(&vault).await;
    let collateral_before = t.h.collateral(&carol.margin_account).await;
    let liquidate =
        t.h.liquidate_ix(&alice, &carol.margin_account, &perp, u64::MAX)
            .await;
    t.h.ok("liquidate the hedge leg", &[liquidate], &[&alice.key])
        .await;
    let after = t.h.margin_account(&carol.margin_account).await;
    assert!(after.position(0).is_none_or(|p| p.base_lots == 0));
    let taken = t.h.margin_account(&alice.margin_account).await;
    assert_eq!(taken.position(0).unwrap().base_lots, 100);
    assert_eq!(
        t.h.token_balance(&vault).await,
        fund_before,
        "no fee on a hedge leg"
    );
    // At the mark (150, where carol bought): nothing realized, no fee
    // (the quote rounded down a unit, as every liquidatee's sale is).
    let lost = collateral_before - t.h.collateral(&carol.margin_account).await;
    assert!((0..=1).contains(&lost), "{lost}");

    // The naked short now raises health as it is bought back: at the fee.
    let liquidate =
        t.h.liquidate_ix(&alice, &carol.margin_account, &dated, u64::MAX)
            .await;
    t.h.ok("liquidate the naked leg", &[liquidate], &[&alice.key])
        .await;
    assert!(
        t.h.token_balance(&vault).await > fund_before,
        "the fee's share"
    );
    let left = t.h.margin_account(&carol.margin_account).await;
    let short = left.position(3).map_or(0, |p| p.base_lots);
    assert!(short > -100, "some lots bought back: {short}");
    // The fee on 1 SOL (3.75 USDC at 2.5 %) is more than carol is worth:
    // it stops at her equity (the future is still at 150, where she sold),
    // so she is not left bankrupt for the insurance fund.
    let collateral = t.h.collateral(&carol.margin_account).await;
    assert!((0..ONE_TOKEN as i64).contains(&collateral), "{collateral}");
}

/// Past its expiry a dated future is marked at its settlement average,
/// which no longer moves with the spot: it hedges nothing in a scenario
/// and keeps standard mode's rule. Short a future into expiry, carol
/// cannot then buy the perpetual as if the pair were a hedge.
#[tokio::test]
async fn an_expired_future_hedges_nothing() {
    let mut t = book().await;
    let (dated, future) = t.list_future(3_600).await;
    let carol = t.portfolio_user(35 * ONE_TOKEN).await;
    let perp = t.perp;
    t.take(&carol, &dated, ASK, 15_000, 100).await;
    // Before expiry the pair is a hedge: the long fits (about 25 USDC
    // for the short alone, 0.6 for the pair).
    let probe =
        t.h.order_preview(
            &carol.margin_account,
            &perp,
            kestrel::engine::Side::Bid,
            100,
        )
        .await;
    assert!(probe.initial >= 0, "{probe:?}");

    t.h.publish_each_minute(&perp, future.expiry + 60, 150)
        .await;
    // After it, 15 USDC for the expired short's standard margin and 25
    // for the naked long: more than carol has.
    let make =
        t.h.place_ix(&t.bob, &perp, order(ASK, OrderType::Limit, 15_000, 100))
            .await;
    t.h.ok("bob quotes", &[make], &[&t.bob.key]).await;
    let take =
        t.h.place_ix(
            &carol,
            &perp,
            order(BID, OrderType::ImmediateOrCancel, 15_000, 100),
        )
        .await;
    t.h.refused(
        "the perpetual against an expired future",
        &[take],
        &[&carol.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
}
