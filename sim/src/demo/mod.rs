//! `kestrel-sim demo`: the whole exchange on an in-process chain.
//! Three traders deposit and withdraw, the admin pauses and unpauses
//! withdrawals, alice and bob trade SOL-PERP, the crank settles the maker and
//! the fees are swept; the program refuses what it must. Then ([`risk`]) alice
//! stakes in the insurance fund, dave opens a 10x long, the book quotes above
//! the oracle so longs pay funding, and the oracle falls until dave is
//! liquidatable, with the keeper's crankers cycling after every step (the
//! first of them refreshes the underlying, whose stored price trading,
//! liquidation and funding read). The report of that story ends with the
//! vault reconciled against every margin account and market. Then
//! ([`future`]) alice and bob trade the dated future SOL-FUT the same
//! migrations listed, the clock runs through its settlement window (the
//! keeper refreshes SOL every minute, but is down five minutes on
//! purpose, which the average then does not cover), the future
//! expires and the keeper settles it in cash; its own section reports the
//! settlement and reconciles the vault again. Last ([`options`]), erin
//! makes a market in the week's option series SOL-W1 around the program's
//! model value, bob buys a call spread and a put from her, SOL rallies,
//! and at expiry the keeper settles the series at its intrinsic values;
//! that section reports the chain, both traders' greeks and PnL and the
//! settlement, and reconciles the vault a third time.
mod future;
mod options;
mod risk;

use std::fmt::Write as _;

use kestrel::state::PauseFlags;
use kestrel_keeper::audit;
use kestrel_sdk::client::Chain;
use kestrel_sdk::{decode, errors, ix, pda, Pubkey};
use solana_sdk::instruction::{Instruction, InstructionError};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::TransactionError;

use crate::chain::{LocalChain, ProgramMode};
use crate::fixtures;

const DECIMALS: u8 = 6;
const UNIT: u64 = 10u64.pow(DECIMALS as u32);
const STEPS: usize = 14 + future::STEPS + options::STEPS;
/// The exchange and markets the demo sets up, applied as migrations.
pub const MARKETS_TOML: &str = include_str!("../../../migrations/markets.toml");

struct Trader {
    name: &'static str,
    key: Keypair,
    wallet: Pubkey,
    margin_account: Pubkey,
}

/// What the demo ends with; `conservation_held` is the headline.
pub struct Report {
    pub text: String,
    /// The vault reconciled at the end of the perpetual's story and again
    /// after the future settled.
    pub conservation_held: bool,
    /// The keeper's liquidations, as `name: before -> after lots in market N`.
    pub liquidations: Vec<String>,
    pub funding_updates: u64,
    /// The keeper's `refresh_underlying` transactions.
    pub underlying_refreshes: u64,
    pub refusals: Vec<String>,
    /// Steps the first and the second application of the migrations took.
    pub migration_steps: [usize; 2],
    /// The dated future's story.
    pub future: future::FutureReport,
    /// The option series' story.
    pub options: options::OptionsReport,
}

/// `1234500000` native units -> `"1,234.500000"`.
pub fn format_units(native: i128) -> String {
    let sign = if native < 0 { "-" } else { "" };
    let magnitude = native.unsigned_abs();
    let whole = (magnitude / UNIT as u128).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}.{:06}", magnitude % UNIT as u128)
}

struct Demo {
    chain: LocalChain,
    config: kestrel_migrations::Config,
    mint: Pubkey,
    mint_authority: Keypair,
    keeper: risk::KeeperTally,
    migration_steps: [usize; 2],
    traders: Vec<Trader>,
    vault: Pubkey,
    /// SOL-PERP.
    market: Option<ix::MarketAccounts>,
    /// SOL-FUT, the dated future on the same underlying.
    future: Option<ix::MarketAccounts>,
    /// SOL-W1's calls and puts, once their part starts.
    options: Vec<ix::MarketAccounts>,
    refusals: Vec<String>,
    step: usize,
}

impl Demo {
    fn progress(&mut self, what: &str) {
        self.step += 1;
        println!("[{}/{STEPS}] {what}", self.step);
    }

