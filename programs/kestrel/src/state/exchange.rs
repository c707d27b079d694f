use anchor_lang::prelude::*;

use crate::error::KestrelError;

/// PDA seeds of the singleton exchange account: `[EXCHANGE_SEED]`.
pub const EXCHANGE_SEED: &[u8] = b"exchange";
/// Token account PDAs: `[seed, exchange]`, all with the exchange PDA as token authority.
pub const COLLATERAL_VAULT_SEED: &[u8] = b"collateral_vault";
pub const FEE_VAULT_SEED: &[u8] = b"fee_vault";
pub const INSURANCE_VAULT_SEED: &[u8] = b"insurance_vault";
/// How long a staker waits between `request_unstake` and `unstake`: long
/// enough that nobody can leave the fund ahead of a loss they can see coming.
pub const INSURANCE_UNSTAKE_COOLDOWN_SECONDS: i64 = 7 * 24 * 3_600;
/// How long a matured unstake request can be redeemed: after
/// `requested_at + cooldown + window` it lapses (`UnstakeRequestExpired`)
/// and only a new request, with a new cooldown, lets the shares out.
pub const INSURANCE_REDEMPTION_WINDOW_SECONDS: i64 = 2 * 24 * 3_600;

/// The exchange: who administers it, which mint is collateral, where the money
/// sits, and which operations are paused.
///
/// The collateral vault holds every margin account's collateral plus fees not
/// yet swept to the fee vault; the insurance vault is accounted separately.
#[account(zero_copy)]
pub struct Exchange {
    pub admin: Pubkey,
    /// Set by `propose_admin`, cleared by `accept_admin`; `Pubkey::default()` when none.
    pub pending_admin: Pubkey,
    pub collateral_mint: Pubkey,
    pub collateral_vault: Pubkey,
    pub fee_vault: Pubkey,
    pub insurance_vault: Pubkey,
    /// Bit set of paused operations, see [`PauseFlags`].
    pub pause_flags: u32,
    pub bump: u8,
    pub collateral_decimals: u8,
    pub padding0: [u8; 2],
    /// Insurance fund shares outstanding (stakers' claims on the insurance
    /// vault, pro rata).
    pub insurance_shares: u64,
    /// Bumped when a bankruptcy empties the insurance vault: shares of an
    /// older epoch are worth nothing.
    pub insurance_epoch: u64,
    /// Room for fields added by later versions without a migration.
    pub reserved: [u8; 240],
}

pub const EXCHANGE_SIZE: usize = 6 * 32 + 4 + 4 + 2 * 8 + 240;
const _: () = assert!(core::mem::size_of::<Exchange>() == EXCHANGE_SIZE);
const _: () = assert!(core::mem::align_of::<Exchange>() <= 8);

impl Exchange {
    pub const SPACE: usize = 8 + EXCHANGE_SIZE;

    pub fn pause_flags(&self) -> PauseFlags {
        PauseFlags(self.pause_flags)
    }
}

/// The exchange PDA's signer seeds, from its bump copied out of the account:
/// a CPI that passes the exchange needs the account itself unborrowed.
pub fn exchange_signer_seeds(bump: &[u8; 1]) -> [&[u8]; 2] {
    [EXCHANGE_SEED, bump]
}

/// An operation the admin can pause on its own: one bit of [`PauseFlags`],
/// one error, one name (as `migrations/markets.toml` spells it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Deposit,
    Withdraw,
    Trading,
    Liquidation,
    Funding,
    ConsumeEvents,
    Insurance,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Deposit,
        Operation::Withdraw,
        Operation::Trading,
        Operation::Liquidation,
        Operation::Funding,
        Operation::ConsumeEvents,
        Operation::Insurance,
    ];

    /// Bit positions are part of the account layout: never reorder.
    pub const fn flag(self) -> u32 {
        1 << self as u32
    }

    pub const fn name(self) -> &'static str {
        match self {
            Operation::Deposit => "deposit",
            Operation::Withdraw => "withdraw",
            Operation::Trading => "trading",
            Operation::Liquidation => "liquidation",
            Operation::Funding => "funding",
            Operation::ConsumeEvents => "consume_events",
            Operation::Insurance => "insurance",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
    }

    const fn paused_error(self) -> KestrelError {
        match self {
            Operation::Deposit => KestrelError::DepositsPaused,
            Operation::Withdraw => KestrelError::WithdrawalsPaused,
            Operation::Trading => KestrelError::TradingPaused,
            Operation::Liquidation => KestrelError::LiquidationPaused,
            Operation::Funding => KestrelError::FundingPaused,
            Operation::ConsumeEvents => KestrelError::ConsumeEventsPaused,
            Operation::Insurance => KestrelError::InsurancePaused,
        }
    }
}

