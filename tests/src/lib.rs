//! The integration-test harness. Every transaction a test sends goes through
//! [`Harness::exec`], which afterwards checks the exchange's invariants; every
//! expected refusal goes through [`Harness::refused`], which also proves that
//! no tracked account changed.
//!
//! `KESTREL_PROGRAM=sbf` runs the same tests against `target/deploy/kestrel.so`
//! and prints the compute units of every successful instruction.
pub use kestrel_sim::fixtures as oracles;

use std::collections::{BTreeMap, BTreeSet};

use anchor_lang::Discriminator;
use kestrel::instruction::{
    CreateMarginAccount as CreateMarginAccountData, CreateMarket as CreateMarketData,
    CreateOptionMarket as CreateOptionMarketData,
};
use kestrel_keeper::audit;
use kestrel_sdk::{decode, ix, pda, Pubkey};
use kestrel_sim::chain::{LocalChain, ProgramMode, TxOutcome};
use solana_sdk::account::Account;
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::TransactionError;

pub use anchor_lang::error::ErrorCode as AnchorErrorCode;
pub use kestrel::error::KestrelError;
pub use solana_sdk::instruction::InstructionError;

pub const DECIMALS: u8 = 6;
/// The Pyth feed id markets in tests use.
pub const PYTH_FEED: [u8; 32] = [7; 32];
pub const ONE_TOKEN: u64 = 1_000_000;
/// Lamports each test user gets for fees and rent.
const USER_LAMPORTS: u64 = 1_000_000_000;

/// The numeric code of a named program error (Kestrel's or Anchor's own).
/// Unix time `time` rounded down to the minute: the grid of the
/// underlyings' price integral, where a dated future's expiry and
/// settlement window sit.
pub fn minute_of(time: i64) -> i64 {
    time - time.rem_euclid(60)
}

pub fn error_code(error: impl Into<anchor_lang::error::Error>) -> u32 {
    match error.into() {
        anchor_lang::error::Error::AnchorError(e) => e.error_code_number,
        anchor_lang::error::Error::ProgramError(e) => {
            panic!("not a named error: {e:?}")
        }
    }
}

/// A user with a keypair, a funded collateral token account and margin account 0.
pub struct User {
    pub key: Keypair,
    pub token_account: Pubkey,
    pub margin_account: Pubkey,
}

impl User {
    pub fn pubkey(&self) -> Pubkey {
        self.key.pubkey()
    }
}

pub struct Harness {
    pub chain: LocalChain,
    pub admin: Keypair,
    pub mint_authority: Keypair,
    pub mint: Pubkey,
    pub exchange: Pubkey,
    pub collateral_vault: Pubkey,
    pub fee_vault: Pubkey,
    pub insurance_vault: Pubkey,
    /// Every margin account ever created through this harness.
    margin_accounts: BTreeSet<Pubkey>,
    /// Every market created through this harness: (market, bids, asks, event queue).
    markets: BTreeSet<(Pubkey, Pubkey, Pubkey, Pubkey)>,
    /// Markets made by [`Harness::create_market`], for health accounts.
    pub trading_markets: Vec<ix::MarketAccounts>,
    /// Underlyings made by [`Harness::create_underlying`]: an oracle write to
    /// one of their feed accounts is followed by its refresh, as the keeper
    /// refreshes on every update.
    pub underlyings: Vec<ix::UnderlyingAccounts>,
    /// (underlying, implied-volatility feed) pairs set up by
    /// [`Harness::configure_options`].
    pub volatility_feeds: Vec<(Pubkey, Pubkey)>,
    /// Every account whose state a refused instruction must leave untouched.
    watched: BTreeSet<Pubkey>,
    invariant_checks: usize,
    /// Oracle updates written so far: each lands in a later slot, as a real
    /// feed's do.
    oracle_updates: u64,
    /// Per event queue, the sequence number after the last fill checked
    /// against its band.
    fills_checked: BTreeMap<Pubkey, u64>,
}

impl Harness {
    /// A chain with the collateral mint and an initialised exchange.
    pub async fn new() -> Self {
        let mut harness = Self::without_exchange().await;
        let init = harness.init_exchange_ix(&harness.admin.pubkey());
        let admin = harness.admin.insecure_clone();
        harness.ok("init_exchange", &[init], &[&admin]).await;
        harness
    }

    /// A chain with the collateral mint only; `admin` is the program's
    /// deployer (its upgrade authority on the `.so` run).
    pub async fn without_exchange() -> Self {
        let mut chain = LocalChain::start(ProgramMode::from_env()).await;
        let admin = chain.deployer().insecure_clone();
        let mint_authority = Keypair::new();
        let mint = chain.create_mint(&mint_authority.pubkey(), DECIMALS).await;
        let exchange = pda::exchange();
        let mut harness = Self {
            chain,
            mint,
            exchange,
            collateral_vault: pda::collateral_vault(&exchange),
            fee_vault: pda::fee_vault(&exchange),
            insurance_vault: pda::insurance_vault(&exchange),
            admin,
            mint_authority,
            margin_accounts: BTreeSet::new(),
            markets: BTreeSet::new(),
            trading_markets: Vec::new(),
            underlyings: Vec::new(),
            volatility_feeds: Vec::new(),
            watched: BTreeSet::new(),
            invariant_checks: 0,
            oracle_updates: 0,
            fills_checked: BTreeMap::new(),
        };
        for key in [
            exchange,
            harness.collateral_vault,
            harness.fee_vault,
            harness.insurance_vault,
            harness.admin.pubkey(),
        ] {
            harness.watched.insert(key);
        }
        harness
    }

    /// `init_exchange` by `admin`, with ProgramData when the program has one.
    pub fn init_exchange_ix(&self, admin: &Pubkey) -> Instruction {
        ix::init_exchange(admin, &self.mint, self.chain.program_data())
    }

    pub fn mode(&self) -> ProgramMode {
        self.chain.mode()
    }

