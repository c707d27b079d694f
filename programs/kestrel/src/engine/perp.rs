//! Perpetual position and fee arithmetic, in native quote units. Pure: the
//! program, the SDK's health preview and the keeper's audit share it.
//!
//! A position is a signed base quantity and the quote that paid for it (`< 0`
//! for a long: quote went out; `> 0` for a short). A fill that grows the
//! position adds to both. A fill that shrinks it *realizes* the closed share:
//! that share of the entry quote, plus the fill's quote, moves to collateral.
//! Whatever the rounding, collateral + entry quote changes by exactly the fill's
//! quote flow, so no trade creates or destroys a unit.
use super::fastmul::FastMulInt;
use fixed::types::I80F48;

use super::fastdiv::{div_u128_u32, fixed_div_int};
use super::fastmul::{checked_mul_u128_u64, widening_mul};
use super::node::Side;
use crate::units::{BaseLots, NativeUnits, SignedBaseLots, SignedNativeUnits, Ticks};

/// A position before or after a trade.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub base_lots: SignedBaseLots,
    /// Entry quote of the open position.
    pub quote: SignedNativeUnits,
}

/// What one trade did to a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeOutcome {
    pub position: Position,
    /// What to add to collateral (negative: a realized loss).
    pub realized: SignedNativeUnits,
}

/// Applies a trade of `lots` base lots for `quote` native units on `side`
/// (a bid buys, an ask sells). `None` on overflow, and for a trade of no lots
/// (no fill has one; it could only carry quote into a flat position).
pub fn apply_trade(
    position: Position,
    side: Side,
    lots: BaseLots,
    quote: NativeUnits,
) -> Option<TradeOutcome> {
    if lots.is_zero() {
        return None;
    }
    let signed_lots = lots.signed(side)?.0;
    let flow = quote.flow(side)?.0;
    let base = position.base_lots.0;
    let entry = position.quote.0;
    let new_base = SignedBaseLots(base.checked_add(signed_lots)?);
    if base == 0 || (base > 0) == (signed_lots > 0) {
        return Some(TradeOutcome {
            position: Position {
                base_lots: new_base,
                quote: SignedNativeUnits(entry.checked_add(flow)?),
            },
            realized: SignedNativeUnits::ZERO,
        });
    }
    // Shrinking (and perhaps flipping): split the fill into its closing part
    // and the part that opens the other way.
    let closing = i128::from(signed_lots.unsigned_abs().min(base.unsigned_abs()));
    let closing_flow = (i128::from(flow) * closing / i128::from(signed_lots.unsigned_abs())) as i64;
    let opening_flow = flow - closing_flow;
    // The closed share of the entry quote; all of it when fully closed.
    let entry_share = (i128::from(entry) * closing / i128::from(base.unsigned_abs())) as i64;
    Some(TradeOutcome {
        position: Position {
            base_lots: new_base,
            quote: SignedNativeUnits(entry.checked_sub(entry_share)?.checked_add(opening_flow)?),
        },
        realized: SignedNativeUnits(closing_flow.checked_add(entry_share)?),
    })
}

/// The quote value of a fill in native units.
pub fn fill_quote(price: Ticks, lots: BaseLots, quote_lot_size: u64) -> Option<NativeUnits> {
    price.checked_quote(lots)?.checked_to_native(quote_lot_size)
}

/// The taker fee on `quote`, rounded up (in the exchange's favour).
pub fn taker_fee(quote: NativeUnits, fee_bps: u32) -> Option<u64> {
    // 64-bit-limb product and division (fastmul, fastdiv): a u128 multiply
    // or divide is a software routine on SBF, and the crank prices every fill.
    // The product is below 2^96, so adding the divisor cannot overflow.
    let scaled = widening_mul(quote.0, u64::from(fee_bps));
    u64::try_from(div_u128_u32(scaled + 9_999, 10_000)).ok()
}

