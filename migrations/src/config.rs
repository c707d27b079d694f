//! The migrations file.
use std::collections::BTreeSet;

use kestrel::engine::price_integral::CHECKPOINT_SECONDS;
use kestrel::state::{
    FutureParams, InstrumentKind, MarketLimits, MarketParams, MarketStatus, Operation,
    OracleConfig, OracleKind, RiskScaling, MAX_SETTLEMENT_WINDOW_SECONDS,
    MIN_SETTLEMENT_WINDOW_SECONDS,
};
use kestrel_sdk::ix::UnderlyingAccounts;
use kestrel_sdk::{pda, Pubkey};
use serde::Deserialize;

use crate::expiry::ExpiryValue;
use crate::series::{OptionsConfig, SeriesConfig};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub exchange: ExchangeConfig,
    /// Present: keep an address lookup table of the exchange's accounts
    /// (see `kestrel_sdk::lookup_table`) for the keeper's v0 transactions.
    #[serde(default)]
    pub lookup_table: Option<LookupTableConfig>,
    /// The underlying assets: each holds the oracle feeds its markets are
    /// priced from.
    #[serde(default, rename = "underlying")]
    pub underlyings: Vec<UnderlyingConfig>,
    #[serde(default, rename = "market")]
    pub markets: Vec<MarketConfig>,
    /// European options: each `[[series]]` lists its strikes and sides as
    /// markets from its `first_index` on.
    #[serde(default, rename = "series")]
    pub series: Vec<SeriesConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Operations to keep paused: deposit, withdraw, trading, liquidation,
    /// funding, consume_events, insurance.
    #[serde(default)]
    pub paused: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupTableConfig {
    /// The table's address. Absent: the migrations create a table (owned
    /// by the admin) and the command records its address here.
    pub address: Option<String>,
}

/// An underlying asset (e.g. SOL): its feeds and their bounds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingConfig {
    pub index: u16,
    /// 1 to 16 bytes, e.g. "SOL".
    pub name: String,
    /// Decimals of the base asset's native unit (9 for SOL).
    pub base_decimals: u8,
    pub oracle: OracleEntry,
    /// Present: the underlying lists options (`set_option_config`).
    #[serde(default)]
    pub options: Option<OptionsConfig>,
    /// Present: its markets' margin fractions follow its realized
    /// volatility and position size (`set_risk_scaling`).
    #[serde(default)]
    pub risk_scaling: Option<RiskScalingConfig>,
    /// Present: how fast its accepted price may follow the feeds, basis
    /// points a second (`set_price_limit`; 0: at once). Absent: the
    /// underlying keeps what it has.
    #[serde(default)]
    pub max_price_move_bps_per_second: Option<u32>,
    /// With the speed above: how far from the hourly delay price the
    /// accepted price may go, basis points of it (`set_price_limit`; 0 or
    /// absent: any distance). A held band makes the markets reduce-only.
    #[serde(default)]
    pub price_band_bps: Option<u32>,
}

/// `[underlying.risk_scaling]`: what `set_risk_scaling` stores (a key left
/// out is zero: that part off).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RiskScalingConfig {
    #[serde(default)]
    pub baseline_volatility_bps: u32,
    #[serde(default)]
    pub max_scale_bps: u32,
    #[serde(default)]
    pub max_scale_change_bps_per_hour: u32,
    #[serde(default)]
    pub size_margin_bps: u32,
}

