use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarketStatusSet;
use crate::state::*;

/// Moves a market between Active, ReduceOnly and Paused, or from Paused to
/// Closed (terminal).
#[derive(Accounts)]
pub struct SetMarketStatus<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
}

#[inline(never)]
pub fn set_market_status(ctx: Context<SetMarketStatus>, status: MarketStatus) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    let previous = market.status()?;
    require!(
        previous.can_become(status),
        KestrelError::InvalidStatusTransition
    );
    // A market with an expiry closes by settling (`settle_expired`), so its
    // positions are paid out at the settlement price, never left open.
    require!(
        !(market.has_expiry() && status == MarketStatus::Closed),
        KestrelError::InvalidStatusTransition
    );
    // A delisted perpetual only settles: it never trades again.
    require!(
        !(market.kind()? == InstrumentKind::Perp
            && market.has_expiry()
            && matches!(status, MarketStatus::Active | MarketStatus::ReduceOnly)),
        KestrelError::MarketDelisted
    );
    market.status = status as u8;
    emit!(MarketStatusSet {
        market: ctx.accounts.market.key(),
        previous: previous as u8,
        current: status as u8,
    });
    Ok(())
}
