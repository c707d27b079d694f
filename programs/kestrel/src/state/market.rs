use anchor_lang::prelude::*;

use fixed::types::I80F48;

use crate::engine::black_scholes::OptionSide;
use crate::engine::fastmul::FastMulInt;
use crate::engine::funding;
use crate::engine::future::BasisEstimate;
use crate::engine::perp::{self, PriceBand};
use crate::engine::price_integral::{self, PriceIntegral, SettlementCapture};
use crate::engine::scenario_margin::{RiskArray, SCENARIOS};
use crate::engine::{BookSide, EventQueue, BOOK_SIDE_ORDERS, EVENT_QUEUE_EVENTS};
use crate::error::{KestrelError, OrOverflow};
use crate::state::{PerpPosition, ScenarioConfig, StoredCheckpoint};
use crate::units::{NativeUnits, PricePerLot};

/// PDA seeds: `[MARKET_SEED, exchange, market_index (u16 LE)]`.
pub const MARKET_SEED: &[u8] = b"market";

pub const BOOK_SIDE_BYTES: usize = BookSide::byte_len(BOOK_SIDE_ORDERS);
pub const EVENT_QUEUE_BYTES: usize = EventQueue::byte_len(EVENT_QUEUE_EVENTS);
/// Most resting orders one taking order may touch; bounds compute per call.
pub const MAX_FILLS_PER_ORDER: u16 = 64;
/// Shortest funding period a market may have.
pub const MIN_FUNDING_PERIOD_SECONDS: u32 = 60;

/// What a market lists. Stored as a byte: append new variants only.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum InstrumentKind {
    /// A perpetual future: funding ties it to the underlying's price.
    Perp,
    /// A dated future: trades at the underlying's price plus a basis until
    /// its expiry, then settles in cash at the settlement window's TWAP.
    Future,
    /// A European call or put on the underlying, cash-settled at expiry for
    /// its intrinsic value at the settlement window's TWAP; marked at its
    /// Black-Scholes value (`engine::black_scholes`).
    Option,
}

impl TryFrom<u8> for InstrumentKind {
    type Error = KestrelError;

    fn try_from(value: u8) -> core::result::Result<Self, KestrelError> {
        match value {
            0 => Ok(Self::Perp),
            1 => Ok(Self::Future),
            2 => Ok(Self::Option),
            _ => Err(KestrelError::Unreachable),
        }
    }
}

/// What a dated future is listed with. A perpetual delisted in an emergency
/// gets the settlement half of it (`delist_market`).
#[derive(
    AnchorSerialize,
    AnchorDeserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    bytemuck::Pod,
    bytemuck::Zeroable,
)]
#[repr(C)]
pub struct FutureParams {
    /// Unix time trading stops and the settlement window ends.
    pub expiry: i64,
    /// The window before expiry whose TWAP of the underlying's accepted
    /// price is the settlement price.
    pub settlement_window_seconds: u32,
    /// Largest |basis| (book mid less the underlying's price) the mark
    /// carries, as a share of the price.
    pub max_basis_bps: u32,
    /// The basis estimate's smoothing window.
    pub basis_window_seconds: u32,
    /// The last seconds before expiry over which the mark's basis fades to
    /// zero, so the mark meets the underlying's price at expiry.
    pub convergence_seconds: u32,
}

/// expiry + four u32 windows and bounds.
const _: () = assert!(core::mem::size_of::<FutureParams>() == 8 + 4 * 4);

/// Longest settlement window: a day.
pub const MAX_SETTLEMENT_WINDOW_SECONDS: u32 = 24 * 3_600;
/// Shortest: five minutes (five checkpoints of the underlying's price
/// integral), so no one update settles a market.
pub const MIN_SETTLEMENT_WINDOW_SECONDS: u32 = 300;

impl FutureParams {
    /// Checks the parameters of a future listed at unix time `now`, on a
    /// market whose fill band is `price_band_bps`.
    pub fn validate(&self, now: i64, price_band_bps: u32) -> Result<()> {
        self.validate_settlement(now)?;
        require!(
            self.basis_window_seconds > 0
                // A basis beyond the band would put the mark where no fill
                // may happen.
                && self.max_basis_bps <= price_band_bps,
            KestrelError::InvalidFutureParams
        );
        Ok(())
    }

    /// Checks the expiry and settlement window of an option listed at unix
    /// time `now`: an option has no basis, so those fields are zero.
    pub fn validate_for_option(&self, now: i64) -> Result<()> {
        self.validate_settlement(now)?;
        require!(
            self.max_basis_bps == 0
                && self.basis_window_seconds == 0
                && self.convergence_seconds == 0,
            KestrelError::InvalidFutureParams
        );
        Ok(())
    }

    fn validate_settlement(&self, now: i64) -> Result<()> {
        require!(
            (MIN_SETTLEMENT_WINDOW_SECONDS..=MAX_SETTLEMENT_WINDOW_SECONDS)
                .contains(&self.settlement_window_seconds)
                && self.expiry > now.saturating_add(i64::from(self.settlement_window_seconds))
                // The settlement averages between two checkpoints of the
                // underlying's price integral.
                && price_integral::on_grid(self.expiry)
                && price_integral::on_grid(self.window_start()),
            KestrelError::InvalidFutureParams
        );
        Ok(())
    }

    /// Where the settlement window starts.
    pub fn window_start(&self) -> i64 {
        self.expiry
            .saturating_sub(i64::from(self.settlement_window_seconds))
    }
}

/// The engine's [`SettlementCapture`] as a market stores it (the same
/// layout; [`FutureState::settlement`] converts).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredSettlementCapture {
    pub start: StoredCheckpoint,
    pub end: StoredCheckpoint,
}

/// The engine's [`BasisEstimate`] as a market stores it (the same layout;
/// [`FutureState::basis`] converts).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredBasisEstimate {
    pub basis: [u64; 2],
    pub last_update: i64,
    pub samples: u32,
    pub padding: u32,
}

