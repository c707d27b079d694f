use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::MarginAccountCreated;
use crate::state::*;

#[derive(Accounts)]
#[instruction(sub_account_index: u16)]
pub struct CreateMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        init,
        payer = owner,
        space = MarginAccount::SPACE,
        seeds = [
            MARGIN_ACCOUNT_SEED,
            exchange.key().as_ref(),
            owner.key().as_ref(),
            &sub_account_index.to_le_bytes(),
        ],
        bump,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub system_program: Program<'info, System>,
}

#[inline(never)]
pub fn create_margin_account(
    ctx: Context<CreateMarginAccount>,
    sub_account_index: u16,
    delegate: Option<Pubkey>,
) -> Result<()> {
    let owner = ctx.accounts.owner.key();
    let delegate = delegate.unwrap_or_default();
    require_keys_neq!(delegate, owner, KestrelError::DelegateIsOwner);

    let mut account = ctx.accounts.margin_account.load_init()?;
    account.exchange = ctx.accounts.exchange.key();
    account.owner = owner;
    account.delegate = delegate;
    account.collateral = 0;
    account.sub_account_index = sub_account_index;
    account.bump = ctx.bumps.margin_account;
    account.version = MARGIN_ACCOUNT_VERSION;

    emit!(MarginAccountCreated {
        margin_account: ctx.accounts.margin_account.key(),
        owner,
        sub_account_index,
        delegate,
    });
    Ok(())
}
