use anchor_lang::prelude::*;

use super::shared::{cancel_slot, load_book};
use crate::engine::Orderbook;
use crate::error::KestrelError;
use crate::state::*;

/// Cancels one resting order by its id. Allowed in every market status and
/// while trading is paused: cancelling only removes risk.
#[derive(Accounts)]
pub struct CancelOrder<'info> {
    /// The margin account's owner or delegate.
    pub authority: Signer<'info>,
    #[account(mut)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(
        constraint = market.load()?.exchange == margin_account.load()?.exchange @ KestrelError::WrongExchange,
        has_one = bids @ KestrelError::WrongMarketAccounts,
        has_one = asks @ KestrelError::WrongMarketAccounts,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub bids: AccountLoader<'info, BookSideAccount>,
    #[account(mut)]
    pub asks: AccountLoader<'info, BookSideAccount>,
}

#[inline(never)]
pub fn cancel_order(ctx: Context<CancelOrder>, order_id: u128) -> Result<()> {
    with_book(&ctx, |account, book, owner, market_index| {
        let (slot, _) = account
            .active_orders()
            .find(|(_, o)| o.market_index == market_index && o.order_id() == order_id)
            .ok_or(KestrelError::OrderNotFound)?;
        require!(
            cancel_slot(account, book, owner, slot)?,
            KestrelError::OrderNotFound
        );
        Ok(())
    })
}

/// Checks the signer and runs `cancel` on the margin account and the
/// market's book: (account, book, owner bytes, market index).
pub fn with_book(
    ctx: &Context<CancelOrder>,
    cancel: impl FnOnce(&mut MarginAccount, &mut Orderbook, &[u8; 32], u16) -> Result<()>,
) -> Result<()> {
    let accounts = &ctx.accounts;
    let market_index = accounts.market.load()?.market_index;
    let mut account = accounts.margin_account.load_mut()?;
    require!(
        account.is_owner_or_delegate(&accounts.authority.key()),
        KestrelError::NotOwnerOrDelegate
    );
    let mut bids = accounts.bids.load_mut()?;
    let mut asks = accounts.asks.load_mut()?;
    let mut book = load_book(&mut bids, &mut asks)?;
    let owner = accounts.margin_account.key().to_bytes();
    cancel(&mut account, &mut book, &owner, market_index)
}
