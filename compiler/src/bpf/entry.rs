//! Values a `.return` probe reads at entry: the entry program that saves them in the
//! thread's own storage, and the return side that takes them back.
//!
//! Each site has a task-local storage map (`BPF_MAP_TYPE_TASK_STORAGE`): per thread, a
//! count of calls kept, then one slot per nested call holding the call's frame address
//! (from CFI), a valid flag and the packed record. The entry program pushes a slot and
//! fills it; the return program pops slots until it finds the one whose frame address
//! is its stack pointer, so recursion, threads, `longjmp` and calls nested past the
//! kernel's uretprobe limit each pair with their own values. Task storage costs a
//! pointer walk where a hash map costs hashing, locking and an allocation per call,
//! and it goes away with its thread. A return with no valid slot (its entry ran before
//! the probes were attached, failed with an error already reported, or nested deeper
//! than the slots) is skipped and counted: running the handler with zeros would print
//! values nobody saw.

use super::codegen::{Buf, Gen, Shared, R};
use super::emit::frame_off;
use super::insn::*;
use super::target::pt_regs_offset;
use crate::access::DwarfReg;
use crate::object::{Attach, Counter, MapId, MapKind, ProgramKind, ProgramSpec};
use crate::resolve::visit::visit_block;
use crate::resolved::{EntrySite, ResolvedProbe};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Expr, ExprId, ExprKind, Type};

/// `BPF_LOCAL_STORAGE_GET_F_CREATE` for `bpf_task_storage_get`.
const F_CREATE: i32 = 1;
/// The most nested calls of one site a thread keeps values for: the kernel itself
/// stops returning through uretprobes past 64 nested ones.
const MAX_SLOTS: u32 = 64;
/// Slots are cut below `MAX_SLOTS` to keep a thread's storage near this size...
const STORAGE_TARGET: u32 = 16 << 10;
/// ...but never below this many, unless the kernel's value size limit forces it.
const MIN_SLOTS: u32 = 8;
/// Local storage values must stay under 64 KiB, less the kernel's element header.
const STORAGE_MAX: u32 = 60 << 10;
/// Records up to this size are copied with inline loads and stores.
const INLINE_COPY: u32 = 64;
/// Offset of `sp` in x86-64 `struct pt_regs`.
const PT_REGS_SP: i16 = 152;

/// Where a value saved at entry sits in the return program's scratch (r7-relative).
#[derive(Clone, Copy, Debug)]
pub enum Saved {
    Long(i16),
    Str(i16),
}

/// One site's record: which expressions, at which offsets, and where it is kept.
#[derive(Clone, Debug)]
pub struct EntryLayout {
    /// The value each saved expression computes at entry (the operand of `@entry`,
    /// or the target expression itself), its id, and its offset in the record.
    pub fields: Vec<(ExprId, Expr, u32)>,
    /// The record's size, a multiple of 8.
    pub size: u32,
    /// The site's task storage: the number of calls kept at 0, then `slots` slots of
    /// `16 + size` bytes: the call's frame address, a valid flag, the record.
    pub map: MapId,
    pub slots: u32,
}

impl EntryLayout {
    fn slot_size(&self) -> u32 {
        16 + self.size
    }
}

impl Shared<'_> {
    /// Numbers the site, lays its record out, and creates the shared maps once.
    pub fn entry_layout(&mut self, probe: &hir::Probe, en: &EntrySite) -> R<EntryLayout> {
        let mut found = Vec::new();
        visit_block(&probe.body, &mut |e| {
            if en.saved.contains(&e.id) {
                found.push(e.clone());
            }
        });
        let cap = self.opts.max_string_len;
        let mut fields = Vec::new();
        let mut size = 0;
        for id in &en.saved {
            let Some(e) = found.iter().find(|e| e.id == *id) else {
                continue;
            };
            if fields.iter().any(|(f, _, _)| f == id) {
                continue;
            }
            let value = match &e.kind {
                ExprKind::Entry(inner) => (**inner).clone(),
                _ => e.clone(),
            };
            let len = match e.ty {
                Type::Long => 8,
                Type::String => cap,
                Type::Stats => {
                    return Err(Diagnostic::error(
                        "`@entry` of statistics is not supported",
                        e.span,
                    ))
                }
            };
            fields.push((*id, value, size));
            size += len.div_ceil(8) * 8;
        }
        let size = size.div_ceil(8) * 8;
        let slot = 16 + size;
        let slots = (STORAGE_TARGET / slot)
            .clamp(MIN_SLOTS, MAX_SLOTS)
            .min((STORAGE_MAX - 8) / slot);
        if slots == 0 {
            return Err(Diagnostic::error(
                format!(
                    "`@entry` values of this probe take {size} bytes, more than a thread can keep; \
                     lower `MAXSTRINGLEN`"
                ),
                probe.span,
            ));
        }
        let site = self.entry_sites;
        self.entry_sites += 1;
        let map = self.add_map(
            &format!("entry_{site}"),
            MapKind::TaskStorage,
            4,
            8 + slots * slot,
            0,
        );
        Ok(EntryLayout {
            fields,
            size,
            map,
            slots,
        })
    }
}

