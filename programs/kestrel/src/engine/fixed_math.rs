//! Elementary functions on `I80F48` for on-chain option pricing: products,
//! reciprocals, `ln`, `exp`, reciprocal square roots and the standard normal
//! distribution, with 64-bit multiplies and divisions only (SBF has nothing
//! wider, and a 128-bit software division costs about 900 CU).
//!
//! Error bounds (measured against f64 references in the tests below, which
//! pin them; an ulp is 2^-48 ≈ 3.6e-15):
//!
//! | function        | bound                                                 |
//! |-----------------|-------------------------------------------------------|
//! | [`mul`]         | correctly rounded (half an ulp) when either operand is below 2^16 |
//! | [`div`], [`recip`] | relative 2^-58, and within an ulp                  |
//! | [`ln`]          | absolute 4 ulp                                        |
//! | [`exp`]         | relative 1e-14, or 2 ulp absolute                     |
//! | [`rsqrt`]       | relative 1e-14, or an ulp                             |
//! | [`normal_tail`], [`NormalAt::density`] | absolute 1e-14 (a Taylor polynomial per 16th, 1e-17 and 2e-15 in exact arithmetic, plus rounding) |
//!
//! Every function returns `None` rather than wrap or panic: on a value
//! outside its domain, or a result outside I80F48.
use fixed::types::I80F48;

use super::fastmul::{signed, widening_mul, widening_mul_halves as wide};

/// Half of `x`, rounded toward −∞: a shift (a fixed-point division by an
/// integer is a 128-bit software division on SBF).
#[inline]
pub fn half(x: I80F48) -> I80F48 {
    I80F48::from_bits(x.to_bits() >> 1)
}

/// `bps` basis points as a fraction, exactly rounded down in magnitude
/// (`bps × 2^44 / 625` is `bps / 10,000` in bits): one native division.
/// `|bps|` up to 2^19.
#[inline]
pub fn from_bps(bps: i32) -> I80F48 {
    // An unsigned division (SBF has no signed one: it is expanded inline).
    let magnitude = ((u64::from(bps.unsigned_abs().min(1 << 19)) << 44) / 625) as i64;
    I80F48::from_bits(i128::from(if bps < 0 { -magnitude } else { magnitude }))
}

/// The bits of an I80F48 within ±2^15, in an i64: the working type of
/// the series and polynomials below, whose products and sums are 64-bit
/// operations (on SBF an I80F48 sum is an overflow-checked 128-bit one and
/// a product a software routine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Q(pub(crate) i64);

impl Q {
    pub(crate) const ONE: Q = Q(1 << 48);

    #[inline(always)]
    pub(crate) fn of(x: I80F48) -> Option<Q> {
        i64::try_from(x.to_bits()).ok().map(Q)
    }

    #[inline(always)]
    pub(crate) fn fixed(self) -> I80F48 {
        I80F48::from_bits(i128::from(self.0))
    }

    #[inline(always)]
    pub(crate) fn add(self, other: Q) -> Option<Q> {
        self.0.checked_add(other.0).map(Q)
    }

    #[inline(always)]
    pub(crate) fn sub(self, other: Q) -> Option<Q> {
        self.0.checked_sub(other.0).map(Q)
    }

    /// `self × other`, rounded to nearest (half away from zero); `None`
    /// past ±2^15.
    #[inline(always)]
    pub(crate) fn mul(self, other: Q) -> Option<Q> {
        let (a, b) = (self.0, other.0);
        // Both within ±128 (every value of the pricing but a polynomial's
        // sums): the product's bits are the high word of (a·2^8)(b·2^8), a
        // signed high product from an unsigned one, rounded half up by the
        // low word's top bit. About two thirds of the general path's cost.
        if within_128(a) && within_128(b) {
            return Some(self.mul_small(other));
        }
        let negative = (a ^ b) < 0;
        let (low, high) = wide(a.unsigned_abs(), b.unsigned_abs());
        if high >> 46 != 0 {
            return None;
        }
        // (high·2^64 + low + 2^47) >> 48: high < 2^46 keeps it below 2^63.
        let (low, carry) = low.overflowing_add(1 << 47);
        let magnitude = ((high.wrapping_add(u64::from(carry)) << 16) | (low >> 48)) as i64;
        Some(Q(if negative {
            magnitude.wrapping_neg()
        } else {
            magnitude
        }))
    }

    /// `self × other` for operands both within ±128, rounded to nearest:
    /// [`Q::mul`]'s fast path without its checks, for the polynomials whose
    /// every operand is bounded by construction (the caller's proof; a
    /// debug build asserts it).
    #[inline(always)]
    pub(crate) fn mul_small(self, other: Q) -> Q {
        let (a, b) = (self.0, other.0);
        debug_assert!(within_128(a) && within_128(b), "{a} × {b}");
        let (x, y) = (a << 8, b << 8);
        let (high, round) = high_word(x as u64, y as u64);
        let mut high = high as i64;
        if x < 0 {
            high = high.wrapping_sub(y);
        }
        if y < 0 {
            high = high.wrapping_sub(x);
        }
        // |product| ≤ 2^14 in bits below 2^62: the rounding bit cannot wrap.
        Q(high.wrapping_add(round as i64))
    }

    /// `self + other` where the caller bounds both (see [`Q::mul_small`]).
    #[inline(always)]
    pub(crate) fn add_small(self, other: Q) -> Q {
        debug_assert!(self.0.checked_add(other.0).is_some());
        Q(self.0.wrapping_add(other.0))
    }

    /// `self − other` where the caller bounds both.
    #[inline(always)]
    pub(crate) fn sub_small(self, other: Q) -> Q {
        debug_assert!(self.0.checked_sub(other.0).is_some());
        Q(self.0.wrapping_sub(other.0))
    }

    /// `self / divisor` for `divisor > 0`, within an ulp (relative 2^-58):
    /// `self` times the divisor's reciprocal mantissa ([`reciprocal_of`]).
    #[inline(always)]
    pub(crate) fn div(self, divisor: Q) -> Option<Q> {
        if divisor.0 <= 0 {
            return None;
        }
        let (r, zeros) = reciprocal_of(divisor.0 as u64);
        let negative = self.0 < 0;
        // self/divisor in bits = |self|·2^48 / d = |self|·r × 2^(zeros − 79):
        // a right shift by 16..=78 of a product below 2^127.
        // (The shifts and sums below are bounded as commented: wrapping
        // forms, which SBF runs without overflow branches.)
        let (low, high) = wide(self.0.unsigned_abs(), r);
        // 1 ≤ zeros ≤ 63 for a positive divisor: shift ∈ 16..=78.
        let shift = 79u32.wrapping_sub(zeros);
        let magnitude = if shift >= 64 {
            let shift = shift.wrapping_sub(64);
            let round = if shift == 0 {
                low >> 63
            } else {
                (high >> shift.wrapping_sub(1)) & 1
            };
            // high < 2^63 (the product is below 2^127).
            (high >> shift).wrapping_add(round)
        } else {
            if high >> shift.wrapping_sub(1) != 0 {
                return None;
            }
            let round = (low >> shift.wrapping_sub(1)) & 1;
            // Below 2^63 by the check above.
            ((high << 64u32.wrapping_sub(shift)) | (low >> shift)).wrapping_add(round)
        };
        let magnitude = i64::try_from(magnitude).ok()?;
        Some(Q(if negative {
            magnitude.wrapping_neg()
        } else {
            magnitude
        }))
    }
}

/// Whether the bits `x` are within ±2^55 (a value within ±128).
#[inline(always)]
fn within_128(x: i64) -> bool {
    // x >> 55 ∈ [−256, 255]: the sum cannot wrap.
    (x >> 55).wrapping_add(1) as u64 <= 1
}

/// `a × b` in bits from one 64-bit product of their tops, `a >> SA` and
/// `b >> SB`: within `(|a| 2^SB + |b| 2^SA) / 2^48` bits (plus one, the
/// shifts rounding toward −∞). For the terms of a series that a later
/// factor shrinks below that error's weight: a full product costs about
/// forty SBF instructions, this one five. The caller bounds the tops'
/// product below 2^63 (a debug build asserts it).
#[inline(always)]
fn mul_coarse<const SA: u32, const SB: u32>(a: i64, b: i64) -> i64 {
    let (x, y) = (a >> SA, b >> SB);
    debug_assert!(x.checked_mul(y).is_some(), "{a} × {b}");
    x.wrapping_mul(y) >> (48 - SA - SB)
}

/// The high word of `x × y` and the low word's top bit (its rounding):
/// four 32-by-32-bit products, the low word never assembled.
#[inline(always)]
fn high_word(x: u64, y: u64) -> (u64, u64) {
    const LOW: u64 = 0xFFFF_FFFF;
    let (x1, x0) = (x >> 32, x & LOW);
    let (y1, y0) = (y >> 32, y & LOW);
    let p00 = x0.wrapping_mul(y0);
    let p01 = x0.wrapping_mul(y1);
    let p10 = x1.wrapping_mul(y0);
    let p11 = x1.wrapping_mul(y1);
    // Below 3·2^32: the low word's top half and its carry.
    let middle = (p00 >> 32).wrapping_add(p01 & LOW).wrapping_add(p10 & LOW);
    let high = p11
        .wrapping_add(p01 >> 32)
        .wrapping_add(p10 >> 32)
        .wrapping_add(middle >> 32);
    (high, (middle >> 31) & 1)
}

