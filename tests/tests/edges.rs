//! Arithmetic at the edges: zero, one and the largest values an instruction
//! takes, and a loss larger than the account's collateral. Every case ends in
//! a named error or an exact result; the harness checks the invariants after
//! each transaction.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_sdk::ix;
use kestrel_tests::*;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

#[tokio::test]
async fn order_arguments_at_zero_one_and_max_are_refused_by_name() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    let cases = [
        (
            order(BID, OrderType::Limit, 0, 1),
            KestrelError::InvalidOrder,
        ),
        (
            order(ASK, OrderType::Limit, 1, 1),
            KestrelError::PriceOutsideBand,
        ),
        (
            order(BID, OrderType::Limit, u64::MAX, 1),
            KestrelError::PriceOutsideBand,
        ),
        (
            order(BID, OrderType::Limit, 15_000, 0),
            KestrelError::InvalidOrder,
        ),
        // u64::MAX lots at 150 cannot be margined (or even valued).
        (
            order(BID, OrderType::Limit, 15_000, u64::MAX),
            KestrelError::MathOverflow,
        ),
        (
            order(BID, OrderType::Limit, 15_000, u64::MAX / 1_000_000_000_000),
            KestrelError::InsufficientHealth,
        ),
        (
            order(BID, OrderType::Market, u64::MAX, 0),
            KestrelError::InvalidOrder,
        ),
    ];
    for (args, error) in cases {
        let place = h.place_ix(&alice, &market, args).await;
        h.refused("place_order", &[place], &[&alice.key], code(error))
            .await;
    }
    // A market order at "any price" and the largest quantity takes what the
    // band allows and no more.
    let bob = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 1_000 * ONE_TOKEN).await;
    h.place(&bob, &market, order(ASK, OrderType::Limit, 15_000, 3))
        .await;
    h.place(
        &alice,
        &market,
        order(BID, OrderType::Market, u64::MAX, u64::MAX),
    )
    .await;
    let position = *h
        .margin_account(&alice.margin_account)
        .await
        .position(0)
        .unwrap();
    assert_eq!(position.base_lots, 3);
}

#[tokio::test]
async fn collateral_at_the_top_of_its_range_overflows_by_name() {
    let mut h = Harness::new().await;
    let top = i64::MAX as u64;
    let whale = h.user(top).await;
    let mint_authority = h.mint_authority.insecure_clone();
    let mint = h.mint;
    h.chain
        .mint_to(&mint, &mint_authority, &whale.token_account, 10)
        .await;
    h.deposit(&whale, top).await;
    let more = ix::deposit(
        &whale.pubkey(),
        &whale.margin_account,
        &whale.token_account,
        1,
    );
    h.refused(
        "deposit",
        &[more],
        &[&whale.key],
        code(KestrelError::MathOverflow),
    )
    .await;
    assert_eq!(h.collateral(&whale.margin_account).await, i64::MAX);
    let zero = ix::withdraw(
        &whale.pubkey(),
        &whale.margin_account,
        &whale.token_account,
        0,
    );
    h.refused(
        "withdraw",
        &[zero],
        &[&whale.key],
        code(KestrelError::ZeroAmount),
    )
    .await;
    h.withdraw(&whale, top).await;
    assert_eq!(h.collateral(&whale.margin_account).await, 0);
}

#[tokio::test]
async fn a_loss_larger_than_collateral_is_booked_exactly_and_locks_withdrawals() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(20 * ONE_TOKEN).await;
    let carol = h.user(1_000 * ONE_TOKEN).await;
    for (user, amount) in [(&alice, 1_000), (&bob, 20), (&carol, 1_000)] {
        h.deposit(user, amount * ONE_TOKEN).await;
    }
    // Bob buys 1 SOL at 150 on 20 USDC (15 of initial margin).
    h.place(&alice, &market, order(ASK, OrderType::Limit, 15_000, 100))
        .await;
    h.place(
        &bob,
        &market,
        order(BID, OrderType::ImmediateOrCancel, 15_000, 100),
    )
    .await;
    // The price gaps to 100: Bob's loss (50) is far beyond his collateral.
    h.set_oracle_price(&market, 100).await;
    h.place(&carol, &market, order(BID, OrderType::Limit, 10_000, 100))
        .await;
    let mut close = order(ASK, OrderType::ImmediateOrCancel, 10_000, 100);
    close.reduce_only = true;
    h.place(&bob, &market, close).await;
    h.crank(&market, 8).await;

    // 20 - 0.075 (5 bps on 150) - 50 (loss) - 0.05 (5 bps on 100), to the unit.
    let expected = 20_000_000 - 75_000 - 50_000_000 - 50_000;
    assert_eq!(h.collateral(&bob.margin_account).await, expected);
    assert!(h
        .margin_account(&bob.margin_account)
        .await
        .position(0)
        .is_none());
    let out = ix::withdraw(&bob.pubkey(), &bob.margin_account, &bob.token_account, 1);
    h.refused(
        "withdraw",
        &[out],
        &[&bob.key],
        code(KestrelError::InsufficientFreeCollateral),
    )
    .await;
    // The winners' side: Alice is short 1 SOL from 150 (+50 at 100), Carol
    // long from 100; the vault still balances (the harness checked it).
    let alice_position = *h
        .margin_account(&alice.margin_account)
        .await
        .position(0)
        .unwrap();
    assert_eq!(alice_position.base_lots, -100);
}

/// An instruction may list up to 255 account entries, repeats included (a
/// liquidation repeats health accounts the liquidatee's list already has):
/// past the 64 the `.so`'s entry deserializes on its stack, it takes the
/// heap path and the instruction runs as with fewer. Trailing entries past
/// what the health walk reads are ignored.
#[tokio::test]
async fn an_instruction_listing_more_than_64_account_entries_runs() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    // On the stack at 64; on the heap past it.
    for (placed, entries) in [64, 65, 200].into_iter().enumerate() {
        let mut place = h
            .place_ix(&alice, &market, order(BID, OrderType::Limit, 15_000, 1))
            .await;
        let repeat = place.accounts.last().cloned().expect("named accounts");
        while place.accounts.len() < entries {
            place.accounts.push(repeat.clone());
        }
        h.ok("place_order", &[place], &[&alice.key]).await;
        let account = h.margin_account(&alice.margin_account).await;
        assert_eq!(
            account.active_orders().count(),
            placed + 1,
            "each bid rests"
        );
    }
}
