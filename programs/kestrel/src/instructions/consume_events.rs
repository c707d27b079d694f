use anchor_lang::prelude::*;

use crate::engine::event_queue::Event;
use crate::engine::perp;
use crate::engine::{EventQueue, Side};
use crate::error::{KestrelError, OrOverflow};
use crate::state::*;

/// Most events one call applies: the whole queue. At about 800 CU per event
/// that stays far below a transaction's 1.4M CU; in practice the 1,232-byte
/// transaction bounds a crank by the distinct maker accounts it can name.
pub const MAX_EVENTS_PER_CRANK: u16 = crate::engine::EVENT_QUEUE_EVENTS as u16;

/// Permissionless crank: applies up to `limit` events from the front of the
/// queue to the makers' margin accounts (fills: position, PnL, maker fee or
/// rebate; outs: reservations), and pays up to `crank_reward_native` per fill
/// from the market's fees to `reward_account` when one is given. A fill's
/// reward is capped by what the exchange earned on it (taker fee plus maker
/// fee, net of a rebate), and outs earn nothing: a self-made, fee-free event
/// cannot pay its maker.
///
/// Remaining accounts: the margin accounts the events name, writable, in any
/// order. The crank stops at the first event whose account is missing, so
/// events are applied strictly in order.
#[derive(Accounts)]
pub struct ConsumeEvents<'info> {
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ KestrelError::WrongExchange,
        has_one = event_queue @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub event_queue: AccountLoader<'info, EventQueueAccount>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub reward_account: Option<AccountLoader<'info, MarginAccount>>,
}

#[inline(never)]
pub fn consume_events<'info>(ctx: Context<'info, ConsumeEvents<'info>>, limit: u16) -> Result<()> {
    let accounts = &ctx.accounts;
    let exchange_key = accounts.exchange.key();
    accounts
        .exchange
        .load()?
        .pause_flags()
        .ensure_running(Operation::ConsumeEvents)?;
    let mut market = accounts.market.load_mut()?;
    let mut queue_account = accounts.event_queue.load_mut()?;
    let mut queue =
        EventQueue::load(&mut queue_account.data).map_err(|_| KestrelError::WrongMarketAccounts)?;
    require!(!queue.is_empty(), KestrelError::NoEventsToConsume);

    let mut consumed: u64 = 0;
    let mut reward: u64 = 0;
    for _ in 0..limit.min(MAX_EVENTS_PER_CRANK) {
        let Some(event) = queue.front().copied() else {
            break;
        };
        // The program wrote every event: one it cannot read is a bug.
        let Some(decoded) = event.decode() else {
            return err!(KestrelError::Unreachable);
        };
        let owner = match decoded {
            Event::Fill(fill) => fill.maker,
            Event::Out(out) => out.owner,
        };
        let Some(info) = ctx
            .remaining_accounts
            .iter()
            .find(|info| info.key.to_bytes() == owner)
        else {
            break;
        };
        let loader = AccountLoader::<MarginAccount>::try_from(info)?;
        let mut account = loader.load_mut()?;
        require_keys_eq!(account.exchange, exchange_key, KestrelError::WrongExchange);
        match decoded {
            Event::Fill(fill) => {
                let side = Side::from_u8(fill.taker_side)
                    .ok_or(KestrelError::Unreachable)?
                    .opposite();
                let quote = perp::fill_quote(fill.price, fill.quantity, market.quote_lot_size)
                    .or_overflow()?;
                let fee = perp::maker_fee(quote, fill.maker_fee_bps).or_overflow()?;
                account
                    .position_mut(market.market_index)
                    .ok_or(KestrelError::AccountingMismatch)?
                    .release(side, fill.quantity)?;
                account.settle_fill(&mut market, side, fill.quantity, quote, fee)?;
                market.pending_fills = market
                    .pending_fills
                    .checked_sub(1)
                    .ok_or(KestrelError::Unreachable)?;
                // What the fill earned caps its reward; priced only when a
                // reward is taken.
                if accounts.reward_account.is_some() {
                    reward = reward
                        .checked_add(market.crank_reward_for(quote, fee)?)
                        .or_overflow()?;
                }
                market.book_maker_fill(fee)?;
                if fill.maker_out != 0 {
                    let order_id = crate::engine::node::key_from_parts(fill.maker_order_id);
                    account.forget_order(fill.maker_slot, market.market_index, order_id);
                }
            }
            Event::Out(out) => {
                let side = Side::from_u8(out.side).ok_or(KestrelError::Unreachable)?;
                account
                    .position_mut(market.market_index)
                    .ok_or(KestrelError::AccountingMismatch)?
                    .release(side, out.quantity)?;
                if out.order_gone != 0 {
                    let order_id = crate::engine::node::key_from_parts(out.order_id);
                    account.forget_order(out.owner_slot, market.market_index, order_id);
                }
            }
        }
        account.release_position_if_empty(market.market_index);
        queue.pop_front();
        consumed += 1;
    }
    require!(consumed > 0, KestrelError::MissingEventAccount);

    if let Some(reward_account) = &accounts.reward_account {
        let reward = market.take_fees(reward)?;
        if reward > 0 {
            reward_account.load_mut()?.credit(reward)?;
        }
    }
    Ok(())
}