/// The reciprocal of `n > 0` as a 64-bit mantissa and its scale:
/// `1/n ≈ r × 2^(zeros − 127)` for `n`'s leading zeros, with `r ≈ 2^127 /
/// (n << zeros) ∈ (2^63, 2^64)` within 2^-61. One native 64-bit division
/// of the top half gives 31 correct bits, one Newton step 62.
#[inline(always)]
fn reciprocal_of(n: u64) -> (u64, u32) {
    let zeros = n.leading_zeros();
    let d = n << zeros;
    // (d >> 32) ∈ [2^31, 2^32): r0 ≈ 2^95 / d within 2^-31; kept below
    // 2^32 so that r0 << 32 fits.
    let r0 = ((1u64 << 63) / (d >> 32)).min(u64::from(u32::MAX));
    // e = 2^95 − r0·d, |e| < 2^64: 2^95 / d ≈ r0 (1 + e/2^95).
    let (low, high) = wide(r0, d);
    let (e_magnitude, e_negative) = if high >= 1 << 31 {
        // r0·d ≥ 2^95 (high = 2^31): e = −low.
        (low, true)
    } else {
        // r0·d < 2^95 (high = 2^31 − 1): e = 2^64 − low.
        (low.wrapping_neg(), false)
    };
    let (c_low, c_high) = wide(r0, e_magnitude);
    let correction = (c_high << 1) | (c_low >> 63);
    let base = r0 << 32;
    let r1 = if e_negative {
        base.saturating_sub(correction)
    } else {
        base.saturating_add(correction)
    };
    (r1, zeros)
}

/// ln 2 × 2^64 (rounded): 16 bits more than an I80F48, so that k × ln 2
/// for |k| ≤ 80 stays within half an ulp.
const LN2_64: u64 = 12_786_308_645_202_655_660;
/// 1 / ln 2.
const INV_LN2: I80F48 = I80F48::from_bits(406_082_553_034_800);
const HALF_ULP: u128 = 1 << 47;

/// `x × y`, rounded to nearest. One 64-bit widening product when both
/// magnitudes are below 2^16, two when one is (every product the pricing
/// takes); the generic 256-bit product otherwise.
#[inline]
pub fn mul(x: I80F48, y: I80F48) -> Option<I80F48> {
    // Both within ±2^15 and the product too: the 64-bit product.
    if let (Some(a), Some(b)) = (Q::of(x), Q::of(y)) {
        if let Some(product) = a.mul(b) {
            return Some(product.fixed());
        }
    }
    let (a, b) = (x.to_bits(), y.to_bits());
    let negative = (a < 0) != (b < 0);
    let (a_magnitude, b_magnitude) = (a.unsigned_abs(), b.unsigned_abs());
    let magnitude = match (u64::try_from(a_magnitude), u64::try_from(b_magnitude)) {
        // At most (2^64 − 1)^2 < 2^128 − 2^65: adding half an ulp cannot
        // carry out.
        (Ok(a_small), Ok(b_small)) => (widening_mul(a_small, b_small) + HALF_ULP) >> 48,
        (Ok(small), Err(_)) => mul_wide(b_magnitude, small)?,
        (Err(_), Ok(small)) => mul_wide(a_magnitude, small)?,
        // Both at least 2^16: rare in pricing; the generic product.
        _ => return x.checked_mul(y),
    };
    signed(magnitude, negative && magnitude != 0).map(I80F48::from_bits)
}

/// `(big × small + half an ulp) >> 48`, from two 64-bit widening products
/// (the 192-bit product never formed); `None` past 128 bits.
#[inline]
fn mul_wide(big: u128, small: u64) -> Option<u128> {
    let low = widening_mul(big as u64, small);
    let high = widening_mul((big >> 64) as u64, small);
    if high >> 112 != 0 {
        return None;
    }
    // (high·2^64 + low) >> 48 = high·2^16 + low >> 48, rounded by low's
    // bit 47.
    (high << 16).checked_add(((low >> 47) + 1) >> 1)
}

/// `x` shifted by a power of two: `x × 2^shift`, rounded to nearest when
/// the shift is to the right; `None` past I80F48.
#[inline]
fn scale_pow2(bits: i128, shift: i32) -> Option<i128> {
    if shift >= 0 {
        let shift = shift as u32;
        if shift >= 127 {
            return (bits == 0).then_some(0);
        }
        let scaled = bits << shift;
        (scaled >> shift == bits).then_some(scaled)
    } else {
        let shift = shift.unsigned_abs();
        if shift >= 127 {
            return Some(0);
        }
        // The arithmetic shift plus the first bit shifted out: rounds half
        // up, for either sign, and cannot overflow (adding half of the
        // last bit before the shift would, next to i128::MAX).
        Some((bits >> shift) + ((bits >> (shift - 1)) & 1))
    }
}

/// The reciprocal of `n > 0` (an I80F48's bits) as a 64-bit mantissa and
/// its scale: `1/n ≈ r × 2^(zeros − 191)`, where `zeros` is the count of
/// `n`'s leading zeros and `r ≈ 2^127 / d ∈ (2^63, 2^64)` for `n`'s top 64
/// bits `d`, within 2^-61.
///
/// One native 64-bit division of `d`'s top half gives 31 correct bits,
/// one Newton step 62.
#[inline]
fn reciprocal_mantissa(n: u128) -> (u64, u32) {
    // 1 ≤ n < 2^127, so 1 ≤ leading zeros ≤ 127.
    let zeros = n.leading_zeros();
    // n ≈ d × 2^(64 − zeros), the bits below d's dropped (relative error
    // below 2^-63).
    let d = ((n << zeros) >> 64) as u64;
    // (d >> 32) ∈ [2^31, 2^32): r0 = ⌊2^63 / (d >> 32)⌋ ∈ (2^31, 2^32], and
    // r0 ≈ 2^95 / d within 2^-31.
    let r0 = (1u64 << 63) / (d >> 32);
    // e = 2^95 − r0·d ∈ (−2^64, 2^64), so that 2^95 / d = r0 / (1 − e/2^95)
    // ≈ r0 (1 + e/2^95), within (2^-31)^2.
    let e = (1i128 << 95) - widening_mul(r0, d) as i128;
    // r1 ≈ 2^127 / d ∈ (2^63, 2^64]: |r0·e| < 2^96, one widening product
    // of the magnitudes (an i128 product is a software routine on SBF).
    let correction = (widening_mul(r0, e.unsigned_abs() as u64) >> 63) as i128;
    let r1 = (i128::from(r0) << 32) + if e < 0 { -correction - 1 } else { correction };
    match u64::try_from(r1) {
        Ok(r) => (r, zeros),
        // 2^64 (d = 2^63, n a power of two): the same value as 2^63 at
        // twice the scale.
        Err(_) => (1 << 63, zeros + 1),
    }
}

/// `a / b` for `b > 0`, relative error below 2^-58 (and within an ulp):
/// `a` times `b`'s reciprocal mantissa, one 192-bit product shifted once,
/// so a small quotient keeps every bit an I80F48 has. `None` for `b ≤ 0`
/// or a quotient past I80F48.
pub fn div(a: I80F48, b: I80F48) -> Option<I80F48> {
    let divisor = b.to_bits();
    if divisor <= 0 {
        return None;
    }
    if let (Some(a), Some(b)) = (Q::of(a), Q::of(b)) {
        if let Some(quotient) = a.div(b) {
            return Some(quotient.fixed());
        }
    }
    let (r, zeros) = reciprocal_mantissa(divisor as u128);
    let magnitude = a.to_bits().unsigned_abs();
    // |a|·r = high·2^64 + low (192 bits): high < 2^128 since |a| ≤ 2^127.
    let low = widening_mul(magnitude as u64, r);
    let high = widening_mul((magnitude >> 64) as u64, r) + (low >> 64);
    let low = low as u64;
    // a/b in bits = |a|·2^48 / n ≈ |a|·r × 2^(zeros − 143): a right shift
    // by 15..=142.
    let shift = 143 - zeros;
    let quotient = if shift >= 64 {
        let shift = shift - 64;
        let round = if shift == 0 {
            u128::from(low >> 63)
        } else {
            (high >> (shift - 1)) & 1
        };
        (high >> shift) + round
    } else {
        if high >> (64 + shift) != 0 {
            return None;
        }
        let round = u128::from((low >> (shift - 1)) & 1);
        ((high << (64 - shift)) | u128::from(low >> shift)) + round
    };
    signed(quotient, (a < 0) && quotient != 0).map(I80F48::from_bits)
}

/// `1 / x` for `x > 0` ([`div`]).
#[inline]
pub fn recip(x: I80F48) -> Option<I80F48> {
    div(I80F48::ONE, x)
}

