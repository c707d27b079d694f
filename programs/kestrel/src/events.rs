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
pub struct UnderlyingCreated {
    pub underlying: Pubkey,
    pub underlying_index: u16,
    pub name: [u8; 16],
}

#[event]
pub struct UnderlyingOracleSet {
    pub underlying: Pubkey,
}

#[event]
pub struct OptionConfigSet {
    pub underlying: Pubkey,
    pub volatility_feed: Pubkey,
}

#[event]
pub struct MarketDelisted {
    pub market: Pubkey,
    /// When it settles: the end of its settlement window.
    pub expiry: i64,
}

#[event]
pub struct MarketSettled {
    pub market: Pubkey,
    /// The settlement price, native quote per native base (I80F48 bits).
    pub settlement_price_bits: i128,
    /// The checkpoints the average runs between (unix times): the window's
    /// start and its expiry, unless a capture came late or the window ran
    /// on until it was covered.
    pub window_start: i64,
    pub window_end: i64,
    /// Seconds of it a fresh price covered.
    pub covered_seconds: i64,
}

#[event]
pub struct PositionSettled {
    pub market: Pubkey,
    pub margin_account: Pubkey,
    pub base_lots: i64,
    /// What the position was worth at the settlement price (native quote).
    pub value_native: i64,
    pub orders_cancelled: u8,
}

#[event]
pub struct MarketParamsSet {
    pub market: Pubkey,
}

#[event]
pub struct RiskScalingSet {
    pub underlying: Pubkey,
    pub baseline_volatility_bps: u32,
    pub max_scale_bps: u32,
    pub max_scale_change_bps_per_hour: u32,
    pub size_margin_bps: u32,
}

#[event]
pub struct PriceLimitSet {
    pub underlying: Pubkey,
    pub max_move_bps_per_second: u32,
    pub band_bps: u32,
}

#[event]
pub struct MarketLimitsSet {
    pub market: Pubkey,
    pub max_open_interest_lots: u64,
    pub max_position_lots: u64,
}

#[event]
pub struct MarketStatusSet {
    pub market: Pubkey,
    pub previous: u8,
    pub current: u8,
}

#[event]
pub struct FundingUpdated {
    pub market: Pubkey,
    /// I80F48 bits: native quote per base lot longs paid (negative: received).
    pub funding_per_lot_bits: i128,
    pub mark_twap_bits: i128,
    pub oracle_twap_bits: i128,
    pub elapsed_seconds: u64,
}

#[event]
pub struct Liquidated {
    pub market: Pubkey,
    pub liquidatee: Pubkey,
    pub liquidator: Pubkey,
    pub orders_cancelled: u8,
    /// Signed base lots the liquidatee sold (> 0) or bought back (< 0).
    pub base_lots: i64,
    /// Native quote the lots traded for (oracle price less or plus the fee).
    pub quote_native: u64,
    pub insurance_fee_native: u64,
}

#[event]
pub struct BankruptcySettled {
    pub market: Pubkey,
    pub margin_account: Pubkey,
    pub deficit_native: u64,
    pub covered_by_insurance_native: u64,
    /// Spread over the market's open interest through the funding indexes.
    pub socialized_native: u64,
    /// I80F48 bits: what each open lot (long and short) owes for it.
    pub loss_per_lot_bits: i128,
    /// Paid first, out of the insurance fund, by redeeming the bankrupt
    /// account's own shares (included in neither figure above).
    pub covered_by_own_stake_native: u64,
    pub own_shares_redeemed: u64,
    /// Whether this bankruptcy left the fund depleted and ended its epoch
    /// (every share of it retired).
    pub insurance_epoch_ended: bool,
}

#[event]
pub struct Staked {
    pub margin_account: Pubkey,
    pub amount: u64,
    pub shares: u64,
    pub total_shares: u64,
}

#[event]
pub struct UnstakeRequested {
    pub margin_account: Pubkey,
    pub shares: u64,
    pub requested_at: i64,
    /// What the shares are worth now: the most they will redeem.
    pub value_native: u64,
}

#[event]
pub struct Unstaked {
    pub margin_account: Pubkey,
    pub shares: u64,
    pub amount: u64,
    pub total_shares: u64,
}

#[event]
pub struct ScenarioMarginSet {
    pub underlying: Pubkey,
    pub config: crate::state::ScenarioConfig,
}

#[event]
pub struct MarginModeSet {
    pub margin_account: Pubkey,
    /// 0 standard, 1 portfolio.
    pub mode: u8,
}
