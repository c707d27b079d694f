//! Standard-mode margin of an option position: what it requires beyond the
//! value health already counts (`engine::risk` marks every position at its
//! price; an option's price is its model value).
//!
//! - A long needs no margin beyond its premium: for initial health it
//!   counts at nothing (its value is required back, so a premium is paid
//!   out of collateral, never financed by the option itself).
//! - As for a perpetual, whose band lies inside its maintenance fraction
//!   and whose initial fraction exceeds maintenance by more than the band:
//!   every option requires at least the fill band's half-width per unit
//!   (`band_bps` of the value plus `band_spot_bps` of the spot) for
//!   maintenance, and a half-width more for initial. So a fill anywhere in
//!   the band (a reduce-only one, a resting order's at the edge) cannot
//!   take an account from initial health past maintenance, nor lower its
//!   maintenance health by selling a long cheap or buying a short back
//!   dear.
//! - A short requires its value (in its PnL) plus, per unit of the
//!   underlying, `max(a × spot − out-of-the-money amount, b × spot)`; a
//!   put's is capped at what it can still lose, `strike − value`. This is
//!   the rule Deribit's standard margin and Zeta used (Deribit: a = 15 %,
//!   b = 10 % initial).
//! - Resting orders count as filled on the worse side, as for perpetuals:
//!   the requirement is the larger of the position with every bid filled
//!   and with every ask filled.
//! - Past expiry, until the settlement price is fixed, a position is worth
//!   its intrinsic value at the settlement average so far and keeps its
//!   requirement (at the current spot): what it will settle at is not
//!   final, and a long's value is not withdrawable before it is.
use fixed::types::I80F48;

use super::black_scholes::OptionSide;
use super::fastdiv::fixed_div_int;
use super::fastmul::FastMulInt;
use super::fixed_math::half;
use super::risk::HealthKind;

/// An underlying's short-option margin terms, basis points of the spot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortMarginTerms {
    pub initial_a_bps: u32,
    pub initial_b_bps: u32,
    pub maintenance_a_bps: u32,
    pub maintenance_b_bps: u32,
}

fn share(value: I80F48, bps: u32) -> Option<I80F48> {
    fixed_div_int(value.fast_mul_int(i128::from(bps))?, 10_000)
}

/// A short option's margin beyond its value, per unit of the underlying:
/// `max(a × S − OTM, b × S)`, a put's capped at `K − value` (never below
/// zero).
pub fn short_margin_per_unit(
    side: OptionSide,
    spot: I80F48,
    strike: I80F48,
    value: I80F48,
    a_bps: u32,
    b_bps: u32,
) -> Option<I80F48> {
    let out_of_the_money = match side {
        OptionSide::Call => strike.checked_sub(spot)?,
        OptionSide::Put => spot.checked_sub(strike)?,
    }
    .max(I80F48::ZERO);
    let margin = share(spot, a_bps)?
        .checked_sub(out_of_the_money)?
        .max(share(spot, b_bps)?);
    Some(match side {
        OptionSide::Call => margin,
        OptionSide::Put => margin.min(strike.checked_sub(value)?.max(I80F48::ZERO)),
    })
}

/// What an option position requires beyond its value, by health kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionRequirement {
    /// Native base units: the position (long > 0) and its resting orders.
    pub base: i64,
    pub bids: u64,
    pub asks: u64,
    /// Per unit long and per unit short, initial and maintenance.
    pub long_initial: I80F48,
    pub long_maintenance: I80F48,
    pub short_initial: I80F48,
    pub short_maintenance: I80F48,
}

/// What an option position's requirement is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionRisk {
    pub side: OptionSide,
    pub spot: I80F48,
    pub strike: I80F48,
    /// The model value per unit (the position's price in health).
    pub value: I80F48,
    pub terms: ShortMarginTerms,
    /// The market's fill band: `band_bps` of the value plus
    /// `band_spot_bps` of the spot either side of the model, where a fill
    /// may happen.
    pub band_bps: u32,
    pub band_spot_bps: u32,
}

