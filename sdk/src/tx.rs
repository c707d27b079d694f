//! Transactions as both chains send them: the compute-budget instructions,
//! then the caller's, compiled as a legacy message or, given address lookup
//! tables, as a v0 message; and their size on the wire against the
//! 1,232-byte packet limit.
use solana_compute_budget_interface::ComputeBudgetInstruction;
use solana_sdk::hash::Hash;
use solana_sdk::instruction::Instruction;
use solana_sdk::message::{v0, AddressLookupTableAccount, Message, VersionedMessage};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::VersionedTransaction;

use crate::client::SendError;
use crate::Pubkey;

/// The most bytes a serialized transaction may take (signatures included).
pub const PACKET_DATA_SIZE: usize = 1_232;

/// Block packing charges for the requested loaded-accounts data in steps of
/// this many bytes (8 CU each).
pub const LOADED_DATA_SIZE_STEP: u32 = 32 * 1024;

/// The runtime's ceiling (and default) for loaded accounts data: 64 MiB.
pub const MAX_LOADED_ACCOUNTS_DATA_SIZE: u32 = 64 * 1024 * 1024;

/// The compute-budget instructions a transaction starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub compute_unit_limit: u32,
    /// Micro-lamports per compute unit.
    pub compute_unit_price: u64,
    /// `SetLoadedAccountsDataSizeLimit`: the bytes of account data the
    /// transaction may load (the runtime's default is 64 MiB, which block
    /// packing charges 16,384 CU for). Dropped when it alone would take the
    /// transaction past [`PACKET_DATA_SIZE`].
    pub loaded_accounts_data_size: Option<u32>,
}

impl Budget {
    pub fn instructions(&self) -> Vec<Instruction> {
        let mut budget = vec![
            ComputeBudgetInstruction::set_compute_unit_limit(self.compute_unit_limit),
            ComputeBudgetInstruction::set_compute_unit_price(self.compute_unit_price),
        ];
        if let Some(bytes) = self.loaded_accounts_data_size {
            budget.push(ComputeBudgetInstruction::set_loaded_accounts_data_size_limit(bytes));
        }
        budget
    }
}

/// The loaded-accounts data limit to request, from what a simulation loaded:
/// 10% of headroom, rounded up to the 32 KiB step block packing charges by.
pub fn loaded_accounts_data_size_limit(simulated: u32) -> u32 {
    let padded = simulated.saturating_add(simulated / 10).max(1);
    padded
        .div_ceil(LOADED_DATA_SIZE_STEP)
        .saturating_mul(LOADED_DATA_SIZE_STEP)
        .min(MAX_LOADED_ACCOUNTS_DATA_SIZE)
}

/// A legacy message without tables, a v0 message resolving what it can
/// through `tables` otherwise (a table none of whose addresses is used is
/// left out of the message).
pub fn message(
    payer: &Pubkey,
    instructions: &[Instruction],
    tables: &[AddressLookupTableAccount],
    blockhash: Hash,
) -> Result<VersionedMessage, SendError> {
    if tables.is_empty() {
        return Ok(VersionedMessage::Legacy(Message::new_with_blockhash(
            instructions,
            Some(payer),
            &blockhash,
        )));
    }
    v0::Message::try_compile(payer, instructions, tables, blockhash)
        .map(VersionedMessage::V0)
        .map_err(|e| SendError::Unsendable(format!("compiling a v0 message: {e}")))
}

/// Bytes the signed transaction takes on the wire: the signature count
/// (compact-u16), the signatures, the message.
pub fn wire_size(message: &VersionedMessage) -> usize {
    let signatures = usize::from(message.header().num_required_signatures);
    let count_len = if signatures < 0x80 { 1 } else { 2 };
    count_len + 64 * signatures + message.serialize().len()
}

/// `budget`'s instructions, then `instructions`, compiled (see [`message`]).
/// The loaded-data limit is dropped if only it breaks the packet limit; a
/// transaction still above it is [`SendError::Unsendable`].
pub fn compile(
    payer: &Pubkey,
    budget: &Budget,
    instructions: &[Instruction],
    tables: &[AddressLookupTableAccount],
    blockhash: Hash,
) -> Result<VersionedMessage, SendError> {
    let build = |budget: &Budget| {
        let mut all = budget.instructions();
        all.extend_from_slice(instructions);
        message(payer, &all, tables, blockhash)
    };
    let compiled = build(budget)?;
    if wire_size(&compiled) <= PACKET_DATA_SIZE {
        return Ok(compiled);
    }
    let lean = Budget {
        loaded_accounts_data_size: None,
        ..*budget
    };
    let compiled = build(&lean)?;
    match wire_size(&compiled) {
        size if size <= PACKET_DATA_SIZE => Ok(compiled),
        size => Err(SendError::Unsendable(format!(
            "a {} transaction of {size} bytes exceeds the {PACKET_DATA_SIZE}-byte limit",
            if tables.is_empty() { "legacy" } else { "v0" }
        ))),
    }
}

/// Signs `message` by `payer` and whichever of `signers` it requires.
pub fn sign(
    message: VersionedMessage,
    payer: &Keypair,
    signers: &[&Keypair],
) -> Result<VersionedTransaction, SendError> {
    let required =
        &message.static_account_keys()[..usize::from(message.header().num_required_signatures)];
    let mut keys: Vec<&Keypair> = vec![payer];
    for signer in signers {
        let key = signer.pubkey();
        if required.contains(&key) && keys.iter().all(|k| k.pubkey() != key) {
            keys.push(signer);
        }
    }
    VersionedTransaction::try_new(message, &keys)
        .map_err(|e| SendError::Unsendable(format!("signing: {e}")))
}