const _: () = assert!(
    core::mem::size_of::<StoredSettlementCapture>() == core::mem::size_of::<SettlementCapture>()
);
const _: () =
    assert!(core::mem::size_of::<StoredBasisEstimate>() == core::mem::size_of::<BasisEstimate>());

/// The dated-future block of a market: its parameters, the basis behind its
/// mark, what it has captured of its underlying's price integral for the
/// settlement average and, once fixed, the settlement price. All zero
/// for a perpetual that was never delisted.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FutureState {
    pub params: FutureParams,
    pub settlement: StoredSettlementCapture,
    pub basis: StoredBasisEstimate,
    /// The book's premium over the underlying (native quote per native
    /// base, I80F48 halves) at the last `update_basis`: an interval between
    /// samples counts the smaller of its two ends, so the book of one
    /// instant cannot set the basis (as funding's mark premium).
    pub last_premium: [u64; 2],
    /// Native quote per native base (I80F48 halves); set when the market
    /// becomes Settled.
    pub settlement_price: [u64; 2],
    /// The lots of the positions settled so far, which the market took over
    /// as their counterparty: with the positions not yet settled they sum
    /// to zero, and once all are settled it is zero itself.
    pub settled_base_lots: i64,
}

/// params 24 + settlement capture 64 + basis 32 + last premium 16 +
/// settlement price 16 + settled lots 8.
pub const FUTURE_STATE_SIZE: usize = 24 + 64 + 32 + 16 + 16 + 8;
const _: () = assert!(core::mem::size_of::<FutureState>() == FUTURE_STATE_SIZE);

impl FutureState {
    /// What the settlement has captured, for the engine.
    pub fn settlement(&self) -> SettlementCapture {
        bytemuck::cast(self.settlement)
    }

    pub fn set_settlement(&mut self, capture: SettlementCapture) {
        self.settlement = bytemuck::cast(capture);
    }

    /// The basis estimate, for the engine.
    pub fn basis(&self) -> BasisEstimate {
        bytemuck::cast(self.basis)
    }

    pub fn set_basis(&mut self, basis: BasisEstimate) {
        self.basis = bytemuck::cast(basis);
    }
}

/// What an option market is listed with, besides its expiry and settlement
/// window (its [`FutureParams`]). A lot is one contract of `base_lot_size`
/// native base units; prices are per lot, as on every market.
#[derive(
    AnchorSerialize,
    AnchorDeserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    bytemuck::Pod,
    bytemuck::Zeroable,
)]
#[repr(C)]
pub struct OptionParams {
    /// Native quote per native base (I80F48 halves, low first).
    pub strike: [u64; 2],
    /// This series' implied volatility relative to the underlying's
    /// at-the-money input: σ = ATM × term / 10,000 + skew / 10,000 ×
    /// (K − S) / S, within the underlying's volatility bounds. The term
    /// structure (per expiry) and the skew (per strike) are the admin's.
    pub volatility_term_bps: u32,
    pub volatility_skew_bps: i32,
    /// The bands' half-widths are the market's fractions of the model value
    /// plus this share of the spot: a cheap option's band is wide enough to
    /// quote (one share of its value is less than a tick).
    pub band_spot_bps: u32,
    /// 0: call, 1: put ([`OptionSide`]).
    pub side: u8,
    pub padding: [u8; 3],
}

/// strike + three u32 terms + side and padding.
pub const OPTION_PARAMS_SIZE: usize = 16 + 3 * 4 + 4;
const _: () = assert!(core::mem::size_of::<OptionParams>() == OPTION_PARAMS_SIZE);

/// An option's risk array and the point it was computed at
/// (`engine::scenario_margin::risk_array`): I80F48 halves, as the funding
/// indexes. Health reads it while the spot and the option's volatility are
/// within the underlying's tolerance of `spot` and `volatility`, it is
/// younger than the maximum age, its scan range is at least the one health
/// would apply now and the grid's version is the underlying's
/// ([`StoredRiskArray::read`]).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredRiskArray {
    pub spot: [u64; 2],
    pub volatility: [u64; 2],
    /// 0: never computed.
    pub computed_at: i64,
    pub scan_range_bps: u32,
    pub config_version: u32,
    pub entries: [[u64; 2]; SCENARIOS],
}

pub const STORED_RISK_ARRAY_SIZE: usize = 16 + 16 + 8 + 8 + 16 * SCENARIOS;
const _: () = assert!(core::mem::size_of::<StoredRiskArray>() == STORED_RISK_ARRAY_SIZE);

/// A risk array as health reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskArrayRead {
    pub spot: I80F48,
    pub volatility: I80F48,
    pub computed_at: i64,
    pub scan_range_bps: u32,
    pub config_version: u32,
    pub entries: RiskArray,
}

impl StoredRiskArray {
    pub fn store(&mut self, read: &RiskArrayRead) {
        self.spot = crate::engine::funding::to_parts(read.spot);
        self.volatility = crate::engine::funding::to_parts(read.volatility);
        self.computed_at = read.computed_at;
        self.scan_range_bps = read.scan_range_bps;
        self.config_version = read.config_version;
        for (stored, entry) in self.entries.iter_mut().zip(&read.entries) {
            *stored = crate::engine::funding::to_parts(*entry);
        }
    }

    /// The array, `None` before the first computation.
    #[inline(always)]
    pub fn read(&self) -> Option<RiskArrayRead> {
        if self.computed_at == 0 {
            return None;
        }
        let mut entries = [I80F48::ZERO; SCENARIOS];
        for (entry, stored) in entries.iter_mut().zip(&self.entries) {
            *entry = crate::engine::funding::from_parts(*stored);
        }
        Some(RiskArrayRead {
            spot: crate::engine::funding::from_parts(self.spot),
            volatility: crate::engine::funding::from_parts(self.volatility),
            computed_at: self.computed_at,
            scan_range_bps: self.scan_range_bps,
            config_version: self.config_version,
            entries,
        })
    }
}

