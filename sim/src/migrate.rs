//! Applies a migrations file to the in-process chain.
use kestrel_migrations::{plan, ChainState, Config, Step};
use kestrel_sdk::{decode, ix, pda};
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

use crate::chain::LocalChain;

/// What is on chain for the config's exchange and market indices.
pub async fn chain_state(chain: &mut LocalChain, config: &Config) -> Result<ChainState, String> {
    let exchange = pda::exchange();
    let account = chain
        .account(&exchange)
        .await
        .ok_or("the exchange is not initialised")?;
    let mut state = ChainState {
        pause_flags: decode::exchange(&account.data)
            .map_err(|e| e.to_string())?
            .pause_flags,
        ..ChainState::default()
    };
    for market in &config.markets {
        if let Some(account) = chain.account(&pda::market(&exchange, market.index)).await {
            state.markets.insert(
                market.index,
                decode::market(&account.data).map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(state)
}

/// Plans and applies `config` as `admin`; returns the steps taken (none when
/// the chain already matches).
pub async fn apply(
    chain: &mut LocalChain,
    admin: &Keypair,
    config: &Config,
) -> Result<Vec<Step>, String> {
    let state = chain_state(chain, config).await?;
    let steps = plan(config, &state).map_err(|e| e.to_string())?;
    let exchange = pda::exchange();
    let admin_key = admin.pubkey();
    for step in &steps {
        let instruction: Instruction = match *step {
            Step::SetPause { flags } => ix::set_pause(&admin_key, flags),
            Step::CreateMarket {
                args,
                primary_oracle,
                fallback_oracle,
            } => {
                let bids = chain
                    .create_owned_account(&kestrel::ID, ix::BOOK_SIDE_ACCOUNT_LEN)
                    .await;
                let asks = chain
                    .create_owned_account(&kestrel::ID, ix::BOOK_SIDE_ACCOUNT_LEN)
                    .await;
                let queue = chain
                    .create_owned_account(&kestrel::ID, ix::EVENT_QUEUE_ACCOUNT_LEN)
                    .await;
                ix::create_market(
                    &admin_key,
                    args,
                    &bids,
                    &asks,
                    &queue,
                    &primary_oracle,
                    fallback_oracle,
                )
            }
            Step::SetMarketParams {
                market_index,
                params,
                primary_oracle,
                fallback_oracle,
            } => {
                let market = pda::market(&exchange, market_index);
                ix::set_market_params(
                    &admin_key,
                    &market,
                    params,
                    &primary_oracle,
                    fallback_oracle,
                )
            }
            Step::SetMarketStatus {
                market_index,
                status,
            } => ix::set_market_status(&admin_key, &pda::market(&exchange, market_index), status),
        };
        let outcome = chain.send(&[instruction], &[admin]).await;
        if let Err(error) = outcome.result {
            return Err(format!("{step}: {error:?}"));
        }
    }
    Ok(steps)
}
