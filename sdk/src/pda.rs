//! Program-derived addresses, built from the seed constants the program uses.
use anchor_lang::prelude::Pubkey;
use kestrel::state::*;

/// Where the upgradeable loader keeps Kestrel's code and upgrade authority.
pub fn program_data() -> Pubkey {
    Pubkey::find_program_address(
        &[kestrel::ID.as_ref()],
        &anchor_lang::solana_program::bpf_loader_upgradeable::ID,
    )
    .0
}

pub fn exchange() -> Pubkey {
    Pubkey::find_program_address(&[EXCHANGE_SEED], &kestrel::ID).0
}

pub fn collateral_vault(exchange: &Pubkey) -> Pubkey {
    vault(COLLATERAL_VAULT_SEED, exchange)
}

pub fn fee_vault(exchange: &Pubkey) -> Pubkey {
    vault(FEE_VAULT_SEED, exchange)
}

pub fn insurance_vault(exchange: &Pubkey) -> Pubkey {
    vault(INSURANCE_VAULT_SEED, exchange)
}

fn vault(seed: &[u8], exchange: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[seed, exchange.as_ref()], &kestrel::ID).0
}

pub fn margin_account(exchange: &Pubkey, owner: &Pubkey, sub_account_index: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[
            MARGIN_ACCOUNT_SEED,
            exchange.as_ref(),
            owner.as_ref(),
            &sub_account_index.to_le_bytes(),
        ],
        &kestrel::ID,
    )
    .0
}

pub fn underlying(exchange: &Pubkey, underlying_index: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[
            UNDERLYING_SEED,
            exchange.as_ref(),
            &underlying_index.to_le_bytes(),
        ],
        &kestrel::ID,
    )
    .0
}

pub fn market(exchange: &Pubkey, market_index: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[MARKET_SEED, exchange.as_ref(), &market_index.to_le_bytes()],
        &kestrel::ID,
    )
    .0
}
