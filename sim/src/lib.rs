//! kestrel-sim: an in-process Solana chain with the Kestrel program loaded
//! ([`chain::LocalChain`]), the demo that runs on it ([`demo`]), oracle
//! account fixtures ([`fixtures`]) and the migrations applier ([`migrate`]).
pub mod chain;
pub mod demo;
pub mod fixtures;
pub mod migrate;
