//! The October 2022 attack on Mango Markets, replayed against Kestrel.
//!
//! The attacker funds two accounts, takes both sides of a large position
//! in a thin market, and pushes the oracle up five-fold over twenty
//! minutes (each step a price the feeds really publish: Kestrel accepts
//! it). On Mango the long side's unrealized gain then counted as collateral
//! and was borrowed against until the treasury was empty. Here:
//!
//! - the short side is liquidated step by step, while still solvent, by a
//!   liquidator (a keeper) who takes its position at the oracle price;
//! - the long side's initial health values its position at the stable
//!   price (which the pump moves about a fifth), counts half of that gain
//!   and margins the position at the pumped price: at no point can it
//!   withdraw its collateral, open a position elsewhere, or sell its
//!   position to a third account of its own at the pumped price (tried
//!   every five minutes from ten minutes in);
//! - when the price falls back, the attacker has lost what the liquidation
//!   took, the liquidator has earned it, no account ends in deficit and
//!   the insurance fund has only grown.
//!
//! That pump moves 2 % a print, which the liquidator can follow. A single
//! print past the short side's buffer cannot be followed: the short is
//! bankrupt the moment the markets see it, and the long side, as the
//! liquidator of its own short, realizes the pumped gain and withdraws it
//! while the fund pays the short's deficit. Nothing in the accounting can
//! tell that gain from an honest one; an underlying's price limit
//! (`engine::price_limit`) bounds how fast the markets take the print up.
//! The last two tests replay a print held for two minutes without a limit
//! (what the attacker takes, and from whom) and with one of 20 bp a second
//! (nothing beyond its own collateral, the keeper whole). A print held for
//! twenty minutes is the pump above: the limit then bounds the speed, not
//! the distance, and the liquidator's capital decides (a keeper too small
//! for the position it took over goes bankrupt as the price runs on).
//!
//! Market 0 as in trading.rs: a lot is 0.01 SOL, 150 USDC per SOL is
//! 15,000 ticks (1.5 USDC a lot); margins 10% initial, 5% maintenance.
//! Every transaction is followed by the harness's invariant checks.
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_sdk::ix::MarketAccounts;
use kestrel_tests::*;
use solana_sdk::signer::Signer;

const BID: OrderSide = OrderSide::Bid;
const ASK: OrderSide = OrderSide::Ask;
/// 60 SOL: 9,000 USDC at 150, on 1,000 USDC a side.
const LOTS: u64 = 6_000;
const DEPOSIT: u64 = 1_000 * ONE_TOKEN;
/// The pump: 150 to 750 USDC per SOL in 80 steps fifteen seconds apart.
const START_PRICE: f64 = 150.0;
const STEPS: u32 = 80;
const STEP_SECONDS: i64 = 15;

fn code(error: KestrelError) -> u32 {
    error_code(error)
}

fn pumped_price(step: u32) -> i64 {
    (START_PRICE * 5f64.powf(f64::from(step) / f64::from(STEPS))).round() as i64
}

/// An account's equity at `price` USDC per SOL: collateral plus each
/// position's value (a lot is 0.01 SOL) and quote, in native units.
async fn equity(h: &mut Harness, user: &User, price: i64) -> i64 {
    let account = h.margin_account(&user.margin_account).await;
    let per_lot = price * 10_000;
    account.collateral
        + account
            .active_positions()
            .map(|(_, p)| p.base_lots * per_lot + p.quote_native)
            .sum::<i64>()
}

/// What health would be if the account's position counted at the oracle
/// price with its whole gain (Mango's rule in 2022): collateral + PnL −
/// 10% of the position's value.
async fn naive_initial_health(h: &mut Harness, user: &User, price: i64) -> i64 {
    let account = h.margin_account(&user.margin_account).await;
    let per_lot = price * 10_000;
    let margin: i64 = account
        .active_positions()
        .map(|(_, p)| p.base_lots.abs() * per_lot / 10)
        .sum();
    equity(h, user, price).await - margin
}

struct Replay {
    h: Harness,
    market: MarketAccounts,
    /// A second market, where the attacker tries to open new risk.
    other: MarketAccounts,
    long: User,
    short: User,
    /// A third attacker account, which tries to buy the long's position at
    /// the pumped price.
    buyer: User,
    liquidator: User,
}

