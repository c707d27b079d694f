//! Portfolio margin by scenario grid, SPAN-style: each instrument on an
//! underlying is revalued under a fixed grid of spot and volatility shocks
//! once, as a risk array (its value change per unit in each scenario), and
//! a portfolio's loss in a scenario is then `Σ quantity × entry`: one
//! multiply-add per position and scenario, whatever the pricing model
//! costs. The requirement is the worst scenario loss times a factor plus
//! contingencies the grid cannot see.
//!
//! The grid, as CME's SPAN: spot moves of 0, ±1/3, ±2/3 and ±1 scan range,
//! each with volatility up and down by the volatility shift (14
//! scenarios), and two extreme moves of ± `extreme_move` scan ranges with
//! volatility unchanged, of which `extreme_cover` of the loss counts (deep
//! out-of-the-money shorts lose little inside the scan range and a lot
//! beyond it).
//!
//! Contingencies, per underlying, in basis points of the spot per unit:
//! - a floor on the net linear position (perpetuals and futures): a
//!   position the grid prices as hedged still pays something;
//! - a basis add-on on the linear units that offset each other (a perp
//!   against a future is hedged in spot, not in basis);
//! - a short-option add-on per unit short (the grid's worst case is not a
//!   bound on a short's loss);
//! - the oracle's confidence on every unit held, gross.
//!
//! Pure fixed point; the caller supplies the scan range (from the
//! underlying's volatility) and the shocks.
use fixed::types::I80F48;

use super::black_scholes::{self, OptionSide, PricingError, PricingInputs, MAX_VOLATILITY};
use super::fastdiv::fixed_div_int;
use super::fastmul::{widening_mul_halves, FastMulInt};

/// Scenarios in the grid: 7 spot moves × 2 volatility shifts, and two
/// extreme moves.
pub const SCENARIOS: usize = 16;

/// Spot moves of the regular scenarios, in thirds of the scan range.
const SPOT_THIRDS: [i64; 7] = [0, 1, -1, 2, -2, 3, -3];

/// The grid's parameters, per underlying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioGrid {
    /// The spot move the regular scenarios span, basis points of the spot.
    pub scan_range_bps: u32,
    /// Volatility up and down by this share of itself, basis points.
    pub volatility_shift_bps: u32,
    /// The extreme moves, in basis points of the scan range (30,000: three
    /// scan ranges, as SPAN).
    pub extreme_move_bps: u32,
    /// The share of an extreme move's loss that counts, basis points.
    pub extreme_cover_bps: u32,
}

/// One scenario of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The spot's move, basis points of the spot (signed).
    pub spot_move_bps: i64,
    /// The volatility's move, basis points of itself (signed).
    pub volatility_move_bps: i64,
    /// The share of the value change that counts, basis points.
    pub weight_bps: u32,
}

/// Why a grid or an instrument could not be valued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioError {
    /// A parameter out of range: a scan range of 100 % or more (a spot
    /// shocked to zero or below), a cover above 100 %.
    InvalidGrid,
    /// The option could not be priced in a scenario.
    Pricing(PricingError),
    /// A step does not fit I80F48.
    Overflow,
}

impl From<PricingError> for ScenarioError {
    fn from(error: PricingError) -> Self {
        Self::Pricing(error)
    }
}

impl ScenarioGrid {
    /// The grid's scenarios, regular then the two extreme ones. Refused
    /// when the largest move would take the spot to zero or below.
    pub fn scenarios(&self) -> Result<[Scenario; SCENARIOS], ScenarioError> {
        let scan = i64::from(self.scan_range_bps);
        let extreme = scan * i64::from(self.extreme_move_bps) / 10_000;
        if scan.max(extreme) >= 10_000 || self.extreme_cover_bps > 10_000 {
            return Err(ScenarioError::InvalidGrid);
        }
        let shift = i64::from(self.volatility_shift_bps);
        let mut scenarios = [Scenario {
            spot_move_bps: 0,
            volatility_move_bps: 0,
            weight_bps: 10_000,
        }; SCENARIOS];
        for (index, thirds) in SPOT_THIRDS.iter().enumerate() {
            for (offset, volatility) in [shift, -shift].into_iter().enumerate() {
                scenarios[2 * index + offset] = Scenario {
                    spot_move_bps: scan * thirds / 3,
                    volatility_move_bps: volatility,
                    weight_bps: 10_000,
                };
            }
        }
        for (slot, sign) in [(14, 1), (15, -1)] {
            scenarios[slot] = Scenario {
                spot_move_bps: sign * extreme,
                volatility_move_bps: 0,
                weight_bps: self.extreme_cover_bps,
            };
        }
        Ok(scenarios)
    }
}

