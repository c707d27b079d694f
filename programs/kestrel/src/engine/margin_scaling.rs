//! Margin fractions that follow risk: scaled up with the underlying's
//! realized volatility above a baseline, at a bounded rate, and up again
//! with the size of the position (Drift's IMF factor on √size).
//!
//! - **Volatility.** The target scale is `realized / baseline`, at least 1
//!   and at most the underlying's maximum. The scale health applies moves
//!   towards it by at most `max_scale_change_bps_per_hour` per hour of the
//!   time since its last move (`refresh_underlying` moves it), crediting at
//!   most [`MAX_SCALE_STEP_SECONDS`] of a longer wait: one volatile sample,
//!   a day of them, or the first refresh after an outage cannot lift every
//!   requirement at once and push the whole book into liquidation; the
//!   book has hours to add margin. Movement earned and not yet used is
//!   carried, so refreshing every slot neither slows nor speeds it.
//! - **Size.** A position of `n` whole base units (worst case: resting
//!   orders filled on the worse side) is margined at
//!   `max(f, 4/5 × f + size_margin_bps × √n)` of its value, `f` the scaled
//!   fraction: a small position pays `f`; past the size where the square
//!   root term reaches `f / 5` each further unit needs more, so a whale's
//!   marginal lot needs more margin than a small trader's.
//!
//! Both transforms grow with the fraction they are given, so a market's
//! maintenance fraction stays below its initial one, and they never lower
//! a fraction. The result is at most 100 %.
//!
//! Fractions are basis points; the scale is basis points of 1 (10,000 is
//! no scaling).
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;

/// The scale at which fractions are as the market sets them.
pub const UNSCALED: u32 = 10_000;
/// The largest fraction a transform gives: the whole value.
pub const MAX_FRACTION_BPS: u32 = 10_000;

/// The target scale for an annualized realized `volatility` (0.8 = 80 %)
/// against `baseline_bps` (annualized, in basis points), at most
/// `max_scale_bps`; unscaled without a volatility or a baseline.
pub fn target_scale_bps(volatility: Option<I80F48>, baseline_bps: u32, max_scale_bps: u32) -> u32 {
    let (Some(volatility), true) = (volatility, baseline_bps > 0) else {
        return UNSCALED;
    };
    // volatility / (baseline / 10^4) × 10^4 = volatility × 10^8 / baseline,
    // to the nearest basis point.
    let scaled = volatility
        .checked_mul_int(100_000_000)
        .and_then(|v| fixed_div_int(v, u64::from(baseline_bps)))
        .and_then(|v| v.checked_round())
        .map(|v| v.to_num::<i128>());
    let scale = match scaled {
        Some(scale) => u32::try_from(scale.max(0)).unwrap_or(u32::MAX),
        None => u32::MAX,
    };
    scale.clamp(UNSCALED, max_scale_bps.max(UNSCALED))
}

/// The most of a wait one step of the scale credits.
pub const MAX_SCALE_STEP_SECONDS: i64 = 600;

/// One step of the scale from `current` towards `target`, `elapsed_seconds`
/// after the last, carrying `credit` (basis-point-seconds earned and not
/// yet used): the new scale and the credit left. A wait earns
/// `max_change_bps_per_hour` basis-point-seconds a second, at most
/// [`MAX_SCALE_STEP_SECONDS`]' worth in all (or one basis point's, if
/// more); a move spends 3,600 per basis
/// point; reaching the target spends the rest. So the scale moves at the
/// configured rate however often it is refreshed, and the first refresh
/// after an outage moves it at most ten minutes' worth.
pub fn scale_step(
    current: u32,
    target: u32,
    elapsed_seconds: i64,
    max_change_bps_per_hour: u32,
    credit: u32,
) -> (u32, u32) {
    let rate = u64::from(max_change_bps_per_hour);
    // Ten minutes' worth, and at least a basis point's (a slow rate
    // would otherwise never move).
    let cap = (rate * MAX_SCALE_STEP_SECONDS as u64).max(3_600);
    let elapsed = u64::try_from(elapsed_seconds.clamp(0, 3_600)).unwrap_or(0);
    let credit = (u64::from(credit) + rate * elapsed).min(cap);
    let allowed = u32::try_from(credit / 3_600).unwrap_or(u32::MAX);
    let next = toward(current, target, allowed);
    if next == target {
        return (next, 0);
    }
    let spent = u64::from(next.abs_diff(current)) * 3_600;
    (next, u32::try_from(credit - spent).unwrap_or(u32::MAX))
}