async fn setup() -> Replay {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let other = h.create_market(1, market_params).await;
    let long = h.user(DEPOSIT).await;
    let short = h.user(DEPOSIT).await;
    let buyer = h.user(DEPOSIT).await;
    let liquidator = h.user(100_000 * ONE_TOKEN).await;
    for user in [&long, &short, &buyer] {
        h.deposit(user, DEPOSIT).await;
    }
    h.deposit(&liquidator, 100_000 * ONE_TOKEN).await;
    // Both sides of 60 SOL between the attacker's two accounts.
    h.place(&short, &market, order(ASK, OrderType::Limit, 15_000, LOTS))
        .await;
    h.place(
        &long,
        &market,
        order(BID, OrderType::ImmediateOrCancel, 15_000, LOTS),
    )
    .await;
    h.crank(&market, 8).await;
    // Liquidity in the other market, for the attacker to take.
    h.place(
        &liquidator,
        &other,
        order(ASK, OrderType::Limit, 15_100, 1_000),
    )
    .await;
    Replay {
        h,
        market,
        other,
        long,
        short,
        buyer,
        liquidator,
    }
}

impl Replay {
    /// What a keeper does after each price: liquidates the short side
    /// while it is below maintenance.
    async fn keeper(&mut self) -> u32 {
        let mut liquidations = 0;
        loop {
            let health = self.h.health_preview(&self.short.margin_account).await;
            let short = self.h.margin_account(&self.short.margin_account).await;
            if health.maintenance >= 0 || short.active_positions().next().is_none() {
                return liquidations;
            }
            let liquidate = self
                .h
                .liquidate_ix(
                    &self.liquidator,
                    &self.short.margin_account,
                    &self.market,
                    u64::MAX,
                )
                .await;
            let key = self.liquidator.key.insecure_clone();
            self.h.ok("liquidate", &[liquidate], &[&key]).await;
            liquidations += 1;
        }
    }

    /// Everything the attacker tries against the pumped price; each must
    /// be refused for want of initial health.
    async fn attack(&mut self, price: i64) {
        let insufficient = code(KestrelError::InsufficientHealth);
        let long_key = self.long.key.insecure_clone();
        // 1. Withdraw the long side's own collateral, or any of it.
        let collateral = self.h.collateral(&self.long.margin_account).await as u64;
        for amount in [collateral, collateral / 100] {
            let withdraw = self.h.withdraw_ix(&self.long, amount).await;
            self.h
                .refused(
                    "withdraw against the gain",
                    &[withdraw],
                    &[&long_key],
                    insufficient,
                )
                .await;
        }
        // 2. Open new risk elsewhere: take one lot of the ask resting
        // there, or rest a bid.
        let open = self
            .h
            .place_ix(
                &self.long,
                &self.other,
                order(BID, OrderType::ImmediateOrCancel, 15_100, 1),
            )
            .await;
        let open_resting = self
            .h
            .place_ix(
                &self.long,
                &self.other,
                order(BID, OrderType::Limit, 14_900, 100),
            )
            .await;
        for ix in [open, open_resting] {
            self.h
                .refused(
                    "open new risk against the gain",
                    &[ix],
                    &[&long_key],
                    insufficient,
                )
                .await;
        }
        // 3. Realize the gain by selling to a third account of the
        // attacker's at the pumped price: its bid is refused (its long
        // would count at the stable price, far below what it pays).
        let ticks = u64::try_from(price * 100).unwrap();
        let buy = self
            .h
            .place_ix(
                &self.buyer,
                &self.market,
                order(BID, OrderType::Limit, ticks, LOTS),
            )
            .await;
        let buyer_key = self.buyer.key.insecure_clone();
        self.h
            .refused(
                "buy the pumped position",
                &[buy],
                &[&buyer_key],
                insufficient,
            )
            .await;
    }
}

