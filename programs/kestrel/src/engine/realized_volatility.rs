//! An underlying's realized volatility: an exponentially weighted moving
//! average of the variance of its accepted price's log returns, weighted by
//! time, which `refresh_underlying` feeds with every price it accepts.
//!
//! A sample is the log return since the last sample, taken once at least
//! [`SAMPLE_SECONDS`] have passed (refreshes in between leave the anchor
//! where it is, so a keeper refreshing every slot measures minute returns,
//! not the feeds' tick noise). Its variance rate `r² / Δt` (annualized)
//! enters the average with weight `1 − 2^(−Δt / H)` for the half-life `H`:
//! the weight of a sample grows with the time it spans, so sixty one-minute
//! returns and one hour's return count alike, and a missed hour is one
//! sample of an hour (the variance of a return grows with its span, so its
//! rate estimates the same volatility). The weights' running sum is kept
//! beside the weighted variance and divides it, so the estimate is unbiased
//! from its first sample instead of starting at zero.
//!
//! Prices are I80F48 native quote per native base, stored as two `u64`
//! halves so the state lives in zero-copy account data; times are unix
//! seconds.
use fixed::types::I80F48;

use super::black_scholes::SECONDS_PER_YEAR;
use super::fastdiv::{div_u128_u32, fixed_div_int};
use super::fastmul::mul_int;
use super::fixed_math::{div, exp, ln, mul, sqrt};
use super::funding::{from_parts, to_parts};

/// Shortest span of a sample.
pub const SAMPLE_SECONDS: i64 = 60;
/// The average's half-life: a day's samples weigh half of it.
pub const HALF_LIFE_SECONDS: u32 = 86_400;
/// Past this many half-lives a sample's weight is 1 to within an ulp: the
/// span is taken at it (and the exponential stays in range).
const MAX_HALF_LIVES: i64 = 48;

/// The running average, as the underlying stores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RealizedVolatility {
    /// The price the next sample's return is taken from (I80F48 halves),
    /// and its publish time; 0 before the first price.
    pub anchor_price: [u64; 2],
    pub anchor_time: i64,
    /// Σ weight × annualized variance rate, decayed (I80F48 halves).
    pub weighted_variance: [u64; 2],
    /// Σ weight, decayed, in [0, 1] (I80F48 halves).
    pub weight: [u64; 2],
}

/// Anchor 16 + time 8 + variance 16 + weight 16.
pub const REALIZED_VOLATILITY_SIZE: usize = 56;
const _: () = assert!(core::mem::size_of::<RealizedVolatility>() == REALIZED_VOLATILITY_SIZE);

impl RealizedVolatility {
    /// Records an accepted `price` published at `time`: the first sets the
    /// anchor; one at least [`SAMPLE_SECONDS`] after the anchor is a sample
    /// and the new anchor; an earlier one changes nothing. A sample whose
    /// return does not fit (a price a factor of 2^79 from the anchor)
    /// moves the anchor without entering the average. Returns whether a
    /// sample entered it.
    pub fn record(&mut self, price: I80F48, time: i64) -> bool {
        if price <= 0 || time <= 0 {
            return false;
        }
        if self.anchor_time == 0 {
            self.anchor(price, time);
            return false;
        }
        let span = time.saturating_sub(self.anchor_time);
        if span < SAMPLE_SECONDS {
            return false;
        }
        let sampled = self.sample(price, span);
        if let Some((weighted_variance, weight)) = sampled {
            self.weighted_variance = to_parts(weighted_variance);
            self.weight = to_parts(weight);
        }
        self.anchor(price, time);
        sampled.is_some()
    }

    fn anchor(&mut self, price: I80F48, time: i64) {
        self.anchor_price = to_parts(price);
        self.anchor_time = time;
    }

