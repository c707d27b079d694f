//! Oracle prices: parse a Pyth pull update or a Switchboard On-Demand feed,
//! validate it against the market's bounds, and pick between primary and
//! fallback. One validated [`OraclePrice`] comes out, in native quote units
//! per native base unit.
//!
//! Validation is pure (no account types): parsers turn account bytes into a
//! [`RawPrice`], [`validate`] applies the bounds, [`select`] picks the source.
use crate::engine::fastmul::{checked_mul_i128, checked_mul_u128_u64, FastMulInt};
use anchor_lang::prelude::{AccountInfo, Clock, Pubkey};
use fixed::types::I80F48;

use crate::engine::fastdiv::{div_pow10, fixed_div_int};
use crate::error::KestrelError;
use crate::state::{Market, OracleKind};

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

/// Reads the feed a market configured from `account`: owner program, layout
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

/// The market's price now. The outer error refuses the instruction (an
/// account that is not the configured feed, or a missing fallback); the inner
/// one is a feed that cannot be used now, which makes the market reduce-only
/// for this instruction.
pub fn market_price(
    market: &Market,
    quote_decimals: u8,
    primary: &AccountInfo,
    fallback: Option<&AccountInfo>,
    clock: &Clock,
) -> Result<Result<OraclePrice, OracleError>, KestrelError> {
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
    market_price_of(
        market,
        quote_decimals,
        account_view(primary, &primary_data),
        fallback,
        clock.unix_timestamp,
        clock.slot,
    )
}

/// [`market_price`] over [`FeedAccount`]s at unix time `now` and `slot`: the
/// SDK's health preview runs it on fetched accounts.
pub fn market_price_of(
    market: &Market,
    quote_decimals: u8,
    primary: FeedAccount,
    fallback: Option<FeedAccount>,
    now: i64,
    slot: u64,
) -> Result<Result<OraclePrice, OracleError>, KestrelError> {
    let params = market.params();
    let config = &params.oracle;
    let bounds = OracleBounds {
        max_age_seconds: config.max_age_seconds,
        max_age_slots: config.max_age_slots,
        max_confidence_bps: config.max_confidence_bps,
        base_decimals: market.base_decimals,
        quote_decimals,
    };
    let read = |kind, feed: &[u8; 32], account: FeedAccount| match read_feed_account(
        kind, feed, account,
    ) {
        Ok(raw) => Ok(validate(&raw, &bounds, now, slot)),
        // Not the feed at all: a caller's mistake, never a reason to fail over.
        Err(
            error
            @ (OracleError::WrongOwner | OracleError::WrongFeed | OracleError::BadAccountData),
        ) => Err(KestrelError::from(error)),
        Err(error) => Ok(Err(error)),
    };
    let primary = read(config.primary_kind, &config.primary_feed, primary)?;
    let fallback = match (config.fallback_kind, fallback) {
        (OracleKind::None, _) => None,
        (kind, Some(account)) => Some(read(kind, &config.fallback_feed, account)?),
        // Dropping the fallback would also drop the deviation check.
        (_, None) => return Err(KestrelError::WrongOracleAccount),
    };
    Ok(select(primary, fallback, config.max_deviation_bps))
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
    /// Older than the market's maximum age (seconds or slots).
    Stale,
    /// Confidence interval wider than the market's bound.
    ConfidenceTooWide,
    /// Primary and fallback are both valid but disagree beyond the bound.
    Deviation,
    /// The price does not fit the fixed-point range.
    OutOfRange,
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

/// Per-market bounds.
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
    // A publish time slightly ahead of this validator's clock is not stale.
    if now.saturating_sub(raw.publish_time) > i64::from(bounds.max_age_seconds) {
        return Err(OracleError::Stale);
    }
    if bounds.max_age_slots != 0
        && slot.saturating_sub(raw.publish_slot) > u64::from(bounds.max_age_slots)
    {
        return Err(OracleError::Stale);
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

/// Picks the price to use: the primary when valid (unless a valid fallback
/// deviates from it by more than `max_deviation_bps`), else a valid fallback.
/// An error means the market is reduce-only for this instruction.
pub fn select(
    primary: Result<OraclePrice, OracleError>,
    fallback: Option<Result<OraclePrice, OracleError>>,
    max_deviation_bps: u32,
) -> Result<OraclePrice, OracleError> {
    match (primary, fallback) {
        (Ok(primary), Some(Ok(fallback))) => {
            let difference = (primary.price - fallback.price).abs();
            let bound = primary
                .price
                .fast_mul_int(i128::from(max_deviation_bps))
                .and_then(|scaled| fixed_div_int(scaled, 10_000))
                .ok_or(OracleError::OutOfRange)?;
            if difference > bound {
                Err(OracleError::Deviation)
            } else {
                Ok(primary)
            }
        }
        (Ok(primary), _) => Ok(primary),
        (Err(_), Some(Ok(fallback))) => Ok(fallback),
        (Err(error), _) => Err(error),
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

    #[test]
    fn select_prefers_the_primary_and_refuses_disagreement() {
        let at = |mantissa: i128, source| {
            let mut r = raw(mantissa, 0);
            r.source = source;
            validate(&r, &BOUNDS, 1_000, 500)
        };
        let primary = at(10_000, OracleSource::Pyth);
        let close = at(10_050, OracleSource::Switchboard); // 0.5% away
        let far = at(10_300, OracleSource::Switchboard); // 3% away
        assert_eq!(
            select(primary, Some(close), 100).unwrap().source,
            OracleSource::Pyth
        );
        assert_eq!(select(primary, Some(far), 100), Err(OracleError::Deviation));
        assert_eq!(
            select(primary, Some(Err(OracleError::Stale)), 100)
                .unwrap()
                .source,
            OracleSource::Pyth
        );
        assert_eq!(
            select(Err(OracleError::Stale), Some(far), 100)
                .unwrap()
                .source,
            OracleSource::Switchboard
        );
        assert_eq!(
            select(
                Err(OracleError::Stale),
                Some(Err(OracleError::ConfidenceTooWide)),
                100
            ),
            Err(OracleError::Stale)
        );
        assert_eq!(
            select(Err(OracleError::WrongOwner), None, 100),
            Err(OracleError::WrongOwner)
        );
    }
}