/// An option's risk array holds for at most this share (percent) of the
/// time it had to expiry when it was computed: time decay and gamma grow
/// as expiry nears, so a day-old array of an option expiring in an hour
/// would misstate both.
pub const RISK_ARRAY_LIFE_PERCENT_OF_EXPIRY: i64 = 10;

impl RiskArrayRead {
    /// Whether health may use it at `spot` and the option's `volatility`
    /// at unix time `now`, with the underlying's `config` applying
    /// `scan_range_bps` (the same grid: a scenario index means the same
    /// move for every instrument of the book), for an option expiring at
    /// `expiry`.
    pub fn usable(
        &self,
        config: &ScenarioConfig,
        scan_range_bps: u32,
        spot: I80F48,
        volatility: I80F48,
        (now, expiry): (i64, i64),
    ) -> bool {
        // |now − then| × 10⁴ ≤ then × tolerance: limb products, no 128-bit
        // division (every option of a portfolio-mode account runs it).
        let within = |now_value: I80F48, then: I80F48| -> bool {
            let Some(moved) = now_value.checked_sub(then).and_then(|d| d.checked_abs()) else {
                return false;
            };
            let moved = moved.fast_mul_int(10_000);
            let allowed = then.fast_mul_int(i128::from(config.array_tolerance_bps));
            matches!((moved, allowed), (Some(moved), Some(allowed)) if moved <= allowed)
        };
        self.config_version == config.version
            && self.scan_range_bps == scan_range_bps
            && now >= self.computed_at
            && now - self.computed_at <= i64::from(config.array_max_age_seconds)
            && (now - self.computed_at) * 100
                <= expiry
                    .saturating_sub(self.computed_at)
                    .saturating_mul(RISK_ARRAY_LIFE_PERCENT_OF_EXPIRY)
            && within(spot, self.spot)
            && within(volatility, self.volatility)
    }
}

/// A market's caps, as the admin sets them (`set_market_limits`); zero is
/// no cap. An order is refused when it takes the account's exposure (its
/// position with its resting orders filled on the worse side) past
/// `max_position_lots`, or when the lots its fills open take the market's
/// open interest (the larger of its settled longs and shorts) past
/// `max_open_interest_lots`. A fill raises open interest only where its
/// taker opens (a maker opening against a closing taker replaces the lots
/// closed), so counting what takers open makes the cap hard, and resting
/// orders need only the position cap. An order that neither grows the
/// exposure nor opens lots is never refused, so positions above a lowered
/// cap can still shrink.
#[derive(
    AnchorSerialize,
    AnchorDeserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    bytemuck::Pod,
    bytemuck::Zeroable,
)]
#[repr(C)]
pub struct MarketLimits {
    pub max_open_interest_lots: u64,
    pub max_position_lots: u64,
}

pub const MARKET_LIMITS_SIZE: usize = 16;
const _: () = assert!(core::mem::size_of::<MarketLimits>() == MARKET_LIMITS_SIZE);

impl MarketLimits {
    /// Whether either cap is set.
    #[inline(always)]
    pub fn any(&self) -> bool {
        (self.max_open_interest_lots | self.max_position_lots) != 0
    }

    /// Refuses an order that moved an account's position from `before` to
    /// `after` (lots with their resting orders) past a cap, given the
    /// market's open interest before the order.
    pub fn check(
        &self,
        open_interest_before: u64,
        before: &PerpPosition,
        after: &PerpPosition,
    ) -> Result<()> {
        let (was, is) = (before.exposure_lots(), after.exposure_lots());
        require!(
            is <= was || self.max_position_lots == 0 || is <= u128::from(self.max_position_lots),
            KestrelError::PositionLimitExceeded
        );
        let opened = opened_lots(before.base_lots, after.base_lots);
        require!(
            opened == 0
                || self.max_open_interest_lots == 0
                || u128::from(open_interest_before) + opened
                    <= u128::from(self.max_open_interest_lots),
            KestrelError::OpenInterestLimitExceeded
        );
        Ok(())
    }
}

/// The lots a taker's fills opened, its position going from `before` to
/// `after` (one order's fills all trade one way): the growth on its side,
/// or all of `after` when the position flipped.
fn opened_lots(before: i64, after: i64) -> u128 {
    let (before_lots, after_lots) = (
        u128::from(before.unsigned_abs()),
        u128::from(after.unsigned_abs()),
    );
    if (before >= 0) == (after >= 0) {
        after_lots.saturating_sub(before_lots)
    } else {
        after_lots
    }
}

#[cfg(test)]
mod limits_tests {
    use super::*;

    fn position(base_lots: i64, bids: u64, asks: u64) -> PerpPosition {
        PerpPosition {
            base_lots,
            bids_base_lots: bids,
            asks_base_lots: asks,
            ..PerpPosition::default()
        }
    }

    #[test]
    fn opened_lots_count_growth_and_flips() {
        assert_eq!(opened_lots(0, 40), 40);
        assert_eq!(opened_lots(0, -40), 40);
        assert_eq!(opened_lots(30, 70), 40);
        assert_eq!(opened_lots(70, 30), 0);
        assert_eq!(opened_lots(-70, 0), 0);
        assert_eq!(opened_lots(100, -100), 100);
        assert_eq!(opened_lots(-5, 20), 20);
        assert_eq!(
            opened_lots(i64::MIN, i64::MAX),
            u128::from(i64::MAX.unsigned_abs())
        );
    }

