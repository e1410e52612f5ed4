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
}
