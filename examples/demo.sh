#!/usr/bin/env bash
# The demo: the blog post's ENOBUFS moment, live, on a real sd-bus.
#
# On a fresh Debian 12 machine, as root, from a checkout that sits beside `shared/`:
# installs what it needs, builds rtap (release) and the sd-bus rig (libsystemd from
# Debian's systemd source), starts a private dbus-daemon, and runs
# scripts/systemd-bus.rtap while the rig's flood driver stops the daemon and sends until
# sd-bus's write queue is full. Everything it starts is stopped by pid at the end.
#
# env: VARIANT=stock       today's sd-bus: sd_bus_send, ENOBUFS at WQUEUE 393216
#      VARIANT=blogcompat  the post's sd-bus: bus_send_internal, ENOBUFS at 196608
#      SHOW_ALL=1          print every row instead of the summarised view
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rig=$(cd ../shared/rig 2>/dev/null && pwd) || {
  echo "demo: the sd-bus rig is missing: expected ../shared/rig beside this checkout" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || { echo "demo: run as root: it installs packages and loads BPF programs" >&2; exit 1; }
export VARIANT=${VARIANT:-stock}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing build dependencies"
./tests/install-deps.sh
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    command -v curl >/dev/null || { apt-get update -qq; apt-get install -y -qq curl ca-certificates; }
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi

step "building rtap (release)"
cargo build --release --quiet -p rtap-runtime
rtap="${CARGO_TARGET_DIR:-$repo/target}/release/rtap"

step "building the sd-bus rig (libsystemd 252 from Debian's source; cached in /tmp/rig)"
"$rig/build.sh"

work=$(mktemp -d)
run_pid="" ; tails=()
cleanup() {
  # run.sh stops its dbus-daemon and rtap by pid when it exits.
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  for p in "${tails[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Rows of the send path that returned 1 are summarised; everything else is shown: the
# headers, the other functions, the rows at multiples of 65536, the last rows before the
# first error and the errors themselves.
summarise() {
  if [ "${SHOW_ALL:-0}" = 1 ]; then cat; return; fi
  awk '
    function out(line) {
      if (hidden > 0) printf("   ... %d more %s row%s that returned 1\n", hidden, fn, hidden == 1 ? "" : "s")
      hidden = 0
      if (hdr != "") { print hdr; print cols; hdr = "" }
      print line; fflush()
    }
    /^--- / { hdr = $0; next }
    /^ *PID FUNCTION/ { cols = $0; if (!started++) { print hdr; print cols; hdr = ""; fflush() }; next }
    {
      send = ($2 == "sd_bus_send" || $2 == "bus_send_internal")
      if (send && $5 == "1" && !($4 > 0 && $4 % 65536 == 0)) {
        fn = $2; hidden++; ring[hidden % 3] = $0; next
      }
      if (send && $5 != "1" && !errors++) {
        # the last rows before the first error, as in the post
        n = hidden < 3 ? hidden : 3
        for (i = 0; i < n; i++) tail[i] = ring[(hidden - n + 1 + i) % 3]
        hidden -= n
        for (i = 0; i < n; i++) out(tail[i])
      }
      out($0)
    }'
}

step "tracing sd-bus with scripts/systemd-bus.rtap while the flood driver overflows it ($VARIANT)"
cat <<EOF
   rtap $repo/scripts/systemd-bus.rtap 1000 <the rig's libsystemd>
   The driver stops its private dbus-daemon (SIGSTOP), then sends PropertiesChanged
   signals until sd_bus_send() fails; then it lets the daemon run and waits for the
   write queue to drain (several seconds: sd-bus drains it one memmove at a time).
   Lines starting with [driver] are the driver's own report.

EOF
: >"$work/trace.out"
: >"$work/driver.out"
(
  cd "$rig"
  TRACE="$rtap $repo/scripts/systemd-bus.rtap 1000 @LIB@" TRACE_READY='PID FUNCTION' \
    TRACE_OUT="$work/trace.out" exec ./run.sh overflow
) >"$work/driver.out" 2>&1 &
run_pid=$!
tail -n +1 -F --pid="$run_pid" "$work/trace.out" 2>/dev/null | summarise &
tails+=($!)
tail -n +1 -F --pid="$run_pid" "$work/driver.out" 2>/dev/null |
  sed -u -n '/^---- tracer output/q; /^ *sent=/d; s/^/   [driver] /p' &
tails+=($!)
status=0
wait "$run_pid" || status=$?
run_pid=""
sleep 0.5   # let the tails print what is left
for p in "${tails[@]}"; do kill "$p" 2>/dev/null || true; done
tails=()

step "the ENOBUFS moment"
if grep -q ' ENOBUFS$' "$work/trace.out"; then
  case "$VARIANT" in
    blogcompat) max="192*1024 = 196608, as in the post's systemd" ;;
    *) max="384*1024 = 393216 in today's sd-bus (the post's systemd had 192*1024)" ;;
  esac
  grep -m1 -B2 ' ENOBUFS$' "$work/trace.out" | grep -v '^---\|PID FUNCTION'
  cat <<EOF

   The write queue (WQUEUE) grew by one per send while nobody read the socket, until it
   reached BUS_WQUEUE_MAX:
     $max.
   From then on every send returned ENOBUFS ("No buffer space available", the error in
   the post's logs) without queueing anything.
EOF
else
  echo "demo: no ENOBUFS row in the trace; the driver said:" >&2
  cat "$work/driver.out" >&2
  status=1
fi
exit "$status"
