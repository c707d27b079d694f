//! Oracle prices: parse a Pyth pull update or a Switchboard On-Demand feed,
//! validate it against the underlying's bounds, and pick between primary and
//! fallback. One validated [`OraclePrice`] comes out, in native quote units
//! per native base unit.
//!
//! Validation is pure (no account types): parsers turn account bytes into a
//! [`RawPrice`], [`validate`] applies the bounds, [`select`] picks the source.
use crate::engine::fastmul::{checked_mul_i128, checked_mul_u128_u64, FastMulInt};
use anchor_lang::prelude::zero_copy;
use anchor_lang::prelude::{AccountInfo, Clock, Pubkey};
use fixed::types::I80F48;

use crate::engine::fastdiv::{div_pow10, fixed_div_int};
use crate::error::KestrelError;
use crate::state::{OracleKind, Underlying};

pub mod pyth;
pub mod switchboard;

/// An oracle account as the readers need it: address, owner and data.
/// Built from an `AccountInfo` on chain and from fetched bytes off chain.
#[derive(Clone, Copy, Debug)]
pub struct FeedAccount<'a> {
    pub address: &'a Pubkey,
    pub owner: &'a Pubkey,
    pub data: &'a [u8],
}

/// Reads the feed an underlying configured from `account`: owner program, layout
/// and feed identity are checked; freshness and bounds are `validate`'s.
pub fn read_feed(
    kind: OracleKind,
    feed: &[u8; 32],
    account: &AccountInfo,
) -> Result<RawPrice, OracleError> {
    let data = account
        .try_borrow_data()
        .map_err(|_| OracleError::BadAccountData)?;
    read_feed_account(kind, feed, account_view(account, &data))
}

fn account_view<'a>(account: &'a AccountInfo, data: &'a [u8]) -> FeedAccount<'a> {
    FeedAccount {
        address: account.key,
        owner: account.owner,
        data,
    }
}

/// [`read_feed`] over a [`FeedAccount`].
pub fn read_feed_account(
    kind: OracleKind,
    feed: &[u8; 32],
    account: FeedAccount,
) -> Result<RawPrice, OracleError> {
    match kind {
        OracleKind::Pyth => pyth::read(account.owner, account.data, feed),
        OracleKind::Switchboard => switchboard::read(
            account.address,
            account.owner,
            account.data,
            &Pubkey::new_from_array(*feed),
        ),
        OracleKind::None => Err(OracleError::WrongFeed),
    }
}

/// Reads the underlying's feeds from the accounts passed and accepts a price
/// against what it already holds (its [`PriceRecords`]): `refresh_underlying`
/// stores the reading's records. The error refuses the instruction (an
/// account that is not the configured feed, or a missing fallback); a feed
/// that cannot be used now is the reading's [`PriceReading::current`].
pub fn refresh_price(
    underlying: &Underlying,
    primary: &AccountInfo,
    fallback: Option<&AccountInfo>,
    clock: &Clock,
) -> Result<PriceReading, KestrelError> {
    let primary_data = primary
        .try_borrow_data()
        .map_err(|_| KestrelError::OracleBadData)?;
    let fallback_data = match fallback {
        Some(account) => Some(
            account
                .try_borrow_data()
                .map_err(|_| KestrelError::OracleBadData)?,
        ),
        None => None,
    };
    let fallback = fallback
        .zip(fallback_data.as_deref())
        .map(|(account, data)| account_view(account, data));
    refresh_price_of(
        underlying,
        account_view(primary, &primary_data),
        fallback,
        clock.unix_timestamp,
        clock.slot,
    )
}

/// What reading one configured feed gave.
enum FeedRead {
    /// An update of the feed (newer or not: [`FeedRecord::observe`] decides).
    Update(RawPrice),
    /// The feed's account, but no price usable now (unverified, stale...).
    Unusable(OracleError),
}

