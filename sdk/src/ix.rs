//! Instruction builders. Account lists come from the program's generated
//! `accounts::*` structs, so their order cannot drift from the program's.
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::{AccountMeta, Instruction};
use anchor_lang::{system_program, InstructionData, ToAccountMetas};
use kestrel::instructions::{CreateMarketArgs, CreateUnderlyingArgs, OrderSide, PlaceOrderArgs};
use kestrel::state::{
    FutureParams, MarginAccount, MarginMode, MarketLimits, MarketParams, MarketStatus,
    OptionConfig, OptionParams, OracleConfig, RiskScaling, ScenarioConfig,
};
use kestrel::{accounts, instruction};

use crate::pda;

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: kestrel::ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// Creates the exchange and its vaults; `admin` pays and becomes the admin.
/// `program_data` is [`pda::program_data`] when Kestrel is deployed upgradeable
/// (then `admin` must be its upgrade authority), `None` otherwise.
pub fn init_exchange(
    admin: &Pubkey,
    collateral_mint: &Pubkey,
    program_data: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::InitExchange {
            admin: *admin,
            exchange,
            collateral_mint: *collateral_mint,
            collateral_vault: pda::collateral_vault(&exchange),
            fee_vault: pda::fee_vault(&exchange),
            insurance_vault: pda::insurance_vault(&exchange),
            program: kestrel::ID,
            program_data,
            token_program: anchor_spl::token::ID,
            system_program: system_program::ID,
        },
        instruction::InitExchange {},
    )
}

pub fn propose_admin(admin: &Pubkey, proposed_admin: &Pubkey) -> Instruction {
    build(
        accounts::ProposeAdmin {
            admin: *admin,
            exchange: pda::exchange(),
        },
        instruction::ProposeAdmin {
            proposed_admin: *proposed_admin,
        },
    )
}

pub fn accept_admin(new_admin: &Pubkey) -> Instruction {
    build(
        accounts::AcceptAdmin {
            new_admin: *new_admin,
            exchange: pda::exchange(),
        },
        instruction::AcceptAdmin {},
    )
}

/// `pause_flags` is the complete new bit set (see `PauseFlags`).
pub fn set_pause(admin: &Pubkey, pause_flags: u32) -> Instruction {
    build(
        accounts::SetPause {
            admin: *admin,
            exchange: pda::exchange(),
        },
        instruction::SetPause { pause_flags },
    )
}

pub fn create_margin_account(
    owner: &Pubkey,
    sub_account_index: u16,
    delegate: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::CreateMarginAccount {
            owner: *owner,
            exchange,
            margin_account: pda::margin_account(&exchange, owner, sub_account_index),
            system_program: system_program::ID,
        },
        instruction::CreateMarginAccount {
            sub_account_index,
            delegate,
        },
    )
}

pub fn set_delegate(
    owner: &Pubkey,
    margin_account: &Pubkey,
    delegate: Option<Pubkey>,
) -> Instruction {
    build(
        accounts::SetDelegate {
            owner: *owner,
            margin_account: *margin_account,
        },
        instruction::SetDelegate { delegate },
    )
}

/// `depositor` (owner or delegate) moves `amount` native units from `source`.
pub fn deposit(
    depositor: &Pubkey,
    margin_account: &Pubkey,
    source: &Pubkey,
    amount: u64,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::Deposit {
            depositor: *depositor,
            exchange,
            margin_account: *margin_account,
            collateral_vault: pda::collateral_vault(&exchange),
            source: *source,
            token_program: anchor_spl::token::ID,
        },
        instruction::Deposit { amount },
    )
}

/// Withdraws from an account without positions. With positions open, use
/// [`withdraw_with_health`].
pub fn withdraw(
    owner: &Pubkey,
    margin_account: &Pubkey,
    destination: &Pubkey,
    amount: u64,
) -> Instruction {
    withdraw_with_health(owner, margin_account, destination, amount, Vec::new())
}

/// `health` is [`health_accounts`] of every position (`skip` = `None`).
pub fn withdraw_with_health(
    owner: &Pubkey,
    margin_account: &Pubkey,
    destination: &Pubkey,
    amount: u64,
    health: Vec<AccountMeta>,
) -> Instruction {
    let exchange = pda::exchange();
    with_remaining(
        build(
            accounts::Withdraw {
                owner: *owner,
                exchange,
                margin_account: *margin_account,
                collateral_vault: pda::collateral_vault(&exchange),
                destination: *destination,
                token_program: anchor_spl::token::ID,
            },
            instruction::Withdraw { amount },
        ),
        health,
    )
}

