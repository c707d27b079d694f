//! Config-driven, idempotent setup of a Kestrel exchange and its markets.
//!
//! A TOML file (see `markets.toml`) says what should exist: pause flags,
//! underlyings with their oracle feeds (and option terms), and markets on
//! them (perpetuals, dated futures and series of European options) with
//! their parameters and status. A future's terms (its
//! [`expiry`] and settlement window) are fixed at listing: a file that
//! differs from the chain there is an error naming the key, not a step.
//! [`plan`] compares
//! it with the decoded on-chain state and lists the steps that close the gap;
//! applied twice, the second plan is empty. [`apply`] carries a plan out on
//! any [`kestrel_sdk::client::Chain`]: a cluster over RPC (the
//! `kestrel-migrations` command) or the in-process chain.
//!
//! With a `[lookup_table]` section it also keeps the exchange's address
//! lookup table (the keeper's v0 transactions): created when the section has
//! no `address` (the command then writes the new address into the file),
//! extended with whatever it lacks of the exchange's, markets' and their
//! underlyings' accounts.
pub mod apply;
pub mod config;
pub mod expiry;
pub mod plan;
pub mod series;

pub use apply::{apply, chain_state, plan_for};
pub use config::{
    record_lookup_table, Config, ConfigError, Expiry, FutureConfig, LookupTableConfig,
    MarketConfig, UnderlyingConfig,
};
pub use plan::{existing_markets, plan, plan_lookup_table, ChainState, Step};