/// Reads `account` as the feed `kind`/`feed`, pinned to `pin` when it is not
/// zero. An account that is not the feed at all refuses the instruction: a
/// caller's mistake, never a reason to fail over.
fn read_configured(
    kind: OracleKind,
    feed: &[u8; 32],
    pin: &[u8; 32],
    account: FeedAccount,
) -> Result<FeedRead, KestrelError> {
    // A pinned Pyth account (a sponsored feed): no other update of the feed
    // id is read at all.
    if *pin != [0; 32] && account.address.to_bytes() != *pin {
        return Err(KestrelError::WrongOracleAccount);
    }
    match read_feed_account(kind, feed, account) {
        Ok(raw) => Ok(FeedRead::Update(raw)),
        Err(
            error
            @ (OracleError::WrongOwner | OracleError::WrongFeed | OracleError::BadAccountData),
        ) => Err(KestrelError::from(error)),
        Err(error) => Ok(FeedRead::Unusable(error)),
    }
}

impl FeedRead {
    fn into_observation(self) -> Result<RawPrice, OracleError> {
        match self {
            FeedRead::Update(raw) => Ok(raw),
            FeedRead::Unusable(error) => Err(error),
        }
    }
}

/// [`refresh_price`] over [`FeedAccount`]s at unix time `now` and `slot`: the
/// SDK previews a refresh with it on fetched accounts.
pub fn refresh_price_of(
    underlying: &Underlying,
    primary: FeedAccount,
    fallback: Option<FeedAccount>,
    now: i64,
    slot: u64,
) -> Result<PriceReading, KestrelError> {
    let config = underlying.oracle_config()?;
    let bounds = underlying.bounds();
    let stored = &underlying.prices;
    let mut records = *stored;
    let primary = read_configured(
        config.primary_kind,
        &config.primary_feed,
        &config.primary_account,
        primary,
    )?;
    records.primary = stored.primary.observe(primary.into_observation(), &bounds);
    let has_fallback = match (config.fallback_kind, fallback) {
        (OracleKind::None, _) => false,
        (kind, Some(account)) => {
            let fallback = read_configured(
                kind,
                &config.fallback_feed,
                &config.fallback_account,
                account,
            )?;
            records.fallback = stored
                .fallback
                .observe(fallback.into_observation(), &bounds);
            true
        }
        // Dropping the fallback would also drop the deviation check.
        (_, None) => return Err(KestrelError::WrongOracleAccount),
    };
    Ok(records.accept(&bounds, has_fallback, config.max_deviation_bps, now, slot))
}

impl From<OracleError> for KestrelError {
    fn from(error: OracleError) -> Self {
        match error {
            OracleError::WrongOwner => KestrelError::OracleWrongOwner,
            OracleError::WrongFeed => KestrelError::OracleWrongFeed,
            OracleError::BadAccountData => KestrelError::OracleBadData,
            OracleError::InsufficientVerification => KestrelError::OracleUnverified,
            OracleError::NonPositivePrice => KestrelError::OracleNonPositivePrice,
            OracleError::Stale => KestrelError::OracleStale,
            OracleError::ConfidenceTooWide => KestrelError::OracleConfidenceTooWide,
            OracleError::Deviation => KestrelError::OracleDeviation,
            OracleError::OutOfRange => KestrelError::OracleOutOfRange,
        }
    }
}

impl From<OracleError> for anchor_lang::error::Error {
    fn from(error: OracleError) -> Self {
        KestrelError::from(error).into()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OracleSource {
    Pyth,
    Switchboard,
}

/// Why an oracle price is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OracleError {
    /// The account is not owned by the oracle program.
    WrongOwner,
    /// The account is not the configured feed (other feed id or address).
    WrongFeed,
    /// The bytes are not a price account of that oracle.
    BadAccountData,
    /// Pyth update not fully verified by Wormhole guardians.
    InsufficientVerification,
    NonPositivePrice,
    /// Older than the underlying's maximum age (seconds or slots).
    Stale,
    /// Confidence interval wider than the underlying's bound.
    ConfidenceTooWide,
    /// Primary and fallback are both valid but disagree beyond the bound.
    Deviation,
    /// The price does not fit the fixed-point range.
    OutOfRange,
}

impl OracleError {
    const ALL: [OracleError; 9] = [
        OracleError::WrongOwner,
        OracleError::WrongFeed,
        OracleError::BadAccountData,
        OracleError::InsufficientVerification,
        OracleError::NonPositivePrice,
        OracleError::Stale,
        OracleError::ConfidenceTooWide,
        OracleError::Deviation,
        OracleError::OutOfRange,
    ];

