//! The crankers: each a function of a [`Chain`], run in order by
//! [`Keeper::run_cycle`]. A refusal that only says another keeper got there
//! first ([`is_race`]) is counted, not treated as a failure.
mod bankruptcy;
mod basis;
mod consume;
mod funding;
mod liquidation;
mod refresh;
mod risk_arrays;
mod settlement;
mod unwind;

use std::sync::{Arc, RwLock};

use kestrel::error::KestrelError;
use kestrel_sdk::client::{Chain, ChainError, FetchError, SendError};
use kestrel_sdk::ix::{MarketAccounts, UnderlyingAccounts};
use kestrel_sdk::lookup_table::AddressLookupTableAccount;
use kestrel_sdk::Pubkey;
use solana_sdk::signature::Keypair;

use crate::metrics::Metrics;

pub use basis::basis_due;
pub use consume::MAX_MAKERS_PER_CRANK;
pub use liquidation::Liquidation;
pub use refresh::{refresh_reason, volatility_update_is_newer, RefreshReason};
pub use settlement::{sample_due, settlement_stage, SettledPosition, SettlementStage};
pub use unwind::{unwind_limit, Unwind, UNWIND_CLIENT_ORDER_ID};

/// The keeper's own margin account: it takes over liquidated positions (and
/// must keep initial health) and collects the crank reward.
pub struct Liquidator {
    pub authority: Keypair,
    pub margin_account: Pubkey,
    /// Close the positions taken over with reduce-only market orders no
    /// further than this from the oracle; `None` holds them.
    pub unwind_slippage_bps: Option<u32>,
}

/// What the keeper does and how much per transaction.
pub struct Keeper {
    pub markets: Vec<MarketAccounts>,
    /// Liquidations need one; without it the keeper only reports
    /// liquidatable accounts.
    pub liquidator: Option<Liquidator>,
    /// Most events per `consume_events` call.
    pub max_events_per_crank: u16,
    /// Most distinct maker accounts per `consume_events` transaction.
    pub max_makers_per_crank: usize,
    /// Most `consume_events` transactions per market per cycle, so one busy
    /// market cannot starve funding and liquidations.
    pub max_cranks_per_cycle: usize,
    /// `update_funding` (perpetuals) and `update_basis` (dated futures) are
    /// sent when the last update is at least this old.
    pub funding_interval_seconds: i64,
    /// The exchange's address lookup table (`kestrel-migrations` creates and
    /// extends it). With one, every transaction goes out as v0 and names the
    /// table's accounts by index: a liquidation of an account holding the
    /// maximum positions only fits 1,232 bytes that way. Without one (or
    /// while it cannot be read) transactions are legacy.
    pub lookup_table: Option<Pubkey>,
    pub metrics: Arc<Metrics>,
    /// The table's usable addresses, read at the start of every cycle.
    tables: RwLock<Vec<AddressLookupTableAccount>>,
}

/// What one cycle did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// `refresh_underlying` transactions landed.
    pub underlying_refreshes: u64,
    /// `refresh_volatility` transactions landed (underlyings with options).
    pub volatility_refreshes: u64,
    /// Option risk arrays recomputed (`refresh_risk_arrays`, underlyings
    /// with a scenario grid).
    pub risk_array_refreshes: u64,
    pub events_consumed: u64,
    pub funding_updates: u64,
    /// `update_basis` transactions landed (dated futures, on the funding
    /// schedule).
    pub basis_updates: u64,
    /// `sample_settlement` transactions landed (markets inside their
    /// settlement window).
    pub settlement_samples: u64,
    /// Markets whose settlement price was fixed by this cycle's
    /// `settle_expired`.
    pub markets_settled: Vec<u16>,
    /// Positions settled in cash by this cycle's `settle_expired`.
    pub positions_settled: Vec<SettledPosition>,
    /// Markets this cycle's settlements left Closed.
    pub markets_closed: Vec<u16>,
    pub liquidations: Vec<Liquidation>,
    /// The liquidator's orders closing positions it took over.
    pub unwinds: Vec<Unwind>,
    /// Accounts under maintenance health found this cycle.
    pub liquidatable: Vec<Pubkey>,
    pub bankruptcies_settled: Vec<Pubkey>,
    /// Bankrupt accounts nothing can settle yet: the insurance fund is
    /// empty and the market of their loss has no open interest (a closed
    /// future never will again). Nothing is sent for them.
    pub bankruptcies_waiting: Vec<Pubkey>,
    /// Refusals that mean another keeper (or the program's own state) got there first.
    pub races: u64,
    /// Refusals that are not races, and sends that did not confirm.
    pub failures: Vec<String>,
    /// Work found in a market this keeper is not configured for: nothing was
    /// sent, and another keeper (or a config change) must do it.
    pub unconfigured: Vec<String>,
}

