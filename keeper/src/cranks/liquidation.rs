//! Liquidate accounts under maintenance health, largest shortfall first.
//! Every margin account is scanned and valued with the program's own health
//! code (the SDK's preview) at the cluster's clock; each liquidatable
//! account is liquidated market by market until it is healthy again. A
//! market past its expiry (or settled, or closed) is skipped: the program
//! refuses it, and the settlement crank closes those positions in cash
//! instead (what that leaves negative is a bankruptcy).
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::health::{self, MarketSnapshot, PreviewError};
use kestrel_sdk::ix::{self, MarketAccounts};
use kestrel_sdk::{MarginAccount, Operation, Pubkey};

use super::{CycleReport, Keeper};

/// One liquidation sent and landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liquidation {
    pub account: Pubkey,
    pub market_index: u16,
    /// The account's position before and after, in base lots.
    pub base_lots_before: i64,
    pub base_lots_after: i64,
}

/// The accounts found under maintenance health.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Most negative maintenance health first.
    pub liquidatable: Vec<(Pubkey, fixed::types::I80F48)>,
    /// Accounts holding a market missing from `snapshots`: their health is unknown.
    pub unconfigured: Vec<(Pubkey, u16)>,
}

/// Values every account with a position, each underlying's price as the
/// program will read it (refreshed first where the stored one lapses). One
/// whose price the program would refuse is skipped: `liquidate` would refuse
/// it too until the feed recovers.
pub(super) fn scan(
    accounts: &[(Pubkey, MarginAccount)],
    snapshots: &[MarketSnapshot],
    now: i64,
    slot: u64,
) -> Scan {
    let mut scan = Scan::default();
    for (address, account) in accounts {
        if account.active_positions().next().is_none() {
            continue;
        }
        match health::preview(account, snapshots, now, slot) {
            Ok(h) if h.maintenance < 0 => scan.liquidatable.push((*address, h.maintenance)),
            Ok(_) => {}
            Err(PreviewError::MissingMarket(market_index)) => {
                scan.unconfigured.push((*address, market_index))
            }
            Err(e) => tracing::debug!(%address, ?e, "health not computable; skipped"),
        }
    }
    scan.liquidatable
        .sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    scan
}

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let exchange = chain
        .exchange()
        .await
        .map_err(|e| ChainError(e.to_string()))?;
    let clock = chain.clock().await?;
    let mut snapshots = Vec::with_capacity(keeper.markets.len());
    for market in &keeper.markets {
        let snapshot = chain
            .market_snapshot(market)
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        snapshots.push(snapshot);
    }
    let accounts = chain.margin_accounts().await?;
    let Scan {
        liquidatable: candidates,
        unconfigured,
    } = scan(&accounts, &snapshots, clock.unix_timestamp, clock.slot);
    report.liquidatable = candidates.iter().map(|(a, _)| *a).collect();
    report
        .unconfigured
        .extend(unconfigured.into_iter().map(|(address, market)| {
            format!("{address} holds market {market}: its health is unknown")
        }));
    let Some(liquidator) = &keeper.liquidator else {
        return Ok(());
    };
    if exchange.pause_flags().is_paused(Operation::Liquidation) {
        return Ok(());
    }
    for (address, maintenance) in candidates {
        if address == liquidator.margin_account {
            continue;
        }
        tracing::info!(%address, %maintenance, "liquidatable");
        let Ok(mut account) = chain.margin_account(&address).await else {
            continue;
        };
        let markets: Vec<u16> = account
            .active_positions()
            .filter(|(_, p)| p.base_lots != 0)
            .map(|(_, p)| p.market_index)
            .collect();
        for market_index in markets {
            let Some(market) = keeper.market(market_index) else {
                continue; // valued above, so every market it holds is configured
            };
            let liquidates = snapshots
                .iter()
                .find(|s| s.market.market_index == market_index)
                .is_some_and(|s| super::trades(&s.market, clock.unix_timestamp, false));
            if !liquidates {
                tracing::debug!(%address, market_index, "expired, settled or closed: left to settlement");
                continue;
            }
            let liquidator_account = chain
                .margin_account(&liquidator.margin_account)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            let before = account.position(market_index).map_or(0, |p| p.base_lots);
            let instruction = liquidate_ix(
                keeper,
                &liquidator.authority,
                &liquidator.margin_account,
                (&address, &account),
                &liquidator_account,
                market,
            );
            let what = format!("liquidate {address} in market {market_index}");
            let instructions = keeper.refreshed(chain, market, vec![instruction]).await?;
            let landed = keeper
                .send(
                    chain,
                    &what,
                    &instructions,
                    &[&liquidator.authority],
                    report,
                )
                .await?;
            account = chain
                .margin_account(&address)
                .await
                .map_err(|e| ChainError(e.to_string()))?;
            if landed {
                let after = account.position(market_index).map_or(0, |p| p.base_lots);
                tracing::info!(%address, market_index, before, after, "liquidated");
                report.liquidations.push(Liquidation {
                    account: address,
                    market_index,
                    base_lots_before: before,
                    base_lots_after: after,
                });
            }
            let healthy = health::preview(&account, &snapshots, clock.unix_timestamp, clock.slot)
                .is_ok_and(|h| h.maintenance >= 0);
            if healthy {
                break;
            }
        }
    }
    Ok(())
}

fn liquidate_ix(
    keeper: &Keeper,
    authority: &solana_sdk::signature::Keypair,
    liquidator_account: &Pubkey,
    (liquidatee, liquidatee_state): (&Pubkey, &MarginAccount),
    liquidator_state: &MarginAccount,
    market: &MarketAccounts,
) -> solana_sdk::instruction::Instruction {
    use solana_sdk::signer::Signer;
    let health = ix::liquidation_health_accounts(
        liquidatee_state,
        liquidator_state,
        market.market_index,
        &keeper.markets,
    );
    // The program takes the fewest lots that restore health; no cap here.
    ix::liquidate(
        &authority.pubkey(),
        liquidator_account,
        liquidatee,
        market,
        u64::MAX,
        health,
    )
}
