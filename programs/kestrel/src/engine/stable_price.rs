//! An underlying's stable price: a delayed, growth-limited copy of its
//! accepted price, which initial health values positions at (Mango v4's
//! answer to the October 2022 attack on it).
//!
//! Two prices move behind the accepted one:
//!
//! - the **delay price**: once per [`DELAY_INTERVAL_SECONDS`] (an hour), the
//!   time-weighted average of the accepted prices over the interval just
//!   ended, moved at most [`DELAY_GROWTH_BPS`] (6 %) from the previous one;
//! - the **stable price**: at each update, the accepted price clamped to
//!   within `g × f² × Δt` of the previous stable price, where `g` is
//!   [`STABLE_GROWTH_BPS_PER_SECOND`] (2 bp a second), `f` the ratio of the
//!   smaller to the larger of the stable and delay prices (so the further
//!   the stable price has run from where the price was an hour ago, the
//!   slower it runs on), and `Δt` the time since the last update, taken at
//!   most [`MAX_STEP_SECONDS`]: one refresh after a quiet spell moves it no
//!   more than a minute's worth, so a spike held for one instant after a
//!   gap gains nothing from the gap. Updates less than [`MIN_STEP_SECONDS`]
//!   apart are skipped without losing their time, so a keeper refreshing
//!   every slot compounds no faster than one refreshing every ten seconds.
//!
//! A price that moves less than the limit is followed exactly: in calm
//! markets the stable price is the accepted price. A 5× pump over twenty
//! minutes moves it about 22 %; a genuine 20 % move is followed within
//! about half an hour. Only initial health reads it (a long at the lower of
//! the two prices, a short at the higher): maintenance health and
//! liquidations use the accepted price, so the stable price can delay new
//! risk but never protects a losing position.
//!
//! Prices are I80F48 native quote per native base, stored as two `u64`
//! halves so the state lives in zero-copy account data; times are unix
//! seconds (the cluster clock at each refresh: the caller chooses when to
//! refresh, not how much time has passed).
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::fixed_math::{div, from_bps, mul};
use super::funding::{from_parts, to_parts};

/// The stable price's growth limit per second, before the damping.
pub const STABLE_GROWTH_BPS_PER_SECOND: i32 = 2;
/// The delay price's growth limit per interval.
pub const DELAY_GROWTH_BPS: i32 = 600;
/// The delay price's averaging interval.
pub const DELAY_INTERVAL_SECONDS: i64 = 3_600;
/// Updates closer together than this are skipped (their time is kept).
pub const MIN_STEP_SECONDS: i64 = 10;
/// The longest step one update moves the stable price by: a keeper
/// refreshes far more often, and a refresh after a gap should not claim
/// the gap's movement for one instant's price.
pub const MAX_STEP_SECONDS: i64 = 60;

/// The model's state, as the underlying stores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StablePrice {
    /// The stable price (I80F48 halves); 0 before the first price.
    pub stable: [u64; 2],
    /// The delay price (I80F48 halves).
    pub delay: [u64; 2],
    /// Σ price × seconds over the current delay interval (I80F48 halves).
    pub accumulated: [u64; 2],
    /// The seconds `accumulated` covers.
    pub accumulated_seconds: i64,
    /// The unix time of the last update that moved the stable price.
    pub last_update: i64,
    /// The current delay interval (unix time / interval).
    pub interval: i64,
}

/// Stable 16 + delay 16 + accumulated 16 + seconds 8 + time 8 + interval 8.
pub const STABLE_PRICE_SIZE: usize = 72;
const _: () = assert!(core::mem::size_of::<StablePrice>() == STABLE_PRICE_SIZE);

impl StablePrice {
    /// The stable price; `None` before the first price.
    pub fn price(&self) -> Option<I80F48> {
        let stable = from_parts(self.stable);
        (stable > 0).then_some(stable)
    }

    pub fn delay_price(&self) -> I80F48 {
        from_parts(self.delay)
    }

    /// Starts the model at `price`, at unix time `now`.
    pub fn reset(&mut self, price: I80F48, now: i64) {
        *self = Self {
            stable: to_parts(price),
            delay: to_parts(price),
            accumulated: [0; 2],
            accumulated_seconds: 0,
            last_update: now,
            interval: now.div_euclid(DELAY_INTERVAL_SECONDS),
        };
    }

