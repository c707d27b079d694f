//! One side of the book: a crit-bit tree over a fixed slab of nodes, viewed in
//! place over a byte slice (account data). Capacity is `capacity_orders`
//! leaves; the slab has twice as many nodes, enough for the inner nodes a tree
//! of that many leaves needs, and every unused node is on the free list.
use bytemuck::{Pod, Zeroable};

use super::error::EngineError;
use super::node::*;
use crate::units::BaseLots;

/// The book side header, followed in the slab by `2 * capacity_orders` nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BookSideHeader {
    pub side: u8,
    pub padding: [u8; 3],
    pub root: u32,
    pub leaf_count: u32,
    pub free_list_head: u32,
    pub free_count: u32,
    pub capacity_orders: u32,
    pub reserved: [u8; 40],
}

pub const BOOK_SIDE_HEADER_SIZE: usize = 64;
const _: () = assert!(core::mem::size_of::<BookSideHeader>() == BOOK_SIDE_HEADER_SIZE);
/// Keeps the node array 8-byte aligned after the header.
const _: () = assert!(BOOK_SIDE_HEADER_SIZE.is_multiple_of(8));

/// Deepest possible path: each inner node's prefix is longer than its parent's.
const MAX_DEPTH: usize = 129;

/// A side's header, nodes and side from its slab, borrowed immutably (for
/// read-only accounts).
fn read_only(data: &[u8]) -> Result<(&BookSideHeader, &[AnyNode], Side), EngineError> {
    if data.len() < BOOK_SIDE_HEADER_SIZE {
        return Err(EngineError::BadLayout);
    }
    let (header, nodes) = data.split_at(BOOK_SIDE_HEADER_SIZE);
    let header: &BookSideHeader =
        bytemuck::try_from_bytes(header).map_err(|_| EngineError::BadLayout)?;
    let nodes: &[AnyNode] = bytemuck::try_cast_slice(nodes).map_err(|_| EngineError::BadLayout)?;
    let side = Side::from_u8(header.side).ok_or(EngineError::BadLayout)?;
    Ok((header, nodes, side))
}

/// The best resting price of a side, read from its slab without borrowing it
/// mutably (for read-only accounts).
pub fn best_price(data: &[u8]) -> Result<Option<crate::units::Ticks>, EngineError> {
    let (header, nodes, side) = read_only(data)?;
    Ok(extreme_leaf(nodes, header.root, best_direction(side))?
        .map(|i| bytemuck::cast_ref::<AnyNode, LeafNode>(&nodes[i as usize]).price()))
}

/// What the best live order of a side is, as far as a bounded look shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BestLive {
    /// No order rests on the side.
    Empty,
    /// The best price among orders that have not expired.
    Price(crate::units::Ticks),
    /// Every order looked at had expired: the side's live price is unknown
    /// (expired orders leave the book only when a taker reaches them).
    OnlyExpired,
}

/// Whether a side holds no order, read without borrowing the slab mutably.
pub fn side_is_empty(data: &[u8]) -> Result<bool, EngineError> {
    let (header, _, _) = read_only(data)?;
    Ok(header.root == NIL)
}

/// The best price among the first `max_orders` orders of a side (in priority
/// order) that have not expired at `now`, read without borrowing the slab
/// mutably.
pub fn best_live_price(data: &[u8], now: u64, max_orders: usize) -> Result<BestLive, EngineError> {
    let (header, nodes, side) = read_only(data)?;
    let first = best_direction(side);
    // Depth-first in priority order, as `BookSideIter`, with a fixed stack.
    let mut stack = [NIL; MAX_DEPTH + 1];
    let mut depth = 0;
    if header.root != NIL {
        stack[0] = header.root;
        depth = 1;
    }
    if depth == 0 {
        return Ok(BestLive::Empty);
    }
    let mut seen = 0;
    // Each step visits one node: at most every node of the slab.
    for _ in 0..nodes.len() {
        if depth == 0 || seen == max_orders {
            break;
        }
        depth -= 1;
        let node = nodes
            .get(stack[depth] as usize)
            .ok_or(EngineError::BadLayout)?;
        match node.tag {
            TAG_LEAF => {
                let leaf = bytemuck::cast_ref::<AnyNode, LeafNode>(node);
                if !leaf.is_expired(now) {
                    return Ok(BestLive::Price(leaf.price()));
                }
                seen += 1;
            }
            TAG_INNER => {
                if depth + 2 > stack.len() {
                    return Err(EngineError::BadLayout);
                }
                let children = bytemuck::cast_ref::<AnyNode, InnerNode>(node).children;
                stack[depth] = children[1 - first];
                stack[depth + 1] = children[first];
                depth += 2;
            }
            _ => return Err(EngineError::BadLayout),
        }
    }
    Ok(BestLive::OnlyExpired)
}

