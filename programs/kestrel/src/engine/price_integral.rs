//! The underlying's price integral, and the settlement average a dated
//! future takes from it.
//!
//! `refresh_underlying` records every price the underlying accepts, weighted
//! by publish times: each price holds from its publish time until the next
//! accepted one, but at most the underlying's maximum age (past that it was
//! stale, and the time is not covered). At every multiple of
//! [`CHECKPOINT_SECONDS`] the integral keeps a checkpoint (Σ price × seconds
//! and the seconds covered up to that instant) in a ring of
//! [`CHECKPOINTS`]. A checkpoint is written only by the first accepted
//! update at or after its instant, and updates are recorded in publish-time
//! order, so a checkpoint is final when written: nothing later changes it.
//!
//! A future's settlement price is the average between two checkpoints, the
//! window's start and its expiry (both on the checkpoint grid), which any
//! instruction touching the market copies out of the ring
//! ([`SettlementCapture::capture`]). Whoever captures, and whenever, copies
//! the same numbers while captures come within the ring's 16 minutes of
//! the window's start and of expiry (the keeper captures every minute): no
//! caller chooses which prices count, only the underlying's accepted
//! updates do. A capture missed for longer starts the average at the first
//! checkpoint still held (or ends it at the first held after expiry), and
//! an average that covers less than three quarters of its window runs on
//! past expiry until it does, so a stale feed delays the settlement.
//!
//! Prices are I80F48 (native quote per native base), stored as two `u64`
//! halves so the state can live in zero-copy account data; times are unix
//! seconds.
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::fastmul::mul_int;
use super::funding::{from_parts, to_parts};
use super::future::FutureError;

/// Checkpoints sit on multiples of this many seconds; a future's expiry and
/// settlement window are multiples of it.
pub const CHECKPOINT_SECONDS: i64 = 60;

/// Checkpoints the ring holds: a capture may come up to this many
/// checkpoints late and still find the one it needs.
pub const CHECKPOINTS: usize = 16;

/// The integral at one instant on the checkpoint grid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Checkpoint {
    /// Unix time, a multiple of [`CHECKPOINT_SECONDS`]; 0 for none.
    pub time: i64,
    /// Σ price × seconds held up to `time` (I80F48 halves).
    pub cumulative: [u64; 2],
    /// Seconds up to `time` that a fresh price covered.
    pub covered: i64,
}

// time 8 + cumulative 16 + covered 8.
const _: () = assert!(core::mem::size_of::<Checkpoint>() == 32);

/// The running integral of an underlying's accepted price.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PriceIntegral {
    /// The last price recorded (I80F48 halves), held from `last_time` on.
    pub last_price: [u64; 2],
    /// Its publish time; 0 before the first.
    pub last_time: i64,
    /// Σ price × seconds up to `last_time` (I80F48 halves).
    pub cumulative: [u64; 2],
    /// Seconds up to `last_time` that a fresh price covered.
    pub covered: i64,
    /// Checkpoint of time `t` at index `(t / CHECKPOINT_SECONDS) % CHECKPOINTS`.
    pub checkpoints: [Checkpoint; CHECKPOINTS],
}

// last price 16 + last time 8 + cumulative 16 + covered 8 + the ring.
pub const PRICE_INTEGRAL_SIZE: usize = 16 + 8 + 16 + 8 + CHECKPOINTS * 32;
const _: () = assert!(core::mem::size_of::<PriceIntegral>() == PRICE_INTEGRAL_SIZE);

/// Whole minutes since the epoch of a time not before it (unsigned: SBF
/// has an unsigned division, a signed one is a long inline expansion).
fn minutes(time: i64) -> i64 {
    match u64::try_from(time) {
        Ok(time) => (time / CHECKPOINT_SECONDS as u64) as i64,
        Err(_) => time.div_euclid(CHECKPOINT_SECONDS),
    }
}

fn ring_index(time: i64) -> usize {
    // CHECKPOINTS is a small power of two: the remainder is a mask.
    (minutes(time) as u64 % CHECKPOINTS as u64) as usize
}

/// Whether `time` lies on the checkpoint grid.
pub fn on_grid(time: i64) -> bool {
    time > 0 && time % CHECKPOINT_SECONDS == 0
}

impl Checkpoint {
    pub fn cumulative(&self) -> I80F48 {
        from_parts(self.cumulative)
    }