impl RiskScalingConfig {
    pub fn scaling(&self) -> RiskScaling {
        RiskScaling {
            baseline_volatility_bps: self.baseline_volatility_bps,
            max_scale_bps: self.max_scale_bps,
            max_scale_change_bps_per_hour: self.max_scale_change_bps_per_hour,
            size_margin_bps: self.size_margin_bps,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    pub index: u16,
    pub name: String,
    /// The `index` of the `[[underlying]]` the market is priced from.
    pub underlying: u16,
    pub base_lot_size: u64,
    pub quote_lot_size: u64,
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    pub maker_fee_bps: i32,
    pub taker_fee_bps: u32,
    pub price_band_bps: u32,
    /// How far from the price an order may rest, bps (at least the band).
    pub resting_band_bps: u32,
    pub max_fills_per_order: u16,
    /// Native quote units per event consumed, paid from the market's fees.
    pub crank_reward_native: u64,
    /// Largest funding per period, bps of the oracle TWAP.
    pub funding_cap_bps: u32,
    pub funding_period_seconds: u32,
    /// Liquidation fee, bps of the value liquidated (below maintenance).
    pub liquidation_fee_bps: u32,
    /// The insurance fund's share of the liquidation fee, bps.
    pub liquidation_insurance_share_bps: u16,
    /// Open-interest and position caps in lots (`set_market_limits`); 0 or
    /// absent: none.
    #[serde(default)]
    pub max_open_interest_lots: u64,
    #[serde(default)]
    pub max_position_lots: u64,
    /// active, reduce_only, paused or closed.
    #[serde(default = "active")]
    pub status: String,
    /// perp (the default) or future: a dated future, which needs the keys
    /// below. Fixed at listing, as they all are.
    #[serde(default = "perp")]
    pub kind: String,
    /// A future's expiry: unix seconds, or an RFC 3339 date-time (a string
    /// or a bare TOML date-time, with its offset), or a date (00:00 UTC).
    pub expiry: Option<ExpiryValue>,
    /// Instead of `expiry`: seconds after the market is listed (for a chain
    /// whose clock is not the wall clock, such as the demo's). Counted from
    /// the chain's clock when the plan lists the market; once listed, the
    /// expiry on chain stands and this is not compared with it.
    pub expiry_in_seconds: Option<u32>,
    /// A future's settlement window before expiry, whose time-weighted
    /// average of the underlying's price it settles at (whole minutes, 300
    /// to 86,400).
    pub settlement_window_seconds: Option<u32>,
    /// Largest basis the future's mark carries, bps of the price (at most
    /// `price_band_bps`).
    pub max_basis_bps: Option<u32>,
    /// The basis estimate's smoothing window (positive).
    pub basis_window_seconds: Option<u32>,
    /// The last seconds before expiry over which the basis fades to zero.
    pub convergence_seconds: Option<u32>,
}

fn active() -> String {
    "active".into()
}

fn perp() -> String {
    "perp".into()
}

/// When a future expires, as its `[[market]]` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At this unix time (`expiry`).
    At(i64),
    /// This many seconds after listing (`expiry_in_seconds`).
    AfterListing(u32),
}

impl Expiry {
    /// The unix time it falls at for a market listed at `listed_at`: a
    /// relative expiry is rounded down to the minute, the grid of the
    /// underlying's price integral the settlement averages between.
    pub fn at(&self, listed_at: i64) -> i64 {
        match *self {
            Expiry::At(unix) => unix,
            Expiry::AfterListing(seconds) => {
                let unix = listed_at.saturating_add(i64::from(seconds));
                unix - unix.rem_euclid(CHECKPOINT_SECONDS)
            }
        }
    }

    /// The key it was given under.
    pub fn key(&self) -> &'static str {
        match self {
            Expiry::At(_) => "expiry",
            Expiry::AfterListing(_) => "expiry_in_seconds",
        }
    }
}

/// A future's listing terms, read from its `[[market]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureConfig {
    pub expiry: Expiry,
    pub settlement_window_seconds: u32,
    pub max_basis_bps: u32,
    pub basis_window_seconds: u32,
    pub convergence_seconds: u32,
}

