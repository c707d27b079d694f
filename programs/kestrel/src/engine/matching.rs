//! Placing and cancelling orders.
//!
//! A taking order is matched in two phases. The *plan* walks the opposite side
//! read-only and decides everything: which makers fill and by how much, which
//! expired, out-of-band or self-trading makers leave, whether the rest rests, and any
//! refusal (post-only crossing, fill-or-kill short, self-trade abort, quote
//! overflow, no room in the event queue). Only then does *apply* change the
//! book and push exactly the planned events. A refused order changes nothing.
use super::book_side::BookSide;
use super::error::EngineError;
use super::event_queue::{AnyEvent, EventQueue, EventType, FillEvent, OutEvent, OutReason};
use super::node::*;
use super::perp::PriceBand;
use crate::units::{BaseLots, QuoteLots, Ticks};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    /// Takes what crosses, rests the rest.
    Limit,
    /// Rests in full or is refused if it would take.
    PostOnly,
    /// Rests in full; if it would take, it is re-priced one tick inside the
    /// best opposite order instead.
    PostOnlySlide,
    /// Takes what crosses; the rest is cancelled.
    ImmediateOrCancel,
    /// Takes its whole quantity or is refused.
    FillOrKill,
    /// Takes what crosses up to its worst-price limit (`price`); the rest is cancelled.
    Market,
}

impl OrderType {
    fn is_post_only(self) -> bool {
        matches!(self, OrderType::PostOnly | OrderType::PostOnlySlide)
    }

    fn may_rest(self) -> bool {
        matches!(
            self,
            OrderType::Limit | OrderType::PostOnly | OrderType::PostOnlySlide
        )
    }
}

/// What happens when an order meets a resting order of the same owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTradeBehavior {
    /// Both shrink by the overlap, nothing trades.
    DecrementTake,
    /// The resting order is cancelled; the new one carries on.
    CancelProvide,
    /// The new order is refused.
    AbortTransaction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub side: Side,
    pub order_type: OrderType,
    /// Limit price; for `Market`, the worst price to trade at.
    pub price: Ticks,
    pub quantity: BaseLots,
    pub owner: Owner,
    pub owner_slot: u8,
    pub client_order_id: u64,
    /// `order_flags` bits kept on the resting order.
    pub flags: u8,
    /// Unix seconds after which a resting order no longer trades; 0 = never.
    pub expiry: u64,
    pub self_trade: SelfTradeBehavior,
    /// Most resting orders this call may touch (fill, expire or cancel).
    pub match_limit: usize,
    /// Copied into every fill event for the maker's settlement.
    pub maker_fee_bps: i32,
    /// Where fills may happen (around the oracle); `None` when no price is
    /// known. A resting order outside it that this order reaches is taken
    /// off the book like an expired one: after a fast move, stale orders
    /// beyond the band would otherwise block every taker on that side.
    pub band: Option<PriceBand>,
}

/// What placing an order did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaceResult {
    /// The resting order's id, if some of it rests.
    pub order_id: Option<u128>,
    /// The price it rests at (differs from the request after a slide).
    pub posted_price: Ticks,
    pub posted: BaseLots,
    pub filled: BaseLots,
    pub filled_quote: QuoteLots,
    pub fills: u32,
    /// Quantity removed from both sides by self-trade decrement.
    pub self_trade_decremented: BaseLots,
    /// Quantity neither filled nor posted.
    pub cancelled: BaseLots,
    /// Events pushed to the queue.
    pub events: u32,
}

/// A planned change to one resting order of the opposite side.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Trade `quantity` at the maker's price.
    Fill { index: u32, quantity: BaseLots },
    /// Take `quantity` off the book without trading.
    Out {
        index: u32,
        quantity: BaseLots,
        reason: OutReason,
    },
}

/// What placing an order will do, decided before anything changes
/// ([`Orderbook::plan_order`]) and then carried out
/// ([`Orderbook::apply_plan`], which cannot fail).
struct Plan {
    /// The changes to the opposite side, in walk order.
    actions: Vec<Action>,
    /// The result so far: fills, self-trade decrements, cancelled rest.
    result: PlaceResult,
    /// The price any rest takes (a post-only slide moves it inside).
    price: Ticks,
    /// What rests, and its key.
    rest: BaseLots,
    key: u128,
    /// The worst order of a full side, evicted for a better rest.
    evict: Option<LeafNode>,
    /// Events the plan pushes.
    events: usize,
}