    /// The average price from `self` to `later`, rounded down; `None` when
    /// no second between them was covered.
    pub fn average_until(&self, later: &Checkpoint) -> Result<Option<I80F48>, FutureError> {
        let covered = later
            .covered
            .checked_sub(self.covered)
            .ok_or(FutureError::Overflow)?;
        if covered <= 0 {
            return Ok(None);
        }
        // Covered seconds are positive here, so the cast is exact.
        later
            .cumulative()
            .checked_sub(self.cumulative())
            .and_then(|sum| fixed_div_int(sum, covered as u64))
            .map(Some)
            .ok_or(FutureError::Overflow)
    }
}

impl PriceIntegral {
    pub fn last_price(&self) -> I80F48 {
        from_parts(self.last_price)
    }

    /// The integral at `time >= last_time`, the last price held for at most
    /// `max_hold` seconds of it.
    fn at(&self, time: i64, max_hold: u32) -> Result<Checkpoint, FutureError> {
        let held = time
            .checked_sub(self.last_time)
            .filter(|gap| *gap >= 0)
            .ok_or(FutureError::SampleOutOfOrder)?
            .min(i64::from(max_hold));
        // 64-bit-limb products: SBF has no wider multiply (`fastmul`).
        let cumulative = mul_int(self.last_price(), i128::from(held))
            .and_then(|part| from_parts(self.cumulative).checked_add(part))
            .ok_or(FutureError::Overflow)?;
        Ok(Checkpoint {
            time,
            cumulative: to_parts(cumulative),
            covered: self
                .covered
                .checked_add(held)
                .ok_or(FutureError::Overflow)?,
        })
    }

    /// Records `price`, accepted with `publish_time`, holding the previous
    /// price for at most `max_hold` seconds (the underlying's maximum age),
    /// and writes the checkpoint of every grid instant the previous price
    /// held through (the ring's worth at most: older ones would be
    /// overwritten at once). An update not newer than the last one recorded
    /// changes nothing (`Ok(false)`): the integral only moves forward. An
    /// error leaves it unchanged.
    ///
    /// # Errors
    /// `InvalidPrice` if `price <= 0`, `InvalidParameter` if
    /// `publish_time <= 0`, `Overflow` if the sum leaves I80F48.
    pub fn record(
        &mut self,
        price: I80F48,
        publish_time: i64,
        max_hold: u32,
    ) -> Result<bool, FutureError> {
        if price <= I80F48::ZERO {
            return Err(FutureError::InvalidPrice);
        }
        if publish_time <= 0 {
            return Err(FutureError::InvalidParameter);
        }
        if self.last_time != 0 && publish_time <= self.last_time {
            return Ok(false);
        }
        if self.last_time != 0 {
            // The integral at the new update first: it is the largest value
            // computed here (prices are positive), so once it fits every
            // checkpoint before it does, and nothing is written before an
            // error could occur.
            let now = self.at(publish_time, max_hold)?;
            // Grid instants in (last_time, publish_time], the last
            // CHECKPOINTS of them.
            let first = (minutes(self.last_time) + 1) * CHECKPOINT_SECONDS;
            let last = minutes(publish_time) * CHECKPOINT_SECONDS;
            let ring_span = (CHECKPOINTS as i64 - 1) * CHECKPOINT_SECONDS;
            let mut time = first.max(last.saturating_sub(ring_span));
            // One division for the first slot, then the ring in order.
            let mut index = ring_index(time);
            while time <= last {
                self.checkpoints[index] = self.at(time, max_hold)?;
                time += CHECKPOINT_SECONDS;
                index = (index + 1) % CHECKPOINTS;
            }
            self.cumulative = now.cumulative;
            self.covered = now.covered;
        }
        self.last_price = to_parts(price);
        self.last_time = publish_time;
        Ok(true)
    }

    /// The checkpoint of grid instant `time`, while the ring holds it.
    pub fn checkpoint(&self, time: i64) -> Option<Checkpoint> {
        let entry = self.checkpoints[ring_index(time)];
        (entry.time == time && on_grid(time)).then_some(entry)
    }

    /// The checkpoints the ring holds, oldest first.
    pub fn checkpoints_in_order(&self) -> impl Iterator<Item = Checkpoint> + '_ {
        let newest = self.checkpoints.iter().map(|c| c.time).max().unwrap_or(0);
        // One division for the newest slot; the others are steps back
        // around the ring (signed division is slow on SBF).
        let newest_index = ring_index(newest);
        (0..CHECKPOINTS).rev().filter_map(move |back| {
            let time = newest.checked_sub(back as i64 * CHECKPOINT_SECONDS)?;
            let entry = self.checkpoints[(newest_index + CHECKPOINTS - back) % CHECKPOINTS];
            (entry.time == time && time > 0).then_some(entry)
        })
    }
}