/// `1/√(1 + (2i + 1)/64)`: the start of [`rsqrt`]'s Newton steps on each
/// 32nd of `[1, 4)`, within 0.8 %.
const RSQRT_SEEDS: [i64; 96] = [
    279_301_392_238_479,
    275_101_132_039_558,
    271_084_841_548_875,
    267_239_471_680_599,
    263_553_233_449_754,
    260_015_445_718_465,
    256_616_404_839_276,
    253_347_272_568_475,
    250_199_979_298_361,
    247_167_140_194_084,
    244_241_982_249_353,
    241_418_280_619_737,
    238_690_302_870_508,
    236_052_760_001_949,
    233_500_763_299_457,
    231_029_786_207_045,
    228_635_630_547_391,
    226_314_396_514_732,
    224_062_455_952_475,
    221_876_428_498_898,
    219_753_160_244_093,
    217_689_704_591_576,
    215_683_305_060_382,
    213_731_379_799_334,
    211_831_507_615_601,
    209_981_415_345_614,
    208_178_966_418_524,
    206_422_150_481_367,
    204_709_073_971_386,
    203_037_951_534_977,
    201_407_098_204_863,
    199_814_922_257_560,
    198_259_918_682_305,
    196_740_663_200_537,
    195_255_806_781_903,
    193_804_070_608_798,
    192_384_241_446_717,
    190_995_167_382_325,
    189_635_753_895_226,
    188_304_960_232_974,
    187_001_796_062_054,
    185_725_318_370_332,
    184_474_628_598_978,
    183_248_869_984_010,
    182_047_225_089_617,
    180_868_913_517_104,
    179_713_189_774_883,
    178_579_341_296_291,
    177_466_686_593_261,
    176_374_573_534_991,
    175_302_377_741_708,
    174_249_501_084_569,
    173_215_370_283_481,
    172_199_435_595_398,
    171_201_169_586_264,
    170_220_065_980_364,
    169_255_638_581_403,
    168_307_420_260_063,
    167_374_962_003_270,
    166_457_832_020_768,
    165_555_614_904_951,
    164_667_910_840_263,
    163_794_334_858_732,
    162_934_516_138_485,
    162_088_097_342_362,
    161_254_733_993_923,
    160_434_093_888_398,
    159_625_856_536_274,
    158_829_712_637_410,
    158_045_363_583_719,
    157_272_520_988_607,
    156_510_906_241_470,
    155_760_250_085_702,
    155_020_292_218_752,
    154_290_780_912_887,
    153_571_472_655_401,
    152_862_131_807_104,
    152_162_530_278_012,
    151_472_447_219_203,
    150_791_668_729_920,
    150_119_987_579_017,
    149_457_202_939_937,
    148_803_120_138_452,
    148_157_550_412_430,
    147_520_310_682_983,
    146_891_223_336_340,
    146_270_116_015_866,
    145_656_821_423_683,
    145_051_177_131_351,
    144_453_025_399_147,
    143_862_213_003_474,
    143_278_591_071_962,
    142_702_014_925_884,
    142_132_343_929_480,
    141_569_441_345_850,
    141_013_174_199_072,
];

/// `1/√x` for `x > 0`, relative error below 1e-14 (or an ulp).
///
/// `x = m × 4^e` with `m ∈ [1, 4)`; `1/√m` from a seed per 32nd of the
/// interval and three Newton steps `y ← y + y (1 − m y²) / 2` (the error
/// goes 0.8 % → 1e-4 → 2e-8 → below an ulp); then `× 2^-e`.
pub fn rsqrt(x: I80F48) -> Option<I80F48> {
    let bits = x.to_bits();
    if bits <= 0 {
        return None;
    }
    // x ∈ [2^k, 2^(k+1)) with k = msb − 48; e = ⌊k / 2⌋.
    let msb = 127 - (bits as u128).leading_zeros() as i32;
    let e = (msb - 48).div_euclid(2);
    // m = x / 4^e ∈ [1, 4), i.e. bits in [2^48, 2^50).
    let m = Q(scale_pow2(bits, -2 * e)? as i64);
    let y = rsqrt_reduced(m);
    match Q::of(x).and_then(|_| scale_q(y.0, -e)) {
        Some(bits) => Some(Q(bits).fixed()),
        None => scale_pow2(i128::from(y.0), -e).map(I80F48::from_bits),
    }
}

/// `1/√m` for `m ∈ [1, 4]` (4 when the reduction rounds up).
#[inline(always)]
fn rsqrt_reduced(m: Q) -> Q {
    // [1, 4], 4 itself when the reduction rounds up.
    debug_assert!((1 << 48..=4 << 48).contains(&m.0));
    let bin = (m.0.wrapping_sub(1 << 48) >> 43).clamp(0, 95) as usize;
    let mut y = Q(RSQRT_SEEDS[bin]);
    // m ∈ [1, 4] and y ∈ (1/2, 1]: m y² within 2 % of 1, every operand
    // below 4, so the products and sums are the unchecked small ones. The
    // first two steps need y to 1e-8 only (the third squares their
    // error): their products are coarse, within 2^-28 (tops below 2^31).
    let coarse = |a: Q, b: Q| Q(mul_coarse::<19, 19>(a.0, b.0));
    for _ in 0..2 {
        let residual = Q::ONE.sub_small(coarse(m, coarse(y, y)));
        y = y.add_small(Q(coarse(y, residual).0 >> 1));
    }
    let residual = Q::ONE.sub_small(m.mul_small(y.mul_small(y)));
    y.add_small(Q(y.mul_small(residual).0 >> 1))
}

/// [`rsqrt`] of a [`Q`], when the result is one.
#[inline(always)]
pub(crate) fn rsqrt_q(x: Q) -> Option<Q> {
    if x.0 <= 0 {
        return None;
    }
    let msb = 63 - x.0.leading_zeros() as i32;
    let e = (msb - 48).div_euclid(2);
    let y = rsqrt_reduced(Q(scale_q(x.0, -2 * e)?));
    scale_q(y.0, -e).map(Q)
}

/// `√x` for `x ≥ 0`: `x × rsqrt(x)`.
pub fn sqrt(x: I80F48) -> Option<I80F48> {
    if x == 0 {
        return Some(I80F48::ZERO);
    }
    mul(x, rsqrt(x)?)
}

/// `k × ln 2` in bits for |k| ≤ 128, within half an ulp: ln 2 × 2^64 as
/// its high 48 bits and its low 16, so both products are 64-bit.
#[inline(always)]
fn times_ln2(k: i32) -> i64 {
    const HIGH: i64 = (LN2_64 >> 16) as i64;
    const LOW: i64 = (LN2_64 & 0xFFFF) as i64;
    debug_assert!(k.unsigned_abs() <= 128);
    // |k| ≤ 128: |k × HIGH| < 2^55 and k × LOW < 2^23, no wrap.
    let k = i64::from(k);
    k.wrapping_mul(HIGH)
        .wrapping_add(k.wrapping_mul(LOW).wrapping_add(1 << 15) >> 16)
}

/// `x × 2^shift` for an i64 `x`, rounded to nearest when shifting right;
/// `None` past i64.
#[inline(always)]
fn scale_q(x: i64, shift: i32) -> Option<i64> {
    if shift >= 0 {
        let shift = shift as u32;
        if shift >= 63 {
            return (x == 0).then_some(0);
        }
        let scaled = x << shift;
        (scaled >> shift == x).then_some(scaled)
    } else {
        let shift = shift.unsigned_abs();
        if shift >= 63 {
            return Some(0);
        }
        // Rounded half up as `scale_pow2`, without overflow near i64::MAX.
        Some((x >> shift) + ((x >> (shift - 1)) & 1))
    }
}

