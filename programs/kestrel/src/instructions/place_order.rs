use anchor_lang::prelude::*;

use crate::engine::event_queue::Event;
use crate::engine::perp;
use crate::engine::risk::HealthKind;
use crate::engine::{self, EventQueue, NewOrder, Orderbook, Side};
use crate::error::{KestrelError, OrOverflow};
use crate::portfolio::{
    self, MarkRule, MarketRisk, OptionTerms, RemainingAccounts, ScenarioTerms, UnderlyingEntry,
    UnderlyingPrices,
};
use crate::state::*;
use crate::units::{BaseLots, Ticks};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSide {
    Bid,
    Ask,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    /// Takes what crosses, rests the rest.
    Limit,
    /// Rests in full or is refused.
    PostOnly,
    /// Rests in full, re-priced one tick inside the book if it would take.
    PostOnlySlide,
    /// Takes what crosses, cancels the rest.
    ImmediateOrCancel,
    /// Takes all of it or is refused.
    FillOrKill,
    /// Takes what crosses up to `price` (clamped to the oracle band), cancels the rest.
    Market,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTradeBehavior {
    DecrementTake,
    CancelProvide,
    AbortTransaction,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaceOrderArgs {
    pub side: OrderSide,
    pub order_type: OrderType,
    /// Limit price in ticks (quote lots per base lot); the worst price for `Market`.
    pub price: u64,
    /// Base lots.
    pub quantity: u64,
    pub client_order_id: u64,
    /// Only shrink the position: the quantity is cut to what does.
    pub reduce_only: bool,
    /// Unix seconds after which a resting order stops trading; 0 = never.
    pub expiry: u64,
    pub self_trade: SelfTradeBehavior,
}

impl From<OrderSide> for Side {
    fn from(side: OrderSide) -> Self {
        match side {
            OrderSide::Bid => Side::Bid,
            OrderSide::Ask => Side::Ask,
        }
    }
}

impl From<OrderType> for engine::OrderType {
    fn from(order_type: OrderType) -> Self {
        match order_type {
            OrderType::Limit => Self::Limit,
            OrderType::PostOnly => Self::PostOnly,
            OrderType::PostOnlySlide => Self::PostOnlySlide,
            OrderType::ImmediateOrCancel => Self::ImmediateOrCancel,
            OrderType::FillOrKill => Self::FillOrKill,
            OrderType::Market => Self::Market,
        }
    }
}

impl From<SelfTradeBehavior> for engine::SelfTradeBehavior {
    fn from(behavior: SelfTradeBehavior) -> Self {
        match behavior {
            SelfTradeBehavior::DecrementTake => Self::DecrementTake,
            SelfTradeBehavior::CancelProvide => Self::CancelProvide,
            SelfTradeBehavior::AbortTransaction => Self::AbortTransaction,
        }
    }
}

/// Places an order for the margin account's owner or delegate. The taker side
/// settles here; makers settle when `consume_events` applies their fills.
/// Remaining accounts: the health accounts of the account's other positions
/// (see `portfolio.rs`; the market's underlying is named, so not repeated).
#[derive(Accounts)]
pub struct PlaceOrder<'info> {
    /// The margin account's owner or delegate.
    pub authority: Signer<'info>,
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    /// Its book, queue and underlying are the ones named below (one check,
    /// one load: `Market::owns`).
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        constraint = market.load()?.owns(
            &bids.key(),
            &asks.key(),
            &event_queue.key(),
            &underlying.key(),
        ) @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub bids: AccountLoader<'info, BookSideAccount>,
    #[account(mut)]
    pub asks: AccountLoader<'info, BookSideAccount>,
    #[account(mut)]
    pub event_queue: AccountLoader<'info, EventQueueAccount>,
    /// Read only: its stored price must be fresh (`refresh_underlying`).
    pub underlying: AccountLoader<'info, Underlying>,
}

/// What the order is priced against: the underlying's price now (none when
/// it has no current one, which only a reduce-only order may trade
/// through), and the bands around the market's mark in ticks.
struct Pricing {
    now: i64,
    price: Option<fixed::types::I80F48>,
    known: [UnderlyingEntry; 1],
    ticks: fixed::types::I80F48,
    band: perp::PriceBand,
    resting: perp::PriceBand,
}

/// The order as the engine will take it: side, type, quantity (cut for
/// reduce-only) and limit (clamped into the bands).
struct Clamped {
    side: Side,
    order_type: engine::OrderType,
    quantity: u64,
    limit: Ticks,
    /// Where fills may happen.
    band: perp::PriceBand,
    /// Unix time, for the engine's order expiries.
    now: u64,
}

/// What the engine did, and the open-order slot a rest takes.
struct Placed {
    result: engine::PlaceResult,
    slot: Option<u8>,
    fills: u32,
    rebates: u64,
}

#[inline(never)]
pub fn place_order<'info>(
    ctx: Context<'info, PlaceOrder<'info>>,
    args: PlaceOrderArgs,
) -> Result<()> {
    require!(
        args.price > 0 && args.quantity > 0,
        KestrelError::InvalidOrder
    );
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut account = accounts.margin_account.load_mut()?;
    let mut market = accounts.market.load_mut()?;
    gate(accounts, &account, &market, &args, clock.unix_timestamp)?;
    let pricing = price(&accounts.underlying, &market, &args, &clock)?;
    let portfolio_mode = account.margin_mode() == MarginMode::Portfolio;
    if pricing.price.is_none() && portfolio_mode {
        // Portfolio health needs the price a reduce-only order may
        // otherwise go without (see the check below): refused by the
        // reason it is missing, as any other order is.
        let prices = &pricing.known[0].prices;
        prices.current?;
        prices.options.volatility?;
        return err!(KestrelError::Unreachable);
    }
    // The account's other positions, valued once for both health checks.
    let mut others = match pricing.price {
        Some(_) => portfolio::from_remaining_accounts(
            &account,
            Some(market.market_index),
            &pricing.known,
            &mut RemainingAccounts::new(
                ctx.remaining_accounts.iter(),
                accounts.exchange.key(),
                &clock,
            ),
        )?,
        None => Box::new(portfolio::Portfolio::new(
            &pricing.known,
            clock.unix_timestamp,
            account.margin_mode(),
        )),
    };
    let had_position = account.position(market.market_index).is_some();
    let before = account
        .position(market.market_index)
        .copied()
        .unwrap_or_default();
    let collateral_before = account.collateral;
    let open_interest_before = market.long_lots.max(market.short_lots);
    let clamped = clamp(&account, &before, &market, &args, &pricing, &mut others)?;
    let placed = match_order(accounts, &account, &mut market, &args, &clamped)?;
    settle_taker(&mut account, &mut market, &args, &clamped, &placed)?;
    if market.has_expiry() {
        // A dated future's settlement window: copy the underlying's checkpoints.
        market.capture_settlement(accounts.underlying.load()?.integral(), clock.unix_timestamp)?;
    }
    if !args.reduce_only {
        if market.limits.any() {
            check_limits(&account, &market, open_interest_before, &before)?;
        }
        let opened = !had_position && account.position(market.market_index).is_some();
        if opened {
            others.require_underlyings_within_cap()?;
        }
        check_health(&account, &market, &mut others, &before, collateral_before)?;
    } else if portfolio_mode {
        // A smaller position can need more margin in portfolio mode: closing
        // one leg of a hedge leaves the other naked. Reduce-only orders are
        // checked as any other there (an account below initial health may
        // still reduce while its health does not fall).
        check_health(&account, &market, &mut others, &before, collateral_before)?;
    }
    Ok(())
}

