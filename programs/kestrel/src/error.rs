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
}
