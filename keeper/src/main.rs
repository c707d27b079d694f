//! `kestrel-keeper`: the operator's daemon.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kestrel_keeper::config::Config;

#[derive(Parser)]
#[command(
    name = "kestrel-keeper",
    version,
    about = "Cranks a Kestrel deployment: events, funding, liquidations, bankruptcies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the crank loop until SIGINT or SIGTERM.
    Run {
        /// The TOML configuration (see keeper/keeper.example.toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Runs one cycle and exits.
        #[arg(long)]
        once: bool,
        /// Logs as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Parses and validates a configuration, then exits.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            config,
            once,
            json_logs,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,solana_rpc_client=warn".into());
            let logs = tracing_subscriber::fmt().with_env_filter(filter);
            if json_logs {
                logs.json().init();
            } else {
                logs.init();
            }
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let result = runtime.block_on(kestrel_keeper::daemon::run(
                config,
                once,
                kestrel_keeper::daemon::shutdown_signal(),
            ));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(%e, "keeper could not start");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
