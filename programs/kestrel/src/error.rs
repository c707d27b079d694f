use anchor_lang::prelude::*;

/// Every refusal Kestrel makes, by name. Codes start at Anchor's 6000 and are
/// append-only: clients and indexers match on them.
#[error_code]
pub enum KestrelError {
    #[msg("signer is not the exchange admin")]
    NotAdmin,
    #[msg("signer is not the pending admin")]
    NotPendingAdmin,
    #[msg("no admin transfer is pending")]
    NoPendingAdmin,
    #[msg("pause flags contain an unknown bit")]
    UnknownPauseFlag,
    #[msg("deposits are paused")]
    DepositsPaused,
    #[msg("withdrawals are paused")]
    WithdrawalsPaused,
    #[msg("token account holds the wrong mint")]
    WrongMint,
    #[msg("account is not the exchange's collateral vault")]
    WrongVault,
    #[msg("margin account belongs to another exchange")]
    WrongExchange,
    #[msg("signer is not the margin account owner")]
    NotMarginAccountOwner,
    #[msg("signer is neither the margin account owner nor its delegate")]
    NotOwnerOrDelegate,
    #[msg("amount must be greater than zero")]
    ZeroAmount,
    #[msg("amount exceeds the margin account's free collateral")]
    InsufficientFreeCollateral,
    #[msg("margin account still holds collateral")]
    MarginAccountNotEmpty,
    #[msg("arithmetic overflow")]
    MathOverflow,
    #[msg("the delegate cannot be the owner")]
    DelegateIsOwner,
    #[msg("only the program's upgrade authority may initialise the exchange")]
    NotUpgradeAuthority,
    #[msg("account is not this program's ProgramData")]
    WrongProgramData,
    #[msg("margin fractions must satisfy 0 < maintenance < initial <= 100%")]
    InvalidMarginFractions,
    #[msg("fees out of bounds, or a maker rebate above the taker fee")]
    InvalidFees,
    #[msg("price band must be 1..=10000 bps")]
    InvalidPriceBand,
    #[msg("max fills per order out of range")]
    InvalidMatchLimit,
    #[msg("oracle configuration is invalid")]
    InvalidOracleConfig,
    #[msg("lot sizes must be positive")]
    InvalidLotSize,
    #[msg("market name must be 1..=16 bytes")]
    InvalidMarketName,
    #[msg("book side or event queue account has the wrong size or is reused")]
    InvalidMarketAccount,
    #[msg("oracle account is not owned by the oracle program")]
    OracleWrongOwner,
    #[msg("oracle account is not the configured feed")]
    OracleWrongFeed,
    #[msg("oracle account data cannot be read")]
    OracleBadData,
    #[msg("oracle update is not fully verified")]
    OracleUnverified,
    #[msg("oracle price is zero or negative")]
    OracleNonPositivePrice,
    #[msg("oracle price is stale")]
    OracleStale,
    #[msg("oracle confidence is too wide")]
    OracleConfidenceTooWide,
    #[msg("primary and fallback oracles disagree")]
    OracleDeviation,
    #[msg("oracle price out of range")]
    OracleOutOfRange,
    #[msg("that market status change is not allowed")]
    InvalidStatusTransition,
    #[msg("trading is paused")]
    TradingPaused,
    #[msg("the market does not accept orders in its current status")]
    MarketNotTrading,
    #[msg("the market is reduce-only: only orders that shrink a position")]
    MarketReduceOnly,
    #[msg("a reduce-only order would not shrink the position")]
    ReduceOnlyWouldIncrease,
    #[msg("order price is outside the band around the oracle price")]
    PriceOutsideBand,
    #[msg("the order would leave initial health below zero")]
    InsufficientHealth,
    #[msg("the margin account holds positions in too many markets")]
    TooManyPositions,
    #[msg("the margin account has too many open orders")]
    TooManyOpenOrders,
    #[msg("order quantity or price is zero or out of range")]
    InvalidOrder,
    #[msg("a resting order's expiry is not in the future")]
    OrderAlreadyExpired,
    #[msg("a post-only order would take liquidity")]
    PostOnlyWouldCross,
    #[msg("a fill-or-kill order cannot be filled in full")]
    FillOrKillNotFilled,
    #[msg("the order met its owner's own resting order")]
    SelfTradeAborted,
    #[msg("the book side is full and the order is not better than its worst")]
    BookFull,
    #[msg("the event queue is full: crank consume_events first")]
    EventQueueFull,
    #[msg("no such order of this margin account")]
    OrderNotFound,
    #[msg("market accounts do not belong together")]
    WrongMarketAccounts,
    #[msg("an account needed for the health check is missing or wrong")]
    WrongHealthAccounts,
    #[msg("consuming events is paused")]
    ConsumeEventsPaused,
    #[msg("the margin account an event names was not passed")]
    MissingEventAccount,
    #[msg("the event queue is empty")]
    NoEventsToConsume,
    #[msg("an internal balance does not match: the instruction is refused")]
    AccountingMismatch,
    #[msg("an oracle account passed is not the market's configured feed account")]
    WrongOracleAccount,
    #[msg("the market has no fees to sweep")]
    NoFeesToSweep,
    #[msg("funding cap above 100% or funding period under a minute")]
    InvalidFundingParams,
    #[msg("the liquidation fee must be below the maintenance fraction, its insurance share at most 100%")]
    InvalidLiquidationParams,
    #[msg("funding updates are paused")]
    FundingPaused,
    #[msg("funding was already updated this second")]
    FundingUpToDate,
    #[msg("fills are waiting in the event queue: crank consume_events first")]
    CrankRequired,
    #[msg("liquidation is paused")]
    LiquidationPaused,
    #[msg("the account's maintenance health is not negative")]
    NotLiquidatable,
    #[msg("an owner cannot liquidate its own accounts")]
    CannotLiquidateSelf,
    #[msg("the account has no position or order in this market")]
    NothingToLiquidate,
    #[msg("the account has open positions or no deficit")]
    NotBankrupt,
    #[msg("the loss must be socialized in the market where it arose")]
    WrongBankruptcyMarket,
    #[msg("the insurance fund is empty and the market has no open interest")]
    CannotSocializeLoss,
    #[msg("the insurance fund is paused")]
    InsurancePaused,
    #[msg("the amount buys no insurance fund shares")]
    ZeroShares,
    #[msg("more shares than the account holds")]
    InsufficientShares,
    #[msg("no unstake request is pending")]
    NoUnstakeRequest,
    #[msg("the unstake cooldown has not passed")]
    UnstakeCooldown,
    #[msg("the account has no position in this market")]
    NoPosition,
    #[msg("internal error: a state the program rules out was reached")]
    Unreachable,
    #[msg("the unstake request lapsed: its redemption window has passed, request again")]
    UnstakeRequestExpired,
    #[msg("invalid future parameters: expiry beyond the settlement window, windows above zero, basis within the band")]
    InvalidFutureParams,
    #[msg("the market has expired: it no longer trades, it settles")]
    MarketExpired,
    #[msg("the market has not expired yet")]
    MarketNotExpired,
    #[msg("this instruction is for another kind of market")]
    WrongMarketKind,
    #[msg("the market is delisted: funding stopped, it settles at its expiry")]
    MarketDelisted,
    #[msg("the settlement window is not open")]
    OutsideSettlementWindow,
    #[msg("the settlement average does not yet reach expiry and cover three quarters of its window: refresh the underlying")]
    SettlementNotCovered,
    #[msg(
        "the margin account would hold positions on more underlyings than one liquidation can name"
    )]
    TooManyUnderlyings,
    #[msg("invalid option configuration: a volatility feed, a maximum age, volatility bounds within 0-1000%, a rate of 0-100%, margin terms with maintenance at most initial and a floor above zero")]
    InvalidOptionConfig,
    #[msg("invalid option parameters: a positive strike, a call or a put, a volatility term within 1-100000 bps, a skew within 100000 bps, a spot band within 1-10000 bps")]
    InvalidOptionParams,
    #[msg("the underlying has no implied volatility: configure one (set_option_config) and refresh it")]
    VolatilityUnavailable,
    #[msg("the implied volatility is stale: refresh_volatility")]
    VolatilityStale,
    #[msg("the implied volatility update is outside the underlying's bounds")]
    VolatilityOutOfBounds,
    #[msg("the option could not be priced: its inputs are outside the pricing range")]
    OptionPricingFailed,
    #[msg("the order could take the market's open interest past its cap")]
    OpenInterestLimitExceeded,
    #[msg("the order could take the account's position in this market past its cap")]
    PositionLimitExceeded,
    #[msg("invalid risk scaling: with a volatility baseline (at most 1000%), a maximum scale of 10000-100000 bps and a rate of 1-100000 bps an hour; a size lift of at most 1000 bps per unit")]
    InvalidRiskScaling,
    #[msg("invalid price limit: at most 500 bps a second (0: none), and a band of 0 (none) or 100-10000 bps of the delay price, which needs a speed limit")]
    InvalidPriceLimit,
    #[msg("invalid scenario margin: a scan range of 1-5000 bps whose extreme moves stay below 95% of the spot, extreme moves of 10000-50000 bps of it, contingencies of at most 1000 bps, a maintenance factor of 5000-10000 bps, an array tolerance of 1-1000 bps and age of 1-86400 s")]
    InvalidScenarioMargin,
    #[msg("an option's risk array is missing or stale (spot, volatility, age, scan range or grid moved since it was computed): refresh_risk_arrays")]
    RiskArrayStale,
    #[msg("the underlying has no portfolio margin grid (set_scenario_margin)")]
    NoScenarioMargin,
    #[msg("the market is not an option market that can have a risk array (an option before expiry on this underlying)")]
    NotAnOptionMarket,
    #[msg("the margin account is already in that margin mode")]
    MarginModeUnchanged,
    #[msg("the underlying's price band holds its price back from the feeds: its markets take reduce-only orders until the band widens or the feeds come back")]
    PriceBandHeld,
}

