//! Fuzzes the order book: bytes become an operation sequence, run on the
//! engine and the reference model side by side (see engine::model).
//! `cargo fuzz run book_ops` (from programs/kestrel).
#![no_main]

use kestrel::engine::model::{run_differential, Op};
use kestrel::engine::{OrderType, SelfTradeBehavior, Side};
use libfuzzer_sys::fuzz_target;

/// Reads one small number per byte; running out of input ends the sequence.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self, modulo: u8) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first % modulo)
    }

    fn side(&mut self) -> Option<Side> {
        Some(if self.next(2)? == 0 {
            Side::Bid
        } else {
            Side::Ask
        })
    }
}

fn decode(data: &[u8]) -> Vec<Op> {
    const ORDER_TYPES: [OrderType; 6] = [
        OrderType::Limit,
        OrderType::PostOnly,
        OrderType::PostOnlySlide,
        OrderType::ImmediateOrCancel,
        OrderType::FillOrKill,
        OrderType::Market,
    ];
    const SELF_TRADE: [SelfTradeBehavior; 3] = [
        SelfTradeBehavior::DecrementTake,
        SelfTradeBehavior::CancelProvide,
        SelfTradeBehavior::AbortTransaction,
    ];
    let mut bytes = Bytes(data);
    let mut ops = Vec::new();
    let decode_one = |b: &mut Bytes| -> Option<Op> {
        Some(match b.next(16)? {
            0..=7 => Op::Place {
                side: b.side()?,
                order_type: ORDER_TYPES[b.next(6)? as usize],
                price: 1 + u64::from(b.next(12)?),
                quantity: 1 + u64::from(b.next(6)?),
                owner: b.next(3)?,
                client_order_id: u64::from(b.next(6)?),
                self_trade: SELF_TRADE[b.next(3)? as usize],
                expires_in: u64::from(b.next(4)?),
                match_limit: usize::from(b.next(7)?),
                band: match b.next(8)? {
                    0..=3 => None,
                    low => {
                        let low = u64::from(low) + u64::from(b.next(9)?);
                        Some((low, low + u64::from(b.next(7)?)))
                    }
                },
            },
            8 | 9 => Op::Cancel {
                side: b.side()?,
                pick: usize::from(b.next(255)?),
                owner: b.next(3)?,
            },
            10 => Op::CancelByClientId {
                owner: b.next(3)?,
                client_order_id: u64::from(b.next(6)?),
            },
            11 => Op::CancelAll {
                owner: b.next(3)?,
                side: match b.next(3)? {
                    0 => None,
                    1 => Some(Side::Bid),
                    _ => Some(Side::Ask),
                },
                limit: usize::from(b.next(4)?),
            },
            12 => Op::Advance {
                seconds: u64::from(b.next(3)?),
            },
            _ => Op::Consume {
                count: usize::from(b.next(7)?),
            },
        })
    };
    while let Some(op) = decode_one(&mut bytes) {
        ops.push(op);
    }
    ops
}

fuzz_target!(|data: &[u8]| {
    if let Err(difference) = run_differential(&decode(data)) {
        panic!("{difference}");
    }
});
