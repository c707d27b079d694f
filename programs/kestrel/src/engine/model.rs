//! A plain reference model of the order book for property tests: BTreeMaps and
//! a VecDeque, matching greedily on a clone of its state that is kept only if
//! the order is accepted. It shares no code with the engine beyond the key
//! encoding and the public types.
use std::collections::{BTreeMap, VecDeque};

use super::error::EngineError;
use super::event_queue::OutReason;
use super::matching::{NewOrder, OrderType, PlaceResult, SelfTradeBehavior};
use super::node::{key_price, order_key, Owner, Side};
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
            if post_only && !expired {
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
            if expired {
                events.push(out(maker.quantity, OutReason::Expired, true));
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
