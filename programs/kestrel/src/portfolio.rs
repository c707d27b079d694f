//! The one portfolio walk: a margin account's positions, grouped by the
//! underlying their price comes from, built once per instruction through an
//! [`AccountRetriever`] and valued by `engine::risk`.
//!
//! The program's retriever ([`RemainingAccounts`]) reads the health accounts
//! an instruction is given after its named accounts, in this order:
//!
//! for each active position of the margin account, in slot order, other
//! than the market the instruction itself names: that position's `Market`,
//! followed by the `Underlying` it names unless an earlier market named it
//! or the instruction names it itself.
//!
//! So an account with 32 positions on two underlyings needs at most 34
//! accounts, not three per position. The SDK builds the list
//! (`kestrel_sdk::ix::health_accounts`) and its preview walks fetched
//! snapshots through its own retriever with this same code.
//!
//! A position counts at its market's mark ([`MarkRule`]): a perpetual's is
//! its underlying's current price, a dated future's that price plus the
//! market's basis (fading to zero at expiry), an option's its Black-Scholes
//! value at that price and the underlying's implied volatility; an
//! underlying without a current price (or, for an option, volatility)
//! refuses the instruction with the oracle's error. A settled market's
//! positions count at their settlement value; a closed perpetual's at the
//! underlying's last good price, so a dead feed cannot block health
//! elsewhere. An option position also requires its margin beyond its value
//! (`engine::option_margin`).
use anchor_lang::prelude::*;
use fixed::types::I80F48;

use crate::engine::black_scholes::{self, OptionSide, PricingInputs};
use crate::engine::fastmul::{checked_mul_i64_u64, checked_mul_u64};
use crate::engine::fixed_math;
use crate::engine::funding;
use crate::engine::future;
use crate::engine::margin_scaling::MarginTerms;
use crate::engine::option_margin::{OptionRequirement, OptionRisk, ShortMarginTerms};
use crate::engine::risk::{self, HealthKind, PerpExposure};
use crate::engine::scenario_margin::{
    self, Instrument, MarketPoint, RiskArray, Scenario, ScenarioGrid, ScenarioPortfolio,
    ScenarioShare, SCENARIOS,
};
use crate::error::{KestrelError, OrOverflow};
use crate::state::*;

/// The most distinct underlyings one margin account may hold positions on.
/// A liquidation names the liquidatee's every position's market and each
/// distinct underlying besides its own 11 accounts: 31 markets, 15 more
/// underlyings and those 11, with the two programs, come to 59 of a
/// transaction's 64 account locks, leaving the liquidator room for a few
/// positions of its own. An account past it could not be liquidated.
pub const MAX_UNDERLYINGS_PER_ACCOUNT: usize = 16;

/// Where a market's positions are marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkRule {
    /// At the underlying's price (perpetuals).
    Underlying,
    /// At the underlying's price plus the market's basis, which fades to
    /// zero over the last `convergence_seconds` before expiry; from expiry
    /// until the settlement price is fixed, at the settlement average
    /// captured so far (what it will settle at), not the moving price.
    /// Only what the mark reads: health copies one per position.
    Future {
        /// The basis estimate (native quote per native base).
        basis: I80F48,
        expiry: i64,
        max_basis_bps: u32,
        convergence_seconds: u32,
        /// Past expiry, the settlement average captured so far; zero before
        /// (a price is positive).
        settlement_average: I80F48,
        /// The unix time the rule was built for, and the mark is taken at:
        /// whether the average applies was decided then.
        now: i64,
    },
    /// At its Black-Scholes value (options); past expiry, until the
    /// settlement price is fixed, at its intrinsic value at the settlement
    /// average captured so far.
    Option(OptionMark),
    /// At the settlement value (a future's settlement price, an option's
    /// intrinsic value at it), once fixed.
    Settled(I80F48),
}

/// What an option market's mark reads of the market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionMark {
    pub side: OptionSide,
    pub strike: I80F48,
    pub expiry: i64,
    pub volatility_term_bps: u32,
    pub volatility_skew_bps: i32,
    /// The market's fill band (a share of the value plus a share of the
    /// spot): the requirement's slack (`option_margin`).
    pub band_bps: u32,
    pub band_spot_bps: u32,
    /// Past expiry, the settlement average captured so far; zero before
    /// (a price is positive). Kept as the value, not an `Option`: health
    /// copies one per position.
    pub settlement_average: I80F48,
    /// The unix time the mark is taken at.
    pub now: i64,
}

/// What an underlying gives its options: the implied volatility now (or
/// why there is none), its bounds, the rate and the short-margin terms.
#[derive(Clone, Copy, Debug)]
pub struct OptionTerms {
    pub volatility: core::result::Result<I80F48, KestrelError>,
    pub min_volatility_bps: u32,
    pub max_volatility_bps: u32,
    pub rate_bps: i32,
    pub margin: ShortMarginTerms,
}

impl OptionTerms {
    /// An underlying that lists no options.
    pub const NONE: Self = Self {
        volatility: Err(KestrelError::VolatilityUnavailable),
        min_volatility_bps: 0,
        max_volatility_bps: 0,
        rate_bps: 0,
        margin: ShortMarginTerms {
            initial_a_bps: 0,
            initial_b_bps: 0,
            maintenance_a_bps: 0,
            maintenance_b_bps: 0,
        },
    };

    /// The terms of `state` at unix time `now`, with `volatility` (the
    /// current one, or for banding a reduce-only order the recent one).
    pub fn of(
        state: &VolatilityState,
        volatility: core::result::Result<I80F48, KestrelError>,
    ) -> Self {
        let config = &state.config;
        Self {
            volatility,
            min_volatility_bps: config.min_volatility_bps,
            max_volatility_bps: config.max_volatility_bps,
            rate_bps: config.rate_bps,
            margin: ShortMarginTerms {
                initial_a_bps: config.initial_a_bps,
                initial_b_bps: config.initial_b_bps,
                maintenance_a_bps: config.maintenance_a_bps,
                maintenance_b_bps: config.maintenance_b_bps,
            },
        }
    }

