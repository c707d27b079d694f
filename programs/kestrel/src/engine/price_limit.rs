//! An underlying's price limit: how fast the price the program accepts may
//! follow its feeds (CME's price limits, as a speed).
//!
//! Without it, one oracle update can move the accepted price any distance:
//! a print beyond a position's margin buffer leaves it bankrupt before any
//! liquidator can act, and whoever held the other side (the same trader,
//! through a second account, as in the October 2022 attack on Mango
//! Markets) is paid the deficit out of the insurance fund. No accounting
//! can tell that gain from an honest one once the price is accepted; what
//! can be bounded is the price itself.
//!
//! With a limit of `r` basis points a second, each refresh accepts the
//! feeds' price clamped to within `r × Δt` of the price accepted before,
//! where `Δt` is the time since that refresh (cluster clock seconds), taken
//! at most [`MAX_STEP_SECONDS`]: refreshes in the same second move nothing,
//! refreshes every second compound at `r` a second, and a refresh after a
//! quiet spell claims no more than ten seconds of it. A price that moves
//! slower than the limit is followed exactly. Every reader of the accepted
//! price (bands, fills, maintenance health, liquidation, funding, the
//! settlement average, the stable price) reads the limited price, so a
//! liquidator meets a pump one bounded step at a time; initial health also
//! values each position at the feeds' price when that is worse for it
//! (`portfolio::UnderlyingPrices::feed`), so a limit that lags a genuine
//! crash lends no one the difference.
//!
//! Prices are I80F48 native quote per native base, stored as two `u64`
//! halves so the state lives in zero-copy account data.
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::fastmul::FastMulInt;
use super::funding::{from_parts, to_parts};

/// The longest wait one refresh is credited for.
pub const MAX_STEP_SECONDS: i64 = 10;
/// The fastest limit the admin may set: half the price in one step.
pub const MAX_MOVE_BPS_PER_SECOND: u32 = 500;

/// The limit's configuration and the price it accepted last, as the
/// underlying stores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PriceLimit {
    /// The price the last refresh accepted (I80F48 halves); 0 before it.
    pub price: [u64; 2],
    /// The feeds' price at that refresh (I80F48 halves).
    pub feed: [u64; 2],
    /// The unix time of that refresh.
    pub updated_at: i64,
    /// The limit, basis points of the price a second; 0: none.
    pub max_move_bps_per_second: u32,
    pub padding: u32,
}

/// Price 16 + feed 16 + time 8 + limit 4 + padding 4.
pub const PRICE_LIMIT_SIZE: usize = 48;
const _: () = assert!(core::mem::size_of::<PriceLimit>() == PRICE_LIMIT_SIZE);

impl PriceLimit {
    pub fn is_on(&self) -> bool {
        self.max_move_bps_per_second > 0
    }

    /// The price the last refresh accepted, while a limit is set (`None`
    /// without one, and before the first refresh: the feeds' price stands).
    pub fn price(&self) -> Option<I80F48> {
        let price = from_parts(self.price);
        (self.is_on() && price > 0).then_some(price)
    }

    /// The feeds' price at the last refresh, while the limit holds the
    /// accepted price away from it.
    pub fn lagging_feed(&self) -> Option<I80F48> {
        let feed = from_parts(self.feed);
        (self.price()? != feed && feed > 0).then_some(feed)
    }

    /// What a refresh at unix time `now` accepts of the feeds' `feed`.
    pub fn accepts(&self, feed: I80F48, now: i64) -> I80F48 {
        match self.price() {
            Some(previous) => limited(
                previous,
                feed,
                now.saturating_sub(self.updated_at),
                self.max_move_bps_per_second,
            ),
            None => feed,
        }
    }

    /// Sets the limit to `max_move_bps_per_second` at unix time `now`,
    /// without counting the time before towards the next step. A limit
    /// that has recorded no price yet (an underlying not refreshed since it
    /// gained the field) starts from `last_good`, so its first refresh is
    /// limited too.
    pub fn configure(&mut self, max_move_bps_per_second: u32, last_good: Option<I80F48>, now: i64) {
        if from_parts(self.price) <= 0 {
            if let Some(price) = last_good {
                self.price = to_parts(price);
                self.feed = to_parts(price);
            }
        }
        self.max_move_bps_per_second = max_move_bps_per_second;
        self.updated_at = self.updated_at.max(now);
    }