    #[test]
    fn a_sale_into_a_resting_bid_s_exposure_still_counts_its_opened_lots() {
        let limits = MarketLimits {
            max_open_interest_lots: 150,
            max_position_lots: 0,
        };
        // A resting bid of 100 made the exposure 100; selling 60 at market
        // keeps it (max(100, 60)) but opens 60 short.
        let (before, after) = (position(0, 100, 0), position(-60, 100, 0));
        assert!(limits.check(100, &before, &after).is_err());
        assert!(limits.check(90, &before, &after).is_ok());
        // A flip opens the new side whole.
        let (long, short) = (position(100, 0, 0), position(-100, 0, 0));
        assert!(limits.check(50, &long, &short).is_ok());
        assert!(limits.check(51, &long, &short).is_err());
        // Closing opens nothing: allowed above the cap.
        assert!(limits.check(1_000, &long, &position(20, 0, 0)).is_ok());
    }
}

/// Largest term multiplier and |skew|: ten times the at-the-money input.
pub const MAX_VOLATILITY_TERM_BPS: u32 = 100_000;

impl OptionParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.strike() > 0
                && OptionSide::try_from(self.side).is_ok()
                && (1..=MAX_VOLATILITY_TERM_BPS).contains(&self.volatility_term_bps)
                && self.volatility_skew_bps.unsigned_abs() <= MAX_VOLATILITY_TERM_BPS
                // Above zero: an option worth less than a tick still has a
                // band to trade in.
                && (1..=10_000).contains(&self.band_spot_bps)
                && self.padding == [0; 3],
            KestrelError::InvalidOptionParams
        );
        Ok(())
    }

    pub fn strike(&self) -> I80F48 {
        funding::from_parts(self.strike)
    }

    pub fn side(&self) -> core::result::Result<OptionSide, KestrelError> {
        OptionSide::try_from(self.side)
    }
}

/// A call or a put, as a market stores it.
impl TryFrom<u8> for OptionSide {
    type Error = KestrelError;

    fn try_from(value: u8) -> core::result::Result<Self, KestrelError> {
        match value {
            0 => Ok(Self::Call),
            1 => Ok(Self::Put),
            _ => Err(KestrelError::InvalidOptionParams),
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MarketStatus {
    /// Orders of every kind.
    Active,
    /// Only orders that shrink positions; cancels.
    ReduceOnly,
    /// No orders; cancels and cranks only.
    Paused,
    /// Terminal.
    Closed,
    /// Expired (or delisted) and its settlement price fixed: positions are
    /// settled in cash one account at a time (`settle_expired`), then the
    /// market closes. Reached only through `settle_expired`.
    Settled,
}

impl TryFrom<u8> for MarketStatus {
    type Error = KestrelError;

    /// The stored byte decoded; an unknown one is an error, never a default.
    fn try_from(value: u8) -> core::result::Result<Self, KestrelError> {
        match value {
            0 => Ok(Self::Active),
            1 => Ok(Self::ReduceOnly),
            2 => Ok(Self::Paused),
            3 => Ok(Self::Closed),
            4 => Ok(Self::Settled),
            _ => Err(KestrelError::Unreachable),
        }
    }
}

impl MarketStatus {
    /// What the admin may set: Closed is terminal and reached only from
    /// Paused, so trading stops first; Settled is the settlement's own.
    pub fn can_become(self, next: Self) -> bool {
        match (self, next) {
            (Self::Closed | Self::Settled, _) | (_, Self::Settled) => false,
            (_, Self::Closed) => self == Self::Paused,
            _ => true,
        }
    }
}

/// What the admin sets at creation and may change later. The market embeds
/// it as stored, so listing and `set_market_params` write it whole.
#[derive(
    AnchorSerialize,
    AnchorDeserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    bytemuck::Pod,
    bytemuck::Zeroable,
)]
#[repr(C)]
pub struct MarketParams {
    /// Native quote units paid from the market's fees for each event the
    /// crank consumes (capped by the fees available).
    pub crank_reward_native: u64,
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    /// Negative: a rebate to makers, never larger than the taker fee.
    pub maker_fee_bps: i32,
    pub taker_fee_bps: u32,
    /// Fills happen, and orders rest, only within this of the oracle price;
    /// below the maintenance margin, so a fill at the band's edge cannot take
    /// an account from initial health past maintenance on its own.
    pub price_band_bps: u32,
    /// How far from the price (the oracle's, or the last good one) an order
    /// may rest: at least the band. A quote beyond it could not fill until
    /// the price moved that far, so it is refused rather than left to wait.
    pub resting_band_bps: u32,
    /// Largest funding per period, as a share of the oracle TWAP.
    pub funding_cap_bps: u32,
    /// The funding period (the TWAP window; the cap applies per period).
    pub funding_period_seconds: u32,
    /// What a liquidated position pays, as a share of its value; below the
    /// maintenance fraction so every lot liquidated raises health.
    pub liquidation_fee_bps: u32,
    pub max_fills_per_order: u16,
    /// The insurance fund's share of the liquidation fee.
    pub liquidation_insurance_share_bps: u16,
}

/// The crank reward + nine u32 fractions, fees, bands and funding terms +
/// two u16s (fill limit, insurance share): no padding.
pub const MARKET_PARAMS_SIZE: usize = 8 + 9 * 4 + 2 * 2;
const _: () = assert!(core::mem::size_of::<MarketParams>() == MARKET_PARAMS_SIZE);

/// The perpetual's block of a market: what funding keeps between updates.
/// Zero for a dated future.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PerpState {
    /// Time-weighted mark (book mid) and oracle prices over one funding
    /// period, native quote per base lot (I80F48 halves).
    pub mark_twap: [u64; 2],
    pub oracle_twap: [u64; 2],
    /// The book's premium over the oracle per base lot at the last
    /// `update_funding`, clamped to the band (I80F48 halves): the next update
    /// counts the smaller of it and its own, so one instant cannot set funding.
    pub mark_premium: [u64; 2],
    /// Unix time of the last `update_funding`; 0 before the first.
    pub funding_updated_at: i64,
}

