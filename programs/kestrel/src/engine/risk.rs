//! Account health, in native quote units (I80F48).
//!
//! health = collateral
//!        + Σ ( unrealized PnL at the oracle price + unsettled funding
//!              − |worst-case base position| × price × margin fraction )
//!
//! The worst case counts resting orders as filled: all bids (the longest the
//! account can get) or all asks (the shortest), whichever is larger in size.
//! Initial fractions gate new risk, maintenance fractions gate liquidation.
//!
//! Initial health is stricter in two more ways, so that a spike in the
//! price creates no health to withdraw or trade against (the October 2022
//! attack on Mango Markets): each position is valued at the worse for it
//! of its accepted and its stable price (`engine::stable_price`;
//! [`initial_price`]) and margined at the higher, and only
//! [`UNREALIZED_PROFIT_WEIGHT_BPS`] of a position's unrealized profit
//! counts. Maintenance health and liquidations use the accepted price and
//! count profit whole. Initial health is so never above maintenance
//! health, whatever the two prices.
//! Health only ranks and gates accounts; no money moves by it, so it needs no
//! rounding rule of its own.
use super::fastmul::{checked_mul_i128_u64, FastMulInt};
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;

/// The share of a position's unrealized profit (at its initial price)
/// that initial health counts: half, so a position's gain can carry at
/// most half of new risk until it is realized.
pub const UNREALIZED_PROFIT_WEIGHT_BPS: u32 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthKind {
    Initial,
    Maintenance,
    /// Where liquidation stops: margin fraction halfway between
    /// maintenance and initial.
    LiquidationEnd,
}

/// `value` as I80F48: the integer's bits shifted into place (exact for any
/// i64; cheaper on SBF than the generic `from_num`).
fn whole(value: i64) -> I80F48 {
    I80F48::from_bits(i128::from(value) << 48)
}

/// The margin fraction `kind` charges, from a market's two fractions.
pub fn margin_bps(kind: HealthKind, initial_bps: u32, maintenance_bps: u32) -> u32 {
    match kind {
        HealthKind::Initial => initial_bps,
        HealthKind::Maintenance => maintenance_bps,
        HealthKind::LiquidationEnd => {
            ((u64::from(initial_bps) + u64::from(maintenance_bps)) / 2) as u32
        }
    }
}

/// One perpetual position as health sees it, in native units of the base
/// and quote mints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerpExposure {
    /// Signed base position (long > 0).
    pub base: i64,
    /// Quote paid (< 0) or received (> 0) for that position, fees included.
    pub quote: i64,
    /// Base quantity resting on the bid side.
    pub bids: u64,
    /// Base quantity resting on the ask side.
    pub asks: u64,
    /// Funding owed to (> 0) or by (< 0) the position, not yet settled.
    pub unsettled_funding: I80F48,
    /// Oracle price, native quote per native base.
    pub price: I80F48,
    /// The position's price at the underlying's stable price, which
    /// initial health reads (equal to `price` while the market is calm).
    pub stable_price: I80F48,
    /// Margin fractions in basis points: kept in integers so requirements
    /// are exact (binary fixed point cannot hold 10% exactly).
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    /// Whether initial health counts only [`UNREALIZED_PROFIT_WEIGHT_BPS`]
    /// of the position's profit: a perpetual's or future's; not an
    /// option's, whose own rule already counts none of a long's value and
    /// all of a short's.
    pub weighs_profit: bool,
}

impl PerpExposure {
    /// The largest size the position can reach if its resting orders fill.
    pub fn worst_case_base(&self) -> i128 {
        worst_case(self.base, self.bids, self.asks)
    }

    pub fn unrealized_pnl(&self) -> Option<I80F48> {
        self.price
            .fast_mul_int(i128::from(self.base))?
            .checked_add(whole(self.quote))
    }

    /// The prices health of `kind` values the position and its margin at:
    /// the oracle price for both, but for initial health the worse of the
    /// two prices for the position ([`initial_price`]) and the higher for
    /// the margin.
    fn prices_for(&self, kind: HealthKind) -> (I80F48, I80F48) {
        match kind {
            HealthKind::Initial => (
                initial_price(self.base, self.price, self.stable_price),
                self.price.max(self.stable_price),
            ),
            _ => (self.price, self.price),
        }
    }

