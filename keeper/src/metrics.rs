//! The keeper's counters and gauges, rendered in Prometheus' text format.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use kestrel::engine::event_queue::{AnyEvent, Event};
use kestrel::state::{Market, Underlying};

use crate::cranks::{settlement_stage, CycleReport, SettlementStage};

#[derive(Default)]
pub struct Metrics {
    pub cycles: AtomicU64,
    pub cycle_errors: AtomicU64,
    pub underlying_refreshes: AtomicU64,
    pub volatility_refreshes: AtomicU64,
    pub events_consumed: AtomicU64,
    pub funding_updates: AtomicU64,
    pub basis_updates: AtomicU64,
    pub settlement_samples: AtomicU64,
    pub markets_settled: AtomicU64,
    pub positions_settled: AtomicU64,
    pub markets_closed: AtomicU64,
    pub liquidations: AtomicU64,
    pub unwinds: AtomicU64,
    pub bankruptcies_settled: AtomicU64,
    /// Refusals because another keeper got there first.
    pub races: AtomicU64,
    pub tx_failures: AtomicU64,
    pub unconfigured_work: AtomicU64,
    pub liquidatable_accounts: AtomicU64,
    /// Bankrupt accounts nothing could settle at the last cycle.
    pub bankruptcies_waiting: AtomicU64,
    /// Cluster unix time of the last completed cycle.
    pub last_cycle_unix: AtomicI64,
    /// Per market: (pending events, age in seconds of the oldest).
    queues: Mutex<BTreeMap<u16, (u64, i64)>>,
    /// Per market: the liquidator's position in base lots, as last read.
    liquidator_positions: Mutex<BTreeMap<u16, i64>>,
    /// Per underlying: (age in seconds of the last good price stored, if
    /// any; whether the stored price is current).
    underlyings: Mutex<BTreeMap<u16, (Option<i64>, bool)>>,
    /// Per market with an expiry: (seconds to expiry, seconds its
    /// settlement average covers so far, stage).
    expiries: Mutex<BTreeMap<u16, (i64, i64, SettlementStage)>>,
}

/// A [`SettlementStage`] as a gauge's value.
fn stage_value(stage: SettlementStage) -> u8 {
    match stage {
        SettlementStage::Trading => 0,
        SettlementStage::Window => 1,
        SettlementStage::Expired => 2,
        SettlementStage::Settled => 3,
        SettlementStage::Closed => 4,
    }
}

impl Metrics {
    pub fn record_cycle(&self, report: &CycleReport, now: i64) {
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        add(&self.cycles, 1);
        add(&self.underlying_refreshes, report.underlying_refreshes);
        add(&self.volatility_refreshes, report.volatility_refreshes);
        add(&self.events_consumed, report.events_consumed);
        add(&self.funding_updates, report.funding_updates);
        add(&self.basis_updates, report.basis_updates);
        add(&self.settlement_samples, report.settlement_samples);
        add(&self.markets_settled, report.markets_settled.len() as u64);
        add(
            &self.positions_settled,
            report.positions_settled.len() as u64,
        );
        add(&self.markets_closed, report.markets_closed.len() as u64);
        add(&self.liquidations, report.liquidations.len() as u64);
        add(&self.unwinds, report.unwinds.len() as u64);
        add(
            &self.bankruptcies_settled,
            report.bankruptcies_settled.len() as u64,
        );
        add(&self.races, report.races);
        add(&self.tx_failures, report.failures.len() as u64);
        add(&self.unconfigured_work, report.unconfigured.len() as u64);
        self.liquidatable_accounts
            .store(report.liquidatable.len() as u64, Ordering::Relaxed);
        self.bankruptcies_waiting
            .store(report.bankruptcies_waiting.len() as u64, Ordering::Relaxed);
        self.last_cycle_unix.store(now, Ordering::Relaxed);
    }