    /// The byte a [`FeedRecord`] stores it as (1-based; 0 = no error).
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|e| *e == self).unwrap_or(0) as u8 + 1
    }

    /// The inverse of [`Self::code`]; an unknown byte reads as `BadAccountData`.
    pub fn from_code(code: u8) -> Self {
        code.checked_sub(1)
            .and_then(|i| Self::ALL.get(usize::from(i)).copied())
            .unwrap_or(OracleError::BadAccountData)
    }
}

/// A price as the oracle states it: `mantissa * 10^exponent` quote per base
/// (whole tokens), with the same scale for the confidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPrice {
    pub mantissa: i128,
    pub confidence: u128,
    pub exponent: i32,
    /// Unix seconds the price was published.
    pub publish_time: i64,
    /// Slot the price was published or landed in.
    pub publish_slot: u64,
    pub source: OracleSource,
}

/// Per-underlying bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OracleBounds {
    pub max_age_seconds: u32,
    /// 0 = not checked.
    pub max_age_slots: u32,
    /// Largest confidence / price, in basis points.
    pub max_confidence_bps: u32,
    pub base_decimals: u8,
    pub quote_decimals: u8,
}

/// A validated price in native quote units per native base unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OraclePrice {
    pub price: I80F48,
    /// The confidence interval on the oracle's scale: `confidence()` converts
    /// it when asked (a conversion is a wide division; most callers never ask).
    pub raw_confidence: u128,
    /// The power of ten from the oracle's scale to native units.
    pub exponent: i32,
    pub publish_time: i64,
    pub publish_slot: u64,
    pub source: OracleSource,
}

impl OraclePrice {
    /// The confidence interval in native quote units per native base unit.
    pub fn confidence(&self) -> I80F48 {
        // Validation bounded the confidence by the price, which scaled.
        scale(self.raw_confidence as i128, self.exponent).unwrap_or(I80F48::MAX)
    }
}

/// Checks `raw` at unix time `now` and slot `slot` and converts it to native units.
pub fn validate(
    raw: &RawPrice,
    bounds: &OracleBounds,
    now: i64,
    slot: u64,
) -> Result<OraclePrice, OracleError> {
    if raw.mantissa <= 0 {
        return Err(OracleError::NonPositivePrice);
    }
    if !is_fresh(raw.publish_time, raw.publish_slot, bounds, now, slot) {
        return Err(OracleError::Stale);
    }
    convert(raw, bounds)
}

/// Within the underlying's maximum age at unix time `now` and `slot`. A publish
/// time slightly ahead of this validator's clock is not stale.
pub fn is_fresh(
    publish_time: i64,
    publish_slot: u64,
    bounds: &OracleBounds,
    now: i64,
    slot: u64,
) -> bool {
    now.saturating_sub(publish_time) <= i64::from(bounds.max_age_seconds)
        && (bounds.max_age_slots == 0
            || slot.saturating_sub(publish_slot) <= u64::from(bounds.max_age_slots))
}