/// Two TWAPs and the premium (16 each) + the update time.
pub const PERP_STATE_SIZE: usize = 3 * 16 + 8;
const _: () = assert!(core::mem::size_of::<PerpState>() == PERP_STATE_SIZE);

impl MarketParams {
    /// What an option market's parameters need besides [`Self::validate`]:
    /// a lot liquidated at the model less (plus) the fee frees at least the
    /// band's half-width of requirement (`engine::option_margin`), so the
    /// fee below the band's share of the value keeps every liquidation
    /// raising maintenance health.
    pub fn validate_for_option(&self) -> Result<()> {
        self.validate()?;
        require!(
            self.liquidation_fee_bps < self.price_band_bps,
            KestrelError::InvalidLiquidationParams
        );
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        require!(
            self.maintenance_margin_bps > 0
                && self.initial_margin_bps > self.maintenance_margin_bps
                && self.initial_margin_bps <= 10_000,
            KestrelError::InvalidMarginFractions
        );
        require!(
            self.taker_fee_bps <= 1_000
                && self.maker_fee_bps <= 1_000
                && i64::from(self.maker_fee_bps) + i64::from(self.taker_fee_bps) >= 0,
            KestrelError::InvalidFees
        );
        require!(
            self.price_band_bps > 0
                && self.price_band_bps < self.maintenance_margin_bps
                && (self.price_band_bps..=10_000).contains(&self.resting_band_bps),
            KestrelError::InvalidPriceBand
        );
        require!(
            (1..=MAX_FILLS_PER_ORDER).contains(&self.max_fills_per_order),
            KestrelError::InvalidMatchLimit
        );
        require!(
            self.funding_cap_bps <= 10_000
                && self.funding_period_seconds >= MIN_FUNDING_PERIOD_SECONDS,
            KestrelError::InvalidFundingParams
        );
        require!(
            self.liquidation_fee_bps < self.maintenance_margin_bps
                && self.liquidation_insurance_share_bps <= 10_000,
            KestrelError::InvalidLiquidationParams
        );
        Ok(())
    }
}

/// A market of one instrument on an underlying: a header every kind shares
/// (books, lot sizes, parameters, fees, open interest, the loss indexes),
/// then a block per kind. Prices are in ticks of one quote lot per base
/// lot, so a fill of `q` lots at `p` ticks is `p * q * quote_lot_size`
/// native quote units.
#[account(zero_copy)]
pub struct Market {
    pub exchange: Pubkey,
    /// The `Underlying` its price comes from.
    pub underlying: Pubkey,
    pub bids: Pubkey,
    pub asks: Pubkey,
    pub event_queue: Pubkey,
    /// Zero-padded, e.g. "SOL-PERP".
    pub name: [u8; 16],
    /// Native base units per base lot.
    pub base_lot_size: u64,
    /// Native quote units per quote lot (the tick size per base lot).
    pub quote_lot_size: u64,
    /// Sequence number of the next order; part of every order id.
    pub seq_num: u64,
    pub params: MarketParams,
    pub market_index: u16,
    pub underlying_index: u16,
    pub status: u8,
    /// What the market lists ([`InstrumentKind`]).
    pub kind: u8,
    pub bump: u8,
    pub padding0: u8,
    /// Fees taken and not yet swept to the fee vault, native quote units.
    /// They sit in the collateral vault until `sweep_fees`.
    pub fees_accrued: u64,
    /// The part of `fees_accrued` owed to makers as rebates for fills the
    /// crank has not applied yet: never swept or paid out as rewards.
    pub rebates_reserved: u64,
    /// Cumulative funding and socialized loss per base lot a long owes, and
    /// the same for shorts (I80F48 halves, see `engine::funding`). A dated
    /// future has no funding, but spreads losses through the same indexes.
    pub long_funding_index: [u64; 2],
    pub short_funding_index: [u64; 2],
    /// Funding and socialized loss positions have paid in, less what was
    /// paid out (or fronted to a bankrupt account), native units. It sits in
    /// the collateral vault; what is left once every position settles is
    /// the rounding the exchange keeps.
    pub funding_balance_native: i64,
    /// Open interest of settled positions: Σ long lots and Σ short lots.
    pub long_lots: u64,
    pub short_lots: u64,
    /// Lifetime loss spread over open interest, native units.
    pub socialized_loss_native: u64,
    /// Fill events waiting in the queue: funding and socialized losses need
    /// none (a fill moves its taker's open interest before its maker's).
    pub pending_fills: u32,
    pub padding1: u32,
    /// Perpetuals: see [`PerpState`].
    pub perp: PerpState,
    /// Dated futures, options (their expiry and settlement) and delisted
    /// perpetuals: see [`FutureState`].
    pub future: FutureState,
    /// Options: strike, side and volatility terms. Zero otherwise.
    pub option: OptionParams,
    /// Open-interest and position caps (`set_market_limits`).
    pub limits: MarketLimits,
    /// Options: the value change per native base unit under each scenario
    /// of its underlying's grid (`refresh_risk_arrays`). Zero otherwise.
    pub risk_array: StoredRiskArray,
    /// Room for fields added by later versions without a migration.
    pub reserved: [u8; 48],
}

pub const MARKET_SIZE: usize = 5 * 32 // exchange, underlying, bids, asks, event queue
    + 16 // name
    + 3 * 8 // lot sizes, sequence number
    + MARKET_PARAMS_SIZE
    + 2 * 2 + 4 // market and underlying index; status, kind, bump, padding
    + 2 * 8 // fees accrued, rebates reserved
    + 2 * 16 // loss indexes
    + 4 * 8 // funding balance, open interest, socialized loss
    + 4 + 4 // pending fills, padding
    + PERP_STATE_SIZE
    + FUTURE_STATE_SIZE
    + OPTION_PARAMS_SIZE
    + MARKET_LIMITS_SIZE
    + STORED_RISK_ARRAY_SIZE
    + 48; // reserved