/// The entry program of a `.return` site and its scratch use. `name` and `pp` are
/// the return program's.
pub fn entry_program<'a>(
    sh: &mut Shared<'a>,
    rp: &'a ResolvedProbe,
    probe: &'a hir::Probe,
    l: &EntryLayout,
    name: &str,
    pp: String,
) -> Result<(ProgramSpec, u32), Vec<Diagnostic>> {
    let Some(en) = &rp.entry else {
        return Err(vec![Diagnostic::error(
            "`@entry` values without an entry site",
            probe.span,
        )]);
    };
    let mut g = Gen::new(sh, rp, ProgramKind::Uprobe, pp);
    g.site_vaddr = en.site.vaddr;
    let body = g.entry_body(probe, l)?;
    let spec = ProgramSpec {
        name: format!("{name}_entry"),
        kind: ProgramKind::Uprobe,
        probe_point: en.site.pp.clone(),
        attach: Attach::Uprobe {
            path: en.site.path.clone(),
            offsets: vec![en.site.offset],
            retprobe: false,
            ref_ctr_offsets: Vec::new(),
            pid: en.site.pid,
        },
        insns: body.insns,
        notes: body.notes,
        subprograms: body.subprograms,
    };
    Ok((spec, body.scratch))
}

impl<'a> Gen<'a, '_> {
    /// r0 = this thread's storage of the site (or null), created if `create`.
    fn task_storage(&mut self, l: &EntryLayout, create: bool) {
        self.e.emit(Insn::call(Helper::GetCurrentTaskBtf));
        self.e.emit(Insn::mov64_reg(R2, R0));
        self.e.emit2(Insn::ld_map_fd(R1, l.map));
        self.e.emit(Insn::mov64_imm(R3, 0));
        self.e
            .emit(Insn::mov64_imm(R4, if create { F_CREATE } else { 0 }));
        self.e.emit(Insn::call(Helper::TaskStorageGet));
    }

    /// Copies `size` bytes from `src + soff` to `dst + doff`; clobbers r1-r5.
    fn copy_record(&mut self, dst: Reg, doff: i16, src: Reg, soff: i16, size: u32) {
        if size <= INLINE_COPY {
            for i in (0..size as i16).step_by(8) {
                self.e.emit(Insn::ldx_mem(Size::DW, R1, src, soff + i));
                self.e.emit(Insn::stx_mem(Size::DW, dst, R1, doff + i));
            }
            return;
        }
        self.lea(R3, src, soff);
        self.lea(R1, dst, doff);
        self.e.emit(Insn::mov64_imm(R2, size as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
    }

    /// The return side: takes this call's record into scratch, or skips the hit.
    ///
    /// The stack pointer at a return is the frame address its call saved. Slots above
    /// the one that matches belong to calls that will never return here (they left by
    /// `longjmp`, or nested past the kernel's limit on pending uretprobes) and are
    /// dropped; a slot below it means this call was never saved, and nothing is taken.
    pub fn consume_entry(&mut self, l: &EntryLayout) {
        let rec = self.scratch.alloc(l.size) as i16;
        let skip = self.e.label();
        let go = self.e.label();
        let top = self.e.label();
        let matched = self.e.label();
        self.task_storage(l, false);
        let stored = self.e.label();
        self.e.jmp_imm(Cond::Ne, R0, 0, stored);
        // No storage: a process outside the target's tree leaves quietly, a member's
        // return whose call was never saved is skipped and counted.
        if let crate::resolved::Site::Uprobe(u) = &self.probe.site {
            if u.pid.is_none() {
                let member = self.tree_member_check();
                self.e.bind(member);
            }
        }
        self.e.goto(skip);
        self.e.bind(stored);
        // r5 = storage, r4 = stack pointer, r1 = calls kept.
        self.e.emit(Insn::mov64_reg(R5, R0));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R6, PT_REGS_SP));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R5, 0));
        self.e.jmp_imm(Cond::Gt, R1, l.slots as i32, skip);
        self.e.bind(top);
        self.e.may_goto(skip);
        self.e.jmp_imm(Cond::Slt, R1, 1, skip);
        // r2 = the top slot's index, r3 = the slot.
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::add64_imm(R2, -1));
        self.e.emit(Insn::mov64_reg(R0, R2));
        self.e
            .emit(Insn::alu64_imm(AluOp::Mul, R0, l.slot_size() as i32));
        self.e.emit(Insn::mov64_reg(R3, R5));
        self.e.emit(Insn::alu64_reg(AluOp::Add, R3, R0));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R3, 8));
        // Zero: the frame address was unknown at entry, so the top slot is the call.
        self.e.jmp_imm(Cond::Eq, R0, 0, matched);
        self.e.jmp_reg(Cond::Eq, R0, R4, matched);
        self.e.jmp_reg(Cond::Gt, R0, R4, skip);
        self.e.emit(Insn::stx_mem(Size::DW, R5, R2, 0));
        self.e.emit(Insn::mov64_reg(R1, R2));
        self.e.goto(top);
        self.e.bind(matched);
        self.e.emit(Insn::stx_mem(Size::DW, R5, R2, 0));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R3, 16));
        self.e.jmp_imm(Cond::Eq, R0, 0, skip);
        self.e.emit(Insn::st_mem(Size::DW, R3, 16, 0));
        if l.size > 0 {
            self.copy_record(R7, rec, R3, 24, l.size);
        }
        self.e.goto(go);
        self.e.bind(skip);
        self.bump_counter(Counter::Skipped);
        let exit = self.exit_label;
        self.e.goto(exit);
        self.e.bind(go);
        for (id, value, off) in &l.fields {
            let at = rec + *off as i16;
            let slot = match value.ty {
                Type::String => Saved::Str(at),
                _ => Saved::Long(at),
            };
            self.saved.insert(*id, slot);
        }
    }

    /// Reads a value saved at entry, if `e` is one: a long into r0, a string into `dst`.
    pub fn read_saved(&mut self, e: &Expr, dst: Option<Buf>) -> R<bool> {
        let Some(slot) = self.saved.get(&e.id).copied() else {
            return Ok(false);
        };
        match (slot, dst) {
            (Saved::Long(off), None) => self.e.emit(Insn::ldx_mem(Size::DW, R0, R7, off)),
            (Saved::Str(off), Some(d)) => self.copy_str(d, R7, off),
            _ => {
                return Err(Diagnostic::error(
                    "`@entry` value used with the wrong type",
                    e.span,
                ))
            }
        }
        Ok(true)
    }

    /// The entry program: pushes a slot with the call's frame address, evaluates the
    /// saved values, then fills the slot and marks it valid.
    pub fn entry_body(
        &mut self,
        probe: &'a hir::Probe,
        l: &EntryLayout,
    ) -> Result<super::codegen::Body, Vec<Diagnostic>> {
        self.program_start(probe.span);
        self.locals = self.alloc_locals(&probe.locals);
        let rec = self.scratch.alloc(l.size) as i16;
        // The slot pointer survives the evaluation in a frame slot.
        let spill = frame_off(self.frame.alloc(8), 8);
        let done = self.e.label();
        let have = self.e.label();
        // A thread with storage passed the target's tree check when it was made, so
        // only a thread's first call checks (see `tree.rs`).
        self.task_storage(l, false);
        self.e.jmp_imm(Cond::Ne, R0, 0, have);
        self.tree_filter();
        self.task_storage(l, true);
        self.e.jmp_imm(Cond::Ne, R0, 0, have);
        self.raise(NO_ENTRY_STORAGE, probe.span, None);
        self.e.bind(have);
        // Past the last slot the call is not kept: its return finds an outer call's
        // frame address on top and is skipped.
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.jmp_imm(Cond::Ge, R1, l.slots as i32, done);
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::add64_imm(R2, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 0));
        self.e
            .emit(Insn::alu64_imm(AluOp::Mul, R1, l.slot_size() as i32));
        self.e.emit(Insn::alu64_reg(AluOp::Add, R0, R1));
        // The frame address the return will see as its stack pointer, or 0 if unknown.
        match self.probe.entry.as_ref().and_then(|en| en.cfa) {
            Some((reg, off))
                if pt_regs_offset(DwarfReg(reg)).is_some() && i32::try_from(off).is_ok() =>
            {
                let at = pt_regs_offset(DwarfReg(reg)).expect("checked");
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R6, at));
                self.e.emit(Insn::add64_imm(R1, off as i32));
                self.e.emit(Insn::stx_mem(Size::DW, R0, R1, 8));
            }
            _ => self.e.emit(Insn::st_mem(Size::DW, R0, 8, 0)),
        }
        // Invalid until filled: an error while evaluating leaves nothing to take back.
        self.e.emit(Insn::st_mem(Size::DW, R0, 16, 0));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, spill));
        let mut diags = Vec::new();
        let cap = self.cap();
        for (_, value, off) in &l.fields {
            self.e.note(self.sh.sources, value.span);
            let at = rec + *off as i16;
            let r = match value.ty {
                Type::String => self.string_into(
                    value,
                    Buf {
                        base: R7,
                        off: at,
                        cap,
                    },
                ),
                _ => self.long(value).map(|()| {
                    self.e.emit(Insn::stx_mem(Size::DW, R7, R0, at));
                }),
            };
            if let Err(d) = r {
                diags.push(d);
            }
        }
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R10, spill));
        if l.size > 0 {
            self.copy_record(R5, 24, R7, rec, l.size);
            self.e.emit(Insn::ldx_mem(Size::DW, R5, R10, spill));
        }
        self.e.emit(Insn::st_mem(Size::DW, R5, 16, 1));
        self.e.bind(done);
        self.program_end(probe.span, diags)
    }
}

/// Raised at entry when the kernel cannot allocate the thread's storage.
pub const NO_ENTRY_STORAGE: &str = "no memory to save `@entry` values for this thread";
