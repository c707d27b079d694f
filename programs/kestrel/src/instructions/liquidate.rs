use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::liquidation::Liquidation;
use crate::engine::risk::HealthKind;
use crate::error::KestrelError;
use crate::events::Liquidated;
use crate::health;
use crate::instructions::cancel_order::{cancel_slot, load_book};
use crate::oracle;
use crate::state::*;
use crate::units::{BaseLots, NativeUnits};

/// Permissionless (the keeper's job): liquidates a margin account whose
/// maintenance health is negative, in one market. It settles the position's
/// funding, cancels the account's orders in the market, then moves the
/// fewest lots (at most `max_base_lots`) that bring health at the
/// liquidation-end fraction back to zero to the liquidator's account, at the
/// oracle price worsened by the liquidation fee. The liquidator pays the
/// insurance fund its share of the fee and must meet initial health after.
///
/// Remaining accounts: the health accounts of the liquidatee's other
/// positions, then those of the liquidator's (see `health.rs`).
#[derive(Accounts)]
pub struct Liquidate<'info> {
    /// The liquidator account's owner or delegate.
    pub liquidator: Signer<'info>,
    #[account(
        has_one = collateral_vault @ KestrelError::WrongVault,
        has_one = insurance_vault @ KestrelError::WrongVault,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub liquidator_account: AccountLoader<'info, MarginAccount>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub liquidatee: AccountLoader<'info, MarginAccount>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = bids @ KestrelError::WrongMarketAccounts,
        has_one = asks @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub bids: AccountLoader<'info, BookSideAccount>,
    #[account(mut)]
    pub asks: AccountLoader<'info, BookSideAccount>,
    /// CHECK: checked by `oracle::market_price` against the market's config.
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required when the market has a fallback.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
    #[account(mut)]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(mut)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