    async fn expect_ok(&mut self, what: &str, instruction: Instruction, signer: &Keypair) {
        self.expect_all_ok(what, &[instruction], signer).await;
    }

    /// Sends `instructions` in one transaction, which must land.
    async fn expect_all_ok(&mut self, what: &str, instructions: &[Instruction], signer: &Keypair) {
        let outcome = self.chain.send(instructions, &[signer]).await;
        if let Err(err) = outcome.result {
            panic!(
                "demo step `{what}` failed: {err:?}\n{}",
                outcome.logs.join("\n")
            );
        }
    }

    /// Sends an instruction the program must refuse; records the named error.
    async fn expect_refused(&mut self, what: &str, instruction: Instruction, signer: &Keypair) {
        self.expect_all_refused(what, &[instruction], signer).await;
    }

    /// Sends `instructions` in one transaction the program must refuse;
    /// records the named error.
    async fn expect_all_refused(
        &mut self,
        what: &str,
        instructions: &[Instruction],
        signer: &Keypair,
    ) {
        let outcome = self.chain.send(instructions, &[signer]).await;
        let name = match outcome.result {
            Err(TransactionError::InstructionError(_, InstructionError::Custom(code))) => {
                errors::error_name(code)
            }
            other => {
                panic!("demo step `{what}` should have been refused by the program: {other:?}")
            }
        };
        println!("      {what}: refused with {name}");
        self.refusals.push(format!("{what}: {name}"));
    }
}

