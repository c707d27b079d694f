//! The chain as bots, crankers and the migrations applier see it: read
//! accounts, scan the program's accounts, send a transaction. Two
//! implementations: [`crate::rpc::RpcChain`] (JSON-RPC, the production path)
//! and the in-process chain of `kestrel-sim` that tests and the demo run on.
//! Everything written against [`Chain`] runs unchanged on both.
use anchor_lang::{Discriminator, ZeroCopy};
use kestrel::engine::event_queue::AnyEvent;
use kestrel::engine::perp::PriceBand;
use kestrel::error::KestrelError;
use kestrel::state::{Exchange, MarginAccount, Market};
use kestrel::units::Ticks;
use solana_sdk::account::Account;
use solana_sdk::instruction::{Instruction, InstructionError};
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::signer::Signer;
use solana_sdk::transaction::TransactionError;

use crate::book::BookSideView;
use crate::decode::{self, DecodeError};
use crate::health::{FetchedFeed, MarketSnapshot, PreviewError, UnderlyingSnapshot};
use crate::ix::{MarketAccounts, UnderlyingAccounts};
use crate::lookup_table::{self, AddressLookupTableAccount, LookupTable};
use crate::{errors, events, pda, Pubkey};

/// The cluster could not answer (transport, timeout, malformed response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainError(pub String);

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChainError {}

/// Why a transaction did not land.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The runtime or a program refused it (in simulation or on chain):
    /// nothing changed. Resending the same transaction cannot help.
    Refused {
        error: TransactionError,
        logs: Vec<String>,
    },
    /// No answer in time: it may or may not have landed. Retrying is safe
    /// for Kestrel's instructions, which are all refused when already done.
    Unavailable(String),
    /// Never sent: it cannot be built (a v0 message that does not compile)
    /// or exceeds the 1,232-byte packet limit. Resending cannot help.
    Unsendable(String),
}

impl SendError {
    /// The Kestrel error the program refused with, if it was the program.
    pub fn kestrel_error(&self) -> Option<KestrelError> {
        match self {
            Self::Refused {
                error: TransactionError::InstructionError(_, InstructionError::Custom(code)),
                ..
            } => errors::kestrel_error(*code),
            _ => None,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { error, .. } => match self.kestrel_error() {
                Some(kestrel) => write!(f, "refused by Kestrel: {kestrel:?}"),
                None => write!(f, "refused: {error}"),
            },
            Self::Unavailable(why) => write!(f, "cluster unavailable: {why}"),
            Self::Unsendable(why) => write!(f, "not sent: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A landed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub signature: Signature,
    /// Compute units it consumed, where the chain reports them.
    pub compute_units: Option<u64>,
}

/// The cluster clock: what the program compares oracle ages and expiries to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainClock {
    pub slot: u64,
    pub unix_timestamp: i64,
}

impl ChainClock {
    /// Decodes the clock sysvar's account data (bincode: slot,
    /// epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp).
    pub fn from_sysvar_data(data: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<[u8; 8]> { data.get(i * 8..i * 8 + 8)?.try_into().ok() };
        Some(Self {
            slot: u64::from_le_bytes(word(0)?),
            unix_timestamp: i64::from_le_bytes(word(4)?),
        })
    }
}

/// Accounts of one Kestrel type: owned by the program, of its exact length,
/// starting with its discriminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountFilter {
    pub data_len: usize,
    pub discriminator: &'static [u8],
}

impl AccountFilter {
    pub fn of<T: ZeroCopy + Discriminator>() -> Self {
        Self {
            data_len: T::DISCRIMINATOR.len() + std::mem::size_of::<T>(),
            discriminator: T::DISCRIMINATOR,
        }
    }