/// The gate: trading not paused, the signer the account's owner or
/// delegate, a market that trades (reduce-only orders only when it is
/// reduce-only) and has not expired.
#[inline(never)]
fn gate(
    accounts: &PlaceOrder,
    account: &MarginAccount,
    market: &Market,
    args: &PlaceOrderArgs,
    now: i64,
) -> Result<()> {
    accounts
        .exchange
        .load()?
        .pause_flags()
        .ensure_running(Operation::Trading)?;
    require!(
        account.is_owner_or_delegate(&accounts.authority.key()),
        KestrelError::NotOwnerOrDelegate
    );
    match market.status()? {
        MarketStatus::Active => {}
        MarketStatus::ReduceOnly => require!(args.reduce_only, KestrelError::MarketReduceOnly),
        MarketStatus::Paused | MarketStatus::Closed | MarketStatus::Settled => {
            return err!(KestrelError::MarketNotTrading)
        }
    }
    require!(!market.is_expired(now), KestrelError::MarketExpired);
    Ok(())
}

/// The price and the bands. While the underlying's price band holds, only
/// reduce-only orders trade. With no current price the market is
/// reduce-only for this instruction (a new-risk order is refused with the
/// oracle's own error), and its orders band around the last good price
/// while that is recent; with none, nothing trades (cancels always work).
/// An option's implied volatility is read the same way. Orders band around
/// the market's mark: the underlying's price, plus a dated future's basis;
/// an option's model value, its bands widened by a share of the spot.
#[inline(never)]
fn price(
    underlying: &AccountLoader<Underlying>,
    market: &Market,
    args: &PlaceOrderArgs,
    clock: &Clock,
) -> Result<Pricing> {
    let now = clock.unix_timestamp;
    let (reading, max_age_seconds, options, band_options, stable, feed, margin, scenario) = {
        let underlying = underlying.load()?;
        // A held price band halts new risk on the underlying
        // (`engine::price_limit`): its price is known to lag the feeds.
        require!(
            args.reduce_only || !underlying.price_limit().is_held(),
            KestrelError::PriceBandHeld
        );
        let options = OptionTerms::current(&underlying, now);
        let band_options = if options.volatility.is_err() && args.reduce_only {
            OptionTerms::of(
                &underlying.volatility,
                underlying.volatility.band_volatility(now),
            )
        } else {
            options
        };
        (
            underlying.trading_price(now, clock.slot),
            underlying.oracle.max_age_seconds,
            options,
            band_options,
            underlying.stable_price().price(),
            underlying.price_limit().lagging_feed(),
            underlying.margin_terms(),
            ScenarioTerms::of(&underlying),
        )
    };
    let rule = MarkRule::of(market, now)?;
    // An option without a current volatility cannot be valued: as without
    // a current price, only a reduce-only order trades.
    let current = match (&rule, options.volatility) {
        (MarkRule::Option(_), Err(error)) => {
            reading.current.map_err(KestrelError::from).and(Err(error))
        }
        _ => reading.current.map_err(KestrelError::from),
    };
    let price = match current {
        Ok(price) => Some(price),
        Err(error) if !args.reduce_only => return Err(error.into()),
        Err(_) => None,
    };
    let band_price = reading
        .band_price(now, max_age_seconds)
        .ok_or(KestrelError::OracleStale)?;
    let mark = rule.apply(band_price, &band_options)?;
    let ticks = market.oracle_ticks(mark).or_overflow()?;
    let (band, resting) = market.bands(ticks, band_price).or_overflow()?;
    Ok(Pricing {
        now,
        price,
        known: [UnderlyingEntry {
            key: market.underlying,
            prices: UnderlyingPrices {
                current: reading.current.map_err(KestrelError::from),
                last_good: reading.last_good,
                stable,
                feed,
                margin,
                options,
                scenario,
            },
        }],
        ticks,
        band,
        resting,
    })
}

