//! Options in the migrations file: an underlying's `[underlying.options]`
//! (its implied-volatility feed, bounds, rate and short-margin terms) and
//! `[[series]]`, a set of European options of one expiry: strikes, absolute
//! or relative to the spot at listing, each a call and/or a put, listed as
//! markets `first_index`, `first_index + 1`, … in order (by strike, a call
//! before a put). Listing terms are fixed at listing; the fees, bands and
//! status are compared and updated like any market's.
use fixed::types::I80F48;
use kestrel::engine::black_scholes::OptionSide;
use kestrel::state::{
    FutureParams, Market, MarketLimits, MarketParams, MarketStatus, OptionConfig, OptionParams,
};
use kestrel_sdk::Pubkey;
use serde::Deserialize;

use crate::config::{parse_pubkey, Expiry};
use crate::expiry::ExpiryValue;

/// `[underlying.options]`: what `set_option_config` stores.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptionsConfig {
    /// The Switchboard On-Demand pull feed whose value is the at-the-money
    /// implied volatility, as a fraction (0.8 = 80 %).
    pub volatility_feed: String,
    pub max_age_seconds: u32,
    pub min_volatility_bps: u32,
    pub max_volatility_bps: u32,
    #[serde(default)]
    pub rate_bps: i32,
    pub initial_a_bps: u32,
    pub initial_b_bps: u32,
    pub maintenance_a_bps: u32,
    pub maintenance_b_bps: u32,
}

impl OptionsConfig {
    pub fn option_config(&self) -> Result<OptionConfig, String> {
        Ok(OptionConfig {
            volatility_feed: parse_pubkey(&self.volatility_feed)?.to_bytes(),
            max_age_seconds: self.max_age_seconds,
            min_volatility_bps: self.min_volatility_bps,
            max_volatility_bps: self.max_volatility_bps,
            rate_bps: self.rate_bps,
            initial_a_bps: self.initial_a_bps,
            initial_b_bps: self.initial_b_bps,
            maintenance_a_bps: self.maintenance_a_bps,
            maintenance_b_bps: self.maintenance_b_bps,
        })
    }
}

/// `[[series]]`: European options of one expiry on one underlying.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    /// The markets' name prefix: each is named `<name>-<strike><C|P>`
    /// (at most 16 bytes), e.g. "SOL-W1-150C".
    pub name: String,
    /// The `[[underlying]]` (which needs `[underlying.options]`).
    pub underlying: u16,
    /// The market index of the first option; the rest follow in order.
    pub first_index: u16,
    /// Strikes in whole quote units per whole base unit (USDC per SOL).
    #[serde(default)]
    pub strikes: Vec<u64>,
    /// Or strikes as basis points of the underlying's price when listed
    /// (10,000 at the money), rounded to `strike_step` whole quote units;
    /// not compared once listed (the strikes on chain stand).
    #[serde(default)]
    pub strikes_bps_of_spot: Vec<u32>,
    #[serde(default = "one")]
    pub strike_step: u64,
    /// "call", "put", or both (the default), in that order per strike.
    #[serde(default = "both")]
    pub sides: Vec<String>,
    /// When the series expires, as a future's `expiry` (or
    /// `expiry_in_seconds` after listing), and its settlement window.
    pub expiry: Option<ExpiryValue>,
    pub expiry_in_seconds: Option<u32>,
    pub settlement_window_seconds: u32,
    /// The series' volatility relative to the underlying's at-the-money
    /// input (10,000: as is) and its skew per unit of (K − S)/S.
    #[serde(default = "ten_thousand")]
    pub volatility_term_bps: u32,
    #[serde(default)]
    pub volatility_skew_bps: i32,
    /// The bands' share of the spot (their share of the value is
    /// `price_band_bps`, `resting_band_bps`).
    pub band_spot_bps: u32,
    pub base_lot_size: u64,
    pub quote_lot_size: u64,
    pub maker_fee_bps: i32,
    pub taker_fee_bps: u32,
    pub price_band_bps: u32,
    pub resting_band_bps: u32,
    pub max_fills_per_order: u16,
    pub crank_reward_native: u64,
    pub liquidation_fee_bps: u32,
    pub liquidation_insurance_share_bps: u16,
    /// Each option's open-interest and position caps in lots; 0 or absent:
    /// none.
    #[serde(default)]
    pub max_open_interest_lots: u64,
    #[serde(default)]
    pub max_position_lots: u64,
    #[serde(default = "active")]
    pub status: String,
}