/// The checks that do not depend on time (sign, confidence, range) and the
/// conversion to native units.
pub fn convert(raw: &RawPrice, bounds: &OracleBounds) -> Result<OraclePrice, OracleError> {
    if raw.mantissa <= 0 {
        return Err(OracleError::NonPositivePrice);
    }
    // confidence / price <= bps / 10_000, in integers on the oracle's own scale.
    // 64-bit-limb products: a u128 multiply is a costly routine on SBF.
    let price = raw.mantissa as u128;
    let too_wide = match checked_mul_u128_u64(raw.confidence, 10_000) {
        Some(scaled) => {
            let bound = checked_mul_u128_u64(price, u64::from(bounds.max_confidence_bps));
            bound.is_some_and(|bound| scaled > bound)
        }
        None => true,
    };
    if too_wide {
        return Err(OracleError::ConfidenceTooWide);
    }
    let exponent =
        raw.exponent + i32::from(bounds.quote_decimals) - i32::from(bounds.base_decimals);
    Ok(OraclePrice {
        price: scale(raw.mantissa, exponent).ok_or(OracleError::OutOfRange)?,
        raw_confidence: raw.confidence,
        exponent,
        publish_time: raw.publish_time,
        publish_slot: raw.publish_slot,
        source: raw.source,
    })
}

/// `mantissa * 10^exponent` in I80F48, rounded down. For a negative exponent
/// it is one integer division of the fixed-point bits (a fixed-point divide is
/// a far dearer wide division on SBF); mantissas too large to shift (beyond
/// 2^79) take the slower whole-and-fraction path.
fn scale(mantissa: i128, exponent: i32) -> Option<I80F48> {
    if mantissa < 0 {
        return None;
    }
    if exponent >= 0 {
        return I80F48::checked_from_num(checked_mul_i128(
            mantissa,
            power_of_ten(exponent as u32)?,
        )?);
    }
    if mantissa < 1 << 79 {
        // One integer division of the bits, in 64-bit steps (fastdiv).
        let bits = div_pow10((mantissa << 48) as u128, exponent.unsigned_abs());
        return Some(I80F48::from_bits(bits as i128));
    }
    let divisor = power_of_ten(exponent.unsigned_abs())?;
    let whole = I80F48::checked_from_num(mantissa / divisor)?;
    let fraction = I80F48::checked_from_num(mantissa % divisor)?
        .checked_div(I80F48::checked_from_num(divisor)?)?;
    whole.checked_add(fraction)
}

/// 10^exponent from a table: `checked_pow` would multiply 128-bit numbers
/// in a loop, each a software routine on SBF.
fn power_of_ten(exponent: u32) -> Option<i128> {
    const TABLE: [i128; 39] = {
        let mut table = [1i128; 39];
        let mut i = 1;
        while i < 39 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    TABLE.get(exponent as usize).copied()
}

/// `a` and `b` differ by more than `bps` of `reference`.
fn deviates(a: I80F48, b: I80F48, reference: I80F48, bps: u32) -> Result<bool, OracleError> {
    let difference = a.checked_sub(b).ok_or(OracleError::OutOfRange)?.abs();
    let bound = reference
        .fast_mul_int(i128::from(bps))
        .and_then(|scaled| fixed_div_int(scaled, 10_000))
        .ok_or(OracleError::OutOfRange)?;
    Ok(difference > bound)
}

/// The newest update of one feed the underlying has seen, as it was judged then.
/// An update that is not newer than the record is never used: a caller cannot
/// pick an older price of the same feed.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FeedRecord {
    /// Native quote per native base (I80F48 halves); zero when the update
    /// was unusable (see `error`).
    pub price: [u64; 2],
    pub publish_time: i64,
    pub publish_slot: u64,
    /// Why the update was unusable ([`OracleError::code`]); 0 when usable.
    pub error: u8,
    pub padding: [u8; 7],
}

const _: () = assert!(core::mem::size_of::<FeedRecord>() == 16 + 8 + 8 + 1 + 7);

/// What an underlying has accepted from its feeds: each feed's newest update and
/// the last good price, the one the underlying last accepted. Prices come out of
/// [`PriceRecords::accept`] only, so none is older than one already used.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PriceRecords {
    pub primary: FeedRecord,
    pub fallback: FeedRecord,
    /// The last good price: what bands reduce-only orders while no feed is
    /// usable, and what a fallback is checked against when the primary fails.
    pub last_good: FeedRecord,
    /// Where `last_good` came from: 0 none yet, 1 primary, 2 fallback.
    pub last_good_source: u8,
    pub padding: [u8; 7],
}

