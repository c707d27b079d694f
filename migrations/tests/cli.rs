//! The `kestrel-migrations` binary: what an admin sees before anything is sent.
use std::process::Command;

fn migrations(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kestrel-migrations"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("kestrel-migrations-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const MARKETS: &str = include_str!("../markets.toml");

fn keypair() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = solana_sdk::signature::Keypair::new();
    temp(
        &format!("admin-{n}.json"),
        &format!("{:?}", key.to_bytes().to_vec()),
    )
}

#[test]
fn a_bad_markets_file_is_refused_naming_the_key() {
    let bad = temp(
        "bad.toml",
        &MARKETS.replace(
            "maintenance_margin_bps = 500",
            "maintenance_margin_bps = 5000",
        ),
    );
    let (code, _, stderr) = migrations(&["--config", &bad, "--keypair", &keypair(), "--dry-run"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("market[0]: parameters refused by the program"),
        "{stderr}"
    );
}

#[test]
fn a_market_on_an_unknown_underlying_is_refused_naming_the_key() {
    let orphan = temp(
        "orphan.toml",
        &MARKETS.replacen("underlying = 0 ", "underlying = 7 ", 1),
    );
    let (code, _, stderr) =
        migrations(&["--config", &orphan, "--keypair", &keypair(), "--dry-run"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("market[0].underlying: 7 is not the index of any [[underlying]]"),
        "{stderr}"
    );
}

#[test]
fn a_bad_keypair_is_refused_before_any_request() {
    // One file per test: the tests run in parallel in one directory.
    let config = temp("bad-keypair.toml", MARKETS);
    let key = temp("short.json", "[1, 2, 3]");
    let (code, _, stderr) = migrations(&["--config", &config, "--keypair", &key, "--dry-run"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a keypair"), "{stderr}");
}

#[test]
fn an_unreachable_cluster_fails_the_dry_run_without_a_plan() {
    let config = temp("unreachable.toml", MARKETS);
    let (code, stdout, stderr) = migrations(&[
        "--config",
        &config,
        "--keypair",
        &keypair(),
        "--url",
        "http://127.0.0.1:9",
        "--dry-run",
    ]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

#[test]
fn a_future_s_expiry_is_checked_before_any_request() {
    let naive = temp(
        "naive-expiry.toml",
        &MARKETS.replacen(
            "expiry_in_seconds = 7200",
            "expiry = 2027-03-26T08:00:00",
            1,
        ),
    );
    let (code, _, stderr) = migrations(&["--config", &naive, "--keypair", &keypair(), "--dry-run"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "market[1].expiry: \"2027-03-26T08:00:00\" is not an RFC 3339 date-time: no offset"
        ),
        "{stderr}"
    );
}
