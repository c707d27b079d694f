//! Kestrel: an on-chain derivatives exchange for Solana.
//!
//! `#[program]` holds one line per instruction; the accounts and handler of
//! each live in `instructions/<name>.rs`. See docs/ARCHITECTURE.md.
#![allow(unexpected_cfgs)]

use anchor_lang::prelude::*;

pub mod engine;
pub mod entrypoint;
pub mod error;
pub mod events;
pub mod instructions;
pub mod oracle;
pub mod portfolio;
pub mod state;
pub mod units;

use instructions::*;
use state::{
    FutureParams, MarginMode, MarketLimits, MarketParams, MarketStatus, OptionConfig, OptionParams,
    OracleConfig, RiskScaling, ScenarioConfig,
};

declare_id!("3DcoVCeRjDKn2gy4jqTs4FeMezrMJQN3UgbdU8DSxeK1");

#[program]
pub mod kestrel {
    use super::*;

    pub fn init_exchange(ctx: Context<InitExchange>) -> Result<()> {
        instructions::init_exchange(ctx)
    }

    pub fn propose_admin(ctx: Context<ProposeAdmin>, proposed_admin: Pubkey) -> Result<()> {
        instructions::propose_admin(ctx, proposed_admin)
    }

    pub fn accept_admin(ctx: Context<AcceptAdmin>) -> Result<()> {
        instructions::accept_admin(ctx)
    }

    pub fn set_pause(ctx: Context<SetPause>, pause_flags: u32) -> Result<()> {
        instructions::set_pause(ctx, pause_flags)
    }

    pub fn create_margin_account(
        ctx: Context<CreateMarginAccount>,
        sub_account_index: u16,
        delegate: Option<Pubkey>,
    ) -> Result<()> {
        instructions::create_margin_account(ctx, sub_account_index, delegate)
    }

    pub fn set_delegate(ctx: Context<SetDelegate>, delegate: Option<Pubkey>) -> Result<()> {
        instructions::set_delegate(ctx, delegate)
    }

    pub fn deposit(ctx: Context<Deposit>, amount: u64) -> Result<()> {
        instructions::deposit(ctx, amount)
    }

