//! Audit finding M-4: an account holding the maximum positions could not be
//! liquidated, because the liquidation names every position's market (the
//! liquidatee's and the liquidator's) and their underlyings, and a legacy
//! transaction naming them is over 1,232 bytes. The keeper sends v0
//! transactions that name the exchange's accounts through its address
//! lookup table.
//!
//! The keeper's transactions go through the harness's `Chain`, which checks
//! the invariants after every one of them.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::MAX_POSITIONS;
use kestrel_keeper::cranks::{Keeper, Liquidator};
use kestrel_sdk::client::Chain;
use kestrel_sdk::ix::MarketAccounts;
use kestrel_sdk::lookup_table::{self, AddressLookupTableAccount};
use kestrel_sdk::tx::{self, Budget};
use kestrel_tests::*;
use solana_sdk::hash::Hash;
use solana_sdk::instruction::Instruction;
use solana_sdk::signer::Signer;

const PRICE: u64 = 15_000;
/// Markets the liquidator holds positions in that the liquidatee does not.
const LIQUIDATOR_ONLY_MARKETS: usize = 3;

/// `maker` asks `lots` at 150.00 and `taker` buys them all.
async fn open_long(
    h: &mut Harness,
    market: &MarketAccounts,
    maker: &User,
    taker: &User,
    lots: u64,
) {
    let ask = order(OrderSide::Ask, OrderType::Limit, PRICE, lots);
    h.place(maker, market, ask).await;
    let take = order(OrderSide::Bid, OrderType::ImmediateOrCancel, PRICE, lots);
    h.place(taker, market, take).await;
}

/// The transaction as the keeper sends it: its compute-budget instructions
/// (compute units, price, loaded data), then `instruction`; its size on the
/// wire with `payer` paying.
fn keeper_transaction_size(
    payer: &solana_sdk::pubkey::Pubkey,
    instruction: &Instruction,
    tables: &[AddressLookupTableAccount],
) -> usize {
    let budget = Budget {
        compute_unit_limit: 100_000,
        compute_unit_price: 1,
        loaded_accounts_data_size: Some(2 << 20),
    };
    let mut all = budget.instructions();
    all.push(instruction.clone());
    tx::wire_size(&tx::message(payer, &all, tables, Hash::default()).unwrap())
}

