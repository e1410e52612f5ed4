//! Code generation entry point: one program per concrete probe site, the shared maps, record layouts and error paths.

use super::emit::{frame_off, Arena, Emitter, Label};
use super::entry::EntryLayout;
use super::insn::*;
use crate::object::*;
use crate::resolved::{ResolvedProbe, ResolvedProgram, Site};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, ExprId, FuncId, Type};
use rtap_lang::span::{SourceMap, Span};
use std::collections::HashMap;

pub type R<T> = Result<T, Diagnostic>;

/// Limits that SystemTap lets users change with `-D`.
#[derive(Clone, Debug)]
pub struct CodegenOptions {
    /// `MAXSTRINGLEN`: bytes of every string value, NUL included.
    pub max_string_len: u32,
    /// `MAXMAPENTRIES`: entries of an array declared without a size.
    pub max_map_entries: u32,
    /// `MAXACTION`: loop iterations per probe hit (×10 in begin/end/error).
    pub max_action: u32,
    /// Kernel structure offsets for `ppid()` and friends; `None` reads them from the
    /// running kernel's BTF when a script needs them.
    pub task_layout: Option<super::kbtf::TaskLayout>,
}

impl Default for CodegenOptions {
    fn default() -> Self {
        CodegenOptions {
            max_string_len: 512,
            max_map_entries: 2048,
            max_action: 1000,
            task_layout: None,
        }
    }
}

/// Ring buffer size: large enough for bursts of full-size string records.
pub const RINGBUF_BYTES: u32 = 4 << 20;
/// The BPF stack limit.
pub const MAX_STACK: u32 = 512;
/// Per-CPU map values are limited by the per-CPU allocator unit.
pub const MAX_SCRATCH: u32 = 32 << 10;
/// Size of every error record: header plus the faulting address.
pub const ERROR_RECORD: u32 = 16;

