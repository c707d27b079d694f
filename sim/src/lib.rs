//! kestrel-sim: an in-process Solana chain with the Kestrel program loaded
//! ([`chain::LocalChain`]), the demo that runs on it ([`demo`]), oracle
//! account fixtures ([`fixtures`]). `LocalChain` implements
//! [`kestrel_sdk::client::Chain`], so the SDK, the keeper's crankers and the
//! migrations applier run on it exactly as they run over RPC.
pub mod chain;
pub mod demo;
pub mod fixtures;
