//! Health preview: the program's own oracle validation and health code run on
//! fetched accounts, so a bot knows before sending whether an order or a
//! withdrawal would pass, and a keeper which accounts are liquidatable.
use fixed::types::I80F48;
use kestrel::engine::perp::PriceBand;
use kestrel::engine::risk::HealthKind;
use kestrel::error::KestrelError;
use kestrel::oracle::{self, FeedAccount};
use kestrel::portfolio::{AccountRetriever, MarketRisk, OptionTerms, Portfolio, UnderlyingPrices};
use kestrel::state::{MarginAccount, Market, Underlying};

use crate::Pubkey;

/// How long before its stored price would go stale the SDK refreshes an
/// underlying in the same transaction (time for the transaction to land).
pub const REFRESH_MARGIN_SECONDS: i64 = 5;
/// [`REFRESH_MARGIN_SECONDS`] in slots (400 ms each), for a maximum age in
/// slots.
pub const REFRESH_MARGIN_SLOTS: u64 = 13;

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

/// An underlying as stored, with its feed accounts, as fetched.
#[derive(Clone)]
pub struct UnderlyingSnapshot {
    pub address: Pubkey,
    pub underlying: Underlying,
    pub primary: FetchedFeed,
    pub fallback: Option<FetchedFeed>,
}

impl UnderlyingSnapshot {
    /// Whether a transaction sent now should refresh the underlying first:
    /// its stored price is not current, or would not be by the time the
    /// transaction lands ([`REFRESH_MARGIN_SECONDS`]), and the feeds hold a
    /// newer update (without one a refresh changes nothing). The write lock
    /// on the underlying is taken only then, not by every order.
    pub fn needs_refresh(&self, now: i64, slot: u64) -> bool {
        self.underlying
            .current_price(
                now.saturating_add(REFRESH_MARGIN_SECONDS),
                slot.saturating_add(REFRESH_MARGIN_SLOTS),
            )
            .is_err()
            && self.refreshed(now, slot).prices != self.underlying.prices
    }

    /// The underlying as `refresh_underlying` would leave it at `now`,
    /// `slot` (the stored one when the feeds passed would be refused).
    pub fn refreshed(&self, now: i64, slot: u64) -> Underlying {
        let mut underlying = self.underlying;
        if let Ok(reading) = oracle::refresh_price_of(
            &self.underlying,
            self.primary.view(),
            self.fallback.as_ref().map(FetchedFeed::view),
            now,
            slot,
        ) {
            underlying.store(&reading, now);
        }
        underlying
    }

    /// The underlying as the program will read it from a transaction the SDK
    /// sends now: refreshed first when [`Self::needs_refresh`].
    pub fn as_read(&self, now: i64, slot: u64) -> Underlying {
        if self.needs_refresh(now, slot) {
            self.refreshed(now, slot)
        } else {
            self.underlying
        }
    }
}

/// A market with its underlying, as fetched.
#[derive(Clone)]
pub struct MarketSnapshot {
    pub market: Market,
    pub underlying: UnderlyingSnapshot,
}

impl MarketSnapshot {
    /// The price the program would use now (native quote per native base),
    /// or why it would refuse.
    pub fn oracle_price(&self, now: i64, slot: u64) -> Result<I80F48, PreviewError> {
        let index = self.market.market_index;
        self.underlying
            .as_read(now, slot)
            .current_price(now, slot)
            .map_err(|e| PreviewError::Oracle(index, e))
    }

