//! Random operation sequences run against the engine and the reference model
//! side by side: same results, same events, same resting orders, and a
//! well-formed tree after every step.
use proptest::prelude::*;

use super::book_side::BookSide;
use super::event_queue::{Event, EventQueue};
use super::matching::{NewOrder, OrderType, Orderbook, SelfTradeBehavior};
use super::model::{Model, ModelEvent, ModelOrder};
use super::node::{LeafNode, Side};
use crate::units::{BaseLots, Ticks};

const CAPACITY_ORDERS: usize = 6;
const QUEUE_CAPACITY: usize = 10;

#[derive(Clone, Debug)]
enum Op {
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

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask)]
}

fn op() -> impl Strategy<Value = Op> {
    let order_type = prop_oneof![
        4 => Just(OrderType::Limit),
        1 => Just(OrderType::PostOnly),
        1 => Just(OrderType::PostOnlySlide),
        1 => Just(OrderType::ImmediateOrCancel),
        1 => Just(OrderType::FillOrKill),
        1 => Just(OrderType::Market),
    ];
    let self_trade = prop_oneof![
        Just(SelfTradeBehavior::DecrementTake),
        Just(SelfTradeBehavior::CancelProvide),
        Just(SelfTradeBehavior::AbortTransaction),
    ];
    prop_oneof![
        8 => (side(), order_type, 1u64..=12, 1u64..=6, 0u8..3, 0u64..6, self_trade, 0u64..=3, 0usize..=6).prop_map(
            |(side, order_type, price, quantity, owner, client_order_id, self_trade, expires_in, match_limit)| {
                Op::Place { side, order_type, price, quantity, owner, client_order_id, self_trade, expires_in, match_limit }
            }
        ),
        2 => (side(), any::<usize>(), 0u8..3).prop_map(|(side, pick, owner)| Op::Cancel { side, pick, owner }),
        1 => (0u8..3, 0u64..6).prop_map(|(owner, client_order_id)| Op::CancelByClientId { owner, client_order_id }),
        1 => (0u8..3, prop::option::of(side()), 0usize..4).prop_map(|(owner, side, limit)| Op::CancelAll { owner, side, limit }),
        1 => (0u64..=2).prop_map(|seconds| Op::Advance { seconds }),
        2 => (0usize..=6).prop_map(|count| Op::Consume { count }),
    ]
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
                maker_order_id: super::node::key_from_parts(f.maker_order_id),
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
                order_id: super::node::key_from_parts(o.order_id),
                client_order_id: o.client_order_id,
                quantity: o.quantity.0,
                reason: o.reason,
                order_gone: o.order_gone == 1,
            },
        })
        .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
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

    for (step, op) in ops.into_iter().enumerate() {
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
                };
                seq += 1;
                let got = book.place_order(&order, seq, now, &mut queue);
                let want = model.place(&order, seq, now);
                prop_assert_eq!(got, want, "step {}: {:?}", step, order);
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
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::CancelByClientId {
                owner,
                client_order_id,
            } => {
                let got = book
                    .cancel_order_by_client_id(&[owner; 32], client_order_id)
                    .map(|(s, l)| (s, as_model(&l)));
                let want = model.cancel_by_client_id(&[owner; 32], client_order_id);
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::CancelAll { owner, side, limit } => {
                let got: Vec<_> = book
                    .cancel_all(&[owner; 32], side, limit)
                    .iter()
                    .map(|(s, l)| (*s, as_model(l)))
                    .collect();
                let want = model.cancel_all(&[owner; 32], side, limit);
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::Advance { seconds } => now += seconds,
            Op::Consume { count } => {
                for _ in 0..count {
                    prop_assert_eq!(
                        queue.pop_front().is_some(),
                        model.queue.pop_front().is_some()
                    );
                }
            }
        }
        for side in [Side::Bid, Side::Ask] {
            let engine: Vec<ModelOrder> =
                book.side(side).iter().map(|(_, l)| as_model(l)).collect();
            prop_assert_eq!(
                engine,
                model.side_in_priority(side),
                "step {}: {:?} side differs",
                step,
                side
            );
            if let Err(e) = book.side(side).check_invariants() {
                return Err(TestCaseError::fail(format!(
                    "step {step}: {side:?} tree: {e}"
                )));
            }
        }
        prop_assert_eq!(
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
            prop_assert!(
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

fn cases() -> u32 {
    std::env::var("KESTREL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
