//! Sample a dated future's book into its basis (`update_basis`) once its
//! last sample is `funding_interval_seconds` old: the futures' counterpart of
//! funding, on the same schedule. The mark health and liquidation use is the
//! underlying's price plus that basis, so a stale basis is a stale mark.
//! Nothing is sent once the future has expired (the program refuses it; the
//! basis fades to zero at expiry anyway) or has settled or closed. It reads
//! the underlying's stored price, refreshed in the same transaction should
//! it be about to lapse.
use kestrel::state::{InstrumentKind, Market, MarketStatus};
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::ix::{self, MarketAccounts};

use super::{CycleReport, Keeper};

/// Whether `market` is a dated future whose basis `update_basis` would
/// sample at `now`.
pub fn basis_due(market: &Market, now: i64, interval_seconds: i64) -> bool {
    matches!(market.kind(), Ok(InstrumentKind::Future))
        && !market.is_expired(now)
        && matches!(
            market.status(),
            Ok(MarketStatus::Active | MarketStatus::ReduceOnly | MarketStatus::Paused)
        )
        && now.saturating_sub(market.future.basis.last_update) >= interval_seconds
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    state: &Market,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    if !basis_due(state, now, keeper.funding_interval_seconds) {
        return Ok(());
    }
    let what = format!("update the basis of market {}", market.market_index);
    let update = keeper
        .refreshed(chain, market, vec![ix::update_basis(market)])
        .await?;
    if keeper.send(chain, &what, &update, &[], report).await? {
        report.basis_updates += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_future_s_basis_is_sampled_on_schedule() {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        market.kind = InstrumentKind::Future as u8;
        market.future.params.expiry = 10_000;
        market.future.basis.last_update = 1_000;
        assert!(basis_due(&market, 1_060, 60));
        assert!(!basis_due(&market, 1_059, 60), "not yet due");
        assert!(!basis_due(&market, 10_000, 60), "expired");
        for status in [MarketStatus::Settled, MarketStatus::Closed] {
            market.status = status as u8;
            assert!(!basis_due(&market, 1_060, 60), "{status:?}");
        }
        market.status = MarketStatus::Paused as u8;
        assert!(
            basis_due(&market, 1_060, 60),
            "a paused future is still marked"
        );
        // A perpetual, delisted or not, has funding instead.
        market.kind = InstrumentKind::Perp as u8;
        assert!(!basis_due(&market, 1_060, 60));
    }
}
