//! The resolved program: every probe point expanded to concrete sites, every
//! target expression turned into an access plan for its site.

use crate::access::AccessPlan;
use rtap_lang::hir::{self, ExprId};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug)]
pub struct ResolvedProgram<'h> {
    pub hir: &'h hir::Program,
    /// One entry per (probe, concrete site).
    pub probes: Vec<ResolvedProbe>,
}

#[derive(Debug)]
pub struct ResolvedProbe {
    /// Index into `hir.probes`.
    pub probe: usize,
    /// Index into that probe's `points`.
    pub point: usize,
    pub site: Site,
    /// Plans for the probe body's target expressions (`ExprKind::Target`),
    /// valid at this site. `@defined` results are here too, as `defined`.
    pub targets: HashMap<ExprId, AccessPlan>,
    /// `@defined(e)` outcomes.
    pub defined: HashMap<ExprId, bool>,
    /// Pretty-printed target expressions (`$v$`, `$$vars` ...), which are strings.
    pub pretty: HashMap<ExprId, crate::access::PrettyPlan>,
    /// For a `.return` probe that reads values at entry (`@entry(e)`, or `$param`,
    /// which SystemTap reads at entry too): where they are read and which.
    pub entry: Option<EntrySite>,
}

/// The entry half of a `.return` probe: a uprobe at the function's `.function`
/// placement that saves values for the return to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySite {
    /// Where the saving program attaches (`retprobe` false). Plans of the
    /// expressions below are valid here, not at the return.
    pub site: UprobeSite,
    /// The expressions evaluated at entry, in record order: `@entry(e)` nodes and
    /// target expressions read at entry. The return reads their saved values.
    pub saved: Vec<ExprId>,
    /// The call frame address at the entry site, from CFI, as (DWARF register,
    /// offset): the stack pointer the return will see, which pairs each return with
    /// its own call even when calls in between never returned.
    pub cfa: Option<(u16, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    Uprobe(UprobeSite),
    Begin {
        seq: i64,
    },
    End {
        seq: i64,
    },
    Error {
        seq: i64,
    },
    Never,
    Timer {
        period_ns: u64,
        randomize_ns: u64,
        every_cpu: bool,
    },
    /// A process or thread lifecycle event, seen through a raw tracepoint.
    Lifecycle(LifecycleSite),
    /// `.begin` of processes already running when the session starts: no event will
    /// ever fire for them, so the handler runs once per such process, in user space.
    Running(RunningSite),
}

/// `process[("PATH"|PID)].begin` for the processes that exist when the session starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningSite {
    /// Only processes running this executable (canonical path).
    pub path: Option<PathBuf>,
    /// `process(PID)`: only this process.
    pub pid: Option<u32>,
    /// The probe point as SystemTap prints it.
    pub pp: String,
}

/// `process[("PATH"|PID)].begin/.end/.thread.begin/.thread.end` when it needs the
/// scheduler (`process("PATH").begin` is a uprobe at the entry point instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleSite {
    pub event: LifecycleEvent,
    /// Only processes running this executable: (canonical path, file offset of `e_entry`,
    /// where the runtime's companion uprobe records them).
    pub path: Option<(PathBuf, u64)>,
    /// `process(PID)`: only this process.
    pub pid: Option<u32>,
    /// The probe point as SystemTap prints it.
    pub pp: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// A successful `exec`, in the new image (`process.begin` without a path).
    Exec,
    /// A child of `fork`/`clone` returning to user space, in the child: a new
    /// process, or a new thread when `thread`.
    Fork { thread: bool },
    /// A thread exiting, in that thread: the thread-group leader for a process end.
    Exit { thread: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobeSite {
    /// Canonical absolute path of the file the uprobe belongs to.
    pub path: PathBuf,
    /// Link-time virtual address of the probed instruction.
    pub vaddr: u64,
    /// File offset of the probed instruction (what the kernel wants).
    pub offset: u64,
    pub retprobe: bool,
    /// DWARF name of the function (not the clone's ELF symbol).
    pub function: String,
    /// The probe point as SystemTap prints it, e.g.
    /// `process("/abs/app").function("send_msg@app.c:12").return`.
    pub pp: String,
    /// File offset of an SDT semaphore the kernel counts attached probes in.
    pub semaphore: Option<u64>,
    /// `process(PID)`: fires only in this process.
    pub pid: Option<u32>,
}
