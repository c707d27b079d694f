//! An in-process chain (solana-program-test's bank) with the real SPL Token
//! program and Kestrel, either compiled in natively or loaded from the SBF `.so`.
use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anchor_lang::prelude::{AccountInfo, Pubkey};
use anchor_lang::solana_program::entrypoint::ProgramResult;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use kestrel_sdk::client::{AccountFilter, Chain, ChainClock, ChainError, SendError, Sent};
use kestrel_sdk::lookup_table::AddressLookupTableAccount;
use kestrel_sdk::rpc::{compute_unit_limit, MAX_TRANSACTION_COMPUTE_UNITS};
use kestrel_sdk::tx::{self, Budget};
use solana_program_test::{processor, ProgramTest, ProgramTestContext};
use solana_sdk::account::Account;
use solana_sdk::instruction::Instruction;
use solana_sdk::message::VersionedMessage;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::TransactionError;

/// How the Kestrel program runs on the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramMode {
    /// Compiled into the test binary; fast to build, no compute-unit metering.
    Native,
    /// The real `kestrel.so` under the SBF VM, with compute units metered.
    Sbf,
}

impl ProgramMode {
    /// `KESTREL_PROGRAM=sbf` selects the `.so`; unset or `native` the native build.
    pub fn from_env() -> Self {
        match std::env::var("KESTREL_PROGRAM").as_deref() {
            Ok("sbf") => Self::Sbf,
            Ok("native") | Err(_) => Self::Native,
            Ok(other) => panic!("KESTREL_PROGRAM={other}: expected `native` or `sbf`"),
        }
    }
}

/// Where `kestrel.so` is looked for: `SBF_OUT_DIR` or `BPF_OUT_DIR` if set,
/// else `$CARGO_TARGET_DIR/deploy`, else the workspace's `target/deploy`, which is
/// where both `cargo build-sbf` (`anchor build`) and ../shared/sbf/build.sh write it.
pub fn program_so_dir() -> PathBuf {
    for var in ["SBF_OUT_DIR", "BPF_OUT_DIR"] {
        if let Ok(dir) = std::env::var(var) {
            return PathBuf::from(dir);
        }
    }
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("deploy");
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/deploy"))
}

/// Set by [`LocalChain::silence_native_program_output`].
static SILENCE_NATIVE_PROGRAM: AtomicBool = AtomicBool::new(false);

/// The program's dispatch (as Anchor 1.2's `entry`) ties one lifetime to all three arguments, which the
/// runtime's builtin signature cannot promise; the references only need to
/// outlive this call, which they do.
fn native_entry<'a, 'b, 'c, 'd>(
    program_id: &'a Pubkey,
    accounts: &'b [AccountInfo<'c>],
    data: &'d [u8],
) -> ProgramResult {
    // SAFETY: lifetimes are only widened for the duration of this call;
    // the dispatch returns no reference derived from its arguments.
    let (program_id, accounts, data): (&'c Pubkey, &'c [AccountInfo<'c>], &'c [u8]) =
        unsafe { std::mem::transmute((program_id, accounts, data)) };
    let _silenced = SILENCE_NATIVE_PROGRAM
        .load(Ordering::Relaxed)
        .then(StdoutSilenced::new);
    kestrel::entrypoint::process_instruction(program_id, accounts, data)
}

/// Natively, solana-msg's host fallback `println!`s every `msg!` instead of
/// writing the transaction log; while one of these lives, stdout goes to
/// /dev/null. Only the program prints while it runs: the caller is awaiting it.
struct StdoutSilenced {
    saved_stdout: libc::c_int,
}

impl StdoutSilenced {
    fn new() -> Option<Self> {
        let _ = std::io::stdout().flush();
        // SAFETY: plain fd calls; every failure leaves stdout as it was.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null < 0 {
                return None;
            }
            let saved_stdout = libc::dup(libc::STDOUT_FILENO);
            let redirected = saved_stdout >= 0 && libc::dup2(null, libc::STDOUT_FILENO) >= 0;
            libc::close(null);
            if !redirected {
                if saved_stdout >= 0 {
                    libc::close(saved_stdout);
                }
                return None;
            }
            Some(Self { saved_stdout })
        }
    }
}