    /// Sends one transaction, then checks the invariants whatever its result.
    pub async fn exec(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> TxOutcome {
        let outcome = self.chain.send(ixs, signers).await;
        if outcome.result.is_ok() {
            for instruction in ixs {
                self.register_created_margin_account(instruction);
                self.register_created_market(instruction);
            }
        }
        if outcome.result.is_ok() && self.mode() == ProgramMode::Sbf {
            println!("[cu] {label}: {}", outcome.compute_units);
        }
        self.check_invariants(label).await;
        outcome
    }

    /// Sends a transaction that must succeed.
    pub async fn ok(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> TxOutcome {
        let outcome = self.exec(label, ixs, signers).await;
        if let Err(err) = &outcome.result {
            panic!("{label} failed: {err:?}\n{}", outcome.logs.join("\n"));
        }
        outcome
    }

    /// Sends a transaction that must be refused with the named program error
    /// `code` and must leave every account it names, every margin account and
    /// every watched account exactly as it was.
    pub async fn refused(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
        code: u32,
    ) {
        self.refused_with(label, ixs, signers, InstructionError::Custom(code))
            .await
    }

    /// [`Self::refused`] for an error the runtime, not a program, returns.
    pub async fn refused_with(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
        expected: InstructionError,
    ) {
        match self.attempt_raw(label, ixs, signers).await {
            Err(error) if error == expected => {}
            other => panic!("{label}: expected {expected:?}, got {other:?}"),
        }
    }

    /// Sends a transaction that may be accepted or refused: a refusal must be
    /// a named program error and change nothing (as [`Self::refused`]).
    /// Returns the error code of a refusal.
    pub async fn attempt(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), u32> {
        match self.attempt_raw(label, ixs, signers).await {
            Ok(()) => Ok(()),
            Err(InstructionError::Custom(code)) => Err(code),
            Err(other) => panic!("{label}: refused without a named error: {other:?}"),
        }
    }

    /// [`Self::attempt`] for any instruction error: a refusal must change
    /// nothing; returns it.
    pub async fn attempt_raw(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), InstructionError> {
        let named: Vec<Pubkey> = ixs
            .iter()
            .flat_map(|ix| ix.accounts.iter().map(|meta| meta.pubkey))
            .collect();
        let before = self.snapshot(&named).await;
        let outcome = self.exec(label, ixs, signers).await;
        let error = match outcome.result {
            Ok(()) => return Ok(()),
            Err(TransactionError::InstructionError(_, error)) => error,
            Err(other) => panic!("{label}: refused before any instruction ran: {other:?}"),
        };
        let after = self.snapshot(&named).await;
        for (key, now) in &after {
            let was = before.get(key).cloned().flatten();
            assert_eq!(&was, now, "{label}: refused, yet account {key} changed");
        }
        Err(error)
    }

    /// A new user holding `tokens` native units of collateral and an empty margin account 0.
    pub async fn user(&mut self, tokens: u64) -> User {
        let key = Keypair::new();
        self.chain.fund(&key.pubkey(), USER_LAMPORTS).await;
        let token_account = self.token_account(&key.pubkey(), tokens).await;
        let create = ix::create_margin_account(&key.pubkey(), 0, None);
        self.ok("create_margin_account", &[create], &[&key]).await;
        let margin_account = pda::margin_account(&self.exchange, &key.pubkey(), 0);
        self.watched.insert(key.pubkey());
        User {
            key,
            token_account,
            margin_account,
        }
    }

    /// A token account of the collateral mint owned by `owner`, holding `tokens`.
    pub async fn token_account(&mut self, owner: &Pubkey, tokens: u64) -> Pubkey {
        let account = self.chain.create_token_account(&self.mint, owner).await;
        if tokens > 0 {
            let authority = self.mint_authority.insecure_clone();
            self.chain
                .mint_to(&self.mint, &authority, &account, tokens)
                .await;
        }
        self.watched.insert(account);
        account
    }

    /// Fresh Pyth (feed [`PYTH_FEED`]) and Switchboard feed accounts at 150 quote
    /// per base, published now; returns (pyth account, switchboard account).
    pub async fn oracle_accounts(&mut self) -> (Pubkey, Pubkey) {
        let (pyth, switchboard) = (Pubkey::new_unique(), Pubkey::new_unique());
        self.set_pyth(&pyth, 15_000_000_000, 1_000_000, 0).await;
        self.set_switchboard(&switchboard, 150 * 10i128.pow(18), 0)
            .await;
        (pyth, switchboard)
    }

    /// Zeroed, Kestrel-owned book side and event queue accounts, as a client
    /// creates them before `create_market`: (bids, asks, event queue).
    pub async fn market_accounts(&mut self) -> (Pubkey, Pubkey, Pubkey) {
        let bids = self
            .chain
            .create_owned_account(&kestrel::ID, ix::BOOK_SIDE_ACCOUNT_LEN)
            .await;
        let asks = self
            .chain
            .create_owned_account(&kestrel::ID, ix::BOOK_SIDE_ACCOUNT_LEN)
            .await;
        let queue = self
            .chain
            .create_owned_account(&kestrel::ID, ix::EVENT_QUEUE_ACCOUNT_LEN)
            .await;
        (bids, asks, queue)
    }

    pub async fn deposit(&mut self, user: &User, amount: u64) {
        let deposit = ix::deposit(
            &user.pubkey(),
            &user.margin_account,
            &user.token_account,
            amount,
        );
        self.ok("deposit", &[deposit], &[&user.key]).await;
    }

    pub async fn withdraw(&mut self, user: &User, amount: u64) {
        let withdraw = ix::withdraw(
            &user.pubkey(),
            &user.margin_account,
            &user.token_account,
            amount,
        );
        self.ok("withdraw", &[withdraw], &[&user.key]).await;
    }

    pub async fn set_pause(&mut self, flags: u32) {
        let admin = self.admin.insecure_clone();
        self.ok(
            "set_pause",
            &[ix::set_pause(&admin.pubkey(), flags)],
            &[&admin],
        )
        .await;
    }

    pub async fn token_balance(&mut self, token_account: &Pubkey) -> u64 {
        self.chain.token_balance(token_account).await
    }

    pub async fn collateral(&mut self, margin_account: &Pubkey) -> i64 {
        self.margin_account(margin_account).await.collateral
    }

    pub async fn margin_account(&mut self, address: &Pubkey) -> kestrel::state::MarginAccount {
        let account = self
            .chain
            .account(address)
            .await
            .expect("margin account exists");
        decode::margin_account(&account.data).expect("a Kestrel margin account")
    }

    pub async fn exchange_state(&mut self) -> kestrel::state::Exchange {
        let account = self
            .chain
            .account(&self.exchange)
            .await
            .expect("exchange exists");
        decode::exchange(&account.data).expect("the Kestrel exchange")
    }

    pub async fn now(&mut self) -> i64 {
        self.chain.clock().await.unix_timestamp
    }

    /// Market `market_index` with `setup` (see [`market_params`], whose
    /// fallback feed must be the Switchboard account this creates) on a new
    /// underlying of the same index with fresh oracles at 150 quote per base
    /// (15,000 ticks) and a Pyth primary.
    pub async fn create_market(
        &mut self,
        market_index: u16,
        setup: impl FnOnce(&Pubkey) -> MarketSetup,
    ) -> ix::MarketAccounts {
        let (pyth, switchboard) = (Pubkey::new_unique(), Pubkey::new_unique());
        self.set_pyth(&pyth, 15_000_000_000, 1_000_000, 0).await;
        self.set_switchboard(&switchboard, 150 * 10i128.pow(18), 0)
            .await;
        let setup = setup(&switchboard);
        let underlying = self
            .create_underlying(market_index, setup.oracle, pyth, switchboard)
            .await;
        self.create_market_on(market_index, &underlying, setup.params)
            .await
    }

    /// Underlying `underlying_index` reading `oracle` from `pyth` and (when
    /// it has a fallback) `switchboard`.
    pub async fn create_underlying(
        &mut self,
        underlying_index: u16,
        oracle: kestrel::state::OracleConfig,
        pyth: Pubkey,
        switchboard: Pubkey,
    ) -> ix::UnderlyingAccounts {
        let fallback = oracle.has_fallback().then_some(switchboard);
        let admin = self.admin.insecure_clone();
        let create = ix::create_underlying(
            &admin.pubkey(),
            underlying_args(underlying_index, oracle),
            &pyth,
            fallback,
        );
        self.ok("create_underlying", &[create], &[&admin]).await;
        let underlying = ix::UnderlyingAccounts {
            underlying: pda::underlying(&self.exchange, underlying_index),
            primary_oracle: pyth,
            fallback_oracle: fallback,
        };
        self.watched.insert(underlying.underlying);
        self.underlyings.push(underlying);
        underlying
    }

    /// Market `market_index` with `params` on `underlying`.
    pub async fn create_market_on(
        &mut self,
        market_index: u16,
        underlying: &ix::UnderlyingAccounts,
        params: kestrel::state::MarketParams,
    ) -> ix::MarketAccounts {
        self.list(market_index, underlying, params, None).await
    }

    /// Dated future `market_index` with `params` and `future` on `underlying`.
    pub async fn create_future_on(
        &mut self,
        market_index: u16,
        underlying: &ix::UnderlyingAccounts,
        params: kestrel::state::MarketParams,
        future: kestrel::state::FutureParams,
    ) -> ix::MarketAccounts {
        self.list(market_index, underlying, params, Some(future))
            .await
    }

    /// A perpetual, or with `future` a dated future.
    async fn list(
        &mut self,
        market_index: u16,
        underlying: &ix::UnderlyingAccounts,
        params: kestrel::state::MarketParams,
        future: Option<kestrel::state::FutureParams>,
    ) -> ix::MarketAccounts {
        let (bids, asks, event_queue) = self.market_accounts().await;
        let admin = self.admin.insecure_clone();
        let args = market_args(market_index, params);
        let (label, create) = match future {
            None => (
                "create_market",
                ix::create_market(
                    &admin.pubkey(),
                    args,
                    &bids,
                    &asks,
                    &event_queue,
                    &underlying.underlying,
                ),
            ),
            Some(future) => (
                "create_future_market",
                ix::create_future_market(
                    &admin.pubkey(),
                    args,
                    future,
                    &bids,
                    &asks,
                    &event_queue,
                    &underlying.underlying,
                ),
            ),
        };
        self.ok(label, &[create], &[&admin]).await;
        self.register_market(market_index, underlying, bids, asks, event_queue)
    }

    /// Tracks a listed market: its accounts are watched and checked.
    fn register_market(
        &mut self,
        market_index: u16,
        underlying: &ix::UnderlyingAccounts,
        bids: Pubkey,
        asks: Pubkey,
        event_queue: Pubkey,
    ) -> ix::MarketAccounts {
        let market = ix::MarketAccounts {
            market_index,
            market: pda::market(&self.exchange, market_index),
            bids,
            asks,
            event_queue,
            underlying: *underlying,
        };
        for key in [market.market, bids, asks, event_queue] {
            self.watched.insert(key);
        }
        self.trading_markets.push(market);
        market
    }

    /// Gives `underlying` options: an implied-volatility feed (a new
    /// Switchboard account) at `volatility_bps`, with `config`'s terms
    /// ([`option_config`] for the defaults). Returns the feed.
    pub async fn configure_options(
        &mut self,
        underlying: &ix::UnderlyingAccounts,
        config: impl FnOnce(&Pubkey) -> kestrel::state::OptionConfig,
        volatility_bps: u64,
    ) -> Pubkey {
        let feed = Pubkey::new_unique();
        let admin = self.admin.insecure_clone();
        let set = ix::set_option_config(&admin.pubkey(), &underlying.underlying, config(&feed));
        self.ok("set_option_config", &[set], &[&admin]).await;
        self.volatility_feeds.push((underlying.underlying, feed));
        self.set_volatility(&feed, volatility_bps).await;
        feed
    }

    /// Publishes `volatility_bps` (basis points: 8,000 = 80 %) on the
    /// implied-volatility `feed`, now, and refreshes the underlyings that
    /// read it.
    pub async fn set_volatility(&mut self, feed: &Pubkey, volatility_bps: u64) {
        let now = self.now().await;
        let slot = self.next_oracle_slot();
        let value = i128::from(volatility_bps) * 10i128.pow(14);
        self.chain
            .set_account(feed, oracles::switchboard_feed(value, 0, now, slot));
        let readers: Vec<Pubkey> = self
            .volatility_feeds
            .iter()
            .filter(|(_, f)| f == feed)
            .map(|(u, _)| *u)
            .collect();
        for underlying in readers {
            let refresh = ix::refresh_volatility(&underlying, feed);
            self.ok("refresh_volatility", &[refresh], &[]).await;
        }
    }

    /// Option `market_index` on `underlying` (which has options,
    /// [`Self::configure_options`]).
    pub async fn create_option_on(
        &mut self,
        market_index: u16,
        underlying: &ix::UnderlyingAccounts,
        params: kestrel::state::MarketParams,
        expiry: kestrel::state::FutureParams,
        option: kestrel::state::OptionParams,
    ) -> ix::MarketAccounts {
        let (bids, asks, event_queue) = self.market_accounts().await;
        let admin = self.admin.insecure_clone();
        let create = ix::create_option_market(
            &admin.pubkey(),
            market_args(market_index, params),
            expiry,
            option,
            &bids,
            &asks,
            &event_queue,
            &underlying.underlying,
        );
        self.ok("create_option_market", &[create], &[&admin]).await;
        self.register_market(market_index, underlying, bids, asks, event_queue)
    }

    /// Republishes `market`'s oracles at `price` whole quote per base, now
    /// (each write refreshes the underlying).
    /// Moves the clock to `until` a minute at a time, publishing `price` on
    /// `market`'s feeds at each step (which the harness refreshes into the
    /// underlying): a feed that keeps the underlying's price integral, and
    /// so a dated future's settlement average, covered.
    pub async fn publish_each_minute(
        &mut self,
        market: &ix::MarketAccounts,
        until: i64,
        price: i64,
    ) {
        loop {
            let now = self.now().await;
            if now >= until {
                return;
            }
            self.advance_clock((until - now).min(60)).await;
            self.set_oracle_price(market, price).await;
        }
    }

    pub async fn set_oracle_price(&mut self, market: &ix::MarketAccounts, price: i64) {
        let underlying = market.underlying;
        self.set_pyth(
            &underlying.primary_oracle,
            price * 100_000_000,
            1_000_000,
            0,
        )
        .await;
        if let Some(fallback) = underlying.fallback_oracle {
            self.set_switchboard(&fallback, i128::from(price) * 10i128.pow(18), 0)
                .await;
        }
    }

    /// Refreshes every underlying that reads `feed`.
    async fn refresh_readers_of(&mut self, feed: &Pubkey) {
        let readers: Vec<ix::UnderlyingAccounts> = self
            .underlyings
            .iter()
            .filter(|u| u.primary_oracle == *feed || u.fallback_oracle == Some(*feed))
            .copied()
            .collect();
        for underlying in readers {
            self.refresh(&underlying).await;
        }
    }

    /// `refresh_underlying` from its configured feed accounts; must succeed.
    pub async fn refresh(&mut self, underlying: &ix::UnderlyingAccounts) -> TxOutcome {
        self.ok(
            "refresh_underlying",
            &[ix::refresh_underlying(underlying)],
            &[],
        )
        .await
    }

    pub async fn underlying_state(&mut self, underlying: &Pubkey) -> kestrel::state::Underlying {
        let account = self
            .chain
            .account(underlying)
            .await
            .expect("underlying exists");
        decode::underlying(&account.data).expect("a Kestrel underlying")
    }

    /// Writes a fully verified Pyth update (price with exponent -8) published
    /// `age` seconds before the bank's clock.
    pub async fn set_pyth(&mut self, account: &Pubkey, price: i64, conf: u64, age: i64) {
        let now = self.now().await;
        let slot = self.next_oracle_slot();
        self.chain.set_account(
            account,
            oracles::pyth_update(PYTH_FEED, price, conf, -8, now - age, slot),
        );
        self.refresh_readers_of(account).await;
    }

    /// Writes a Switchboard feed (18 decimals) updated `age` seconds ago.
    pub async fn set_switchboard(&mut self, account: &Pubkey, value: i128, age: i64) {
        let now = self.now().await;
        let slot = self.next_oracle_slot();
        self.chain.set_account(
            account,
            oracles::switchboard_feed(value, value / 1_000, now - age, slot),
        );
        self.refresh_readers_of(account).await;
    }

    /// The slot the next oracle update is posted in: later than every
    /// update before it.
    pub fn next_oracle_slot(&mut self) -> u64 {
        self.oracle_updates += 1;
        self.oracle_updates + 1
    }

    /// `place_order` for `user` with the health accounts its positions need.
    pub async fn place_ix(
        &mut self,
        user: &User,
        market: &ix::MarketAccounts,
        args: kestrel::instructions::PlaceOrderArgs,
    ) -> Instruction {
        let account = self.margin_account(&user.margin_account).await;
        let health =
            ix::health_accounts(&account, Some(market.market_index), &self.trading_markets);
        ix::place_order(&user.pubkey(), &user.margin_account, market, args, health)
    }

    /// Places an order that must be accepted.
    pub async fn place(
        &mut self,
        user: &User,
        market: &ix::MarketAccounts,
        args: kestrel::instructions::PlaceOrderArgs,
    ) -> TxOutcome {
        let place = self.place_ix(user, market, args).await;
        self.ok("place_order", &[place], &[&user.key]).await
    }

    /// Withdraw with the health accounts of every position.
    pub async fn withdraw_ix(&mut self, user: &User, amount: u64) -> Instruction {
        let account = self.margin_account(&user.margin_account).await;
        let health = ix::health_accounts(&account, None, &self.trading_markets);
        ix::withdraw_with_health(
            &user.pubkey(),
            &user.margin_account,
            &user.token_account,
            amount,
            health,
        )
    }

    /// `consume_events` for up to `limit` events, passing the accounts they name.
    pub async fn crank_ix(
        &mut self,
        market: &ix::MarketAccounts,
        limit: u16,
        reward_account: Option<Pubkey>,
    ) -> Instruction {
        let queue = self
            .chain
            .account(&market.event_queue)
            .await
            .expect("queue");
        let events = kestrel_sdk::events::pending_events(&queue.data).expect("an event queue");
        let accounts = kestrel_sdk::events::accounts_to_crank(&events, usize::from(limit));
        ix::consume_events(market, &accounts, reward_account, limit)
    }

    pub async fn crank(&mut self, market: &ix::MarketAccounts, limit: u16) -> TxOutcome {
        let crank = self.crank_ix(market, limit, None).await;
        self.ok("consume_events", &[crank], &[]).await
    }

    /// The SDK's health preview of `margin_account` from fetched accounts
    /// (each underlying as the program will read it).
    pub async fn health_preview(&mut self, margin_account: &Pubkey) -> kestrel_sdk::health::Health {
        use kestrel_sdk::client::Chain;
        let account = self.margin_account(margin_account).await;
        let mut snapshots = Vec::new();
        for market in self.trading_markets.clone() {
            snapshots.push(self.market_snapshot(&market).await.expect("snapshot"));
        }
        let clock = self.chain.clock().await;
        kestrel_sdk::health::preview(&account, &snapshots, clock.unix_timestamp, clock.slot)
            .expect("health preview")
    }

    /// The option model's value of option `market` at its underlying's
    /// accepted price now and `volatility_bps`, in the harness's ticks
    /// (0.0001 USDC a 0.01 lot), at least one.
    pub async fn option_value_ticks(
        &mut self,
        market: &ix::MarketAccounts,
        volatility_bps: u64,
    ) -> u64 {
        use fixed::types::I80F48;
        use kestrel::engine::black_scholes::{self, PricingInputs};
        let state = self.market_state(&market.market).await;
        let spot = self
            .underlying_state(&market.underlying.underlying)
            .await
            .last_good_price()
            .expect("a price");
        let now = self.now().await;
        let value = black_scholes::price(&PricingInputs {
            side: state.option.side().expect("an option"),
            spot,
            strike: state.option.strike(),
            seconds_to_expiry: state.future.params.expiry - now,
            volatility: I80F48::from_num(volatility_bps) / 10_000,
            rate: I80F48::ZERO,
        })
        .expect("a value");
        (value * 100_000).round().to_num::<u64>().max(1)
    }

    /// [`Self::health_preview`] as a transaction that runs
    /// `refresh_risk_arrays` on every option market first would see it.
    pub async fn health_preview_with_fresh_arrays(
        &mut self,
        margin_account: &Pubkey,
    ) -> kestrel_sdk::health::Health {
        use kestrel_sdk::client::Chain;
        let account = self.margin_account(margin_account).await;
        let clock = self.chain.clock().await;
        let (now, slot) = (clock.unix_timestamp, clock.slot);
        let mut snapshots = Vec::new();
        for market in self.trading_markets.clone() {
            let snapshot = self.market_snapshot(&market).await.expect("snapshot");
            snapshots.push(snapshot.with_fresh_risk_array(now, slot));
        }
        kestrel_sdk::health::preview(&account, &snapshots, now, slot).expect("health preview")
    }

    /// [`kestrel_sdk::health::preview_order`] for `lots` on `side` in
    /// `market`, from the accounts as fetched now.
    pub async fn order_preview(
        &mut self,
        margin_account: &Pubkey,
        market: &ix::MarketAccounts,
        side: kestrel::engine::Side,
        lots: u64,
    ) -> kestrel_sdk::health::Health {
        use kestrel_sdk::client::Chain;
        let account = self.margin_account(margin_account).await;
        let mut snapshots = Vec::new();
        for listed in self.trading_markets.clone() {
            snapshots.push(self.market_snapshot(&listed).await.expect("snapshot"));
        }
        let clock = self.chain.clock().await;
        kestrel_sdk::health::preview_order(
            &account,
            &snapshots,
            market.market_index,
            side,
            lots,
            clock.unix_timestamp,
            clock.slot,
        )
        .expect("order preview")
    }

    pub async fn market_state(&mut self, market: &Pubkey) -> kestrel::state::Market {
        let account = self.chain.account(market).await.expect("market exists");
        decode::market(&account.data).expect("a Kestrel market")
    }

    pub async fn pending_events(&mut self, market: &ix::MarketAccounts) -> usize {
        let queue = self
            .chain
            .account(&market.event_queue)
            .await
            .expect("queue");
        kestrel_sdk::events::pending_events(&queue.data)
            .expect("an event queue")
            .len()
    }

    /// How many times the invariants have been checked (tests assert it grows).
    pub fn invariant_checks(&self) -> usize {
        self.invariant_checks
    }

    fn register_created_market(&mut self, instruction: &Instruction) {
        if instruction.program_id == kestrel::ID
            && (instruction
                .data
                .starts_with(CreateMarketData::DISCRIMINATOR)
                || instruction
                    .data
                    .starts_with(CreateOptionMarketData::DISCRIMINATOR))
        {
            // `accounts::CreateMarket`, looked up by field name.
            let [market, bids, asks, queue] = [0, 1, 2, 3].map(|_| Pubkey::new_unique());
            let probe = kestrel::accounts::CreateMarket {
                admin: Pubkey::new_unique(),
                exchange: Pubkey::new_unique(),
                market,
                bids,
                asks,
                event_queue: queue,
                underlying: Pubkey::new_unique(),
                system_program: Pubkey::new_unique(),
            };
            let key = |named: Pubkey| named_account(&probe, named, instruction);
            self.markets
                .insert((key(market), key(bids), key(asks), key(queue)));
        }
    }

    fn register_created_margin_account(&mut self, instruction: &Instruction) {
        if instruction.program_id == kestrel::ID
            && instruction
                .data
                .starts_with(CreateMarginAccountData::DISCRIMINATOR)
        {
            let margin_account = Pubkey::new_unique();
            let probe = kestrel::accounts::CreateMarginAccount {
                owner: Pubkey::new_unique(),
                exchange: Pubkey::new_unique(),
                margin_account,
                system_program: Pubkey::new_unique(),
            };
            self.margin_accounts
                .insert(named_account(&probe, margin_account, instruction));
        }
    }

    /// The exchange's invariants (kestrel-keeper's audit): the collateral
    /// vault holds exactly Σ collateral + Σ entry quote + quote owed to makers
    /// by uncranked fills + fees accrued; every market's base positions
    /// (uncranked fills included) sum to zero; every reservation matches the
    /// book and queue; every book is a well-formed crit-bit tree.
    /// `exec` runs it after every transaction; tests that send through other
    /// paths (the migrations applier) call it themselves.
    pub async fn check_invariants(&mut self, label: &str) {
        let Some(vault) = self.chain.account(&self.collateral_vault).await else {
            return; // the exchange is not initialised yet
        };
        let mut margin_accounts = Vec::new();
        for address in self.margin_accounts.clone() {
            if let Some(account) = self.chain.account(&address).await {
                if account.owner == kestrel::ID {
                    margin_accounts.push((address, account.data));
                }
            }
        }
        let mut markets = Vec::new();
        for (market, bids, asks, queue) in self.markets.clone() {
            let Some(market) = self.chain.account(&market).await else {
                continue; // refused creation
            };
            let mut data = vec![market.data];
            for key in [bids, asks, queue] {
                data.push(self.chain.account(&key).await.expect("market account").data);
            }
            for book in &data[1..3] {
                let mut words = decode::slab(
                    "BookSide",
                    kestrel::state::BookSideAccount::DISCRIMINATOR,
                    kestrel::state::BOOK_SIDE_BYTES,
                    book,
                )
                .unwrap_or_else(|e| panic!("after {label}: {e}"));
                let side = kestrel::engine::BookSide::load(bytemuck::cast_slice_mut(&mut words))
                    .unwrap_or_else(|e| panic!("after {label}: book side does not load: {e}"));
                side.check_invariants()
                    .unwrap_or_else(|e| panic!("after {label}: malformed book: {e}"));
            }
            let underlying = decode::market(&data[0])
                .map(|m| m.underlying)
                .expect("a Kestrel market");
            let underlying = self
                .chain
                .account(&underlying)
                .await
                .expect("the market's underlying");
            let clock = self.chain.clock().await;
            self.check_fills_in_band(label, &data[0], &underlying.data, &data[3], &clock);
            markets.push(data);
        }
        let report = audit::conservation(
            &vault.data,
            margin_accounts.iter().map(|(k, d)| (*k, d.as_slice())),
            markets.iter().map(|d| audit::MarketData {
                market: &d[0],
                bids: &d[1],
                asks: &d[2],
                event_queue: &d[3],
            }),
        )
        .unwrap_or_else(|e| panic!("after {label}: {e}"));
        assert!(report.holds(), "after {label}: {report}");
        // Insurance shares: the exchange's total is Σ shares of this epoch,
        // requests are part of their accounts' shares, the vault can pay
        // every holder at once (kestrel-keeper's audit).
        if let Some(exchange) = self.chain.account(&self.exchange).await {
            let vault = self
                .chain
                .account(&self.insurance_vault)
                .await
                .expect("the insurance vault");
            let report = audit::insurance(
                &exchange.data,
                &vault.data,
                margin_accounts.iter().map(|(k, d)| (*k, d.as_slice())),
            )
            .unwrap_or_else(|e| panic!("after {label}: {e}"));
            assert!(report.holds(), "after {label}: {report}");
        }
        self.invariant_checks += 1;
    }

    /// Every fill that entered `queue` since the last check lies inside the
    /// band around a price the underlying accepted for it (its price now, or
    /// its last good price, after the transaction that made it): no trade,
    /// and so no realized gain, happens at a price the band would not give.
    /// The market's count of waiting fills matches the queue.
    fn check_fills_in_band(
        &mut self,
        label: &str,
        market: &[u8],
        underlying: &[u8],
        queue: &[u8],
        clock: &solana_sdk::clock::Clock,
    ) {
        use kestrel::engine::event_queue::Event;
        let market_state = decode::market(market).expect("a Kestrel market");
        let underlying = decode::underlying(underlying).expect("a Kestrel underlying");
        let reading = underlying.reading(clock.unix_timestamp, clock.slot);
        let prices: Vec<_> = reading
            .price()
            .ok()
            .into_iter()
            .chain(underlying.last_good_price())
            .collect();
        let events = kestrel_sdk::events::pending_events(queue).expect("an event queue");
        let checked = self
            .fills_checked
            .entry(market_state.event_queue)
            .or_insert(0);
        let mut pending_fills = 0;
        for event in &events {
            let Some(Event::Fill(fill)) = event.decode() else {
                continue;
            };
            pending_fills += 1;
            if fill.seq_num < *checked {
                continue;
            }
            *checked = fill.seq_num + 1;
            assert!(
                !prices.is_empty(),
                "after {label}: a fill with no accepted price"
            );
            // Around the market's mark, as `place_order` bands: the price
            // (plus a future's basis), an option's model value at the
            // current or the recent volatility.
            let now = clock.unix_timestamp;
            let rule = kestrel::portfolio::MarkRule::of(&market_state, now).expect("a mark rule");
            let volatility = &underlying.volatility;
            let terms = [
                kestrel::portfolio::OptionTerms::current(&underlying, now),
                kestrel::portfolio::OptionTerms::of(volatility, volatility.band_volatility(now)),
            ];
            let bands: Vec<_> = prices
                .iter()
                .flat_map(|price| terms.iter().map(move |terms| (*price, terms)))
                .filter_map(|(price, terms)| {
                    let mark = rule.apply(price, terms).ok()?;
                    let ticks = market_state.oracle_ticks(mark)?;
                    market_state.bands(ticks, price).map(|(band, _)| band)
                })
                .collect();
            assert!(
                bands.iter().any(|band| band.contains(fill.price)),
                "after {label}: fill at {:?} outside the bands {bands:?}",
                fill.price
            );
        }
        assert_eq!(
            market_state.pending_fills, pending_fills,
            "after {label}: the market's count of waiting fills"
        );
    }

    /// `liquidate` of `liquidatee` in `market` by `liquidator`'s margin
    /// account, with both accounts' health accounts.
    pub async fn liquidate_ix(
        &mut self,
        liquidator: &User,
        liquidatee: &Pubkey,
        market: &ix::MarketAccounts,
        max_base_lots: u64,
    ) -> Instruction {
        let target = self.margin_account(liquidatee).await;
        let taker = self.margin_account(&liquidator.margin_account).await;
        let health = ix::liquidation_health_accounts(
            &target,
            &taker,
            market.market_index,
            &self.trading_markets,
        );
        ix::liquidate(
            &liquidator.pubkey(),
            &liquidator.margin_account,
            liquidatee,
            market,
            max_base_lots,
            health,
        )
    }

    pub async fn update_funding(&mut self, market: &ix::MarketAccounts) -> TxOutcome {
        self.ok("update_funding", &[ix::update_funding(market)], &[])
            .await
    }

    pub async fn settle_funding(&mut self, market: &ix::MarketAccounts, account: &Pubkey) {
        let settle = ix::settle_funding(&market.market, account);
        self.ok("settle_funding", &[settle], &[]).await;
    }

    /// Stakes `amount` of `user`'s tokens into the insurance fund.
    pub async fn stake(&mut self, user: &User, amount: u64) {
        let stake = ix::stake(
            &user.pubkey(),
            &user.margin_account,
            &user.token_account,
            amount,
        );
        self.ok("stake", &[stake], &[&user.key]).await;
    }

    /// Moves the bank's clock forward by `seconds`.
    pub async fn advance_clock(&mut self, seconds: i64) {
        self.chain.advance_clock(seconds).await;
    }

    async fn snapshot(&mut self, named: &[Pubkey]) -> BTreeMap<Pubkey, Option<Account>> {
        let keys: BTreeSet<Pubkey> = self
            .watched
            .iter()
            .chain(self.margin_accounts.iter())
            .chain(named)
            .copied()
            .collect();
        let mut states = BTreeMap::new();
        for key in keys {
            let mut state = self.chain.account(&key).await;
            // The fee payer, charged even for refused transactions, is never
            // watched; rent_epoch is runtime bookkeeping, not account state.
            if let Some(account) = state.as_mut() {
                account.rent_epoch = 0;
            }
            states.insert(key, state);
        }
        states
    }
}

/// The account `instruction` names where `probe` (its `accounts::*` struct
/// with unique keys) names `field`: accounts looked up by field name, not
/// by a position that could drift.
pub fn named_account(
    probe: &impl anchor_lang::ToAccountMetas,
    field: Pubkey,
    instruction: &Instruction,
) -> Pubkey {
    let index = probe
        .to_account_metas(None)
        .iter()
        .position(|meta| meta.pubkey == field)
        .expect("the probe names the field");
    instruction.accounts[index].pubkey
}

/// Instructions with the given account turned into a non-signer, to prove the
/// program, not the runtime, refuses the missing signature.
pub fn without_signer(mut instruction: Instruction, signer: &Pubkey) -> Instruction {
    for meta in instruction
        .accounts
        .iter_mut()
        .filter(|m| m.pubkey == *signer)
    {
        meta.is_signer = false;
    }
    instruction
}

/// What re-initialising an existing account fails with on this runtime: Anchor
/// 1.2's `init` asks the system program for `CreateAccountAllowPrefund` once an
/// address holds lamports, an instruction Agave 3.1 does not know yet.
pub const REINIT_REFUSAL: InstructionError = InstructionError::InvalidInstructionData;

/// What [`Harness::create_market`] lists: the market's parameters and its
/// underlying's oracle configuration. Derefs to the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketSetup {
    pub params: kestrel::state::MarketParams,
    pub oracle: kestrel::state::OracleConfig,
}

impl std::ops::Deref for MarketSetup {
    type Target = kestrel::state::MarketParams;
    fn deref(&self) -> &Self::Target {
        &self.params
    }
}

impl std::ops::DerefMut for MarketSetup {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.params
    }
}