#[tokio::test]
async fn the_mango_attack_extracts_nothing() {
    let mut t = setup().await;
    let fund_at_start = t.h.token_balance(&t.h.insurance_vault.clone()).await;
    let deposits = 3 * DEPOSIT as i64;
    let attacker_at_start = {
        let mut total = 0;
        for user in [&t.long, &t.short, &t.buyer] {
            total += equity(&mut t.h, user, 150).await;
        }
        total
    };
    let mut liquidations = 0;
    let mut fund = fund_at_start;
    for step in 1..=STEPS {
        t.h.advance_clock(STEP_SECONDS).await;
        let price = pumped_price(step);
        t.h.set_oracle_price(&t.market, price).await;
        // The other market's feed keeps publishing.
        t.h.set_oracle_price(&t.other, 150).await;
        liquidations += t.keeper().await;
        // The short side is taken over while still solvent.
        let short = equity(&mut t.h, &t.short, price).await;
        assert!(short >= 0, "step {step}: the short side's equity {short}");
        // From ten minutes in (335 USDC), every five minutes.
        if step % 20 == 0 && step >= 40 {
            t.attack(price).await;
        }
        // The fund only takes fees.
        let now = t.h.token_balance(&t.h.insurance_vault.clone()).await;
        assert!(
            now >= fund,
            "step {step}: the fund fell from {fund} to {now}"
        );
        fund = now;
    }
    let peak = pumped_price(STEPS);
    assert_eq!(peak, 750);
    let underlying = t.h.underlying_state(&t.market.underlying.underlying).await;
    let stable: f64 = underlying.stable_price().price().unwrap().to_num::<f64>() * 1_000.0;
    let health = t.h.health_preview(&t.long.margin_account).await;
    let naive = naive_initial_health(&mut t.h, &t.long, peak).await;
    println!(
        "[mango] peak {peak} USDC/SOL, stable price {stable:.2}; the long's initial health {:.0} USDC \
         (counted at the oracle with its whole gain: {} USDC); {liquidations} liquidations of the short",
        health.initial.to_num::<f64>() / 1e6,
        naive / 1_000_000,
    );
    assert!((160.0..200.0).contains(&stable), "{stable}");
    assert!(health.initial < 0);
    assert!(
        naive > 30_000 * ONE_TOKEN as i64,
        "the gain Mango lent against"
    );
    assert!(liquidations > 0);
    let short = t.h.margin_account(&t.short.margin_account).await;
    let left = short.position(0).map_or(0, |p| p.base_lots.unsigned_abs());
    assert!(
        left < LOTS / 20,
        "the short side was taken over: {left} lots left"
    );

    // The attacker stops: the price falls back.
    t.h.advance_clock(STEP_SECONDS).await;
    t.h.set_oracle_price(&t.market, 150).await;
    t.h.set_oracle_price(&t.other, 150).await;
    let mut attacker = 0;
    for user in [&t.long, &t.short, &t.buyer] {
        let account = t.h.margin_account(&user.margin_account).await;
        assert!(account.collateral >= 0);
        attacker += equity(&mut t.h, user, 150).await;
    }
    let liquidator = equity(&mut t.h, &t.liquidator, 150).await;
    let fund_at_end = t.h.token_balance(&t.h.insurance_vault.clone()).await;
    println!(
        "[mango] the attacker deposited {} USDC and holds {:.2} (a loss of {:.2}); the liquidator \
         earned {:.2}; the insurance fund took {:.2} in fees",
        deposits / 1_000_000,
        attacker as f64 / 1e6,
        (attacker_at_start - attacker) as f64 / 1e6,
        (liquidator - 100_000 * ONE_TOKEN as i64) as f64 / 1e6,
        (fund_at_end - fund_at_start) as f64 / 1e6,
    );
    assert!(
        attacker < attacker_at_start,
        "the attacker extracted nothing"
    );
    assert!(liquidator > 100_000 * ONE_TOKEN as i64);
    assert!(fund_at_end >= fund_at_start);
    // The long's gain at the peak was never usable: with the price back,
    // it holds what it put in less the fee.
    let long = equity(&mut t.h, &t.long, 150).await;
    assert!(long <= DEPOSIT as i64);
}

/// How long the feeds hold the print in the single-print tests: two
/// minutes (eight refreshes), then back to 150 for twenty minutes. A limit
/// bounds how fast a manipulated price is accepted, not how far: held for
/// the whole twenty minutes ([`STEPS`]), 2 % a refresh compounds to the
/// print (the pump above), and a keeper too small for the short it took
/// over is bankrupt at the peak. The price band bounds the distance.
const HOLD_STEPS: u32 = 8;