/// Refusals that mean the work was already done or the state moved under
/// us: normal when keepers race, and the next cycle sees the new state.
pub fn is_race(error: &SendError) -> bool {
    matches!(
        error.kestrel_error(),
        Some(
            KestrelError::NoEventsToConsume
                | KestrelError::MissingEventAccount
                | KestrelError::FundingUpToDate
                | KestrelError::CrankRequired
                | KestrelError::NotLiquidatable
                | KestrelError::NothingToLiquidate
                | KestrelError::NotBankrupt
                // The clock passed a window's end or an expiry between the
                // read and the landing: the next cycle settles instead.
                | KestrelError::OutsideSettlementWindow
                | KestrelError::MarketExpired
        )
    )
}

impl Keeper {
    /// A keeper for `markets` with the batch sizes that fit one transaction.
    pub fn new(markets: Vec<MarketAccounts>, liquidator: Option<Liquidator>) -> Self {
        Self {
            markets,
            liquidator,
            max_events_per_crank: kestrel::instructions::MAX_EVENTS_PER_CRANK,
            max_makers_per_crank: MAX_MAKERS_PER_CRANK,
            max_cranks_per_cycle: 16,
            funding_interval_seconds: 60,
            lookup_table: None,
            metrics: Arc::new(Metrics::default()),
            tables: RwLock::new(Vec::new()),
        }
    }

    /// Reads the lookup table (if configured) for this cycle's transactions.
    /// A table that is missing, not a table, or deactivated is reported as a
    /// failure and the cycle's transactions go out legacy.
    async fn refresh_lookup_table(
        &self,
        chain: &mut impl Chain,
        slot: u64,
        report: &mut CycleReport,
    ) -> Result<(), ChainError> {
        let tables = match self.lookup_table {
            None => Vec::new(),
            Some(address) => match chain.lookup_table(&address).await {
                Ok(Some(table)) if table.is_active() => vec![table.usable_at(slot)],
                Ok(Some(_)) => {
                    report.failures.push(format!(
                        "lookup table {address} is deactivated; sending legacy"
                    ));
                    Vec::new()
                }
                Ok(None) => {
                    report.failures.push(format!(
                        "lookup table {address} does not exist; sending legacy"
                    ));
                    Vec::new()
                }
                Err(FetchError::Chain(e)) => return Err(e),
                Err(e) => {
                    report.failures.push(format!("{e}; sending legacy"));
                    Vec::new()
                }
            },
        };
        *self.tables.write().expect("not poisoned") = tables;
        Ok(())
    }

    /// The tables this cycle's transactions are compiled with (none: legacy).
    pub fn lookup_tables(&self) -> Vec<AddressLookupTableAccount> {
        self.tables.read().expect("not poisoned").clone()
    }

    /// One pass over every job: refresh the underlyings' stored prices
    /// (trading, liquidation, funding and settlement read them) and the
    /// option risk arrays portfolio margin reads; per market
    /// consume events, update funding (perpetuals) or the basis (dated
    /// futures) when due, sample a settlement window and settle what has
    /// expired; then liquidate accounts under maintenance health (largest
    /// shortfall first, never in an expired market), unwind what the
    /// liquidator took over, settle bankruptcies. Returns an error only when
    /// the chain cannot be read; refused transactions are in the report.
    pub async fn run_cycle(&self, chain: &mut impl Chain) -> Result<CycleReport, ChainError> {
        let mut report = CycleReport::default();
        let clock = chain.clock().await?;
        let now = clock.unix_timestamp;
        self.refresh_lookup_table(chain, clock.slot, &mut report)
            .await?;
        refresh::run(self, chain, clock, &mut report).await?;
        risk_arrays::run(self, chain, clock, &mut report).await?;
        for market in &self.markets {
            consume::run(self, chain, market, now, &mut report).await?;
            // As the queue was left: what the market's other cranks decide on.
            let state = chain
                .market(&market.market)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            funding::run(self, chain, market, &state, now, &mut report).await?;
            basis::run(self, chain, market, &state, now, &mut report).await?;
            settlement::run(self, chain, market, &state, now, &mut report).await?;
        }
        liquidation::run(self, chain, &mut report).await?;
        unwind::run(self, chain, &mut report).await?;
        bankruptcy::run(self, chain, &mut report).await?;
        self.metrics.record_cycle(&report, now);
        Ok(report)
    }

