//! European option values and greeks by Black-Scholes, in fixed point
//! (`fixed_math`): what an option market marks, margins and bands at, from
//! its underlying's accepted price, its implied volatility and a rate.
//!
//! Prices are in the unit of the spot and the strike (native quote per
//! native base on chain); the work is done in 64-bit fixed point on the
//! spot's and strike's shares of the larger of the two, and the results
//! scaled back at the end, so a strike of 1e-6 prices as precisely as one
//! of 1e6. Greeks: delta per unit of spot; gamma per unit
//! of spot per unit of spot; vega per 1.0 of volatility (100 points); theta
//! per year (a day is `theta / 365`); rho per 1.0 of rate.
//!
//! Accuracy against an f64 reference (libm's erfc) over moneyness 0.5–2,
//! expiries from an hour to two years and volatilities 5 %–300 %: see the
//! tests, which pin the worst errors.
use fixed::types::I80F48;

use super::fastdiv::div_u128_u32;
use super::fixed_math::{div, exp_q, ln_q, mul, normal_q, rsqrt_q, NormalAt, Q};

/// Seconds in the year that volatilities and rates are quoted per (365
/// days, as Deribit and most crypto venues).
pub const SECONDS_PER_YEAR: u32 = 365 * 24 * 3_600;
/// Longest time to expiry priced: ten years.
pub const MAX_SECONDS_TO_EXPIRY: i64 = 10 * SECONDS_PER_YEAR as i64;
/// Highest volatility priced: 1,000 % a year.
pub const MAX_VOLATILITY: I80F48 = I80F48::from_bits(10 << 48);
/// Largest |rate|: 100 % a year.
pub const MAX_RATE: I80F48 = I80F48::ONE;
/// Below this standard deviation of the log price to expiry (σ√T), the
/// option is worth its discounted intrinsic value to within an ulp of the
/// moneyness: d₁ and d₂ are past ±9, where Φ is 0 or 1 in I80F48, unless
/// the option is within 1e-8 of the money.
const MIN_STD_DEV: I80F48 = I80F48::from_bits(1 << 20);

/// A call (the right to buy at the strike) or a put (to sell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionSide {
    Call,
    Put,
}

/// What an option is priced from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricingInputs {
    pub side: OptionSide,
    /// The underlying's price, > 0.
    pub spot: I80F48,
    /// > 0, in the unit of the spot.
    pub strike: I80F48,
    /// Until expiry, 0..=[`MAX_SECONDS_TO_EXPIRY`]; 0 prices the intrinsic
    /// value.
    pub seconds_to_expiry: i64,
    /// Annualized implied volatility (0.8 = 80 %), 0..=[`MAX_VOLATILITY`].
    pub volatility: I80F48,
    /// Annualized continuously compounded rate, |r| ≤ [`MAX_RATE`].
    pub rate: I80F48,
}

/// An option's value and greeks (units in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Valuation {
    pub price: I80F48,
    pub delta: I80F48,
    pub gamma: I80F48,
    pub vega: I80F48,
    pub theta: I80F48,
    pub rho: I80F48,
}

/// Why an option could not be priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PricingError {
    /// An input is outside its range (see [`PricingInputs`]).
    InvalidInput,
    /// A value does not fit I80F48 (a moneyness beyond about 2^30).
    Overflow,
}

impl PricingInputs {
    fn validate(&self) -> Result<(), PricingError> {
        let valid = self.spot > 0
            && self.strike > 0
            && (0..=MAX_SECONDS_TO_EXPIRY).contains(&self.seconds_to_expiry)
            && (I80F48::ZERO..=MAX_VOLATILITY).contains(&self.volatility)
            && (-MAX_RATE..=MAX_RATE).contains(&self.rate);
        valid.then_some(()).ok_or(PricingError::InvalidInput)
    }
}

/// Years of `seconds` (≥ 0), truncated to the ulp.
pub fn years(seconds: i64) -> I80F48 {
    let seconds = seconds.unsigned_abs();
    if seconds < 1 << 40 {
        // seconds × 2^48 / Y in two native divisions of 64 bits:
        // (seconds·2^20 = q·Y + r), then (r·2^28) / Y, r < Y < 2^25.
        let year = u64::from(SECONDS_PER_YEAR);
        let shifted = seconds << 20;
        let (quotient, remainder) = (shifted / year, shifted % year);
        let bits = (quotient << 28) + ((remainder << 28) / year);
        return I80F48::from_bits(i128::from(bits));
    }
    let bits = u128::from(seconds) << 48;
    I80F48::from_bits(div_u128_u32(bits, SECONDS_PER_YEAR) as i128)
}