    /// [`Self::oracle_price`] in ticks (quote lots per base lot), unrounded,
    /// and the band around it that `place_order` admits fills in (resting
    /// orders outside it never fill; a taker that reaches one takes it off
    /// the book). One price read for both.
    pub fn oracle_ticks_and_band(
        &self,
        now: i64,
        slot: u64,
    ) -> Result<(I80F48, PriceBand), PreviewError> {
        let price = self.oracle_price(now, slot)?;
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

    /// The market's mark now (native quote per native base): the price
    /// [`Self::oracle_price`] reads, plus a dated future's basis (fading to
    /// zero at expiry), or a settled market's settlement price; the
    /// program's `MarkRule`. A perpetual's mark is its oracle price.
    pub fn mark_price(&self, now: i64, slot: u64) -> Result<I80F48, PreviewError> {
        let price = self.oracle_price(now, slot)?;
        self.mark_at(price, now, slot)
    }

    /// The mark when the underlying is at `price`: an option's model value
    /// at the underlying's implied volatility as the program reads it.
    fn mark_at(&self, price: I80F48, now: i64, slot: u64) -> Result<I80F48, PreviewError> {
        let index = self.market.market_index;
        let terms = OptionTerms::current(&self.underlying.as_read(now, slot), now);
        MarketRisk::of(&self.market, now)
            .and_then(|risk| risk.mark.apply(price, &terms))
            .map_err(|error| match program_error(&error) {
                Some(k) => PreviewError::Oracle(index, k),
                None => PreviewError::Overflow,
            })
    }

    /// This market as `refresh_risk_arrays` leaves it at `now` and `slot`
    /// (the underlying as the program will read it): an option of an
    /// underlying with a scenario grid, before its expiry, with its risk
    /// array recomputed; any other market as it is. What a transaction
    /// that refreshes the arrays before its health check sees.
    pub fn with_fresh_risk_array(&self, now: i64, slot: u64) -> Self {
        let mut fresh = self.clone();
        let underlying = self.underlying.as_read(now, slot);
        let array = kestrel::portfolio::RiskArrayPricing::of(&underlying, now, slot)
            .and_then(|pricing| pricing.array_of(&self.market));
        if let (Ok(array), true) = (array, self.market.underlying == self.underlying.address) {
            fresh.market.risk_array.store(&array);
        }
        fresh
    }

    /// Whether `refresh_risk_arrays` should recompute this market's array
    /// for a transaction sent at `now` and `slot` to find it usable: an
    /// option of an underlying with a grid, before its expiry, whose
    /// stored array is missing or, [`REFRESH_MARGIN_SECONDS`] on, stale
    /// against the spot, volatility, scan range or version health reads.
    pub fn risk_array_due(&self, now: i64, slot: u64) -> bool {
        let underlying = self.underlying.as_read(now, slot);
        let Some(terms) = kestrel::portfolio::ScenarioTerms::of(&underlying) else {
            return false;
        };
        let fresh = kestrel::portfolio::RiskArrayPricing::of(&underlying, now, slot)
            .and_then(|pricing| pricing.array_of(&self.market));
        let Ok(fresh) = fresh else {
            return false;
        };
        let landing = now.saturating_add(REFRESH_MARGIN_SECONDS);
        let expiry = self.market.future.params.expiry;
        !self.market.risk_array.read().is_some_and(|stored| {
            stored.usable(
                &terms.config,
                fresh.scan_range_bps,
                fresh.spot,
                fresh.volatility,
                (landing, expiry),
            )
        })
    }

    /// [`Self::mark_price`] in ticks, unrounded, and the band around it
    /// that `place_order` admits fills in (it centres a dated future's band
    /// on the mark, not the underlying's price). For a perpetual, the same
    /// as [`Self::oracle_ticks_and_band`].
    pub fn mark_ticks_and_band(
        &self,
        now: i64,
        slot: u64,
    ) -> Result<(I80F48, PriceBand), PreviewError> {
        let spot = self.oracle_price(now, slot)?;
        let price = self.mark_at(spot, now, slot)?;
        let ticks = self
            .market
            .oracle_ticks(price)
            .ok_or(PreviewError::Overflow)?;
        let (band, _) = self
            .market
            .bands(ticks, spot)
            .ok_or(PreviewError::Overflow)?;
        Ok((ticks, band))
    }
}

/// The program's own error inside an Anchor error, if it is one.
fn program_error(error: &anchor_lang::error::Error) -> Option<KestrelError> {
    match error {
        anchor_lang::error::Error::AnchorError(e) => {
            crate::errors::kestrel_error(e.error_code_number)
        }
        _ => None,
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
    /// A portfolio-mode account holds an option whose risk array is missing
    /// or stale: the program refuses its health until `refresh_risk_arrays`
    /// runs (in the same transaction, or with
    /// [`MarketSnapshot::with_fresh_risk_array`] for a preview of it).
    RiskArrayStale,
    Overflow,
}

impl std::fmt::Display for PreviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingMarket(index) => write!(f, "market {index} was not fetched"),
            Self::Oracle(index, error) => write!(f, "market {index}'s oracle: {error:?}"),
            Self::RiskArrayStale => f.write_str("an option's risk array is missing or stale"),
            Self::Overflow => f.write_str("arithmetic overflow"),
        }
    }
}

