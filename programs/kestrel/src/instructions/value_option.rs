use anchor_lang::prelude::*;

use crate::engine::black_scholes;
use crate::error::KestrelError;
use crate::portfolio::{MarkRule, OptionTerms};
use crate::state::*;

/// An option's value and greeks now, as the program prices it (I80F48 bits;
/// units in `engine::black_scholes`): what health marks the option at.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionValuation {
    /// The underlying's accepted price, native quote per native base.
    pub spot_bits: i128,
    /// The series' volatility after its term and skew.
    pub volatility_bits: i128,
    pub price_bits: i128,
    pub delta_bits: i128,
    pub gamma_bits: i128,
    pub vega_bits: i128,
    pub theta_bits: i128,
    pub rho_bits: i128,
}

/// Read-only, for simulation: an option market's value and greeks at the
/// underlying's current price and volatility, returned as return data
/// ([`OptionValuation`]). Refused without a current price or volatility,
/// and for a market that is not an unexpired option.
#[derive(Accounts)]
pub struct ValueOption<'info> {
    #[account(has_one = underlying @ KestrelError::WrongMarketAccounts)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
}

#[inline(never)]
pub fn value_option(ctx: Context<ValueOption>) -> Result<OptionValuation> {
    let clock = Clock::get()?;
    let market = ctx.accounts.market.load()?;
    let underlying = ctx.accounts.underlying.load()?;
    let MarkRule::Option(mark) = MarkRule::of(&market, clock.unix_timestamp)? else {
        return err!(KestrelError::WrongMarketKind);
    };
    require!(
        !market.is_expired(clock.unix_timestamp),
        KestrelError::MarketExpired
    );
    let spot = underlying.current_price(clock.unix_timestamp, clock.slot)?;
    let terms = OptionTerms::current(&underlying, clock.unix_timestamp);
    let inputs = mark.inputs(spot, &terms)?;
    let valuation = black_scholes::valuation(&inputs).map_err(KestrelError::from)?;
    Ok(OptionValuation {
        spot_bits: spot.to_bits(),
        volatility_bits: inputs.volatility.to_bits(),
        price_bits: valuation.price.to_bits(),
        delta_bits: valuation.delta.to_bits(),
        gamma_bits: valuation.gamma.to_bits(),
        vega_bits: valuation.vega.to_bits(),
        theta_bits: valuation.theta.to_bits(),
        rho_bits: valuation.rho.to_bits(),
    })
}
