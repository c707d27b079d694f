//! kestrel-sim: an in-process Solana chain with the Kestrel program loaded
//! ([`chain::LocalChain`]), and the demo that runs on it ([`demo`]).
pub mod chain;
pub mod demo;
