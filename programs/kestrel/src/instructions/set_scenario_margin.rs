use anchor_lang::prelude::*;

use crate::error::{KestrelError, OrOverflow};
use crate::events::ScenarioMarginSet;
use crate::state::*;

/// Sets an underlying's portfolio margin (`engine::scenario_margin`): its
/// grid, contingencies, maintenance factor and how stale an option's risk
/// array may be. Scan range 0 turns it off: portfolio-mode accounts'
/// positions on the underlying are then margined as in standard mode.
/// Every change bumps the configuration's version, so arrays computed
/// under the old one are refused until `refresh_risk_arrays` recomputes
/// them.
#[derive(Accounts)]
pub struct SetScenarioMargin<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn set_scenario_margin(ctx: Context<SetScenarioMargin>, config: ScenarioConfig) -> Result<()> {
    config.validate()?;
    let mut underlying = ctx.accounts.underlying.load_mut()?;
    let version = underlying.scenario.version.checked_add(1).or_overflow()?;
    underlying.scenario = ScenarioConfig { version, ..config };
    emit!(ScenarioMarginSet {
        underlying: ctx.accounts.underlying.key(),
        config: underlying.scenario,
    });
    Ok(())
}