/// What a single print held for [`HOLD_STEPS`] leaves, the attacker trying
/// at every refresh to liquidate its own short with its long and to
/// withdraw what the long's initial health allows.
struct SinglePrint {
    /// Σ the attacker's equity at 150 after the print is gone, plus what
    /// it withdrew.
    attacker: i64,
    /// The keeper's equity at 150 at the end, less what it deposited.
    keeper_gain: i64,
    withdrawn: i64,
    /// What the insurance fund lost (negative: it earned fees).
    fund_loss: i64,
    /// The deficit left on the attacker's and the keeper's accounts, which
    /// nothing backs.
    deficit: i64,
    /// The accepted price after the first refresh of the print.
    first_step: f64,
    /// The highest accepted price.
    peak: f64,
    /// The keeper's lowest equity at the accepted price (native USDC):
    /// below zero, it is bankrupt, and the attacker's long may liquidate
    /// it and realize the pumped gain.
    keeper_low: f64,
    self_liquidations: u32,
    keeper_liquidations: u32,
}

/// Who liquidates the short side in [`single_print`].
#[derive(Clone, Copy, PartialEq)]
enum Liquidator {
    /// The attacker's long, first at every refresh (then the keeper).
    AttackerFirst,
    /// Only an honest keeper holding 20,000 USDC (about twice the
    /// position's notional at 150).
    SmallKeeper,
}

/// The speed limit and the band (`set_price_limit`).
#[derive(Clone, Copy)]
struct Limit {
    bps_per_second: u32,
    band_bps: u32,
}

