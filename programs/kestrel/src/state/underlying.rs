use anchor_lang::prelude::*;

use fixed::types::I80F48;

use crate::engine::margin_scaling::{scale_step, target_scale_bps, MarginTerms, UNSCALED};
use crate::engine::price_integral::{Checkpoint, PriceIntegral, CHECKPOINTS, PRICE_INTEGRAL_SIZE};
use crate::engine::price_limit::{
    PriceLimit, MAX_BAND_BPS, MAX_MOVE_BPS_PER_SECOND, MIN_BAND_BPS, PRICE_BAND_SIZE,
    PRICE_LIMIT_SIZE,
};
use crate::engine::realized_volatility::{RealizedVolatility, REALIZED_VOLATILITY_SIZE};
use crate::engine::stable_price::{StablePrice, STABLE_PRICE_SIZE};
use crate::error::KestrelError;
use crate::oracle::{
    is_fresh, AcceptedPrice, FeedRole, OracleBounds, PriceReading, PriceRecords, TradingPrice,
    PRICE_RECORDS_SIZE,
};

/// PDA seeds: `[UNDERLYING_SEED, exchange, underlying_index (u16 LE)]`.
pub const UNDERLYING_SEED: &[u8] = b"underlying";

/// Which oracle program a feed belongs to.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OracleKind {
    None,
    Pyth,
    Switchboard,
}

impl TryFrom<u8> for OracleKind {
    type Error = KestrelError;

    fn try_from(value: u8) -> core::result::Result<Self, KestrelError> {
        match value {
            0 => Ok(Self::None),
            1 => Ok(Self::Pyth),
            2 => Ok(Self::Switchboard),
            _ => Err(KestrelError::Unreachable),
        }
    }
}

/// An underlying's oracle feeds and bounds, as the admin sets them. A feed
/// is a Pyth feed id or a Switchboard pull-feed account address.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OracleConfig {
    pub primary_kind: OracleKind,
    pub primary_feed: [u8; 32],
    pub fallback_kind: OracleKind,
    pub fallback_feed: [u8; 32],
    pub max_age_seconds: u32,
    /// 0 = not checked.
    pub max_age_slots: u32,
    pub max_confidence_bps: u32,
    /// Largest primary/fallback disagreement before the underlying's markets
    /// are reduce-only; also how far a fallback may be from the last good
    /// price when the primary fails.
    pub max_deviation_bps: u32,
    /// For a Pyth feed, the one update account read (a sponsored feed, updated
    /// in place); zero: any verified update of the feed id. Zero for
    /// Switchboard, whose feed is its account.
    pub primary_account: [u8; 32],
    pub fallback_account: [u8; 32],
}

impl OracleConfig {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.primary_kind != OracleKind::None
                && self.max_age_seconds > 0
                && (1..=10_000).contains(&self.max_confidence_bps)
                && (1..=10_000).contains(&self.max_deviation_bps)
                && (self.fallback_kind == OracleKind::None
                    || self.fallback_feed != self.primary_feed)
                && (self.primary_kind == OracleKind::Pyth || self.primary_account == [0; 32])
                && (self.fallback_kind == OracleKind::Pyth || self.fallback_account == [0; 32]),
            KestrelError::InvalidOracleConfig
        );
        Ok(())
    }

    pub fn has_fallback(&self) -> bool {
        self.fallback_kind != OracleKind::None
    }
}

/// [`OracleConfig`] as an underlying stores it: the same fields, kinds as
/// bytes (decoded with `TryFrom`, never defaulted).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredOracleConfig {
    pub primary_feed: [u8; 32],
    pub fallback_feed: [u8; 32],
    pub primary_account: [u8; 32],
    pub fallback_account: [u8; 32],
    pub max_age_seconds: u32,
    pub max_age_slots: u32,
    pub max_confidence_bps: u32,
    pub max_deviation_bps: u32,
    pub primary_kind: u8,
    pub fallback_kind: u8,
    pub padding: [u8; 6],
}

/// 4 feeds and pinned accounts + 4 bounds + 2 kinds and padding.
pub const STORED_ORACLE_CONFIG_SIZE: usize = 4 * 32 + 4 * 4 + 2 + 6;
const _: () = assert!(core::mem::size_of::<StoredOracleConfig>() == STORED_ORACLE_CONFIG_SIZE);

impl From<&OracleConfig> for StoredOracleConfig {
    fn from(config: &OracleConfig) -> Self {
        Self {
            primary_feed: config.primary_feed,
            fallback_feed: config.fallback_feed,
            primary_account: config.primary_account,
            fallback_account: config.fallback_account,
            max_age_seconds: config.max_age_seconds,
            max_age_slots: config.max_age_slots,
            max_confidence_bps: config.max_confidence_bps,
            max_deviation_bps: config.max_deviation_bps,
            primary_kind: config.primary_kind as u8,
            fallback_kind: config.fallback_kind as u8,
            padding: [0; 6],
        }
    }
}

impl TryFrom<&StoredOracleConfig> for OracleConfig {
    type Error = KestrelError;

    fn try_from(stored: &StoredOracleConfig) -> core::result::Result<Self, KestrelError> {
        Ok(Self {
            primary_kind: OracleKind::try_from(stored.primary_kind)?,
            primary_feed: stored.primary_feed,
            fallback_kind: OracleKind::try_from(stored.fallback_kind)?,
            fallback_feed: stored.fallback_feed,
            max_age_seconds: stored.max_age_seconds,
            max_age_slots: stored.max_age_slots,
            max_confidence_bps: stored.max_confidence_bps,
            max_deviation_bps: stored.max_deviation_bps,
            primary_account: stored.primary_account,
            fallback_account: stored.fallback_account,
        })
    }
}

