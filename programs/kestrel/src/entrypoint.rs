//! The program's entrypoint: Anchor's dispatch, split into groups.
//!
//! Anchor's generated `dispatch` calls one wrapper per instruction, and each
//! wrapper (with its `try_accounts`, every account check of the instruction)
//! returns `anchor_lang::Result` through a pointer: six argument registers,
//! which the SBF linker inlines (upstream BPF passes five). So every
//! instruction's checks end up in one function, and past about 30
//! instructions its jumps no longer fit SBPF v0's 16-bit branch offsets
//! (`Branch target out of insn range`). Here the instructions are routed in
//! groups: each group is its own function, returning a `u64` (five
//! registers, no pointer), so it stays out of line and each stays within
//! the range. Anchor's own entrypoint is off (`no-entrypoint`, implied by
//! the default `entrypoint` feature); the wrappers, their checks and their
//! error logs are Anchor's, unchanged.
//!
//! A new instruction goes in one group (the `every_instruction_is_routed`
//! test fails otherwise). The native test runs go through
//! [`process_instruction`] too.
use anchor_lang::prelude::*;
use anchor_lang::solana_program::entrypoint::ProgramResult;
use anchor_lang::solana_program::program_error::ProgramError;
use anchor_lang::Discriminator;

use crate::instruction;

/// What a group returns for an instruction that is not one of its own: no
/// program error encodes to it (built-in errors are multiples of 2^32,
/// custom ones below 2^32).
const NOT_ROUTED: u64 = u64::MAX;

/// The SBF entry: solana-program's `entrypoint_no_alloc!`, written out
/// because its inner call elides the lifetimes Anchor's accounts share. Up
/// to 64 account entries are deserialized into a fixed array on the stack
/// rather than a `Vec` (about 25 CU less per account: an order names a
/// dozen, a health walk one per position). An instruction may list up to
/// 255 entries, repeats included (a liquidation names the liquidator's
/// health accounts after the liquidatee's, some of them twice): past 64 the
/// entry takes upstream's `Vec` path, exactly as `entrypoint!` did.
#[cfg(all(feature = "entrypoint", target_os = "solana"))]
mod sbf {
    use anchor_lang::solana_program::account_info::AccountInfo;
    use anchor_lang::solana_program::entrypoint::{deserialize, deserialize_into, SUCCESS};
    use anchor_lang::solana_program::pubkey::Pubkey;
    use core::mem::MaybeUninit;

    const MAX_ACCOUNT_INFOS: usize = 64;

    /// # Safety
    /// Called by the runtime with its serialized input.
    #[no_mangle]
    pub unsafe extern "C" fn entrypoint(input: *mut u8) -> u64 {
        // SAFETY: the runtime's input starts with the entry count (u64).
        if unsafe { *(input as *const u64) } > MAX_ACCOUNT_INFOS as u64 {
            return many_accounts(input);
        }
        let mut accounts = [const { MaybeUninit::<AccountInfo>::uninit() }; MAX_ACCOUNT_INFOS];
        // SAFETY: the runtime's input, at most 64 entries (checked above,
        // and `deserialize_into` panics rather than write past the array);
        // the first `count` entries are written.
        let (program_id, count, data) = unsafe { deserialize_into(input, &mut accounts) };
        let accounts: &[AccountInfo] =
            unsafe { core::slice::from_raw_parts(accounts.as_ptr().cast(), count) };
        call(program_id, accounts, data)
    }

    /// More than 64 entries: upstream's `Vec` deserialization.
    #[inline(never)]
    unsafe fn many_accounts(input: *mut u8) -> u64 {
        // SAFETY: the runtime's input.
        let (program_id, accounts, data) = unsafe { deserialize(input) };
        call(program_id, &accounts, data)
    }

    /// Out of line, as upstream: the entry's frame holds the array.
    #[inline(never)]
    fn call<'a>(program_id: &'a Pubkey, accounts: &'a [AccountInfo<'a>], data: &'a [u8]) -> u64 {
        match super::process_instruction(program_id, accounts, data) {
            Ok(()) => SUCCESS,
            Err(error) => error.into(),
        }
    }

    anchor_lang::solana_program::entrypoint::custom_heap_default!();
    anchor_lang::solana_program::entrypoint::custom_panic_default!();
}

/// Routes `data` to its instruction's Anchor wrapper.
pub fn process_instruction<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> ProgramResult {
    if *program_id != crate::ID {
        return Err(logged(
            anchor_lang::error::ErrorCode::DeclaredProgramIdMismatch.into(),
        ));
    }
    // Trading first: its instructions are the hot path, and each group
    // compares discriminators one by one.
    let mut code = trading(program_id, accounts, data);
    if code == NOT_ROUTED {
        code = collateral(program_id, accounts, data);
    }
    if code == NOT_ROUTED {
        code = admin(program_id, accounts, data);
    }
    if code == NOT_ROUTED {
        code = options(program_id, accounts, data);
    }
    if code != NOT_ROUTED {
        return match code {
            0 => Ok(()),
            code => Err(ProgramError::from(code)),
        };
    }
    Err(logged(
        anchor_lang::error::ErrorCode::InstructionFallbackNotFound.into(),
    ))
}

