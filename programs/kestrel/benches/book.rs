//! Native benchmarks of the order book engine (host CPU time; compute units
//! on the SBF build are measured separately). `cargo bench -p kestrel`.
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use kestrel::engine::{
    BookSide, EventQueue, NewOrder, OrderType, Orderbook, SelfTradeBehavior, Side,
};
use kestrel::units::{BaseLots, Ticks};

const CAPACITY: usize = 1024;
const QUEUE: usize = 512;

/// Zeroed 8-byte-aligned slabs for a full-size book and queue.
#[derive(Clone)]
struct Slabs {
    bids: Vec<u64>,
    asks: Vec<u64>,
    queue: Vec<u64>,
}

impl Slabs {
    fn new() -> Self {
        let mut slabs = Self {
            bids: vec![0; BookSide::byte_len(CAPACITY) / 8],
            asks: vec![0; BookSide::byte_len(CAPACITY) / 8],
            queue: vec![0; EventQueue::byte_len(QUEUE) / 8],
        };
        BookSide::init(bytemuck::cast_slice_mut(&mut slabs.bids), Side::Bid).unwrap();
        BookSide::init(bytemuck::cast_slice_mut(&mut slabs.asks), Side::Ask).unwrap();
        EventQueue::init(bytemuck::cast_slice_mut(&mut slabs.queue)).unwrap();
        slabs
    }

    fn views(&mut self) -> (Orderbook<'_>, EventQueue<'_>) {
        (
            Orderbook {
                bids: BookSide::load(bytemuck::cast_slice_mut(&mut self.bids)).unwrap(),
                asks: BookSide::load(bytemuck::cast_slice_mut(&mut self.asks)).unwrap(),
            },
            EventQueue::load(bytemuck::cast_slice_mut(&mut self.queue)).unwrap(),
        )
    }
}

fn order(side: Side, order_type: OrderType, price: u64, quantity: u64, owner: u8) -> NewOrder {
    NewOrder {
        side,
        order_type,
        price: Ticks(price),
        quantity: BaseLots(quantity),
        owner: [owner; 32],
        owner_slot: 0,
        client_order_id: 0,
        flags: 0,
        expiry: 0,
        self_trade: SelfTradeBehavior::DecrementTake,
        match_limit: 255,
        maker_fee_bps: 0,
        band: None,
    }
}

/// Where the order with sequence `seq` sits behind the top levels.
fn deep_price(seq: u64) -> u64 {
    100_000 + seq * 7 % 5_000
}

/// Asks at `levels` distinct prices from 1,000 up, one lot each, plus
/// `depth - levels` more orders behind them; seq numbers from 1.
fn book_with_asks(levels: u64, depth: u64) -> Slabs {
    let mut slabs = Slabs::new();
    {
        let (mut book, mut queue) = slabs.views();
        for seq in 1..=depth {
            let price = if seq <= levels {
                1_000 + seq
            } else {
                deep_price(seq)
            };
            book.place_order(
                &order(Side::Ask, OrderType::PostOnly, price, 1, 1),
                seq,
                0,
                &mut queue,
            )
            .unwrap();
        }
    }
    slabs
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("book");

    // Rest one post-only order on a side already holding 1,000 orders.
    group.bench_function("insert into 1000-order side", |b| {
        let base = book_with_asks(0, 1_000);
        b.iter_batched_ref(
            || base.clone(),
            |slabs| {
                let (mut book, mut queue) = slabs.views();
                book.place_order(
                    &order(Side::Ask, OrderType::PostOnly, 50_000, 1, 2),
                    5_000,
                    0,
                    &mut queue,
                )
                .unwrap()
            },
            BatchSize::LargeInput,
        );
    });

    // Cancel one order by id from a side of 1,000.
    group.bench_function("cancel from 1000-order side", |b| {
        let base = book_with_asks(0, 1_000);
        let victim = kestrel::engine::order_key(Side::Ask, Ticks(deep_price(500)), 500);
        b.iter_batched_ref(
            || base.clone(),
            |slabs| {
                let (mut book, _) = slabs.views();
                book.cancel_order(Side::Ask, victim, &[1; 32]).unwrap()
            },
            BatchSize::LargeInput,
        );
    });

    // A taker sweeping N price levels of a 1,000-order side.
    for levels in [1u64, 8, 32, 64] {
        group.bench_with_input(
            BenchmarkId::new("take sweeping levels", levels),
            &levels,
            |b, &levels| {
                let base = book_with_asks(levels, 1_000);
                b.iter_batched_ref(
                    || base.clone(),
                    |slabs| {
                        let (mut book, mut queue) = slabs.views();
                        let taker = order(
                            Side::Bid,
                            OrderType::ImmediateOrCancel,
                            1_000 + levels,
                            levels,
                            2,
                        );
                        let result = book.place_order(&taker, 5_000, 0, &mut queue).unwrap();
                        assert_eq!(result.fills as u64, levels);
                        result
                    },
                    BatchSize::LargeInput,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(book, benches);
criterion_main!(book);
