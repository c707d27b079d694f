//! Liquidation: how much of an unhealthy position moves to the liquidator,
//! and at what price.
//!
//! The liquidatee closes part of its position at the oracle price worsened
//! by the liquidation fee (sells below, buys above), rounded against it.
//! Each lot closed loses it `price × fee` and frees `price × end fraction` of
//! requirement, so health at the liquidation-end fraction (halfway between
//! maintenance and initial) rises by `price × (end − fee)` per lot. The
//! liquidator takes the fewest lots that bring that health to zero, so
//! nobody is liquidated more than needed.
//!
//! An option's price is its model value, and its requirement a sum per lot
//! held (`option_margin`) rather than a fraction of its value: each lot
//! closed then frees that requirement and costs the fee on the value.
//!
//! Where the underlying lifts fractions with size (`engine::margin_scaling`),
//! the position left is margined at the fractions of its own size, as
//! health margins it: each lot closed also lowers the lift on the rest, so
//! a lot frees at least the end fraction of the whole position, and the
//! fewest lots are searched from none up to that bound.
use super::fastmul::FastMulInt;
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::margin_scaling::MarginTerms;
use super::node::Side;
use super::perp::{apply_trade, Position};
use super::risk::{margin_bps, HealthKind, PerpExposure};
use crate::units::{BaseLots, NativeUnits, PricePerLot, SignedNativeUnits};

/// One position being liquidated, its funding settled and its orders in the
/// market cancelled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Liquidation {
    /// Collateral plus every other position's contribution at the
    /// liquidation-end fraction.
    pub rest_of_account: I80F48,
    pub position: Position,
    /// The oracle price.
    pub price_per_lot: PricePerLot,
    /// The market's fractions, which `margin_terms` scale for a position's
    /// size as health does.
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    pub margin_terms: MarginTerms,
    /// Native base units per lot (a position's size for `margin_terms`).
    pub base_lot_size: u64,
    /// Below the maintenance fraction (validated with the market's params).
    pub fee_bps: u32,
    /// An option's requirement per lot of the position's side at the
    /// liquidation-end level (the fractions are then zero); `None` for a
    /// future or a perpetual.
    pub option_requirement_per_lot: Option<I80F48>,
}

impl Liquidation {
    fn liquidatee_sells(&self) -> bool {
        self.position.base_lots.0 > 0
    }

    /// The side the liquidatee trades on: it sells a long, buys back a short.
    fn liquidatee_side(&self) -> Side {
        if self.liquidatee_sells() {
            Side::Ask
        } else {
            Side::Bid
        }
    }

    /// The (initial, maintenance) fractions of a position of `lots`.
    fn fractions(&self, lots: u64) -> (u32, u32) {
        self.margin_terms
            .fractions(self.initial_margin_bps, self.maintenance_margin_bps, || {
                u128::from(lots) * u128::from(self.base_lot_size)
            })
    }

    fn contribution(&self, position: Position) -> Option<I80F48> {
        let (initial_margin_bps, maintenance_margin_bps) =
            self.fractions(position.base_lots.unsigned_abs());
        let requirement = match self.option_requirement_per_lot {
            Some(per_lot) => per_lot.fast_mul_int(i128::from(position.base_lots.unsigned_abs()))?,
            None => I80F48::ZERO,
        };
        PerpExposure {
            // In lots and native quote, priced per lot: the units agree.
            base: position.base_lots.0,
            quote: position.quote.0,
            bids: 0,
            asks: 0,
            unsettled_funding: I80F48::ZERO,
            price: self.price_per_lot.0,
            // Liquidation health is at the oracle price alone.
            stable_price: self.price_per_lot.0,
            initial_margin_bps,
            maintenance_margin_bps,
            // Liquidation-end health counts profit whole.
            weighs_profit: false,
        }
        .contribution(HealthKind::LiquidationEnd)?
        .checked_sub(requirement)
    }

