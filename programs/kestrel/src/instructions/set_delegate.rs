use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::DelegateSet;
use crate::state::MarginAccount;

/// The owner sets or clears (`None`) the account's delegate.
#[derive(Accounts)]
pub struct SetDelegate<'info> {
    pub owner: Signer<'info>,
    #[account(mut, has_one = owner @ KestrelError::NotMarginAccountOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

#[inline(never)]
pub fn set_delegate(ctx: Context<SetDelegate>, delegate: Option<Pubkey>) -> Result<()> {
    let delegate = delegate.unwrap_or_default();
    require_keys_neq!(
        delegate,
        ctx.accounts.owner.key(),
        KestrelError::DelegateIsOwner
    );
    ctx.accounts.margin_account.load_mut()?.delegate = delegate;
    emit!(DelegateSet {
        margin_account: ctx.accounts.margin_account.key(),
        delegate,
    });
    Ok(())
}