/// The engine's [`Checkpoint`] of an underlying's price integral as
/// accounts store it (the same layout; converted with `bytemuck::cast`).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub time: i64,
    pub cumulative: [u64; 2],
    pub covered: i64,
}

/// The engine's [`PriceIntegral`] as an underlying stores it (the same
/// layout; [`Underlying::integral`] converts).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredPriceIntegral {
    pub last_price: [u64; 2],
    pub last_time: i64,
    pub cumulative: [u64; 2],
    pub covered: i64,
    pub checkpoints: [StoredCheckpoint; CHECKPOINTS],
}

const _: () =
    assert!(core::mem::size_of::<StoredCheckpoint>() == core::mem::size_of::<Checkpoint>());
const _: () = assert!(core::mem::size_of::<StoredPriceIntegral>() == PRICE_INTEGRAL_SIZE);

/// The engine's [`RealizedVolatility`] as an underlying stores it (the same
/// layout; [`Underlying::realized`] converts).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredRealizedVolatility {
    pub anchor_price: [u64; 2],
    pub anchor_time: i64,
    pub weighted_variance: [u64; 2],
    pub weight: [u64; 2],
}

const _: () = assert!(core::mem::size_of::<StoredRealizedVolatility>() == REALIZED_VOLATILITY_SIZE);

/// [`StablePrice`] as the account stores it (the same layout;
/// [`Underlying::stable_price`] converts).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredStablePrice {
    pub stable: [u64; 2],
    pub delay: [u64; 2],
    pub accumulated: [u64; 2],
    pub accumulated_seconds: i64,
    pub last_update: i64,
    pub interval: i64,
}

const _: () = assert!(core::mem::size_of::<StoredStablePrice>() == STABLE_PRICE_SIZE);

/// [`PriceLimit`]'s first part as the account stores it
/// ([`Underlying::price_limit`] joins it to [`StoredPriceBand`]): how fast
/// the accepted price may follow the feeds and the band's width
/// (`set_price_limit`), and what it accepted last. The band's width sits
/// where a padding word was, zero on accounts from before it: no band.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredPriceLimit {
    pub price: [u64; 2],
    pub feed: [u64; 2],
    pub updated_at: i64,
    pub max_move_bps_per_second: u32,
    pub band_bps: u32,
}

const _: () = assert!(core::mem::size_of::<StoredPriceLimit>() == PRICE_LIMIT_SIZE);

/// The price band's hold and widening (`engine::price_limit`), taken from
/// the underlying's reserved bytes (zero: no hold, no widening).
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoredPriceBand {
    pub widened_seconds: u32,
    pub held: u8,
    pub padding: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<StoredPriceBand>() == PRICE_BAND_SIZE);

/// A price limit the admin may set: at most [`MAX_MOVE_BPS_PER_SECOND`]
/// (0: none), and a band of 0 (none) or from [`MIN_BAND_BPS`] to
/// [`MAX_BAND_BPS`], which needs the speed limit (the band bounds where the
/// limited price may go; without one, the feeds' price stands).
pub fn validate_price_limit(max_move_bps_per_second: u32, band_bps: u32) -> Result<()> {
    require!(
        max_move_bps_per_second <= MAX_MOVE_BPS_PER_SECOND
            && (band_bps == 0
                || (max_move_bps_per_second > 0
                    && (MIN_BAND_BPS..=MAX_BAND_BPS).contains(&band_bps))),
        KestrelError::InvalidPriceLimit
    );
    Ok(())
}

/// How an underlying's perpetual and futures margin fractions follow risk,
/// as the admin sets it (`set_risk_scaling`; all zero: they do not):
/// scaled with the realized volatility above a baseline, at a bounded
/// rate, and lifted with position size (`engine::margin_scaling`).
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
pub struct RiskScaling {
    /// The annualized realized volatility (bps) above which fractions
    /// scale; 0: they do not scale with volatility.
    pub baseline_volatility_bps: u32,
    /// The largest scale, in bps of 1 (10,000 to 100,000).
    pub max_scale_bps: u32,
    /// How fast the scale may move, bps of 1 an hour (1 to 100,000).
    pub max_scale_change_bps_per_hour: u32,
    /// The fractions' lift per √(whole base unit) of a position's worst
    /// case (at most 1,000); 0: none.
    pub size_margin_bps: u32,
}

pub const RISK_SCALING_SIZE: usize = 16;
const _: () = assert!(core::mem::size_of::<RiskScaling>() == RISK_SCALING_SIZE);

impl RiskScaling {
    pub fn validate(&self) -> Result<()> {
        if self.baseline_volatility_bps > 0 {
            require!(
                (UNSCALED..=100_000).contains(&self.max_scale_bps)
                    && (1..=100_000).contains(&self.max_scale_change_bps_per_hour)
                    && self.baseline_volatility_bps <= MAX_VOLATILITY_BPS,
                KestrelError::InvalidRiskScaling
            );
        }
        require!(
            self.size_margin_bps <= 1_000,
            KestrelError::InvalidRiskScaling
        );
        Ok(())
    }
}

