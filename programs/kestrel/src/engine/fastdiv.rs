//! 128-bit division by small divisors in 64-bit steps.
//!
//! SBF has 64-bit division but no 128-bit one: `u128 / u128` is a software
//! routine of about 900 CU. Every divisor the hot paths use (powers of ten,
//! 10,000 for basis points, lot sizes) fits in 32 bits, and dividing four
//! 32-bit limbs by such a divisor takes four native divisions. The results
//! equal Rust's `/` exactly (truncation toward zero); property tests below
//! check that.
use fixed::types::I80F48;

/// `n / d` for `0 < d < 2^32`, by 32-bit long division.
pub fn div_u128_u32(n: u128, d: u32) -> u128 {
    debug_assert!(d != 0);
    let d = u64::from(d);
    let mut remainder = 0u64;
    let mut quotient = 0u128;
    for shift in [96u32, 64, 32, 0] {
        let limb = ((n >> shift) as u64) & 0xFFFF_FFFF;
        // remainder < d < 2^32, so this fits in 64 bits.
        let current = (remainder << 32) | limb;
        quotient |= u128::from(current / d) << shift;
        remainder = current % d;
    }
    quotient
}

/// `n / d` (truncated toward zero, as `/`); `None` when `d` is zero.
pub fn div_i128(n: i128, d: u64) -> Option<i128> {
    if d == 0 {
        return None;
    }
    let magnitude = match u32::try_from(d) {
        Ok(small) => div_u128_u32(n.unsigned_abs(), small),
        Err(_) => n.unsigned_abs() / u128::from(d),
    };
    // |n| / d <= |n| <= 2^127, and 2^127 only for n = i128::MIN, d = 1.
    let magnitude = i128::try_from(magnitude).ok();
    match (n < 0, magnitude) {
        (false, Some(q)) => Some(q),
        (true, Some(q)) => Some(-q),
        (true, None) => Some(i128::MIN),
        (false, None) => None,
    }
}

/// `n / 10^k` for `n >= 0`, in steps of at most 10^9.
pub fn div_pow10(mut n: u128, mut k: u32) -> u128 {
    const BILLION: u32 = 1_000_000_000;
    while k > 9 {
        n = div_u128_u32(n, BILLION);
        k -= 9;
    }
    div_u128_u32(n, 10u32.pow(k))
}

/// A fixed-point value divided by an integer (the bits divided, truncated).
pub fn fixed_div_int(value: I80F48, divisor: u64) -> Option<I80F48> {
    div_i128(value.to_bits(), divisor).map(I80F48::from_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        assert_eq!(div_u128_u32(u128::MAX, 1), u128::MAX);
        assert_eq!(
            div_u128_u32(u128::MAX, u32::MAX),
            u128::MAX / u128::from(u32::MAX)
        );
        assert_eq!(div_i128(i128::MIN, 1), Some(i128::MIN));
        assert_eq!(div_i128(i128::MIN, 2), Some(i128::MIN / 2));
        assert_eq!(div_i128(-7, 2), Some(-3), "toward zero, as /");
        assert_eq!(div_i128(7, 0), None);
        assert_eq!(
            div_i128(i128::MAX, u64::MAX),
            Some(i128::MAX / i128::from(u64::MAX))
        );
        assert_eq!(div_pow10(10u128.pow(38), 38), 1);
        assert_eq!(div_pow10(123, 0), 123);
        assert_eq!(
            fixed_div_int(I80F48::from_num(-3), 2),
            Some(I80F48::from_num(-3) / 2i128)
        );
    }

    proptest! {
        #[test]
        fn equals_native_division(n: i128, d in 1u64.., small in 1u32.., k in 0u32..=38) {
            prop_assert_eq!(div_i128(n, d), Some(n / i128::from(d)));
            prop_assert_eq!(div_i128(n, u64::from(small)), Some(n / i128::from(small)));
            let positive = n.unsigned_abs();
            prop_assert_eq!(div_u128_u32(positive, small), positive / u128::from(small));
            prop_assert_eq!(div_pow10(positive, k), positive / 10u128.pow(k));
        }
    }
}
