//! The exchange's address lookup table: the accounts every large Kestrel
//! transaction names (the exchange, its vaults, the token program, and per
//! market the market, both book sides, the event queue and the oracle
//! accounts), so a v0 transaction names each with a one-byte index instead
//! of 32 bytes. A liquidation of an account holding the maximum positions
//! only fits 1,232 bytes that way.
//!
//! Lifecycle (what [`crate::client::Chain::create_lookup_table`] and
//! [`crate::client::Chain::extend_lookup_table`] do): `create` derives the
//! table's address from its authority and a recent slot (one the cluster's
//! SlotHashes sysvar still holds); `extend` appends addresses, at most
//! [`MAX_ADDRESSES_PER_EXTEND`] per transaction; addresses appended in a
//! slot are usable from the next slot on.
use solana_address_lookup_table_interface::instruction as alt;
use solana_address_lookup_table_interface::state::AddressLookupTable;
use solana_sdk::instruction::Instruction;
pub use solana_sdk::message::AddressLookupTableAccount;

use crate::ix::MarketAccounts;
use crate::{pda, Pubkey};

pub use solana_address_lookup_table_interface::program::ID as PROGRAM_ID;
pub use solana_address_lookup_table_interface::state::LOOKUP_TABLE_MAX_ADDRESSES;

/// Addresses one extend transaction carries (with the compute-budget
/// instructions it fits 1,232 bytes; pinned by a test below).
pub const MAX_ADDRESSES_PER_EXTEND: usize = 24;

/// The SlotHashes sysvar: the recent slots a table may be created at.
pub const SLOT_HASHES: Pubkey = solana_sdk::sysvar::slot_hashes::ID;

/// What the exchange's table holds, in order and without repeats: the
/// exchange, its collateral, fee and insurance vaults, the token and system
/// programs, then per market (in the order given) the market, bids, asks,
/// event queue, its underlying and the underlying's primary and fallback
/// oracles.
pub fn exchange_addresses(markets: &[MarketAccounts]) -> Vec<Pubkey> {
    let exchange = pda::exchange();
    let mut addresses = vec![
        exchange,
        pda::collateral_vault(&exchange),
        pda::fee_vault(&exchange),
        pda::insurance_vault(&exchange),
        anchor_spl::token::ID,
        anchor_lang::system_program::ID,
    ];
    for market in markets {
        addresses.extend([
            market.market,
            market.bids,
            market.asks,
            market.event_queue,
            market.underlying.underlying,
            market.underlying.primary_oracle,
        ]);
        addresses.extend(market.underlying.fallback_oracle);
    }
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|a| seen.insert(*a));
    addresses
}

/// `wanted` addresses the table lacks, in `wanted`'s order.
pub fn missing(table: &[Pubkey], wanted: &[Pubkey]) -> Vec<Pubkey> {
    let held: std::collections::HashSet<&Pubkey> = table.iter().collect();
    let mut seen = std::collections::HashSet::new();
    wanted
        .iter()
        .filter(|a| !held.contains(a) && seen.insert(**a))
        .copied()
        .collect()
}

/// Creates a table owned by `authority` (rent paid by `payer`) at
/// `recent_slot`, a slot in the cluster's SlotHashes; returns the
/// instruction and the table's address.
pub fn create(authority: &Pubkey, payer: &Pubkey, recent_slot: u64) -> (Instruction, Pubkey) {
    alt::create_lookup_table(*authority, *payer, recent_slot)
}

/// The table's address for `authority` and `recent_slot` (the program's
/// own derivation).
pub fn address(authority: &Pubkey, recent_slot: u64) -> Pubkey {
    alt::derive_lookup_table_address(authority, recent_slot).0
}

/// Appends `addresses` to `table` (signed by its authority, the growth paid
/// by `payer`), one instruction per [`MAX_ADDRESSES_PER_EXTEND`]: send each
/// in its own transaction.
pub fn extend(
    table: &Pubkey,
    authority: &Pubkey,
    payer: &Pubkey,
    addresses: &[Pubkey],
) -> Vec<Instruction> {
    addresses
        .chunks(MAX_ADDRESSES_PER_EXTEND)
        .map(|chunk| alt::extend_lookup_table(*table, *authority, Some(*payer), chunk.to_vec()))
        .collect()
}

/// A decoded lookup table account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupTable {
    pub address: Pubkey,
    /// `None` once frozen.
    pub authority: Option<Pubkey>,
    /// `u64::MAX` while active.
    pub deactivation_slot: u64,
    /// Addresses appended in this slot are usable from the next one.
    pub last_extended_slot: u64,
    /// Where that slot's appends start.
    pub last_extended_slot_start_index: u8,
    pub addresses: Vec<Pubkey>,
}