/// Portfolio margin on an underlying (`engine::scenario_margin`), as the
/// admin sets it (`set_scenario_margin`). With `scan_range_bps` 0 the
/// underlying has none: a portfolio-mode account's positions on it are
/// margined as in standard mode.
///
/// The scan range health applies is `scan_range_bps` times the risk
/// scaling's volatility scale (`engine::margin_scaling`), so it widens
/// with realized volatility at the scale's bounded rate.
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
pub struct ScenarioConfig {
    /// The spot move the grid spans at the unscaled volatility, bps of the
    /// spot (0: no portfolio margin; at most 5,000).
    pub scan_range_bps: u32,
    /// Implied volatility up and down by this share of itself, bps (at
    /// most 9,000).
    pub volatility_shift_bps: u32,
    /// The two extreme moves, bps of the scan range (10,000 to 50,000).
    pub extreme_move_bps: u32,
    /// The share of an extreme move's loss that counts, bps (at most
    /// 10,000).
    pub extreme_cover_bps: u32,
    /// Contingencies, bps of the spot per unit: on the net perpetual and
    /// futures position, on the units that offset each other there, per
    /// unit short in options, and the oracle's uncertainty on every unit
    /// held (each at most 1,000).
    pub linear_floor_bps: u32,
    pub basis_bps: u32,
    pub short_option_bps: u32,
    pub confidence_bps: u32,
    /// Maintenance takes this share of the worst loss (initial all of
    /// it), bps (5,000 to 10,000).
    pub maintenance_factor_bps: u32,
    /// How far the spot and the option's volatility may have moved since
    /// its risk array was computed, bps of their values then (1 to
    /// 1,000), and how old the array may be, seconds (1 to 86,400).
    pub array_tolerance_bps: u32,
    pub array_max_age_seconds: u32,
    /// Bumped at every change: arrays computed under an earlier one are
    /// stale.
    pub version: u32,
}

pub const SCENARIO_CONFIG_SIZE: usize = 48;
const _: () = assert!(core::mem::size_of::<ScenarioConfig>() == SCENARIO_CONFIG_SIZE);

/// The largest scan range the scaling may reach: its extreme moves stay
/// below 95 % of the spot, so no scenario prices a spot at or below zero.
const MAX_EXTREME_MOVE_BPS: u64 = 9_500;

/// The steps the risk scaling moves a scan range in: 2.5 % of it.
pub const SCAN_SCALE_STEP_BPS: u64 = 250;

impl ScenarioConfig {
    pub fn enabled(&self) -> bool {
        self.scan_range_bps > 0
    }

    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let within = |value: u32, low: u32, high: u32| (low..=high).contains(&value);
        require!(
            within(self.scan_range_bps, 1, 5_000)
                && within(self.volatility_shift_bps, 0, 9_000)
                && within(self.extreme_move_bps, 10_000, 50_000)
                && within(self.extreme_cover_bps, 0, 10_000)
                && within(self.linear_floor_bps, 0, 1_000)
                && within(self.basis_bps, 0, 1_000)
                && within(self.short_option_bps, 0, 1_000)
                && within(self.confidence_bps, 0, 1_000)
                && within(self.maintenance_factor_bps, 5_000, 10_000)
                && within(self.array_tolerance_bps, 1, 1_000)
                && within(self.array_max_age_seconds, 1, 86_400)
                && u64::from(self.scan_range_bps) * u64::from(self.extreme_move_bps)
                    < MAX_EXTREME_MOVE_BPS * 10_000
                // The floor on the net linear notional and the basis add-on
                // on its offset sum to a convex charge only so: liquidation
                // sizing relies on health being concave in the lots closed.
                && self.basis_bps <= 2 * self.linear_floor_bps,
            KestrelError::InvalidScenarioMargin
        );
        Ok(())
    }

    /// The grid at the risk scaling's `scale_bps`: the scan range scaled,
    /// held where the extreme moves stay below 95 % of the spot. The scale
    /// is taken up to a step of [`SCAN_SCALE_STEP_BPS`]: a risk array holds
    /// only for the scan range it was computed at, and a scale that moves
    /// with every volatility sample would make every array stale.
    pub fn grid(&self, scale_bps: u32) -> crate::engine::scenario_margin::ScenarioGrid {
        let scale =
            u64::from(scale_bps.max(10_000)).div_ceil(SCAN_SCALE_STEP_BPS) * SCAN_SCALE_STEP_BPS;
        let scaled = u64::from(self.scan_range_bps) * scale / 10_000;
        let ceiling = MAX_EXTREME_MOVE_BPS * 10_000 / u64::from(self.extreme_move_bps.max(10_000));
        crate::engine::scenario_margin::ScenarioGrid {
            scan_range_bps: scaled.min(ceiling) as u32,
            volatility_shift_bps: self.volatility_shift_bps,
            extreme_move_bps: self.extreme_move_bps,
            extreme_cover_bps: self.extreme_cover_bps,
        }
    }

    pub fn contingencies(&self) -> crate::engine::scenario_margin::Contingencies {
        crate::engine::scenario_margin::Contingencies {
            linear_floor_bps: self.linear_floor_bps,
            basis_bps: self.basis_bps,
            short_option_bps: self.short_option_bps,
        }
    }
}

/// The scaling's configuration and the scale it has reached.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RiskScalingState {
    pub config: RiskScaling,
    /// The scale health applies now (bps of 1; 0 reads as 10,000).
    pub scale_bps: u32,
    /// Basis-point-seconds of movement earned and not yet used
    /// (`engine::margin_scaling::scale_step`).
    pub scale_credit: u32,
    /// The last step's time.
    pub updated_at: i64,
}

