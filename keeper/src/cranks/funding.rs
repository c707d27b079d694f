//! Update funding once the market's last update is `funding_interval_seconds`
//! old. Funding accrues pro rata to the time elapsed, so the interval sets
//! how fresh the indexes are, not how much is paid. It reads the
//! underlying's stored price, which the cycle's refresh crank has just
//! brought up to date (and which is refreshed in the same transaction should
//! it be about to lapse).
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::Operation;

use super::{CycleReport, Keeper};

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let fetch_error = |e: kestrel_sdk::client::FetchError| ChainError(e.to_string());
    let state = chain.market(&market.market).await.map_err(fetch_error)?;
    let due = now.saturating_sub(state.funding_updated_at) >= keeper.funding_interval_seconds;
    if !due {
        return Ok(());
    }
    let exchange = chain.exchange().await.map_err(fetch_error)?;
    let pending = chain.pending_events(market).await.map_err(fetch_error)?;
    if exchange.pause_flags().is_paused(Operation::Funding) || !pending.is_empty() {
        // Pending events: the program refuses funding until they are
        // consumed, which the next cycle does first.
        return Ok(());
    }
    let what = format!("update funding in market {}", market.market_index);
    let update = keeper
        .refreshed(chain, market, vec![ix::update_funding(market)])
        .await?;
    if keeper.send(chain, &what, &update, &[], report).await? {
        report.funding_updates += 1;
    }
    Ok(())
}
