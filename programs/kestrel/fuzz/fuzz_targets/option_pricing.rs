//! Fuzzes the option pricing (`engine::black_scholes`) and its fixed-point
//! functions (`engine::fixed_math`) over every input: no panic, no overflow
//! past a named error, and the properties that hold for any input in range
//! (a price within its bounds, delta within [−1, 1], gamma and vega not
//! negative, the same price alone and with greeks; greeks may overflow
//! where the price alone does not, never the reverse). `cargo fuzz run
//! option_pricing` (from programs/kestrel).
#![no_main]

use fixed::types::I80F48;
use kestrel::engine::black_scholes::{
    price, valuation, OptionSide, PricingError, PricingInputs, MAX_RATE, MAX_VOLATILITY,
};
use kestrel::engine::fixed_math::{div, exp, ln, mul, normal_at, rsqrt};
use libfuzzer_sys::fuzz_target;

fn bits(data: &[u8], at: usize) -> i128 {
    let mut bytes = [0u8; 16];
    let slice = data.get(at..).unwrap_or(&[]);
    let n = slice.len().min(16);
    bytes[..n].copy_from_slice(&slice[..n]);
    i128::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = (
        I80F48::from_bits(bits(data, 0)),
        I80F48::from_bits(bits(data, 16)),
    );
    // The functions answer every input: a value or None, never a panic.
    let _ = (mul(a, b), div(a, b), ln(a), exp(a), rsqrt(a));
    let at = normal_at(a);
    assert!(at.tail >= 0 && at.tail <= I80F48::ONE / 2);
    assert!(at.density >= 0);

    let flags = data.get(96).copied().unwrap_or(0);
    // Mostly inputs in range, so that the pricing itself is exercised;
    // sometimes anything.
    let in_range = flags & 1 == 0;
    let clamp = |value: i128, max: I80F48| {
        if in_range {
            I80F48::from_bits(value.rem_euclid(max.to_bits()))
        } else {
            I80F48::from_bits(value)
        }
    };
    let inputs = PricingInputs {
        side: if flags & 2 == 0 {
            OptionSide::Call
        } else {
            OptionSide::Put
        },
        spot: clamp(bits(data, 32), I80F48::MAX).max(if in_range {
            I80F48::DELTA
        } else {
            I80F48::MIN
        }),
        strike: clamp(bits(data, 48), I80F48::MAX).max(if in_range {
            I80F48::DELTA
        } else {
            I80F48::MIN
        }),
        seconds_to_expiry: (bits(data, 64) as i64).rem_euclid(if in_range {
            10 * 365 * 86_400 + 1
        } else {
            i64::MAX
        }),
        volatility: clamp(bits(data, 72), MAX_VOLATILITY),
        rate: clamp(bits(data, 80), MAX_RATE)
            - if in_range && flags & 4 != 0 {
                MAX_RATE
            } else {
                I80F48::ZERO
            },
    };
    match valuation(&inputs) {
        Ok(v) => {
            assert_eq!(price(&inputs), Ok(v.price));
            assert!(v.price >= 0);
            assert!(v.delta >= -I80F48::ONE && v.delta <= I80F48::ONE);
            assert!(v.gamma >= 0 && v.vega >= 0);
        }
        // Every input in range is valid: only a value past I80F48 fails.
        Err(PricingError::InvalidInput) => {
            assert!(!in_range);
            assert_eq!(price(&inputs), Err(PricingError::InvalidInput));
        }
        // A greek may leave I80F48 where the price alone does not (a scale
        // near its range): the price then either prices or overflows too.
        Err(PricingError::Overflow) => {
            assert!(matches!(
                price(&inputs),
                Ok(_) | Err(PricingError::Overflow)
            ));
        }
    }
});