/// The band clamp: a reduce-only order is cut to what shrinks the
/// position; the limit is clamped into (or must lie in) the bands; and an
/// account under maintenance may reduce, but no worse than a liquidation
/// would price it (the mark less the liquidation fee), so it cannot dump
/// its position at the band's edge to a friend and leave the loss to the
/// insurance fund.
#[inline(never)]
fn clamp(
    account: &MarginAccount,
    before: &PerpPosition,
    market: &Market,
    args: &PlaceOrderArgs,
    pricing: &Pricing,
    others: &mut portfolio::Portfolio,
) -> Result<Clamped> {
    let side = Side::from(args.side);
    let quantity = if args.reduce_only {
        reduce_only_quantity(before, side, args.quantity)?
    } else {
        args.quantity
    };
    let order_type = engine::OrderType::from(args.order_type);
    let mut limit = band_limit(
        order_type,
        side,
        Ticks(args.price),
        &pricing.band,
        &pricing.resting,
    )?;
    if let (true, Some(_)) = (args.reduce_only, pricing.price) {
        if under_maintenance(account, before, market, pricing.now, others)? {
            let distressed =
                perp::PriceBand::around(pricing.ticks, market.params.liquidation_fee_bps)
                    .or_overflow()?;
            limit = band_limit(order_type, side, limit, &distressed, &pricing.resting)?;
        }
    }
    Ok(Clamped {
        side,
        order_type,
        quantity,
        limit,
        band: pricing.band,
        now: u64::try_from(pricing.now).ok().or_overflow()?,
    })
}