/// What value and greeks share, per unit of `scale = max(S, K)` (so every
/// quantity is a [`Q`] whatever the units of the spot and strike): the
/// spot's and strike's shares of it (one of them 1), the discount, the
/// time, and the normal distribution at d₁ and d₂.
struct Terms {
    scale: I80F48,
    /// S / scale and K / scale.
    spot: Q,
    strike: Q,
    /// e^(−rT).
    discount: Q,
    years: Q,
    /// σ√T, zero when below [`MIN_STD_DEV`]; 1/√T.
    std_dev: Q,
    inv_sqrt_years: Q,
    d1: NormalAt,
    d2: NormalAt,
}

/// The distribution of a certain outcome: Φ = 1 above the strike (`above`),
/// 0 below; no density.
fn certain(above: bool) -> NormalAt {
    NormalAt {
        density: I80F48::ZERO,
        tail: I80F48::ZERO,
        negative: !above,
    }
}

/// Φ(x) and Φ(−x) of a [`NormalAt`], as [`Q`]s (both within [0, 1]).
fn cdf_q(at: &NormalAt) -> (Q, Q) {
    let tail = Q(at.tail.to_bits() as i64);
    let other = Q(Q::ONE.0 - tail.0);
    if at.negative {
        (tail, other)
    } else {
        (other, tail)
    }
}

/// |d| past which Φ(d) is 0 or 1 in I80F48: a d beyond it is taken there.
const D_LIMIT: Q = Q(40 << 48);

fn terms(inputs: &PricingInputs) -> Result<Terms, PricingError> {
    inputs.validate()?;
    let overflow = PricingError::Overflow;
    let q = |x: Option<Q>| x.ok_or(overflow);
    let scale = inputs.spot.max(inputs.strike);
    // One of the two is 1; the other the ratio of the smaller to the larger.
    let share = |x: I80F48| -> Result<Q, PricingError> {
        if x == scale {
            Ok(Q::ONE)
        } else {
            Q::of(div(x, scale).ok_or(overflow)?).ok_or(overflow)
        }
    };
    let (spot, strike) = (share(inputs.spot)?, share(inputs.strike)?);
    let years = Q(years(inputs.seconds_to_expiry).to_bits() as i64);
    // |r| ≤ 1 and T ≤ 10: within Q.
    let rate = q(Q::of(inputs.rate))?;
    let volatility = q(Q::of(inputs.volatility))?;
    let rate_time = if rate.0 == 0 {
        Q(0)
    } else {
        q(rate.mul(years))?
    };
    let discount = if rate_time.0 == 0 {
        Q::ONE
    } else {
        q(exp_q(Q(-rate_time.0)))?
    };
    let (inv_sqrt_years, std_dev) = if years.0 == 0 {
        (Q(0), Q(0))
    } else {
        let inv_sqrt_years = q(rsqrt_q(years))?;
        let sqrt_years = q(years.mul(inv_sqrt_years))?;
        (inv_sqrt_years, q(volatility.mul(sqrt_years))?)
    };
    // A ratio below an ulp of the larger: as certain as a tiny σ√T.
    if std_dev.0 < MIN_STD_DEV.to_bits() as i64 || spot.0 == 0 || strike.0 == 0 {
        // The forward's intrinsic value: the option pays for sure, or not.
        let in_the_money_call = spot > q(strike.mul(discount))?;
        return Ok(Terms {
            scale,
            spot,
            strike,
            discount,
            years,
            std_dev: Q(0),
            inv_sqrt_years,
            d1: certain(in_the_money_call),
            d2: certain(in_the_money_call),
        });
    }
    // ln(S/K) = ln(S/scale) − ln(K/scale), one of them 0.
    let log_moneyness = if spot == Q::ONE {
        Q(-q(ln_q(strike))?.0)
    } else {
        q(ln_q(spot))?
    };
    // d₁ = (ln(S/K) + rT) / σ√T + σ√T / 2, taken at ±40 beyond; d₂ = d₁ − σ√T.
    let log_forward = q(log_moneyness.add(rate_time))?;
    let ratio = log_forward
        .div(std_dev)
        .map_or(
            if log_forward.0 < 0 {
                -D_LIMIT.0
            } else {
                D_LIMIT.0
            },
            |d| d.0,
        )
        .clamp(-D_LIMIT.0, D_LIMIT.0);
    let d1 = Q(ratio + (std_dev.0 >> 1));
    let d2 = q(d1.sub(std_dev))?;
    let (at_d1, at_d2) = (normal_q(d1), normal_q(d2));
    Ok(Terms {
        scale,
        spot,
        strike,
        discount,
        years,
        std_dev,
        inv_sqrt_years,
        d1: at_d1,
        d2: at_d2,
    })
}

