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
//! A speed alone does not bound the distance: a print held long enough is
//! accepted whole, one step at a time, and a liquidator who took over the
//! losing side early carries the rest of the move (a keeper with too little
//! capital goes bankrupt, and the manipulator's winning side is paid). So
//! the limit also keeps a **band** around the underlying's delay price (the
//! hourly average the stable price keeps, which moves at most 6 % an hour,
//! `engine::stable_price`): the accepted price does not move out of it.
//! While the feeds are beyond the band, the band is *held*: its markets
//! take reduce-only orders only (`PriceBandHeld` for others, as CME's price
//! limits halt trading at the limit), liquidations go on at the held price,
//! and the band widens by its configured width every
//! [`BAND_WIDENING_SECONDS`] the hold lasts (the time between two refreshes
//! that both see the feeds beyond it, at most
//! [`MAX_WIDENING_STEP_SECONDS`] of it), so a genuine move is followed
//! within minutes while a manipulation must be held that long, on every
//! source the feeds read, to move the markets further. Once the band no
//! longer holds, it narrows back at the same rate, never past the accepted
//! price: the band only stops the price moving away, it never pulls it
//! back, so a genuine move that the band let through stays accepted until
//! the delay price catches up.
//!
//! Prices are I80F48 native quote per native base, stored as two `u64`
//! halves so the state lives in zero-copy account data.
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::fastmul::FastMulInt;
use super::fixed_math::div;
use super::funding::{from_parts, to_parts};

/// The longest wait one refresh is credited for.
pub const MAX_STEP_SECONDS: i64 = 10;
/// The fastest limit the admin may set: half the price in one step.
pub const MAX_MOVE_BPS_PER_SECOND: u32 = 500;
/// While held, the band widens by its own width every this many seconds.
pub const BAND_WIDENING_SECONDS: i64 = 600;
/// The narrowest band the admin may set (1 %): narrower, the hourly delay
/// price's own 6 % an hour would hold calm markets.
pub const MIN_BAND_BPS: u32 = 100;
/// The widest band the admin may set (the whole price either way).
pub const MAX_BAND_BPS: u32 = 10_000;
/// The widest the band grows (a hundred-fold move either way): far past
/// any price a hold could matter for, and far from overflowing.
pub const MAX_BAND_WIDTH_BPS: u32 = 1_000_000;
/// The most one refresh widens the band for: the time since the refresh
/// before counts only when both saw the feeds beyond the band, and at most
/// this much of it, so a print shown at two instants far apart buys no
/// more than one held for as long as a keeper's refresh interval.
pub const MAX_WIDENING_STEP_SECONDS: i64 = 15;
/// The widening's counter saturates here (a thousand widenings).
const MAX_WIDENED_SECONDS: u64 = 600_000;

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
    /// The band around the delay price, basis points of it; 0: none.
    pub band_bps: u32,
    /// The seconds of hold the band is widened by (it is `band_bps × (1 +
    /// widened / BAND_WIDENING_SECONDS)` wide): whole seconds, so frequent
    /// refreshes lose nothing to rounding.
    pub widened_seconds: u32,
    /// 1 when the feeds were beyond the band at the last refresh.
    pub held: u8,
    pub padding: [u8; 3],
}

