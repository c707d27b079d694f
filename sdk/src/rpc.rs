//! [`Chain`] over JSON-RPC (solana-rpc-client): the production path for bots,
//! the keeper and the migrations applier.
//!
//! Every transaction is simulated first: a refusal costs no fee and comes
//! back with its logs, and the simulated compute units (plus a margin) become
//! the transaction's compute-unit limit, so the priority fee is paid on what
//! is used rather than on the default 200k per instruction.
use std::time::Duration;

use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::Error as ClientError;
use solana_rpc_client_api::config::{
    RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSimulateTransactionConfig,
};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
use solana_sdk::account::Account;
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::{TransactionError, VersionedTransaction};

use crate::client::{AccountFilter, Chain, ChainClock, ChainError, SendError, Sent};
use crate::lookup_table::AddressLookupTableAccount;
use crate::tx::{self, Budget};
use crate::Pubkey;

/// getMultipleAccounts takes at most this many addresses per request.
const MAX_ACCOUNTS_PER_REQUEST: usize = 100;
/// A transaction's compute-unit ceiling.
pub const MAX_TRANSACTION_COMPUTE_UNITS: u32 = 1_400_000;

/// The price offered per compute unit, in micro-lamports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorityFee {
    None,
    Fixed {
        micro_lamports: u64,
    },
    /// The `percentile` of the fees recently paid for the transaction's
    /// writable accounts (getRecentPrioritizationFees), at most `max_micro_lamports`.
    Recent {
        percentile: u8,
        max_micro_lamports: u64,
    },
}

impl PriorityFee {
    /// The price to offer given recently paid fees.
    pub fn price(&self, recent: &mut [u64]) -> u64 {
        match *self {
            Self::None => 0,
            Self::Fixed { micro_lamports } => micro_lamports,
            Self::Recent {
                percentile,
                max_micro_lamports,
            } => {
                if recent.is_empty() {
                    return 0;
                }
                recent.sort_unstable();
                let rank = (recent.len() - 1) * usize::from(percentile.min(100)) / 100;
                recent[rank].min(max_micro_lamports)
            }
        }
    }
}

/// How transactions are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    pub priority_fee: PriorityFee,
    /// The most compute units any one transaction may ask for.
    pub max_compute_units: u32,
    /// Attempts after the first when the cluster does not answer or the
    /// blockhash expires before confirmation.
    pub retries: u32,
    /// The wait before the first retry; doubled on every further one.
    pub backoff: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            priority_fee: PriorityFee::None,
            max_compute_units: MAX_TRANSACTION_COMPUTE_UNITS,
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The compute-unit limit to ask for, from a simulation's consumption: 10%
/// and 1,000 CU of headroom (state may move between simulation and landing),
/// within the policy's ceiling.
pub fn compute_unit_limit(simulated: u64, ceiling: u32) -> u32 {
    let padded = simulated
        .saturating_add(simulated / 10)
        .saturating_add(1_000);
    u32::try_from(padded).unwrap_or(u32::MAX).min(ceiling)
}

pub struct RpcChain {
    client: RpcClient,
    payer: Keypair,
    pub policy: SendPolicy,
}

impl RpcChain {
    /// A chain at `url`, reading and confirming at `confirmed` commitment,
    /// with `payer` paying fees.
    pub fn new(url: impl Into<String>, payer: Keypair, policy: SendPolicy) -> Self {
        Self {
            client: RpcClient::new_with_commitment(url.into(), CommitmentConfig::confirmed()),
            payer,
            policy,
        }
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    async fn priority_price(&self, instructions: &[Instruction]) -> Result<u64, ChainError> {
        let mut writable: Vec<Pubkey> = instructions
            .iter()
            .flat_map(|ix| {
                ix.accounts
                    .iter()
                    .filter(|m| m.is_writable)
                    .map(|m| m.pubkey)
            })
            .collect();
        writable.sort_unstable();
        writable.dedup();
        // The RPC takes at most 128 addresses.
        writable.truncate(128);
        let mut recent = match self.policy.priority_fee {
            PriorityFee::Recent { .. } => self
                .client
                .get_recent_prioritization_fees(&writable)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|f| f.prioritization_fee)
                .collect(),
            _ => Vec::new(),
        };
        Ok(self.policy.priority_fee.price(&mut recent))
    }

