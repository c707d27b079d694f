use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::state::*;

/// Permissionless: settles a margin account's position in one market against
/// the market's funding index. Positions also settle whenever they trade or
/// are liquidated; this lets anyone bring an account's collateral up to date.
#[derive(Accounts)]
pub struct SettleFunding<'info> {
    #[account(mut)]
    pub market: AccountLoader<'info, Market>,
    #[account(
        mut,
        constraint = margin_account.load()?.exchange == market.load()?.exchange @ KestrelError::WrongExchange,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

#[inline(never)]
pub fn settle_funding(ctx: Context<SettleFunding>) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    let mut account = ctx.accounts.margin_account.load_mut()?;
    require!(
        account.position(market.market_index).is_some(),
        KestrelError::NoPosition
    );
    account.settle_funding(&mut market)?;
    Ok(())
}
