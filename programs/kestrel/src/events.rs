//! Events for indexers, emitted with `emit!` (program log data).
use anchor_lang::prelude::*;

#[event]
pub struct ExchangeInitialized {
    pub exchange: Pubkey,
    pub admin: Pubkey,
    pub collateral_mint: Pubkey,
}

#[event]
pub struct AdminProposed {
    pub current_admin: Pubkey,
    pub proposed_admin: Pubkey,
}

#[event]
pub struct AdminAccepted {
    pub previous_admin: Pubkey,
    pub new_admin: Pubkey,
}

#[event]
pub struct PauseFlagsSet {
    pub previous: u32,
    pub current: u32,
}

#[event]
pub struct MarginAccountCreated {
    pub margin_account: Pubkey,
    pub owner: Pubkey,
    pub sub_account_index: u16,
    pub delegate: Pubkey,
}

#[event]
pub struct DelegateSet {
    pub margin_account: Pubkey,
    pub delegate: Pubkey,
}

#[event]
pub struct MarginAccountClosed {
    pub margin_account: Pubkey,
    pub owner: Pubkey,
}

#[event]
pub struct Deposited {
    pub margin_account: Pubkey,
    pub depositor: Pubkey,
    pub amount: u64,
    pub collateral_after: i64,
}

#[event]
pub struct Withdrawn {
    pub margin_account: Pubkey,
    pub owner: Pubkey,
    pub amount: u64,
    pub collateral_after: i64,
}

#[event]
pub struct MarketCreated {
    pub market: Pubkey,
    pub market_index: u16,
    pub name: [u8; 16],
}

#[event]
pub struct MarketParamsSet {
    pub market: Pubkey,
}

#[event]
pub struct MarketStatusSet {
    pub market: Pubkey,
    pub previous: u8,
    pub current: u8,
}
