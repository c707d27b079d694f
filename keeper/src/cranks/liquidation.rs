//! Liquidate accounts under maintenance health, largest shortfall first.
//! Every margin account is scanned and valued with the program's own health
//! code (the SDK's preview) at the cluster's clock, option risk arrays as a
//! transaction that refreshes them first sees them; each liquidatable
//! account is liquidated market by market until it is healthy again. A
//! market past its expiry (or settled, or closed) is skipped: the program
//! refuses it, and the settlement crank closes those positions in cash
//! instead (what that leaves negative is a bankruptcy).
//!
//! A portfolio-mode account's legs are taken in the order that helps its
//! health most: under a scenario grid closing a hedge leg lowers it, and
//! the program takes such a leg whole at the mark, without the fee, only
//! when no lot of it helps ([`leg_order`]). Any risk array the
//! liquidation reads that a transaction landing now would find stale is
//! recomputed in the same transaction.
use fixed::types::I80F48;
use kestrel::state::MarginMode;
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
    let (now, slot) = (clock.unix_timestamp, clock.slot);
    let mut stored = Vec::with_capacity(keeper.markets.len());
    for market in &keeper.markets {
        let snapshot = chain
            .market_snapshot(market)
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        stored.push(snapshot);
    }
    // What the liquidation transactions will read: each refreshes the
    // arrays it needs first.
    let snapshots: Vec<MarketSnapshot> = stored
        .iter()
        .map(|s| s.with_fresh_risk_array(now, slot))
        .collect();
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
        let markets = leg_order(&account, &snapshots, now, slot);
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
            // A liquidation that only cancels the account's orders there
            // is tried once more: the position itself is next.
            for _ in 0..2 {
                let before = account.position(market_index).map_or(0, |p| p.base_lots);
                let landed =
                    liquidate_once(keeper, chain, (&address, &account), market, &stored, report)
                        .await?;
                account = chain
                    .margin_account(&address)
                    .await
                    .map_err(|e| ChainError(e.to_string()))?;
                let after = account.position(market_index).map_or(0, |p| p.base_lots);
                if landed {
                    tracing::info!(%address, market_index, before, after, "liquidated");
                    report.liquidations.push(Liquidation {
                        account: address,
                        market_index,
                        base_lots_before: before,
                        base_lots_after: after,
                    });
                }
                let healthy = health::preview(&account, &snapshots, now, slot)
                    .is_ok_and(|h| h.maintenance >= 0);
                if !landed || after != before || healthy {
                    break;
                }
            }
            let healthy =
                health::preview(&account, &snapshots, now, slot).is_ok_and(|h| h.maintenance >= 0);
            if healthy {
                break;
            }
        }
    }
    Ok(())
}

/// The markets of `account`'s open positions in the order to liquidate
/// them. Standard mode: as the account holds them (each position's
/// requirement is its own). Portfolio mode: by the health at the
/// liquidation end after closing the whole leg at its mark, best first;
/// only the legs that raise it while there are any (a hedge leg, whose
/// closing lowers it, only when none does; a leg that cannot be valued
/// goes last).
pub fn leg_order(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    now: i64,
    slot: u64,
) -> Vec<u16> {
    let legs: Vec<u16> = account
        .active_positions()
        .filter(|(_, p)| p.base_lots != 0)
        .map(|(_, p)| p.market_index)
        .collect();
    if account.margin_mode() != MarginMode::Portfolio {
        return legs;
    }
    let mut ranked: Vec<(Option<I80F48>, u16)> = legs
        .iter()
        .map(|&index| {
            (
                health_without_leg(account, markets, index, now, slot),
                index,
            )
        })
        .collect();
    // Highest health first; `None` (not computable) sorts below any value.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // While some leg raises health, only those: taking a hedge leg off
    // then would only unhedge the account (the next cycle ranks again).
    let now_health = health::preview(account, markets, now, slot)
        .ok()
        .map(|h| h.liquidation_end);
    let improving =
        |h: &Option<I80F48>| matches!((h, now_health), (Some(h), Some(now)) if *h > now);
    if ranked.iter().any(|(h, _)| improving(h)) {
        ranked.retain(|(h, _)| improving(h));
    }
    ranked.into_iter().map(|(_, index)| index).collect()
}

