//! Keep the option markets' risk arrays usable. A portfolio-mode account's
//! health reads each option's array (its value change in every scenario of
//! the underlying's grid) and refuses one computed at another spot,
//! volatility, scan range or grid version, or too long ago. So each cycle,
//! after the underlyings are refreshed, every configured option market
//! whose array a transaction landing now would find stale is recomputed
//! (`refresh_risk_arrays`, up to
//! [`kestrel::instructions::MAX_RISK_ARRAYS_PER_REFRESH`] markets a
//! transaction). Traders' orders then need no crank of their own, and the
//! liquidation scan can value every account as the program will.
use kestrel::instructions::MAX_RISK_ARRAYS_PER_REFRESH;
use kestrel_sdk::client::{Chain, ChainClock, ChainError};
use kestrel_sdk::ix;
use kestrel_sdk::Pubkey;

use super::{CycleReport, Keeper};

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    clock: ChainClock,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    for underlying in keeper.underlyings() {
        let mut due: Vec<Pubkey> = Vec::new();
        for market in keeper
            .markets
            .iter()
            .filter(|m| m.underlying.underlying == underlying.underlying)
        {
            let snapshot = chain
                .market_snapshot(market)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            if snapshot.risk_array_due(clock.unix_timestamp, clock.slot) {
                due.push(market.market);
            }
        }
        for batch in due.chunks(MAX_RISK_ARRAYS_PER_REFRESH) {
            let what = format!(
                "refresh {} risk arrays of underlying {}",
                batch.len(),
                underlying.underlying
            );
            // The underlying's price first when it would lapse before
            // landing: the arrays are computed at it.
            let refresh = ix::refresh_risk_arrays(&underlying.underlying, batch);
            let first = keeper
                .markets
                .iter()
                .find(|m| m.market == batch[0])
                .expect("a configured market");
            let instructions = keeper.refreshed(chain, first, vec![refresh]).await?;
            if keeper
                .send(chain, &what, &instructions, &[], report)
                .await?
            {
                report.risk_array_refreshes += batch.len() as u64;
            }
        }
    }
    Ok(())
}
