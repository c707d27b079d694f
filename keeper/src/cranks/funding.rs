//! Update funding once the market's last update is `funding_interval_seconds`
//! old. Funding accrues pro rata to the time elapsed, so the interval sets
//! how fresh the indexes are, not how much is paid. It reads the
//! underlying's stored price, which the cycle's refresh crank has just
//! brought up to date (and which is refreshed in the same transaction should
//! it be about to lapse). Funding is a live perpetual's: a dated future has
//! a basis instead (`basis.rs`), a delisted perpetual settles, and a closed
//! or settled market is refused, so none of them is sent one.
use kestrel::state::{InstrumentKind, Market, MarketStatus};
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::Operation;

use super::{CycleReport, Keeper};

/// Whether `market` is a perpetual `update_funding` accepts (a dated future,
/// a delisted perpetual and a closed or settled market are refused).
pub fn funds(market: &Market) -> bool {
    matches!(market.kind(), Ok(InstrumentKind::Perp))
        && !market.has_expiry()
        && matches!(
            market.status(),
            Ok(MarketStatus::Active | MarketStatus::ReduceOnly | MarketStatus::Paused)
        )
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    state: &Market,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let fetch_error = |e: kestrel_sdk::client::FetchError| ChainError(e.to_string());
    let due = now.saturating_sub(state.perp.funding_updated_at) >= keeper.funding_interval_seconds;
    if !due || !funds(state) {
        return Ok(());
    }
    let exchange = chain.exchange().await.map_err(fetch_error)?;
    if exchange.pause_flags().is_paused(Operation::Funding) || state.pending_fills > 0 {
        // Pending fills: the program refuses funding until they are
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_perpetual_is_funded() {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        assert!(funds(&market));
        market.status = MarketStatus::Paused as u8;
        assert!(funds(&market), "a paused perpetual still funds");
        for status in [MarketStatus::Closed, MarketStatus::Settled] {
            market.status = status as u8;
            assert!(!funds(&market), "{status:?}");
        }
        market.status = MarketStatus::Paused as u8;
        market.future.params.expiry = 1_000;
        assert!(!funds(&market), "delisted");
        let mut future: Market = bytemuck::Zeroable::zeroed();
        future.kind = InstrumentKind::Future as u8;
        future.future.params.expiry = 1_000;
        assert!(!funds(&future));
    }
}