/// Market parameters, on an underlying with a Pyth primary and a
/// Switchboard fallback.
pub fn market_params(switchboard_feed: &Pubkey) -> MarketSetup {
    MarketSetup {
        params: perp_params(),
        oracle: oracle_config(switchboard_feed),
    }
}

/// The portfolio-margin grid tests use: a 15 % scan range, volatility
/// ±25 %, extreme moves of three scan ranges counted at 35 %, maintenance
/// at 80 % of the worst loss; an option's risk array holds while spot and
/// volatility stay within 1 % for 10 minutes.
pub fn scenario_grid() -> kestrel::state::ScenarioConfig {
    kestrel::state::ScenarioConfig {
        scan_range_bps: 1_500,
        volatility_shift_bps: 2_500,
        extreme_move_bps: 30_000,
        extreme_cover_bps: 3_500,
        linear_floor_bps: 50,
        basis_bps: 20,
        short_option_bps: 50,
        confidence_bps: 10,
        maintenance_factor_bps: 8_000,
        array_tolerance_bps: 100,
        array_max_age_seconds: 600,
        version: 0,
    }
}

/// An option series tests use: `side` struck at `strike` whole USDC per
/// SOL, at the underlying's at-the-money volatility (term 100 %, no skew),
/// its bands widened by 0.5 % of the spot.
pub fn option_series(
    side: kestrel::engine::black_scholes::OptionSide,
    strike: f64,
) -> kestrel::state::OptionParams {
    kestrel::state::OptionParams {
        strike: kestrel::engine::funding::to_parts(fixed::types::I80F48::from_num(strike) / 1_000),
        volatility_term_bps: 10_000,
        volatility_skew_bps: 0,
        band_spot_bps: 50,
        side: side as u8,
        padding: [0; 3],
    }
}