/// The maker's fee on `quote`: positive is charged (rounded up), negative is
/// a rebate (rounded down), so the exchange never pays out more than the
/// taker fee of the same fill, which is at least as large.
pub fn maker_fee(quote: NativeUnits, fee_bps: i32) -> Option<i64> {
    let scaled = widening_mul(quote.0, u64::from(fee_bps.unsigned_abs()));
    if fee_bps >= 0 {
        i64::try_from(div_u128_u32(scaled + 9_999, 10_000)).ok()
    } else {
        i64::try_from(div_u128_u32(scaled, 10_000))
            .ok()
            .map(|rebate| -rebate)
    }
}

/// The rebate `maker_fee` would pay, or 0 for a charged fee.
pub fn maker_rebate(quote: NativeUnits, fee_bps: i32) -> Option<u64> {
    Some(maker_fee(quote, fee_bps)?.min(0).unsigned_abs())
}

/// An oracle price (native quote per native base) in ticks, rounded down.
pub fn price_in_ticks(price: I80F48, base_lot_size: u64, quote_lot_size: u64) -> Option<I80F48> {
    // Dividing by an integer divides the bits: no wide fixed-point division.
    fixed_div_int(
        price.fast_mul_int(i128::from(base_lot_size))?,
        quote_lot_size,
    )
}

/// `bps` basis points of `value` (truncated); `None` past I80F48.
pub fn share_of(value: I80F48, bps: u32) -> Option<I80F48> {
    fixed_div_int(value.fast_mul_int(i128::from(bps))?, 10_000)
}

/// The prices at which fills are allowed: within `band_bps` of the oracle
/// price (in ticks), inclusive, with the band's edges rounded inwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceBand {
    pub low: Ticks,
    pub high: Ticks,
}

impl PriceBand {
    /// `band_bps` either side of `oracle_ticks`, in whole ticks inward:
    /// `ceil(ticks × (1 − bps))` up to `floor(ticks × (1 + bps))`, each
    /// product truncated to I80F48 first; the low end at least 1. Computed
    /// on the fixed-point bits with 64-bit limbs (every order prices its
    /// bands, and `I80F48`'s generic rounding and conversions cost about
    /// four times as much on SBF); `None` where the product leaves I80F48.
    pub fn around(oracle_ticks: I80F48, band_bps: u32) -> Option<Self> {
        const FRAC: u32 = 48;
        let bits = oracle_ticks.to_bits();
        if bits <= 0 {
            // No positive price: nothing lies in the band.
            return Some(Self {
                low: Ticks(1),
                high: Ticks(0),
            });
        }
        let magnitude = bits.unsigned_abs();
        let scale = |factor: u64| -> Option<u128> {
            let product = checked_mul_u128_u64(magnitude, factor)?;
            // Past i128 the I80F48 product does not exist.
            i128::try_from(product).ok()?;
            Some(div_u128_u32(product, 10_000))
        };
        let low = scale(10_000u64.checked_sub(u64::from(band_bps))?)?;
        let high = scale(10_000 + u64::from(band_bps))?;
        let whole = |value: u128| u64::try_from(value).unwrap_or(u64::MAX);
        // Rounded up: the fraction's bits carried into the whole.
        let low_ticks = whole((low + ((1u128 << FRAC) - 1)) >> FRAC);
        Some(Self {
            low: Ticks(low_ticks.max(1)),
            high: Ticks(whole(high >> FRAC)),
        })
    }

    /// `band_bps` of `ticks` plus `floor` (ticks) either side of `ticks`,
    /// edges rounded inwards, the low end at least 1: an option's bands
    /// (`floor` a share of the spot, so a cheap option can be quoted).
    pub fn around_with_floor(ticks: I80F48, band_bps: u32, floor: I80F48) -> Option<Self> {
        if ticks < 0 {
            return Self::around(ticks, band_bps);
        }
        let width = share_of(ticks, band_bps)?.checked_add(floor.max(I80F48::ZERO))?;
        let low = ticks.checked_sub(width)?.checked_ceil()?;
        let high = ticks.checked_add(width)?.checked_floor()?;
        let whole = |value: I80F48| -> u64 {
            if value <= 0 {
                0
            } else {
                value.checked_to_num().unwrap_or(u64::MAX)
            }
        };
        Some(Self {
            low: Ticks(whole(low).max(1)),
            high: Ticks(whole(high)),
        })
    }