fn with_remaining(mut instruction: Instruction, remaining: Vec<AccountMeta>) -> Instruction {
    instruction.accounts.extend(remaining);
    instruction
}

pub fn close_margin_account(owner: &Pubkey, margin_account: &Pubkey) -> Instruction {
    build(
        accounts::CloseMarginAccount {
            owner: *owner,
            margin_account: *margin_account,
        },
        instruction::CloseMarginAccount {},
    )
}

/// The market accounts a client creates before `create_market`: Kestrel-owned,
/// zeroed, of exactly these sizes (Anchor discriminator included).
pub const BOOK_SIDE_ACCOUNT_LEN: usize = 8 + kestrel::state::BOOK_SIDE_BYTES;
pub const EVENT_QUEUE_ACCOUNT_LEN: usize = 8 + kestrel::state::EVENT_QUEUE_BYTES;

/// An underlying's accounts as instructions name them. The oracle accounts
/// are the client's choice of a current Pyth update account and the
/// Switchboard feed; only `refresh_underlying` reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderlyingAccounts {
    pub underlying: Pubkey,
    pub primary_oracle: Pubkey,
    /// Required exactly when the underlying has a fallback feed.
    pub fallback_oracle: Option<Pubkey>,
}

/// Lists underlying `args.underlying_index`; `fallback_oracle` is required
/// exactly when `args.oracle` names a fallback.
pub fn create_underlying(
    admin: &Pubkey,
    args: CreateUnderlyingArgs,
    primary_oracle: &Pubkey,
    fallback_oracle: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::CreateUnderlying {
            admin: *admin,
            exchange,
            underlying: pda::underlying(&exchange, args.underlying_index),
            primary_oracle: *primary_oracle,
            fallback_oracle,
            system_program: system_program::ID,
        },
        instruction::CreateUnderlying { args },
    )
}

pub fn set_underlying_oracle(
    admin: &Pubkey,
    underlying: &UnderlyingAccounts,
    config: OracleConfig,
) -> Instruction {
    build(
        accounts::SetUnderlyingOracle {
            admin: *admin,
            exchange: pda::exchange(),
            underlying: underlying.underlying,
            primary_oracle: underlying.primary_oracle,
            fallback_oracle: underlying.fallback_oracle,
        },
        instruction::SetUnderlyingOracle { config },
    )
}

/// Permissionless: stores the underlying's newest accepted price. Trading
/// instructions need it fresh; [`crate::client::Chain::refreshed`] prepends
/// it when it is not.
pub fn refresh_underlying(underlying: &UnderlyingAccounts) -> Instruction {
    build(
        accounts::RefreshUnderlying {
            underlying: underlying.underlying,
            primary_oracle: underlying.primary_oracle,
            fallback_oracle: underlying.fallback_oracle,
        },
        instruction::RefreshUnderlying {},
    )
}

/// `create_market`'s and `create_future_market`'s accounts.
fn market_creation(
    admin: &Pubkey,
    market_index: u16,
    bids: &Pubkey,
    asks: &Pubkey,
    event_queue: &Pubkey,
    underlying: &Pubkey,
) -> accounts::CreateMarket {
    let exchange = pda::exchange();
    accounts::CreateMarket {
        admin: *admin,
        exchange,
        market: pda::market(&exchange, market_index),
        bids: *bids,
        asks: *asks,
        event_queue: *event_queue,
        underlying: *underlying,
        system_program: system_program::ID,
    }
}

/// Creates market `args.market_index` on `underlying`.
pub fn create_market(
    admin: &Pubkey,
    args: CreateMarketArgs,
    bids: &Pubkey,
    asks: &Pubkey,
    event_queue: &Pubkey,
    underlying: &Pubkey,
) -> Instruction {
    let index = args.market_index;
    build(
        market_creation(admin, index, bids, asks, event_queue, underlying),
        instruction::CreateMarket { args, future: None },
    )
}