#[tokio::test]
async fn m4_liquidates_an_account_holding_the_maximum_positions() {
    let mut h = Harness::new().await;
    // Markets on two underlyings: market 0 and the liquidator's own on
    // underlying 0, the rest of bob's on underlying 1.
    let mut markets = vec![
        h.create_market(0, market_params).await,
        h.create_market(1, market_params).await,
    ];
    for index in 2..(MAX_POSITIONS + LIQUIDATOR_ONLY_MARKETS) as u16 {
        let on = if usize::from(index) < MAX_POSITIONS {
            1
        } else {
            0
        };
        let underlying = markets[on].underlying;
        markets.push(h.create_market_on(index, &underlying, perp_params()).await);
    }
    // Bob: long 400 lots (600 USDC) in market 0 and 5 lots in each of the
    // other 31, on 88 USDC. Alice makes his markets; dave makes carol's.
    let alice = h.user(20_000 * ONE_TOKEN).await;
    let dave = h.user(20_000 * ONE_TOKEN).await;
    let bob = h.user(88 * ONE_TOKEN).await;
    let carol = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&alice, 20_000 * ONE_TOKEN).await;
    h.deposit(&dave, 20_000 * ONE_TOKEN).await;
    h.deposit(&bob, 88 * ONE_TOKEN).await;
    h.deposit(&carol, 10_000 * ONE_TOKEN).await;
    for (i, market) in markets[..MAX_POSITIONS].iter().enumerate() {
        let lots = if i == 0 { 400 } else { 5 };
        open_long(&mut h, market, &alice, &bob, lots).await;
    }
    // Carol, the keeper's liquidator, holds positions of her own in markets
    // bob does not trade: her health accounts add three more groups.
    for market in &markets[MAX_POSITIONS..] {
        open_long(&mut h, market, &dave, &carol, 10).await;
    }
    let bob_state = h.margin_account(&bob.margin_account).await;
    let held = |a: &kestrel::state::MarginAccount| a.active_positions().count();
    assert_eq!(held(&bob_state), MAX_POSITIONS, "bob holds the maximum");
    assert_eq!(
        held(&h.margin_account(&carol.margin_account).await),
        LIQUIDATOR_ONLY_MARKETS
    );

    // The exchange's lookup table, created and extended through the SDK
    // (what kestrel-migrations runs), with every market and oracle.
    let admin = h.admin.insecure_clone();
    let table = h.create_lookup_table(&admin).await.expect("table created");
    let wanted = lookup_table::exchange_addresses(&markets);
    h.extend_lookup_table(&table, &admin, &wanted)
        .await
        .expect("table extended");
    let stored = h.lookup_table(&table).await.unwrap().expect("the table");
    assert_eq!(stored.addresses, wanted);
    assert_eq!(stored.authority, Some(admin.pubkey()));
    let slot = Chain::clock(&mut h).await.unwrap().slot;
    assert!(slot > stored.last_extended_slot, "usable now");
    assert!(lookup_table::missing(&stored.addresses, &wanted).is_empty());

    // Market 0 falls to 137: bob is under maintenance.
    h.set_oracle_price(&markets[0], 137).await;
    assert!(h.health_preview(&bob.margin_account).await.maintenance < 0);

    // The liquidation the keeper builds does not fit a legacy transaction,
    // whether the liquidator pays its own fees (the daemon) or another key
    // does (this chain's payer); with the table it fits.
    let liquidate = h
        .liquidate_ix(&carol, &bob.margin_account, &markets[0], u64::MAX)
        .await;
    let table_account = stored.account();
    let legacy_alone = keeper_transaction_size(&carol.pubkey(), &liquidate, &[]);
    let legacy_paid = keeper_transaction_size(&h.chain.payer_pubkey(), &liquidate, &[]);
    let v0_alone = keeper_transaction_size(
        &carol.pubkey(),
        &liquidate,
        std::slice::from_ref(&table_account),
    );
    let v0_paid = keeper_transaction_size(&h.chain.payer_pubkey(), &liquidate, &[table_account]);
    println!(
        "M-4 liquidation: {} accounts; legacy {legacy_alone} bytes \
         ({legacy_paid} with a separate fee payer), v0 {v0_alone} ({v0_paid})",
        liquidate.accounts.len()
    );
    assert!(legacy_alone > tx::PACKET_DATA_SIZE, "{legacy_alone}");
    assert!(legacy_paid > tx::PACKET_DATA_SIZE, "{legacy_paid}");
    assert!(v0_alone <= tx::PACKET_DATA_SIZE, "{v0_alone}");
    assert!(v0_paid <= tx::PACKET_DATA_SIZE, "{v0_paid}");

    let mut keeper = Keeper::new(
        markets.clone(),
        Some(Liquidator {
            authority: carol.key.insecure_clone(),
            margin_account: carol.margin_account,
            unwind_slippage_bps: None,
        }),
    );

    // Without the table the keeper finds bob but cannot send: the failure
    // is reported and nothing changes.
    let legacy = keeper.run_cycle(&mut h).await.expect("chain answers");
    assert_eq!(legacy.liquidatable, vec![bob.margin_account]);
    assert!(legacy.liquidations.is_empty(), "{legacy:?}");
    assert!(
        legacy
            .failures
            .iter()
            .any(|f| f.contains("liquidate") && f.contains("exceeds the 1232-byte limit")),
        "{:?}",
        legacy.failures
    );
    let lots = |a: &kestrel::state::MarginAccount| a.position(0).map(|p| p.base_lots);
    assert_eq!(
        lots(&h.margin_account(&bob.margin_account).await),
        Some(400)
    );

    // With it, the same cycle liquidates bob.
    keeper.lookup_table = Some(table);
    let report = keeper.run_cycle(&mut h).await.expect("chain answers");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.liquidations.len(), 1, "{report:?}");
    let done = &report.liquidations[0];
    assert_eq!(
        (done.account, done.market_index, done.base_lots_before),
        (bob.margin_account, 0, 400)
    );
    assert!(
        0 < done.base_lots_after && done.base_lots_after < 400,
        "{done:?}"
    );
    let after = h.health_preview(&bob.margin_account).await;
    assert!(after.maintenance >= 0, "{after:?}");
    let bob_after = h.margin_account(&bob.margin_account).await;
    assert_eq!(
        held(&bob_after),
        MAX_POSITIONS,
        "partial: every position stays"
    );
    let carol_state = h.margin_account(&carol.margin_account).await;
    assert_eq!(held(&carol_state), LIQUIDATOR_ONLY_MARKETS + 1);
    assert_eq!(
        carol_state.position(0).map(|p| p.base_lots),
        Some(400 - done.base_lots_after)
    );

    // Healthy again: the next cycle (v0 cranks included) leaves bob alone.
    let next = keeper.run_cycle(&mut h).await.unwrap();
    assert!(
        next.liquidations.is_empty() && next.failures.is_empty(),
        "{next:?}"
    );
}

