use anchor_lang::prelude::*;

use crate::engine::fixed_math;
use crate::engine::scenario_margin::{self, Instrument, MarketPoint};
use crate::error::KestrelError;
use crate::portfolio::{MarkRule, OptionTerms, ScenarioTerms};
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
    let now = clock.unix_timestamp;
    let (exchange, terms, spot, options) = {
        let underlying = ctx.accounts.underlying.load()?;
        let terms = ScenarioTerms::of(&underlying).ok_or(KestrelError::NoScenarioMargin)?;
        let spot = underlying.current_price(now, clock.slot)?;
        (
            underlying.exchange,
            terms,
            spot,
            OptionTerms::current(&underlying, now),
        )
    };
    let scenarios = terms
        .grid
        .scenarios()
        .map_err(|_| KestrelError::InvalidScenarioMargin)?;
    let rate = fixed_math::from_bps(options.rate_bps);
    for info in ctx.remaining_accounts {
        let loader = AccountLoader::<Market>::try_from(info)?;
        require!(info.is_writable, KestrelError::NotAnOptionMarket);
        let mut market = loader.load_mut()?;
        require!(
            market.exchange == exchange && market.underlying == ctx.accounts.underlying.key(),
            KestrelError::NotAnOptionMarket
        );
        let MarkRule::Option(mark) = MarkRule::of(&market, now)? else {
            return err!(KestrelError::NotAnOptionMarket);
        };
        require!(now < mark.expiry, KestrelError::NotAnOptionMarket);
        let volatility = mark.volatility(spot, &options)?;
        let instrument = Instrument::Option {
            side: mark.side,
            strike: mark.strike,
            seconds_to_expiry: mark.expiry - now,
        };
        let point = MarketPoint {
            spot,
            volatility,
            rate,
        };
        let entries = scenario_margin::risk_array(&instrument, &point, &scenarios)
            .map_err(|_| KestrelError::OptionPricingFailed)?;
        market.risk_array.store(&RiskArrayRead {
            spot,
            volatility,
            computed_at: now,
            scan_range_bps: terms.grid.scan_range_bps,
            config_version: terms.config.version,
            entries,
        });
    }
    Ok(())
}