/// Compiles the resolved program into programs, maps and record layouts.
pub fn codegen(
    p: &ResolvedProgram,
    sources: &SourceMap,
    opts: &CodegenOptions,
) -> Result<BpfObject, Vec<Diagnostic>> {
    if opts.max_string_len < 16
        || opts.max_string_len > 4096
        || !opts.max_string_len.is_multiple_of(8)
    {
        return Err(vec![Diagnostic::bare(format!(
            "`MAXSTRINGLEN` must be a multiple of 8 between 16 and 4096, not {}",
            opts.max_string_len
        ))]);
    }
    let mut sh = Shared::new(p.hir, sources, opts);
    let mut diags = sh.declare_globals(&super::short_keys::walked_in_bpf(p));
    let mut programs = Vec::new();
    let mut scratch_max = 8;
    for (i, rp) in p.probes.iter().enumerate() {
        // begin, end, error and one-CPU timers are interpreted in user space.
        if crate::host::runs_on_host(&rp.site) {
            continue;
        }
        let Some((kind, attach)) = program_kind(&rp.site) else {
            continue;
        };
        let same_probe = p.probes[..i].iter().filter(|o| o.probe == rp.probe).count();
        let name = format!("probe_{}_{}", rp.probe, same_probe);
        let probe = &p.hir.probes[rp.probe];
        let pp = match &rp.site {
            Site::Uprobe(u) => u.pp.clone(),
            _ => probe.points[rp.point].text.clone(),
        };
        // A `.return` probe reading values at entry gets a record layout, and an entry program.
        let layout = match &rp.entry {
            Some(en) => match sh.entry_layout(probe, en) {
                Ok(l) => Some(l),
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
            None => None,
        };
        let mut g = Gen::new(&mut sh, rp, kind, pp.clone());
        match g.probe_body(probe, layout.as_ref()) {
            Ok(body) => {
                scratch_max = scratch_max.max(body.scratch);
                programs.push(ProgramSpec {
                    name: name.clone(),
                    kind,
                    probe_point: pp.clone(),
                    attach,
                    insns: body.insns,
                    notes: body.notes,
                    subprograms: body.subprograms,
                });
            }
            Err(mut d) => diags.append(&mut d),
        }
        super::lifecycle::companions(&mut sh, rp, probe.span, &mut programs);
        // After its return program, so the uretprobe is attached first: a return
        // without a saved entry is skipped, an entry is never left unconsumed.
        if let Some(l) = &layout {
            match super::entry::entry_program(&mut sh, rp, probe, l, &name, pp) {
                Ok((spec, scratch)) => {
                    scratch_max = scratch_max.max(scratch);
                    programs.push(spec);
                }
                Err(mut d) => diags.append(&mut d),
            }
        }
    }
    // The scratch value keeps one string of slack so appends at a variable offset stay in bounds.
    let scratch_size = scratch_max + opts.max_string_len;
    if scratch_size > MAX_SCRATCH {
        diags.push(Diagnostic::bare(format!(
            "string temporaries need {scratch_size} bytes of scratch space, more than {MAX_SCRATCH}"
        )));
    }
    sh.maps[sh.scratch.0 as usize].value_size = scratch_size;
    let mut seen = Vec::new();
    diags.retain(|d| {
        let new = !seen.contains(d);
        if new {
            seen.push(d.clone());
        }
        new
    });
    let host = match crate::host::lower(p, sources, opts.max_string_len) {
        Ok(h) => h,
        Err(mut d) => {
            diags.append(&mut d);
            Default::default()
        }
    };
    if diags.iter().any(|d| d.is_error()) {
        return Err(diags);
    }
    // The program that keeps the target's process tree, if a program reads it.
    super::tree::companions(&mut sh, &mut programs);
    let programs = merge_identical(programs);
    Ok(BpfObject {
        host,
        probe_points: sh.probe_points,
        programs,
        maps: sh.maps,
        events: sh.events,
        ringbuf: sh.ringbuf,
        counters: sh.counters,
        config: sh.config,
        globals: sh.globals,
    })
}

/// Programs with the same code on the same file become one program with every
/// offset: one uprobe_multi link instead of one per site, so a wildcard attaches and
/// detaches in one step. The first of each group keeps its place, which keeps a
/// `.return` program ahead of its entry program.
fn merge_identical(programs: Vec<ProgramSpec>) -> Vec<ProgramSpec> {
    let mut out: Vec<ProgramSpec> = Vec::with_capacity(programs.len());
    for p in programs {
        let same = out.iter_mut().find(|q| {
            q.kind == p.kind
                && q.insns == p.insns
                && match (&q.attach, &p.attach) {
                    (
                        Attach::Uprobe {
                            path: a,
                            retprobe: ra,
                            pid: pa,
                            ..
                        },
                        Attach::Uprobe {
                            path: b,
                            retprobe: rb,
                            pid: pb,
                            ..
                        },
                    ) => a == b && ra == rb && pa == pb,
                    _ => false,
                }
        });
        match (same, p.attach) {
            (
                Some(q),
                Attach::Uprobe {
                    offsets,
                    ref_ctr_offsets,
                    ..
                },
            ) => {
                if let Attach::Uprobe {
                    offsets: qo,
                    ref_ctr_offsets: qr,
                    ..
                } = &mut q.attach
                {
                    // Semaphores are per offset; pad with "none" when only one side has them.
                    if !qr.is_empty() || !ref_ctr_offsets.is_empty() {
                        qr.resize(qo.len(), 0);
                        let mut r = ref_ctr_offsets;
                        r.resize(offsets.len(), 0);
                        qr.extend(r);
                    }
                    qo.extend(offsets);
                }
            }
            (_, attach) => out.push(ProgramSpec { attach, ..p }),
        }
    }
    out
}

fn program_kind(site: &Site) -> Option<(ProgramKind, Attach)> {
    Some(match site {
        Site::Uprobe(u) => (
            ProgramKind::Uprobe,
            Attach::Uprobe {
                path: u.path.clone(),
                offsets: vec![u.offset],
                retprobe: u.retprobe,
                ref_ctr_offsets: u.semaphore.into_iter().collect(),
                pid: u.pid,
            },
        ),
        Site::Lifecycle(l) => super::lifecycle::program_kind(l),
        Site::Timer {
            period_ns,
            randomize_ns,
            every_cpu,
        } => (
            ProgramKind::PerfEvent,
            Attach::Timer {
                period_ns: *period_ns,
                randomize_ns: *randomize_ns,
                every_cpu: *every_cpu,
            },
        ),
        Site::Never
        | Site::Begin { .. }
        | Site::End { .. }
        | Site::Error { .. }
        | Site::Running(_) => return None,
    })
}

/// State shared by every program of one object.
pub struct Shared<'a> {
    pub hir: &'a hir::Program,
    pub sources: &'a SourceMap,
    pub opts: &'a CodegenOptions,
    pub maps: Vec<MapSpec>,
    pub events: Vec<EventSpec>,
    pub globals: Vec<GlobalSpec>,
    pub ringbuf: MapId,
    pub counters: MapId,
    pub config: MapId,
    pub scratch: MapId,
    /// `.return` sites that save values at entry, each with its own storage map.
    pub entry_sites: u32,
    /// The first probe that reads the target's process tree (see `tree.rs`).
    pub tree_span: Option<Span>,
    /// Probe points that printf records refer to by index.
    pub probe_points: Vec<String>,
    /// `foreach` snapshot maps by (array, nesting depth): see `foreach.rs`.
    pub snapshots: HashMap<(u32, u32), MapId>,
    /// Insertion-order maps of wrapping (`%`) arrays, by global.
    pub wrap: HashMap<u32, super::wrap::WrapMaps>,
}