impl OptionRequirement {
    /// The requirement of a position of `base` units with `bids` and `asks`
    /// resting, under `risk`.
    pub fn new(base: i64, bids: u64, asks: u64, risk: &OptionRisk) -> Option<Self> {
        // The fill band's half-width per unit: what one fill at its edge
        // can cost against the model.
        let slack =
            share(risk.value, risk.band_bps)?.checked_add(share(risk.spot, risk.band_spot_bps)?)?;
        let short = |a: u32, b: u32| {
            short_margin_per_unit(risk.side, risk.spot, risk.strike, risk.value, a, b)
        };
        let t = &risk.terms;
        // As a perpetual's fractions: maintenance at least the band's
        // half-width, so a fill inside the band (a reduce-only one among
        // them) never lowers maintenance health; initial a half-width more,
        // so a resting order filled at the band's edge leaves maintenance
        // health above zero.
        let long_maintenance = slack;
        let long_initial = risk.value.checked_add(slack)?.checked_add(slack)?;
        let short_maintenance = short(t.maintenance_a_bps, t.maintenance_b_bps)?.max(slack);
        let short_initial = short(t.initial_a_bps, t.initial_b_bps)?
            .max(short_maintenance)
            .checked_add(slack)?;
        Some(Self {
            base,
            bids,
            asks,
            long_initial,
            long_maintenance,
            short_initial,
            short_maintenance,
        })
    }

    /// Per unit long and per unit short for `kind`; the liquidation end is
    /// halfway between maintenance and initial.
    pub fn per_unit(&self, kind: HealthKind) -> (I80F48, I80F48) {
        match kind {
            HealthKind::Initial => (self.long_initial, self.short_initial),
            HealthKind::Maintenance => (self.long_maintenance, self.short_maintenance),
            HealthKind::LiquidationEnd => (
                half(self.long_initial) + half(self.long_maintenance),
                half(self.short_initial) + half(self.short_maintenance),
            ),
        }
    }

    /// The requirement at a position of `units` (long > 0).
    fn at(units: i128, (long, short): (I80F48, I80F48)) -> Option<I80F48> {
        if units >= 0 {
            long.fast_mul_int(units)
        } else {
            short.fast_mul_int(-units)
        }
    }

