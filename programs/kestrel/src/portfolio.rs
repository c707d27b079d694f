//! The one portfolio walk: a margin account's positions, grouped by the
//! underlying their price comes from, built once per instruction through an
//! [`AccountRetriever`] and valued by `engine::risk`.
//!
//! The program's retriever ([`RemainingAccounts`]) reads the health accounts
//! an instruction is given after its named accounts, in this order:
//!
//! for each active position of the margin account, in slot order, other
//! than the market the instruction itself names: that position's `Market`,
//! followed by the `Underlying` it names unless an earlier market named it
//! or the instruction names it itself.
//!
//! So an account with 32 positions on two underlyings needs at most 34
//! accounts, not three per position. The SDK builds the list
//! (`kestrel_sdk::ix::health_accounts`) and its preview walks fetched
//! snapshots through its own retriever with this same code.
//!
//! A position counts at its market's mark ([`MarkRule`]): a perpetual's is
//! its underlying's current price, a dated future's that price plus the
//! market's basis (fading to zero at expiry), and an underlying without a
//! current price refuses the instruction with the oracle's error. A settled
//! market's positions count at its settlement price; a closed perpetual's at
//! the underlying's last good price, so a dead feed cannot block health
//! elsewhere.
use anchor_lang::prelude::*;
use fixed::types::I80F48;

use crate::engine::fastmul::{checked_mul_i64_u64, checked_mul_u64};
use crate::engine::funding;
use crate::engine::future;
use crate::engine::risk::{self, HealthKind, PerpExposure};
use crate::error::{KestrelError, OrOverflow};
use crate::state::*;

/// The most distinct underlyings one margin account may hold positions on.
/// A liquidation names the liquidatee's every position's market and each
/// distinct underlying besides its own 11 accounts: 31 markets, 15 more
/// underlyings and those 11, with the two programs, come to 59 of a
/// transaction's 64 account locks, leaving the liquidator room for a few
/// positions of its own. An account past it could not be liquidated.
pub const MAX_UNDERLYINGS_PER_ACCOUNT: usize = 16;

/// Where a market's positions are marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkRule {
    /// At the underlying's price (perpetuals).
    Underlying,
    /// At the underlying's price plus the market's basis, which fades to
    /// zero over the last `convergence_seconds` before expiry; from expiry
    /// until the settlement price is fixed, at the settlement average
    /// captured so far (what it will settle at), not the moving price.
    /// Only what the mark reads: health copies one per position.
    Future {
        /// The basis estimate (native quote per native base).
        basis: I80F48,
        expiry: i64,
        max_basis_bps: u32,
        convergence_seconds: u32,
        /// Past expiry, the settlement average captured so far.
        settlement_average: Option<I80F48>,
        /// The unix time the rule was built for, and the mark is taken at:
        /// whether the average applies was decided then.
        now: i64,
    },
    /// At the settlement price, once fixed.
    Settled(I80F48),
}

/// What health needs of a position's market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketRisk {
    pub market_index: u16,
    pub underlying: Pubkey,
    pub closed: bool,
    pub mark: MarkRule,
    pub base_lot_size: u64,
    pub initial_margin_bps: u32,
    pub maintenance_margin_bps: u32,
    pub long_funding_index: [u64; 2],
    pub short_funding_index: [u64; 2],
}

impl MarketRisk {
    /// What health needs of `market` at unix time `now`.
    #[inline(always)]
    pub fn of(market: &Market, now: i64) -> Result<Self> {
        Ok(Self {
            market_index: market.market_index,
            underlying: market.underlying,
            closed: matches!(market.status(), Ok(MarketStatus::Closed)),
            mark: MarkRule::of(market, now)?,
            base_lot_size: market.base_lot_size,
            initial_margin_bps: market.params.initial_margin_bps,
            maintenance_margin_bps: market.params.maintenance_margin_bps,
            long_funding_index: market.long_funding_index,
            short_funding_index: market.short_funding_index,
        })
    }
}

/// What health needs of an underlying: its price now, or why there is none,
/// and the last good price (for closed markets).
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingPrices {
    pub current: core::result::Result<I80F48, KestrelError>,
    pub last_good: Option<I80F48>,
}