    /// Sends one transaction (v0 with the lookup table when there is one),
    /// sorting the outcome into the report: `Ok(true)` landed, `Ok(false)`
    /// refused or unsendable (a race or a failure, recorded), `Err` the
    /// cluster did not answer.
    async fn send(
        &self,
        chain: &mut impl Chain,
        what: &str,
        instructions: &[solana_sdk::instruction::Instruction],
        signers: &[&Keypair],
        report: &mut CycleReport,
    ) -> Result<bool, ChainError> {
        let tables = self.lookup_tables();
        match chain
            .submit_with_tables(instructions, signers, &tables)
            .await
        {
            Ok(sent) => {
                tracing::debug!(%what, signature = %sent.signature, compute_units = ?sent.compute_units, "sent");
                Ok(true)
            }
            Err(error) if is_race(&error) => {
                tracing::debug!(%what, %error, "already done by another keeper");
                report.races += 1;
                Ok(false)
            }
            Err(SendError::Unavailable(why)) => Err(ChainError(format!("{what}: {why}"))),
            Err(error) => {
                tracing::warn!(%what, %error, "refused");
                let logs = match &error {
                    SendError::Refused { logs, .. } => logs.join("\n"),
                    SendError::Unavailable(_) | SendError::Unsendable(_) => String::new(),
                };
                tracing::debug!(%what, %logs, "program logs");
                report.failures.push(format!("{what}: {error}"));
                Ok(false)
            }
        }
    }

    fn market(&self, market_index: u16) -> Option<&MarketAccounts> {
        self.markets.iter().find(|m| m.market_index == market_index)
    }

    /// The underlyings of the configured markets, each once, in the
    /// markets' order (with the oracle accounts of the first market on it).
    pub fn underlyings(&self) -> Vec<UnderlyingAccounts> {
        let mut underlyings: Vec<UnderlyingAccounts> = Vec::new();
        for market in &self.markets {
            if !underlyings
                .iter()
                .any(|u| u.underlying == market.underlying.underlying)
            {
                underlyings.push(market.underlying);
            }
        }
        underlyings
    }

    /// `instructions` for `market`, after a `refresh_underlying` when the
    /// stored price would lapse before they land (the cycle's refresh ran
    /// first, but a long cycle can outlast a price).
    async fn refreshed(
        &self,
        chain: &mut impl Chain,
        market: &MarketAccounts,
        instructions: Vec<solana_sdk::instruction::Instruction>,
    ) -> Result<Vec<solana_sdk::instruction::Instruction>, ChainError> {
        chain
            .refreshed(market, instructions)
            .await
            .map_err(|e| ChainError(e.to_string()))
    }
}

/// Whether `market` takes orders (and liquidations) at `now`: not past an
/// expiry (settlement handles those positions), neither settled nor closed.
/// `paused_too`: a paused market takes no orders either (it may still be
/// liquidated).
fn trades(market: &kestrel_sdk::Market, now: i64, paused_too: bool) -> bool {
    use kestrel_sdk::MarketStatus;
    !market.is_expired(now)
        && match market.status() {
            Ok(MarketStatus::Closed | MarketStatus::Settled) | Err(_) => false,
            Ok(MarketStatus::Paused) => !paused_too,
            Ok(MarketStatus::Active | MarketStatus::ReduceOnly) => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_sdk::MarketStatus;

    #[test]
    fn an_expired_settled_or_closed_market_takes_no_orders_or_liquidations() {
        let mut market: kestrel_sdk::Market = bytemuck::Zeroable::zeroed();
        assert!(trades(&market, 0, true));
        market.status = MarketStatus::ReduceOnly as u8;
        assert!(trades(&market, 0, true));
        market.status = MarketStatus::Paused as u8;
        assert!(!trades(&market, 0, true), "no orders while paused");
        assert!(trades(&market, 0, false), "but it may be liquidated");
        for status in [MarketStatus::Settled, MarketStatus::Closed] {
            market.status = status as u8;
            assert!(!trades(&market, 0, false), "{status:?}");
        }
        market.status = MarketStatus::Active as u8;
        market.future.params.expiry = 1_000;
        assert!(trades(&market, 999, false));
        assert!(!trades(&market, 1_000, false), "expired: settlement's");
    }

    #[test]
    fn a_boundary_crossed_in_flight_is_a_race() {
        for error in [
            KestrelError::OutsideSettlementWindow,
            KestrelError::MarketExpired,
        ] {
            let refused = SendError::Refused {
                error: solana_sdk::transaction::TransactionError::InstructionError(
                    0,
                    solana_sdk::instruction::InstructionError::Custom(u32::from(error)),
                ),
                logs: vec![],
            };
            assert!(is_race(&refused), "{error:?}");
        }
    }
}
