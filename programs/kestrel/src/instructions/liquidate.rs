use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use fixed::types::I80F48;

use crate::engine::liquidation::{fewest_lots_reaching, Liquidation};
use crate::engine::risk::HealthKind;
use crate::engine::Side;
use crate::error::{KestrelError, OrOverflow};
use crate::events::Liquidated;
use crate::instructions::shared::{cancel_slot, load_book, transfer_from_vault};
use crate::portfolio::{self, MarketRisk, RemainingAccounts, UnderlyingEntry, UnderlyingPrices};
use crate::state::*;
use crate::units::{BaseLots, NativeUnits, SignedNativeUnits};

/// Permissionless (the keeper's job): liquidates a margin account whose
/// maintenance health is negative, in one market. It settles the position's
/// funding, cancels the account's orders in the market, then moves the
/// fewest lots (at most `max_base_lots`) that bring health at the
/// liquidation-end fraction back to zero to the liquidator's account, at the
/// oracle price worsened by the liquidation fee. The liquidator pays the
/// insurance fund its share of the fee and must meet initial health after.
///
/// Remaining accounts: the health accounts of the liquidatee's other
/// positions, then those of the liquidator's (see `portfolio.rs`; the
/// market's underlying is named, so neither list repeats it).
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
        has_one = underlying @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub bids: AccountLoader<'info, BookSideAccount>,
    #[account(mut)]
    pub asks: AccountLoader<'info, BookSideAccount>,
    /// Read only: its stored price must be fresh (`refresh_underlying`).
    pub underlying: AccountLoader<'info, Underlying>,
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
    let bump = {
        let exchange = accounts.exchange.load()?;
        exchange
            .pause_flags()
            .ensure_running(Operation::Liquidation)?;
        exchange.bump
    };
    let exchange_key = accounts.exchange.key();
    let clock = Clock::get()?;

    let mut market = accounts.market.load_mut()?;
    require!(
        !matches!(
            market.status()?,
            MarketStatus::Closed | MarketStatus::Settled
        ),
        KestrelError::MarketNotTrading
    );
    // The liquidated market's underlying without the feeds' leg: the
    // liquidator takes the position over at the accepted price, the one
    // its liquidation is judged at (`UnderlyingPrices::without_feed`).
    // Every other underlying, read through the retriever, keeps its feeds:
    // there the liquidator is judged as a withdrawal would be, so an
    // account underwater at a feed the limit holds back elsewhere cannot
    // take on this risk. (The liquidatee's checks are maintenance ones,
    // which read no feed.)
    // Boxed: the handler's frame is near its 4 KiB.
    let known = Box::new([UnderlyingEntry {
        key: accounts.underlying.key(),
        prices: UnderlyingPrices::of(
            &*accounts.underlying.load()?,
            clock.unix_timestamp,
            clock.slot,
        )
        .without_feed(),
    }]);
    // Past its expiry a market settles instead.
    require!(
        !market.is_expired(clock.unix_timestamp),
        KestrelError::MarketExpired
    );
    let price = MarketRisk::of(&market, clock.unix_timestamp)?.mark_price(&known[0].prices)?;
    if market.has_expiry() {
        market.capture_settlement(accounts.underlying.load()?.integral(), clock.unix_timestamp)?;
    }
    let market_index = market.market_index;
    let mut liquidatee = accounts.liquidatee.load_mut()?;
    let mut retriever = RemainingAccounts::new(ctx.remaining_accounts.iter(), exchange_key, &clock);
    let mut others = portfolio::from_remaining_accounts(
        &liquidatee,
        Some(market_index),
        &known[..],
        &mut retriever,
    )?;
    let position = liquidatee
        .position(market_index)
        .copied()
        .ok_or(KestrelError::NothingToLiquidate)?;
    others.push(
        &position,
        &MarketRisk::of(&market, clock.unix_timestamp)?,
        &market.risk_array,
    )?;
    require!(
        others.health(liquidatee.collateral, HealthKind::Maintenance)? < 0,
        KestrelError::NotLiquidatable
    );
    // Portfolio mode's requirement need not cover the fee (a hedge's is a
    // fraction of its notional): there the fee is held to the account's
    // equity, so a liquidation never makes it bankrupt.
    let fee_budget = match liquidatee.margin_mode() {
        MarginMode::Portfolio => Some(others.equity(liquidatee.collateral)?),
        MarginMode::Standard => None,
    };
    others.pop()?;

    // Funding first, then the account's orders in this market.
    liquidatee.settle_funding(&mut market)?;
    let orders_cancelled = {
        let mut bids = accounts.bids.load_mut()?;
        let mut asks = accounts.asks.load_mut()?;
        let mut book = load_book(&mut bids, &mut asks)?;
        let owner = accounts.liquidatee.key().to_bytes();
        let mut cancelled = 0u8;
        let slots: Vec<usize> = liquidatee
            .active_orders()
            .filter(|(_, order)| order.market_index == market_index)
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            if cancel_slot(&mut liquidatee, &mut book, &owner, slot)? {
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

    let risk = MarketRisk::of(&market, clock.unix_timestamp)?;
    // The fractions scaled as health scales them, at each size the plan
    // considers (the lift falls with the lots closed).
    let mut plan = Liquidation {
        rest_of_account: others.health(liquidatee.collateral, HealthKind::LiquidationEnd)?,
        position: position.position(),
        price_per_lot: market.price_per_lot(price)?,
        initial_margin_bps: risk.initial_margin_bps,
        maintenance_margin_bps: risk.maintenance_margin_bps,
        margin_terms: known[0].prices.margin,
        base_lot_size: market.base_lot_size,
        fee_bps: market.params.liquidation_fee_bps,
        option_requirement_per_lot: portfolio::option_requirement_per_lot(
            &position,
            &risk,
            &known[0].prices,
            price,
        )?,
    };
    let sizing = Sizing {
        position,
        price,
        collateral: liquidatee.collateral,
        max_base_lots,
    };
    let lots = match portfolio_lots(&mut others, &market, &plan, &sizing)? {
        // No lot of this leg raises health: it hedges the rest of its book,
        // whose other legs may all be hedges too (a perpetual against a
        // future), and something must go for the account to be closed out.
        // The liquidator takes it over whole at the mark, without the fee:
        // the liquidatee's equity does not move (the leg goes for what it
        // is worth), and the discount is earned on the legs that then
        // raise health.
        Some(0) if orders_cancelled == 0 => {
            plan.fee_bps = 0;
            position.base_lots.unsigned_abs().min(max_base_lots)
        }
        Some(lots) => lots,
        None => plan.lots(max_base_lots).or_overflow()?,
    };
    require!(
        lots > 0 || orders_cancelled > 0,
        KestrelError::NothingToLiquidate
    );
    if let Some(budget) = fee_budget {
        plan.fee_bps = plan.fee_bps_within(lots, budget).or_overflow()?;
    }

    let mut quote = 0;
    let mut insurance_fee = 0;
    if lots > 0 {
        quote = plan.quote(lots).or_overflow()?;
        insurance_fee = plan
            .insurance_fee(
                lots,
                u32::from(market.params.liquidation_insurance_share_bps),
            )
            .or_overflow()?;
        // The liquidatee closes: a long sells its lots, a short buys them.
        let liquidatee_side = if position.base_lots > 0 {
            Side::Ask
        } else {
            Side::Bid
        };
        liquidatee.settle_fill(
            &mut market,
            liquidatee_side,
            BaseLots(lots),
            NativeUnits(quote),
            0,
        )?;
        liquidatee.release_position_if_empty(market_index);

        let mut liquidator = accounts.liquidator_account.load_mut()?;
        let opened = liquidator.position(market_index).is_none();
        liquidator.position_or_open(market_index, market.kind()?)?;
        liquidator.settle_fill(
            &mut market,
            liquidatee_side.opposite(),
            BaseLots(lots),
            NativeUnits(quote),
            i64::try_from(insurance_fee).ok().or_overflow()?,
        )?;
        liquidator.release_position_if_empty(market_index);

        let mut liquidator_portfolio = portfolio::from_remaining_accounts(
            &liquidator,
            Some(market_index),
            &known[..],
            &mut retriever,
        )?;
        if let Some(taken) = liquidator.position(market_index) {
            if opened {
                liquidator_portfolio.require_underlyings_within_cap()?;
            }
            liquidator_portfolio.push(
                taken,
                &MarketRisk::of(&market, clock.unix_timestamp)?,
                &market.risk_array,
            )?;
        }
        require!(
            liquidator_portfolio.initial_health(liquidator.collateral)? >= 0,
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
    let lots = i64::try_from(lots).ok().or_overflow()?;
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

/// The liquidatee's position (funding settled, orders in the market
/// cancelled), its mark, collateral, and the most lots the liquidator takes.
struct Sizing {
    position: PerpPosition,
    /// The mark, native quote per native base unit.
    price: I80F48,
    collateral: i64,
    max_base_lots: u64,
}

/// A portfolio-mode account's position on an underlying with a grid is
/// sized against its whole book there: the fewest lots that bring health
/// at the liquidation end to zero, or that raise it most. Zero for a hedge
/// leg, one no lot of which raises health even without the fee (a leg the
/// fee alone keeps from helping is sized without it: the fee is then held
/// to the account's equity). `None` when the standard plan sizes it. Out
/// of line, under six arguments: the probe and its search stay off the
/// handler's frame.
#[inline(never)]
fn portfolio_lots(
    others: &mut portfolio::Portfolio,
    market: &Market,
    plan: &Liquidation,
    sizing: &Sizing,
) -> Result<Option<u64>> {
    let risk = MarketRisk::of(market, others.now)?;
    let Some(probe) = others.scenario_probe(&risk, &market.risk_array, sizing.price)? else {
        return Ok(None);
    };
    let position = sizing.position;
    let health_after = |plan: &Liquidation, lots: u64| -> Option<I80F48> {
        let (after, realized) = if lots == 0 {
            (position.position(), SignedNativeUnits(0))
        } else {
            plan.trade(lots)?
        };
        let candidate = PerpPosition {
            base_lots: after.base_lots.0,
            quote_native: after.quote.0,
            ..position
        };
        probe
            .health(sizing.collateral.checked_add(realized.0)?, &candidate)
            .ok()
    };
    let size = position.base_lots.unsigned_abs().min(sizing.max_base_lots);
    let lots = fewest_lots_reaching(size, |lots| health_after(plan, lots)).or_overflow()?;
    if lots > 0 {
        return Ok(Some(lots));
    }
    let free = Liquidation {
        fee_bps: 0,
        ..*plan
    };
    Ok(Some(
        fewest_lots_reaching(size, |lots| health_after(&free, lots)).or_overflow()?,
    ))
}
