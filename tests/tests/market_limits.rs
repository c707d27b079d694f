//! Open-interest and position caps (`set_market_limits`): an order whose
//! fills open lots past the market's open-interest cap, or that takes the
//! account's exposure (its position with its resting orders filled on the
//! worse side) past its position cap, is refused with a named error and
//! changes nothing; one that neither opens lots nor grows the exposure
//! always passes, so a position above a lowered cap can still shrink.
//!
//! Market 0 as in `trading.rs`: 150 USDC per SOL is 15,000 ticks, a lot
//! 0.01 SOL; 10 % initial margin.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{MarketLimits, MarketStatus};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const PRICE: u64 = 15_000;

struct Capped {
    h: Harness,
    market: MarketAccounts,
    traders: Vec<User>,
}

/// Market 0 with `limits`, four traders with 1,000 USDC each.
async fn setup(limits: MarketLimits) -> Capped {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let mut traders = Vec::new();
    for _ in 0..4 {
        let user = h.user(1_000 * ONE_TOKEN).await;
        h.deposit(&user, 1_000 * ONE_TOKEN).await;
        traders.push(user);
    }
    let admin = h.admin.insecure_clone();
    let set = ix::set_market_limits(&admin.pubkey(), &market.market, limits);
    h.ok("set_market_limits", &[set], &[&admin]).await;
    Capped { h, market, traders }
}

impl Capped {
    /// Resting bids at 150.00 and asks at 151.00; a taker at the other
    /// side's price.
    fn args(side: OrderSide, kind: OrderType, lots: u64) -> kestrel::instructions::PlaceOrderArgs {
        let resting = kind == OrderType::PostOnly;
        let price = match (side, resting) {
            (OrderSide::Bid, true) | (OrderSide::Ask, false) => PRICE,
            (OrderSide::Ask, true) | (OrderSide::Bid, false) => PRICE + 100,
        };
        order(side, kind, price, lots)
    }

    async fn place(&mut self, trader: usize, side: OrderSide, kind: OrderType, lots: u64) {
        let user = &self.traders[trader];
        self.h
            .place(user, &self.market, Self::args(side, kind, lots))
            .await;
    }

    async fn refused(
        &mut self,
        trader: usize,
        side: OrderSide,
        kind: OrderType,
        lots: u64,
        error: KestrelError,
    ) {
        let user = &self.traders[trader];
        let place = self
            .h
            .place_ix(user, &self.market, Self::args(side, kind, lots))
            .await;
        self.h
            .refused("place_order", &[place], &[&user.key], error_code(error))
            .await;
    }
}

#[tokio::test]
async fn a_position_cap_counts_resting_orders_and_lets_a_position_shrink() {
    let mut c = setup(MarketLimits {
        max_open_interest_lots: 0,
        max_position_lots: 100,
    })
    .await;
    // Trader 0 rests bids for 60, then 40 more: 100, at the cap.
    c.place(0, BID, OrderType::PostOnly, 60).await;
    c.place(0, BID, OrderType::PostOnly, 40).await;
    // One more lot resting would make 101 if every bid filled.
    c.refused(
        0,
        BID,
        OrderType::PostOnly,
        1,
        KestrelError::PositionLimitExceeded,
    )
    .await;
    // Asks up to 100 do not raise the worse side (100 either way)...
    c.place(0, ASK, OrderType::PostOnly, 100).await;
    // ...one more would (-101 if every ask filled).
    c.refused(
        0,
        ASK,
        OrderType::PostOnly,
        1,
        KestrelError::PositionLimitExceeded,
    )
    .await;
    // Trader 1 sells trader 0 into his bids: 100 long, still at the cap.
    c.place(1, ASK, OrderType::ImmediateOrCancel, 100).await;
    c.h.crank(&c.market, 8).await;
    let account = c.h.margin_account(&c.traders[0].margin_account).await;
    assert_eq!(account.position(0).unwrap().base_lots, 100);

    // The admin lowers the cap to 10: 100 lots may shrink, never grow.
    let admin = c.h.admin.insecure_clone();
    let lower = MarketLimits {
        max_open_interest_lots: 0,
        max_position_lots: 10,
    };
    let set = ix::set_market_limits(&admin.pubkey(), &c.market.market, lower);
    c.h.ok("set_market_limits", &[set], &[&admin]).await;
    c.refused(
        0,
        BID,
        OrderType::PostOnly,
        1,
        KestrelError::PositionLimitExceeded,
    )
    .await;
    c.place(2, BID, OrderType::PostOnly, 5).await;
    c.place(0, ASK, OrderType::ImmediateOrCancel, 5).await;
    c.h.check_invariants("position cap").await;
}

