//! The insurance fund's audit findings, one regression test (or more) each:
//!
//! - M-1: a matured unstake request lapses after the redemption window, and
//!   requested shares stop earning (they still bear losses).
//! - M-2: the first staker of an epoch does not take the fund's unowned
//!   balance, and the donation (inflation) attack does not profit.
//! - L-2: a fund left with a few native units against many shares can be
//!   recapitalised at a fair price.
//! - L-3: a bankrupt account's own shares cover its deficit first.
//! - L-4: an owner cannot steer socialization with a last-minute tiny trade.
//!
//! Market 0 as in risk.rs: bob is long 600 lots (900 USDC) on 100 USDC, the
//! price gaps from 150 to 120 and carol liquidates him at 117, leaving a
//! deficit of about 98.45 USDC. Every transaction is followed by the
//! harness's invariant checks, the insurance audit among them.
use anchor_spl::token::spl_token;
use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{INSURANCE_REDEMPTION_WINDOW_SECONDS, INSURANCE_UNSTAKE_COOLDOWN_SECONDS};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::Pubkey;
use kestrel_tests::*;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
const PRICE: u64 = 15_000;
const LOTS: u64 = 600;
/// The insurance share of carol's liquidation fee: 1% of 600 lots at 1.2 USDC.
const LIQUIDATION_FEE_TO_FUND: u64 = 7_200_000;
const COOLDOWN: i64 = INSURANCE_UNSTAKE_COOLDOWN_SECONDS;
const WINDOW: i64 = INSURANCE_REDEMPTION_WINDOW_SECONDS;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

