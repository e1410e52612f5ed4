//! Values a `.return` probe reads at entry: the entry program that saves them in a
//! map keyed by thread, site and call depth, and the return side that takes them back.
//!
//! The entry program bumps a per-(thread, site) depth counter, evaluates every
//! `@entry(e)` operand and `$param` chain into a packed record, and stores it under
//! (thread, site, depth). The return program takes the record at the current depth,
//! copies it to scratch, deletes it and lowers the depth, so recursion and threads
//! each see their own values. A return with no record (its entry ran before the
//! probes were attached, or failed with an error already reported) is skipped and
//! counted: running the handler with zeros would print values nobody saw.

use super::codegen::{Buf, Gen, Shared, R};
use super::emit::frame_off;
use super::insn::*;
use crate::object::{Attach, Counter, MapId, MapKind, ProgramKind, ProgramSpec};
use crate::resolve::visit::visit_block;
use crate::resolved::{EntrySite, ResolvedProbe};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Expr, ExprId, ExprKind, Type};

/// `BPF_ANY` for `bpf_map_update_elem`.
const BPF_ANY: i32 = 0;

/// The two maps every entry-saving site shares.
#[derive(Clone, Copy, Debug)]
pub struct EntryMaps {
    /// (tid | site << 32) → calls in progress.
    pub depth: MapId,
    /// (tid | site << 32, depth) → the packed record.
    pub saved: MapId,
    /// Sites numbered so far.
    pub sites: u32,
    /// The largest record, the saved map's value size.
    pub record_max: u32,
}

/// Where a value saved at entry sits in the return program's scratch (r7-relative).
#[derive(Clone, Copy, Debug)]
pub enum Saved {
    Long(i16),
    Str(i16),
}

/// One site's record: which expressions, at which offsets.
#[derive(Clone, Debug)]
pub struct EntryLayout {
    pub site: u32,
    /// The value each saved expression computes at entry (the operand of `@entry`,
    /// or the target expression itself), its id, and its offset in the record.
    pub fields: Vec<(ExprId, Expr, u32)>,
    pub size: u32,
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
            size += len;
        }
        let n = self.opts.max_map_entries;
        let maps = match self.entry {
            Some(m) => m,
            None => EntryMaps {
                depth: self.add_map("entry_depth", MapKind::Hash, 8, 8, n),
                saved: self.add_map("entry_saved", MapKind::Hash, 16, 8, n),
                sites: 0,
                record_max: 0,
            },
        };
        self.entry = Some(EntryMaps {
            sites: maps.sites + 1,
            record_max: maps.record_max.max(size),
            ..maps
        });
        Ok(EntryLayout {
            site: maps.sites,
            fields,
            size,
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
    fn entry_maps(&self) -> EntryMaps {
        self.sh
            .entry
            .expect("entry maps exist once a layout was made")
    }

    /// A 16-byte frame key: `tid | site << 32` at `off`, the depth at `off + 8`.
    fn entry_key(&mut self, site: u32) -> i16 {
        let off = frame_off(self.frame.alloc(16), 16);
        self.e.emit(Insn::call(Helper::GetCurrentPidTgid));
        self.e.emit(Insn::alu32_reg(AluOp::Mov, R0, R0));
        if site != 0 {
            self.e.emit2(Insn::ld_imm64(R1, i64::from(site) << 32));
            self.e.emit(Insn::alu64_reg(AluOp::Or, R0, R1));
        }
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, off));
        self.e.emit(Insn::st_mem(Size::DW, R10, off + 8, 0));
        off
    }

    /// r0 = `helper(map, &key)` for lookup and delete.
    fn map_key_call(&mut self, h: Helper, map: MapId, key: i16) {
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R10, key);
        self.e.emit(Insn::call(h));
    }

    /// The return side: takes this call's record into scratch, or skips the hit.
    pub fn consume_entry(&mut self, l: &EntryLayout) {
        let maps = self.entry_maps();
        let rec = self.scratch.alloc(l.size) as i16;
        let fm = self.frame.mark();
        let key = self.entry_key(l.site);
        let skip = self.e.label();
        let have = self.e.label();
        self.map_key_call(Helper::MapLookupElem, maps.depth, key);
        self.e.jmp_imm(Cond::Eq, R0, 0, skip);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, key + 8));
        self.e.jmp_imm(Cond::Slt, R1, 1, skip);
        let last = self.e.label();
        self.e.jmp_imm(Cond::Sle, R1, 1, last);
        self.e.emit(Insn::add64_imm(R1, -1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R1, 0));
        self.e.goto(have);
        // The outermost call: the counter goes, so finished threads leave nothing behind.
        self.e.bind(last);
        self.map_key_call(Helper::MapDeleteElem, maps.depth, key);
        self.e.bind(have);
        self.map_key_call(Helper::MapLookupElem, maps.saved, key);
        self.e.jmp_imm(Cond::Eq, R0, 0, skip);
        if l.size > 0 {
            self.e.emit(Insn::mov64_reg(R3, R0));
            self.lea(R1, R7, rec);
            self.e.emit(Insn::mov64_imm(R2, l.size as i32));
            self.e.emit(Insn::call(Helper::ProbeReadKernel));
        }
        self.map_key_call(Helper::MapDeleteElem, maps.saved, key);
        let go = self.e.label();
        self.e.goto(go);
        self.e.bind(skip);
        self.bump_counter(Counter::Skipped);
        let exit = self.exit_label;
        self.e.goto(exit);
        self.e.bind(go);
        self.frame.release(fm);
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

    /// The entry program: bumps the depth, evaluates the saved values, stores the record.
    pub fn entry_body(
        &mut self,
        probe: &'a hir::Probe,
        l: &EntryLayout,
    ) -> Result<super::codegen::Body, Vec<Diagnostic>> {
        let maps = self.entry_maps();
        self.program_start(probe.span);
        self.locals = self.alloc_locals(&probe.locals);
        let rec = self.scratch.alloc(l.size) as i16;
        let key = self.entry_key(l.site);
        let counted = self.e.label();
        self.map_key_call(Helper::MapLookupElem, maps.depth, key);
        let first = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, first);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R1, 0));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, key + 8));
        self.e.goto(counted);
        self.e.bind(first);
        self.e.emit(Insn::st_mem(Size::DW, R10, key + 8, 1));
        self.e.emit2(Insn::ld_map_fd(R1, maps.depth));
        self.lea(R2, R10, key);
        self.lea(R3, R10, key + 8);
        self.e.emit(Insn::mov64_imm(R4, BPF_ANY));
        self.e.emit(Insn::call(Helper::MapUpdateElem));
        self.e.jmp_imm(Cond::Eq, R0, 0, counted);
        self.raise(TOO_MANY_CALLS, probe.span, None);
        self.e.bind(counted);
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
        self.e.emit2(Insn::ld_map_fd(R1, maps.saved));
        self.lea(R2, R10, key);
        self.lea(R3, R7, rec);
        self.e.emit(Insn::mov64_imm(R4, BPF_ANY));
        self.e.emit(Insn::call(Helper::MapUpdateElem));
        let stored = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, stored);
        self.raise(TOO_MANY_CALLS, probe.span, None);
        self.e.bind(stored);
        self.program_end(probe.span, diags)
    }
}

/// Raised at entry when the maps of saved values are full.
pub const TOO_MANY_CALLS: &str = "too many calls in progress to save `@entry` values";
