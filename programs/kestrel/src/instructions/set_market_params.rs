use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarketParamsSet;
use crate::state::*;

/// Replaces a market's risk and fee parameters, validated as at creation
/// (an option's as at its listing).
#[derive(Accounts)]
pub struct SetMarketParams<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
}

#[inline(never)]
pub fn set_market_params(ctx: Context<SetMarketParams>, params: MarketParams) -> Result<()> {
    params.validate()?;
    let accounts = &ctx.accounts;
    let mut market = accounts.market.load_mut()?;
    require!(
        !matches!(
            market.status()?,
            MarketStatus::Closed | MarketStatus::Settled
        ),
        KestrelError::InvalidStatusTransition
    );
    // An option's liquidation fee must stay below its band, as at listing.
    if market.kind()? == InstrumentKind::Option {
        params.validate_for_option()?;
    }
    // A future's basis must stay within the band, as at listing.
    require!(
        market.kind()? != InstrumentKind::Future
            || market.future.params.max_basis_bps <= params.price_band_bps,
        KestrelError::InvalidFutureParams
    );
    market.params = params;
    emit!(MarketParamsSet {
        market: accounts.market.key(),
    });
    Ok(())
}
