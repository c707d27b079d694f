//! Solvency audit: the collateral vault must hold exactly what the ledger says
//! it owes. Pure over fetched account bytes, so it runs against any chain.
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use kestrel_sdk::decode::{self, DecodeError};

/// vault balance = Σ margin-account collateral + fees owed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conservation {
    pub vault_balance: u64,
    pub total_collateral: i128,
    /// Fees accrued by markets and not yet swept; no markets exist yet.
    pub fees_owed: i128,
    pub margin_accounts: usize,
}

impl Conservation {
    pub fn holds(&self) -> bool {
        self.imbalance() == 0
    }

    /// Vault minus what it owes: positive is a surplus (tokens sent to the
    /// vault directly), negative a shortfall.
    pub fn imbalance(&self) -> i128 {
        i128::from(self.vault_balance) - self.total_collateral - self.fees_owed
    }
}

impl std::fmt::Display for Conservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "vault {} = collateral {} + fees owed {} over {} margin accounts: {}",
            self.vault_balance,
            self.total_collateral,
            self.fees_owed,
            self.margin_accounts,
            if self.holds() {
                "holds".to_string()
            } else {
                format!("off by {}", self.imbalance())
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    VaultNotATokenAccount,
    MarginAccount(DecodeError),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VaultNotATokenAccount => {
                write!(f, "the collateral vault is not an SPL token account")
            }
            Self::MarginAccount(e) => write!(f, "margin account: {e}"),
        }
    }
}

impl std::error::Error for AuditError {}

/// Audits the collateral vault (`vault` is its account data) against every
/// margin account's data. Every margin account of the exchange must be given.
pub fn conservation<'a>(
    vault: &[u8],
    margin_accounts: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Conservation, AuditError> {
    let vault_balance = spl_token::state::Account::unpack(vault)
        .map_err(|_| AuditError::VaultNotATokenAccount)?
        .amount;
    let mut total_collateral = 0i128;
    let mut count = 0;
    for data in margin_accounts {
        let account = decode::margin_account(data).map_err(AuditError::MarginAccount)?;
        total_collateral += i128::from(account.collateral);
        count += 1;
    }
    Ok(Conservation {
        vault_balance,
        total_collateral,
        fees_owed: 0,
        margin_accounts: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::Discriminator;
    use kestrel_sdk::MarginAccount;

    fn vault(amount: u64) -> Vec<u8> {
        let account = spl_token::state::Account {
            amount,
            state: spl_token::state::AccountState::Initialized,
            ..Default::default()
        };
        let mut data = vec![0; spl_token::state::Account::LEN];
        account.pack_into_slice(&mut data);
        data
    }

    fn margin(collateral: i64) -> Vec<u8> {
        let mut account: MarginAccount = bytemuck::Zeroable::zeroed();
        account.collateral = collateral;
        let mut data = MarginAccount::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::bytes_of(&account));
        data
    }

    #[test]
    fn balanced_books_hold_and_any_difference_is_reported() {
        let accounts = [margin(700), margin(300), margin(0)];
        let report = conservation(&vault(1_000), accounts.iter().map(Vec::as_slice)).unwrap();
        assert!(report.holds(), "{report}");
        assert_eq!(report.margin_accounts, 3);

        let short = conservation(&vault(999), accounts.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(short.imbalance(), -1);
        assert!(short.to_string().ends_with("off by -1"));
        // A negative balance (an unsettled bankruptcy) counts against the total:
        // the vault is short of the others' collateral by exactly that deficit.
        let report = conservation(
            &vault(900),
            [margin(1_000).as_slice(), margin(-100).as_slice()],
        )
        .unwrap();
        assert!(report.holds());
    }

    #[test]
    fn wrong_accounts_are_errors_not_zeroes() {
        assert_eq!(
            conservation(&[0u8; 10], []),
            Err(AuditError::VaultNotATokenAccount)
        );
        let not_margin = vault(1);
        assert!(matches!(
            conservation(&vault(0), [not_margin.as_slice()]),
            Err(AuditError::MarginAccount(_))
        ));
    }
}