async fn single_print(
    limit: Option<Limit>,
    hold_steps: u32,
    liquidator: Liquidator,
) -> SinglePrint {
    let limit_bps_per_second = limit.map(|l| l.bps_per_second);
    let mut t = setup().await;
    let mut keeper_deposit = 100_000 * ONE_TOKEN as i64;
    if liquidator == Liquidator::SmallKeeper {
        let keeper = t.h.user(20_000 * ONE_TOKEN).await;
        t.h.deposit(&keeper, 20_000 * ONE_TOKEN).await;
        t.liquidator = keeper;
        keeper_deposit = 20_000 * ONE_TOKEN as i64;
    }
    // A fund of 10,000 USDC, staked by a fourth (honest) user.
    let staker = t.h.user(10_000 * ONE_TOKEN).await;
    t.h.stake(&staker, 10_000 * ONE_TOKEN).await;
    if let Some(limit) = limit {
        let admin = t.h.admin.insecure_clone();
        let set = kestrel_sdk::ix::set_price_limit(
            &admin.pubkey(),
            &t.market.underlying.underlying,
            limit.bps_per_second,
            limit.band_bps,
        );
        t.h.ok("set_price_limit", &[set], &[&admin]).await;
    }
    let vault = t.h.insurance_vault;
    let fund_at_start = t.h.token_balance(&vault).await as i64;
    let long_key = t.long.key.insecure_clone();
    let mut withdrawn = 0i64;
    let mut first_step = 0.0;
    let mut peak = 0.0f64;
    let mut keeper_low = f64::MAX;
    let mut self_liquidations = 0;
    let mut keeper_liquidations = 0;
    for step in 1..=hold_steps + STEPS {
        t.h.advance_clock(STEP_SECONDS).await;
        let feed = if step <= hold_steps { 750 } else { 150 };
        t.h.set_oracle_price(&t.market, feed).await;
        t.h.set_oracle_price(&t.other, 150).await;
        let underlying = t.h.underlying_state(&t.market.underlying.underlying).await;
        // USDC per SOL (native quote per native base × 1,000).
        let accepted: f64 = underlying
            .last_good_price()
            .map_or(0.0, |p| p.to_num::<f64>() * 1_000.0);
        if step == 1 {
            first_step = accepted;
        }
        peak = peak.max(accepted);
        // The attacker moves first: its long liquidates its short...
        while liquidator == Liquidator::AttackerFirst
            && t.h
                .health_preview(&t.short.margin_account)
                .await
                .maintenance
                < 0
        {
            let liquidate =
                t.h.liquidate_ix(&t.long, &t.short.margin_account, &t.market, u64::MAX)
                    .await;
            if t.h
                .attempt("liquidate the own short", &[liquidate], &[&long_key])
                .await
                .is_err()
            {
                break;
            }
            self_liquidations += 1;
        }
        // ... and withdraws what the long's initial health lets it.
        let room = t.h.health_preview(&t.long.margin_account).await.initial;
        let collateral = t.h.collateral(&t.long.margin_account).await;
        let amount = (room.to_num::<f64>() as i64 - 1).min(collateral);
        if amount > 0 {
            let withdraw = t.h.withdraw_ix(&t.long, amount as u64).await;
            if t.h
                .attempt("withdraw the realized gain", &[withdraw], &[&long_key])
                .await
                .is_ok()
            {
                withdrawn += amount;
            }
        }
        // Then the honest keeper: what is left under maintenance, and a
        // bankrupt account's deficit to the fund.
        keeper_liquidations += t.keeper().await;
        let keeper = t.h.margin_account(&t.liquidator.margin_account).await;
        let value_at = |account: &kestrel::state::MarginAccount| -> f64 {
            account.collateral as f64
                + account
                    .active_positions()
                    .map(|(_, p)| p.base_lots as f64 * accepted * 1e4 + p.quote_native as f64)
                    .sum::<f64>()
        };
        keeper_low = keeper_low.min(value_at(&keeper));
        let short = t.h.margin_account(&t.short.margin_account).await;
        if short.collateral < 0 && short.active_positions().next().is_none() {
            let settle = kestrel_sdk::ix::settle_bankruptcy(&t.short.margin_account, &t.market);
            let _ = t.h.attempt("settle_bankruptcy", &[settle], &[]).await;
        }
        if limit_bps_per_second.is_some() {
            let short = t.h.margin_account(&t.short.margin_account).await;
            let value: f64 = short
                .active_positions()
                .map(|(_, p)| p.base_lots as f64 * accepted * 1e4 + p.quote_native as f64)
                .sum();
            let short = short.collateral as f64 + value;
            assert!(
                short >= 0.0,
                "step {step}: the short side's equity {short} at {accepted:.2}"
            );
        }
    }
    // Every account at the price the markets see at the end, 150.
    let underlying = t.h.underlying_state(&t.market.underlying.underlying).await;
    let end = underlying.last_good_price().unwrap().to_num::<f64>() * 1_000.0;
    assert!(
        (end - 150.0).abs() < 1e-6,
        "the markets see {end} at the end"
    );
    let mut attacker = withdrawn;
    let mut deficit = 0;
    for user in [&t.long, &t.short, &t.buyer, &t.liquidator] {
        let equity = equity(&mut t.h, user, 150).await;
        deficit += (-equity).max(0);
        if user.margin_account != t.liquidator.margin_account {
            attacker += equity.max(0);
        }
    }
    let keeper_gain = equity(&mut t.h, &t.liquidator, 150).await - keeper_deposit;
    let fund_at_end = t.h.token_balance(&vault).await as i64;
    SinglePrint {
        attacker,
        keeper_gain,
        withdrawn,
        fund_loss: fund_at_start - fund_at_end,
        deficit,
        first_step,
        peak,
        keeper_low,
        self_liquidations,
        keeper_liquidations,
    }
}

impl SinglePrint {
    /// Nothing beyond the attacker's own collateral, no loss to the keeper,
    /// the fund or anyone's collateral.
    fn assert_nothing_extracted(&self) {
        assert!(
            self.keeper_gain >= 0,
            "the keeper lost {}",
            self.keeper_gain
        );
        assert!(self.attacker <= 3 * DEPOSIT as i64, "{}", self.attacker);
        assert!(self.fund_loss <= 0, "the fund lost {}", self.fund_loss);
        assert_eq!(self.deficit, 0);
    }