/// `1/(1 + (2j + 1)/128)` and `ln(1 + (2j + 1)/128)` for j = 0..64: [`ln`]'s
/// steps, one per 64th of `[1, 2)`.
const LN_RECIPROCALS: [i64; 64] = [
    279_293_000_147_008,
    275_028_984_877_588,
    270_893_210_668_902,
    266_879_977_918_252,
    262_983_919_846_452,
    259_199_978_553_698,
    255_523_383_113_220,
    251_949_629_503_245,
    248_474_462_199_752,
    245_093_857_271_864,
    241_804_006_838_684,
    238_601_304_761_351,
    235_482_333_457_281,
    232_443_851_735_251,
    229_482_783_560_280,
    226_596_207_666_440,
    223_781_347_943_876,
    221_035_564_533_521,
    218_356_345_569_479,
    215_741_299_514_754,
    213_188_148_041_207,
    210_694_719_409_146,
    208_258_942_306_150,
    205_878_840_108_366,
    203_552_525_530_870,
    201_278_195_636_670,
    199_054_127_176_597,
    196_878_672_234_776,
    194_750_254_156_562,
    192_667_363_737_775,
    190_628_555_655_894,
    188_632_445_125_466,
    186_677_704_761_471,
    184_763_061_635_713,
    182_887_294_512_507,
    181_049_231_251_075,
    179_247_746_363_005,
    177_481_758_714_108,
    175_750_229_360_800,
    174_052_159_511_903,
    172_386_588_607_483,
    170_752_592_506_938,
    169_149_281_779_174,
    167_575_800_088_205,
    166_031_322_668_037,
    164_515_054_881_114,
    163_026_230_855_041,
    161_564_112_192_664,
    160_127_986_750_951,
    158_717_167_484_423,
    157_330_991_349_188,
    155_968_818_263_913,
    154_630_030_124_309,
    153_314_029_867_932,
    152_020_240_586_346,
    150_748_104_681_858,
    149_497_083_066_241,
    148_266_654_399_029,
    147_056_314_363_118,
    145_865_574_975_563,
    144_693_963_931_582,
    143_541_023_979_936,
    142_406_312_327_921,
    141_289_400_074_369,
];
const LN_STEPS: [i64; 64] = [
    2_190_477_799_686,
    6_520_947_471_724,
    10_785_801_437_023,
    14_986_998_484_153,
    19_126_410_978_171,
    23_205_829_871_128,
    27_226_969_354_651,
    31_191_471_184_839,
    35_100_908_706_795,
    38_956_790_603_471,
    42_760_564_391_199,
    46_513_619_682_152,
    50_217_291_232_164,
    53_872_861_790_610,
    57_481_564_767_595,
    61_044_586_732_314,
    64_563_069_755_255,
    68_038_113_605_810,
    71_470_777_815_873,
    74_862_083_619_115,
    78_213_015_774_824,
    81_524_524_284_443,
    84_797_526_008_309,
    88_032_906_189_472,
    91_231_519_890_915,
    94_394_193_352_042,
    97_521_725_269_790,
    100_614_888_009_352,
    103_674_428_749_087,
    106_701_070_563_884,
    109_695_513_450_891,
    112_658_435_301_250,
    115_590_492_821_228,
    118_492_322_405_858,
    121_364_540_968_004,
    124_207_746_725_557,
    127_022_519_949_264,
    129_809_423_673_533,
    132_569_004_372_401,
    135_301_792_602_675,
    138_008_303_616_163,
    140_689_037_942_738,
    143_344_481_945_911,
    145_975_108_352_425,
    148_581_376_757_348,
    151_163_734_105_982,
    153_722_615_153_869,
    156_258_442_906_081,
    158_771_629_036_891,
    161_262_574_290_878,
    163_731_668_866_436,
    166_179_292_782_611,
    168_605_816_230_124,
    171_011_599_907_390,
    173_396_995_342_305,
    175_762_345_200_506,
    178_107_983_580_787,
    180_434_236_298_311,
    182_741_421_156_210,
    185_029_848_206_147,
    187_299_819_998_373,
    189_551_631_821_772,
    191_785_571_934_395,
    194_001_921_784_903,
];
/// `1/n` for n = 1..=7: `ln(1 + u)`'s series.
const RECIPROCALS: [i64; 7] = [
    281_474_976_710_656,
    140_737_488_355_328,
    93_824_992_236_885,
    70_368_744_177_664,
    56_294_995_342_131,
    46_912_496_118_443,
    40_210_710_958_665,
];

/// `ln x` for `x > 0`, within 4 ulp.
///
/// `x = y × 2^k` with `y ∈ [1, 2)`; `y = (1 + (2j + 1)/128)(1 + u)` for
/// its 64th `j`, so `|u| < 1/128` and `ln y = ln(1 + (2j + 1)/128) +
/// ln(1 + u)`, the latter by its series to u^7 (the rest is below 1e-17):
/// eight products and no division.
pub fn ln(x: I80F48) -> Option<I80F48> {
    if let Some(x) = Q::of(x) {
        return ln_q(x).map(Q::fixed);
    }
    let bits = x.to_bits();
    if bits <= 0 {
        return None;
    }
    let msb = 127 - (bits as u128).leading_zeros() as i32;
    let k = msb - 48;
    let ln_y = ln_reduced(Q(scale_pow2(bits, -k)? as i64));
    Some(I80F48::from_bits(
        i128::from(times_ln2(k)) + i128::from(ln_y.0),
    ))
}

/// [`ln`] of a [`Q`].
#[inline(always)]
pub(crate) fn ln_q(x: Q) -> Option<Q> {
    if x.0 <= 0 {
        return None;
    }
    let msb = 63 - x.0.leading_zeros() as i32;
    let k = msb - 48;
    let ln_y = ln_reduced(Q(scale_q(x.0, -k)?));
    // k ∈ [−48, 14] for a Q: |k ln 2| < 34, and ln y < 1.
    Some(ln_y.add_small(Q(times_ln2(k))))
}

/// `ln y` for `y ∈ [1, 2]` (2 when the reduction rounds up).
#[inline(always)]
fn ln_reduced(y: Q) -> Q {
    // [1, 2], 2 itself when the reduction rounds up.
    debug_assert!((1 << 48..=2 << 48).contains(&y.0));
    let j = (y.0.wrapping_sub(1 << 48) >> 42).clamp(0, 63) as usize;
    // y ∈ [1, 2], its step's reciprocal in (1/2, 1): |u| < 1/128, the
    // series' partial sums within (0, 1], ln y < 1; all unchecked.
    let u = y.mul_small(Q(LN_RECIPROCALS[j])).sub_small(Q::ONE);
    // u − u²/2 + u³/3 − … + u⁷/7, as u (1 − u (1/2 − u (1/3 − …))).
    // The error of the step that adds 1/n is scaled by uⁿ ≤ 2^-7n: for
    // n ≥ 2 the product is coarse (u's top 31 bits times the sum's, within
    // 2^11 ulp, 1/8 of an ulp once scaled).
    let mut series = Q(RECIPROCALS[6]);
    for &coefficient in RECIPROCALS[1..6].iter().rev() {
        series = Q(coefficient).sub_small(Q(mul_coarse::<10, 17>(u.0, series.0)));
    }
    series = Q(RECIPROCALS[0]).sub_small(u.mul_small(series));
    Q(LN_STEPS[j]).add_small(u.mul_small(series))
}

/// `1/n!` for n = 0..=6: exp's Taylor series.
const INV_FACTORIALS: [i64; 7] = [
    281_474_976_710_656,
    281_474_976_710_656,
    140_737_488_355_328,
    46_912_496_118_443,
    11_728_124_029_611,
    2_345_624_805_922,
    390_937_467_654,
];
/// `e^(j/32)` for j = −12..=12: [`exp`]'s steps.
const EXP_STEPS: [i64; 25] = [
    193_454_733_741_172,
    199_595_646_186_949,
    205_931_492_118_908,
    212_468_459_390_137,
    219_212_932_277_264,
    226_171_497_715_615,
    233_350_951_732_284,
    240_758_306_083_425,
    248_400_795_102_225,
    256_285_882_764_256,
    264_421_269_977_109,
    272_814_902_101_423,
    281_474_976_710_656,
    290_409_951_597_183,
    299_628_553_032_527,
    309_139_784_289_805,
    318_952_934_436_701,
    329_077_587_407_560,
    339_523_631_363_459,
    350_301_268_349_405,
    361_421_024_258_072,
    372_893_759_109_839,
    384_730_677_659_135,
    396_943_340_337_475,
    409_543_674_543_863,
];

/// Largest argument of [`exp`]: e^54 ≈ 2.8e23 is within I80F48 (2^79).
const EXP_MAX: I80F48 = I80F48::from_bits(54 << 48);
/// Below this, e^x is under half an ulp: zero.
const EXP_ZERO_BELOW: I80F48 = I80F48::from_bits(-35 << 48);

/// `e^x`, relative error below 1e-14 (or 2 ulp absolute); `None` for
/// `x > 54`, zero below −35.
///
/// `x = k ln 2 + j/32 + s` with |s| ≤ 1/64; `e^s` by its Taylor series to
/// s^6 (the rest is below 1e-16), times `e^(j/32)` from a table, then
/// `× 2^k`: eight products.
pub fn exp(x: I80F48) -> Option<I80F48> {
    if x > EXP_MAX {
        return None;
    }
    if x < EXP_ZERO_BELOW {
        return Some(I80F48::ZERO);
    }
    // Within [−35, 54]: a Q.
    let (value, k) = exp_reduced(Q::of(x)?);
    match scale_q(value.0, k) {
        Some(bits) if bits < i64::MAX >> 1 => Some(Q(bits).fixed()),
        _ => scale_pow2(i128::from(value.0), k).map(I80F48::from_bits),
    }
}

/// [`exp`] of a [`Q`], when the result is one (`x` below about 10.4).
#[inline(always)]
pub(crate) fn exp_q(x: Q) -> Option<Q> {
    if x.0 < EXP_ZERO_BELOW.to_bits() as i64 {
        return Some(Q(0));
    }
    if x.0 > EXP_MAX.to_bits() as i64 {
        return None;
    }
    let (value, k) = exp_reduced(x);
    scale_q(value.0, k).map(Q)
}