/// The part the underlying stores in its original price-limit field:
/// price 16 + feed 16 + time 8 + limit 4 + band 4.
pub const PRICE_LIMIT_SIZE: usize = 48;
/// The band's state, stored apart (taken from the underlying's reserved
/// bytes): widened seconds 4 + held 1 + padding 3.
pub const PRICE_BAND_SIZE: usize = 8;
const _: () = assert!(core::mem::size_of::<PriceLimit>() == PRICE_LIMIT_SIZE + PRICE_BAND_SIZE);

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

    /// Whether the feeds were beyond the band at the last refresh: the
    /// markets take reduce-only orders only.
    pub fn is_held(&self) -> bool {
        self.is_on() && self.band_bps > 0 && self.held == 1
    }

    /// What a refresh at unix time `now` accepts of the feeds' `feed`,
    /// with the band around `delay` (the delay price; 0 before it exists).
    pub fn accepts(&self, feed: I80F48, now: i64, delay: I80F48) -> I80F48 {
        self.accepted(feed, now, delay).0
    }

    /// The accepted price, whether the feeds are beyond the band, and the
    /// band's widened seconds then.
    fn accepted(&self, feed: I80F48, now: i64, delay: I80F48) -> (I80F48, bool, u32) {
        let Some(previous) = self.price() else {
            return (feed, false, self.widened_seconds);
        };
        let elapsed = now.saturating_sub(self.updated_at);
        let speed_limited = limited(previous, feed, elapsed, self.max_move_bps_per_second);
        let Some((widened, known)) = self.widened_at(previous, delay, elapsed) else {
            return (speed_limited, false, self.widened_seconds);
        };
        // Outward only: a price already outside (the delay price moved
        // under it, or the band was set since) is not pulled back.
        let outward = |(low, high): (I80F48, I80F48)| (low.min(previous), high.max(previous));
        let bounds = |widened: u32| band(delay, self.width_for(widened)).map(outward);
        let Some((low, high)) = known.map(outward).or_else(|| bounds(widened)) else {
            return (speed_limited, false, widened);
        };
        // Held while the feeds are beyond the band, whether or not the
        // speed limit has brought the price to its edge yet: judged on the
        // feeds, a second refresh in the same second cannot end a hold.
        let held = feed < low || feed > high;
        if !(held && self.held == 1) {
            return (speed_limited.clamp(low, high), held, widened);
        }
        // Held at both ends of the interval: it widens the band, and holds
        // while the feeds are still beyond the widened band.
        let credit = elapsed.clamp(0, MAX_WIDENING_STEP_SECONDS) as u64;
        let widened = (u64::from(widened) + credit).min(MAX_WIDENED_SECONDS) as u32;
        match bounds(widened) {
            Some((low, high)) => (
                speed_limited.clamp(low, high),
                feed < low || feed > high,
                widened,
            ),
            None => (speed_limited.clamp(low, high), true, self.widened_seconds),
        }
    }

    /// The band's width for `widened` seconds of hold, basis points.
    fn width_for(&self, widened: u32) -> u32 {
        let band = u64::from(self.band_bps);
        let width = band * (BAND_WIDENING_SECONDS as u64 + u64::from(widened))
            / BAND_WIDENING_SECONDS as u64;
        width.min(u64::from(MAX_BAND_WIDTH_BPS)) as u32
    }

    /// The band's widened seconds before this refresh's own widening,
    /// `elapsed` seconds after the last refresh, the accepted price then
    /// `previous`: kept while it held, else narrowed by the time since (at
    /// most a widening's worth) but not below what covers `previous`;
    /// with the band at that width where finding it computed it.
    /// `None` without a band or a delay price.
    fn widened_at(
        &self,
        previous: I80F48,
        delay: I80F48,
        elapsed: i64,
    ) -> Option<(u32, Option<Band>)> {
        if self.band_bps == 0 || delay <= 0 {
            return None;
        }
        if self.held == 1 {
            return Some((self.widened_seconds, None));
        }
        let narrowed = u64::from(self.widened_seconds)
            .saturating_sub(elapsed.clamp(0, BAND_WIDENING_SECONDS) as u64);
        // The usual case, `previous` inside the narrowed band, needs no
        // division to find the width that covers it.
        let narrowed_band = band(delay, self.width_for(narrowed as u32));
        if let Some((low, high)) = narrowed_band {
            if (low..=high).contains(&previous) {
                return Some((narrowed as u32, narrowed_band));
            }
        }
        let band_bps = u64::from(self.band_bps);
        // The seconds whose width reaches `previous`, rounded up.
        let covering = distance_bps(previous, delay)
            .saturating_mul(BAND_WIDENING_SECONDS as u64)
            .div_ceil(band_bps)
            .saturating_sub(BAND_WIDENING_SECONDS as u64);
        Some((narrowed.max(covering).min(MAX_WIDENED_SECONDS) as u32, None))
    }

    /// The band's width now, basis points of the delay price (0: none).
    pub fn width_bps(&self) -> u32 {
        self.width_for(self.widened_seconds)
    }

    /// The band now, for readers: its low and high prices around `delay`.
    pub fn band_at(&self, delay: I80F48, now: i64) -> Option<(I80F48, I80F48)> {
        let previous = self.price()?;
        let (widened, known) =
            self.widened_at(previous, delay, now.saturating_sub(self.updated_at))?;
        known.or_else(|| band(delay, self.width_for(widened)))
    }

    /// Sets the limit to `max_move_bps_per_second` at unix time `now`,
    /// without counting the time before towards the next step. A limit
    /// that has recorded no price yet (an underlying not refreshed since it
    /// gained the field) starts from `last_good`, so its first refresh is
    /// limited too.
    /// `band_bps` is the band around the delay price (0: none); a new
    /// configuration starts no hold (the next refresh finds whether the
    /// band holds).
    pub fn configure(
        &mut self,
        max_move_bps_per_second: u32,
        band_bps: u32,
        last_good: Option<I80F48>,
        now: i64,
    ) {
        if from_parts(self.price) <= 0 {
            if let Some(price) = last_good {
                self.price = to_parts(price);
                self.feed = to_parts(price);
            }
        }
        self.max_move_bps_per_second = max_move_bps_per_second;
        // The same band keeps its hold and widening: re-sending the
        // configuration must not reopen a held market or undo the widening
        // a genuine move has earned.
        if self.band_bps != band_bps {
            self.widened_seconds = 0;
            self.held = 0;
        }
        self.band_bps = band_bps;
        self.updated_at = self.updated_at.max(now);
    }

    /// Records a refresh at `now` of the feeds' `feed`, with the band
    /// around `delay`, and returns the price it accepts. Kept without a
    /// limit too, so that a limit set later starts from the price accepted
    /// last.
    pub fn record(&mut self, feed: I80F48, now: i64, delay: I80F48) -> I80F48 {
        let (price, held, widened) = self.accepted(feed, now, delay);
        self.price = to_parts(price);
        self.feed = to_parts(feed);
        self.held = u8::from(held);
        self.widened_seconds = widened;
        // Never back: a clock that ran backwards would credit the gap twice.
        self.updated_at = self.updated_at.max(now);
        price
    }
}

