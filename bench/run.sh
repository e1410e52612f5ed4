#!/usr/bin/env bash
# rtap benchmarks (issues 6 and 4): per-hit cost against a floor and bpftrace, startup,
# attach/detach of ~1,000 probes, and `-L` against `stap -L`. One run, medians of REPS.
#
# usage: bench/run.sh [RESULTS.md]        (as root; prints a markdown table)
# env:   REPS=5 N=1000000 N_PRINTF=200000 N_SSTEP=100000 BT_PROBES=100
#        RTAP=path FLOOR=path (skip the cargo build)  LIB=path (the large library)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPS=${REPS:-5}
N=${N:-1000000}
N_PRINTF=${N_PRINTF:-200000}
N_SSTEP=${N_SSTEP:-100000}
BT_PROBES=${BT_PROBES:-100}
OUT_MD=${1:-}
LIB=${LIB:-/tmp/rig/systemd-build/libsystemd.so.0}
LIBC=/lib/x86_64-linux-gnu/libc.so.6
LIBTSAN=$(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'libtsan.so.2.*' -print -quit)

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (BPF and uprobes)"
for t in gcc bpftrace stap /usr/bin/time python3; do
    command -v "$t" >/dev/null || die "missing \`$t\` (apt-get install -y bpftrace systemtap time)"
done
[ -e "$LIB" ] || die "missing \`$LIB\`: build the rig with ../shared/rig/build.sh, or set LIB"

if [ -z "${RTAP:-}" ] || [ -z "${FLOOR:-}" ]; then
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    (cd "$ROOT" && cargo build -q --release -p rtap-runtime -p rtap-bench) ||
        die "cargo build failed (is \`bench\` in the workspace members?)"
    RTAP=${RTAP:-$TARGET/release/rtap}
    FLOOR=${FLOOR:-$TARGET/release/floor}
fi

# bpftrace 0.17 here: casts need an empty kernel source; memlock is not limited for BPF.
export BPFTRACE_KERNEL_SOURCE=
ulimit -l unlimited 2>/dev/null || true
# stap wants a kernel build tree even to list user-space probes (running-peers.md).
KB=/lib/modules/$(uname -r)/build
if [ ! -e "$KB/Makefile" ]; then
    mkdir -p "$KB"
    zcat /proc/config.gz >"$KB/.config"
    touch "$KB/Module.symvers"
    echo 'all:' >"$KB/Makefile"
    grep -E ' [TtWw] ' /proc/kallsyms >"$KB/System.map"
fi