    /// The average and its weight after a sample of `price` `span` seconds
    /// after the anchor (`span ≥ SAMPLE_SECONDS`).
    fn sample(&self, price: I80F48, span: i64) -> Option<(I80F48, I80F48)> {
        let log_return = ln(div(price, from_parts(self.anchor_price))?)?;
        // r² per year of span, as r² × (seconds a year) / span: exact to
        // the ulp (a minute in years would be truncated to 2e-9 relative).
        // |r| ≤ 55, so r² × Y < 2^37.
        let per_year = mul_int(mul(log_return, log_return)?, i128::from(SECONDS_PER_YEAR))?;
        let rate = fixed_div_int(per_year, span as u64)?;
        // The decay 2^(−span/H) = e^(−(span/H) ln 2), span/H ≤ 48.
        let half_lives = span.min(MAX_HALF_LIVES * i64::from(HALF_LIFE_SECONDS)) as u128;
        let fraction = I80F48::from_bits(div_u128_u32(half_lives << 48, HALF_LIFE_SECONDS) as i128);
        let decay = exp(-mul(fraction, I80F48::LN_2)?)?;
        let fresh = I80F48::ONE - decay;
        let weighted_variance =
            mul(decay, from_parts(self.weighted_variance))?.checked_add(mul(fresh, rate)?)?;
        let weight = mul(decay, from_parts(self.weight))?.checked_add(fresh)?;
        Some((weighted_variance, weight.min(I80F48::ONE)))
    }

    /// The samples' total weight: 0 before the first, approaching 1 as
    /// they span half-lives (a day's samples: 1/2).
    pub fn weight(&self) -> I80F48 {
        from_parts(self.weight)
    }

