//! Dated futures: the basis estimate behind the mark, the settlement TWAP and
//! the cash value a position settles for.
//!
//! A dated future trades at `oracle + basis` until it expires, then settles in
//! cash at the time-weighted average of the underlying's accepted price over a
//! settlement window that ends at expiry. Both averages are sampled by a
//! permissionless crank, so every update here is idempotent within a second,
//! tolerates missed samples, and never panics: each step is checked and a
//! failure leaves the state as it was.
//!
//! Prices are I80F48 in native quote units per native base unit; times are
//! unix seconds. Stored state is plain integers (an I80F48 is kept as two
//! `u64` halves) so it can live in zero-copy account data.
use fixed::types::I80F48;

/// Fractional bits of I80F48: flooring a product of its bits is a shift by this.
const FRAC_BITS: u32 = 48;

/// Basis points in one: `max_basis_bps` is a fraction of the oracle in these.
const BPS: u64 = 10_000;

/// Why a futures computation refused to produce a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutureError {
    /// A checked step left the range of its type (I80F48, i64, i128 or u32).
    Overflow,
    /// A price (oracle, book mid or settlement price) was zero or negative.
    InvalidPrice,
    /// A parameter is out of its domain: a window that ends before it starts,
    /// a zero smoothing window, or a basis band wider than 100%.
    InvalidParameter,
    /// The state holds a sample later than the expiry it is asked to close at.
    SampleOutOfOrder,
    /// The settlement window has closed: `now` is after expiry.
    WindowClosed,
    /// The settlement window was never sampled, so there is no price.
    NoSamples,
}

impl core::fmt::Display for FutureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let message = match self {
            Self::Overflow => "arithmetic overflow",
            Self::InvalidPrice => "price must be positive",
            Self::InvalidParameter => "parameter out of range",
            Self::SampleOutOfOrder => "a sample is recorded after this expiry",
            Self::WindowClosed => "the settlement window has closed",
            Self::NoSamples => "the settlement window has no samples",
        };
        f.write_str(message)
    }
}

/// What a settlement TWAP sample did; only `Recorded` changed the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleOutcome {
    /// The settlement window has not opened yet: nothing to record.
    BeforeWindow,
    /// This second (or a later one) is already sampled: a second keeper in
    /// the same second does nothing, and is not an error.
    AlreadySampled,
    /// The price was recorded.
    Recorded,
}

/// An I80F48 from the `[u64; 2]` (lo, hi) it is stored as: accounts are only
/// 8-byte aligned, so 16-byte fields are kept as two halves.
fn from_parts(parts: [u64; 2]) -> I80F48 {
    I80F48::from_bits((u128::from(parts[0]) | (u128::from(parts[1]) << 64)) as i128)
}

/// The `[u64; 2]` (lo, hi) halves an I80F48 is stored as.
fn to_parts(value: I80F48) -> [u64; 2] {
    let bits = value.to_bits() as u128;
    [bits as u64, (bits >> 64) as u64]
}

/// Prices (oracle, mid, settlement) are positive: a zero or negative one is a
/// broken feed, and accepting it would let it into an average.
fn check_price(price: I80F48) -> Result<I80F48, FutureError> {
    if price > I80F48::ZERO {
        Ok(price)
    } else {
        Err(FutureError::InvalidPrice)
    }
}

/// `value × num / den` rounded toward zero, for `num <= den`.
///
/// The result is no larger in magnitude than `value`, so it cannot leave
/// I80F48, but `value × num` can: splitting `value = q·den + r` (truncated
/// division, `r` of `value`'s sign) gives `q·num + r·num/den`, where
/// `|q·num| <= |value|` and `|r·num| < den²`, all in range of i128. Both terms
/// share a sign and `q·num` is whole, so truncating the second truncates the
/// sum: the result is exactly `trunc(value × num / den)`.
fn scale_down(value: I80F48, num: u64, den: u64) -> Result<I80F48, FutureError> {
    if den == 0 || num > den {
        return Err(FutureError::InvalidParameter);
    }
    let bits = value.to_bits();
    let (num, den) = (i128::from(num), i128::from(den));
    let quotient = bits.checked_div(den).ok_or(FutureError::Overflow)?;
    let remainder = bits.checked_rem(den).ok_or(FutureError::Overflow)?;
    let whole = quotient.checked_mul(num).ok_or(FutureError::Overflow)?;
    let part = remainder
        .checked_mul(num)
        .and_then(|r| r.checked_div(den))
        .ok_or(FutureError::Overflow)?;
    whole
        .checked_add(part)
        .map(I80F48::from_bits)
        .ok_or(FutureError::Overflow)
}

/// The widest basis allowed at `oracle`: `oracle × max_basis_bps / 10_000`,
/// rounded toward zero so the band is never wider than stated.
fn basis_band(oracle: I80F48, max_basis_bps: u32) -> Result<I80F48, FutureError> {
    // Wider than 100% would let a negative basis take the mark to zero or below.
    if u64::from(max_basis_bps) > BPS {
        return Err(FutureError::InvalidParameter);
    }
    scale_down(oracle, u64::from(max_basis_bps), BPS)
}