    /// What initial health does not count of the position's unrealized
    /// profit at its initial price (funding included): the profit's share
    /// above [`UNREALIZED_PROFIT_WEIGHT_BPS`]; zero for a loss, and for a
    /// position that does not weigh its profit.
    pub fn profit_haircut(&self) -> Option<I80F48> {
        haircut_of(self.initial_profit()?)
    }

    /// The unrealized profit initial health weighs (at the initial price,
    /// funding included); zero for a loss and for a position that does not
    /// weigh its profit.
    fn initial_profit(&self) -> Option<I80F48> {
        self.initial_profit_with(whole(self.quote).checked_add(self.unsettled_funding)?)
    }

    /// [`Self::initial_profit`] given the position's `cash` (quote and
    /// funding), which the health walk has already summed.
    fn initial_profit_with(&self, cash: I80F48) -> Option<I80F48> {
        if !self.weighs_profit {
            return Some(I80F48::ZERO);
        }
        let profit = if self.base == 0 {
            cash
        } else {
            initial_price(self.base, self.price, self.stable_price)
                .fast_mul_int(i128::from(self.base))?
                .checked_add(cash)?
        };
        Some(profit.max(I80F48::ZERO))
    }

    /// This position's share of the account's health; `None` on overflow.
    ///
    /// `price × base + quote + funding − price × worst × bps / 10_000`,
    /// computed with one product of the price:
    /// `price × (base × 10_000 − worst × bps) / 10_000 + quote + funding`
    /// (the products of integers are exact; the division truncates, as the
    /// requirement's did).
    pub fn contribution(&self, kind: HealthKind) -> Option<I80F48> {
        let contribution = fixed_div_int(self.weighted_value(kind)?, 10_000)?
            .checked_add(whole(self.quote))?
            .checked_add(self.unsettled_funding)?;
        match kind {
            HealthKind::Initial => contribution.checked_sub(self.profit_haircut()?),
            _ => Some(contribution),
        }
    }

    /// `price × (base × 10_000 − worst × bps)`: the position's value less
    /// its margin, ten thousand times over (exact).
    fn weighted_value(&self, kind: HealthKind) -> Option<I80F48> {
        let mut runs = PriceRuns::default();
        self.add_to(&mut runs, kind);
        runs.total().map(I80F48::from_bits)
    }

    /// Adds the position's weighted value to `runs`: one term when the
    /// position and its margin are at one price (always but for initial
    /// health in a moving market), two otherwise.
    fn add_to(&self, runs: &mut PriceRuns, kind: HealthKind) {
        let (value_price, margin_price) = self.prices_for(kind);
        if value_price == margin_price {
            runs.add(value_price, self.margined_base(kind));
        } else {
            runs.add(
                value_price,
                checked_mul_i128_u64(i128::from(self.base), 10_000),
            );
            runs.add(margin_price, self.margin_units(kind).map(|units| -units));
        }
    }

    /// `base × 10_000 − worst × bps`: the position less its margin, in
    /// ten-thousandths of the base unit (exact: |base| < 2^63 and
    /// |worst| < 2^65, so both products stay far inside i128).
    fn margined_base(&self, kind: HealthKind) -> Option<i128> {
        checked_mul_i128_u64(i128::from(self.base), 10_000)?.checked_sub(self.margin_units(kind)?)
    }

    /// `worst × bps`: the margin, in ten-thousandths of the base unit.
    fn margin_units(&self, kind: HealthKind) -> Option<i128> {
        let bps = margin_bps(kind, self.initial_margin_bps, self.maintenance_margin_bps);
        checked_mul_i128_u64(self.worst_case_base(), u64::from(bps))
    }
}

/// Σ price × units over terms added in order, as I80F48 bits: the units of
/// consecutive terms at one price are summed first, so each run costs one
/// product of the price. `None` once any step leaves i128 (the caller
/// falls back to a division per position).
#[derive(Default)]
struct PriceRuns {
    /// The finished runs.
    sum: i128,
    /// The open run: its price and its units so far.
    price: I80F48,
    units: i128,
    overflowed: bool,
}

impl PriceRuns {
    fn add(&mut self, price: I80F48, units: Option<i128>) {
        match units {
            Some(units) if price == self.price => match self.units.checked_add(units) {
                Some(sum) => self.units = sum,
                None => self.overflowed = true,
            },
            Some(units) => {
                self.close_run();
                self.price = price;
                self.units = units;
            }
            None => self.overflowed = true,
        }
    }

