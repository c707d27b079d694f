//! Account substitution: every instruction, every account it takes, every
//! substitute that applies, and every signer dropped or replaced. Each case
//! must be refused with a named error (a program's `Custom` code) and change
//! nothing; then the valid instruction runs, proving the refusals were the
//! substitutes' doing. The harness checks the invariants after every one.
//!
//! Substitutes for an account: a copy of it owned by another program (wrong
//! owner, type cosplay by layout), an address with no account, Kestrel
//! accounts of every other type (discriminators), another user's margin
//! account, a token account of another mint, a Pyth update for another feed
//! (right owner and layout), for every oracle account a newer update of the
//! underlying's other feed and an older update of the same feed at another
//! price (which may be accepted only if the underlying's price stays where
//! the newer update it recorded put it), and every other account of the same instruction
//! (the same account twice; Anchor refuses a writable account passed twice,
//! e.g. the vault as a withdrawal's destination). Instructions take no bumps:
//! PDAs are re-derived from seeds at creation and proven by owner +
//! discriminator afterwards.
//!
//! Which error each case gets is not pinned here (the first check that
//! fires wins); that it is a named one, and that nothing changed, is.
use std::collections::BTreeMap;

use kestrel::instructions::{OrderSide, OrderType};
use kestrel::state::{MarketStatus, PauseFlags};
use kestrel_sdk::{ix, Pubkey};
use kestrel_tests::*;
use solana_sdk::account::Account;
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

struct Matrix {
    h: Harness,
    /// Kestrel accounts of each type, to stand in for one another.
    kestrel_accounts: Vec<Pubkey>,
    wrong_mint_account: Pubkey,
    wrong_feed: Pubkey,
    mallory: Keypair,
    /// Foreign-owned copies made so far, by original.
    copies: BTreeMap<Pubkey, Pubkey>,
    tried: usize,
    failures: Vec<String>,
}

impl Matrix {
    /// The substitutes for `market`'s instructions: Kestrel accounts of each
    /// type, a token account of another mint (owned by `owner`), a Pyth
    /// update of another feed; `mallory` signs in others' places.
    async fn new(
        mut h: Harness,
        market: &ix::MarketAccounts,
        owner: &User,
        mallory: &User,
    ) -> Self {
        let other_mint_authority = Keypair::new();
        let other_mint = h
            .chain
            .create_mint(&other_mint_authority.pubkey(), DECIMALS)
            .await;
        let wrong_mint_account = h
            .chain
            .create_token_account(&other_mint, &owner.pubkey())
            .await;
        let wrong_feed = Pubkey::new_unique();
        let now = h.now().await;
        h.chain.set_account(
            &wrong_feed,
            oracles::pyth_update([9; 32], 15_000_000_000, 1_000_000, -8, now, 1),
        );
        let kestrel_accounts = vec![
            h.exchange,
            market.underlying.underlying,
            market.market,
            market.bids,
            market.event_queue,
            mallory.margin_account,
        ];
        Self {
            h,
            kestrel_accounts,
            wrong_mint_account,
            wrong_feed,
            mallory: mallory.key.insecure_clone(),
            copies: BTreeMap::new(),
            tried: 0,
            failures: Vec::new(),
        }
    }

    /// Prints the count and fails on any case not refused as it must be.
    fn report(&self, name: &str) {
        println!(
            "{name}: {} cases tried, {} accepted",
            self.tried,
            self.failures
                .iter()
                .filter(|f| f.ends_with("ACCEPTED"))
                .count()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed:\n{}",
            self.failures.len(),
            self.tried,
            self.failures.join("\n")
        );
    }

    /// A copy of `original`'s bytes owned by another program.
    async fn foreign_copy(&mut self, original: &Pubkey) -> Option<Pubkey> {
        if let Some(copy) = self.copies.get(original) {
            return Some(*copy);
        }
        let account = self.h.chain.account(original).await?;
        let copy = Pubkey::new_unique();
        self.h.chain.set_account(
            &copy,
            Account {
                owner: Pubkey::new_unique(),
                executable: false,
                ..account
            },
        );
        self.copies.insert(*original, copy);
        Some(copy)
    }

