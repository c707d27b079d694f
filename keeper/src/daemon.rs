//! `kestrel-keeper run`: the crank loop over RPC, the metrics and health
//! endpoint, backoff when the cluster does not answer, and a graceful stop.
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel_sdk::client::{Chain, FetchError};
use kestrel_sdk::ix::{MarketAccounts, UnderlyingAccounts};
use kestrel_sdk::rpc::RpcChain;
use kestrel_sdk::{decode, pda};
use solana_sdk::signer::Signer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::config::{read_keypair, Config, ConfigError};
use crate::cranks::{Keeper, Liquidator};
use crate::metrics::Metrics;

/// Milliseconds since the daemon started at which the last cycle completed;
/// /health answers 503 when that is older than three cycles (or 30 s).
struct Liveness {
    started: Instant,
    last_ok_ms: AtomicU64,
    stale_after: Duration,
}

impl Liveness {
    fn healthy(&self) -> bool {
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        last != 0
            && (self.started.elapsed().as_millis() as u64).saturating_sub(last)
                <= self.stale_after.as_millis() as u64
    }

    fn mark(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ok_ms.store(now.max(1), Ordering::Relaxed);
    }
}

/// Serves `GET /metrics` and `GET /health` until the task is dropped.
async fn serve(listener: TcpListener, metrics: Arc<Metrics>, liveness: Arc<Liveness>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, liveness) = (metrics.clone(), liveness.clone());
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await
            else {
                return;
            };
            let line = String::from_utf8_lossy(&request[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, content_type, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                "/health" if liveness.healthy() => ("200 OK", "text/plain", "ok\n".to_string()),
                "/health" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "no completed cycle recently\n".to_string(),
                ),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "try /metrics or /health\n".to_string(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Why the configured markets could not be read ([`discover`]).
#[derive(Debug)]
pub enum DiscoverError {
    /// The cluster did not answer: worth waiting for.
    Chain(u16, kestrel_sdk::client::ChainError),
    /// The cluster answered, and the configuration does not fit it.
    Config(ConfigError),
}

/// Each configured market's accounts, with its underlying's and the oracle
/// accounts its feeds are read from: the entry's, else those the
/// underlying's configuration determines. Markets on one underlying must
/// read its feeds from the same accounts.
pub async fn discover(
    chain: &mut impl Chain,
    oracles: &[crate::config::MarketOracles],
) -> Result<Vec<MarketAccounts>, DiscoverError> {
    let exchange = pda::exchange();
    let mut markets: Vec<MarketAccounts> = Vec::with_capacity(oracles.len());
    for (n, m) in oracles.iter().enumerate() {
        let failed = |e: FetchError| match e {
            FetchError::Chain(e) => DiscoverError::Chain(m.index, e),
            e => DiscoverError::Config(ConfigError(format!("market {}: {e}", m.index))),
        };
        let address = pda::market(&exchange, m.index);
        let market = chain.market(&address).await.map_err(failed)?;
        let underlying = chain
            .fetch_existing(&[market.underlying])
            .await
            .map_err(failed)?
            .remove(0);
        let underlying = decode::underlying(&underlying.data)
            .map_err(|e| failed(FetchError::Decode(market.underlying, e)))?;
        let oracle = underlying.oracle_config().map_err(|e| {
            DiscoverError::Config(ConfigError(format!(
                "market {}: its underlying {}'s oracle configuration does not decode ({e:?})",
                m.index, market.underlying
            )))
        })?;
        let (primary_oracle, fallback_oracle) = m
            .resolve(&oracle, &format!("market[{n}]"))
            .map_err(DiscoverError::Config)?;
        let accounts = MarketAccounts {
            market_index: m.index,
            market: address,
            bids: market.bids,
            asks: market.asks,
            event_queue: market.event_queue,
            underlying: UnderlyingAccounts {
                underlying: market.underlying,
                primary_oracle,
                fallback_oracle,
            },
        };
        let disagrees = markets.iter().find(|other| {
            other.underlying.underlying == accounts.underlying.underlying
                && other.underlying != accounts.underlying
        });
        if let Some(other) = disagrees {
            return Err(DiscoverError::Config(ConfigError(format!(
                "`market[{n}]`: market {} is on the underlying of market {} ({}), whose feeds it reads from other accounts: name the same oracle accounts for both",
                m.index, other.market_index, market.underlying
            ))));
        }
        markets.push(accounts);
    }
    Ok(markets)
}

/// Warns when the lookup table is unusable or lacks some of the markets'
/// accounts (transactions still go out, naming those by their full key).
async fn check_lookup_table(
    chain: &mut RpcChain,
    table: &kestrel_sdk::Pubkey,
    markets: &[MarketAccounts],
) {
    match chain.lookup_table(table).await {
        Ok(Some(found)) if found.is_active() => {
            let missing = kestrel_sdk::lookup_table::missing(
                &found.addresses,
                &kestrel_sdk::lookup_table::exchange_addresses(markets),
            );
            if missing.is_empty() {
                tracing::info!(%table, addresses = found.addresses.len(), "lookup table");
            } else {
                tracing::warn!(%table, missing = missing.len(), "the lookup table lacks some of the markets' accounts: run kestrel-migrations");
            }
        }
        Ok(Some(_)) => tracing::warn!(%table, "the lookup table is deactivated; sending legacy"),
        Ok(None) => tracing::warn!(%table, "no lookup table at `lookup_table`; sending legacy"),
        Err(e) => tracing::warn!(%table, error = %e, "the lookup table could not be read"),
    }
}

/// Runs the keeper against `config`'s cluster until `shutdown` resolves
/// (or after one cycle with `once`). The cycle in flight when the signal
/// arrives completes first.
pub async fn run(
    config: Config,
    once: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ConfigError> {
    let keypair = read_keypair(&config.keypair)?;
    let owner = keypair.pubkey();
    let mut chain = RpcChain::new(
        config.rpc_url.clone(),
        keypair.insecure_clone(),
        config.send_policy(),
    );
    let cycle = Duration::from_millis(config.intervals.cycle_ms);
    let liveness = Arc::new(Liveness {
        started: Instant::now(),
        last_ok_ms: AtomicU64::new(0),
        stale_after: (cycle * 3).max(Duration::from_secs(30)),
    });
    let metrics = Arc::new(Metrics::default());
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| ConfigError(format!("`server.listen`: {}: {e}", config.server.listen)))?;
    let server = tokio::spawn(serve(listener, metrics.clone(), liveness.clone()));
    tokio::pin!(shutdown);

    // The markets' accounts, read from the cluster. A cluster that does not
    // answer yet is waited for (with backoff, /health answering 503); a
    // market that does not exist is a configuration error.
    let oracles = config.market_oracles()?;
    let mut backoff = Duration::from_millis(config.intervals.backoff_ms);
    let markets = loop {
        match discover(&mut chain, &oracles).await {
            Ok(markets) => break markets,
            Err(DiscoverError::Chain(index, e)) if !once => {
                metrics.record_cycle_error();
                tracing::warn!(market = index, error = %e, retry_in_ms = backoff.as_millis() as u64, "cluster did not answer");
                tokio::select! {
                    () = &mut shutdown => {
                        server.abort();
                        tracing::info!("keeper stopped");
                        return Ok(());
                    }
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_millis(config.intervals.max_backoff_ms));
            }
            Err(DiscoverError::Chain(index, e)) => {
                server.abort();
                return Err(ConfigError(format!("market {index}: {e}")));
            }
            Err(DiscoverError::Config(e)) => {
                server.abort();
                return Err(e);
            }
        }
    };
    let liquidator = config.liquidator.as_ref().map(|l| Liquidator {
        margin_account: pda::margin_account(&pda::exchange(), &owner, l.sub_account_index),
        authority: keypair.insecure_clone(),
        unwind_slippage_bps: l.unwind_slippage_bps(),
    });
    let lookup_table = config.lookup_table_address()?;
    if let Some(table) = lookup_table {
        check_lookup_table(&mut chain, &table, &markets).await;
    }
    let mut keeper = Keeper::new(markets, liquidator);
    keeper.lookup_table = lookup_table;
    keeper.metrics = metrics;
    keeper.funding_interval_seconds = i64::from(config.intervals.funding_seconds);
    keeper.max_events_per_crank = config.transactions.max_events_per_crank;
    keeper.max_makers_per_crank = config.transactions.max_makers_per_crank;

    tracing::info!(
        rpc = %config.rpc_url,
        keeper = %owner,
        markets = keeper.markets.len(),
        liquidating = keeper.liquidator.is_some(),
        lookup_table = ?keeper.lookup_table,
        listen = %config.server.listen,
        "keeper started"
    );

    backoff = Duration::from_millis(config.intervals.backoff_ms);
    loop {
        let wait = match keeper.run_cycle(&mut chain).await {
            Ok(report) => {
                liveness.mark();
                backoff = Duration::from_millis(config.intervals.backoff_ms);
                tracing::info!(
                    refreshes = report.underlying_refreshes,
                    events = report.events_consumed,
                    funding = report.funding_updates,
                    basis = report.basis_updates,
                    settlement_samples = report.settlement_samples,
                    positions_settled = report.positions_settled.len(),
                    markets_closed = report.markets_closed.len(),
                    liquidations = report.liquidations.len(),
                    unwinds = report.unwinds.len(),
                    liquidatable = report.liquidatable.len(),
                    bankruptcies = report.bankruptcies_settled.len(),
                    bankruptcies_waiting = report.bankruptcies_waiting.len(),
                    races = report.races,
                    failures = report.failures.len(),
                    unconfigured = report.unconfigured.len(),
                    "cycle"
                );
                for failure in &report.failures {
                    tracing::warn!(%failure, "refused");
                }
                for work in &report.unconfigured {
                    tracing::warn!(%work, "left undone: the market is not in this keeper's config");
                }
                cycle
            }
            Err(error) => {
                keeper.metrics.record_cycle_error();
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cluster did not answer");
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_millis(config.intervals.max_backoff_ms));
                wait
            }
        };
        if once {
            break;
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("keeper stopped");
    server.abort();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested; finishing the current cycle");
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let liveness = Arc::new(Liveness {
            started: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            stale_after: Duration::from_secs(30),
        });
        let server = tokio::spawn(serve(listener, metrics.clone(), liveness.clone()));
        assert!(get(address, "/health").await.starts_with("HTTP/1.1 503"));
        liveness.mark();
        assert!(get(address, "/health").await.starts_with("HTTP/1.1 200"));
        metrics.events_consumed.store(5, Ordering::Relaxed);
        let response = get(address, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("\nkestrel_keeper_events_consumed_total 5\n"),
            "{response}"
        );
        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }

    /// With no cluster behind the URL, starting fails with the market named,
    /// rather than looping on a chain it cannot read.
    #[tokio::test]
    async fn an_unreachable_cluster_is_reported_at_start() {
        let dir = std::env::temp_dir().join(format!("kestrel-daemon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keypair = dir.join("id.json");
        let key = solana_sdk::signature::Keypair::new();
        std::fs::write(
            &keypair,
            serde_json::to_string(&key.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        let text = format!(
            "rpc_url = \"http://127.0.0.1:9\"\nkeypair = {:?}\n[[market]]\nindex = 0\nprimary_oracle = \"7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE\"\n",
            keypair.display().to_string()
        );
        let config = Config::parse(&text).unwrap();
        let error = run(config, true, std::future::pending()).await.unwrap_err();
        assert!(error.0.starts_with("market 0: "), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