/// The perpetual market parameters tests use.
pub fn perp_params() -> kestrel::state::MarketParams {
    kestrel::state::MarketParams {
        initial_margin_bps: 1_000,
        maintenance_margin_bps: 500,
        maker_fee_bps: -2,
        taker_fee_bps: 5,
        price_band_bps: 400,
        resting_band_bps: 5_000,
        max_fills_per_order: 32,
        crank_reward_native: 100,
        funding_cap_bps: 50,
        funding_period_seconds: 3_600,
        liquidation_fee_bps: 250,
        liquidation_insurance_share_bps: 4_000,
    }
}

/// Option terms tests use: `feed` for the at-the-money volatility (within
/// 5 %–500 %, an hour old at most), rate 0, Deribit's short margin (15 % /
/// 10 % initial, 10 % / 5 % maintenance).
pub fn option_config(feed: &Pubkey) -> kestrel::state::OptionConfig {
    kestrel::state::OptionConfig {
        volatility_feed: feed.to_bytes(),
        max_age_seconds: 3_600,
        min_volatility_bps: 500,
        max_volatility_bps: 50_000,
        rate_bps: 0,
        initial_a_bps: 1_500,
        initial_b_bps: 1_000,
        maintenance_a_bps: 1_000,
        maintenance_b_bps: 500,
    }
}

