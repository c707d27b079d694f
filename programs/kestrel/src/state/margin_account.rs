use anchor_lang::prelude::*;

use crate::error::KestrelError;

/// PDA seeds: `[MARGIN_ACCOUNT_SEED, exchange, owner, sub_account_index (u16 LE)]`.
pub const MARGIN_ACCOUNT_SEED: &[u8] = b"margin_account";

/// A user's cross-margined account. One owner may hold many, told apart by
/// `sub_account_index`. The delegate may deposit (and, later, trade) but never
/// withdraw or close.
#[account(zero_copy)]
pub struct MarginAccount {
    pub exchange: Pubkey,
    pub owner: Pubkey,
    /// `Pubkey::default()` when there is none.
    pub delegate: Pubkey,
    /// Collateral in the mint's native units. Signed: realized losses can take
    /// it below zero before a bankruptcy is settled.
    pub collateral: i64,
    pub sub_account_index: u16,
    pub bump: u8,
    pub padding0: [u8; 5],
    /// Room for fields added by later versions without a migration.
    pub reserved: [u8; 256],
}

pub const MARGIN_ACCOUNT_SIZE: usize = 3 * 32 + 8 + 8 + 256;
const _: () = assert!(core::mem::size_of::<MarginAccount>() == MARGIN_ACCOUNT_SIZE);
const _: () = assert!(core::mem::align_of::<MarginAccount>() <= 8);

impl MarginAccount {
    pub const SPACE: usize = 8 + MARGIN_ACCOUNT_SIZE;

    pub fn has_delegate(&self) -> bool {
        self.delegate != Pubkey::default()
    }

    pub fn is_owner_or_delegate(&self, key: &Pubkey) -> bool {
        self.owner == *key || (self.has_delegate() && self.delegate == *key)
    }

    /// Collateral that may leave the account. Until positions exist this is
    /// the positive part of the balance; the health check replaces it later.
    pub fn free_collateral(&self) -> u64 {
        self.collateral.max(0) as u64
    }

    pub fn credit(&mut self, amount: u64) -> Result<()> {
        let amount = i64::try_from(amount).map_err(|_| KestrelError::MathOverflow)?;
        self.collateral = self
            .collateral
            .checked_add(amount)
            .ok_or(KestrelError::MathOverflow)?;
        Ok(())
    }

    /// Takes `amount` out of free collateral, or refuses and changes nothing.
    pub fn debit_free(&mut self, amount: u64) -> Result<()> {
        require!(
            amount <= self.free_collateral(),
            KestrelError::InsufficientFreeCollateral
        );
        // amount <= collateral <= i64::MAX, so neither step can overflow.
        self.collateral -= amount as i64;
        Ok(())
    }

    /// Closing is allowed only when nothing of value is left.
    pub fn is_empty(&self) -> bool {
        self.collateral == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(collateral: i64) -> MarginAccount {
        let mut a: MarginAccount = bytemuck::Zeroable::zeroed();
        a.collateral = collateral;
        a
    }

    #[test]
    fn credit_then_debit_round_trips() {
        let mut a = account(0);
        a.credit(1_000_000).unwrap();
        a.debit_free(400_000).unwrap();
        assert_eq!(a.collateral, 600_000);
        a.debit_free(600_000).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn debit_beyond_free_collateral_changes_nothing() {
        let mut a = account(10);
        assert!(a.debit_free(11).is_err());
        assert_eq!(a.collateral, 10);
        let mut negative = account(-5);
        assert_eq!(negative.free_collateral(), 0);
        assert!(negative.debit_free(1).is_err());
        assert_eq!(negative.collateral, -5);
    }

    #[test]
    fn credit_overflow_is_an_error_not_a_wrap() {
        let mut a = account(i64::MAX - 1);
        assert!(a.credit(2).is_err());
        assert_eq!(a.collateral, i64::MAX - 1);
        assert!(account(0).clone().credit(u64::MAX).is_err());
    }

    #[test]
    fn delegate_is_recognised_only_when_set() {
        let owner = Pubkey::new_unique();
        let mut a = account(0);
        a.owner = owner;
        assert!(a.is_owner_or_delegate(&owner));
        assert!(!a.is_owner_or_delegate(&Pubkey::default()));
        let delegate = Pubkey::new_unique();
        a.delegate = delegate;
        assert!(a.is_owner_or_delegate(&delegate));
    }
}
