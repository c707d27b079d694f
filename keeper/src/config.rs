//! The daemon's TOML configuration. Every error names the key at fault.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kestrel::state::{OracleConfig, OracleKind};
use kestrel_sdk::rpc::{PriorityFee, SendPolicy, MAX_TRANSACTION_COMPUTE_UNITS};
use kestrel_sdk::Pubkey;
use serde::Deserialize;

use crate::cranks::MAX_MAKERS_PER_CRANK;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn at(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {why}"))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// JSON-RPC endpoint, http(s)://.
    pub rpc_url: String,
    /// A Solana keypair file (JSON array of 64 bytes): pays the fees, and
    /// owns the liquidator's margin account.
    pub keypair: PathBuf,
    /// The exchange's address lookup table (what `kestrel-migrations`
    /// created and recorded under `[lookup_table]` in its markets file).
    /// With it every transaction goes out as v0 and names the table's
    /// accounts by index; without it transactions are legacy, and a
    /// liquidation of an account holding many positions may not fit.
    pub lookup_table: Option<String>,
    /// Without it the keeper cranks events and funding and reports
    /// liquidatable accounts, but does not liquidate.
    pub liquidator: Option<LiquidatorConfig>,
    #[serde(default)]
    pub intervals: Intervals,
    #[serde(default)]
    pub transactions: Transactions,
    #[serde(default)]
    pub server: Server,
    #[serde(rename = "market")]
    pub markets: Vec<MarketEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidatorConfig {
    /// The keypair's margin account that takes liquidated positions; it must
    /// exist and hold enough collateral to stay above initial health.
    pub sub_account_index: u16,
    /// Close the positions taken over with reduce-only market orders.
    #[serde(default = "LiquidatorConfig::default_unwind")]
    pub unwind: bool,
    /// The worst price those orders accept, in basis points from the oracle
    /// (the market's price band caps it as well).
    #[serde(default = "LiquidatorConfig::default_unwind_slippage_bps")]
    pub unwind_slippage_bps: u32,
}

impl LiquidatorConfig {
    fn default_unwind() -> bool {
        true
    }

    fn default_unwind_slippage_bps() -> u32 {
        100
    }

    /// The slippage to unwind with, or `None` to hold the positions.
    pub fn unwind_slippage_bps(&self) -> Option<u32> {
        self.unwind.then_some(self.unwind_slippage_bps)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Intervals {
    /// Pause between cycles.
    pub cycle_ms: u64,
    /// update_funding once a market's last update is this old.
    pub funding_seconds: u32,
    /// First wait after a cycle the cluster did not answer; doubles up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            cycle_ms: 1_000,
            funding_seconds: 60,
            backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityFeePolicy {
    None,
    Fixed,
    Recent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Transactions {
    /// none, fixed (`priority_fee_micro_lamports`) or recent (the
    /// `priority_fee_percentile` of recent fees, capped at `priority_fee_micro_lamports`).
    pub priority_fee: PriorityFeePolicy,
    pub priority_fee_micro_lamports: u64,
    pub priority_fee_percentile: u8,
    /// Most compute units one transaction may request.
    pub max_compute_units: u32,
    /// Resends after a send the cluster did not confirm.
    pub retries: u32,
    /// Most events one consume_events call applies.
    pub max_events_per_crank: u16,
    /// Most distinct maker accounts one consume_events transaction names.
    pub max_makers_per_crank: usize,
}

impl Default for Transactions {
    fn default() -> Self {
        Self {
            priority_fee: PriorityFeePolicy::Recent,
            priority_fee_micro_lamports: 100_000,
            priority_fee_percentile: 75,
            max_compute_units: MAX_TRANSACTION_COMPUTE_UNITS,
            retries: 3,
            max_events_per_crank: kestrel::instructions::MAX_EVENTS_PER_CRANK,
            max_makers_per_crank: MAX_MAKERS_PER_CRANK,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Serves /metrics (Prometheus) and /health.
    pub listen: SocketAddr,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketEntry {
    pub index: u16,
    /// The account the primary feed of the market's underlying is read from
    /// (a Pyth PriceUpdateV2 account or the Switchboard pull feed). Optional
    /// where the underlying names it itself: a Switchboard feed is its
    /// account, and a pinned Pyth feed reads its pinned account only; an
    /// unpinned Pyth feed needs it.
    pub primary_oracle: Option<String>,
    /// As `primary_oracle`, for the underlying's fallback feed; given only
    /// when the underlying has one.
    pub fallback_oracle: Option<String>,
}

/// A market entry with its addresses parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketOracles {
    pub index: u16,
    /// `None`: the account the underlying's configuration names.
    pub primary_oracle: Option<Pubkey>,
    pub fallback_oracle: Option<Pubkey>,
}

impl MarketOracles {
    /// The accounts to read the feeds of `oracle` (the market's underlying's
    /// configuration) from: those the entry names, else the ones the
    /// configuration determines. Errors name the key at fault, under
    /// `entry_key` (the entry's own key, e.g. `market[0]`).
    pub fn resolve(
        &self,
        oracle: &OracleConfig,
        entry_key: &str,
    ) -> Result<(Pubkey, Option<Pubkey>), ConfigError> {
        let key = |field: &str| format!("{entry_key}.{field}");
        let primary = resolve_feed(
            &key("primary_oracle"),
            self.primary_oracle,
            oracle.primary_kind,
            &oracle.primary_feed,
            &oracle.primary_account,
        )?;
        let fallback = match (oracle.fallback_kind, self.fallback_oracle) {
            (OracleKind::None, None) => None,
            (OracleKind::None, Some(_)) => {
                return Err(at(
                    &key("fallback_oracle"),
                    "the market's underlying has no fallback feed",
                ))
            }
            (kind, named) => Some(resolve_feed(
                &key("fallback_oracle"),
                named,
                kind,
                &oracle.fallback_feed,
                &oracle.fallback_account,
            )?),
        };
        Ok((primary, fallback))
    }
}

/// The account to read one feed from: `named` when given (and consistent
/// with the feed), else the Switchboard feed itself or the pinned Pyth
/// account.
fn resolve_feed(
    key: &str,
    named: Option<Pubkey>,
    kind: OracleKind,
    feed: &[u8; 32],
    pin: &[u8; 32],
) -> Result<Pubkey, ConfigError> {
    let determined = match kind {
        OracleKind::Switchboard => Some(Pubkey::new_from_array(*feed)),
        OracleKind::Pyth if *pin != [0; 32] => Some(Pubkey::new_from_array(*pin)),
        OracleKind::Pyth | OracleKind::None => None,
    };
    match (named, determined) {
        (Some(named), Some(determined)) if named != determined => Err(at(
            key,
            format!("the market's underlying reads this feed from {determined}, not {named}"),
        )),
        (Some(account), _) | (None, Some(account)) => Ok(account),
        (None, None) => Err(at(
            key,
            "the market's underlying reads an unpinned Pyth feed: name the PriceUpdateV2 account to read",
        )),
    }
}

impl Config {
    /// Parses and validates; errors read `` `key.path`: what is wrong ``.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let why = inner.message().trim().to_string();
            match inner.span() {
                Some(span) => {
                    let line = text[..span.start].lines().count().max(1);
                    at(&key, format!("{why} (line {line})"))
                }
                None => at(&key, why),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.rpc_url.starts_with("http://") || self.rpc_url.starts_with("https://")) {
            return Err(at("rpc_url", "must start with http:// or https://"));
        }
        let i = &self.intervals;
        if i.cycle_ms < 50 {
            return Err(at("intervals.cycle_ms", "must be at least 50"));
        }
        if i.funding_seconds == 0 {
            return Err(at("intervals.funding_seconds", "must be at least 1"));
        }
        if i.backoff_ms == 0 || i.max_backoff_ms < i.backoff_ms {
            return Err(at(
                "intervals.max_backoff_ms",
                "must be at least intervals.backoff_ms, which must be positive",
            ));
        }
        if let Some(l) = &self.liquidator {
            if !(1..=5_000).contains(&l.unwind_slippage_bps) {
                return Err(at(
                    "liquidator.unwind_slippage_bps",
                    "must be between 1 and 5000 (50%)",
                ));
            }
        }
        let t = &self.transactions;
        if !(1_000..=MAX_TRANSACTION_COMPUTE_UNITS).contains(&t.max_compute_units) {
            return Err(at(
                "transactions.max_compute_units",
                format!("must be between 1000 and {MAX_TRANSACTION_COMPUTE_UNITS}"),
            ));
        }
        if t.priority_fee_percentile > 100 {
            return Err(at(
                "transactions.priority_fee_percentile",
                "must be at most 100",
            ));
        }
        if t.max_events_per_crank == 0
            || t.max_events_per_crank > kestrel::instructions::MAX_EVENTS_PER_CRANK
        {
            return Err(at(
                "transactions.max_events_per_crank",
                format!(
                    "must be between 1 and {}",
                    kestrel::instructions::MAX_EVENTS_PER_CRANK
                ),
            ));
        }
        if t.max_makers_per_crank == 0 || t.max_makers_per_crank > MAX_MAKERS_PER_CRANK {
            return Err(at(
                "transactions.max_makers_per_crank",
                format!("must be between 1 and {MAX_MAKERS_PER_CRANK} (what fits one transaction)"),
            ));
        }
        if self.markets.is_empty() {
            return Err(at("market", "list at least one [[market]]"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (n, market) in self.markets.iter().enumerate() {
            if !seen.insert(market.index) {
                return Err(at(
                    &format!("market[{n}].index"),
                    format!("market {} is listed twice", market.index),
                ));
            }
        }
        self.lookup_table_address()?;
        self.market_oracles().map(|_| ())
    }

    /// `lookup_table`, parsed.
    pub fn lookup_table_address(&self) -> Result<Option<Pubkey>, ConfigError> {
        self.lookup_table
            .as_deref()
            .map(|text| {
                text.parse::<Pubkey>()
                    .map_err(|_| at("lookup_table", format!("{text:?} is not a base58 address")))
            })
            .transpose()
    }

    pub fn market_oracles(&self) -> Result<Vec<MarketOracles>, ConfigError> {
        self.markets
            .iter()
            .enumerate()
            .map(|(n, m)| {
                let parse = |key: &str, text: &str| {
                    text.parse::<Pubkey>().map_err(|_| {
                        at(
                            &format!("market[{n}].{key}"),
                            format!("{text:?} is not a base58 address"),
                        )
                    })
                };
                Ok(MarketOracles {
                    index: m.index,
                    primary_oracle: m
                        .primary_oracle
                        .as_deref()
                        .map(|p| parse("primary_oracle", p))
                        .transpose()?,
                    fallback_oracle: m
                        .fallback_oracle
                        .as_deref()
                        .map(|f| parse("fallback_oracle", f))
                        .transpose()?,
                })
            })
            .collect()
    }

    pub fn send_policy(&self) -> SendPolicy {
        let t = &self.transactions;
        SendPolicy {
            priority_fee: match t.priority_fee {
                PriorityFeePolicy::None => PriorityFee::None,
                PriorityFeePolicy::Fixed => PriorityFee::Fixed {
                    micro_lamports: t.priority_fee_micro_lamports,
                },
                PriorityFeePolicy::Recent => PriorityFee::Recent {
                    percentile: t.priority_fee_percentile,
                    max_micro_lamports: t.priority_fee_micro_lamports,
                },
            },
            max_compute_units: t.max_compute_units,
            retries: t.retries,
            backoff: Duration::from_millis(self.intervals.backoff_ms),
        }
    }
}

/// The keypair file `keypair` names.
pub fn read_keypair(path: &std::path::Path) -> Result<solana_sdk::signature::Keypair, ConfigError> {
    kestrel_sdk::rpc::read_keypair(path).map_err(|why| at("keypair", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
rpc_url = "http://127.0.0.1:8899"
keypair = "keeper.json"

[liquidator]
sub_account_index = 0

[intervals]
cycle_ms = 500

[[market]]
index = 0
primary_oracle = "7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE"
fallback_oracle = "GvDMxPzN1sCj7L26YDK2HnMRXEQmQ2aemov8YBtPS7vR"
"#;

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    /// The documented example states every default; it must parse and agree.
    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        let example = Config::parse(include_str!("../keeper.example.toml")).unwrap();
        let defaults = Config::parse(GOOD).unwrap();
        assert_eq!(
            format!("{:?}", example.transactions),
            format!("{:?}", defaults.transactions)
        );
        assert_eq!(
            example.intervals.funding_seconds,
            defaults.intervals.funding_seconds
        );
        assert_eq!(
            example.intervals.max_backoff_ms,
            defaults.intervals.max_backoff_ms
        );
        assert_eq!(example.server.listen, defaults.server.listen);
        assert!(example.lookup_table_address().unwrap().is_some());
        assert_eq!(example.intervals.cycle_ms, 1_000);
        let unwind = |c: &Config| c.liquidator.as_ref().unwrap().unwind_slippage_bps();
        assert_eq!(unwind(&example), unwind(&defaults));
        assert_eq!(unwind(&defaults), Some(100));
    }

    #[test]
    fn the_liquidator_can_hold_what_it_takes_over() {
        let holding = GOOD.replace(
            "sub_account_index = 0",
            "sub_account_index = 0\nunwind = false",
        );
        let config = Config::parse(&holding).unwrap();
        assert_eq!(config.liquidator.unwrap().unwind_slippage_bps(), None);
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let config = Config::parse(GOOD).unwrap();
        assert_eq!(config.intervals.cycle_ms, 500);
        assert_eq!(config.intervals.funding_seconds, 60);
        assert_eq!(
            config.transactions.max_makers_per_crank,
            MAX_MAKERS_PER_CRANK
        );
        assert_eq!(config.market_oracles().unwrap().len(), 1);
        assert_eq!(config.lookup_table_address(), Ok(None));
        let with_table = GOOD.replace(
            "keypair = \"keeper.json\"",
            "keypair = \"keeper.json\"\nlookup_table = \"7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE\"",
        );
        assert!(Config::parse(&with_table)
            .unwrap()
            .lookup_table_address()
            .unwrap()
            .is_some());
        assert!(matches!(
            config.send_policy().priority_fee,
            PriorityFee::Recent { percentile: 75, .. }
        ));
    }

    #[test]
    fn a_wrong_type_names_its_key_and_line() {
        let bad = GOOD.replace("cycle_ms = 500", "cycle_ms = \"fast\"");
        let error = error_of(&bad);
        assert!(error.starts_with("`intervals.cycle_ms`: "), "{error}");
        assert!(error.contains("line 9"), "{error}");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let error = error_of(&GOOD.replace("cycle_ms = 500", "cycle_ms = 500\ncycle_msec = 5"));
        assert!(error.contains("cycle_msec"), "{error}");
        assert!(error.starts_with("`intervals"), "{error}");
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        for (from, to, key) in [
            ("cycle_ms = 500", "cycle_ms = 1", "`intervals.cycle_ms`"),
            ("http://127.0.0.1:8899", "127.0.0.1:8899", "`rpc_url`"),
            (
                "cycle_ms = 500",
                "cycle_ms = 500\n[transactions]\nmax_makers_per_crank = 99",
                "`transactions.max_makers_per_crank`",
            ),
            (
                "primary_oracle = \"7UV",
                "primary_oracle = \"0UV",
                "`market[0].primary_oracle`",
            ),
            ("\nindex = 0", "\nindex = 70000", "`market[0].index`"),
            (
                "keypair = \"keeper.json\"",
                "keypair = \"keeper.json\"\nlookup_table = \"not-an-address\"",
                "`lookup_table`",
            ),
            (
                "sub_account_index = 0",
                "sub_account_index = 0\nunwind_slippage_bps = 0",
                "`liquidator.unwind_slippage_bps`",
            ),
            (
                "sub_account_index = 0",
                "sub_account_index = 0\nunwind_slippage_bps = 5001",
                "`liquidator.unwind_slippage_bps`",
            ),
        ] {
            let error = error_of(&GOOD.replace(from, to));
            assert!(error.starts_with(key), "{key}: {error}");
        }
    }

    #[test]
    fn the_oracle_accounts_may_be_left_to_the_underlying() {
        let bare = GOOD
            .replace(
                "primary_oracle = \"7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE\"\n",
                "",
            )
            .replace(
                "fallback_oracle = \"GvDMxPzN1sCj7L26YDK2HnMRXEQmQ2aemov8YBtPS7vR\"\n",
                "",
            );
        let oracles = Config::parse(&bare).unwrap().market_oracles().unwrap();
        assert_eq!(
            oracles,
            [MarketOracles {
                index: 0,
                primary_oracle: None,
                fallback_oracle: None
            }]
        );
    }

    fn oracle_config() -> OracleConfig {
        OracleConfig {
            primary_kind: OracleKind::Pyth,
            primary_feed: [1; 32],
            fallback_kind: OracleKind::Switchboard,
            fallback_feed: [2; 32],
            max_age_seconds: 60,
            max_age_slots: 0,
            max_confidence_bps: 200,
            max_deviation_bps: 300,
            primary_account: [3; 32],
            fallback_account: [0; 32],
        }
    }

    #[test]
    fn oracle_accounts_come_from_the_entry_or_the_underlying() {
        let entry = |primary: Option<[u8; 32]>, fallback: Option<[u8; 32]>| MarketOracles {
            index: 0,
            primary_oracle: primary.map(Pubkey::new_from_array),
            fallback_oracle: fallback.map(Pubkey::new_from_array),
        };
        let key = Pubkey::new_from_array;
        let pinned = oracle_config();
        // The pinned Pyth account and the Switchboard feed's own account.
        assert_eq!(
            entry(None, None).resolve(&pinned, "m"),
            Ok((key([3; 32]), Some(key([2; 32]))))
        );
        assert_eq!(
            entry(Some([3; 32]), Some([2; 32])).resolve(&pinned, "m"),
            Ok((key([3; 32]), Some(key([2; 32]))))
        );
        let error = entry(Some([4; 32]), None)
            .resolve(&pinned, "m")
            .unwrap_err();
        assert!(error.0.starts_with("`m.primary_oracle`: "), "{error}");
        let error = entry(None, Some([4; 32]))
            .resolve(&pinned, "m")
            .unwrap_err();
        assert!(error.0.starts_with("`m.fallback_oracle`: "), "{error}");
        // An unpinned Pyth feed: any update account of the feed id, named here.
        let mut unpinned = pinned;
        unpinned.primary_account = [0; 32];
        let error = entry(None, None).resolve(&unpinned, "m").unwrap_err();
        assert!(
            error.0.starts_with("`m.primary_oracle`: ") && error.0.contains("unpinned"),
            "{error}"
        );
        assert_eq!(
            entry(Some([5; 32]), None).resolve(&unpinned, "m"),
            Ok((key([5; 32]), Some(key([2; 32]))))
        );
        // No fallback feed: none may be named.
        let mut single = pinned;
        single.fallback_kind = OracleKind::None;
        single.fallback_feed = [0; 32];
        assert_eq!(
            entry(None, None).resolve(&single, "m"),
            Ok((key([3; 32]), None))
        );
        let error = entry(None, Some([2; 32]))
            .resolve(&single, "m")
            .unwrap_err();
        assert!(error.0.starts_with("`m.fallback_oracle`: "), "{error}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let error = error_of(&GOOD.replace("rpc_url = \"http://127.0.0.1:8899\"\n", ""));
        assert!(error.contains("rpc_url"), "{error}");
    }

    #[test]
    fn a_bad_keypair_file_names_the_key() {
        let error = read_keypair(std::path::Path::new("/nonexistent/keeper.json")).unwrap_err();
        assert!(
            error.0.starts_with("`keypair`: /nonexistent/keeper.json"),
            "{error}"
        );
    }
}
