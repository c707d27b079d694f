//! Settle bankruptcies: an account left with negative collateral and no
//! positions is made whole from its own insurance stake, then the
//! insurance fund, the rest socialized over the open interest of the market
//! where its loss arose (`MarginAccount::bankruptcy_market_index`).
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::ix;

use super::{CycleReport, Keeper};

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let accounts = chain.margin_accounts().await?;
    for (address, account) in accounts {
        let bankrupt = account.collateral < 0 && account.active_positions().next().is_none();
        if !bankrupt {
            continue;
        }
        let Some(market) = keeper.market(account.bankruptcy_market_index()) else {
            report.unconfigured.push(format!(
                "{address} is bankrupt in market {}",
                account.bankruptcy_market_index()
            ));
            continue;
        };
        let what = format!("settle the bankruptcy of {address}");
        if keeper
            .send(
                chain,
                &what,
                &[ix::settle_bankruptcy(&address, market)],
                &[],
                report,
            )
            .await?
        {
            tracing::info!(%address, deficit = account.collateral, "bankruptcy settled");
            report.bankruptcies_settled.push(address);
        }
    }
    Ok(())
}
