#!/usr/bin/env bash
# Installs, from Debian's packages, what building rtap and its fixtures needs and the machine lacks.
set -euo pipefail
need=()
for pkg in libelf-dev zlib1g-dev pkg-config gcc make systemtap-sdt-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
