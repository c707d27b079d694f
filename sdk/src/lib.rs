//! kestrel-sdk: what a bot or keeper needs to talk to the Kestrel program.
//!
//! - [`pda`]: every program-derived address, from the program's own seeds.
//! - [`ix`]: one builder per instruction, accounts in the order the program expects.
//! - [`decode`]: zero-copy account decoders over fetched bytes.
//! - [`book`]: L2 and L3 views of a market's book.
//! - [`events`]: a market's pending events and the accounts the crank needs.
//! - [`health`]: the program's health code on fetched accounts (a preview).
//! - [`options`]: option chains, an account's greeks and `value_option`'s
//!   result, with the program's own pricing.
//! - [`errors`]: the name behind a failed instruction's error code.
//! - [`client`]: the [`client::Chain`] interface (fetch a market with its book
//!   and queue in one request, scan margin accounts, send); [`rpc`] implements
//!   it over JSON-RPC with priority fees and retries.
//! - [`lookup_table`]: the exchange's address lookup table (create, extend,
//!   decode) for v0 transactions; [`tx`]: compute-budget instructions,
//!   legacy and v0 compilation, wire sizes against the 1,232-byte limit.
pub mod book;
pub mod client;
pub mod decode;
pub mod errors;
pub mod events;
pub mod health;
pub mod ix;
pub mod lookup_table;
pub mod options;
pub mod pda;
pub mod rpc;
pub mod tx;

pub use anchor_lang::prelude::Pubkey;
pub use kestrel::{
    error::KestrelError,
    state::{
        Exchange, MarginAccount, Market, MarketParams, MarketStatus, Operation, OracleConfig,
        OracleKind, PauseFlags,
    },
    ID as PROGRAM_ID,
};
