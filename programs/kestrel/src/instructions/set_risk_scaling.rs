use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::RiskScalingSet;
use crate::state::*;

/// Sets how an underlying's perpetual and futures margin fractions follow
/// risk (`engine::margin_scaling`): scaled with its realized volatility
/// above a baseline, moving at a bounded rate, and lifted with position
/// size. The scale reached so far is kept (a lowered maximum or a removed
/// baseline takes it down only at the rate, or at once without a
/// baseline), and the time before this call does not count towards the
/// next move.
#[derive(Accounts)]
pub struct SetRiskScaling<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn set_risk_scaling(ctx: Context<SetRiskScaling>, scaling: RiskScaling) -> Result<()> {
    scaling.validate()?;
    let now = Clock::get()?.unix_timestamp;
    let mut underlying = ctx.accounts.underlying.load_mut()?;
    let state = &mut underlying.risk_scaling;
    state.config = scaling;
    state.updated_at = now;
    state.scale_credit = 0;
    if scaling.baseline_volatility_bps == 0 {
        // Without a baseline nothing would move it back.
        state.scale_bps = 0;
    }
    emit!(RiskScalingSet {
        underlying: ctx.accounts.underlying.key(),
        baseline_volatility_bps: scaling.baseline_volatility_bps,
        max_scale_bps: scaling.max_scale_bps,
        max_scale_change_bps_per_hour: scaling.max_scale_change_bps_per_hour,
        size_margin_bps: scaling.size_margin_bps,
    });
    Ok(())
}