const _: () = assert!(MARKET_SIZE == 960);
const _: () = assert!(core::mem::size_of::<Market>() == MARKET_SIZE);
const _: () = assert!(core::mem::align_of::<Market>() <= 8);

impl Market {
    pub const SPACE: usize = 8 + MARKET_SIZE;

    /// Whether `bids`, `asks`, `event_queue` and `underlying` are this
    /// market's own: one constraint where four `has_one`s would load the
    /// market four times (the hot path's accounts check, `place_order`).
    pub fn owns(
        &self,
        bids: &Pubkey,
        asks: &Pubkey,
        event_queue: &Pubkey,
        underlying: &Pubkey,
    ) -> bool {
        self.bids == *bids
            && self.asks == *asks
            && self.event_queue == *event_queue
            && self.underlying == *underlying
    }

    /// The market's status; a byte no status has is an error (only the
    /// program writes it, so it cannot happen).
    pub fn status(&self) -> core::result::Result<MarketStatus, KestrelError> {
        MarketStatus::try_from(self.status)
    }

    pub fn kind(&self) -> core::result::Result<InstrumentKind, KestrelError> {
        InstrumentKind::try_from(self.kind)
    }

    /// Whether the market settles in cash at an expiry: a dated future, or a
    /// perpetual delisted in an emergency.
    pub fn has_expiry(&self) -> bool {
        self.future.params.expiry != 0
    }

    /// Whether trading has stopped for good at unix time `now`: past the
    /// expiry of a market that has one.
    pub fn is_expired(&self, now: i64) -> bool {
        self.has_expiry() && now >= self.future.params.expiry
    }

    /// Copies what `integral` (its underlying's) holds of the settlement
    /// window into the market, once the window has opened and until the
    /// price is fixed; nothing for a market without an expiry. Every order,
    /// liquidation and settlement of the market captures, besides the
    /// keeper's `sample_settlement`; all copy the same checkpoints, so no
    /// caller chooses which prices count. Returns whether the window is open.
    pub fn capture_settlement(&mut self, integral: &PriceIntegral, now: i64) -> Result<bool> {
        if !self.has_expiry() || self.settlement_price().is_some() {
            return Ok(false);
        }
        let params = self.future.params;
        if now < params.window_start() {
            return Ok(false);
        }
        let mut capture = self.future.settlement();
        if capture
            .capture(integral, params.expiry, params.settlement_window_seconds)
            .map_err(KestrelError::from)?
        {
            self.future.set_settlement(capture);
        }
        Ok(true)
    }

    /// The settlement price, once Settled.
    pub fn settlement_price(&self) -> Option<I80F48> {
        matches!(
            self.status(),
            Ok(MarketStatus::Settled | MarketStatus::Closed)
        )
        .then(|| funding::from_parts(self.future.settlement_price))
        .filter(|price| *price > 0)
    }

    /// What one native base unit of a position is worth once the settlement
    /// price (the underlying's settlement average) is fixed: that price for
    /// a future, the intrinsic value at it for an option (zero out of the
    /// money).
    pub fn settlement_value_per_unit(&self, settlement_price: I80F48) -> Result<I80F48> {
        Ok(match self.kind()? {
            InstrumentKind::Option => crate::engine::black_scholes::intrinsic(
                self.option.side()?,
                settlement_price,
                self.option.strike(),
            ),
            InstrumentKind::Perp | InstrumentKind::Future => settlement_price,
        })
    }

    /// Books a taker fill of `quote`: the taker fee accrues, and the makers'
    /// `rebates` for it are reserved out of the fees so the crank can always
    /// pay them. Returns the taker fee. (The crank pays rebates out of the
    /// reserve and rewards out of what is available: the fee bookkeeping in
    /// one place.)
    pub fn book_taker_fill(&mut self, quote: NativeUnits, rebates: u64) -> Result<u64> {
        let fee = perp::taker_fee(quote, self.params.taker_fee_bps).or_overflow()?;
        self.fees_accrued = self.fees_accrued.checked_add(fee).or_overflow()?;
        self.rebates_reserved = self.rebates_reserved.checked_add(rebates).or_overflow()?;
        // Taker fee >= the fills' rebates (validated fees, rounding), so
        // reserved rebates are always covered by accrued fees.
        require!(
            self.rebates_reserved <= self.fees_accrued,
            KestrelError::AccountingMismatch
        );
        Ok(fee)
    }

    /// Books a maker's side of a fill as the crank applies it: a fee
    /// (`fee` > 0) accrues; a rebate is paid out of the fees, from the
    /// reserve its taker's fill set aside (`book_taker_fill`).
    pub fn book_maker_fill(&mut self, fee: i64) -> Result<()> {
        if fee >= 0 {
            self.fees_accrued = self.fees_accrued.checked_add(fee as u64).or_overflow()?;
        } else {
            let rebate = fee.unsigned_abs();
            self.fees_accrued = self
                .fees_accrued
                .checked_sub(rebate)
                .ok_or(KestrelError::AccountingMismatch)?;
            self.rebates_reserved = self
                .rebates_reserved
                .checked_sub(rebate)
                .ok_or(KestrelError::AccountingMismatch)?;
        }
        Ok(())
    }

    /// The crank's reward for applying a fill of `quote` whose maker fee is
    /// `fee`: the market's reward per event, capped by what the fill earned
    /// the exchange (taker fee plus maker fee, a rebate counting against).
    pub fn crank_reward_for(&self, quote: NativeUnits, fee: i64) -> Result<u64> {
        let earned = perp::taker_fee(quote, self.params.taker_fee_bps)
            .and_then(|taker| i64::try_from(taker).ok())
            .and_then(|taker| taker.checked_add(fee))
            .or_overflow()?;
        Ok(self.params.crank_reward_native.min(earned.max(0) as u64))
    }