impl FutureConfig {
    /// The parameters the program stores, for a market listed at `listed_at`.
    pub fn params(&self, listed_at: i64) -> FutureParams {
        FutureParams {
            expiry: self.expiry.at(listed_at),
            settlement_window_seconds: self.settlement_window_seconds,
            max_basis_bps: self.max_basis_bps,
            basis_window_seconds: self.basis_window_seconds,
            convergence_seconds: self.convergence_seconds,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OracleEntry {
    pub primary: Feed,
    pub fallback: Option<Feed>,
    pub max_age_seconds: u32,
    #[serde(default)]
    pub max_age_slots: u32,
    pub max_confidence_bps: u32,
    pub max_deviation_bps: u32,
}

/// A feed and the account it is read from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Feed {
    /// `feed_id`: 64 hex digits; `account`: the PriceUpdateV2 account to read;
    /// `pinned = true`: the program reads that account only (a sponsored
    /// feed updated in place), no other update of the feed id.
    Pyth {
        feed_id: String,
        account: String,
        #[serde(default)]
        pinned: bool,
    },
    /// `account`: the pull-feed account, which is also the feed's identity.
    Switchboard { account: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {message}"))
}

impl Config {
    /// Parses and checks a migrations file; errors name the offending key.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        config.pause_flags()?;
        config.lookup_table_address()?;
        let mut underlyings = BTreeSet::new();
        for (i, underlying) in config.underlyings.iter().enumerate() {
            let key = format!("underlying[{i}]");
            if !underlyings.insert(underlying.index) {
                return Err(invalid(
                    &format!("{key}.index"),
                    format!("{} appears twice", underlying.index),
                ));
            }
            name_bytes(&underlying.name).map_err(|e| invalid(&format!("{key}.name"), e))?;
            let oracle = underlying
                .oracle_config()
                .map_err(|e| invalid(&format!("{key}.oracle"), e))?;
            oracle.validate().map_err(|e| {
                invalid(
                    &format!("{key}.oracle"),
                    format!("refused by the program: {e}"),
                )
            })?;
        }
        let mut indices = BTreeSet::new();
        for (i, market) in config.markets.iter().enumerate() {
            let key = format!("market[{i}]");
            if !indices.insert(market.index) {
                return Err(invalid(
                    &format!("{key}.index"),
                    format!("{} appears twice", market.index),
                ));
            }
            if !underlyings.contains(&market.underlying) {
                return Err(invalid(
                    &format!("{key}.underlying"),
                    format!(
                        "{} is not the index of any [[underlying]]",
                        market.underlying
                    ),
                ));
            }
            market
                .name_bytes()
                .map_err(|e| invalid(&format!("{key}.name"), e))?;
            market
                .status()
                .map_err(|e| invalid(&format!("{key}.status"), e))?;
            market
                .future()
                .map_err(|(field, e)| invalid(&format!("{key}.{field}"), e))?;
            market
                .params()
                .validate()
                .map_err(|e| invalid(&key, format!("parameters refused by the program: {e}")))?;
            if market.base_lot_size == 0 || market.quote_lot_size == 0 {
                return Err(invalid(
                    &format!("{key}.base_lot_size"),
                    "lot sizes must be positive",
                ));
            }
        }
        for (i, underlying) in config.underlyings.iter().enumerate() {
            match (
                underlying.max_price_move_bps_per_second,
                underlying.price_band_bps,
            ) {
                (Some(limit), band) => {
                    kestrel::state::validate_price_limit(limit, band.unwrap_or(0)).map_err(
                        |e| {
                            invalid(
                                &format!("underlying[{i}].max_price_move_bps_per_second"),
                                format!("refused by the program: {e}"),
                            )
                        },
                    )?;
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        &format!("underlying[{i}].price_band_bps"),
                        "a band needs max_price_move_bps_per_second beside it",
                    ))
                }
                (None, None) => {}
            }
            if let Some(scaling) = &underlying.risk_scaling {
                scaling.scaling().validate().map_err(|e| {
                    invalid(
                        &format!("underlying[{i}].risk_scaling"),
                        format!("refused by the program: {e}"),
                    )
                })?;
            }
            if let Some(options) = &underlying.options {
                let key = format!("underlying[{i}].options");
                let terms = options.option_config().map_err(|e| invalid(&key, e))?;
                terms
                    .validate()
                    .map_err(|e| invalid(&key, format!("refused by the program: {e}")))?;
            }
        }
        for (i, series) in config.series.iter().enumerate() {
            let key = format!("series[{i}]");
            let field = |f: &str| format!("{key}.{f}");
            match config.underlying(series.underlying) {
                Some(underlying) if underlying.options.is_some() => {}
                _ => {
                    return Err(invalid(
                        &field("underlying"),
                        format!(
                            "{} is not an [[underlying]] with options ([underlying.options])",
                            series.underlying
                        ),
                    ))
                }
            }
            series.expiry().map_err(|(f, e)| invalid(&field(f), e))?;
            series.status().map_err(|e| invalid(&field("status"), e))?;
            let params = series.params();
            params
                .validate()
                .map_err(|e| invalid(&key, format!("parameters refused by the program: {e}")))?;
            if series.liquidation_fee_bps >= series.price_band_bps {
                return Err(invalid(
                    &field("liquidation_fee_bps"),
                    "must be below price_band_bps (a lot liquidated must free more than its fee)",
                ));
            }
            if series.base_lot_size == 0 || series.quote_lot_size == 0 {
                return Err(invalid(
                    &field("base_lot_size"),
                    "lot sizes must be positive",
                ));
            }
            for listing in series.listings().map_err(|(f, e)| invalid(&field(f), e))? {
                if !indices.insert(listing.index) {
                    return Err(invalid(
                        &field("first_index"),
                        format!(
                            "market index {} is taken by another market or series",
                            listing.index
                        ),
                    ));
                }
            }
        }
        Ok(config)
    }