    /// The largest fee rate, at most [`Self::fee_bps`], whose fee on `lots`
    /// (their value at the price times the rate) is within `budget` native
    /// units; zero for a budget of zero or less. `None` on overflow.
    pub fn fee_bps_within(&self, lots: u64, budget: I80F48) -> Option<u32> {
        if budget <= 0 || lots == 0 {
            return Some(if lots == 0 { self.fee_bps } else { 0 });
        }
        let value = self.price_per_lot.0.fast_mul_int(i128::from(lots))?;
        if value <= 0 {
            return Some(self.fee_bps);
        }
        let affordable = budget.checked_mul_int(10_000)?.checked_div(value)?;
        let affordable: u32 = affordable
            .checked_floor()?
            .checked_to_num()
            .unwrap_or(u32::MAX);
        Some(affordable.min(self.fee_bps))
    }

    /// Native quote the liquidatee receives (selling) or pays (buying) for
    /// `lots`: the oracle price less or plus the fee, rounded against it.
    pub fn quote(&self, lots: u64) -> Option<u64> {
        let bps = if self.liquidatee_sells() {
            10_000u32.checked_sub(self.fee_bps)?
        } else {
            10_000u32.checked_add(self.fee_bps)?
        };
        let value = fixed_div_int(
            self.price_per_lot
                .0
                .fast_mul_int(i128::from(lots))?
                .fast_mul_int(i128::from(bps))?,
            10_000,
        )?;
        let rounded = if self.liquidatee_sells() {
            value.checked_floor()?
        } else {
            value.checked_ceil()?
        };
        rounded.checked_to_num()
    }

    /// The liquidatee's position after `lots` move, and the PnL that
    /// realizes into its collateral.
    pub fn trade(&self, lots: u64) -> Option<(Position, SignedNativeUnits)> {
        let outcome = apply_trade(
            self.position,
            self.liquidatee_side(),
            BaseLots(lots),
            NativeUnits(self.quote(lots)?),
        )?;
        Some((outcome.position, outcome.realized))
    }

    /// Health at the liquidation-end fraction after `lots` move.
    pub fn health_after(&self, lots: u64) -> Option<I80F48> {
        if lots == 0 {
            return self
                .rest_of_account
                .checked_add(self.contribution(self.position)?);
        }
        let (position, realized) = self.trade(lots)?;
        self.rest_of_account
            .checked_add(I80F48::from_num(realized.0))?
            .checked_add(self.contribution(position)?)
    }

