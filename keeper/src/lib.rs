//! kestrel-keeper: the jobs an operator runs against a Kestrel deployment.
//!
//! - [`cranks`]: refresh the underlyings' prices, consume events, update
//!   funding (perpetuals) and the basis (dated futures), capture settlement
//!   checkpoints and settle expired markets, liquidate, unwind, settle
//!   bankruptcies; written against [`kestrel_sdk::client::Chain`], so the
//!   same code runs over RPC and on the in-process chain of the tests.
//! - [`daemon`]: `kestrel-keeper run`, the loop over RPC with metrics,
//!   health, backoff and a graceful stop; [`config`] its TOML file.
//! - [`audit`]: the solvency check over fetched accounts.
pub mod audit;
pub mod config;
pub mod cranks;
pub mod daemon;
pub mod metrics;