    /// The annualized realized volatility (0.8 = 80 %); `None` before the
    /// first sample.
    pub fn volatility(&self) -> Option<I80F48> {
        let weight = self.weight();
        if weight <= 0 {
            return None;
        }
        sqrt(div(from_parts(self.weighted_variance), weight)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fx(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    /// A deterministic standard normal stream (splitmix64, Box-Muller).
    struct Normals(u64);

    impl Normals {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn next(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// A geometric Brownian path at `volatility` from 150, observed at the
    /// times `steps` yields (seconds after the start), recorded in order.
    fn run(volatility: f64, seed: u64, steps: impl Iterator<Item = i64>) -> RealizedVolatility {
        let mut state = RealizedVolatility::default();
        let mut normals = Normals(seed);
        let (mut price, mut time) = (150.0f64, 1_700_000_000i64);
        state.record(fx(price), time);
        for step in steps {
            let years = step as f64 / f64::from(super::super::black_scholes::SECONDS_PER_YEAR);
            price *= (volatility * years.sqrt() * normals.next()
                - volatility * volatility * years / 2.0)
                .exp();
            time += step;
            state.record(fx(price), time);
        }
        state
    }

    fn estimate(state: &RealizedVolatility) -> f64 {
        state.volatility().unwrap().to_num()
    }

    #[test]
    fn a_constant_price_has_no_volatility() {
        let mut state = RealizedVolatility::default();
        assert_eq!(state.volatility(), None);
        for minute in 0..100 {
            state.record(fx(150.0), 1_000 + minute * 60);
        }
        assert_eq!(state.volatility(), Some(I80F48::ZERO));
        assert!(state.weight() > fx(0.04) && state.weight() < fx(0.05));
    }

    #[test]
    fn refreshes_within_a_minute_leave_the_anchor() {
        let mut state = RealizedVolatility::default();
        assert!(!state.record(fx(150.0), 1_000));
        assert!(!state.record(fx(160.0), 1_030));
        assert!(!state.record(fx(140.0), 1_059));
        assert_eq!(state.volatility(), None);
        // A minute after the anchor: one return, 150 -> 151.
        assert!(state.record(fx(151.0), 1_060));
        let r = (151.0f64 / 150.0).ln();
        let expected = (r * r * 365.0 * 24.0 * 60.0).sqrt();
        assert!(
            (estimate(&state) - expected).abs() < 1e-9,
            "{}",
            estimate(&state)
        );
        // Older updates change nothing.
        let before = state;
        assert!(!state.record(fx(10.0), 1_000));
        assert_eq!(state, before);
    }

    /// Minute, five-minute and irregular sampling of paths at 80 % all
    /// estimate 80 % (three days of samples): the weights follow time, so
    /// neither sampling over- or under-counts.
    #[test]
    fn irregular_sampling_neither_over_nor_under_counts() {
        let days = 3 * 86_400;
        for seed in 1..=4u64 {
            let minutes = run(0.8, seed, std::iter::repeat_n(60, (days / 60) as usize));
            let fives = run(
                0.8,
                seed + 100,
                std::iter::repeat_n(300, (days / 300) as usize),
            );
            let mut jitter = Normals(seed + 200);
            let mut irregular_steps = Vec::new();
            let mut total = 0;
            while total < days {
                let step = 60 + (jitter.uniform() * 540.0) as i64;
                irregular_steps.push(step);
                total += step;
            }
            let irregular = run(0.8, seed + 300, irregular_steps.into_iter());
            for (name, state) in [
                ("1 min", minutes),
                ("5 min", fives),
                ("irregular", irregular),
            ] {
                let got = estimate(&state);
                assert!((got - 0.8).abs() < 0.8 * 0.08, "seed {seed} {name}: {got}");
            }
        }
    }

    /// A missed hour is one sample of an hour: the estimate stays where the
    /// unbroken path's is.
    #[test]
    fn a_missed_hour_is_one_sample_of_an_hour() {
        let day: Vec<i64> = std::iter::repeat_n(60, 24 * 60).collect();
        let mut gapped = day.clone();
        gapped.drain(600..660);
        gapped.insert(600, 3_600);
        for seed in 1..=4u64 {
            let unbroken = estimate(&run(0.8, seed, day.clone().into_iter()));
            let missed = estimate(&run(0.8, seed, gapped.clone().into_iter()));
            assert!((unbroken - 0.8).abs() < 0.08, "{unbroken}");
            assert!(
                (missed - unbroken).abs() < 0.05,
                "{missed} against {unbroken}"
            );
        }
        // After a long outage the day's return alone: its weight is what
        // a day of minute samples weighs (a half-life: 1/2).
        let mut state = RealizedVolatility::default();
        state.record(fx(100.0), 1_000);
        state.record(fx(105.0), 1_000 + 86_400);
        assert!((state.weight().to_num::<f64>() - 0.5).abs() < 1e-12);
        let r = 1.05f64.ln();
        assert!((estimate(&state) - (r * r * 365.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn the_estimate_follows_a_change_of_regime_by_its_half_life() {
        let calm: Vec<i64> = std::iter::repeat_n(60, 3 * 24 * 60).collect();
        let mut state = run(0.4, 9, calm.into_iter());
        assert!((estimate(&state) - 0.4).abs() < 0.05);
        // Then a day at 120 %: the calm days' weight (1 − 2^-3) halves and
        // the day adds 1/2 at 1.44, so the variance is (0.16 × 0.875 × 0.5
        // + 1.44 × 0.5) / (0.875 × 0.5 + 0.5) ≈ 0.843.
        let mut normals = Normals(10);
        let (mut price, mut time) = (
            from_parts(state.anchor_price).to_num::<f64>(),
            state.anchor_time,
        );
        let minute_years = 60.0 / f64::from(super::super::black_scholes::SECONDS_PER_YEAR);
        for _ in 0..24 * 60 {
            price *= (1.2 * minute_years.sqrt() * normals.next()).exp();
            time += 60;
            state.record(fx(price), time);
        }
        let variance = estimate(&state).powi(2);
        assert!((variance - 0.843).abs() < 0.1, "{variance}");
    }

    proptest! {
        /// Any prices and times: no panic, the weight within [0, 1], the
        /// estimate non-negative.
        #[test]
        fn any_sequence_is_recorded(updates in proptest::collection::vec((1i128..i128::MAX, 0i64..10_000_000), 1..40)) {
            let mut state = RealizedVolatility::default();
            let mut time = 1i64;
            for (bits, step) in updates {
                time = time.saturating_add(step);
                state.record(I80F48::from_bits(bits), time);
                prop_assert!(state.weight() >= 0 && state.weight() <= 1);
                if let Some(volatility) = state.volatility() {
                    prop_assert!(volatility >= 0);
                }
            }
        }
    }
}
