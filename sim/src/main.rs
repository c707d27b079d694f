//! `kestrel-sim demo [--sbf]`: runs the demo on an in-process chain.
use std::process::ExitCode;

use kestrel_sim::chain::ProgramMode;

const USAGE: &str = "usage: kestrel-sim demo [--sbf]\n  \
    --sbf  run the program from target/deploy/kestrel.so instead of the native build";

fn main() -> ExitCode {
    // program-test logs every instruction at debug level unless told otherwise.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "error");
    }
    // program-test turns on debug logging of every instruction unless told otherwise.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "error");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["demo"] => ProgramMode::Native,
        ["demo", "--sbf"] => ProgramMode::Sbf,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(kestrel_sim::demo::run(mode));
    print!("{}", report.text);
    if report.conservation_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