/// A Pyth primary ([`PYTH_FEED`]) and a Switchboard fallback.
pub fn oracle_config(switchboard_feed: &Pubkey) -> kestrel::state::OracleConfig {
    use kestrel::state::{OracleConfig, OracleKind};
    OracleConfig {
        primary_kind: OracleKind::Pyth,
        primary_feed: PYTH_FEED,
        fallback_kind: OracleKind::Switchboard,
        fallback_feed: switchboard_feed.to_bytes(),
        max_age_seconds: 60,
        max_age_slots: 0,
        max_confidence_bps: 200,
        max_deviation_bps: 300,
        primary_account: [0; 32],
        fallback_account: [0; 32],
    }
}

/// `create_underlying` arguments for a SOL-like asset (9 decimals).
pub fn underlying_args(
    underlying_index: u16,
    oracle: kestrel::state::OracleConfig,
) -> kestrel::instructions::CreateUnderlyingArgs {
    let mut name = [0u8; 16];
    name[..3].copy_from_slice(b"SOL");
    kestrel::instructions::CreateUnderlyingArgs {
        underlying_index,
        name,
        base_decimals: 9,
        oracle,
    }
}

/// `create_market` arguments for a SOL-like market.
pub fn market_args(
    market_index: u16,
    params: kestrel::state::MarketParams,
) -> kestrel::instructions::CreateMarketArgs {
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"SOL-PERP");
    kestrel::instructions::CreateMarketArgs {
        market_index,
        name,
        base_lot_size: 10_000_000,
        quote_lot_size: 100,
        params,
    }
}

