use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarketLimitsSet;
use crate::state::*;

/// Sets a market's open-interest and position caps (zero: none). A cap
/// applies to orders placed after it: positions already above it may
/// shrink, and an order that would grow one past it is refused.
#[derive(Accounts)]
pub struct SetMarketLimits<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
}

#[inline(never)]
pub fn set_market_limits(ctx: Context<SetMarketLimits>, limits: MarketLimits) -> Result<()> {
    let accounts = &ctx.accounts;
    let mut market = accounts.market.load_mut()?;
    require!(
        !matches!(
            market.status()?,
            MarketStatus::Closed | MarketStatus::Settled
        ),
        KestrelError::InvalidStatusTransition
    );
    market.limits = limits;
    emit!(MarketLimitsSet {
        market: accounts.market.key(),
        max_open_interest_lots: limits.max_open_interest_lots,
        max_position_lots: limits.max_position_lots,
    });
    Ok(())
}