impl<'a> Shared<'a> {
    fn new(hir: &'a hir::Program, sources: &'a SourceMap, opts: &'a CodegenOptions) -> Self {
        let mut sh = Shared {
            hir,
            sources,
            opts,
            maps: Vec::new(),
            events: Vec::new(),
            globals: Vec::new(),
            ringbuf: MapId(0),
            counters: MapId(0),
            config: MapId(0),
            scratch: MapId(0),
            entry_sites: 0,
            tree_span: None,
            probe_points: Vec::new(),
            snapshots: HashMap::new(),
            wrap: HashMap::new(),
        };
        sh.ringbuf = sh.add_map("ringbuf", MapKind::RingBuf, 0, 0, RINGBUF_BYTES);
        sh.counters = sh.add_map("counters", MapKind::PercpuArray, 4, 8, COUNTER_SLOTS);
        sh.config = sh.add_map("config", MapKind::Array, 4, 8, CONFIG_SLOTS);
        // Sized once every program is generated.
        sh.scratch = sh.add_map("scratch", MapKind::PercpuArray, 4, 8, 1);
        sh
    }

    pub fn add_map(&mut self, name: &str, kind: MapKind, key: u32, value: u32, n: u32) -> MapId {
        self.maps.push(MapSpec {
            name: name.to_string(),
            kind,
            key_size: key,
            value_size: value,
            max_entries: n,
            init: Vec::new(),
        });
        MapId(self.maps.len() as u32 - 1)
    }

    /// Registers a record layout, sharing identical ones.
    pub fn event(&mut self, spec: EventSpec) -> EventId {
        if let Some(i) = self.events.iter().position(|e| *e == spec) {
            return EventId(i as u32);
        }
        self.events.push(spec);
        EventId(self.events.len() as u32 - 1)
    }

    pub fn location(&self, span: Span) -> String {
        self.sources.location(span).to_string()
    }
}

/// Where a local variable lives.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// r10-relative.
    Long(i16),
    /// Offset in the scratch value (r7-relative).
    Str(i16),
}

/// A string buffer: `cap` bytes at `base + off`.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    pub base: Reg,
    pub off: i16,
    pub cap: u32,
}