/// What an instrument is, for revaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrument {
    /// A perpetual or a dated future: a unit gains the spot's move.
    Linear,
    /// A European option on the underlying.
    Option {
        side: OptionSide,
        strike: I80F48,
        seconds_to_expiry: i64,
    },
}

/// The point the arrays are computed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketPoint {
    pub spot: I80F48,
    /// Annualized implied volatility.
    pub volatility: I80F48,
    /// Annualized rate.
    pub rate: I80F48,
}

/// An instrument's value change per unit in each scenario, weighted.
pub type RiskArray = [I80F48; SCENARIOS];

/// `entry × units` as `fast_mul_int` answers it. Health runs it for every
/// scenario of every position, so the usual case (entry bits and units
/// below 2^63 in magnitude, whose product is below 2^126 and cannot
/// overflow) is one 64-bit widening product with no overflow check.
#[inline(always)]
fn scale(entry: I80F48, units: i128) -> Option<I80F48> {
    let bits = entry.to_bits();
    let (entry_magnitude, units_magnitude) = (bits.unsigned_abs(), units.unsigned_abs());
    if entry_magnitude >= 1 << 63 || units_magnitude >= 1 << 63 {
        return entry.fast_mul_int(units);
    }
    let (low, high) = widening_mul_halves(entry_magnitude as u64, units_magnitude as u64);
    // Below 2^126: a positive i128.
    let magnitude = ((u128::from(high) << 64) | u128::from(low)) as i128;
    Some(I80F48::from_bits(if (bits < 0) != (units < 0) {
        -magnitude
    } else {
        magnitude
    }))
}

fn share_of(value: I80F48, bps: i64) -> Option<I80F48> {
    fixed_div_int(value.fast_mul_int(i128::from(bps))?, 10_000)
}

/// `instrument`'s risk array at `point` under `scenarios`.
pub fn risk_array(
    instrument: &Instrument,
    point: &MarketPoint,
    scenarios: &[Scenario; SCENARIOS],
) -> Result<RiskArray, ScenarioError> {
    let overflow = ScenarioError::Overflow;
    let mut array = [I80F48::ZERO; SCENARIOS];
    let base_value = match instrument {
        Instrument::Linear => None,
        Instrument::Option {
            side,
            strike,
            seconds_to_expiry,
        } => {
            let inputs = PricingInputs {
                side: *side,
                spot: point.spot,
                strike: *strike,
                seconds_to_expiry: *seconds_to_expiry,
                volatility: point.volatility,
                rate: point.rate,
            };
            Some((inputs, black_scholes::price(&inputs)?))
        }
    };
    for (entry, scenario) in array.iter_mut().zip(scenarios) {
        let spot_move = share_of(point.spot, scenario.spot_move_bps).ok_or(overflow)?;
        let change = match base_value {
            None => spot_move,
            Some((inputs, value)) => {
                let volatility_move =
                    share_of(point.volatility, scenario.volatility_move_bps).ok_or(overflow)?;
                let shocked = PricingInputs {
                    spot: point.spot.checked_add(spot_move).ok_or(overflow)?,
                    volatility: point
                        .volatility
                        .checked_add(volatility_move)
                        .ok_or(overflow)?
                        .clamp(I80F48::ZERO, MAX_VOLATILITY),
                    ..inputs
                };
                black_scholes::price(&shocked)?
                    .checked_sub(value)
                    .ok_or(overflow)?
            }
        };
        *entry = share_of(change, i64::from(scenario.weight_bps)).ok_or(overflow)?;
    }
    Ok(array)
}

