//! Settle bankruptcies: an account left with negative collateral and no
//! positions is made whole from its own insurance stake, then the
//! insurance fund, the rest socialized over the open interest of the market
//! where its loss arose (`MarginAccount::bankruptcy_market_index`).
//!
//! When the fund is empty and that market has no open interest, nothing
//! can be settled (the program refuses `CannotSocializeLoss`): the account
//! is reported as waiting rather than sent every cycle. That is the lasting
//! case of a deficit left by a dated future's settlement once the future has
//! closed: only the fund can cover it.
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::{ix, pda};

use super::{CycleReport, Keeper};

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let accounts = chain.margin_accounts().await?;
    // Read when a bankrupt account is found, again after a settlement.
    let mut fund_read: Option<u64> = None;
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
        let fund = match fund_read {
            Some(fund) => fund,
            None => *fund_read.insert(insurance_fund(chain).await?),
        };
        if fund == 0 {
            let state = chain
                .market(&market.market)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            if state.long_lots == 0 && state.short_lots == 0 {
                tracing::warn!(%address, deficit = account.collateral, market = market.market_index, "bankrupt: no insurance fund and no open interest to cover it; waiting");
                report.bankruptcies_waiting.push(address);
                continue;
            }
        }
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
            fund_read = None; // it paid some of it
        }
    }
    Ok(())
}

/// What the insurance vault holds (0 when it cannot be read as a token
/// account: the send then says why).
async fn insurance_fund(chain: &mut impl Chain) -> Result<u64, ChainError> {
    let vault = chain
        .fetch_account(&pda::insurance_vault(&pda::exchange()))
        .await?;
    Ok(vault
        .and_then(|account| spl_token::state::Account::unpack(&account.data).ok())
        .map_or(0, |token| token.amount))
}
