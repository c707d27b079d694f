//! Consume events: apply every pending fill and out to its maker, in
//! batches as large as one transaction can carry.
use kestrel_sdk::client::{Chain, ChainError};
use kestrel_sdk::events;
use kestrel_sdk::ix::{self, MarketAccounts};

use super::{CycleReport, Keeper};

/// Distinct maker accounts one `consume_events` transaction can name within
/// 1,232 bytes, with the compute-budget instructions and a reward account
/// (pinned by `a_full_crank_fits_one_transaction` below).
pub const MAX_MAKERS_PER_CRANK: usize = 26;

pub(super) async fn run(
    keeper: &Keeper,
    chain: &mut impl Chain,
    market: &MarketAccounts,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), ChainError> {
    let reward_account = keeper.liquidator.as_ref().map(|l| l.margin_account);
    for _ in 0..keeper.max_cranks_per_cycle {
        let view = chain
            .fetch_market(market)
            .await
            .map_err(|e| ChainError(e.to_string()))?;
        keeper
            .metrics
            .observe_queue(market.market_index, &view.events, now);
        let (count, makers) = events::crank_batch(
            &view.events,
            usize::from(keeper.max_events_per_crank),
            keeper.max_makers_per_crank,
        );
        if count == 0 {
            return Ok(());
        }
        let crank = ix::consume_events(market, &makers, reward_account, count as u16);
        let what = format!("consume {count} events in market {}", market.market_index);
        if keeper.send(chain, &what, &[crank], &[], report).await? {
            report.events_consumed += count as u64;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_sdk::Pubkey;
    use solana_compute_budget_interface::ComputeBudgetInstruction;
    use solana_sdk::hash::Hash;
    use solana_sdk::transaction::Transaction;

    /// Serialized size: signature count, signatures, message.
    fn wire_size(makers: usize) -> usize {
        let market = MarketAccounts {
            market_index: 0,
            market: Pubkey::new_unique(),
            bids: Pubkey::new_unique(),
            asks: Pubkey::new_unique(),
            event_queue: Pubkey::new_unique(),
            underlying: ix::UnderlyingAccounts {
                underlying: Pubkey::new_unique(),
                primary_oracle: Pubkey::new_unique(),
                fallback_oracle: None,
            },
        };
        let makers: Vec<Pubkey> = (0..makers).map(|_| Pubkey::new_unique()).collect();
        let instructions = [
            ComputeBudgetInstruction::set_compute_unit_limit(1_400_000),
            ComputeBudgetInstruction::set_compute_unit_price(1),
            ix::consume_events(&market, &makers, Some(Pubkey::new_unique()), u16::MAX),
        ];
        let payer = Pubkey::new_unique();
        let mut tx = Transaction::new_with_payer(&instructions, Some(&payer));
        tx.message.recent_blockhash = Hash::default();
        1 + 64 * usize::from(tx.message.header.num_required_signatures) + tx.message_data().len()
    }

    /// A full crank keeps all three budget instructions (the loaded-data
    /// limit included) legacy and as v0 through the exchange's table, which
    /// names the exchange, market and queue by index.
    #[test]
    fn a_full_crank_keeps_its_loaded_data_limit() {
        use kestrel_sdk::lookup_table::{exchange_addresses, AddressLookupTableAccount};
        use kestrel_sdk::tx::{self, Budget};
        let market = MarketAccounts {
            market_index: 0,
            market: Pubkey::new_unique(),
            bids: Pubkey::new_unique(),
            asks: Pubkey::new_unique(),
            event_queue: Pubkey::new_unique(),
            underlying: ix::UnderlyingAccounts {
                underlying: Pubkey::new_unique(),
                primary_oracle: Pubkey::new_unique(),
                fallback_oracle: None,
            },
        };
        let makers: Vec<Pubkey> = (0..MAX_MAKERS_PER_CRANK)
            .map(|_| Pubkey::new_unique())
            .collect();
        let crank = ix::consume_events(&market, &makers, Some(Pubkey::new_unique()), u16::MAX);
        let budget = Budget {
            compute_unit_limit: 1_400_000,
            compute_unit_price: 1,
            loaded_accounts_data_size: Some(1 << 20),
        };
        let table = AddressLookupTableAccount {
            key: Pubkey::new_unique(),
            addresses: exchange_addresses(&[market]),
        };
        let payer = Pubkey::new_unique();
        let legacy = tx::compile(
            &payer,
            &budget,
            std::slice::from_ref(&crank),
            &[],
            Hash::default(),
        )
        .unwrap();
        let v0 = tx::compile(&payer, &budget, &[crank], &[table], Hash::default()).unwrap();
        assert_eq!(tx::wire_size(&legacy), 1_229);
        assert_eq!(tx::wire_size(&v0), 1_172);
        for compiled in [legacy, v0] {
            assert_eq!(
                compiled.instructions().len(),
                4,
                "limit, price, data, crank"
            );
        }
    }

    #[test]
    fn a_full_crank_fits_one_transaction() {
        const PACKET: usize = 1_232;
        assert!(wire_size(MAX_MAKERS_PER_CRANK) <= PACKET);
        // And the limit is not needlessly low.
        assert!(wire_size(MAX_MAKERS_PER_CRANK + 1) > PACKET);
    }
}