    pub fn record_cycle_error(&self) {
        self.cycle_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The queue as last read: its depth and how far the crank lags behind
    /// its oldest event.
    pub fn observe_queue(&self, market_index: u16, events: &[AnyEvent], now: i64) {
        let oldest = events.first().and_then(|e| match e.decode()? {
            Event::Fill(fill) => Some(fill.timestamp),
            Event::Out(out) => Some(out.timestamp),
        });
        let lag = oldest.map_or(0, |t| now.saturating_sub(t as i64).max(0));
        if let Ok(mut queues) = self.queues.lock() {
            queues.insert(market_index, (events.len() as u64, lag));
        }
    }

    /// An underlying as stored after the cycle's refresh: how old its price
    /// is, and whether its markets have a current one.
    pub fn observe_underlying(&self, index: u16, underlying: &Underlying, now: i64, slot: u64) {
        let age = underlying
            .prices
            .last_good_price()
            .map(|_| now.saturating_sub(underlying.prices.last_good.publish_time));
        let current = underlying.current_price(now, slot).is_ok();
        if let Ok(mut underlyings) = self.underlyings.lock() {
            underlyings.insert(index, (age, current));
        }
    }

    /// A market with an expiry as last read: how far its expiry is, how
    /// much of its window its settlement average covers, where its
    /// settlement stands. A
    /// market without one is not recorded.
    pub fn observe_expiry(&self, market_index: u16, market: &Market, now: i64) {
        let Some(stage) = settlement_stage(market, now) else {
            return;
        };
        let to_expiry = market.future.params.expiry.saturating_sub(now);
        let covered = market.future.settlement().covered_seconds();
        if let Ok(mut expiries) = self.expiries.lock() {
            expiries.insert(market_index, (to_expiry, covered, stage));
        }
    }

    /// The liquidator's positions as just read; markets it left read 0.
    pub fn observe_liquidator(&self, positions: &[(u16, i64)]) {
        if let Ok(mut held) = self.liquidator_positions.lock() {
            held.values_mut().for_each(|lots| *lots = 0);
            held.extend(positions.iter().copied());
        }
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "kestrel_keeper_cycles_total",
                "Keeper cycles completed",
                &self.cycles,
            ),
            (
                "kestrel_keeper_cycle_errors_total",
                "Cycles abandoned because the cluster did not answer",
                &self.cycle_errors,
            ),
            (
                "kestrel_keeper_underlying_refreshes_total",
                "refresh_underlying transactions landed",
                &self.underlying_refreshes,
            ),
            (
                "kestrel_keeper_volatility_refreshes_total",
                "refresh_volatility transactions landed (underlyings with options)",
                &self.volatility_refreshes,
            ),
            (
                "kestrel_keeper_events_consumed_total",
                "Events applied by this keeper's cranks",
                &self.events_consumed,
            ),
            (
                "kestrel_keeper_funding_updates_total",
                "update_funding transactions landed",
                &self.funding_updates,
            ),
            (
                "kestrel_keeper_basis_updates_total",
                "update_basis transactions landed (dated futures)",
                &self.basis_updates,
            ),
            (
                "kestrel_keeper_settlement_samples_total",
                "sample_settlement transactions landed (settlement checkpoints captured)",
                &self.settlement_samples,
            ),
            (
                "kestrel_keeper_markets_settled_total",
                "Settlement prices fixed by this keeper's settle_expired",
                &self.markets_settled,
            ),
            (
                "kestrel_keeper_positions_settled_total",
                "Positions settled in cash by this keeper's settle_expired",
                &self.positions_settled,
            ),
            (
                "kestrel_keeper_markets_closed_total",
                "Expired markets this keeper's settlements left closed",
                &self.markets_closed,
            ),
            (
                "kestrel_keeper_liquidations_total",
                "Liquidations landed",
                &self.liquidations,
            ),
            (
                "kestrel_keeper_unwinds_total",
                "Liquidator orders that closed some of a position taken over",
                &self.unwinds,
            ),
            (
                "kestrel_keeper_bankruptcies_settled_total",
                "Bankruptcies settled",
                &self.bankruptcies_settled,
            ),
            (
                "kestrel_keeper_races_total",
                "Cranks refused because another keeper did them first",
                &self.races,
            ),
            (
                "kestrel_keeper_tx_failures_total",
                "Transactions refused for another reason",
                &self.tx_failures,
            ),
            (
                "kestrel_keeper_unconfigured_work_total",
                "Liquidations and bankruptcies left undone: their market is not in this keeper's config",
                &self.unconfigured_work,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let gauge = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        };
        gauge(
            &mut out,
            "kestrel_keeper_liquidatable_accounts",
            "Accounts under maintenance health at the last cycle",
        );
        let _ = writeln!(
            out,
            "kestrel_keeper_liquidatable_accounts {}",
            self.liquidatable_accounts.load(Ordering::Relaxed)
        );
        gauge(
            &mut out,
            "kestrel_keeper_bankruptcies_waiting",
            "Bankrupt accounts at the last cycle with no insurance fund and no open interest to cover them",
        );
        let _ = writeln!(
            out,
            "kestrel_keeper_bankruptcies_waiting {}",
            self.bankruptcies_waiting.load(Ordering::Relaxed)
        );
        gauge(
            &mut out,
            "kestrel_keeper_last_cycle_timestamp_seconds",
            "Cluster unix time of the last completed cycle",
        );
        let _ = writeln!(
            out,
            "kestrel_keeper_last_cycle_timestamp_seconds {}",
            self.last_cycle_unix.load(Ordering::Relaxed)
        );
        if let Ok(queues) = self.queues.lock() {
            gauge(
                &mut out,
                "kestrel_keeper_pending_events",
                "Events waiting in a market's queue",
            );
            for (market, (pending, _)) in queues.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_pending_events{{market=\"{market}\"}} {pending}"
                );
            }
            gauge(
                &mut out,
                "kestrel_keeper_crank_lag_seconds",
                "Age of the oldest unconsumed event",
            );
            for (market, (_, lag)) in queues.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_crank_lag_seconds{{market=\"{market}\"}} {lag}"
                );
            }
        }
        if let Ok(underlyings) = self.underlyings.lock() {
            gauge(
                &mut out,
                "kestrel_keeper_underlying_price_age_seconds",
                "Age of an underlying's last good stored price (absent: none yet)",
            );
            for (underlying, (age, _)) in underlyings.iter() {
                if let Some(age) = age {
                    let _ = writeln!(
                        out,
                        "kestrel_keeper_underlying_price_age_seconds{{underlying=\"{underlying}\"}} {age}"
                    );
                }
            }
            gauge(
                &mut out,
                "kestrel_keeper_underlying_price_current",
                "1 while an underlying's stored price is current (its markets trade), else 0",
            );
            for (underlying, (_, current)) in underlyings.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_underlying_price_current{{underlying=\"{underlying}\"}} {}",
                    u8::from(*current)
                );
            }
        }
        if let Ok(expiries) = self.expiries.lock() {
            gauge(
                &mut out,
                "kestrel_keeper_seconds_to_expiry",
                "Seconds until a dated future's (or delisted perpetual's) expiry; negative after it",
            );
            for (market, (to_expiry, _, _)) in expiries.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_seconds_to_expiry{{market=\"{market}\"}} {to_expiry}"
                );
            }
            gauge(
                &mut out,
                "kestrel_keeper_settlement_covered_seconds",
                "Seconds of a market's settlement window its average covers so far (it settles at half)",
            );
            for (market, (_, covered, _)) in expiries.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_settlement_covered_seconds{{market=\"{market}\"}} {covered}"
                );
            }
            gauge(
                &mut out,
                "kestrel_keeper_settlement_stage",
                "0 trading, 1 in the settlement window, 2 expired, 3 settled (positions left), 4 closed",
            );
            for (market, (_, _, stage)) in expiries.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_settlement_stage{{market=\"{market}\"}} {}",
                    stage_value(*stage)
                );
            }
        }
        if let Ok(held) = self.liquidator_positions.lock() {
            gauge(
                &mut out,
                "kestrel_keeper_liquidator_position_lots",
                "The liquidator's position in base lots (market risk the keeper carries)",
            );
            for (market, lots) in held.iter() {
                let _ = writeln!(
                    out,
                    "kestrel_keeper_liquidator_position_lots{{market=\"{market}\"}} {lots}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_per_market_gauges() {
        let metrics = Metrics::default();
        let report = CycleReport {
            underlying_refreshes: 1,
            events_consumed: 7,
            basis_updates: 2,
            settlement_samples: 3,
            markets_settled: vec![1],
            positions_settled: vec![crate::cranks::SettledPosition {
                account: kestrel_sdk::Pubkey::new_unique(),
                market_index: 1,
                base_lots: -200,
                value_native: -284_666_667,
            }],
            markets_closed: vec![1],
            races: 1,
            failures: vec!["x".into()],
            unconfigured: vec!["y".into(), "z".into()],
            ..CycleReport::default()
        };
        metrics.record_cycle(&report, 1_000);
        metrics.record_cycle(&report, 1_010);
        metrics.observe_queue(3, &[], 1_010);
        metrics.observe_liquidator(&[(0, -5), (3, 7)]);
        metrics.observe_liquidator(&[(3, 2)]);
        let mut underlying: Underlying = bytemuck::Zeroable::zeroed();
        metrics.observe_underlying(1, &underlying, 1_010, 5);
        underlying.prices.last_good_source = 1;
        underlying.prices.last_good.price = [0, 150];
        underlying.prices.last_good.publish_time = 1_000;
        metrics.observe_underlying(0, &underlying, 1_010, 5);
        let mut future: Market = bytemuck::Zeroable::zeroed();
        future.kind = kestrel::state::InstrumentKind::Future as u8;
        future.future.params.expiry = 2_000;
        future.future.params.settlement_window_seconds = 1_000;
        future.future.settlement.start.time = 1_020;
        future.future.settlement.end.time = 1_080;
        future.future.settlement.end.covered = 60;
        metrics.observe_expiry(1, &future, 1_010);
        // A perpetual has no expiry to watch.
        metrics.observe_expiry(0, &bytemuck::Zeroable::zeroed(), 1_010);
        let text = metrics.render();
        assert!(
            !text.contains("kestrel_keeper_seconds_to_expiry{market=\"0\"}"),
            "{text}"
        );
        assert!(
            !text.contains("kestrel_keeper_underlying_price_age_seconds{underlying=\"1\"}"),
            "no price yet, no age: {text}"
        );
        for line in [
            "kestrel_keeper_cycles_total 2",
            "kestrel_keeper_underlying_refreshes_total 2",
            "kestrel_keeper_underlying_price_age_seconds{underlying=\"0\"} 10",
            "kestrel_keeper_underlying_price_current{underlying=\"0\"} 0",
            "kestrel_keeper_underlying_price_current{underlying=\"1\"} 0",
            "kestrel_keeper_events_consumed_total 14",
            "kestrel_keeper_basis_updates_total 4",
            "kestrel_keeper_settlement_samples_total 6",
            "kestrel_keeper_markets_settled_total 2",
            "kestrel_keeper_positions_settled_total 2",
            "kestrel_keeper_markets_closed_total 2",
            "kestrel_keeper_seconds_to_expiry{market=\"1\"} 990",
            "kestrel_keeper_settlement_covered_seconds{market=\"1\"} 60",
            "kestrel_keeper_settlement_stage{market=\"1\"} 1",
            "kestrel_keeper_races_total 2",
            "kestrel_keeper_tx_failures_total 2",
            "kestrel_keeper_unconfigured_work_total 4",
            "kestrel_keeper_last_cycle_timestamp_seconds 1010",
            "kestrel_keeper_pending_events{market=\"3\"} 0",
            "kestrel_keeper_liquidator_position_lots{market=\"0\"} 0",
            "kestrel_keeper_liquidator_position_lots{market=\"3\"} 2",
            "# TYPE kestrel_keeper_liquidations_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