    /// Takes at most `at_most` of the fees available (never the rebates
    /// reserved) out of the market, for the fee vault or the crank; returns
    /// what it took.
    pub fn take_fees(&mut self, at_most: u64) -> Result<u64> {
        let taken = at_most.min(self.fees_available());
        self.fees_accrued = self
            .fees_accrued
            .checked_sub(taken)
            .ok_or(KestrelError::Unreachable)?;
        Ok(taken)
    }

    /// Fees that may leave: swept to the fee vault or paid to the crank.
    pub fn fees_available(&self) -> u64 {
        self.fees_accrued.saturating_sub(self.rebates_reserved)
    }

    pub fn long_funding_index(&self) -> I80F48 {
        funding::from_parts(self.long_funding_index)
    }

    pub fn short_funding_index(&self) -> I80F48 {
        funding::from_parts(self.short_funding_index)
    }

    /// The index a position of `base_lots` settles against, as stored: a
    /// position whose snapshot equals it has nothing to settle, and the
    /// comparison costs no fixed-point work.
    pub fn funding_index_parts_for(&self, base_lots: i64) -> [u64; 2] {
        if base_lots >= 0 {
            self.long_funding_index
        } else {
            self.short_funding_index
        }
    }

    /// Moves a position's lots from `before` to `after` in the open interest.
    pub fn move_open_interest(&mut self, before: i64, after: i64) -> Result<()> {
        let long = |lots: i64| lots.max(0) as u64;
        let short = |lots: i64| lots.min(0).unsigned_abs();
        self.long_lots = self
            .long_lots
            .checked_sub(long(before))
            .and_then(|l| l.checked_add(long(after)))
            .or_overflow()?;
        self.short_lots = self
            .short_lots
            .checked_sub(short(before))
            .and_then(|l| l.checked_add(short(after)))
            .or_overflow()?;
        Ok(())
    }

    /// Adds funding paid in (negative: paid out) to the market's balance.
    pub fn book_funding(&mut self, paid: i64) -> Result<()> {
        self.funding_balance_native = self
            .funding_balance_native
            .checked_add(paid)
            .or_overflow()?;
        Ok(())
    }

    /// An oracle price (native quote per native base) in ticks, unrounded.
    pub fn oracle_ticks(&self, price: I80F48) -> Option<I80F48> {
        perp::price_in_ticks(price, self.base_lot_size, self.quote_lot_size)
    }

    /// Where fills may happen: `price_band_bps` either side of the oracle
    /// price in ticks ([`Self::oracle_ticks`]).
    pub fn price_band(&self, oracle_ticks: I80F48) -> Option<PriceBand> {
        PriceBand::around(oracle_ticks, self.params.price_band_bps)
    }

    /// Where orders may rest: `resting_band_bps` either side of the price.
    pub fn resting_band(&self, oracle_ticks: I80F48) -> Option<PriceBand> {
        PriceBand::around(oracle_ticks, self.params.resting_band_bps)
    }

    /// The fill band and the resting band around the mark (`mark_ticks`)
    /// when the underlying is at `spot`: the market's fractions of the mark,
    /// an option's widened by its share of the spot.
    pub fn bands(&self, mark_ticks: I80F48, spot: I80F48) -> Option<(PriceBand, PriceBand)> {
        if self.kind != InstrumentKind::Option as u8 {
            return Some((self.price_band(mark_ticks)?, self.resting_band(mark_ticks)?));
        }
        let floor = perp::share_of(self.oracle_ticks(spot)?, self.option.band_spot_bps)?;
        Some((
            PriceBand::around_with_floor(mark_ticks, self.params.price_band_bps, floor)?,
            PriceBand::around_with_floor(mark_ticks, self.params.resting_band_bps, floor)?,
        ))
    }

    /// Oracle price per base lot, from native quote per native base.
    pub fn price_per_lot(&self, price: I80F48) -> Result<PricePerLot> {
        price
            .checked_mul_int(i128::from(self.base_lot_size))
            .map(PricePerLot)
            .or_overflow()
    }
}

/// One side of a market's book: the engine's slab in account data.
#[account(zero_copy)]
pub struct BookSideAccount {
    pub data: [u8; BOOK_SIDE_BYTES],
}

/// A market's event queue: the engine's ring buffer in account data.
#[account(zero_copy)]
pub struct EventQueueAccount {
    pub data: [u8; EVENT_QUEUE_BYTES],
}

const _: () = assert!(core::mem::size_of::<BookSideAccount>() == 180_288);
const _: () = assert!(core::mem::size_of::<EventQueueAccount>() == 73_792);

#[cfg(test)]
mod tests {
    use super::*;

