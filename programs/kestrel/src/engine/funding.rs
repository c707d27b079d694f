//! Funding and socialized loss: two cumulative indexes per market, in native
//! quote per base lot (I80F48).
//!
//! A position of `b` base lots owes `(index − snapshot) × b`, where the index
//! is the market's long index for a long and its short index for a short,
//! and the snapshot is that index when the position last settled. Funding
//! moves both indexes by the same amount (longs pay shorts when the mark
//! trades above the oracle); a socialized loss moves the long index up and
//! the short index down, so both sides pay. Every settlement rounds up what
//! the position owes (down what it receives): the exchange never pays out
//! more than it takes in.
use super::fastmul::FastMulInt;
use fixed::types::I80F48;

use super::fastdiv::fixed_div_int;
use super::perp::PriceBand;
use crate::units::Ticks;

/// An I80F48 from the `[u64; 2]` (lo, hi) it is stored as: accounts are only
/// 8-byte aligned, so 16-byte fields are kept as two halves.
pub fn from_parts(parts: [u64; 2]) -> I80F48 {
    I80F48::from_bits((u128::from(parts[0]) | (u128::from(parts[1]) << 64)) as i128)
}

pub fn to_parts(value: I80F48) -> [u64; 2] {
    let bits = value.to_bits() as u128;
    [bits as u64, (bits >> 64) as u64]
}

/// One step of a time-weighted average over a window of `period` seconds:
/// the sample weighs `elapsed / period` (at most all of it).
pub fn twap_step(twap: I80F48, sample: I80F48, elapsed: u64, period: u64) -> Option<I80F48> {
    if period == 0 {
        return None;
    }
    let weight = elapsed.min(period);
    let moved = fixed_div_int(
        sample.checked_sub(twap)?.fast_mul_int(i128::from(weight))?,
        period,
    )?;
    twap.checked_add(moved)
}

/// The book's premium over the oracle per base lot: the mid of the best live
/// bid and ask, each clamped into the price band first (a quote far outside
/// it moves the mark no further than the band's edge), less the oracle
/// price. No premium when a side is empty.
pub fn book_premium(
    best_bid: Option<Ticks>,
    best_ask: Option<Ticks>,
    band: &PriceBand,
    quote_lot_size: u64,
    oracle_per_lot: I80F48,
) -> Option<I80F48> {
    let (Some(bid), Some(ask)) = (best_bid, best_ask) else {
        return Some(I80F48::ZERO);
    };
    let clamp = |price: Ticks| price.max(band.low).min(band.high).0;
    // Ticks are quote lots per base lot.
    let sum = u128::from(clamp(bid)).checked_add(u128::from(clamp(ask)))?;
    let mid_per_lot = I80F48::checked_from_num(sum.checked_mul(u128::from(quote_lot_size))?)? / 2;
    mid_per_lot.checked_sub(oracle_per_lot)
}

/// The premium an interval between two funding samples pays: the smaller of
/// the premiums at its two ends when they agree in sign, else none. A book
/// moved for one instant (one sample) therefore weighs nothing; to move
/// funding, a premium has to stand on the book from one sample to the next,
/// where anyone can trade against it or sample it.
pub fn interval_premium(previous: I80F48, current: I80F48) -> I80F48 {
    if previous.signum() != current.signum() {
        return I80F48::ZERO;
    }
    if previous.abs() < current.abs() {
        previous
    } else {
        current
    }
}

/// Funding per base lot for `elapsed` seconds: the premium of the mark TWAP
/// over the oracle TWAP, capped at `cap_bps` of the oracle TWAP per period,
/// applied pro rata to the time elapsed. Positive: longs pay shorts.
pub fn funding_per_lot(
    mark_twap: I80F48,
    oracle_twap: I80F48,
    cap_bps: u32,
    elapsed: u64,
    period: u64,
) -> Option<I80F48> {
    if period == 0 {
        return None;
    }
    let cap = fixed_div_int(oracle_twap.fast_mul_int(i128::from(cap_bps))?, 10_000)?.abs();
    let premium = mark_twap.checked_sub(oracle_twap)?.clamp(-cap, cap);
    fixed_div_int(premium.fast_mul_int(i128::from(elapsed))?, period)
}