    /// The fewest lots (at most `max_lots` and the whole position) that
    /// bring health at the liquidation-end fraction to zero.
    pub fn lots(&self, max_lots: u64) -> Option<u64> {
        let size = self.position.base_lots.unsigned_abs().min(max_lots);
        let health = self.health_after(0)?;
        if health >= 0 || size == 0 {
            return Some(0);
        }
        let gain = match self.option_requirement_per_lot {
            // The requirement freed less the fee on the value.
            Some(per_lot) => per_lot.checked_sub(fixed_div_int(
                self.price_per_lot
                    .0
                    .fast_mul_int(i128::from(self.fee_bps))?,
                10_000,
            )?)?,
            None => {
                // At the whole position's fractions: the least a lot frees.
                let (initial_bps, maintenance_bps) =
                    self.fractions(self.position.base_lots.unsigned_abs());
                let end_bps = margin_bps(HealthKind::LiquidationEnd, initial_bps, maintenance_bps);
                let gain_bps = end_bps.checked_sub(self.fee_bps).filter(|&g| g > 0)?;
                fixed_div_int(
                    self.price_per_lot.0.fast_mul_int(i128::from(gain_bps))?,
                    10_000,
                )?
            }
        };
        if gain <= 0 {
            // An option whose lots free less than the fee costs: closing
            // them cannot restore health (the listing's bounds rule it out
            // but for a worthless long), so none are taken.
            if self.option_requirement_per_lot.is_some() {
                return Some(0);
            }
            return Some(size);
        }
        // Exactly, `lots × gain` covers the shortfall; the trade's rounding
        // costs the liquidatee less than one unit more, so the answer lies
        // between the two estimates. Search that (short) range.
        let estimate = |shortfall: I80F48| -> Option<u64> {
            // Both in the same fixed-point unit: the ratio of their bits,
            // rounded up (shortfall and gain are positive).
            let (shortfall, gain) = (shortfall.to_bits(), gain.to_bits());
            let lots = shortfall.checked_add(gain - 1)? / gain;
            Some(u64::try_from(lots).unwrap_or(u64::MAX).min(size))
        };
        // The exact gain per lot lies in [gain, gain + 1 bit) and health is
        // computed to within a bit, so the fewest lots are at least
        // (shortfall - 2 bits) / (gain + 1 bit): dividing by the truncated
        // gain instead can overshoot by a lot (the fuzzer's case in the tests).
        // With a size lift a lot may free more than `gain`, so the fewest
        // lots may lie anywhere below the estimate.
        let floor_estimate = if self.margin_terms.size_margin_bps > 0 {
            0
        } else {
            (-health).to_bits().saturating_sub(2) / gain.to_bits().saturating_add(1)
        };
        let mut low = u64::try_from(floor_estimate).unwrap_or(u64::MAX).min(size);
        let mut high = estimate((-health).checked_add(I80F48::ONE)?)?;
        while low < high {
            let middle = low + (high - low) / 2;
            if self.health_after(middle)? >= 0 {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Some(high)
    }

    /// The insurance fund's share of the fee on `lots`, paid by the
    /// liquidator out of its discount, rounded up.
    pub fn insurance_fee(&self, lots: u64, share_bps: u32) -> Option<u64> {
        let fee = fixed_div_int(
            self.price_per_lot
                .0
                .fast_mul_int(i128::from(lots))?
                .fast_mul_int(i128::from(self.fee_bps))?
                .fast_mul_int(i128::from(share_bps))?,
            100_000_000,
        )?;
        fee.checked_ceil()?.checked_to_num()
    }
}

/// Portfolio margin's liquidation size: the fewest of up to `size` lots
/// after which `health(lots)` at the liquidation end is at least zero.
/// Health is concave in the lots closed: each scenario's loss is linear in
/// the position, the requirement their worst (a maximum of linear
/// functions), the contingencies charge absolute sizes, and the value,
/// what is realized and the fee are linear. So it rises to a peak and then
/// falls; both searches are bisections (at most 64 steps each). When even
/// the peak falls short, the lots at the peak (none when the first lot
/// already lowers health: the position is a hedge of the rest of its
/// book). `None` when a step overflows.
#[inline(never)]
pub fn fewest_lots_reaching(
    size: u64,
    mut health: impl FnMut(u64) -> Option<I80F48>,
) -> Option<u64> {
    let start = health(0)?;
    if start >= 0 || size == 0 {
        return Some(0);
    }
    // The peak: the fewest lots after which one more no longer raises
    // health, in [low, high].
    let (mut low, mut high) = (0u64, size);
    while low < high {
        let middle = low + (high - low) / 2;
        if health(middle + 1)? > health(middle)? {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    let peak = low;
    if peak == 0 || health(peak)? < 0 {
        return Some(peak);
    }
    // Rising on [0, peak]: health(low) < 0 <= health(high).
    let (mut low, mut high) = (0u64, peak);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if health(middle)? >= 0 {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SignedBaseLots;
    use proptest::prelude::*;

    /// Long 10 lots bought at 100 per lot, price now 90: 10% initial,
    /// 5% maintenance, end fraction 7.5%, fee 2.5%.
    fn long_underwater(collateral: i64) -> Liquidation {
        Liquidation {
            rest_of_account: I80F48::from_num(collateral),
            position: Position {
                base_lots: SignedBaseLots(10),
                quote: SignedNativeUnits(-1_000),
            },
            price_per_lot: PricePerLot(I80F48::from_num(90)),
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            fee_bps: 250,
            option_requirement_per_lot: None,
            margin_terms: MarginTerms::UNSCALED,
            base_lot_size: 1,
        }
    }

    #[test]
    fn takes_the_fewest_lots_that_restore_end_health() {
        // Health at 7.5%: 40 + (900 - 1000) - 67.5 = -127.5. Each lot:
        // +90 × 5% = +4.5, so 29 lots would do, capped at the 10 held.
        let l = long_underwater(40);
        assert_eq!(l.health_after(0), Some(I80F48::from_num(-127.5)));
        assert_eq!(l.lots(u64::MAX), Some(10));
        // With 150 collateral: -17.5, so 4 lots (3.89 exactly).
        let l = long_underwater(150);
        let lots = l.lots(u64::MAX).unwrap();
        assert_eq!(lots, 4);
        assert!(l.health_after(4).unwrap() >= 0);
        assert!(l.health_after(3).unwrap() < 0);
        assert_eq!(l.lots(2), Some(2), "the liquidator's cap");
    }

    #[test]
    fn the_price_is_the_oracle_less_the_fee_rounded_against_the_liquidatee() {
        let l = long_underwater(0);
        // 3 lots × 90 × 97.5% = 263.25 received: 263.
        assert_eq!(l.quote(3), Some(263));
        let short = Liquidation {
            position: Position {
                base_lots: SignedBaseLots(-10),
                quote: SignedNativeUnits(1_000),
            },
            ..l
        };
        // Buying back: 3 × 90 × 102.5% = 276.75 paid: 277.
        assert_eq!(short.quote(3), Some(277));
        // Insurance share 40% of the 2.5% fee on 3 lots: 2.7, rounded up.
        assert_eq!(l.insurance_fee(3, 4_000), Some(3));
    }

    #[test]
    fn a_short_option_buys_back_the_fewest_lots_at_value_plus_the_fee() {
        // Short 10 calls sold at 4 per lot, now worth 6; the rule requires
        // 12 per lot at the liquidation end; fee 2.5 % of the value.
        let l = Liquidation {
            rest_of_account: I80F48::from_num(100),
            position: Position {
                base_lots: SignedBaseLots(-10),
                quote: SignedNativeUnits(40),
            },
            price_per_lot: PricePerLot(I80F48::from_num(6)),
            initial_margin_bps: 0,
            maintenance_margin_bps: 0,
            fee_bps: 250,
            option_requirement_per_lot: Some(I80F48::from_num(12)),
            margin_terms: MarginTerms::UNSCALED,
            base_lot_size: 1,
        };
        // 100 + (40 − 60) − 120 = −40; each lot frees 12 less 0.15: 3.38 lots.
        assert_eq!(l.health_after(0), Some(I80F48::from_num(-40)));
        assert_eq!(l.lots(u64::MAX), Some(4));
        assert!(l.health_after(4).unwrap() >= 0 && l.health_after(3).unwrap() < 0);
        // Buying back 4 at 6 × 102.5 % = 24.6: 25 paid.
        assert_eq!(l.quote(4), Some(25));
    }

    #[test]
    fn a_healthy_account_loses_nothing() {
        assert_eq!(long_underwater(1_000).lots(u64::MAX), Some(0));
    }

    /// Found by the perp_math fuzzer once health priced a position with a
    /// single truncation: the health one lot short of the first estimate is
    /// exactly zero, so the fewest lots lie below that estimate.
    #[test]
    fn the_fewest_lots_may_lie_below_the_first_estimate() {
        let l = Liquidation {
            rest_of_account: I80F48::from_num(105_966_151_205_066i64),
            position: Position {
                base_lots: SignedBaseLots(-445_834_408_505),
                quote: SignedNativeUnits(883_921_074_738),
            },
            price_per_lot: PricePerLot(I80F48::from_num(224)),
            initial_margin_bps: 4_316,
            maintenance_margin_bps: 4_315,
            fee_bps: 0,
            option_requirement_per_lot: None,
            margin_terms: MarginTerms::UNSCALED,
            base_lot_size: 1,
        };
        let lots = l.lots(863_288_426_496).unwrap();
        assert_eq!(lots, 373_586_800_755);
        assert!(l.health_after(lots).unwrap() >= 0);
        assert!(l.health_after(lots - 1).unwrap() < 0);
    }

    /// A whale's position, lifted with size: 40 whole units (4,000 lots of
    /// 0.01) at 10 %/5 % and 50 bps per √unit are margined at 8 % + 3 % =
    /// 11 % / 4 % + 3 % = 7 % (end 9 %), 25 units at 10.5 % / 6.5 %.
    #[test]
    fn a_lifted_position_gives_up_only_the_lots_its_lift_needs() {
        let terms = MarginTerms {
            scale_bps: 10_000,
            size_margin_bps: 50,
            native_per_unit: 100,
        };
        // 10 %/5 % as in `long_underwater`.
        let lifted = Liquidation {
            position: Position {
                base_lots: SignedBaseLots(4_000),
                quote: SignedNativeUnits(-400_000),
            },
            price_per_lot: PricePerLot(I80F48::from_num(92)),
            fee_bps: 100,
            margin_terms: terms,
            ..long_underwater(60_000)
        };
        assert_eq!(lifted.fractions(4_000), (1_100, 700));
        assert_eq!(lifted.fractions(2_500), (1_050, 650));
        let lots = lifted.lots(u64::MAX).unwrap();
        assert!(lifted.health_after(lots).unwrap() >= 0);
        assert!(
            lifted.health_after(lots - 1).unwrap() < 0,
            "{lots} is one too many"
        );
        // Planned at the whole position's fractions, as before, it took more.
        let at_full_size = Liquidation {
            margin_terms: MarginTerms::UNSCALED,
            initial_margin_bps: 1_100,
            maintenance_margin_bps: 700,
            ..lifted
        };
        assert!(at_full_size.lots(u64::MAX).unwrap() > lots);
    }

    proptest! {
        #[test]
        fn a_lifted_liquidation_is_minimal(
            collateral in 0i64..2_000_000,
            base in -100_000i64..100_000,
            price in 50i64..150,
            lift in 1u32..200,
            lot_size in 1u64..1_000,
            cap in 1u64..200_000,
        ) {
            prop_assume!(base != 0);
            let l = Liquidation {
                rest_of_account: I80F48::from_num(collateral),
                position: Position { base_lots: SignedBaseLots(base), quote: SignedNativeUnits(-base * 100) },
                price_per_lot: PricePerLot(I80F48::from_num(price)),
                initial_margin_bps: 1_000,
                maintenance_margin_bps: 500,
                fee_bps: 100,
                option_requirement_per_lot: None,
                margin_terms: MarginTerms { scale_bps: 10_000, size_margin_bps: lift, native_per_unit: 1_000 },
                base_lot_size: lot_size,
            };
            let Some(lots) = l.lots(cap) else { return Ok(()); };
            let size = base.unsigned_abs().min(cap);
            prop_assert!(lots <= size);
            if lots > 0 {
                prop_assert!(l.health_after(lots - 1).unwrap() < 0, "one lot fewer would do");
            }
            if lots < size {
                prop_assert!(l.health_after(lots).unwrap() >= 0, "stops at the target");
            }
        }

        #[test]
        fn liquidation_is_minimal(
            collateral in -100_000i64..100_000,
            base in -10_000i64..10_000,
            entry_price in 1i64..10_000,
            price in 1i64..10_000,
            maintenance in 1u32..2_000,
            extra in 1u32..2_000,
            fee_share in 0u32..10_000,
            cap in 1u64..20_000,
        ) {
            prop_assume!(base != 0);
            let fee = (maintenance * fee_share / 10_000).min(maintenance - 1);
            let l = Liquidation {
                rest_of_account: I80F48::from_num(collateral),
                position: Position { base_lots: SignedBaseLots(base), quote: SignedNativeUnits(-base * entry_price) },
                price_per_lot: PricePerLot(I80F48::from_num(price) / 7),
                initial_margin_bps: maintenance + extra,
                maintenance_margin_bps: maintenance,
                fee_bps: fee,
                option_requirement_per_lot: None,
                margin_terms: MarginTerms::UNSCALED,
                base_lot_size: 1,
            };
            let Some(lots) = l.lots(cap) else { return Ok(()); };
            let size = base.unsigned_abs().min(cap);
            prop_assert!(lots <= size);
            if lots > 0 {
                prop_assert!(l.health_after(lots - 1).unwrap() < 0, "one lot fewer would not do");
            }
            if lots < size {
                prop_assert!(l.health_after(lots).unwrap() >= 0, "stops at the target");
            }
            if let Some((position, _)) = l.trade(lots.max(1)) {
                prop_assert!(position.base_lots.0.signum() == base.signum() || position.base_lots.is_zero(), "never flips");
            }
        }

    }

    #[test]
    fn portfolio_liquidation_takes_the_fewest_lots_that_reach_the_target() {
        let linear = |per_lot: i64, start: i64| {
            move |lots: u64| Some(I80F48::from_num(start + per_lot * lots as i64))
        };
        // -1,000 and +7 a lot: 143 lots (142 leave -6).
        assert_eq!(fewest_lots_reaching(500, linear(7, -1_000)), Some(143));
        // Healthy already, or nothing to close.
        assert_eq!(fewest_lots_reaching(500, linear(7, 10)), Some(0));
        assert_eq!(fewest_lots_reaching(0, linear(7, -10)), Some(0));
        // Not enough lots: all of them, as they help.
        assert_eq!(fewest_lots_reaching(100, linear(7, -1_000)), Some(100));
        // A hedge leg: closing lowers health, none are taken.
        assert_eq!(fewest_lots_reaching(100, linear(-3, -1_000)), Some(0));
        // Health that rises to a peak and falls (past the peak the leg
        // stops offsetting the book's worst scenario): the fewest lots
        // reaching zero on the way up, or the peak when it falls short.
        let peaked = |top: i64| {
            move |lots: u64| {
                let lots = lots as i64;
                Some(I80F48::from_num(
                    top - 250 + 5 * lots.min(50) - 3 * (lots - 50).max(0),
                ))
            }
        };
        assert_eq!(fewest_lots_reaching(400, peaked(100)), Some(30));
        assert_eq!(fewest_lots_reaching(400, peaked(-50)), Some(50));
        assert_eq!(fewest_lots_reaching(20, peaked(100)), Some(20));
    }

    #[test]
    fn the_fee_rate_fits_a_budget() {
        // 10 lots at 90: 900 of value, 2.5 % is 22.5.
        let l = long_underwater(0);
        assert_eq!(l.fee_bps_within(10, I80F48::from_num(100)), Some(250));
        assert_eq!(l.fee_bps_within(10, I80F48::from_num(22.5)), Some(250));
        assert_eq!(l.fee_bps_within(10, I80F48::from_num(9)), Some(100));
        assert_eq!(l.fee_bps_within(10, I80F48::from_num(8.99)), Some(99));
        assert_eq!(l.fee_bps_within(10, I80F48::ZERO), Some(0));
        assert_eq!(l.fee_bps_within(10, I80F48::from_num(-5)), Some(0));
    }

    proptest! {
        /// Against a brute-force walk of any concave health (slopes that
        /// only fall): the fewest lots reaching zero, else the fewest at
        /// the highest health.
        #[test]
        fn portfolio_liquidation_matches_a_walk_over_every_lot(
            start in -10_000i64..0,
            mut slopes in proptest::collection::vec(-50i64..50, 1..6),
            segment in 1u64..40,
            size in 0u64..200,
        ) {
            slopes.sort_unstable_by(|a, b| b.cmp(a));
            let health = |lots: u64| {
                let mut h = start;
                for lot in 0..lots {
                    h += slopes[((lot / segment) as usize).min(slopes.len() - 1)];
                }
                Some(I80F48::from_num(h))
            };
            let walk: Vec<I80F48> = (0..=size).map(|k| health(k).unwrap()).collect();
            let expected = match walk.iter().position(|h| *h >= 0) {
                Some(k) => k as u64,
                None => {
                    let top = walk.iter().max().unwrap();
                    walk.iter().position(|h| h == top).unwrap() as u64
                }
            };
            prop_assert_eq!(fewest_lots_reaching(size, health), Some(expected));
        }
    }
}
