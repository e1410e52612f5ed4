#!/usr/bin/env bash
# The whole test suite: installs the build dependencies if missing, builds rtap, runs every test.
# End-to-end cases load BPF for real; run as root. Under CI=true they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/install-deps.sh
cargo build --workspace --quiet
cargo test --workspace --quiet