/// What a position of `base_lots` owes for the index moving from `snapshot`
/// to `index` (negative: it is owed), rounded up in native units so the
/// exchange keeps any fraction.
pub fn funding_owed(index: I80F48, snapshot: I80F48, base_lots: i64) -> Option<i64> {
    index
        .checked_sub(snapshot)?
        .fast_mul_int(i128::from(base_lots))?
        .checked_ceil()?
        .checked_to_num()
}

/// The same amount unrounded, as health counts it (positive: owed to the
/// position).
pub fn unsettled_funding(index: I80F48, snapshot: I80F48, base_lots: i64) -> Option<I80F48> {
    snapshot
        .checked_sub(index)?
        .fast_mul_int(i128::from(base_lots))
}

/// The per-lot charge that spreads `loss` over `lots` open lots (longs and
/// shorts together), rounded up at the last bit so the charges cover it.
pub fn loss_per_lot(loss: u64, lots: u64) -> Option<I80F48> {
    if lots == 0 {
        return None;
    }
    let per_lot = fixed_div_int(I80F48::checked_from_num(loss)?, lots)?;
    if per_lot.fast_mul_int(i128::from(lots))? < I80F48::from_num(loss) {
        per_lot.checked_add(I80F48::DELTA)
    } else {
        Some(per_lot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixed(v: f64) -> I80F48 {
        I80F48::from_num(v)
    }

    #[test]
    fn parts_round_trip() {
        for v in [
            I80F48::ZERO,
            I80F48::MIN,
            I80F48::MAX,
            fixed(-1.5),
            I80F48::DELTA,
        ] {
            assert_eq!(from_parts(to_parts(v)), v);
        }
    }

    #[test]
    fn twap_moves_by_the_elapsed_share_of_the_period() {
        let twap = fixed(100.0);
        assert_eq!(
            twap_step(twap, fixed(110.0), 360, 3_600),
            Some(fixed(101.0))
        );
        assert_eq!(
            twap_step(twap, fixed(110.0), 7_200, 3_600),
            Some(fixed(110.0))
        );
        assert_eq!(twap_step(twap, fixed(90.0), 0, 3_600), Some(twap));
        assert_eq!(twap_step(twap, fixed(90.0), 1, 0), None);
    }

    #[test]
    fn funding_is_the_capped_premium_pro_rata() {
        // Mark 1% over oracle, cap 0.5%/period, half a period: 0.25% of 100.
        let f = funding_per_lot(fixed(101.0), fixed(100.0), 50, 1_800, 3_600).unwrap();
        assert_eq!(f, fixed(0.25));
        // Under the cap: 0.2 premium, a full period.
        let f = funding_per_lot(fixed(99.8), fixed(100.0), 50, 3_600, 3_600).unwrap();
        assert!((f - fixed(-0.2)).abs() < fixed(1e-12));
        assert_eq!(
            funding_per_lot(fixed(150.0), fixed(100.0), 0, 3_600, 3_600),
            Some(I80F48::ZERO)
        );
    }

    #[test]
    fn the_book_premium_is_clamped_to_the_band() {
        let band = PriceBand::around(fixed(15_000.0), 400).unwrap();
        let oracle = fixed(15_000.0 * 100.0);
        // An ask at 10^13 ticks counts as the band's top (15,600).
        let premium = book_premium(
            Some(Ticks(14_990)),
            Some(Ticks(10_000_000_000_000)),
            &band,
            100,
            oracle,
        )
        .unwrap();
        assert_eq!(
            premium,
            fixed((14_990.0 + 15_600.0) / 2.0 * 100.0 - 1_500_000.0)
        );
        assert_eq!(
            book_premium(None, Some(Ticks(15_100)), &band, 100, oracle),
            Some(I80F48::ZERO)
        );
        // A 1-tick bid counts as the band's bottom.
        let low = book_premium(Some(Ticks(1)), Some(Ticks(15_010)), &band, 100, oracle).unwrap();
        assert_eq!(
            low,
            fixed((14_400.0 + 15_010.0) / 2.0 * 100.0 - 1_500_000.0)
        );
    }

    #[test]
    fn an_interval_pays_the_smaller_premium_of_its_ends() {
        assert_eq!(interval_premium(fixed(2.0), fixed(50.0)), fixed(2.0));
        assert_eq!(interval_premium(fixed(50.0), fixed(2.0)), fixed(2.0));
        assert_eq!(interval_premium(fixed(-3.0), fixed(-1.0)), fixed(-1.0));
        assert_eq!(interval_premium(fixed(-3.0), fixed(4.0)), I80F48::ZERO);
        assert_eq!(interval_premium(I80F48::ZERO, fixed(4.0)), I80F48::ZERO);
    }

    proptest! {
        /// One manipulated sample between honest ones never moves the
        /// premium paid beyond what the honest samples around it show.
        #[test]
        fn one_sample_cannot_set_the_premium(
            honest in -1_000i64..1_000, next in -1_000i64..1_000, spike in -1_000_000i64..1_000_000,
        ) {
            let (honest, next, spike) = (fixed(honest as f64), fixed(next as f64), fixed(spike as f64));
            let before = interval_premium(honest, spike);
            let after = interval_premium(spike, next);
            prop_assert!(before.abs() <= honest.abs());
            prop_assert!(after.abs() <= next.abs());
        }
    }

    #[test]
    fn settlement_rounds_against_the_position() {
        let index = fixed(0.25);
        assert_eq!(
            funding_owed(index, I80F48::ZERO, 3),
            Some(1),
            "0.75 owed: 1"
        );
        assert_eq!(
            funding_owed(index, I80F48::ZERO, -3),
            Some(0),
            "0.75 due: 0"
        );
        assert_eq!(funding_owed(index, index, 1_000), Some(0));
        assert_eq!(
            unsettled_funding(index, I80F48::ZERO, -3),
            Some(fixed(0.75))
        );
    }

    proptest! {
        #[test]
        fn longs_pay_at_least_what_shorts_receive(
            lots in proptest::collection::vec(1i64..1_000_000, 1..8),
            shorts in proptest::collection::vec(1i64..1_000_000, 1..8),
            delta_bits in -(1i128 << 70)..(1i128 << 70),
        ) {
            // Any split of equal open interest between longs and shorts.
            let total: i64 = lots.iter().sum();
            let short_total: i64 = shorts.iter().sum();
            let mut short_lots: Vec<i64> = shorts.iter().map(|s| -(s * total / short_total).max(0)).collect();
            let assigned: i64 = short_lots.iter().sum();
            short_lots[0] -= total + assigned;
            let delta = I80F48::from_bits(delta_bits);
            let paid: i64 = lots.iter().map(|&l| funding_owed(delta, I80F48::ZERO, l).unwrap()).sum();
            let received: i64 = short_lots.iter().map(|&l| -funding_owed(delta, I80F48::ZERO, l).unwrap()).sum();
            prop_assert!(paid >= received, "paid {} received {}", paid, received);
            let settlements = (lots.len() + short_lots.len()) as i64;
            prop_assert!(paid - received <= settlements, "at most one unit per settlement");
        }

        #[test]
        fn socialized_charges_cover_the_loss(loss in 1u64..1_000_000_000_000, lots in 1u64..10_000_000) {
            let per_lot = loss_per_lot(loss, lots).unwrap();
            prop_assert!(per_lot.checked_mul_int(i128::from(lots)).unwrap() >= I80F48::from_num(loss));
            let one_less = per_lot - I80F48::DELTA;
            prop_assert!(one_less.checked_mul_int(i128::from(lots)).unwrap() < I80F48::from_num(loss));
        }
    }
}
