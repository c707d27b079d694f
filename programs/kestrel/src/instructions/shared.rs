//! Helpers the instructions share: loading a market's book from its two
//! side accounts, taking one open order off it, and paying out of a vault.
use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::engine::{BookSide, Orderbook};
use crate::error::KestrelError;
use crate::state::*;

/// Moves `amount` out of a vault whose token authority is the exchange PDA.
/// The exchange account must not be borrowed: the CPI passes it.
pub fn transfer_from_vault<'info>(
    token_program: &Program<'info, Token>,
    exchange: &AccountInfo<'info>,
    exchange_bump: u8,
    from: &Account<'info, TokenAccount>,
    to: &Account<'info, TokenAccount>,
    amount: u64,
) -> Result<()> {
    let bump = [exchange_bump];
    let signer_seeds: &[&[&[u8]]] = &[&exchange_signer_seeds(&bump)];
    token::transfer(
        CpiContext::new_with_signer(
            token_program.key(),
            Transfer {
                from: from.to_account_info(),
                to: to.to_account_info(),
                authority: exchange.clone(),
            },
            signer_seeds,
        ),
        amount,
    )
}

pub fn load_book<'a>(
    bids: &'a mut BookSideAccount,
    asks: &'a mut BookSideAccount,
) -> Result<Orderbook<'a>> {
    Ok(Orderbook {
        bids: BookSide::load(&mut bids.data).map_err(|_| KestrelError::WrongMarketAccounts)?,
        asks: BookSide::load(&mut asks.data).map_err(|_| KestrelError::WrongMarketAccounts)?,
    })
}

/// Takes the order in open-order `slot` off the book and releases its
/// reservation. `false` when it is no longer on the book: it was filled or
/// pushed out, and the crank will release it when it applies that event.
pub fn cancel_slot(
    account: &mut MarginAccount,
    book: &mut Orderbook,
    owner: &[u8; 32],
    slot: usize,
) -> Result<bool> {
    let order = account.open_orders[slot];
    let side = order.side()?;
    let leaf = match book.cancel_order(side, order.order_id(), owner) {
        Ok(leaf) => leaf,
        Err(_) => return Ok(false),
    };
    account
        .position_mut(order.market_index)
        .ok_or(KestrelError::AccountingMismatch)?
        .release(side, leaf.quantity)?;
    account.forget_order(slot as u8, order.market_index, order.order_id());
    account.release_position_if_empty(order.market_index);
    Ok(true)
}