/// The table is extended only with what it lacks, and an address appended
/// in this slot is not looked up until the next one.
#[tokio::test]
async fn the_lookup_table_grows_with_the_markets_and_is_used_once_usable() {
    let mut h = Harness::new().await;
    let first = h.create_market(0, market_params).await;
    let admin = h.admin.insecure_clone();
    let table = h.create_lookup_table(&admin).await.unwrap();
    assert!(h
        .lookup_table(&table)
        .await
        .unwrap()
        .unwrap()
        .addresses
        .is_empty());
    let wanted = lookup_table::exchange_addresses(&[first]);
    h.extend_lookup_table(&table, &admin, &wanted)
        .await
        .unwrap();

    let second = h.create_market(1, market_params).await;
    let stored = h.lookup_table(&table).await.unwrap().unwrap();
    let missing = lookup_table::missing(
        &stored.addresses,
        &lookup_table::exchange_addresses(&[first, second]),
    );
    // Its four accounts, its underlying and the underlying's two feeds.
    assert_eq!(missing.len(), 7, "the new market's accounts only");
    h.extend_lookup_table(&table, &admin, &missing)
        .await
        .unwrap();
    let stored = h.lookup_table(&table).await.unwrap().unwrap();
    assert_eq!(stored.addresses.len(), wanted.len() + 7);
    assert_eq!(
        stored.usable_at(stored.last_extended_slot).addresses.len(),
        wanted.len(),
        "the last extension waits for the next slot"
    );

    // A v0 transaction through the table lands (a deposit: the exchange,
    // the vault and the token program come from the table); the SDK refuses
    // an oversized one before sending it.
    let carol = h.user(10_000 * ONE_TOKEN).await;
    let deposit = kestrel_sdk::ix::deposit(
        &carol.pubkey(),
        &carol.margin_account,
        &carol.token_account,
        ONE_TOKEN,
    );
    h.submit_with_tables(&[deposit], &[&carol.key], &[stored.account()])
        .await
        .expect("a deposit as v0");
    assert_eq!(h.collateral(&carol.margin_account).await, ONE_TOKEN as i64);
    let makers: Vec<_> = (0..45)
        .map(|_| solana_sdk::pubkey::Pubkey::new_unique())
        .collect();
    let oversized = kestrel_sdk::ix::consume_events(&second, &makers, None, 1);
    let refused = h.submit(&[oversized], &[]).await.unwrap_err();
    assert!(
        matches!(&refused, kestrel_sdk::client::SendError::Unsendable(why) if why.contains("exceeds")),
        "{refused}"
    );
}

/// One liquidation names a position's market and each distinct underlying:
/// an account may hold positions on at most `MAX_UNDERLYINGS_PER_ACCOUNT`
/// underlyings, so it stays liquidatable within a transaction's account
/// locks. Opening a position on one more is refused, by an order (a rest
/// reserves a position) or by a liquidation that would hand the liquidator
/// one; what is already open keeps trading, and a closed slot frees room.
#[tokio::test]
async fn an_account_holds_positions_on_at_most_sixteen_underlyings() {
    use kestrel::portfolio::MAX_UNDERLYINGS_PER_ACCOUNT;
    let mut h = Harness::new().await;
    let mut markets = Vec::new();
    for index in 0..=MAX_UNDERLYINGS_PER_ACCOUNT as u16 {
        // Each on its own underlying.
        markets.push(h.create_market(index, market_params).await);
    }
    let (last, full) = markets.split_last().expect("markets");
    let carol = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&carol, 10_000 * ONE_TOKEN).await;
    let bid = || order(OrderSide::Bid, OrderType::PostOnly, 14_900, 1);
    for market in full {
        h.place(&carol, market, bid()).await;
    }
    let over = h.place_ix(&carol, last, bid()).await;
    h.refused(
        "a position on a seventeenth underlying",
        &[over],
        &[&carol.key],
        error_code(KestrelError::TooManyUnderlyings),
    )
    .await;
    // More on an underlying already held is fine.
    h.place(&carol, &full[3], bid()).await;

    // Bob, long 200 lots (2 SOL) on the seventeenth on 40 USDC, falls under
    // maintenance there at 135:
    // carol, on sixteen already, may not take his position over.
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(40 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 40 * ONE_TOKEN).await;
    open_long(&mut h, last, &alice, &bob, 200).await;
    h.crank(last, 8).await;
    h.set_oracle_price(last, 135).await;
    assert!(h.health_preview(&bob.margin_account).await.maintenance < 0);
    let liquidate = h
        .liquidate_ix(&carol, &bob.margin_account, last, u64::MAX)
        .await;
    h.refused(
        "a liquidation handing the liquidator a seventeenth underlying",
        &[liquidate],
        &[&carol.key],
        error_code(KestrelError::TooManyUnderlyings),
    )
    .await;

    // Carol's orders in market 0 cancelled, her slot there is free: now
    // she may.
    let cancel =
        kestrel_sdk::ix::cancel_all(&carol.pubkey(), &carol.margin_account, &full[0], None, 8);
    h.ok("cancel_all", &[cancel], &[&carol.key]).await;
    assert!(h
        .margin_account(&carol.margin_account)
        .await
        .position(0)
        .is_none());
    let liquidate = h
        .liquidate_ix(&carol, &bob.margin_account, last, u64::MAX)
        .await;
    h.ok("liquidate", &[liquidate], &[&carol.key]).await;
}