/// Order arguments with the defaults tests use: client id 0, not
/// reduce-only, no expiry, decrement-take self-trade prevention.
pub fn order(
    side: kestrel::instructions::OrderSide,
    order_type: kestrel::instructions::OrderType,
    price: u64,
    quantity: u64,
) -> kestrel::instructions::PlaceOrderArgs {
    kestrel::instructions::PlaceOrderArgs {
        side,
        order_type,
        price,
        quantity,
        client_order_id: 0,
        reduce_only: false,
        expiry: 0,
        self_trade: kestrel::instructions::SelfTradeBehavior::DecrementTake,
    }
}

/// The harness is a [`Chain`](kestrel_sdk::client::Chain) too: the keeper's
/// crankers, the migrations applier and the SDK's lookup-table steps run on
/// it, and every transaction they send is followed by the invariant checks
/// [`Harness::exec`] runs.
impl kestrel_sdk::client::Chain for Harness {
    fn fee_payer(&self) -> Pubkey {
        self.chain.fee_payer()
    }

    async fn fetch_accounts(
        &mut self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<Account>>, kestrel_sdk::client::ChainError> {
        self.chain.fetch_accounts(addresses).await
    }

    async fn scan_program_accounts(
        &mut self,
        filter: kestrel_sdk::client::AccountFilter,
    ) -> Result<Vec<(Pubkey, Account)>, kestrel_sdk::client::ChainError> {
        self.chain.scan_program_accounts(filter).await
    }

    async fn submit_with_tables(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[kestrel_sdk::lookup_table::AddressLookupTableAccount],
    ) -> Result<kestrel_sdk::client::Sent, kestrel_sdk::client::SendError> {
        let sent = self
            .chain
            .submit_with_tables(instructions, signers, tables)
            .await;
        let label = match tables.is_empty() {
            true => "a legacy transaction through Chain",
            false => "a v0 transaction through Chain",
        };
        if let Ok(kestrel_sdk::client::Sent {
            compute_units: Some(cu),
            ..
        }) = &sent
        {
            println!("[cu] {label}: {cu}");
        }
        self.check_invariants(label).await;
        sent
    }

    async fn wait_past_slot(&mut self, slot: u64) -> Result<(), kestrel_sdk::client::ChainError> {
        self.chain.wait_past_slot(slot).await
    }

    async fn clock(
        &mut self,
    ) -> Result<kestrel_sdk::client::ChainClock, kestrel_sdk::client::ChainError> {
        kestrel_sdk::client::Chain::clock(&mut self.chain).await
    }

    async fn rent_exempt_minimum(
        &mut self,
        data_len: usize,
    ) -> Result<u64, kestrel_sdk::client::ChainError> {
        self.chain.rent_exempt_minimum(data_len).await
    }
}