/// Where an inlined function's `return` puts its value.
#[derive(Clone, Copy, Debug)]
pub enum RetDest {
    Long(i16),
    Str(Buf),
    None,
}

pub struct FuncCtx {
    pub ret: RetDest,
    pub end: Label,
}

/// A generated program body.
pub struct Body {
    pub insns: Vec<Insn>,
    pub notes: Vec<SourceNote>,
    /// Bytes of the scratch value it uses.
    pub scratch: u32,
    /// First instructions of its callbacks.
    pub subprograms: Vec<u32>,
}

/// Generator for one program. Register conventions: r6 = context, r7 = scratch
/// value, r8 = ring-buffer record while a printf fills it, r9 = action count.
/// Before jumping to the error block, r9 = error event id and r8 = address.
pub struct Gen<'a, 'b> {
    pub sh: &'b mut Shared<'a>,
    pub e: Emitter,
    pub frame: Arena,
    pub scratch: Arena,
    pub probe: &'a ResolvedProbe,
    pub kind: ProgramKind,
    pub pp: String,
    pub locals: Vec<Slot>,
    pub loops: Vec<(Label, Label)>,
    pub func: Option<FuncCtx>,
    pub inlining: Vec<FuncId>,
    pub exit_label: Label,
    pub err_label: Label,
    /// Where errors go inside `try`: the catch label and the message variable.
    pub catch: Option<(Label, Option<Slot>)>,
    pub max_action: u32,
    /// Link-time address of the probed instruction (the load bias is measured against it).
    pub site_vaddr: u64,
    /// In a `.return` program: where each value saved at entry sits in scratch.
    pub saved: HashMap<ExprId, super::entry::Saved>,
    /// Callback subprograms, emitted after the epilogue.
    pub callbacks: Vec<(super::each::Callback, Label, Span)>,
    /// `foreach` statements around the code being generated.
    pub foreach_depth: u32,
}

/// SystemTap's message; this error is not caught by `try`.
pub const MAXACTION_EXCEEDED: &str = "MAXACTION exceeded";

/// r10-relative slot for map keys (a `u32`).
pub const KEY_SLOT: i16 = -8;

impl<'a, 'b> Gen<'a, 'b> {
    pub(super) fn new(
        sh: &'b mut Shared<'a>,
        probe: &'a ResolvedProbe,
        kind: ProgramKind,
        pp: String,
    ) -> Self {
        let mut e = Emitter::default();
        let exit_label = e.label();
        let err_label = e.label();
        let max_action = sh.opts.max_action;
        Gen {
            sh,
            e,
            frame: Arena::new(8),
            scratch: Arena::new(0),
            probe,
            kind,
            pp,
            locals: Vec::new(),
            loops: Vec::new(),
            func: None,
            inlining: Vec::new(),
            exit_label,
            err_label,
            catch: None,
            max_action: max_action.min(i32::MAX as u32),
            site_vaddr: match &probe.site {
                Site::Uprobe(u) => u.vaddr,
                _ => 0,
            },
            saved: HashMap::new(),
            callbacks: Vec::new(),
            foreach_depth: 0,
        }
    }

    pub fn cap(&self) -> u32 {
        self.sh.opts.max_string_len
    }

