//! The `kestrel-keeper` binary as an operator meets it: a bad configuration
//! is refused before anything starts, with the key at fault named.
use std::process::Command;

fn keeper(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kestrel-keeper"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-keeper-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const EXAMPLE: &str = include_str!("../keeper.example.toml");

#[test]
fn the_example_configuration_checks_out() {
    let path = write("example.toml", EXAMPLE);
    let (ok, stdout, stderr) = keeper(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.ends_with(": ok\n"), "{stdout}");
}

#[test]
fn a_bad_value_is_refused_naming_its_key() {
    let bad = EXAMPLE.replace("funding_seconds = 60", "funding_seconds = -5");
    let path = write("bad.toml", &bad);
    for command in ["check-config", "run"] {
        let (ok, _, stderr) = keeper(&[command, "--config", path.to_str().unwrap()]);
        assert!(!ok, "{command} accepted a negative interval");
        assert!(
            stderr.contains("`intervals.funding_seconds`: invalid value: integer `-5`"),
            "{command}: {stderr}"
        );
    }
    let typo = EXAMPLE.replace("retries = 3", "retry = 3");
    let path = write("typo.toml", &typo);
    let (ok, _, stderr) = keeper(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("`transactions.retry`") && stderr.contains("unknown field"),
        "{stderr}"
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: keeper\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The daemon started before its cluster answers: it serves /health (503,
/// no cycle has completed) and /metrics (the failed attempts), keeps
/// retrying with backoff, and stops cleanly on SIGTERM.
#[test]
fn the_daemon_waits_for_its_cluster_serves_metrics_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = write(
        "id.json",
        &format!(
            "{:?}",
            solana_sdk::signature::Keypair::new().to_bytes().to_vec()
        ),
    );
    let config = EXAMPLE
        .replace("http://127.0.0.1:8899", "http://127.0.0.1:9")
        .replace("~/.config/solana/id.json", key.to_str().unwrap())
        .replace("backoff_ms = 500 ", "backoff_ms = 50 ")
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{port}"));
    let path = write("daemon.toml", &config);
    let daemon = Command::new(env!("CARGO_BIN_EXE_kestrel-keeper"))
        .args(["run", "--config", path.to_str().unwrap()])
        // The test scripts quieten solana-program-test with RUST_LOG=error.
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let mut metrics = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        metrics = http_get(port, "/metrics").unwrap_or_default();
        if metrics.contains("kestrel_keeper_cycle_errors_total 2") {
            break;
        }
    }
    assert!(
        metrics.contains("kestrel_keeper_cycle_errors_total 2"),
        "{metrics}"
    );
    let health = http_get(port, "/health").unwrap();
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");

    let stopped = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = daemon.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains("cluster did not answer"), "{logs}");
    assert!(logs.contains("keeper stopped"), "{logs}");
}
