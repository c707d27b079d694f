//! From desired (config) and current (decoded chain) state to the steps
//! between them.
use std::collections::BTreeMap;

use kestrel::instructions::CreateMarketArgs;
use kestrel::state::{Market, MarketParams, MarketStatus, PauseFlags};
use kestrel_sdk::Pubkey;

use crate::config::{Config, ConfigError, MarketConfig};

/// What exists on chain, as far as the migrations care.
#[derive(Clone, Default)]
pub struct ChainState {
    pub pause_flags: u32,
    /// The markets of the config's indices that exist.
    pub markets: BTreeMap<u16, Market>,
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
    Ok(steps)
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
            state.markets.insert(market.index, on_chain);
        }
        state
    }

    #[test]
    fn an_empty_chain_gets_every_market_and_a_matching_one_nothing() {
        let config = Config::parse(CONFIG).unwrap();
        let steps = plan(&config, &ChainState::default()).unwrap();
        assert!(steps.iter().any(|s| matches!(s, Step::CreateMarket { .. })));
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
