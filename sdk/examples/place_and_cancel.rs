//! A market maker's first steps: read the book, bid one tick above the best
//! bid that can still trade (inside the oracle band), cancel. The same function runs over RPC (below) and, in the tests,
//! on the in-process chain.
//!
//! cargo run -p kestrel-sdk --example place_and_cancel -- \
//!     <rpc url> <keypair.json> <market index> <primary oracle> [<fallback oracle>]
use kestrel::instructions::{OrderSide, OrderType};
use kestrel_sdk::client::Chain;
use kestrel_sdk::{ix, pda};
use solana_sdk::{signature::Keypair, signer::Signer};

/// Bids 1 lot one tick above the best tradeable bid of `market`, then cancels it;
/// returns the price it bid. The trader's margin account 0 must hold collateral.
pub async fn place_and_cancel(
    chain: &mut impl Chain,
    trader: &Keypair,
    market: &ix::MarketAccounts,
) -> Result<u64, Box<dyn std::error::Error>> {
    let account = pda::margin_account(&pda::exchange(), &trader.pubkey(), 0);
    let view = chain.fetch_market(market).await?;
    let (best_bid, _) = view.tradeable_prices(&chain.clock().await?)?;
    let price = best_bid.ok_or("no bid to improve on")?.0 + 1;
    let order = ix::order_args(OrderSide::Bid, OrderType::PostOnly, price, 1, 42);
    let positions = chain.margin_account(&account).await?;
    let health = ix::health_accounts(&positions, Some(market.market_index), &[*market]);
    let place = ix::place_order(&trader.pubkey(), &account, market, order, health);
    let place = chain.refreshed(market, vec![place]).await?; // a stale price first
    chain.submit(&place, &[trader]).await?;
    let cancel = ix::cancel_order_by_client_id(&trader.pubkey(), &account, market, 42);
    chain.submit(&[cancel], &[trader]).await?;
    Ok(price)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, keypair, index, primary, rest @ ..] = args.as_slice() else {
        return Err("usage: place_and_cancel <rpc url> <keypair.json> <market index> <primary oracle> [<fallback oracle>]".into());
    };
    let trader = kestrel_sdk::rpc::read_keypair(keypair.as_ref())?;
    let policy = kestrel_sdk::rpc::SendPolicy::default();
    let mut chain = kestrel_sdk::rpc::RpcChain::new(url.as_str(), trader.insecure_clone(), policy);
    let fallback = rest.first().map(|f| f.parse()).transpose()?;
    let market = chain
        .market_accounts(index.parse()?, primary.parse()?, fallback)
        .await?;
    let price = place_and_cancel(&mut chain, &trader, &market).await?;
    println!("bid 1 lot at {price} ticks and cancelled it");
    Ok(())
}