    /// Feeds an accepted `price` at unix time `now`. A step that does not
    /// fit (prices near I80F48's range) leaves the model as it was: the
    /// refresh, and the price, still stand.
    pub fn update(&mut self, price: I80F48, now: i64) {
        if price <= 0 {
            return;
        }
        if self.price().is_none() {
            self.reset(price, now);
            return;
        }
        if let Some(next) = self.stepped(price, now) {
            *self = next;
        }
    }

    /// The model after `price` at `now`, or `None` if a step overflows.
    fn stepped(&self, price: I80F48, now: i64) -> Option<Self> {
        let elapsed = now.checked_sub(self.last_update)?;
        if elapsed < MIN_STEP_SECONDS {
            return Some(*self);
        }
        let step = elapsed.min(MAX_STEP_SECONDS);
        let mut next = *self;
        next.last_update = now;
        // The delay price: this step's share of the interval's average,
        // closing the interval once the clock has left it.
        let accumulated =
            from_parts(self.accumulated).checked_add(price.checked_mul_int(i128::from(step))?)?;
        let accumulated_seconds = self.accumulated_seconds.checked_add(step)?;
        let interval = now.div_euclid(DELAY_INTERVAL_SECONDS);
        if interval != self.interval {
            let average = fixed_div_int(accumulated, u64::try_from(accumulated_seconds).ok()?)?;
            let delay = growth_clamped(average, self.delay_price(), from_bps(DELAY_GROWTH_BPS))?;
            next.delay = to_parts(delay);
            next.accumulated = [0; 2];
            next.accumulated_seconds = 0;
            next.interval = interval;
        } else {
            next.accumulated = to_parts(accumulated);
            next.accumulated_seconds = accumulated_seconds;
        }
        // The stable price, damped by how far it is from the delay price.
        let stable = from_parts(self.stable);
        let delay = next.delay_price();
        let ratio = if delay >= stable {
            div(stable, delay)?
        } else {
            div(delay, stable)?
        };
        let limit = mul(mul(ratio, ratio)?, from_bps(STABLE_GROWTH_BPS_PER_SECOND))?
            .checked_mul_int(i128::from(step))?;
        next.stable = to_parts(growth_clamped(price, stable, limit)?);
        Some(next)
    }
}

