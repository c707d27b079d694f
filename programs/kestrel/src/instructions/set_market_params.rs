use anchor_lang::prelude::*;

use super::create_market::check_oracle_accounts;
use crate::error::KestrelError;
use crate::events::MarketParamsSet;
use crate::state::*;

/// Replaces a market's risk, fee and oracle parameters, validated as at
/// creation; the oracle accounts must match the new configuration.
#[derive(Accounts)]
pub struct SetMarketParams<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub market: AccountLoader<'info, Market>,
    /// CHECK: read by `oracle::read_feed` (owner program, layout, feed).
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required exactly when a fallback is configured.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
}

#[inline(never)]
pub fn set_market_params(ctx: Context<SetMarketParams>, params: MarketParams) -> Result<()> {
    params.validate()?;
    let accounts = &ctx.accounts;
    check_oracle_accounts(
        &params.oracle,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
    )?;
    let mut market = accounts.market.load_mut()?;
    require!(
        market.status() != MarketStatus::Closed,
        KestrelError::InvalidStatusTransition
    );
    // A feed replaced starts a new record: the old feed's publish times say
    // nothing about the new one's. The last good price stays.
    let old = market.params().oracle;
    let new = &params.oracle;
    if (old.primary_kind, old.primary_feed, old.primary_account)
        != (new.primary_kind, new.primary_feed, new.primary_account)
    {
        market.prices.primary = Default::default();
    }
    if (old.fallback_kind, old.fallback_feed, old.fallback_account)
        != (new.fallback_kind, new.fallback_feed, new.fallback_account)
    {
        market.prices.fallback = Default::default();
    }
    market.apply_params(&params);
    emit!(MarketParamsSet {
        market: accounts.market.key(),
    });
    Ok(())
}
