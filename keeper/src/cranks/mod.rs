//! The crankers: each a function of a [`Chain`], run in order by
//! [`Keeper::run_cycle`]. A refusal that only says another keeper got there
//! first ([`is_race`]) is counted, not treated as a failure.
mod bankruptcy;
mod consume;
mod funding;
mod liquidation;
mod unwind;

use std::sync::Arc;

use kestrel::error::KestrelError;
use kestrel_sdk::client::{Chain, ChainError, SendError};
use kestrel_sdk::ix::MarketAccounts;
use kestrel_sdk::Pubkey;
use solana_sdk::signature::Keypair;

use crate::metrics::Metrics;

pub use consume::MAX_MAKERS_PER_CRANK;
pub use liquidation::Liquidation;
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
    /// `update_funding` is sent when the last update is at least this old.
    pub funding_interval_seconds: i64,
    pub metrics: Arc<Metrics>,
}

/// What one cycle did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub events_consumed: u64,
    pub funding_updates: u64,
    pub liquidations: Vec<Liquidation>,
    /// The liquidator's orders closing positions it took over.
    pub unwinds: Vec<Unwind>,
    /// Accounts under maintenance health found this cycle.
    pub liquidatable: Vec<Pubkey>,
    pub bankruptcies_settled: Vec<Pubkey>,
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
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// One pass over every job: consume events, update funding that is due,
    /// liquidate accounts under maintenance health (largest shortfall
    /// first), unwind what the liquidator took over, settle bankruptcies. Returns an error only when the chain
    /// cannot be read; refused transactions are in the report.
    pub async fn run_cycle(&self, chain: &mut impl Chain) -> Result<CycleReport, ChainError> {
        let mut report = CycleReport::default();
        let now = chain.clock().await?.unix_timestamp;
        for market in &self.markets {
            consume::run(self, chain, market, now, &mut report).await?;
            funding::run(self, chain, market, now, &mut report).await?;
        }
        liquidation::run(self, chain, &mut report).await?;
        unwind::run(self, chain, &mut report).await?;
        bankruptcy::run(self, chain, &mut report).await?;
        self.metrics.record_cycle(&report, now);
        Ok(report)
    }

    /// Sends one transaction, sorting the outcome into the report: `Ok(true)`
    /// landed, `Ok(false)` refused (a race or a failure, recorded), `Err` the
    /// cluster did not answer.
    async fn send(
        &self,
        chain: &mut impl Chain,
        what: &str,
        instructions: &[solana_sdk::instruction::Instruction],
        signers: &[&Keypair],
        report: &mut CycleReport,
    ) -> Result<bool, ChainError> {
        match chain.submit(instructions, signers).await {
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
                    SendError::Unavailable(_) => String::new(),
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
}
