#!/usr/bin/env bash
# The whole test suite: installs the build dependencies if missing, builds rtap, runs every test.
# End-to-end cases load BPF for real; run as root. Under CI=true they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in libelf-dev zlib1g-dev pkg-config gcc make; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
cargo build --workspace --quiet
cargo test --workspace --quiet