/// Contingency rates, basis points of the spot per unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contingencies {
    pub linear_floor_bps: u32,
    pub basis_bps: u32,
    pub short_option_bps: u32,
}

/// A portfolio on one underlying, accumulated position by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioPortfolio {
    /// The portfolio's value change in each scenario.
    pub pnl: [I80F48; SCENARIOS],
    pub units: ContingencyUnits,
}

/// The units the contingencies are charged on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContingencyUnits {
    pub long_linear: u128,
    pub short_linear: u128,
    pub short_options: u128,
    pub gross: u128,
}

impl Default for ScenarioPortfolio {
    fn default() -> Self {
        Self {
            pnl: [I80F48::ZERO; SCENARIOS],
            units: ContingencyUnits::default(),
        }
    }
}

/// One position's share of a portfolio: its value change in each scenario
/// with its resting orders filled in whichever direction loses more there
/// (the position's change is linear in its size, so the worst is at all
/// bids or all asks filled), and its units for the contingencies at its
/// larger worst case. Scenario by scenario the direction may differ: a
/// bound above any one fill of the orders, as standard mode's worst case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioShare {
    pub pnl: [I80F48; SCENARIOS],
    pub units: ContingencyUnits,
}

impl ScenarioShare {
    pub const ZERO: Self = Self {
        pnl: [I80F48::ZERO; SCENARIOS],
        units: ContingencyUnits {
            long_linear: 0,
            short_linear: 0,
            short_options: 0,
            gross: 0,
        },
    };

    /// The share of `base` units (signed) of `instrument` with `bids` and
    /// `asks` units resting, whose value changes by `array` per unit.
    pub fn of(
        instrument: &Instrument,
        base: i64,
        bids: u64,
        asks: u64,
        array: &RiskArray,
    ) -> Option<Self> {
        let mut share = Self::ZERO;
        share.write(instrument, base, bids, asks, array)?;
        Some(share)
    }

    /// Overwrites `self` with [`Self::of`] (in place: health writes every
    /// position's share into one slot, and a share is 320 bytes). On
    /// `None` (an overflow) `self` is left part-written.
    pub fn write(
        &mut self,
        instrument: &Instrument,
        base: i64,
        bids: u64,
        asks: u64,
        array: &RiskArray,
    ) -> Option<()> {
        let longest = i128::from(base).checked_add(i128::from(bids))?;
        let shortest = i128::from(base).checked_sub(i128::from(asks))?;
        for (total, entry) in self.pnl.iter_mut().zip(array) {
            let at_bids = scale(*entry, longest)?;
            *total = if asks == 0 {
                at_bids
            } else {
                at_bids.min(scale(*entry, shortest)?)
            };
        }
        let worst = if longest.unsigned_abs() >= shortest.unsigned_abs() {
            longest
        } else {
            shortest
        };
        let size = worst.unsigned_abs();
        self.units = ContingencyUnits {
            gross: size,
            ..ContingencyUnits::default()
        };
        match instrument {
            Instrument::Linear if worst > 0 => self.units.long_linear = size,
            Instrument::Linear => self.units.short_linear = size,
            Instrument::Option { .. } => self.units.short_options = shortest.min(0).unsigned_abs(),
        }
        Some(())
    }
}

impl ContingencyUnits {
    fn combine(&mut self, other: &Self, add: bool) -> Option<()> {
        let step = |total: &mut u128, units: u128| -> Option<()> {
            *total = if add {
                total.checked_add(units)?
            } else {
                total.checked_sub(units)?
            };
            Some(())
        };
        step(&mut self.long_linear, other.long_linear)?;
        step(&mut self.short_linear, other.short_linear)?;
        step(&mut self.short_options, other.short_options)?;
        step(&mut self.gross, other.gross)
    }
}

/// The requirement of one underlying's portfolio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioRequirement {
    /// The worst scenario's loss (zero when every scenario gains).
    pub worst_loss: I80F48,
    /// The contingencies, at the spot.
    pub contingency: I80F48,
}