/// The two sides of one market's book.
pub struct Orderbook<'a> {
    pub bids: BookSide<'a>,
    pub asks: BookSide<'a>,
}

impl<'a> Orderbook<'a> {
    pub fn side(&self, side: Side) -> &BookSide<'a> {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    pub fn side_mut(&mut self, side: Side) -> &mut BookSide<'a> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Places `order` with sequence number `seq` (unique per market; the
    /// caller keeps the counter) at unix time `now`: planned against the
    /// book as it is, refused whole if any step would be, then applied.
    pub fn place_order(
        &mut self,
        order: &NewOrder,
        seq: u64,
        now: u64,
        queue: &mut EventQueue,
    ) -> Result<PlaceResult, EngineError> {
        let plan = self.plan_order(order, seq, now, queue.free_space())?;
        Ok(self.apply_plan(order, plan, now, queue))
    }

    /// What `order` would do to the book, with `queue_room` events free in
    /// the queue; changes nothing, and refuses an order that cannot be
    /// carried out whole.
    #[inline(always)]
    fn plan_order(
        &self,
        order: &NewOrder,
        seq: u64,
        now: u64,
        queue_room: usize,
    ) -> Result<Plan, EngineError> {
        if order.quantity.is_zero() {
            return Err(EngineError::InvalidQuantity);
        }
        if order.price.is_zero() {
            return Err(EngineError::InvalidPrice);
        }
        if order.order_type.may_rest() && order.expiry != 0 && order.expiry <= now {
            return Err(EngineError::OrderAlreadyExpired);
        }

        let mut price = order.price;
        let mut remaining = order.quantity;
        let mut result = PlaceResult::default();
        let mut actions: Vec<Action> = Vec::new();
        // Whether the walk stopped at an order that still crosses.
        let mut still_crossing = false;
        {
            let opposite = self.side(order.side.opposite());
            for (index, maker) in opposite.iter() {
                let maker_price = maker.price();
                if !order.side.crosses(price, maker_price) || remaining.is_zero() {
                    break;
                }
                let stale = if maker.is_expired(now) {
                    Some(OutReason::Expired)
                } else if order.band.is_some_and(|band| !band.contains(maker_price)) {
                    Some(OutReason::OutsideBand)
                } else {
                    None
                };
                if order.order_type.is_post_only() && stale.is_none() {
                    if order.order_type == OrderType::PostOnly {
                        return Err(EngineError::PostOnlyWouldCross);
                    }
                    price = slide_inside(order.side, maker_price)?;
                    break;
                }
                if actions.len() >= order.match_limit {
                    still_crossing = true;
                    break;
                }
                if let Some(reason) = stale {
                    actions.push(Action::Out {
                        index,
                        quantity: maker.quantity,
                        reason,
                    });
                    continue;
                }
                if maker.owner == order.owner {
                    match order.self_trade {
                        SelfTradeBehavior::AbortTransaction => {
                            return Err(EngineError::SelfTradeAborted)
                        }
                        SelfTradeBehavior::CancelProvide => actions.push(Action::Out {
                            index,
                            quantity: maker.quantity,
                            reason: OutReason::SelfTrade,
                        }),
                        SelfTradeBehavior::DecrementTake => {
                            let overlap = remaining.min(maker.quantity);
                            remaining = remaining.saturating_sub(overlap);
                            result.self_trade_decremented = result
                                .self_trade_decremented
                                .checked_add(overlap)
                                .ok_or(EngineError::Overflow)?;
                            actions.push(Action::Out {
                                index,
                                quantity: overlap,
                                reason: OutReason::SelfTrade,
                            });
                        }
                    }
                    continue;
                }
                let quantity = remaining.min(maker.quantity);
                let quote = maker_price
                    .checked_quote(quantity)
                    .ok_or(EngineError::Overflow)?;
                result.filled_quote = result
                    .filled_quote
                    .checked_add(quote)
                    .ok_or(EngineError::Overflow)?;
                result.filled = result
                    .filled
                    .checked_add(quantity)
                    .ok_or(EngineError::Overflow)?;
                result.fills += 1;
                remaining = remaining.saturating_sub(quantity);
                actions.push(Action::Fill { index, quantity });
            }
        }

        if order.order_type == OrderType::FillOrKill && !remaining.is_zero() {
            return Err(EngineError::FillOrKillNotFilled);
        }
        if order.order_type.is_post_only() && still_crossing {
            // Expired orders beyond the match limit hide whether it would take.
            return Err(EngineError::PostOnlyWouldCross);
        }
        // A rest that would still cross would lock the book: cancel it instead.
        let rest = if order.order_type.may_rest() && !still_crossing {
            remaining
        } else {
            BaseLots::ZERO
        };
        result.cancelled = remaining.saturating_sub(rest);

        let key = order_key(order.side, price, seq);
        let mut evict = None;
        if !rest.is_zero() {
            let own = self.side(order.side);
            if own.is_full() {
                let worst = own.worst().expect("a full side has orders");
                let better = match order.side {
                    Side::Ask => key < worst.key(),
                    Side::Bid => key > worst.key(),
                };
                if !better {
                    return Err(EngineError::BookFull);
                }
                evict = Some(*worst);
            }
        }

        let events = actions.len() + usize::from(evict.is_some());
        if queue_room < events {
            return Err(EngineError::EventQueueFull);
        }
        Ok(Plan {
            actions,
            result,
            price,
            rest,
            key,
            evict,
            events,
        })
    }

    /// Carries out `plan` (from [`Self::plan_order`] on this book as it
    /// is): nothing here can fail.
    #[inline(always)]
    fn apply_plan(
        &mut self,
        order: &NewOrder,
        plan: Plan,
        now: u64,
        queue: &mut EventQueue,
    ) -> PlaceResult {
        let Plan {
            actions,
            mut result,
            price,
            rest,
            key,
            evict,
            events,
        } = plan;
        // Only a plan of this book as it is, made just before.
        debug_assert_eq!(events, actions.len() + usize::from(evict.is_some()));
        debug_assert!(queue.free_space() >= events);
        let maker_side = order.side.opposite();
        for action in &actions {
            let event = match *action {
                Action::Fill { index, quantity } => {
                    let maker = self.side_mut(maker_side).take_quantity(index, quantity);
                    fill_event(order, &maker, quantity, now)
                }
                Action::Out {
                    index,
                    quantity,
                    reason,
                } => {
                    let maker = self.side_mut(maker_side).take_quantity(index, quantity);
                    out_event(maker_side, &maker, quantity, reason, now)
                }
            };
            queue.push_back(event).expect("room was reserved");
        }
        if let Some(worst) = evict {
            let own = self.side_mut(order.side);
            own.remove(worst.key());
            let event = out_event(order.side, &worst, worst.quantity, OutReason::Evicted, now);
            queue.push_back(event).expect("room was reserved");
        }
        result.events = events as u32;

        if !rest.is_zero() {
            let leaf = LeafNode {
                tag: TAG_LEAF,
                owner_slot: order.owner_slot,
                flags: order.flags,
                padding: [0; 5],
                key: key_to_parts(key),
                owner: order.owner,
                quantity: rest,
                client_order_id: order.client_order_id,
                timestamp: now,
                expiry: order.expiry,
            };
            self.side_mut(order.side)
                .insert(&leaf)
                .expect("room checked; a fresh sequence number is unique");
            result.order_id = Some(key);
            result.posted = rest;
            result.posted_price = price;
        }
        result
    }

    /// Cancels one of `owner`'s orders by id.
    pub fn cancel_order(
        &mut self,
        side: Side,
        order_id: u128,
        owner: &Owner,
    ) -> Result<LeafNode, EngineError> {
        match self
            .side_mut(side)
            .remove_if(order_id, |leaf| leaf.owner == *owner)
        {
            Ok(Some(leaf)) => Ok(leaf),
            Ok(None) => Err(EngineError::OrderNotFound),
            Err(_) => Err(EngineError::NotOrderOwner),
        }
    }

    /// Cancels `owner`'s order with `client_order_id` (bids searched first).
    pub fn cancel_order_by_client_id(
        &mut self,
        owner: &Owner,
        client_order_id: u64,
    ) -> Result<(Side, LeafNode), EngineError> {
        for side in [Side::Bid, Side::Ask] {
            let book = self.side_mut(side);
            if let Some(key) = book
                .find_by_client_order_id(owner, client_order_id)
                .map(LeafNode::key)
            {
                return Ok((side, book.remove(key).expect("just found")));
            }
        }
        Err(EngineError::OrderNotFound)
    }

    /// Cancels up to `limit` of `owner`'s orders, on one side or both (bids
    /// first), best first; returns them.
    pub fn cancel_all(
        &mut self,
        owner: &Owner,
        side: Option<Side>,
        limit: usize,
    ) -> Vec<(Side, LeafNode)> {
        let sides: &[Side] = match side {
            Some(Side::Bid) => &[Side::Bid],
            Some(Side::Ask) => &[Side::Ask],
            None => &[Side::Bid, Side::Ask],
        };
        let mut cancelled = Vec::new();
        for &side in sides {
            let book = self.side_mut(side);
            let keys: Vec<u128> = book
                .iter()
                .filter(|(_, leaf)| leaf.owner == *owner)
                .map(|(_, leaf)| leaf.key())
                .take(limit - cancelled.len())
                .collect();
            for key in keys {
                cancelled.push((side, book.remove(key).expect("just listed")));
            }
        }
        cancelled
    }
}

/// One tick better than the maker from the taker's side, still not crossing.
fn slide_inside(side: Side, maker_price: Ticks) -> Result<Ticks, EngineError> {
    let price = match side {
        Side::Bid => maker_price.0.checked_sub(1),
        Side::Ask => maker_price.0.checked_add(1),
    };
    match price {
        Some(p) if p > 0 => Ok(Ticks(p)),
        _ => Err(EngineError::InvalidPrice),
    }
}

/// `maker` is the resting order as it was before this fill.
fn fill_event(taker: &NewOrder, maker: &LeafNode, quantity: BaseLots, now: u64) -> AnyEvent {
    bytemuck::cast(FillEvent {
        event_type: EventType::Fill as u8,
        taker_side: taker.side as u8,
        maker_out: u8::from(quantity == maker.quantity),
        maker_slot: maker.owner_slot,
        maker_fee_bps: taker.maker_fee_bps,
        timestamp: now,
        seq_num: 0,
        maker: maker.owner,
        maker_client_order_id: maker.client_order_id,
        maker_timestamp: maker.timestamp,
        taker: taker.owner,
        taker_client_order_id: taker.client_order_id,
        price: maker.price(),
        quantity,
        maker_order_id: maker.key,
    })
}

/// `leaf` is the order as it was before `quantity` left the book.
fn out_event(
    side: Side,
    leaf: &LeafNode,
    quantity: BaseLots,
    reason: OutReason,
    now: u64,
) -> AnyEvent {
    bytemuck::cast(OutEvent {
        event_type: EventType::Out as u8,
        side: side as u8,
        owner_slot: leaf.owner_slot,
        reason: reason as u8,
        order_gone: u8::from(quantity == leaf.quantity),
        padding: [0; 3],
        timestamp: now,
        seq_num: 0,
        owner: leaf.owner,
        client_order_id: leaf.client_order_id,
        quantity,
        order_id: leaf.key,
        reserved: [0; 56],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::book_side::tests::slab;
    use crate::engine::event_queue::Event;

    struct Fixture {
        bids: Vec<u64>,
        asks: Vec<u64>,
        queue: Vec<u64>,
        seq: u64,
        now: u64,
    }

    const ALICE: u8 = 1;
    const BOB: u8 = 2;
    const CAROL: u8 = 3;

    fn order(side: Side, order_type: OrderType, price: u64, quantity: u64, owner: u8) -> NewOrder {
        NewOrder {
            side,
            order_type,
            price: Ticks(price),
            quantity: BaseLots(quantity),
            owner: [owner; 32],
            owner_slot: owner,
            client_order_id: 0,
            flags: 0,
            expiry: 0,
            self_trade: SelfTradeBehavior::DecrementTake,
            maker_fee_bps: 0,
            match_limit: 32,
            band: None,
        }
    }

    /// (event kind, price or 0, quantity, owner of the maker/out order, flag)
    type Ev = (&'static str, u64, u64, u8, u8);

    impl Fixture {
        fn new(capacity_orders: usize, queue_capacity: usize) -> Self {
            let mut f = Self {
                bids: slab(BookSide::byte_len(capacity_orders)),
                asks: slab(BookSide::byte_len(capacity_orders)),
                queue: slab(EventQueue::byte_len(queue_capacity)),
                seq: 0,
                now: 100,
            };
            BookSide::init(bytemuck::cast_slice_mut(&mut f.bids), Side::Bid).unwrap();
            BookSide::init(bytemuck::cast_slice_mut(&mut f.asks), Side::Ask).unwrap();
            EventQueue::init(bytemuck::cast_slice_mut(&mut f.queue)).unwrap();
            f
        }

        fn with<R>(&mut self, f: impl FnOnce(&mut Orderbook, &mut EventQueue) -> R) -> R {
            let mut book = Orderbook {
                bids: BookSide::load(bytemuck::cast_slice_mut(&mut self.bids)).unwrap(),
                asks: BookSide::load(bytemuck::cast_slice_mut(&mut self.asks)).unwrap(),
            };
            let mut queue = EventQueue::load(bytemuck::cast_slice_mut(&mut self.queue)).unwrap();
            let r = f(&mut book, &mut queue);
            book.bids.check_invariants().unwrap();
            book.asks.check_invariants().unwrap();
            r
        }

        fn place(&mut self, order: NewOrder) -> Result<PlaceResult, EngineError> {
            self.seq += 1;
            let (seq, now) = (self.seq, self.now);
            self.with(|book, queue| book.place_order(&order, seq, now, queue))
        }

        fn rest(&mut self, side: Side, price: u64, quantity: u64, owner: u8) -> u128 {
            self.place(order(side, OrderType::PostOnly, price, quantity, owner))
                .unwrap()
                .order_id
                .unwrap()
        }

        /// (price, quantity, owner) best first.
        fn side(&mut self, side: Side) -> Vec<(u64, u64, u8)> {
            self.with(|book, _| {
                book.side(side)
                    .iter()
                    .map(|(_, l)| (l.price().0, l.quantity.0, l.owner[0]))
                    .collect()
            })
        }

        fn drain(&mut self) -> Vec<Ev> {
            self.with(|_, queue| {
                let mut out = Vec::new();
                while let Some(e) = queue.pop_front() {
                    out.push(match e.decode().unwrap() {
                        Event::Fill(f) => {
                            ("fill", f.price.0, f.quantity.0, f.maker[0], f.maker_out)
                        }
                        Event::Out(o) => (
                            "out",
                            o.reason as u64,
                            o.quantity.0,
                            o.owner[0],
                            o.order_gone,
                        ),
                    });
                }
                out
            })
        }

        /// Raw bytes of everything, to prove a refusal changed nothing.
        fn snapshot(&self) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
            (self.bids.clone(), self.asks.clone(), self.queue.clone())
        }
    }

    #[test]
    fn limit_takes_at_maker_prices_in_time_priority_then_rests() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 10, 2, ALICE);
        f.rest(Side::Ask, 10, 3, BOB);
        f.rest(Side::Ask, 11, 5, CAROL);
        let r = f
            .place(order(Side::Bid, OrderType::Limit, 11, 6, 9))
            .unwrap();
        assert_eq!(
            (r.filled, r.filled_quote, r.fills),
            (BaseLots(6), QuoteLots(2 * 10 + 3 * 10 + 11), 3)
        );
        assert_eq!(r.order_id, None);
        assert_eq!(
            f.drain(),
            vec![
                ("fill", 10, 2, ALICE, 1),
                ("fill", 10, 3, BOB, 1),
                ("fill", 11, 1, CAROL, 0)
            ]
        );
        assert_eq!(f.side(Side::Ask), vec![(11, 4, CAROL)]);

        let r = f
            .place(order(Side::Bid, OrderType::Limit, 11, 10, 9))
            .unwrap();
        assert_eq!(
            (r.filled, r.posted, r.posted_price),
            (BaseLots(4), BaseLots(6), Ticks(11))
        );
        assert_eq!(f.side(Side::Bid), vec![(11, 6, 9)]);
        assert!(f.side(Side::Ask).is_empty());
    }

    #[test]
    fn post_only_is_refused_when_it_would_take_and_rests_otherwise() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 10, 2, ALICE);
        let before = f.snapshot();
        assert_eq!(
            f.place(order(Side::Bid, OrderType::PostOnly, 10, 1, BOB)),
            Err(EngineError::PostOnlyWouldCross)
        );
        assert_eq!(f.snapshot(), before);
        let r = f
            .place(order(Side::Bid, OrderType::PostOnly, 9, 1, BOB))
            .unwrap();
        assert_eq!((r.posted, r.filled), (BaseLots(1), BaseLots::ZERO));
    }

    #[test]
    fn post_only_slide_reprices_one_tick_inside() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 10, 2, ALICE);
        f.rest(Side::Bid, 5, 2, ALICE);
        let r = f
            .place(order(Side::Bid, OrderType::PostOnlySlide, 12, 1, BOB))
            .unwrap();
        assert_eq!((r.posted_price, r.filled), (Ticks(9), BaseLots::ZERO));
        let r = f
            .place(order(Side::Ask, OrderType::PostOnlySlide, 3, 1, BOB))
            .unwrap();
        assert_eq!(r.posted_price, Ticks(10), "one tick above the best bid (9)");
        assert_eq!(f.side(Side::Ask), vec![(10, 2, ALICE), (10, 1, BOB)]);

        let mut g = Fixture::new(8, 16);
        g.rest(Side::Ask, 1, 1, ALICE);
        assert_eq!(
            g.place(order(Side::Bid, OrderType::PostOnlySlide, 5, 1, BOB)),
            Err(EngineError::InvalidPrice),
            "no price below one tick"
        );
    }

    #[test]
    fn ioc_and_market_cancel_what_does_not_fill() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 9, 2, ALICE);
        f.rest(Side::Ask, 11, 5, ALICE);
        let r = f
            .place(order(Side::Bid, OrderType::ImmediateOrCancel, 10, 5, BOB))
            .unwrap();
        assert_eq!(
            (r.filled, r.cancelled, r.order_id),
            (BaseLots(2), BaseLots(3), None)
        );
        let r = f
            .place(order(Side::Bid, OrderType::Market, 12, 9, BOB))
            .unwrap();
        assert_eq!(
            (r.filled, r.filled_quote, r.cancelled),
            (BaseLots(5), QuoteLots(55), BaseLots(4))
        );
        assert!(f.side(Side::Bid).is_empty() && f.side(Side::Ask).is_empty());
    }

    #[test]
    fn fill_or_kill_fills_everything_or_changes_nothing() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Bid, 10, 2, ALICE);
        f.rest(Side::Bid, 9, 2, ALICE);
        let before = f.snapshot();
        assert_eq!(
            f.place(order(Side::Ask, OrderType::FillOrKill, 9, 5, BOB)),
            Err(EngineError::FillOrKillNotFilled)
        );
        assert_eq!(f.snapshot(), before);
        let r = f
            .place(order(Side::Ask, OrderType::FillOrKill, 9, 4, BOB))
            .unwrap();
        assert_eq!((r.filled, r.filled_quote), (BaseLots(4), QuoteLots(38)));
    }

    #[test]
    fn expired_makers_are_removed_and_reported_not_filled() {
        let mut f = Fixture::new(8, 16);
        let mut stale = order(Side::Ask, OrderType::Limit, 10, 3, ALICE);
        stale.expiry = 105;
        f.place(stale).unwrap();
        f.rest(Side::Ask, 11, 3, CAROL);
        f.now = 105;
        let r = f
            .place(order(Side::Bid, OrderType::Limit, 11, 2, BOB))
            .unwrap();
        assert_eq!((r.filled, r.filled_quote), (BaseLots(2), QuoteLots(22)));
        assert_eq!(
            f.drain(),
            vec![
                ("out", OutReason::Expired as u64, 3, ALICE, 1),
                ("fill", 11, 2, CAROL, 0)
            ]
        );
        let mut late = order(Side::Bid, OrderType::Limit, 5, 1, BOB);
        late.expiry = 105;
        assert_eq!(f.place(late), Err(EngineError::OrderAlreadyExpired));
    }

    /// After a fast move: bids at 20 and 19 lie above a band of [10, 15].
    /// A sell takes them off the book (no fill outside the band) and trades
    /// with the bid inside it; a post-only ask removes them too and rests.
    #[test]
    fn makers_outside_the_band_are_removed_not_filled() {
        let band = Some(PriceBand {
            low: Ticks(10),
            high: Ticks(15),
        });
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Bid, 20, 3, ALICE);
        f.rest(Side::Bid, 19, 1, CAROL);
        f.rest(Side::Bid, 14, 5, CAROL);
        let mut sell = order(Side::Ask, OrderType::Market, 12, 4, BOB);
        sell.band = band;
        let r = f.place(sell).unwrap();
        assert_eq!((r.filled, r.filled_quote), (BaseLots(4), QuoteLots(56)));
        assert_eq!(
            f.drain(),
            vec![
                ("out", OutReason::OutsideBand as u64, 3, ALICE, 1),
                ("out", OutReason::OutsideBand as u64, 1, CAROL, 1),
                ("fill", 14, 4, CAROL, 0)
            ]
        );
        assert_eq!(f.side(Side::Bid), vec![(14, 1, CAROL)]);

        // Without a band (no oracle price) nothing is removed.
        f.rest(Side::Bid, 20, 2, ALICE);
        let mut blind = order(Side::Ask, OrderType::ImmediateOrCancel, 20, 1, BOB);
        blind.band = None;
        f.place(blind).unwrap();
        assert_eq!(f.drain(), vec![("fill", 20, 1, ALICE, 0)]);

        let mut post = order(Side::Ask, OrderType::PostOnly, 15, 2, BOB);
        post.band = band;
        let r = f.place(post).unwrap();
        assert_eq!((r.filled, r.posted), (BaseLots(0), BaseLots(2)));
        assert_eq!(
            f.drain(),
            vec![("out", OutReason::OutsideBand as u64, 1, ALICE, 1)]
        );
        // The in-band bid at 14 still refuses a post-only ask at 14, as always.
        let mut crossing = order(Side::Ask, OrderType::PostOnly, 14, 1, BOB);
        crossing.band = band;
        assert_eq!(f.place(crossing), Err(EngineError::PostOnlyWouldCross));
    }

    #[test]
    fn self_trade_decrement_take_shrinks_both_without_a_fill() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 10, 3, ALICE);
        f.rest(Side::Ask, 10, 4, BOB);
        let mut taker = order(Side::Bid, OrderType::Limit, 10, 5, ALICE);
        taker.self_trade = SelfTradeBehavior::DecrementTake;
        let r = f.place(taker).unwrap();
        assert_eq!(
            (r.self_trade_decremented, r.filled),
            (BaseLots(3), BaseLots(2))
        );
        assert_eq!(
            f.drain(),
            vec![
                ("out", OutReason::SelfTrade as u64, 3, ALICE, 1),
                ("fill", 10, 2, BOB, 0)
            ]
        );
        // Partial decrement leaves the maker on the book, smaller.
        f.rest(Side::Bid, 5, 4, CAROL);
        let mut taker = order(Side::Ask, OrderType::Limit, 5, 1, CAROL);
        taker.self_trade = SelfTradeBehavior::DecrementTake;
        f.place(taker).unwrap();
        assert_eq!(f.side(Side::Bid), vec![(5, 3, CAROL)]);
        assert_eq!(
            f.drain(),
            vec![("out", OutReason::SelfTrade as u64, 1, CAROL, 0)]
        );
    }

    #[test]
    fn self_trade_cancel_provide_removes_the_resting_order_and_carries_on() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 10, 3, ALICE);
        f.rest(Side::Ask, 10, 4, BOB);
        let mut taker = order(Side::Bid, OrderType::Limit, 10, 5, ALICE);
        taker.self_trade = SelfTradeBehavior::CancelProvide;
        let r = f.place(taker).unwrap();
        assert_eq!((r.filled, r.posted), (BaseLots(4), BaseLots(1)));
        assert_eq!(
            f.drain(),
            vec![
                ("out", OutReason::SelfTrade as u64, 3, ALICE, 1),
                ("fill", 10, 4, BOB, 1)
            ]
        );
    }

    #[test]
    fn self_trade_abort_refuses_the_order_and_changes_nothing() {
        let mut f = Fixture::new(8, 16);
        f.rest(Side::Ask, 9, 1, BOB);
        f.rest(Side::Ask, 10, 3, ALICE);
        let before = f.snapshot();
        let mut taker = order(Side::Bid, OrderType::Limit, 10, 5, ALICE);
        taker.self_trade = SelfTradeBehavior::AbortTransaction;
        assert_eq!(f.place(taker), Err(EngineError::SelfTradeAborted));
        assert_eq!(
            f.snapshot(),
            before,
            "bob's fill before the self-trade is undone too"
        );
    }

    #[test]
    fn the_match_limit_bounds_the_work_and_a_crossing_rest_is_cancelled() {
        let mut f = Fixture::new(8, 16);
        for owner in [ALICE, BOB, CAROL] {
            f.rest(Side::Ask, 10, 1, owner);
        }
        let mut taker = order(Side::Bid, OrderType::Limit, 10, 5, 9);
        taker.match_limit = 2;
        let r = f.place(taker).unwrap();
        // The third ask still crosses, so the rest may not rest.
        assert_eq!(
            (r.fills, r.filled, r.cancelled, r.order_id),
            (2, BaseLots(2), BaseLots(3), None)
        );
        // With nothing crossing after the limit, the rest rests.
        let mut taker = order(Side::Bid, OrderType::Limit, 10, 5, 9);
        taker.match_limit = 1;
        let r = f.place(taker).unwrap();
        assert_eq!((r.fills, r.posted), (1, BaseLots(4)));
    }

    #[test]
    fn a_full_side_evicts_its_worst_order_for_a_better_one_only() {
        let mut f = Fixture::new(2, 16);
        f.rest(Side::Bid, 10, 1, ALICE);
        f.rest(Side::Bid, 8, 1, BOB);
        let before = f.snapshot();
        assert_eq!(
            f.place(order(Side::Bid, OrderType::Limit, 8, 1, CAROL)),
            Err(EngineError::BookFull)
        );
        assert_eq!(
            f.snapshot(),
            before,
            "equal price is not better: time priority"
        );
        let r = f
            .place(order(Side::Bid, OrderType::Limit, 9, 1, CAROL))
            .unwrap();
        assert_eq!(r.events, 1);
        assert_eq!(f.side(Side::Bid), vec![(10, 1, ALICE), (9, 1, CAROL)]);
        assert_eq!(
            f.drain(),
            vec![("out", OutReason::Evicted as u64, 1, BOB, 1)]
        );
    }

    #[test]
    fn a_full_event_queue_refuses_a_taker_before_anything_changes() {
        let mut f = Fixture::new(8, 2);
        f.rest(Side::Ask, 10, 1, ALICE);
        f.rest(Side::Ask, 11, 1, BOB);
        f.rest(Side::Ask, 12, 1, CAROL);
        let before = f.snapshot();
        assert_eq!(
            f.place(order(Side::Bid, OrderType::Limit, 12, 3, 9)),
            Err(EngineError::EventQueueFull)
        );
        assert_eq!(f.snapshot(), before);
        // Two fills fit exactly; then the queue is full until consumed.
        f.place(order(Side::Bid, OrderType::Limit, 11, 2, 9))
            .unwrap();
        assert_eq!(
            f.place(order(Side::Bid, OrderType::ImmediateOrCancel, 12, 1, 9)),
            Err(EngineError::EventQueueFull)
        );
        // An order that produces no event is still accepted.
        f.place(order(Side::Bid, OrderType::PostOnly, 5, 1, 9))
            .unwrap();
        assert_eq!(f.drain().len(), 2);
        f.place(order(Side::Bid, OrderType::ImmediateOrCancel, 12, 1, 9))
            .unwrap();
    }

    #[test]
    fn cancels_by_id_by_client_id_and_all_are_owner_checked_and_bounded() {
        let mut f = Fixture::new(8, 16);
        let id = f.rest(Side::Bid, 10, 1, ALICE);
        let mut with_client_id = order(Side::Ask, OrderType::PostOnly, 20, 1, ALICE);
        with_client_id.client_order_id = 77;
        f.place(with_client_id).unwrap();
        for price in [21, 22, 23] {
            f.rest(Side::Ask, price, 1, ALICE);
        }
        f.rest(Side::Ask, 24, 1, BOB);

        f.with(|book, _| {
            assert_eq!(
                book.cancel_order(Side::Bid, id, &[BOB; 32]),
                Err(EngineError::NotOrderOwner)
            );
            assert_eq!(
                book.cancel_order(Side::Ask, id, &[ALICE; 32]),
                Err(EngineError::OrderNotFound)
            );
            assert_eq!(
                book.cancel_order(Side::Bid, id, &[ALICE; 32])
                    .unwrap()
                    .price(),
                Ticks(10)
            );
            assert_eq!(
                book.cancel_order_by_client_id(&[BOB; 32], 77),
                Err(EngineError::OrderNotFound)
            );
            let (side, leaf) = book.cancel_order_by_client_id(&[ALICE; 32], 77).unwrap();
            assert_eq!((side, leaf.price()), (Side::Ask, Ticks(20)));
            let cancelled = book.cancel_all(&[ALICE; 32], None, 2);
            let prices: Vec<u64> = cancelled.iter().map(|(_, l)| l.price().0).collect();
            assert_eq!(prices, vec![21, 22], "best first, at most the limit");
        });
        assert_eq!(f.side(Side::Ask), vec![(23, 1, ALICE), (24, 1, BOB)]);
        assert!(
            f.drain().is_empty(),
            "an owner's own cancels produce no events"
        );
    }

    #[test]
    fn zero_quantity_zero_price_and_overflow_are_refused() {
        let mut f = Fixture::new(8, 16);
        assert_eq!(
            f.place(order(Side::Bid, OrderType::Limit, 10, 0, ALICE)),
            Err(EngineError::InvalidQuantity)
        );
        assert_eq!(
            f.place(order(Side::Bid, OrderType::Limit, 0, 1, ALICE)),
            Err(EngineError::InvalidPrice)
        );
        f.rest(Side::Ask, u64::MAX, u64::MAX, ALICE);
        let before = f.snapshot();
        assert_eq!(
            f.place(order(Side::Bid, OrderType::Limit, u64::MAX, 2, BOB)),
            Err(EngineError::Overflow)
        );
        assert_eq!(f.snapshot(), before);
    }
}