/// A band's low and high prices.
type Band = (I80F48, I80F48);

/// The prices `width_bps` basis points either side of `delay` (the low one
/// kept positive); `None` where they do not fit.
fn band(delay: I80F48, width_bps: u32) -> Option<Band> {
    let step = delay
        .fast_mul_int(i128::from(width_bps))
        .and_then(|scaled| fixed_div_int(scaled, 10_000))?;
    Some((
        delay.saturating_sub(step).max(I80F48::DELTA),
        delay.checked_add(step)?,
    ))
}

/// How far `price` is from `delay`, in basis points of `delay`, rounded up
/// (saturating); `delay` is positive.
fn distance_bps(price: I80F48, delay: I80F48) -> u64 {
    let gap = if price >= delay {
        price - delay
    } else {
        delay - price
    };
    gap.fast_mul_int(10_000)
        .and_then(|scaled| div(scaled, delay))
        .and_then(|bps| bps.checked_ceil())
        .map_or(u64::MAX, |bps| bps.saturating_to_num::<u64>())
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

    /// No delay price yet: the band has nothing to hold around.
    const NO_DELAY: I80F48 = I80F48::ZERO;

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
        assert_eq!(limit.record(q(150.0), 1_000, NO_DELAY), q(150.0));
        for _ in 0..100 {
            assert_eq!(limit.record(q(750.0), 1_000, NO_DELAY), q(150.0));
        }
        // A clock running backwards (it does not) would move nothing either.
        assert_eq!(limit.record(q(750.0), 990, NO_DELAY), q(150.0));
    }

    #[test]
    fn without_a_limit_the_feed_stands_and_is_recorded() {
        let mut limit = PriceLimit::default();
        assert_eq!(limit.record(q(150.0), 1_000, NO_DELAY), q(150.0));
        assert_eq!(limit.record(q(750.0), 1_000, NO_DELAY), q(750.0));
        assert_eq!((limit.price(), limit.lagging_feed()), (None, None));
        // Set later, it starts from the price accepted last.
        limit.max_move_bps_per_second = 20;
        assert_eq!(limit.price(), Some(q(750.0)));
        let next = limit.record(q(150.0), 1_010, NO_DELAY);
        assert!((next - q(735.0)).abs() < q(1e-9), "{next}");
        assert_eq!(limit.lagging_feed(), Some(q(150.0)));
    }

    #[test]
    fn a_limit_never_fed_starts_from_the_last_good_price() {
        let mut limit = PriceLimit::default();
        limit.configure(20, 0, Some(q(150.0)), 1_000);
        assert_eq!(
            (limit.price(), limit.lagging_feed()),
            (Some(q(150.0)), None)
        );
        // Its first refresh is limited, and counts from the call.
        let first = limit.record(q(750.0), 1_005, NO_DELAY);
        assert!((first - q(151.5)).abs() < q(1e-9), "{first}");
        // Set again, it keeps what it has accepted and its clock.
        limit.configure(40, 0, Some(q(42.0)), 900);
        assert!((limit.price().unwrap() - q(151.5)).abs() < q(1e-9));
        assert_eq!(limit.updated_at, 1_005);
        // Nothing to start from: the feed stands at the first refresh.
        let mut empty = PriceLimit::default();
        empty.configure(20, 0, None, 1_000);
        assert_eq!(empty.price(), None);
        assert_eq!(empty.record(q(750.0), 1_010, NO_DELAY), q(750.0));
    }

    #[test]
    fn a_five_fold_print_takes_many_minutes_at_twenty_bp_a_second() {
        // A keeper refreshing every 15 s: each refresh moves at most 2 %.
        let mut limit = on(20);
        limit.record(q(150.0), 0, NO_DELAY);
        let mut now = 0;
        let mut last = q(150.0);
        while last < q(750.0) {
            now += 15;
            let next = limit.record(q(750.0), now, NO_DELAY);
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

    fn banded(rate: u32, band_bps: u32) -> PriceLimit {
        PriceLimit {
            max_move_bps_per_second: rate,
            band_bps,
            ..PriceLimit::default()
        }
    }

    fn close(a: I80F48, b: f64) -> bool {
        (a - q(b)).abs() < q(1e-6)
    }

    #[test]
    fn a_band_bounds_the_distance_a_held_print_reaches() {
        // 20 bp a second, a 20 % band around a delay price of 150: a
        // five-fold print refreshed every 15 s holds the band from the first
        // refresh; the price reaches its edge and then moves only as the
        // hold widens the band.
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        let mut now = 0;
        while now < 450 {
            now += 15;
            limit.record(q(750.0), now, delay);
            assert!(limit.is_held(), "at {now} s");
            assert!(limit.price().unwrap() <= limit.band_at(delay, now).unwrap().1);
        }
        // Widened at each of the 29 refreshes after the first, by 15 / 600
        // of the band's 2,000 bps.
        assert_eq!(limit.width_bps(), 2_000 + 29 * 50);
        assert!(close(limit.price().unwrap(), 201.75));
        assert_eq!(limit.band_at(delay, now), Some((q(98.25), q(201.75))));
        // The speed limit alone would be at 272 by then (1.02^30).
        let mut unbanded = on(20);
        unbanded.record(q(150.0), 0, NO_DELAY);
        for t in (15..=now).step_by(15) {
            unbanded.record(q(750.0), t, NO_DELAY);
        }
        assert!(unbanded.price().unwrap() > q(270.0));
    }

    #[test]
    fn a_print_shown_at_instants_widens_nothing() {
        // The feeds beyond the band at one refresh and back at the next,
        // over and over: held every other refresh, never widened.
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        for step in 1..=240 {
            let feed = if step % 2 == 1 { q(750.0) } else { q(150.0) };
            limit.record(feed, step * 60, delay);
            assert_eq!(limit.is_held(), step % 2 == 1);
        }
        assert_eq!(limit.width_bps(), 2_000);
    }

    #[test]
    fn refreshes_every_second_widen_a_narrow_band_at_the_full_rate() {
        // 5 % band: 25 s of a 30 % fall refreshed every second lose
        // nothing to rounding.
        let delay = q(150.0);
        let mut limit = banded(20, 500);
        limit.record(q(150.0), 0, delay);
        for t in 1..=600 {
            limit.record(q(105.0), t, delay);
        }
        // 599 seconds of widening after the first held refresh.
        assert_eq!(limit.widened_seconds, 599);
        assert_eq!(limit.width_bps(), 500 * (600 + 599) / 600);
        // A refresh a minute later is credited 15 s of it.
        limit.record(q(105.0), 660, delay);
        assert_eq!(limit.widened_seconds, 599 + 15);
    }

    #[test]
    fn reconfiguring_the_same_band_keeps_its_hold() {
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        for t in (15..=300).step_by(15) {
            limit.record(q(750.0), t, delay);
        }
        let widened = limit.widened_seconds;
        limit.configure(40, 2_000, None, 300);
        assert!(limit.is_held() && limit.widened_seconds == widened);
        limit.configure(40, 1_000, None, 300);
        assert!(!limit.is_held() && limit.widened_seconds == 0);
    }

    #[test]
    fn refreshes_in_the_same_second_neither_end_a_hold_nor_widen_it() {
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        for t in (15..=300).step_by(15) {
            limit.record(q(750.0), t, delay);
        }
        let (price, width) = (limit.price(), limit.width_bps());
        for _ in 0..10 {
            limit.record(q(750.0), 300, delay);
            assert!(limit.is_held());
        }
        assert_eq!((limit.price(), limit.width_bps()), (price, width));
    }

    #[test]
    fn the_band_narrows_after_a_hold_without_pulling_the_price_back() {
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        // A genuine 40 % rise: held, widened, then caught up.
        let mut now = 0;
        while limit.price().unwrap() < q(210.0) {
            now += 15;
            limit.record(q(210.0), now, delay);
            assert!(now < 3_600);
        }
        assert!(!limit.is_held());
        // The feeds stay there: the price stays, the band narrows only to
        // it (4,000 bps), and a further rise is held from there.
        for _ in 0..100 {
            now += 15;
            assert!(close(limit.record(q(210.0), now, delay), 210.0));
        }
        // (rounded up: a basis point of room at most)
        assert!(
            (4_000..=4_004).contains(&limit.width_bps()),
            "{}",
            limit.width_bps()
        );
        now += 15;
        let held = limit.record(q(250.0), now, delay);
        assert!(held >= q(210.0) && held < q(210.1), "{held}");
        assert!(limit.is_held());
        // The feeds come back: the hold ends, the price falls at the speed
        // limit, the band narrows behind it to its configured width.
        for _ in 0..200 {
            now += 15;
            limit.record(q(150.0), now, delay);
        }
        assert!(!limit.is_held());
        assert_eq!(limit.price(), Some(q(150.0)));
        assert_eq!(limit.width_bps(), 2_000);
    }

    #[test]
    fn a_genuine_crash_is_followed_as_the_band_widens() {
        // A 40 % fall, held: the band reaches it a widening after the edge.
        let delay = q(150.0);
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, delay);
        let mut now = 0;
        while limit.price().unwrap() > q(90.0) {
            now += 15;
            limit.record(q(90.0), now, delay);
            assert!(now < 3_600, "still {} an hour on", limit.price().unwrap());
        }
        // About twelve refreshes to the edge (120), then one widening.
        assert!(now <= 12 * 15 + BAND_WIDENING_SECONDS + 15, "{now}");
        assert!(!limit.is_held());
    }

    #[test]
    fn a_price_outside_a_new_band_is_held_where_it_is() {
        let mut limit = on(20);
        limit.record(q(300.0), 0, NO_DELAY);
        limit.configure(20, 2_000, None, 0);
        assert_eq!((limit.width_bps(), limit.held), (2_000, 0));
        // The band takes the price's distance rather than pull it back...
        assert!(close(limit.record(q(300.0), 10, q(150.0)), 300.0));
        assert!(!limit.is_held());
        assert!((10_000..=10_005).contains(&limit.width_bps()));
        // ... and stops it moving further out.
        let held = limit.record(q(400.0), 20, q(150.0));
        assert!(held >= q(300.0) && held < q(300.1), "{held}");
        assert!(limit.is_held());
    }

    #[test]
    fn without_a_band_or_a_delay_price_the_speed_limit_alone_stands() {
        let mut limit = on(20);
        limit.record(q(150.0), 0, q(150.0));
        assert!(close(limit.record(q(750.0), 10, q(150.0)), 153.0));
        let mut limit = banded(20, 2_000);
        limit.record(q(150.0), 0, NO_DELAY);
        for t in (10..=1_000).step_by(10) {
            limit.record(q(750.0), t, NO_DELAY);
        }
        assert!(!limit.is_held() && limit.price().unwrap() > q(700.0));
        // A band without a speed limit holds nothing: no price is kept.
        let mut off = banded(0, 2_000);
        assert_eq!(off.record(q(750.0), 10, q(150.0)), q(750.0));
        assert!(!off.is_held());
    }

    #[test]
    fn the_widening_is_bounded_and_extreme_prices_hold() {
        let mut limit = banded(20, MAX_BAND_BPS);
        limit.record(q(150.0), 0, q(150.0));
        limit.held = 1;
        limit.widened_seconds = u32::MAX;
        let (low, high) = limit.band_at(q(150.0), i64::MAX).unwrap();
        assert_eq!(low, I80F48::DELTA);
        assert!(high <= q(150.0 * 101.0), "{high}");
        assert!(limit.band_at(I80F48::MAX, 10).is_none());
        assert_eq!(distance_bps(I80F48::MAX, I80F48::DELTA), u64::MAX);
    }

    proptest! {
        #[test]
        fn a_banded_price_never_leaves_the_band_it_reached_nor_outruns_the_limit(
            delay in 1_000i64..1_000_000,
            feeds in proptest::collection::vec(1_000i64..10_000_000, 1..60),
            band in MIN_BAND_BPS..=MAX_BAND_BPS,
            rate in 1u32..=MAX_MOVE_BPS_PER_SECOND,
        ) {
            let delay = q(delay as f64 / 1e3);
            let mut limit = banded(rate, band);
            limit.record(delay, 0, delay);
            let mut now = 0;
            for feed in feeds {
                now += 15;
                let previous = limit.price().unwrap();
                let price = limit.record(q(feed as f64 / 1e3), now, delay);
                // The band this refresh left (widened by it, if held).
                let (low, high) = limit.band_at(delay, now).unwrap();
                // Within the band, or no further out than it was.
                prop_assert!(price >= low.min(previous) && price <= high.max(previous));
                prop_assert!(limit.width_bps() >= band);
                let allowance = previous.to_num::<f64>() * f64::from(rate) * 10.0 / 1e4;
                let moved = (price - previous).abs().to_num::<f64>();
                prop_assert!(moved <= allowance * (1.0 + 1e-9) + 1e-9);
            }
        }
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
            limit.record(start, 0, NO_DELAY);
            let mut now = 0;
            let mut bound = start.to_num::<f64>();
            let feed = q(feed as f64 / 1e3);
            let up = feed > start;
            for gap in gaps {
                now += gap;
                let step = f64::from(rate) * gap.min(MAX_STEP_SECONDS) as f64 / 1e4;
                bound = if up { bound * (1.0 + step) } else { bound * (1.0 - step) };
                let price = limit.record(feed, now, NO_DELAY).to_num::<f64>();
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