    /// Records a refresh at `now` of the feeds' `feed`, and returns the
    /// price it accepts. Kept without a limit too, so that a limit set
    /// later starts from the price accepted last.
    pub fn record(&mut self, feed: I80F48, now: i64) -> I80F48 {
        let price = self.accepts(feed, now);
        self.price = to_parts(price);
        self.feed = to_parts(feed);
        // Never back: a clock that ran backwards would credit the gap twice.
        self.updated_at = self.updated_at.max(now);
        price
    }
}

/// `feed` clamped to within `rate_bps_per_second × elapsed` (elapsed taken
/// between 0 and [`MAX_STEP_SECONDS`]) of `previous`; the result stays
/// positive. A step that does not fit in I80F48 holds `previous` (prices
/// that large do not occur).
pub fn limited(previous: I80F48, feed: I80F48, elapsed: i64, rate_bps_per_second: u32) -> I80F48 {
    if previous <= 0 {
        return feed;
    }
    let seconds = elapsed.clamp(0, MAX_STEP_SECONDS) as u64;
    let allowance_bps = u64::from(rate_bps_per_second) * seconds;
    // SBF has no wide multiply or divide: limbs and native 64-bit steps.
    let bounds = previous
        .fast_mul_int(i128::from(allowance_bps))
        .and_then(|scaled| fixed_div_int(scaled, 10_000))
        .and_then(|step| Some((previous.saturating_sub(step), previous.checked_add(step)?)));
    match bounds {
        Some((low, high)) => feed.clamp(low.max(I80F48::DELTA), high),
        None => previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    fn on(rate: u32) -> PriceLimit {
        PriceLimit {
            max_move_bps_per_second: rate,
            ..PriceLimit::default()
        }
    }

    #[test]
    fn a_price_within_the_limit_is_followed_exactly() {
        // 20 bp a second, 10 s since the last refresh: 2 % either way.
        assert_eq!(limited(q(150.0), q(152.5), 10, 20), q(152.5));
        assert_eq!(limited(q(150.0), q(147.5), 10, 20), q(147.5));
    }

    #[test]
    fn a_jump_moves_the_accepted_price_one_step() {
        let up = limited(q(150.0), q(750.0), 10, 20);
        assert!((up - q(153.0)).abs() < q(1e-9), "{up}");
        let down = limited(q(150.0), q(30.0), 10, 20);
        assert!((down - q(147.0)).abs() < q(1e-9), "{down}");
    }

    #[test]
    fn a_refresh_after_a_quiet_spell_claims_ten_seconds() {
        assert_eq!(
            limited(q(150.0), q(750.0), 3_600, 20),
            limited(q(150.0), q(750.0), MAX_STEP_SECONDS, 20)
        );
    }

    #[test]
    fn refreshes_in_the_same_second_move_nothing() {
        let mut limit = on(20);
        assert_eq!(limit.record(q(150.0), 1_000), q(150.0));
        for _ in 0..100 {
            assert_eq!(limit.record(q(750.0), 1_000), q(150.0));
        }
        // A clock running backwards (it does not) would move nothing either.
        assert_eq!(limit.record(q(750.0), 990), q(150.0));
    }

    #[test]
    fn without_a_limit_the_feed_stands_and_is_recorded() {
        let mut limit = PriceLimit::default();
        assert_eq!(limit.record(q(150.0), 1_000), q(150.0));
        assert_eq!(limit.record(q(750.0), 1_000), q(750.0));
        assert_eq!((limit.price(), limit.lagging_feed()), (None, None));
        // Set later, it starts from the price accepted last.
        limit.max_move_bps_per_second = 20;
        assert_eq!(limit.price(), Some(q(750.0)));
        let next = limit.record(q(150.0), 1_010);
        assert!((next - q(735.0)).abs() < q(1e-9), "{next}");
        assert_eq!(limit.lagging_feed(), Some(q(150.0)));
    }

    #[test]
    fn a_limit_never_fed_starts_from_the_last_good_price() {
        let mut limit = PriceLimit::default();
        limit.configure(20, Some(q(150.0)), 1_000);
        assert_eq!(
            (limit.price(), limit.lagging_feed()),
            (Some(q(150.0)), None)
        );
        // Its first refresh is limited, and counts from the call.
        let first = limit.record(q(750.0), 1_005);
        assert!((first - q(151.5)).abs() < q(1e-9), "{first}");
        // Set again, it keeps what it has accepted and its clock.
        limit.configure(40, Some(q(42.0)), 900);
        assert!((limit.price().unwrap() - q(151.5)).abs() < q(1e-9));
        assert_eq!(limit.updated_at, 1_005);
        // Nothing to start from: the feed stands at the first refresh.
        let mut empty = PriceLimit::default();
        empty.configure(20, None, 1_000);
        assert_eq!(empty.price(), None);
        assert_eq!(empty.record(q(750.0), 1_010), q(750.0));
    }

    #[test]
    fn a_five_fold_print_takes_many_minutes_at_twenty_bp_a_second() {
        // A keeper refreshing every 15 s: each refresh moves at most 2 %.
        let mut limit = on(20);
        limit.record(q(150.0), 0);
        let mut now = 0;
        let mut last = q(150.0);
        while last < q(750.0) {
            now += 15;
            let next = limit.record(q(750.0), now);
            assert!(next <= last * q(1.02) + q(1e-9), "{last} -> {next}");
            last = next;
        }
        // ln 5 / ln 1.02 ≈ 81 refreshes.
        assert!(now >= 81 * 15, "reached 750 at {now} s");
    }

    #[test]
    fn extreme_prices_hold_rather_than_fail() {
        assert_eq!(limited(I80F48::MAX, q(1.0), 10, 500), I80F48::MAX);
        assert!(limited(q(1e-12), q(0.0), 10, 500) > 0);
        assert_eq!(limited(q(0.0), q(42.0), 10, 500), q(42.0));
    }

    proptest! {
        #[test]
        fn the_accepted_price_moves_towards_the_feed_within_the_limit(
            previous in 1i64..10_000_000,
            feed in 1i64..10_000_000,
            elapsed in -5i64..100,
            rate in 0u32..=MAX_MOVE_BPS_PER_SECOND,
        ) {
            let (previous, feed) = (q(previous as f64 / 1e3), q(feed as f64 / 1e3));
            let next = limited(previous, feed, elapsed, rate);
            prop_assert!(next > 0);
            // Towards the feed, never past it.
            prop_assert!(next >= previous.min(feed) && next <= previous.max(feed));
            // Within the allowance of its step (f64, with rounding room).
            let seconds = elapsed.clamp(0, MAX_STEP_SECONDS) as f64;
            let allowance = previous.to_num::<f64>() * f64::from(rate) * seconds / 1e4;
            let moved = (next - previous).abs().to_num::<f64>();
            prop_assert!(moved <= allowance * (1.0 + 1e-9) + 1e-9, "{moved} > {allowance}");
            // Followed exactly when the feed is well inside it.
            let gap = (feed - previous).abs().to_num::<f64>();
            if gap < allowance * (1.0 - 1e-9) {
                prop_assert_eq!(next, feed);
            }
        }

        #[test]
        fn splitting_the_refreshes_buys_no_more_than_compounding(
            start in 1_000i64..1_000_000,
            feed in 1_000i64..100_000_000,
            gaps in proptest::collection::vec(0i64..30, 1..40),
            rate in 1u32..=200,
        ) {
            let mut limit = on(rate);
            let start = q(start as f64 / 1e3);
            limit.record(start, 0);
            let mut now = 0;
            let mut bound = start.to_num::<f64>();
            let feed = q(feed as f64 / 1e3);
            let up = feed > start;
            for gap in gaps {
                now += gap;
                let step = f64::from(rate) * gap.min(MAX_STEP_SECONDS) as f64 / 1e4;
                bound = if up { bound * (1.0 + step) } else { bound * (1.0 - step) };
                let price = limit.record(feed, now).to_num::<f64>();
                // Each step at most one allowance: never further than the
                // compounded bound.
                if up {
                    prop_assert!(price <= bound * (1.0 + 1e-9), "{price} > {bound}");
                } else {
                    prop_assert!(price >= bound * (1.0 - 1e-9), "{price} < {bound}");
                }
            }
        }
    }
}