/// Logs `error` as Anchor's entrypoint does and returns it.
fn logged(error: anchor_lang::error::Error) -> ProgramError {
    error.log();
    error.into()
}

/// A wrapper's result as a `u64`: 0 or the program error's code.
fn encoded(result: Result<()>) -> u64 {
    match result {
        Ok(()) => 0,
        Err(error) => u64::from(logged(error)),
    }
}

/// `if` the data is this instruction's, its wrapper's result, for each
/// (wrapper, instruction data type) pair; else [`NOT_ROUTED`].
macro_rules! route {
    ($program_id:ident, $accounts:ident, $data:ident; $($wrapper:ident: $ix:ident),* $(,)?) => {{
        $(
            if $data.starts_with(instruction::$ix::DISCRIMINATOR) {
                return encoded(crate::__private::__global::$wrapper(
                    $program_id,
                    $accounts,
                    &$data[instruction::$ix::DISCRIMINATOR.len()..],
                ));
            }
        )*
        NOT_ROUTED
    }};
}

/// Exchange, market and underlying administration.
#[inline(never)]
fn admin<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> u64 {
    route!(program_id, accounts, data;
        init_exchange: InitExchange,
        propose_admin: ProposeAdmin,
        accept_admin: AcceptAdmin,
        set_pause: SetPause,
        create_market: CreateMarket,
        create_underlying: CreateUnderlying,
        set_underlying_oracle: SetUnderlyingOracle,
        set_market_params: SetMarketParams,
        set_market_limits: SetMarketLimits,
        set_risk_scaling: SetRiskScaling,
        set_price_limit: SetPriceLimit,
        set_scenario_margin: SetScenarioMargin,
        delist_market: DelistMarket,
        set_market_status: SetMarketStatus,
        sweep_fees: SweepFees,
    )
}

/// Margin accounts, collateral, insurance, liquidation and bankruptcy.
#[inline(never)]
fn collateral<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> u64 {
    route!(program_id, accounts, data;
        create_margin_account: CreateMarginAccount,
        set_delegate: SetDelegate,
        set_margin_mode: SetMarginMode,
        deposit: Deposit,
        withdraw: Withdraw,
        close_margin_account: CloseMarginAccount,
        stake: Stake,
        request_unstake: RequestUnstake,
        unstake: Unstake,
        settle_funding: SettleFunding,
        liquidate: Liquidate,
        settle_bankruptcy: SettleBankruptcy,
    )
}

/// Orders, the cranks and prices.
#[inline(never)]
fn trading<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> u64 {
    route!(program_id, accounts, data;
        place_order: PlaceOrder,
        cancel_order: CancelOrder,
        cancel_order_by_client_id: CancelOrderByClientId,
        cancel_all: CancelAll,
        consume_events: ConsumeEvents,
        update_funding: UpdateFunding,
        refresh_underlying: RefreshUnderlying,
        update_basis: UpdateBasis,
        sample_settlement: SampleSettlement,
        settle_expired: SettleExpired,
    )
}

/// Options: listing, their volatility input, and their valuation.
#[inline(never)]
fn options<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> u64 {
    route!(program_id, accounts, data;
        create_option_market: CreateOptionMarket,
        set_option_config: SetOptionConfig,
        refresh_volatility: RefreshVolatility,
        value_option: ValueOption,
        refresh_risk_arrays: RefreshRiskArrays,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction of the IDL reaches a wrapper: its discriminator
    /// with no accounts is refused by the wrapper's account checks, never
    /// as an instruction nobody routes.
    #[test]
    fn every_instruction_is_routed() {
        let idl: serde_json::Value =
            serde_json::from_str(include_str!("../../../idl/kestrel.json"))
                .expect("the committed IDL");
        let instructions = idl["instructions"].as_array().expect("instructions");
        assert!(instructions.len() >= 30);
        let program_id = crate::ID;
        for ix in instructions {
            let name = ix["name"].as_str().unwrap();
            let data: Vec<u8> = ix["discriminator"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect();
            let routed = [
                admin(&program_id, &[], &data),
                collateral(&program_id, &[], &data),
                trading(&program_id, &[], &data),
                options(&program_id, &[], &data),
            ];
            assert_eq!(
                routed.iter().filter(|code| **code != NOT_ROUTED).count(),
                1,
                "{name}: routed by exactly one group"
            );
        }
        let unknown = [0xffu8; 8];
        assert!(process_instruction(&program_id, &[], &unknown).is_err());
    }
}