pub async fn run(mode: ProgramMode) -> Report {
    let program = match mode {
        ProgramMode::Native => "native build",
        ProgramMode::Sbf => "SBF .so",
    };
    println!("Kestrel demo: exchange, market, trading, funding, liquidation and the keeper on an in-process chain ({program})");
    let mut chain = LocalChain::start(mode).await;
    let now = chain.clock().await.unix_timestamp;
    chain.silence_native_program_output();
    // The deployer (upgrade authority) administers the exchange.
    let admin = chain.deployer().insecure_clone();
    let program_data = chain.program_data();
    let mint_authority = Keypair::new();
    let mint = chain.create_mint(&mint_authority.pubkey(), DECIMALS).await;
    let exchange = pda::exchange();
    let mut config =
        kestrel_migrations::Config::parse(MARKETS_TOML).expect("migrations/markets.toml is valid");
    let mut demo = Demo {
        chain,
        config: config.clone(),
        mint,
        mint_authority: mint_authority.insecure_clone(),
        keeper: risk::KeeperTally::default(),
        traders: Vec::new(),
        vault: pda::collateral_vault(&exchange),
        market: None,
        future: None,
        options: Vec::new(),
        refusals: Vec::new(),
        step: 0,
        migration_steps: [0; 2],
    };

    demo.expect_ok(
        "init_exchange",
        ix::init_exchange(&admin.pubkey(), &mint, program_data),
        &admin,
    )
    .await;
    demo.progress("exchange initialised with a 6-decimal collateral mint (USDC-like)");
    println!("      exchange {exchange}\n      vault    {}", demo.vault);

    // Markets come from migrations/markets.toml; its oracle accounts are
    // fixtures on this chain. The second application must find nothing to do.
    write_oracle_fixtures(&mut demo.chain, &config, now);
    for round in 0..2 {
        let steps = kestrel_migrations::apply(&mut demo.chain, &admin, &mut config)
            .await
            .unwrap_or_else(|e| panic!("applying migrations/markets.toml: {e}"));
        demo.migration_steps[round] = steps.len();
        if round == 0 {
            demo.progress("markets from migrations/markets.toml");
            for step in &steps {
                println!("      {step}");
            }
        } else {
            println!("      applied again: {} steps", steps.len());
        }
    }
    // With the lookup table the first application created and recorded.
    demo.config = config.clone();

    for name in ["alice", "bob", "carol"] {
        let key = Keypair::new();
        demo.chain.fund(&key.pubkey(), 1_000_000_000).await;
        let wallet = demo.chain.create_token_account(&mint, &key.pubkey()).await;
        demo.chain
            .mint_to(&mint, &mint_authority, &wallet, 10_000 * UNIT)
            .await;
        demo.expect_ok(
            "create_margin_account",
            ix::create_margin_account(&key.pubkey(), 0, None),
            &key,
        )
        .await;
        let margin_account = pda::margin_account(&exchange, &key.pubkey(), 0);
        demo.traders.push(Trader {
            name,
            key,
            wallet,
            margin_account,
        });
    }
    demo.progress("alice, bob and carol hold 10,000 each and open margin accounts");

    for (i, amount) in [5_000 * UNIT, 2_500 * UNIT, 7_500 * UNIT]
        .into_iter()
        .enumerate()
    {
        let t = &demo.traders[i];
        let (key, deposit) = (
            t.key.insecure_clone(),
            ix::deposit(&t.key.pubkey(), &t.margin_account, &t.wallet, amount),
        );
        demo.expect_ok("deposit", deposit, &key).await;
    }
    demo.progress("deposits: alice 5,000, bob 2,500, carol 7,500");

    let (alice, bob) = (&demo.traders[0], &demo.traders[1]);
    let alice_withdraw = ix::withdraw(
        &alice.key.pubkey(),
        &alice.margin_account,
        &alice.wallet,
        1_200 * UNIT,
    );
    let bob_overdraw = ix::withdraw(
        &bob.key.pubkey(),
        &bob.margin_account,
        &bob.wallet,
        3_000 * UNIT,
    );
    let (alice_key, bob_key) = (alice.key.insecure_clone(), bob.key.insecure_clone());
    demo.expect_ok("withdraw", alice_withdraw, &alice_key).await;
    demo.progress("alice withdraws 1,200; bob asks for 3,000 of his 2,500");
    demo.expect_refused("bob withdraws 3,000", bob_overdraw, &bob_key)
        .await;
    let steal = ix::withdraw(
        &bob_key.pubkey(),
        &demo.traders[0].margin_account,
        &demo.traders[1].wallet,
        UNIT,
    );
    demo.expect_refused("bob withdraws from alice's account", steal, &bob_key)
        .await;

    demo.expect_ok(
        "set_pause",
        ix::set_pause(&admin.pubkey(), PauseFlags::WITHDRAW),
        &admin,
    )
    .await;
    demo.progress("admin pauses withdrawals, then unpauses them");
    let carol = &demo.traders[2];
    let carol_key = carol.key.insecure_clone();
    let carol_out = ix::withdraw(
        &carol_key.pubkey(),
        &carol.margin_account,
        &carol.wallet,
        7_500 * UNIT,
    );
    let carol_close = ix::close_margin_account(&carol_key.pubkey(), &carol.margin_account);
    demo.expect_refused(
        "carol withdraws while paused",
        carol_out.clone(),
        &carol_key,
    )
    .await;
    demo.expect_ok("set_pause", ix::set_pause(&admin.pubkey(), 0), &admin)
        .await;

    demo.expect_ok("withdraw", carol_out, &carol_key).await;
    demo.expect_ok("close_margin_account", carol_close, &carol_key)
        .await;
    demo.progress("carol withdraws everything and closes her margin account");

    trade(&mut demo, &config).await;
    let keeper = risk::run(&mut demo).await;
    // The perpetual's story as it ends; then the future's, with its own tally.
    let mut report = report(&mut demo).await;
    demo.keeper = risk::KeeperTally::default();
    let future = future::run(&mut demo, &keeper).await;
    report.text.push_str(&future.text);
    report.conservation_held &= future.conservation_held;
    report.future = future;
    demo.keeper = risk::KeeperTally::default();
    let options = options::run(&mut demo).await;
    report.text.push_str(&options.text);
    report.conservation_held &= options.conservation_held;
    report.options = options;
    report
}

impl Demo {
    /// Every market the demo trades, as the keeper is configured with them.
    fn markets(&self) -> Vec<ix::MarketAccounts> {
        self.market
            .into_iter()
            .chain(self.future)
            .chain(self.options.iter().copied())
            .collect()
    }