impl UnderlyingPrices {
    /// The underlying's prices at unix time `now` and `slot`.
    pub fn of(underlying: &Underlying, now: i64, slot: u64) -> Self {
        Self {
            current: underlying.current_price(now, slot),
            last_good: underlying.prices.last_good_price(),
        }
    }
}

impl MarkRule {
    /// How `market` marks its positions at unix time `now`.
    #[inline(always)]
    pub fn of(market: &Market, now: i64) -> Result<Self> {
        // Only a market with an expiry settles: a perpetual's mark is the
        // underlying's price, without reading the future block.
        if !market.has_expiry() {
            return Ok(MarkRule::Underlying);
        }
        if let Some(price) = market.settlement_price() {
            return Ok(MarkRule::Settled(price));
        }
        let params = &market.future.params;
        let settlement_average = if now >= params.expiry {
            market
                .future
                .settlement()
                .average_so_far()
                .map_err(KestrelError::from)?
        } else {
            None
        };
        Ok(MarkRule::Future {
            basis: market.future.basis().basis(),
            expiry: params.expiry,
            max_basis_bps: params.max_basis_bps,
            convergence_seconds: params.convergence_seconds,
            settlement_average,
            now,
        })
    }

    /// The mark, at the time the rule was built for, when the underlying's
    /// price is `underlying_price`.
    pub fn apply(&self, underlying_price: I80F48) -> Result<I80F48> {
        match self {
            MarkRule::Settled(price) => Ok(*price),
            MarkRule::Underlying => Ok(underlying_price),
            MarkRule::Future {
                basis,
                expiry,
                max_basis_bps,
                convergence_seconds,
                settlement_average,
                now,
            } => {
                if *now >= *expiry {
                    if let Some(average) = settlement_average {
                        return Ok(*average);
                    }
                }
                Ok(future::mark_price(
                    *basis,
                    *now,
                    *expiry,
                    underlying_price,
                    *max_basis_bps,
                    *convergence_seconds,
                )
                .map_err(KestrelError::from)?)
            }
        }
    }
}

impl MarketRisk {
    /// The price a position of this market counts at, at the time its risk
    /// was read for, from its underlying's `prices` (see the module docs).
    pub fn mark_price(&self, prices: &UnderlyingPrices) -> Result<I80F48> {
        match self.mark {
            MarkRule::Settled(price) => Ok(price),
            _ if self.closed => Ok(prices.last_good.ok_or(KestrelError::OracleStale)?),
            rule => rule.apply(prices.current?),
        }
    }
}

/// Where a portfolio's accounts come from.
pub trait AccountRetriever {
    /// The market of the account's position in `market_index`, checked to be
    /// of the exchange and that index. Called in slot order.
    fn market(&mut self, market_index: u16) -> Result<MarketRisk>;
    /// The prices of `underlying`, right after the first market that names
    /// it (once per distinct underlying).
    fn underlying(&mut self, underlying: &Pubkey) -> Result<UnderlyingPrices>;
}

/// One underlying of a portfolio and its price.
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingEntry {
    pub key: Pubkey,
    pub prices: UnderlyingPrices,
}

/// A position of the portfolio. Kept small: the program's heap is a 32 KiB
/// bump allocator, and a liquidation holds two portfolios of up to 32.
#[derive(Clone, Copy, Debug)]
pub struct PortfolioPosition {
    /// Index into [`Portfolio::underlyings`].
    pub underlying: u8,
    pub market_index: u16,
    pub exposure: PerpExposure,
}

/// An account's positions grouped by underlying (each position names its
/// underlying's entry), valued at unix time `now`, built once per
/// instruction.
#[derive(Clone, Debug, Default)]
pub struct Portfolio {
    pub underlyings: Vec<UnderlyingEntry>,
    pub positions: Vec<PortfolioPosition>,
    pub now: i64,
}

impl Portfolio {
    /// An empty portfolio at unix time `now` that already knows
    /// `underlyings` (those the instruction names itself, so the retriever
    /// is not asked for them).
    pub fn new(known: &[UnderlyingEntry], now: i64) -> Self {
        Self {
            underlyings: known.to_vec(),
            positions: Vec::new(),
            now,
        }
    }

