//! Turning a failed transaction's error code back into a name.
use kestrel::error::KestrelError;

/// Every Kestrel error, in code order. A test checks this list against the
/// committed IDL, so a new variant cannot be forgotten here.
pub const ALL: [KestrelError; 104] = [
    KestrelError::NotAdmin,
    KestrelError::NotPendingAdmin,
    KestrelError::NoPendingAdmin,
    KestrelError::UnknownPauseFlag,
    KestrelError::DepositsPaused,
    KestrelError::WithdrawalsPaused,
    KestrelError::WrongMint,
    KestrelError::WrongVault,
    KestrelError::WrongExchange,
    KestrelError::NotMarginAccountOwner,
    KestrelError::NotOwnerOrDelegate,
    KestrelError::ZeroAmount,
    KestrelError::InsufficientFreeCollateral,
    KestrelError::MarginAccountNotEmpty,
    KestrelError::MathOverflow,
    KestrelError::DelegateIsOwner,
    KestrelError::NotUpgradeAuthority,
    KestrelError::WrongProgramData,
    KestrelError::InvalidMarginFractions,
    KestrelError::InvalidFees,
    KestrelError::InvalidPriceBand,
    KestrelError::InvalidMatchLimit,
    KestrelError::InvalidOracleConfig,
    KestrelError::InvalidLotSize,
    KestrelError::InvalidMarketName,
    KestrelError::InvalidMarketAccount,
    KestrelError::OracleWrongOwner,
    KestrelError::OracleWrongFeed,
    KestrelError::OracleBadData,
    KestrelError::OracleUnverified,
    KestrelError::OracleNonPositivePrice,
    KestrelError::OracleStale,
    KestrelError::OracleConfidenceTooWide,
    KestrelError::OracleDeviation,
    KestrelError::OracleOutOfRange,
    KestrelError::InvalidStatusTransition,
    KestrelError::TradingPaused,
    KestrelError::MarketNotTrading,
    KestrelError::MarketReduceOnly,
    KestrelError::ReduceOnlyWouldIncrease,
    KestrelError::PriceOutsideBand,
    KestrelError::InsufficientHealth,
    KestrelError::TooManyPositions,
    KestrelError::TooManyOpenOrders,
    KestrelError::InvalidOrder,
    KestrelError::OrderAlreadyExpired,
    KestrelError::PostOnlyWouldCross,
    KestrelError::FillOrKillNotFilled,
    KestrelError::SelfTradeAborted,
    KestrelError::BookFull,
    KestrelError::EventQueueFull,
    KestrelError::OrderNotFound,
    KestrelError::WrongMarketAccounts,
    KestrelError::WrongHealthAccounts,
    KestrelError::ConsumeEventsPaused,
    KestrelError::MissingEventAccount,
    KestrelError::NoEventsToConsume,
    KestrelError::AccountingMismatch,
    KestrelError::WrongOracleAccount,
    KestrelError::NoFeesToSweep,
    KestrelError::InvalidFundingParams,
    KestrelError::InvalidLiquidationParams,
    KestrelError::FundingPaused,
    KestrelError::FundingUpToDate,
    KestrelError::CrankRequired,
    KestrelError::LiquidationPaused,
    KestrelError::NotLiquidatable,
    KestrelError::CannotLiquidateSelf,
    KestrelError::NothingToLiquidate,
    KestrelError::NotBankrupt,
    KestrelError::WrongBankruptcyMarket,
    KestrelError::CannotSocializeLoss,
    KestrelError::InsurancePaused,
    KestrelError::ZeroShares,
    KestrelError::InsufficientShares,
    KestrelError::NoUnstakeRequest,
    KestrelError::UnstakeCooldown,
    KestrelError::NoPosition,
    KestrelError::Unreachable,
    KestrelError::UnstakeRequestExpired,
    KestrelError::InvalidFutureParams,
    KestrelError::MarketExpired,
    KestrelError::MarketNotExpired,
    KestrelError::WrongMarketKind,
    KestrelError::MarketDelisted,
    KestrelError::OutsideSettlementWindow,
    KestrelError::SettlementNotCovered,
    KestrelError::TooManyUnderlyings,
    KestrelError::InvalidOptionConfig,
    KestrelError::InvalidOptionParams,
    KestrelError::VolatilityUnavailable,
    KestrelError::VolatilityStale,
    KestrelError::VolatilityOutOfBounds,
    KestrelError::OptionPricingFailed,
    KestrelError::OpenInterestLimitExceeded,
    KestrelError::PositionLimitExceeded,
    KestrelError::InvalidRiskScaling,
    KestrelError::InvalidPriceLimit,
    KestrelError::InvalidScenarioMargin,
    KestrelError::RiskArrayStale,
    KestrelError::NoScenarioMargin,
    KestrelError::NotAnOptionMarket,
    KestrelError::MarginModeUnchanged,
    KestrelError::PriceBandHeld,
];

/// The Kestrel error with this `InstructionError::Custom` code, if any.
pub fn kestrel_error(code: u32) -> Option<KestrelError> {
    ALL.into_iter().find(|e| u32::from(*e) == code)
}

/// A readable name for any custom error code: Kestrel's own by name, Anchor's
/// framework errors (below 6000) and others by number.
pub fn error_name(code: u32) -> String {
    match kestrel_error(code) {
        Some(e) => e.name(),
        None => format!("error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_committed_idl() {
        let idl: serde_json::Value =
            serde_json::from_str(include_str!("../../idl/kestrel.json")).expect("valid IDL JSON");
        let idl_errors = idl["errors"].as_array().expect("IDL lists errors");
        assert_eq!(
            idl_errors.len(),
            ALL.len(),
            "errors::ALL is out of date with the IDL"
        );
        for entry in idl_errors {
            let code = entry["code"].as_u64().unwrap() as u32;
            let error =
                kestrel_error(code).unwrap_or_else(|| panic!("code {code} missing from ALL"));
            assert_eq!(error.name(), entry["name"].as_str().unwrap());
        }
        assert_eq!(error_name(6012), "InsufficientFreeCollateral");
        assert_eq!(error_name(3010), "error 3010");
    }
}