    /// The current terms of `underlying` at `now`; [`Self::NONE`] when it
    /// has no volatility input (no fixed-point work for perpetuals).
    pub fn current(underlying: &Underlying, now: i64) -> Self {
        if underlying.volatility.is_configured() {
            Self::of(&underlying.volatility, underlying.volatility.current(now))
        } else {
            Self::NONE
        }
    }
}

impl OptionMark {
    /// The series' volatility at `spot`: the underlying's at-the-money
    /// input × term + skew × (K − S)/S, within the underlying's bounds.
    pub fn volatility(&self, spot: I80F48, terms: &OptionTerms) -> Result<I80F48> {
        let atm = terms.volatility?;
        let bps = |bps: u32| fixed_math::from_bps(i32::try_from(bps).unwrap_or(i32::MAX));
        let mut volatility = fixed_math::mul(atm, bps(self.volatility_term_bps)).or_overflow()?;
        if self.volatility_skew_bps != 0 {
            let moneyness_gap = fixed_math::div(self.strike - spot, spot).or_overflow()?;
            let skew = fixed_math::mul(
                fixed_math::from_bps(self.volatility_skew_bps),
                moneyness_gap,
            )
            .or_overflow()?;
            volatility = volatility.checked_add(skew).or_overflow()?;
        }
        let (low, high) = (bps(terms.min_volatility_bps), bps(terms.max_volatility_bps));
        Ok(volatility.clamp(low, high))
    }

    /// The option's value per unit when the underlying is at `spot`.
    pub fn value(&self, spot: I80F48, terms: &OptionTerms) -> Result<I80F48> {
        match self.expired_value(spot) {
            Some(value) => Ok(value),
            None => self.value_at(spot, self.volatility(spot, terms)?, terms),
        }
    }

    /// [`Self::value`] given the series' `volatility` at `spot`
    /// ([`Self::volatility`]; portfolio health has it already, from checking
    /// the risk array, and saves computing it twice).
    pub fn value_at(
        &self,
        spot: I80F48,
        volatility: I80F48,
        terms: &OptionTerms,
    ) -> Result<I80F48> {
        if let Some(value) = self.expired_value(spot) {
            return Ok(value);
        }
        let inputs = self.inputs_at(spot, volatility, terms);
        Ok(black_scholes::price(&inputs).map_err(KestrelError::from)?)
    }

    /// At or past expiry: the payoff at the settlement average (at `spot`
    /// until the average is known).
    fn expired_value(&self, spot: I80F48) -> Option<I80F48> {
        if self.now < self.expiry {
            return None;
        }
        let at = if self.settlement_average > 0 {
            self.settlement_average
        } else {
            spot
        };
        Some(black_scholes::intrinsic(self.side, at, self.strike))
    }

    /// What the option is priced from at `spot`.
    pub fn inputs(&self, spot: I80F48, terms: &OptionTerms) -> Result<PricingInputs> {
        Ok(self.inputs_at(spot, self.volatility(spot, terms)?, terms))
    }

    fn inputs_at(&self, spot: I80F48, volatility: I80F48, terms: &OptionTerms) -> PricingInputs {
        PricingInputs {
            side: self.side,
            spot,
            strike: self.strike,
            seconds_to_expiry: self.expiry.saturating_sub(self.now).max(0),
            volatility,
            rate: fixed_math::from_bps(terms.rate_bps),
        }
    }
}

/// What health needs of a position's market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketRisk {
    pub market_index: u16,
    pub underlying: Pubkey,
    pub closed: bool,
    pub mark: MarkRule,
    pub base_lot_size: u64,
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    pub long_funding_index: [u64; 2],
    pub short_funding_index: [u64; 2],
}

impl MarketRisk {
    /// What health needs of `market` at unix time `now`.
    #[inline(always)]
    pub fn of(market: &Market, now: i64) -> Result<Self> {
        // An option is margined by its own rule (`option_margin`), not a
        // fraction of its value.
        let option = market.has_expiry() && market.kind == InstrumentKind::Option as u8;
        let fractions = if option {
            (0, 0)
        } else {
            (
                market.params.initial_margin_bps,
                market.params.maintenance_margin_bps,
            )
        };
        Ok(Self {
            market_index: market.market_index,
            underlying: market.underlying,
            closed: matches!(market.status(), Ok(MarketStatus::Closed)),
            mark: MarkRule::of(market, now)?,
            base_lot_size: market.base_lot_size,
            initial_margin_bps: fractions.0,
            maintenance_margin_bps: fractions.1,
            long_funding_index: market.long_funding_index,
            short_funding_index: market.short_funding_index,
        })
    }
}

/// What health needs of an underlying: its price now, or why there is none,
/// the last good price (for closed markets), and for initial health the
/// stable price and the feeds' price while a price limit holds the current
/// one away from it.
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingPrices {
    pub current: core::result::Result<I80F48, KestrelError>,
    pub last_good: Option<I80F48>,
    /// `None` before the first accepted price.
    pub stable: Option<I80F48>,
    /// The feeds' price, while the underlying's price limit holds the
    /// accepted price away from it (`engine::price_limit`): initial health
    /// values a position at it when that is worse for the position, so the
    /// limit lends nobody what the feeds say it has lost.
    pub feed: Option<I80F48>,
    /// How its markets' margin fractions scale (`engine::margin_scaling`).
    pub margin: MarginTerms,
    pub options: OptionTerms,
    /// Its portfolio margin, when it has a grid.
    pub scenario: Option<ScenarioTerms>,
}

/// An underlying's portfolio margin as health applies it now: its
/// configuration and the grid at the scan range its volatility scale
/// gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioTerms {
    pub config: ScenarioConfig,
    pub grid: ScenarioGrid,
}

impl ScenarioTerms {
    /// `underlying`'s terms; `None` without a grid.
    pub fn of(underlying: &Underlying) -> Option<Self> {
        let config = underlying.scenario;
        config.enabled().then(|| Self {
            config,
            grid: config.grid(underlying.risk_scaling.scale_bps()),
        })
    }

    /// The share of the worst loss that health of `kind` requires.
    pub fn factor_bps(&self, kind: HealthKind) -> u32 {
        risk::margin_bps(kind, 10_000, self.config.maintenance_factor_bps)
    }
}