/// `target` clamped to within `limit` (a fraction) of `previous`, which is
/// positive; the result stays positive (a limit of 1 or more lets the price
/// fall to its target, never below zero).
fn growth_clamped(target: I80F48, previous: I80F48, limit: I80F48) -> Option<I80F48> {
    let move_limit = mul(previous, limit)?;
    let high = previous.checked_add(move_limit)?;
    let low = previous.saturating_sub(move_limit).max(I80F48::DELTA);
    Some(target.clamp(low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    fn f(x: I80F48) -> f64 {
        x.to_num()
    }

    /// The model in f64, written from the module docs.
    struct Reference {
        stable: f64,
        delay: f64,
        accumulated: f64,
        seconds: f64,
        last: i64,
        interval: i64,
    }

    impl Reference {
        fn new(price: f64, now: i64) -> Self {
            Self {
                stable: price,
                delay: price,
                accumulated: 0.0,
                seconds: 0.0,
                last: now,
                interval: now.div_euclid(3_600),
            }
        }

        fn update(&mut self, price: f64, now: i64) {
            let elapsed = now - self.last;
            if elapsed < 10 {
                return;
            }
            let step = elapsed.min(60) as f64;
            self.last = now;
            self.accumulated += price * step;
            self.seconds += step;
            if now.div_euclid(3_600) != self.interval {
                let average = self.accumulated / self.seconds;
                self.delay = average.clamp(self.delay * 0.94, self.delay * 1.06);
                self.accumulated = 0.0;
                self.seconds = 0.0;
                self.interval = now.div_euclid(3_600);
            }
            let ratio = (self.stable / self.delay).min(self.delay / self.stable);
            let limit = 0.0002 * ratio * ratio * step;
            self.stable = price.clamp(self.stable * (1.0 - limit), self.stable * (1.0 + limit));
        }
    }

    #[test]
    fn a_calm_price_is_followed_exactly() {
        let mut model = StablePrice::default();
        assert_eq!(model.price(), None);
        model.update(q(150.0), 1_000);
        assert_eq!(model.price(), Some(q(150.0)));
        // 0.1 % a minute is well inside 2 bp a second.
        let mut price = q(150.0);
        for minute in 1..=30 {
            price = price + price / 1_000;
            model.update(price, 1_000 + 60 * minute);
            assert_eq!(model.price(), Some(price));
        }
    }

    /// The October 2022 pump: the price five times higher over twenty
    /// minutes, refreshed every fifteen seconds, moves the stable price
    /// about a fifth; after the price falls back, it comes back.
    #[test]
    fn a_five_fold_pump_over_twenty_minutes_moves_it_about_a_fifth() {
        let start = 7_200 * 1_000 + 1_800;
        let mut model = StablePrice::default();
        let mut reference = Reference::new(1.0, start);
        model.update(q(1.0), start);
        for step in 1..=80 {
            let price = 5f64.powf(f64::from(step) / 80.0);
            let now = start + 15 * i64::from(step);
            model.update(q(price), now);
            reference.update(price, now);
            let stable = f(model.price().unwrap());
            assert!((stable - reference.stable).abs() < 1e-9, "step {step}");
        }
        let stable = f(model.price().unwrap());
        assert!((1.15..1.30).contains(&stable), "{stable}");
        // Back at 1: the stable price returns to it.
        for step in 1..=200 {
            model.update(q(1.0), start + 1_200 + 15 * step);
        }
        assert_eq!(model.price(), Some(q(1.0)));
    }

    #[test]
    fn fast_refreshes_compound_no_faster_than_every_ten_seconds() {
        let mut every_slot = StablePrice::default();
        let mut every_ten = StablePrice::default();
        every_slot.update(q(100.0), 0);
        every_ten.update(q(100.0), 0);
        for second in 1..=600 {
            every_slot.update(q(200.0), second);
            if second % 10 == 0 {
                every_ten.update(q(200.0), second);
            }
        }
        assert_eq!(every_slot.price(), every_ten.price());
        assert!(every_slot.price().unwrap() < q(113.0));
    }

    #[test]
    fn one_update_after_a_long_pause_moves_only_a_minute_s_worth() {
        let mut model = StablePrice::default();
        model.update(q(100.0), 0);
        model.update(q(1_000.0), 100_000);
        // 2 bp × 60 s = 1.2 %, damped by the delay price (which moved 6 %):
        // × (100 / 106)².
        let stable = f(model.price().unwrap());
        let expected = 100.0 * (1.0 + 0.012 * (100.0f64 / 106.0).powi(2));
        assert!((stable - expected).abs() < 1e-9, "{stable}");
        assert!((f(model.delay_price()) - 106.0).abs() < 1e-9);
    }

    #[test]
    fn a_crash_to_near_zero_keeps_the_stable_price_positive() {
        let mut model = StablePrice::default();
        model.update(q(100.0), 0);
        for step in 1..=2_000 {
            model.update(I80F48::DELTA, 600 * step);
        }
        assert!(model.price().unwrap() > 0);
        assert!(model.price().unwrap() < q(0.001));
    }

    proptest! {
        /// Against the f64 reference, under random paths and refresh
        /// times; and never further from the previous stable price than
        /// the limit allows.
        #[test]
        fn it_matches_the_reference_and_respects_the_limit(
            start in 0i64..1_000_000_000,
            steps in prop::collection::vec((1i64..900, -300i32..300), 1..200),
        ) {
            let mut model = StablePrice::default();
            model.update(q(100.0), start);
            let mut reference = Reference::new(100.0, start);
            let (mut now, mut price) = (start, 100.0f64);
            for (dt, move_bps) in steps {
                now += dt;
                price *= 1.0 + f64::from(move_bps) / 10_000.0;
                let before = f(model.price().unwrap());
                model.update(q(price), now);
                reference.update(price, now);
                let stable = f(model.price().unwrap());
                prop_assert!((stable - reference.stable).abs() < 1e-6 * reference.stable);
                prop_assert!((stable / before - 1.0).abs() <= 0.0002 * 60.0 + 1e-9);
                prop_assert!((f(model.delay_price()) - reference.delay).abs() < 1e-6 * reference.delay);
            }
        }
    }
}
