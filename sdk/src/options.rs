//! Options for clients, priced with the program's own code: the valuation a
//! simulated `value_option` returns, an option chain per expiry (each
//! series' best bid and ask with its model value and greeks), and an
//! account's greeks per underlying.
use base64::Engine;
use fixed::types::I80F48;
use kestrel::engine::black_scholes::{self, OptionSide, Valuation};
use kestrel::instructions::OptionValuation;
use kestrel::portfolio::{MarkRule, OptionTerms};
use kestrel::state::{MarginAccount, Market};
use kestrel::units::Ticks;

use crate::client::MarketView;
use crate::health::{MarketSnapshot, PreviewError};
use crate::Pubkey;

/// The [`OptionValuation`] in a `value_option` transaction's or
/// simulation's logs ("Program return: <program> <base64>", as a cluster
/// logs return data).
pub fn valuation_from_logs(logs: &[String]) -> Option<OptionValuation> {
    let prefix = format!("Program return: {} ", kestrel::ID);
    let encoded = logs
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    valuation_from_return_data(&bytes)
}

/// The [`OptionValuation`] in `value_option`'s return data.
pub fn valuation_from_return_data(bytes: &[u8]) -> Option<OptionValuation> {
    let mut data = bytes;
    let valuation = anchor_lang::AnchorDeserialize::deserialize(&mut data).ok()?;
    data.is_empty().then_some(valuation)
}

/// An option market's value and greeks per unit of the underlying now, as
/// the program computes them (`value_option`); `None` for a market that is
/// not an unexpired option.
pub fn valuation(
    snapshot: &MarketSnapshot,
    now: i64,
    slot: u64,
) -> Result<Option<Valuation>, PreviewError> {
    let index = snapshot.market.market_index;
    let oracle = |error: anchor_lang::error::Error| match error {
        anchor_lang::error::Error::AnchorError(e) => {
            crate::errors::kestrel_error(e.error_code_number)
                .map_or(PreviewError::Overflow, |k| PreviewError::Oracle(index, k))
        }
        _ => PreviewError::Overflow,
    };
    let Ok(MarkRule::Option(mark)) = MarkRule::of(&snapshot.market, now) else {
        return Ok(None);
    };
    if snapshot.market.is_expired(now) {
        return Ok(None);
    }
    let spot = snapshot.oracle_price(now, slot)?;
    let terms = OptionTerms::current(&snapshot.underlying.as_read(now, slot), now);
    let inputs = mark.inputs(spot, &terms).map_err(oracle)?;
    black_scholes::valuation(&inputs)
        .map(Some)
        .map_err(|e| oracle(kestrel::error::KestrelError::from(e).into()))
}

/// One series of a chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesQuote {
    pub market_index: u16,
    pub market: Pubkey,
    pub side: OptionSide,
    /// Native quote per native base.
    pub strike: I80F48,
    pub best_bid: Option<Ticks>,
    pub best_ask: Option<Ticks>,
    /// The model value per lot, in ticks (unrounded).
    pub model_ticks: I80F48,
    /// Per unit of the underlying (`engine::black_scholes`'s units).
    pub valuation: Valuation,
}

/// The series of one expiry, by strike, calls before puts.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiryChain {
    pub underlying: Pubkey,
    pub expiry: i64,
    pub series: Vec<SeriesQuote>,
}

/// The option chains among `markets` at `now`, `slot`: one per underlying
/// and expiry, earliest first. Markets that are not unexpired options are
/// left out.
pub fn option_chains(
    markets: &[MarketView],
    now: i64,
    slot: u64,
) -> Result<Vec<ExpiryChain>, PreviewError> {
    let mut chains: Vec<ExpiryChain> = Vec::new();
    for view in markets {
        let market = &view.snapshot.market;
        let Some(valuation) = valuation(&view.snapshot, now, slot)? else {
            continue;
        };
        let (best_bid, best_ask) = view.best_prices(now);
        let quote = SeriesQuote {
            market_index: market.market_index,
            market: view.accounts.market,
            side: market.option.side().map_err(|_| PreviewError::Overflow)?,
            strike: market.option.strike(),
            best_bid,
            best_ask,
            model_ticks: market
                .oracle_ticks(valuation.price)
                .ok_or(PreviewError::Overflow)?,
            valuation,
        };
        let expiry = market.future.params.expiry;
        match chains
            .iter_mut()
            .find(|c| c.underlying == market.underlying && c.expiry == expiry)
        {
            Some(chain) => chain.series.push(quote),
            None => chains.push(ExpiryChain {
                underlying: market.underlying,
                expiry,
                series: vec![quote],
            }),
        }
    }
    for chain in &mut chains {
        chain
            .series
            .sort_by_key(|q| (q.strike, q.side == OptionSide::Put));
    }
    chains.sort_by_key(|c| (c.underlying, c.expiry));
    Ok(chains)
}

/// An account's exposure to one underlying: Σ position × greek, in native
/// base units (delta: units of the underlying; gamma: delta per unit of
/// price; vega per 1.0 of volatility; theta per year, native quote).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AccountGreeks {
    pub delta: I80F48,
    pub gamma: I80F48,
    pub vega: I80F48,
    pub theta: I80F48,
}

/// `account`'s greeks per underlying: perpetuals and futures count their
/// position as delta, options their position times their greeks. Every
/// position's market must be among `markets`.
pub fn account_greeks(
    account: &MarginAccount,
    markets: &[MarketSnapshot],
    now: i64,
    slot: u64,
) -> Result<Vec<(Pubkey, AccountGreeks)>, PreviewError> {
    let mut out: Vec<(Pubkey, AccountGreeks)> = Vec::new();
    for (_, position) in account.active_positions() {
        let snapshot = markets
            .iter()
            .find(|m| m.market.market_index == position.market_index)
            .ok_or(PreviewError::MissingMarket(position.market_index))?;
        let units = units_of(&snapshot.market, position.base_lots)?;
        let greeks = match valuation(snapshot, now, slot)? {
            Some(v) => AccountGreeks {
                delta: v.delta * units,
                gamma: v.gamma * units,
                vega: v.vega * units,
                theta: v.theta * units,
            },
            // An expired option counts nothing; a perpetual or future its
            // position.
            None if snapshot.market.kind == kestrel::state::InstrumentKind::Option as u8 => {
                AccountGreeks::default()
            }
            None => AccountGreeks {
                delta: units,
                ..AccountGreeks::default()
            },
        };
        let underlying = snapshot.market.underlying;
        match out.iter_mut().find(|(key, _)| *key == underlying) {
            Some((_, total)) => {
                total.delta += greeks.delta;
                total.gamma += greeks.gamma;
                total.vega += greeks.vega;
                total.theta += greeks.theta;
            }
            None => out.push((underlying, greeks)),
        }
    }
    Ok(out)
}

fn units_of(market: &Market, base_lots: i64) -> Result<I80F48, PreviewError> {
    I80F48::checked_from_num(i128::from(base_lots) * i128::from(market.base_lot_size))
        .ok_or(PreviewError::Overflow)
}