impl ScenarioRequirement {
    /// `worst_loss × factor + contingency`, the factor in basis points
    /// (10,000 for initial, 8,000 for maintenance, as Derive).
    pub fn with_factor(&self, factor_bps: u32) -> Option<I80F48> {
        share_of(self.worst_loss, i64::from(factor_bps))?.checked_add(self.contingency)
    }
}

impl ScenarioPortfolio {
    /// Adds `units` (signed: long > 0) of an instrument with `array`.
    pub fn add(&mut self, instrument: &Instrument, units: i64, array: &RiskArray) -> Option<()> {
        self.apply(&ScenarioShare::of(instrument, units, 0, 0, array)?)
    }

    /// Adds a position's share.
    pub fn apply(&mut self, share: &ScenarioShare) -> Option<()> {
        self.combine(share, true)
    }

    /// Takes back a share [`Self::apply`] added (exact: fixed-point sums
    /// are).
    pub fn remove(&mut self, share: &ScenarioShare) -> Option<()> {
        self.combine(share, false)
    }

    fn combine(&mut self, share: &ScenarioShare, add: bool) -> Option<()> {
        for (total, change) in self.pnl.iter_mut().zip(&share.pnl) {
            *total = if add {
                total.checked_add(*change)?
            } else {
                total.checked_sub(*change)?
            };
        }
        self.units.combine(&share.units, add)
    }