/// `value` clamped into `[-band, band]` (`band >= 0`). Not `Ord::clamp`,
/// which panics on an inverted range.
fn clamp_to_band(value: I80F48, band: I80F48) -> Result<I80F48, FutureError> {
    let low = band.checked_neg().ok_or(FutureError::Overflow)?;
    Ok(value.max(low).min(band))
}

/// The time-weighted average of the underlying's accepted price over the
/// settlement window `[expiry - window_seconds, expiry]`, stored in a market.
///
/// The crank samples whenever it runs; between samples the last price is held
/// (a step function), so a missed sample only holds the previous price longer.
/// Coverage starts at the first sample: the average is over
/// `[first_time, expiry]`, and the program can require a minimum
/// [`coverage_seconds`](Self::coverage_seconds) before settling.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SettlementTwap {
    /// Σ price × seconds held over `[first_time, last_time]` (I80F48 parts):
    /// kept exact so the only rounding is the final division.
    pub sum: [u64; 2],
    /// The last accepted price (I80F48 parts), held from `last_time` on.
    pub last_price: [u64; 2],
    /// Unix time of the first sample: where coverage starts.
    pub first_time: i64,
    /// Unix time of the last sample.
    pub last_time: i64,
    /// Samples recorded; 0 means the window has not been sampled.
    pub samples: u32,
    /// Explicit so the struct has no padding hole; always 0.
    pub padding: u32,
}

// sum 16 + last_price 16 + first_time 8 + last_time 8 + samples 4 + padding 4.
const _: () = assert!(core::mem::size_of::<SettlementTwap>() == 56);

impl SettlementTwap {
    /// Σ price × seconds over `[first_time, last_time]`.
    pub fn sum(&self) -> I80F48 {
        from_parts(self.sum)
    }

    /// The last accepted price (zero before the first sample).
    pub fn last_price(&self) -> I80F48 {
        from_parts(self.last_price)
    }

    /// Records `price` at `now` if `now` is in `[window_start, expiry]` and
    /// later than the last sample.
    ///
    /// The first sample starts coverage; each later one adds
    /// `last_price × (now − last_time)` to the sum and becomes the last.
    /// `window_start` and `expiry` must be the market's fixed values. An error
    /// leaves the state unchanged.
    ///
    /// # Errors
    /// `InvalidParameter` if `window_start > expiry`, `InvalidPrice` if
    /// `price <= 0`, `WindowClosed` if `now > expiry`, `Overflow` if the sum
    /// or the sample count leaves its range.
    pub fn sample(
        &mut self,
        window_start: i64,
        expiry: i64,
        now: i64,
        price: I80F48,
    ) -> Result<SampleOutcome, FutureError> {
        if window_start > expiry {
            return Err(FutureError::InvalidParameter);
        }
        check_price(price)?;
        if now < window_start {
            return Ok(SampleOutcome::BeforeWindow);
        }
        if now > expiry {
            return Err(FutureError::WindowClosed);
        }
        if self.samples == 0 {
            *self = Self {
                sum: to_parts(I80F48::ZERO),
                last_price: to_parts(price),
                first_time: now,
                last_time: now,
                samples: 1,
                padding: 0,
            };
            return Ok(SampleOutcome::Recorded);
        }
        if now <= self.last_time {
            return Ok(SampleOutcome::AlreadySampled);
        }
        let held = now
            .checked_sub(self.last_time)
            .and_then(|seconds| self.last_price().checked_mul_int(i128::from(seconds)))
            .ok_or(FutureError::Overflow)?;
        let sum = self.sum().checked_add(held).ok_or(FutureError::Overflow)?;
        let samples = self.samples.checked_add(1).ok_or(FutureError::Overflow)?;
        // Everything is computed before anything is written: an error above
        // leaves the state as it was.
        self.sum = to_parts(sum);
        self.last_price = to_parts(price);
        self.last_time = now;
        self.samples = samples;
        Ok(SampleOutcome::Recorded)
    }

    /// The settlement price: the last price held to `expiry`, the total
    /// divided by `expiry − first_time`, rounded down (never above the exact
    /// average, never outside the sampled prices' range). One sample exactly
    /// at expiry gives that price.
    ///
    /// The program calls this once `now >= expiry`; before, it is the price
    /// the window would settle at if no further sample came.
    ///
    /// # Errors
    /// `NoSamples` if the window was never sampled, `SampleOutOfOrder` if a
    /// sample is later than `expiry`, `Overflow` if the total leaves I80F48.
    pub fn settlement_price(&self, expiry: i64) -> Result<I80F48, FutureError> {
        if self.samples == 0 {
            return Err(FutureError::NoSamples);
        }
        if expiry < self.last_time {
            return Err(FutureError::SampleOutOfOrder);
        }
        let last_price = self.last_price();
        // first_time <= last_time <= expiry, so the span is not negative.
        let span = expiry
            .checked_sub(self.first_time)
            .ok_or(FutureError::Overflow)?;
        if span == 0 {
            // Only one sample can be at expiry itself, and it is the whole window.
            return Ok(last_price);
        }
        let tail = expiry
            .checked_sub(self.last_time)
            .and_then(|seconds| last_price.checked_mul_int(i128::from(seconds)))
            .ok_or(FutureError::Overflow)?;
        // The total is positive, so truncating division rounds down.
        self.sum()
            .checked_add(tail)
            .and_then(|total| total.checked_div_int(i128::from(span)))
            .ok_or(FutureError::Overflow)
    }

