use anchor_lang::prelude::*;

use super::create_market::{init_market, CreateMarket, CreateMarketArgs};
use crate::state::*;

/// Lists a dated future on an underlying: a market like a perpetual's, with
/// no funding, that stops trading at `future.expiry` and settles in cash at
/// the settlement window's TWAP of the underlying's accepted price. The
/// accounts are `create_market`'s.
#[inline(never)]
pub fn create_future_market(
    ctx: Context<CreateMarket>,
    args: CreateMarketArgs,
    future: FutureParams,
) -> Result<()> {
    future.validate(Clock::get()?.unix_timestamp, args.params.price_band_bps)?;
    init_market(&ctx, &args, InstrumentKind::Future, future)
}
