//! Pure exchange logic: no Anchor or Solana types, so it runs the same in the
//! program, the SDK, the keeper, tests, benchmarks and fuzzers.
//!
//! The order book is zero-copy over byte slabs (account data, after Anchor's
//! discriminator): [`BookSide`] and [`EventQueue`] are views over `&mut [u8]`.
pub mod black_scholes;
pub mod book_side;
pub mod error;
pub mod event_queue;
pub mod fastdiv;
pub mod fastmul;
pub mod fixed_math;
pub mod funding;
pub mod future;
pub mod insurance;
pub mod liquidation;
pub mod margin_scaling;
pub mod matching;
pub mod node;
pub mod option_margin;
pub mod perp;
pub mod price_integral;
pub mod price_limit;
pub mod realized_volatility;
pub mod risk;
pub mod scenario_margin;
pub mod stable_price;

/// The reference model and the differential harness (tests and fuzzing).
#[cfg(any(test, feature = "reference-model"))]
pub mod model;
#[cfg(test)]
mod proptests;

pub use book_side::BookSide;

/// Orders each side of a market's book holds.
pub const BOOK_SIDE_ORDERS: usize = 1024;
/// Events a market's queue holds before takers must wait for the crank.
pub const EVENT_QUEUE_EVENTS: usize = 512;

// Account sizes (plus Anchor's 8-byte discriminator), pinned.
const _: () = assert!(BookSide::byte_len(BOOK_SIDE_ORDERS) == 180_288);
const _: () = assert!(EventQueue::byte_len(EVENT_QUEUE_EVENTS) == 73_792);
pub use error::EngineError;
pub use event_queue::{AnyEvent, EventQueue, EventType, FillEvent, OutEvent, OutReason};
pub use matching::{NewOrder, OrderType, Orderbook, PlaceResult, SelfTradeBehavior};
pub use node::{order_key, LeafNode, Owner, Side};
