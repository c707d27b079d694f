//! From desired (config) and current (decoded chain) state to the steps
//! between them.
use std::collections::BTreeMap;

use kestrel::instructions::{CreateMarketArgs, CreateUnderlyingArgs};
use kestrel::state::{
    FutureParams, InstrumentKind, Market, MarketLimits, MarketParams, MarketStatus, OptionConfig,
    OptionParams, OracleConfig, OracleKind, PauseFlags, RiskScaling, Underlying,
};
use kestrel_sdk::ix::{MarketAccounts, UnderlyingAccounts};
use kestrel_sdk::lookup_table::{self, LookupTable, LOOKUP_TABLE_MAX_ADDRESSES};
use kestrel_sdk::{pda, Pubkey};

use crate::config::{Config, ConfigError, Expiry, MarketConfig, UnderlyingConfig};
use crate::expiry::format_rfc3339;

/// What exists on chain, as far as the migrations care.
#[derive(Clone, Default)]
pub struct ChainState {
    pub pause_flags: u32,
    /// The underlyings of the config's indices that exist.
    pub underlyings: BTreeMap<u16, Underlying>,
    /// The markets of the config's indices that exist.
    pub markets: BTreeMap<u16, Market>,
    /// The table at `lookup_table.address`, if it exists.
    pub lookup_table: Option<LookupTable>,
    /// The cluster's unix time when the state was read: a future's expiry
    /// must lie beyond its settlement window from it, and an
    /// `expiry_in_seconds` counts from it.
    pub now: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    SetPause {
        flags: u32,
    },
    /// Lists an underlying; its feeds are read from `accounts`' oracles.
    CreateUnderlying {
        args: CreateUnderlyingArgs,
        accounts: UnderlyingAccounts,
    },
    SetUnderlyingOracle {
        underlying_index: u16,
        accounts: UnderlyingAccounts,
        /// As on chain (`None`: not decodable), for the report of what changes.
        current: Option<OracleConfig>,
        config: OracleConfig,
    },
    CreateMarket {
        args: CreateMarketArgs,
        /// The underlying it is priced from.
        underlying: Pubkey,
    },
    /// Lists a dated future: a market as `CreateMarket`'s, with `future`'s
    /// expiry and settlement terms (fixed from then on).
    CreateFutureMarket {
        args: CreateMarketArgs,
        future: FutureParams,
        underlying: Pubkey,
    },
    /// Sets an underlying's option terms (its volatility feed, bounds,
    /// rate and short-margin terms).
    SetOptionConfig {
        underlying_index: u16,
        config: OptionConfig,
    },
    /// Sets how an underlying's margin fractions follow its realized
    /// volatility and position size.
    SetRiskScaling {
        underlying_index: u16,
        scaling: RiskScaling,
    },
    /// Sets how fast an underlying's accepted price may follow its feeds.
    SetPriceLimit {
        underlying_index: u16,
        max_move_bps_per_second: u32,
        band_bps: u32,
    },
    /// Lists one option of a `[[series]]`.
    CreateOptionMarket {
        args: CreateMarketArgs,
        expiry: FutureParams,
        option: OptionParams,
        underlying: Pubkey,
    },
    SetMarketParams {
        market_index: u16,
        /// As on chain, for the report of what changes.
        current: MarketParams,
        params: MarketParams,
    },
    SetMarketStatus {
        market_index: u16,
        status: MarketStatus,
    },
    SetMarketLimits {
        market_index: u16,
        /// As on chain (zero for a market listed in the same run).
        current: MarketLimits,
        limits: MarketLimits,
    },
    /// A new address lookup table, owned by the admin.
    CreateLookupTable,
    /// Appends what the table lacks of the exchange's accounts (`table`:
    /// `None` for the one created in the same run).
    ExtendLookupTable {
        table: Option<Pubkey>,
        addresses: Vec<Pubkey>,
    },
}

impl Step {
    /// The lookup table's steps run after the others (a market created in
    /// the same run has book accounts only then).
    pub fn is_lookup_table(&self) -> bool {
        matches!(
            self,
            Step::CreateLookupTable | Step::ExtendLookupTable { .. }
        )
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::SetPause { flags } => {
                let paused: Vec<_> = PauseFlags(*flags).paused().map(|op| op.name()).collect();
                match paused.is_empty() {
                    true => write!(f, "resume every operation"),
                    false => write!(
                        f,
                        "pause {} (every other operation runs)",
                        paused.join(", ")
                    ),
                }
            }
            Step::CreateUnderlying { args, .. } => write!(
                f,
                "create underlying {} ({})",
                args.underlying_index,
                trimmed(&args.name)
            ),
            Step::SetUnderlyingOracle {
                underlying_index,
                current,
                config,
                ..
            } => {
                write!(f, "update underlying {underlying_index}'s oracle: ")?;
                match current {
                    Some(current) => write!(f, "{}", oracle_changes(current, config).join(", ")),
                    None => write!(f, "replace an undecodable configuration"),
                }
            }
            Step::CreateMarket { args, .. } => write!(
                f,
                "create market {} ({})",
                args.market_index,
                trimmed(&args.name)
            ),
            Step::CreateFutureMarket { args, future, .. } => write!(
                f,
                "create future market {} ({}) expiring {} (unix {}), settling at the average of its last {} s",
                args.market_index,
                trimmed(&args.name),
                format_rfc3339(future.expiry),
                future.expiry,
                future.settlement_window_seconds
            ),
            Step::SetOptionConfig {
                underlying_index,
                config,
            } => write!(
                f,
                "set underlying {underlying_index}'s option terms (volatility feed {}, {}-{} bps, rate {} bps)",
                Pubkey::new_from_array(config.volatility_feed),
                config.min_volatility_bps,
                config.max_volatility_bps,
                config.rate_bps
            ),
            Step::SetRiskScaling {
                underlying_index,
                scaling,
            } => write!(
                f,
                "set underlying {underlying_index}'s risk scaling (volatility baseline {} bps, at most {} bps, {} bps an hour; size lift {} bps per unit)",
                scaling.baseline_volatility_bps,
                scaling.max_scale_bps,
                scaling.max_scale_change_bps_per_hour,
                scaling.size_margin_bps
            ),
            Step::SetPriceLimit {
                underlying_index,
                max_move_bps_per_second,
                band_bps,
            } => write!(
                f,
                "set underlying {underlying_index}'s price limit ({max_move_bps_per_second} bps a second, \
                 band {band_bps} bps)"
            ),
            Step::CreateOptionMarket { args, expiry, option, .. } => write!(
                f,
                "create option market {} ({}): a {} at {} native quote per native base, expiring {} (unix {})",
                args.market_index,
                trimmed(&args.name),
                if option.side == 0 { "call" } else { "put" },
                option.strike(),
                format_rfc3339(expiry.expiry),
                expiry.expiry
            ),
            Step::SetMarketParams {
                market_index,
                current,
                params,
            } => {
                write!(
                    f,
                    "update market {market_index}'s parameters: {}",
                    param_changes(current, params).join(", ")
                )
            }
            Step::SetMarketStatus {
                market_index,
                status,
            } => {
                write!(f, "set market {market_index} to {status:?}")
            }
            Step::SetMarketLimits {
                market_index,
                current,
                limits,
            } => {
                let cap = |lots: u64| {
                    if lots == 0 {
                        "none".to_string()
                    } else {
                        lots.to_string()
                    }
                };
                write!(
                    f,
                    "set market {market_index}'s caps: open interest {} -> {}, position {} -> {} lots",
                    cap(current.max_open_interest_lots),
                    cap(limits.max_open_interest_lots),
                    cap(current.max_position_lots),
                    cap(limits.max_position_lots)
                )
            }
            Step::CreateLookupTable => write!(f, "create the exchange's address lookup table"),
            Step::ExtendLookupTable { table, addresses } => {
                let n = addresses.len();
                match table {
                    Some(table) => write!(f, "extend lookup table {table} with {n} addresses"),
                    None => write!(f, "extend the new lookup table with {n} addresses"),
                }
            }
        }
    }
}

