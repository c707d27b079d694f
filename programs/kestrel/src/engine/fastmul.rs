//! Fixed-point-by-integer products with 64-bit multiplies only.
//!
//! SBF has a 64-bit multiply and nothing wider: a 128-bit product, and
//! above all an overflow-checked one (`I80F48::checked_mul_int`, Rust's
//! `i128::checked_mul`), is a software routine of about 300 CU. Health
//! prices every position with several of them, so they are most of what an
//! extra position costs. Here a product is built from 32-bit limbs, exactly
//! and with the same overflow answer, for about a fifth of that.
use fixed::types::I80F48;

/// `x * y`, exactly: four 32-by-32-bit products.
#[inline]
pub fn widening_mul(x: u64, y: u64) -> u128 {
    let (low, high) = widening_mul_halves(x, y);
    (u128::from(high) << 64) | u128::from(low)
}

/// `x * y` as its (low, high) 64-bit halves, for callers that work on
/// words (`fixed_math`'s 64-bit core).
#[inline(always)]
pub fn widening_mul_halves(x: u64, y: u64) -> (u64, u64) {
    const LOW: u64 = 0xFFFF_FFFF;
    let (x1, x0) = (x >> 32, x & LOW);
    let (y1, y0) = (y >> 32, y & LOW);
    // Each partial product of two 32-bit halves fits 64 bits.
    let p00 = x0.wrapping_mul(y0);
    let p01 = x0.wrapping_mul(y1);
    let p10 = x1.wrapping_mul(y0);
    let p11 = x1.wrapping_mul(y1);
    // Three values below 2^32 each: no carry out of 64 bits.
    let middle = (p00 >> 32).wrapping_add(p01 & LOW).wrapping_add(p10 & LOW);
    let low = (middle << 32) | (p00 & LOW);
    let high = p11
        .wrapping_add(p01 >> 32)
        .wrapping_add(p10 >> 32)
        .wrapping_add(middle >> 32);
    (low, high)
}

/// `a * b`, or `None` past u64, as `u64::checked_mul` answers it (which
/// SBF computes with a 128-bit software routine).
#[inline]
pub fn checked_mul_u64(a: u64, b: u64) -> Option<u64> {
    u64::try_from(widening_mul(a, b)).ok()
}