/// What a market has copied out of its underlying's integral for its
/// settlement: where its average starts and how far it has got.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SettlementCapture {
    /// The first checkpoint at or after the window's start (its start
    /// itself unless the first capture came later than the ring holds).
    pub start: Checkpoint,
    /// The last checkpoint copied: the expiry's, once it is written.
    pub end: Checkpoint,
}

const _: () = assert!(core::mem::size_of::<SettlementCapture>() == 64);

/// The share of its window a settlement average must cover (three
/// quarters): a refresher who leaves stretches uncovered on purpose picks
/// at most a quarter of the window away.
pub fn minimum_coverage(window_seconds: u32) -> i64 {
    i64::from(window_seconds) / 4 * 3
}

impl SettlementCapture {
    /// Seconds the captured average covers.
    pub fn covered_seconds(&self) -> i64 {
        if self.start.time == 0 {
            return 0;
        }
        self.end.covered.saturating_sub(self.start.covered)
    }

    /// Whether the average is final: it reaches `expiry` and covers at
    /// least three quarters of the window.
    pub fn is_complete(&self, expiry: i64, window_seconds: u32) -> bool {
        self.start.time != 0
            && self.end.time >= expiry
            && self.covered_seconds() >= minimum_coverage(window_seconds)
    }

    /// Copies what `integral` holds of the window `[expiry −
    /// window_seconds, expiry]`: the start once, then each later checkpoint
    /// up to the expiry's, and past it only while the average covers less
    /// than three quarters of the window. Returns whether anything changed. Deterministic
    /// in the integral: every capturer copies the same checkpoints.
    ///
    /// # Errors
    /// `InvalidParameter` if the window is not on the checkpoint grid.
    pub fn capture(
        &mut self,
        integral: &PriceIntegral,
        expiry: i64,
        window_seconds: u32,
    ) -> Result<bool, FutureError> {
        let window_start = expiry
            .checked_sub(i64::from(window_seconds))
            .ok_or(FutureError::Overflow)?;
        if !on_grid(expiry) || !on_grid(window_start) || window_seconds == 0 {
            return Err(FutureError::InvalidParameter);
        }
        let before = *self;
        for checkpoint in integral.checkpoints_in_order() {
            if checkpoint.time < window_start || checkpoint.time <= self.end.time {
                continue;
            }
            if self.start.time == 0 {
                self.start = checkpoint;
                self.end = checkpoint;
                continue;
            }
            if self.is_complete(expiry, window_seconds) {
                break;
            }
            self.end = checkpoint;
        }
        Ok(*self != before)
    }

    /// The settlement price once the average is complete; `None` before.
    pub fn settlement_price(
        &self,
        expiry: i64,
        window_seconds: u32,
    ) -> Result<Option<I80F48>, FutureError> {
        if !self.is_complete(expiry, window_seconds) {
            return Ok(None);
        }
        self.average_so_far()
    }