    /// Tries every substitute on every account of `valid` (except the pairs
    /// in `legal`, allowed by design), then runs `valid` itself if `run_valid`.
    async fn check(
        &mut self,
        label: &str,
        valid: Instruction,
        signers: &[&Keypair],
        legal: &[(usize, Pubkey)],
        run_valid: bool,
    ) {
        for index in 0..valid.accounts.len() {
            let meta = valid.accounts[index].clone();
            if meta.is_signer {
                // The signature left off.
                let mut unsigned = valid.clone();
                for m in unsigned
                    .accounts
                    .iter_mut()
                    .filter(|m| m.pubkey == meta.pubkey)
                {
                    m.is_signer = false;
                }
                let others: Vec<&Keypair> = signers
                    .iter()
                    .copied()
                    .filter(|k| k.pubkey() != meta.pubkey)
                    .collect();
                self.refused(label, &format!("#{index} unsigned"), unsigned, &others)
                    .await;
                // Someone else signs in its place.
                let mallory = self.mallory.insecure_clone();
                let mut impostor = valid.clone();
                for m in impostor
                    .accounts
                    .iter_mut()
                    .filter(|m| m.pubkey == meta.pubkey)
                {
                    m.pubkey = mallory.pubkey();
                }
                let mut with_mallory: Vec<&Keypair> = signers
                    .iter()
                    .copied()
                    .filter(|k| k.pubkey() != meta.pubkey)
                    .collect();
                with_mallory.push(&mallory);
                self.refused(
                    label,
                    &format!("#{index} signed by another"),
                    impostor,
                    &with_mallory,
                )
                .await;
                continue;
            }
            let mut substitutes = Vec::new();
            if let Some(copy) = self.foreign_copy(&meta.pubkey).await {
                substitutes.push(copy);
            }
            substitutes.push(Pubkey::new_unique());
            substitutes.extend(self.kestrel_accounts.iter().copied());
            substitutes.push(self.wrong_mint_account);
            substitutes.push(self.wrong_feed);
            substitutes.extend(valid.accounts.iter().map(|m| m.pubkey));
            substitutes.sort();
            substitutes.dedup();
            for substitute in substitutes {
                if substitute == meta.pubkey || legal.contains(&(index, substitute)) {
                    continue;
                }
                let mut attack = valid.clone();
                attack.accounts[index].pubkey = substitute;
                self.refused(label, &format!("#{index} <- {substitute}"), attack, signers)
                    .await;
            }
        }
        let ran = self.oracle_substitutes(label, &valid, signers).await;
        if run_valid && !ran {
            self.h.ok(label, &[valid], signers).await;
        }
    }