/// Direction of better priority: asks are best at low keys, bids at high.
fn best_direction(side: Side) -> usize {
    match side {
        Side::Ask => 0,
        Side::Bid => 1,
    }
}

/// The leaf reached from `root` by always taking child `direction`; the walk
/// is bounded by the tree's depth and checks every index.
fn extreme_leaf(
    nodes: &[AnyNode],
    root: u32,
    direction: usize,
) -> Result<Option<u32>, EngineError> {
    let mut current = root;
    for _ in 0..=MAX_DEPTH {
        if current == NIL {
            return Ok(None);
        }
        let node = nodes.get(current as usize).ok_or(EngineError::BadLayout)?;
        match node.tag {
            TAG_INNER => {
                current = bytemuck::cast_ref::<AnyNode, InnerNode>(node).children[direction]
            }
            TAG_LEAF => return Ok(Some(current)),
            _ => return Err(EngineError::BadLayout),
        }
    }
    Err(EngineError::BadLayout)
}

pub struct BookSide<'a> {
    header: &'a mut BookSideHeader,
    nodes: &'a mut [AnyNode],
}

impl<'a> BookSide<'a> {
    /// Bytes a book side of `capacity_orders` orders occupies.
    pub const fn byte_len(capacity_orders: usize) -> usize {
        BOOK_SIDE_HEADER_SIZE + 2 * capacity_orders * NODE_SIZE
    }

    fn split(
        data: &'a mut [u8],
    ) -> Result<(&'a mut BookSideHeader, &'a mut [AnyNode]), EngineError> {
        if data.len() < BOOK_SIDE_HEADER_SIZE
            || !(data.len() - BOOK_SIDE_HEADER_SIZE).is_multiple_of(2 * NODE_SIZE)
        {
            return Err(EngineError::BadLayout);
        }
        let (header, nodes) = data.split_at_mut(BOOK_SIDE_HEADER_SIZE);
        let header = bytemuck::try_from_bytes_mut(header).map_err(|_| EngineError::BadLayout)?;
        let nodes = bytemuck::try_cast_slice_mut(nodes).map_err(|_| EngineError::BadLayout)?;
        Ok((header, nodes))
    }

    /// Formats a zeroed slab as an empty side, every node on the free list.
    pub fn init(data: &'a mut [u8], side: Side) -> Result<Self, EngineError> {
        let (header, nodes) = Self::split(data)?;
        if header.capacity_orders != 0 || nodes.is_empty() || nodes.len() >= NIL as usize {
            return Err(EngineError::BadLayout);
        }
        let node_count = nodes.len() as u32;
        for (i, node) in nodes.iter_mut().enumerate() {
            let next = if i as u32 + 1 < node_count {
                i as u32 + 1
            } else {
                NIL
            };
            *node = bytemuck::cast(FreeNode {
                tag: TAG_FREE,
                padding: [0; 3],
                next,
                reserved: [0; 80],
            });
        }
        *header = BookSideHeader {
            side: side as u8,
            padding: [0; 3],
            root: NIL,
            leaf_count: 0,
            free_list_head: 0,
            free_count: node_count,
            capacity_orders: node_count / 2,
            reserved: [0; 40],
        };
        Ok(Self { header, nodes })
    }