/// Whether the account, its position in `market` at `before`, is under
/// maintenance. Out of line (and under six arguments, which the linker
/// would inline): its market risk stays off the handler's frame.
#[inline(never)]
fn under_maintenance(
    account: &MarginAccount,
    before: &PerpPosition,
    market: &Market,
    now: i64,
    others: &mut portfolio::Portfolio,
) -> Result<bool> {
    others.push(before, &MarketRisk::of(market, now)?, &market.risk_array)?;
    let under = others.health(account.collateral, HealthKind::Maintenance)? < 0;
    // The health check pushes the position as the order leaves it.
    others.pop()?;
    Ok(under)
}

/// The engine: matches the order against the book, pushing the planned
/// events, and reserves each maker rebate out of the fees (every fill lies
/// in the band: the engine takes makers outside it off the book, never
/// fills them).
#[inline(never)]
fn match_order(
    accounts: &PlaceOrder,
    account: &MarginAccount,
    market: &mut Market,
    args: &PlaceOrderArgs,
    clamped: &Clamped,
) -> Result<Placed> {
    let may_rest = matches!(
        clamped.order_type,
        engine::OrderType::Limit | engine::OrderType::PostOnly | engine::OrderType::PostOnlySlide
    );
    let slot = account.free_order_slot();
    require!(slot.is_some() || !may_rest, KestrelError::TooManyOpenOrders);
    let seq = market.seq_num;
    market.seq_num = seq.checked_add(1).or_overflow()?;
    let order = NewOrder {
        side: clamped.side,
        order_type: clamped.order_type,
        price: clamped.limit,
        quantity: BaseLots(clamped.quantity),
        owner: accounts.margin_account.key().to_bytes(),
        owner_slot: slot.unwrap_or(0),
        client_order_id: args.client_order_id,
        flags: if args.reduce_only {
            engine::node::order_flags::REDUCE_ONLY
        } else {
            0
        },
        expiry: args.expiry,
        self_trade: args.self_trade.into(),
        match_limit: usize::from(market.params.max_fills_per_order),
        maker_fee_bps: market.params.maker_fee_bps,
        band: Some(clamped.band),
    };
    let mut bids = accounts.bids.load_mut()?;
    let mut asks = accounts.asks.load_mut()?;
    let mut queue_account = accounts.event_queue.load_mut()?;
    let mut queue =
        EventQueue::load(&mut queue_account.data).map_err(|_| KestrelError::WrongMarketAccounts)?;
    let mut book = Orderbook {
        bids: engine::BookSide::load(&mut bids.data)
            .map_err(|_| KestrelError::WrongMarketAccounts)?,
        asks: engine::BookSide::load(&mut asks.data)
            .map_err(|_| KestrelError::WrongMarketAccounts)?,
    };
    let result = book.place_order(&order, seq, clamped.now, &mut queue)?;
    let mut rebates = 0u64;
    let mut fills = 0u32;
    for event in queue.newest(result.events as usize) {
        if let Some(Event::Fill(fill)) = event.decode() {
            fills += 1;
            let quote =
                perp::fill_quote(fill.price, fill.quantity, market.quote_lot_size).or_overflow()?;
            rebates = perp::maker_rebate(quote, fill.maker_fee_bps)
                .and_then(|r| rebates.checked_add(r))
                .or_overflow()?;
        }
    }
    Ok(Placed {
        result,
        slot,
        fills,
        rebates,
    })
}

