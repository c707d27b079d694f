//! Fuzzes the money math: position trades (exact conservation), fees
//! (rounding for the exchange), 128-bit division (equal to `/`), the price
//! band, oracle validation and the price records, health, funding settlement
//! and the interval premium, socialized loss and liquidation sizing. Any panic or broken property is a
//! finding. `cargo fuzz run perp_math` (from programs/kestrel).
#![no_main]

use kestrel::engine::fastdiv::{div_i128, div_pow10};
use kestrel::engine::funding;
use kestrel::engine::liquidation::Liquidation;
use kestrel::engine::perp::{self, Position, PriceBand};
use kestrel::engine::risk::{health, HealthKind, PerpExposure};
use kestrel::engine::Side;
use kestrel::oracle::{
    validate, FeedRole, OracleBounds, OracleError, OracleSource, PriceRecords, RawPrice,
};
use kestrel::units::{BaseLots, NativeUnits, PricePerLot, SignedBaseLots, SignedNativeUnits};
use libfuzzer_sys::fuzz_target;

/// Fixed-width little-endian fields; missing bytes read as zero.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        let n = self.0.len().min(8);
        bytes[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(bytes)
    }

    fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    fn u128(&mut self) -> u128 {
        u128::from(self.u64()) | (u128::from(self.u64()) << 64)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut f = Fields(data);

    // A trade moves collateral + entry quote by exactly its quote flow.
    let base_lots = f.i64();
    let quote = f.i64();
    // Reachable states only: a flat position holds no entry quote.
    let before = Position {
        base_lots: SignedBaseLots(base_lots),
        quote: SignedNativeUnits(if base_lots == 0 { 0 } else { quote }),
    };
    let bought = f.u64() & 1 == 1;
    let side = if bought { Side::Bid } else { Side::Ask };
    let (lots, paid) = (f.u64(), f.u64());
    if let Some(after) = perp::apply_trade(before, side, BaseLots(lots), NativeUnits(paid)) {
        let flow = if bought {
            -i128::from(paid)
        } else {
            i128::from(paid)
        };
        assert_eq!(
            i128::from(after.realized.0) + i128::from(after.position.quote.0)
                - i128::from(before.quote.0),
            flow
        );
        let signed = if bought {
            i128::from(lots)
        } else {
            -i128::from(lots)
        };
        assert_eq!(
            i128::from(after.position.base_lots.0),
            i128::from(before.base_lots.0) + signed
        );
        if after.position.base_lots.is_zero() {
            assert_eq!(after.position.quote.0, 0);
        }
    }

    // Fees round for the exchange; a rebate never exceeds the taker fee of
    // the same quote when its rate does not.
    let quote = NativeUnits(f.u64());
    // MarketParams::validate caps fees at 1,000 bps, which keeps every fee
    // and rebate of a u64 quote inside i64.
    let taker_bps = (f.u64() % 1_001) as u32;
    let maker_bps = -((f.u64() % (u64::from(taker_bps) + 1)) as i32);
    if let Some(fee) = perp::taker_fee(quote, taker_bps) {
        let exact = u128::from(quote.0) * u128::from(taker_bps);
        assert!(u128::from(fee) * 10_000 >= exact);
        assert!(u128::from(fee) * 10_000 < exact + 10_000);
        let rebate = perp::maker_rebate(quote, maker_bps).expect("smaller than the fee");
        assert!(rebate <= fee);
    }

    // Division in 64-bit steps equals Rust's.
    let (n, d) = (f.u128() as i128, f.u64());
    if d != 0 {
        assert_eq!(div_i128(n, d), Some(n / i128::from(d)));
    }
    let k = (f.u64() % 39) as u32;
    assert_eq!(
        div_pow10(n.unsigned_abs(), k),
        n.unsigned_abs() / 10u128.pow(k)
    );

    // The band never panics and is ordered around a positive price.
    let ticks = fixed::types::I80F48::from_bits((f.u128() >> 1) as i128);
    if let Some(band) = PriceBand::around(ticks, (f.u64() % 10_001) as u32) {
        assert!(band.low.0 >= 1);
    }

    // Oracle validation and health: named outcomes only, never a panic.
    let raw = RawPrice {
        mantissa: f.u128() as i128,
        confidence: f.u128(),
        exponent: (f.i64() % 40) as i32,
        publish_time: f.i64(),
        publish_slot: f.u64(),
        source: OracleSource::Pyth,
    };
    let bounds = OracleBounds {
        max_age_seconds: f.u64() as u32,
        max_age_slots: f.u64() as u32,
        max_confidence_bps: (f.u64() % 10_001) as u32,
        base_decimals: (f.u64() % 19) as u8,
        quote_decimals: (f.u64() % 19) as u8,
    };
    if let Ok(price) = validate(&raw, &bounds, f.i64(), f.u64()) {
        assert!(price.price >= 0);
        let _ = price.confidence();
        let initial_bps = (f.u64() % 10_000) as u32 + 1;
        let exposure = PerpExposure {
            base: f.i64(),
            quote: f.i64(),
            bids: f.u64(),
            asks: f.u64(),
            unsettled_funding: fixed::types::I80F48::ZERO,
            price: price.price,
            // Any stable price: initial health stays below maintenance.
            stable_price: fixed::types::I80F48::from_bits((f.u128() >> 1) as i128),
            initial_margin_bps: initial_bps,
            maintenance_margin_bps: initial_bps / 2,
            weighs_profit: f.u64() % 2 == 0,
        };
        let collateral = f.i64();
        if let (Some(initial), Some(maintenance)) = (
            health(collateral, &[exposure], HealthKind::Initial),
            health(collateral, &[exposure], HealthKind::Maintenance),
        ) {
            assert!(maintenance >= initial);
        }
    }

    // Funding: any split of equal open interest pays out no more than it
    // takes in, by at most one unit per settlement.
    let delta = fixed::types::I80F48::from_bits(f.u128() as i128 >> 20);
    let (long_a, long_b) = ((f.u64() >> 24) as i64, (f.u64() >> 24) as i64);
    let short_a = (f.u64() >> 24) as i64 % (long_a + long_b + 1);
    let short_b = long_a + long_b - short_a;
    let owed = |lots: i64| funding::funding_owed(delta, fixed::types::I80F48::ZERO, lots);
    if let (Some(a), Some(b), Some(c), Some(d)) =
        (owed(long_a), owed(long_b), owed(-short_a), owed(-short_b))
    {
        let net = i128::from(a) + i128::from(b) + i128::from(c) + i128::from(d);
        assert!((0..=4).contains(&net), "funding nets to {net}");
    }
    let loss = f.u64() >> 8;
    let open_lots = f.u64() >> 40;
    if let Some(per_lot) = funding::loss_per_lot(loss, open_lots) {
        let charged = per_lot.checked_mul_int(i128::from(open_lots));
        assert!(charged.is_none_or(|c| c >= fixed::types::I80F48::from_num(loss)));
    }

    // Liquidation: never flips the position, never more than the cap, and
    // the fewest lots that restore liquidation-end health.
    let maintenance = (f.u64() % 5_000) as u32 + 1;
    let plan = Liquidation {
        rest_of_account: fixed::types::I80F48::from_num(f.i64() >> 16),
        position: Position {
            base_lots: SignedBaseLots(f.i64() >> 24),
            quote: SignedNativeUnits(f.i64() >> 8),
        },
        price_per_lot: PricePerLot(fixed::types::I80F48::from_bits(
            i128::from(f.u64() >> 8) << 20,
        )),
        initial_margin_bps: maintenance + (f.u64() % 5_000) as u32 + 1,
        maintenance_margin_bps: maintenance,
        fee_bps: (f.u64() % u64::from(maintenance)) as u32,
        option_requirement_per_lot: None,
        // Half the cases lifted with size (the fewest lots then searched
        // from none).
        margin_terms: kestrel::engine::margin_scaling::MarginTerms {
            scale_bps: 10_000 + (f.u64() % 20_000) as u32,
            size_margin_bps: (f.u64() % 2) as u32 * (f.u64() % 200) as u32,
            native_per_unit: 1 + f.u64() % 1_000_000,
        },
        base_lot_size: 1 + f.u64() % 1_000_000,
    };
    let cap = f.u64();
    if let Some(lots) = plan.lots(cap) {
        let size = plan.position.base_lots.unsigned_abs().min(cap);
        assert!(lots <= size);
        if lots > 0 {
            if let Some(short) = plan.health_after(lots - 1) {
                assert!(short < 0, "one lot fewer would have done");
            }
            if let Some((position, _)) = plan.trade(lots) {
                assert!(
                    position.base_lots.is_zero()
                        || position.base_lots.0.signum() == plan.position.base_lots.0.signum()
                );
            }
        }
        if lots < size && lots > 0 {
            if let Some(after) = plan.health_after(lots) {
                assert!(after >= 0, "stopped short of the target");
            }
        }
    }

    // Price records: whatever updates arrive, in any order, each feed's
    // record only moves forward and a price comes out only from a current
    // record of its feed, never from an older update.
    let mut records = PriceRecords::default();
    let record_bounds = OracleBounds {
        max_age_seconds: (f.u64() % 600) as u32 + 1,
        max_age_slots: (f.u64() % 100) as u32,
        max_confidence_bps: (f.u64() % 10_000) as u32 + 1,
        base_decimals: 9,
        quote_decimals: 6,
    };
    let deviation = (f.u64() % 10_000) as u32 + 1;
    let mut now = (f.u64() >> 40) as i64;
    for _ in 0..4 {
        now += (f.u64() % 120) as i64;
        let slot = now as u64;
        let mut update = || {
            let raw = RawPrice {
                mantissa: (f.u64() >> 20) as i128,
                confidence: u128::from(f.u64() >> 40),
                exponent: -8,
                publish_time: now - (f.u64() % 200) as i64,
                publish_slot: slot.saturating_sub(f.u64() % 200),
                source: OracleSource::Pyth,
            };
            if f.u64() & 3 == 0 {
                Err(OracleError::InsufficientVerification)
            } else {
                Ok(raw)
            }
        };
        let (primary, fallback) = (update(), update());
        let mut next = records;
        next.primary = records.primary.observe(primary, &record_bounds);
        next.fallback = records.fallback.observe(fallback, &record_bounds);
        for (old, new) in [
            (records.primary, next.primary),
            (records.fallback, next.fallback),
        ] {
            assert!((new.publish_time, new.publish_slot) >= (old.publish_time, old.publish_slot));
        }
        let reading = next.accept(&record_bounds, true, deviation, now, slot);
        if let Ok(accepted) = reading.current {
            let record = match accepted.feed {
                FeedRole::Primary => reading.records.primary,
                FeedRole::Fallback => reading.records.fallback,
            };
            assert!(accepted.price > 0);
            assert_eq!(accepted.publish_time, record.publish_time);
            assert!(now - accepted.publish_time <= i64::from(record_bounds.max_age_seconds));
            assert_eq!(reading.records.last_good_price(), Some(accepted.price));
        } else {
            assert_eq!(reading.records.last_good, next.last_good);
        }
        records = reading.records;
    }

    // The funding premium of an interval never exceeds either end's.
    let (a, b) = (
        fixed::types::I80F48::from_bits(f.i64().into()),
        fixed::types::I80F48::from_bits(f.i64().into()),
    );
    let paid = funding::interval_premium(a, b);
    assert!(paid.abs() <= a.abs() && paid.abs() <= b.abs());
});