    /// The budget instructions and `instructions`, compiled (legacy, or v0
    /// with `tables`) and signed.
    fn transaction(
        &self,
        budget: &Budget,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        blockhash: solana_sdk::hash::Hash,
    ) -> Result<VersionedTransaction, SendError> {
        let message = tx::compile(
            &self.payer.pubkey(),
            budget,
            instructions,
            tables,
            blockhash,
        )?;
        tx::sign(message, &self.payer, signers)
    }
}

fn unavailable(e: ClientError) -> ChainError {
    ChainError(e.to_string())
}

/// A send error: a refusal when the cluster names a transaction error.
fn send_error(e: ClientError) -> SendError {
    use solana_rpc_client_api::request::{RpcError, RpcResponseErrorData};
    match e.get_transaction_error() {
        Some(error) => {
            let logs = match e.kind() {
                solana_rpc_client_api::client_error::ErrorKind::RpcError(
                    RpcError::RpcResponseError {
                        data: RpcResponseErrorData::SendTransactionPreflightFailure(result),
                        ..
                    },
                ) => result.logs.clone().unwrap_or_default(),
                _ => Vec::new(),
            };
            SendError::Refused { error, logs }
        }
        None => SendError::Unavailable(e.to_string()),
    }
}

impl Chain for RpcChain {
    fn fee_payer(&self) -> Pubkey {
        self.payer.pubkey()
    }