    /// Every series option's (market index, underlying index), in order.
    pub fn series_indices(&self) -> Vec<(u16, u16)> {
        self.series
            .iter()
            .flat_map(|series| {
                series
                    .listings()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |listing| (listing.index, series.underlying))
            })
            .collect()
    }

    /// The `[[underlying]]` of `index`.
    pub fn underlying(&self, index: u16) -> Option<&UnderlyingConfig> {
        self.underlyings.iter().find(|u| u.index == index)
    }

    /// The `[[underlying]]` `market` names (a parsed config always has it).
    pub fn underlying_of(&self, market: &MarketConfig) -> Result<&UnderlyingConfig, ConfigError> {
        self.underlying(market.underlying).ok_or_else(|| {
            invalid(
                &format!("market {}.underlying", market.index),
                format!(
                    "{} is not the index of any [[underlying]]",
                    market.underlying
                ),
            )
        })
    }

    /// `lookup_table.address`, parsed (`None` also when there is no `[lookup_table]`).
    pub fn lookup_table_address(&self) -> Result<Option<Pubkey>, ConfigError> {
        self.lookup_table
            .as_ref()
            .and_then(|t| t.address.as_deref())
            .map(|text| parse_pubkey(text).map_err(|e| invalid("lookup_table.address", e)))
            .transpose()
    }

    pub fn pause_flags(&self) -> Result<u32, ConfigError> {
        self.exchange.paused.iter().try_fold(0u32, |flags, name| {
            let flag = Operation::from_name(name)
                .ok_or_else(|| {
                    let known: Vec<_> = Operation::ALL.iter().map(|op| op.name()).collect();
                    invalid(
                        "exchange.paused",
                        format!(
                            "unknown operation {name:?}, expected one of {}",
                            known.join(", ")
                        ),
                    )
                })?
                .flag();
            Ok(flags | flag)
        })
    }
}

/// `name` zero-padded to 16 bytes.
pub(crate) fn name_bytes(name: &str) -> Result<[u8; 16], String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!("{name:?} must be 1 to 16 bytes"));
    }
    let mut padded = [0u8; 16];
    padded[..bytes.len()].copy_from_slice(bytes);
    Ok(padded)
}

impl UnderlyingConfig {
    pub fn name_bytes(&self) -> Result<[u8; 16], String> {
        name_bytes(&self.name)
    }

    /// The oracle configuration as the program stores it.
    pub fn oracle_config(&self) -> Result<OracleConfig, String> {
        let (primary_kind, primary_feed, _, primary_account) = self.oracle.primary.resolve()?;
        let (fallback_kind, fallback_feed, fallback_account) = match &self.oracle.fallback {
            Some(feed) => {
                let (kind, id, _, pin) = feed.resolve()?;
                (kind, id, pin)
            }
            None => (OracleKind::None, [0; 32], [0; 32]),
        };
        Ok(OracleConfig {
            primary_kind,
            primary_feed,
            fallback_kind,
            fallback_feed,
            max_age_seconds: self.oracle.max_age_seconds,
            max_age_slots: self.oracle.max_age_slots,
            max_confidence_bps: self.oracle.max_confidence_bps,
            max_deviation_bps: self.oracle.max_deviation_bps,
            primary_account,
            fallback_account,
        })
    }

