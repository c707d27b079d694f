//! `cargo run -p xtask -- idl` regenerates `idl/kestrel.json` from the program's
//! `idl-build` feature (no anchor CLI needed); `-- idl --check` fails when the
//! committed file is stale.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const IDL_PATH: &str = "idl/kestrel.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["idl"] => run(false),
        ["idl", "--check"] => run(true),
        _ => {
            eprintln!("usage: cargo run -p xtask -- idl [--check]");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn run(check: bool) -> ExitCode {
    let root = workspace_root();
    // anchor-lang-idl turns RUSTUP_TOOLCHAIN into a bad `cargo +{toolchain}`
    // argument; the workspace's own toolchain is the right one anyway. A
    // separate target dir keeps the idl-build feature set from invalidating
    // the main build's cache.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        std::env::set_var("CARGO_TARGET_DIR", root.join("target/idl"));
    }
    let idl = match anchor_lang_idl::build::IdlBuilder::new()
        .program_path(root.join("programs/kestrel"))
        .build()
    {
        Ok(idl) => idl,
        Err(err) => {
            eprintln!("xtask: building the IDL failed: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let json = serde_json::to_string_pretty(&idl).expect("the IDL serialises") + "\n";
    let path = root.join(IDL_PATH);
    if check {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != json {
            eprintln!("xtask: {IDL_PATH} is stale; run `cargo run -p xtask -- idl` and commit it");
            return ExitCode::FAILURE;
        }
        eprintln!("xtask: {IDL_PATH} is up to date");
    } else {
        std::fs::write(&path, json).expect("write the IDL");
        eprintln!("xtask: wrote {IDL_PATH}");
    }
    ExitCode::SUCCESS
}