/// Lists dated future `args.market_index` on `underlying`, expiring as
/// `future` says.
pub fn create_future_market(
    admin: &Pubkey,
    args: CreateMarketArgs,
    future: FutureParams,
    bids: &Pubkey,
    asks: &Pubkey,
    event_queue: &Pubkey,
    underlying: &Pubkey,
) -> Instruction {
    let index = args.market_index;
    build(
        market_creation(admin, index, bids, asks, event_queue, underlying),
        instruction::CreateMarket {
            args,
            future: Some(future),
        },
    )
}

/// Lists option `args.market_index` on `underlying` (which needs an
/// implied-volatility input, [`set_option_config`]): expiring and settling
/// as `expiry` says (no basis: its basis fields zero), a call or a put at
/// `option.strike`.
#[allow(clippy::too_many_arguments)]
pub fn create_option_market(
    admin: &Pubkey,
    args: CreateMarketArgs,
    expiry: FutureParams,
    option: OptionParams,
    bids: &Pubkey,
    asks: &Pubkey,
    event_queue: &Pubkey,
    underlying: &Pubkey,
) -> Instruction {
    let index = args.market_index;
    build(
        market_creation(admin, index, bids, asks, event_queue, underlying),
        instruction::CreateOptionMarket {
            args,
            expiry,
            option,
        },
    )
}

/// Sets `underlying`'s option terms: its implied-volatility feed, bounds,
/// rate and short-option margin.
pub fn set_option_config(admin: &Pubkey, underlying: &Pubkey, config: OptionConfig) -> Instruction {
    build(
        accounts::SetOptionConfig {
            admin: *admin,
            exchange: pda::exchange(),
            underlying: *underlying,
        },
        instruction::SetOptionConfig { config },
    )
}

/// Permissionless: stores the newest implied volatility of `underlying`'s
/// feed (`volatility_feed`, its configured Switchboard pull feed).
pub fn refresh_volatility(underlying: &Pubkey, volatility_feed: &Pubkey) -> Instruction {
    build(
        accounts::RefreshVolatility {
            underlying: *underlying,
            volatility_feed: *volatility_feed,
        },
        instruction::RefreshVolatility {},
    )
}

/// Read-only, to simulate: the option `market`'s value and greeks now, as
/// return data ([`kestrel::instructions::OptionValuation`]).
pub fn value_option(market: &Pubkey, underlying: &Pubkey) -> Instruction {
    build(
        accounts::ValueOption {
            market: *market,
            underlying: *underlying,
        },
        instruction::ValueOption {},
    )
}

/// Delists a paused perpetual: it settles at the TWAP of the next
/// `settlement_window_seconds`.
pub fn delist_market(
    admin: &Pubkey,
    market: &Pubkey,
    settlement_window_seconds: u32,
) -> Instruction {
    build(
        accounts::DelistMarket {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
        },
        instruction::DelistMarket {
            settlement_window_seconds,
        },
    )
}

/// Permissionless: samples a dated future's book into its basis.
pub fn update_basis(market: &MarketAccounts) -> Instruction {
    build(
        accounts::UpdateBasis {
            market: market.market,
            bids: market.bids,
            asks: market.asks,
            underlying: market.underlying.underlying,
        },
        instruction::UpdateBasis {},
    )
}

/// Permissionless, from a market's settlement window on until its price is
/// fixed: copies the underlying's price-integral checkpoints for the window
/// into the market (who sends it, and when, decides nothing).
pub fn sample_settlement(market: &MarketAccounts) -> Instruction {
    build(
        accounts::SampleSettlement {
            market: market.market,
            underlying: market.underlying.underlying,
        },
        instruction::SampleSettlement {},
    )
}

/// Permissionless, after expiry: fixes the settlement price (the first call
/// that finds the window's average complete) and settles
/// `margin_account`'s position and orders in `market`.
pub fn settle_expired(market: &MarketAccounts, margin_account: Option<Pubkey>) -> Instruction {
    build(
        accounts::SettleExpired {
            exchange: pda::exchange(),
            market: market.market,
            bids: market.bids,
            asks: market.asks,
            underlying: market.underlying.underlying,
            margin_account,
        },
        instruction::SettleExpired {},
    )
}

pub fn set_market_params(admin: &Pubkey, market: &Pubkey, params: MarketParams) -> Instruction {
    build(
        accounts::SetMarketParams {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
        },
        instruction::SetMarketParams { params },
    )
}