/// What `refresh_risk_arrays` prices an underlying's option risk arrays
/// at: the grid health applies now, the accepted price, the option terms.
/// Every input is the program's own. The SDK computes the same to value an
/// account as a transaction that refreshes its arrays first will.
pub struct RiskArrayPricing {
    terms: ScenarioTerms,
    scenarios: [Scenario; SCENARIOS],
    spot: I80F48,
    options: OptionTerms,
    now: i64,
}

impl RiskArrayPricing {
    /// `underlying`'s at unix time `now` and `slot`: refused without a grid
    /// (`NoScenarioMargin`) or without a current price.
    pub fn of(underlying: &Underlying, now: i64, slot: u64) -> Result<Self> {
        let terms = ScenarioTerms::of(underlying).ok_or(KestrelError::NoScenarioMargin)?;
        let scenarios = terms
            .grid
            .scenarios()
            .map_err(|_| KestrelError::InvalidScenarioMargin)?;
        Ok(Self {
            terms,
            scenarios,
            spot: underlying.current_price(now, slot)?,
            options: OptionTerms::current(underlying, now),
            now,
        })
    }

    /// The risk array of `market`, an option of the underlying before its
    /// expiry (else `NotAnOptionMarket`), at its volatility at the spot.
    pub fn array_of(&self, market: &Market) -> Result<RiskArrayRead> {
        let MarkRule::Option(mark) = MarkRule::of(market, self.now)? else {
            return err!(KestrelError::NotAnOptionMarket);
        };
        require!(self.now < mark.expiry, KestrelError::NotAnOptionMarket);
        let volatility = mark.volatility(self.spot, &self.options)?;
        let instrument = Instrument::Option {
            side: mark.side,
            strike: mark.strike,
            seconds_to_expiry: mark.expiry - self.now,
        };
        let point = MarketPoint {
            spot: self.spot,
            volatility,
            rate: fixed_math::from_bps(self.options.rate_bps),
        };
        let entries = scenario_margin::risk_array(&instrument, &point, &self.scenarios)
            .map_err(|_| KestrelError::OptionPricingFailed)?;
        Ok(RiskArrayRead {
            spot: self.spot,
            volatility,
            computed_at: self.now,
            scan_range_bps: self.terms.grid.scan_range_bps,
            config_version: self.terms.config.version,
            entries,
        })
    }
}

impl UnderlyingPrices {
    /// The underlying's prices at unix time `now` and `slot`.
    pub fn of(underlying: &Underlying, now: i64, slot: u64) -> Self {
        Self {
            current: underlying.current_price(now, slot),
            last_good: underlying.last_good_price(),
            stable: underlying.stable_price().price(),
            feed: underlying.price_limit().lagging_feed(),
            margin: underlying.margin_terms(),
            options: OptionTerms::current(underlying, now),
            scenario: ScenarioTerms::of(underlying),
        }
    }

    /// The prices with no feeds' leg in initial health: for a liquidator,
    /// on the underlying of the market it liquidates (elsewhere it reads
    /// the feeds as any withdrawal does). It takes the position over at the
    /// accepted price, the price every step of its liquidation will be
    /// judged at. Valued at a pumped feed
    /// instead, the short it takes over from a manipulated market would
    /// cost it several times the position's value in health, and only the
    /// attacker (whose own long nets the lots away) could liquidate.
    pub fn without_feed(self) -> Self {
        Self { feed: None, ..self }
    }
}

impl MarkRule {
    /// How `market` marks its positions at unix time `now`.
    #[inline(always)]
    pub fn of(market: &Market, now: i64) -> Result<Self> {
        // Only a market with an expiry settles: a perpetual's mark is the
        // underlying's price, without reading the future block.
        if !market.has_expiry() {
            return Ok(MarkRule::Underlying);
        }
        if let Some(price) = market.settlement_price() {
            return Ok(MarkRule::Settled(market.settlement_value_per_unit(price)?));
        }
        let params = &market.future.params;
        let settlement_average = if now >= params.expiry {
            market
                .future
                .settlement()
                .average_so_far()
                .map_err(KestrelError::from)?
                .unwrap_or(I80F48::ZERO)
        } else {
            I80F48::ZERO
        };
        if market.kind()? == InstrumentKind::Option {
            let option = &market.option;
            return Ok(MarkRule::Option(OptionMark {
                side: option.side()?,
                strike: option.strike(),
                expiry: params.expiry,
                volatility_term_bps: option.volatility_term_bps,
                volatility_skew_bps: option.volatility_skew_bps,
                band_bps: market.params.price_band_bps,
                band_spot_bps: option.band_spot_bps,
                settlement_average,
                now,
            }));
        }
        Ok(MarkRule::Future {
            basis: market.future.basis().basis(),
            expiry: params.expiry,
            max_basis_bps: params.max_basis_bps,
            convergence_seconds: params.convergence_seconds,
            settlement_average,
            now,
        })
    }

    /// The mark, at the time the rule was built for, when the underlying's
    /// price is `underlying_price` and it gives options `terms`.
    pub fn apply(&self, underlying_price: I80F48, terms: &OptionTerms) -> Result<I80F48> {
        match self {
            MarkRule::Settled(price) => Ok(*price),
            MarkRule::Underlying => Ok(underlying_price),
            MarkRule::Option(option) => option.value(underlying_price, terms),
            MarkRule::Future {
                basis,
                expiry,
                max_basis_bps,
                convergence_seconds,
                settlement_average,
                now,
            } => {
                if *now >= *expiry && *settlement_average > 0 {
                    return Ok(*settlement_average);
                }
                Ok(future::mark_price(
                    *basis,
                    *now,
                    *expiry,
                    underlying_price,
                    *max_basis_bps,
                    *convergence_seconds,
                )
                .map_err(KestrelError::from)?)
            }
        }
    }
}

