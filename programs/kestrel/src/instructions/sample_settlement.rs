use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::state::*;

/// Permissionless crank from the opening of a market's settlement window
/// until its price is fixed (the keeper runs it every cycle; every order,
/// liquidation and settlement of the market does the same): copies the
/// underlying's price-integral checkpoints for the window into the market
/// (`engine::price_integral`). Every caller copies the same checkpoints, so
/// when it runs decides nothing; running it at least once per
/// `CHECKPOINTS` minutes keeps the window's exact start and end.
#[derive(Accounts)]
pub struct SampleSettlement<'info> {
    #[account(mut, has_one = underlying @ KestrelError::WrongMarketAccounts)]
    pub market: AccountLoader<'info, Market>,
    /// Read only: its price integral is copied.
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn sample_settlement(ctx: Context<SampleSettlement>) -> Result<()> {
    let accounts = &ctx.accounts;
    let clock = Clock::get()?;
    let mut market = accounts.market.load_mut()?;
    require!(market.has_expiry(), KestrelError::WrongMarketKind);
    require!(
        market.status()? != MarketStatus::Settled && market.status()? != MarketStatus::Closed,
        KestrelError::MarketNotTrading
    );
    let window_open =
        market.capture_settlement(accounts.underlying.load()?.integral(), clock.unix_timestamp)?;
    require!(window_open, KestrelError::OutsideSettlementWindow);
    Ok(())
}