    /// An array computed at spot 150, volatility 80 %, time 1,000, a 15 %
    /// scan range and grid version 1, of an option expiring at 101,000.
    #[test]
    fn a_risk_array_holds_only_for_its_grid_prices_age_and_share_of_expiry() {
        let config = ScenarioConfig {
            scan_range_bps: 1_500,
            volatility_shift_bps: 2_500,
            extreme_move_bps: 30_000,
            extreme_cover_bps: 3_500,
            linear_floor_bps: 50,
            basis_bps: 20,
            short_option_bps: 50,
            confidence_bps: 10,
            maintenance_factor_bps: 8_000,
            array_tolerance_bps: 100,
            array_max_age_seconds: 600,
            version: 1,
        };
        let array = RiskArrayRead {
            spot: I80F48::from_num(150),
            volatility: I80F48::from_num(0.8),
            computed_at: 1_000,
            scan_range_bps: 1_500,
            config_version: 1,
            entries: [I80F48::ZERO; crate::engine::scenario_margin::SCENARIOS],
        };
        let (spot, vol) = (I80F48::from_num(151), I80F48::from_num(0.805));
        let expiry = 101_000;
        assert!(array.usable(&config, 1_500, spot, vol, (1_600, expiry)));
        // Another grid: a wider or narrower scan range, a new version.
        assert!(!array.usable(&config, 1_537, spot, vol, (1_600, expiry)));
        assert!(!array.usable(&config, 1_462, spot, vol, (1_600, expiry)));
        let newer = ScenarioConfig {
            version: 2,
            ..config
        };
        assert!(!array.usable(&newer, 1_500, spot, vol, (1_600, expiry)));
        // Prices past the 1 % tolerance; too old; from the future.
        assert!(!array.usable(
            &config,
            1_500,
            I80F48::from_num(151.6),
            vol,
            (1_600, expiry)
        ));
        assert!(!array.usable(
            &config,
            1_500,
            spot,
            I80F48::from_num(0.81),
            (1_600, expiry)
        ));
        assert!(!array.usable(&config, 1_500, spot, vol, (1_601, expiry)));
        assert!(!array.usable(&config, 1_500, spot, vol, (999, expiry)));
        // Expiring 2,000 s after it was computed: good for 200 s only.
        assert!(array.usable(&config, 1_500, spot, vol, (1_200, 3_000)));
        assert!(!array.usable(&config, 1_500, spot, vol, (1_201, 3_000)));
    }

    pub fn params() -> MarketParams {
        MarketParams {
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            maker_fee_bps: -2,
            taker_fee_bps: 5,
            price_band_bps: 400,
            resting_band_bps: 2_000,
            max_fills_per_order: 32,
            crank_reward_native: 10,
            funding_cap_bps: 50,
            funding_period_seconds: 3_600,
            liquidation_fee_bps: 250,
            liquidation_insurance_share_bps: 4_000,
        }
    }

    #[test]
    fn params_are_validated_field_by_field() {
        assert!(params().validate().is_ok());
        let broken: [fn(&mut MarketParams); 14] = [
            |p| p.resting_band_bps = p.price_band_bps - 1,
            |p| p.resting_band_bps = 10_001,
            |p| p.price_band_bps = p.maintenance_margin_bps,
            |p| p.funding_cap_bps = 10_001,
            |p| p.funding_period_seconds = MIN_FUNDING_PERIOD_SECONDS - 1,
            |p| p.liquidation_fee_bps = p.maintenance_margin_bps,
            |p| p.liquidation_insurance_share_bps = 10_001,
            |p| p.maintenance_margin_bps = 0,
            |p| p.initial_margin_bps = p.maintenance_margin_bps,
            |p| p.initial_margin_bps = 10_001,
            |p| p.maker_fee_bps = -6,
            |p| p.taker_fee_bps = 1_001,
            |p| p.price_band_bps = 0,
            |p| p.max_fills_per_order = MAX_FILLS_PER_ORDER + 1,
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut p = params();
            breaks(&mut p);
            assert!(p.validate().is_err(), "case {i} should be refused");
        }
    }

    #[test]
    fn stored_enum_values_are_stable() {
        // Declaration order is the stored byte: append new variants only.
        let statuses = [
            MarketStatus::Active,
            MarketStatus::ReduceOnly,
            MarketStatus::Paused,
            MarketStatus::Closed,
            MarketStatus::Settled,
        ];
        for (byte, status) in statuses.into_iter().enumerate() {
            assert_eq!(status as u8, byte as u8);
            assert_eq!(MarketStatus::try_from(byte as u8).ok(), Some(status));
        }
        assert!(MarketStatus::try_from(5).is_err());
        let kinds = [
            InstrumentKind::Perp,
            InstrumentKind::Future,
            InstrumentKind::Option,
        ];
        for (byte, kind) in kinds.into_iter().enumerate() {
            assert_eq!(kind as u8, byte as u8);
            assert_eq!(InstrumentKind::try_from(byte as u8).ok(), Some(kind));
        }
        assert!(InstrumentKind::try_from(3).is_err());
        for (byte, side) in [OptionSide::Call, OptionSide::Put].into_iter().enumerate() {
            assert_eq!(OptionSide::try_from(byte as u8).ok(), Some(side));
        }
        assert!(OptionSide::try_from(2).is_err());
    }

    #[test]
    fn future_params_are_validated() {
        let now = 999_960;
        let good = FutureParams {
            expiry: now + 7 * 86_400,
            settlement_window_seconds: 1_800,
            max_basis_bps: 200,
            basis_window_seconds: 3_600,
            convergence_seconds: 86_400,
        };
        assert!(good.validate(now, 400).is_ok());
        assert_eq!(good.window_start(), good.expiry - 1_800);
        let broken: [fn(&mut FutureParams); 8] = [
            |f| f.settlement_window_seconds = 0,
            |f| f.settlement_window_seconds = MIN_SETTLEMENT_WINDOW_SECONDS - 60,
            |f| f.settlement_window_seconds = MAX_SETTLEMENT_WINDOW_SECONDS + 1,
            |f| f.expiry = 999_960 + 1_800,
            // Off the price integral's minute grid.
            |f| f.expiry += 30,
            |f| f.settlement_window_seconds = 1_830,
            |f| f.basis_window_seconds = 0,
            |f| f.max_basis_bps = 401,
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut f = good;
            breaks(&mut f);
            assert!(f.validate(now, 400).is_err(), "case {i} should be refused");
        }
    }

    #[test]
    fn closed_is_terminal_and_reached_from_paused_only() {
        use MarketStatus::*;
        assert!(
            Active.can_become(ReduceOnly)
                && ReduceOnly.can_become(Active)
                && Active.can_become(Paused)
        );
        assert!(!Active.can_become(Closed) && Paused.can_become(Closed));
        assert!(!Closed.can_become(Active) && !Closed.can_become(Paused));
        assert!(!Paused.can_become(Settled) && !Settled.can_become(Closed));
    }
}