impl MarketRisk {
    /// The price a position of sign `base` in this market counts at in
    /// initial health's other reading, given its `mark` at the current
    /// price: the same rule applied to the underlying's stable price, or to
    /// the feeds' price a price limit holds back when that is worse for the
    /// position ([`risk::initial_price`]). A settled or closed market's price does not
    /// move with the underlying's, and a stable price equal to the current
    /// one with no limit holding the price (a calm market) changes nothing:
    /// no second valuation.
    pub fn initial_mark_price(
        &self,
        prices: &UnderlyingPrices,
        mark: I80F48,
        base: i64,
    ) -> Result<I80F48> {
        let Ok(current) = prices.current else {
            return Ok(mark);
        };
        if matches!(self.mark, MarkRule::Settled(_)) {
            return Ok(mark);
        }
        // A closed perpetual is marked at the last good price, which a
        // limit may hold away from the feeds too.
        if self.closed {
            return Ok(match prices.feed {
                Some(feed) => risk::initial_price(base, mark, feed),
                None => mark,
            });
        }
        let at = |spot: I80F48| -> Result<I80F48> {
            match self.mark {
                _ if spot == current => Ok(mark),
                MarkRule::Underlying => Ok(spot),
                rule => rule.apply(spot, &prices.options),
            }
        };
        let stable = match prices.stable {
            Some(stable) => at(stable)?,
            None => mark,
        };
        match prices.feed {
            Some(feed) => Ok(risk::initial_price(base, stable, at(feed)?)),
            None => Ok(stable),
        }
    }

    /// The price a position of this market counts at, at the time its risk
    /// was read for, from its underlying's `prices` (see the module docs).
    pub fn mark_price(&self, prices: &UnderlyingPrices) -> Result<I80F48> {
        match self.mark {
            MarkRule::Settled(price) => Ok(price),
            _ if self.closed => Ok(prices.last_good.ok_or(KestrelError::OracleStale)?),
            rule => rule.apply(prices.current?, &prices.options),
        }
    }
}

/// Where a portfolio's accounts come from.
pub trait AccountRetriever {
    /// The market of the account's position in `market_index`, checked to be
    /// of the exchange and that index. Called in slot order.
    fn market(&mut self, market_index: u16) -> Result<MarketRisk>;
    /// The prices of `underlying`, right after the first market that names
    /// it (once per distinct underlying).
    fn underlying(&mut self, underlying: &Pubkey) -> Result<UnderlyingPrices>;
    /// The risk array of the market [`Self::market`] returned last (asked
    /// only for an option of a portfolio-mode account: kept out of
    /// [`MarketRisk`], which health copies per position).
    fn risk_array(&mut self) -> Result<Option<RiskArrayRead>>;
}

/// One underlying of a portfolio and its price.
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingEntry {
    pub key: Pubkey,
    pub prices: UnderlyingPrices,
}

/// A position of the portfolio. Kept small: the program's heap is a 32 KiB
/// bump allocator, and a liquidation holds two portfolios of up to 32.
#[derive(Clone, Copy, Debug)]
pub struct PortfolioPosition {
    /// Index into [`Portfolio::underlyings`].
    pub underlying: u8,
    pub market_index: u16,
    /// Whether it is an option's (its requirement is the last of
    /// [`Portfolio::option_requirements`] pushed with it).
    pub option: bool,
    /// Whether it is margined by its underlying's scenario book (its share
    /// is the last one [`Portfolio::push`] applied) instead of fractions
    /// or an option requirement.
    pub scenario: bool,
    pub exposure: PerpExposure,
}

/// A portfolio-mode account's positions on one underlying with a grid,
/// revalued under it (`engine::scenario_margin`).
#[derive(Clone, Copy, Debug)]
pub struct ScenarioBook {
    /// Index into [`Portfolio::underlyings`].
    pub underlying: u8,
    pub spot: I80F48,
    pub terms: ScenarioTerms,
    /// A perpetual's or future's value change per native base unit: the
    /// spot's move, at the spot now.
    pub linear: RiskArray,
    pub portfolio: ScenarioPortfolio,
}

impl ScenarioBook {
    /// What health of `kind` requires of the book: the worst scenario loss
    /// times the kind's factor, plus the contingencies.
    pub fn requirement(&self, kind: HealthKind) -> Result<I80F48> {
        let config = &self.terms.config;
        let confidence =
            fixed_math::from_bps(i32::try_from(config.confidence_bps).ok().or_overflow()?)
                .checked_mul(self.spot)
                .or_overflow()?;
        self.portfolio
            .requirement(self.spot, confidence, &config.contingencies())
            .and_then(|requirement| requirement.with_factor(self.terms.factor_bps(kind)))
            .or_overflow()
    }
}

/// An account's positions grouped by underlying (each position names its
/// underlying's entry), valued at unix time `now`, built once per
/// instruction.
#[derive(Clone, Debug, Default)]
pub struct Portfolio {
    pub underlyings: Vec<UnderlyingEntry>,
    pub positions: Vec<PortfolioPosition>,
    /// The option positions' requirements beyond their value, in order.
    pub option_requirements: Vec<OptionRequirement>,
    pub now: i64,
    pub mode: MarginMode,
    /// Portfolio mode: a book per underlying with a grid that a position
    /// is on.
    pub books: Vec<ScenarioBook>,
    /// The book and share the last scenario-margined push applied, for
    /// [`Self::pop`] (boxed: the instructions hold portfolios on a 4 KiB
    /// stack frame; allocated once, on the first such push).
    last_share: Option<Box<(usize, ScenarioShare)>>,
}

impl Portfolio {
    /// An empty portfolio at unix time `now` that already knows
    /// `underlyings` (those the instruction names itself, so the retriever
    /// is not asked for them).
    pub fn new(known: &[UnderlyingEntry], now: i64, mode: MarginMode) -> Self {
        Self {
            underlyings: known.to_vec(),
            positions: Vec::new(),
            option_requirements: Vec::new(),
            now,
            mode,
            books: Vec::new(),
            last_share: None,
        }
    }