    /// Seconds of the window the settlement price covers, `expiry − first_time`;
    /// 0 with no samples (or a first sample after `expiry`), so the program
    /// can require a minimum coverage before settling.
    pub fn coverage_seconds(&self, expiry: i64) -> i64 {
        if self.samples == 0 {
            return 0;
        }
        expiry.saturating_sub(self.first_time).max(0)
    }
}

/// The futures premium over the oracle: a time-weighted average of
/// `book mid − oracle` samples, each clamped to ± `max_basis_bps` of its
/// oracle. The mark is `oracle + basis`, with the basis fading to zero over
/// the last `convergence_seconds` before expiry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BasisEstimate {
    /// The averaged basis (I80F48 parts), native quote per native base.
    pub basis: [u64; 2],
    /// Unix time of the last sample: the next one weighs the time since.
    pub last_update: i64,
    /// Samples recorded; 0 means the next sample sets the basis directly.
    pub samples: u32,
    /// Explicit so the struct has no padding hole; always 0.
    pub padding: u32,
}

// basis 16 + last_update 8 + samples 4 + padding 4.
const _: () = assert!(core::mem::size_of::<BasisEstimate>() == 32);

impl BasisEstimate {
    /// The averaged basis, as last sampled (not re-clamped).
    pub fn basis(&self) -> I80F48 {
        from_parts(self.basis)
    }

    /// Moves the basis toward this sample by `min(dt, window) / window`, where
    /// `dt` is the time since the last sample: a sample after a full window
    /// replaces the basis, a quick one barely moves it. The first sample sets
    /// it directly. The sample is `mid − oracle` clamped to ± `max_basis_bps`
    /// of `oracle`; `mid = None` (an empty or one-sided book) samples zero,
    /// so the basis decays toward 0: no book, no premium. `now <= last update`
    /// changes nothing. The step rounds toward zero, so it never overshoots
    /// the sample. An error leaves the state unchanged.
    ///
    /// # Errors
    /// `InvalidPrice` if `oracle` or `mid` is not positive,
    /// `InvalidParameter` if `window_seconds == 0` or
    /// `max_basis_bps > 10_000`, `Overflow` if a step leaves its range.
    pub fn sample(
        &mut self,
        now: i64,
        oracle: I80F48,
        mid: Option<I80F48>,
        max_basis_bps: u32,
        window_seconds: u32,
    ) -> Result<(), FutureError> {
        check_price(oracle)?;
        if window_seconds == 0 {
            return Err(FutureError::InvalidParameter);
        }
        let band = basis_band(oracle, max_basis_bps)?;
        let target = match mid {
            Some(mid) => {
                let premium = check_price(mid)?
                    .checked_sub(oracle)
                    .ok_or(FutureError::Overflow)?;
                clamp_to_band(premium, band)?
            }
            None => I80F48::ZERO,
        };
        let basis = if self.samples == 0 {
            target
        } else {
            if now <= self.last_update {
                return Ok(());
            }
            let elapsed = now
                .checked_sub(self.last_update)
                .and_then(|dt| u64::try_from(dt).ok())
                .ok_or(FutureError::Overflow)?;
            let window = u64::from(window_seconds);
            let current = self.basis();
            let gap = target.checked_sub(current).ok_or(FutureError::Overflow)?;
            let step = scale_down(gap, elapsed.min(window), window)?;
            current.checked_add(step).ok_or(FutureError::Overflow)?
        };
        let samples = self.samples.checked_add(1).ok_or(FutureError::Overflow)?;
        self.basis = to_parts(basis);
        self.last_update = now;
        self.samples = samples;
        Ok(())
    }

    /// The futures mark: `oracle + basis × min(1, time_to_expiry /
    /// convergence_seconds)`, with the basis re-clamped to ± `max_basis_bps`
    /// of the current `oracle` (an average of old samples must not outrun a
    /// moved oracle) and `time_to_expiry = max(0, expiry − now)`. At or after
    /// expiry the mark is exactly the oracle; `convergence_seconds = 0` keeps
    /// the full basis until expiry. Always within ± `max_basis_bps` of the
    /// oracle (the band and the fade both round toward zero).
    ///
    /// # Errors
    /// `InvalidPrice` if `oracle` is not positive, `InvalidParameter` if
    /// `max_basis_bps > 10_000`, `Overflow` if a step leaves its range.
    pub fn mark_price(
        &self,
        now: i64,
        expiry: i64,
        oracle: I80F48,
        max_basis_bps: u32,
        convergence_seconds: u32,
    ) -> Result<I80F48, FutureError> {
        check_price(oracle)?;
        let band = basis_band(oracle, max_basis_bps)?;
        if now >= expiry {
            return Ok(oracle);
        }
        let basis = clamp_to_band(self.basis(), band)?;
        let time_to_expiry = expiry
            .checked_sub(now)
            .and_then(|t| u64::try_from(t).ok())
            .ok_or(FutureError::Overflow)?;
        let convergence = u64::from(convergence_seconds);
        let applied = if time_to_expiry >= convergence {
            basis
        } else {
            scale_down(basis, time_to_expiry, convergence)?
        };
        oracle.checked_add(applied).ok_or(FutureError::Overflow)
    }
}