/// `set_market_limits`: the market's open-interest and position caps (zero:
/// none).
pub fn set_market_limits(admin: &Pubkey, market: &Pubkey, limits: MarketLimits) -> Instruction {
    build(
        accounts::SetMarketLimits {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
        },
        instruction::SetMarketLimits { limits },
    )
}

/// `set_risk_scaling`: how the underlying's perpetual and futures margin
/// fractions follow its realized volatility and position size (zeros: not
/// at all).
pub fn set_risk_scaling(admin: &Pubkey, underlying: &Pubkey, scaling: RiskScaling) -> Instruction {
    build(
        accounts::SetRiskScaling {
            admin: *admin,
            exchange: pda::exchange(),
            underlying: *underlying,
        },
        instruction::SetRiskScaling { scaling },
    )
}

/// `set_scenario_margin`: the underlying's portfolio-margin grid,
/// contingencies and risk-array tolerance (scan range 0: none).
pub fn set_scenario_margin(
    admin: &Pubkey,
    underlying: &Pubkey,
    config: ScenarioConfig,
) -> Instruction {
    build(
        accounts::SetScenarioMargin {
            admin: *admin,
            exchange: pda::exchange(),
            underlying: *underlying,
        },
        instruction::SetScenarioMargin { config },
    )
}

/// The owner switches the account's margin mode; `health` is
/// [`health_accounts`] of every position (`skip` = `None`), empty without
/// positions. In portfolio mode, put [`refresh_risk_arrays`] for its
/// option markets first in the transaction.
pub fn set_margin_mode(
    owner: &Pubkey,
    margin_account: &Pubkey,
    mode: MarginMode,
    health: Vec<AccountMeta>,
) -> Instruction {
    with_remaining(
        build(
            accounts::SetMarginMode {
                owner: *owner,
                exchange: pda::exchange(),
                margin_account: *margin_account,
            },
            instruction::SetMarginMode { mode },
        ),
        health,
    )
}

/// Permissionless: recomputes the risk arrays of up to
/// [`kestrel::instructions::MAX_RISK_ARRAYS_PER_REFRESH`] option `markets`
/// of `underlying` at its accepted price now.
pub fn refresh_risk_arrays(underlying: &Pubkey, markets: &[Pubkey]) -> Instruction {
    with_remaining(
        build(
            accounts::RefreshRiskArrays {
                underlying: *underlying,
            },
            instruction::RefreshRiskArrays {},
        ),
        markets
            .iter()
            .map(|market| AccountMeta::new(*market, false))
            .collect(),
    )
}

/// `set_price_limit`: how fast the underlying's accepted price may follow
/// its feeds, basis points of the price a second (0: at once), and how far
/// from the hourly delay price it may go, basis points of it (0: any
/// distance; a held band makes the markets reduce-only and widens).
pub fn set_price_limit(
    admin: &Pubkey,
    underlying: &Pubkey,
    max_move_bps_per_second: u32,
    band_bps: u32,
) -> Instruction {
    build(
        accounts::SetPriceLimit {
            admin: *admin,
            exchange: pda::exchange(),
            underlying: *underlying,
        },
        instruction::SetPriceLimit {
            max_move_bps_per_second,
            band_bps,
        },
    )
}

pub fn set_market_status(admin: &Pubkey, market: &Pubkey, status: MarketStatus) -> Instruction {
    build(
        accounts::SetMarketStatus {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
        },
        instruction::SetMarketStatus { status },
    )
}

/// A market's accounts as instructions name them, with its underlying's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketAccounts {
    pub market_index: u16,
    pub market: Pubkey,
    pub bids: Pubkey,
    pub asks: Pubkey,
    pub event_queue: Pubkey,
    pub underlying: UnderlyingAccounts,
}

