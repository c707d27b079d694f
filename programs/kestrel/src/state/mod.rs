//! Zero-copy account layouts. Each is `#[repr(C)]` Pod with no implicit padding,
//! no 16-byte-aligned fields (see docs/ARCHITECTURE.md) and a const size assertion.
mod exchange;
mod margin_account;
mod market;
mod underlying;

pub use exchange::*;
pub use margin_account::*;
pub use market::*;
pub use underlying::*;