    fn close_run(&mut self) {
        if self.units == 0 {
            return;
        }
        match self
            .price
            .fast_mul_int(self.units)
            .and_then(|run| self.sum.checked_add(run.to_bits()))
        {
            Some(sum) => self.sum = sum,
            None => self.overflowed = true,
        }
    }

    fn total(mut self) -> Option<i128> {
        self.close_run();
        (!self.overflowed).then_some(self.sum)
    }
}

/// What initial health does not count of `profit`: its share above
/// [`UNREALIZED_PROFIT_WEIGHT_BPS`] (one division, for a whole account's
/// profits at once).
fn haircut_of(profit: I80F48) -> Option<I80F48> {
    if profit <= 0 {
        return Some(I80F48::ZERO);
    }
    fixed_div_int(
        profit.fast_mul_int(i128::from(10_000 - UNREALIZED_PROFIT_WEIGHT_BPS))?,
        10_000,
    )
}

/// The price initial health values a position of signed size `base` at:
/// the worse for it of the oracle `price` and the `stable` one (a long the
/// lower, a short or a flat account's orders the higher).
pub fn initial_price(base: i64, price: I80F48, stable: I80F48) -> I80F48 {
    if base > 0 {
        price.min(stable)
    } else {
        price.max(stable)
    }
}

/// The largest |position| if all resting orders of one side fill: all bids
/// (the longest it can get) or all asks (the shortest). Any unit, as long as
/// the three agree.
pub fn worst_case(base: i64, bids: u64, asks: u64) -> i128 {
    let long = i128::from(base) + i128::from(bids);
    let short = i128::from(base) - i128::from(asks);
    long.abs().max(short.abs())
}