/// A zero-padded name as text.
fn trimmed(name: &[u8; 16]) -> String {
    String::from_utf8_lossy(name)
        .trim_end_matches('\0')
        .to_string()
}

/// `field current -> desired` for every oracle setting that differs; feeds
/// and accounts as the markets file writes them (a Pyth feed id in hex,
/// addresses in base58).
pub fn oracle_changes(current: &OracleConfig, desired: &OracleConfig) -> Vec<String> {
    let address = |bytes: &[u8; 32]| Pubkey::new_from_array(*bytes).to_string();
    let feed = |kind: OracleKind, bytes: &[u8; 32]| match kind {
        OracleKind::Pyth => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        OracleKind::Switchboard => address(bytes),
        OracleKind::None => "none".to_string(),
    };
    let pin = |bytes: &[u8; 32]| match *bytes == [0; 32] {
        true => "none".to_string(),
        false => address(bytes),
    };
    let fields = [
        (
            "primary_kind",
            format!("{:?}", current.primary_kind),
            format!("{:?}", desired.primary_kind),
        ),
        (
            "primary_feed",
            feed(current.primary_kind, &current.primary_feed),
            feed(desired.primary_kind, &desired.primary_feed),
        ),
        (
            "fallback_kind",
            format!("{:?}", current.fallback_kind),
            format!("{:?}", desired.fallback_kind),
        ),
        (
            "fallback_feed",
            feed(current.fallback_kind, &current.fallback_feed),
            feed(desired.fallback_kind, &desired.fallback_feed),
        ),
        (
            "max_age_seconds",
            current.max_age_seconds.to_string(),
            desired.max_age_seconds.to_string(),
        ),
        (
            "max_age_slots",
            current.max_age_slots.to_string(),
            desired.max_age_slots.to_string(),
        ),
        (
            "max_confidence_bps",
            current.max_confidence_bps.to_string(),
            desired.max_confidence_bps.to_string(),
        ),
        (
            "max_deviation_bps",
            current.max_deviation_bps.to_string(),
            desired.max_deviation_bps.to_string(),
        ),
        (
            "primary_account",
            pin(&current.primary_account),
            pin(&desired.primary_account),
        ),
        (
            "fallback_account",
            pin(&current.fallback_account),
            pin(&desired.fallback_account),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| format!("{field} {from} -> {to}"))
        .collect()
}

/// `field current -> desired` for every parameter that differs.
pub fn param_changes(current: &MarketParams, desired: &MarketParams) -> Vec<String> {
    let mut changes = Vec::new();
    macro_rules! compare {
        ($field:ident) => {
            if current.$field != desired.$field {
                changes.push(format!(
                    "{} {:?} -> {:?}",
                    stringify!($field),
                    current.$field,
                    desired.$field
                ));
            }
        };
    }
    compare!(initial_margin_bps);
    compare!(maintenance_margin_bps);
    compare!(maker_fee_bps);
    compare!(taker_fee_bps);
    compare!(price_band_bps);
    compare!(resting_band_bps);
    compare!(max_fills_per_order);
    compare!(crank_reward_native);
    compare!(funding_cap_bps);
    compare!(funding_period_seconds);
    compare!(liquidation_fee_bps);
    compare!(liquidation_insurance_share_bps);
    changes
}

/// The steps that make the chain match `config`; none when it already does.
pub fn plan(config: &Config, state: &ChainState) -> Result<Vec<Step>, ConfigError> {
    let mut steps = Vec::new();
    let flags = config.pause_flags()?;
    if flags != state.pause_flags {
        steps.push(Step::SetPause { flags });
    }
    // Underlyings first: a market is created on one.
    for underlying in &config.underlyings {
        plan_underlying(
            underlying,
            state.underlyings.get(&underlying.index),
            &mut steps,
        )?;
    }
    for underlying in &config.underlyings {
        plan_option_config(underlying, state, &mut steps)?;
        plan_risk_scaling(underlying, state, &mut steps);
        plan_price_limit(underlying, state, &mut steps);
    }
    for market in &config.markets {
        plan_market(config, market, state, &mut steps)?;
    }
    for (position, series) in config.series.iter().enumerate() {
        plan_series(config, position, series, state, &mut steps)?;
    }
    steps.extend(plan_lookup_table(config, state)?);
    Ok(steps)
}

/// The lookup table's steps: create it when `[lookup_table]` has no
/// address, then add whatever it lacks of the exchange's accounts and those
/// of the config's markets that exist on chain (a market created in the
/// same run is added when `apply` plans this again after creating it).
pub fn plan_lookup_table(config: &Config, state: &ChainState) -> Result<Vec<Step>, ConfigError> {
    if config.lookup_table.is_none() {
        return Ok(Vec::new());
    }
    let wanted = lookup_table::exchange_addresses(&existing_markets(config, state)?);
    let Some(address) = config.lookup_table_address()? else {
        return Ok(vec![
            Step::CreateLookupTable,
            Step::ExtendLookupTable {
                table: None,
                addresses: wanted,
            },
        ]);
    };
    let key = |why: String| ConfigError(format!("lookup_table.address: {why}"));
    let table = state.lookup_table.as_ref().ok_or_else(|| {
        key(format!(
            "no lookup table at {address} (remove the address to create one)"
        ))
    })?;
    let missing = lookup_table::missing(&table.addresses, &wanted);
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    if !table.is_active() || table.authority.is_none() {
        return Err(key(format!(
            "lookup table {address} is deactivated or frozen and lacks {} addresses",
            missing.len()
        )));
    }
    if table.addresses.len() + missing.len() > LOOKUP_TABLE_MAX_ADDRESSES {
        return Err(key(format!(
            "lookup table {address} would hold {} addresses, more than {LOOKUP_TABLE_MAX_ADDRESSES}",
            table.addresses.len() + missing.len()
        )));
    }
    Ok(vec![Step::ExtendLookupTable {
        table: Some(address),
        addresses: missing,
    }])
}

/// The accounts of the config's markets that exist on chain, in the
/// config's order, with their underlyings' (oracle accounts as configured).
pub fn existing_markets(
    config: &Config,
    state: &ChainState,
) -> Result<Vec<MarketAccounts>, ConfigError> {
    let exchange = pda::exchange();
    let mut markets = Vec::new();
    let listed: Vec<(u16, u16)> = config
        .markets
        .iter()
        .map(|m| (m.index, m.underlying))
        .chain(config.series_indices())
        .collect();
    for (index, underlying_index) in listed {
        let Some(on_chain) = state.markets.get(&index) else {
            continue;
        };
        let underlying = config
            .underlying(underlying_index)
            .ok_or_else(|| ConfigError(format!("market {index}: no such [[underlying]]")))?;
        let mut accounts = underlying_accounts(underlying)?;
        accounts.underlying = on_chain.underlying;
        markets.push(MarketAccounts {
            market_index: index,
            market: pda::market(&exchange, index),
            bids: on_chain.bids,
            asks: on_chain.asks,
            event_queue: on_chain.event_queue,
            underlying: accounts,
        });
    }
    Ok(markets)
}

/// `set_option_config` when the file's `[underlying.options]` differs from
/// what the underlying stores (or it stores none).
fn plan_option_config(
    config: &UnderlyingConfig,
    state: &ChainState,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let Some(options) = &config.options else {
        return Ok(());
    };
    let wanted = options
        .option_config()
        .map_err(|e| ConfigError(format!("underlying {}.options: {e}", config.index)))?;
    let current = state
        .underlyings
        .get(&config.index)
        .map(|u| u.volatility.config);
    if current != Some(wanted) {
        steps.push(Step::SetOptionConfig {
            underlying_index: config.index,
            config: wanted,
        });
    }
    Ok(())
}

/// `set_risk_scaling` when the file's `[underlying.risk_scaling]` differs
/// from what the underlying stores (or it is not listed yet).
fn plan_risk_scaling(config: &UnderlyingConfig, state: &ChainState, steps: &mut Vec<Step>) {
    let Some(scaling) = &config.risk_scaling else {
        return;
    };
    let wanted = scaling.scaling();
    let current = state
        .underlyings
        .get(&config.index)
        .map(|u| u.risk_scaling.config);
    if current != Some(wanted) {
        steps.push(Step::SetRiskScaling {
            underlying_index: config.index,
            scaling: wanted,
        });
    }
}

/// `set_price_limit` when the file's `max_price_move_bps_per_second` and
/// `price_band_bps` (absent: the chain's) differ from what the underlying stores (or
/// it is not listed yet).
fn plan_price_limit(config: &UnderlyingConfig, state: &ChainState, steps: &mut Vec<Step>) {
    let Some(max_move_bps_per_second) = config.max_price_move_bps_per_second else {
        return;
    };
    let current = state.underlyings.get(&config.index).map(|u| {
        (
            u.price_limit.max_move_bps_per_second,
            u.price_limit.band_bps,
        )
    });
    // An absent band keeps what the chain has, as an absent speed does.
    let band_bps = config
        .price_band_bps
        .unwrap_or(current.map_or(0, |(_, band)| band));
    if current != Some((max_move_bps_per_second, band_bps)) {
        steps.push(Step::SetPriceLimit {
            underlying_index: config.index,
            max_move_bps_per_second,
            band_bps,
        });
    }
}

/// A `[[series]]`'s options: listed when missing (once their underlying
/// exists on chain, whose decimals and price a strike needs; `apply` plans
/// again after listing underlyings), their fees, bands and status updated,
/// and their listing terms checked.
fn plan_series(
    config: &Config,
    position: usize,
    series: &crate::series::SeriesConfig,
    state: &ChainState,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let key = |field: &str| format!("series[{position}].{field}");
    let error = |field: &str, why: String| ConfigError(format!("{}: {why}", key(field)));
    let underlying_config = config
        .underlying(series.underlying)
        .ok_or_else(|| error("underlying", "no such [[underlying]]".into()))?;
    let underlying = underlying_config.address();
    let Some(on_chain_underlying) = state.underlyings.get(&series.underlying) else {
        // Listed with its underlying's next plan (the same apply).
        return Ok(());
    };
    let decimals = (
        on_chain_underlying.base_decimals,
        on_chain_underlying.quote_decimals,
    );
    let spot = on_chain_underlying.prices.last_good_price();
    let params = series.params();
    let status = series.status().map_err(|e| error("status", e))?;
    for listing in series.listings().map_err(|(f, e)| error(f, e))? {
        let name = crate::config::name_bytes(&listing.name).map_err(|e| error("name", e))?;
        match state.markets.get(&listing.index) {
            None => {
                let option = series
                    .option_params(&listing, decimals, spot)
                    .map_err(|e| error("strikes", e))?;
                let expiry = series
                    .future_params(state.now)
                    .map_err(|(f, e)| error(f, e))?;
                if expiry.window_start() <= state.now {
                    return Err(error(
                        "expiry",
                        format!(
                            "expires {} (unix {}): its {} s settlement window must open after now ({})",
                            format_rfc3339(expiry.expiry),
                            expiry.expiry,
                            expiry.settlement_window_seconds,
                            format_rfc3339(state.now)
                        ),
                    ));
                }
                steps.push(Step::CreateOptionMarket {
                    args: CreateMarketArgs {
                        market_index: listing.index,
                        name,
                        base_lot_size: series.base_lot_size,
                        quote_lot_size: series.quote_lot_size,
                        params,
                    },
                    expiry,
                    option,
                    underlying,
                });
                push_limits(
                    steps,
                    listing.index,
                    MarketLimits::default(),
                    series.limits(),
                );
                if status != MarketStatus::Active {
                    steps.push(Step::SetMarketStatus {
                        market_index: listing.index,
                        status,
                    });
                }
            }
            Some(on_chain) => {
                let wanted = series.option_params(&listing, decimals, spot).ok();
                if on_chain.name != name {
                    return Err(error(
                        "name",
                        format!(
                            "market {}'s name is fixed at listing and differs on chain",
                            listing.index
                        ),
                    ));
                }
                if let Some(field) = crate::series::listing_differs(
                    series,
                    &listing,
                    on_chain,
                    wanted.as_ref(),
                    &underlying,
                ) {
                    return Err(error(
                        field,
                        format!(
                            "market {} on chain differs: fixed at listing",
                            listing.index
                        ),
                    ));
                }
                if matches!(
                    on_chain.status(),
                    Ok(MarketStatus::Settled | MarketStatus::Closed)
                ) {
                    continue;
                }
                if on_chain.params != params {
                    steps.push(Step::SetMarketParams {
                        market_index: listing.index,
                        current: on_chain.params,
                        params,
                    });
                }
                push_limits(steps, listing.index, on_chain.limits, series.limits());
                if on_chain.status().ok() != Some(status) {
                    steps.push(Step::SetMarketStatus {
                        market_index: listing.index,
                        status,
                    });
                }
            }
        }
    }
    Ok(())
}

/// A step setting a market's caps, when they differ from `current`.
fn push_limits(
    steps: &mut Vec<Step>,
    market_index: u16,
    current: MarketLimits,
    limits: MarketLimits,
) {
    if current != limits {
        steps.push(Step::SetMarketLimits {
            market_index,
            current,
            limits,
        });
    }
}

fn underlying_accounts(config: &UnderlyingConfig) -> Result<UnderlyingAccounts, ConfigError> {
    config
        .accounts()
        .map_err(|e| ConfigError(format!("underlying {}.oracle: {e}", config.index)))
}

fn plan_underlying(
    config: &UnderlyingConfig,
    current: Option<&Underlying>,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let key = |field: &str| format!("underlying {}{field}", config.index);
    let oracle = config
        .oracle_config()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".oracle"))))?;
    let name = config
        .name_bytes()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".name"))))?;
    let accounts = underlying_accounts(config)?;
    let Some(underlying) = current else {
        steps.push(Step::CreateUnderlying {
            args: CreateUnderlyingArgs {
                underlying_index: config.index,
                name,
                base_decimals: config.base_decimals,
                oracle,
            },
            accounts,
        });
        return Ok(());
    };
    if (underlying.name, underlying.base_decimals) != (name, config.base_decimals) {
        return Err(ConfigError(format!(
            "{}: name and base decimals are fixed at creation and differ on chain",
            key("")
        )));
    }
    let stored = underlying.oracle_config().ok();
    if stored != Some(oracle) {
        steps.push(Step::SetUnderlyingOracle {
            underlying_index: config.index,
            accounts,
            current: stored,
            config: oracle,
        });
    }
    Ok(())
}

