use anchor_lang::prelude::*;

use crate::engine::Side;
use crate::instructions::cancel_order::{with_book, CancelOrder};
use crate::instructions::place_order::OrderSide;
use crate::instructions::shared::cancel_slot;
use crate::state::MAX_OPEN_ORDERS;

/// Cancels up to `limit` of the account's resting orders in this market, on
/// one side or both. Bounded by the account's open-order slots; orders
/// already filled or pushed out wait for the crank and are skipped.
#[inline(never)]
pub fn cancel_all(ctx: Context<CancelOrder>, side: Option<OrderSide>, limit: u8) -> Result<()> {
    let side = side.map(Side::from);
    with_book(&ctx, |account, book, owner, market_index| {
        let mut cancelled = 0u8;
        for slot in 0..MAX_OPEN_ORDERS {
            if cancelled >= limit {
                break;
            }
            // Cancelling frees slots as it goes: each is looked at as it is now.
            let order = account.open_orders[slot];
            if order.in_use == 0 || order.market_index != market_index {
                continue;
            }
            if side.is_some() && side != Some(order.side()?) {
                continue;
            }
            if cancel_slot(account, book, owner, slot)? {
                cancelled += 1;
            }
        }
        Ok(())
    })
}