#[inline(never)]
pub fn liquidate<'info>(ctx: Context<'info, Liquidate<'info>>, max_base_lots: u64) -> Result<()> {
    let accounts = &ctx.accounts;
    require_keys_neq!(
        accounts.liquidator_account.key(),
        accounts.liquidatee.key(),
        KestrelError::CannotLiquidateSelf
    );
    {
        let liquidator = accounts.liquidator_account.load()?;
        require!(
            liquidator.is_owner_or_delegate(&accounts.liquidator.key()),
            KestrelError::NotOwnerOrDelegate
        );
        // Another sub-account of the same owner would hand the owner back
        // most of its own liquidation fee.
        require_keys_neq!(
            liquidator.owner,
            accounts.liquidatee.load()?.owner,
            KestrelError::CannotLiquidateSelf
        );
    }
    let (bump, quote_decimals) = {
        let exchange = accounts.exchange.load()?;
        exchange
            .pause_flags()
            .ensure_running(Operation::Liquidation)?;
        (exchange.bump, exchange.collateral_decimals)
    };
    let exchange_key = accounts.exchange.key();
    let clock = Clock::get()?;
    let overflow = || error!(KestrelError::MathOverflow);

    let mut market = accounts.market.load_mut()?;
    require!(
        market.status() != MarketStatus::Closed,
        KestrelError::MarketNotTrading
    );
    let reading = oracle::market_price(
        &market,
        quote_decimals,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
        &clock,
    )?;
    market.prices = reading.records;
    let price = reading.price()?;
    let market_index = market.market_index;
    let mut liquidatee = accounts.liquidatee.load_mut()?;
    let mut remaining = ctx.remaining_accounts.iter();
    let mut exposures = health::other_exposures(
        &liquidatee,
        Some(market_index),
        &exchange_key,
        quote_decimals,
        &mut remaining,
        &clock,
    )?;
    let others = exposures.len();
    let position = liquidatee
        .position(market_index)
        .copied()
        .ok_or(KestrelError::NothingToLiquidate)?;
    exposures.push(health::exposure(&position, &market, price)?);
    require!(
        health::health(liquidatee.collateral, &exposures, HealthKind::Maintenance)? < 0,
        KestrelError::NotLiquidatable
    );
    exposures.truncate(others);

    // Funding first, then the account's orders in this market.
    liquidatee.settle_funding(&mut market)?;
    let orders_cancelled = {
        let mut bids = accounts.bids.load_mut()?;
        let mut asks = accounts.asks.load_mut()?;
        let mut book = load_book(&mut bids, &mut asks)?;
        let owner = accounts.liquidatee.key().to_bytes();
        let mut cancelled = 0u8;
        for slot in 0..MAX_OPEN_ORDERS {
            let order = liquidatee.open_orders[slot];
            if order.in_use != 0
                && order.market_index == market_index
                && cancel_slot(&mut liquidatee, &mut book, &owner, slot)?
            {
                cancelled += 1;
            }
        }
        cancelled
    };
    let position = liquidatee
        .position(market_index)
        .copied()
        .unwrap_or_default();
    // Fills or outs still in the queue would change the position later.
    require!(
        position.bids_base_lots == 0 && position.asks_base_lots == 0,
        KestrelError::CrankRequired
    );

    let plan = Liquidation {
        rest_of_account: health::health(
            liquidatee.collateral,
            &exposures,
            HealthKind::LiquidationEnd,
        )?,
        position: position.position(),
        price_per_lot: market.price_per_lot(price)?,
        initial_margin_bps: market.initial_margin_bps,
        maintenance_margin_bps: market.maintenance_margin_bps,
        fee_bps: market.liquidation_fee_bps,
    };
    let lots = plan.lots(max_base_lots).ok_or_else(overflow)?;
    require!(
        lots > 0 || orders_cancelled > 0,
        KestrelError::NothingToLiquidate
    );

    let mut quote = 0;
    let mut insurance_fee = 0;
    if lots > 0 {
        quote = plan.quote(lots).ok_or_else(overflow)?;
        insurance_fee = plan
            .insurance_fee(lots, market.liquidation_insurance_share_bps)
            .ok_or_else(overflow)?;
        let liquidatee_sells = position.base_lots > 0;
        liquidatee.settle_fill(
            &mut market,
            !liquidatee_sells,
            BaseLots(lots),
            NativeUnits(quote),
            0,
        )?;
        liquidatee.release_position_if_empty(market_index);

        let mut liquidator = accounts.liquidator_account.load_mut()?;
        liquidator.position_or_open(market_index)?;
        liquidator.settle_fill(
            &mut market,
            liquidatee_sells,
            BaseLots(lots),
            NativeUnits(quote),
            i64::try_from(insurance_fee).map_err(|_| overflow())?,
        )?;
        liquidator.release_position_if_empty(market_index);

        let mut liquidator_exposures = health::other_exposures(
            &liquidator,
            Some(market_index),
            &exchange_key,
            quote_decimals,
            &mut remaining,
            &clock,
        )?;
        if let Some(taken) = liquidator.position(market_index) {
            liquidator_exposures.push(health::exposure(taken, &market, price)?);
        }
        require!(
            health::initial_health(liquidator.collateral, &liquidator_exposures)? >= 0,
            KestrelError::InsufficientHealth
        );
    }
    drop(liquidatee);
    drop(market);

    if insurance_fee > 0 {
        transfer_from_vault(
            &accounts.token_program,
            &accounts.exchange.to_account_info(),
            bump,
            &accounts.collateral_vault,
            &accounts.insurance_vault,
            insurance_fee,
        )?;
    }
    let lots = i64::try_from(lots).map_err(|_| overflow())?;
    emit!(Liquidated {
        market: accounts.market.key(),
        liquidatee: accounts.liquidatee.key(),
        liquidator: accounts.liquidator_account.key(),
        orders_cancelled,
        base_lots: if position.base_lots > 0 { lots } else { -lots },
        quote_native: quote,
        insurance_fee_native: insurance_fee,
    });
    Ok(())
}