#[tokio::test]
async fn an_open_interest_cap_counts_what_takers_open() {
    let mut c = setup(MarketLimits {
        max_open_interest_lots: 150,
        max_position_lots: 0,
    })
    .await;
    // While open interest is nil, trader 0 rests a far bid of 100: resting
    // orders open nothing, and a later fill of it is checked when its
    // taker opens.
    let far_bid =
        c.h.place_ix(
            &c.traders[0],
            &c.market,
            order(BID, OrderType::PostOnly, 14_000, 100),
        )
        .await;
    let key = c.traders[0].key.insecure_clone();
    c.h.ok("place_order", &[far_bid], &[&key]).await;
    // 100 lots of open interest: trader 2 opens long against trader 1's ask.
    c.place(1, ASK, OrderType::PostOnly, 100).await;
    c.place(2, BID, OrderType::ImmediateOrCancel, 100).await;
    c.h.crank(&c.market, 8).await;
    let market = c.h.market_state(&c.market.market).await;
    assert_eq!((market.long_lots, market.short_lots), (100, 100));
    // Trader 3 bids 100 (resting: never refused by the open interest).
    c.place(3, BID, OrderType::PostOnly, 100).await;
    // Trader 0 sells 60 into it: its exposure stays 100 (the far bid), but
    // its fills open 60 short, and 100 + 60 passes 150.
    c.refused(
        0,
        ASK,
        OrderType::ImmediateOrCancel,
        60,
        KestrelError::OpenInterestLimitExceeded,
    )
    .await;
    c.place(0, ASK, OrderType::ImmediateOrCancel, 50).await;
    c.h.crank(&c.market, 8).await;
    let market = c.h.market_state(&c.market.market).await;
    assert_eq!((market.long_lots, market.short_lots), (150, 150));
    // At the cap, trader 2 closing into trader 3's bid opens nothing:
    // allowed, and open interest stays (trader 3 opens what 2 closed).
    c.place(2, ASK, OrderType::ImmediateOrCancel, 50).await;
    c.h.crank(&c.market, 8).await;
    let market = c.h.market_state(&c.market.market).await;
    assert_eq!((market.long_lots, market.short_lots), (150, 150));
    // A flip opens its new side whole: trader 2 (long 50) selling 60
    // would open 10 short past the cap.
    c.place(3, BID, OrderType::PostOnly, 60).await;
    c.refused(
        2,
        ASK,
        OrderType::ImmediateOrCancel,
        60,
        KestrelError::OpenInterestLimitExceeded,
    )
    .await;
    c.h.check_invariants("open interest cap").await;
}

#[tokio::test]
async fn only_the_admin_sets_limits_on_a_market_that_trades() {
    let mut c = setup(MarketLimits::default()).await;
    let limits = MarketLimits {
        max_open_interest_lots: 1_000,
        max_position_lots: 100,
    };
    let intruder = Keypair::new();
    c.h.chain.fund(&intruder.pubkey(), 1_000_000_000).await;
    let set = ix::set_market_limits(&intruder.pubkey(), &c.market.market, limits);
    c.h.refused(
        "set_market_limits",
        &[set],
        &[&intruder],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let admin = c.h.admin.insecure_clone();
    let set = ix::set_market_limits(&admin.pubkey(), &c.market.market, limits);
    c.h.ok("set_market_limits", &[set], &[&admin]).await;
    assert_eq!(c.h.market_state(&c.market.market).await.limits, limits);
    // A closed market's limits are final.
    for status in [MarketStatus::Paused, MarketStatus::Closed] {
        let close = ix::set_market_status(&admin.pubkey(), &c.market.market, status);
        c.h.ok("set_market_status", &[close], &[&admin]).await;
    }
    let set = ix::set_market_limits(&admin.pubkey(), &c.market.market, MarketLimits::default());
    c.h.refused(
        "set_market_limits",
        &[set],
        &[&admin],
        error_code(KestrelError::InvalidStatusTransition),
    )
    .await;
}