/// `a * b` for a signed `a`, as `i64::checked_mul` answers it for `b`
/// within i64, and for any `b` past it the product's own range.
#[inline]
pub fn checked_mul_i64_u64(a: i64, b: u64) -> Option<i64> {
    let magnitude = checked_mul_u64(a.unsigned_abs(), b)?;
    if a < 0 {
        // Down to i64::MIN, whose magnitude is 2^63.
        (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `a * b`, or `None` when it does not fit 128 bits.
#[inline]
pub fn checked_mul_u128_u64(a: u128, b: u64) -> Option<u128> {
    let low = widening_mul(a as u64, b);
    let high = widening_mul((a >> 64) as u64, b);
    if high >> 64 != 0 {
        return None;
    }
    (high << 64).checked_add(low)
}

/// `magnitude` with a sign, or `None` outside i128.
#[inline]
pub fn signed(magnitude: u128, negative: bool) -> Option<i128> {
    if negative {
        if magnitude <= 1 << 127 {
            Some((magnitude as i128).wrapping_neg())
        } else {
            None
        }
    } else {
        i128::try_from(magnitude).ok()
    }
}

/// `a × b` for a small factor `b`: one 64-bit widening product when `a`'s
/// magnitude fits 64 bits (health's margin terms, always in practice).
#[inline]
pub fn checked_mul_i128_u64(a: i128, b: u64) -> Option<i128> {
    let a_magnitude = a.unsigned_abs();
    let magnitude = match u64::try_from(a_magnitude) {
        Ok(small) => widening_mul(small, b),
        Err(_) => checked_mul_u128_u64(a_magnitude, b)?,
    };
    signed(magnitude, a < 0 && magnitude != 0)
}

/// `a * b` for integers, as `i128::checked_mul` answers it.
#[inline]
pub fn checked_mul_i128(a: i128, b: i128) -> Option<i128> {
    let negative = (a < 0) != (b < 0);
    let (a_magnitude, b_magnitude) = (a.unsigned_abs(), b.unsigned_abs());
    let magnitude = match (u64::try_from(a_magnitude), u64::try_from(b_magnitude)) {
        // Both within 64 bits (a price's bits by a position, typically): one
        // widening product instead of two.
        (Ok(a_small), Ok(b_small)) => widening_mul(a_small, b_small),
        (_, Ok(b_small)) => checked_mul_u128_u64(a_magnitude, b_small)?,
        (Ok(a_small), _) => checked_mul_u128_u64(b_magnitude, a_small)?,
        // Both at least 2^64: the product is at least 2^128.
        _ => return None,
    };
    signed(magnitude, negative && magnitude != 0)
}

/// `value * factor`, as `I80F48::checked_mul_int` answers it.
#[inline]
pub fn mul_int(value: I80F48, factor: i128) -> Option<I80F48> {
    checked_mul_i128(value.to_bits(), factor).map(I80F48::from_bits)
}

/// [`mul_int`] as a method, a drop-in for `checked_mul_int`.
pub trait FastMulInt: Sized {
    fn fast_mul_int(self, factor: i128) -> Option<Self>;
}

impl FastMulInt for I80F48 {
    #[inline]
    fn fast_mul_int(self, factor: i128) -> Option<Self> {
        mul_int(self, factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges_agree_with_the_wide_routines() {
        let values = [
            0i128,
            1,
            -1,
            2,
            i128::from(u32::MAX),
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            i128::from(i64::MIN),
            1 << 100,
            -(1 << 100),
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
            i128::MAX / 3,
        ];
        for a in values {
            for b in values {
                assert_eq!(checked_mul_i128(a, b), a.checked_mul(b), "{a} * {b}");
                let factor = b as u64;
                assert_eq!(
                    checked_mul_i128_u64(a, factor),
                    a.checked_mul(i128::from(factor)),
                    "{a} * {factor}"
                );
            }
        }
        assert_eq!(
            widening_mul(u64::MAX, u64::MAX),
            u128::from(u64::MAX) * u128::from(u64::MAX)
        );
        assert_eq!(checked_mul_u128_u64(u128::MAX, 1), Some(u128::MAX));
        assert_eq!(checked_mul_u128_u64(u128::MAX, 2), None);
    }

    proptest! {
        #[test]
        fn sixty_four_bit_products_are_std_s(a in any::<i64>(), b in any::<u64>(), small in 0u64..1 << 40) {
            prop_assert_eq!(checked_mul_u64(a.unsigned_abs(), b), a.unsigned_abs().checked_mul(b));
            for factor in [b, small] {
                let expected = i64::try_from(factor).ok().and_then(|f| a.checked_mul(f));
                if i64::try_from(factor).is_ok() {
                    prop_assert_eq!(checked_mul_i64_u64(a, factor), expected);
                }
            }
        }

        #[test]
        fn widening_mul_is_exact(x: u64, y: u64) {
            prop_assert_eq!(widening_mul(x, y), u128::from(x) * u128::from(y));
        }

        #[test]
        fn products_agree_with_checked_mul(a: i128, b: i128, shift in 0u32..127) {
            // Operands of every magnitude, not only the huge ones a uniform
            // i128 is.
            let small = b >> shift;
            prop_assert_eq!(checked_mul_i128(a, small), a.checked_mul(small));
            prop_assert_eq!(checked_mul_i128(a >> shift, b), (a >> shift).checked_mul(b));
            let value = I80F48::from_bits(a >> shift);
            prop_assert_eq!(mul_int(value, small), value.checked_mul_int(small));
            // Both within 64 bits: the one-product path.
            let (a64, b64) = (a >> 64, b >> 64);
            prop_assert_eq!(checked_mul_i128(a64, b64), a64.checked_mul(b64));
            let factor = b as u64;
            prop_assert_eq!(checked_mul_i128_u64(a >> shift, factor), (a >> shift).checked_mul(i128::from(factor)));
        }
    }
}