fn plan_market(
    config: &Config,
    market: &MarketConfig,
    state: &ChainState,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let key = |field: &str| format!("market {}{field}", market.index);
    let error = |field: &str, why: String| ConfigError(format!("{}: {why}", key(field)));
    let params = market.params();
    let status = market
        .status()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".status"))))?;
    let name = market
        .name_bytes()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".name"))))?;
    let kind = market.kind().map_err(|e| error(".kind", e))?;
    let future = market
        .future()
        .map_err(|(field, e)| error(&format!(".{field}"), e))?;
    let underlying = config.underlying_of(market)?.address();

    let current_status = match state.markets.get(&market.index) {
        None => {
            let args = CreateMarketArgs {
                market_index: market.index,
                name,
                base_lot_size: market.base_lot_size,
                quote_lot_size: market.quote_lot_size,
                params,
            };
            match future {
                None => steps.push(Step::CreateMarket { args, underlying }),
                Some(future) => {
                    let terms = future.params(state.now);
                    // The program refuses the same; said here with the key.
                    if terms.window_start() <= state.now {
                        return Err(error(
                            &format!(".{}", future.expiry.key()),
                            format!(
                                "expires {} (unix {}): its {} s settlement window must open after now ({})",
                                format_rfc3339(terms.expiry),
                                terms.expiry,
                                terms.settlement_window_seconds,
                                format_rfc3339(state.now)
                            ),
                        ));
                    }
                    steps.push(Step::CreateFutureMarket {
                        args,
                        future: terms,
                        underlying,
                    });
                }
            }
            push_limits(
                steps,
                market.index,
                MarketLimits::default(),
                market.limits(),
            );
            MarketStatus::Active
        }
        Some(on_chain) => {
            if on_chain.underlying != underlying || on_chain.underlying_index != market.underlying {
                return Err(ConfigError(format!(
                    "{}: the market is on underlying {} on chain; its underlying is fixed at creation",
                    key(".underlying"),
                    on_chain.underlying_index
                )));
            }
            let fixed = (
                on_chain.name,
                on_chain.base_lot_size,
                on_chain.quote_lot_size,
            );
            if fixed != (name, market.base_lot_size, market.quote_lot_size) {
                return Err(ConfigError(format!(
                    "{}: name and lot sizes are fixed at creation and differ on chain",
                    key("")
                )));
            }
            check_listing_terms(market, on_chain, kind, future.as_ref())?;
            // An expiring market that has settled (or closed once settled)
            // belongs to its settlement: nothing the admin sets applies.
            if on_chain.has_expiry()
                && matches!(
                    on_chain.status(),
                    Ok(MarketStatus::Settled | MarketStatus::Closed)
                )
            {
                return Ok(());
            }
            if matches!(on_chain.kind(), Ok(InstrumentKind::Perp))
                && on_chain.has_expiry()
                && matches!(status, MarketStatus::Active | MarketStatus::ReduceOnly)
            {
                return Err(error(
                    ".status",
                    format!(
                        "the perpetual was delisted on chain (it settles at {}) and never trades again: set status = \"paused\"",
                        format_rfc3339(on_chain.future.params.expiry)
                    ),
                ));
            }
            if on_chain.params != params {
                steps.push(Step::SetMarketParams {
                    market_index: market.index,
                    current: on_chain.params,
                    params,
                });
            }
            // A closed market's caps are final (the program refuses them).
            if on_chain.status().ok() != Some(MarketStatus::Closed) {
                push_limits(steps, market.index, on_chain.limits, market.limits());
            }
            on_chain
                .status()
                .map_err(|e| error(".status", format!("on chain: {e}")))?
        }
    };
    if current_status != status {
        if current_status == MarketStatus::Closed {
            return Err(ConfigError(format!(
                "{}: the market is closed on chain",
                key(".status")
            )));
        }
        // Closed is reached from Paused only.
        if status == MarketStatus::Closed && current_status != MarketStatus::Paused {
            steps.push(Step::SetMarketStatus {
                market_index: market.index,
                status: MarketStatus::Paused,
            });
        }
        steps.push(Step::SetMarketStatus {
            market_index: market.index,
            status,
        });
    }
    Ok(())
}