/// `e^x = value × 2^k` for `x ∈ [−35, 54]`.
#[inline(always)]
fn exp_reduced(x: Q) -> (Q, i32) {
    debug_assert!((EXP_ZERO_BELOW.to_bits() as i64..=EXP_MAX.to_bits() as i64).contains(&x.0));
    // x ∈ [−35, 54], so every operand below is within ±128 and every sum
    // bounded as commented: the unchecked small forms.
    // k = round(x / ln 2) ∈ [−51, 78]; then |r| ≤ ln 2 / 2 < 12.5/32.
    let k = (x
        .mul_small(Q(INV_LN2.to_bits() as i64))
        .0
        .wrapping_add(1 << 47)
        >> 48) as i32;
    let r = x.0.wrapping_sub(times_ln2(k));
    // j = round(32 r) ∈ [−12, 12]; s = r − j/32, exactly, |s| ≤ 1/64.
    let j = (r.wrapping_add(1 << 42) >> 43).clamp(-12, 12);
    let s = Q(r.wrapping_sub(j << 43));
    // Partial sums within (0.98, 1.02).
    let mut series = Q(INV_FACTORIALS[6]);
    for &coefficient in INV_FACTORIALS[..6].iter().rev() {
        series = series.mul_small(s).add_small(Q(coefficient));
    }
    (series.mul_small(Q(EXP_STEPS[(j + 12) as usize])), k)
}