impl From<crate::engine::black_scholes::PricingError> for KestrelError {
    fn from(error: crate::engine::black_scholes::PricingError) -> Self {
        use crate::engine::black_scholes::PricingError as E;
        match error {
            E::InvalidInput => KestrelError::OptionPricingFailed,
            E::Overflow => KestrelError::MathOverflow,
        }
    }
}

impl From<crate::engine::EngineError> for KestrelError {
    fn from(error: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        match error {
            E::InvalidQuantity | E::InvalidPrice => KestrelError::InvalidOrder,
            E::OrderAlreadyExpired => KestrelError::OrderAlreadyExpired,
            E::PostOnlyWouldCross => KestrelError::PostOnlyWouldCross,
            E::FillOrKillNotFilled => KestrelError::FillOrKillNotFilled,
            E::SelfTradeAborted => KestrelError::SelfTradeAborted,
            E::BookFull => KestrelError::BookFull,
            E::EventQueueFull => KestrelError::EventQueueFull,
            E::OrderNotFound | E::NotOrderOwner => KestrelError::OrderNotFound,
            E::Overflow => KestrelError::MathOverflow,
            // Unique sequence numbers and validated slabs rule these out.
            E::DuplicateOrderId | E::BadLayout => KestrelError::Unreachable,
        }
    }
}