/// The set of paused operations. Unknown bits are refused so a client built
/// against a newer version cannot set flags this one ignores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PauseFlags(pub u32);

impl PauseFlags {
    pub const DEPOSIT: u32 = Operation::Deposit.flag();
    pub const WITHDRAW: u32 = Operation::Withdraw.flag();
    pub const TRADING: u32 = Operation::Trading.flag();
    pub const LIQUIDATION: u32 = Operation::Liquidation.flag();
    pub const FUNDING: u32 = Operation::Funding.flag();
    pub const CONSUME_EVENTS: u32 = Operation::ConsumeEvents.flag();
    pub const INSURANCE: u32 = Operation::Insurance.flag();
    pub const ALL: u32 = (1 << Operation::ALL.len()) - 1;

    pub fn validated(bits: u32) -> Result<Self> {
        require!(bits & !Self::ALL == 0, KestrelError::UnknownPauseFlag);
        Ok(Self(bits))
    }

    pub fn is_paused(self, operation: Operation) -> bool {
        self.0 & operation.flag() != 0
    }

    /// Refuses with the operation's own error (`TradingPaused`, ...) when it is paused.
    pub fn ensure_running(self, operation: Operation) -> Result<()> {
        if self.is_paused(operation) {
            return Err(operation.paused_error().into());
        }
        Ok(())
    }

    pub fn paused(self) -> impl Iterator<Item = Operation> {
        Operation::ALL
            .into_iter()
            .filter(move |operation| self.is_paused(*operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bits_are_refused_known_ones_kept() {
        assert!(PauseFlags::validated(PauseFlags::ALL + 1).is_err());
        assert!(PauseFlags::validated(1 << 31).is_err());
        let flags = PauseFlags::validated(PauseFlags::DEPOSIT | PauseFlags::TRADING).unwrap();
        assert!(flags.is_paused(Operation::Deposit));
        assert!(flags.is_paused(Operation::Trading));
        assert!(!flags.is_paused(Operation::Withdraw));
        assert_eq!(
            flags.paused().collect::<Vec<_>>(),
            [Operation::Deposit, Operation::Trading]
        );
        let none = PauseFlags::validated(0).unwrap();
        assert!(Operation::ALL.iter().all(|op| !none.is_paused(*op)));
        assert!(PauseFlags::validated(PauseFlags::ALL).is_ok());
    }

    #[test]
    fn bits_are_pinned_and_each_operation_has_its_own_bit_name_and_error() {
        // Stored in Exchange::pause_flags: a change here silently re-pauses.
        assert_eq!(
            [
                PauseFlags::DEPOSIT,
                PauseFlags::WITHDRAW,
                PauseFlags::TRADING
            ],
            [1, 2, 4]
        );
        assert_eq!(
            [
                PauseFlags::LIQUIDATION,
                PauseFlags::FUNDING,
                PauseFlags::CONSUME_EVENTS
            ],
            [8, 16, 32]
        );
        assert_eq!((PauseFlags::INSURANCE, PauseFlags::ALL), (64, 127));
        let all = PauseFlags(PauseFlags::ALL);
        let mut errors = Vec::new();
        for operation in Operation::ALL {
            assert_eq!(Operation::from_name(operation.name()), Some(operation));
            let only = PauseFlags(operation.flag());
            assert_eq!(only.paused().collect::<Vec<_>>(), [operation]);
            let error = only.ensure_running(operation).unwrap_err();
            assert_eq!(error, all.ensure_running(operation).unwrap_err());
            assert_eq!(error, Error::from(operation.paused_error()));
            assert!(!errors.contains(&error), "{operation:?} shares an error");
            errors.push(error);
            let others = PauseFlags(PauseFlags::ALL & !operation.flag());
            assert!(others.ensure_running(operation).is_ok());
        }
        assert_eq!(Operation::from_name("everything"), None);
    }
}