/// The standard normal upper tail `T(a) = Φ(−a)` around the centre of
/// each 16th of `[0, 130/16)`: row `i` holds `T`'s Taylor coefficients at
/// `c = (2i + 1)/32`, `k₀ = T(c)` and `kₙ = (−1)ⁿ Heₙ₋₁(c) φ(c) / n!`
/// (`Heₙ` the probabilists' Hermite polynomials, `T⁽ⁿ⁾ = −φ⁽ⁿ⁻¹⁾`), in
/// bits. Within a row `|t| = |a − c| ≤ 1/32`, where the first term left out
/// is below 1e-17 for the tail and 2e-15 for the density. Past 130/16 the
/// tail is below half an ulp and the density below one. Computed in 50-digit
/// arithmetic; `the_normal_table_is_taylor_s` recomputes it in f64.
#[rustfmt::skip]
const NORMAL_TAYLOR: [[i64; 9]; NORMAL_ROWS] = [
    [137228926010786, -112237452259478, 1753710191554, 18687974228751, -438284830588, -2800456854121, 73023690194, 333061722112, -9124989158],
    [130225488815884, -111799879901503, 5240619370383, 18469543961593, -1306316498330, -2745938159895, 217080816859, 323990067619, -27055417554],
    [123262954120063, -110929846333612, 8666394244813, 18036933022018, -2148966736975, -2638384742772, 355236834273, 306164028136, -44040855561],
    [116368060090345, -109637474478219, 11991598771055, 17398525002647, -2950081631258, -2480712679030, 483786867257, 280204598378, -59496151693],
    [109566760454325, -107937702986078, 15178739482417, 16566610337870, -3694629703118, -2277168629880, 599359573275, 247010092131, -72901045688],
    [102883932040775, -105849998826471, 18192968548300, 15557055491586, -4369095881025, -2033182981917, 699030559142, 207718199556, -83821522724],
    [96343102943076, -103397986244620, 21002715955938, 14388879921737, -4961823276374, -1755183847055, 780417009828, 163658399377, -91926886289],
    [89966206233943, -100609001972886, 23580234837395, 13083755302138, -5463291714035, -1450379697130, 841749809043, 116297074946, -97001761275],
    [83773363483345, -97513588399617, 25902046918648, 11665443924759, -5866324591032, -1126519600917, 881920535135, 67178007115, -98952525442],
    [77782701553368, -94144937821556, 27949278415775, 10159194950471, -6166218569756, -791640787412, 900501928888, 17861090843, -97807977360],
    [72010205290259, -90538301891718, 29707880308220, 8591118164530, -6360793708572, -453813550429, 897741684888, -30137860288, -93714362743],
    [66469607833014, -86730380901459, 31168730636462, 6987555101924, -6450364746787, -120893332938, 874530646746, -75403494033, -86925179484],
    [61172319338569, -82758707598219, 32327620155554, 5374466850861, -6437637249401, 199710792590, 832347623802, -116671034512, -77786446836],
    [56127394014678, -78661039851995, 33185126187560, 3776856568414, -6327535046993, 501243053918, 773184035142, -152868082083, -66718341090],
    [51341534480223, -74474775673804, 33746382727192, 2218242830128, -6126967762400, 777776482416, 699452378788, -183146540994, -54194257202],
    [46819131663962, -70236402902740, 34020757656015, 720197490702, -5844549105782, 1024351765640, 613883085277, -206903672890, -40718446069],
    [42562337728566, -65980994371864, 34021450222993, -698041118843, -5490277977880, 1237076000764, 519414626086, -223791857208, -26803397987],
    [38571168884957, -61741757603537, 33765023689434, -2019871952850, -5075195211132, 1413179745363, 419081803736, -233717215805, -12948096230],
    [34843634456208, -57549646144914, 33270889177529, -3231547513020, -4611028993272, 1551032581647, 315906962015, -236827796600, 381842976],
    [31375888169380, -53433037609867, 32560757293513, -4322301382178, -4109841679870, 1650119116795, 212798445050, -233492481272, 12771286795],
    [28162397401866, -49417481420022, 31658074034702, -5284388882317, -3583689858583, 1710978858609, 112460037379, -224272162629, 23869298827],
    [25196125985631, -45525517207022, 30587456873468, -6113045523404, -3044308248393, 1735114670266, 17314376757, -209885012237, 33399011354],
    [22468726173384, -41776562916066, 29374145800359, -6806370357907, -2502826387775, 1724875475248, -70557504475, -191167819815, 41163450949],
    [19970735486611, -38186869894735, 28043482578946, -7365143363487, -1969525184377, 1683319527434, -149459234736, -169035431692, 47047338223],
    [17691774384552, -34769540707828, 26620429604431, -7792587492624, -1453638367885, 1614064874058, -218104357349, -144440252075, 51015091000],
    [15620741001280, -31534604124032, 25129137661338, -8094087028581, -963201809773, 1521133631152, -275624212805, -118333610019, 53105439529],
    [13745999578567, -28489140697133, 23592569639813, -8276874372458, -504951645123, 1408796388316, -321559617008, -91630553513, 53423204140],
    [12055559657956, -25637451624535, 22032184989835, -8349697379670, -84270238812, 1281422501542, -355838122246, -65179330287, 52128884839],
    [10537243568460, -22981263109123, 20467687456562, -8322478909147, 294822646469, 1143341268567, -378739125302, -39736474790, 49426766462],
    [9178840239365, -20519958266294, 18916836526740, -8205979404343, 629637543899, 998718066339, -390849411655, -15948064649, 45552253202],
    [7968243864077, -18250828686812, 17395321092118, -8011472162814, 918747020572, 851448522829, -393011893850, 5662640994, 40759116024],
    [6893576425923, -16169338060725, 15916692153526, -7750439548964, 1161887439918, 705072752877, -386270322360, 24701295678, 35307271484],
    [5943293557179, -14269390755433, 14492349985987, -7434296843773, 1359837201647, 562710663397, -371812632724, 40902693913, 29451618166],
    [5106273627328, -12543598885497, 13131580083254, -7074148785522, 1514278074379, 427018374182, -350915363408, 54125770998, 23432345523],
    [4371890337156, -10983542174766, 11841631407170, -6680582211442, 1627646113827, 300164945128, -324891258999, 64344188992, 17467008061],
    [3730069425448, -9580015754432, 10627829977573, -6263496628508, 1702978289863, 183827878149, -295041789422, 71633438832, 11744533744],
    [3171330371046, -8323261926686, 9493720635126, -5831973078513, 1743760373818, 79205291222, -262615894943, 76155442998, 6421216773],
    [2686814193146, -7203182818688, 8441229865650, -5394180362757, 1753780912028, -12957748100, -228775834586, 78141640818, 1618637729],
    [2268298617447, -6209531724964, 7470842856598, -4957316587069, 1736995283309, -92331492032, -194570595657, 77875486547, -2576636653],
    [1908201987258, -5332081762462, 6581788425539, -4527583098106, 1697402955773, -158955244697, -160916934045, 75675197834, -6111793005],
    [1599577360585, -4560771220343, 5772226075747, -4110187214688, 1638940167503, -213185377595, -128587774494, 71877469360, -8965218987],
    [1336098251280, -3885825660615, 5039430153610, -3709369710206, 1565389395860, -255640292572, -98207417972, 66822723930, -11142956670],
    [1112037450232, -3297857405335, 4379966866461, -3328452762123, 1480306184604, -287144746252, -70252785908, 60842321588, -12674467885],
    [922240307306, -2787943525717, 3789860730272, -2969904032523, 1386963192060, -308675630804, -45059780400, 54247995757, -13608008694],
    [762093772716, -2347683826762, 3264747821591, -2635412655139, 1288310724845, -321310942424, -22833753543, 47323642247, -14005886406],
    [627492393876, -1969240600581, 2800013978951, -2325973150784, 1186952540394, -326183284731, -3663052727, 40319458591, -13939837611],
    [514802346721, -1645362108094, 2390916813325, -2041973644892, 1085135340813, -324438870114, 12465365603, 33448322330, -13486723233],
    [420824454352, -1369391850436, 2032691027991, -1783285188044, 984750137503, -317202615936, 25649192676, 26884210360, -12724690225],
    [342757015880, -1135265718211, 1720637104163, -1549349454296, 887343532640, -305549598519, 36053732400, 20762398442, -11729902435],
    [278159138652, -937499069655, 1450193873373, -1339262586973, 794136928217, -290482836288, 43895288699, 15181140118, -10573898176],
    [224915141424, -771165699468, 1216995869473, -1151853454430, 706051721474, -272917131016, 49425552932, 10204505868, -9321591413],
    [181200477302, -631870529943, 1016916634128, -985755050376, 623738661411, -253668505727, 52917428947, 5866063860, -8029898661],
    [145449515682, -515717696250, 846099345410, -839468209667, 547609708174, -233448639539, 54652596991, 2173099867, -6746945884],
    [116325423433, -419275518333, 700976257212, -711417200296, 477870939670, -212863610860, 54910991180, -888897768, -5511788995],
    [92692298199, -339539662190, 578278487167, -599997088606, 414555272905, -192416216375, 53962253118, -3351725386, -4354568152],
    [73589631301, -273895600984, 475037682957, -503613054088, 357553998183, -172511128126, 52059129523, -5260118871, -3297009211],
    [58209114187, -220081298225, 388581042178, -420712052027, 306646351400, -153462177872, 49432705749, -6667727707, -2353184647],
    [45873750461, -176150856212, 316521069757, -349807388777, 261526564229, -135501109723, 46289310280, -7633516769, -1530450097],
    [36019194266, -140439707067, 256741339482, -289496889649, 221828027448, -118787211624, 42808886757, -8218664169, -830480080],
    [28177204544, -111531773617, 207379391568, -238475408529, 187144374439, -103417317209, 39144608137, -8483987691, -250336504],
    [21961082178, -88228894859, 166807754343, -195542457894, 157047437337, -89435755802, 35423500293, -8487901997, 216484897],
    [17052942323, -69522696352, 133613932052, -159605734382, 131102146708, -76843915124, 31747846899, -8284884369, 579073012],
    [13192666016, -54568989606, 106580057825, -129681285359, 108878537262, -65609164432, 28197161459, -7924408322, 848215559],
    [10168372483, -42664705761, 84662775495, -104891012455, 89961088838, -55672962397, 24830533074, -7450291829, 1035628954],
    [7808255238, -33227306256, 66973789173, -84458144825, 73955675886, -46958041959, 21689177657, -6900399399, 1153313922],
    [5973630256, -25776565507, 52761407522, -67701243097, 60494423061, -39374622417, 18799053678, -6306634378, 1213038738],
    [4553052154, -19918585996, 41393311522, -54027219338, 49238772340, -32825646607, 16173429306, -5695158578, 1225945429],
    [3457363876, -15331882986, 32340690674, -42923782429, 39881061668, -27211078418, 13815314624, -5086779984, 1202269351],
    [2615555964, -11755362453, 25163822751, -33951644976, 32144899555, -22431323497, 11719697347, -4497454955, 1151159270],
    [1971322800, -8978010101, 19499115689, -26736759574, 25784597235, -18389854912, 9875542414, -3938858324, 1080583151],
    [1480214538, -6830109909, 15047585892, -20962790128, 20583892518, -14995136762, 8267534557, -3418982406, 997304129],
    [1107294697, -5175816039, 11564713963, -16363969167, 16354169477, -12161943595, 6877558310, -2942733672, 906911389],
    [825224094, -3906910919, 8851595051, -12718444872, 12932347490, -9812173182, 5685921956, -2512503269, 813891631],
    [612701920, -2937593667, 6747285453, -9842181906, 10178583207, -7875246035, 4672340818, -2128694372, 721728277],
    [453204097, -2200155997, 5122238180, -7583447842, 7973900891, -6288178028, 3816701372, -1790195344, 633017344],
    [333967558, -1641416380, 3872716772, -5817891359, 6217840917, -4995403662, 3099631382, -1494792743, 549590795],
    [245176743, -1219797078, 2916077390, -4444198827, 4826193512, -3948417722, 2502902904, -1239522344, 472640108],
    [179315364, -902942202, 2186813145, -3380301690, 3728865220, -3105292929, 2009695074, -1020959487, 402834592],
    [130652499, -665787829, 1633260768, -2560097242, 2867909146, -2430121263, 1604742522, -835452421, 340430606],
    [94837197, -489007240, 1214877361, -1930639423, 2195736598, -1892417331, 1274393222, -679303840, 285369238],
    [68580284, -357765339, 900003431, -1449753198, 1673517123, -1466513625, 1006597163, -548906756, 237361193],
    [49405841, -260726260, 664037193, -1084025441, 1269765782, -1130970074, 790844365, -440841203, 195958535],
    [35458032, -189266967, 487953900, -807126272, 959110560, -868013824, 618067972, -351938304, 160613666],
    [25351707, -136857439, 357112380, -598417172, 721228674, -663019853, 480525320, -279317852, 130726400],
    [18057390, -98574716, 260298858, -441805329, 539937956, -504038666, 371667307, -220405106, 105680311],
    [12813179, -70723899, 188965417, -324807332, 402428059, -381373888, 286004045, -172931791, 84869742],
    [9057576, -50544091, 136626996, -237789217, 298615823, -287209976, 218972712, -134925654, 67718865],
    [6378511, -35981406, 98386656, -173353774, 220609337, -215288396, 166811825, -104692167, 53694216],
    [4474844, -25514637, 70563918, -125849785, 162266003, -160629298, 126444667, -80791331, 42311988],
    [3127424, -18022051, 50405423, -90981436, 118830949, -119294908, 95373522, -62011888, 33141283],
    [2177435, -12680096, 35860897, -65499384, 86643407, -88190446, 71585414, -47344709, 25804323],
    [1510262, -8886780, 25410637, -46957897, 62900012, -64898204, 53469432, -35956640, 19974512],
    [1043535, -6203972, 17933358, -33525079, 45465323, -47540518, 39745227, -27165714, 15373056],
    [718305, -4314185, 12605511, -23835454, 32721189, -34667572, 29401946, -20418282, 11764709],
    [492557, -2988349, 8824968, -16876098, 23447785, -25166281, 21646687, -15268406, 8953090],
    [336473, -2061899, 6153479, -11899210, 16730272, -18186881, 15861455, -11359618, 6775898],
    [228975, -1417121, 4273505, -8355339, 11886034, -13084228, 11567570, -8409055, 5100257],
    [155228, -970175, 2956002, -5842682, 8408294, -9371206, 8396526, -6193856, 3818348],
    [104832, -661602, 2036493, -4068786, 5922701, -6682008, 6066325, -4539639, 2843431],
    [70528, -449414, 1397397, -2821786, 4154096, -4743389, 4362446, -3310876, 2106284],
    [47268, -304089, 955029, -1948911, 2901228, -3352331, 3122641, -2402925, 1552103],
    [31559, -204955, 650091, -1340512, 2017619, -2358778, 2224900, -1735509, 1137822],
    [20990, -137600, 440750, -918252, 1397179, -1652398, 1577989, -1247428, 829846],
    [13907, -92020, 297628, -626423, 963439, -1152485, 1114065, -892315, 602156],
    [9179, -61299, 200178, -425589, 661543, -800303, 782957, -635253, 434736],
    [6036, -40674, 134099, -287959, 452332, -553319, 547764, -450103, 312294],
    [3953, -26884, 89474, -194040, 307982, -380895, 381491, -317412, 223223],
    [2580, -17700, 59461, -130218, 208816, -261064, 264495, -222789, 158769],
    [1677, -11608, 39358, -87032, 140986, -178158, 182557, -155643, 112372],
    [1086, -7583, 25948, -57931, 94791, -121055, 125440, -108229, 79146],
    [700, -4934, 17039, -38403, 63465, -81901, 85809, -74910, 55474],
    [450, -3198, 11144, -25354, 42314, -55172, 58438, -51609, 38695],
    [288, -2065, 7260, -16671, 28094, -37007, 39622, -35393, 26862],
    [184, -1328, 4710, -10917, 18576, -24717, 26745, -24161, 18559],
    [117, -851, 3044, -7120, 12231, -16437, 17974, -16418, 12761],
    [74, -543, 1960, -4625, 8020, -10885, 12026, -11106, 8733],
    [47, -345, 1256, -2992, 5237, -7177, 8011, -7479, 5949],
    [29, -219, 802, -1928, 3405, -4712, 5314, -5014, 4033],
    [18, -138, 510, -1237, 2205, -3081, 3509, -3346, 2721],
    [11, -87, 323, -790, 1422, -2006, 2307, -2223, 1828],
    [7, -54, 204, -503, 913, -1300, 1510, -1470, 1222],
    [4, -34, 128, -319, 584, -839, 984, -968, 813],
    [3, -21, 80, -201, 372, -539, 639, -634, 539],
    [2, -13, 50, -127, 236, -345, 413, -414, 355],
    [1, -8, 31, -79, 149, -220, 266, -269, 233],
    [1, -5, 19, -49, 94, -140, 170, -174, 152],
    [0, -3, 12, -31, 59, -88, 109, -112, 99],
    [0, -2, 7, -19, 37, -56, 69, -72, 64],
    [0, -1, 4, -12, 23, -35, 44, -46, 41],
    [0, -1, 3, -7, 14, -22, 27, -29, 27],
];
const NORMAL_ROWS: usize = 130;
/// Where the table ends: beyond, Φ(−a) and φ(a) are zero in I80F48.
const TAIL_ZERO_FROM: Q = Q((NORMAL_ROWS as i64) << 44);