/// Settles the taker: its fill at the taker fee, the makers' rebates
/// reserved (the fee bookkeeping of `Market::book_taker_fill`), the rest
/// recorded as its open order.
#[inline(never)]
fn settle_taker(
    account: &mut MarginAccount,
    market: &mut Market,
    args: &PlaceOrderArgs,
    clamped: &Clamped,
    placed: &Placed,
) -> Result<()> {
    let market_index = market.market_index;
    let result = &placed.result;
    market.pending_fills = market
        .pending_fills
        .checked_add(placed.fills)
        .or_overflow()?;
    if !result.filled.is_zero() {
        let quote = result
            .filled_quote
            .checked_to_native(market.quote_lot_size)
            .or_overflow()?;
        let fee = market.book_taker_fill(quote, placed.rebates)?;
        account.position_or_open(market_index, market.kind()?)?;
        account.settle_fill(
            market,
            clamped.side,
            result.filled,
            quote,
            i64::try_from(fee).ok().or_overflow()?,
        )?;
    }
    if let (Some(order_id), Some(slot)) = (result.order_id, placed.slot) {
        account
            .position_or_open(market_index, market.kind()?)?
            .reserve(clamped.side, result.posted)?;
        account.record_order(
            slot,
            market_index,
            clamped.side,
            order_id,
            args.client_order_id,
        );
    }
    account.release_position_if_empty(market_index);
    Ok(())
}

/// The market's caps, on the position as the order left it (out of line:
/// an uncapped market pays one comparison).
#[inline(never)]
fn check_limits(
    account: &MarginAccount,
    market: &Market,
    open_interest_before: u64,
    before: &PerpPosition,
) -> Result<()> {
    let after = account
        .position(market.market_index)
        .copied()
        .unwrap_or_default();
    market.limits.check(open_interest_before, before, &after)
}

/// Health: new risk must leave initial health >= 0. An account already
/// below it may still trade, but only to reduce: its position may not grow
/// and its health may not fall. (In standard mode a reduce-only order only
/// shrinks risk and is not checked.)
#[inline(never)]
fn check_health(
    account: &MarginAccount,
    market: &Market,
    portfolio: &mut portfolio::Portfolio,
    before: &PerpPosition,
    collateral_before: i64,
) -> Result<()> {
    let risk = &MarketRisk::of(market, portfolio.now)?;
    let after = account
        .position(risk.market_index)
        .copied()
        .unwrap_or_default();
    portfolio.push(&after, risk, &market.risk_array)?;
    let health_after = portfolio.initial_health(account.collateral)?;
    if health_after < 0 {
        portfolio.pop()?;
        portfolio.push(before, risk, &market.risk_array)?;
        let health_before = portfolio.initial_health(collateral_before)?;
        require!(
            after.base_lots.unsigned_abs() <= before.base_lots.unsigned_abs()
                && health_after >= health_before,
            KestrelError::InsufficientHealth
        );
    }
    Ok(())
}

/// The limit price an order may have: a market order's worst price is
/// clamped to the fill `band`; any other order may not cross it (a bid above
/// its top, an ask below its bottom) and must lie in the `resting` band, so
/// nothing rests where it could not fill.
fn band_limit(
    order_type: engine::OrderType,
    side: Side,
    limit: Ticks,
    band: &perp::PriceBand,
    resting: &perp::PriceBand,
) -> Result<Ticks> {
    Ok(match (order_type, side) {
        (engine::OrderType::Market, Side::Bid) => limit.min(band.high),
        (engine::OrderType::Market, Side::Ask) => limit.max(band.low),
        (_, Side::Bid) if limit > band.high => return err!(KestrelError::PriceOutsideBand),
        (_, Side::Ask) if limit < band.low => return err!(KestrelError::PriceOutsideBand),
        _ if resting.contains(limit) => limit,
        _ => return err!(KestrelError::PriceOutsideBand),
    })
}

/// The part of `quantity` that shrinks the position, net of orders already
/// resting on that side; refused when nothing would.
fn reduce_only_quantity(position: &PerpPosition, side: Side, quantity: u64) -> Result<u64> {
    let room = match side {
        Side::Ask if position.base_lots > 0 => position
            .base_lots
            .unsigned_abs()
            .saturating_sub(position.asks_base_lots),
        Side::Bid if position.base_lots < 0 => position
            .base_lots
            .unsigned_abs()
            .saturating_sub(position.bids_base_lots),
        _ => 0,
    };
    require!(room > 0, KestrelError::ReduceOnlyWouldIncrease);
    Ok(quantity.min(room))
}