    pub fn matches(&self, account: &Account) -> bool {
        account.owner == kestrel::ID
            && account.data.len() == self.data_len
            && account.data.starts_with(self.discriminator)
    }
}

/// A market, its book and its pending events, read in one request.
#[derive(Clone)]
pub struct MarketView {
    pub accounts: MarketAccounts,
    pub bids: BookSideView,
    pub asks: BookSideView,
    /// Oldest first.
    pub events: Vec<AnyEvent>,
    /// The market with its underlying and feeds, for [`crate::health::preview`].
    pub snapshot: MarketSnapshot,
}

impl MarketView {
    /// Best bid and best ask, in ticks, among orders live at `now` (unix
    /// time), whatever the oracle says.
    pub fn best_prices(&self, now: i64) -> (Option<Ticks>, Option<Ticks>) {
        let now = u64::try_from(now).ok();
        let best = |side: &BookSideView| side.l3(now).next().map(|o| o.price);
        (best(&self.bids), best(&self.asks))
    }

    /// Best bid and best ask a taker could trade with at `clock`: live, and
    /// inside the oracle band (after a fast move, stale quotes beyond it
    /// still rest but can never fill).
    pub fn tradeable_prices(
        &self,
        clock: &ChainClock,
    ) -> Result<(Option<Ticks>, Option<Ticks>), PreviewError> {
        let (_, band) = self
            .snapshot
            .oracle_ticks_and_band(clock.unix_timestamp, clock.slot)?;
        Ok(self.best_prices_in(&band, clock.unix_timestamp))
    }

    /// Best bid and best ask among orders live at `now` and inside `band`.
    pub fn best_prices_in(&self, band: &PriceBand, now: i64) -> (Option<Ticks>, Option<Ticks>) {
        let now = u64::try_from(now).ok();
        let best = |side: &BookSideView| {
            side.l3(now)
                .find(|o| band.contains(o.price))
                .map(|o| o.price)
        };
        (best(&self.bids), best(&self.asks))
    }
}

/// Why a fetch failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    Chain(ChainError),
    Missing(Pubkey),
    Decode(Pubkey, DecodeError),
    /// An account that is not an address lookup table.
    NotLookupTable(Pubkey),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chain(e) => write!(f, "{e}"),
            Self::Missing(address) => write!(f, "account {address} does not exist"),
            Self::Decode(address, e) => write!(f, "account {address}: {e}"),
            Self::NotLookupTable(address) => {
                write!(f, "account {address} is not an address lookup table")
            }
        }
    }
}

impl std::error::Error for FetchError {}

impl From<ChainError> for FetchError {
    fn from(e: ChainError) -> Self {
        Self::Chain(e)
    }
}

/// What Kestrel's off-chain code needs from a cluster. The futures are not
/// `Send`: a keeper drives one chain from one task, in order.
#[allow(async_fn_in_trait)]
pub trait Chain {
    /// The key that pays fees (and rent for accounts the caller creates).
    fn fee_payer(&self) -> Pubkey;