    fn report(&self, limit: &str) {
        println!(
            "[single print] {limit}: the markets see {:.2} after the first refresh; the attacker \
             deposited {} USDC, withdrew {:.2} and holds {:.2} in all after {} liquidations of its \
             own short and {} by the keeper (which gained {:.2}); the fund lost {:.2}, and {:.2} of \
             deficit is left; the markets peaked at {:.2}, the keeper's equity at {:.2}",
            self.first_step,
            3 * DEPOSIT / 1_000_000,
            self.withdrawn as f64 / 1e6,
            self.attacker as f64 / 1e6,
            self.self_liquidations,
            self.keeper_liquidations,
            self.keeper_gain as f64 / 1e6,
            self.fund_loss as f64 / 1e6,
            self.deficit as f64 / 1e6,
            self.peak,
            self.keeper_low / 1e6,
        );
    }
}

#[tokio::test]
async fn without_a_price_limit_a_single_print_pays_the_attacker_from_others() {
    let outcome = single_print(None, HOLD_STEPS, Liquidator::AttackerFirst).await;
    outcome.report("no limit");
    assert_eq!(outcome.first_step, 750.0);
    // The hole the limit closes: the long is paid the short's deficit, out
    // of the fund and then out of other users' collateral.
    let deposits = 3 * DEPOSIT as i64;
    assert!(outcome.attacker > 10 * deposits, "{}", outcome.attacker);
    assert!(outcome.fund_loss > 0);
}

#[tokio::test]
async fn under_a_price_limit_a_single_print_extracts_nothing() {
    // 20 bp a second: 2 % a step, and 15 s for keepers before the next
    // 3 % (the 5 % maintenance buffer) even if the attacker refreshes
    // every second. Whether the attacker liquidates its own short first
    // or a keeper with twice the notional does it alone (it could not
    // while its own check read the feeds' 750).
    for (liquidator, label) in [
        (Liquidator::AttackerFirst, "20 bp/s"),
        (Liquidator::SmallKeeper, "20 bp/s, a small keeper"),
    ] {
        let limit = Limit {
            bps_per_second: 20,
            band_bps: 0,
        };
        let outcome = single_print(Some(limit), HOLD_STEPS, liquidator).await;
        outcome.report(label);
        // Ten seconds' worth of the limit.
        assert!(
            (outcome.first_step - 153.0).abs() < 0.01,
            "{} after the first refresh",
            outcome.first_step
        );
        match liquidator {
            Liquidator::SmallKeeper => assert!(outcome.keeper_liquidations > 0),
            Liquidator::AttackerFirst => assert!(outcome.self_liquidations > 0),
        }
        outcome.assert_nothing_extracted();
    }
}

/// The print held for the whole twenty minutes, a small keeper alone
/// liquidating: at 20 bp a second the markets follow it to the peak and
/// the keeper, short what it took over, is bankrupt there (the attacker's
/// long could then liquidate it and withdraw the gain). A 20 % band around
/// the delay price stops the markets at 180 and then widens 20 % each ten
/// minutes held: the keeper stays solvent throughout, and nothing is
/// extracted, whoever liquidates.
#[tokio::test]
async fn a_price_band_bounds_a_print_held_twenty_minutes() {
    let speed_only = Limit {
        bps_per_second: 20,
        band_bps: 0,
    };
    let outcome = single_print(Some(speed_only), STEPS, Liquidator::SmallKeeper).await;
    outcome.report("held 20 min, 20 bp/s, a small keeper");
    assert!(outcome.peak > 600.0, "{}", outcome.peak);
    assert!(outcome.keeper_low < 0.0, "{}", outcome.keeper_low);

    let banded = Limit {
        bps_per_second: 20,
        band_bps: 2_000,
    };
    for (liquidator, label) in [
        (
            Liquidator::SmallKeeper,
            "held 20 min, 20 bp/s, 20 % band, a small keeper",
        ),
        (Liquidator::AttackerFirst, "held 20 min, 20 bp/s, 20 % band"),
    ] {
        let outcome = single_print(Some(banded), STEPS, liquidator).await;
        outcome.report(label);
        // Widened at every refresh after the first: 20 % × (1 + 79 × 15 / 600)
        // = 59.5 %, so 239.25 at most.
        assert!(outcome.peak < 240.0, "{}", outcome.peak);
        assert!(outcome.keeper_low > 0.0, "{}", outcome.keeper_low);
        outcome.assert_nothing_extracted();
    }
}