    /// Views an initialised slab.
    pub fn load(data: &'a mut [u8]) -> Result<Self, EngineError> {
        let (header, nodes) = Self::split(data)?;
        if header.capacity_orders as usize * 2 != nodes.len()
            || Side::from_u8(header.side).is_none()
        {
            return Err(EngineError::BadLayout);
        }
        Ok(Self { header, nodes })
    }

    pub fn side(&self) -> Side {
        Side::from_u8(self.header.side).expect("validated on load")
    }

    pub fn len(&self) -> usize {
        self.header.leaf_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.header.leaf_count == 0
    }

    pub fn capacity(&self) -> usize {
        self.header.capacity_orders as usize
    }

    pub fn is_full(&self) -> bool {
        self.header.leaf_count >= self.header.capacity_orders
    }

    fn tag(&self, index: u32) -> u8 {
        self.nodes[index as usize].tag
    }

    pub fn leaf(&self, index: u32) -> &LeafNode {
        debug_assert_eq!(self.tag(index), TAG_LEAF);
        bytemuck::cast_ref(&self.nodes[index as usize])
    }

    fn leaf_mut(&mut self, index: u32) -> &mut LeafNode {
        debug_assert_eq!(self.tag(index), TAG_LEAF);
        bytemuck::cast_mut(&mut self.nodes[index as usize])
    }

    fn inner(&self, index: u32) -> &InnerNode {
        debug_assert_eq!(self.tag(index), TAG_INNER);
        bytemuck::cast_ref(&self.nodes[index as usize])
    }

    fn inner_mut(&mut self, index: u32) -> &mut InnerNode {
        debug_assert_eq!(self.tag(index), TAG_INNER);
        bytemuck::cast_mut(&mut self.nodes[index as usize])
    }

    fn allocate(&mut self, node: AnyNode) -> u32 {
        let index = self.header.free_list_head;
        debug_assert_ne!(index, NIL, "callers check free_count first");
        let free: &FreeNode = bytemuck::cast_ref(&self.nodes[index as usize]);
        self.header.free_list_head = free.next;
        self.header.free_count -= 1;
        self.nodes[index as usize] = node;
        index
    }

    fn release(&mut self, index: u32) {
        self.nodes[index as usize] = bytemuck::cast(FreeNode {
            tag: TAG_FREE,
            padding: [0; 3],
            next: self.header.free_list_head,
            reserved: [0; 80],
        });
        self.header.free_list_head = index;
        self.header.free_count += 1;
    }

    /// Adds a resting order. Refuses a full side and a key already present.
    pub fn insert(&mut self, leaf: &LeafNode) -> Result<u32, EngineError> {
        if self.is_full() {
            return Err(EngineError::BookFull);
        }
        let key = leaf.key();
        let mut leaf = *leaf;
        leaf.tag = TAG_LEAF;
        let leaf_node: AnyNode = bytemuck::cast(leaf);

        if self.header.root == NIL {
            let index = self.allocate(leaf_node);
            self.header.root = index;
            self.header.leaf_count = 1;
            return Ok(index);
        }

        // Walk down while the new key shares the current node's prefix.
        let mut parent: Option<(u32, usize)> = None;
        let mut current = self.header.root;
        let (split_at, sibling) = loop {
            let (node_key, node_prefix) = match self.tag(current) {
                TAG_INNER => {
                    let inner = self.inner(current);
                    (inner.key(), inner.prefix_len)
                }
                _ => (self.leaf(current).key(), 128),
            };
            let shared = (key ^ node_key).leading_zeros();
            if shared >= node_prefix {
                if node_prefix == 128 {
                    return Err(EngineError::DuplicateOrderId);
                }
                let direction = crit_bit(key, node_prefix);
                parent = Some((current, direction));
                current = self.inner(current).children[direction];
                continue;
            }
            break (shared, current);
        };

        let leaf_index = self.allocate(leaf_node);
        let direction = crit_bit(key, split_at);
        let mut children = [sibling; 2];
        children[direction] = leaf_index;
        let inner_index = self.allocate(bytemuck::cast(InnerNode {
            tag: TAG_INNER,
            padding: [0; 3],
            prefix_len: split_at,
            key: key_to_parts(key),
            children,
            reserved: [0; 56],
        }));
        match parent {
            None => self.header.root = inner_index,
            Some((parent, direction)) => self.inner_mut(parent).children[direction] = inner_index,
        }
        self.header.leaf_count += 1;
        Ok(leaf_index)
    }

