//! Random operation sequences for [`run_differential`]: engine and reference
//! model must agree on every result, event and resting order, with a
//! well-formed tree after every step.
use proptest::prelude::*;

use super::matching::{OrderType, SelfTradeBehavior};
use super::model::{run_differential, Op};
use super::node::Side;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask)]
}

/// No band (no oracle price) half the time, else a narrow one inside the
/// price range orders use, so makers outside it are common.
fn band() -> impl Strategy<Value = Option<(u64, u64)>> {
    prop_oneof![
        Just(None),
        (1u64..=12, 0u64..=6).prop_map(|(low, width)| Some((low, low + width))),
    ]
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
        8 => (side(), order_type, 1u64..=12, 1u64..=6, 0u8..3, 0u64..6, self_trade, 0u64..=3, 0usize..=6, band()).prop_map(
            |(side, order_type, price, quantity, owner, client_order_id, self_trade, expires_in, match_limit, band)| {
                Op::Place { side, order_type, price, quantity, owner, client_order_id, self_trade, expires_in, match_limit, band }
            }
        ),
        2 => (side(), any::<usize>(), 0u8..3).prop_map(|(side, pick, owner)| Op::Cancel { side, pick, owner }),
        1 => (0u8..3, 0u64..6).prop_map(|(owner, client_order_id)| Op::CancelByClientId { owner, client_order_id }),
        1 => (0u8..3, prop::option::of(side()), 0usize..4).prop_map(|(owner, side, limit)| Op::CancelAll { owner, side, limit }),
        1 => (0u64..=2).prop_map(|seconds| Op::Advance { seconds }),
        2 => (0usize..=6).prop_map(|count| Op::Consume { count }),
    ]
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
        run_differential(&ops).map_err(TestCaseError::fail)?;
    }
}