pub const PRICE_RECORDS_SIZE: usize = 3 * core::mem::size_of::<FeedRecord>() + 1 + 7;
const _: () = assert!(core::mem::size_of::<PriceRecords>() == PRICE_RECORDS_SIZE);

impl FeedRecord {
    fn usable(price: I80F48, publish_time: i64, publish_slot: u64) -> Self {
        Self {
            price: crate::engine::funding::to_parts(price),
            publish_time,
            publish_slot,
            error: 0,
            padding: [0; 7],
        }
    }

    /// The record's price, when its update was usable.
    pub fn price(&self) -> Option<I80F48> {
        let price = crate::engine::funding::from_parts(self.price);
        (self.error == 0 && price > 0).then_some(price)
    }

    fn is_newer(&self, raw: &RawPrice) -> bool {
        (raw.publish_time, raw.publish_slot) > (self.publish_time, self.publish_slot)
    }

    /// The record after seeing `observed`: an update newer than the record
    /// replaces it (judged now: sign, confidence, range); anything else,
    /// an older update or a soft read failure, leaves it as it was.
    pub fn observe(&self, observed: Result<RawPrice, OracleError>, bounds: &OracleBounds) -> Self {
        match observed {
            Ok(raw) if self.is_newer(&raw) => match convert(&raw, bounds) {
                Ok(price) => Self::usable(price.price, raw.publish_time, raw.publish_slot),
                Err(error) => Self {
                    price: [0; 2],
                    publish_time: raw.publish_time,
                    publish_slot: raw.publish_slot,
                    error: error.code(),
                    padding: [0; 7],
                },
            },
            _ => *self,
        }
    }

    /// The price if usable and within the underlying's maximum age at `now`.
    fn current(&self, bounds: &OracleBounds, now: i64, slot: u64) -> Result<I80F48, OracleError> {
        if self.error != 0 {
            return Err(OracleError::from_code(self.error));
        }
        let price = self.price().ok_or(OracleError::Stale)?;
        if !is_fresh(self.publish_time, self.publish_slot, bounds, now, slot) {
            return Err(OracleError::Stale);
        }
        Ok(price)
    }
}

impl PriceRecords {
    /// The last good price, if the underlying ever had one.
    pub fn last_good_price(&self) -> Option<I80F48> {
        if self.last_good_source == 0 {
            return None;
        }
        self.last_good.price()
    }

    /// Picks the price to use from the records: the primary when current
    /// (unless a current fallback deviates from it by more than
    /// `max_deviation_bps`); else a current fallback, but only within
    /// `max_deviation_bps` of the last good price. The reading carries the
    /// records to store back, with the new last good price.
    pub fn accept(
        mut self,
        bounds: &OracleBounds,
        has_fallback: bool,
        max_deviation_bps: u32,
        now: i64,
        slot: u64,
    ) -> PriceReading {
        let primary = self.primary.current(bounds, now, slot);
        let fallback = has_fallback.then(|| self.fallback.current(bounds, now, slot));
        let chosen = match (primary, fallback) {
            (Ok(primary), Some(Ok(fallback))) => {
                match deviates(primary, fallback, primary, max_deviation_bps) {
                    Ok(false) => Ok((self.primary, 1)),
                    Ok(true) => Err(OracleError::Deviation),
                    Err(error) => Err(error),
                }
            }
            (Ok(_), _) => Ok((self.primary, 1)),
            (Err(error), Some(Ok(fallback))) => match self.last_good_price() {
                Some(last) => match deviates(fallback, last, last, max_deviation_bps) {
                    Ok(false) => Ok((self.fallback, 2)),
                    Ok(true) => Err(OracleError::Deviation),
                    Err(error) => Err(error),
                },
                // Never a primary to check it against: the primary's error.
                None => Err(error),
            },
            (Err(error), _) => Err(error),
        };
        let current = chosen.map(|(record, source)| {
            self.last_good = record;
            self.last_good_source = source;
            AcceptedPrice {
                price: record.price().unwrap_or(I80F48::ZERO),
                publish_time: record.publish_time,
                publish_slot: record.publish_slot,
                feed: if source == 1 {
                    FeedRole::Primary
                } else {
                    FeedRole::Fallback
                },
            }
        });
        PriceReading {
            current,
            records: self,
        }
    }
}

