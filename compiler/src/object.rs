//! The compiler's output: plain data the runtime loads. Printable, snapshot-testable,
//! and free of kernel handles.

use crate::bpf::insn::Insn;
use rtap_lang::printf::Format;
use std::path::PathBuf;

/// Index into [`BpfObject::maps`]. In instructions, a map reference is an
/// `ld_imm64` with `src = BPF_PSEUDO_MAP_FD` and `imm = MapId`; the runtime
/// replaces the id with the map's fd before loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapId(pub u32);

/// Index into [`BpfObject::events`]; the first `u32` of every ring-buffer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventId(pub u32);

#[derive(Clone, Debug)]
pub struct BpfObject {
    pub programs: Vec<ProgramSpec>,
    pub maps: Vec<MapSpec>,
    pub events: Vec<EventSpec>,
    /// The ring buffer every record goes through.
    pub ringbuf: MapId,
    /// Per-CPU array with one `u64` slot per [`Counter`], summed by the runtime.
    pub counters: MapId,
    /// Array of `u64` slots the runtime fills before attaching: see [`ConfigSlot`].
    pub config: MapId,
    /// One per script global, in declaration order (`GlobalId` order).
    pub globals: Vec<GlobalSpec>,
    /// begin, end, error and timer handlers, interpreted by the runtime.
    pub host: crate::host::HostProgram,
    /// Probe points named by printf records (the `u32` after the event id).
    pub probe_points: Vec<String>,
}

/// Where a script global lives and how its bytes read.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalSpec {
    pub name: String,
    pub map: MapId,
    /// Packed key fields of an array (offsets into the key); empty for a
    /// scalar, whose map is an array with the single key `0u32`.
    pub keys: Vec<Field>,
    pub value: GlobalValue,
    /// A literal the runtime writes into a scalar before `begin` runs.
    pub init: Option<rtap_lang::hir::Literal>,
    /// Written but never read: printed at exit.
    pub auto_print: bool,
    /// For statistics printed with `@hist_*`: the buckets after the five aggregates.
    pub hist: Option<HistLayout>,
    /// An array keyed by strings: the map of elements whose strings all fit in
    /// [`SHORT_KEY`] bytes (see `bpf::short_keys`).
    pub short: Option<ShortKeys>,
}

/// Strings of at most `SHORT_KEY - 1` bytes make short keys.
pub const SHORT_KEY: u32 = 64;

/// The second map of an array with short keys, and its key layout: the same fields
/// with every string cut to [`SHORT_KEY`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortKeys {
    pub map: MapId,
    pub keys: Vec<Field>,
}

impl GlobalSpec {
    /// The map an element lives in and its key there, from its key packed in the
    /// full layout (strings zero-padded, as the probes pack them).
    pub fn place(&self, key: &[u8]) -> (MapId, Vec<u8>) {
        if let Some(short) = &self.short {
            let fits = self.keys.iter().all(|f| match f.kind {
                FieldKind::Str { .. } => key.get((f.offset + SHORT_KEY - 1) as usize) == Some(&0),
                FieldKind::Long => true,
            });
            if fits {
                let mut out = Vec::new();
                for (f, s) in self.keys.iter().zip(&short.keys) {
                    let at = f.offset as usize;
                    out.extend_from_slice(&key[at..at + s.size() as usize]);
                }
                return (short.map, out);
            }
        }
        (self.map, key.to_vec())
    }

    /// Every map holding elements, with the layout of its keys.
    pub fn parts(&self) -> Vec<(MapId, &[Field])> {
        let mut out = vec![(self.map, &self.keys[..])];
        if let Some(s) = &self.short {
            out.push((s.map, &s.keys[..]));
        }
        out
    }
}

/// The value bytes of a global's map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalValue {
    /// 8-byte native-endian integer.
    Long,
    /// NUL-terminated string in `cap` bytes.
    Str { cap: u32 },
    /// Per-CPU `i64 count, sum, min, max, sum of squares` (40 bytes), then one
    /// `i64` per histogram bucket; min/max are meaningful only when count is
    /// non-zero. The runtime merges CPUs.
    Stats,
}