    /// For every oracle account of `valid`: a newer update of the
    /// underlying's other feed in its place must be refused; an older update
    /// of the same feed (at another price) must be refused or leave the
    /// underlying's price where the newer update it recorded put it, never
    /// used. True when such
    /// a case ran the instruction (it then did the valid instruction's work).
    async fn oracle_substitutes(
        &mut self,
        label: &str,
        valid: &Instruction,
        signers: &[&Keypair],
    ) -> bool {
        let mut ran = false;
        // Listing and reconfiguring an underlying check feed identity only:
        // nothing is priced there.
        if label.starts_with("create_underlying") || label.starts_with("set_underlying_oracle") {
            return ran;
        }
        for index in 0..valid.accounts.len() {
            let key = valid.accounts[index].pubkey;
            let Some(underlying) = self
                .h
                .underlyings
                .iter()
                .find(|u| u.primary_oracle == key || u.fallback_oracle == Some(key))
                .copied()
            else {
                continue;
            };
            let is_primary = underlying.primary_oracle == key;
            let sb = underlying
                .fallback_oracle
                .expect("the matrix's underlyings have a fallback");
            let recorded = self.h.underlying_state(&underlying.underlying).await.prices;
            let now = self.h.now().await;
            // A newer update of the other feed (the fallback holds the
            // newest update of its feed already).
            let other = if is_primary {
                sb
            } else {
                let pyth = Pubkey::new_unique();
                let slot = self.h.next_oracle_slot();
                self.h.chain.set_account(
                    &pyth,
                    oracles::pyth_update(PYTH_FEED, 15_000_000_000, 1_000_000, -8, now, slot),
                );
                pyth
            };
            let mut attack = valid.clone();
            attack.accounts[index].pubkey = other;
            self.refused(
                label,
                &format!("#{index} <- a newer update of the other feed"),
                attack,
                signers,
            )
            .await;
            // An older update of the same feed, 10% lower. Pyth's is any
            // account with the feed id; Switchboard's is its own account,
            // rewritten for the case and restored after it.
            let saved = self.h.chain.account(&sb).await.expect("the fallback feed");
            let older = if is_primary {
                let pyth = Pubkey::new_unique();
                let old = recorded.primary;
                self.h.chain.set_account(
                    &pyth,
                    oracles::pyth_update(
                        PYTH_FEED,
                        13_500_000_000,
                        1_000_000,
                        -8,
                        old.publish_time - 1,
                        1,
                    ),
                );
                pyth
            } else {
                let old = recorded.fallback;
                self.h.chain.set_account(
                    &sb,
                    oracles::switchboard_feed(
                        135 * 10i128.pow(18),
                        10i128.pow(16),
                        old.publish_time - 1,
                        1,
                    ),
                );
                sb
            };
            let mut attack = valid.clone();
            attack.accounts[index].pubkey = older;
            let case = format!("#{index} <- an older update of the same feed");
            self.tried += 1;
            let before = self.h.underlying_state(&underlying.underlying).await;
            match self.h.attempt_raw(label, &[attack], signers).await {
                Err(InstructionError::Custom(_)) => {}
                Ok(()) => {
                    let after = self.h.underlying_state(&underlying.underlying).await;
                    let (was, is) = (
                        before.prices.last_good_price(),
                        after.prices.last_good_price(),
                    );
                    if was != is {
                        self.failures.push(format!(
                            "{label} {case}: the older price was used ({was:?} -> {is:?})"
                        ));
                    }
                    ran = true;
                }
                Err(other) => self.failures.push(format!(
                    "{label} {case}: refused without a named error: {other:?}"
                )),
            }
            self.h.chain.set_account(&sb, saved);
        }
        ran
    }

    async fn refused(
        &mut self,
        label: &str,
        case: &str,
        attack: Instruction,
        signers: &[&Keypair],
    ) {
        self.tried += 1;
        match self.h.attempt_raw(label, &[attack], signers).await {
            Ok(()) => self.failures.push(format!("{label} {case}: ACCEPTED")),
            Err(InstructionError::Custom(_)) => {}
            Err(other) => self.failures.push(format!(
                "{label} {case}: refused without a named error: {other:?}"
            )),
        }
    }
}

