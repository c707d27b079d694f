use anchor_lang::prelude::*;

use super::create_market::{init_market, CreateMarket, CreateMarketArgs};
use crate::engine::black_scholes::MAX_SECONDS_TO_EXPIRY;
use crate::error::KestrelError;
use crate::state::*;

/// Lists a European option on an underlying that has an implied-volatility
/// input (`set_option_config`): a call or a put at `option.strike`, trading
/// until `expiry.expiry` on a book like every market's, cash-settled for
/// its intrinsic value at the settlement window's TWAP of the underlying's
/// accepted price (`settle_expired`). A lot is one contract of
/// `base_lot_size` native base units. The market's margin fractions are
/// not used (options have their own rule, `engine::option_margin`); its
/// fees, bands, fill limit and liquidation fee are.
#[inline(never)]
pub fn create_option_market(
    ctx: Context<CreateMarket>,
    args: CreateMarketArgs,
    expiry: FutureParams,
    option: OptionParams,
) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    expiry.validate_for_option(now)?;
    require!(
        expiry.expiry.saturating_sub(now) <= MAX_SECONDS_TO_EXPIRY,
        KestrelError::InvalidFutureParams
    );
    option.validate()?;
    args.params.validate_for_option()?;
    require!(
        ctx.accounts.underlying.load()?.volatility.is_configured(),
        KestrelError::VolatilityUnavailable
    );
    init_market(&ctx, &args, InstrumentKind::Option, expiry, option)
}