    pub fn hir(&self) -> &'a hir::Program {
        self.sh.hir
    }

    /// Context in r6, the action count in r9, the scratch value in r7.
    pub fn program_start(&mut self, span: Span) {
        self.e.note(self.sh.sources, span);
        self.e.emit(Insn::mov64_reg(R6, R1));
        self.lookup_u32(self.sh.scratch, 0);
        let exit = self.exit_label;
        self.e.jmp_imm(Cond::Eq, R0, 0, exit);
        self.e.emit(Insn::mov64_reg(R7, R0));
        // The count starts at 0 read back from memory: a value the verifier does not
        // know, so it checks each loop body once instead of once per iteration.
        self.e.emit(Insn::st_mem(Size::DW, R7, 0, 0));
        self.e.emit(Insn::ldx_mem(Size::DW, R9, R7, 0));
    }

    fn probe_body(
        &mut self,
        probe: &'a hir::Probe,
        entry: Option<&EntryLayout>,
    ) -> Result<Body, Vec<Diagnostic>> {
        self.program_start(probe.span);
        // A return program with saved values checks the tree only when its thread has
        // no storage: the entry program made storage for members alone.
        if entry.is_none() {
            self.tree_filter();
        }
        self.lifecycle_filter();
        if let Some(l) = entry {
            // Before the condition: every return consumes its entry record.
            self.consume_entry(l);
        }
        self.locals = self.alloc_locals(&probe.locals);
        let mut diags = Vec::new();
        // `probe PP if (cond)`: the handler runs only while the condition on globals holds.
        if let Some(cond) = &probe.points[self.probe.point].condition {
            let exit = self.exit_label;
            if let Err(d) = self.branch(cond, exit, false) {
                diags.push(d);
            }
        }
        for s in &probe.body.stmts {
            if let Err(d) = self.stmt(s) {
                diags.push(d);
            }
        }
        self.program_end(probe.span, diags)
    }

    /// The epilogue, the stack check, and jump resolution.
    pub fn program_end(
        &mut self,
        span: Span,
        mut diags: Vec<Diagnostic>,
    ) -> Result<Body, Vec<Diagnostic>> {
        self.epilogue();
        self.emit_callbacks();
        // The verifier counts a callback's frame, rounded to 32 bytes, on top of the caller's.
        let stack = if self.callbacks.is_empty() {
            self.frame.max
        } else {
            self.frame.max.next_multiple_of(32) + super::each::CALLBACK_STACK
        };
        if stack > MAX_STACK {
            diags.push(Diagnostic::error(
                format!("probe handler needs {stack} bytes of stack, more than {MAX_STACK}"),
                span,
            ));
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let e = std::mem::take(&mut self.e);
        let subprograms = e.subprograms();
        let (insns, notes) = e.finish().map_err(|m| vec![Diagnostic::error(m, span)])?;
        Ok(Body {
            insns,
            notes,
            scratch: self.scratch.max,
            subprograms,
        })
    }

    /// Allocates and zeroes the given locals (SystemTap locals start as 0 or "").
    pub fn alloc_locals(&mut self, locals: &[hir::Local]) -> Vec<Slot> {
        let cap = self.cap();
        locals
            .iter()
            .map(|l| match l.ty {
                Type::String => {
                    let off = self.scratch.alloc(cap) as i16;
                    self.e.emit(Insn::st_mem(Size::B, R7, off, 0));
                    Slot::Str(off)
                }
                _ => {
                    let off = frame_off(self.frame.alloc(8), 8);
                    self.e.emit(Insn::st_mem(Size::DW, R10, off, 0));
                    Slot::Long(off)
                }
            })
            .collect()
    }

    /// An 8-byte r10-relative temporary; release with `frame.release(mark)`.
    pub fn temp(&mut self) -> i16 {
        frame_off(self.frame.alloc(8), 8)
    }

    /// A fresh string buffer in the scratch value.
    pub fn scratch_buf(&mut self) -> Buf {
        let cap = self.cap();
        Buf {
            base: R7,
            off: self.scratch.alloc(cap) as i16,
            cap,
        }
    }

    /// `reg = imm`, in one or two slots.
    pub fn ld_imm(&mut self, reg: Reg, v: i64) {
        match i32::try_from(v) {
            Ok(small) => self.e.emit(Insn::mov64_imm(reg, small)),
            Err(_) => self.e.emit2(Insn::ld_imm64(reg, v)),
        }
    }

    /// `reg = base + off`.
    pub fn lea(&mut self, reg: Reg, base: Reg, off: i16) {
        self.e.emit(Insn::mov64_reg(reg, base));
        if off != 0 {
            self.e.emit(Insn::add64_imm(reg, off as i32));
        }
    }

    /// r0 = `bpf_map_lookup_elem(map, &key)` for a `u32` key.
    pub fn lookup_u32(&mut self, map: MapId, key: u32) {
        self.e
            .emit(Insn::st_mem(Size::W, R10, KEY_SLOT, key as i32));
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R10, KEY_SLOT);
        self.e.emit(Insn::call(Helper::MapLookupElem));
    }

    /// Adds one to a per-CPU counter slot.
    pub fn bump_counter(&mut self, c: Counter) {
        self.lookup_u32(self.sh.counters, c as u32);
        self.e.emit(Insn::jmp_imm(Cond::Eq, R0, 0, 2));
        self.e.emit(Insn::mov64_imm(R1, 1));
        self.e.emit(Insn::atomic_add64(R0, R1, 0));
    }

    /// The error event for a message at a span.
    pub fn error_event(&mut self, message: &str, span: Span, with_addr: bool) -> EventId {
        let location = self.sh.location(span);
        let fields = if with_addr {
            vec![Field {
                offset: RECORD_HEADER,
                kind: FieldKind::Long,
            }]
        } else {
            Vec::new()
        };
        self.sh.event(EventSpec {
            kind: EventKind::Error {
                message: message.to_string(),
                location,
            },
            size: ERROR_RECORD,
            fields,
        })
    }

    /// Raises a runtime error: counts it, reports it, and ends the handler.
    /// `addr` is an r10-relative slot holding the faulting address.
    pub fn raise(&mut self, message: &str, span: Span, addr: Option<i16>) {
        if let Some((catch, var)) = self.catch {
            if message != MAXACTION_EXCEEDED {
                if let Some(Slot::Str(off)) = var {
                    let text = message.replace(" at {addr}", "");
                    let cap = self.cap();
                    self.store_literal(&text, Buf { base: R7, off, cap });
                }
                self.e.goto(catch);
                return;
            }
        }
        let id = self.error_event(message, span, addr.is_some());
        match addr {
            Some(slot) => self.e.emit(Insn::ldx_mem(Size::DW, R8, R10, slot)),
            None => self.e.emit(Insn::mov64_imm(R8, 0)),
        }
        self.e.emit(Insn::mov64_imm(R9, id.0 as i32));
        let err = self.err_label;
        self.e.goto(err);
    }

    /// Sends one string in a record of its own (`warn`), counting it as lost when full.
    pub fn string_record(&mut self, kind: EventKind, arg: &hir::Expr) -> R<()> {
        let m = self.scratch.mark();
        let buf = self.scratch_buf();
        self.string_into(arg, buf)?;
        let cap = self.cap();
        let id = self.sh.event(EventSpec {
            kind,
            size: RECORD_HEADER + cap,
            fields: vec![Field {
                offset: RECORD_HEADER,
                kind: FieldKind::Str { cap },
            }],
        });
        self.record(id, RECORD_HEADER + cap, |g| {
            let dst = Buf {
                base: R8,
                off: RECORD_HEADER as i16,
                cap,
            };
            g.copy_str(dst, buf.base, buf.off);
        });
        self.scratch.release(m);
        self.e.emit(Insn::mov64_imm(R0, 0));
        Ok(())
    }

    /// Reserves a `size`-byte record for event `id` (r8 points at it while `fill` runs),
    /// writes its header and submits it; a record that finds the buffer full is counted.
    pub fn record(&mut self, id: EventId, size: u32, fill: impl FnOnce(&mut Self)) {
        let lost = self.e.label();
        let done = self.e.label();
        self.reserve(size);
        self.e.jmp_imm(Cond::Eq, R0, 0, lost);
        self.e.emit(Insn::mov64_reg(R8, R0));
        self.e.emit(Insn::st_mem(Size::W, R8, 0, id.0 as i32));
        self.e.emit(Insn::st_mem(Size::W, R8, 4, 0));
        fill(self);
        self.e.emit(Insn::mov64_reg(R1, R8));
        self.e.emit(Insn::mov64_imm(R2, 0));
        self.e.emit(Insn::call(Helper::RingbufSubmit));
        self.e.goto(done);
        self.e.bind(lost);
        self.bump_counter(Counter::LostRecords);
        self.e.bind(done);
    }

    /// `error(msg)` with a message computed at run time: inside `try` the message goes to
    /// the catch variable; otherwise an error record carries it (`{str}` in the event's
    /// message), the error is counted and the handler ends.
    pub fn raise_computed(&mut self, msg: &hir::Expr, span: Span) -> R<()> {
        if let Some((catch, var)) = self.catch {
            let m = self.scratch.mark();
            let buf = self.scratch_buf();
            self.string_into(msg, buf)?;
            if let Some(Slot::Str(off)) = var {
                let cap = self.cap();
                self.copy_str(Buf { base: R7, off, cap }, buf.base, buf.off);
            }
            self.scratch.release(m);
            self.e.goto(catch);
            return Ok(());
        }
        self.bump_counter(Counter::Errors);
        let location = self.sh.location(span);
        let kind = EventKind::Error {
            message: "{str}".to_string(),
            location,
        };
        self.string_record(kind, msg)?;
        let exit = self.exit_label;
        self.e.goto(exit);
        Ok(())
    }

    /// Sends a header-only record (e.g. `exit()`); counts it as lost when the buffer is full.
    pub fn header_record(&mut self, id: EventId) {
        self.record(id, RECORD_HEADER, |_| {});
    }

    /// r0 = `bpf_ringbuf_reserve(ringbuf, size, 0)`.
    pub fn reserve(&mut self, size: u32) {
        self.e.emit2(Insn::ld_map_fd(R1, self.sh.ringbuf));
        self.e.emit(Insn::mov64_imm(R2, size as i32));
        self.e.emit(Insn::mov64_imm(R3, 0));
        self.e.emit(Insn::call(Helper::RingbufReserve));
    }

    /// At a loop's head: counts `n` actions and raises "MAXACTION exceeded" past the
    /// limit. The `may_goto` lets the verifier accept the loop after checking its body
    /// once; its budget (millions of steps) is never reached before MAXACTION.
    pub fn tick(&mut self, n: u32, span: Span) {
        let over = self.e.label();
        let ok = self.e.label();
        self.e.may_goto(over);
        self.e.emit(Insn::add64_imm(R9, n.max(1) as i32));
        self.e.jmp_imm(Cond::Le, R9, self.max_action as i32, ok);
        self.e.bind(over);
        self.raise(MAXACTION_EXCEEDED, span, None);
        self.e.bind(ok);
    }

    /// The normal exit, then the shared error block.
    fn epilogue(&mut self) {
        let exit = self.exit_label;
        let err = self.err_label;
        self.e.bind(exit);
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.emit(Insn::exit());
        if !self.e.is_referenced(err) {
            return;
        }
        self.e.bind(err);
        self.bump_counter(Counter::Errors);
        let lost = self.e.label();
        self.reserve(ERROR_RECORD);
        self.e.jmp_imm(Cond::Eq, R0, 0, lost);
        self.e.emit(Insn::stx_mem(Size::W, R0, R9, 0));
        self.e.emit(Insn::st_mem(Size::W, R0, 4, 0));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R8, 8));
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::mov64_imm(R2, 0));
        self.e.emit(Insn::call(Helper::RingbufSubmit));
        self.e.goto(exit);
        self.e.bind(lost);
        self.bump_counter(Counter::LostRecords);
        self.e.goto(exit);
    }

    /// "`X` is not supported yet".
    pub fn unsupported(&self, what: &str, span: Span) -> Diagnostic {
        Diagnostic::error(format!("`{what}` is not supported yet"), span)
    }

    /// "PHRASE is not supported yet", for phrases that carry their own backticks.
    pub fn not_yet(&self, phrase: &str, span: Span) -> Diagnostic {
        Diagnostic::error(format!("{phrase} is not supported yet"), span)
    }
}
