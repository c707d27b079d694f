//! Open-interest and position caps (`set_market_limits`): an order that
//! could raise the market's open interest, or the account's exposure (its
//! position with its resting orders filled on the worse side), past a cap
//! is refused with a named error and changes nothing; one that does not
//! raise the exposure always passes, so a position above a lowered cap can
//! still shrink.
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
async fn an_open_interest_cap_counts_what_an_order_could_add() {
    let mut c = setup(MarketLimits {
        max_open_interest_lots: 150,
        max_position_lots: 0,
    })
    .await;
    // 100 lots of open interest: trader 1 long, trader 0 short.
    c.place(0, ASK, OrderType::PostOnly, 100).await;
    c.place(1, BID, OrderType::ImmediateOrCancel, 100).await;
    c.h.crank(&c.market, 8).await;
    let market = c.h.market_state(&c.market.market).await;
    assert_eq!((market.long_lots, market.short_lots), (100, 100));
    // Trader 2 may add at most 50: a resting bid of 60 could.
    c.refused(
        2,
        BID,
        OrderType::PostOnly,
        60,
        KestrelError::OpenInterestLimitExceeded,
    )
    .await;
    c.place(2, BID, OrderType::PostOnly, 50).await;
    // Trader 3's resting ask counts too: each order is checked against the
    // open interest when it is placed, with everything it could add.
    c.refused(
        3,
        ASK,
        OrderType::PostOnly,
        51,
        KestrelError::OpenInterestLimitExceeded,
    )
    .await;
    // Trader 1 closing his long raises no exposure: never refused.
    c.place(1, ASK, OrderType::ImmediateOrCancel, 50).await;
    c.h.crank(&c.market, 8).await;
    let market = c.h.market_state(&c.market.market).await;
    assert_eq!((market.long_lots, market.short_lots), (100, 100));
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