/// The standard normal distribution at `x`: its density φ(x) and its upper
/// tail `Q(|x|) = Φ(−|x|)` (from which Φ(x) and Φ(−x) follow without
/// cancellation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormalAt {
    pub density: I80F48,
    /// Φ(−|x|) ∈ [0, 1/2].
    pub tail: I80F48,
    pub negative: bool,
}

impl NormalAt {
    /// Φ(x).
    pub fn cdf(&self) -> I80F48 {
        if self.negative {
            self.tail
        } else {
            I80F48::ONE - self.tail
        }
    }

    /// Φ(−x) = 1 − Φ(x).
    pub fn cdf_of_negation(&self) -> I80F48 {
        if self.negative {
            I80F48::ONE - self.tail
        } else {
            self.tail
        }
    }

    /// Beyond the table: no density, no tail.
    fn far(negative: bool) -> Self {
        Self {
            density: I80F48::ZERO,
            tail: I80F48::ZERO,
            negative,
        }
    }
}

/// [`NormalAt`] of `x`, absolute error below 1e-14 in both.
pub fn normal_at(x: I80F48) -> NormalAt {
    match Q::of(x) {
        Some(x) => normal_q(x),
        // Past ±2^15: as far in the tail as can be.
        None => NormalAt::far(x < 0),
    }
}

/// [`normal_at`] of a [`Q`]: the tail by Horner over its row's Taylor
/// polynomial in `t = |x| − c`, and the density, `−T′`, by Horner over the
/// polynomial's derivative. Sixteen products (nine of them coarse) and no
/// division; every coefficient is below 1/2 and |t| ≤ 1/32, so every
/// partial sum is below 1 and each product is unchecked.
#[inline(always)]
pub(crate) fn normal_q(x: Q) -> NormalAt {
    let negative = x.0 < 0;
    let a = x.0.unsigned_abs();
    if a >= TAIL_ZERO_FROM.0 as u64 {
        return NormalAt::far(negative);
    }
    // a < 130/16: its 16th, and its offset from the row's centre.
    let row = &NORMAL_TAYLOR[(a >> 44) as usize];
    let t = Q((a as i64 & ((1 << 44) - 1)).wrapping_sub(1 << 43));
    // The tail is Σ kₙ tⁿ and the density −Σ n kₙ tⁿ⁻¹. A Horner step's
    // error is scaled by the powers of t still to come: by t³ ≤ 2^-15 or
    // less in the steps that add k₃ … k₇ to the tail and 4k₄ … 7k₇ to the
    // slope, so those products are coarse (the sum's top 31 bits times
    // t's, within 2^12 ulp: 1/8 of an ulp once scaled).
    let coarse = |p: Q| Q(mul_coarse::<16, 12>(p.0, t.0));
    let mut tail = Q(row[8]);
    let mut slope = Q(row[8].wrapping_mul(8));
    for n in (3..8).rev() {
        tail = coarse(tail).add_small(Q(row[n]));
        if n >= 4 {
            slope = coarse(slope).add_small(Q(row[n].wrapping_mul(n as i64)));
        }
    }
    slope = slope.mul_small(t).add_small(Q(row[3].wrapping_mul(3)));
    for n in (1..3).rev() {
        tail = tail.mul_small(t).add_small(Q(row[n]));
        slope = slope
            .mul_small(t)
            .add_small(Q(row[n].wrapping_mul(n as i64)));
    }
    tail = tail.mul_small(t).add_small(Q(row[0]));
    NormalAt {
        // Rounding may leave an ulp below zero far out.
        density: I80F48::from_bits(i128::from(slope.0.wrapping_neg().max(0))),
        tail: I80F48::from_bits(i128::from(tail.0.max(0))),
        negative,
    }
}

/// Φ(x).
pub fn normal_cdf(x: I80F48) -> I80F48 {
    normal_at(x).cdf()
}