    /// Adds every active position of `account` but the one in `skip`, each
    /// with its market and (when new) its underlying read from `retriever`.
    /// Room is reserved once, for them and one more (the instruction's own
    /// position, [`Self::push`]): the bump heap never frees. Out of line:
    /// every health check runs it.
    #[inline(never)]
    pub fn add_account<R: AccountRetriever>(
        &mut self,
        account: &MarginAccount,
        skip: Option<u16>,
        retriever: &mut R,
    ) -> Result<()> {
        // Every position, and one more (`push`); the skipped one, if held,
        // leaves one to spare.
        let count = account.position_slots.count_ones() as usize;
        self.positions.reserve_exact(count + 1);
        for (_, position) in account.active_positions() {
            if Some(position.market_index) == skip {
                continue;
            }
            let market = retriever.market(position.market_index)?;
            let underlying = match self.underlying_slot(&market.underlying) {
                Some(index) => index,
                None => {
                    let prices = retriever.underlying(&market.underlying)?;
                    self.push_underlying(UnderlyingEntry {
                        key: market.underlying,
                        prices,
                    })?
                }
            };
            let array = if self.mode == MarginMode::Portfolio
                && matches!(market.mark, MarkRule::Option(_))
            {
                retriever.risk_array()?
            } else {
                None
            };
            self.push_at(position, &market, underlying, array.as_ref())?;
        }
        Ok(())
    }

    /// Values `position` of `market`, whose underlying is entry
    /// `underlying`, and adds it (and an option's requirement).
    #[inline(always)]
    fn push_at(
        &mut self,
        position: &PerpPosition,
        market: &MarketRisk,
        underlying: u8,
        risk_array: Option<&RiskArrayRead>,
    ) -> Result<()> {
        if self.mode == MarginMode::Portfolio
            && self.pushed_to_book(position, market, risk_array)?
        {
            return Ok(());
        }
        let prices = &self.underlyings[usize::from(underlying)].prices;
        let (price, stable, option) = match &market.mark {
            // A trading perpetual, the common case: the price as it is, and
            // the stable price as it is.
            MarkRule::Underlying if !market.closed => {
                let price = prices.current?;
                let stable = prices.stable.unwrap_or(price);
                let other = match prices.feed {
                    Some(feed) => risk::initial_price(position.base_lots, stable, feed),
                    None => stable,
                };
                (price, other, false)
            }
            MarkRule::Option(mark) => {
                let price = market.mark_price(prices)?;
                let requirement = option_requirement(position, market, mark, prices, price)?;
                self.option_requirements.push(requirement);
                // A long option's initial requirement already takes back
                // its whole value at the oracle (`option_margin`): valuing
                // it lower again would count a gain against it.
                let stable = if position.base_lots > 0 {
                    price
                } else {
                    market.initial_mark_price(prices, price, position.base_lots)?
                };
                (price, stable, true)
            }
            _ => {
                let price = market.mark_price(prices)?;
                (
                    price,
                    market.initial_mark_price(prices, price, position.base_lots)?,
                    false,
                )
            }
        };
        self.positions.push(PortfolioPosition {
            underlying,
            market_index: market.market_index,
            option,
            scenario: false,
            exposure: exposure(position, market, &prices.margin, price, stable)?,
        });
        Ok(())
    }

    /// Portfolio mode: adds the position to its underlying's scenario book
    /// when one margins it; `false` when standard mode's rule applies. Out
    /// of line and cold: standard-mode walks never enter it.
    #[cold]
    #[inline(never)]
    fn pushed_to_book(
        &mut self,
        position: &PerpPosition,
        market: &MarketRisk,
        risk_array: Option<&RiskArrayRead>,
    ) -> Result<bool> {
        let underlying = self
            .underlying_slot(&market.underlying)
            .ok_or(KestrelError::Unreachable)?;
        let Some(terms) = self.underlyings[usize::from(underlying)].prices.scenario else {
            return Ok(false);
        };
        let Some(leg) = self.scenario_instrument(market, underlying, risk_array)? else {
            return Ok(false);
        };
        self.push_scenario(position, market, underlying, terms, leg)?;
        Ok(true)
    }