/// Health at the liquidation end of `account` had its position in
/// `market_index` been closed whole at the mark (its orders there
/// cancelled), the fee aside.
fn health_without_leg(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    market_index: u16,
    now: i64,
    slot: u64,
) -> Option<I80F48> {
    use kestrel::engine::perp::{apply_trade, fill_quote};
    use kestrel::engine::Side;
    use kestrel::units::{BaseLots, Ticks};
    let snapshot = markets
        .iter()
        .find(|m| m.market.market_index == market_index)?;
    let (ticks, _) = snapshot.mark_ticks_and_band(now, slot).ok()?;
    let mut without = *account;
    let (slot_index, _) = account
        .active_positions()
        .find(|(_, p)| p.market_index == market_index)?;
    let position = &mut without.positions[slot_index];
    let lots = BaseLots(position.base_lots.unsigned_abs());
    let side = if position.base_lots > 0 {
        Side::Ask
    } else {
        Side::Bid
    };
    let quote = fill_quote(
        Ticks(ticks.round().checked_to_num()?),
        lots,
        snapshot.market.quote_lot_size,
    )?;
    let outcome = apply_trade(position.position(), side, lots, quote)?;
    position.base_lots = 0;
    position.quote_native = 0;
    position.bids_base_lots = 0;
    position.asks_base_lots = 0;
    without.collateral = without.collateral.checked_add(outcome.realized.0)?;
    health::preview(&without, markets, now, slot)
        .ok()
        .map(|h| h.liquidation_end)
}

/// `refresh_risk_arrays` for every option market a position of
/// `accounts` holds (by `markets`, as fetched) whose array a transaction
/// landing now would find stale: per underlying, up to the most one
/// instruction takes (the cycle's own refresh normally leaves none due).
fn risk_array_refreshes(
    accounts: &[&MarginAccount],
    (configured, markets): (&[MarketAccounts], &[MarketSnapshot]),
    now: i64,
    slot: u64,
) -> Vec<solana_sdk::instruction::Instruction> {
    let mut due: Vec<(Pubkey, Vec<Pubkey>)> = Vec::new();
    for account in accounts {
        for (_, position) in account.active_positions() {
            let Some(snapshot) = markets
                .iter()
                .find(|m| m.market.market_index == position.market_index)
            else {
                continue;
            };
            let Some(accounts) = configured
                .iter()
                .find(|m| m.market_index == position.market_index)
            else {
                continue;
            };
            if !snapshot.risk_array_due(now, slot) {
                continue;
            }
            let (underlying, market) = (accounts.underlying.underlying, accounts.market);
            match due.iter_mut().find(|(u, _)| *u == underlying) {
                Some((_, list)) if list.contains(&market) => {}
                Some((_, list)) => list.push(market),
                None => due.push((underlying, vec![market])),
            }
        }
    }
    due.iter()
        .flat_map(|(underlying, list)| {
            list.chunks(kestrel::instructions::MAX_RISK_ARRAYS_PER_REFRESH)
                .map(|batch| ix::refresh_risk_arrays(underlying, batch))
        })
        .collect()
}

/// One `liquidate` of `liquidatee` in `market` by the keeper's liquidator,
/// after the risk arrays it reads that are due: in its own transaction
/// when one refresh instruction covers them (at most ten arrays, about
/// 490,000 CU beside the liquidation), else each refresh first in a
/// transaction of its own. Whether the liquidation landed.
async fn liquidate_once(
    keeper: &Keeper,
    chain: &mut impl Chain,
    (address, account): (&Pubkey, &MarginAccount),
    market: &MarketAccounts,
    stored: &[MarketSnapshot],
    report: &mut CycleReport,
) -> Result<bool, ChainError> {
    let Some(liquidator) = &keeper.liquidator else {
        return Ok(false);
    };
    let clock = chain.clock().await?;
    let liquidator_account = chain
        .margin_account(&liquidator.margin_account)
        .await
        .map_err(|e| ChainError(e.to_string()))?;
    let mut instructions = risk_array_refreshes(
        &[account, &liquidator_account],
        (&keeper.markets, stored),
        clock.unix_timestamp,
        clock.slot,
    );
    if instructions.len() > 1 {
        for refresh in std::mem::take(&mut instructions) {
            let what = format!("refresh risk arrays before liquidating {address}");
            let refresh = keeper.refreshed(chain, market, vec![refresh]).await?;
            if keeper.send(chain, &what, &refresh, &[], report).await? {
                report.risk_array_refreshes += 1;
            }
        }
    }
    instructions.push(liquidate_ix(
        keeper,
        &liquidator.authority,
        &liquidator.margin_account,
        (address, account),
        &liquidator_account,
        market,
    ));
    let what = format!("liquidate {address} in market {}", market.market_index);
    let instructions = keeper.refreshed(chain, market, instructions).await?;
    keeper
        .send(
            chain,
            &what,
            &instructions,
            &[&liquidator.authority],
            report,
        )
        .await
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
