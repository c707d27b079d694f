//! From desired (config) and current (decoded chain) state to the steps
//! between them.
use std::collections::BTreeMap;

use kestrel::instructions::CreateMarketArgs;
use kestrel::state::{Market, MarketParams, MarketStatus, PauseFlags};
use kestrel_sdk::ix::MarketAccounts;
use kestrel_sdk::lookup_table::{self, LookupTable, LOOKUP_TABLE_MAX_ADDRESSES};
use kestrel_sdk::{pda, Pubkey};

use crate::config::{Config, ConfigError, MarketConfig};

/// What exists on chain, as far as the migrations care.
#[derive(Clone, Default)]
pub struct ChainState {
    pub pause_flags: u32,
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
    CreateMarket {
        args: CreateMarketArgs,
        primary_oracle: Pubkey,
        fallback_oracle: Option<Pubkey>,
    },
    SetMarketParams {
        market_index: u16,
        /// As on chain, for the report of what changes.
        current: MarketParams,
        params: MarketParams,
        primary_oracle: Pubkey,
        fallback_oracle: Option<Pubkey>,
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
            Step::CreateMarket { args, .. } => {
                let name = String::from_utf8_lossy(&args.name);
                write!(
                    f,
                    "create market {} ({})",
                    args.market_index,
                    name.trim_end_matches('\0')
                )
            }
            Step::SetMarketParams {
                market_index,
                current,
                params,
                ..
            } => {
                write!(f, "update market {market_index}'s parameters: ")?;
                let changes = param_changes(current, params);
                if changes.is_empty() {
                    // Only the oracle accounts the instruction re-checks.
                    return write!(f, "oracle accounts");
                }
                write!(f, "{}", changes.join(", "))
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

/// `field current -> desired` for every parameter that differs.
pub fn param_changes(current: &MarketParams, desired: &MarketParams) -> Vec<String> {
    let mut changes = Vec::new();
    macro_rules! compare {
        ($($field:ident).+) => {
            if current.$($field).+ != desired.$($field).+ {
                changes.push(format!(
                    "{} {:?} -> {:?}",
                    stringify!($($field).+).replace(' ', ""),
                    current.$($field).+,
                    desired.$($field).+
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
    compare!(oracle.primary_kind);
    compare!(oracle.primary_feed);
    compare!(oracle.fallback_kind);
    compare!(oracle.fallback_feed);
    compare!(oracle.max_age_seconds);
    compare!(oracle.max_age_slots);
    compare!(oracle.max_confidence_bps);
    compare!(oracle.max_deviation_bps);
    compare!(oracle.primary_account);
    compare!(oracle.fallback_account);
    changes
}

/// The steps that make the chain match `config`; none when it already does.
pub fn plan(config: &Config, state: &ChainState) -> Result<Vec<Step>, ConfigError> {
    let mut steps = Vec::new();
    let flags = config.pause_flags()?;
    if flags != state.pause_flags {
        steps.push(Step::SetPause { flags });
    }
    for market in &config.markets {
        plan_market(market, state.markets.get(&market.index), &mut steps)?;
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
/// config's order.
fn existing_markets(
    config: &Config,
    state: &ChainState,
) -> Result<Vec<MarketAccounts>, ConfigError> {
    let exchange = pda::exchange();
    let mut markets = Vec::new();
    for market in &config.markets {
        let Some(on_chain) = state.markets.get(&market.index) else {
            continue;
        };
        let (primary_oracle, fallback_oracle) = market
            .oracle_accounts()
            .map_err(|e| ConfigError(format!("market {}.oracle: {e}", market.index)))?;
        markets.push(MarketAccounts {
            market_index: market.index,
            market: pda::market(&exchange, market.index),
            bids: on_chain.bids,
            asks: on_chain.asks,
            event_queue: on_chain.event_queue,
            primary_oracle,
            fallback_oracle,
        });
    }
    Ok(markets)
}

fn plan_market(
    config: &MarketConfig,
    current: Option<&Market>,
    steps: &mut Vec<Step>,
) -> Result<(), ConfigError> {
    let key = |field: &str| format!("market {}{field}", config.index);
    let params = config
        .params()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".oracle"))))?;
    let (primary_oracle, fallback_oracle) = config
        .oracle_accounts()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".oracle"))))?;
    let status = config
        .status()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".status"))))?;
    let name = config
        .name_bytes()
        .map_err(|e| ConfigError(format!("{}: {e}", key(".name"))))?;

    let current_status = match current {
        None => {
            steps.push(Step::CreateMarket {
                args: CreateMarketArgs {
                    market_index: config.index,
                    name,
                    base_decimals: config.base_decimals,
                    base_lot_size: config.base_lot_size,
                    quote_lot_size: config.quote_lot_size,
                    params,
                },
                primary_oracle,
                fallback_oracle,
            });
            MarketStatus::Active
        }
        Some(market) => {
            let fixed = (
                market.name,
                market.base_decimals,
                market.base_lot_size,
                market.quote_lot_size,
            );
            if fixed
                != (
                    name,
                    config.base_decimals,
                    config.base_lot_size,
                    config.quote_lot_size,
                )
            {
                return Err(ConfigError(format!(
                    "{}: name, decimals and lot sizes are fixed at creation and differ on chain",
                    key("")
                )));
            }
            if market.params() != params {
                steps.push(Step::SetMarketParams {
                    market_index: config.index,
                    current: market.params(),
                    params,
                    primary_oracle,
                    fallback_oracle,
                });
            }
            market.status()
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
                market_index: config.index,
                status: MarketStatus::Paused,
            });
        }
        steps.push(Step::SetMarketStatus {
            market_index: config.index,
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
        for market in &config.markets {
            let mut on_chain: Market = bytemuck::Zeroable::zeroed();
            on_chain.name = market.name_bytes().unwrap();
            on_chain.base_decimals = market.base_decimals;
            on_chain.base_lot_size = market.base_lot_size;
            on_chain.quote_lot_size = market.quote_lot_size;
            on_chain.apply_params(&market.params().unwrap());
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
                    if addresses.len() == 6 + 6 * config.markets.len()
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
        assert!(steps.iter().any(|s| matches!(s, Step::CreateMarket { .. })));
        assert!(steps.contains(&Step::CreateLookupTable));
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
    }
}