/// Φ(−|x|).
pub fn normal_tail(x: I80F48) -> I80F48 {
    normal_at(x).tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(x: I80F48) -> f64 {
        x.to_num()
    }

    fn fx(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    const ULP: f64 = 1.0 / (1u64 << 48) as f64;

    #[test]
    fn constants_are_what_they_say() {
        let close = |bits: i64, value: f64| (bits as f64 * ULP - value).abs() < ULP;
        assert!((f(INV_LN2) - 1.0 / std::f64::consts::LN_2).abs() < ULP);
        assert!((LN2_64 as f64 / 2f64.powi(64) - std::f64::consts::LN_2).abs() < 1e-16);
        for (n, &bits) in RECIPROCALS.iter().enumerate() {
            assert!(close(bits, 1.0 / (n + 1) as f64));
        }
        let mut factorial = 1.0;
        for (n, &bits) in INV_FACTORIALS.iter().enumerate() {
            if n > 0 {
                factorial *= n as f64;
            }
            assert!(close(bits, 1.0 / factorial));
        }
        for (i, &bits) in RSQRT_SEEDS.iter().enumerate() {
            assert!(close(bits, 1.0 / (1.0 + (2 * i + 1) as f64 / 64.0).sqrt()));
        }
        for j in 0..64 {
            let centre = 1.0 + (2 * j + 1) as f64 / 128.0;
            assert!(close(LN_RECIPROCALS[j], 1.0 / centre));
            assert!(close(LN_STEPS[j], centre.ln()));
        }
        for (i, &bits) in EXP_STEPS.iter().enumerate() {
            assert!((bits as f64 * ULP - ((i as f64 - 12.0) / 32.0).exp()).abs() < 2.0 * ULP);
        }
    }

    /// The table against its definition, in f64 (libm's erfc): within two
    /// bits of the 50-digit values, every coefficient below 1/2 (the bound
    /// `normal_q`'s unchecked products rely on).
    #[test]
    fn the_normal_table_is_taylor_s() {
        for (i, row) in NORMAL_TAYLOR.iter().enumerate() {
            let c = (2 * i + 1) as f64 / 32.0;
            let density = (-c * c / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let mut expected = [0f64; 9];
            expected[0] = 0.5 * libm::erfc(c / std::f64::consts::SQRT_2);
            // He₀ = 1, He₁ = c, Heₙ₊₁ = c Heₙ − n Heₙ₋₁; kₙ = (−1)ⁿ Heₙ₋₁ φ / n!.
            let (mut previous, mut hermite, mut factorial) = (0f64, 1f64, 1f64);
            for (n, k) in expected.iter_mut().enumerate().skip(1) {
                factorial *= n as f64;
                let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
                *k = sign * hermite * density / factorial;
                (previous, hermite) = (hermite, c * hermite - (n - 1) as f64 * previous);
            }
            for (n, (&bits, exact)) in row.iter().zip(expected).enumerate() {
                let tolerance = 2.0 + exact.abs() / ULP * 1e-15;
                assert!(
                    (bits as f64 - exact / ULP).abs() <= tolerance,
                    "row {i} k{n}: {bits} against {}",
                    exact / ULP
                );
                // The density's coefficients are n·kₙ.
                assert!(
                    bits.unsigned_abs() * n.max(1) as u64 <= 1 << 47,
                    "row {i} k{n}"
                );
            }
        }
        // Past the table the tail rounds to zero and the density is within
        // an ulp of it.
        let end = (NORMAL_ROWS as f64) / 16.0;
        assert!(0.5 * libm::erfc(end / std::f64::consts::SQRT_2) < ULP / 2.0);
        assert!((-end * end / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() < ULP);
    }

    #[test]
    fn basis_points_are_exact_fractions() {
        assert_eq!(from_bps(10_000), I80F48::ONE);
        assert_eq!(from_bps(-2_500), fx(-0.25));
        for bps in [-100_000, -7, -1, 0, 1, 3, 333, 8_000, 100_000] {
            let exact = I80F48::from_num(bps) / 10_000;
            assert!((from_bps(bps) - exact).abs() <= I80F48::DELTA, "{bps}");
        }
    }

    #[test]
    fn products_round_to_nearest_and_refuse_overflow() {
        let third = I80F48::ONE / 3;
        assert_eq!(mul(third, fx(3.0)), Some(I80F48::ONE - I80F48::DELTA));
        assert_eq!(mul(fx(-2.5), fx(4.0)), Some(fx(-10.0)));
        assert_eq!(
            mul(I80F48::DELTA, I80F48::from_bits(1 << 47)),
            Some(I80F48::DELTA)
        );
        assert_eq!(mul(I80F48::MAX, fx(2.0)), None);
        assert_eq!(mul(fx(1e6), fx(1e6)), Some(fx(1e12)));
        assert_eq!(mul(fx(1e6), fx(-0.5)), Some(fx(-5e5)));
    }

    #[test]
    fn reciprocals_of_the_extremes() {
        assert_eq!(recip(I80F48::ZERO), None);
        assert_eq!(recip(fx(-1.0)), None);
        assert_eq!(recip(I80F48::ONE), Some(I80F48::ONE));
        assert_eq!(recip(I80F48::DELTA), Some(I80F48::from_num(1u64 << 48)));
        // 1/MAX is below half an ulp... of a value near 2^-79: zero.
        assert_eq!(recip(I80F48::MAX), Some(I80F48::ZERO));
        assert_eq!(recip(fx(4.0)), Some(fx(0.25)));
    }

    #[test]
    fn the_domain_is_enforced() {
        // Next to the top of a Q and of I80F48 the reductions round without
        // overflowing.
        let top_q = I80F48::from_bits(i128::from(i64::MAX));
        assert!((f(ln(top_q).unwrap()) - f(top_q).ln()).abs() < 1e-13);
        assert!((f(ln(I80F48::MAX).unwrap()) - f(I80F48::MAX).ln()).abs() < 1e-12);
        assert!(rsqrt(I80F48::MAX).is_some());
        assert!(rsqrt(top_q).is_some());
        assert_eq!(ln(I80F48::ZERO), None);
        assert_eq!(ln(fx(-1.0)), None);
        assert_eq!(rsqrt(I80F48::ZERO), None);
        assert_eq!(sqrt(I80F48::ZERO), Some(I80F48::ZERO));
        assert_eq!(exp(fx(54.5)), None);
        assert_eq!(exp(fx(-36.0)), Some(I80F48::ZERO));
        assert_eq!(ln(I80F48::ONE), Some(I80F48::ZERO));
        assert_eq!(exp(I80F48::ZERO), Some(I80F48::ONE));
        assert_eq!(normal_cdf(I80F48::ZERO), I80F48::ONE / 2);
        assert_eq!(normal_cdf(fx(-40.0)), I80F48::ZERO);
        assert_eq!(normal_cdf(fx(40.0)), I80F48::ONE);
        assert_eq!(normal_cdf(I80F48::MIN), I80F48::ZERO);
        assert_eq!(normal_cdf(I80F48::MAX), I80F48::ONE);
    }

    /// The bounds in the module docs, over dense grids.
    #[test]
    fn error_bounds_hold_over_the_range() {
        let mut worst_ln = 0f64;
        let mut worst_exp = 0f64;
        let mut worst_rsqrt = 0f64;
        let mut worst_cdf = 0f64;
        let mut worst_density = 0f64;
        for i in 1..=20_000 {
            // ln over 1e-12 .. 1e12, and densely near 1.
            let x = 10f64.powf(-12.0 + 24.0 * i as f64 / 20_000.0);
            for x in [x, 1.0 + (i as f64 - 10_000.0) * 1e-5] {
                let got = f(ln(fx(x)).unwrap());
                let exact = fx(x).to_num::<f64>().ln();
                worst_ln = worst_ln.max((got - exact).abs());
                let r = f(rsqrt(fx(x)).unwrap());
                let exact_r = 1.0 / fx(x).to_num::<f64>().sqrt();
                worst_rsqrt = worst_rsqrt.max(((r - exact_r).abs() - ULP).max(0.0) / exact_r);
            }
            // exp over −35 .. 40.
            let x = -35.0 + 75.0 * i as f64 / 20_000.0;
            let got = f(exp(fx(x)).unwrap());
            let exact = fx(x).to_num::<f64>().exp();
            worst_exp = worst_exp.max(((got - exact).abs() - 2.0 * ULP).max(0.0) / exact);
            // Φ over −10 .. 10.
            let x = -10.0 + 20.0 * i as f64 / 20_000.0;
            let at = normal_at(fx(x));
            let x64 = fx(x).to_num::<f64>();
            // libm's erfc (musl's, within an ulp of f64). statrs' is off by
            // 2.5e-11 near x = ±0.708, where its approximations meet.
            let exact_cdf = 0.5 * libm::erfc(-x64 / std::f64::consts::SQRT_2);
            worst_cdf = worst_cdf.max((f(at.cdf()) - exact_cdf).abs());
            worst_cdf = worst_cdf.max((f(at.cdf_of_negation()) - (1.0 - exact_cdf)).abs());
            let exact_density = (-x64 * x64 / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            worst_density = worst_density.max((f(at.density) - exact_density).abs());
        }
        println!("ln {worst_ln:e} exp {worst_exp:e} rsqrt {worst_rsqrt:e} cdf {worst_cdf:e} density {worst_density:e}");
        assert!(worst_ln <= 4.0 * ULP, "ln: {worst_ln:e}");
        assert!(worst_exp <= 1e-14, "exp: {worst_exp:e}");
        assert!(worst_rsqrt <= 1e-14, "rsqrt: {worst_rsqrt:e}");
        assert!(worst_cdf <= 1e-14, "cdf: {worst_cdf:e}");
        assert!(worst_density <= 1e-14, "density: {worst_density:e}");
    }

    proptest! {
        #[test]
        fn products_match_the_generic_product(a: i128, b: i128, shift_a in 0u32..127, shift_b in 0u32..127) {
            let (x, y) = (I80F48::from_bits(a >> shift_a), I80F48::from_bits(b >> shift_b));
            // fixed's product is exact, then rounded down: within an ulp.
            match (mul(x, y), x.checked_mul(y)) {
                (Some(fast), Some(generic)) => prop_assert!((fast - generic).abs() <= I80F48::DELTA, "{x} × {y}"),
                (None, None) => {}
                // Rounding may differ at the very edge of the range only.
                (fast, generic) => prop_assert!(
                    fast.or(generic).unwrap().abs() >= I80F48::MAX - I80F48::DELTA,
                    "{x} × {y}: {fast:?} vs {generic:?}"
                ),
            }
            // Where the exact product fits i128: rounded to nearest.
            let (small_a, small_b) = (x.to_bits() >> 64, y.to_bits() >> 1);
            if let Some(exact) = small_a.checked_mul(small_b) {
                let nearest = (exact + (1 << 47)) >> 48;
                let fast = mul(I80F48::from_bits(small_a), I80F48::from_bits(small_b)).unwrap().to_bits();
                // Half-way cases round away from zero for negatives, up
                // for the arithmetic shift: equal but for the tie.
                prop_assert!((fast - nearest).abs() <= i128::from(exact & ((1 << 48) - 1) == 1 << 47 && exact < 0));
            }
        }

        #[test]
        fn reciprocals_are_within_their_bound(bits in 1i128..i128::MAX, shift in 0u32..127) {
            let n = (bits >> shift).max(1);
            let exact = (1u128 << 96) / n as u128;
            let got = recip(I80F48::from_bits(n)).unwrap().to_bits() as u128;
            let error = got.abs_diff(exact);
            prop_assert!(error <= (exact >> 58) + 1, "1/{n}: {got} vs {exact}");
        }

        #[test]
        fn quotients_are_within_an_ulp(a: i128, b in 1i128..i128::MAX, shift_a in 0u32..127, shift_b in 0u32..127) {
            let (x, y) = (I80F48::from_bits(a >> shift_a), I80F48::from_bits((b >> shift_b).max(1)));
            // fixed's quotient is exact, then rounded down.
            match (div(x, y), x.checked_div(y)) {
                (Some(fast), Some(generic)) => {
                    let bound = I80F48::from_bits((generic.to_bits().unsigned_abs() >> 58) as i128) + I80F48::DELTA;
                    prop_assert!((fast - generic).abs() <= bound, "{x} / {y}: {fast} vs {generic}");
                }
                (None, None) => {}
                (fast, generic) => prop_assert!(
                    fast.or(generic).unwrap().abs() >= I80F48::MAX - I80F48::MAX / (1i128 << 57),
                    "{x} / {y}: {fast:?} vs {generic:?}"
                ),
            }
        }

        #[test]
        fn ln_and_exp_are_inverse(x in -30.0f64..40.0) {
            let x = fx(x);
            let back = ln(exp(x).unwrap()).unwrap();
            // e^x keeps ~48 bits relative for x > 0; below, its last ulp is
            // coarse against e^x itself.
            let slack = if x > 0 { 1e-12 } else { 1e-14 / f(exp(x).unwrap()) + 1e-12 };
            prop_assert!((f(back) - f(x)).abs() <= slack, "{x}: {back}");
        }

        #[test]
        fn the_cdf_is_monotone(a in -12.0f64..12.0, step in 1e-6f64..1.0) {
            let (lo, hi) = (normal_cdf(fx(a)), normal_cdf(fx(a + step)));
            // Monotone within the bound: an approximation may flatten but
            // not turn back beyond its error.
            prop_assert!(hi >= lo - fx(1e-14));
            prop_assert!(lo >= 0 && hi <= 1);
        }
    }
}