    /// The average captured so far; `None` while it covers no second.
    pub fn average_so_far(&self) -> Result<Option<I80F48>, FutureError> {
        if self.start.time == 0 {
            return Ok(None);
        }
        self.start.average_until(&self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOLD: u32 = 60;

    fn price(units: i64) -> I80F48 {
        I80F48::from_num(units)
    }

    fn avg(sum: i64, covered: i64) -> I80F48 {
        price(sum).checked_div_int(i128::from(covered)).unwrap()
    }

    fn empty() -> PriceIntegral {
        bytemuck::Zeroable::zeroed()
    }

    /// The integral of a step function of `(publish_time, price)` updates
    /// from `from` to `to`, each price held at most `HOLD` seconds, second by
    /// second: the definition the ring's arithmetic must match.
    fn integral_by_seconds(updates: &[(i64, i64)], from: i64, to: i64) -> (i64, i64) {
        let (mut sum, mut covered) = (0, 0);
        for second in from..to {
            let held = updates
                .iter()
                .rev()
                .find(|(time, _)| *time <= second)
                .filter(|(time, _)| second - time < i64::from(HOLD));
            if let Some((_, p)) = held {
                sum += p;
                covered += 1;
            }
        }
        (sum, covered)
    }

    #[test]
    fn a_checkpoint_holds_the_integral_at_its_instant() {
        let mut integral = empty();
        assert!(integral.record(price(100), 6_000, HOLD).unwrap());
        assert!(integral.record(price(110), 6_030, HOLD).unwrap());
        // Crosses 6_060: 100 × 30 + 110 × 30.
        assert!(integral.record(price(120), 6_090, HOLD).unwrap());
        let at = integral.checkpoint(6_060).unwrap();
        assert_eq!(at.cumulative(), price(100 * 30 + 110 * 30));
        assert_eq!(at.covered, 60);
        // A gap past the hold: 120 counts 60 s of the 150 to 6_240.
        assert!(integral.record(price(130), 6_240, HOLD).unwrap());
        let later = integral.checkpoint(6_180).unwrap();
        assert_eq!(later.covered, 60 + 30 + 60);
        let end = integral.checkpoint(6_240).unwrap();
        assert_eq!(
            (end.cumulative, end.covered),
            (later.cumulative, later.covered)
        );
        assert_eq!(
            at.average_until(&later).unwrap(),
            Some(avg(110 * 30 + 120 * 60, 90))
        );
    }

    #[test]
    fn an_older_or_equal_update_changes_nothing() {
        let mut integral = empty();
        integral.record(price(100), 6_000, HOLD).unwrap();
        integral.record(price(101), 6_100, HOLD).unwrap();
        let before = integral;
        assert!(!integral.record(price(500), 6_100, HOLD).unwrap());
        assert!(!integral.record(price(500), 6_050, HOLD).unwrap());
        assert_eq!(integral, before);
        assert_eq!(
            integral.record(price(0), 6_200, HOLD),
            Err(FutureError::InvalidPrice)
        );
        assert_eq!(integral, before);
    }

    #[test]
    fn an_overflow_is_an_error_and_changes_nothing() {
        let mut integral = empty();
        integral.record(I80F48::MAX / 2, 6_000, HOLD).unwrap();
        let before = integral;
        // Held 60 s the price leaves I80F48, at the update and at every
        // checkpoint the gap crosses alike.
        assert_eq!(
            integral.record(price(1), 6_200, HOLD),
            Err(FutureError::Overflow)
        );
        assert_eq!(integral, before);
    }

    #[test]
    fn a_long_gap_writes_only_the_ring_s_worth() {
        let mut integral = empty();
        integral.record(price(100), 60, HOLD).unwrap();
        integral.record(price(100), 60 * 1_000, HOLD).unwrap();
        let held: Vec<i64> = integral.checkpoints_in_order().map(|c| c.time).collect();
        let expected: Vec<i64> = (1_000 - CHECKPOINTS as i64 + 1..=1_000)
            .map(|k| k * 60)
            .collect();
        assert_eq!(held, expected);
        // The price held its maximum age, then nothing was covered.
        assert!(integral.checkpoints_in_order().all(|c| c.covered == 60));
    }

    fn window_of(start: i64, expiry: i64) -> u32 {
        (expiry - start) as u32
    }

    #[test]
    fn a_capture_starts_at_the_window_and_stops_at_expiry() {
        let (start, expiry) = (6_000, 6_600);
        let mut integral = empty();
        let mut capture = SettlementCapture::default();
        let mut time = 5_000;
        while time <= 7_000 {
            integral
                .record(price(100 + (time - 5_000) / 100), time, HOLD)
                .unwrap();
            capture
                .capture(&integral, expiry, window_of(start, expiry))
                .unwrap();
            time += 20;
        }
        assert_eq!(capture.start.time, start);
        assert_eq!(capture.end.time, expiry);
        assert_eq!(capture.covered_seconds(), 600);
        let updates: Vec<(i64, i64)> = (0..=100)
            .map(|k| 5_000 + 20 * k)
            .map(|t| (t, 100 + (t - 5_000) / 100))
            .collect();
        let (sum, covered) = integral_by_seconds(&updates, start, expiry);
        assert_eq!(covered, 600);
        assert_eq!(
            capture.settlement_price(expiry, 600).unwrap(),
            Some(avg(sum, covered))
        );
    }

    #[test]
    fn a_capture_later_than_the_ring_starts_at_its_oldest_checkpoint() {
        let (start, expiry) = (6_000, 6_600);
        let mut integral = empty();
        let mut eager = SettlementCapture::default();
        let mut updates = Vec::new();
        let mut time = 5_950;
        while time <= 7_000 {
            integral.record(price(time / 10), time, HOLD).unwrap();
            updates.push((time, time / 10));
            eager.capture(&integral, expiry, 600).unwrap();
            time += 50;
        }
        assert_eq!((eager.start.time, eager.end.time), (start, expiry));
        // First captured at 7_000: the ring (16 minutes, up to 6_960) no
        // longer holds 6_000, so the average starts at 6_060, still
        // complete at expiry and still the integral's.
        let mut late = SettlementCapture::default();
        late.capture(&integral, expiry, 600).unwrap();
        assert_eq!((late.start.time, late.end.time), (6_060, expiry));
        assert!(late.is_complete(expiry, 600));
        let (sum, covered) = integral_by_seconds(&updates, 6_060, expiry);
        assert_eq!(
            late.settlement_price(expiry, 600).unwrap(),
            Some(avg(sum, covered))
        );
    }

    #[test]
    fn an_uncovered_window_runs_on_past_expiry() {
        let (start, expiry) = (6_000, 6_600);
        let mut integral = empty();
        let mut capture = SettlementCapture::default();
        // One update at the start, then silence until after expiry: 60 of
        // 600 seconds covered.
        integral.record(price(100), 5_990, HOLD).unwrap();
        integral.record(price(100), 6_010, HOLD).unwrap();
        integral.record(price(200), 6_700, HOLD).unwrap();
        capture.capture(&integral, expiry, 600).unwrap();
        assert_eq!(capture.start.time, start);
        assert!(!capture.is_complete(expiry, 600));
        assert_eq!(capture.settlement_price(expiry, 600).unwrap(), None);
        // Fresh updates after expiry extend it until half is covered.
        let mut time = 6_700;
        while !capture.is_complete(expiry, 600) {
            time += 30;
            integral.record(price(200), time, HOLD).unwrap();
            capture.capture(&integral, expiry, 600).unwrap();
            assert!(time < 8_000, "coverage must come");
        }
        // It stops at the first checkpoint that covers three quarters.
        assert!(capture.end.time > expiry);
        assert!((450..510).contains(&capture.covered_seconds()));
    }

    #[test]
    fn the_window_must_sit_on_the_grid() {
        let integral = empty();
        let mut capture = SettlementCapture::default();
        assert_eq!(
            capture.capture(&integral, 6_630, 600),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(
            capture.capture(&integral, 6_600, 630),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(capture.capture(&integral, 6_600, 600), Ok(false));
    }

    proptest! {
        /// Whatever the updates (order, gaps, staleness) and whenever the
        /// captures happen, a complete capture is the exact integral over
        /// its span, its bounds sit on the grid inside the sampled range, and
        /// two capturers agree wherever both still had the start.
        #[test]
        fn captures_are_the_integral_whoever_takes_them(
            steps in proptest::collection::vec((1i64..120, 1i64..1_000, any::<bool>(), any::<bool>()), 1..120),
        ) {
            let (start, expiry) = (6_000i64, 6_600i64);
            let mut integral = empty();
            let mut every = SettlementCapture::default();
            let mut sometimes = SettlementCapture::default();
            let mut updates: Vec<(i64, i64)> = Vec::new();
            let mut time = 5_900;
            for (gap, p, duplicate, capture_now) in steps {
                time += gap;
                let recorded = integral.record(price(p), time, HOLD).unwrap();
                prop_assert!(recorded);
                updates.push((time, p));
                if duplicate {
                    prop_assert!(!integral.record(price(p + 1), time, HOLD).unwrap());
                }
                every.capture(&integral, expiry, 600).unwrap();
                if capture_now {
                    sometimes.capture(&integral, expiry, 600).unwrap();
                }
            }
            for capture in [every, sometimes] {
                if capture.start.time == 0 {
                    continue;
                }
                prop_assert!(capture.start.time >= start);
                prop_assert!(on_grid(capture.start.time) && on_grid(capture.end.time));
                let (sum, covered) = integral_by_seconds(&updates, capture.start.time, capture.end.time);
                prop_assert_eq!(capture.covered_seconds(), covered);
                let expected = (covered > 0).then(|| avg(sum, covered));
                prop_assert_eq!(capture.average_so_far().unwrap(), expected);
                if capture.is_complete(expiry, 600) {
                    prop_assert!(covered >= 450);
                    prop_assert!(capture.end.time >= expiry);
                }
            }
            // One who saw every checkpoint stops at the first that completes
            // the average; a capturer that missed some can only stop later.
            if every.start.time == start && sometimes.start.time == start
                && every.is_complete(expiry, 600) && sometimes.is_complete(expiry, 600) {
                prop_assert!(every.end.time <= sometimes.end.time);
                if every.end.time == sometimes.end.time {
                    prop_assert_eq!(every, sometimes);
                }
            }
        }
    }
}
