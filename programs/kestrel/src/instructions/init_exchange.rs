use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::error::KestrelError;
use crate::events::ExchangeInitialized;
use crate::program::Kestrel;
use crate::state::*;

/// Creates the singleton exchange and its three token vaults (collateral, fees,
/// insurance), each a PDA token account whose authority is the exchange PDA.
///
/// The exchange can be created once; so nobody can front-run the deployer, an
/// upgradeable program (every mainnet deploy) requires its upgrade authority
/// as `admin`.
#[derive(Accounts)]
pub struct InitExchange<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(
        init,
        payer = admin,
        space = Exchange::SPACE,
        seeds = [EXCHANGE_SEED],
        bump,
    )]
    pub exchange: AccountLoader<'info, Exchange>,
    /// Classic SPL Token mint only: `Account<Mint>` refuses Token-2022, whose
    /// transfer fees and hooks would break vault accounting.
    pub collateral_mint: Account<'info, Mint>,
    #[account(
        init,
        payer = admin,
        seeds = [COLLATERAL_VAULT_SEED, exchange.key().as_ref()],
        bump,
        token::mint = collateral_mint,
        token::authority = exchange,
        token::token_program = token_program,
    )]
    pub collateral_vault: Account<'info, TokenAccount>,
    #[account(
        init,
        payer = admin,
        seeds = [FEE_VAULT_SEED, exchange.key().as_ref()],
        bump,
        token::mint = collateral_mint,
        token::authority = exchange,
        token::token_program = token_program,
    )]
    pub fee_vault: Account<'info, TokenAccount>,
    #[account(
        init,
        payer = admin,
        seeds = [INSURANCE_VAULT_SEED, exchange.key().as_ref()],
        bump,
        token::mint = collateral_mint,
        token::authority = exchange,
        token::token_program = token_program,
    )]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub program: Program<'info, Kestrel>,
    /// Required when `program` is owned by the upgradeable loader.
    pub program_data: Option<Account<'info, ProgramData>>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

impl InitExchange<'_> {
    fn check_admin_is_deployer(&self) -> Result<()> {
        // Programs outside the upgradeable loader (native test builds, immutable
        // deploys) have no upgrade authority to ask.
        let Some(expected_program_data) = self.program.programdata_address()? else {
            return Ok(());
        };
        let program_data = self
            .program_data
            .as_ref()
            .ok_or(KestrelError::NotUpgradeAuthority)?;
        require_keys_eq!(
            program_data.key(),
            expected_program_data,
            KestrelError::WrongProgramData
        );
        require!(
            program_data.upgrade_authority_address == Some(self.admin.key()),
            KestrelError::NotUpgradeAuthority
        );
        Ok(())
    }
}

#[inline(never)]
pub fn init_exchange(ctx: Context<InitExchange>) -> Result<()> {
    let accounts = &ctx.accounts;
    accounts.check_admin_is_deployer()?;
    let mut exchange = accounts.exchange.load_init()?;
    exchange.admin = accounts.admin.key();
    exchange.pending_admin = Pubkey::default();
    exchange.collateral_mint = accounts.collateral_mint.key();
    exchange.collateral_vault = accounts.collateral_vault.key();
    exchange.fee_vault = accounts.fee_vault.key();
    exchange.insurance_vault = accounts.insurance_vault.key();
    exchange.pause_flags = 0;
    exchange.bump = ctx.bumps.exchange;
    exchange.collateral_decimals = accounts.collateral_mint.decimals;

    emit!(ExchangeInitialized {
        exchange: accounts.exchange.key(),
        admin: exchange.admin,
        collateral_mint: exchange.collateral_mint,
    });
    Ok(())
}
