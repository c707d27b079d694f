//! Margin fractions that follow risk (`set_risk_scaling`,
//! `engine::margin_scaling`): lifted with position size, so a whale's
//! marginal lot needs more margin than a small trader's, and scaled with
//! the underlying's realized volatility above a baseline at a bounded rate,
//! so one burst of volatility cannot push the whole book into liquidation.
//!
//! Market 0 as in `trading.rs`: 150 USDC per SOL is 15,000 ticks, a lot
//! 0.01 SOL (1.5 USDC); 10 % initial margin, 5 % maintenance. The expected
//! figures are computed here from the rule, not by the SDK.
use fixed::types::I80F48;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::RiskScaling;
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
/// One lot at 150 USDC per SOL, in native USDC.
const LOT_VALUE: i64 = 1_500_000;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

struct Scaled {
    h: Harness,
    market: MarketAccounts,
    maker: User,
}

async fn setup(scaling: RiskScaling) -> Scaled {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let maker = h.user(1_000_000 * ONE_TOKEN).await;
    h.deposit(&maker, 1_000_000 * ONE_TOKEN).await;
    let admin = h.admin.insecure_clone();
    let set = ix::set_risk_scaling(&admin.pubkey(), &market.underlying.underlying, scaling);
    h.ok("set_risk_scaling", &[set], &[&admin]).await;
    Scaled { h, market, maker }
}

impl Scaled {
    async fn trader(&mut self, collateral: u64) -> User {
        let user = self.h.user(collateral).await;
        self.h.deposit(&user, collateral).await;
        user
    }

    /// `user` buys `lots` from the maker at 150.00: the maker's ask, then
    /// the taker's order, accepted or refused with `refusal`.
    async fn buy(&mut self, user: &User, lots: u64, refusal: Option<KestrelError>) {
        let (maker, market) = (&self.maker, &self.market);
        self.h
            .place(maker, market, order(ASK, OrderType::Limit, 15_000, lots))
            .await;
        let buy = self
            .h
            .place_ix(
                user,
                market,
                order(BID, OrderType::FillOrKill, 15_000, lots),
            )
            .await;
        let key = user.key.insecure_clone();
        match refusal {
            None => {
                self.h.ok("place_order", &[buy], &[&key]).await;
                self.h.crank(market, 8).await;
            }
            Some(error) => {
                self.h
                    .refused("place_order", &[buy], &[&key], code(error))
                    .await;
                let cancel =
                    ix::cancel_all(&maker.pubkey(), &maker.margin_account, market, None, 8);
                let maker_key = maker.key.insecure_clone();
                self.h.ok("cancel_all", &[cancel], &[&maker_key]).await;
            }
        }
    }
}

/// Health to within a native unit (150 USDC per SOL is not exact in binary).
#[track_caller]
fn assert_near(health: I80F48, expected: i64) {
    let gap = (health - I80F48::from_num(expected)).abs();
    assert!(gap < 1, "{health} vs {expected}");
}

/// The size rule: `max(f, 4/5 f + lift × √units)` in basis points.
fn sized_fraction_bps(fraction: u32, lift: u32, units: u64) -> u32 {
    let root = (units as f64).sqrt().floor() as u32;
    fraction
        .max((fraction * 4).div_ceil(5) + lift * root)
        .min(10_000)
}

#[tokio::test]
async fn only_the_admin_sets_risk_scaling_and_bad_values_are_refused() {
    let mut t = setup(RiskScaling::default()).await;
    let underlying = t.market.underlying.underlying;
    let valid = RiskScaling {
        baseline_volatility_bps: 8_000,
        max_scale_bps: 30_000,
        max_scale_change_bps_per_hour: 5_000,
        size_margin_bps: 50,
    };
    let intruder = t.h.user(ONE_TOKEN).await;
    let set = ix::set_risk_scaling(&intruder.pubkey(), &underlying, valid);
    t.h.refused(
        "set_risk_scaling by another",
        &[set],
        &[&intruder.key],
        code(KestrelError::NotAdmin),
    )
    .await;
    let admin = t.h.admin.insecure_clone();
    for bad in [
        RiskScaling {
            max_scale_bps: 9_999,
            ..valid
        },
        RiskScaling {
            max_scale_bps: 100_001,
            ..valid
        },
        RiskScaling {
            max_scale_change_bps_per_hour: 0,
            ..valid
        },
        RiskScaling {
            baseline_volatility_bps: 100_001,
            ..valid
        },
        RiskScaling {
            size_margin_bps: 1_001,
            ..valid
        },
    ] {
        let set = ix::set_risk_scaling(&admin.pubkey(), &underlying, bad);
        t.h.refused(
            "set_risk_scaling",
            &[set],
            &[&admin],
            code(KestrelError::InvalidRiskScaling),
        )
        .await;
    }
    let set = ix::set_risk_scaling(&admin.pubkey(), &underlying, valid);
    t.h.ok("set_risk_scaling", &[set], &[&admin]).await;
    let state = t.h.underlying_state(&underlying).await;
    assert_eq!(state.risk_scaling.config, valid);
    assert_eq!(state.risk_scaling.scale_bps(), 10_000);
}