    /// Adds every active position of `account` but the one in `skip`, each
    /// with its market and (when new) its underlying read from `retriever`.
    /// Room is reserved once, for them and one more (the instruction's own
    /// position, [`Self::push`]): the bump heap never frees. Out of line:
    /// every health check runs it.
    #[inline(never)]
    pub fn add_account<R: AccountRetriever>(
        &mut self,
        account: &MarginAccount,
        skip: Option<u16>,
        retriever: &mut R,
    ) -> Result<()> {
        // Every position, and one more (`push`); the skipped one, if held,
        // leaves one to spare.
        let count = account.position_slots.count_ones() as usize;
        self.positions.reserve_exact(count + 1);
        for (_, position) in account.active_positions() {
            if Some(position.market_index) == skip {
                continue;
            }
            let market = retriever.market(position.market_index)?;
            let underlying = match self.underlying_slot(&market.underlying) {
                Some(index) => index,
                None => {
                    let prices = retriever.underlying(&market.underlying)?;
                    self.push_underlying(UnderlyingEntry {
                        key: market.underlying,
                        prices,
                    })?
                }
            };
            let price = market.mark_price(&self.underlyings[usize::from(underlying)].prices)?;
            self.positions.push(PortfolioPosition {
                underlying,
                market_index: market.market_index,
                exposure: exposure(position, &market, price)?,
            });
        }
        Ok(())
    }

    /// Adds one position valued against `market` (the instruction's own),
    /// whose underlying must already be known.
    #[inline(never)]
    pub fn push(&mut self, position: &PerpPosition, market: &MarketRisk) -> Result<()> {
        let underlying = self
            .underlying_slot(&market.underlying)
            .ok_or(KestrelError::Unreachable)?;
        let price = market.mark_price(&self.underlyings[usize::from(underlying)].prices)?;
        self.positions.push(PortfolioPosition {
            underlying,
            market_index: market.market_index,
            exposure: exposure(position, market, price)?,
        });
        Ok(())
    }

    /// Refuses a portfolio on more than [`MAX_UNDERLYINGS_PER_ACCOUNT`]
    /// underlyings: called when an instruction opens a position, whose
    /// underlying is then among them.
    pub fn require_underlyings_within_cap(&self) -> Result<()> {
        require!(
            self.underlyings.len() <= MAX_UNDERLYINGS_PER_ACCOUNT,
            KestrelError::TooManyUnderlyings
        );
        Ok(())
    }

    /// Drops the last position [`Self::push`]ed.
    pub fn pop(&mut self) {
        self.positions.pop();
    }

    fn underlying_slot(&self, key: &Pubkey) -> Option<u8> {
        self.underlyings
            .iter()
            .position(|entry| entry.key == *key)
            .map(|index| index as u8)
    }

    fn push_underlying(&mut self, entry: UnderlyingEntry) -> Result<u8> {
        let index = u8::try_from(self.underlyings.len()).map_err(|_| KestrelError::Unreachable)?;
        self.underlyings.push(entry);
        Ok(index)
    }

    /// Health of `collateral` plus every position (`engine::risk`).
    pub fn health(&self, collateral: i64, kind: HealthKind) -> Result<I80F48> {
        let exposures = self.positions.iter().map(|p| &p.exposure);
        risk::health(collateral, exposures, kind).or_overflow()
    }

    pub fn initial_health(&self, collateral: i64) -> Result<I80F48> {
        self.health(collateral, HealthKind::Initial)
    }
}

/// A position as health sees it, in native units, at `price` (native quote
/// per native base).
pub fn exposure(
    position: &PerpPosition,
    market: &MarketRisk,
    price: I80F48,
) -> Result<PerpExposure> {
    let lot = market.base_lot_size;
    // 64-bit-limb products (`fastmul`): a checked 64-bit multiply is a
    // 128-bit software routine on SBF, and every health check runs these.
    Ok(PerpExposure {
        base: checked_mul_i64_u64(position.base_lots, lot).or_overflow()?,
        quote: position.quote_native,
        bids: checked_mul_u64(position.bids_base_lots, lot).or_overflow()?,
        asks: checked_mul_u64(position.asks_base_lots, lot).or_overflow()?,
        unsettled_funding: unsettled_funding(position, market).or_overflow()?,
        price,
        initial_margin_bps: market.initial_margin_bps,
        maintenance_margin_bps: market.maintenance_margin_bps,
    })
}

