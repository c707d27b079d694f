use anchor_lang::prelude::*;

use crate::engine::book_side::side_is_empty;
use crate::engine::future;
use crate::engine::Side;
use crate::error::{KestrelError, OrOverflow};
use crate::events::{MarketSettled, PositionSettled};
use crate::instructions::shared::{cancel_slot, load_book};
use crate::state::*;
use crate::units::{BaseLots, NativeUnits};

/// Permissionless (the keeper's job): settles an expired market (a dated
/// future, an option or a delisted perpetual) in cash.
///
/// The first call after expiry that finds the settlement average complete
/// (it reaches expiry and covers three quarters of the window,
/// `engine::price_integral`)
/// fixes the settlement price, the time-weighted average of the
/// underlying's accepted price over the window, and the market becomes
/// Settled; until then the call refuses with `SettlementNotCovered`. Each
/// call with a margin account then cancels that account's orders in the
/// market and closes its position at its settlement value (the price for a
/// future, an option's intrinsic value at it, zero out of the money): a long receives
/// its value rounded down, a short pays it rounded up, so the market (which
/// is every position's counterparty here) never pays out more than it took
/// in; what rounding leaves stays in its funding balance. Once no position
/// and no order is left, the market is Closed.
///
/// No fill may wait in the queue (it would move a position after it
/// settled): the keeper cranks first.
#[derive(Accounts)]
pub struct SettleExpired<'info> {
    pub exchange: AccountLoader<'info, Exchange>,
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
    /// Read only: its price integral is copied until the average is complete.
    pub underlying: AccountLoader<'info, Underlying>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub margin_account: Option<AccountLoader<'info, MarginAccount>>,
}

#[inline(never)]
pub fn settle_expired(ctx: Context<SettleExpired>) -> Result<()> {
    let accounts = &ctx.accounts;
    accounts
        .exchange
        .load()?
        .pause_flags()
        .ensure_running(Operation::Trading)?;
    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(market.has_expiry(), KestrelError::WrongMarketKind);
    require!(
        market.is_expired(clock.unix_timestamp),
        KestrelError::MarketNotExpired
    );
    // Closed is terminal: nothing is left to settle.
    require!(
        market.status()? != MarketStatus::Closed,
        KestrelError::MarketNotTrading
    );
    require!(market.pending_fills == 0, KestrelError::CrankRequired);

    let price = match market.settlement_price() {
        Some(price) => price,
        None => {
            market
                .capture_settlement(accounts.underlying.load()?.integral(), clock.unix_timestamp)?;
            let params = market.future.params;
            let capture = market.future.settlement();
            let price = capture
                .settlement_price(params.expiry, params.settlement_window_seconds)
                .map_err(KestrelError::from)?
                .ok_or(KestrelError::SettlementNotCovered)?;
            market.future.settlement_price = crate::engine::funding::to_parts(price);
            market.status = MarketStatus::Settled as u8;
            emit!(MarketSettled {
                market: accounts.market.key(),
                settlement_price_bits: price.to_bits(),
                window_start: capture.start.time,
                window_end: capture.end.time,
                covered_seconds: capture.covered_seconds(),
            });
            price
        }
    };

    if let Some(loader) = &accounts.margin_account {
        settle_account(&mut market, loader, accounts, price)?;
    }

    let side_is_empty = |side: &AccountLoader<BookSideAccount>| -> Result<bool> {
        Ok(side_is_empty(&side.load()?.data).map_err(|_| KestrelError::WrongMarketAccounts)?)
    };
    if market.status()? == MarketStatus::Settled
        && market.long_lots == 0
        && market.short_lots == 0
        && side_is_empty(&accounts.bids)?
        && side_is_empty(&accounts.asks)?
    {
        market.status = MarketStatus::Closed as u8;
    }
    Ok(())
}

/// Cancels the account's orders in the market and closes its position at
/// the settlement `price`.
fn settle_account(
    market: &mut Market,
    loader: &AccountLoader<MarginAccount>,
    accounts: &SettleExpired,
    price: fixed::types::I80F48,
) -> Result<()> {
    let market_index = market.market_index;
    let mut account = loader.load_mut()?;
    if account.position(market_index).is_none() {
        return Ok(());
    }
    let orders_cancelled = {
        let mut bids = accounts.bids.load_mut()?;
        let mut asks = accounts.asks.load_mut()?;
        let mut book = load_book(&mut bids, &mut asks)?;
        let owner = loader.key().to_bytes();
        let slots: Vec<usize> = account
            .active_orders()
            .filter(|(_, order)| order.market_index == market_index)
            .map(|(slot, _)| slot)
            .collect();
        let mut cancelled = 0u8;
        for slot in slots {
            if cancel_slot(&mut account, &mut book, &owner, slot)? {
                cancelled = cancelled.saturating_add(1);
            }
        }
        cancelled
    };
    let position = account.position(market_index).copied().unwrap_or_default();
    // Outs still in the queue would release reservations later.
    require!(
        position.bids_base_lots == 0 && position.asks_base_lots == 0,
        KestrelError::CrankRequired
    );
    let mut value = 0;
    if position.base_lots != 0 {
        // A future's lots are worth the price, an option's its intrinsic
        // value at it: nothing out of the money.
        let per_unit = market.settlement_value_per_unit(price)?;
        if per_unit > 0 {
            value = future::settlement_value(position.base_lots, market.base_lot_size, per_unit)
                .map_err(KestrelError::from)?;
        }
        let lots = position.base_lots.unsigned_abs();
        // The market takes the other side: a long sells its lots for their
        // value, a short buys them back for it.
        account.settle_fill(
            market,
            if position.base_lots < 0 {
                Side::Bid
            } else {
                Side::Ask
            },
            BaseLots(lots),
            NativeUnits(value.unsigned_abs()),
            0,
        )?;
        market.book_funding(value.checked_neg().or_overflow()?)?;
        market.future.settled_base_lots = market
            .future
            .settled_base_lots
            .checked_add(position.base_lots)
            .or_overflow()?;
    } else {
        account.settle_funding(market)?;
    }
    account.release_position_if_empty(market_index);
    emit!(PositionSettled {
        market: accounts.market.key(),
        margin_account: loader.key(),
        base_lots: position.base_lots,
        value_native: value,
        orders_cancelled,
    });
    Ok(())
}