/// The health accounts for `account` (the order `kestrel::portfolio`
/// reads): the market of each position in slot order, each followed by the
/// underlying it names unless an earlier one named it, except the market in
/// `skip` (the one the instruction itself names) and its underlying.
/// Panics if `markets` lacks a market the account holds a position in.
pub fn health_accounts(
    account: &MarginAccount,
    skip: Option<u16>,
    markets: &[MarketAccounts],
) -> Vec<AccountMeta> {
    let find = |index: u16| {
        markets
            .iter()
            .find(|m| m.market_index == index)
            .unwrap_or_else(|| panic!("no accounts given for market {index}"))
    };
    let mut seen: Vec<Pubkey> = skip
        .map(find)
        .map(|m| m.underlying.underlying)
        .into_iter()
        .collect();
    let mut metas = Vec::new();
    for (_, position) in account.active_positions() {
        if Some(position.market_index) == skip {
            continue;
        }
        let market = find(position.market_index);
        metas.push(AccountMeta::new_readonly(market.market, false));
        let underlying = market.underlying.underlying;
        if !seen.contains(&underlying) {
            seen.push(underlying);
            metas.push(AccountMeta::new_readonly(underlying, false));
        }
    }
    metas
}

/// Order arguments with the usual defaults: not reduce-only, no expiry,
/// and self-trades decrement the taking order.
pub fn order_args(
    side: kestrel::instructions::OrderSide,
    order_type: kestrel::instructions::OrderType,
    price: u64,
    quantity: u64,
    client_order_id: u64,
) -> kestrel::instructions::PlaceOrderArgs {
    kestrel::instructions::PlaceOrderArgs {
        side,
        order_type,
        price,
        quantity,
        client_order_id,
        reduce_only: false,
        expiry: 0,
        self_trade: kestrel::instructions::SelfTradeBehavior::DecrementTake,
    }
}

/// Places an order; `authority` is the owner or delegate. `health` is
/// [`health_accounts`] skipping this market.
pub fn place_order(
    authority: &Pubkey,
    margin_account: &Pubkey,
    market: &MarketAccounts,
    args: PlaceOrderArgs,
    health: Vec<AccountMeta>,
) -> Instruction {
    with_remaining(
        build(
            accounts::PlaceOrder {
                authority: *authority,
                exchange: pda::exchange(),
                margin_account: *margin_account,
                market: market.market,
                bids: market.bids,
                asks: market.asks,
                event_queue: market.event_queue,
                underlying: market.underlying.underlying,
            },
            instruction::PlaceOrder { args },
        ),
        health,
    )
}

fn cancel_accounts(
    authority: &Pubkey,
    margin_account: &Pubkey,
    market: &MarketAccounts,
) -> accounts::CancelOrder {
    accounts::CancelOrder {
        authority: *authority,
        margin_account: *margin_account,
        market: market.market,
        bids: market.bids,
        asks: market.asks,
    }
}

pub fn cancel_order(
    authority: &Pubkey,
    margin_account: &Pubkey,
    market: &MarketAccounts,
    order_id: u128,
) -> Instruction {
    build(
        cancel_accounts(authority, margin_account, market),
        instruction::CancelOrder { order_id },
    )
}

pub fn cancel_order_by_client_id(
    authority: &Pubkey,
    margin_account: &Pubkey,
    market: &MarketAccounts,
    client_order_id: u64,
) -> Instruction {
    build(
        cancel_accounts(authority, margin_account, market),
        instruction::CancelOrderByClientId { client_order_id },
    )
}

pub fn cancel_all(
    authority: &Pubkey,
    margin_account: &Pubkey,
    market: &MarketAccounts,
    side: Option<OrderSide>,
    limit: u8,
) -> Instruction {
    build(
        cancel_accounts(authority, margin_account, market),
        instruction::CancelAll { side, limit },
    )
}

/// Applies up to `limit` events; `margin_accounts` are the accounts the
/// events name (see [`crate::events::accounts_to_crank`]).
pub fn consume_events(
    market: &MarketAccounts,
    margin_accounts: &[Pubkey],
    reward_account: Option<Pubkey>,
    limit: u16,
) -> Instruction {
    with_remaining(
        build(
            accounts::ConsumeEvents {
                exchange: pda::exchange(),
                market: market.market,
                event_queue: market.event_queue,
                reward_account,
            },
            instruction::ConsumeEvents { limit },
        ),
        margin_accounts
            .iter()
            .map(|key| AccountMeta::new(*key, false))
            .collect(),
    )
}

pub fn sweep_fees(market: &Pubkey) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::SweepFees {
            exchange,
            market: *market,
            collateral_vault: pda::collateral_vault(&exchange),
            fee_vault: pda::fee_vault(&exchange),
            token_program: anchor_spl::token::ID,
        },
        instruction::SweepFees {},
    )
}