    /// The larger requirement of the position with every bid filled and
    /// with every ask filled.
    pub fn requirement(&self, kind: HealthKind) -> Option<I80F48> {
        let per_unit = self.per_unit(kind);
        let base = i128::from(self.base);
        let all_bids = Self::at(base.checked_add(i128::from(self.bids))?, per_unit)?;
        let all_asks = Self::at(base.checked_sub(i128::from(self.asks))?, per_unit)?;
        Some(all_bids.max(all_asks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fx(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    const DERIBIT: ShortMarginTerms = ShortMarginTerms {
        initial_a_bps: 1_500,
        initial_b_bps: 1_000,
        maintenance_a_bps: 1_000,
        maintenance_b_bps: 500,
    };

    fn risk(side: OptionSide, spot: f64, strike: f64, value: f64) -> OptionRisk {
        OptionRisk {
            side,
            spot: fx(spot),
            strike: fx(strike),
            value: fx(value),
            terms: DERIBIT,
            band_bps: 0,
            band_spot_bps: 0,
        }
    }

    #[test]
    fn the_short_margin_rule_in_worked_numbers() {
        // Spot 100. A 110 call: 15 − 10 = 5 < the 10 floor: 10.
        let m = |side, strike, value, a, b| {
            short_margin_per_unit(side, fx(100.0), fx(strike), fx(value), a, b).unwrap()
        };
        assert_eq!(m(OptionSide::Call, 110.0, 2.0, 1_500, 1_000), fx(10.0));
        // A 95 call (in the money): 15.
        assert_eq!(m(OptionSide::Call, 95.0, 7.0, 1_500, 1_000), fx(15.0));
        // A 102 call: 15 − 2 = 13.
        assert_eq!(m(OptionSide::Call, 102.0, 4.0, 1_500, 1_000), fx(13.0));
        // A 90 put: 15 − 10 = 5 < 10: 10, below its cap 90 − 1.
        assert_eq!(m(OptionSide::Put, 90.0, 1.0, 1_500, 1_000), fx(10.0));
        // A put of strike 8 worth 0.5 can lose at most 7.5 more.
        assert_eq!(m(OptionSide::Put, 8.0, 0.5, 1_500, 1_000), fx(7.5));
    }

    #[test]
    fn a_long_pays_its_premium_and_a_short_its_margin() {
        // Long 10 units of a call worth 5: initial requires the value back
        // (so it adds nothing), maintenance nothing.
        let long =
            OptionRequirement::new(10, 0, 0, &risk(OptionSide::Call, 100.0, 100.0, 5.0)).unwrap();
        assert_eq!(long.requirement(HealthKind::Initial), Some(fx(50.0)));
        assert_eq!(long.requirement(HealthKind::Maintenance), Some(fx(0.0)));
        assert_eq!(long.requirement(HealthKind::LiquidationEnd), Some(fx(25.0)));
        // Short 10 at the money: 15 per unit initial, 10 maintenance.
        let short =
            OptionRequirement::new(-10, 0, 0, &risk(OptionSide::Call, 100.0, 100.0, 5.0)).unwrap();
        assert_eq!(short.requirement(HealthKind::Initial), Some(fx(150.0)));
        assert_eq!(short.requirement(HealthKind::Maintenance), Some(fx(100.0)));
        // Flat with 4 bids and 6 asks: the worse side is 6 short.
        let quotes =
            OptionRequirement::new(0, 4, 6, &risk(OptionSide::Call, 100.0, 100.0, 5.0)).unwrap();
        assert_eq!(quotes.requirement(HealthKind::Initial), Some(fx(90.0)));
        // The fill band's half-width: 10 % of the value (0.5) and 1 % of the
        // spot (1.0) per unit. A long requires it for maintenance and twice
        // it on top of its value for initial; a short's rule at least it for
        // maintenance, and it on top for initial.
        let banded = OptionRisk {
            band_bps: 1_000,
            band_spot_bps: 100,
            ..risk(OptionSide::Call, 100.0, 100.0, 5.0)
        };
        let long = OptionRequirement::new(10, 0, 0, &banded).unwrap();
        assert_eq!(long.requirement(HealthKind::Initial), Some(fx(80.0)));
        assert_eq!(long.requirement(HealthKind::Maintenance), Some(fx(15.0)));
        let short = OptionRequirement::new(-10, 0, 0, &banded).unwrap();
        assert_eq!(short.requirement(HealthKind::Initial), Some(fx(165.0)));
        assert_eq!(short.requirement(HealthKind::Maintenance), Some(fx(100.0)));
        // A far out-of-the-money short whose rule is below the band: the
        // band's half-width for maintenance.
        let far = OptionRisk {
            band_spot_bps: 800,
            ..risk(OptionSide::Call, 100.0, 200.0, 0.0)
        };
        let short = OptionRequirement::new(-1, 0, 0, &far).unwrap();
        assert_eq!(short.requirement(HealthKind::Maintenance), Some(fx(8.0)));
        assert_eq!(short.requirement(HealthKind::Initial), Some(fx(18.0)));
    }

    proptest! {
        /// Maintenance never requires more than initial; more resting
        /// orders never require less; a short never less than its floor.
        #[test]
        fn requirements_are_ordered_and_monotone(
            call in any::<bool>(),
            spot in 1.0f64..10_000.0,
            moneyness in 0.2f64..5.0,
            value_share in 0.0f64..1.0,
            base in -10_000i64..10_000,
            bids in 0u64..10_000,
            asks in 0u64..10_000,
            extra in 1u64..1_000,
            band_bps in 0u32..2_000,
            band_spot_bps in 0u32..500,
        ) {
            let side = if call { OptionSide::Call } else { OptionSide::Put };
            let strike = spot / moneyness;
            let cap = if call { spot } else { strike };
            let r = OptionRisk { band_bps, band_spot_bps, ..risk(side, spot, strike, cap * value_share) };
            let req = OptionRequirement::new(base, bids, asks, &r).unwrap();
            let initial = req.requirement(HealthKind::Initial).unwrap();
            let maintenance = req.requirement(HealthKind::Maintenance).unwrap();
            let end = req.requirement(HealthKind::LiquidationEnd).unwrap();
            prop_assert!(maintenance >= 0 && maintenance <= end + fx(1e-9) && end <= initial + fx(1e-9));
            // Per unit: maintenance covers the band's half-width, initial a
            // half-width more.
            let slack = fx(cap * value_share) * I80F48::from_num(band_bps) / 10_000
                + fx(spot) * I80F48::from_num(band_spot_bps) / 10_000;
            let (maintenance_unit, initial_unit) = (req.per_unit(HealthKind::Maintenance), req.per_unit(HealthKind::Initial));
            let tolerance = fx(1e-9);
            prop_assert!(maintenance_unit.0 >= slack - tolerance && maintenance_unit.1 >= slack - tolerance);
            prop_assert!(initial_unit.0 >= maintenance_unit.0 + slack - tolerance);
            prop_assert!(initial_unit.1 >= maintenance_unit.1 + slack - tolerance);
            let more = OptionRequirement::new(base, bids + extra, asks + extra, &r).unwrap();
            prop_assert!(more.requirement(HealthKind::Initial).unwrap() >= initial);
            if base < 0 && side == OptionSide::Call {
                let floor = fx(spot) * fx(0.05) * I80F48::from_num(-base);
                prop_assert!(maintenance >= floor - fx(1e-6));
            }
        }
    }
}