#[tokio::test]
async fn a_whale_s_marginal_lot_needs_more_margin() {
    // 0.5 % per √SOL: 4 SOL pays the market's 10 %, 200 SOL 8 % + 7 % and
    // 400 SOL 8 % + 10 %.
    let lift = 50;
    let mut t = setup(RiskScaling {
        size_margin_bps: lift,
        ..RiskScaling::default()
    })
    .await;
    assert_eq!(sized_fraction_bps(1_000, lift, 4), 1_000);
    assert_eq!(sized_fraction_bps(1_000, lift, 200), 1_500);
    assert_eq!(sized_fraction_bps(1_000, lift, 400), 1_800);

    // A small trader: 4 SOL on 1,000 USDC, at the market's fraction.
    let small = t.trader(1_000 * ONE_TOKEN).await;
    t.buy(&small, 400, None).await;
    let collateral = t.h.collateral(&small.margin_account).await;
    let health = t.h.health_preview(&small.margin_account).await;
    assert_near(health.initial, collateral - 400 * LOT_VALUE / 10);

    // A whale with 8,000 USDC: 400 SOL (60,000 USDC) would pass at 10 %
    // (6,000) but needs 18 % (10,800): refused; 200 SOL needs 15 %.
    let whale = t.trader(8_000 * ONE_TOKEN).await;
    t.buy(&whale, 40_000, Some(KestrelError::InsufficientHealth))
        .await;
    t.buy(&whale, 20_000, None).await;
    let collateral = t.h.collateral(&whale.margin_account).await;
    let health = t.h.health_preview(&whale.margin_account).await;
    let value = 20_000 * LOT_VALUE;
    assert_near(health.initial, collateral - value * 15 / 100);
    let maintenance = i64::from(sized_fraction_bps(500, lift, 200));
    assert_eq!(maintenance, 1_100);
    assert_near(
        health.maintenance,
        collateral - value * maintenance / 10_000,
    );
    // Its next lot costs 15 % or more; the small trader's 10 %.
}

#[tokio::test]
async fn margin_scales_with_realized_volatility_at_a_bounded_rate() {
    // An 80 % baseline, at most 3×, moving at most 0.6 of a scale an hour
    // (0.01 a minute).
    let mut t = setup(RiskScaling {
        baseline_volatility_bps: 8_000,
        max_scale_bps: 30_000,
        max_scale_change_bps_per_hour: 6_000,
        size_margin_bps: 0,
    })
    .await;
    let trader = t.trader(1_000 * ONE_TOKEN).await;
    t.buy(&trader, 400, None).await;
    let underlying = t.market.underlying.underlying;
    // Half an hour of 0.67 % swings a minute: about 480 % a year, past the
    // baseline's triple (and slow enough for the stable price to follow
    // exactly).
    for minute in 1..=30 {
        t.h.advance_clock(60).await;
        let price = if minute % 2 == 0 { 150 } else { 151 };
        t.h.set_oracle_price(&t.market, price).await;
        let state = t.h.underlying_state(&underlying).await;
        let volatility: f64 = state.realized().volatility().unwrap().to_num();
        assert!(volatility > 2.4, "{volatility}");
        // One step a minute, however far the target.
        assert_eq!(state.risk_scaling.scale_bps(), 10_000 + 100 * minute);
    }
    // At 150 (flat PnL): maintenance 5 % × 1.3 = 6.5 %, initial 13 %.
    let collateral = t.h.collateral(&trader.margin_account).await;
    let health = t.h.health_preview(&trader.margin_account).await;
    let value = 400 * LOT_VALUE;
    assert_near(health.maintenance, collateral - value * 650 / 10_000);
    assert_near(health.initial, collateral - value * 1_300 / 10_000);
    // Removing the baseline restores the market's fractions at once.
    let admin = t.h.admin.insecure_clone();
    let set = ix::set_risk_scaling(&admin.pubkey(), &underlying, RiskScaling::default());
    t.h.ok("set_risk_scaling", &[set], &[&admin]).await;
    let health = t.h.health_preview(&trader.margin_account).await;
    assert_near(health.maintenance, collateral - value * 500 / 10_000);
}
