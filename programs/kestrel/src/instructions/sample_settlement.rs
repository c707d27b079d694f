use anchor_lang::prelude::*;

use crate::engine::future::SampleOutcome;
use crate::error::KestrelError;
use crate::state::*;

/// Permissionless crank inside a market's settlement window (the keeper
/// samples it every cycle; every order and liquidation in the window
/// samples too): adds the underlying's accepted price now to the settlement
/// TWAP. Between samples the last price is held, so a missed sample costs
/// nothing but precision; a second sample in the same second changes
/// nothing.
#[derive(Accounts)]
pub struct SampleSettlement<'info> {
    #[account(mut, has_one = underlying @ KestrelError::WrongMarketAccounts)]
    pub market: AccountLoader<'info, Market>,
    /// Read only: its stored price must be fresh (`refresh_underlying`).
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn sample_settlement(ctx: Context<SampleSettlement>) -> Result<()> {
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(market.has_expiry(), KestrelError::WrongMarketKind);
    require!(
        market.status() != MarketStatus::Settled && market.status() != MarketStatus::Closed,
        KestrelError::MarketNotTrading
    );
    let price = accounts
        .underlying
        .load()?
        .current_price(clock.unix_timestamp, clock.slot)?;
    let outcome = market.sample_settlement(clock.unix_timestamp, price)?;
    require!(
        outcome != SampleOutcome::BeforeWindow,
        KestrelError::OutsideSettlementWindow
    );
    Ok(())
}
