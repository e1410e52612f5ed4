#!/usr/bin/env bash
# The bundled demo: builds rtap and a small C program, then traces every call of its
# `send_msg(struct msg *m, int q)` with a SystemTap script, reading `$m->interface` from DWARF.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/install-deps.sh
cargo build --release --quiet -p rtap-runtime
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gcc -g -O2 -o "$dir/sendmsg" tests/fixtures/sendmsg.c
script='probe process("'"$dir"'/sendmsg").function("send_msg") {
  printf("%-5d %-34s q=%d\n", pid(), user_string($m->interface), $q)
}
probe process("'"$dir"'/sendmsg").function("send_msg").return {
  printf("%-5d %-34s returned %d\n", pid(), "", $return)
}'
echo "+ rtap -e '<script>' -c '$dir/sendmsg 3'"
./target/release/rtap -e "$script" -c "$dir/sendmsg 3"