    /// The oracle accounts instructions read the feeds from: (primary, fallback).
    pub fn oracle_accounts(&self) -> Result<(Pubkey, Option<Pubkey>), String> {
        let primary = self.oracle.primary.resolve()?.2;
        let fallback = match &self.oracle.fallback {
            Some(feed) => Some(feed.resolve()?.2),
            None => None,
        };
        Ok((primary, fallback))
    }

    /// The underlying's address on the exchange.
    pub fn address(&self) -> Pubkey {
        pda::underlying(&pda::exchange(), self.index)
    }

    /// The underlying's accounts as instructions name them.
    pub fn accounts(&self) -> Result<UnderlyingAccounts, String> {
        let (primary_oracle, fallback_oracle) = self.oracle_accounts()?;
        Ok(UnderlyingAccounts {
            underlying: self.address(),
            primary_oracle,
            fallback_oracle,
        })
    }
}

impl MarketConfig {
    pub fn name_bytes(&self) -> Result<[u8; 16], String> {
        name_bytes(&self.name)
    }

    pub fn status(&self) -> Result<MarketStatus, String> {
        Ok(match self.status.as_str() {
            "active" => MarketStatus::Active,
            "reduce_only" => MarketStatus::ReduceOnly,
            "paused" => MarketStatus::Paused,
            "closed" => MarketStatus::Closed,
            other => return Err(format!("unknown status {other:?}")),
        })
    }

    /// `kind`, parsed.
    pub fn kind(&self) -> Result<InstrumentKind, String> {
        match self.kind.as_str() {
            "perp" => Ok(InstrumentKind::Perp),
            "future" => Ok(InstrumentKind::Future),
            other => Err(format!(
                "unknown kind {other:?}, expected \"perp\" or \"future\""
            )),
        }
    }

    /// A future's terms (`None` for a perpetual), checked as the program
    /// checks them but for the expiry's distance from the chain's clock,
    /// which the plan checks. Errors name the field at fault.
    pub fn future(&self) -> Result<Option<FutureConfig>, (&'static str, String)> {
        let fields: [(&'static str, bool); 6] = [
            ("expiry", self.expiry.is_some()),
            ("expiry_in_seconds", self.expiry_in_seconds.is_some()),
            (
                "settlement_window_seconds",
                self.settlement_window_seconds.is_some(),
            ),
            ("max_basis_bps", self.max_basis_bps.is_some()),
            ("basis_window_seconds", self.basis_window_seconds.is_some()),
            ("convergence_seconds", self.convergence_seconds.is_some()),
        ];
        match self.kind().map_err(|e| ("kind", e))? {
            InstrumentKind::Option => Err(("kind", "options are listed by [[series]]".to_string())),
            InstrumentKind::Perp => match fields.iter().find(|(_, given)| *given) {
                Some((field, _)) => Err((
                    field,
                    "only a dated future (kind = \"future\") has it".to_string(),
                )),
                None => Ok(None),
            },
            InstrumentKind::Future => {
                let needed = |field: &'static str, value: Option<u32>| {
                    value.ok_or((field, "a future needs it".to_string()))
                };
                let expiry = match (&self.expiry, self.expiry_in_seconds) {
                    (Some(_), Some(_)) => {
                        return Err((
                            "expiry_in_seconds",
                            "give expiry or expiry_in_seconds, not both".to_string(),
                        ))
                    }
                    (None, None) => {
                        return Err((
                            "expiry",
                            "a future needs an expiry (or expiry_in_seconds)".to_string(),
                        ))
                    }
                    (Some(value), None) => Expiry::At(value.unix().map_err(|e| ("expiry", e))?),
                    (None, Some(seconds)) => Expiry::AfterListing(seconds),
                };
                let future = FutureConfig {
                    expiry,
                    settlement_window_seconds: needed(
                        "settlement_window_seconds",
                        self.settlement_window_seconds,
                    )?,
                    max_basis_bps: needed("max_basis_bps", self.max_basis_bps)?,
                    basis_window_seconds: needed(
                        "basis_window_seconds",
                        self.basis_window_seconds,
                    )?,
                    convergence_seconds: needed("convergence_seconds", self.convergence_seconds)?,
                };
                let window = future.settlement_window_seconds;
                if !(MIN_SETTLEMENT_WINDOW_SECONDS..=MAX_SETTLEMENT_WINDOW_SECONDS)
                    .contains(&window)
                    || i64::from(window) % CHECKPOINT_SECONDS != 0
                {
                    return Err((
                        "settlement_window_seconds",
                        format!(
                            "must be whole minutes, {MIN_SETTLEMENT_WINDOW_SECONDS} to {MAX_SETTLEMENT_WINDOW_SECONDS} (a day)"
                        ),
                    ));
                }
                if let Expiry::At(unix) = expiry {
                    if unix % CHECKPOINT_SECONDS != 0 {
                        return Err((
                            "expiry",
                            "must fall on a whole minute (the settlement averages between minute checkpoints)".to_string(),
                        ));
                    }
                }
                if future.basis_window_seconds == 0 {
                    return Err(("basis_window_seconds", "must be positive".to_string()));
                }
                if future.max_basis_bps > self.price_band_bps {
                    return Err((
                        "max_basis_bps",
                        format!(
                            "must not exceed price_band_bps ({}): a mark beyond the band is where no fill may happen",
                            self.price_band_bps
                        ),
                    ));
                }
                if let Expiry::AfterListing(seconds) = expiry {
                    // Rounded down to the minute, it must still leave the
                    // whole window after listing.
                    if i64::from(seconds) < i64::from(window) + CHECKPOINT_SECONDS {
                        return Err((
                            "expiry_in_seconds",
                            format!(
                                "must be at least a minute longer than settlement_window_seconds ({window}): the window ends at expiry (rounded down to the minute) and must open after listing"
                            ),
                        ));
                    }
                }
                Ok(Some(future))
            }
        }
    }