fn one() -> u64 {
    1
}

fn both() -> Vec<String> {
    vec!["call".into(), "put".into()]
}

fn ten_thousand() -> u32 {
    10_000
}

fn active() -> String {
    "active".into()
}

/// How a listing's strike is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// Whole quote units per whole base unit.
    Whole(u64),
    /// Basis points of the spot at listing, rounded to `step` whole units.
    OfSpot { bps: u32, step: u64 },
}

/// One option of a series: the market it is listed as.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionListing {
    pub index: u16,
    pub name: String,
    pub side: OptionSide,
    pub strike: Strike,
}

impl SeriesConfig {
    /// The series' options, in index order.
    pub fn listings(&self) -> Result<Vec<OptionListing>, (&'static str, String)> {
        let sides = self
            .sides
            .iter()
            .map(|side| match side.as_str() {
                "call" => Ok(OptionSide::Call),
                "put" => Ok(OptionSide::Put),
                other => Err((
                    "sides",
                    format!("unknown side {other:?}, expected \"call\" or \"put\""),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sides.is_empty() {
            return Err(("sides", "a series needs a side".into()));
        }
        let strikes: Vec<Strike> =
            match (self.strikes.is_empty(), self.strikes_bps_of_spot.is_empty()) {
                (false, true) => self.strikes.iter().map(|&s| Strike::Whole(s)).collect(),
                (true, false) => {
                    if self.strike_step == 0 {
                        return Err(("strike_step", "must be positive".into()));
                    }
                    self.strikes_bps_of_spot
                        .iter()
                        .map(|&bps| Strike::OfSpot {
                            bps,
                            step: self.strike_step,
                        })
                        .collect()
                }
                _ => {
                    return Err((
                        "strikes",
                        "give strikes or strikes_bps_of_spot (one, not both)".into(),
                    ))
                }
            };
        let mut listings = Vec::new();
        for strike in strikes {
            if matches!(strike, Strike::Whole(0) | Strike::OfSpot { bps: 0, .. }) {
                return Err(("strikes", "a strike must be positive".into()));
            }
            for &side in &sides {
                let index = u16::try_from(usize::from(self.first_index) + listings.len()).map_err(
                    |_| {
                        (
                            "first_index",
                            "the series runs past market index 65535".to_string(),
                        )
                    },
                )?;
                let tag = match strike {
                    Strike::Whole(whole) => whole.to_string(),
                    Strike::OfSpot { bps, .. } => format!("{}pc", bps / 100),
                };
                let letter = if side == OptionSide::Call { 'C' } else { 'P' };
                let name = format!("{}-{tag}{letter}", self.name);
                if name.is_empty() || name.len() > 16 {
                    return Err(("name", format!("{name:?} must be 1 to 16 bytes")));
                }
                listings.push(OptionListing {
                    index,
                    name,
                    side,
                    strike,
                });
            }
        }
        Ok(listings)
    }

    /// When the series expires.
    pub fn expiry(&self) -> Result<Expiry, (&'static str, String)> {
        match (&self.expiry, self.expiry_in_seconds) {
            (Some(value), None) => Ok(Expiry::At(value.unix().map_err(|e| ("expiry", e))?)),
            (None, Some(seconds)) => Ok(Expiry::AfterListing(seconds)),
            _ => Err((
                "expiry",
                "give expiry or expiry_in_seconds (one, not both)".into(),
            )),
        }
    }

    /// The option's expiry and settlement terms for a series listed at
    /// unix time `now` (no basis).
    pub fn future_params(&self, now: i64) -> Result<FutureParams, (&'static str, String)> {
        Ok(FutureParams {
            expiry: self.expiry()?.at(now),
            settlement_window_seconds: self.settlement_window_seconds,
            max_basis_bps: 0,
            basis_window_seconds: 0,
            convergence_seconds: 0,
        })
    }

    /// Each option's open-interest and position caps.
    pub fn limits(&self) -> MarketLimits {
        MarketLimits {
            max_open_interest_lots: self.max_open_interest_lots,
            max_position_lots: self.max_position_lots,
        }
    }

    /// The market parameters: the series' fees, bands, fill limit, crank
    /// reward and liquidation terms. Options are margined by their own rule
    /// and pay no funding, so the margin fractions (validated, not used) are
    /// the widest the program accepts and the funding terms inert.
    pub fn params(&self) -> MarketParams {
        MarketParams {
            crank_reward_native: self.crank_reward_native,
            initial_margin_bps: 10_000,
            maintenance_margin_bps: 9_999,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
            price_band_bps: self.price_band_bps,
            resting_band_bps: self.resting_band_bps,
            funding_cap_bps: 0,
            funding_period_seconds: 3_600,
            liquidation_fee_bps: self.liquidation_fee_bps,
            max_fills_per_order: self.max_fills_per_order,
            liquidation_insurance_share_bps: self.liquidation_insurance_share_bps,
        }
    }

    pub fn status(&self) -> Result<MarketStatus, String> {
        Ok(match self.status.as_str() {
            "active" => MarketStatus::Active,
            "reduce_only" => MarketStatus::ReduceOnly,
            "paused" => MarketStatus::Paused,
            other => {
                return Err(format!(
                    "unknown status {other:?} (a series closes by settling)"
                ))
            }
        })
    }

    /// What the market stores of `listing`, its strike resolved: native
    /// quote per native base from whole units at `decimals` (base, quote),
    /// or from the spot (`spot`, native quote per native base).
    pub fn option_params(
        &self,
        listing: &OptionListing,
        decimals: (u8, u8),
        spot: Option<I80F48>,
    ) -> Result<OptionParams, String> {
        let (base, quote) = decimals;
        // Whole quote per whole base in native units: × 10^quote / 10^base.
        let unit = I80F48::from_num(10u64.pow(u32::from(quote)))
            / I80F48::from_num(10u64.pow(u32::from(base)));
        let whole = match listing.strike {
            Strike::Whole(whole) => whole,
            Strike::OfSpot { bps, step } => {
                let spot = spot.ok_or("a strike relative to the spot needs the underlying's price on chain: refresh it, then apply again")?;
                let spot_whole = spot / unit;
                let target = spot_whole * I80F48::from_num(bps) / 10_000;
                let steps = (target / I80F48::from_num(step))
                    .round()
                    .to_num::<u64>()
                    .max(1);
                steps * step
            }
        };
        let strike = I80F48::checked_from_num(whole)
            .and_then(|w| w.checked_mul(unit))
            .filter(|s| *s > 0)
            .ok_or("the strike is out of range")?;
        Ok(OptionParams {
            strike: kestrel::engine::funding::to_parts(strike),
            volatility_term_bps: self.volatility_term_bps,
            volatility_skew_bps: self.volatility_skew_bps,
            band_spot_bps: self.band_spot_bps,
            side: listing.side as u8,
            padding: [0; 3],
        })
    }
}

/// What is fixed at listing differs from the file: the names of the
/// fields that do (`None`: it matches). A strike relative to the spot is
/// not compared (the one on chain stands).
pub fn listing_differs(
    series: &SeriesConfig,
    listing: &OptionListing,
    on_chain: &Market,
    wanted: Option<&OptionParams>,
    underlying: &Pubkey,
) -> Option<&'static str> {
    if on_chain.kind != kestrel::state::InstrumentKind::Option as u8 {
        return Some("kind (the market on chain is not an option)");
    }
    if on_chain.underlying != *underlying {
        return Some("underlying");
    }
    if on_chain.option.side != listing.side as u8 {
        return Some("sides");
    }
    if (on_chain.base_lot_size, on_chain.quote_lot_size)
        != (series.base_lot_size, series.quote_lot_size)
    {
        return Some("base_lot_size");
    }
    if let (Strike::Whole(_), Some(wanted)) = (listing.strike, wanted) {
        if wanted.strike != on_chain.option.strike {
            return Some("strikes");
        }
    }
    if let Some(wanted) = wanted {
        let series_terms = (
            wanted.volatility_term_bps,
            wanted.volatility_skew_bps,
            wanted.band_spot_bps,
        );
        let chain_terms = (
            on_chain.option.volatility_term_bps,
            on_chain.option.volatility_skew_bps,
            on_chain.option.band_spot_bps,
        );
        if series_terms != chain_terms {
            return Some("volatility_term_bps");
        }
    }
    if on_chain.future.params.settlement_window_seconds != series.settlement_window_seconds {
        return Some("settlement_window_seconds");
    }
    if let Ok(Expiry::At(expiry)) = series.expiry() {
        if expiry != on_chain.future.params.expiry {
            return Some("expiry");
        }
    }
    None
}
