//! Funding, liquidation, bankruptcy, socialized loss and the insurance fund.
//!
//! Market 0 as in trading.rs: a lot is 0.01 SOL, a tick 0.0001 USDC per lot
//! (150 USDC per SOL = 15,000 ticks = 1.5 USDC per lot). Margins 10% initial,
//! 5% maintenance, so liquidation ends at 7.5%; liquidation fee 2.5%, 40% of
//! it to the insurance fund; funding capped at 0.5% per hour.
//!
//! Every transaction is followed by the harness's invariant checks: vault =
//! Σ collateral + Σ entry quote + pending maker quote + fees + funding
//! balances; Σ base lots = 0; open interest counters; insurance shares.
use fixed::types::I80F48;
use kestrel::engine::funding;
use kestrel::engine::insurance::{Fund, VIRTUAL_SHARES};
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::INSURANCE_UNSTAKE_COOLDOWN_SECONDS;
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::Pubkey;
use kestrel_tests::*;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const PRICE: u64 = 15_000;
/// Bob's leveraged long: 600 lots (6 SOL, 900 USDC) on 100 USDC.
const LOTS: u64 = 600;
const TAKER_FEE: i64 = 450_000;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

struct Risk {
    h: Harness,
    market: MarketAccounts,
    /// The maker: short 600 lots once bob has bought.
    alice: User,
    /// Long 600 lots on 100 USDC of collateral.
    bob: User,
    /// A well-funded liquidator.
    carol: User,
}

async fn setup_with(params: fn(&Pubkey) -> MarketSetup) -> Risk {
    let mut h = Harness::new().await;
    let market = h.create_market(0, params).await;
    let alice = h.user(2_000 * ONE_TOKEN).await;
    let bob = h.user(100 * ONE_TOKEN).await;
    let carol = h.user(10_000 * ONE_TOKEN).await;
    h.deposit(&alice, 2_000 * ONE_TOKEN).await;
    h.deposit(&bob, 100 * ONE_TOKEN).await;
    h.deposit(&carol, 10_000 * ONE_TOKEN).await;
    h.place(&alice, &market, order(ASK, OrderType::Limit, PRICE, LOTS))
        .await;
    h.place(
        &bob,
        &market,
        order(BID, OrderType::ImmediateOrCancel, PRICE, LOTS),
    )
    .await;
    h.crank(&market, 8).await;
    Risk {
        h,
        market,
        alice,
        bob,
        carol,
    }
}

async fn setup() -> Risk {
    setup_with(market_params).await
}

fn native(value: I80F48) -> i64 {
    value.to_num()
}

/// Liquidation-end health gained per lot at `price` USDC per SOL: price per
/// lot x (7.5% - 2.5%), in native units.
fn gain_per_lot(price: i64) -> i64 {
    price * 10_000 * 500 / 10_000
}

#[tokio::test]
async fn liquidation_cancels_orders_and_stops_at_the_target() {
    let mut t = setup().await;
    // Four resting bids far below the market: liquidation cancels them.
    for i in 0..4 {
        t.h.place(
            &t.bob,
            &t.market,
            order(BID, OrderType::Limit, 14_000 - i, 1),
        )
        .await;
    }
    let healthy =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.refused(
        "liquidate a healthy account",
        &[healthy],
        &[&t.carol.key],
        code(KestrelError::NotLiquidatable),
    )
    .await;

    t.h.set_oracle_price(&t.market, 138).await;
    let before = t.h.health_preview(&t.bob.margin_account).await;
    assert!(before.maintenance < 0, "{before:?}");
    let fund_before = t.h.token_balance(&t.h.insurance_vault.clone()).await;

    let liquidate =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.ok("liquidate", &[liquidate], &[&t.carol.key]).await;

    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(bob.active_orders().next().is_none(), "orders cancelled");
    let position = bob.position(0).expect("partly liquidated");
    let taken = LOTS - position.base_lots as u64;
    assert!(taken > 0 && taken < LOTS, "took {taken} lots");
    assert_eq!((position.bids_base_lots, position.asks_base_lots), (0, 0));
    // At the target and no further: one lot fewer would have left it short.
    let after = t.h.health_preview(&t.bob.margin_account).await;
    assert!(after.liquidation_end >= 0, "{after:?}");
    assert!(
        native(after.liquidation_end) < gain_per_lot(138),
        "{after:?}"
    );
    assert!(after.maintenance >= 0);

    // Carol bought at the oracle price less 2.5%, rounded against bob, and
    // paid the fund 40% of the fee (1% of the value), rounded up.
    let carol = t.h.margin_account(&t.carol.margin_account).await;
    let bought = carol.position(0).expect("carol holds the lots");
    let per_lot = 1_380_000u64;
    assert_eq!(bought.base_lots, taken as i64);
    // 138 USDC is not exact in binary: the price is a hair under, and the
    // rounding goes against bob, so at most one unit under the decimal value.
    let decimal = (per_lot * taken * 9_750 / 10_000) as i64;
    assert!(
        (decimal - 1..=decimal).contains(&-bought.quote_native),
        "{}",
        bought.quote_native
    );
    let insurance_fee = (per_lot * taken).div_ceil(100);
    assert_eq!(
        carol.collateral,
        10_000 * ONE_TOKEN as i64 - insurance_fee as i64
    );
    let fund = t.h.token_balance(&t.h.insurance_vault.clone()).await;
    assert_eq!(fund - fund_before, insurance_fee);

    // Repeated calls on the now healthy account are refused.
    let again =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.refused(
        "liquidate again",
        &[again],
        &[&t.carol.key],
        code(KestrelError::NotLiquidatable),
    )
    .await;
}