    /// The worst loss and the contingencies at `spot` with `confidence`
    /// (the oracle's, in the spot's unit) on every unit held.
    pub fn requirement(
        &self,
        spot: I80F48,
        confidence: I80F48,
        rates: &Contingencies,
    ) -> Option<ScenarioRequirement> {
        let worst = self
            .pnl
            .iter()
            .copied()
            .min()
            .unwrap_or(I80F48::ZERO)
            .min(I80F48::ZERO);
        let per_unit = |bps: u32, units: u128| -> Option<I80F48> {
            share_of(spot, i64::from(bps))?.fast_mul_int(i128::try_from(units).ok()?)
        };
        let units = &self.units;
        let net_linear = units.long_linear.abs_diff(units.short_linear);
        let offset_linear = units.long_linear.min(units.short_linear);
        let contingency = per_unit(rates.linear_floor_bps, net_linear)?
            .checked_add(per_unit(rates.basis_bps, offset_linear)?)?
            .checked_add(per_unit(rates.short_option_bps, units.short_options)?)?
            .checked_add(confidence.fast_mul_int(i128::try_from(units.gross).ok()?)?)?;
        Some(ScenarioRequirement {
            worst_loss: worst.checked_neg()?,
            contingency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::option_margin::short_margin_per_unit;
    use libm::erfc;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    fn grid() -> ScenarioGrid {
        ScenarioGrid {
            scan_range_bps: 1_500,
            volatility_shift_bps: 2_500,
            extreme_move_bps: 30_000,
            extreme_cover_bps: 3_500,
        }
    }

    fn point() -> MarketPoint {
        MarketPoint {
            spot: I80F48::from_num(100),
            volatility: I80F48::from_num(0.8),
            rate: I80F48::ZERO,
        }
    }

    /// The contingency rates the examples are charged at.
    fn rates() -> Contingencies {
        Contingencies {
            linear_floor_bps: 50,
            basis_bps: 20,
            short_option_bps: 50,
        }
    }

    fn call(strike: i64, days: i64) -> Instrument {
        Instrument::Option {
            side: OptionSide::Call,
            strike: I80F48::from_num(strike),
            seconds_to_expiry: days * DAY,
        }
    }

    fn put(strike: i64, days: i64) -> Instrument {
        Instrument::Option {
            side: OptionSide::Put,
            strike: I80F48::from_num(strike),
            seconds_to_expiry: days * DAY,
        }
    }

    // --- the f64 reference, written from the definitions ---

    fn normal_cdf(x: f64) -> f64 {
        0.5 * erfc(-x / std::f64::consts::SQRT_2)
    }

    fn value_f64(instrument: &Instrument, spot: f64, volatility: f64) -> f64 {
        match instrument {
            Instrument::Linear => spot,
            Instrument::Option {
                side,
                strike,
                seconds_to_expiry,
            } => {
                let k = strike.to_num::<f64>();
                let t = *seconds_to_expiry as f64 / (365.0 * 86_400.0);
                let sd = volatility * t.sqrt();
                let d1 = ((spot / k).ln() + 0.5 * sd * sd) / sd;
                let d2 = d1 - sd;
                match side {
                    OptionSide::Call => spot * normal_cdf(d1) - k * normal_cdf(d2),
                    OptionSide::Put => k * normal_cdf(-d2) - spot * normal_cdf(-d1),
                }
            }
        }
    }

    /// SPAN's scenarios, spelled out: (spot move, volatility factor, weight).
    fn scenarios_f64(grid: &ScenarioGrid) -> Vec<(f64, f64, f64)> {
        let scan = grid.scan_range_bps as f64 / 1e4;
        let shift = grid.volatility_shift_bps as f64 / 1e4;
        let mut all = Vec::new();
        for thirds in [0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0] {
            for volatility in [1.0 + shift, 1.0 - shift] {
                all.push((scan * thirds / 3.0, volatility, 1.0));
            }
        }
        let extreme = scan * grid.extreme_move_bps as f64 / 1e4;
        let cover = grid.extreme_cover_bps as f64 / 1e4;
        all.push((extreme, 1.0, cover));
        all.push((-extreme, 1.0, cover));
        all
    }

    /// The worst scenario loss of `positions` in f64.
    fn worst_loss_f64(positions: &[(Instrument, i64)]) -> f64 {
        let (spot, volatility) = (100.0, 0.8);
        scenarios_f64(&grid())
            .into_iter()
            .map(|(spot_move, volatility_factor, weight)| {
                positions
                    .iter()
                    .map(|(instrument, units)| {
                        let shocked = value_f64(
                            instrument,
                            spot * (1.0 + spot_move),
                            volatility * volatility_factor,
                        );
                        *units as f64 * weight * (shocked - value_f64(instrument, spot, volatility))
                    })
                    .sum::<f64>()
            })
            .fold(0.0f64, |worst, pnl| worst.min(pnl))
            .abs()
    }

    fn portfolio(positions: &[(Instrument, i64)]) -> ScenarioPortfolio {
        let scenarios = grid().scenarios().unwrap();
        let mut portfolio = ScenarioPortfolio::default();
        for (instrument, units) in positions {
            let array = risk_array(instrument, &point(), &scenarios).unwrap();
            portfolio.add(instrument, *units, &array).unwrap();
        }
        portfolio
    }

    fn worst_loss(positions: &[(Instrument, i64)]) -> f64 {
        portfolio(positions)
            .requirement(point().spot, I80F48::ZERO, &Contingencies::default())
            .unwrap()
            .worst_loss
            .to_num()
    }

    /// Standard mode's initial requirement of the same positions: 10 % of
    /// a linear position's notional, a short option's value plus Deribit's
    /// `max(15 % S − OTM, 10 % S)`, a long option its premium (initial
    /// health counts none of its value).
    fn standard_requirement(positions: &[(Instrument, i64)]) -> f64 {
        let spot = point().spot;
        positions
            .iter()
            .map(|(instrument, units)| {
                let size = units.unsigned_abs() as f64;
                match instrument {
                    Instrument::Linear => 0.1 * 100.0 * size,
                    Instrument::Option { side, strike, .. } => {
                        let value = value_f64(instrument, 100.0, 0.8);
                        if *units > 0 {
                            value * size
                        } else {
                            let margin = short_margin_per_unit(
                                *side,
                                spot,
                                *strike,
                                I80F48::from_num(value),
                                1_500,
                                1_000,
                            )
                            .unwrap()
                            .to_num::<f64>();
                            (value + margin) * size
                        }
                    }
                }
            })
            .sum()
    }

    /// Matches the f64 reference, requires at least its worst loss and,
    /// for a hedge, less than standard mode.
    fn check(name: &str, positions: &[(Instrument, i64)], hedged: bool) -> f64 {
        let fixed = worst_loss(positions);
        let reference = worst_loss_f64(positions);
        assert!(
            (fixed - reference).abs() <= 1e-6 * reference.max(1.0),
            "{name}: {fixed} against {reference}"
        );
        let rates = rates();
        let requirement = portfolio(positions)
            .requirement(point().spot, I80F48::from_num(0.05), &rates)
            .unwrap();
        let initial = requirement.with_factor(10_000).unwrap().to_num::<f64>();
        assert!(initial >= reference, "{name}: {initial} below {reference}");
        let maintenance = requirement.with_factor(8_000).unwrap().to_num::<f64>();
        assert!(maintenance <= initial && maintenance >= 0.8 * reference - 1e-9);
        let standard = standard_requirement(positions);
        if hedged {
            assert!(initial < standard, "{name}: {initial} not below {standard}");
        }
        // The worked-example table in README.
        println!("| {name} | {reference:.2} | {initial:.2} | {maintenance:.2} | {standard:.2} |");
        reference
    }

    #[test]
    fn the_grid_is_spans() {
        let scenarios = grid().scenarios().unwrap();
        assert_eq!(scenarios[0].spot_move_bps, 0);
        assert_eq!(scenarios[1].volatility_move_bps, -2_500);
        assert_eq!(scenarios[10].spot_move_bps, 1_500);
        assert_eq!(scenarios[13].spot_move_bps, -1_500);
        assert_eq!(scenarios[14].spot_move_bps, 4_500);
        assert_eq!(scenarios[15].weight_bps, 3_500);
        let too_wide = ScenarioGrid {
            scan_range_bps: 4_000,
            ..grid()
        };
        assert_eq!(too_wide.scenarios(), Err(ScenarioError::InvalidGrid));
    }

    #[test]
    fn a_linear_position_loses_the_scan_range() {
        // Long 10: the worst regular move is −15 %, 150; the extreme −45 %
        // at 35 % cover is 157.5.
        let loss = check("long perp", &[(Instrument::Linear, 10)], false);
        assert!((loss - 157.5).abs() < 1e-9, "{loss}");
    }

    #[test]
    fn worked_examples_match_the_reference() {
        let linear = Instrument::Linear;
        check("covered call", &[(linear, 1), (call(110, 30), -1)], true);
        check("protective put", &[(linear, 1), (put(90, 30), 1)], true);
        check(
            "call spread",
            &[(call(100, 30), 1), (call(110, 30), -1)],
            true,
        );
        check(
            "straddle",
            &[(call(100, 30), -1), (put(100, 30), -1)],
            false,
        );
        check(
            "calendar spread",
            &[(call(100, 7), -1), (call(100, 60), 1)],
            true,
        );
        // A perp against a future: hedged in spot, only the contingencies.
        let perp_future = [(linear, 10), (linear, -10)];
        let loss = check("perp hedged with a future", &perp_future, true);
        assert_eq!(loss, 0.0);
        // Short 10 calls at the money, hedged with their delta (about 0.52
        // at 80 % and 30 days): 5 long units.
        check(
            "delta-hedged short call",
            &[(call(100, 30), -10), (linear, 5)],
            true,
        );
    }

    fn instrument_strategy() -> impl Strategy<Value = (Instrument, i64)> {
        let option = (any::<bool>(), 60i64..160, 1i64..120).prop_map(|(is_call, strike, days)| {
            if is_call {
                call(strike, days)
            } else {
                put(strike, days)
            }
        });
        (prop_oneof![Just(Instrument::Linear), option], -20i64..=20)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any portfolio's worst loss is the f64 revaluation's, and a
        /// portfolio never requires more than its two halves apart (the
        /// grid nets; the basis add-on is below twice the floor).
        #[test]
        fn the_grid_matches_the_reference_and_only_nets(
            positions in proptest::collection::vec(instrument_strategy(), 1..7),
            split in 0usize..7,
        ) {
            let fixed = worst_loss(&positions);
            let reference = worst_loss_f64(&positions);
            prop_assert!(
                (fixed - reference).abs() <= 1e-7 * reference.max(100.0),
                "{fixed} against {reference}"
            );
            let rates = rates();
            let requirement = |positions: &[(Instrument, i64)]| {
                portfolio(positions)
                    .requirement(point().spot, I80F48::from_num(0.05), &rates)
                    .unwrap()
                    .with_factor(10_000)
                    .unwrap()
            };
            let split = split.min(positions.len());
            let (left, right) = positions.split_at(split);
            let whole = requirement(&positions);
            let parts = requirement(left) + requirement(right);
            prop_assert!(whole <= parts + I80F48::from_num(1e-9), "{whole} > {parts}");
        }
    }

    #[test]
    fn contingencies_charge_what_the_grid_cannot_see() {
        let perp_future = portfolio(&[(Instrument::Linear, 10), (Instrument::Linear, -10)]);
        let rates = rates();
        let requirement = perp_future
            .requirement(point().spot, I80F48::from_num(0.05), &rates)
            .unwrap();
        // Nothing net, 10 offset at 0.20 each, 20 gross at 0.05 each.
        assert_eq!(requirement.worst_loss, I80F48::ZERO);
        // (0.05 and 20 bp of 100 are not exact in binary: to the ulps.)
        let contingency = requirement.contingency.to_num::<f64>();
        assert!((contingency - 3.0).abs() < 1e-12, "{contingency}");
    }

    #[test]
    fn resting_orders_count_filled_in_the_direction_each_scenario_loses() {
        let scenarios = grid().scenarios().unwrap();
        let short_call = call(110, 30);
        let array = risk_array(&short_call, &point(), &scenarios).unwrap();
        // Short 2 calls with 3 bids and 5 asks resting: between long 1 and
        // short 7.
        let share = ScenarioShare::of(&short_call, -2, 3, 5, &array).unwrap();
        for (index, entry) in array.iter().enumerate() {
            let expected = (*entry * I80F48::from_num(1)).min(*entry * I80F48::from_num(-7));
            assert_eq!(share.pnl[index], expected, "scenario {index}");
        }
        assert_eq!(share.units.gross, 7);
        assert_eq!(share.units.short_options, 7);
        // The worst case of a linear position buckets by its sign.
        let linear = risk_array(&Instrument::Linear, &point(), &scenarios).unwrap();
        let long = ScenarioShare::of(&Instrument::Linear, 4, 6, 1, &linear).unwrap();
        assert_eq!((long.units.long_linear, long.units.short_linear), (10, 0));
        // No scenario loses less than with no orders at all.
        let bare = ScenarioShare::of(&short_call, -2, 0, 0, &array).unwrap();
        assert!(share
            .pnl
            .iter()
            .zip(&bare.pnl)
            .all(|(with, without)| with <= without));
        // Writing over another share (health reuses one slot) keeps
        // nothing of it: a long linear share has no option units.
        let mut slot = share;
        slot.write(&Instrument::Linear, 4, 6, 1, &linear).unwrap();
        assert_eq!(slot, long);
        slot.write(&short_call, -2, 0, 0, &array).unwrap();
        assert_eq!(slot, bare);
    }

    proptest! {
        #[test]
        fn scaling_an_entry_is_its_checked_product(
            bits in prop_oneof![
                -(1i128 << 70)..(1i128 << 70),
                -(1i128 << 63)..=(1i128 << 63),
                Just(i128::MIN),
                Just(i128::MAX),
            ],
            units in prop_oneof![
                -(1i128 << 64)..(1i128 << 64),
                -(1i128 << 63)..=(1i128 << 63),
                -(1i128 << 40)..(1i128 << 40),
                Just(0i128),
            ],
        ) {
            let entry = I80F48::from_bits(bits);
            prop_assert_eq!(scale(entry, units), entry.checked_mul_int(units));
        }

        #[test]
        fn removing_a_share_restores_the_portfolio_exactly(
            positions in proptest::collection::vec(instrument_strategy(), 1..7),
            bids in 0u64..50,
            asks in 0u64..50,
        ) {
            let scenarios = grid().scenarios().unwrap();
            let before = portfolio(&positions);
            let mut after = before;
            let (instrument, units) = positions[0];
            let array = risk_array(&instrument, &point(), &scenarios).unwrap();
            let share = ScenarioShare::of(&instrument, units, bids, asks, &array).unwrap();
            after.apply(&share).unwrap();
            after.remove(&share).unwrap();
            prop_assert_eq!(after, before);
        }
    }
}