    pub fn contains(&self, price: Ticks) -> bool {
        self.low <= price && price <= self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(base_lots: i64, quote: i64) -> Position {
        Position {
            base_lots: SignedBaseLots(base_lots),
            quote: SignedNativeUnits(quote),
        }
    }

    fn side(bought: bool) -> Side {
        if bought {
            Side::Bid
        } else {
            Side::Ask
        }
    }

    fn trade(base: i64, quote: i64, bought: bool, lots: u64, paid: u64) -> TradeOutcome {
        apply_trade(
            pos(base, quote),
            side(bought),
            BaseLots(lots),
            NativeUnits(paid),
        )
        .unwrap()
    }

    #[test]
    fn opening_and_adding_realize_nothing() {
        let open = trade(0, 0, true, 10, 1_500);
        assert_eq!(open.position, pos(10, -1_500));
        assert_eq!(open.realized.0, 0);
        let add = trade(10, -1_500, true, 10, 1_700);
        assert_eq!(add.position, pos(20, -3_200));
        assert_eq!(trade(0, 0, false, 4, 600).position.quote.0, 600);
    }

    #[test]
    fn closing_realizes_the_difference_from_entry() {
        // Long 10 at 150, sell 4 at 160: realize 4 * 10 = 40.
        let partial = trade(10, -1_500, false, 4, 640);
        assert_eq!(partial.realized.0, 40);
        assert_eq!(partial.position, pos(6, -900));
        // Sell the other 6 at 140: realize -60; flat with nothing left over.
        let close = trade(6, -900, false, 6, 840);
        assert_eq!(close.realized.0, -60);
        assert_eq!(close.position, Position::default());
        // Short 5 sold at 100 each, bought back at 90: +50.
        assert_eq!(trade(-5, 500, true, 5, 450).realized.0, 50);
    }

    #[test]
    fn fees_of_any_quote_fit_at_the_validated_fee_cap() {
        // MarketParams::validate caps fees at 1,000 bps.
        let most = NativeUnits(u64::MAX);
        assert!(taker_fee(most, 1_000).is_some());
        assert!(maker_fee(most, 1_000).is_some());
        assert!(maker_fee(most, -1_000).is_some());
    }

    #[test]
    fn a_trade_of_no_lots_is_refused() {
        let flat = Position::default();
        assert_eq!(
            apply_trade(flat, Side::Bid, BaseLots(0), NativeUnits(5)),
            None
        );
    }

    #[test]
    fn flipping_closes_then_opens_at_the_fill_price() {
        // Long 2 at 100, sell 5 at 110: realize +20, now short 3 at 110.
        let flip = trade(2, -200, false, 5, 550);
        assert_eq!(flip.realized.0, 20);
        assert_eq!(flip.position, pos(-3, 330));
    }

    proptest::proptest! {
        /// The limb arithmetic gives exactly the wide-integer answers.
        #[test]
        fn fees_equal_the_wide_integer_forms(quote: u64, taker in 0u32..=u32::MAX, maker in -1_000i32..=1_000) {
            let wide = u128::from(quote) * u128::from(taker);
            proptest::prop_assert_eq!(
                taker_fee(NativeUnits(quote), taker),
                u64::try_from(wide.div_ceil(10_000)).ok()
            );
            let wide = u128::from(quote) * u128::from(maker.unsigned_abs());
            let expected = if maker >= 0 {
                i64::try_from(wide.div_ceil(10_000)).ok()
            } else {
                i64::try_from(wide / 10_000).ok().map(|r| -r)
            };
            proptest::prop_assert_eq!(maker_fee(NativeUnits(quote), maker), expected);
        }
    }

    #[test]
    fn fees_round_for_the_exchange_and_rebates_never_exceed_taker_fees() {
        assert_eq!(taker_fee(NativeUnits(10_001), 5), Some(6));
        assert_eq!(taker_fee(NativeUnits(0), 5), Some(0));
        assert_eq!(maker_fee(NativeUnits(10_001), 2), Some(3));
        assert_eq!(maker_fee(NativeUnits(10_001), -2), Some(-2));
        assert_eq!(maker_rebate(NativeUnits(10_001), -2), Some(2));
        assert_eq!(maker_rebate(NativeUnits(10_001), 2), Some(0));
        assert_eq!(
            fill_quote(Ticks(u64::MAX), BaseLots(2), 1),
            None,
            "overflow is refused"
        );
    }

    #[test]
    fn the_band_is_inclusive_and_rounds_inwards() {
        // 150 quote per base; 1 base lot = 0.01 base (10^7 native, 9 decimals);
        // quote lot 100 native (6 decimals): 150 * 10^6 / 10^9 * 10^7 / 100 = 15,000 ticks.
        let price = I80F48::from_num(150) * I80F48::from_num(1_000_000)
            / I80F48::from_num(1_000_000_000u64);
        let ticks = price_in_ticks(price, 10_000_000, 100).unwrap();
        assert!((ticks - I80F48::from_num(15_000)).abs() < I80F48::from_num(0.001));
        let band = PriceBand::around(I80F48::from_num(15_000), 500).unwrap();
        assert_eq!((band.low, band.high), (Ticks(14_250), Ticks(15_750)));
        assert!(band.contains(Ticks(15_750)) && !band.contains(Ticks(15_751)));
        let odd = PriceBand::around(I80F48::from_num(333), 100).unwrap();
        assert_eq!((odd.low, odd.high), (Ticks(330), Ticks(336)));
    }

    /// The band as I80F48's own arithmetic computes it: the reference the
    /// limb version must equal.
    fn band_by_fixed_point(oracle_ticks: I80F48, band_bps: u32) -> Option<PriceBand> {
        let scale = |bps: i64| -> Option<I80F48> {
            oracle_ticks
                .checked_mul_int(i128::from(bps))
                .and_then(|scaled| scaled.checked_div_int(10_000))
        };
        let low = scale(10_000 - i64::from(band_bps))?.checked_ceil()?;
        let high = scale(10_000 + i64::from(band_bps))?.checked_floor()?;
        let to_ticks = |value: I80F48| Ticks(value.saturating_to_num::<u64>());
        Some(PriceBand {
            low: Ticks(to_ticks(low).0.max(1)),
            high: to_ticks(high),
        })
    }

    proptest! {
        #[test]
        fn the_band_is_the_fixed_point_one(
            bits in 1i128..=i128::MAX,
            wide in proptest::bool::ANY,
            band_bps in 0u32..=10_000,
        ) {
            // Typical prices (a few thousand ticks) as often as wide ones.
            let bits = if wide { bits } else { bits % (1i128 << 70) + 1 };
            let ticks = I80F48::from_bits(bits);
            prop_assert_eq!(PriceBand::around(ticks, band_bps), band_by_fixed_point(ticks, band_bps));
        }
    }

    proptest! {
        #[test]
        fn a_trade_moves_exactly_its_quote_flow(
            base in -1_000_000i64..1_000_000,
            entry in -1_000_000_000i64..1_000_000_000,
            bought: bool,
            lots in 1u64..2_000_000,
            paid in 0u64..2_000_000_000,
        ) {
            let before = pos(base, entry);
            let after = apply_trade(before, side(bought), BaseLots(lots), NativeUnits(paid)).unwrap();
            let flow = if bought { -(paid as i64) } else { paid as i64 };
            prop_assert_eq!(after.realized.0 + after.position.quote.0 - entry, flow);
            let signed = if bought { lots as i64 } else { -(lots as i64) };
            prop_assert_eq!(after.position.base_lots.0, base + signed);
            if after.position.base_lots.is_zero() {
                prop_assert_eq!(after.position.quote.0, 0, "a flat position keeps no quote");
            }
        }
    }
}