/// How many of the underlying's maximum ages the last good price may band
/// reduce-only orders for once no feed is current: long enough to close
/// positions through a feed outage, short enough that resting orders do not
/// fill at a price the price has long left behind.
pub const LAST_GOOD_TRADING_AGES: i64 = 10;

/// A price the underlying accepted now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AcceptedPrice {
    /// Native quote per native base.
    pub price: I80F48,
    pub publish_time: i64,
    pub publish_slot: u64,
    pub feed: FeedRole,
}

/// Which of an underlying's feeds a price came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedRole {
    Primary,
    Fallback,
}

/// The outcome of reading an underlying's feeds: the price to use now, or why
/// there is none, and the records to store back into the underlying (`refresh_underlying`
/// stores them, so the next reader starts from the newest updates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriceReading {
    pub current: Result<AcceptedPrice, OracleError>,
    pub records: PriceRecords,
}

impl PriceReading {
    /// The current price (native quote per native base), or the feeds' error.
    pub fn price(&self) -> Result<I80F48, OracleError> {
        self.current.map(|accepted| accepted.price)
    }

    /// The price to band orders around at unix time `now`: the current
    /// price, else the last good one while it is at most
    /// [`LAST_GOOD_TRADING_AGES`] maximum ages old (only reduce-only orders
    /// trade on it). Past that, the markets of an underlying with dead feeds only cancel.
    pub fn band_price(&self, now: i64, max_age_seconds: u32) -> Option<I80F48> {
        TradingPrice::from(self).band_price(now, max_age_seconds)
    }
}

/// What an order is priced from: the current price (or why there is none)
/// and the last good price with its publish time; what a
/// [`PriceReading`] gives an order, without its records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TradingPrice {
    pub current: Result<I80F48, OracleError>,
    pub last_good: Option<I80F48>,
    pub last_good_time: i64,
}

impl From<&PriceReading> for TradingPrice {
    fn from(reading: &PriceReading) -> Self {
        Self {
            current: reading.price(),
            last_good: reading.records.last_good_price(),
            last_good_time: reading.records.last_good.publish_time,
        }
    }
}

