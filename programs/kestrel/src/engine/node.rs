//! Slab nodes of the crit-bit tree. Every node is 88 bytes so any slot can hold
//! any kind; keys are `u128` in use and `[u64; 2]` (lo, hi) in storage, because
//! 16-byte-aligned fields cannot live in account data (see docs/ARCHITECTURE.md).
use bytemuck::{Pod, Zeroable};

use crate::units::{BaseLots, Ticks};

/// A margin account's address, as bytes (the engine knows no Solana types).
pub type Owner = [u8; 32];

pub const NODE_SIZE: usize = 88;
/// "No node": an empty root, child or free-list end.
pub const NIL: u32 = u32::MAX;

pub const TAG_UNINITIALIZED: u8 = 0;
pub const TAG_INNER: u8 = 1;
pub const TAG_LEAF: u8 = 2;
pub const TAG_FREE: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    Bid = 0,
    Ask = 1,
}

impl Side {
    pub fn opposite(self) -> Self {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Side::Bid),
            1 => Some(Side::Ask),
            _ => None,
        }
    }

    /// Whether a maker at `maker_price` can trade with a taker of this side
    /// whose limit is `taker_price`.
    pub fn crosses(self, taker_price: Ticks, maker_price: Ticks) -> bool {
        match self {
            Side::Bid => maker_price <= taker_price,
            Side::Ask => maker_price >= taker_price,
        }
    }
}

/// The tree key, which is also the order id: price in the high 64 bits, the
/// market's order sequence number in the low 64. Asks are best at the minimum
/// key; bids at the maximum, so their sequence is inverted to keep equal
/// prices first-in first-out.
pub fn order_key(side: Side, price: Ticks, seq: u64) -> u128 {
    let low = match side {
        Side::Bid => !seq,
        Side::Ask => seq,
    };
    (u128::from(price.0) << 64) | u128::from(low)
}

pub fn key_price(key: u128) -> Ticks {
    Ticks((key >> 64) as u64)
}

pub fn key_to_parts(key: u128) -> [u64; 2] {
    [key as u64, (key >> 64) as u64]
}

pub fn key_from_parts(parts: [u64; 2]) -> u128 {
    (u128::from(parts[1]) << 64) | u128::from(parts[0])
}

/// Leaf flags: what the owner asked for, kept for the program's checks.
pub mod order_flags {
    pub const REDUCE_ONLY: u8 = 1 << 0;
    pub const POST_ONLY: u8 = 1 << 1;
}

/// A resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LeafNode {
    pub tag: u8,
    /// Index of the order in its owner's open-orders slots.
    pub owner_slot: u8,
    pub flags: u8,
    pub padding: [u8; 5],
    pub key: [u64; 2],
    pub owner: Owner,
    pub quantity: BaseLots,
    pub client_order_id: u64,
    /// When the order was placed (unix seconds).
    pub timestamp: u64,
    /// Unix seconds at which the order stops being valid; 0 = good till cancelled.
    pub expiry: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InnerNode {
    pub tag: u8,
    pub padding: [u8; 3],
    /// Number of leading key bits every key below this node shares.
    pub prefix_len: u32,
    /// Any key of the subtree (only its first `prefix_len` bits matter).
    pub key: [u64; 2],
    /// children[b]: the subtree whose bit `prefix_len` (from the top) is b.
    pub children: [u32; 2],
    pub reserved: [u8; 56],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FreeNode {
    pub tag: u8,
    pub padding: [u8; 3],
    pub next: u32,
    pub reserved: [u8; 80],
}

/// Untyped slot; cast to the node its tag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AnyNode {
    pub tag: u8,
    pub data: [u8; 7],
    pub rest: [u64; 10],
}

const _: () = assert!(core::mem::size_of::<LeafNode>() == NODE_SIZE);
const _: () = assert!(core::mem::size_of::<InnerNode>() == NODE_SIZE);
const _: () = assert!(core::mem::size_of::<FreeNode>() == NODE_SIZE);
const _: () = assert!(core::mem::size_of::<AnyNode>() == NODE_SIZE);
const _: () = assert!(core::mem::align_of::<AnyNode>() == 8);

impl LeafNode {
    pub fn key(&self) -> u128 {
        key_from_parts(self.key)
    }

    pub fn price(&self) -> Ticks {
        key_price(self.key())
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expiry != 0 && now >= self.expiry
    }
}

impl InnerNode {
    pub fn key(&self) -> u128 {
        key_from_parts(self.key)
    }
}

/// Bit `prefix_len` of `key`, counted from the most significant (0..=127).
pub fn crit_bit(key: u128, prefix_len: u32) -> usize {
    ((key >> (127 - prefix_len)) & 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_sort_ascending_and_bids_descending_with_fifo_at_one_price() {
        let a1 = order_key(Side::Ask, Ticks(10), 1);
        let a2 = order_key(Side::Ask, Ticks(10), 2);
        let a3 = order_key(Side::Ask, Ticks(11), 0);
        assert!(a1 < a2 && a2 < a3, "asks: lower price, then earlier, first");
        let b1 = order_key(Side::Bid, Ticks(10), 1);
        let b2 = order_key(Side::Bid, Ticks(10), 2);
        let b3 = order_key(Side::Bid, Ticks(9), 0);
        assert!(
            b1 > b2 && b2 > b3,
            "bids: higher price, then earlier, first"
        );
        assert_eq!(key_price(b1), Ticks(10));
        assert_eq!(key_from_parts(key_to_parts(a3)), a3);
    }

    #[test]
    fn crit_bit_counts_from_the_top() {
        assert_eq!(crit_bit(1u128 << 127, 0), 1);
        assert_eq!(crit_bit(1, 127), 1);
        assert_eq!(crit_bit(1, 126), 0);
    }
}
