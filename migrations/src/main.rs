//! `kestrel-migrations`: applies a markets file to a cluster over RPC.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kestrel_migrations::Config;
use kestrel_sdk::rpc::{read_keypair, RpcChain, SendPolicy};

#[derive(Parser)]
#[command(
    name = "kestrel-migrations",
    version,
    about = "Makes a cluster's Kestrel exchange, underlyings and markets match a markets file: creates what is missing, updates what differs, leaves the rest"
)]
struct Cli {
    /// The markets file (see migrations/markets.toml).
    #[arg(long, short, default_value = "migrations/markets.toml")]
    config: PathBuf,
    /// JSON-RPC endpoint.
    #[arg(long, short, default_value = "http://127.0.0.1:8899")]
    url: String,
    /// The exchange admin's keypair file (pays fees and rent too).
    #[arg(long, short)]
    keypair: PathBuf,
    /// Prints the plan and changes nothing.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let text = match std::fs::read_to_string(&cli.config) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::parse(&text) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    let admin = match read_keypair(&cli.keypair) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut chain = RpcChain::new(
        cli.url.clone(),
        admin.insecure_clone(),
        SendPolicy::default(),
    );
    let result = runtime.block_on(async {
        if cli.dry_run {
            kestrel_migrations::plan_for(&mut chain, &config).await
        } else {
            kestrel_migrations::apply(&mut chain, &admin, &mut config).await
        }
    });
    // A table created now is recorded in the file, so the next run finds it.
    let recorded = Config::parse(&text)
        .ok()
        .and_then(|c| c.lookup_table_address().ok().flatten());
    let table = config.lookup_table_address().ok().flatten();
    if let Some(address) = table.filter(|t| Some(*t) != recorded) {
        let written = kestrel_migrations::record_lookup_table(&text, &address)
            .map_err(|e| e.to_string())
            .and_then(|new| std::fs::write(&cli.config, new).map_err(|e| e.to_string()));
        match written {
            Ok(()) => println!(
                "created lookup table {address}: recorded as lookup_table.address in {}",
                cli.config.display()
            ),
            Err(e) => eprintln!(
                "created lookup table {address}, but {} could not be updated ({e}): \
                 add `address = \"{address}\"` under [lookup_table] yourself",
                cli.config.display()
            ),
        }
    }
    if let Some(address) = table {
        println!("keeper config: lookup_table = \"{address}\"");
    }
    match result {
        Ok(steps) if steps.is_empty() => {
            println!(
                "{} matches {}: nothing to do",
                cli.url,
                cli.config.display()
            );
            ExitCode::SUCCESS
        }
        Ok(steps) => {
            let verb = if cli.dry_run {
                "would apply"
            } else {
                "applied"
            };
            println!("{verb} {} steps:", steps.len());
            for step in steps {
                println!("  {step}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