impl std::error::Error for PreviewError {}

/// The SDK's retriever: fetched snapshots, each underlying as the program
/// will read it ([`UnderlyingSnapshot::as_read`]).
struct SnapshotRetriever<'a> {
    markets: &'a [MarketSnapshot],
    /// The snapshot `market` returned last.
    last: Option<&'a MarketSnapshot>,
    now: i64,
    slot: u64,
    missing: Option<PreviewError>,
}

impl AccountRetriever for SnapshotRetriever<'_> {
    fn market(&mut self, market_index: u16) -> anchor_lang::Result<MarketRisk> {
        match self
            .markets
            .iter()
            .find(|m| m.market.market_index == market_index)
        {
            Some(snapshot) => {
                self.last = Some(snapshot);
                MarketRisk::of(&snapshot.market, self.now)
            }
            None => {
                self.missing = Some(PreviewError::MissingMarket(market_index));
                Err(KestrelError::WrongHealthAccounts.into())
            }
        }
    }

    fn risk_array(&mut self) -> anchor_lang::Result<Option<kestrel::state::RiskArrayRead>> {
        Ok(self
            .last
            .and_then(|snapshot| snapshot.market.risk_array.read()))
    }

    fn underlying(&mut self, underlying: &Pubkey) -> anchor_lang::Result<UnderlyingPrices> {
        let snapshot = self
            .markets
            .iter()
            .find(|m| m.underlying.address == *underlying)
            .ok_or(KestrelError::WrongHealthAccounts)?;
        let read = snapshot.underlying.as_read(self.now, self.slot);
        Ok(UnderlyingPrices::of(&read, self.now, self.slot))
    }
}

/// Health of `account` at unix time `now` and `slot`, valuing each position
/// at its underlying's price exactly as the program does (the same
/// portfolio walk).
pub fn preview(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    now: i64,
    slot: u64,
) -> Result<Health, PreviewError> {
    let mut retriever = SnapshotRetriever {
        markets,
        last: None,
        now,
        slot,
        missing: None,
    };
    let mut portfolio = Portfolio::new(&[], now, account.margin_mode());
    if let Err(error) = portfolio.add_account(account, None, &mut retriever) {
        if let Some(missing) = retriever.missing {
            return Err(missing);
        }
        if let Some(KestrelError::RiskArrayStale) = program_error(&error) {
            return Err(PreviewError::RiskArrayStale);
        }
        // The walk refused a price: name the first market it refused for.
        for (_, position) in account.active_positions() {
            let snapshot = markets
                .iter()
                .find(|m| m.market.market_index == position.market_index);
            if let Some(snapshot) = snapshot {
                if snapshot.market.status().ok() != Some(kestrel::state::MarketStatus::Closed) {
                    snapshot.oracle_price(now, slot)?;
                }
            }
        }
        return Err(PreviewError::Overflow);
    }
    let of = |kind| {
        portfolio
            .health(account.collateral, kind)
            .map_err(|_| PreviewError::Overflow)
    };
    Ok(Health {
        initial: of(HealthKind::Initial)?,
        maintenance: of(HealthKind::Maintenance)?,
        liquidation_end: of(HealthKind::LiquidationEnd)?,
    })
}

/// Health of `account` if it also had `lots` resting on `side` in market
/// `market_index` (one of `markets`): what `place_order`'s health check
/// counts for a new order, which rests or fills no worse than the band. For
/// an option, a bid counts its premium and a short its margin
/// (`engine::option_margin`), so a bot can size an option order before
/// sending it.
pub fn preview_order(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    market_index: u16,
    side: kestrel::engine::Side,
    lots: u64,
    now: i64,
    slot: u64,
) -> Result<Health, PreviewError> {
    let market = markets
        .iter()
        .find(|m| m.market.market_index == market_index)
        .ok_or(PreviewError::MissingMarket(market_index))?;
    let kind = market.market.kind().map_err(|_| PreviewError::Overflow)?;
    let mut with_order = *account;
    let position = with_order
        .position_or_open(market_index, kind)
        .map_err(|_| PreviewError::Overflow)?;
    let resting = match side {
        kestrel::engine::Side::Bid => &mut position.bids_base_lots,
        kestrel::engine::Side::Ask => &mut position.asks_base_lots,
    };
    *resting = resting.checked_add(lots).ok_or(PreviewError::Overflow)?;
    preview(&with_order, markets, now, slot)
}
