use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::instructions::cancel_order::{with_book, CancelOrder};
use crate::instructions::shared::cancel_slot;

/// Cancels the resting order with `client_order_id` in this market. Found
/// through the account's open-order slots, so it costs the same however deep
/// the book is.
#[inline(never)]
pub fn cancel_order_by_client_id(ctx: Context<CancelOrder>, client_order_id: u64) -> Result<()> {
    with_book(&ctx, |account, book, owner, market_index| {
        let (slot, _) = account
            .active_orders()
            .find(|(_, o)| o.market_index == market_index && o.client_order_id == client_order_id)
            .ok_or(KestrelError::OrderNotFound)?;
        require!(
            cancel_slot(account, book, owner, slot)?,
            KestrelError::OrderNotFound
        );
        Ok(())
    })
}
