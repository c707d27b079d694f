//! Instruction builders. Account lists come from the program's generated
//! `accounts::*` structs, so their order cannot drift from the program's.
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{system_program, InstructionData, ToAccountMetas};
use kestrel::instructions::CreateMarketArgs;
use kestrel::state::{MarketParams, MarketStatus};
use kestrel::{accounts, instruction};

use crate::pda;

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: kestrel::ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

/// Creates the exchange and its vaults; `admin` pays and becomes the admin.
/// `program_data` is [`pda::program_data`] when Kestrel is deployed upgradeable
/// (then `admin` must be its upgrade authority), `None` otherwise.
pub fn init_exchange(
    admin: &Pubkey,
    collateral_mint: &Pubkey,
    program_data: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::InitExchange {
            admin: *admin,
            exchange,
            collateral_mint: *collateral_mint,
            collateral_vault: pda::collateral_vault(&exchange),
            fee_vault: pda::fee_vault(&exchange),
            insurance_vault: pda::insurance_vault(&exchange),
            program: kestrel::ID,
            program_data,
            token_program: anchor_spl::token::ID,
            system_program: system_program::ID,
        },
        instruction::InitExchange {},
    )
}

pub fn propose_admin(admin: &Pubkey, proposed_admin: &Pubkey) -> Instruction {
    build(
        accounts::ProposeAdmin {
            admin: *admin,
            exchange: pda::exchange(),
        },
        instruction::ProposeAdmin {
            proposed_admin: *proposed_admin,
        },
    )
}

pub fn accept_admin(new_admin: &Pubkey) -> Instruction {
    build(
        accounts::AcceptAdmin {
            new_admin: *new_admin,
            exchange: pda::exchange(),
        },
        instruction::AcceptAdmin {},
    )
}

/// `pause_flags` is the complete new bit set (see `PauseFlags`).
pub fn set_pause(admin: &Pubkey, pause_flags: u32) -> Instruction {
    build(
        accounts::SetPause {
            admin: *admin,
            exchange: pda::exchange(),
        },
        instruction::SetPause { pause_flags },
    )
}

pub fn create_margin_account(
    owner: &Pubkey,
    sub_account_index: u16,
    delegate: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::CreateMarginAccount {
            owner: *owner,
            exchange,
            margin_account: pda::margin_account(&exchange, owner, sub_account_index),
            system_program: system_program::ID,
        },
        instruction::CreateMarginAccount {
            sub_account_index,
            delegate,
        },
    )
}

pub fn set_delegate(
    owner: &Pubkey,
    margin_account: &Pubkey,
    delegate: Option<Pubkey>,
) -> Instruction {
    build(
        accounts::SetDelegate {
            owner: *owner,
            margin_account: *margin_account,
        },
        instruction::SetDelegate { delegate },
    )
}

/// `depositor` (owner or delegate) moves `amount` native units from `source`.
pub fn deposit(
    depositor: &Pubkey,
    margin_account: &Pubkey,
    source: &Pubkey,
    amount: u64,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::Deposit {
            depositor: *depositor,
            exchange,
            margin_account: *margin_account,
            collateral_vault: pda::collateral_vault(&exchange),
            source: *source,
            token_program: anchor_spl::token::ID,
        },
        instruction::Deposit { amount },
    )
}

pub fn withdraw(
    owner: &Pubkey,
    margin_account: &Pubkey,
    destination: &Pubkey,
    amount: u64,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::Withdraw {
            owner: *owner,
            exchange,
            margin_account: *margin_account,
            collateral_vault: pda::collateral_vault(&exchange),
            destination: *destination,
            token_program: anchor_spl::token::ID,
        },
        instruction::Withdraw { amount },
    )
}

pub fn close_margin_account(owner: &Pubkey, margin_account: &Pubkey) -> Instruction {
    build(
        accounts::CloseMarginAccount {
            owner: *owner,
            margin_account: *margin_account,
        },
        instruction::CloseMarginAccount {},
    )
}

/// The market accounts a client creates before `create_market`: Kestrel-owned,
/// zeroed, of exactly these sizes (Anchor discriminator included).
pub const BOOK_SIDE_ACCOUNT_LEN: usize = 8 + kestrel::state::BOOK_SIDE_BYTES;
pub const EVENT_QUEUE_ACCOUNT_LEN: usize = 8 + kestrel::state::EVENT_QUEUE_BYTES;

/// Creates market `args.market_index`; `fallback_oracle` is required exactly
/// when `args.params.oracle` names a fallback.
pub fn create_market(
    admin: &Pubkey,
    args: CreateMarketArgs,
    bids: &Pubkey,
    asks: &Pubkey,
    event_queue: &Pubkey,
    primary_oracle: &Pubkey,
    fallback_oracle: Option<Pubkey>,
) -> Instruction {
    let exchange = pda::exchange();
    build(
        accounts::CreateMarket {
            admin: *admin,
            exchange,
            market: pda::market(&exchange, args.market_index),
            bids: *bids,
            asks: *asks,
            event_queue: *event_queue,
            primary_oracle: *primary_oracle,
            fallback_oracle,
            system_program: system_program::ID,
        },
        instruction::CreateMarket { args },
    )
}

pub fn set_market_params(
    admin: &Pubkey,
    market: &Pubkey,
    params: MarketParams,
    primary_oracle: &Pubkey,
    fallback_oracle: Option<Pubkey>,
) -> Instruction {
    build(
        accounts::SetMarketParams {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
            primary_oracle: *primary_oracle,
            fallback_oracle,
        },
        instruction::SetMarketParams { params },
    )
}

pub fn set_market_status(admin: &Pubkey, market: &Pubkey, status: MarketStatus) -> Instruction {
    build(
        accounts::SetMarketStatus {
            admin: *admin,
            exchange: pda::exchange(),
            market: *market,
        },
        instruction::SetMarketStatus { status },
    )
}
