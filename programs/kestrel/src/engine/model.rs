//! A plain reference model of the order book for property tests: BTreeMaps and
//! a VecDeque, matching greedily on a clone of its state that is kept only if
//! the order is accepted. It shares no code with the engine beyond the key
//! encoding and the public types.
//!
//! [`run_differential`] drives engine and model with one operation sequence;
//! the property test and the fuzz target are two sources of sequences.
use std::collections::{BTreeMap, VecDeque};

use super::book_side::BookSide;
use super::error::EngineError;
use super::event_queue::{Event, EventQueue, OutReason};
use super::matching::{NewOrder, OrderType, Orderbook, PlaceResult, SelfTradeBehavior};
use super::node::{key_from_parts, key_price, order_key, LeafNode, Owner, Side};
use super::perp::PriceBand;
use crate::units::{BaseLots, QuoteLots, Ticks};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelOrder {
    pub key: u128,
    pub owner: Owner,
    pub owner_slot: u8,
    pub flags: u8,
    pub client_order_id: u64,
    pub quantity: u64,
    pub timestamp: u64,
    pub expiry: u64,
}

/// Events as plain values (sequence numbers included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelEvent {
    Fill {
        seq: u64,
        timestamp: u64,
        taker_side: Side,
        maker: Owner,
        maker_slot: u8,
        maker_order_id: u128,
        maker_client_order_id: u64,
        maker_timestamp: u64,
        maker_out: bool,
        taker: Owner,
        taker_client_order_id: u64,
        price: u64,
        quantity: u64,
    },
    Out {
        seq: u64,
        timestamp: u64,
        side: Side,
        owner: Owner,
        owner_slot: u8,
        order_id: u128,
        client_order_id: u64,
        quantity: u64,
        reason: u8,
        order_gone: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Model {
    pub bids: BTreeMap<u128, ModelOrder>,
    pub asks: BTreeMap<u128, ModelOrder>,
    pub capacity_orders: usize,
    pub queue: VecDeque<ModelEvent>,
    pub queue_capacity: usize,
    pub next_event_seq: u64,
}

impl Model {
    pub fn new(capacity_orders: usize, queue_capacity: usize) -> Self {
        Self {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            capacity_orders,
            queue: VecDeque::new(),
            queue_capacity,
            next_event_seq: 0,
        }
    }

    fn book(&mut self, side: Side) -> &mut BTreeMap<u128, ModelOrder> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Orders of a side, best first.
    pub fn side_in_priority(&self, side: Side) -> Vec<ModelOrder> {
        match side {
            Side::Ask => self.asks.values().cloned().collect(),
            Side::Bid => self.bids.values().rev().cloned().collect(),
        }
    }

    fn best(&self, side: Side) -> Option<ModelOrder> {
        match side {
            Side::Ask => self.asks.values().next().cloned(),
            Side::Bid => self.bids.values().next_back().cloned(),
        }
    }

    fn worst(&self, side: Side) -> Option<ModelOrder> {
        match side {
            Side::Ask => self.asks.values().next_back().cloned(),
            Side::Bid => self.bids.values().next().cloned(),
        }
    }

    pub fn place(
        &mut self,
        order: &NewOrder,
        seq: u64,
        now: u64,
    ) -> Result<PlaceResult, EngineError> {
        let mut next = self.clone();
        let result = next.place_inner(order, seq, now)?;
        *self = next;
        Ok(result)
    }

    fn place_inner(
        &mut self,
        o: &NewOrder,
        seq: u64,
        now: u64,
    ) -> Result<PlaceResult, EngineError> {
        if o.quantity.0 == 0 {
            return Err(EngineError::InvalidQuantity);
        }
        if o.price.0 == 0 {
            return Err(EngineError::InvalidPrice);
        }
        let rests = matches!(
            o.order_type,
            OrderType::Limit | OrderType::PostOnly | OrderType::PostOnlySlide
        );
        let post_only = matches!(o.order_type, OrderType::PostOnly | OrderType::PostOnlySlide);
        if rests && o.expiry != 0 && o.expiry <= now {
            return Err(EngineError::OrderAlreadyExpired);
        }
        let maker_side = o.side.opposite();
        let mut price = o.price.0;
        let mut remaining = o.quantity.0;
        let mut touched = 0usize;
        let mut blocked = false;
        let mut events = Vec::new();
        let mut r = PlaceResult::default();
        let mut filled_quote: u128 = 0;

        while remaining > 0 {
            let Some(maker) = self.best(maker_side) else {
                break;
            };
            let maker_price = key_price(maker.key).0;
            let crosses = match o.side {
                Side::Bid => maker_price <= price,
                Side::Ask => maker_price >= price,
            };
            if !crosses {
                break;
            }
            let expired = maker.expiry != 0 && now >= maker.expiry;
            let outside_band = match o.band {
                Some(band) => maker_price < band.low.0 || maker_price > band.high.0,
                None => false,
            };
            if post_only && !expired && !outside_band {
                if o.order_type == OrderType::PostOnly {
                    return Err(EngineError::PostOnlyWouldCross);
                }
                price = match o.side {
                    Side::Bid => maker_price - 1,
                    Side::Ask => maker_price
                        .checked_add(1)
                        .ok_or(EngineError::InvalidPrice)?,
                };
                if price == 0 {
                    return Err(EngineError::InvalidPrice);
                }
                break;
            }
            if touched == o.match_limit {
                blocked = true;
                break;
            }
            touched += 1;
            let out = |quantity: u64, reason: OutReason, gone: bool| ModelEvent::Out {
                seq: 0,
                timestamp: now,
                side: maker_side,
                owner: maker.owner,
                owner_slot: maker.owner_slot,
                order_id: maker.key,
                client_order_id: maker.client_order_id,
                quantity,
                reason: reason as u8,
                order_gone: gone,
            };
            if expired || outside_band {
                let reason = if expired {
                    OutReason::Expired
                } else {
                    OutReason::OutsideBand
                };
                events.push(out(maker.quantity, reason, true));
                self.book(maker_side).remove(&maker.key);
                continue;
            }
            if maker.owner == o.owner {
                match o.self_trade {
                    SelfTradeBehavior::AbortTransaction => {
                        return Err(EngineError::SelfTradeAborted)
                    }
                    SelfTradeBehavior::CancelProvide => {
                        events.push(out(maker.quantity, OutReason::SelfTrade, true));
                        self.book(maker_side).remove(&maker.key);
                    }
                    SelfTradeBehavior::DecrementTake => {
                        let overlap = remaining.min(maker.quantity);
                        remaining -= overlap;
                        r.self_trade_decremented.0 += overlap;
                        events.push(out(
                            overlap,
                            OutReason::SelfTrade,
                            overlap == maker.quantity,
                        ));
                        self.reduce(maker_side, maker.key, overlap);
                    }
                }
                continue;
            }
            let quantity = remaining.min(maker.quantity);
            filled_quote += u128::from(maker_price) * u128::from(quantity);
            if filled_quote > u128::from(u64::MAX) {
                return Err(EngineError::Overflow);
            }
            remaining -= quantity;
            r.filled.0 += quantity;
            r.fills += 1;
            events.push(ModelEvent::Fill {
                seq: 0,
                timestamp: now,
                taker_side: o.side,
                maker: maker.owner,
                maker_slot: maker.owner_slot,
                maker_order_id: maker.key,
                maker_client_order_id: maker.client_order_id,
                maker_timestamp: maker.timestamp,
                maker_out: quantity == maker.quantity,
                taker: o.owner,
                taker_client_order_id: o.client_order_id,
                price: maker_price,
                quantity,
            });
            self.reduce(maker_side, maker.key, quantity);
        }
        r.filled_quote = QuoteLots(filled_quote as u64);

        if o.order_type == OrderType::FillOrKill && remaining > 0 {
            return Err(EngineError::FillOrKillNotFilled);
        }
        if post_only && blocked {
            return Err(EngineError::PostOnlyWouldCross);
        }
        let rest = if rests && !blocked { remaining } else { 0 };
        r.cancelled = BaseLots(remaining - rest);

        let key = order_key(o.side, Ticks(price), seq);
        if rest > 0 && self.book(o.side).len() >= self.capacity_orders {
            let worst = self.worst(o.side).expect("full side");
            let better = match o.side {
                Side::Ask => key < worst.key,
                Side::Bid => key > worst.key,
            };
            if !better {
                return Err(EngineError::BookFull);
            }
            self.book(o.side).remove(&worst.key);
            events.push(ModelEvent::Out {
                seq: 0,
                timestamp: now,
                side: o.side,
                owner: worst.owner,
                owner_slot: worst.owner_slot,
                order_id: worst.key,
                client_order_id: worst.client_order_id,
                quantity: worst.quantity,
                reason: OutReason::Evicted as u8,
                order_gone: true,
            });
        }
        if self.queue.len() + events.len() > self.queue_capacity {
            return Err(EngineError::EventQueueFull);
        }
        r.events = events.len() as u32;
        for mut event in events {
            match &mut event {
                ModelEvent::Fill { seq, .. } | ModelEvent::Out { seq, .. } => {
                    *seq = self.next_event_seq
                }
            }
            self.next_event_seq += 1;
            self.queue.push_back(event);
        }
        if rest > 0 {
            self.book(o.side).insert(
                key,
                ModelOrder {
                    key,
                    owner: o.owner,
                    owner_slot: o.owner_slot,
                    flags: o.flags,
                    client_order_id: o.client_order_id,
                    quantity: rest,
                    timestamp: now,
                    expiry: o.expiry,
                },
            );
            r.order_id = Some(key);
            r.posted = BaseLots(rest);
            r.posted_price = Ticks(price);
        }
        Ok(r)
    }

    fn reduce(&mut self, side: Side, key: u128, by: u64) {
        let book = self.book(side);
        let order = book.get_mut(&key).expect("present");
        order.quantity -= by;
        if order.quantity == 0 {
            book.remove(&key);
        }
    }

    pub fn cancel(
        &mut self,
        side: Side,
        key: u128,
        owner: &Owner,
    ) -> Result<ModelOrder, EngineError> {
        let order = self
            .book(side)
            .get(&key)
            .ok_or(EngineError::OrderNotFound)?;
        if order.owner != *owner {
            return Err(EngineError::NotOrderOwner);
        }
        Ok(self.book(side).remove(&key).expect("present"))
    }

    pub fn cancel_by_client_id(
        &mut self,
        owner: &Owner,
        cid: u64,
    ) -> Result<(Side, ModelOrder), EngineError> {
        for side in [Side::Bid, Side::Ask] {
            let found = self
                .side_in_priority(side)
                .into_iter()
                .find(|o| o.owner == *owner && o.client_order_id == cid);
            if let Some(order) = found {
                self.book(side).remove(&order.key);
                return Ok((side, order));
            }
        }
        Err(EngineError::OrderNotFound)
    }

    pub fn cancel_all(
        &mut self,
        owner: &Owner,
        side: Option<Side>,
        limit: usize,
    ) -> Vec<(Side, ModelOrder)> {
        let sides = match side {
            Some(s) => vec![s],
            None => vec![Side::Bid, Side::Ask],
        };
        let mut out = Vec::new();
        for s in sides {
            for order in self.side_in_priority(s) {
                if out.len() == limit {
                    return out;
                }
                if order.owner == *owner {
                    self.book(s).remove(&order.key);
                    out.push((s, order));
                }
            }
        }
        out
    }
}

/// `Err` with both values when they differ.
macro_rules! ensure_eq {
    ($got:expr, $want:expr) => {
        ensure_eq!($got, $want, "")
    };
    ($got:expr, $want:expr, $($context:tt)+) => {{
        let (got, want) = (&$got, &$want);
        if got != want {
            return Err(format!("{}: engine {:?} != model {:?}", format!($($context)+), got, want));
        }
    }};
}

macro_rules! ensure {
    ($condition:expr, $($context:tt)+) => {
        if !$condition {
            return Err(format!($($context)+));
        }
    };
}

pub const CAPACITY_ORDERS: usize = 6;
pub const QUEUE_CAPACITY: usize = 10;

/// One step of a random operation sequence.
#[derive(Clone, Debug)]
pub enum Op {
    Place {
        side: Side,
        order_type: OrderType,
        price: u64,
        quantity: u64,
        owner: u8,
        client_order_id: u64,
        self_trade: SelfTradeBehavior,
        expires_in: u64,
        match_limit: usize,
        /// The fill band as (low, high) ticks.
        band: Option<(u64, u64)>,
    },
    Cancel {
        side: Side,
        pick: usize,
        owner: u8,
    },
    CancelByClientId {
        owner: u8,
        client_order_id: u64,
    },
    CancelAll {
        owner: u8,
        side: Option<Side>,
        limit: usize,
    },
    Advance {
        seconds: u64,
    },
    Consume {
        count: usize,
    },
}

fn as_model(leaf: &LeafNode) -> ModelOrder {
    ModelOrder {
        key: leaf.key(),
        owner: leaf.owner,
        owner_slot: leaf.owner_slot,
        flags: leaf.flags,
        client_order_id: leaf.client_order_id,
        quantity: leaf.quantity.0,
        timestamp: leaf.timestamp,
        expiry: leaf.expiry,
    }
}

fn queue_as_model(queue: &EventQueue) -> Vec<ModelEvent> {
    queue
        .iter()
        .map(|event| match event.decode().expect("valid event") {
            Event::Fill(f) => ModelEvent::Fill {
                seq: f.seq_num,
                timestamp: f.timestamp,
                taker_side: Side::from_u8(f.taker_side).unwrap(),
                maker: f.maker,
                maker_slot: f.maker_slot,
                maker_order_id: key_from_parts(f.maker_order_id),
                maker_client_order_id: f.maker_client_order_id,
                maker_timestamp: f.maker_timestamp,
                maker_out: f.maker_out == 1,
                taker: f.taker,
                taker_client_order_id: f.taker_client_order_id,
                price: f.price.0,
                quantity: f.quantity.0,
            },
            Event::Out(o) => ModelEvent::Out {
                seq: o.seq_num,
                timestamp: o.timestamp,
                side: Side::from_u8(o.side).unwrap(),
                owner: o.owner,
                owner_slot: o.owner_slot,
                order_id: key_from_parts(o.order_id),
                client_order_id: o.client_order_id,
                quantity: o.quantity.0,
                reason: o.reason,
                order_gone: o.order_gone == 1,
            },
        })
        .collect()
}

/// Runs `ops` on the engine and on the model side by side; the first
/// difference or broken invariant is the error.
pub fn run_differential(ops: &[Op]) -> Result<(), String> {
    let mut bids = vec![0u64; BookSide::byte_len(CAPACITY_ORDERS) / 8];
    let mut asks = vec![0u64; BookSide::byte_len(CAPACITY_ORDERS) / 8];
    let mut queue_data = vec![0u64; EventQueue::byte_len(QUEUE_CAPACITY) / 8];
    let mut book = Orderbook {
        bids: BookSide::init(bytemuck::cast_slice_mut(&mut bids), Side::Bid).unwrap(),
        asks: BookSide::init(bytemuck::cast_slice_mut(&mut asks), Side::Ask).unwrap(),
    };
    let mut queue = EventQueue::init(bytemuck::cast_slice_mut(&mut queue_data)).unwrap();
    let mut model = Model::new(CAPACITY_ORDERS, QUEUE_CAPACITY);
    let mut now = 100u64;
    let mut seq = 0u64;

    for (step, op) in ops.iter().cloned().enumerate() {
        match op {
            Op::Place {
                side,
                order_type,
                price,
                quantity,
                owner,
                client_order_id,
                self_trade,
                expires_in,
                match_limit,
                band,
            } => {
                let order = NewOrder {
                    side,
                    order_type,
                    price: Ticks(price),
                    quantity: BaseLots(quantity),
                    owner: [owner; 32],
                    owner_slot: owner,
                    client_order_id,
                    flags: 0,
                    expiry: if expires_in == 0 { 0 } else { now + expires_in },
                    self_trade,
                    match_limit,
                    maker_fee_bps: -1,
                    band: band.map(|(low, high)| PriceBand {
                        low: Ticks(low),
                        high: Ticks(high),
                    }),
                };
                seq += 1;
                let got = book.place_order(&order, seq, now, &mut queue);
                let want = model.place(&order, seq, now);
                ensure_eq!(got, want, "step {}: {:?}", step, order);
            }
            Op::Cancel { side, pick, owner } => {
                let resting = model.side_in_priority(side);
                let key = if resting.is_empty() {
                    12345
                } else {
                    resting[pick % resting.len()].key
                };
                let got = book
                    .cancel_order(side, key, &[owner; 32])
                    .map(|l| as_model(&l));
                let want = model.cancel(side, key, &[owner; 32]);
                ensure_eq!(got, want, "step {}", step);
            }
            Op::CancelByClientId {
                owner,
                client_order_id,
            } => {
                let got = book
                    .cancel_order_by_client_id(&[owner; 32], client_order_id)
                    .map(|(s, l)| (s, as_model(&l)));
                let want = model.cancel_by_client_id(&[owner; 32], client_order_id);
                ensure_eq!(got, want, "step {}", step);
            }
            Op::CancelAll { owner, side, limit } => {
                let got: Vec<_> = book
                    .cancel_all(&[owner; 32], side, limit)
                    .iter()
                    .map(|(s, l)| (*s, as_model(l)))
                    .collect();
                let want = model.cancel_all(&[owner; 32], side, limit);
                ensure_eq!(got, want, "step {}", step);
            }
            Op::Advance { seconds } => now += seconds,
            Op::Consume { count } => {
                for _ in 0..count {
                    ensure_eq!(
                        queue.pop_front().is_some(),
                        model.queue.pop_front().is_some()
                    );
                }
            }
        }
        for side in [Side::Bid, Side::Ask] {
            let engine: Vec<ModelOrder> =
                book.side(side).iter().map(|(_, l)| as_model(l)).collect();
            ensure_eq!(
                engine,
                model.side_in_priority(side),
                "step {}: {:?} side differs",
                step,
                side
            );
            if let Err(e) = book.side(side).check_invariants() {
                return Err(format!("step {step}: {side:?} tree: {e}"));
            }
        }
        ensure_eq!(
            queue_as_model(&queue),
            model.queue.iter().cloned().collect::<Vec<_>>(),
            "step {}: events differ",
            step
        );
        // Never a crossed book among orders that can still trade.
        let best_bid = book
            .bids
            .iter()
            .map(|(_, l)| l)
            .find(|l| !l.is_expired(now))
            .map(|l| l.price());
        let best_ask = book
            .asks
            .iter()
            .map(|(_, l)| l)
            .find(|l| !l.is_expired(now))
            .map(|l| l.price());
        if let (Some(bid), Some(ask)) = (best_bid, best_ask) {
            ensure!(
                bid < ask,
                "step {}: crossed book {:?} >= {:?}",
                step,
                bid,
                ask
            );
        }
    }
    Ok(())
}