/// The value per unit of scale.
fn unit_price(side: OptionSide, t: &Terms) -> Option<Q> {
    let (n1, n1_negated) = cdf_q(&t.d1);
    let (n2, n2_negated) = cdf_q(&t.d2);
    let strike = t.strike.mul(t.discount)?;
    let value = match side {
        // S Φ(d₁) − K e^(−rT) Φ(d₂)
        OptionSide::Call => t.spot.mul(n1)?.sub(strike.mul(n2)?)?,
        // K e^(−rT) Φ(−d₂) − S Φ(−d₁)
        OptionSide::Put => strike.mul(n2_negated)?.sub(t.spot.mul(n1_negated)?)?,
    };
    // Rounding may take a worthless option an ulp below zero.
    Some(value.max(Q(0)))
}

/// The option's value alone (what health marks at).
pub fn price(inputs: &PricingInputs) -> Result<I80F48, PricingError> {
    let t = terms(inputs)?;
    unit_price(inputs.side, &t)
        .and_then(|unit| scale_back(unit, &t))
        .ok_or(PricingError::Overflow)
}

/// The option's value and greeks.
pub fn valuation(inputs: &PricingInputs) -> Result<Valuation, PricingError> {
    let t = terms(inputs)?;
    greeks(inputs, &t).ok_or(PricingError::Overflow)
}

/// `x` (per unit of scale) back in the units of the spot and strike: a
/// 64-bit product when the scale is a [`Q`]. Two arguments: SBF passes at
/// most five registers, and an I80F48 takes two.
#[inline(always)]
fn scale_back(x: Q, t: &Terms) -> Option<I80F48> {
    match Q::of(t.scale).and_then(|scale| x.mul(scale)) {
        Some(product) => Some(product.fixed()),
        None => mul(x.fixed(), t.scale),
    }
}

fn greeks(inputs: &PricingInputs, t: &Terms) -> Option<Valuation> {
    let call = inputs.side == OptionSide::Call;
    let scaled = |x: Q| scale_back(x, t);
    let price = scaled(unit_price(inputs.side, t)?)?;
    let (n1, n1_negated) = cdf_q(&t.d1);
    let (n2, n2_negated) = cdf_q(&t.d2);
    let delta = if call { n1 } else { Q(-n1_negated.0) };
    let density = Q(t.d1.density.to_bits() as i64);
    // φ(d₁) S: shared by vega and theta.
    let density_spot = density.mul(t.spot)?;
    // Γ = φ(d₁) / (S σ√T).
    let gamma = if t.std_dev.0 == 0 {
        I80F48::ZERO
    } else {
        let per_std_dev = density
            .div(t.std_dev)
            .map(Q::fixed)
            .or_else(|| div(density.fixed(), t.std_dev.fixed()))?;
        div(per_std_dev, inputs.spot)?
    };
    // ν = S φ(d₁) √T.
    let sqrt_years = t.years.mul(t.inv_sqrt_years)?;
    let vega = scaled(density_spot.mul(sqrt_years)?)?;
    // The discounted strike's share: K e^(−rT) Φ(±d₂).
    let discounted_itm = t
        .strike
        .mul(t.discount)?
        .mul(if call { n2 } else { n2_negated })?;
    // Θ = −S φ(d₁) σ / (2√T) ∓ r K e^(−rT) Φ(±d₂) (call −, put +).
    let volatility = Q::of(inputs.volatility)?;
    let decay = Q(density_spot.mul(volatility)?.mul(t.inv_sqrt_years)?.0 >> 1);
    let rate = Q::of(inputs.rate)?;
    let carry = if rate.0 == 0 {
        Q(0)
    } else {
        rate.mul(discounted_itm)?
    };
    let unit_theta = if call {
        Q(-decay.0).sub(carry)?
    } else {
        carry.sub(decay)?
    };
    let theta = scaled(unit_theta)?;
    // ρ = ± K T e^(−rT) Φ(±d₂).
    let unit_rho = t.years.mul(discounted_itm)?;
    let rho = scaled(if call { unit_rho } else { Q(-unit_rho.0) })?;
    Some(Valuation {
        price,
        delta: delta.fixed(),
        gamma,
        vega,
        theta,
        rho,
    })
}