    /// The vault audited against every margin account of the demo's traders
    /// and every market.
    async fn audit(&mut self) -> audit::Conservation {
        let vault = self
            .chain
            .account(&self.vault)
            .await
            .expect("the vault exists");
        let mut margin_accounts = Vec::new();
        let keys: Vec<Pubkey> = self.traders.iter().map(|t| t.margin_account).collect();
        for key in keys {
            if let Some(account) = self.chain.account(&key).await {
                margin_accounts.push((key, account.data));
            }
        }
        let mut market_data = Vec::new();
        for market in self.markets() {
            for key in [market.market, market.bids, market.asks, market.event_queue] {
                market_data.push(self.chain.account(&key).await.expect("market account").data);
            }
        }
        let markets = market_data.chunks(4).map(|d| audit::MarketData {
            market: &d[0],
            bids: &d[1],
            asks: &d[2],
            event_queue: &d[3],
        });
        audit::conservation(
            &vault.data,
            margin_accounts.iter().map(|(k, d)| (*k, d.as_slice())),
            markets,
        )
        .expect("the vault, margin accounts and markets decode")
    }
}

/// Alice quotes SOL-PERP, bob takes part of it, an over-leveraged order is
/// refused, the crank settles alice and the fees are swept.
async fn trade(demo: &mut Demo, config: &kestrel_migrations::Config) {
    use kestrel::instructions::{OrderSide, OrderType, PlaceOrderArgs, SelfTradeBehavior};
    let entry = &config.markets[0];
    let address = pda::market(&pda::exchange(), entry.index);
    let underlying = config.underlying_of(entry).expect("validated");
    let (primary_oracle, fallback_oracle) = underlying.oracle_accounts().expect("validated");
    let market = demo
        .chain
        .market_accounts(entry.index, primary_oracle, fallback_oracle)
        .await
        .expect("market 0 and its underlying exist");
    assert_eq!(market.underlying.underlying, underlying.address());
    demo.market = Some(market);
    let future = config
        .markets
        .iter()
        .find(|m| m.kind == "future")
        .expect("migrations/markets.toml lists a dated future");
    let accounts = demo
        .chain
        .market_accounts(future.index, primary_oracle, fallback_oracle)
        .await
        .expect("the future exists");
    demo.future = Some(accounts);
    // 150.00 USDC per SOL is 15,000 ticks; a base lot is 0.01 SOL.
    let order = |side, order_type, price, quantity| PlaceOrderArgs {
        side,
        order_type,
        price,
        quantity,
        client_order_id: 1,
        reduce_only: false,
        expiry: 0,
        self_trade: SelfTradeBehavior::DecrementTake,
    };
    let (alice, bob) = (&demo.traders[0], &demo.traders[1]);
    let (alice_key, bob_key) = (alice.key.insecure_clone(), bob.key.insecure_clone());
    let quote = ix::place_order(
        &alice_key.pubkey(),
        &alice.margin_account,
        &market,
        order(OrderSide::Ask, OrderType::PostOnly, 15_000, 200),
        vec![],
    );
    let take = ix::place_order(
        &bob_key.pubkey(),
        &bob.margin_account,
        &market,
        order(OrderSide::Bid, OrderType::ImmediateOrCancel, 15_100, 100),
        vec![],
    );
    // 200 SOL is 30,000 USDC of exposure: 3,000 of initial margin, bob has 2,500.
    let greedy = ix::place_order(
        &bob_key.pubkey(),
        &bob.margin_account,
        &market,
        order(OrderSide::Bid, OrderType::PostOnly, 14_900, 20_000),
        vec![],
    );
    demo.expect_ok("alice quotes", quote, &alice_key).await;
    demo.expect_ok("bob takes", take, &bob_key).await;
    demo.progress("alice asks 2 SOL at 150.00; bob buys 1 SOL of it (5 bps taker fee)");
    demo.expect_refused("bob bids for 200 SOL", greedy, &bob_key)
        .await;

    let crank = ix::consume_events(
        &market,
        &[demo.traders[0].margin_account],
        Some(demo.traders[1].margin_account),
        8,
    );
    demo.keeper.fills_before = demo.pending_fills().await;
    // Cranks are permissionless: the chain's fee payer sends them.
    let keeper = demo.chain.payer().insecure_clone();
    demo.expect_ok("consume_events", crank, &keeper).await;
    demo.expect_ok("sweep_fees", ix::sweep_fees(&address), &keeper)
        .await;
    demo.progress(
        "the crank settles alice (2 bps rebate), bob's account takes the crank reward; fees swept",
    );
}