/// What is fixed at listing: the instrument's kind and a future's terms. A
/// difference is an error naming the key (no instruction changes them); an
/// `expiry_in_seconds` is not compared, the expiry on chain stands.
fn check_listing_terms(
    market: &MarketConfig,
    on_chain: &Market,
    kind: InstrumentKind,
    future: Option<&crate::config::FutureConfig>,
) -> Result<(), ConfigError> {
    let fixed = |field: &str, chain: String, file: String| {
        ConfigError(format!(
            "market {}.{field}: fixed at listing: {chain} on chain, {file} in the file",
            market.index
        ))
    };
    let kind_name = |kind: InstrumentKind| match kind {
        InstrumentKind::Perp => "perp".to_string(),
        InstrumentKind::Future => "future".to_string(),
        InstrumentKind::Option => "option".to_string(),
    };
    let chain_kind = on_chain.kind().map_err(|_| {
        ConfigError(format!(
            "market {}.kind: the market's kind on chain ({}) is unknown to this version",
            market.index, on_chain.kind
        ))
    })?;
    if chain_kind != kind {
        return Err(fixed("kind", kind_name(chain_kind), kind_name(kind)));
    }
    let Some(future) = future else {
        return Ok(());
    };
    let terms = on_chain.future.params;
    if let Expiry::At(expiry) = future.expiry {
        if expiry != terms.expiry {
            return Err(fixed(
                "expiry",
                format!("{} (unix {})", format_rfc3339(terms.expiry), terms.expiry),
                format!("{} (unix {expiry})", format_rfc3339(expiry)),
            ));
        }
    }
    let fields = [
        (
            "settlement_window_seconds",
            terms.settlement_window_seconds,
            future.settlement_window_seconds,
        ),
        ("max_basis_bps", terms.max_basis_bps, future.max_basis_bps),
        (
            "basis_window_seconds",
            terms.basis_window_seconds,
            future.basis_window_seconds,
        ),
        (
            "convergence_seconds",
            terms.convergence_seconds,
            future.convergence_seconds,
        ),
    ];
    for (field, chain, file) in fields {
        if chain != file {
            return Err(fixed(field, chain.to_string(), file.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = include_str!("../markets.toml");

    fn created(config: &Config) -> ChainState {
        let mut state = ChainState {
            pause_flags: config.pause_flags().unwrap(),
            ..ChainState::default()
        };
        for underlying in &config.underlyings {
            let mut on_chain: Underlying = bytemuck::Zeroable::zeroed();
            on_chain.name = underlying.name_bytes().unwrap();
            on_chain.base_decimals = underlying.base_decimals;
            on_chain.underlying_index = underlying.index;
            on_chain.oracle =
                kestrel::state::StoredOracleConfig::from(&underlying.oracle_config().unwrap());
            on_chain.quote_decimals = 6;
            if let Some(options) = &underlying.options {
                on_chain.volatility.config = options.option_config().unwrap();
            }
            state.underlyings.insert(underlying.index, on_chain);
        }
        for series in &config.series {
            let on_chain_underlying = state.underlyings[&series.underlying];
            for listing in series.listings().unwrap() {
                let mut on_chain: Market = bytemuck::Zeroable::zeroed();
                on_chain.name = crate::config::name_bytes(&listing.name).unwrap();
                on_chain.underlying = config.underlying(series.underlying).unwrap().address();
                on_chain.underlying_index = series.underlying;
                on_chain.base_lot_size = series.base_lot_size;
                on_chain.quote_lot_size = series.quote_lot_size;
                on_chain.params = series.params();
                on_chain.limits = series.limits();
                on_chain.status = series.status().unwrap() as u8;
                on_chain.kind = InstrumentKind::Option as u8;
                on_chain.future.params = series.future_params(state.now).unwrap();
                on_chain.option = series
                    .option_params(
                        &listing,
                        (
                            on_chain_underlying.base_decimals,
                            on_chain_underlying.quote_decimals,
                        ),
                        None,
                    )
                    .unwrap();
                on_chain.bids = Pubkey::new_unique();
                on_chain.asks = Pubkey::new_unique();
                on_chain.event_queue = Pubkey::new_unique();
                state.markets.insert(listing.index, on_chain);
            }
        }
        for market in &config.markets {
            let mut on_chain: Market = bytemuck::Zeroable::zeroed();
            on_chain.name = market.name_bytes().unwrap();
            on_chain.underlying = config.underlying_of(market).unwrap().address();
            on_chain.underlying_index = market.underlying;
            on_chain.base_lot_size = market.base_lot_size;
            on_chain.quote_lot_size = market.quote_lot_size;
            on_chain.params = market.params();
            on_chain.limits = market.limits();
            on_chain.status = market.status().unwrap() as u8;
            on_chain.kind = market.kind().unwrap() as u8;
            if let Some(future) = market.future().unwrap() {
                on_chain.future.params = future.params(state.now);
            }
            on_chain.bids = Pubkey::new_unique();
            on_chain.asks = Pubkey::new_unique();
            on_chain.event_queue = Pubkey::new_unique();
            state.markets.insert(market.index, on_chain);
        }
        if let Some(address) = config.lookup_table_address().unwrap() {
            let wanted =
                lookup_table::exchange_addresses(&existing_markets(config, &state).unwrap());
            state.lookup_table = Some(LookupTable {
                address,
                authority: Some(Pubkey::new_unique()),
                deactivation_slot: u64::MAX,
                last_extended_slot: 1,
                last_extended_slot_start_index: 0,
                addresses: wanted,
            });
        }
        state
    }

    #[test]
    fn the_lookup_table_is_created_then_extended_with_what_it_lacks() {
        let mut config = Config::parse(CONFIG).unwrap();
        config.lookup_table = Some(Default::default());
        let steps = plan(&config, &created(&config)).unwrap();
        assert!(
            matches!(
                steps.as_slice(),
                [Step::CreateLookupTable, Step::ExtendLookupTable { table: None, addresses }]
                    // The exchange's 6, then per market (the series' options
                    // among them) its 4 accounts and its underlying's 3 once
                    // (one underlying here).
                    if addresses.len() == 6 + 4 * (config.markets.len() + config.series_indices().len()) + 3
            ),
            "{steps:?}"
        );
        assert_eq!(
            steps[0].to_string(),
            "create the exchange's address lookup table"
        );

        let address = Pubkey::new_unique();
        config.lookup_table = Some(crate::config::LookupTableConfig {
            address: Some(address.to_string()),
        });
        let mut state = created(&config);
        assert!(
            plan(&config, &state).unwrap().is_empty(),
            "it holds everything"
        );
        let table = state.lookup_table.as_mut().unwrap();
        let lost = table.addresses.pop().unwrap();
        assert_eq!(
            plan(&config, &state).unwrap(),
            vec![Step::ExtendLookupTable {
                table: Some(address),
                addresses: vec![lost]
            }]
        );
        state.lookup_table = None;
        assert!(plan(&config, &state)
            .unwrap_err()
            .0
            .contains("no lookup table at"));
    }

    #[test]
    fn risk_scaling_is_set_when_it_differs_and_checked_like_the_program() {
        let text = CONFIG.replacen(
            "[[market]]",
            "[underlying.risk_scaling]\nbaseline_volatility_bps = 8000\nmax_scale_bps = 30000\n\
             max_scale_change_bps_per_hour = 5000\nsize_margin_bps = 10\n\n[[market]]",
            1,
        );
        let config = Config::parse(&text).unwrap();
        let mut state = created(&config);
        let scaling_steps = |state: &ChainState| -> Vec<Step> {
            plan(&config, state)
                .unwrap()
                .into_iter()
                .filter(|s| matches!(s, Step::SetRiskScaling { .. }))
                .collect()
        };
        let steps = scaling_steps(&state);
        let [Step::SetRiskScaling {
            underlying_index: 0,
            scaling,
        }] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(
            steps[0].to_string(),
            "set underlying 0's risk scaling (volatility baseline 8000 bps, at most 30000 bps, \
             5000 bps an hour; size lift 10 bps per unit)"
        );
        state.underlyings.get_mut(&0).unwrap().risk_scaling.config = *scaling;
        assert!(scaling_steps(&state).is_empty());
        let refused = text.replace("max_scale_bps = 30000", "max_scale_bps = 5000");
        assert!(Config::parse(&refused)
            .unwrap_err()
            .0
            .contains("underlying[0].risk_scaling"));
    }

    #[test]
    fn a_price_limit_is_set_when_it_differs_and_checked_like_the_program() {
        let text = CONFIG.replacen(
            "\n[underlying.",
            "\nmax_price_move_bps_per_second = 20\nprice_band_bps = 2000\n\n[underlying.",
            1,
        );
        let config = Config::parse(&text).unwrap();
        assert_eq!(
            config.underlyings[0].max_price_move_bps_per_second,
            Some(20)
        );
        let mut state = created(&config);
        let limit_steps = |state: &ChainState| -> Vec<Step> {
            plan(&config, state)
                .unwrap()
                .into_iter()
                .filter(|s| matches!(s, Step::SetPriceLimit { .. }))
                .collect()
        };
        let steps = limit_steps(&state);
        assert_eq!(
            steps,
            [Step::SetPriceLimit {
                underlying_index: 0,
                max_move_bps_per_second: 20,
                band_bps: 2_000,
            }]
        );
        assert_eq!(
            steps[0].to_string(),
            "set underlying 0's price limit (20 bps a second, band 2000 bps)"
        );
        let stored = &mut state.underlyings.get_mut(&0).unwrap().price_limit;
        stored.max_move_bps_per_second = 20;
        // The speed alone is not what the file asks for.
        assert_eq!(limit_steps(&state).len(), 1);
        state.underlyings.get_mut(&0).unwrap().price_limit.band_bps = 2_000;
        assert!(limit_steps(&state).is_empty());
        let refused = text.replace(
            "max_price_move_bps_per_second = 20",
            "max_price_move_bps_per_second = 501",
        );
        assert!(Config::parse(&refused)
            .unwrap_err()
            .0
            .contains("underlying[0].max_price_move_bps_per_second"));
        // A band the program refuses, and a band without a speed.
        let narrow = text.replace("price_band_bps = 2000", "price_band_bps = 50");
        assert!(Config::parse(&narrow)
            .unwrap_err()
            .0
            .contains("underlying[0].max_price_move_bps_per_second"));
        let alone = text.replace("max_price_move_bps_per_second = 20\n", "");
        assert!(Config::parse(&alone)
            .unwrap_err()
            .0
            .contains("underlying[0].price_band_bps"));
    }

    #[test]
    fn a_created_table_is_recorded_in_the_file_with_its_comments() {
        let address = Pubkey::new_unique();
        let text = "# top\n[exchange]\npaused = [] # none\n\n# the table\n[lookup_table]\n";
        let recorded = crate::config::record_lookup_table(text, &address).unwrap();
        assert!(
            recorded.contains("# top")
                && recorded.contains("# none")
                && recorded.contains("# the table")
        );
        let config = Config::parse(&recorded).unwrap();
        assert_eq!(config.lookup_table_address().unwrap(), Some(address));
        // Recording again replaces it.
        let other = Pubkey::new_unique();
        let again = crate::config::record_lookup_table(&recorded, &other).unwrap();
        assert_eq!(
            Config::parse(&again)
                .unwrap()
                .lookup_table_address()
                .unwrap(),
            Some(other)
        );
        assert!(Config::parse(
            &text.replace("[lookup_table]", "[lookup_table]\naddress = \"nope\"")
        )
        .unwrap_err()
        .0
        .contains("lookup_table.address"));
    }

    #[test]
    fn an_empty_chain_gets_every_market_and_a_matching_one_nothing() {
        let mut config = Config::parse(CONFIG).unwrap();
        let steps = plan(&config, &ChainState::default()).unwrap();
        // The underlying first (and its option terms), then the markets on
        // it; the option series waits for the underlying to exist (its
        // strikes need its decimals: `apply` plans again).
        let underlying = config.underlyings[0].address();
        assert!(
            matches!(
                steps.as_slice(),
                [
                    Step::CreateUnderlying { args, accounts },
                    Step::SetOptionConfig { underlying_index: 0, .. },
                    Step::CreateMarket { underlying: on, .. },
                    Step::SetMarketLimits { market_index: 0, .. },
                    Step::CreateFutureMarket { args: future_args, future, underlying: future_on },
                    Step::CreateLookupTable,
                    Step::ExtendLookupTable { .. },
                ] if args.underlying_index == 0
                    && args.base_decimals == 9
                    && accounts.underlying == underlying
                    && accounts.fallback_oracle.is_some()
                    && *on == underlying
                    && *future_on == underlying
                    && future_args.market_index == 1
                    // Two hours after the chain's clock (0 here).
                    && future.expiry == 7_200
                    && future.settlement_window_seconds == 1_800
            ),
            "{steps:?}"
        );
        assert_eq!(steps[0].to_string(), "create underlying 0 (SOL)");
        assert_eq!(
            steps[1].to_string(),
            "set underlying 0's option terms (volatility feed \
             74Rw5CwxNsWmhA43qPAr7ZtXBfpfEvc2WmfcUCNo774c, 500-50000 bps, rate 0 bps)"
        );
        assert_eq!(steps[2].to_string(), "create market 0 (SOL-PERP)");
        assert_eq!(
            steps[3].to_string(),
            "set market 0's caps: open interest none -> 1000000, position none -> 100000 lots"
        );
        assert_eq!(
            steps[4].to_string(),
            "create future market 1 (SOL-FUT) expiring 1970-01-01T02:00:00Z (unix 7200), \
             settling at the average of its last 1800 s"
        );
        // Once the table exists and is recorded, a matching chain needs nothing.
        config.lookup_table = Some(crate::config::LookupTableConfig {
            address: Some(Pubkey::new_unique().to_string()),
        });
        assert!(plan(&config, &created(&config)).unwrap().is_empty());
    }

    #[test]
    fn a_series_lists_its_strikes_and_sides_once_its_underlying_exists() {
        let config = Config::parse(CONFIG).unwrap();
        let mut state = created(&config);
        for listing in config.series[0].listings().unwrap() {
            state.markets.remove(&listing.index);
        }
        let steps = plan(&config, &state).unwrap();
        let listed: Vec<_> = steps
            .iter()
            .filter_map(|step| match step {
                Step::CreateOptionMarket { args, option, .. } => {
                    Some((args.market_index, option.side, option.strike()))
                }
                _ => None,
            })
            .collect();
        // 140, 150, 160 USDC per SOL (9 and 6 decimals: 0.14 ...), a call
        // then a put each, markets 2 to 7.
        let strike = |whole: u32| fixed::types::I80F48::from_num(whole) / 1_000;
        let close = |a: fixed::types::I80F48, b: fixed::types::I80F48| (a - b).abs() < 1e-12;
        assert_eq!(listed.len(), 6, "{steps:?}");
        for (i, (index, side, at)) in listed.iter().enumerate() {
            assert_eq!(*index, 2 + i as u16);
            assert_eq!(*side, (i % 2) as u8);
            assert!(close(*at, strike(140 + 10 * (i as u32 / 2))), "{at}");
        }
        assert!(steps[0]
            .to_string()
            .starts_with("create option market 2 (SOL-W1-140C): a call at "));
        // Strikes relative to the spot: rounded to the step at the price on
        // chain; without a price, an error naming the key.
        let mut relative = config.clone();
        relative.series[0].strikes = Vec::new();
        relative.series[0].strikes_bps_of_spot = vec![9_500, 10_000];
        relative.series[0].strike_step = 5;
        let error = plan(&relative, &state).unwrap_err();
        assert!(error.0.contains("series[0].strikes"), "{error}");
        // A listed series whose strike or volatility terms differ from the
        // file: fixed at listing (a strike renames its market too).
        let mut moved = config.clone();
        moved.series[0].strikes = vec![141, 150, 160];
        let error = plan(&moved, &created(&config)).unwrap_err();
        assert!(
            error.0.contains("series[0].") && error.0.contains("fixed at listing"),
            "{error}"
        );
        let mut skewed = config.clone();
        skewed.series[0].volatility_skew_bps = -500;
        let error = plan(&skewed, &created(&config)).unwrap_err();
        assert!(error.0.contains("series[0].volatility_term_bps"), "{error}");
        // Fees are not fixed: a step.
        let mut dearer = config.clone();
        dearer.series[0].taker_fee_bps = 6;
        let steps = plan(&dearer, &created(&config)).unwrap();
        let updates: Vec<_> = steps.iter().filter(|s| !s.is_lookup_table()).collect();
        assert_eq!(updates.len(), 6, "each of the six options: {steps:?}");
        assert!(updates
            .iter()
            .all(|s| matches!(s, Step::SetMarketParams { .. })));
        // The indices may not overlap a market's.
        let overlap = CONFIG.replace("first_index = 2", "first_index = 1");
        assert!(Config::parse(&overlap)
            .unwrap_err()
            .0
            .contains("series[0].first_index"));
    }

    #[test]
    fn caps_become_one_step_until_the_chain_has_them() {
        let mut config = Config::parse(CONFIG).unwrap();
        let mut state = created(&config);
        let listed = config.markets[0].limits();
        config.markets[0].max_open_interest_lots = 50_000;
        config.markets[0].max_position_lots = 0;
        let index = config.markets[0].index;
        let wanted = config.markets[0].limits();
        let steps: Vec<Step> = plan(&config, &state)
            .unwrap()
            .into_iter()
            .filter(|s| !s.is_lookup_table())
            .collect();
        assert_eq!(
            steps,
            [Step::SetMarketLimits {
                market_index: index,
                current: listed,
                limits: wanted,
            }]
        );
        assert_eq!(
            steps[0].to_string(),
            format!("set market {index}'s caps: open interest 1000000 -> 50000, position 100000 -> none lots")
        );
        state.markets.get_mut(&index).unwrap().limits = wanted;
        assert!(plan(&config, &state)
            .unwrap()
            .iter()
            .all(Step::is_lookup_table));
        // A new market is listed, then capped.
        let mut fresh = created(&config);
        fresh.markets.remove(&index);
        let steps = plan(&config, &fresh).unwrap();
        let position = |wanted: fn(&Step) -> bool| steps.iter().position(wanted).unwrap();
        assert!(
            position(|s| matches!(s, Step::CreateMarket { .. }))
                < position(|s| matches!(s, Step::SetMarketLimits { .. }))
        );
    }

    #[test]
    fn changed_parameters_and_status_become_steps() {
        let mut config = Config::parse(CONFIG).unwrap();
        let state = created(&config);
        config.markets[0].taker_fee_bps += 1;
        config.markets[0].status = "closed".into();
        config.exchange.paused = vec!["trading".into()];
        let steps = plan(&config, &state).unwrap();
        let index = config.markets[0].index;
        assert!(matches!(steps[0], Step::SetPause { flags } if flags == PauseFlags::TRADING));
        assert_eq!(
            steps[0].to_string(),
            "pause trading (every other operation runs)"
        );
        let resumed = Step::SetPause { flags: 0 };
        assert_eq!(resumed.to_string(), "resume every operation");
        assert!(
            matches!(steps[1], Step::SetMarketParams { market_index, .. } if market_index == index)
        );
        // The plan says what differs, field by field.
        assert_eq!(
            steps[1].to_string(),
            format!("update market {index}'s parameters: taker_fee_bps 5 -> 6")
        );
        assert_eq!(
            steps[2],
            Step::SetMarketStatus {
                market_index: index,
                status: MarketStatus::Paused
            }
        );
        assert_eq!(
            steps[3],
            Step::SetMarketStatus {
                market_index: index,
                status: MarketStatus::Closed
            }
        );
        let mut moved = Config::parse(CONFIG).unwrap();
        moved.markets[0].base_lot_size *= 10;
        assert!(plan(&moved, &state)
            .unwrap_err()
            .0
            .contains("fixed at creation"));
        let mut renamed = Config::parse(CONFIG).unwrap();
        renamed.underlyings[0].base_decimals = 8;
        let error = plan(&renamed, &state).unwrap_err().0;
        assert!(
            error.starts_with("underlying 0: ") && error.contains("fixed at creation"),
            "{error}"
        );
        // A market moved to another underlying (listed, but not its own).
        let mut rehomed = Config::parse(CONFIG).unwrap();
        let mut other = rehomed.underlyings[0].clone();
        other.index = 1;
        rehomed.underlyings.push(other);
        rehomed.markets[0].underlying = 1;
        let mut state = created(&rehomed);
        let market = state.markets.get_mut(&0).unwrap();
        market.underlying = rehomed.underlyings[0].address();
        market.underlying_index = 0;
        let error = plan(&rehomed, &state).unwrap_err().0;
        assert!(error.starts_with("market 0.underlying: "), "{error}");
    }

    #[test]
    fn a_changed_oracle_is_set_on_the_underlying_and_said_field_by_field() {
        let mut config = Config::parse(CONFIG).unwrap();
        config.lookup_table = None;
        let state = created(&config);
        config.underlyings[0].oracle.max_age_seconds = 30;
        config.underlyings[0].oracle.fallback = None;
        let steps = plan(&config, &state).unwrap();
        let [Step::SetUnderlyingOracle {
            underlying_index: 0,
            accounts,
            current: Some(current),
            config: desired,
        }] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(accounts.underlying, config.underlyings[0].address());
        assert_eq!(
            accounts.fallback_oracle, None,
            "the new configuration's accounts"
        );
        let before = Config::parse(CONFIG).unwrap().underlyings[0].oracle_config();
        assert_eq!(Ok(*current), before);
        assert_eq!(desired.max_age_seconds, 30);
        assert_eq!(
            steps[0].to_string(),
            "update underlying 0's oracle: fallback_kind Switchboard -> None, \
             fallback_feed GvDMxPzN1sCj7L26YDK2HnMRXEQmQ2aemov8YBtPS7vR -> none, \
             max_age_seconds 60 -> 30"
        );
        // The market's parameters are untouched by it.
        assert!(!steps
            .iter()
            .any(|s| matches!(s, Step::SetMarketParams { .. })));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_key() {
        let bad_flag = CONFIG.replacen("paused = []", "paused = [\"everything\"]", 1);
        let error = Config::parse(&bad_flag).unwrap_err().0;
        assert!(
            error.contains("exchange.paused")
                && error.contains("\"everything\", expected one of deposit, withdraw"),
            "{error}"
        );
        let bad_margin = CONFIG.replacen(
            "maintenance_margin_bps = 500",
            "maintenance_margin_bps = 5000",
            1,
        );
        let error = Config::parse(&bad_margin).unwrap_err().0;
        assert!(
            error.contains("market[0]") && error.contains("InvalidMarginFractions"),
            "{error}"
        );
        let unknown = CONFIG.replacen("taker_fee_bps", "taker_fees_bps", 1);
        assert!(Config::parse(&unknown)
            .unwrap_err()
            .0
            .contains("taker_fees_bps"));
        let bad_feed = CONFIG.replacen("kind = \"switchboard\"", "kind = \"chainlink\"", 1);
        assert!(Config::parse(&bad_feed).is_err());
        let orphan = CONFIG.replacen("underlying = 0 ", "underlying = 3 ", 1);
        let error = Config::parse(&orphan).unwrap_err().0;
        assert_eq!(
            error,
            "market[0].underlying: 3 is not the index of any [[underlying]]"
        );
        let twice = format!(
            "{CONFIG}\n[[underlying]]\nindex = 0\nname = \"BTC\"\nbase_decimals = 8\n\
             [underlying.oracle]\nmax_age_seconds = 60\nmax_confidence_bps = 200\n\
             max_deviation_bps = 300\nprimary = {{ kind = \"switchboard\", account = \"GvDMxPzN1sCj7L26YDK2HnMRXEQmQ2aemov8YBtPS7vR\" }}\n"
        );
        let error = Config::parse(&twice).unwrap_err().0;
        assert!(
            error.starts_with("underlying[1].index: 0 appears twice"),
            "{error}"
        );
        let bad_bounds = CONFIG.replacen("max_confidence_bps = 200", "max_confidence_bps = 0", 1);
        let error = Config::parse(&bad_bounds).unwrap_err().0;
        assert!(
            error.starts_with("underlying[0].oracle: refused by the program")
                && error.contains("InvalidOracleConfig"),
            "{error}"
        );
        let bad_id = CONFIG.replacen("feed_id = \"ef0d", "feed_id = \"ef0", 1);
        let error = Config::parse(&bad_id).unwrap_err().0;
        assert!(
            error.starts_with("underlying[0].oracle: pyth feed_id"),
            "{error}"
        );
        let old_style = CONFIG.replacen("underlying = 0 ", "base_decimals = 9\nunderlying = 0 ", 1);
        assert!(Config::parse(&old_style)
            .unwrap_err()
            .0
            .contains("base_decimals"));
    }

    /// The future of markets.toml with `expiry_in_seconds = 7200` replaced
    /// by `replacement` (e.g. an absolute expiry).
    fn future_with(replacement: &str) -> String {
        CONFIG.replacen("expiry_in_seconds = 7200", replacement, 1)
    }

    #[test]
    fn a_future_is_listed_at_its_expiry_given_absolute_or_relative() {
        let now = 1_800_000_000;
        let listed = |text: &str| {
            let config = Config::parse(text).unwrap();
            let state = ChainState {
                now,
                ..ChainState::default()
            };
            plan(&config, &state).map(|steps| {
                steps.into_iter().find_map(|step| match step {
                    Step::CreateFutureMarket { future, .. } => Some(future),
                    _ => None,
                })
            })
        };
        // Relative: counted from the chain's clock, rounded down to the
        // minute.
        let future = listed(CONFIG).unwrap().expect("listed");
        assert_eq!(future.expiry, now + 7_200);
        assert_eq!(Expiry::AfterListing(7_200).at(now + 59), now + 7_200);
        assert_eq!(Expiry::AfterListing(7_200).at(now + 60), now + 7_260);
        assert_eq!(
            (
                future.settlement_window_seconds,
                future.max_basis_bps,
                future.basis_window_seconds,
                future.convergence_seconds
            ),
            (1_800, 200, 600, 3_600)
        );
        // Absolute, in each spelling.
        for spelling in [
            "expiry = 2027-03-26T08:00:00Z",
            "expiry = \"2027-03-26T08:00:00Z\"",
            "expiry = \"2027-03-26T10:00:00+02:00\"",
            "expiry = 1806048000",
        ] {
            let future = listed(&future_with(spelling)).unwrap().expect(spelling);
            assert_eq!(future.expiry, 1_806_048_000, "{spelling}");
        }
        // An expiry whose window has opened (or passed) is refused, naming the key.
        let error = listed(&future_with("expiry = 1800000960")).unwrap_err().0;
        assert!(
            error.starts_with(
                "market 1.expiry: expires 2027-01-15T08:16:00Z (unix 1800000960): \
                 its 1800 s settlement window must open after now"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_listed_future_s_terms_are_fixed_and_a_relative_expiry_stands() {
        let config = Config::parse(CONFIG).unwrap();
        let mut state = created(&config);
        // Listed at 0 with expiry_in_seconds; the clock has moved on: the
        // expiry on chain stands, and nothing is to do (the table aside).
        state.now = 5_000;
        let config = Config {
            lookup_table: None,
            ..config
        };
        assert_eq!(plan(&config, &state).unwrap(), vec![]);
        // An absolute expiry is compared.
        let mut absolute = Config::parse(&future_with("expiry = 2027-03-26T08:00:00Z")).unwrap();
        absolute.lookup_table = None;
        let error = plan(&absolute, &state).unwrap_err().0;
        assert_eq!(
            error,
            "market 1.expiry: fixed at listing: 1970-01-01T02:00:00Z (unix 7200) on chain, \
             2027-03-26T08:00:00Z (unix 1806048000) in the file"
        );
        state.markets.get_mut(&1).unwrap().future.params.expiry = 1_806_048_000;
        assert_eq!(plan(&absolute, &state).unwrap(), vec![]);
        // So is every other term, and the kind.
        let mut window = config.clone();
        window.markets[1].settlement_window_seconds = Some(900);
        assert_eq!(
            plan(&window, &state).unwrap_err().0,
            "market 1.settlement_window_seconds: fixed at listing: 1800 on chain, 900 in the file"
        );
        let mut basis = config.clone();
        basis.markets[1].max_basis_bps = Some(100);
        assert!(plan(&basis, &state)
            .unwrap_err()
            .0
            .starts_with("market 1.max_basis_bps: fixed at listing"));
        let mut perp = config.clone();
        perp.markets[1] = MarketConfig {
            kind: "perp".into(),
            expiry_in_seconds: None,
            settlement_window_seconds: None,
            max_basis_bps: None,
            basis_window_seconds: None,
            convergence_seconds: None,
            ..perp.markets[1].clone()
        };
        assert_eq!(
            plan(&perp, &state).unwrap_err().0,
            "market 1.kind: fixed at listing: future on chain, perp in the file"
        );
    }

    #[test]
    fn a_settled_future_and_a_delisted_perpetual_are_left_to_their_settlement() {
        let mut config = Config::parse(CONFIG).unwrap();
        config.lookup_table = None;
        let mut state = created(&config);
        // Settled, then closed: the file's status and parameters no longer apply.
        for status in [MarketStatus::Settled, MarketStatus::Closed] {
            state.markets.get_mut(&1).unwrap().status = status as u8;
            let mut changed = config.clone();
            changed.markets[1].taker_fee_bps += 1;
            assert_eq!(plan(&changed, &state).unwrap(), vec![], "{status:?}");
        }
        // A delisted perpetual (paused, with an expiry) cannot be made active.
        let perp = state.markets.get_mut(&0).unwrap();
        perp.status = MarketStatus::Paused as u8;
        perp.future.params.expiry = 9_000;
        let error = plan(&config, &state).unwrap_err().0;
        assert!(
            error.starts_with("market 0.status: the perpetual was delisted on chain"),
            "{error}"
        );
        config.markets[0].status = "paused".into();
        assert_eq!(plan(&config, &state).unwrap(), vec![]);
    }

    #[test]
    fn a_future_s_keys_are_checked_naming_them() {
        let error = |text: &str| Config::parse(text).unwrap_err().0;
        assert_eq!(
            error(&future_with("")),
            "market[1].expiry: a future needs an expiry (or expiry_in_seconds)"
        );
        assert_eq!(
            error(&future_with(
                "expiry_in_seconds = 7200\nexpiry = 1806048000"
            )),
            "market[1].expiry_in_seconds: give expiry or expiry_in_seconds, not both"
        );
        assert!(
            error(&future_with("expiry = \"2027-03-26T08:00:00\"")).starts_with(
                "market[1].expiry: \"2027-03-26T08:00:00\" is not an RFC 3339 date-time: no offset"
            )
        );
        assert!(error(&future_with("expiry = \"soon\"")).starts_with("market[1].expiry: "));
        assert!(error(&future_with("expiry_in_seconds = 1800")).starts_with(
            "market[1].expiry_in_seconds: must be at least a minute longer than settlement_window_seconds (1800): the window ends at expiry (rounded down to the minute) and must open after listing"
        ));
        assert_eq!(
            error(&CONFIG.replacen("settlement_window_seconds = 1800", "", 1)),
            "market[1].settlement_window_seconds: a future needs it"
        );
        assert!(error(&CONFIG.replacen(
            "settlement_window_seconds = 1800",
            "settlement_window_seconds = 90000",
            1
        ))
        .starts_with("market[1].settlement_window_seconds: must be whole minutes, 300 to 86400"));
        assert!(error(&CONFIG.replacen(
            "settlement_window_seconds = 1800",
            "settlement_window_seconds = 1830",
            1
        ))
        .starts_with("market[1].settlement_window_seconds: must be whole minutes"));
        assert!(error(&future_with("expiry = 1806048030"))
            .starts_with("market[1].expiry: must fall on a whole minute"));
        assert!(
            error(&CONFIG.replacen("max_basis_bps = 200", "max_basis_bps = 500", 1))
                .starts_with("market[1].max_basis_bps: must not exceed price_band_bps (400)")
        );
        assert_eq!(
            error(&CONFIG.replacen("basis_window_seconds = 600", "basis_window_seconds = 0", 1)),
            "market[1].basis_window_seconds: must be positive"
        );
        assert!(
            error(&CONFIG.replacen("kind = \"future\"", "kind = \"option\"", 1))
                .starts_with("market[1].kind: unknown kind \"option\"")
        );
        // A perpetual has none of them.
        assert_eq!(
            error(&CONFIG.replacen("kind = \"future\"", "kind = \"perp\"", 1)),
            "market[1].expiry_in_seconds: only a dated future (kind = \"future\") has it"
        );
        assert_eq!(
            error(&CONFIG.replacen(
                "name = \"SOL-PERP\"",
                "name = \"SOL-PERP\"\nexpiry = 1806048000",
                1
            )),
            "market[0].expiry: only a dated future (kind = \"future\") has it"
        );
    }
}