    /// How the scenario book revalues a position of `market` on entry
    /// `underlying`: linearly (a perpetual, or a future before its expiry),
    /// as an option before its expiry (refused with `RiskArrayStale` unless
    /// its risk array is usable now); `None` for a settled or closed market
    /// or an expired future or option, which keep standard mode's rule:
    /// their value no longer moves with the spot (a future past expiry is
    /// marked at its settlement average, a closed market at its last good
    /// price), so they hedge nothing in a scenario.
    #[inline(never)]
    fn scenario_instrument<'a>(
        &self,
        market: &MarketRisk,
        underlying: u8,
        risk_array: Option<&'a RiskArrayRead>,
    ) -> Result<Option<ScenarioLeg<'a>>> {
        let prices = &self.underlyings[usize::from(underlying)].prices;
        match &market.mark {
            MarkRule::Settled(_) => Ok(None),
            // A closed market is marked at its last good price.
            _ if market.closed => Ok(None),
            MarkRule::Future { expiry, .. } if self.now >= *expiry => Ok(None),
            MarkRule::Option(mark) if self.now >= mark.expiry => Ok(None),
            MarkRule::Option(mark) => {
                let terms = prices.scenario.ok_or(KestrelError::Unreachable)?;
                let spot = prices.current?;
                let volatility = mark.volatility(spot, &prices.options)?;
                let array = risk_array
                    .filter(|array| {
                        array.usable(
                            &terms.config,
                            terms.grid.scan_range_bps,
                            spot,
                            volatility,
                            (self.now, mark.expiry),
                        )
                    })
                    .ok_or(KestrelError::RiskArrayStale)?;
                Ok(Some(ScenarioLeg {
                    instrument: Instrument::Option {
                        side: mark.side,
                        strike: mark.strike,
                        seconds_to_expiry: mark.expiry - self.now,
                    },
                    array: Some(&array.entries),
                    volatility: Some(volatility),
                }))
            }
            _ => Ok(Some(ScenarioLeg {
                instrument: Instrument::Linear,
                array: None,
                volatility: None,
            })),
        }
    }

    /// Adds a position margined by its underlying's scenario book: valued
    /// as in standard mode (initial health at the worse of its prices,
    /// profit weighted) with no fraction or option requirement, its share
    /// of the book's scenarios applied instead.
    #[inline(never)]
    fn push_scenario(
        &mut self,
        position: &PerpPosition,
        market: &MarketRisk,
        underlying: u8,
        terms: ScenarioTerms,
        leg: ScenarioLeg<'_>,
    ) -> Result<()> {
        let prices = self.underlyings[usize::from(underlying)].prices;
        let price = match (&market.mark, leg.volatility) {
            // The volatility that checked the array values the option.
            (MarkRule::Option(mark), Some(volatility)) => {
                mark.value_at(prices.current?, volatility, &prices.options)?
            }
            _ => market.mark_price(&prices)?,
        };
        // Initial health at the worse of its prices, options too: a long
        // option's value counts here (standard mode takes it all back),
        // so a spike in the spot must not lift it.
        let stable = market.initial_mark_price(&prices, price, position.base_lots)?;
        let unmargined = MarketRisk {
            initial_margin_bps: 0,
            maintenance_margin_bps: 0,
            ..*market
        };
        let mut exposure = exposure(position, &unmargined, &MarginTerms::UNSCALED, price, stable)?;
        // Only part of any unrealized profit (the Mango rule), options'
        // too.
        exposure.weighs_profit = true;
        let book = self.book_for(underlying, terms, &prices)?;
        // By reference: an array is 256 bytes, and every position runs this.
        let array = match leg.array {
            Some(array) => array,
            None => &self.books[book].linear,
        };
        // Written in place into the slot `pop` reads (a share is 320
        // bytes, and every position runs this); a failed write fails the
        // push, after which nothing pops.
        let last = self
            .last_share
            .get_or_insert_with(|| Box::new((book, ScenarioShare::ZERO)));
        last.0 = book;
        last.1
            .write(
                &leg.instrument,
                exposure.base,
                exposure.bids,
                exposure.asks,
                array,
            )
            .or_overflow()?;
        self.books[book].portfolio.apply(&last.1).or_overflow()?;
        self.positions.push(PortfolioPosition {
            underlying,
            market_index: market.market_index,
            option: false,
            scenario: true,
            exposure,
        });
        Ok(())
    }

    /// The book of entry `underlying`, opened at its spot now on first use.
    fn book_for(
        &mut self,
        underlying: u8,
        terms: ScenarioTerms,
        prices: &UnderlyingPrices,
    ) -> Result<usize> {
        if let Some(index) = self.books.iter().position(|b| b.underlying == underlying) {
            return Ok(index);
        }
        // The grid's spot is the current price, or for a closed market's
        // positions the last good one they are marked at.
        let spot = match prices.current {
            Ok(spot) => spot,
            Err(error) => prices.last_good.ok_or(error)?,
        };
        let scenarios = terms
            .grid
            .scenarios()
            .map_err(|_| KestrelError::InvalidScenarioMargin)?;
        let point = scenario_margin::MarketPoint {
            spot,
            volatility: I80F48::ZERO,
            rate: I80F48::ZERO,
        };
        let linear = scenario_margin::risk_array(&Instrument::Linear, &point, &scenarios)
            .map_err(|_| KestrelError::MathOverflow)?;
        if self.books.capacity() == 0 {
            self.books.reserve_exact(MAX_UNDERLYINGS_PER_ACCOUNT);
        }
        self.books.push(ScenarioBook {
            underlying,
            spot,
            terms,
            linear,
            portfolio: ScenarioPortfolio::default(),
        });
        Ok(self.books.len() - 1)
    }

    /// Adds one position valued against `market` (the instruction's own,
    /// with its `risk_array`), whose underlying must already be known.
    #[inline(never)]
    pub fn push(
        &mut self,
        position: &PerpPosition,
        market: &MarketRisk,
        risk_array: &StoredRiskArray,
    ) -> Result<()> {
        let underlying = self
            .underlying_slot(&market.underlying)
            .ok_or(KestrelError::Unreachable)?;
        let array = self.array_of(market, risk_array);
        self.push_at(position, market, underlying, array.as_ref())
    }

    /// `stored` as health reads it, when a portfolio-mode account's option
    /// needs it.
    fn array_of(&self, market: &MarketRisk, stored: &StoredRiskArray) -> Option<RiskArrayRead> {
        if self.mode == MarginMode::Portfolio && matches!(market.mark, MarkRule::Option(_)) {
            stored.read()
        } else {
            None
        }
    }

    /// For the liquidation of a position in `market` (funding settled, its
    /// orders there cancelled) from a portfolio-mode account whose other
    /// positions this portfolio holds: how health at the liquidation end
    /// moves with the lots closed at `price`, when the scenario book
    /// margins the position; `None` when standard mode's plan applies.
    #[inline(never)]
    pub fn scenario_probe(
        &mut self,
        market: &MarketRisk,
        risk_array: &StoredRiskArray,
        price: I80F48,
    ) -> Result<Option<Box<ScenarioProbe>>> {
        if self.mode != MarginMode::Portfolio {
            return Ok(None);
        }
        let underlying = self
            .underlying_slot(&market.underlying)
            .ok_or(KestrelError::Unreachable)?;
        let prices = self.underlyings[usize::from(underlying)].prices;
        let Some(terms) = prices.scenario else {
            return Ok(None);
        };
        let stored = self.array_of(market, risk_array);
        let Some(leg) = self.scenario_instrument(market, underlying, stored.as_ref())? else {
            return Ok(None);
        };
        let instrument = leg.instrument;
        let array = leg.array.copied();
        let book = self.book_for(underlying, terms, &prices)?;
        let book = self.books[book];
        let array = array.unwrap_or(book.linear);
        let kind = HealthKind::LiquidationEnd;
        // Boxed: a book and an array are over 900 bytes of a liquidation's
        // frame.
        Ok(Some(Box::new(ScenarioProbe {
            rest: self
                .health(0, kind)?
                .checked_add(book.requirement(kind)?)
                .or_overflow()?,
            book,
            instrument,
            array,
            market: MarketRisk {
                initial_margin_bps: 0,
                maintenance_margin_bps: 0,
                ..*market
            },
            price,
        })))
    }

    /// Refuses a portfolio on more than [`MAX_UNDERLYINGS_PER_ACCOUNT`]
    /// underlyings: called when an instruction opens a position, whose
    /// underlying is then among them.
    pub fn require_underlyings_within_cap(&self) -> Result<()> {
        require!(
            self.underlyings.len() <= MAX_UNDERLYINGS_PER_ACCOUNT,
            KestrelError::TooManyUnderlyings
        );
        Ok(())
    }

    /// Drops the last position [`Self::push`]ed.
    pub fn pop(&mut self) -> Result<()> {
        match self.positions.pop() {
            Some(PortfolioPosition { option: true, .. }) => {
                self.option_requirements.pop();
            }
            Some(PortfolioPosition { scenario: true, .. }) => {
                let (book, share) = **self.last_share.as_ref().ok_or(KestrelError::Unreachable)?;
                self.books[book].portfolio.remove(&share).or_overflow()?;
            }
            _ => {}
        }
        Ok(())
    }

    fn underlying_slot(&self, key: &Pubkey) -> Option<u8> {
        self.underlyings
            .iter()
            .position(|entry| entry.key == *key)
            .map(|index| index as u8)
    }

    fn push_underlying(&mut self, entry: UnderlyingEntry) -> Result<u8> {
        let index = u8::try_from(self.underlyings.len()).map_err(|_| KestrelError::Unreachable)?;
        self.underlyings.push(entry);
        Ok(index)
    }

    /// Health of `collateral` plus every position (`engine::risk`), less
    /// the option positions' requirements beyond their value.
    pub fn health(&self, collateral: i64, kind: HealthKind) -> Result<I80F48> {
        let exposures = self.positions.iter().map(|p| &p.exposure);
        let mut health = risk::health(collateral, exposures, kind).or_overflow()?;
        for requirement in &self.option_requirements {
            health = health
                .checked_sub(requirement.requirement(kind).or_overflow()?)
                .or_overflow()?;
        }
        for book in &self.books {
            health = health.checked_sub(book.requirement(kind)?).or_overflow()?;
        }
        Ok(health)
    }

    /// What the account is worth with `collateral`: every position at its
    /// price (options at their value), unsettled funding included, no
    /// requirement. Below zero the account is bankrupt.
    pub fn equity(&self, collateral: i64) -> Result<I80F48> {
        let mut equity = I80F48::from_num(collateral);
        for position in &self.positions {
            let exposure = &position.exposure;
            equity = exposure
                .unrealized_pnl()
                .and_then(|pnl| pnl.checked_add(exposure.unsettled_funding))
                .and_then(|value| equity.checked_add(value))
                .or_overflow()?;
        }
        Ok(equity)
    }

    pub fn initial_health(&self, collateral: i64) -> Result<I80F48> {
        self.health(collateral, HealthKind::Initial)
    }
}