#[tokio::test]
async fn every_substituted_account_is_refused() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(2_000 * ONE_TOKEN).await;
    let bob = h.user(1_000 * ONE_TOKEN).await;
    let carol = h.user(0).await;
    let mallory = h.user(1_000 * ONE_TOKEN).await;
    h.deposit(&alice, 1_000 * ONE_TOKEN).await;
    h.deposit(&bob, 1_000 * ONE_TOKEN).await;
    h.deposit(&mallory, 1_000 * ONE_TOKEN).await;
    let mut m = Matrix::new(h, &market, &alice, &mallory).await;
    let admin = m.h.admin.insecure_clone();
    let a = &alice.key;

    // Admin.
    let successor = Keypair::new();
    m.h.chain.fund(&successor.pubkey(), 1_000_000_000).await;
    m.check(
        "set_pause",
        ix::set_pause(&admin.pubkey(), PauseFlags::INSURANCE),
        &[&admin],
        &[],
        true,
    )
    .await;
    let status = ix::set_market_status(&admin.pubkey(), &market.market, MarketStatus::Active);
    m.check("set_market_status", status, &[&admin], &[], true)
        .await;
    let params = ix::set_market_params(&admin.pubkey(), &market.market, perp_params());
    m.check("set_market_params", params, &[&admin], &[], true)
        .await;
    let limits = kestrel::state::MarketLimits {
        max_open_interest_lots: 1_000,
        max_position_lots: 100,
    };
    let limits = ix::set_market_limits(&admin.pubkey(), &market.market, limits);
    m.check("set_market_limits", limits, &[&admin], &[], true)
        .await;
    let scaling = kestrel::state::RiskScaling {
        baseline_volatility_bps: 8_000,
        max_scale_bps: 20_000,
        max_scale_change_bps_per_hour: 5_000,
        size_margin_bps: 10,
    };
    let scaling = ix::set_risk_scaling(&admin.pubkey(), &market.underlying.underlying, scaling);
    m.check("set_risk_scaling", scaling, &[&admin], &[], true)
        .await;
    let grid = ix::set_scenario_margin(
        &admin.pubkey(),
        &market.underlying.underlying,
        scenario_grid(),
    );
    m.check("set_scenario_margin", grid, &[&admin], &[], true)
        .await;
    let limit = ix::set_price_limit(&admin.pubkey(), &market.underlying.underlying, 20, 0);
    m.check("set_price_limit", limit, &[&admin], &[], true)
        .await;
    let sb = market.underlying.fallback_oracle.unwrap();
    let set_oracle =
        ix::set_underlying_oracle(&admin.pubkey(), &market.underlying, oracle_config(&sb));
    m.check("set_underlying_oracle", set_oracle, &[&admin], &[], true)
        .await;
    let create = ix::create_underlying(
        &admin.pubkey(),
        underlying_args(1, oracle_config(&sb)),
        &market.underlying.primary_oracle,
        Some(sb),
    );
    m.check("create_underlying", create, &[&admin], &[], true)
        .await;
    m.h.underlyings.push(ix::UnderlyingAccounts {
        underlying: kestrel_sdk::pda::underlying(&m.h.exchange, 1),
        ..market.underlying
    });
    let (bids, asks, queue) = m.h.market_accounts().await;
    let create = ix::create_market(
        &admin.pubkey(),
        market_args(1, perp_params()),
        &bids,
        &asks,
        &queue,
        &market.underlying.underlying,
    );
    m.check("create_market", create, &[&admin], &[], true).await;
    let refresh = ix::refresh_underlying(&market.underlying);
    m.check("refresh_underlying", refresh, &[], &[], true).await;

    // Collateral.
    let create = ix::create_margin_account(&alice.pubkey(), 1, None);
    m.check("create_margin_account", create, &[a], &[], true)
        .await;
    let delegate = ix::set_delegate(
        &alice.pubkey(),
        &alice.margin_account,
        Some(Pubkey::new_unique()),
    );
    m.check("set_delegate", delegate, &[a], &[], true).await;
    let deposit = ix::deposit(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        ONE_TOKEN,
    );
    m.check("deposit", deposit, &[a], &[], true).await;
    let withdraw = ix::withdraw(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        ONE_TOKEN,
    );
    // Withdrawing to someone else's token account of the mint is allowed.
    let legal = [(4, mallory.token_account)];
    m.check("withdraw", withdraw, &[a], &legal, true).await;

    // Trading: Alice rests two asks, Bob takes part of one.
    let mut ask = order(OrderSide::Ask, OrderType::Limit, 15_000, 10);
    ask.client_order_id = 5;
    let place = m.h.place_ix(&alice, &market, ask).await;
    m.check("place_order", place, &[a], &[], true).await;
    let mut second = order(OrderSide::Ask, OrderType::Limit, 15_100, 3);
    second.client_order_id = 6;
    m.h.place(&alice, &market, second).await;
    m.h.place(
        &bob,
        &market,
        order(OrderSide::Bid, OrderType::ImmediateOrCancel, 15_000, 2),
    )
    .await;
    let account = m.h.margin_account(&alice.margin_account).await;
    let id_of = |client: u64| {
        account
            .active_orders()
            .map(|(_, o)| o)
            .find(|o| o.client_order_id == client)
            .expect("resting")
            .order_id()
    };
    let (first_id, _second_id) = (id_of(5), id_of(6));
    let cancel = ix::cancel_order(&alice.pubkey(), &alice.margin_account, &market, first_id);
    m.check("cancel_order", cancel, &[a], &[], true).await;
    let by_client =
        ix::cancel_order_by_client_id(&alice.pubkey(), &alice.margin_account, &market, 6);
    m.check("cancel_order_by_client_id", by_client, &[a], &[], true)
        .await;
    m.h.place(
        &alice,
        &market,
        order(OrderSide::Ask, OrderType::Limit, 15_200, 1),
    )
    .await;
    let all = ix::cancel_all(&alice.pubkey(), &alice.margin_account, &market, None, 8);
    m.check("cancel_all", all, &[a], &[], true).await;
    // Any margin account may take the crank reward.
    let crank = m.h.crank_ix(&market, 8, Some(bob.margin_account)).await;
    let legal = [(3, mallory.margin_account), (3, alice.margin_account)];
    m.check("consume_events", crank, &[], &legal, true).await;
    m.check("sweep_fees", ix::sweep_fees(&market.market), &[], &[], true)
        .await;

    // Closing, and the closed account revived.
    // Carol (no positions) moves to portfolio margin, then closes.
    let mode = ix::set_margin_mode(
        &carol.pubkey(),
        &carol.margin_account,
        kestrel::state::MarginMode::Portfolio,
        Vec::new(),
    );
    m.check("set_margin_mode", mode, &[&carol.key], &[], true)
        .await;

    let close = ix::close_margin_account(&carol.pubkey(), &carol.margin_account);
    m.check("close_margin_account", close, &[&carol.key], &[], true)
        .await;
    let revive = ix::deposit(
        &carol.pubkey(),
        &carol.margin_account,
        &carol.token_account,
        0,
    );
    m.refused("deposit", "into a closed account", revive, &[&carol.key])
        .await;

    // Admin hand-over last: it changes the admin.
    let propose = ix::propose_admin(&admin.pubkey(), &successor.pubkey());
    m.check("propose_admin", propose, &[&admin], &[], true)
        .await;
    let accept = ix::accept_admin(&successor.pubkey());
    m.check("accept_admin", accept, &[&successor], &[], true)
        .await;

    // Re-initialisation of what exists.
    let init = m.h.init_exchange_ix(&successor.pubkey());
    let reinit =
        m.h.attempt_raw("init_exchange", &[init], &[&successor])
            .await;
    m.tried += 1;
    assert!(reinit.is_err(), "the exchange was initialised twice");
    let again = ix::create_margin_account(&alice.pubkey(), 0, None);
    let recreate =
        m.h.attempt_raw("create_margin_account", &[again], &[a])
            .await;
    m.tried += 1;
    assert_eq!(
        recreate,
        Err(REINIT_REFUSAL),
        "re-creating a margin account"
    );
    m.report("account-substitution");
}