impl LookupTable {
    pub fn decode(address: Pubkey, data: &[u8]) -> Result<Self, String> {
        let table = AddressLookupTable::deserialize(data)
            .map_err(|e| format!("{address} is not an address lookup table: {e}"))?;
        Ok(Self {
            address,
            authority: table.meta.authority,
            deactivation_slot: table.meta.deactivation_slot,
            last_extended_slot: table.meta.last_extended_slot,
            last_extended_slot_start_index: table.meta.last_extended_slot_start_index,
            addresses: table.addresses.to_vec(),
        })
    }

    pub fn is_active(&self) -> bool {
        self.deactivation_slot == u64::MAX
    }

    /// The addresses a transaction processed at `slot` may look up: all of
    /// them once `slot` is past the last extension.
    pub fn usable_at(&self, slot: u64) -> AddressLookupTableAccount {
        let usable = if slot > self.last_extended_slot {
            self.addresses.len()
        } else {
            usize::from(self.last_extended_slot_start_index).min(self.addresses.len())
        };
        AddressLookupTableAccount {
            key: self.address,
            addresses: self.addresses[..usable].to_vec(),
        }
    }

    /// All its addresses, for a transaction sent once it is usable.
    pub fn account(&self) -> AddressLookupTableAccount {
        AddressLookupTableAccount {
            key: self.address,
            addresses: self.addresses.clone(),
        }
    }
}

/// The newest slot in the SlotHashes sysvar's data (bincode: a u64 count,
/// then (slot u64, hash [u8; 32]) pairs, newest first).
pub fn newest_slot_hash(data: &[u8]) -> Option<u64> {
    let count = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    if count == 0 {
        return None;
    }
    Some(u64::from_le_bytes(data.get(8..16)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{self, Budget};
    use solana_sdk::hash::Hash;

    fn market(index: u16) -> MarketAccounts {
        MarketAccounts {
            market_index: index,
            market: Pubkey::new_unique(),
            bids: Pubkey::new_unique(),
            asks: Pubkey::new_unique(),
            event_queue: Pubkey::new_unique(),
            underlying: crate::ix::UnderlyingAccounts {
                underlying: Pubkey::new_unique(),
                primary_oracle: Pubkey::new_unique(),
                fallback_oracle: Some(Pubkey::new_unique()),
            },
        }
    }

    #[test]
    fn the_exchange_table_lists_each_account_once() {
        let (a, mut b) = (market(0), market(1));
        b.underlying = a.underlying; // a shared underlying
        let addresses = exchange_addresses(&[a, b]);
        assert_eq!(addresses.len(), 6 + 7 + 4);
        assert_eq!(addresses[0], pda::exchange());
        assert!(missing(&addresses, &exchange_addresses(&[a, b])).is_empty());
        let c = market(2);
        assert_eq!(
            missing(&addresses, &exchange_addresses(&[a, b, c])),
            exchange_addresses(&[c])[6..].to_vec()
        );
    }

    #[test]
    fn a_full_extend_fits_one_transaction() {
        let (table, authority) = (Pubkey::new_unique(), Pubkey::new_unique());
        let size = |n: usize| {
            let addresses: Vec<Pubkey> = (0..n).map(|_| Pubkey::new_unique()).collect();
            let extend = extend(&table, &authority, &authority, &addresses);
            let budget = Budget {
                compute_unit_limit: 1_400_000,
                compute_unit_price: 1,
                loaded_accounts_data_size: Some(1 << 20),
            };
            let mut all = budget.instructions();
            all.push(extend[0].clone());
            tx::wire_size(&tx::message(&authority, &all, &[], Hash::default()).unwrap())
        };
        assert!(size(MAX_ADDRESSES_PER_EXTEND) <= tx::PACKET_DATA_SIZE);
        assert_eq!(
            extend(&table, &authority, &authority, &[Pubkey::new_unique(); 49]).len(),
            3
        );
    }

    #[test]
    fn addresses_extended_in_this_slot_wait_for_the_next() {
        let table = LookupTable {
            address: Pubkey::new_unique(),
            authority: None,
            deactivation_slot: u64::MAX,
            last_extended_slot: 10,
            last_extended_slot_start_index: 2,
            addresses: vec![Pubkey::new_unique(); 5],
        };
        assert_eq!(table.usable_at(10).addresses.len(), 2);
        assert_eq!(table.usable_at(11).addresses.len(), 5);
        assert!(table.is_active());
    }

    #[test]
    fn slot_hashes_newest_first() {
        let mut data = 2u64.to_le_bytes().to_vec();
        for slot in [41u64, 40] {
            data.extend_from_slice(&slot.to_le_bytes());
            data.extend_from_slice(&[0; 32]);
        }
        assert_eq!(newest_slot_hash(&data), Some(41));
        assert_eq!(newest_slot_hash(&0u64.to_le_bytes()), None);
        assert_eq!(newest_slot_hash(&[]), None);
    }
}