pub const RISK_SCALING_STATE_SIZE: usize = RISK_SCALING_SIZE + 16;
const _: () = assert!(core::mem::size_of::<RiskScalingState>() == RISK_SCALING_STATE_SIZE);

impl RiskScalingState {
    pub fn scale_bps(&self) -> u32 {
        if self.scale_bps == 0 {
            UNSCALED
        } else {
            self.scale_bps
        }
    }

    /// Moves the scale towards the target for `volatility` at unix time
    /// `now`, at the configured rate for the time since the last step
    /// (`engine::margin_scaling::scale_step`: at most ten minutes of a
    /// longer wait credited, what a move did not use kept).
    pub fn step(&mut self, volatility: Option<I80F48>, now: i64) {
        let config = &self.config;
        if config.baseline_volatility_bps == 0 {
            return;
        }
        let current = self.scale_bps();
        let target = target_scale_bps(
            volatility,
            config.baseline_volatility_bps,
            config.max_scale_bps,
        );
        let (next, credit) = scale_step(
            current,
            target,
            now.saturating_sub(self.updated_at),
            config.max_scale_change_bps_per_hour,
            self.scale_credit,
        );
        self.scale_bps = next;
        self.scale_credit = credit;
        self.updated_at = now;
    }
}

/// How an underlying's options are priced and margined, as the admin sets
/// it (`set_option_config`). Stored as given (no padding), so its Borsh and
/// in-memory forms agree.
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
pub struct OptionConfig {
    /// The Switchboard On-Demand pull feed whose value is the at-the-money
    /// implied volatility, annualized, as a fraction (0.8 = 80 %).
    pub volatility_feed: [u8; 32],
    /// Oldest update accepted, and how old the stored one may be for
    /// pricing.
    pub max_age_seconds: u32,
    /// Bounds of an accepted input, and of every series' volatility after
    /// its term and skew (basis points: 500 = 5 %).
    pub min_volatility_bps: u32,
    pub max_volatility_bps: u32,
    /// The annual rate the options are priced with (continuously
    /// compounded, basis points; 0 by default).
    pub rate_bps: i32,
    /// A short option's margin beyond its value, per unit of the
    /// underlying: `max(a × spot − out-of-the-money amount, b × spot)` for a
    /// call; for a put the same, capped at what it can still lose (strike
    /// less value). The Deribit and Zeta standard-margin rule; `a`, `b` for
    /// initial and for maintenance health, in basis points of the spot.
    pub initial_a_bps: u32,
    pub initial_b_bps: u32,
    pub maintenance_a_bps: u32,
    pub maintenance_b_bps: u32,
}

/// The feed + eight u32 terms.
pub const OPTION_CONFIG_SIZE: usize = 32 + 8 * 4;
const _: () = assert!(core::mem::size_of::<OptionConfig>() == OPTION_CONFIG_SIZE);

/// Highest volatility bound: 1,000 % (`engine::black_scholes::MAX_VOLATILITY`).
pub const MAX_VOLATILITY_BPS: u32 = 100_000;

impl OptionConfig {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.volatility_feed != [0; 32]
                && self.max_age_seconds > 0
                && self.min_volatility_bps > 0
                && self.min_volatility_bps <= self.max_volatility_bps
                && self.max_volatility_bps <= MAX_VOLATILITY_BPS
                // Not negative: a put could then be worth more than its
                // strike, and its margin cap (strike less value) vanish.
                && (0..=10_000).contains(&self.rate_bps)
                // Maintenance is the looser bar, and the floor is never
                // zero: a far out-of-the-money short still needs margin.
                && 0 < self.maintenance_b_bps
                && self.maintenance_b_bps <= self.initial_b_bps
                && self.maintenance_a_bps <= self.initial_a_bps
                && self.initial_a_bps <= 10_000
                && self.initial_b_bps <= 10_000,
            KestrelError::InvalidOptionConfig
        );
        Ok(())
    }
}

/// An underlying's implied-volatility input: its configuration and the
/// last update `refresh_volatility` accepted. All zero until the admin
/// configures one; then the underlying may list options.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VolatilityState {
    pub config: OptionConfig,
    /// The accepted at-the-money volatility (I80F48 halves), zero before
    /// the first update.
    pub volatility: [u64; 2],
    pub publish_time: i64,
    pub publish_slot: u64,
}

/// Config + the volatility + its publish time and slot.
pub const VOLATILITY_STATE_SIZE: usize = OPTION_CONFIG_SIZE + 16 + 8 + 8;
const _: () = assert!(core::mem::size_of::<VolatilityState>() == VOLATILITY_STATE_SIZE);

impl VolatilityState {
    /// Whether options may be listed on the underlying.
    pub fn is_configured(&self) -> bool {
        self.config.volatility_feed != [0; 32]
    }

    /// The accepted volatility while it is within the maximum age at `now`,
    /// else why there is none.
    pub fn current(&self, now: i64) -> core::result::Result<I80F48, KestrelError> {
        let volatility = crate::engine::funding::from_parts(self.volatility);
        if !self.is_configured() || volatility <= 0 {
            return Err(KestrelError::VolatilityUnavailable);
        }
        let age = now.saturating_sub(self.publish_time);
        if age > i64::from(self.config.max_age_seconds) {
            return Err(KestrelError::VolatilityStale);
        }
        Ok(volatility)
    }