/// The histogram kept with a statistic, from its `@hist_log`/`@hist_linear` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistLayout {
    /// SystemTap's 128 power-of-two buckets; bucket 64 holds 0.
    Log,
    /// `(hi - lo) / width` buckets plus an underflow and an overflow bucket.
    Linear { lo: i64, hi: i64, width: i64 },
}

impl HistLayout {
    pub const LOG_BUCKETS: usize = 128;
    pub const LOG_ZERO: usize = 64;

    pub fn buckets(self) -> usize {
        match self {
            HistLayout::Log => Self::LOG_BUCKETS,
            HistLayout::Linear { lo, hi, width } => ((hi - lo) / width.max(1) + 3) as usize,
        }
    }

    /// The bucket a sample lands in. Log: 64 for 0, 64 + bit length for positive
    /// values, mirrored below 64 for negative ones. Linear: 0 underflows, the last
    /// bucket overflows.
    pub fn bucket(self, v: i64) -> usize {
        match self {
            HistLayout::Log => {
                let bits = 64 - v.unsigned_abs().leading_zeros() as usize;
                if v < 0 {
                    Self::LOG_ZERO - bits
                } else {
                    Self::LOG_ZERO + bits
                }
            }
            HistLayout::Linear { lo, width, .. } => {
                if v < lo {
                    return 0;
                }
                let i = (v - lo) / width.max(1) + 1;
                (i as usize).min(self.buckets() - 1)
            }
        }
    }
}

/// Slots of the config map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ConfigSlot {
    /// `target()`: the pid of `-c`/`-x`, or 0.
    TargetPid = 0,
    /// `CLOCK_REALTIME − CLOCK_BOOTTIME` in ns, measured by the runtime at start:
    /// `gettimeofday_*()` is `bpf_ktime_get_boot_ns()` plus this.
    RealtimeOffsetNs = 1,
    /// The local time zone's offset from UTC in seconds, for `tz_ctime`.
    TzOffsetSecs = 2,
    /// The local time zone's abbreviation, up to 8 bytes, NUL-padded.
    TzName = 3,
}

pub const CONFIG_SLOTS: u32 = 4;

/// Slots of the per-CPU counters map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Counter {
    /// Records that could not be reserved in the ring buffer.
    LostRecords = 0,
    /// Runtime errors raised in BPF (each also sends an error record when it can).
    Errors = 1,
    /// Probe hits skipped (e.g. MAXACTION exceeded).
    Skipped = 2,
}

pub const COUNTER_SLOTS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// Uprobe/uretprobe programs (`BPF_PROG_TYPE_KPROBE`, attach type uprobe_multi); context is `pt_regs`.
    Uprobe,
    /// Timers (`BPF_PROG_TYPE_PERF_EVENT` on a software clock event).
    PerfEvent,
    /// Scheduler and syscall events (`BPF_PROG_TYPE_RAW_TRACEPOINT`); context is
    /// `struct bpf_raw_tracepoint_args` (the tracepoint's arguments as `u64`s).
    RawTracepoint,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// One uprobe_multi link: every offset in one file.
    Uprobe {
        path: PathBuf,
        /// File offsets (not virtual addresses).
        offsets: Vec<u64>,
        retprobe: bool,
        /// SDT semaphores: empty, or one file offset (0 for none) per offset.
        ref_ctr_offsets: Vec<u64>,
        /// `process(PID)`: only this process, filtered by the kernel (the `-c`/`-x`
        /// target's tree is filtered by the programs, see `bpf/tree.rs`).
        pid: Option<u32>,
    },
    /// A raw tracepoint by name (`sched_process_exit`, `sys_exit`, ...).
    RawTracepoint {
        name: String,
        /// The program only handles processes whose tgid is a key of this hash map;
        /// the runtime adds those already running this file before attaching.
        tgids: Option<(MapId, PathBuf)>,
        /// Needed only with a `-c`/`-x` target: attaching a tracepoint waits for an
        /// RCU grace period (~20 ms), so the runtime skips it otherwise.
        target_only: bool,
    },
    Timer {
        period_ns: u64,
        randomize_ns: u64,
        every_cpu: bool,
    },
}

