#!/usr/bin/env bash
# Runs every test: the whole workspace natively, then the integration tests and
# the demo again against the real SBF build of the program, printing the
# compute units of each instruction.
#
# The .so comes from `cargo build-sbf` where Solana's platform-tools are
# installed, else from ../shared/sbf/build.sh (Debian stand-in, installs what it
# needs). KESTREL_SO_BUILDER=cargo-build-sbf|shared-sbf forces one.
set -euo pipefail
cd "$(dirname "$0")/.."
# solana-program-test logs every instruction at debug level to stderr otherwise.
export RUST_LOG=${RUST_LOG:-error}

echo "== native: cargo test --workspace"
cargo test --workspace --locked

echo "== build the SBF program (target/deploy/kestrel.so)"
builder=${KESTREL_SO_BUILDER:-}
if [[ -z $builder ]]; then
    if cargo build-sbf --version >/dev/null 2>&1; then
        builder=cargo-build-sbf
    elif [[ -x ../shared/sbf/build.sh ]]; then
        builder=shared-sbf
    else
        echo "error: no SBF toolchain: install Solana's platform-tools (cargo build-sbf)" >&2
        exit 1
    fi
fi
case $builder in
cargo-build-sbf) cargo build-sbf --manifest-path programs/kestrel/Cargo.toml --sbf-out-dir target/deploy ;;
shared-sbf) ../shared/sbf/build.sh programs/kestrel -- --locked ;;
*) echo "error: KESTREL_SO_BUILDER=$builder: expected cargo-build-sbf or shared-sbf" >&2; exit 1 ;;
esac

echo "== SBF: the integration tests and the demo against target/deploy/kestrel.so"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
KESTREL_PROGRAM=sbf \
    cargo test --locked -p kestrel-tests -p kestrel-sim -- --nocapture --test-threads=1 2>&1 | tee "$log" |
    grep -v '\[cu\] '

echo "== compute units per instruction on the .so (min / max over every successful call)"
# libtest may print "test <name> ... " on the same line before a [cu] line.
# Labels may contain spaces ("place_order x8"): the figure follows the last ": ".
awk '{ at = index($0, "[cu] "); if (!at) next
        line = substr($0, at + 5); if (!match(line, /: [0-9]+$/)) next
        name = substr(line, 1, RSTART - 1); cu = substr(line, RSTART + 2) + 0
        if (!(name in min) || cu < min[name]) min[name] = cu
        if (cu > max[name]) max[name] = cu; n[name]++ }
     END { printf "%-24s %8s %8s %6s\n", "instruction", "min", "max", "calls"
           for (k in min) printf "%-24s %8d %8d %6d\n", k, min[k], max[k], n[k] }' "$log" |
    { read -r header; echo "$header"; sort; }
