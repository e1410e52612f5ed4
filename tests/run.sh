#!/usr/bin/env bash
# The whole test suite: installs the build dependencies if missing, builds rtap, runs every test.
# End-to-end cases load BPF for real; run as root. Under CI=true they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/install-deps.sh
cargo build --workspace --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --quiet 2>&1 | tee "$log" || status=$?
# One closing line for the whole workspace: cargo's last line is often an empty doc-test run.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