    pub fn withdraw<'info>(ctx: Context<'info, Withdraw<'info>>, amount: u64) -> Result<()> {
        instructions::withdraw(ctx, amount)
    }

    pub fn close_margin_account(ctx: Context<CloseMarginAccount>) -> Result<()> {
        instructions::close_margin_account(ctx)
    }

    pub fn create_market(
        ctx: Context<CreateMarket>,
        args: CreateMarketArgs,
        future: Option<FutureParams>,
    ) -> Result<()> {
        instructions::create_market(ctx, args, future)
    }

    pub fn create_option_market(
        ctx: Context<CreateMarket>,
        args: CreateMarketArgs,
        expiry: FutureParams,
        option: OptionParams,
    ) -> Result<()> {
        instructions::create_option_market(ctx, args, expiry, option)
    }

    pub fn set_option_config(ctx: Context<SetOptionConfig>, config: OptionConfig) -> Result<()> {
        instructions::set_option_config(ctx, config)
    }

    pub fn refresh_volatility(ctx: Context<RefreshVolatility>) -> Result<()> {
        instructions::refresh_volatility(ctx)
    }

    pub fn value_option(ctx: Context<ValueOption>) -> Result<OptionValuation> {
        instructions::value_option(ctx)
    }

    pub fn create_underlying(
        ctx: Context<CreateUnderlying>,
        args: CreateUnderlyingArgs,
    ) -> Result<()> {
        instructions::create_underlying(ctx, args)
    }

    pub fn set_underlying_oracle(
        ctx: Context<SetUnderlyingOracle>,
        config: OracleConfig,
    ) -> Result<()> {
        instructions::set_underlying_oracle(ctx, config)
    }

    pub fn refresh_underlying(ctx: Context<RefreshUnderlying>) -> Result<()> {
        instructions::refresh_underlying(ctx)
    }

    pub fn set_market_params(ctx: Context<SetMarketParams>, params: MarketParams) -> Result<()> {
        instructions::set_market_params(ctx, params)
    }

    pub fn set_market_limits(ctx: Context<SetMarketLimits>, limits: MarketLimits) -> Result<()> {
        instructions::set_market_limits(ctx, limits)
    }

    pub fn set_risk_scaling(ctx: Context<SetRiskScaling>, scaling: RiskScaling) -> Result<()> {
        instructions::set_risk_scaling(ctx, scaling)
    }

    pub fn set_scenario_margin(
        ctx: Context<SetScenarioMargin>,
        config: ScenarioConfig,
    ) -> Result<()> {
        instructions::set_scenario_margin(ctx, config)
    }

    pub fn set_margin_mode<'info>(
        ctx: Context<'info, SetMarginMode<'info>>,
        mode: MarginMode,
    ) -> Result<()> {
        instructions::set_margin_mode(ctx, mode)
    }

    pub fn refresh_risk_arrays<'info>(ctx: Context<'info, RefreshRiskArrays<'info>>) -> Result<()> {
        instructions::refresh_risk_arrays(ctx)
    }

    pub fn set_price_limit(
        ctx: Context<SetPriceLimit>,
        max_move_bps_per_second: u32,
        band_bps: u32,
    ) -> Result<()> {
        instructions::set_price_limit(ctx, max_move_bps_per_second, band_bps)
    }

    pub fn delist_market(ctx: Context<DelistMarket>, settlement_window_seconds: u32) -> Result<()> {
        instructions::delist_market(ctx, settlement_window_seconds)
    }

    pub fn update_basis(ctx: Context<UpdateBasis>) -> Result<()> {
        instructions::update_basis(ctx)
    }

    pub fn sample_settlement(ctx: Context<SampleSettlement>) -> Result<()> {
        instructions::sample_settlement(ctx)
    }

    pub fn settle_expired(ctx: Context<SettleExpired>) -> Result<()> {
        instructions::settle_expired(ctx)
    }

    pub fn set_market_status(ctx: Context<SetMarketStatus>, status: MarketStatus) -> Result<()> {
        instructions::set_market_status(ctx, status)
    }

    pub fn place_order<'info>(
        ctx: Context<'info, PlaceOrder<'info>>,
        args: PlaceOrderArgs,
    ) -> Result<()> {
        instructions::place_order(ctx, args)
    }

    pub fn cancel_order(ctx: Context<CancelOrder>, order_id: u128) -> Result<()> {
        instructions::cancel_order(ctx, order_id)
    }

    pub fn cancel_order_by_client_id(
        ctx: Context<CancelOrder>,
        client_order_id: u64,
    ) -> Result<()> {
        instructions::cancel_order_by_client_id(ctx, client_order_id)
    }

    pub fn cancel_all(ctx: Context<CancelOrder>, side: Option<OrderSide>, limit: u8) -> Result<()> {
        instructions::cancel_all(ctx, side, limit)
    }

    pub fn consume_events<'info>(
        ctx: Context<'info, ConsumeEvents<'info>>,
        limit: u16,
    ) -> Result<()> {
        instructions::consume_events(ctx, limit)
    }

    pub fn sweep_fees(ctx: Context<SweepFees>) -> Result<()> {
        instructions::sweep_fees(ctx)
    }

    pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
        instructions::update_funding(ctx)
    }

    pub fn settle_funding(ctx: Context<SettleFunding>) -> Result<()> {
        instructions::settle_funding(ctx)
    }

    pub fn liquidate<'info>(
        ctx: Context<'info, Liquidate<'info>>,
        max_base_lots: u64,
    ) -> Result<()> {
        instructions::liquidate(ctx, max_base_lots)
    }

    pub fn settle_bankruptcy(ctx: Context<SettleBankruptcy>) -> Result<()> {
        instructions::settle_bankruptcy(ctx)
    }

    pub fn stake(ctx: Context<Stake>, amount: u64) -> Result<()> {
        instructions::stake(ctx, amount)
    }

    pub fn request_unstake(ctx: Context<RequestUnstake>, shares: u64) -> Result<()> {
        instructions::request_unstake(ctx, shares)
    }

    pub fn unstake(ctx: Context<Unstake>) -> Result<()> {
        instructions::unstake(ctx)
    }
}