/// How a portfolio's scenario book revalues one position
/// ([`Portfolio::scenario_instrument`]).
#[derive(Clone, Copy, Debug)]
struct ScenarioLeg<'a> {
    instrument: Instrument,
    /// An option's risk array, checked usable now; `None` for a linear
    /// instrument, which the book's own array revalues.
    array: Option<&'a RiskArray>,
    /// An option's volatility at the spot now, which checked its array.
    volatility: Option<I80F48>,
}

/// A portfolio-mode liquidation's view of one position's book
/// ([`Portfolio::scenario_probe`]): the rest of the account's health at
/// the liquidation end without the position's book, and the book without
/// the position.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioProbe {
    /// Every other position's contribution and book requirement, without
    /// the collateral and without this book's requirement.
    rest: I80F48,
    book: ScenarioBook,
    instrument: Instrument,
    array: RiskArray,
    /// The position's market, without fractions.
    market: MarketRisk,
    price: I80F48,
}

impl ScenarioProbe {
    /// Health at the liquidation end with `collateral` and the position
    /// as `candidate`. Out of line: it copies the book.
    #[inline(never)]
    pub fn health(&self, collateral: i64, candidate: &PerpPosition) -> Result<I80F48> {
        let exposure = exposure(
            candidate,
            &self.market,
            &MarginTerms::UNSCALED,
            self.price,
            self.price,
        )?;
        let share = ScenarioShare::of(
            &self.instrument,
            exposure.base,
            exposure.bids,
            exposure.asks,
            &self.array,
        )
        .or_overflow()?;
        let mut book = self.book;
        book.portfolio.apply(&share).or_overflow()?;
        let kind = HealthKind::LiquidationEnd;
        I80F48::from_num(collateral)
            .checked_add(self.rest)
            .and_then(|h| h.checked_add(exposure.contribution(kind)?))
            .and_then(|h| h.checked_sub(book.requirement(kind).ok()?))
            .or_overflow()
    }
}

/// A position as health sees it, in native units, at `price` (native quote
/// per native base) and, for initial health, `stable_price` (its price at
/// the underlying's stable price), its market's fractions scaled by its
/// underlying's `margin` terms for its worst case.
pub fn exposure(
    position: &PerpPosition,
    market: &MarketRisk,
    margin: &MarginTerms,
    price: I80F48,
    stable_price: I80F48,
) -> Result<PerpExposure> {
    let lot = market.base_lot_size;
    // 64-bit-limb products (`fastmul`): a checked 64-bit multiply is a
    // 128-bit software routine on SBF, and every health check runs these.
    let base = checked_mul_i64_u64(position.base_lots, lot).or_overflow()?;
    let bids = checked_mul_u64(position.bids_base_lots, lot).or_overflow()?;
    let asks = checked_mul_u64(position.asks_base_lots, lot).or_overflow()?;
    let (initial_margin_bps, maintenance_margin_bps) = margin.fractions(
        market.initial_margin_bps,
        market.maintenance_margin_bps,
        || risk::worst_case(base, bids, asks).unsigned_abs(),
    );
    Ok(PerpExposure {
        base,
        quote: position.quote_native,
        bids,
        asks,
        unsettled_funding: unsettled_funding(position, market).or_overflow()?,
        price,
        stable_price,
        initial_margin_bps,
        maintenance_margin_bps,
        // Options (no fractions) count their value by their own rule.
        weighs_profit: initial_margin_bps != 0,
    })
}

/// An option position's requirement beyond its `value` (per native base
/// unit), at its underlying's `prices`.
pub fn option_requirement(
    position: &PerpPosition,
    market: &MarketRisk,
    mark: &OptionMark,
    prices: &UnderlyingPrices,
    value: I80F48,
) -> Result<OptionRequirement> {
    let lot = market.base_lot_size;
    // Past expiry too, until the settlement price is fixed (at the spot
    // now: the average so far is not final).
    let spot = prices.current?;
    OptionRequirement::new(
        checked_mul_i64_u64(position.base_lots, lot).or_overflow()?,
        checked_mul_u64(position.bids_base_lots, lot).or_overflow()?,
        checked_mul_u64(position.asks_base_lots, lot).or_overflow()?,
        &OptionRisk {
            side: mark.side,
            spot,
            strike: mark.strike,
            value,
            terms: prices.options.margin,
            band_bps: mark.band_bps,
            band_spot_bps: mark.band_spot_bps,
        },
    )
    .or_overflow()
}