/// Every address `message` names: its static keys and those it loads from
/// `tables`.
pub fn addresses(message: &VersionedMessage, tables: &[AddressLookupTableAccount]) -> Vec<Pubkey> {
    let mut all = message.static_account_keys().to_vec();
    for lookup in message.address_table_lookups().unwrap_or_default() {
        let Some(table) = tables.iter().find(|t| t.key == lookup.account_key) else {
            continue;
        };
        for index in lookup
            .writable_indexes
            .iter()
            .chain(&lookup.readonly_indexes)
        {
            all.extend(table.addresses.get(usize::from(*index)));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_sdk::instruction::AccountMeta;

    fn instruction(accounts: usize) -> Instruction {
        Instruction {
            program_id: Pubkey::new_unique(),
            accounts: (0..accounts)
                .map(|_| AccountMeta::new_readonly(Pubkey::new_unique(), false))
                .collect(),
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn wire_size_is_the_serialized_transaction() {
        let payer = Keypair::new();
        let ix = instruction(5);
        for tables in [
            vec![],
            vec![AddressLookupTableAccount {
                key: Pubkey::new_unique(),
                addresses: ix.accounts.iter().map(|m| m.pubkey).collect(),
            }],
        ] {
            let message = message(
                &payer.pubkey(),
                std::slice::from_ref(&ix),
                &tables,
                Hash::default(),
            )
            .unwrap();
            let size = wire_size(&message);
            let tx = sign(message, &payer, &[]).unwrap();
            assert_eq!(size, bincode_len(&tx));
        }
    }

    fn bincode_len(tx: &VersionedTransaction) -> usize {
        // signatures (compact-u16 count) then the message, as the wire has it.
        1 + 64 * tx.signatures.len() + tx.message.serialize().len()
    }

    #[test]
    fn table_addresses_cost_one_byte_each() {
        let payer = Pubkey::new_unique();
        let ix = instruction(30);
        let table = AddressLookupTableAccount {
            key: Pubkey::new_unique(),
            addresses: ix.accounts.iter().map(|m| m.pubkey).collect(),
        };
        let legacy =
            wire_size(&message(&payer, std::slice::from_ref(&ix), &[], Hash::default()).unwrap());
        let v0 = wire_size(
            &message(
                &payer,
                std::slice::from_ref(&ix),
                std::slice::from_ref(&table),
                Hash::default(),
            )
            .unwrap(),
        );
        // 30 keys of 32 bytes become 30 one-byte indexes, plus the version
        // byte, the table's key and its two index lists' lengths.
        assert_eq!(legacy - v0, 30 * 32 - 30 - (1 + 1 + 32 + 1 + 1));
        let message =
            message(&payer, &[ix], std::slice::from_ref(&table), Hash::default()).unwrap();
        let mut named = addresses(&message, std::slice::from_ref(&table));
        named.sort();
        let mut expected = table.addresses.clone();
        expected.extend(message.static_account_keys());
        expected.sort();
        assert_eq!(named, expected);
    }

    #[test]
    fn the_loaded_data_limit_is_dropped_before_the_packet_limit_is_broken() {
        let payer = Pubkey::new_unique();
        let budget = Budget {
            compute_unit_limit: 200_000,
            compute_unit_price: 1,
            loaded_accounts_data_size: Some(64 * 1024),
        };
        // 30 accounts and `data` bytes: find where the three budget
        // instructions are a few bytes over and two fit.
        let call = instruction(30);
        let sized = |data: usize| Instruction {
            data: vec![7; data],
            ..call.clone()
        };
        let fits = |data: usize, budget: &Budget| {
            let mut all = budget.instructions();
            all.push(sized(data));
            wire_size(&message(&payer, &all, &[], Hash::default()).unwrap()) <= PACKET_DATA_SIZE
        };
        let lean = Budget {
            loaded_accounts_data_size: None,
            ..budget
        };
        let data = (0..400)
            .find(|&d| !fits(d, &budget) && fits(d, &lean))
            .expect("a size where only the third instruction breaks the limit");
        let compiled = compile(&payer, &budget, &[sized(data)], &[], Hash::default()).unwrap();
        assert_eq!(
            compiled.instructions().len(),
            3,
            "two budget instructions and the call"
        );
        let with_room = compile(&payer, &budget, &[sized(data - 8)], &[], Hash::default()).unwrap();
        assert_eq!(with_room.instructions().len(), 4, "all three and the call");
        let too_big = compile(&payer, &budget, &[sized(data + 8)], &[], Hash::default());
        assert!(
            matches!(too_big, Err(SendError::Unsendable(_))),
            "{too_big:?}"
        );
    }

    #[test]
    fn the_loaded_data_limit_pads_and_rounds_to_the_charging_step() {
        assert_eq!(loaded_accounts_data_size_limit(0), 32 * 1024);
        assert_eq!(loaded_accounts_data_size_limit(32 * 1024), 64 * 1024);
        assert_eq!(loaded_accounts_data_size_limit(600_000), 672 * 1024);
        assert_eq!(
            loaded_accounts_data_size_limit(u32::MAX),
            MAX_LOADED_ACCOUNTS_DATA_SIZE
        );
    }
}
