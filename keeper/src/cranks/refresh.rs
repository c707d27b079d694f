//! Refresh the underlyings' stored prices. Trading, liquidation and funding
//! read the price `refresh_underlying` last stored, read-only, and refuse it
//! once it is older than the underlying's maximum age: nothing else moves it.
//! So at the start of every cycle, before the other cranks, each underlying
//! of the configured markets is refreshed when its feeds hold an update
//! newer than the stored record: one write per update, however many
//! markets read it; and while the underlying's price limit holds the
//! accepted price away from the feeds, whenever a refresh now would move
//! it a step on (a feed that stops publishing must not leave the markets
//! at a lagging price). Otherwise a refresh could change nothing, so none
//! is sent. An underlying with options has an implied-volatility feed
//! too, refreshed the same way (`refresh_volatility`) when it holds an
//! update newer than the stored one.
use kestrel::state::Underlying;
use kestrel_sdk::client::{Chain, ChainClock, ChainError, FetchError};
use kestrel_sdk::health::UnderlyingSnapshot;
use kestrel_sdk::ix;
use kestrel_sdk::Pubkey;

use super::{CycleReport, Keeper};

/// Why an underlying is refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshReason {
    /// A feed holds an update newer than the stored record: refreshing
    /// changes what the markets read.
    NewerUpdate,
    /// The price limit holds the accepted price away from the feeds and
    /// the time since the last refresh lets it move a step on.
    PriceLimitLagging,
}

/// Whether (and why) `snapshot`'s underlying should be refreshed at unix
/// time `now` and `slot`; `None` while its feeds hold nothing newer.
pub fn refresh_reason(snapshot: &UnderlyingSnapshot, now: i64, slot: u64) -> Option<RefreshReason> {
    let stored = &snapshot.underlying;
    let refreshed = snapshot.refreshed(now, slot);
    if refreshed.prices != stored.prices {
        Some(RefreshReason::NewerUpdate)
    } else if stored.price_limit().lagging_feed().is_some()
        && refreshed.price_limit().price() != stored.price_limit().price()
    {
        Some(RefreshReason::PriceLimitLagging)
    } else {
        None
    }
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    clock: ChainClock,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let (now, slot) = (clock.unix_timestamp, clock.slot);
    for accounts in keeper.underlyings() {
        let snapshot = match chain.underlying_snapshot(&accounts).await {
            Ok(snapshot) => snapshot,
            Err(FetchError::Chain(e)) => return Err(e),
            // A missing or foreign account: a configuration to fix,
            // reported; the other underlyings are still refreshed.
            Err(e) => {
                report
                    .failures
                    .push(format!("refresh underlying {}: {e}", accounts.underlying));
                continue;
            }
        };
        let index = snapshot.underlying.underlying_index;
        let mut stored = snapshot.underlying;
        if let Some(reason) = refresh_reason(&snapshot, now, slot) {
            let what = format!("refresh underlying {index} ({reason:?})");
            let refresh = ix::refresh_underlying(&accounts);
            if keeper.send(chain, &what, &[refresh], &[], report).await? {
                tracing::debug!(underlying = index, ?reason, "refreshed");
                report.underlying_refreshes += 1;
                stored = snapshot.refreshed(now, slot);
            }
        }
        keeper.metrics.observe_underlying(index, &stored, now, slot);
        if stored.volatility.is_configured() {
            refresh_volatility(keeper, chain, &accounts.underlying, &stored, report).await?;
        }
    }
    Ok(())
}

/// Whether the implied-volatility feed's account (`feed`, fetched) holds an
/// update newer than the one `underlying` stored.
pub fn volatility_update_is_newer(
    underlying: &Underlying,
    feed: &Pubkey,
    account: &solana_sdk::account::Account,
) -> bool {
    let stored = &underlying.volatility;
    kestrel::oracle::switchboard::read(
        feed,
        &account.owner,
        &account.data,
        &Pubkey::new_from_array(stored.config.volatility_feed),
    )
    .is_ok_and(|raw| {
        (raw.publish_time, raw.publish_slot) > (stored.publish_time, stored.publish_slot)
    })
}

async fn refresh_volatility(
    keeper: &Keeper,
    chain: &mut impl Chain,
    address: &Pubkey,
    underlying: &Underlying,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let feed = Pubkey::new_from_array(underlying.volatility.config.volatility_feed);
    let Some(account) = chain.fetch_account(&feed).await? else {
        report.failures.push(format!(
            "refresh volatility of underlying {}: feed {feed} missing",
            underlying.underlying_index
        ));
        return Ok(());
    };
    if volatility_update_is_newer(underlying, &feed, &account) {
        let what = format!(
            "refresh volatility of underlying {}",
            underlying.underlying_index
        );
        let refresh = ix::refresh_volatility(address, &feed);
        if keeper.send(chain, &what, &[refresh], &[], report).await? {
            report.volatility_refreshes += 1;
        }
    }
    Ok(())
}
