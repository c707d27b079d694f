use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::portfolio::RiskArrayPricing;
use crate::state::*;

/// The most option markets one refresh recomputes: ten arrays of 17
/// Black-Scholes prices each fit a transaction's compute budget.
pub const MAX_RISK_ARRAYS_PER_REFRESH: usize = 10;

/// Permissionless (the keeper's job, and a liquidator's or trader's in the
/// transaction that needs it): recomputes the risk arrays of the option
/// markets given as remaining accounts (writable, each an option of this
/// underlying before its expiry, at most
/// [`MAX_RISK_ARRAYS_PER_REFRESH`]) at the underlying's accepted price
/// now, each option's volatility at it, and the grid health applies now.
/// The caller chooses only when: every input is the program's own, and
/// health refuses an array once the spot or volatility has moved past the
/// underlying's tolerance or it is older than its maximum age.
#[derive(Accounts)]
pub struct RefreshRiskArrays<'info> {
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn refresh_risk_arrays<'info>(ctx: Context<'info, RefreshRiskArrays<'info>>) -> Result<()> {
    require!(
        !ctx.remaining_accounts.is_empty()
            && ctx.remaining_accounts.len() <= MAX_RISK_ARRAYS_PER_REFRESH,
        KestrelError::NotAnOptionMarket
    );
    let clock = Clock::get()?;
    let (exchange, pricing) = {
        let underlying = ctx.accounts.underlying.load()?;
        (
            underlying.exchange,
            RiskArrayPricing::of(&underlying, clock.unix_timestamp, clock.slot)?,
        )
    };
    for info in ctx.remaining_accounts {
        let loader = AccountLoader::<Market>::try_from(info)?;
        require!(info.is_writable, KestrelError::NotAnOptionMarket);
        let mut market = loader.load_mut()?;
        require!(
            market.exchange == exchange && market.underlying == ctx.accounts.underlying.key(),
            KestrelError::NotAnOptionMarket
        );
        let array = pricing.array_of(&market)?;
        market.risk_array.store(&array);
    }
    Ok(())
}