/// Funding the position is owed (> 0) or owes, not yet settled.
fn unsettled_funding(position: &PerpPosition, market: &MarketRisk) -> Option<I80F48> {
    let index = if position.base_lots >= 0 {
        market.long_funding_index
    } else {
        market.short_funding_index
    };
    if position.funding_index == index {
        return Some(I80F48::ZERO);
    }
    funding::unsettled_funding(
        funding::from_parts(index),
        funding::from_parts(position.funding_index),
        position.base_lots,
    )
}

/// The program's retriever: health accounts from an instruction's remaining
/// accounts, in the order of the module docs. Every account is loaded as its
/// type (owner and discriminator) and must belong to `exchange`; a market
/// must carry the position's index, an underlying the key its market names.
pub struct RemainingAccounts<'info> {
    accounts: std::slice::Iter<'info, AccountInfo<'info>>,
    exchange: Pubkey,
    now: i64,
    slot: u64,
}

impl<'info> RemainingAccounts<'info> {
    pub fn new(
        accounts: std::slice::Iter<'info, AccountInfo<'info>>,
        exchange: Pubkey,
        clock: &Clock,
    ) -> Self {
        Self {
            accounts,
            exchange,
            now: clock.unix_timestamp,
            slot: clock.slot,
        }
    }

    fn next(&mut self) -> Result<&'info AccountInfo<'info>> {
        Ok(self
            .accounts
            .next()
            .ok_or(KestrelError::WrongHealthAccounts)?)
    }
}

impl AccountRetriever for RemainingAccounts<'_> {
    // Inlined into the walk, so the market's risk is built where it is
    // used rather than copied out through a return slot.
    #[inline(always)]
    fn market(&mut self, market_index: u16) -> Result<MarketRisk> {
        let info = self.next()?;
        let data = zero_copy_data::<Market>(info)?;
        let market: &Market = bytemuck::from_bytes(&data[8..Market::SPACE]);
        require!(
            market.exchange == self.exchange && market.market_index == market_index,
            KestrelError::WrongHealthAccounts
        );
        // An undecodable status is refused, never read as trading.
        market.status()?;
        MarketRisk::of(market, self.now)
    }

    fn underlying(&mut self, underlying: &Pubkey) -> Result<UnderlyingPrices> {
        let info = self.next()?;
        require!(info.key == underlying, KestrelError::WrongHealthAccounts);
        let data = zero_copy_data::<Underlying>(info)?;
        let loaded: &Underlying = bytemuck::from_bytes(&data[8..Underlying::SPACE]);
        require!(
            loaded.exchange == self.exchange,
            KestrelError::WrongHealthAccounts
        );
        Ok(UnderlyingPrices::of(loaded, self.now, self.slot))
    }
}

// The data is sliced after an 8-byte discriminator.
const _: () = assert!(Market::DISCRIMINATOR.len() == 8 && Underlying::DISCRIMINATOR.len() == 8);

/// A health account's data, checked once as Anchor's `AccountLoader` would
/// check it (owner, size, discriminator) but borrowed and checked a single
/// time (the loader checks the discriminator again on `load`): a walk
/// reads up to 31 markets.
fn zero_copy_data<
    'a,
    T: anchor_lang::ZeroCopy + anchor_lang::Owner + anchor_lang::Discriminator,
>(
    info: &'a AccountInfo<'_>,
) -> Result<std::cell::Ref<'a, &'a mut [u8]>> {
    require_keys_eq!(*info.owner, T::owner(), KestrelError::WrongHealthAccounts);
    let data = info
        .try_borrow_data()
        .map_err(|_| KestrelError::WrongHealthAccounts)?;
    require!(
        data.len() >= 8 + core::mem::size_of::<T>() && data[..8] == *T::DISCRIMINATOR,
        KestrelError::WrongHealthAccounts
    );
    Ok(data)
}

/// The portfolio of `account` but its position in `skip`, from remaining
/// accounts, knowing `known` already.
pub fn from_remaining_accounts(
    account: &MarginAccount,
    skip: Option<u16>,
    known: &[UnderlyingEntry],
    retriever: &mut RemainingAccounts<'_>,
) -> Result<Portfolio> {
    let mut portfolio = Portfolio::new(known, retriever.now);
    portfolio.add_account(account, skip, retriever)?;
    Ok(portfolio)
}