/// Where an instruction came from, for `-p3` and verifier errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceNote {
    /// First instruction of the group.
    pub insn: u32,
    /// `file:line:col`.
    pub location: String,
    /// The script text of that line, trimmed.
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct ProgramSpec {
    pub name: String,
    pub kind: ProgramKind,
    /// The probe point as SystemTap prints it (`pp()`).
    pub probe_point: String,
    pub attach: Attach,
    pub insns: Vec<Insn>,
    /// Sorted by `insn`.
    pub notes: Vec<SourceNote>,
    /// First instructions of the callback subprograms (`bpf_for_each_map_elem`'s),
    /// sorted. When there are any, the program is loaded with the BTF of
    /// `bpf::btf::func_btf` and the records of `bpf::btf::func_info`, which the
    /// verifier requires of callbacks.
    pub subprograms: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Hash,
    Array,
    PercpuHash,
    PercpuArray,
    RingBuf,
    /// Task-local storage: key is a task (an `int` fd from user space), one value per thread.
    TaskStorage,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Contents the runtime writes into an array map right after creating it:
    /// `value_size` bytes per entry from key 0 (read-only tables such as errno names).
    pub init: Vec<u8>,
}

/// One field of a record, at a byte offset from the record start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// 8-byte native-endian integer.
    Long,
    /// NUL-terminated string in a slot of `cap` bytes.
    Str { cap: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub offset: u32,
    pub kind: FieldKind,
}

impl Field {
    /// Bytes the field takes.
    pub fn size(&self) -> u32 {
        match self.kind {
            FieldKind::Long => 8,
            FieldKind::Str { cap } => cap,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Format the fields with a printf format.
    Printf(Format),
    /// A runtime error raised in BPF: message and script location. The record
    /// is 16 bytes; when `fields` holds a `Long` (the faulting address), the
    /// text `{addr}` in `message` stands for it, printed as `0x…` hex.
    Error { message: String, location: String },
    /// `exit()` was called.
    Exit,
    /// `warn(msg)`: the `Str` field goes to stderr as `WARNING: msg`.
    Warn,
    /// `abort()`: stop at once; `end` probes do not run.
    Abort,
    /// `print(@hist_*(s))` in a probe: the runtime reads global `global` at the packed
    /// key that follows the header (none for a scalar) and prints its histogram.
    PrintHist {
        global: u32,
        newline: bool,
        location: String,
    },
    /// A printf record (same header and layout as [`EventKind::Printf`]) some of whose
    /// `%s` arguments only user space can turn into text: stacks and symbols of the
    /// probed process. `symbolic` has one entry per field.
    SymbolicPrintf {
        format: Format,
        symbolic: Vec<Option<Symbolic>>,
        /// `MAXSTRINGLEN`: the texts that stand for string values are cut to it.
        max_len: u32,
    },
}

/// What a field of a [`EventKind::SymbolicPrintf`] record stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbolic {
    /// `print_ubacktrace()`/`sprint_ubacktrace()`: a [`USTACK_BYTES`] stack area.
    Stack(StackStyle),
    /// `print_ustack(s)`/`sprint_ustack(s)`: a `Str` field with `ubacktrace()` text,
    /// then an [`ANCHOR_BYTES`] anchor.
    HexStack(StackStyle),
    /// `usymname`/`usymdata`/`umodname` of the address in a `Long` field, then an
    /// [`ANCHOR_BYTES`] anchor.
    Addr(AddrStyle),
}

/// How a stack is printed, after SystemTap's `_STP_SYM_FULL` and `_STP_SYM_SIMPLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackStyle {
    /// ` 0xADDR : sym+0xoff/0xsize [/path/to/module]` and a newline per frame.
    Full,
    /// `sym+0xoff [module]` per frame, newline-separated, cut to `MAXSTRINGLEN`.
    Simple,
}