    /// The accepted volatility for banding a reduce-only order: the current
    /// one, else the last one while it is at most
    /// `oracle::LAST_GOOD_TRADING_AGES` maximum ages old (as the price).
    pub fn band_volatility(&self, now: i64) -> core::result::Result<I80F48, KestrelError> {
        match self.current(now) {
            Err(KestrelError::VolatilityStale) => {
                let age = now.saturating_sub(self.publish_time);
                let limit = i64::from(self.config.max_age_seconds)
                    .saturating_mul(crate::oracle::LAST_GOOD_TRADING_AGES);
                if age <= limit {
                    Ok(crate::engine::funding::from_parts(self.volatility))
                } else {
                    Err(KestrelError::VolatilityStale)
                }
            }
            other => other,
        }
    }

    /// Accepts a feed update of `volatility` (a fraction) published at
    /// `publish_time`, `publish_slot`, at unix time `now`: newer than the
    /// stored one (an older or the same update changes nothing), fresh, and
    /// within the bounds. Returns whether it was stored.
    pub fn accept(
        &mut self,
        volatility: I80F48,
        publish_time: i64,
        publish_slot: u64,
        now: i64,
    ) -> Result<bool> {
        require!(self.is_configured(), KestrelError::VolatilityUnavailable);
        if (publish_time, publish_slot) <= (self.publish_time, self.publish_slot) {
            return Ok(false);
        }
        require!(
            now.saturating_sub(publish_time) <= i64::from(self.config.max_age_seconds),
            KestrelError::VolatilityStale
        );
        let bps = |bps: u32| I80F48::from_num(bps) / 10_000;
        require!(
            volatility >= bps(self.config.min_volatility_bps)
                && volatility <= bps(self.config.max_volatility_bps),
            KestrelError::VolatilityOutOfBounds
        );
        self.volatility = crate::engine::funding::to_parts(volatility);
        self.publish_time = publish_time;
        self.publish_slot = publish_slot;
        Ok(true)
    }
}

/// An underlying asset (e.g. SOL): the one place its markets' price comes
/// from. `refresh_underlying` (permissionless) reads the feeds and stores
/// what it accepted; every trading, withdrawal, liquidation and funding
/// instruction reads the stored price read-only and requires it fresh, so
/// markets of one underlying never contend for a write lock on it.
#[account(zero_copy)]
pub struct Underlying {
    pub exchange: Pubkey,
    /// Zero-padded, e.g. "SOL".
    pub name: [u8; 16],
    pub oracle: StoredOracleConfig,
    /// Each feed's newest update and the last good price
    /// (`oracle::PriceRecords`): no older update is ever used.
    pub prices: PriceRecords,
    pub underlying_index: u16,
    pub bump: u8,
    /// Decimals of the base asset's native unit, and of the exchange's quote
    /// (collateral) mint: prices are native quote per native base.
    pub base_decimals: u8,
    pub quote_decimals: u8,
    /// 1 when the last refresh accepted `prices.last_good` from these
    /// records under this configuration: while it stays fresh, accepting
    /// the same records again gives it (see [`Underlying::reading`]).
    pub accepted: u8,
    pub padding0: [u8; 2],
    /// Every accepted price, weighted by publish times, with checkpoints a
    /// dated future's settlement averages between
    /// (`engine::price_integral`).
    pub integral: StoredPriceIntegral,
    /// Its options' implied-volatility input and margin terms
    /// (`set_option_config`, `refresh_volatility`).
    pub volatility: VolatilityState,
    /// The realized volatility of the accepted price: a time-weighted
    /// moving average that every refresh feeds
    /// (`engine::realized_volatility`).
    pub realized: StoredRealizedVolatility,
    /// The stable price initial health values positions at: a delayed,
    /// growth-limited copy of the accepted price that every refresh feeds
    /// (`engine::stable_price`).
    pub stable: StoredStablePrice,
    /// How its markets' margin fractions follow the realized volatility
    /// and position size (`set_risk_scaling`), and the scale reached.
    pub risk_scaling: RiskScalingState,
    /// How fast the accepted price may follow the feeds, and the price it
    /// accepted last (`engine::price_limit`).
    pub price_limit: StoredPriceLimit,
    /// Portfolio margin's grid and contingencies (`set_scenario_margin`).
    pub scenario: ScenarioConfig,
    /// The price band's hold and widening (the rest of `price_limit`).
    pub price_band: StoredPriceBand,
    /// Room for fields added by later versions without a migration.
    pub reserved: [u8; 152],
}

/// exchange + name + oracle config + price records + index, bump, decimals
/// and padding + price integral + volatility state + realized volatility +
/// stable price + risk scaling + price limit + scenario config + reserved.
pub const UNDERLYING_SIZE: usize = 32
    + 16
    + STORED_ORACLE_CONFIG_SIZE
    + PRICE_RECORDS_SIZE
    + 8
    + PRICE_INTEGRAL_SIZE
    + VOLATILITY_STATE_SIZE
    + REALIZED_VOLATILITY_SIZE
    + STABLE_PRICE_SIZE
    + RISK_SCALING_STATE_SIZE
    + PRICE_LIMIT_SIZE
    + SCENARIO_CONFIG_SIZE
    + PRICE_BAND_SIZE
    + 152;