/// The same matrix over funding, liquidation, bankruptcy and the insurance
/// fund: bob is long 600 lots on 100 USDC, carol liquidates, dave stakes.
#[tokio::test]
async fn every_substituted_risk_account_is_refused() {
    let mut h = Harness::new().await;
    let market = h.create_market(0, market_params).await;
    let alice = h.user(2_000 * ONE_TOKEN).await;
    let bob = h.user(100 * ONE_TOKEN).await;
    let carol = h.user(10_000 * ONE_TOKEN).await;
    let dave = h.user(300 * ONE_TOKEN).await;
    let mallory = h.user(1_000 * ONE_TOKEN).await;
    for (user, amount) in [
        (&alice, 2_000),
        (&bob, 100),
        (&carol, 10_000),
        (&mallory, 1_000),
    ] {
        h.deposit(user, amount * ONE_TOKEN).await;
    }
    h.place(
        &alice,
        &market,
        order(OrderSide::Ask, OrderType::Limit, 15_000, 600),
    )
    .await;
    let buy = order(OrderSide::Bid, OrderType::ImmediateOrCancel, 15_000, 600);
    h.place(&bob, &market, buy).await;
    h.crank(&market, 1).await;
    h.update_funding(&market).await;
    let mut m = Matrix::new(h, &market, &carol, &mallory).await;

    m.h.advance_clock(30).await;
    m.h.set_oracle_price(&market, 150).await;
    m.check(
        "update_funding",
        ix::update_funding(&market),
        &[],
        &[],
        true,
    )
    .await;
    let settle = ix::settle_funding(&market.market, &bob.margin_account);
    // Any margin account with a position here may be settled.
    let legal = [(1, alice.margin_account)];
    m.check("settle_funding", settle, &[], &legal, true).await;
    let stake = ix::stake(
        &dave.pubkey(),
        &dave.margin_account,
        &dave.token_account,
        200 * ONE_TOKEN,
    );
    m.check("stake", stake, &[&dave.key], &[], true).await;
    let request = ix::request_unstake(&dave.pubkey(), &dave.margin_account, 10 * ONE_TOKEN);
    m.check("request_unstake", request, &[&dave.key], &[], true)
        .await;

    m.h.set_oracle_price(&market, 138).await;
    let liquidate =
        m.h.liquidate_ix(&carol, &bob.margin_account, &market, 100)
            .await;
    m.check("liquidate", liquidate, &[&carol.key], &[], true)
        .await;
    // A gap: the rest goes at a loss, the fund covers the deficit.
    m.h.set_oracle_price(&market, 120).await;
    let liquidate =
        m.h.liquidate_ix(&carol, &bob.margin_account, &market, u64::MAX)
            .await;
    m.h.ok("liquidate", &[liquidate], &[&carol.key]).await;
    assert!(
        m.h.collateral(&bob.margin_account).await < 0,
        "bob is bankrupt"
    );
    let settle = ix::settle_bankruptcy(&bob.margin_account, &market);
    m.check("settle_bankruptcy", settle, &[], &[], true).await;

    m.h.advance_clock(kestrel::state::INSURANCE_UNSTAKE_COOLDOWN_SECONDS)
        .await;
    let unstake = ix::unstake(&dave.pubkey(), &dave.margin_account);
    m.check("unstake", unstake, &[&dave.key], &[], true).await;
    m.report("account-substitution (risk)");
}