WORK=$(mktemp -d /tmp/rtap-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
RES=$WORK/results.tsv
: >"$RES"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# The workload in three builds; only work()'s first instruction differs in kind.
SRC=$HERE/workload.c
gcc -O2 -g -DFRAME "$SRC" -o "$WORK/w-emul"
gcc -O2 -g "$SRC" -o "$WORK/w-sstep"
gcc -O2 -g -fno-pie -pg -mfentry -mnop-mcount -c "$SRC" -o "$WORK/w-nop5.o"
gcc -no-pie "$WORK/w-nop5.o" -o "$WORK/w-nop5"
first_insn() { objdump -d --no-show-raw-insn "$1" | awk 'f == 1 {sub(/^[ \t]*[0-9a-f]+:[ \t]*/, ""); print; f = 2} /<work>:/ {f = 1}'; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
loop_ns() { awk 'match($0, / ns=[0-9]+/) && !done {print substr($0, RSTART + 4, RLENGTH - 4); done = 1}'; }
now_ns() { date +%s%N; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }   # section, name, tool, value, note
log() { echo "bench: $*" >&2; }

# Per-hit cost: (median traced loop − median untraced loop) / n. Tools run round-robin, so load drift hits all.
# per_hit NAME VARIANT N FLOOR_MODE RTAP_SCRIPT BPFTRACE_SCRIPT [printf]
per_hit() {
    local name=$1 var=$2 n=$3 mode=$4 rs=$5 bs=$6 printf=${7:-}
    local w=$WORK/w-$var
    rs=${rs//@W@/$w}
    bs=${bs//@W@/$w}
    local rtap_ok=1 rtap_note=""
    if ! "$RTAP" -p3 -e "$rs" >/dev/null 2>"$WORK/err"; then
        rtap_ok=0
        rtap_note="pending: $(grep -m1 -o 'error: .*' "$WORK/err" || head -1 "$WORK/err")"
    fi
    local base=() fl=() rt=() rt64=() bt=()
    for _ in $(seq "$REPS"); do
        base+=("$("$w" "$n" | loop_ns)")
        fl+=("$("$FLOOR" run "$mode" "$w" work -- "$w" "$n" | loop_ns)")
        if [ $rtap_ok = 1 ]; then
            if [ -n "$printf" ]; then
                rt+=("$("$RTAP" -e "$rs" -c "$w $n" -o "$WORK/rtap.out" 2>"$WORK/rtap.err" | loop_ns)")
                local got
                got=$(grep -cE '^[0-9]+ [a-z]+$' "$WORK/rtap.out" || true)
                [ "$got" = "$n" ] || rtap_note="LOST: $got of $n lines"
            else
                rt+=("$("$RTAP" -e "$rs" -c "$w $n" 2>"$WORK/rtap.err" | loop_ns)")
            fi
            if [ "$name" = keyed ]; then
                # The two user-memory reads the script asks for, with no map at all.
                rt64+=("$("$RTAP" -e "${READS//@W@/$w}" -c "$w $n" 2>/dev/null | loop_ns)")
            fi
        fi
        if [ -n "$printf" ]; then
            bt+=("$(bpftrace -e "$bs" -c "$w $n" -o "$WORK/bt.out" 2>/dev/null | loop_ns)")
            local got
            got=$(grep -cE '^[0-9]+ [a-z]+$' "$WORK/bt.out" || true)
            [ "$got" = "$n" ] || row hit "$name/$var" bpftrace-lost "$got" "of $n"
        else
            bt+=("$(bpftrace -e "$bs" -c "$w $n" 2>/dev/null | loop_ns)")
        fi
    done
    local b f
    b=$(printf '%s\n' "${base[@]}" | median)
    f=$(printf '%s\n' "${fl[@]}" | median)
    hit() { printf '%s\n' "$@" | median | awk -v b="$b" -v n="$n" '{printf "%.0f", ($1 - b) / n}'; }
    row hit "$name/$var" floor "$(hit "${fl[@]}")" "floor $mode"
    if [ $rtap_ok = 1 ]; then
        row hit "$name/$var" rtap "$(hit "${rt[@]}")" "$rtap_note"
        [ ${#rt64[@]} = 0 ] || row hit "$name/$var" rtap-reads "$(hit "${rt64[@]}")" "reads only"
    else
        row hit "$name/$var" rtap nan "$rtap_note"
    fi
    row hit "$name/$var" bpftrace "$(hit "${bt[@]}")" ""
    log "$name/$var done (untraced loop $(awk -v b="$b" -v n="$n" 'BEGIN{printf "%.1f", b/n}') ns/call)"
}

P='probe process("@W@").function("work")'
READS="global c; $P { c += strlen(user_string(\$m->name)) }"
R='probe process("@W@").function("work").return'
per_hit count emul "$N" entry "global c; $P { c++ }" 'uprobe:@W@:work { @c = count(); }'
per_hit keyed emul "$N" entry "global counts; $P { counts[user_string(\$m->name)]++ }" \
    'uprobe:@W@:work { @[str(args->m->name)] = count(); }'
per_hit return emul "$N" return "global s; $R { s <<< \$return } probe end { printf(\"%d\\n\", @sum(s)) }" \
    'uretprobe:@W@:work { @s = sum(retval); }'
per_hit pair emul "$N" pair "global s; $R { s <<< \$return + @entry(\$i) } probe end { printf(\"%d\\n\", @sum(s)) }" \
    'uprobe:@W@:work { @t[tid] = arg1; } uretprobe:@W@:work { @s = sum(retval + @t[tid]); delete(@t[tid]); }'
per_hit printf emul "$N_PRINTF" entry "$P { printf(\"%d %s\\n\", \$i, user_string(\$m->name)) }" \
    'uprobe:@W@:work { printf("%d %s\n", arg1, str(args->m->name)); }' printf
per_hit count nop5 "$N" entry "global c; $P { c++ }" 'uprobe:@W@:work { @c = count(); }'
REPS=$(( REPS < 3 ? REPS : 3 )) per_hit count sstep "$N_SSTEP" entry "global c; $P { c++ }" 'uprobe:@W@:work { @c = count(); }'

# Startup: launch → the traced command's main() with 5 probes attached; and launch → exit.
W=$WORK/w-emul
RS="global c;"
BS=""
for f in work aux1 aux2 aux3 aux4; do
    RS="$RS probe process(\"$W\").function(\"$f\") { c++ }"
    BS="$BS uprobe:$W:$f { @c = count(); }"
done
startup() {
    local tool=$1 s=() e=()
    shift
    for _ in $(seq "$REPS"); do
        local t0 out t1
        t0=$(now_ns)
        out=$("$@" 2>/dev/null)
        t1=$(now_ns)
        s+=("$(grep -o 'main_at=[0-9]*' <<<"$out" | cut -d= -f2 | awk -v t0="$t0" '{printf "%.1f", ($1 - t0) / 1e6}')")
        e+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", (b - a) / 1e6}')")
    done
    row startup "5 probes, to command running (ms)" "$tool" "$(printf '%s\n' "${s[@]}" | median)" ""
    row startup "5 probes, launch to exit (ms)" "$tool" "$(printf '%s\n' "${e[@]}" | median)" ""
}
startup rtap "$RTAP" -e "$RS" -c "$W 1"
startup bpftrace bpftrace -e "$BS" -c "$W 1"
log "startup done"

# Attach + detach of ~1,000 probes on the large library (one run each; bpftrace on fewer).
PP=""
for p in 'sd_*' 'bus_*' 'strv_*'; do PP="$PP${PP:+, }process(\"$LIB\").function(\"$p\")"; done
SCRIPT="global c; probe $PP { c++ }"
# Identical programs share one link, so count the attach offsets, not the programs.
SITES=$("$RTAP" -p3 -e "$SCRIPT" | awk '/^  attach uprobe/ { n += gsub(/0x[0-9a-f]+/, "") } END { print n + 0 }')
t0=$(now_ns); "$RTAP" -p3 -e "$SCRIPT" >/dev/null; t1=$(now_ns)
row attach "compile only, $SITES sites (ms)" rtap "$(( (t1 - t0) / 1000000 ))" "rtap -p3"
t0=$(now_ns); "$RTAP" -e "$SCRIPT" -c /bin/true >/dev/null 2>&1 || log "rtap failed on $SITES probes"; t1=$(now_ns)
row attach "$SITES probes: launch, attach, detach, exit (ms)" rtap "$(( (t1 - t0) / 1000000 ))" "target < 1000"
t0=$(now_ns); "$RTAP" --uprobe-attach=perf -e "$SCRIPT" -c /bin/true >/dev/null 2>&1 || log "rtap failed on $SITES perf probes"; t1=$(now_ns)
row attach "$SITES probes, perf-event mode: launch, attach, exit (ms)" rtap "$(( (t1 - t0) / 1000000 ))" "event teardown continues in the background"
row attach "$SITES probes: attach + detach (ms)" floor \
    "$("$FLOOR" attach "$LIB" "$SITES" | awk '{split($2,a,"="); split($3,b,"="); printf "%.0f", a[2] + b[2]}')" "one uprobe_multi link"
BT_SYMS=$(nm -D --defined-only "$LIB" | awk -v max="$BT_PROBES" '$2 == "T" && $3 ~ /^sd_bus_/ && n++ < max {sub(/@.*/, "", $3); print $3}')
BT_NP=$(wc -l <<<"$BT_SYMS")
BT_SCRIPT=$(for s in $BT_SYMS; do printf 'uprobe:%s:%s,' "$LIB" "$s"; done)
t0=$(now_ns); bpftrace -e "${BT_SCRIPT%,} { @c = count(); }" -c /bin/true >/dev/null 2>&1 || log "bpftrace failed on $BT_NP probes"; t1=$(now_ns)
row attach "$BT_NP probes: launch, attach, detach, exit (ms)" bpftrace "$(( (t1 - t0) / 1000000 ))" "one perf event each"
log "attach done"

# `-L` (issue 4): rtap vs stap, time and peak RSS.
timed() { /usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1; }
listing() {
    local lib=$1 label=$2 r=() s=() rm=() sm=()
    local pp="process(\"$lib\").function(\"*\")"
    for _ in $(seq "$REPS"); do
        read -r t m < <(timed "$RTAP" -L "$pp")
        r+=("$t"); rm+=("$m")
    done
    for _ in $(seq $(( REPS < 3 ? REPS : 3 ))); do
        read -r t m < <(timed stap -L "$pp")
        s+=("$t"); sm+=("$m")
    done
    local nr ns
    nr=$("$RTAP" -L "$pp" | wc -l)
    ns=$(stap -L "$pp" 2>/dev/null | wc -l)
    row list "$label -L * (s)" rtap "$(printf '%s\n' "${r[@]}" | median)" "$nr lines"
    row list "$label -L * (s)" stap "$(printf '%s\n' "${s[@]}" | median)" "$ns lines"
    row list "$label -L * peak RSS (MB)" rtap "$(printf '%s\n' "${rm[@]}" | median | awk '{printf "%.0f", $1/1024}')" ""
    row list "$label -L * peak RSS (MB)" stap "$(printf '%s\n' "${sm[@]}" | median | awk '{printf "%.0f", $1/1024}')" ""
}
listing "$LIB" libsystemd
listing "$LIBC" "libc (debug via build-id)"
[ -z "$LIBTSAN" ] || listing "$LIBTSAN" libtsan
# /usr/bin/time has 10 ms steps: time the single function with the clock instead.
one=()
for _ in $(seq "$REPS"); do
    t0=$(now_ns); "$RTAP" -L "process(\"$LIB\").function(\"sd_bus_send\")" >/dev/null; t1=$(now_ns)
    one+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", (b - a) / 1e6}')")
done
row list "libsystemd -L sd_bus_send (ms)" rtap "$(printf '%s\n' "${one[@]}" | median)" "target < 30"
read -r t _ < <(timed stap -L "process(\"$LIB\").function(\"sd_bus_send\")")
row list "libsystemd -L sd_bus_send (ms)" stap "$(awk -v t="$t" 'BEGIN{print t * 1000}')" ""
log "listing done"

# The table.
python3 - "$RES" "$(first_insn "$WORK/w-emul")" "$(first_insn "$WORK/w-nop5")" "$(first_insn "$WORK/w-sstep")" \
    "$REPS" "$N" "$N_PRINTF" "$N_SSTEP" "$LOAD_START $(cut -d' ' -f1 /proc/loadavg) $(nproc)" >"$WORK/table.md" <<'EOF'
import sys, collections
res, e_insn, n_insn, s_insn, reps, n, np, ns, load = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(res)]
by = collections.OrderedDict()
for sec, name, tool, val, note in rows:
    by.setdefault((sec, name), {})[tool] = (val, note)
def num(v):
    try: return float(v)
    except ValueError: return float("nan")
targets = {"count": "≤1.05x", "keyed": "≤1.3x", "return": "≤1.1x", "pair": "≤1.1x", "printf": "≤2x"}
insn = {"emul": e_insn, "nop5": n_insn, "sstep": s_insn}
l0, l1, cpus = load.split()
print(f"Per hit (ns), median of {reps}; N={n} ({np} for printf, {ns} single-stepped); "
      f"load average {l0} → {l1} on {cpus} CPUs.\n")
print("| case | probed insn | floor | rtap | bpftrace | rtap/floor | bpftrace/floor | target | notes |")
print("|---|---|---|---|---|---|---|---|---|")
for (sec, name), t in by.items():
    if sec != "hit": continue
    case, var = name.split("/")
    f = num(t["floor"][0]); r = num(t.get("rtap", ("nan", ""))[0]); b = num(t["bpftrace"][0])
    notes = [t["floor"][1]] + [t[k][1] for k in ("rtap",) if k in t and t[k][1]]
    if "rtap-reads" in t:
        v = num(t["rtap-reads"][0]); notes.append(f"rtap reading `$m->name` and its string, no map: {v:.0f} ns = {v/f:.2f}x")
    if "bpftrace-lost" in t:
        notes.append(f"bpftrace lost: {t['bpftrace-lost'][0]} {t['bpftrace-lost'][1]}")
    rs = "pending" if r != r else f"{r:.0f}"
    rr = "–" if r != r else f"{r/f:.2f}x"
    print(f"| {case} | {var}: `{insn[var]}` | {f:.0f} | {rs} | {b:.0f} | {rr} | {b/f:.2f}x | {targets.get(case, '')} | {'; '.join(x for x in notes if x)} |")
for sec, title in (("startup", "Startup"), ("attach", "Attach + detach"), ("list", "Listing (`-L`)")):
    print(f"\n| {title} | tool | value | notes |\n|---|---|---|---|")
    for (s, name), t in by.items():
        if s != sec: continue
        for tool, (val, note) in t.items():
            print(f"| {name} | {tool} | {val} | {note} |")
EOF
cat "$WORK/table.md"
[ -z "$OUT_MD" ] || cp "$WORK/table.md" "$OUT_MD"
