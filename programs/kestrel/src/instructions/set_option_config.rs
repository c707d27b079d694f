use anchor_lang::prelude::*;

use crate::error::{KestrelError, OrOverflow};
use crate::events::OptionConfigSet;
use crate::state::*;

/// Sets how an underlying's options are priced and margined: its
/// implied-volatility feed (a Switchboard On-Demand pull feed whose value
/// is the at-the-money volatility as a fraction), the feed's maximum age
/// and bounds, the rate, and the short-option margin terms. A replaced feed
/// starts without a volatility: its options price again after the first
/// `refresh_volatility` of the new feed.
#[derive(Accounts)]
pub struct SetOptionConfig<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn set_option_config(ctx: Context<SetOptionConfig>, config: OptionConfig) -> Result<()> {
    config.validate()?;
    let mut underlying = ctx.accounts.underlying.load_mut()?;
    let state = &mut underlying.volatility;
    if state.config.volatility_feed != config.volatility_feed {
        // The old feed's value and publish times say nothing about the new.
        state.volatility = [0; 2];
        state.publish_time = 0;
        state.publish_slot = 0;
    }
    state.config = config;
    // Risk arrays priced under the old terms (the rate) are stale: the
    // grid's version moves with them.
    let scenario = &mut underlying.scenario;
    if scenario.enabled() {
        scenario.version = scenario.version.checked_add(1).or_overflow()?;
    }
    emit!(OptionConfigSet {
        underlying: ctx.accounts.underlying.key(),
        volatility_feed: Pubkey::new_from_array(config.volatility_feed),
    });
    Ok(())
}
