//! Applies a migrations file to any [`Chain`]: the cluster over RPC (the
//! `kestrel-migrations` command) or the in-process chain (the demo, tests).
use kestrel_sdk::client::{Chain, FetchError};
use kestrel_sdk::{decode, ix, pda, Pubkey};
use solana_sdk::instruction::Instruction;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

use crate::{plan, plan_lookup_table, ChainState, Config, LookupTableConfig, Step};

/// What is on chain for the config's exchange, underlying and market indices.
pub async fn chain_state(chain: &mut impl Chain, config: &Config) -> Result<ChainState, String> {
    let exchange = match chain.exchange().await {
        Ok(exchange) => exchange,
        Err(FetchError::Missing(_)) => {
            return Err("the exchange is not initialised: run init_exchange first".into())
        }
        Err(e) => return Err(e.to_string()),
    };
    let now = chain
        .clock()
        .await
        .map_err(|e| e.to_string())?
        .unix_timestamp;
    let mut state = ChainState {
        pause_flags: exchange.pause_flags,
        now,
        ..ChainState::default()
    };
    if let Some(address) = config.lookup_table_address().map_err(|e| e.to_string())? {
        state.lookup_table = chain
            .lookup_table(&address)
            .await
            .map_err(|e| format!("lookup_table.address: {e}"))?;
    }
    let exchange = pda::exchange();
    let underlyings: Vec<_> = config
        .underlyings
        .iter()
        .map(|u| pda::underlying(&exchange, u.index))
        .collect();
    let indices: Vec<u16> = config
        .markets
        .iter()
        .map(|m| m.index)
        .chain(config.series_indices().into_iter().map(|(index, _)| index))
        .collect();
    let markets: Vec<_> = indices.iter().map(|&i| pda::market(&exchange, i)).collect();
    let addresses: Vec<_> = underlyings.iter().chain(&markets).copied().collect();
    let mut accounts = chain
        .fetch_accounts(&addresses)
        .await
        .map_err(|e| e.to_string())?
        .into_iter();
    for (underlying, account) in config.underlyings.iter().zip(accounts.by_ref()) {
        if let Some(account) = account {
            state.underlyings.insert(
                underlying.index,
                decode::underlying(&account.data)
                    .map_err(|e| format!("underlying {}: {e}", underlying.index))?,
            );
        }
    }
    for (&index, account) in indices.iter().zip(accounts) {
        if let Some(account) = account {
            state.markets.insert(
                index,
                decode::market(&account.data).map_err(|e| format!("market {index}: {e}"))?,
            );
        }
    }
    Ok(state)
}

/// The steps `config` needs on `chain`, without applying them.
pub async fn plan_for(chain: &mut impl Chain, config: &Config) -> Result<Vec<Step>, String> {
    let state = chain_state(chain, config).await?;
    plan(config, &state).map_err(|e| e.to_string())
}

/// Plans and applies `config` as `admin`; returns the steps taken (none when
/// the chain already matches). Stops at the first refused step; what was
/// applied stays, and applying again resumes from there. A lookup table
/// created here is recorded in `config.lookup_table.address` (the command
/// writes it into the file), so applying the same config again finds
/// nothing to do.
pub async fn apply(
    chain: &mut impl Chain,
    admin: &Keypair,
    config: &mut Config,
) -> Result<Vec<Step>, String> {
    let mut done = Vec::new();
    // A series waits for its underlying to exist (its strikes need the
    // underlying's decimals and price): planned again once, after the
    // underlyings are listed.
    for _ in 0..2 {
        let steps: Vec<Step> = plan_for(chain, config)
            .await?
            .into_iter()
            .filter(|s| !s.is_lookup_table())
            .collect();
        if steps.is_empty() {
            break;
        }
        for step in steps {
            execute(chain, admin, &step).await?;
            done.push(step);
        }
    }
    // Planned again: markets created above have their book accounts now.
    let state = chain_state(chain, config).await?;
    let mut created = None;
    for step in plan_lookup_table(config, &state).map_err(|e| e.to_string())? {
        let step = match step {
            Step::CreateLookupTable => {
                let address = chain
                    .create_lookup_table(admin)
                    .await
                    .map_err(|e| format!("{step}: {e}"))?;
                config.lookup_table = Some(LookupTableConfig {
                    address: Some(address.to_string()),
                });
                created = Some(address);
                step
            }
            Step::ExtendLookupTable { table, addresses } => {
                let table = table
                    .or(created)
                    .ok_or("extending a lookup table that was not created")?;
                chain
                    .extend_lookup_table(&table, admin, &addresses)
                    .await
                    .map_err(|e| format!("extend lookup table {table}: {e}"))?;
                Step::ExtendLookupTable {
                    table: Some(table),
                    addresses,
                }
            }
            other => other,
        };
        done.push(step);
    }
    Ok(done)
}

