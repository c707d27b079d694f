//! From desired (config) and current (decoded chain) state to the steps
//! between them.
use std::collections::BTreeMap;

use kestrel::instructions::{CreateMarketArgs, CreateUnderlyingArgs};
use kestrel::state::{
    Market, MarketParams, MarketStatus, OracleConfig, OracleKind, PauseFlags, Underlying,
};
use kestrel_sdk::ix::{MarketAccounts, UnderlyingAccounts};
use kestrel_sdk::lookup_table::{self, LookupTable, LOOKUP_TABLE_MAX_ADDRESSES};
use kestrel_sdk::{pda, Pubkey};

use crate::config::{Config, ConfigError, MarketConfig, UnderlyingConfig};

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
    for market in &config.markets {
        plan_market(config, market, state.markets.get(&market.index), &mut steps)?;
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
    for market in &config.markets {
        let Some(on_chain) = state.markets.get(&market.index) else {
            continue;
        };
        let underlying = config.underlying_of(market)?;
        let mut accounts = underlying_accounts(underlying)?;
        accounts.underlying = on_chain.underlying;
        markets.push(MarketAccounts {
            market_index: market.index,
            market: pda::market(&exchange, market.index),
            bids: on_chain.bids,
            asks: on_chain.asks,
            event_queue: on_chain.event_queue,
            underlying: accounts,
        });
    }
    Ok(markets)
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
    current: Option<&Market>,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let key = |field: &str| format!("market {}{field}", market.index);
    let params = market.params();
    let status = market
        .status()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".status"))))?;
    let name = market
        .name_bytes()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".name"))))?;
    let underlying = config.underlying_of(market)?.address();

    let current_status = match current {
        None => {
            steps.push(Step::CreateMarket {
                args: CreateMarketArgs {
                    market_index: market.index,
                    name,
                    base_lot_size: market.base_lot_size,
                    quote_lot_size: market.quote_lot_size,
                    params,
                },
                underlying,
            });
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
            if on_chain.params() != params {
                steps.push(Step::SetMarketParams {
                    market_index: market.index,
                    current: on_chain.params(),
                    params,
                });
            }
            on_chain.status()
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
            state.underlyings.insert(underlying.index, on_chain);
        }
        for market in &config.markets {
            let mut on_chain: Market = bytemuck::Zeroable::zeroed();
            on_chain.name = market.name_bytes().unwrap();
            on_chain.underlying = config.underlying_of(market).unwrap().address();
            on_chain.underlying_index = market.underlying;
            on_chain.base_lot_size = market.base_lot_size;
            on_chain.quote_lot_size = market.quote_lot_size;
            on_chain.apply_params(&market.params());
            on_chain.status = market.status().unwrap() as u8;
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
                    // The exchange's 6, then per market its 4 accounts and
                    // its underlying's 3 (one underlying here).
                    if addresses.len() == 6 + 7 * config.markets.len()
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
        // The underlying first, then the market on it.
        let underlying = config.underlyings[0].address();
        assert!(
            matches!(
                steps.as_slice(),
                [
                    Step::CreateUnderlying { args, accounts },
                    Step::CreateMarket { underlying: on, .. },
                    Step::CreateLookupTable,
                    Step::ExtendLookupTable { .. },
                ] if args.underlying_index == 0
                    && args.base_decimals == 9
                    && accounts.underlying == underlying
                    && accounts.fallback_oracle.is_some()
                    && *on == underlying
            ),
            "{steps:?}"
        );
        assert_eq!(steps[0].to_string(), "create underlying 0 (SOL)");
        assert_eq!(steps[1].to_string(), "create market 0 (SOL-PERP)");
        // Once the table exists and is recorded, a matching chain needs nothing.
        config.lookup_table = Some(crate::config::LookupTableConfig {
            address: Some(Pubkey::new_unique().to_string()),
        });
        assert!(plan(&config, &created(&config)).unwrap().is_empty());
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
}