/// The same matrix over dated futures: the basis crank, the settlement
/// window's sampler, settlement in cash, and the delisting of a perpetual.
#[tokio::test]
async fn every_substituted_futures_account_is_refused() {
    use kestrel::state::FutureParams;
    let mut h = Harness::new().await;
    let perp = h.create_market(0, market_params).await;
    let now = h.now().await;
    let params = FutureParams {
        expiry: minute_of(now + 3_600),
        settlement_window_seconds: 600,
        max_basis_bps: 200,
        basis_window_seconds: 600,
        convergence_seconds: 600,
    };
    let future = h
        .create_future_on(1, &perp.underlying, perp_params(), params)
        .await;
    let alice = h.user(1_000 * ONE_TOKEN).await;
    let bob = h.user(1_000 * ONE_TOKEN).await;
    let mallory = h.user(1_000 * ONE_TOKEN).await;
    for user in [&alice, &bob, &mallory] {
        h.deposit(user, 1_000 * ONE_TOKEN).await;
    }
    h.place(
        &alice,
        &future,
        order(OrderSide::Ask, OrderType::Limit, 15_100, 10),
    )
    .await;
    let buy = order(OrderSide::Bid, OrderType::ImmediateOrCancel, 15_100, 10);
    h.place(&bob, &future, buy).await;
    h.crank(&future, 8).await;
    h.place(
        &alice,
        &future,
        order(OrderSide::Bid, OrderType::Limit, 15_000, 1),
    )
    .await;
    h.place(
        &alice,
        &future,
        order(OrderSide::Ask, OrderType::Limit, 15_200, 1),
    )
    .await;
    let mut m = Matrix::new(h, &future, &alice, &mallory).await;
    let admin = m.h.admin.insecure_clone();

    m.check("update_basis", ix::update_basis(&future), &[], &[], true)
        .await;
    // Into the window, then past expiry, the underlying refreshed every
    // minute so the settlement average covers it.
    let now = m.h.now().await;
    m.h.advance_clock(params.window_start() - 120 - now).await;
    m.h.publish_each_minute(&perp, params.window_start() + 60, 150)
        .await;
    let sample = ix::sample_settlement(&future);
    m.check("sample_settlement", sample, &[], &[], true).await;
    m.h.publish_each_minute(&perp, params.expiry + 1, 150).await;
    for user in [&bob, &alice] {
        let settle = ix::settle_expired(&future, Some(user.margin_account));
        // Any margin account may be named: one without a position in the
        // market settles nothing.
        let legal = [(5, mallory.margin_account)];
        m.check("settle_expired", settle, &[], &legal, true).await;
    }

    let pause = ix::set_market_status(&admin.pubkey(), &perp.market, MarketStatus::Paused);
    m.h.ok("pause", &[pause], &[&admin]).await;
    let delist = ix::delist_market(&admin.pubkey(), &perp.market, 600);
    m.check("delist_market", delist, &[&admin], &[], true).await;
    m.report("account-substitution (futures)");
}