/// Pyth and Switchboard accounts at 150 quote per base where `config` says
/// the underlyings read their feeds, published at unix time `now`.
pub fn write_oracle_fixtures(
    chain: &mut LocalChain,
    config: &kestrel_migrations::Config,
    now: i64,
) {
    publish_oracle_price(chain, config, now, 150);
}

/// Both feeds of every underlying at `price` whole quote per base, published
/// at `now`. The markets see it once the underlying is refreshed
/// (`refresh_underlying`: the keeper's first crank every cycle).
pub fn publish_oracle_price(
    chain: &mut LocalChain,
    config: &kestrel_migrations::Config,
    now: i64,
    price: i64,
) {
    use kestrel::state::OracleKind;
    for underlying in &config.underlyings {
        let oracle = underlying.oracle_config().expect("validated");
        let (primary, fallback) = underlying.oracle_accounts().expect("validated");
        let feeds = [
            (oracle.primary_kind, oracle.primary_feed, Some(primary)),
            (oracle.fallback_kind, oracle.fallback_feed, fallback),
        ];
        for (kind, feed, account) in feeds {
            let fixture = match kind {
                OracleKind::Pyth => {
                    fixtures::pyth_update(feed, price * 100_000_000, 1_000_000, -8, now, now as u64)
                }
                OracleKind::Switchboard => fixtures::switchboard_feed(
                    i128::from(price) * 10i128.pow(18),
                    10i128.pow(16),
                    now,
                    now as u64,
                ),
                OracleKind::None => continue,
            };
            chain.set_account(&account.expect("a configured feed has an account"), fixture);
        }
        // Its options' implied volatility: 80 %, published with the price.
        if let Some(options) = &underlying.options {
            let feed = options.option_config().expect("validated").volatility_feed;
            chain.set_account(
                &kestrel_sdk::Pubkey::new_from_array(feed),
                fixtures::switchboard_feed(8 * 10i128.pow(17), 0, now, now as u64),
            );
        }
    }
}

