//! Config-driven, idempotent setup of a Kestrel exchange and its markets.
//!
//! A TOML file (see `localnet.toml`) says what should exist: pause flags and
//! markets with their parameters, oracle feeds and status. [`plan`] compares
//! it with the decoded on-chain state and lists the steps that close the gap;
//! applied twice, the second plan is empty. Applying is the caller's (the
//! in-process chain in kestrel-sim; over RPC with the keeper's issue).
pub mod config;
pub mod plan;

pub use config::{Config, ConfigError};
pub use plan::{plan, ChainState, Step};
