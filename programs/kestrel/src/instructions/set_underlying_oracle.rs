use anchor_lang::prelude::*;

use super::create_underlying::check_oracle_accounts;
use crate::error::KestrelError;
use crate::events::UnderlyingOracleSet;
use crate::state::*;

/// Replaces an underlying's feeds and bounds, validated as at creation; the
/// oracle accounts must match the new configuration.
#[derive(Accounts)]
pub struct SetUnderlyingOracle<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(mut, has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: read by `oracle::read_feed` (owner program, layout, feed).
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required exactly when a fallback is configured.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
}

#[inline(never)]
pub fn set_underlying_oracle(
    ctx: Context<SetUnderlyingOracle>,
    config: OracleConfig,
) -> Result<()> {
    config.validate()?;
    let accounts = &ctx.accounts;
    check_oracle_accounts(
        &config,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
    )?;
    let mut underlying = accounts.underlying.load_mut()?;
    // A feed replaced starts a new record: the old feed's publish times say
    // nothing about the new one's. The last good price stays.
    let old = underlying.oracle;
    let new = StoredOracleConfig::from(&config);
    if (old.primary_kind, old.primary_feed, old.primary_account)
        != (new.primary_kind, new.primary_feed, new.primary_account)
    {
        underlying.prices.primary = Default::default();
    }
    if (old.fallback_kind, old.fallback_feed, old.fallback_account)
        != (new.fallback_kind, new.fallback_feed, new.fallback_account)
    {
        underlying.prices.fallback = Default::default();
    }
    underlying.oracle = new;
    // New bounds judge the records anew: the next reading accepts them in
    // full (or a refresh does).
    underlying.accepted = 0;
    emit!(UnderlyingOracleSet {
        underlying: accounts.underlying.key(),
    });
    Ok(())
}