#[tokio::test]
async fn liquidation_refusals_change_nothing() {
    let mut t = setup().await;
    t.h.set_oracle_price(&t.market, 138).await;
    // Nobody liquidates themselves, or for someone else's account.
    let own =
        t.h.liquidate_ix(&t.bob, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.refused(
        "self-liquidation",
        &[own],
        &[&t.bob.key],
        code(KestrelError::CannotLiquidateSelf),
    )
    .await;
    let mut foreign =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    foreign.accounts[2].pubkey = t.alice.margin_account;
    t.h.refused(
        "liquidate into another's account",
        &[foreign],
        &[&t.carol.key],
        code(KestrelError::NotOwnerOrDelegate),
    )
    .await;
    let zero =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, 0)
            .await;
    t.h.refused(
        "liquidate no lots",
        &[zero],
        &[&t.carol.key],
        code(KestrelError::NothingToLiquidate),
    )
    .await;
    t.h.set_pause(kestrel::state::PauseFlags::LIQUIDATION).await;
    let paused =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.refused(
        "liquidation paused",
        &[paused],
        &[&t.carol.key],
        code(KestrelError::LiquidationPaused),
    )
    .await;
    t.h.set_pause(0).await;
    // A bankruptcy needs a deficit and no positions.
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.refused(
        "settle a live account",
        &[settle],
        &[],
        code(KestrelError::NotBankrupt),
    )
    .await;
    // A liquidator that cannot carry the position is refused.
    let poor = t.h.user(ONE_TOKEN).await;
    t.h.deposit(&poor, ONE_TOKEN).await;
    let liquidate =
        t.h.liquidate_ix(&poor, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.refused(
        "an under-capitalised liquidator",
        &[liquidate],
        &[&poor.key],
        code(KestrelError::InsufficientHealth),
    )
    .await;
}

/// Price gaps from 150 to 120: selling bob's 600 lots at 117 realizes
/// 6 x (117 - 150) = -198 USDC against 99.55 USDC of collateral. Returns the
/// deficit: the decimal one, or a unit more (120 is a hair under in binary
/// and the sale rounds against bob).
const DECIMAL_DEFICIT: u64 = 198 * ONE_TOKEN - (100 * ONE_TOKEN - TAKER_FEE as u64);

async fn gap_and_liquidate(t: &mut Risk) -> u64 {
    t.h.set_oracle_price(&t.market, 120).await;
    let liquidate =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.ok("liquidate", &[liquidate], &[&t.carol.key]).await;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(bob.position(0).is_none(), "fully closed");
    let deficit = bob.collateral.unsigned_abs();
    assert!(bob.collateral < 0 && (DECIMAL_DEFICIT..=DECIMAL_DEFICIT + 1).contains(&deficit));
    deficit
}

#[tokio::test]
async fn a_gap_bankruptcy_is_covered_by_the_insurance_fund_whose_stakers_bear_it() {
    let mut t = setup().await;
    let dave = t.h.user(500 * ONE_TOKEN).await;
    t.h.stake(&dave, 500 * ONE_TOKEN).await;
    assert_eq!(
        t.h.margin_account(&dave.margin_account)
            .await
            .insurance_shares,
        500 * ONE_TOKEN * VIRTUAL_SHARES,
        "the first staker buys at the initial price"
    );
    let deficit = gap_and_liquidate(&mut t).await;
    // The liquidation fee's insurance share: 1% of 600 lots at 1.2 USDC.
    let fee = 7_200_000;
    let vault = t.h.insurance_vault;
    assert_eq!(t.h.token_balance(&vault).await, 500 * ONE_TOKEN + fee);

    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    assert_eq!(t.h.collateral(&t.bob.margin_account).await, 0);
    let fund = 500 * ONE_TOKEN + fee - deficit;
    assert_eq!(t.h.token_balance(&vault).await, fund);
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.refused(
        "settle twice",
        &[settle],
        &[],
        code(KestrelError::NotBankrupt),
    )
    .await;

    // Unstaking waits for the cooldown, then pays the fund's value now.
    let shares = 500 * ONE_TOKEN * VIRTUAL_SHARES;
    let too_many = ix::request_unstake(&dave.pubkey(), &dave.margin_account, shares + 1);
    t.h.refused(
        "unstake more than held",
        &[too_many],
        &[&dave.key],
        code(KestrelError::InsufficientShares),
    )
    .await;
    let request = ix::request_unstake(&dave.pubkey(), &dave.margin_account, shares);
    t.h.ok("request_unstake", &[request], &[&dave.key]).await;
    let early = ix::unstake(&dave.pubkey(), &dave.margin_account);
    t.h.refused(
        "unstake before the cooldown",
        &[early],
        &[&dave.key],
        code(KestrelError::UnstakeCooldown),
    )
    .await;
    t.h.advance_clock(INSURANCE_UNSTAKE_COOLDOWN_SECONDS - 10)
        .await;
    let still_early = ix::unstake(&dave.pubkey(), &dave.margin_account);
    t.h.refused(
        "unstake 10 s early",
        &[still_early],
        &[&dave.key],
        code(KestrelError::UnstakeCooldown),
    )
    .await;
    t.h.advance_clock(10).await;
    let unstake = ix::unstake(&dave.pubkey(), &dave.margin_account);
    t.h.ok("unstake", &[unstake], &[&dave.key]).await;
    assert_eq!(t.h.collateral(&dave.margin_account).await, fund as i64);
    assert_eq!(t.h.token_balance(&vault).await, 0);
    assert_eq!(t.h.exchange_state().await.insurance_shares, 0);
}

fn no_insurance_share(switchboard: &Pubkey) -> MarketSetup {
    let mut setup = market_params(switchboard);
    setup.liquidation_insurance_share_bps = 0;
    setup
}

#[tokio::test]
async fn with_an_empty_fund_the_loss_is_socialized_over_open_interest() {
    let mut t = setup_with(no_insurance_share).await;
    let deficit = gap_and_liquidate(&mut t).await;
    // Open interest now: carol long 600, alice short 600.
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    assert_eq!(t.h.collateral(&t.bob.margin_account).await, 0);
    let market = t.h.market_state(&t.market.market).await;
    assert_eq!(market.socialized_loss_native, deficit);
    assert_eq!(market.funding_balance_native, -(deficit as i64), "fronted");

    // The documented rule: each open lot, long or short, owes the loss over
    // 1,200 lots, rounded up at the last bit; each position rounds up.
    let per_lot = funding::loss_per_lot(deficit, 2 * LOTS).unwrap();
    assert_eq!(market.long_funding_index(), per_lot);
    assert_eq!(market.short_funding_index(), -per_lot);
    let owed = funding::funding_owed(per_lot, I80F48::ZERO, LOTS as i64).unwrap();
    assert_eq!(
        owed,
        deficit.div_ceil(2) as i64 + i64::from(deficit % 2 == 0),
        "rounded up"
    );
    let (alice_before, carol_before) = (
        t.h.collateral(&t.alice.margin_account).await,
        t.h.collateral(&t.carol.margin_account).await,
    );
    // Health counts the charge before it settles.
    let preview = t.h.health_preview(&t.alice.margin_account).await;
    for user in [t.alice.margin_account, t.carol.margin_account] {
        t.h.settle_funding(&t.market, &user).await;
    }
    assert_eq!(
        t.h.collateral(&t.alice.margin_account).await,
        alice_before - owed
    );
    assert_eq!(
        t.h.collateral(&t.carol.margin_account).await,
        carol_before - owed
    );
    let settled = t.h.health_preview(&t.alice.margin_account).await;
    assert!((preview.initial - settled.initial).abs() <= 1);
    let market = t.h.market_state(&t.market.market).await;
    let dust = market.funding_balance_native;
    assert_eq!(dust, 2 * owed - deficit as i64);
    assert!(
        (0..=2).contains(&dust),
        "the rounding the exchange keeps: {dust}"
    );
}

#[tokio::test]
async fn funding_paid_by_longs_equals_funding_received_by_shorts() {
    let mut t = setup().await;
    // Carol quotes around 152: the mark trades over the 150 oracle.
    t.h.place(&t.carol, &t.market, order(BID, OrderType::Limit, 15_100, 1))
        .await;
    t.h.place(&t.carol, &t.market, order(ASK, OrderType::Limit, 15_300, 1))
        .await;
    t.h.update_funding(&t.market).await;
    let again = ix::update_funding(&t.market);
    t.h.refused(
        "funding twice in a second",
        &[again],
        &[],
        code(KestrelError::FundingUpToDate),
    )
    .await;

    t.h.advance_clock(1_800).await;
    t.h.set_oracle_price(&t.market, 150).await;
    // A fill waiting in the queue blocks funding until it is cranked.
    t.h.place(
        &t.alice,
        &t.market,
        order(ASK, OrderType::ImmediateOrCancel, 15_100, 1),
    )
    .await;
    let blocked = ix::update_funding(&t.market);
    t.h.refused(
        "funding with fills pending",
        &[blocked],
        &[],
        code(KestrelError::CrankRequired),
    )
    .await;
    t.h.crank(&t.market, 8).await;
    t.h.place(&t.carol, &t.market, order(BID, OrderType::Limit, 15_100, 1))
        .await;
    t.h.update_funding(&t.market).await;

    // Premium 2% of the price, capped at 0.5% per hour: half an hour of
    // 7,500 native per lot is 3,750 per lot (a hair under: 150 is not exact
    // in binary), on both sides.
    let market = t.h.market_state(&t.market.market).await;
    let index = market.long_funding_index();
    assert!(
        (index - I80F48::from_num(3_750)).abs() < I80F48::from_num(0.000_001),
        "{index}"
    );
    assert_eq!(market.short_funding_index(), index);

    let bob_before = t.h.collateral(&t.bob.margin_account).await;
    let alice_before = t.h.collateral(&t.alice.margin_account).await;
    let bob_preview = t.h.health_preview(&t.bob.margin_account).await;
    t.h.settle_funding(&t.market, &t.bob.margin_account).await;
    t.h.settle_funding(&t.market, &t.alice.margin_account).await;
    let paid = bob_before - t.h.collateral(&t.bob.margin_account).await;
    let received = t.h.collateral(&t.alice.margin_account).await - alice_before;
    // Each rounds against itself: longs up, shorts down.
    assert_eq!(paid, 3_750 * LOTS as i64);
    assert_eq!(received, 3_750 * (LOTS as i64 + 1) - 1);
    // Carol is long the lot alice sold: she pays the rest.
    let carol_before = t.h.collateral(&t.carol.margin_account).await;
    t.h.settle_funding(&t.market, &t.carol.margin_account).await;
    let carol_paid = carol_before - t.h.collateral(&t.carol.margin_account).await;
    assert_eq!(carol_paid, 3_750);
    let balance =
        t.h.market_state(&t.market.market)
            .await
            .funding_balance_native;
    assert_eq!(paid + carol_paid - received, balance, "to the unit");
    assert_eq!(balance, 1, "the rounding the exchange keeps");
    let after = t.h.health_preview(&t.bob.margin_account).await;
    assert!(
        (after.initial - bob_preview.initial).abs() < 1,
        "health counted the funding before it settled"
    );

    // Seven seconds: 14.58 per lot. Longs round up, shorts down; the
    // exchange keeps the difference.
    t.h.advance_clock(7).await;
    t.h.set_oracle_price(&t.market, 150).await;
    t.h.update_funding(&t.market).await;
    let mut flows = Vec::new();
    for user in [&t.bob, &t.carol, &t.alice] {
        let before = t.h.collateral(&user.margin_account).await;
        t.h.settle_funding(&t.market, &user.margin_account).await;
        flows.push(before - t.h.collateral(&user.margin_account).await);
    }
    assert_eq!(flows, vec![8_750, 15, -8_764]);
    let balance =
        t.h.market_state(&t.market.market)
            .await
            .funding_balance_native;
    assert_eq!(balance, 1 + flows.iter().sum::<i64>());
    assert!(balance > 0, "rounding favours the exchange");
    let settle = ix::settle_funding(&t.market.market, &t.h.user(0).await.margin_account);
    t.h.refused(
        "settle without a position",
        &[settle],
        &[],
        code(KestrelError::NoPosition),
    )
    .await;
}

#[tokio::test]
async fn staking_prices_shares_at_the_fund_and_refuses_empty_amounts() {
    let mut h = Harness::new().await;
    let erin = h.user(1_000 * ONE_TOKEN).await;
    let zero = ix::stake(&erin.pubkey(), &erin.margin_account, &erin.token_account, 0);
    h.refused(
        "stake nothing",
        &[zero],
        &[&erin.key],
        code(KestrelError::ZeroAmount),
    )
    .await;
    h.stake(&erin, 100 * ONE_TOKEN).await;
    // The fund gains 50 (as from liquidation fees): shares now cost 1.5.
    let vault = h.insurance_vault;
    let mint_authority = h.mint_authority.insecure_clone();
    let mint = h.mint;
    h.chain
        .mint_to(&mint, &mint_authority, &vault, 50 * ONE_TOKEN)
        .await;
    let frank = h.user(300 * ONE_TOKEN).await;
    h.stake(&frank, 300 * ONE_TOKEN).await;
    let fund = Fund {
        shares: 100 * ONE_TOKEN * VIRTUAL_SHARES,
        assets: 150 * ONE_TOKEN,
    };
    let bought = fund.shares_for(300 * ONE_TOKEN).unwrap();
    assert_eq!(
        bought / 1_000_000,
        200 * ONE_TOKEN * VIRTUAL_SHARES / 1_000_000
    );
    assert_eq!(
        h.margin_account(&frank.margin_account)
            .await
            .insurance_shares,
        bought
    );
    // A stake worth no share (against a balance nobody owns) is refused
    // with ZeroShares: see insurance.rs, m2_first_staker_....
    // Nobody else can stake into, or unstake from, erin's account.
    let stolen = ix::request_unstake(&frank.pubkey(), &erin.margin_account, 1);
    h.refused(
        "request another's unstake",
        &[stolen],
        &[&frank.key],
        code(KestrelError::NotMarginAccountOwner),
    )
    .await;
    let closing = ix::close_margin_account(&erin.pubkey(), &erin.margin_account);
    h.refused(
        "close while staked",
        &[closing],
        &[&erin.key],
        code(KestrelError::MarginAccountNotEmpty),
    )
    .await;
}

#[tokio::test]
async fn a_loss_that_empties_the_fund_retires_its_shares_and_socializes_the_rest() {
    let mut t = setup().await;
    let dave = t.h.user(10 * ONE_TOKEN).await;
    t.h.stake(&dave, 10 * ONE_TOKEN).await;
    let deficit = gap_and_liquidate(&mut t).await;
    let fund = 10 * ONE_TOKEN + 7_200_000;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    let vault = t.h.insurance_vault;
    assert_eq!(t.h.token_balance(&vault).await, 0);
    let market = t.h.market_state(&t.market.market).await;
    assert_eq!(market.socialized_loss_native, deficit - fund);
    let exchange = t.h.exchange_state().await;
    assert_eq!(
        (exchange.insurance_epoch, exchange.insurance_shares),
        (1, 0)
    );
    // Dave's shares were the fund's; they are worth nothing now.
    let request = ix::request_unstake(&dave.pubkey(), &dave.margin_account, 1);
    t.h.refused(
        "unstake retired shares",
        &[request],
        &[&dave.key],
        code(KestrelError::InsufficientShares),
    )
    .await;
    // A new staker starts the new epoch at the initial price.
    let erin = t.h.user(5 * ONE_TOKEN).await;
    t.h.stake(&erin, 5 * ONE_TOKEN).await;
    assert_eq!(
        t.h.exchange_state().await.insurance_shares,
        5 * ONE_TOKEN * VIRTUAL_SHARES
    );
}