/// One exchange, underlying or market step, as `admin`.
async fn execute(chain: &mut impl Chain, admin: &Keypair, step: &Step) -> Result<(), String> {
    let exchange = pda::exchange();
    let admin_key = admin.pubkey();
    let instruction: Instruction = match *step {
        Step::SetPause { flags } => ix::set_pause(&admin_key, flags),
        Step::CreateUnderlying { args, accounts } => ix::create_underlying(
            &admin_key,
            args,
            &accounts.primary_oracle,
            accounts.fallback_oracle,
        ),
        Step::SetUnderlyingOracle {
            accounts, config, ..
        } => ix::set_underlying_oracle(&admin_key, &accounts, config),
        Step::CreateMarket { args, underlying } => {
            let (bids, asks, queue) = book_accounts(chain, step).await?;
            ix::create_market(&admin_key, args, &bids, &asks, &queue, &underlying)
        }
        Step::CreateFutureMarket {
            args,
            future,
            underlying,
        } => {
            let (bids, asks, queue) = book_accounts(chain, step).await?;
            ix::create_future_market(&admin_key, args, future, &bids, &asks, &queue, &underlying)
        }
        Step::SetOptionConfig {
            underlying_index,
            config,
        } => ix::set_option_config(
            &admin_key,
            &pda::underlying(&exchange, underlying_index),
            config,
        ),
        Step::SetRiskScaling {
            underlying_index,
            scaling,
        } => ix::set_risk_scaling(
            &admin_key,
            &pda::underlying(&exchange, underlying_index),
            scaling,
        ),
        Step::SetPriceLimit {
            underlying_index,
            max_move_bps_per_second,
            band_bps,
        } => ix::set_price_limit(
            &admin_key,
            &pda::underlying(&exchange, underlying_index),
            max_move_bps_per_second,
            band_bps,
        ),
        Step::CreateOptionMarket {
            args,
            expiry,
            option,
            underlying,
        } => {
            let (bids, asks, queue) = book_accounts(chain, step).await?;
            ix::create_option_market(
                &admin_key,
                args,
                expiry,
                option,
                &bids,
                &asks,
                &queue,
                &underlying,
            )
        }
        Step::SetMarketParams {
            market_index,
            params,
            ..
        } => ix::set_market_params(&admin_key, &pda::market(&exchange, market_index), params),
        Step::SetMarketLimits {
            market_index,
            limits,
            ..
        } => ix::set_market_limits(&admin_key, &pda::market(&exchange, market_index), limits),
        Step::SetMarketStatus {
            market_index,
            status,
        } => ix::set_market_status(&admin_key, &pda::market(&exchange, market_index), status),
        Step::CreateLookupTable | Step::ExtendLookupTable { .. } => {
            unreachable!("lookup table steps run in apply")
        }
    };
    chain
        .submit(&[instruction], &[admin])
        .await
        .map_err(|e| format!("{step}: {e}"))?;
    Ok(())
}

/// New zeroed bids, asks and event queue accounts for `step`'s market.
async fn book_accounts(
    chain: &mut impl Chain,
    step: &Step,
) -> Result<(Pubkey, Pubkey, Pubkey), String> {
    let bids = chain
        .create_program_account(ix::BOOK_SIDE_ACCOUNT_LEN)
        .await;
    let asks = chain
        .create_program_account(ix::BOOK_SIDE_ACCOUNT_LEN)
        .await;
    let queue = chain
        .create_program_account(ix::EVENT_QUEUE_ACCOUNT_LEN)
        .await;
    match (bids, asks, queue) {
        (Ok(b), Ok(a), Ok(q)) => Ok((b, a, q)),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            Err(format!("{step}: creating the book accounts: {e}"))
        }
    }
}