/// Permissionless funding crank for one market. No fill may wait in the
/// market's event queue (crank `consume_events` first, in the same
/// transaction); outs do not hold it up.
pub fn update_funding(market: &MarketAccounts) -> Instruction {
    build(
        accounts::UpdateFunding {
            exchange: pda::exchange(),
            market: market.market,
            bids: market.bids,
            asks: market.asks,
            underlying: market.underlying.underlying,
        },
        instruction::UpdateFunding {},
    )
}

/// Permissionless: settles `margin_account`'s funding in `market`.
pub fn settle_funding(market: &Pubkey, margin_account: &Pubkey) -> Instruction {
    build(
        accounts::SettleFunding {
            market: *market,
            margin_account: *margin_account,
        },
        instruction::SettleFunding {},
    )
}

/// Liquidates `liquidatee` in `market` into `liquidator_account`, taking at
/// most `max_base_lots`. `health` is the liquidatee's health accounts
/// (skipping `market`) followed by the liquidator's: see
/// [`liquidation_health_accounts`].
pub fn liquidate(
    liquidator: &Pubkey,
    liquidator_account: &Pubkey,
    liquidatee: &Pubkey,
    market: &MarketAccounts,
    max_base_lots: u64,
    health: Vec<AccountMeta>,
) -> Instruction {
    let exchange = pda::exchange();
    with_remaining(
        build(
            accounts::Liquidate {
                liquidator: *liquidator,
                exchange,
                liquidator_account: *liquidator_account,
                liquidatee: *liquidatee,
                market: market.market,
                bids: market.bids,
                asks: market.asks,
                underlying: market.underlying.underlying,
                collateral_vault: pda::collateral_vault(&exchange),
                insurance_vault: pda::insurance_vault(&exchange),
                token_program: anchor_spl::token::ID,
            },
            instruction::Liquidate { max_base_lots },
        ),
        health,
    )
}

/// The remaining accounts of [`liquidate`]: the liquidatee's other
/// positions, then the liquidator's, each skipping the liquidated market.
/// The liquidator's list is as it will be after the trade: a position in
/// the liquidated market needs no group.
pub fn liquidation_health_accounts(
    liquidatee: &MarginAccount,
    liquidator: &MarginAccount,
    market_index: u16,
    markets: &[MarketAccounts],
) -> Vec<AccountMeta> {
    let mut metas = health_accounts(liquidatee, Some(market_index), markets);
    metas.extend(health_accounts(liquidator, Some(market_index), markets));
    metas
}

/// Permissionless: settles the deficit of a bankrupt `margin_account` in
/// the last market it held a position in.
pub fn settle_bankruptcy(margin_account: &Pubkey, market: &MarketAccounts) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::SettleBankruptcy {
            exchange,
            margin_account: *margin_account,
            market: market.market,
            collateral_vault: pda::collateral_vault(&exchange),
            insurance_vault: pda::insurance_vault(&exchange),
            token_program: anchor_spl::token::ID,
        },
        instruction::SettleBankruptcy {},
    )
}

/// Stakes `amount` from the owner's `source` token account into the
/// insurance fund; the shares are recorded on `margin_account`.
pub fn stake(owner: &Pubkey, margin_account: &Pubkey, source: &Pubkey, amount: u64) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::Stake {
            owner: *owner,
            exchange,
            margin_account: *margin_account,
            source: *source,
            insurance_vault: pda::insurance_vault(&exchange),
            token_program: anchor_spl::token::ID,
        },
        instruction::Stake { amount },
    )
}

pub fn request_unstake(owner: &Pubkey, margin_account: &Pubkey, shares: u64) -> Instruction {
    build(
        accounts::RequestUnstake {
            owner: *owner,
            exchange: pda::exchange(),
            margin_account: *margin_account,
            insurance_vault: pda::insurance_vault(&pda::exchange()),
        },
        instruction::RequestUnstake { shares },
    )
}

/// Redeems the requested shares into `margin_account`'s collateral.
pub fn unstake(owner: &Pubkey, margin_account: &Pubkey) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::Unstake {
            owner: *owner,
            exchange,
            margin_account: *margin_account,
            insurance_vault: pda::insurance_vault(&exchange),
            collateral_vault: pda::collateral_vault(&exchange),
            token_program: anchor_spl::token::ID,
        },
        instruction::Unstake {},
    )
}