const _: () = assert!(core::mem::size_of::<Underlying>() == UNDERLYING_SIZE);
const _: () = assert!(UNDERLYING_SIZE == 1_408);
// Fields added later are carved from the reserved bytes at the end: every
// field before them keeps its offset, so accounts from before read the same.
const _: () = assert!(core::mem::offset_of!(Underlying, price_limit) == 1_152);
const _: () = assert!(core::mem::offset_of!(Underlying, scenario) == 1_200);
const _: () = assert!(core::mem::offset_of!(Underlying, price_band) == 1_248);
const _: () = assert!(core::mem::offset_of!(Underlying, reserved) == 1_256);
const _: () = assert!(core::mem::align_of::<Underlying>() <= 8);

impl Underlying {
    pub const SPACE: usize = 8 + UNDERLYING_SIZE;

    pub fn oracle_config(&self) -> core::result::Result<OracleConfig, KestrelError> {
        OracleConfig::try_from(&self.oracle)
    }

    pub fn has_fallback(&self) -> bool {
        self.oracle.fallback_kind != OracleKind::None as u8
    }

    pub fn bounds(&self) -> OracleBounds {
        OracleBounds {
            max_age_seconds: self.oracle.max_age_seconds,
            max_age_slots: self.oracle.max_age_slots,
            max_confidence_bps: self.oracle.max_confidence_bps,
            base_decimals: self.base_decimals,
            quote_decimals: self.quote_decimals,
        }
    }

    /// What the stored records give at unix time `now` and `slot`, without
    /// reading any feed: the price the last refresh accepted while it is
    /// within the maximum age (or a current fallback within the deviation
    /// bound of it), else why there is none. Read-only: the records it
    /// returns are not stored.
    pub fn reading(&self, now: i64, slot: u64) -> PriceReading {
        if let Some(price) = self.fresh_accepted_price(now, slot) {
            let last = &self.prices.last_good;
            return PriceReading {
                current: Ok(AcceptedPrice {
                    price,
                    publish_time: last.publish_time,
                    publish_slot: last.publish_slot,
                    feed: if self.prices.last_good_source == 2 {
                        FeedRole::Fallback
                    } else {
                        FeedRole::Primary
                    },
                }),
                records: self.prices,
            };
        }
        let mut reading = self.prices.accept(
            &self.bounds(),
            self.has_fallback(),
            self.oracle.max_deviation_bps,
            now,
            slot,
        );
        if let Ok(accepted) = &mut reading.current {
            let delay = self.stable_price().delay_price();
            accepted.price = self.price_limit().accepts(accepted.price, now, delay);
        }
        reading
    }

    /// Stores a refresh's reading at unix time `now`: its records, whether
    /// it accepted a price, and that price into the integral (held at most
    /// the maximum age; an update not newer than the last one recorded adds
    /// nothing). A publish time ahead of the clock is recorded as now, so
    /// one future-dated update cannot freeze the integral until its time;
    /// and an integral that cannot take the price (its sum past I80F48)
    /// stops moving rather than failing the refresh: the markets keep their
    /// price, only a settlement waits.
    pub fn store(&mut self, reading: &PriceReading, now: i64) {
        if let Ok(accepted) = reading.current {
            // What every reader takes as the price: the feeds' price, as
            // far as the limit lets it move since the last refresh.
            // The band is around the delay price before this refresh feeds
            // it, as `reading` saw it.
            let delay = self.stable_price().delay_price();
            let mut limit = self.price_limit();
            let price = limit.record(accepted.price, now, delay);
            self.set_price_limit(&limit);
            let max_hold = self.oracle.max_age_seconds;
            let at = accepted.publish_time.min(now);
            let integral: &mut PriceIntegral = bytemuck::cast_mut(&mut self.integral);
            // Unchanged on an error (`record` is atomic).
            let _ = integral.record(price, at, max_hold);
            let realized: &mut RealizedVolatility = bytemuck::cast_mut(&mut self.realized);
            realized.record(price, at);
            // The estimate (a division and a square root) only where it
            // scales margin.
            if self.risk_scaling.config.baseline_volatility_bps > 0 {
                let volatility = realized.volatility();
                self.risk_scaling.step(volatility, now);
            }
            // On the clock, not the publish time: its growth limit is per
            // second of real time.
            let stable: &mut StablePrice = bytemuck::cast_mut(&mut self.stable);
            stable.update(price, now);
        }
        self.prices = reading.records;
        self.accepted = u8::from(reading.current.is_ok());
    }

    /// The price integral, for the engine.
    pub fn integral(&self) -> &PriceIntegral {
        bytemuck::cast_ref(&self.integral)
    }

    /// The realized volatility's running average, for the engine.
    pub fn realized(&self) -> &RealizedVolatility {
        bytemuck::cast_ref(&self.realized)
    }

    /// What health reads of the margin scaling.
    pub fn margin_terms(&self) -> MarginTerms {
        MarginTerms {
            scale_bps: self.risk_scaling.scale_bps(),
            size_margin_bps: self.risk_scaling.config.size_margin_bps,
            native_per_unit: 10u64.pow(u32::from(self.base_decimals.min(19))),
        }
    }

    /// The stable price model, for the engine.
    pub fn stable_price(&self) -> &StablePrice {
        bytemuck::cast_ref(&self.stable)
    }

    /// The price limit, for the engine.
    pub fn price_limit(&self) -> PriceLimit {
        let stored = &self.price_limit;
        PriceLimit {
            price: stored.price,
            feed: stored.feed,
            updated_at: stored.updated_at,
            max_move_bps_per_second: stored.max_move_bps_per_second,
            band_bps: stored.band_bps,
            widened_seconds: self.price_band.widened_seconds,
            held: self.price_band.held,
            padding: [0; 3],
        }
    }