/// The native quote a position of `base_lots` is worth at `price`:
/// `base_lots × base_lot_size × price`, rounded down (toward −∞).
///
/// A long receives the floor and a short pays the ceiling, so over positions
/// whose lots sum to zero the values sum to at most 0 and at least −(number
/// of positions): the exchange never pays out more than it holds. The product
/// is exact (i128 on I80F48's bits); only the final floor rounds.
///
/// # Errors
/// `InvalidPrice` if `price <= 0`, `Overflow` if the value leaves i64.
pub fn settlement_value(
    base_lots: i64,
    base_lot_size: u64,
    price: I80F48,
) -> Result<i64, FutureError> {
    check_price(price)?;
    // |lots| <= 2^63 and size < 2^64, so the quantity fits i128 (< 2^127).
    let quantity = i128::from(base_lots)
        .checked_mul(i128::from(base_lot_size))
        .ok_or(FutureError::Overflow)?;
    // If this overflows, |value| >= 2^127 / 2^48 = 2^79, past i64 anyway.
    let product = quantity
        .checked_mul(price.to_bits())
        .ok_or(FutureError::Overflow)?;
    // An arithmetic right shift is floor division by 2^48: toward −∞.
    i64::try_from(product >> FRAC_BITS).map_err(|_| FutureError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `num / den` as I80F48 (exact for power-of-two `den`), without floats.
    fn fx(num: i64, den: i64) -> I80F48 {
        I80F48::from_num(num)
            .checked_div_int(i128::from(den))
            .unwrap()
    }

    const EXPIRY: i64 = 1_700_000_000;

    // ---- parts ----

    #[test]
    fn parts_round_trip() {
        for value in [
            I80F48::ZERO,
            I80F48::DELTA,
            -I80F48::DELTA,
            fx(3, 2),
            fx(-7, 4),
            I80F48::MAX,
            I80F48::MIN,
        ] {
            assert_eq!(from_parts(to_parts(value)), value);
        }
        // lo then hi: -1 is all ones in both halves, 1.0 is 2^48 in the low half.
        assert_eq!(to_parts(-I80F48::DELTA), [u64::MAX, u64::MAX]);
        assert_eq!(to_parts(I80F48::ONE), [1 << 48, 0]);
    }

    // ---- settlement TWAP: worked numbers ----

    #[test]
    fn twap_two_samples_half_window_each() {
        // 1.0 held for the first 300 s, 2.0 for the last 300 s: 1.5.
        let mut twap = SettlementTwap::default();
        let start = EXPIRY - 600;
        assert_eq!(
            twap.sample(start, EXPIRY, start, fx(1, 1)),
            Ok(SampleOutcome::Recorded)
        );
        assert_eq!(
            twap.sample(start, EXPIRY, EXPIRY - 300, fx(2, 1)),
            Ok(SampleOutcome::Recorded)
        );
        assert_eq!(twap.settlement_price(EXPIRY), Ok(fx(3, 2)));
        assert_eq!(twap.coverage_seconds(EXPIRY), 600);
        // A sample exactly at expiry carries no weight: still 1.5.
        assert_eq!(
            twap.sample(start, EXPIRY, EXPIRY, fx(100, 1)),
            Ok(SampleOutcome::Recorded)
        );
        assert_eq!(twap.settlement_price(EXPIRY), Ok(fx(3, 2)));
        assert_eq!(twap.samples, 3);
    }

    #[test]
    fn twap_missed_samples_hold_the_last_price() {
        // 1.0 from −600 to −150 (450 s), 3.0 for the last 150 s: 900 / 600.
        let mut twap = SettlementTwap::default();
        let start = EXPIRY - 600;
        twap.sample(start, EXPIRY, start, fx(1, 1)).unwrap();
        twap.sample(start, EXPIRY, EXPIRY - 150, fx(3, 1)).unwrap();
        assert_eq!(twap.sum(), fx(450, 1));
        assert_eq!(twap.settlement_price(EXPIRY), Ok(fx(3, 2)));
    }

    #[test]
    fn twap_coverage_starts_at_first_sample() {
        let mut twap = SettlementTwap::default();
        let start = EXPIRY - 600;
        twap.sample(start, EXPIRY, EXPIRY - 200, fx(2, 1)).unwrap();
        twap.sample(start, EXPIRY, EXPIRY - 100, fx(4, 1)).unwrap();
        assert_eq!(twap.coverage_seconds(EXPIRY), 200);
        assert_eq!(twap.settlement_price(EXPIRY), Ok(fx(3, 1)));
    }

    #[test]
    fn twap_single_sample_at_expiry_is_that_price() {
        let mut twap = SettlementTwap::default();
        let price = fx(12_345, 64);
        twap.sample(EXPIRY - 600, EXPIRY, EXPIRY, price).unwrap();
        assert_eq!(twap.coverage_seconds(EXPIRY), 0);
        assert_eq!(twap.settlement_price(EXPIRY), Ok(price));
    }

    #[test]
    fn twap_window_edges_and_duplicates() {
        let start = EXPIRY - 600;
        let mut twap = SettlementTwap::default();
        assert_eq!(
            twap.sample(start, EXPIRY, start - 1, fx(1, 1)),
            Ok(SampleOutcome::BeforeWindow)
        );
        assert_eq!(twap, SettlementTwap::default());
        assert_eq!(twap.settlement_price(EXPIRY), Err(FutureError::NoSamples));
        assert_eq!(twap.coverage_seconds(EXPIRY), 0);
        assert_eq!(
            twap.sample(start, EXPIRY, EXPIRY + 1, fx(1, 1)),
            Err(FutureError::WindowClosed)
        );
        twap.sample(start, EXPIRY, start + 10, fx(1, 1)).unwrap();
        let before = twap;
        // A second keeper in the same second, and a stale one: no change.
        assert_eq!(
            twap.sample(start, EXPIRY, start + 10, fx(9, 1)),
            Ok(SampleOutcome::AlreadySampled)
        );
        assert_eq!(
            twap.sample(start, EXPIRY, start + 5, fx(9, 1)),
            Ok(SampleOutcome::AlreadySampled)
        );
        assert_eq!(twap, before);
        // A sample later than the expiry asked about.
        assert_eq!(
            twap.settlement_price(start + 9),
            Err(FutureError::SampleOutOfOrder)
        );
    }

    #[test]
    fn twap_rejects_bad_inputs() {
        let mut twap = SettlementTwap::default();
        for price in [I80F48::ZERO, -I80F48::DELTA] {
            assert_eq!(
                twap.sample(EXPIRY - 600, EXPIRY, EXPIRY - 600, price),
                Err(FutureError::InvalidPrice)
            );
        }
        assert_eq!(
            twap.sample(EXPIRY + 1, EXPIRY, EXPIRY, fx(1, 1)),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(twap, SettlementTwap::default());
    }

    #[test]
    fn twap_overflow_is_an_error_and_changes_nothing() {
        let mut twap = SettlementTwap::default();
        let (start, expiry) = (0, i64::MAX);
        twap.sample(start, expiry, 0, I80F48::MAX).unwrap();
        let before = twap;
        assert_eq!(
            twap.sample(start, expiry, 2, fx(1, 1)),
            Err(FutureError::Overflow)
        );
        assert_eq!(twap, before);
        assert_eq!(twap.settlement_price(expiry), Err(FutureError::Overflow));
        // Time differences that leave i64.
        let mut twap = SettlementTwap::default();
        twap.sample(i64::MIN, i64::MAX, i64::MIN, I80F48::DELTA)
            .unwrap();
        assert_eq!(
            twap.sample(i64::MIN, i64::MAX, i64::MAX, I80F48::DELTA),
            Err(FutureError::Overflow)
        );
        assert_eq!(twap.settlement_price(i64::MAX), Err(FutureError::Overflow));
    }

    // ---- basis: worked numbers ----

    #[test]
    fn basis_worked_example() {
        // Oracle 100, mid 101, band 50 bps = 0.5: the sample clamps to 0.5.
        let oracle = fx(100, 1);
        let mut basis = BasisEstimate::default();
        basis
            .sample(1_000, oracle, Some(fx(101, 1)), 50, 600)
            .unwrap();
        assert_eq!(basis.basis(), fx(1, 2));
        // An empty book for half the window halves it.
        basis.sample(1_300, oracle, None, 50, 600).unwrap();
        assert_eq!(basis.basis(), fx(1, 4));
        // A mid of 99.75 for a full window replaces it (−0.25, inside the band).
        basis
            .sample(2_000, oracle, Some(fx(399, 4)), 50, 600)
            .unwrap();
        assert_eq!(basis.basis(), fx(-1, 4));
        // Same second: nothing.
        let before = basis;
        basis
            .sample(2_000, oracle, Some(fx(200, 1)), 50, 600)
            .unwrap();
        assert_eq!(basis, before);
        assert_eq!(basis.samples, 3);

        // Mark: full basis until the last 400 s, half at 200 s, oracle at expiry.
        let expiry = 10_000;
        assert_eq!(
            basis.mark_price(expiry - 1_000, expiry, oracle, 50, 400),
            Ok(fx(399, 4))
        );
        assert_eq!(
            basis.mark_price(expiry - 200, expiry, oracle, 50, 400),
            Ok(fx(799, 8))
        );
        assert_eq!(
            basis.mark_price(expiry, expiry, oracle, 50, 400),
            Ok(oracle)
        );
        assert_eq!(
            basis.mark_price(expiry + 5, expiry, oracle, 50, 400),
            Ok(oracle)
        );
        // Re-clamped to the current oracle: at 20, 50 bps is 0.1.
        assert_eq!(
            basis.mark_price(0, expiry, fx(20, 1), 50, 400),
            Ok(fx(20, 1) - fx(1, 10))
        );
        // No convergence period: full basis until expiry.
        assert_eq!(
            basis.mark_price(expiry - 1, expiry, oracle, 50, 0),
            Ok(fx(399, 4))
        );
    }

    #[test]
    fn basis_rejects_bad_inputs() {
        let mut basis = BasisEstimate::default();
        let one = fx(1, 1);
        assert_eq!(
            basis.sample(1, I80F48::ZERO, None, 50, 600),
            Err(FutureError::InvalidPrice)
        );
        assert_eq!(
            basis.sample(1, one, Some(-one), 50, 600),
            Err(FutureError::InvalidPrice)
        );
        assert_eq!(
            basis.sample(1, one, None, 50, 0),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(
            basis.sample(1, one, None, 10_001, 600),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(basis, BasisEstimate::default());
        assert_eq!(
            basis.mark_price(0, 10, one, 10_001, 5),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(
            basis.mark_price(0, 10, -one, 50, 5),
            Err(FutureError::InvalidPrice)
        );
        // A mark at 100% band of a maximal oracle leaves I80F48.
        let mut wide = BasisEstimate::default();
        wide.sample(0, I80F48::MAX, Some(I80F48::MAX), 10_000, 1)
            .unwrap();
        wide.basis = to_parts(I80F48::MAX);
        assert_eq!(
            wide.mark_price(0, 10, I80F48::MAX, 10_000, 0),
            Err(FutureError::Overflow)
        );
    }

    #[test]
    fn scale_down_is_exact_truncation() {
        let value = I80F48::from_bits(-7);
        assert_eq!(scale_down(value, 1, 2), Ok(I80F48::from_bits(-3)));
        assert_eq!(scale_down(I80F48::MIN, 1, 1), Ok(I80F48::MIN));
        assert_eq!(
            scale_down(I80F48::MAX, u64::MAX - 1, u64::MAX),
            Ok(I80F48::from_bits(
                i128::MAX - i128::MAX / i128::from(u64::MAX) - 1
            ))
        );
        assert_eq!(scale_down(value, 2, 1), Err(FutureError::InvalidParameter));
        assert_eq!(scale_down(value, 0, 0), Err(FutureError::InvalidParameter));
    }

    // ---- settlement value: worked numbers ----

    #[test]
    fn settlement_value_rounds_toward_negative_infinity() {
        // 3 lots × 10 × 1.25 = 37.5: a long gets 37, a short pays 38.
        assert_eq!(settlement_value(3, 10, fx(5, 4)), Ok(37));
        assert_eq!(settlement_value(-3, 10, fx(5, 4)), Ok(-38));
        assert_eq!(settlement_value(4, 10, fx(5, 4)), Ok(50));
        assert_eq!(settlement_value(-4, 10, fx(5, 4)), Ok(-50));
        assert_eq!(settlement_value(0, 10, fx(5, 4)), Ok(0));
        // The smallest price: a short of one native unit still pays 1.
        assert_eq!(settlement_value(-1, 1, I80F48::DELTA), Ok(-1));
        assert_eq!(settlement_value(1, 1, I80F48::DELTA), Ok(0));
        assert_eq!(
            settlement_value(1, 1, I80F48::ZERO),
            Err(FutureError::InvalidPrice)
        );
        assert_eq!(
            settlement_value(i64::MAX, u64::MAX, I80F48::MAX),
            Err(FutureError::Overflow)
        );
        assert_eq!(
            settlement_value(i64::MAX, 2, fx(1, 1)),
            Err(FutureError::Overflow)
        );
        assert_eq!(settlement_value(i64::MIN, 1, fx(1, 1)), Ok(i64::MIN));
    }

    // ---- properties ----

    /// Prices from 2^-48 to 2^32 (bits 1..=2^80): wide, but Σ price × seconds
    /// over the windows below stays inside I80F48.
    fn price() -> impl Strategy<Value = I80F48> {
        (1i128..=1i128 << 80).prop_map(I80F48::from_bits)
    }

    /// Up to 24 samples as (offset into the window, price), any order.
    fn raw_samples(window: i64) -> impl Strategy<Value = Vec<(i64, I80F48)>> {
        proptest::collection::vec((0..=window, price()), 1..24)
    }

    /// The samples the TWAP accepts: strictly later than the last accepted.
    fn accepted(samples: &[(i64, I80F48)]) -> Vec<(i64, I80F48)> {
        let mut out: Vec<(i64, I80F48)> = Vec::new();
        for &(t, p) in samples {
            match out.last() {
                Some(&(last, _)) if t <= last => {}
                _ => out.push((t, p)),
            }
        }
        out
    }

    fn run_twap(start: i64, expiry: i64, samples: &[(i64, I80F48)]) -> SettlementTwap {
        let mut twap = SettlementTwap::default();
        for &(t, p) in samples {
            twap.sample(start, expiry, start + t, p).unwrap();
        }
        twap
    }

    /// The exact rational average, floored, from the accepted samples' bits.
    fn reference_twap(start: i64, expiry: i64, samples: &[(i64, I80F48)]) -> I80F48 {
        let first = start + samples[0].0;
        let mut total: i128 = 0;
        for (i, &(t, p)) in samples.iter().enumerate() {
            let until = samples.get(i + 1).map_or(expiry, |&(next, _)| start + next);
            total += p.to_bits() * i128::from(until - (start + t));
        }
        if expiry == first {
            return samples[0].1;
        }
        I80F48::from_bits(total.div_euclid(i128::from(expiry - first)))
    }

    fn bounds(samples: &[(i64, I80F48)]) -> (I80F48, I80F48) {
        let min = samples.iter().map(|s| s.1).min().unwrap();
        let max = samples.iter().map(|s| s.1).max().unwrap();
        (min, max)
    }

    proptest! {
        #[test]
        fn twap_constant_price_is_exact(
            window in 1i64..=1_000_000,
            times in proptest::collection::vec(0i64..=1_000_000, 1..24),
            p in price(),
        ) {
            let start = EXPIRY - window;
            let samples: Vec<_> = times.iter().map(|&t| (t % (window + 1), p)).collect();
            let twap = run_twap(start, EXPIRY, &samples);
            prop_assert_eq!(twap.settlement_price(EXPIRY), Ok(p));
        }

        #[test]
        fn twap_matches_exact_average_within_bounds(
            window in 0i64..=1_000_000,
            raw in raw_samples(1_000_000),
        ) {
            let start = EXPIRY - window;
            let raw: Vec<_> = raw.iter().map(|&(t, p)| (t % (window + 1), p)).collect();
            let samples = accepted(&raw);
            let twap = run_twap(start, EXPIRY, &raw);
            prop_assert_eq!(twap.samples as usize, samples.len());
            let price = twap.settlement_price(EXPIRY).unwrap();
            prop_assert_eq!(price, reference_twap(start, EXPIRY, &samples));
            let (min, max) = bounds(&samples);
            prop_assert!(min <= price && price <= max);
            prop_assert_eq!(twap.coverage_seconds(EXPIRY), EXPIRY - (start + samples[0].0));
        }

        #[test]
        fn twap_middle_sample_stays_within_bounds(
            window in 2i64..=1_000_000,
            raw in raw_samples(1_000_000),
            extra_time in 0i64..=1_000_000,
            extra_price in price(),
        ) {
            let start = EXPIRY - window;
            let raw: Vec<_> = raw.iter().map(|&(t, p)| (t % (window + 1), p)).collect();
            let mut samples = accepted(&raw);
            let extra_time = extra_time % (window + 1);
            prop_assume!(samples.iter().all(|&(t, _)| t != extra_time));
            let at = samples.partition_point(|&(t, _)| t < extra_time);
            samples.insert(at, (extra_time, extra_price));
            let price = run_twap(start, EXPIRY, &samples).settlement_price(EXPIRY).unwrap();
            let (min, max) = bounds(&samples);
            prop_assert!(min <= price && price <= max);
            prop_assert_eq!(price, reference_twap(start, EXPIRY, &samples));
        }

        #[test]
        fn twap_out_of_order_and_duplicates_change_nothing(
            window in 0i64..=100_000,
            raw in raw_samples(100_000),
        ) {
            let start = EXPIRY - window;
            let raw: Vec<_> = raw.iter().map(|&(t, p)| (t % (window + 1), p)).collect();
            let mut twap = SettlementTwap::default();
            for &(t, p) in &raw {
                let before = twap;
                let outcome = twap.sample(start, EXPIRY, start + t, p).unwrap();
                if before.samples > 0 && start + t <= before.last_time {
                    prop_assert_eq!(outcome, SampleOutcome::AlreadySampled);
                    prop_assert_eq!(twap, before);
                } else {
                    prop_assert_eq!(outcome, SampleOutcome::Recorded);
                }
            }
            prop_assert_eq!(twap, run_twap(start, EXPIRY, &accepted(&raw)));
        }

        #[test]
        fn twap_overflow_never_panics(
            start in any::<i64>(),
            length in any::<u64>(),
            raw in proptest::collection::vec((any::<u64>(), 1i128..=i128::MAX), 1..16),
        ) {
            let expiry = start.saturating_add_unsigned(length);
            let span = expiry.abs_diff(start);
            let mut twap = SettlementTwap::default();
            let mut prices = Vec::new();
            for &(offset, bits) in &raw {
                let now = start.saturating_add_unsigned(offset % span.saturating_add(1));
                let before = twap;
                match twap.sample(start, expiry, now, I80F48::from_bits(bits)) {
                    Ok(SampleOutcome::Recorded) => prices.push(I80F48::from_bits(bits)),
                    Ok(_) => prop_assert_eq!(twap, before),
                    Err(e) => {
                        prop_assert_eq!(e, FutureError::Overflow);
                        prop_assert_eq!(twap, before);
                    }
                }
            }
            match twap.settlement_price(expiry) {
                Ok(price) => {
                    let min = prices.iter().copied().min().unwrap();
                    let max = prices.iter().copied().max().unwrap();
                    prop_assert!(min <= price && price <= max);
                }
                Err(e) => prop_assert_eq!(e, FutureError::Overflow),
            }
        }
    }

    /// Oracles and mids from 2^-8 to 2^42 (bits 2^40..=2^90).
    fn book_price() -> impl Strategy<Value = I80F48> {
        (1i128 << 40..=1i128 << 90).prop_map(I80F48::from_bits)
    }

    /// |mark − oracle| <= oracle × bps / 10_000, checked exactly on the bits.
    fn within_band(mark: I80F48, oracle: I80F48, bps: u32) -> bool {
        let diff = (mark.to_bits() - oracle.to_bits()).abs();
        diff * i128::from(BPS) <= oracle.to_bits() * i128::from(bps)
    }

    proptest! {
        #[test]
        fn mark_stays_in_band_and_is_oracle_at_expiry(
            steps in proptest::collection::vec(
                (0i64..=200_000, book_price(), proptest::option::of(book_price())),
                1..24,
            ),
            bps in 0u32..=10_000,
            window in 1u32..=100_000,
            oracle in book_price(),
            to_expiry in -1_000i64..=1_000_000,
            convergence in 0u32..=500_000,
        ) {
            let mut basis = BasisEstimate::default();
            let mut now = 0i64;
            for &(dt, step_oracle, mid) in &steps {
                now += dt;
                basis.sample(now, step_oracle, mid, bps, window).unwrap();
                let expiry = now + to_expiry;
                let mark = basis.mark_price(now, expiry, oracle, bps, convergence).unwrap();
                prop_assert!(within_band(mark, oracle, bps));
                if to_expiry <= 0 {
                    prop_assert_eq!(mark, oracle);
                }
                prop_assert_eq!(basis.mark_price(expiry, expiry, oracle, bps, convergence), Ok(oracle));
                prop_assert_eq!(basis.mark_price(expiry + 1, expiry, oracle, bps, convergence), Ok(oracle));
            }
        }

        #[test]
        fn constant_sample_converges_monotonically(
            oracle in book_price(),
            first_mid in book_price(),
            mid in book_price(),
            bps in 0u32..=10_000,
            window in 1u32..=100_000,
            dts in proptest::collection::vec(0i64..=50_000, 1..32),
        ) {
            let mut target = BasisEstimate::default();
            target.sample(0, oracle, Some(mid), bps, window).unwrap();
            let target = target.basis();
            let mut basis = BasisEstimate::default();
            basis.sample(0, oracle, Some(first_mid), bps, window).unwrap();
            let mut now = 0;
            let start_gap = target - basis.basis();
            for &dt in &dts {
                let gap = target - basis.basis();
                now += dt;
                basis.sample(now, oracle, Some(mid), bps, window).unwrap();
                let next_gap = target - basis.basis();
                // Never further, never past the target.
                prop_assert!(next_gap.abs() <= gap.abs());
                prop_assert!(next_gap.signum() * start_gap.signum() >= 0);
                if dt >= i64::from(window) {
                    prop_assert_eq!(basis.basis(), target);
                }
            }
        }

        #[test]
        fn empty_book_shrinks_basis_monotonically(
            oracle in book_price(),
            mid in book_price(),
            bps in 0u32..=10_000,
            window in 1u32..=100_000,
            dts in proptest::collection::vec(0i64..=50_000, 1..32),
        ) {
            let mut basis = BasisEstimate::default();
            basis.sample(0, oracle, Some(mid), bps, window).unwrap();
            let start = basis.basis();
            let mut now = 0;
            for &dt in &dts {
                let before = basis.basis();
                now += dt;
                basis.sample(now, oracle, None, bps, window).unwrap();
                prop_assert!(basis.basis().abs() <= before.abs());
                prop_assert!(basis.basis().signum() * start.signum() >= 0);
                if dt >= i64::from(window) {
                    prop_assert_eq!(basis.basis(), I80F48::ZERO);
                }
            }
        }

        #[test]
        fn premium_fades_monotonically_toward_expiry(
            oracle in book_price(),
            mid in book_price(),
            bps in 0u32..=10_000,
            convergence in 0u32..=100_000,
            offsets in proptest::collection::vec(0i64..=200_000, 1..32),
        ) {
            let mut basis = BasisEstimate::default();
            basis.sample(0, oracle, Some(mid), bps, 1).unwrap();
            let expiry = 1_000_000;
            let mut offsets = offsets;
            offsets.sort_unstable_by(|a, b| b.cmp(a));
            let mut previous = I80F48::MAX;
            for &to_expiry in &offsets {
                let mark = basis.mark_price(expiry - to_expiry, expiry, oracle, bps, convergence).unwrap();
                let premium = (mark - oracle).abs();
                prop_assert!(premium <= previous);
                previous = premium;
            }
        }

        #[test]
        fn settlement_values_of_a_zero_sum_set_never_overpay(
            lots in proptest::collection::vec(-1_000_000i64..=1_000_000, 1..16),
            lot_size in 1u64..=1_000_000,
            price_bits in 1i128..=1i128 << 61,
        ) {
            // The last position takes the other side of all the others.
            let mut lots = lots;
            lots.push(-lots.iter().sum::<i64>());
            let price = I80F48::from_bits(price_bits);
            let mut total: i128 = 0;
            for &l in &lots {
                let value = settlement_value(l, lot_size, price).unwrap();
                let exact = i128::from(l) * i128::from(lot_size) * price_bits;
                prop_assert_eq!(i128::from(value), exact.div_euclid(1 << FRAC_BITS));
                // A long's floor and the matching short's ceiling differ by the rounding.
                let mirror = settlement_value(-l, lot_size, price).unwrap();
                prop_assert!(value + mirror == 0 || value + mirror == -1);
                total += i128::from(value);
            }
            prop_assert!(total <= 0);
            prop_assert!(total >= -(lots.len() as i128));
        }

        #[test]
        fn settlement_value_never_panics(
            l in any::<i64>(),
            lot_size in any::<u64>(),
            price_bits in 1i128..=i128::MAX,
        ) {
            let exact = i128::from(l)
                .checked_mul(i128::from(lot_size))
                .and_then(|q| q.checked_mul(price_bits))
                .and_then(|p| i64::try_from(p >> FRAC_BITS).ok());
            prop_assert_eq!(
                settlement_value(l, lot_size, I80F48::from_bits(price_bits)).ok(),
                exact
            );
        }
    }
}
