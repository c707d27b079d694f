//! One file per instruction: its `Accounts` struct and its handler.
pub mod accept_admin;
pub mod close_margin_account;
pub mod create_margin_account;
pub mod create_market;
pub mod deposit;
pub mod init_exchange;
pub mod propose_admin;
pub mod set_delegate;
pub mod set_market_params;
pub mod set_market_status;
pub mod set_pause;
pub mod withdraw;

pub use accept_admin::*;
pub use close_margin_account::*;
pub use create_margin_account::*;
pub use create_market::*;
pub use deposit::*;
pub use init_exchange::*;
pub use propose_admin::*;
pub use set_delegate::*;
pub use set_market_params::*;
pub use set_market_status::*;
pub use set_pause::*;
pub use withdraw::*;