    /// Stores `limit` into its two fields.
    pub fn set_price_limit(&mut self, limit: &PriceLimit) {
        self.price_limit = StoredPriceLimit {
            price: limit.price,
            feed: limit.feed,
            updated_at: limit.updated_at,
            max_move_bps_per_second: limit.max_move_bps_per_second,
            band_bps: limit.band_bps,
        };
        self.price_band = StoredPriceBand {
            widened_seconds: limit.widened_seconds,
            held: limit.held,
            padding: [0; 3],
        };
    }

    /// The last price a refresh accepted, fresh or not (what bands
    /// reduce-only orders through an outage and marks a closed market).
    pub fn last_good_price(&self) -> Option<I80F48> {
        self.price_limit()
            .price()
            .or_else(|| self.prices.last_good_price())
    }

    /// What an order is priced from at `now`, `slot`: [`Self::reading`]
    /// without copying the records out while the last accepted price is
    /// fresh (every order reads it).
    pub fn trading_price(&self, now: i64, slot: u64) -> TradingPrice {
        if let Some(price) = self.fresh_accepted_price(now, slot) {
            return TradingPrice {
                current: Ok(price),
                last_good: self.last_good_price(),
                last_good_time: self.prices.last_good.publish_time,
            };
        }
        TradingPrice {
            last_good: self.last_good_price(),
            ..TradingPrice::from(&self.reading(now, slot))
        }
    }

    /// The price to use now (native quote per native base), or the feeds'
    /// error: [`Self::reading`]'s, without copying the records out while
    /// the last accepted price is fresh (every health walk reads it).
    pub fn current_price(&self, now: i64, slot: u64) -> core::result::Result<I80F48, KestrelError> {
        match self.fresh_accepted_price(now, slot) {
            Some(price) => Ok(price),
            None => Ok(self.reading(now, slot).price()?),
        }
    }