/// The option's value at expiry for a settlement price: `max(S − K, 0)`
/// (call) or `max(K − S, 0)` (put).
pub fn intrinsic(side: OptionSide, settlement: I80F48, strike: I80F48) -> I80F48 {
    match side {
        OptionSide::Call => (settlement - strike).max(I80F48::ZERO),
        OptionSide::Put => (strike - settlement).max(I80F48::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixed_math::exp;
    use libm::erfc;
    use proptest::prelude::*;

    fn fx(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    fn n(x: f64) -> f64 {
        0.5 * erfc(-x / std::f64::consts::SQRT_2)
    }

    /// The f64 reference: textbook Black-Scholes on libm's erfc (musl's,
    /// within an ulp of f64).
    fn reference(side: OptionSide, s: f64, k: f64, years: f64, vol: f64, rate: f64) -> [f64; 6] {
        let sd = vol * years.sqrt();
        let d1 = ((s / k).ln() + rate * years) / sd + sd / 2.0;
        let d2 = d1 - sd;
        let df = (-rate * years).exp();
        let density = (-d1 * d1 / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let gamma = density / (s * sd);
        let vega = s * density * years.sqrt();
        let decay = s * density * vol / (2.0 * years.sqrt());
        match side {
            OptionSide::Call => [
                s * n(d1) - k * df * n(d2),
                n(d1),
                gamma,
                vega,
                -decay - rate * k * df * n(d2),
                k * years * df * n(d2),
            ],
            OptionSide::Put => [
                k * df * n(-d2) - s * n(-d1),
                n(d1) - 1.0,
                gamma,
                vega,
                -decay + rate * k * df * n(-d2),
                -k * years * df * n(-d2),
            ],
        }
    }

    fn inputs(
        side: OptionSide,
        s: f64,
        k: f64,
        seconds: i64,
        vol: f64,
        rate: f64,
    ) -> PricingInputs {
        PricingInputs {
            side,
            spot: fx(s),
            strike: fx(k),
            seconds_to_expiry: seconds,
            volatility: fx(vol),
            rate: fx(rate),
        }
    }

    fn as_array(v: &Valuation) -> [f64; 6] {
        [v.price, v.delta, v.gamma, v.vega, v.theta, v.rho].map(|x| x.to_num())
    }

    /// The accuracy table: strike 100 quote units, spot 50–200, an hour to
    /// two years, 5 %–300 % volatility, rates 0 and 5 %. Pins the worst
    /// absolute price error (quote units) and the worst relative error of
    /// prices above a hundredth of a unit, and each greek's.
    #[test]
    fn accuracy_against_the_f64_reference() {
        let strike = 100.0;
        let moneyness = [
            0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 1.75, 2.0,
        ];
        let hours = [1i64, 6, 24, 72, 168, 720, 2_160, 4_380, 8_760, 17_520];
        let vols = [0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0];
        let mut worst_abs = 0f64;
        let mut worst_rel = 0f64;
        let mut worst_greek = [0f64; 6];
        let mut cases = 0;
        for side in [OptionSide::Call, OptionSide::Put] {
            for &m in &moneyness {
                for &h in &hours {
                    for &vol in &vols {
                        for rate in [0.0, 0.05] {
                            let seconds = h * 3_600;
                            let spot = m * strike;
                            let years = seconds as f64 / f64::from(SECONDS_PER_YEAR);
                            let expected = reference(side, spot, strike, years, vol, rate);
                            let input = inputs(side, spot, strike, seconds, vol, rate);
                            let got = as_array(&valuation(&input).unwrap());
                            assert_eq!(price(&input).unwrap().to_num::<f64>(), got[0]);
                            let error = (got[0] - expected[0]).abs();
                            worst_abs = worst_abs.max(error);
                            if expected[0] > 0.01 {
                                worst_rel = worst_rel.max(error / expected[0]);
                            }
                            for g in 1..6 {
                                // Relative to the greek's size, or absolute
                                // where it is near zero.
                                let scale = expected[g].abs().max(1.0);
                                worst_greek[g] =
                                    worst_greek[g].max((got[g] - expected[g]).abs() / scale);
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        println!(
            "{cases} cases: worst price error {worst_abs:e} quote units, relative {worst_rel:e}; \
             greeks (delta gamma vega theta rho) {:e} {:e} {:e} {:e} {:e}",
            worst_greek[1], worst_greek[2], worst_greek[3], worst_greek[4], worst_greek[5]
        );
        assert!(worst_abs < 2e-11, "price: {worst_abs:e}");
        assert!(worst_rel < 1e-10, "relative: {worst_rel:e}");
        for (g, worst) in worst_greek.iter().enumerate().skip(1) {
            assert!(*worst < 1e-9, "greek {g}: {worst:e}");
        }
    }

    #[test]
    fn years_are_seconds_over_365_days_to_the_ulp() {
        for seconds in [
            0i64,
            1,
            3_600,
            86_400,
            31_536_000,
            315_360_000,
            1 << 39,
            (1 << 40) + 7,
        ] {
            let exact = (u128::from(seconds as u64) << 48) / u128::from(SECONDS_PER_YEAR);
            assert_eq!(years(seconds).to_bits(), exact as i128, "{seconds}");
        }
    }

    #[test]
    fn at_expiry_and_without_volatility_an_option_is_its_intrinsic_value() {
        for (side, spot, worth) in [
            (OptionSide::Call, 120.0, 20.0),
            (OptionSide::Call, 80.0, 0.0),
            (OptionSide::Put, 80.0, 20.0),
            (OptionSide::Put, 120.0, 0.0),
        ] {
            for (seconds, vol) in [(0, 0.8), (86_400, 0.0)] {
                let v = valuation(&inputs(side, spot, 100.0, seconds, vol, 0.0)).unwrap();
                // S/K and back: within a few ulp of the strike.
                assert!(
                    (v.price - fx(worth)).abs() <= fx(1e-12),
                    "{side:?} at {spot}: {}",
                    v.price
                );
                assert_eq!(v.gamma, 0);
                assert_eq!(v.vega, 0);
                assert_eq!(
                    v.delta.abs(),
                    if worth > 0.0 {
                        I80F48::ONE
                    } else {
                        I80F48::ZERO
                    }
                );
            }
        }
        assert_eq!(intrinsic(OptionSide::Call, fx(130.0), fx(100.0)), fx(30.0));
        assert_eq!(intrinsic(OptionSide::Put, fx(130.0), fx(100.0)), 0);
    }

    #[test]
    fn inputs_outside_their_range_are_refused() {
        let good = inputs(OptionSide::Call, 100.0, 100.0, 86_400, 0.8, 0.0);
        assert!(price(&good).is_ok());
        let broken: [fn(&mut PricingInputs); 9] = [
            |i| i.spot = I80F48::ZERO,
            |i| i.strike = I80F48::ZERO,
            |i| i.strike = fx(-1.0),
            |i| i.seconds_to_expiry = -1,
            |i| i.seconds_to_expiry = MAX_SECONDS_TO_EXPIRY + 1,
            |i| i.volatility = fx(-0.1),
            |i| i.volatility = MAX_VOLATILITY + I80F48::DELTA,
            |i| i.rate = fx(1.5),
            // Found by the option_pricing fuzzer: |MIN| overflowed.
            |i| i.rate = I80F48::MIN,
        ];
        for (case, breaks) in broken.iter().enumerate() {
            let mut input = good;
            breaks(&mut input);
            assert_eq!(
                price(&input),
                Err(PricingError::InvalidInput),
                "case {case}"
            );
            assert_eq!(
                valuation(&input),
                Err(PricingError::InvalidInput),
                "case {case}"
            );
        }
        // Any moneyness prices: on the larger's scale, a call on the
        // largest spot at the smallest strike is worth the spot (to the
        // precision of the spot's share), a put nothing.
        let extreme = PricingInputs {
            spot: I80F48::MAX,
            strike: I80F48::DELTA,
            ..good
        };
        let call = price(&extreme).unwrap();
        assert!(I80F48::MAX - call <= I80F48::MAX / (1i128 << 46), "{call}");
        let put = PricingInputs {
            side: OptionSide::Put,
            ..extreme
        };
        assert_eq!(price(&put), Ok(I80F48::ZERO));
    }

    fn side() -> impl Strategy<Value = OptionSide> {
        prop_oneof![Just(OptionSide::Call), Just(OptionSide::Put)]
    }

    proptest! {
        /// C − P = S − K e^(−rT), and the bounds of a European option.
        #[test]
        fn parity_and_bounds(
            spot in 1.0f64..10_000.0,
            moneyness in 0.2f64..5.0,
            seconds in 0i64..2 * i64::from(SECONDS_PER_YEAR),
            vol in 0.0f64..5.0,
            rate in -0.2f64..0.2,
        ) {
            let strike = spot / moneyness;
            let call = valuation(&inputs(OptionSide::Call, spot, strike, seconds, vol, rate)).unwrap();
            let put = valuation(&inputs(OptionSide::Put, spot, strike, seconds, vol, rate)).unwrap();
            let (s, k) = (fx(spot), fx(strike));
            let discount = exp(-mul(fx(rate), years(seconds)).unwrap()).unwrap();
            let forward_gap = s - mul(k, discount).unwrap();
            let slack = fx(1e-9) * (s + k);
            prop_assert!((call.price - put.price - forward_gap).abs() <= slack, "parity: {} {} {}", call.price, put.price, forward_gap);
            // max(S − K e^(−rT), 0) ≤ C ≤ S; max(K e^(−rT) − S, 0) ≤ P ≤ K e^(−rT).
            prop_assert!(call.price >= forward_gap.max(I80F48::ZERO) - slack && call.price <= s + slack);
            prop_assert!(put.price >= (-forward_gap).max(I80F48::ZERO) - slack && put.price <= mul(k, discount).unwrap() + slack);
            // Greeks of the right sign.
            prop_assert!((I80F48::ZERO..=I80F48::ONE).contains(&call.delta));
            prop_assert!((-I80F48::ONE..=I80F48::ZERO).contains(&put.delta));
            prop_assert!((call.delta - put.delta - I80F48::ONE).abs() <= fx(1e-12), "delta parity");
            prop_assert!(call.gamma >= 0 && call.gamma == put.gamma);
            prop_assert!(call.vega >= 0 && call.vega == put.vega);
            prop_assert!(call.rho >= 0 && put.rho <= 0);
            if rate >= 0.0 {
                prop_assert!(call.theta <= 0, "a call decays without negative rates");
            }
        }

        /// Calls fall and puts rise with the strike; both rise with
        /// volatility and (at rate 0) with time.
        #[test]
        fn monotone_in_strike_volatility_and_time(
            side in side(),
            spot in 1.0f64..10_000.0,
            moneyness in 0.3f64..3.0,
            seconds in 3_600i64..2 * i64::from(SECONDS_PER_YEAR),
            vol in 0.02f64..4.0,
            step in 0.001f64..0.5,
        ) {
            let strike = spot / moneyness;
            let base = inputs(side, spot, strike, seconds, vol, 0.0);
            let at = |i: PricingInputs| price(&i).unwrap();
            let here = at(base);
            let slack = fx(1e-10) * (fx(spot) + fx(strike));
            let higher_strike = at(PricingInputs { strike: fx(strike * (1.0 + step)), ..base });
            match side {
                OptionSide::Call => prop_assert!(higher_strike <= here + slack),
                OptionSide::Put => prop_assert!(higher_strike >= here - slack),
            }
            let more_volatile = at(PricingInputs { volatility: fx(vol * (1.0 + step)), ..base });
            prop_assert!(more_volatile >= here - slack);
            let later = ((seconds as f64) * (1.0 + step)) as i64;
            let longer = at(PricingInputs { seconds_to_expiry: later.min(MAX_SECONDS_TO_EXPIRY), ..base });
            prop_assert!(longer >= here - slack);
        }

        /// Any input in range prices without panic, and to the reference
        /// where the reference itself is well conditioned.
        #[test]
        fn any_input_in_range_prices(
            side in side(),
            spot_bits in 1i128..1 << 100,
            strike_bits in 1i128..1 << 100,
            seconds in 0..=MAX_SECONDS_TO_EXPIRY,
            vol_bits in 0i128..=10 << 48,
            rate_bits in -(1i128 << 48)..=1 << 48,
        ) {
            let input = PricingInputs {
                side,
                spot: I80F48::from_bits(spot_bits),
                strike: I80F48::from_bits(strike_bits),
                seconds_to_expiry: seconds,
                volatility: I80F48::from_bits(vol_bits),
                rate: I80F48::from_bits(rate_bits),
            };
            match valuation(&input) {
                Ok(v) => {
                    prop_assert!(v.price >= 0);
                    prop_assert_eq!(price(&input), Ok(v.price));
                }
                Err(e) => prop_assert_eq!(e, PricingError::Overflow),
            }
        }
    }
}