/// The perpetual's story as it ends (the future listed, not yet traded).
async fn report(demo: &mut Demo) -> Report {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\nBalances after the perpetual's story (collateral units)"
    );
    let _ = writeln!(
        text,
        "  {:<8} {:>16} {:>20}",
        "trader", "wallet", "margin collateral"
    );
    let trader_keys: Vec<(&'static str, Pubkey, Pubkey)> = demo
        .traders
        .iter()
        .map(|t| (t.name, t.wallet, t.margin_account))
        .collect();
    let mut positions = String::new();
    // Funding on open positions; a closed one settled its share into collateral.
    let (mut funding_paid_by_longs, mut funding_received_by_shorts): (i128, i128) = (0, 0);
    for (name, wallet, margin_account) in trader_keys {
        let wallet = demo.chain.token_balance(&wallet).await;
        let collateral = match demo.chain.account(&margin_account).await {
            Some(account) => {
                let state =
                    decode::margin_account(&account.data).expect("a Kestrel margin account");
                for (_, p) in state.active_positions() {
                    let _ = writeln!(
                        positions,
                        "  {name:<8} market {}: {:+} lots (0.01 SOL), entry quote {}, realized {}, fees {}, funding paid {}",
                        p.market_index,
                        p.base_lots,
                        format_units(p.quote_native.into()),
                        format_units(p.realized_pnl_native.into()),
                        format_units(p.fees_paid_native.into()),
                        format_units(p.funding_paid_native.into()),
                    );
                    funding_paid_by_longs += i128::from(p.funding_paid_native.max(0));
                    funding_received_by_shorts -= i128::from(p.funding_paid_native.min(0));
                }
                format_units(state.collateral.into())
            }
            None => "(closed)".to_string(),
        };
        let _ = writeln!(
            text,
            "  {name:<8} {:>16} {collateral:>20}",
            format_units(wallet.into())
        );
    }
    let audit = demo.audit().await;
    let fee_vault = demo
        .chain
        .token_balance(&pda::fee_vault(&pda::exchange()))
        .await;
    let _ = writeln!(
        text,
        "\nPositions\n{positions}Fee vault {}",
        format_units(fee_vault.into())
    );
    let insurance = demo
        .chain
        .token_balance(&pda::insurance_vault(&pda::exchange()))
        .await;
    let k = &demo.keeper;
    let _ = writeln!(
        text,
        "\nTrades     {} fills ({} cranked before the keeper ran, {} by the keeper)",
        k.fills_before + k.fills_seen,
        k.fills_before,
        k.fills_seen
    );
    let _ = writeln!(
        text,
        "Fees       {} swept to the fee vault, {} accrued in the market",
        format_units(fee_vault.into()),
        format_units(audit.fees_owed)
    );
    let _ = writeln!(
        text,
        "Funding    {} received by open shorts, {} paid by open longs (closed positions settled theirs); {} updates by the keeper",
        format_units(funding_received_by_shorts),
        format_units(funding_paid_by_longs),
        k.funding_updates
    );
    let _ = writeln!(text, "Liquidations {}", k.liquidations.len());
    for l in &k.liquidations {
        let _ = writeln!(text, "  {l}");
    }
    let _ = writeln!(text, "Unwinds    {}", k.unwinds.len());
    for u in &k.unwinds {
        let _ = writeln!(text, "  keeper: {u}");
    }
    let _ = writeln!(
        text,
        "Insurance  {} in the fund (500 staked by alice + its share of liquidation fees)",
        format_units(insurance.into())
    );
    let _ = writeln!(
        text,
        "Keeper     {} cycles, {} events consumed, {} races, {} refusals, {} bankruptcies, {} underlying refreshes",
        k.cycles,
        k.events_consumed,
        k.races,
        k.failures.len(),
        k.bankruptcies,
        k.underlying_refreshes
    );
    let held = audit.holds() && k.failures.is_empty();
    write_reconciliation(&mut text, &audit, held);
    let _ = writeln!(text, "Refused as expected: {}", demo.refusals.len());
    Report {
        text,
        conservation_held: held,
        liquidations: demo.keeper.liquidations.clone(),
        funding_updates: demo.keeper.funding_updates,
        underlying_refreshes: demo.keeper.underlying_refreshes,
        refusals: demo.refusals.clone(),
        migration_steps: demo.migration_steps,
        future: future::FutureReport::default(),
        options: options::OptionsReport::default(),
    }
}

/// The vault's equation and the base positions' sum, as audited.
fn write_reconciliation(text: &mut String, audit: &audit::Conservation, held: bool) {
    let _ = writeln!(
        text,
        "\nVault {} = collateral {} + entry quote {} + owed to makers {} + fees owed {} + funding balance {}: conservation {}",
        format_units(audit.vault_balance.into()),
        format_units(audit.total_collateral),
        format_units(audit.entry_quote),
        format_units(audit.pending_maker_quote),
        format_units(audit.fees_owed),
        format_units(audit.funding_balance),
        if held { "HELD" } else { "BROKEN" }
    );
    let _ = writeln!(
        text,
        "Base positions net to {} lots; every order and reservation matches the book",
        audit
            .base_imbalances
            .first()
            .map_or(0, |(_, imbalance)| *imbalance)
    );
}

#[cfg(test)]
mod tests {
    use super::format_units;

    #[test]
    fn formats_native_units_with_grouping() {
        assert_eq!(format_units(0), "0.000000");
        assert_eq!(format_units(1), "0.000001");
        assert_eq!(format_units(1_234_500_000), "1,234.500000");
        assert_eq!(format_units(-7_500_000_000), "-7,500.000000");
        assert_eq!(format_units(123_456_789_000_000), "123,456,789.000000");
    }
}
