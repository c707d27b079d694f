//! Dated futures: the basis estimate behind the mark and the cash value a
//! position settles for.
//!
//! A dated future trades at `oracle + basis` until it expires, then settles in
//! cash at the time-weighted average of the underlying's accepted price over a
//! settlement window that ends at expiry (`price_integral`). The basis is
//! sampled by a permissionless crank, so its update is idempotent within a
//! second, tolerates missed samples, and never panics: each step is checked
//! and a failure leaves the state as it was.
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
    /// A time before the last one recorded.
    SampleOutOfOrder,
}

impl core::fmt::Display for FutureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let message = match self {
            Self::Overflow => "arithmetic overflow",
            Self::InvalidPrice => "price must be positive",
            Self::InvalidParameter => "parameter out of range",
            Self::SampleOutOfOrder => "a time before the last one recorded",
        };
        f.write_str(message)
    }
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
}

/// The futures mark from a basis estimate's `basis`: `oracle + basis × min(1, time_to_expiry /
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
    basis: I80F48,
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
    let basis = clamp_to_band(basis, band)?;
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
            mark_price(basis.basis(), expiry - 1_000, expiry, oracle, 50, 400),
            Ok(fx(399, 4))
        );
        assert_eq!(
            mark_price(basis.basis(), expiry - 200, expiry, oracle, 50, 400),
            Ok(fx(799, 8))
        );
        assert_eq!(
            mark_price(basis.basis(), expiry, expiry, oracle, 50, 400),
            Ok(oracle)
        );
        assert_eq!(
            mark_price(basis.basis(), expiry + 5, expiry, oracle, 50, 400),
            Ok(oracle)
        );
        // Re-clamped to the current oracle: at 20, 50 bps is 0.1.
        assert_eq!(
            mark_price(basis.basis(), 0, expiry, fx(20, 1), 50, 400),
            Ok(fx(20, 1) - fx(1, 10))
        );
        // No convergence period: full basis until expiry.
        assert_eq!(
            mark_price(basis.basis(), expiry - 1, expiry, oracle, 50, 0),
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
            mark_price(basis.basis(), 0, 10, one, 10_001, 5),
            Err(FutureError::InvalidParameter)
        );
        assert_eq!(
            mark_price(basis.basis(), 0, 10, -one, 50, 5),
            Err(FutureError::InvalidPrice)
        );
        // A mark at 100% band of a maximal oracle leaves I80F48.
        let mut wide = BasisEstimate::default();
        wide.sample(0, I80F48::MAX, Some(I80F48::MAX), 10_000, 1)
            .unwrap();
        wide.basis = to_parts(I80F48::MAX);
        assert_eq!(
            mark_price(wide.basis(), 0, 10, I80F48::MAX, 10_000, 0),
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
                let mark = mark_price(basis.basis(), now, expiry, oracle, bps, convergence).unwrap();
                prop_assert!(within_band(mark, oracle, bps));
                if to_expiry <= 0 {
                    prop_assert_eq!(mark, oracle);
                }
                prop_assert_eq!(mark_price(basis.basis(), expiry, expiry, oracle, bps, convergence), Ok(oracle));
                prop_assert_eq!(mark_price(basis.basis(), expiry + 1, expiry, oracle, bps, convergence), Ok(oracle));
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
                let mark = mark_price(basis.basis(), expiry - to_expiry, expiry, oracle, bps, convergence).unwrap();
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