impl TradingPrice {
    /// As [`PriceReading::band_price`].
    pub fn band_price(&self, now: i64, max_age_seconds: u32) -> Option<I80F48> {
        match self.current {
            Ok(price) => Some(price),
            Err(_) => {
                let age = now.saturating_sub(self.last_good_time);
                let limit = i64::from(max_age_seconds).saturating_mul(LAST_GOOD_TRADING_AGES);
                self.last_good.filter(|_| age <= limit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: OracleBounds = OracleBounds {
        max_age_seconds: 60,
        max_age_slots: 0,
        max_confidence_bps: 100,
        base_decimals: 9,
        quote_decimals: 6,
    };

    fn raw(mantissa: i128, confidence: u128) -> RawPrice {
        RawPrice {
            mantissa,
            confidence,
            exponent: -8,
            publish_time: 1_000,
            publish_slot: 500,
            source: OracleSource::Pyth,
        }
    }

    #[test]
    fn converts_to_native_units() {
        // 150.00000000 USD per SOL (9 decimals) in USDC (6): 0.15 native per native.
        let price = validate(&raw(15_000_000_000, 0), &BOUNDS, 1_000, 500).unwrap();
        // Confidence 1.5 USD per SOL converts on the same scale: 0.0015.
        let wide = validate(&raw(15_000_000_000, 150_000_000), &BOUNDS, 1_000, 500).unwrap();
        assert!(
            (wide.confidence() - I80F48::from_num(15) / 10_000).abs()
                < I80F48::from_num(1) / 1_000_000_000_000i128
        );
        assert!(
            (price.price - I80F48::from_num(3) / 20).abs()
                < I80F48::from_num(1) / 1_000_000_000_000i128
        );
        // Switchboard scale: 18 decimals, a large mantissa.
        let mut big = raw(150 * 10i128.pow(18), 0);
        big.exponent = -18;
        let price = validate(&big, &BOUNDS, 1_000, 500).unwrap();
        assert!(
            (price.price - I80F48::from_num(3) / 20).abs()
                < I80F48::from_num(1) / 1_000_000_000_000i128
        );
    }

    #[test]
    fn refuses_non_positive_stale_and_wide_prices() {
        assert_eq!(
            validate(&raw(0, 0), &BOUNDS, 1_000, 500),
            Err(OracleError::NonPositivePrice)
        );
        assert_eq!(
            validate(&raw(-5, 0), &BOUNDS, 1_000, 500),
            Err(OracleError::NonPositivePrice)
        );
        assert!(
            validate(&raw(100, 0), &BOUNDS, 1_060, 500).is_ok(),
            "exactly the max age"
        );
        assert_eq!(
            validate(&raw(100, 0), &BOUNDS, 1_061, 500),
            Err(OracleError::Stale)
        );
        assert!(
            validate(&raw(100, 0), &BOUNDS, 900, 500).is_ok(),
            "published ahead of our clock"
        );
        let slots = OracleBounds {
            max_age_slots: 10,
            ..BOUNDS
        };
        assert!(validate(&raw(100, 0), &slots, 1_000, 510).is_ok());
        assert_eq!(
            validate(&raw(100, 0), &slots, 1_000, 511),
            Err(OracleError::Stale)
        );
        // 1% bound: confidence 1 on 100 passes, 2 does not.
        assert!(validate(&raw(100, 1), &BOUNDS, 1_000, 500).is_ok());
        assert_eq!(
            validate(&raw(100, 2), &BOUNDS, 1_000, 500),
            Err(OracleError::ConfidenceTooWide)
        );
        assert_eq!(
            validate(&raw(100, u128::MAX), &BOUNDS, 1_000, 500),
            Err(OracleError::ConfidenceTooWide)
        );
    }

    fn at(mantissa: i128, publish_time: i64) -> Result<RawPrice, OracleError> {
        let mut r = raw(mantissa, 0);
        r.publish_time = publish_time;
        r.publish_slot = publish_time as u64;
        Ok(r)
    }

    fn read(
        stored: &PriceRecords,
        primary: Result<RawPrice, OracleError>,
        fallback: Result<RawPrice, OracleError>,
        now: i64,
    ) -> PriceReading {
        let mut records = *stored;
        records.primary = stored.primary.observe(primary, &BOUNDS);
        records.fallback = stored.fallback.observe(fallback, &BOUNDS);
        records.accept(&BOUNDS, true, 300, now, now as u64)
    }

    const P150: i128 = 15_000_000_000;
    const P146: i128 = 14_600_000_000;

    #[test]
    fn an_older_update_of_the_same_feed_is_never_used() {
        // H-1: Pyth 150 at t=1000, Switchboard 146 (2.7% away, inside 3%).
        let first = read(
            &PriceRecords::default(),
            at(P150, 1_000),
            at(P146, 1_000),
            1_010,
        );
        assert_eq!(first.current.unwrap().feed, FeedRole::Primary);
        let stored = first.records;
        // A caller passes an older (stale) Pyth update: the record keeps the
        // newer one, still current, and the price stays 150.
        let replay = read(
            &stored,
            at(P150 - 1_000_000_000, 940),
            at(P146, 1_000),
            1_020,
        );
        assert_eq!(replay.current.unwrap().price, first.current.unwrap().price);
        assert_eq!(replay.records.primary, stored.primary);
        // Once the newest primary ages out, the fallback is used, checked
        // against the last good price (150): 146 is within 3%.
        let aged = read(&stored, at(P150, 1_000), at(P146, 1_065), 1_065);
        assert_eq!(aged.current.unwrap().feed, FeedRole::Fallback);
        // A fallback more than 3% from the last good price is not used.
        let far = read(&stored, at(P150, 1_000), at(14_400_000_000, 1_065), 1_065);
        assert_eq!(far.current, Err(OracleError::Deviation));
        assert_eq!(far.band_price(1_065, 60), stored.last_good_price());
    }

    #[test]
    fn a_newer_unusable_update_retires_the_older_one() {
        let stored = read(
            &PriceRecords::default(),
            at(P150, 1_000),
            at(P150, 1_000),
            1_000,
        )
        .records;
        // A newer update with a 2% confidence (bound 1%) is recorded as unusable.
        let mut wide = raw(P150, 300_000_000);
        wide.publish_time = 1_005;
        wide.publish_slot = 1_005;
        let now = read(&stored, Ok(wide), at(P150, 1_000), 1_006);
        assert_eq!(now.current.unwrap().feed, FeedRole::Fallback);
        assert_eq!(
            now.records.primary.error,
            OracleError::ConfidenceTooWide.code()
        );
        // The older good update cannot be brought back.
        let back = read(&now.records, at(P150, 1_000), at(P150, 1_000), 1_006);
        assert_eq!(back.records.primary, now.records.primary);
        // Neither feed current: no price, but the last good one remains to
        // band reduce-only orders.
        let dead = read(&now.records, at(P150, 1_000), at(P150, 1_000), 1_200);
        assert!(dead.current.is_err());
        assert_eq!(dead.band_price(1_200, 60), stored.last_good_price());
        assert!(dead.band_price(1_200, 60).is_some());
        // Ten maximum ages on, the last good price bands nothing: cancels only.
        let last = stored.last_good.publish_time;
        assert!(dead.band_price(last + 600, 60).is_some());
        assert_eq!(dead.band_price(last + 601, 60), None);
    }

    #[test]
    fn current_feeds_that_disagree_give_no_price() {
        let first = read(
            &PriceRecords::default(),
            at(P150, 1_000),
            at(P150 * 104 / 100, 1_000),
            1_000,
        );
        assert_eq!(first.current, Err(OracleError::Deviation));
        assert_eq!(first.band_price(1_000, 60), None, "no last good price yet");
        // A fallback alone with no last good price is not trusted.
        let alone = read(
            &PriceRecords::default(),
            at(P150, 100),
            at(P150, 1_000),
            1_000,
        );
        assert_eq!(alone.current, Err(OracleError::Stale));
    }

    #[test]
    fn error_codes_round_trip() {
        for error in OracleError::ALL {
            assert_eq!(OracleError::from_code(error.code()), error);
            assert_ne!(error.code(), 0);
        }
    }

    proptest::proptest! {
        /// Whatever updates a caller passes, in any order, each feed's record
        /// only moves forward in time and a current price is always the
        /// newest usable update seen of its feed.
        #[test]
        fn records_only_move_forward(
            steps in proptest::collection::vec((0i64..200, 0i64..200, 1i128..100, 1i128..100, 0i64..20), 1..40)
        ) {
            let mut stored = PriceRecords::default();
            let mut now = 1_000;
            for (p_age, f_age, p_price, f_price, tick) in steps {
                now += tick;
                let reading = read(
                    &stored,
                    at(P150 + p_price * 1_000_000, now - p_age),
                    at(P150 + f_price * 1_000_000, now - f_age),
                    now,
                );
                let records = reading.records;
                proptest::prop_assert!(records.primary.publish_time >= stored.primary.publish_time);
                proptest::prop_assert!(records.fallback.publish_time >= stored.fallback.publish_time);
                if let Ok(accepted) = reading.current {
                    let record = match accepted.feed {
                        FeedRole::Primary => records.primary,
                        FeedRole::Fallback => records.fallback,
                    };
                    proptest::prop_assert_eq!(accepted.publish_time, record.publish_time);
                    proptest::prop_assert!(now - accepted.publish_time <= 60);
                }
                stored = records;
            }
        }
    }
}