impl From<crate::engine::future::FutureError> for KestrelError {
    fn from(error: crate::engine::future::FutureError) -> Self {
        use crate::engine::future::FutureError as E;
        match error {
            E::Overflow => KestrelError::MathOverflow,
            E::InvalidPrice => KestrelError::OracleNonPositivePrice,
            E::InvalidParameter => KestrelError::InvalidFutureParams,
            // The integral is read only forward of its last update.
            E::SampleOutOfOrder => KestrelError::Unreachable,
        }
    }
}

impl From<crate::engine::EngineError> for anchor_lang::error::Error {
    fn from(error: crate::engine::EngineError) -> Self {
        KestrelError::from(error).into()
    }
}

/// Checked arithmetic's `None`, as `MathOverflow` that names where it
/// happened: the program log reads "AnchorError thrown in <file>:<line>" at
/// the caller's own line (`#[track_caller]`, as Drift's safe math), so an
/// overflow found on a cluster points at its step. Costs nothing until it
/// fails.
pub trait OrOverflow<T> {
    fn or_overflow(self) -> anchor_lang::Result<T>;
}

impl<T> OrOverflow<T> for Option<T> {
    #[track_caller]
    #[inline(always)]
    fn or_overflow(self) -> anchor_lang::Result<T> {
        match self {
            Some(value) => Ok(value),
            None => Err(overflow_at(core::panic::Location::caller())),
        }
    }
}

#[cold]
#[inline(never)]
fn overflow_at(location: &'static core::panic::Location<'static>) -> anchor_lang::error::Error {
    anchor_lang::error::Error::from(KestrelError::MathOverflow).with_source(
        anchor_lang::error::Source {
            filename: location.file(),
            line: location.line(),
        },
    )
}

#[cfg(test)]
mod or_overflow_tests {
    use super::*;

    #[test]
    fn an_overflow_names_the_line_that_overflowed() {
        let line = line!() + 1;
        let error = 1u64.checked_sub(2).or_overflow().unwrap_err();
        match error {
            anchor_lang::error::Error::AnchorError(error) => {
                assert_eq!(
                    error.error_code_number,
                    anchor_lang::error::ERROR_CODE_OFFSET + KestrelError::MathOverflow as u32
                );
                match error.error_origin {
                    Some(anchor_lang::error::ErrorOrigin::Source(source)) => {
                        assert_eq!((source.filename, source.line), (file!(), line));
                    }
                    other => panic!("no source: {other:?}"),
                }
            }
            other => panic!("not an AnchorError: {other:?}"),
        }
        assert_eq!(Some(3u8).or_overflow().unwrap(), 3);
    }
}