/// Health of an account with `collateral` and `positions`; `None` when a
/// step overflows (the caller refuses the instruction). Bounded by the caller:
/// a margin account holds a fixed, small number of positions.
///
/// The margin-weighted values `price × (base × 10_000 − worst × bps)` are
/// summed before the one division by 10,000 (each term is an exact product
/// of the price's bits): a division per position would cost a long
/// division each on SBF, and the sum truncates once instead of once per
/// position (health gates and ranks; no money moves by its last bits).
/// Positions in a row at one price (a portfolio's perpetuals on one
/// underlying) sum their margined bases before the one product with it:
/// the same exact sum, one wide multiplication per run instead of one per
/// position. Initial health also takes each position's profit haircut.
pub fn health<'a, I>(collateral: i64, positions: I, kind: HealthKind) -> Option<I80F48>
where
    I: IntoIterator<Item = &'a PerpExposure>,
    I::IntoIter: Clone,
{
    let mut positions = positions.into_iter();
    let mut weighted = PriceRuns::default();
    let mut cash = whole(collateral);
    let mut profits = I80F48::ZERO;
    for position in positions.clone() {
        position.add_to(&mut weighted, kind);
        let position_cash = whole(position.quote).checked_add(position.unsettled_funding)?;
        cash = cash.checked_add(position_cash)?;
        if kind == HealthKind::Initial {
            profits = profits.checked_add(position.initial_profit_with(position_cash)?)?;
        }
    }
    // The profits' haircut, once for all of them.
    cash = cash.checked_sub(haircut_of(profits)?)?;
    match weighted.total() {
        Some(weighted) => fixed_div_int(I80F48::from_bits(weighted), 10_000)?.checked_add(cash),
        // A sum past i128 that the divided terms would not be: a position
        // at a time, as each term alone fits.
        None => positions.try_fold(whole(collateral), |total, position| {
            total.checked_add(position.contribution(kind)?)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 1 SOL-like base (price 150 quote per base), 10% initial, 5% maintenance.
    fn position(base: i64, quote: i64, bids: u64, asks: u64) -> PerpExposure {
        PerpExposure {
            base,
            quote,
            bids,
            asks,
            unsettled_funding: I80F48::ZERO,
            price: I80F48::from_num(150),
            stable_price: I80F48::from_num(150),
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            weighs_profit: true,
        }
    }

    #[test]
    fn a_long_in_profit_counts_its_pnl_minus_its_margin() {
        // Long 10 bought at 140 (paid 1,400), now 150: pnl +100; exposure 1,500.
        let long = position(10, -1_400, 0, 0);
        assert_eq!(long.unrealized_pnl(), Some(I80F48::from_num(100)));
        // Initial health counts half the profit.
        assert_eq!(
            health(0, &[long], HealthKind::Initial).unwrap(),
            I80F48::from_num(50 - 150)
        );
        assert_eq!(
            health(0, &[long], HealthKind::Maintenance).unwrap(),
            I80F48::from_num(100 - 75)
        );
        assert_eq!(
            health(1_000, &[long], HealthKind::Initial).unwrap(),
            I80F48::from_num(900)
        );
        // A loss counts whole: long 10 bought at 160.
        let losing = position(10, -1_600, 0, 0);
        assert_eq!(
            health(1_000, &[losing], HealthKind::Initial).unwrap(),
            I80F48::from_num(1_000 - 100 - 150)
        );
    }

    /// The oracle spikes to 300 while the stable price is still 150: the
    /// long's initial health sees 150, the short's 300; maintenance sees
    /// 300 for both.
    #[test]
    fn initial_health_values_each_side_at_its_worse_price() {
        let (oracle, stable) = (I80F48::from_num(300), I80F48::from_num(150));
        let at = |base: i64, quote: i64| PerpExposure {
            price: oracle,
            stable_price: stable,
            ..position(base, quote, 0, 0)
        };
        // Both sides of 10 at 140.
        let (long, short) = (at(10, -1_400), at(-10, 1_400));
        // Long: pnl at 150 is +100, half counts; margin 10% of 3,000 (the
        // higher price).
        assert_eq!(
            health(1_000, &[long], HealthKind::Initial).unwrap(),
            I80F48::from_num(1_000 + 50 - 300)
        );
        assert_eq!(
            long.contribution(HealthKind::Initial).unwrap(),
            I80F48::from_num(50 - 300)
        );
        // At the oracle it would have been 1,000 + 1,600 - 300.
        assert_eq!(
            health(1_000, &[long], HealthKind::Maintenance).unwrap(),
            I80F48::from_num(1_000 + 1_600 - 150)
        );
        // Short: pnl at 300 is -1,600; margin 10% of 3,000.
        assert_eq!(
            health(1_000, &[short], HealthKind::Initial).unwrap(),
            I80F48::from_num(1_000 - 1_600 - 300)
        );
        // A falling price: the short's gain counts at the (higher) stable
        // price, the long's loss at the (lower) oracle.
        let (oracle, stable) = (I80F48::from_num(100), I80F48::from_num(150));
        assert_eq!(initial_price(-10, oracle, stable), stable);
        assert_eq!(initial_price(10, oracle, stable), oracle);
        assert_eq!(initial_price(0, oracle, stable), stable);
    }

    #[test]
    fn open_orders_count_as_filled_on_the_worse_side() {
        // Flat, 4 bid and 6 ask resting: worst case is 6 short.
        let p = position(0, 0, 4, 6);
        assert_eq!(p.worst_case_base(), 6);
        // Long 5 with 4 asks: worst is 5 long (asks would shrink it to 1).
        assert_eq!(position(5, -750, 0, 4).worst_case_base(), 5);
        // Long 5 with 12 asks: worst is 7 short.
        assert_eq!(position(5, -750, 0, 12).worst_case_base(), 7);
        assert_eq!(
            health(0, &[p], HealthKind::Initial).unwrap(),
            I80F48::from_num(-90)
        );
    }

    #[test]
    fn funding_and_several_positions_add_up() {
        let mut short = position(-2, 320, 0, 0); // sold 2 at 160: pnl +20
        short.unsettled_funding = I80F48::from_num(-3);
        let long = position(1, -150, 0, 0); // flat pnl
        let h = health(50, &[short, long], HealthKind::Maintenance).unwrap();
        // 50 + (20 - 3 - 2*150*5%) + (0 - 150*5%) = 50 + 2 - 7.5 = 44.5
        assert_eq!(h, I80F48::from_num(89) / 2);
    }

    #[test]
    fn a_sum_past_i128_falls_back_to_a_division_per_position() {
        // Each weighted value fits i128, two of them do not; their health
        // does, a position at a time.
        let mut p = position(10, 0, 0, 0);
        p.price = I80F48::from_bits(1 << 110);
        p.stable_price = p.price;
        let each = p.contribution(HealthKind::Initial).unwrap();
        assert_eq!(health(0, &[p, p], HealthKind::Initial), Some(each + each));
    }

    #[test]
    fn overflow_is_none_not_a_wrap() {
        let mut huge = position(i64::MAX, 0, u64::MAX, 0);
        huge.price = I80F48::from_num(1_000_000_000_000i64);
        huge.stable_price = huge.price;
        assert_eq!(huge.contribution(HealthKind::Initial), None);
        assert_eq!(health(0, &[huge], HealthKind::Initial), None);
    }

    #[test]
    fn whole_is_from_num() {
        for value in [0, 1, -1, 150, -1_400, i64::MAX, i64::MIN] {
            assert_eq!(whole(value), I80F48::from_num(value));
        }
    }

    proptest! {
        /// One division for the sum, not one per position: within a unit
        /// of the last bit per position of the sum of contributions.
        #[test]
        fn health_is_the_sum_of_contributions(
            positions in proptest::collection::vec(
                (-10_000i64..10_000, -2_000_000i64..2_000_000, 0u64..10_000, 0u64..10_000, 1i64..100_000),
                0..32,
            ),
            collateral in -1_000_000i64..1_000_000,
        ) {
            let exposures: Vec<PerpExposure> = positions
                .iter()
                .map(|&(base, quote, bids, asks, price)| {
                    let mut p = position(base, quote, bids, asks);
                    p.price = I80F48::from_num(price) / I80F48::from_num(7);
                    p.stable_price = p.price;
                    p
                })
                .collect();
            for kind in [HealthKind::Initial, HealthKind::Maintenance, HealthKind::LiquidationEnd] {
                let summed = exposures.iter().try_fold(I80F48::from_num(collateral), |total, p| {
                    total.checked_add(p.contribution(kind)?)
                }).unwrap();
                let once = health(collateral, &exposures, kind).unwrap();
                let slack = I80F48::from_bits(exposures.len() as i128 + 1);
                prop_assert!((once - summed).abs() <= slack, "{once} vs {summed}");
            }
        }

        /// Runs of one price (positions on one underlying) sum exactly as
        /// the terms one by one: the same health to the last bit.
        #[test]
        fn runs_at_one_price_sum_exactly(
            positions in proptest::collection::vec(
                (-10_000i64..10_000, -2_000_000i64..2_000_000, 0u64..10_000, 0u64..10_000, 0usize..3),
                0..33,
            ),
            collateral in -1_000_000i64..1_000_000,
        ) {
            let prices = [I80F48::from_num(150) / 7, I80F48::from_num(3), I80F48::from_bits(1)];
            let exposures: Vec<PerpExposure> = positions
                .iter()
                .map(|&(base, quote, bids, asks, price)| {
                    let mut p = position(base, quote, bids, asks);
                    p.price = prices[price];
                    p.stable_price = p.price;
                    p
                })
                .collect();
            for kind in [HealthKind::Initial, HealthKind::Maintenance, HealthKind::LiquidationEnd] {
                let one_by_one = exposures
                    .iter()
                    .try_fold(0i128, |sum, p| sum.checked_add(p.weighted_value(kind)?.to_bits()))
                    .unwrap();
                let cash = exposures.iter().fold(whole(collateral), |cash, p| {
                    cash + whole(p.quote) + p.unsettled_funding
                });
                let profits = exposures.iter().fold(I80F48::ZERO, |sum, p| match kind {
                    HealthKind::Initial => sum + p.initial_profit().unwrap(),
                    _ => sum,
                });
                let cash = cash - haircut_of(profits).unwrap();
                let expected = fixed_div_int(I80F48::from_bits(one_by_one), 10_000).unwrap() + cash;
                prop_assert_eq!(health(collateral, &exposures, kind), Some(expected));
            }
        }

        #[test]
        fn health_is_monotone(
            collateral in -1_000_000i64..1_000_000,
            base in -10_000i64..10_000,
            quote in -2_000_000i64..2_000_000,
            bids in 0u64..10_000,
            asks in 0u64..10_000,
            extra in 1u64..10_000,
            price in 1i64..100_000,
            stable in 1i64..100_000,
        ) {
            let mut p = position(base, quote, bids, asks);
            p.price = I80F48::from_num(price) / I80F48::from_num(100);
            p.stable_price = I80F48::from_num(stable) / I80F48::from_num(100);
            let initial = health(collateral, &[p], HealthKind::Initial).unwrap();
            let maintenance = health(collateral, &[p], HealthKind::Maintenance).unwrap();
            prop_assert!(maintenance >= initial, "maintenance is the looser bar, whatever the stable price");
            prop_assert!(health(collateral + 1, &[p], HealthKind::Initial).unwrap() > initial);
            let more_orders = PerpExposure { bids: bids + extra, asks: asks + extra, ..p };
            prop_assert!(health(collateral, &[more_orders], HealthKind::Initial).unwrap() <= initial, "orders never add health");
        }
    }
}