    /// The slab index of the leaf with `key`.
    pub fn find(&self, key: u128) -> Option<u32> {
        let mut current = self.header.root;
        if current == NIL {
            return None;
        }
        while self.tag(current) == TAG_INNER {
            let inner = self.inner(current);
            if (key ^ inner.key()).leading_zeros() < inner.prefix_len {
                return None;
            }
            current = inner.children[crit_bit(key, inner.prefix_len)];
        }
        (self.leaf(current).key() == key).then_some(current)
    }

    /// Removes the order with `key`, returning it.
    pub fn remove(&mut self, key: u128) -> Option<LeafNode> {
        self.remove_if(key, |_| true).ok().flatten()
    }

    /// Removes the order with `key` if `accept` approves it, in one walk:
    /// `Ok(Some(order))` removed, `Ok(None)` absent, `Err(order)` refused.
    pub fn remove_if(
        &mut self,
        key: u128,
        accept: impl FnOnce(&LeafNode) -> bool,
    ) -> Result<Option<LeafNode>, LeafNode> {
        let mut grandparent: Option<(u32, usize)> = None;
        let mut parent: Option<(u32, usize)> = None;
        let mut current = self.header.root;
        if current == NIL {
            return Ok(None);
        }
        while self.tag(current) == TAG_INNER {
            let inner = self.inner(current);
            if (key ^ inner.key()).leading_zeros() < inner.prefix_len {
                return Ok(None);
            }
            let direction = crit_bit(key, inner.prefix_len);
            grandparent = parent;
            parent = Some((current, direction));
            current = inner.children[direction];
        }
        let leaf = *self.leaf(current);
        if leaf.key() != key {
            return Ok(None);
        }
        if !accept(&leaf) {
            return Err(leaf);
        }
        self.release(current);
        self.header.leaf_count -= 1;
        match parent {
            None => self.header.root = NIL,
            Some((parent, direction)) => {
                let sibling = self.inner(parent).children[1 - direction];
                self.release(parent);
                match grandparent {
                    None => self.header.root = sibling,
                    Some((grandparent, gp_direction)) => {
                        self.inner_mut(grandparent).children[gp_direction] = sibling
                    }
                }
            }
        }
        Ok(Some(leaf))
    }

    /// Takes `quantity` from the order at `index`: it shrinks, or leaves the
    /// book when all of it is taken. Returns the order as it was.
    pub fn take_quantity(&mut self, index: u32, quantity: BaseLots) -> LeafNode {
        let leaf = *self.leaf(index);
        if quantity >= leaf.quantity {
            self.remove(leaf.key());
        } else {
            self.leaf_mut(index).quantity = leaf.quantity.saturating_sub(quantity);
        }
        leaf
    }

    /// The extreme leaf: direction 0 for the minimum key, 1 for the maximum.
    fn extreme(&self, direction: usize) -> Option<u32> {
        extreme_leaf(self.nodes, self.header.root, direction)
            .ok()
            .flatten()
    }

    fn best_direction(&self) -> usize {
        best_direction(self.side())
    }

    /// The order that trades first.
    pub fn best(&self) -> Option<&LeafNode> {
        self.extreme(self.best_direction()).map(|i| self.leaf(i))
    }

    /// The order that trades last (the one a better order may evict).
    pub fn worst(&self) -> Option<&LeafNode> {
        self.extreme(1 - self.best_direction())
            .map(|i| self.leaf(i))
    }

    /// Orders in priority order (best first).
    pub fn iter(&self) -> BookSideIter<'_, 'a> {
        let mut iter = BookSideIter {
            book: self,
            stack: [NIL; MAX_DEPTH + 1],
            depth: 0,
            first_child: self.best_direction(),
        };
        if self.header.root != NIL {
            iter.stack[0] = self.header.root;
            iter.depth = 1;
        }
        iter
    }