impl Drop for StdoutSilenced {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: restores the descriptor saved in `new`.
        unsafe {
            libc::dup2(self.saved_stdout, libc::STDOUT_FILENO);
            libc::close(self.saved_stdout);
        }
    }
}

const DEPLOYER_LAMPORTS: u64 = 100_000_000_000;

/// The unix time every local chain starts at (2026-12-02 00:00 UTC), instead
/// of the wall clock the bank's genesis takes: where a run falls against the
/// minute and hour checkpoints changes the work a refresh does, so a
/// wall-clock start made compute-unit figures differ from run to run.
pub const GENESIS_UNIX_TIME: i64 = 1_796_169_600;

/// Lays Kestrel out as `solana program deploy` would: a program account
/// pointing at a ProgramData account that holds the ELF and `authority`.
/// (Upgradeable-loader state is bincode: a u32 variant tag, then the fields.)
fn deploy_upgradeable(program_test: &mut ProgramTest, elf: &[u8], authority: &Pubkey) {
    let loader = anchor_lang::solana_program::bpf_loader_upgradeable::ID;
    let program_data = kestrel_sdk::pda::program_data();
    let rent = solana_sdk::rent::Rent::default();

    let mut program = 2u32.to_le_bytes().to_vec(); // UpgradeableLoaderState::Program
    program.extend_from_slice(program_data.as_ref());
    let mut data = 3u32.to_le_bytes().to_vec(); // UpgradeableLoaderState::ProgramData
    data.extend_from_slice(&0u64.to_le_bytes()); // deployment slot
    data.push(1); // Some(upgrade authority)
    data.extend_from_slice(authority.as_ref());
    data.extend_from_slice(elf);

    for (address, data, executable) in [(program_data, data, false), (kestrel::ID, program, true)] {
        program_test.add_genesis_account(
            address,
            Account {
                lamports: rent.minimum_balance(data.len()),
                data,
                owner: loader,
                executable,
                rent_epoch: 0,
            },
        );
    }
}

/// The result of one transaction.
#[derive(Debug)]
pub struct TxOutcome {
    pub signature: solana_sdk::signature::Signature,
    pub result: Result<(), TransactionError>,
    /// Meaningful in [`ProgramMode::Sbf`] only.
    pub compute_units: u64,
    pub logs: Vec<String>,
    /// What the last instruction returned (`set_return_data`), if any.
    pub return_data: Vec<u8>,
}

pub struct LocalChain {
    ctx: ProgramTestContext,
    mode: ProgramMode,
    deployer: Keypair,
    /// Messages sent under the current blockhash: resending one needs a new
    /// blockhash or the bank refuses it as already processed.
    sent: HashSet<Vec<u8>>,
    /// Every address a transaction named or a fixture wrote: the accounts
    /// [`Chain::scan_program_accounts`] searches, as an RPC node's index would.
    known: BTreeSet<Pubkey>,
}