/// The scale after `elapsed_seconds` moving from `current` towards
/// `target`, by at most `max_change_bps_per_hour` an hour.
#[cfg(test)]
fn stepped_scale_bps(
    current: u32,
    target: u32,
    elapsed_seconds: i64,
    max_change_bps_per_hour: u32,
) -> u32 {
    let elapsed = u64::try_from(elapsed_seconds.max(0)).unwrap_or(0);
    let allowed = (u64::from(max_change_bps_per_hour) * elapsed / 3_600).min(u64::from(u32::MAX));
    toward(current, target, allowed as u32)
}

/// `current` moved towards `target` by at most `allowed`.
fn toward(current: u32, target: u32, allowed: u32) -> u32 {
    if target >= current {
        current.saturating_add(allowed).min(target)
    } else {
        current.saturating_sub(allowed).max(target)
    }
}

/// `fraction_bps` scaled by `scale_bps` (rounded up) and lifted for a
/// position of `units` whole base units by `size_margin_bps` per √unit;
/// at most 100 %.
/// A zero fraction (an option's: it has its own rule) stays zero.
pub fn scaled_fraction_bps(
    fraction_bps: u32,
    scale_bps: u32,
    size_margin_bps: u32,
    units: u64,
) -> u32 {
    if fraction_bps == 0 {
        return 0;
    }
    let scaled = (u64::from(fraction_bps) * u64::from(scale_bps)).div_ceil(u64::from(UNSCALED));
    let sized = if size_margin_bps == 0 || units == 0 {
        scaled
    } else {
        let premium = u64::from(size_margin_bps).saturating_mul(isqrt(units));
        scaled.max((scaled * 4).div_ceil(5).saturating_add(premium))
    };
    sized.min(u64::from(MAX_FRACTION_BPS)) as u32
}

/// ⌊√n⌋: Newton's iteration from a power of two at or above the root,
/// which decreases to it (at most about six divisions for a u64).
pub fn isqrt(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let mut x = 1u64 << (64 - n.leading_zeros()).div_ceil(2);
    loop {
        let next = (x + n / x) / 2;
        if next >= x {
            return x;
        }
        x = next;
    }
}

/// What health needs of an underlying's scaling: the scale now, the lift
/// per √unit and the size of a whole base unit in native units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarginTerms {
    pub scale_bps: u32,
    pub size_margin_bps: u32,
    pub native_per_unit: u64,
}

impl MarginTerms {
    /// Fractions as the market sets them.
    pub const UNSCALED: Self = Self {
        scale_bps: UNSCALED,
        size_margin_bps: 0,
        native_per_unit: 1,
    };

