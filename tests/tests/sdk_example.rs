//! The SDK's example bot (sdk/examples/place_and_cancel.rs), run as written
//! on the in-process chain through the same `Chain` interface it uses over RPC.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_tests::*;

#[allow(dead_code)] // its `main` is the RPC entry point, not used here
#[path = "../../sdk/examples/place_and_cancel.rs"]
mod example;

#[tokio::test]
async fn the_example_bot_places_and_cancels() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let other = h.user(1_000 * ONE_TOKEN).await;
    let bot = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&other, 1_000 * ONE_TOKEN).await;
    h.deposit(&bot, 1_000 * ONE_TOKEN).await;

    // An empty book: nothing to improve on, and nothing sent.
    let error = example::place_and_cancel(&mut h.chain, &bot.key, &market)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "no bid to improve on");

    h.place(
        &other,
        &market,
        order(OrderSide::Bid, OrderType::Limit, 14_900, 10),
    )
    .await;
    let price = example::place_and_cancel(&mut h.chain, &bot.key, &market)
        .await
        .expect("the bot runs");
    assert_eq!(price, 14_901);
    let account = h.margin_account(&bot.margin_account).await;
    assert!(account.active_orders().next().is_none(), "cancelled");
    let book = h.chain.account(&market.bids).await.unwrap();
    let bids = kestrel_sdk::book::BookSideView::from_account_data(&book.data).unwrap();
    assert_eq!(
        bids.l3(None).count(),
        1,
        "only the other trader's bid rests"
    );

    // The oracle falls to 145 (band 13,920..=15,080): a bid left at 15,550
    // can never fill, and the bot improves on the best one that can.
    h.place(
        &other,
        &market,
        order(OrderSide::Bid, OrderType::Limit, 15_550, 10),
    )
    .await;
    h.set_oracle_price(&market, 145).await;
    let price = example::place_and_cancel(&mut h.chain, &bot.key, &market)
        .await
        .expect("the bot runs");
    assert_eq!(price, 14_901);
    h.check_invariants("after the example bot").await;
}