impl LocalChain {
    pub async fn start(mode: ProgramMode) -> Self {
        let mut program_test = ProgramTest::default();
        let deployer = Keypair::new();
        match mode {
            ProgramMode::Native => {
                program_test.prefer_bpf(false);
                program_test.add_program("kestrel", kestrel::ID, processor!(native_entry));
            }
            ProgramMode::Sbf => {
                let so = program_so_dir().join("kestrel.so");
                let elf = std::fs::read(&so).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e}; build it with `../shared/sbf/build.sh programs/kestrel` \
                         or `cargo build-sbf --manifest-path programs/kestrel/Cargo.toml`",
                        so.display()
                    )
                });
                program_test.prefer_bpf(true);
                deploy_upgradeable(&mut program_test, &elf, &deployer.pubkey());
            }
        }
        program_test.add_account(
            deployer.pubkey(),
            Account {
                lamports: DEPLOYER_LAMPORTS,
                ..Account::default()
            },
        );
        let ctx = program_test.start_with_context().await;
        let mut clock: anchor_lang::prelude::Clock =
            ctx.banks_client.get_sysvar().await.expect("clock sysvar");
        clock.unix_timestamp = GENESIS_UNIX_TIME;
        ctx.set_sysvar(&clock);
        Self {
            ctx,
            mode,
            deployer,
            sent: HashSet::new(),
            known: BTreeSet::new(),
        }
    }

    /// The key that deployed Kestrel: its upgrade authority on the `.so` run,
    /// and so the only key that may initialise the exchange there. Funded.
    pub fn deployer(&self) -> &Keypair {
        &self.deployer
    }

    /// The ProgramData account `init_exchange` needs when Kestrel runs as an
    /// upgradeable program (the `.so` run); `None` for the native build.
    pub fn program_data(&self) -> Option<Pubkey> {
        (self.mode == ProgramMode::Sbf).then(kestrel_sdk::pda::program_data)
    }

    /// Keeps the native program's `msg!` lines off stdout (see `StdoutSilenced`);
    /// the `.so` writes them to the transaction log, where they belong.
    pub fn silence_native_program_output(&self) {
        SILENCE_NATIVE_PROGRAM.store(true, Ordering::Relaxed);
    }

    pub fn mode(&self) -> ProgramMode {
        self.mode
    }

    /// Pays every transaction's fee and every rent the tests do not pay themselves.
    pub fn payer(&self) -> &Keypair {
        &self.ctx.payer
    }

    pub fn payer_pubkey(&self) -> Pubkey {
        self.ctx.payer.pubkey()
    }

    /// Sends one transaction paid by [`Self::payer`] and signed by `signers` too.
    pub async fn send(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> TxOutcome {
        self.send_versioned(instructions, signers, &[], None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends one transaction: legacy without `tables`, v0 with them, and
    /// with `budget`'s compute-budget instructions first. With a budget (the
    /// [`Chain`] path, which sends what `RpcChain` sends) a transaction over
    /// 1,232 bytes is refused unsent, as a cluster refuses it.
    pub async fn send_versioned(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        budget: Option<Budget>,
    ) -> Result<TxOutcome, SendError> {
        let outcome = self
            .send_once(instructions, signers, tables, budget)
            .await?;
        if outcome.result == Err(TransactionError::BlockhashNotFound) {
            // The bank moved past our blockhash (many slots of sends): renew it.
            self.renew_blockhash().await;
            return self.send_once(instructions, signers, tables, budget).await;
        }
        Ok(outcome)
    }

    async fn renew_blockhash(&mut self) {
        self.ctx.last_blockhash = self
            .ctx
            .get_new_latest_blockhash()
            .await
            .expect("local bank hands out blockhashes");
        self.sent.clear();
    }

    fn compile(
        &self,
        instructions: &[Instruction],
        tables: &[AddressLookupTableAccount],
        budget: Option<Budget>,
    ) -> Result<VersionedMessage, SendError> {
        let payer = self.ctx.payer.pubkey();
        let blockhash = self.ctx.last_blockhash;
        match budget {
            Some(budget) => tx::compile(&payer, &budget, instructions, tables, blockhash),
            None => tx::message(&payer, instructions, tables, blockhash),
        }
    }

    async fn send_once(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        budget: Option<Budget>,
    ) -> Result<TxOutcome, SendError> {
        let mut message = self.compile(instructions, tables, budget)?;
        if !self.sent.insert(message.serialize()) {
            self.renew_blockhash().await;
            message = self.compile(instructions, tables, budget)?;
            self.sent.insert(message.serialize());
        }
        self.known.extend(tx::addresses(&message, tables));
        let payer = self.ctx.payer.insecure_clone();
        let tx = tx::sign(message, &payer, signers)?;
        let signature = tx.signatures[0];
        let processed = self
            .ctx
            .banks_client
            .process_transaction_with_metadata(tx)
            .await
            .expect("local bank is reachable");
        let (compute_units, logs, return_data) =
            processed.metadata.map_or((0, Vec::new(), Vec::new()), |m| {
                let data = m.return_data.map(|r| r.data).unwrap_or_default();
                (m.compute_units_consumed, m.log_messages, data)
            });
        Ok(TxOutcome {
            signature,
            result: processed.result,
            compute_units,
            logs,
            return_data,
        })
    }

    /// Simulates what [`Self::send_versioned`] would send with `budget`:
    /// (compute units, loaded accounts data bytes), or the refusal.
    async fn simulate(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        budget: Budget,
    ) -> Result<(u64, Option<u32>), SendError> {
        let message = self.compile(instructions, tables, Some(budget))?;
        let payer = self.ctx.payer.insecure_clone();
        let tx = tx::sign(message, &payer, signers)?;
        let simulated = self
            .ctx
            .banks_client
            .simulate_transaction(tx)
            .await
            .expect("local bank is reachable");
        let (logs, units, loaded) = simulated.simulation_details.map_or(
            (Vec::new(), u64::from(MAX_TRANSACTION_COMPUTE_UNITS), None),
            |d| (d.logs, d.units_consumed, Some(d.loaded_accounts_data_size)),
        );
        match simulated.result {
            Some(Err(error)) => Err(SendError::Refused { error, logs }),
            _ => Ok((units, loaded)),
        }
    }

    /// Moves the bank to `slot` (a later one), keeping the clock's unix
    /// time: lookup tables extended before it become usable.
    pub async fn warp_to_slot(&mut self, slot: u64) {
        let before = self.clock().await;
        self.ctx
            .warp_to_slot(slot)
            .unwrap_or_else(|e| panic!("warp to slot {slot}: {e:?}"));
        let mut clock = self.clock().await;
        clock.unix_timestamp = before.unix_timestamp;
        self.ctx.set_sysvar(&clock);
        self.sent.clear();
    }

    /// Like [`Self::send`], for set-up steps that must succeed.
    pub async fn send_ok(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> TxOutcome {
        let outcome = self.send(instructions, signers).await;
        if let Err(err) = &outcome.result {
            panic!("transaction failed: {err:?}\n{}", outcome.logs.join("\n"));
        }
        outcome
    }

    pub async fn account(&mut self, address: &Pubkey) -> Option<Account> {
        self.ctx
            .banks_client
            .get_account(*address)
            .await
            .expect("local bank is reachable")
    }

    pub async fn lamports(&mut self, address: &Pubkey) -> u64 {
        self.account(address).await.map_or(0, |a| a.lamports)
    }

    pub async fn token_balance(&mut self, token_account: &Pubkey) -> u64 {
        let account = self
            .account(token_account)
            .await
            .unwrap_or_else(|| panic!("token account {token_account} does not exist"));
        spl_token::state::Account::unpack(&account.data)
            .expect("an SPL token account")
            .amount
    }

    /// Moves lamports from the payer so `to` can pay rent itself.
    pub async fn fund(&mut self, to: &Pubkey, lamports: u64) {
        let ix = solana_system_interface::instruction::transfer(&self.payer_pubkey(), to, lamports);
        self.send_ok(&[ix], &[]).await;
    }

    pub async fn create_mint(&mut self, mint_authority: &Pubkey, decimals: u8) -> Pubkey {
        let mint = Keypair::new();
        let ixs = [
            self.create_account_ix(&mint.pubkey(), spl_token::state::Mint::LEN)
                .await,
            spl_token::instruction::initialize_mint2(
                &spl_token::ID,
                &mint.pubkey(),
                mint_authority,
                None,
                decimals,
            )
            .expect("valid mint instruction"),
        ];
        self.send_ok(&ixs, &[&mint]).await;
        mint.pubkey()
    }

    pub async fn create_token_account(&mut self, mint: &Pubkey, owner: &Pubkey) -> Pubkey {
        let account = Keypair::new();
        let ixs = [
            self.create_account_ix(&account.pubkey(), spl_token::state::Account::LEN)
                .await,
            spl_token::instruction::initialize_account3(
                &spl_token::ID,
                &account.pubkey(),
                mint,
                owner,
            )
            .expect("valid token account instruction"),
        ];
        self.send_ok(&ixs, &[&account]).await;
        account.pubkey()
    }

    pub async fn mint_to(&mut self, mint: &Pubkey, authority: &Keypair, to: &Pubkey, amount: u64) {
        let ix = spl_token::instruction::mint_to(
            &spl_token::ID,
            mint,
            to,
            &authority.pubkey(),
            &[],
            amount,
        )
        .expect("valid mint_to instruction");
        self.send_ok(&[ix], &[authority]).await;
    }

    /// The bank's clock.
    pub async fn clock(&mut self) -> anchor_lang::prelude::Clock {
        self.ctx
            .banks_client
            .get_sysvar::<anchor_lang::prelude::Clock>()
            .await
            .expect("clock sysvar")
    }

    /// Moves the clock's unix time forward by `seconds` (oracle ages, expiries).
    pub async fn advance_clock(&mut self, seconds: i64) {
        let mut clock = self.clock().await;
        clock.unix_timestamp += seconds;
        self.ctx.set_sysvar(&clock);
    }

    /// Writes an account directly, as a test fixture (oracle feeds and the like).
    pub fn set_account(&mut self, address: &Pubkey, account: Account) {
        self.known.insert(*address);
        self.ctx.set_account(address, &account.into());
    }

    /// A new zeroed account of `len` bytes owned by `owner`, rent paid by the payer.
    pub async fn create_owned_account(&mut self, owner: &Pubkey, len: usize) -> Pubkey {
        let account = Keypair::new();
        let rent = self.ctx.banks_client.get_rent().await.expect("rent sysvar");
        let ix = solana_system_interface::instruction::create_account(
            &self.payer_pubkey(),
            &account.pubkey(),
            rent.minimum_balance(len),
            len as u64,
            owner,
        );
        self.send_ok(&[ix], &[&account]).await;
        account.pubkey()
    }

    async fn create_account_ix(&mut self, address: &Pubkey, len: usize) -> Instruction {
        let rent = self.ctx.banks_client.get_rent().await.expect("rent sysvar");
        solana_system_interface::instruction::create_account(
            &self.payer_pubkey(),
            address,
            rent.minimum_balance(len),
            len as u64,
            &spl_token::ID,
        )
    }
}

impl Chain for LocalChain {
    fn fee_payer(&self) -> Pubkey {
        self.payer_pubkey()
    }

    async fn fetch_accounts(
        &mut self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<Account>>, ChainError> {
        let mut accounts = Vec::with_capacity(addresses.len());
        for address in addresses {
            accounts.push(self.account(address).await);
        }
        Ok(accounts)
    }

    async fn scan_program_accounts(
        &mut self,
        filter: AccountFilter,
    ) -> Result<Vec<(Pubkey, Account)>, ChainError> {
        let known: Vec<Pubkey> = self.known.iter().copied().collect();
        let mut found = Vec::new();
        for address in known {
            if let Some(account) = self.account(&address).await.filter(|a| filter.matches(a)) {
                found.push((address, account));
            }
        }
        Ok(found)
    }

    /// As `RpcChain` sends it: simulated first (a refusal costs nothing),
    /// then with the simulated compute units and loaded data as limits.
    async fn submit_with_tables(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> Result<Sent, SendError> {
        let probe = Budget {
            compute_unit_limit: MAX_TRANSACTION_COMPUTE_UNITS,
            compute_unit_price: 0,
            loaded_accounts_data_size: None,
        };
        let (units, loaded) = match self.simulate(instructions, signers, tables, probe).await {
            Err(SendError::Refused {
                error: TransactionError::BlockhashNotFound,
                ..
            }) => {
                // The bank moved past our blockhash (many slots of sends).
                self.renew_blockhash().await;
                self.simulate(instructions, signers, tables, probe).await?
            }
            other => other?,
        };
        let budget = Budget {
            compute_unit_limit: compute_unit_limit(units, MAX_TRANSACTION_COMPUTE_UNITS),
            compute_unit_price: 0,
            loaded_accounts_data_size: loaded.map(tx::loaded_accounts_data_size_limit),
        };
        let outcome = self
            .send_versioned(instructions, signers, tables, Some(budget))
            .await?;
        match outcome.result {
            Ok(()) => Ok(Sent {
                signature: outcome.signature,
                compute_units: (self.mode == ProgramMode::Sbf).then_some(outcome.compute_units),
            }),
            Err(error) => Err(SendError::Refused {
                error,
                logs: outcome.logs,
            }),
        }
    }

    async fn wait_past_slot(&mut self, slot: u64) -> Result<(), ChainError> {
        if LocalChain::clock(self).await.slot <= slot {
            self.warp_to_slot(slot + 1).await;
        }
        Ok(())
    }

    async fn clock(&mut self) -> Result<ChainClock, ChainError> {
        let clock = LocalChain::clock(self).await;
        Ok(ChainClock {
            slot: clock.slot,
            unix_timestamp: clock.unix_timestamp,
        })
    }

    async fn rent_exempt_minimum(&mut self, data_len: usize) -> Result<u64, ChainError> {
        let rent = self
            .ctx
            .banks_client
            .get_rent()
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        Ok(rent.minimum_balance(data_len))
    }
}
