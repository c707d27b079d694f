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
