//! Health preview: the program's own oracle validation and health code run on
//! fetched accounts, so a bot knows before sending whether an order or a
//! withdrawal would pass, and a keeper which accounts are liquidatable.
use fixed::types::I80F48;
use kestrel::engine::perp::PriceBand;
use kestrel::engine::risk::{self, HealthKind, PerpExposure};
use kestrel::error::KestrelError;
use kestrel::oracle::{self, FeedAccount, OracleError};
use kestrel::state::{MarginAccount, Market};

use crate::Pubkey;

/// A fetched oracle account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedFeed {
    pub address: Pubkey,
    pub owner: Pubkey,
    pub data: Vec<u8>,
}

impl FetchedFeed {
    fn view(&self) -> FeedAccount<'_> {
        FeedAccount {
            address: &self.address,
            owner: &self.owner,
            data: &self.data,
        }
    }
}

/// A market with its oracle accounts, as fetched.
#[derive(Clone)]
pub struct MarketSnapshot {
    pub market: Market,
    pub primary: FetchedFeed,
    pub fallback: Option<FetchedFeed>,
}

impl MarketSnapshot {
    /// The price the program would use now (native quote per native base),
    /// or why it would refuse the feeds.
    pub fn oracle_price(
        &self,
        quote_decimals: u8,
        now: i64,
        slot: u64,
    ) -> Result<I80F48, PreviewError> {
        let index = self.market.market_index;
        let price = oracle::market_price_of(
            &self.market,
            quote_decimals,
            self.primary.view(),
            self.fallback.as_ref().map(FetchedFeed::view),
            now,
            slot,
        )
        .map_err(|e| PreviewError::Oracle(index, e))?
        .price()
        .map_err(|e: OracleError| PreviewError::Oracle(index, e.into()))?;
        Ok(price)
    }

    /// [`Self::oracle_price`] in ticks (quote lots per base lot), unrounded,
    /// and the band around it that `place_order` admits fills in (resting
    /// orders outside it never fill; a taker that reaches one takes it off
    /// the book). One oracle validation for both.
    pub fn oracle_ticks_and_band(
        &self,
        quote_decimals: u8,
        now: i64,
        slot: u64,
    ) -> Result<(I80F48, PriceBand), PreviewError> {
        let price = self.oracle_price(quote_decimals, now, slot)?;
        let ticks = self
            .market
            .oracle_ticks(price)
            .ok_or(PreviewError::Overflow)?;
        let band = self
            .market
            .price_band(ticks)
            .ok_or(PreviewError::Overflow)?;
        Ok((ticks, band))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Health {
    /// Gates new risk (orders, withdrawals): must stay >= 0.
    pub initial: I80F48,
    /// Below zero the account can be liquidated.
    pub maintenance: I80F48,
    /// Where liquidation stops: a liquidation takes the fewest lots that
    /// bring this to zero.
    pub liquidation_end: I80F48,
}

#[derive(Clone, Copy, Debug)]
pub enum PreviewError {
    /// The account holds a position in a market not given.
    MissingMarket(u16),
    /// A feed the program would refuse (wrong account, stale, wide, ...).
    Oracle(u16, KestrelError),
    Overflow,
}

impl std::fmt::Display for PreviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingMarket(index) => write!(f, "market {index} was not fetched"),
            Self::Oracle(index, error) => write!(f, "market {index}'s oracle: {error:?}"),
            Self::Overflow => f.write_str("arithmetic overflow"),
        }
    }
}

impl std::error::Error for PreviewError {}

/// Health of `account` at unix time `now` and `slot`, valuing each position
/// at its market's oracle price exactly as the program does.
pub fn preview(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    quote_decimals: u8,
    now: i64,
    slot: u64,
) -> Result<Health, PreviewError> {
    let mut exposures: Vec<PerpExposure> = Vec::new();
    for position in account.positions.iter().filter(|p| p.in_use != 0) {
        let index = position.market_index;
        let snapshot = markets
            .iter()
            .find(|m| m.market.market_index == index)
            .ok_or(PreviewError::MissingMarket(index))?;
        let price = if snapshot.market.status() == kestrel::state::MarketStatus::Closed {
            // As the program: a closed market counts at its last good price.
            snapshot
                .market
                .prices
                .last_good_price()
                .ok_or(PreviewError::Oracle(index, KestrelError::OracleStale))?
        } else {
            snapshot.oracle_price(quote_decimals, now, slot)?
        };
        let exposure = kestrel::health::exposure(position, &snapshot.market, price)
            .map_err(|_| PreviewError::Overflow)?;
        exposures.push(exposure);
    }
    let of =
        |kind| risk::health(account.collateral, &exposures, kind).ok_or(PreviewError::Overflow);
    Ok(Health {
        initial: of(HealthKind::Initial)?,
        maintenance: of(HealthKind::Maintenance)?,
        liquidation_end: of(HealthKind::LiquidationEnd)?,
    })
}
