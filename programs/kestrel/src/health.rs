//! Gathers what `engine::risk::health` needs from accounts: each position's
//! market parameters and oracle price.
//!
//! An instruction that checks health is given, as remaining accounts, one
//! group per position of the margin account (in slot order) other than the
//! market the instruction itself trades: the market, its primary oracle and,
//! when the market has one, its fallback oracle. The SDK builds the list. A
//! closed market's oracle accounts are passed but not read: its positions
//! count at the last good price it closed on.
use anchor_lang::prelude::*;
use fixed::types::I80F48;

use crate::engine::funding;
use crate::engine::risk::{self, HealthKind, PerpExposure};
use crate::error::KestrelError;
use crate::oracle;
use crate::state::*;

/// A position as health sees it, in native units, at `price` (native quote
/// per native base).
pub fn exposure(position: &PerpPosition, market: &Market, price: I80F48) -> Result<PerpExposure> {
    let lot = market.base_lot_size;
    let overflow = || error!(KestrelError::MathOverflow);
    let signed_lot = i64::try_from(lot).map_err(|_| overflow())?;
    Ok(PerpExposure {
        base: position
            .base_lots
            .checked_mul(signed_lot)
            .ok_or_else(overflow)?,
        quote: position.quote_native,
        bids: position
            .bids_base_lots
            .checked_mul(lot)
            .ok_or_else(overflow)?,
        asks: position
            .asks_base_lots
            .checked_mul(lot)
            .ok_or_else(overflow)?,
        unsettled_funding: unsettled_funding(position, market).ok_or_else(overflow)?,
        price,
        initial_margin_bps: market.initial_margin_bps,
        maintenance_margin_bps: market.maintenance_margin_bps,
    })
}

/// Funding the position is owed (> 0) or owes, not yet settled.
fn unsettled_funding(position: &PerpPosition, market: &Market) -> Option<I80F48> {
    let index = market.funding_index_parts_for(position.base_lots);
    if position.funding_index == index {
        return Some(I80F48::ZERO);
    }
    funding::unsettled_funding(
        funding::from_parts(index),
        funding::from_parts(position.funding_index),
        position.base_lots,
    )
}

/// Exposures of every position of `account` except the one in `skip`, read
/// from `next` (remaining accounts) as laid out in the module docs. An unusable oracle refuses
/// the instruction with that oracle's error. A market passed writable keeps
/// the newer updates read; a closed market counts at its last good price.
pub fn other_exposures<'info>(
    account: &MarginAccount,
    skip: Option<u16>,
    exchange: &Pubkey,
    quote_decimals: u8,
    next: &mut std::slice::Iter<'info, AccountInfo<'info>>,
    clock: &Clock,
) -> Result<Vec<PerpExposure>> {
    let mut exposures = Vec::with_capacity(MAX_POSITIONS);
    for position in account.positions.iter() {
        if position.in_use == 0 || Some(position.market_index) == skip {
            continue;
        }
        let market_info = next.next().ok_or(KestrelError::WrongHealthAccounts)?;
        let loader = AccountLoader::<Market>::try_from(market_info)
            .map_err(|_| KestrelError::WrongHealthAccounts)?;
        let market = loader.load()?;
        require!(
            market.exchange == *exchange && market.market_index == position.market_index,
            KestrelError::WrongHealthAccounts
        );
        let primary = next.next().ok_or(KestrelError::WrongHealthAccounts)?;
        let fallback = if market.fallback_kind == OracleKind::None as u8 {
            None
        } else {
            Some(next.next().ok_or(KestrelError::WrongHealthAccounts)?)
        };
        let price = if market.status() == MarketStatus::Closed {
            // A closed market trades no more: its positions count at the
            // price it closed on, and its feeds (which may be dead) are not
            // read, so they cannot block health elsewhere.
            market
                .prices
                .last_good_price()
                .ok_or(KestrelError::OracleStale)?
        } else {
            let reading = oracle::market_price(&market, quote_decimals, primary, fallback, clock)?;
            let price = reading.price()?;
            if market_info.is_writable {
                // Keep what was read: the next reader starts from it.
                drop(market);
                loader.load_mut()?.prices = reading.records;
            }
            price
        };
        let market = loader.load()?;
        exposures.push(exposure(position, &market, price)?);
    }
    Ok(exposures)
}

/// Initial health of collateral plus `exposures`.
pub fn initial_health(collateral: i64, exposures: &[PerpExposure]) -> Result<I80F48> {
    health(collateral, exposures, HealthKind::Initial)
}

pub fn health(collateral: i64, exposures: &[PerpExposure], kind: HealthKind) -> Result<I80F48> {
    Ok(risk::health(collateral, exposures, kind).ok_or(KestrelError::MathOverflow)?)
}