/// For a liquidation of `position` in an option `market` (its orders
/// cancelled), its requirement per lot at the liquidation-end level;
/// `None` for other markets.
pub fn option_requirement_per_lot(
    position: &PerpPosition,
    market: &MarketRisk,
    prices: &UnderlyingPrices,
    value: I80F48,
) -> Result<Option<I80F48>> {
    let MarkRule::Option(mark) = &market.mark else {
        return Ok(None);
    };
    let requirement = option_requirement(position, market, mark, prices, value)?;
    let (long, short) = requirement.per_unit(HealthKind::LiquidationEnd);
    let per_unit = if position.base_lots >= 0 { long } else { short };
    Ok(Some(
        per_unit
            .checked_mul_int(i128::from(market.base_lot_size))
            .or_overflow()?,
    ))
}

/// Funding the position is owed (> 0) or owes, not yet settled.
fn unsettled_funding(position: &PerpPosition, market: &MarketRisk) -> Option<I80F48> {
    let index = if position.base_lots >= 0 {
        market.long_funding_index
    } else {
        market.short_funding_index
    };
    if position.funding_index == index {
        return Some(I80F48::ZERO);
    }
    funding::unsettled_funding(
        funding::from_parts(index),
        funding::from_parts(position.funding_index),
        position.base_lots,
    )
}

/// The program's retriever: health accounts from an instruction's remaining
/// accounts, in the order of the module docs. Every account is loaded as its
/// type (owner and discriminator) and must belong to `exchange`; a market
/// must carry the position's index, an underlying the key its market names.
pub struct RemainingAccounts<'info> {
    accounts: std::slice::Iter<'info, AccountInfo<'info>>,
    /// The market account read last.
    last_market: Option<&'info AccountInfo<'info>>,
    exchange: Pubkey,
    now: i64,
    slot: u64,
}

impl<'info> RemainingAccounts<'info> {
    pub fn new(
        accounts: std::slice::Iter<'info, AccountInfo<'info>>,
        exchange: Pubkey,
        clock: &Clock,
    ) -> Self {
        Self {
            accounts,
            last_market: None,
            exchange,
            now: clock.unix_timestamp,
            slot: clock.slot,
        }
    }

    fn next(&mut self) -> Result<&'info AccountInfo<'info>> {
        Ok(self
            .accounts
            .next()
            .ok_or(KestrelError::WrongHealthAccounts)?)
    }
}

impl AccountRetriever for RemainingAccounts<'_> {
    // Inlined into the walk, so the market's risk is built where it is
    // used rather than copied out through a return slot.
    #[inline(always)]
    fn market(&mut self, market_index: u16) -> Result<MarketRisk> {
        let info = self.next()?;
        let data = zero_copy_data::<Market>(info)?;
        let market: &Market = bytemuck::from_bytes(&data[8..Market::SPACE]);
        require!(
            market.exchange == self.exchange && market.market_index == market_index,
            KestrelError::WrongHealthAccounts
        );
        // An undecodable status is refused, never read as trading.
        market.status()?;
        self.last_market = Some(info);
        MarketRisk::of(market, self.now)
    }

    fn risk_array(&mut self) -> Result<Option<RiskArrayRead>> {
        let info = self.last_market.ok_or(KestrelError::Unreachable)?;
        // Checked when `market` read it.
        let data = info
            .try_borrow_data()
            .map_err(|_| KestrelError::WrongHealthAccounts)?;
        let market: &Market = bytemuck::from_bytes(&data[8..Market::SPACE]);
        Ok(market.risk_array.read())
    }

    fn underlying(&mut self, underlying: &Pubkey) -> Result<UnderlyingPrices> {
        let info = self.next()?;
        require!(info.key == underlying, KestrelError::WrongHealthAccounts);
        let data = zero_copy_data::<Underlying>(info)?;
        let loaded: &Underlying = bytemuck::from_bytes(&data[8..Underlying::SPACE]);
        require!(
            loaded.exchange == self.exchange,
            KestrelError::WrongHealthAccounts
        );
        Ok(UnderlyingPrices::of(loaded, self.now, self.slot))
    }
}

// The data is sliced after an 8-byte discriminator.
const _: () = assert!(Market::DISCRIMINATOR.len() == 8 && Underlying::DISCRIMINATOR.len() == 8);

/// A health account's data, checked once as Anchor's `AccountLoader` would
/// check it (owner, size, discriminator) but borrowed and checked a single
/// time (the loader checks the discriminator again on `load`): a walk
/// reads up to 31 markets.
fn zero_copy_data<
    'a,
    T: anchor_lang::ZeroCopy + anchor_lang::Owner + anchor_lang::Discriminator,
>(
    info: &'a AccountInfo<'_>,
) -> Result<std::cell::Ref<'a, &'a mut [u8]>> {
    require_keys_eq!(*info.owner, T::owner(), KestrelError::WrongHealthAccounts);
    let data = info
        .try_borrow_data()
        .map_err(|_| KestrelError::WrongHealthAccounts)?;
    require!(
        data.len() >= 8 + core::mem::size_of::<T>() && data[..8] == *T::DISCRIMINATOR,
        KestrelError::WrongHealthAccounts
    );
    Ok(data)
}

/// The portfolio of `account` but its position in `skip`, from remaining
/// accounts, knowing `known` already.
pub fn from_remaining_accounts(
    account: &MarginAccount,
    skip: Option<u16>,
    known: &[UnderlyingEntry],
    retriever: &mut RemainingAccounts<'_>,
) -> Result<Box<Portfolio>> {
    // Boxed: the instructions that hold it run near the 4 KiB frame.
    let mut portfolio = Box::new(Portfolio::new(known, retriever.now, account.margin_mode()));
    portfolio.add_account(account, skip, retriever)?;
    Ok(portfolio)
}