    async fn fetch_accounts(
        &mut self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<Account>>, ChainError> {
        let mut accounts = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(MAX_ACCOUNTS_PER_REQUEST) {
            accounts.extend(
                self.client
                    .get_multiple_accounts(chunk)
                    .await
                    .map_err(unavailable)?,
            );
        }
        Ok(accounts)
    }

    async fn scan_program_accounts(
        &mut self,
        filter: AccountFilter,
    ) -> Result<Vec<(Pubkey, Account)>, ChainError> {
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                RpcFilterType::DataSize(filter.data_len as u64),
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(0, filter.discriminator.to_vec())),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64Zstd),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let found = self
            .client
            .get_program_ui_accounts_with_config(&kestrel::ID, config)
            .await
            .map_err(unavailable)?;
        Ok(found
            .into_iter()
            .filter_map(|(address, ui)| Some((address, ui.decode::<Account>()?)))
            .filter(|(_, account)| filter.matches(account))
            .collect())
    }

    async fn submit_with_tables(
        &mut self,
        instructions: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> Result<Sent, SendError> {
        let price = self
            .priority_price(instructions)
            .await
            .map_err(|e| SendError::Unavailable(e.0))?;
        let probe_budget = Budget {
            compute_unit_limit: self.policy.max_compute_units,
            compute_unit_price: price,
            loaded_accounts_data_size: None,
        };
        let blockhash = self
            .client
            .get_latest_blockhash()
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?;
        let probe = self.transaction(&probe_budget, instructions, signers, tables, blockhash)?;
        let simulated = self
            .client
            .simulate_transaction_with_config(
                &probe,
                RpcSimulateTransactionConfig {
                    sig_verify: false,
                    replace_recent_blockhash: true,
                    commitment: Some(self.client.commitment()),
                    ..RpcSimulateTransactionConfig::default()
                },
            )
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?
            .value;
        if let Some(error) = simulated.err {
            return Err(SendError::Refused {
                error: error.into(),
                logs: simulated.logs.unwrap_or_default(),
            });
        }
        let budget = Budget {
            compute_unit_limit: compute_unit_limit(
                simulated
                    .units_consumed
                    .unwrap_or(u64::from(self.policy.max_compute_units)),
                self.policy.max_compute_units,
            ),
            compute_unit_price: price,
            // What the simulation loaded, padded; the runtime's default
            // (64 MiB) when the node does not say.
            loaded_accounts_data_size: simulated
                .loaded_accounts_data_size
                .map(tx::loaded_accounts_data_size_limit),
        };

        let mut wait = self.policy.backoff;
        let mut last_error = String::new();
        for attempt in 0..=self.policy.retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            let blockhash = match self.client.get_latest_blockhash().await {
                Ok(hash) => hash,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let tx = self.transaction(&budget, instructions, signers, tables, blockhash)?;
            match self.client.send_and_confirm_transaction(&tx).await {
                Ok(signature) => {
                    return Ok(Sent {
                        signature,
                        compute_units: simulated.units_consumed,
                    })
                }
                // An earlier attempt landed after all.
                Err(e) if e.get_transaction_error() == Some(TransactionError::AlreadyProcessed) => {
                    return Ok(Sent {
                        signature: tx.signatures[0],
                        compute_units: simulated.units_consumed,
                    })
                }
                Err(e) => match send_error(e) {
                    SendError::Unavailable(why) => last_error = why,
                    refused => return Err(refused),
                },
            }
        }
        Err(SendError::Unavailable(format!(
            "no confirmation after {} attempts: {last_error}",
            self.policy.retries + 1
        )))
    }

    async fn wait_past_slot(&mut self, slot: u64) -> Result<(), ChainError> {
        // About 400 ms a slot; give up after two minutes.
        for _ in 0..300 {
            let current = self.client.get_slot().await.map_err(unavailable)?;
            if current > slot {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        Err(ChainError(format!(
            "the cluster did not pass slot {slot} within two minutes"
        )))
    }

    async fn clock(&mut self) -> Result<ChainClock, ChainError> {
        let account = self
            .client
            .get_account(&solana_sdk::sysvar::clock::ID)
            .await
            .map_err(unavailable)?;
        ChainClock::from_sysvar_data(&account.data)
            .ok_or_else(|| ChainError("the clock sysvar is malformed".into()))
    }

    async fn rent_exempt_minimum(&mut self, data_len: usize) -> Result<u64, ChainError> {
        self.client
            .get_minimum_balance_for_rent_exemption(data_len)
            .await
            .map_err(unavailable)
    }
}

/// Reads a Solana CLI keypair file: a JSON array of 64 bytes.
pub fn read_keypair(path: &std::path::Path) -> Result<Keypair, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a keypair file (a JSON array of 64 bytes): {e}",
            path.display()
        )
    })?;
    Keypair::try_from(bytes.as_slice())
        .map_err(|e| format!("{}: not a keypair: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_files_are_read_and_bad_ones_refused() {
        let dir = std::env::temp_dir().join(format!("kestrel-sdk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = Keypair::new();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            serde_json::to_string(&key.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        assert_eq!(read_keypair(&good).unwrap().to_bytes(), key.to_bytes());
        let short = dir.join("short.json");
        std::fs::write(&short, "[1, 2, 3]").unwrap();
        assert!(read_keypair(&short).unwrap_err().contains("not a keypair"));
        let text = dir.join("text.json");
        std::fs::write(&text, "hello").unwrap();
        assert!(read_keypair(&text).unwrap_err().contains("JSON array"));
        assert!(read_keypair(&dir.join("missing.json")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recent_fee_percentiles_are_capped() {
        let policy = PriorityFee::Recent {
            percentile: 75,
            max_micro_lamports: 5_000,
        };
        assert_eq!(policy.price(&mut []), 0);
        assert_eq!(policy.price(&mut [40, 10, 30, 20, 50]), 40);
        assert_eq!(policy.price(&mut [9_000, 10_000]), 5_000);
        let top = PriorityFee::Recent {
            percentile: 250,
            max_micro_lamports: u64::MAX,
        };
        assert_eq!(top.price(&mut [3, 1, 2]), 3);
        assert_eq!(PriorityFee::Fixed { micro_lamports: 7 }.price(&mut [1]), 7);
        assert_eq!(PriorityFee::None.price(&mut [1]), 0);
    }

    #[test]
    fn compute_unit_limit_pads_within_the_ceiling() {
        assert_eq!(compute_unit_limit(10_000, 1_400_000), 12_000);
        assert_eq!(compute_unit_limit(0, 1_400_000), 1_000);
        assert_eq!(compute_unit_limit(1_390_000, 1_400_000), 1_400_000);
        assert_eq!(compute_unit_limit(u64::MAX, 200_000), 200_000);
    }

    /// A refused send returns at once with the program's error and logs,
    /// before any fee is paid; no cluster here, so the error is transport.
    #[tokio::test]
    async fn an_unreachable_cluster_is_unavailable_not_refused() {
        let mut chain = RpcChain::new(
            "http://127.0.0.1:9",
            Keypair::new(),
            SendPolicy {
                retries: 1,
                backoff: Duration::from_millis(1),
                ..SendPolicy::default()
            },
        );
        let err = chain.submit(&[], &[]).await.unwrap_err();
        assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
        assert!(chain.clock().await.is_err());
    }
}