    /// The price the last refresh accepted, while it is fresh at `now`,
    /// `slot`. The records are what that refresh judged, and their judgement
    /// changes with time only by going stale: so while it is fresh,
    /// accepting again would give this price, and the feeds' checks need
    /// not run again (the fast path of every reading).
    #[inline(always)]
    fn fresh_accepted_price(&self, now: i64, slot: u64) -> Option<I80F48> {
        let last = &self.prices.last_good;
        if self.accepted == 0 {
            return None;
        }
        let price = self.last_good_price()?;
        is_fresh(
            last.publish_time,
            last.publish_slot,
            &self.bounds(),
            now,
            slot,
        )
        .then_some(price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_range_scales_in_steps_and_stays_below_the_ceiling() {
        let config = ScenarioConfig {
            scan_range_bps: 1_500,
            extreme_move_bps: 30_000,
            ..Default::default()
        };
        let scan = |scale| config.grid(scale).scan_range_bps;
        // At or below the baseline: the configured range.
        assert_eq!(scan(0), 1_500);
        assert_eq!(scan(10_000), 1_500);
        // Just above it: the next 2.5 % step, held until the one after.
        assert_eq!(scan(10_001), 1_537);
        assert_eq!(scan(10_250), 1_537);
        assert_eq!(scan(10_251), 1_575);
        // Extreme moves of three ranges stay under 95 %: 31.66 % at most.
        assert_eq!(scan(30_000), 3_166);
    }

    pub fn config() -> OracleConfig {
        OracleConfig {
            primary_kind: OracleKind::Pyth,
            primary_feed: [1; 32],
            fallback_kind: OracleKind::Switchboard,
            fallback_feed: [2; 32],
            max_age_seconds: 60,
            max_age_slots: 0,
            max_confidence_bps: 200,
            max_deviation_bps: 300,
            primary_account: [0; 32],
            fallback_account: [0; 32],
        }
    }

    #[test]
    fn oracle_config_is_validated_field_by_field() {
        assert!(config().validate().is_ok());
        let broken: [fn(&mut OracleConfig); 8] = [
            |c| c.primary_kind = OracleKind::None,
            |c| c.max_age_seconds = 0,
            |c| c.max_confidence_bps = 0,
            |c| c.max_confidence_bps = 10_001,
            |c| c.max_deviation_bps = 0,
            |c| c.fallback_feed = c.primary_feed,
            |c| c.fallback_account = [3; 32],
            |c| {
                c.primary_kind = OracleKind::Switchboard;
                c.primary_account = [3; 32];
            },
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut c = config();
            breaks(&mut c);
            assert!(c.validate().is_err(), "case {i} should be refused");
        }
    }

    #[test]
    fn stored_config_reads_back_as_set() {
        let stored = StoredOracleConfig::from(&config());
        assert_eq!(OracleConfig::try_from(&stored).ok(), Some(config()));
        let mut corrupt = stored;
        corrupt.fallback_kind = 3;
        assert!(matches!(
            OracleConfig::try_from(&corrupt),
            Err(KestrelError::Unreachable)
        ));
    }

    /// With a price limit, every way of reading the price gives the limited
    /// one: the stored price, the fast and the full reading (a fallback it
    /// accepts itself included), the last good price; initial health sees
    /// the feeds' price it holds back.
    #[test]
    fn a_price_limit_holds_every_reading_of_the_price() {
        use crate::oracle::{OracleSource, RawPrice};
        let raw = |whole: i128, publish_time: i64| RawPrice {
            mantissa: whole * 100_000_000,
            confidence: 0,
            exponent: -8,
            publish_time,
            publish_slot: 10,
            source: OracleSource::Pyth,
        };
        let mut u: Underlying = bytemuck::Zeroable::zeroed();
        u.oracle = StoredOracleConfig::from(&config());
        u.base_decimals = 9;
        u.quote_decimals = 6;
        u.price_limit.max_move_bps_per_second = 20;
        let bounds = u.bounds();
        let native = |whole: f64| I80F48::from_num(whole / 1_000.0);
        let near = |price: I80F48, whole: f64| (price - native(whole)).abs() < native(1e-6);
        let refresh = |u: &mut Underlying, primary: RawPrice, now: i64| {
            let mut records = u.prices;
            records.primary = records.primary.observe(Ok(primary), &bounds);
            records.fallback = records.fallback.observe(Ok(primary), &bounds);
            let reading = records.accept(&bounds, true, 300, now, 10);
            u.store(&reading, now);
        };
        refresh(&mut u, raw(150, 1_000), 1_000);
        assert!(near(u.current_price(1_000, 10).unwrap(), 150.0));
        assert_eq!(u.price_limit().lagging_feed(), None);
        // One print five-fold: the markets see 2 % of it.
        refresh(&mut u, raw(750, 1_015), 1_015);
        for price in [
            u.current_price(1_015, 10).unwrap(),
            u.reading(1_015, 10).price().unwrap(),
            u.trading_price(1_015, 10).current.unwrap(),
            u.last_good_price().unwrap(),
        ] {
            assert!(near(price, 153.0), "{price}");
        }
        // The stable price follows the limited price, not the print.
        let stable = u.stable_price().price().unwrap();
        assert!(stable > native(150.0) && stable < native(153.0), "{stable}");
        let prices = crate::portfolio::UnderlyingPrices::of(&u, 1_015, 10);
        assert!(near(prices.feed.unwrap(), 750.0));
        // The primary aged out, a newer fallback at 750: the full reading
        // accepts it, one limited step on from the stored price.
        let mut records = u.prices;
        records.fallback = records.fallback.observe(Ok(raw(750, 1_050)), &bounds);
        u.prices = records;
        let price = u.reading(1_090, 10).price().unwrap();
        assert!(near(price, 153.0 * 1.02), "{price}");
        assert!(near(u.trading_price(1_090, 10).last_good.unwrap(), 153.0));
        // Without the limit, the feeds' price stands.
        u.price_limit.max_move_bps_per_second = 0;
        assert!(near(u.current_price(1_015, 10).unwrap(), 750.0));
        assert_eq!(u.price_limit().lagging_feed(), None);
    }

    /// The reading's shortcut (the last refresh's accepted price while it is
    /// fresh) gives what accepting the stored records again gives, whichever
    /// feed carried the price and whenever it is read.
    #[test]
    fn a_reading_is_what_accepting_the_records_again_gives() {
        use crate::oracle::{OracleSource, RawPrice};
        let raw = |mantissa: i128, publish_time: i64, publish_slot: u64| RawPrice {
            mantissa,
            confidence: 0,
            exponent: -8,
            publish_time,
            publish_slot,
            source: OracleSource::Pyth,
        };
        let mut underlying: Underlying = bytemuck::Zeroable::zeroed();
        underlying.oracle = StoredOracleConfig::from(&config());
        underlying.base_decimals = 9;
        underlying.quote_decimals = 6;
        let bounds = underlying.bounds();
        // (primary, fallback) updates: agreeing, deviating, primary older.
        let cases = [
            (
                raw(15_000_000_000, 1_000, 10),
                raw(15_010_000_000, 1_000, 10),
            ),
            (
                raw(15_000_000_000, 1_000, 10),
                raw(16_000_000_000, 1_000, 10),
            ),
            (raw(15_000_000_000, 900, 5), raw(14_950_000_000, 1_000, 10)),
        ];
        for (primary, fallback) in cases {
            let mut u = underlying;
            // A first refresh at 1,000 and, for the third case, a second one
            // once the primary has aged out.
            for refreshed_at in [1_000, 965] {
                let mut records = u.prices;
                records.primary = records.primary.observe(Ok(primary), &bounds);
                records.fallback = records.fallback.observe(Ok(fallback), &bounds);
                let reading = records.accept(&bounds, true, 300, refreshed_at.max(1_000), 10);
                u.store(&reading, refreshed_at.max(1_000));
            }
            for now in [1_000, 1_030, 1_060, 1_061, 1_200] {
                assert_eq!(
                    u.trading_price(now, 10),
                    TradingPrice::from(&u.reading(now, 10)),
                    "read at {now}"
                );
                let fast = u.reading(now, 10).price().ok();
                let full = u.prices.accept(&bounds, true, 300, now, 10).price().ok();
                assert_eq!(fast, full, "read at {now}");
            }
        }
    }

    #[test]
    fn stored_oracle_kinds_are_stable() {
        // Declaration order is the stored byte: append new variants only.
        for (byte, kind) in [OracleKind::None, OracleKind::Pyth, OracleKind::Switchboard]
            .into_iter()
            .enumerate()
        {
            assert_eq!(kind as u8, byte as u8);
            assert_eq!(OracleKind::try_from(byte as u8).ok(), Some(kind));
        }
    }
}