    /// The first order of `owner` with `client_order_id`, in priority order.
    pub fn find_by_client_order_id(
        &self,
        owner: &Owner,
        client_order_id: u64,
    ) -> Option<&LeafNode> {
        self.iter()
            .map(|(_, leaf)| leaf)
            .find(|leaf| leaf.owner == *owner && leaf.client_order_id == client_order_id)
    }

    /// Checks the tree's structure: every reachable node is used once, leaves
    /// obey their ancestors' prefixes and crit bits, counts agree, and free
    /// plus reachable nodes make up the whole slab.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = vec![false; self.nodes.len()];
        let mut leaves = 0u32;
        let mut reachable = 0usize;
        // (node, prefix it must share, with which key, min prefix_len)
        let mut stack: Vec<(u32, u32, u128, u32)> = Vec::new();
        if self.header.root != NIL {
            stack.push((self.header.root, 0, 0, 0));
        }
        while let Some((index, shared_len, shared_key, min_prefix)) = stack.pop() {
            let i = index as usize;
            if i >= self.nodes.len() || seen[i] {
                return Err(format!("node {index} out of range or reached twice"));
            }
            seen[i] = true;
            reachable += 1;
            let key = match self.tag(index) {
                TAG_LEAF => {
                    leaves += 1;
                    self.leaf(index).key()
                }
                TAG_INNER => self.inner(index).key(),
                tag => return Err(format!("node {index} reachable with tag {tag}")),
            };
            if shared_len > 0 && (key ^ shared_key).leading_zeros() < shared_len {
                return Err(format!("node {index} breaks its ancestors' prefix"));
            }
            if self.tag(index) == TAG_INNER {
                let inner = self.inner(index);
                if inner.prefix_len < min_prefix || inner.prefix_len > 127 {
                    return Err(format!(
                        "inner {index} prefix_len {} out of order",
                        inner.prefix_len
                    ));
                }
                for (direction, &child) in inner.children.iter().enumerate() {
                    // The child's keys share prefix_len bits and have `direction` at the crit bit.
                    let mut required = key;
                    let bit = 1u128 << (127 - inner.prefix_len);
                    required = if direction == 1 {
                        required | bit
                    } else {
                        required & !bit
                    };
                    stack.push((child, inner.prefix_len + 1, required, inner.prefix_len + 1));
                }
            }
        }
        if leaves != self.header.leaf_count {
            return Err(format!(
                "{leaves} leaves reachable, header says {}",
                self.header.leaf_count
            ));
        }
        if leaves > self.header.capacity_orders {
            return Err("more leaves than capacity".into());
        }
        let mut free = 0usize;
        let mut next = self.header.free_list_head;
        while next != NIL {
            let i = next as usize;
            if i >= self.nodes.len() || seen[i] || self.tag(next) != TAG_FREE {
                return Err(format!(
                    "free list reaches node {next} that is used or repeated"
                ));
            }
            seen[i] = true;
            free += 1;
            next = bytemuck::cast_ref::<AnyNode, FreeNode>(&self.nodes[i]).next;
        }
        if free != self.header.free_count as usize {
            return Err(format!(
                "free list has {free} nodes, header says {}",
                self.header.free_count
            ));
        }
        if free + reachable != self.nodes.len() {
            return Err(format!(
                "{free} free + {reachable} used != {} nodes",
                self.nodes.len()
            ));
        }
        // In-order iteration must be strictly monotone in priority.
        let keys: Vec<u128> = self.iter().map(|(_, leaf)| leaf.key()).collect();
        let ordered = keys.windows(2).all(|w| match self.side() {
            Side::Ask => w[0] < w[1],
            Side::Bid => w[0] > w[1],
        });
        if !ordered || keys.len() != leaves as usize {
            return Err("iteration is not in priority order".into());
        }
        Ok(())
    }
}