struct Risk {
    h: Harness,
    market: MarketAccounts,
    alice: User,
    bob: User,
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

fn no_insurance_share(switchboard: &Pubkey) -> MarketSetup {
    let mut setup = market_params(switchboard);
    setup.liquidation_insurance_share_bps = 0;
    setup
}

/// Gaps market 0 to 120 and liquidates bob entirely; returns his deficit.
async fn gap_and_liquidate(t: &mut Risk) -> u64 {
    t.h.set_oracle_price(&t.market, 120).await;
    let liquidate =
        t.h.liquidate_ix(&t.carol, &t.bob.margin_account, &t.market, u64::MAX)
            .await;
    t.h.ok("liquidate", &[liquidate], &[&t.carol.key]).await;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(bob.position(0).is_none(), "fully closed");
    assert!(bob.collateral < 0);
    bob.collateral.unsigned_abs()
}

async fn shares(h: &mut Harness, user: &User) -> u64 {
    h.margin_account(&user.margin_account)
        .await
        .insurance_shares
}

async fn request(h: &mut Harness, user: &User, shares: u64) {
    let request = ix::request_unstake(&user.pubkey(), &user.margin_account, shares);
    h.ok("request_unstake", &[request], &[&user.key]).await;
}

async fn unstake(h: &mut Harness, user: &User) {
    let unstake = ix::unstake(&user.pubkey(), &user.margin_account);
    h.ok("unstake", &[unstake], &[&user.key]).await;
}

/// Requests all of `user`'s shares, waits out the cooldown and redeems them;
/// returns what the redemption credited.
async fn leave(h: &mut Harness, user: &User) -> u64 {
    let all = shares(h, user).await;
    request(h, user, all).await;
    h.advance_clock(COOLDOWN).await;
    let before = h.collateral(&user.margin_account).await;
    unstake(h, user).await;
    (h.collateral(&user.margin_account).await - before) as u64
}

/// Tokens sent straight into the insurance vault (a donation), by `user`.
async fn donate(h: &mut Harness, user: &User, amount: u64) {
    let vault = h.insurance_vault;
    let transfer = spl_token::instruction::transfer(
        &spl_token::ID,
        &user.token_account,
        &vault,
        &user.pubkey(),
        &[],
        amount,
    )
    .unwrap();
    h.ok("donate to the insurance vault", &[transfer], &[&user.key])
        .await;
}

/// Liquidation fees (or any gain) arriving in the fund.
async fn fund_gains(h: &mut Harness, amount: u64) {
    let (vault, mint) = (h.insurance_vault, h.mint);
    let authority = h.mint_authority.insecure_clone();
    h.chain.mint_to(&mint, &authority, &vault, amount).await;
}

// ---------------------------------------------------------------- M-1

#[tokio::test]
async fn m1_matured_unstake_request_expires() {
    let mut h = Harness::new().await;
    let erin = h.user(100 * ONE_TOKEN).await;
    h.stake(&erin, 100 * ONE_TOKEN).await;
    let all = shares(&mut h, &erin).await;
    // Requested at once after staking, left to mature, kept "just in case".
    request(&mut h, &erin, all).await;
    h.advance_clock(COOLDOWN + WINDOW - 1).await;
    // One second before the window closes the request still works (proved
    // below by the retry); at its end it has lapsed.
    h.advance_clock(1).await;
    let late = ix::unstake(&erin.pubkey(), &erin.margin_account);
    h.refused(
        "unstake after the redemption window",
        &[late],
        &[&erin.key],
        code(KestrelError::UnstakeRequestExpired),
    )
    .await;
    // A new request restarts the cooldown.
    request(&mut h, &erin, all).await;
    let early = ix::unstake(&erin.pubkey(), &erin.margin_account);
    h.refused(
        "unstake right after the new request",
        &[early],
        &[&erin.key],
        code(KestrelError::UnstakeCooldown),
    )
    .await;
    h.advance_clock(COOLDOWN + WINDOW - 1).await;
    unstake(&mut h, &erin).await;
    assert_eq!(
        h.collateral(&erin.margin_account).await,
        100 * ONE_TOKEN as i64
    );
    assert_eq!(shares(&mut h, &erin).await, 0);
    let again = ix::unstake(&erin.pubkey(), &erin.margin_account);
    h.refused(
        "unstake twice",
        &[again],
        &[&erin.key],
        code(KestrelError::NoUnstakeRequest),
    )
    .await;
}

#[tokio::test]
async fn m1_requested_shares_stop_earning() {
    let mut h = Harness::new().await;
    let erin = h.user(100 * ONE_TOKEN).await;
    let frank = h.user(100 * ONE_TOKEN).await;
    h.stake(&erin, 100 * ONE_TOKEN).await;
    h.stake(&frank, 100 * ONE_TOKEN).await;
    let all = shares(&mut h, &erin).await;
    request(&mut h, &erin, all).await;
    // 50 USDC of liquidation fees arrive during erin's cooldown: they are
    // frank's, whose shares kept earning.
    fund_gains(&mut h, 50 * ONE_TOKEN).await;
    h.advance_clock(COOLDOWN).await;
    unstake(&mut h, &erin).await;
    assert_eq!(
        h.collateral(&erin.margin_account).await,
        100 * ONE_TOKEN as i64,
        "the value at request, not a share of the later gain"
    );
    let frank_out = leave(&mut h, &frank).await;
    assert!(
        (150 * ONE_TOKEN - 1..=150 * ONE_TOKEN).contains(&frank_out),
        "frank keeps what erin's shares would have earned: {frank_out}"
    );
}

#[tokio::test]
async fn m1_a_lapsed_request_does_not_give_back_what_its_shares_would_have_earned() {
    let mut h = Harness::new().await;
    let erin = h.user(100 * ONE_TOKEN).await;
    let frank = h.user(100 * ONE_TOKEN).await;
    h.stake(&erin, 100 * ONE_TOKEN).await;
    h.stake(&frank, 100 * ONE_TOKEN).await;
    let all = shares(&mut h, &erin).await;
    // Erin holds a standing request as an exit option and lets it lapse
    // when no loss came; the gain meanwhile must not become hers.
    request(&mut h, &erin, all).await;
    fund_gains(&mut h, 50 * ONE_TOKEN).await;
    h.advance_clock(COOLDOWN + WINDOW).await;
    request(&mut h, &erin, all).await;
    let kept = shares(&mut h, &erin).await;
    assert!(
        kept < all,
        "the forfeited earnings' shares are gone: {kept}"
    );
    h.advance_clock(COOLDOWN).await;
    unstake(&mut h, &erin).await;
    let erin_out = h.collateral(&erin.margin_account).await as u64;
    assert!(
        (100 * ONE_TOKEN - 1..=100 * ONE_TOKEN).contains(&erin_out),
        "{erin_out}"
    );
    let frank_out = leave(&mut h, &frank).await;
    assert!(
        (150 * ONE_TOKEN - 2..=150 * ONE_TOKEN).contains(&frank_out),
        "{frank_out}"
    );
}

/// Passes before the fix too: requested shares always bore losses. Kept as
/// the other half of "min(value at request, value at redemption)".
#[tokio::test]
async fn m1_requested_shares_still_bear_losses() {
    let mut t = setup().await;
    let dave = t.h.user(500 * ONE_TOKEN).await;
    let erin = t.h.user(500 * ONE_TOKEN).await;
    t.h.stake(&dave, 500 * ONE_TOKEN).await;
    t.h.stake(&erin, 500 * ONE_TOKEN).await;
    let all = shares(&mut t.h, &dave).await;
    request(&mut t.h, &dave, all).await;
    let deficit = gap_and_liquidate(&mut t).await;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    let fund = 1_000 * ONE_TOKEN + LIQUIDATION_FEE_TO_FUND - deficit;
    let vault = t.h.insurance_vault;
    assert_eq!(t.h.token_balance(&vault).await, fund);
    t.h.advance_clock(COOLDOWN).await;
    unstake(&mut t.h, &dave).await;
    let dave_out = t.h.collateral(&dave.margin_account).await as u64;
    assert!(dave_out < 500 * ONE_TOKEN);
    assert!(
        (fund / 2 - 1..=fund / 2).contains(&dave_out),
        "half the fund after the loss: {dave_out} of {fund}"
    );
}

// ---------------------------------------------------------------- M-2

#[tokio::test]
async fn m2_first_staker_does_not_take_the_unowned_balance() {
    let mut h = Harness::new().await;
    // 100 USDC of liquidation fees reached the fund while nobody was staked.
    fund_gains(&mut h, 100 * ONE_TOKEN).await;
    let mallory = h.user(ONE_TOKEN).await;
    h.stake(&mallory, ONE_TOKEN).await;
    let out = leave(&mut h, &mallory).await;
    assert!(out <= ONE_TOKEN, "the first staker took {out} for 1 USDC");
    let vault = h.insurance_vault;
    assert!(h.token_balance(&vault).await >= 100 * ONE_TOKEN);
    // One native unit buys nothing of a fund holding an unowned balance.
    let dust = h.user(1).await;
    let one = ix::stake(&dust.pubkey(), &dust.margin_account, &dust.token_account, 1);
    h.refused(
        "a stake of one unit",
        &[one],
        &[&dust.key],
        code(KestrelError::ZeroShares),
    )
    .await;
}

#[tokio::test]
async fn m2_donation_inflation_attack_does_not_profit() {
    let mut h = Harness::new().await;
    let victim_stake = 100 * ONE_TOKEN;
    let donation = victim_stake / 2;
    let mallory = h.user(1 + donation).await;
    let victim = h.user(victim_stake).await;
    // The classic attack: one unit into the empty fund, a donation to inflate
    // the share price, the victim's stake rounds down, the attacker leaves
    // with part of it.
    h.stake(&mallory, 1).await;
    donate(&mut h, &mallory, donation).await;
    h.stake(&victim, victim_stake).await;
    let mallory_shares = shares(&mut h, &mallory).await;
    let victim_shares = shares(&mut h, &victim).await;
    request(&mut h, &mallory, mallory_shares).await;
    request(&mut h, &victim, victim_shares).await;
    h.advance_clock(COOLDOWN).await;
    unstake(&mut h, &mallory).await;
    unstake(&mut h, &victim).await;
    let mallory_out = h.collateral(&mallory.margin_account).await as u64;
    let victim_out = h.collateral(&victim.margin_account).await as u64;
    assert!(
        mallory_out <= 1 + donation,
        "the attack profited: paid {}, got {mallory_out}",
        1 + donation
    );
    assert!(
        victim_out >= victim_stake - victim_stake / 1_000,
        "the victim lost more than 0.1%: {victim_out}"
    );
}

// ---------------------------------------------------------------- L-2

#[tokio::test]
async fn l2_an_almost_emptied_fund_can_be_recapitalised_at_a_fair_price() {
    let mut t = setup().await;
    let deficit = gap_and_liquidate(&mut t).await;
    // Dave stakes just enough that the bankruptcy leaves 3 native units.
    let dave_stake = deficit - LIQUIDATION_FEE_TO_FUND + 3;
    let dave = t.h.user(dave_stake).await;
    t.h.stake(&dave, dave_stake).await;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    let vault = t.h.insurance_vault;
    assert_eq!(t.h.token_balance(&vault).await, 3);
    // A whale recapitalises the fund with 1M USDC.
    let whale_stake = 1_000_000 * ONE_TOKEN;
    let erin = t.h.user(whale_stake).await;
    t.h.stake(&erin, whale_stake).await;
    let erin_out = leave(&mut t.h, &erin).await;
    assert!(
        (whale_stake - 1..=whale_stake).contains(&erin_out),
        "fairly priced: {erin_out} for {whale_stake}"
    );
    // A small stake is fairly priced too.
    let frank = t.h.user(100 * ONE_TOKEN).await;
    t.h.stake(&frank, 100 * ONE_TOKEN).await;
    let frank_out = leave(&mut t.h, &frank).await;
    assert!(
        (100 * ONE_TOKEN - 1..=100 * ONE_TOKEN).contains(&frank_out),
        "{frank_out}"
    );
}

// ---------------------------------------------------------------- L-3

async fn mint_to_wallet(h: &mut Harness, user: &User, amount: u64) {
    let mint = h.mint;
    let authority = h.mint_authority.insecure_clone();
    h.chain
        .mint_to(&mint, &authority, &user.token_account, amount)
        .await;
}

#[tokio::test]
async fn l3_bankrupt_accounts_own_shares_cover_its_deficit_first() {
    let mut t = setup().await;
    mint_to_wallet(&mut t.h, &t.bob, 50 * ONE_TOKEN).await;
    t.h.stake(&t.bob, 50 * ONE_TOKEN).await;
    let dave = t.h.user(500 * ONE_TOKEN).await;
    t.h.stake(&dave, 500 * ONE_TOKEN).await;
    let deficit = gap_and_liquidate(&mut t).await;
    let fund = 550 * ONE_TOKEN + LIQUIDATION_FEE_TO_FUND;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    assert_eq!(t.h.collateral(&t.bob.margin_account).await, 0);
    assert_eq!(shares(&mut t.h, &t.bob).await, 0, "bob's stake went first");
    let vault = t.h.insurance_vault;
    let left = fund - deficit;
    assert_eq!(t.h.token_balance(&vault).await, left);
    // Dave, the only staker left, owns what remains (less rounding): he
    // covered only the part of the deficit bob's 50.65 USDC stake could not.
    let dave_out = leave(&mut t.h, &dave).await;
    assert!(
        (left - 1..=left).contains(&dave_out),
        "{dave_out} of {left}"
    );
}

#[tokio::test]
async fn l3_own_shares_beyond_the_deficit_stay_staked() {
    let mut t = setup().await;
    mint_to_wallet(&mut t.h, &t.bob, 500 * ONE_TOKEN).await;
    t.h.stake(&t.bob, 500 * ONE_TOKEN).await;
    let dave = t.h.user(500 * ONE_TOKEN).await;
    t.h.stake(&dave, 500 * ONE_TOKEN).await;
    let bob_shares = shares(&mut t.h, &t.bob).await;
    let deficit = gap_and_liquidate(&mut t).await;
    let fund = 1_000 * ONE_TOKEN + LIQUIDATION_FEE_TO_FUND;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    // Exactly the deficit left the fund, all of it bob's: no instant exit
    // into collateral, the rest of his stake still waits for a cooldown.
    assert_eq!(t.h.collateral(&t.bob.margin_account).await, 0);
    let vault = t.h.insurance_vault;
    assert_eq!(t.h.token_balance(&vault).await, fund - deficit);
    let bob_left = shares(&mut t.h, &t.bob).await;
    assert!(bob_left > 0 && bob_left < bob_shares);
    let half = fund / 2;
    let dave_out = leave(&mut t.h, &dave).await;
    assert!(
        (half - 1..=half).contains(&dave_out),
        "dave bore none of bob's deficit: {dave_out}"
    );
    let bob_out = leave(&mut t.h, &t.bob).await;
    assert!(
        (half - deficit - 2..=half - deficit).contains(&bob_out),
        "{bob_out}"
    );
}

// ---------------------------------------------------------------- L-4

#[tokio::test]
async fn l4_a_last_minute_tiny_trade_cannot_steer_socialization() {
    let mut t = setup_with(no_insurance_share).await;
    let other = t.h.create_market(1, no_insurance_share).await;
    // Bob holds one lot in market 1 besides his 600 in market 0.
    t.h.place(&t.alice, &other, order(ASK, OrderType::Limit, PRICE, 1))
        .await;
    t.h.place(
        &t.bob,
        &other,
        order(BID, OrderType::ImmediateOrCancel, PRICE, 1),
    )
    .await;
    t.h.crank(&other, 8).await;
    let deficit_after_market_0 = gap_and_liquidate(&mut t).await;
    // The loss arose in market 0. Bob then closes his lot in market 1 last,
    // so market 1 (one lot of open interest a side) would carry the deficit.
    t.h.place(&t.carol, &other, order(BID, OrderType::Limit, PRICE, 1))
        .await;
    let mut close = order(ASK, OrderType::ImmediateOrCancel, PRICE, 1);
    close.reduce_only = true;
    t.h.place(&t.bob, &other, close).await;
    t.h.crank(&other, 8).await;
    let bob = t.h.margin_account(&t.bob.margin_account).await;
    assert!(
        bob.slots_in_use() == 0 && bob.position_slots == 0,
        "bankrupt"
    );
    let deficit = bob.collateral.unsigned_abs();
    assert!(deficit >= deficit_after_market_0);

    let steered = ix::settle_bankruptcy(&t.bob.margin_account, &other);
    t.h.refused(
        "socialize over the market of the last trade",
        &[steered],
        &[],
        code(KestrelError::WrongBankruptcyMarket),
    )
    .await;
    let settle = ix::settle_bankruptcy(&t.bob.margin_account, &t.market);
    t.h.ok("settle_bankruptcy", &[settle], &[]).await;
    assert_eq!(
        t.h.market_state(&t.market.market)
            .await
            .socialized_loss_native,
        deficit,
        "socialized over the market where the loss arose"
    );
    assert_eq!(
        t.h.market_state(&other.market).await.socialized_loss_native,
        0
    );
}