    /// Several accounts in one request, in the order asked (None: no account).
    async fn fetch_accounts(
        &mut self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<Account>>, ChainError>;

    /// Every Kestrel account matching `filter`.
    async fn scan_program_accounts(
        &mut self,
        filter: AccountFilter,
    ) -> Result<Vec<(Pubkey, Account)>, ChainError>;

    /// Signs (fee payer and `signers`), sends and confirms one transaction:
    /// a legacy one when `tables` is empty, otherwise a v0 one that names
    /// the accounts `tables` hold by index (see [`crate::lookup_table`]).
    /// Both implementations put the compute-budget instructions first
    /// ([`crate::tx::Budget`]) and refuse a transaction over 1,232 bytes
    /// ([`SendError::Unsendable`]) before sending it.
    async fn submit_with_tables(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> Result<Sent, SendError>;

    /// Returns once the cluster is past `slot` (a lookup table extended in
    /// `slot` is usable then): the embedded chain warps, a cluster is waited for.
    async fn wait_past_slot(&mut self, slot: u64) -> Result<(), ChainError>;

    /// [`Self::submit_with_tables`] without tables: a legacy transaction.
    async fn submit(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Sent, SendError> {
        self.submit_with_tables(instructions, signers, &[]).await
    }

    async fn clock(&mut self) -> Result<ChainClock, ChainError>;

    async fn rent_exempt_minimum(&mut self, data_len: usize) -> Result<u64, ChainError>;

    async fn fetch_account(&mut self, address: &Pubkey) -> Result<Option<Account>, ChainError> {
        Ok(self.fetch_accounts(&[*address]).await?.pop().flatten())
    }

    /// The exchange account.
    async fn exchange(&mut self) -> Result<Exchange, FetchError> {
        let address = pda::exchange();
        let account = self
            .fetch_account(&address)
            .await?
            .ok_or(FetchError::Missing(address))?;
        decode::exchange(&account.data).map_err(|e| FetchError::Decode(address, e))
    }

    /// A market's accounts as instructions name them, from the market
    /// account and the oracle accounts the caller reads its underlying's
    /// feeds from.
    async fn market_accounts(
        &mut self,
        market_index: u16,
        primary_oracle: Pubkey,
        fallback_oracle: Option<Pubkey>,
    ) -> Result<MarketAccounts, FetchError> {
        let address = pda::market(&pda::exchange(), market_index);
        let market = self.market(&address).await?;
        Ok(MarketAccounts {
            market_index,
            market: address,
            bids: market.bids,
            asks: market.asks,
            event_queue: market.event_queue,
            underlying: UnderlyingAccounts {
                underlying: market.underlying,
                primary_oracle,
                fallback_oracle,
            },
        })
    }

    /// `instructions` for `market`, after a `refresh_underlying` when the
    /// underlying's stored price is not current or about to lapse
    /// ([`UnderlyingSnapshot::needs_refresh`]): one read of the underlying.
    async fn refreshed(
        &mut self,
        market: &MarketAccounts,
        instructions: Vec<Instruction>,
    ) -> Result<Vec<Instruction>, FetchError> {
        let clock = self.clock().await?;
        let underlying = self.underlying_snapshot(&market.underlying).await?;
        let mut out = Vec::with_capacity(instructions.len() + 1);
        if underlying.needs_refresh(clock.unix_timestamp, clock.slot) {
            out.push(crate::ix::refresh_underlying(&market.underlying));
        }
        out.extend(instructions);
        Ok(out)
    }

    /// An underlying and its feed accounts in one request.
    async fn underlying_snapshot(
        &mut self,
        accounts: &UnderlyingAccounts,
    ) -> Result<UnderlyingSnapshot, FetchError> {
        let fetched = self.fetch_existing(&underlying_addresses(accounts)).await?;
        underlying_snapshot_of(accounts, &mut fetched.into_iter())
    }

    /// Accounts that must all exist, in the order asked.
    async fn fetch_existing(&mut self, addresses: &[Pubkey]) -> Result<Vec<Account>, FetchError> {
        let fetched = self.fetch_accounts(addresses).await?;
        addresses
            .iter()
            .zip(fetched)
            .map(|(address, account)| account.ok_or(FetchError::Missing(*address)))
            .collect()
    }

    /// The market, both book sides, the event queue and the oracle accounts
    /// in one `getMultipleAccounts`.
    async fn fetch_market(&mut self, accounts: &MarketAccounts) -> Result<MarketView, FetchError> {
        let mut addresses = snapshot_addresses(accounts);
        addresses.extend([accounts.bids, accounts.asks, accounts.event_queue]);
        let mut fetched = self.fetch_existing(&addresses).await?;
        let queue = fetched.pop().expect("asked for");
        let asks = fetched.pop().expect("asked for");
        let bids = fetched.pop().expect("asked for");
        Ok(MarketView {
            accounts: *accounts,
            bids: BookSideView::from_account_data(&bids.data)
                .map_err(|e| FetchError::Decode(accounts.bids, e))?,
            asks: BookSideView::from_account_data(&asks.data)
                .map_err(|e| FetchError::Decode(accounts.asks, e))?,
            events: events::pending_events(&queue.data)
                .map_err(|e| FetchError::Decode(accounts.event_queue, e))?,
            snapshot: snapshot_of(accounts, fetched)?,
        })
    }

    /// A market's pending events, oldest first (the queue account only).
    async fn pending_events(
        &mut self,
        accounts: &MarketAccounts,
    ) -> Result<Vec<AnyEvent>, FetchError> {
        let queue = self.fetch_existing(&[accounts.event_queue]).await?;
        events::pending_events(&queue[0].data)
            .map_err(|e| FetchError::Decode(accounts.event_queue, e))
    }

    /// The market and its oracle accounts, without the book: what a health
    /// preview needs, in one request.
    async fn market_snapshot(
        &mut self,
        accounts: &MarketAccounts,
    ) -> Result<MarketSnapshot, FetchError> {
        let fetched = self.fetch_existing(&snapshot_addresses(accounts)).await?;
        snapshot_of(accounts, fetched)
    }

    /// One market account, decoded.
    async fn market(&mut self, address: &Pubkey) -> Result<Market, FetchError> {
        let account = self.fetch_existing(&[*address]).await?;
        decode::market(&account[0].data).map_err(|e| FetchError::Decode(*address, e))
    }

    /// One margin account.
    async fn margin_account(&mut self, address: &Pubkey) -> Result<MarginAccount, FetchError> {
        let account = self
            .fetch_account(address)
            .await?
            .ok_or(FetchError::Missing(*address))?;
        decode::margin_account(&account.data).map_err(|e| FetchError::Decode(*address, e))
    }

    /// Every margin account of the program (`getProgramAccounts` filtered by
    /// size and discriminator).
    async fn margin_accounts(&mut self) -> Result<Vec<(Pubkey, MarginAccount)>, ChainError> {
        let found = self
            .scan_program_accounts(AccountFilter::of::<MarginAccount>())
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(address, account)| {
                Some((address, decode::margin_account(&account.data).ok()?))
            })
            .collect())
    }

    /// The newest slot in the cluster's SlotHashes sysvar: a slot a lookup
    /// table may be created at.
    async fn recent_slot(&mut self) -> Result<u64, ChainError> {
        let account = self
            .fetch_account(&lookup_table::SLOT_HASHES)
            .await?
            .ok_or_else(|| ChainError("the SlotHashes sysvar is missing".into()))?;
        lookup_table::newest_slot_hash(&account.data)
            .ok_or_else(|| ChainError("the SlotHashes sysvar holds no slot".into()))
    }

    /// A lookup table, decoded; `None` when no account is at `address`.
    async fn lookup_table(&mut self, address: &Pubkey) -> Result<Option<LookupTable>, FetchError> {
        let Some(account) = self.fetch_account(address).await? else {
            return Ok(None);
        };
        if account.owner != lookup_table::PROGRAM_ID {
            return Err(FetchError::NotLookupTable(*address));
        }
        LookupTable::decode(*address, &account.data)
            .map(Some)
            .map_err(|_| FetchError::NotLookupTable(*address))
    }

    /// Creates an empty lookup table with `authority` (the fee payer pays
    /// its rent) at the newest recent slot; returns its address.
    async fn create_lookup_table(&mut self, authority: &Keypair) -> Result<Pubkey, SendError> {
        let slot = self
            .recent_slot()
            .await
            .map_err(|e| SendError::Unavailable(e.0))?;
        let (create, address) = lookup_table::create(&authority.pubkey(), &self.fee_payer(), slot);
        self.submit(&[create], &[authority]).await?;
        Ok(address)
    }

    /// Appends `addresses` to `table` (one transaction per
    /// [`lookup_table::MAX_ADDRESSES_PER_EXTEND`]), then waits until they
    /// are usable (the slot after the last extension).
    async fn extend_lookup_table(
        &mut self,
        table: &Pubkey,
        authority: &Keypair,
        addresses: &[Pubkey],
    ) -> Result<(), SendError> {
        if addresses.is_empty() {
            return Ok(());
        }
        let payer = self.fee_payer();
        for extend in lookup_table::extend(table, &authority.pubkey(), &payer, addresses) {
            self.submit(&[extend], &[authority]).await?;
        }
        let extended = self
            .lookup_table(table)
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?
            .ok_or_else(|| SendError::Unavailable(format!("lookup table {table} vanished")))?;
        self.wait_past_slot(extended.last_extended_slot)
            .await
            .map_err(|e| SendError::Unavailable(e.0))
    }

    /// A new zeroed account of `data_len` bytes owned by Kestrel (book sides
    /// and event queues are too large to be created by the program itself).
    async fn create_program_account(&mut self, data_len: usize) -> Result<Pubkey, SendError> {
        let account = Keypair::new();
        let lamports = self
            .rent_exempt_minimum(data_len)
            .await
            .map_err(|e| SendError::Unavailable(e.0))?;
        let ix = solana_system_interface::instruction::create_account(
            &self.fee_payer(),
            &account.pubkey(),
            lamports,
            data_len as u64,
            &kestrel::ID,
        );
        self.submit(&[ix], &[&account]).await?;
        Ok(account.pubkey())
    }
}

/// Underlying, primary oracle[, fallback oracle].
fn underlying_addresses(accounts: &UnderlyingAccounts) -> Vec<Pubkey> {
    let mut addresses = vec![accounts.underlying, accounts.primary_oracle];
    addresses.extend(accounts.fallback_oracle);
    addresses
}

/// Market, then [`underlying_addresses`]: what a snapshot reads.
fn snapshot_addresses(accounts: &MarketAccounts) -> Vec<Pubkey> {
    let mut addresses = vec![accounts.market];
    addresses.extend(underlying_addresses(&accounts.underlying));
    addresses
}

fn underlying_snapshot_of(
    accounts: &UnderlyingAccounts,
    fetched: &mut impl Iterator<Item = Account>,
) -> Result<UnderlyingSnapshot, FetchError> {
    let underlying = fetched
        .next()
        .ok_or(FetchError::Missing(accounts.underlying))?;
    let feed = |address: Pubkey, account: Account| FetchedFeed {
        address,
        owner: account.owner,
        data: account.data,
    };
    let primary = fetched
        .next()
        .map(|account| feed(accounts.primary_oracle, account))
        .ok_or(FetchError::Missing(accounts.primary_oracle))?;
    let fallback = accounts
        .fallback_oracle
        .zip(fetched.next())
        .map(|(a, f)| feed(a, f));
    Ok(UnderlyingSnapshot {
        address: accounts.underlying,
        underlying: decode::underlying(&underlying.data)
            .map_err(|e| FetchError::Decode(accounts.underlying, e))?,
        primary,
        fallback,
    })
}

/// A snapshot from the accounts [`snapshot_addresses`] names, in its order.
fn snapshot_of(
    accounts: &MarketAccounts,
    fetched: Vec<Account>,
) -> Result<MarketSnapshot, FetchError> {
    let mut fetched = fetched.into_iter();
    let market = fetched.next().ok_or(FetchError::Missing(accounts.market))?;
    Ok(MarketSnapshot {
        market: decode::market(&market.data).map_err(|e| FetchError::Decode(accounts.market, e))?,
        underlying: underlying_snapshot_of(&accounts.underlying, &mut fetched)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_sysvar_layout() {
        let mut data = Vec::new();
        for word in [77u64, 1, 2, 3] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        data.extend_from_slice(&1_700_000_000i64.to_le_bytes());
        assert_eq!(
            ChainClock::from_sysvar_data(&data),
            Some(ChainClock {
                slot: 77,
                unix_timestamp: 1_700_000_000
            })
        );
        assert_eq!(ChainClock::from_sysvar_data(&data[..39]), None);
    }

    #[test]
    fn program_errors_are_named() {
        let refused = SendError::Refused {
            error: TransactionError::InstructionError(
                0,
                InstructionError::Custom(u32::from(KestrelError::NoEventsToConsume)),
            ),
            logs: vec![],
        };
        assert!(matches!(
            refused.kestrel_error(),
            Some(KestrelError::NoEventsToConsume)
        ));
        assert!(refused.to_string().contains("NoEventsToConsume"));
    }
}