/// Depth-first walk in priority order with a fixed stack (no allocation).
pub struct BookSideIter<'s, 'a> {
    book: &'s BookSide<'a>,
    stack: [u32; MAX_DEPTH + 1],
    depth: usize,
    /// The child visited first at each inner node.
    first_child: usize,
}

impl<'s> Iterator for BookSideIter<'s, '_> {
    type Item = (u32, &'s LeafNode);

    fn next(&mut self) -> Option<Self::Item> {
        while self.depth > 0 {
            self.depth -= 1;
            let index = self.stack[self.depth];
            if self.book.tag(index) == TAG_LEAF {
                return Some((index, self.book.leaf(index)));
            }
            let children = self.book.inner(index).children;
            // Push the later child first so the earlier one is popped next.
            self.stack[self.depth] = children[1 - self.first_child];
            self.stack[self.depth + 1] = children[self.first_child];
            self.depth += 2;
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::units::Ticks;

    /// An 8-byte-aligned zeroed slab, as account data is.
    pub fn slab(len: usize) -> Vec<u64> {
        vec![0u64; len.div_ceil(8)]
    }

    pub fn leaf(side: Side, price: u64, seq: u64, owner: u8, quantity: u64) -> LeafNode {
        LeafNode {
            tag: TAG_LEAF,
            owner_slot: 0,
            flags: 0,
            padding: [0; 5],
            key: key_to_parts(order_key(side, Ticks(price), seq)),
            owner: [owner; 32],
            quantity: BaseLots(quantity),
            client_order_id: seq,
            timestamp: 0,
            expiry: 0,
        }
    }

    #[test]
    fn a_thousand_and_twenty_four_orders_fit_and_the_next_is_refused() {
        let mut data = slab(BookSide::byte_len(1024));
        let mut book = BookSide::init(bytemuck::cast_slice_mut(&mut data), Side::Ask).unwrap();
        for seq in 0..1024u64 {
            book.insert(&leaf(Side::Ask, 1 + (seq * 7919) % 500, seq, 1, 1))
                .unwrap();
        }
        assert!(book.is_full());
        assert_eq!(
            book.insert(&leaf(Side::Ask, 1, 5000, 1, 1)),
            Err(EngineError::BookFull)
        );
        book.check_invariants().unwrap();
        let prices: Vec<u64> = book.iter().map(|(_, l)| l.price().0).collect();
        assert!(prices.windows(2).all(|w| w[0] <= w[1]));
        for seq in 0..1024u64 {
            let key = order_key(Side::Ask, Ticks(1 + (seq * 7919) % 500), seq);
            assert_eq!(book.remove(key).unwrap().client_order_id, seq);
        }
        assert!(book.is_empty());
        book.check_invariants().unwrap();
    }

    #[test]
    fn equal_prices_iterate_first_in_first_out_on_both_sides() {
        for side in [Side::Bid, Side::Ask] {
            let mut data = slab(BookSide::byte_len(16));
            let mut book = BookSide::init(bytemuck::cast_slice_mut(&mut data), side).unwrap();
            for seq in [3u64, 1, 4, 2] {
                book.insert(&leaf(side, 100, seq, 1, 1)).unwrap();
            }
            book.insert(&leaf(side, 101, 9, 1, 1)).unwrap();
            book.insert(&leaf(side, 99, 0, 1, 1)).unwrap();
            let order: Vec<(u64, u64)> = book
                .iter()
                .map(|(_, l)| (l.price().0, l.client_order_id))
                .collect();
            let expected = match side {
                Side::Bid => vec![(101, 9), (100, 1), (100, 2), (100, 3), (100, 4), (99, 0)],
                Side::Ask => vec![(99, 0), (100, 1), (100, 2), (100, 3), (100, 4), (101, 9)],
            };
            assert_eq!(order, expected, "{side:?}");
            assert_eq!(book.best().unwrap().client_order_id, expected[0].1);
            assert_eq!(book.worst().unwrap().client_order_id, expected[5].1);
            book.check_invariants().unwrap();
            let best = best_price(bytemuck::cast_slice(&data)).unwrap();
            assert_eq!(
                best,
                Some(Ticks(expected[0].0)),
                "read-only best of {side:?}"
            );
        }
        let mut empty = slab(BookSide::byte_len(4));
        BookSide::init(bytemuck::cast_slice_mut(&mut empty), Side::Ask).unwrap();
        assert_eq!(best_price(bytemuck::cast_slice(&empty)), Ok(None));
    }

    #[test]
    fn the_best_live_price_skips_expired_orders_up_to_a_bound() {
        for side in [Side::Bid, Side::Ask] {
            let mut data = slab(BookSide::byte_len(16));
            let mut book = BookSide::init(bytemuck::cast_slice_mut(&mut data), side).unwrap();
            // Three expired orders at the best prices, one live behind them.
            let (best, live) = match side {
                Side::Bid => ([110, 109, 108], 100),
                Side::Ask => ([90, 91, 92], 100),
            };
            for (seq, price) in best.into_iter().enumerate() {
                let mut stale = leaf(side, price, seq as u64, 1, 1);
                stale.expiry = 50;
                book.insert(&stale).unwrap();
            }
            book.insert(&leaf(side, live, 9, 2, 1)).unwrap();
            let bytes: &[u8] = bytemuck::cast_slice(&data);
            assert_eq!(
                best_live_price(bytes, 49, 8),
                Ok(BestLive::Price(Ticks(best[0])))
            );
            assert_eq!(
                best_live_price(bytes, 50, 8),
                Ok(BestLive::Price(Ticks(live)))
            );
            assert_eq!(
                best_live_price(bytes, 50, 3),
                Ok(BestLive::OnlyExpired),
                "bound reached"
            );
        }
        let mut empty = slab(BookSide::byte_len(4));
        BookSide::init(bytemuck::cast_slice_mut(&mut empty), Side::Ask).unwrap();
        assert_eq!(
            best_live_price(bytemuck::cast_slice(&empty), 0, 8),
            Ok(BestLive::Empty)
        );
    }

    #[test]
    fn duplicates_and_missing_keys_are_refused_without_change() {
        let mut data = slab(BookSide::byte_len(4));
        let mut book = BookSide::init(bytemuck::cast_slice_mut(&mut data), Side::Bid).unwrap();
        book.insert(&leaf(Side::Bid, 5, 1, 1, 1)).unwrap();
        assert_eq!(
            book.insert(&leaf(Side::Bid, 5, 1, 2, 9)),
            Err(EngineError::DuplicateOrderId)
        );
        assert_eq!(book.remove(order_key(Side::Bid, Ticks(5), 2)), None);
        assert_eq!(book.find(order_key(Side::Bid, Ticks(6), 1)), None);
        assert_eq!(book.len(), 1);
        book.check_invariants().unwrap();
    }

    #[test]
    fn find_by_client_order_id_matches_owner_and_id() {
        let mut data = slab(BookSide::byte_len(4));
        let mut book = BookSide::init(bytemuck::cast_slice_mut(&mut data), Side::Ask).unwrap();
        book.insert(&leaf(Side::Ask, 5, 1, 1, 1)).unwrap();
        book.insert(&leaf(Side::Ask, 6, 2, 2, 1)).unwrap();
        assert_eq!(
            book.find_by_client_order_id(&[2; 32], 2).unwrap().price(),
            Ticks(6)
        );
        assert!(book.find_by_client_order_id(&[1; 32], 2).is_none());
    }

    #[test]
    fn bad_slabs_are_refused() {
        let mut data = slab(BookSide::byte_len(4));
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
        assert!(BookSide::load(&mut bytes[..]).is_err(), "uninitialised");
        assert!(
            BookSide::init(&mut bytes[..100], Side::Ask).is_err(),
            "wrong length"
        );
        BookSide::init(&mut bytes[..], Side::Ask).unwrap();
        assert!(
            BookSide::init(&mut bytes[..], Side::Ask).is_err(),
            "initialised twice"
        );
        assert!(
            BookSide::load(&mut bytes[8..]).is_err(),
            "misaligned or truncated"
        );
        BookSide::load(bytes).unwrap().check_invariants().unwrap();
    }
}