/// Which part of a symbolized address a function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrStyle {
    /// `usymname`: the symbol, or the address in hex.
    Name,
    /// `usymdata`: `sym+0xoff/0xsize [/path/to/module]`.
    Data,
    /// `umodname`: the module's path; an error when the address is in none.
    Module,
}

/// SystemTap's `MAXBACKTRACE`: frames a user stack keeps.
pub const MAX_BACKTRACE: u32 = 20;

/// `sizeof(struct bpf_stack_build_id)`: `s32 status`, 20 bytes of build id, then
/// the file offset (status 1) or the address (status 2) as a `u64`.
pub const BUILD_ID_FRAME: u32 = 32;

/// A user stack area in a record, all native-endian: the `u64` number of addresses,
/// [`MAX_BACKTRACE`] `u64` addresses (`bpf_get_stack` with `BPF_F_USER_STACK`), the
/// `u64` number of build-id frames, [`MAX_BACKTRACE`] build-id frames (the same
/// stack with `BPF_F_USER_BUILD_ID`, which names the file even after the process
/// exits), then the `u64` at the stack pointer (0 when unknown): at a function's
/// first instruction it is the return address a frame-pointer walk misses.
pub const USTACK_BYTES: u32 = ustack_bytes(MAX_BACKTRACE);

/// The size of a stack area of `frames` frames laid out as [`USTACK_BYTES`] says.
pub const fn ustack_bytes(frames: u32) -> u32 {
    8 + 8 * frames + 8 + BUILD_ID_FRAME * frames + 8
}

/// The stack captured beside an address or a hex stack: its build-id frames tell
/// where each module on the stack was loaded, so addresses in them can be
/// symbolized after the process exits.
pub const ANCHOR_BYTES: u32 = USTACK_BYTES;

/// Byte layout of one record kind. Every record starts with an 8-byte header:
/// the `u32` event id, then 4 reserved bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub kind: EventKind,
    pub size: u32,
    pub fields: Vec<Field>,
}

pub const RECORD_HEADER: u32 = 8;

/// Kernel functions programs may call, by index (see `Insn::call_kfunc`). A program that
/// calls one is loaded sleepable: `bpf_copy_from_user_str` may fault pages in.
pub const KFUNCS: &[&str] = &["bpf_copy_from_user_str"];

/// printf records carry more context, for `--json`: after the event id, the `u32`
/// index into [`BpfObject::probe_points`], then `bpf_get_current_pid_tgid()` and
/// `bpf_ktime_get_boot_ns()` as `u64`s; fields start after these 24 bytes.
pub const PRINTF_HEADER: u32 = 24;

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[string, long]` array: 63-byte strings go to the short map, 64-byte ones stay.
    #[test]
    fn short_keys_split_at_64_bytes() {
        let cap = 512;
        let long = |offset| Field {
            offset,
            kind: FieldKind::Long,
        };
        let spec = GlobalSpec {
            name: "a".into(),
            map: MapId(4),
            keys: vec![
                Field {
                    offset: 0,
                    kind: FieldKind::Str { cap },
                },
                long(cap),
            ],
            value: GlobalValue::Long,
            init: None,
            auto_print: false,
            hist: None,
            short: Some(ShortKeys {
                map: MapId(5),
                keys: vec![
                    Field {
                        offset: 0,
                        kind: FieldKind::Str { cap: SHORT_KEY },
                    },
                    long(SHORT_KEY),
                ],
            }),
        };
        let packed = |len: usize| {
            let mut k = vec![0u8; cap as usize + 8];
            k[..len].fill(b'x');
            k[cap as usize..].copy_from_slice(&7i64.to_ne_bytes());
            k
        };
        let (map, key) = spec.place(&packed(63));
        assert_eq!(map, MapId(5));
        assert_eq!(key.len(), SHORT_KEY as usize + 8);
        assert_eq!(&key[..63], &[b'x'; 63][..]);
        assert_eq!(key[63], 0);
        assert_eq!(&key[64..], &7i64.to_ne_bytes());
        let (map, key) = spec.place(&packed(64));
        assert_eq!(map, MapId(4));
        assert_eq!(key, packed(64));
        assert_eq!(spec.parts().len(), 2);
    }
}