    pub fn limits(&self) -> MarketLimits {
        MarketLimits {
            max_open_interest_lots: self.max_open_interest_lots,
            max_position_lots: self.max_position_lots,
        }
    }

    pub fn params(&self) -> MarketParams {
        MarketParams {
            initial_margin_bps: self.initial_margin_bps,
            maintenance_margin_bps: self.maintenance_margin_bps,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
            price_band_bps: self.price_band_bps,
            resting_band_bps: self.resting_band_bps,
            max_fills_per_order: self.max_fills_per_order,
            crank_reward_native: self.crank_reward_native,
            funding_cap_bps: self.funding_cap_bps,
            funding_period_seconds: self.funding_period_seconds,
            liquidation_fee_bps: self.liquidation_fee_bps,
            liquidation_insurance_share_bps: self.liquidation_insurance_share_bps,
        }
    }
}

impl Feed {
    /// Kind, feed identity as the underlying stores it, the account to
    /// read, and the pin (zero: none).
    fn resolve(&self) -> Result<(OracleKind, [u8; 32], Pubkey, [u8; 32]), String> {
        match self {
            Feed::Pyth {
                feed_id,
                account,
                pinned,
            } => {
                let hex = feed_id.trim_start_matches("0x");
                if hex.len() != 64 {
                    return Err(format!("pyth feed_id {feed_id:?} must be 64 hex digits"));
                }
                let mut id = [0u8; 32];
                for (i, byte) in id.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                        .map_err(|_| format!("pyth feed_id {feed_id:?} is not hex"))?;
                }
                let account = parse_pubkey(account)?;
                let pin = if *pinned { account.to_bytes() } else { [0; 32] };
                Ok((OracleKind::Pyth, id, account, pin))
            }
            Feed::Switchboard { account } => {
                let address = parse_pubkey(account)?;
                Ok((
                    OracleKind::Switchboard,
                    address.to_bytes(),
                    address,
                    [0; 32],
                ))
            }
        }
    }
}

pub(crate) fn parse_pubkey(text: &str) -> Result<Pubkey, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a base58 address"))
}

/// `text` (a markets file) with `lookup_table.address` set to `address`,
/// everything else (comments, order, formatting) as it was.
pub fn record_lookup_table(text: &str, address: &Pubkey) -> Result<String, ConfigError> {
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| ConfigError(e.to_string()))?;
    let table = document
        .entry("lookup_table")
        .or_insert_with(toml_edit::table)
        .as_table_mut()
        .ok_or_else(|| invalid("lookup_table", "must be a table"))?;
    table.insert("address", toml_edit::value(address.to_string()));
    Ok(document.to_string())
}