    /// A market's (initial, maintenance) fractions for a position whose
    /// worst case is `worst_native()` native base units (asked only when
    /// the terms scale: every health walk calls this).
    #[inline]
    pub fn fractions(
        &self,
        initial_bps: u32,
        maintenance_bps: u32,
        worst_native: impl FnOnce() -> u128,
    ) -> (u32, u32) {
        if self.scale_bps <= UNSCALED && self.size_margin_bps == 0 {
            return (initial_bps, maintenance_bps);
        }
        let units = worst_native() / u128::from(self.native_per_unit.max(1));
        let units = u64::try_from(units).unwrap_or(u64::MAX);
        (
            scaled_fraction_bps(initial_bps, self.scale_bps, self.size_margin_bps, units),
            scaled_fraction_bps(maintenance_bps, self.scale_bps, self.size_margin_bps, units),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_target_is_the_volatility_over_the_baseline_within_bounds() {
        let vol = |x: f64| Some(I80F48::from_num(x));
        // 80 % baseline.
        assert_eq!(target_scale_bps(vol(0.4), 8_000, 30_000), UNSCALED);
        assert_eq!(target_scale_bps(vol(0.8), 8_000, 30_000), UNSCALED);
        assert_eq!(target_scale_bps(vol(1.2), 8_000, 30_000), 15_000);
        assert_eq!(target_scale_bps(vol(4.0), 8_000, 30_000), 30_000);
        assert_eq!(target_scale_bps(None, 8_000, 30_000), UNSCALED);
        assert_eq!(target_scale_bps(vol(4.0), 0, 30_000), UNSCALED);
        assert_eq!(target_scale_bps(vol(1e20), 1, 30_000), 30_000);
    }

    #[test]
    fn the_scale_moves_at_a_bounded_rate() {
        // 0.5 of a scale an hour: a target of 3 from 1 takes four hours.
        assert_eq!(stepped_scale_bps(10_000, 30_000, 60, 5_000), 10_083);
        assert_eq!(stepped_scale_bps(10_000, 30_000, 3_600, 5_000), 15_000);
        assert_eq!(stepped_scale_bps(10_000, 30_000, 4 * 3_600, 5_000), 30_000);
        assert_eq!(
            stepped_scale_bps(10_000, 30_000, 100 * 3_600, 5_000),
            30_000
        );
        assert_eq!(stepped_scale_bps(30_000, 10_000, 3_600, 5_000), 25_000);
        assert_eq!(stepped_scale_bps(30_000, 10_000, -5, 5_000), 30_000);
    }

    #[test]
    fn a_whale_s_marginal_unit_needs_more() {
        // 10 % scaled 1.5×: 15 %; 5 bp per √unit: 100 SOL pays the scaled
        // fraction (12 % + 0.5 % < 15 %), 10,000 SOL 12 % + 5 %.
        assert_eq!(scaled_fraction_bps(1_000, 15_000, 5, 100), 1_500);
        assert_eq!(scaled_fraction_bps(1_000, 15_000, 5, 10_000), 1_700);
        assert_eq!(scaled_fraction_bps(1_000, UNSCALED, 0, 1 << 40), 1_000);
        assert_eq!(scaled_fraction_bps(1_000, 30_000, 100, u64::MAX), 10_000);
        // Rounded up: 3 bp × 1.5 is 5 bp.
        assert_eq!(scaled_fraction_bps(3, 15_000, 0, 0), 5);
    }

    #[test]
    fn a_step_credits_at_most_ten_minutes_and_keeps_unused_time() {
        // Four hours without a price: the first refresh after moves the
        // scale ten minutes' worth (833 of 5,000 an hour), not 20,000.
        assert_eq!(
            scale_step(10_000, 30_000, 4 * 3_600, 5_000, 0),
            (10_833, 1_200)
        );
        // Reaching the target spends the rest.
        assert_eq!(scale_step(10_000, 10_050, 60, 6_000, 0), (10_050, 0));
        // A second at 3,000 an hour earns 3,000 of the 3,600 a basis point
        // costs: nothing moves, the credit is kept.
        assert_eq!(scale_step(10_000, 30_000, 1, 3_000, 0), (10_000, 3_000));
        assert_eq!(scale_step(10_000, 30_000, 1, 3_000, 3_000), (10_001, 2_400));
        // Refreshing every second for an hour moves the configured rate.
        for rate in [1, 3_000, 5_000, 7_199, 100_000] {
            let (mut scale, mut credit) = (10_000u32, 0u32);
            for _ in 0..3_600 {
                (scale, credit) = scale_step(scale, 1_000_000, 1, rate, credit);
            }
            assert_eq!(scale - 10_000, rate, "{rate}");
        }
    }

    proptest! {
        #[test]
        fn isqrt_is_the_floor_of_the_root(n in any::<u64>()) {
            let r = isqrt(n);
            prop_assert!(u128::from(r) * u128::from(r) <= u128::from(n));
            prop_assert!(u128::from(r + 1) * u128::from(r + 1) > u128::from(n));
        }

        #[test]
        fn the_transforms_keep_order_and_never_lower_a_fraction(
            maintenance in 1u32..10_000,
            extra in 1u32..10_000,
            scale in UNSCALED..100_000,
            size_margin in 0u32..1_000,
            units in any::<u64>(),
            more in 0u64..1_000_000,
        ) {
            let initial = (maintenance + extra).min(10_000);
            let m = scaled_fraction_bps(maintenance, scale, size_margin, units);
            let i = scaled_fraction_bps(initial, scale, size_margin, units);
            prop_assert!(m <= i);
            prop_assert!(m >= maintenance.min(MAX_FRACTION_BPS));
            // Larger positions never need less.
            prop_assert!(scaled_fraction_bps(initial, scale, size_margin, units.saturating_add(more)) >= i);
        }
    }
}
