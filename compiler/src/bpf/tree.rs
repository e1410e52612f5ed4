//! The target's process tree: with `-c`/`-x`, process probes fire in the target and
//! in every process it forks, as SystemTap limits them.
//!
//! The uprobe links carry no pid filter for the target, since the kernel's filter
//! covers one process and never its children. Instead each program starts by
//! checking that the current process is the target (the config slot) or one of its
//! descendants, kept in the `target_tree` map by a program on `sched_process_fork`:
//! the child of a member joins, and a process any other parent forks leaves (its pid
//! was a member's, now reused). Members stay after they exit, so `.end` probes see
//! them. Without a target every process passes.

use super::codegen::{Gen, Shared, KEY_SLOT};
use super::emit::Emitter;
use super::insn::*;
use crate::object::SourceNote;
use crate::object::{Attach, ConfigSlot, MapId, MapKind, ProgramKind, ProgramSpec};
use crate::resolved::Site;
use rtap_lang::span::Span;

/// Descendants of the target tracked at once.
const MAX_MEMBERS: u32 = 16384;
const TREE_MAP: &str = "target_tree";

impl Shared<'_> {
    /// The map of the target's descendants (tgid → 1), created on first use by the
    /// probe at `span`, which the programs keeping it are noted with.
    fn tree_map(&mut self, span: Span) -> MapId {
        match self.maps.iter().position(|m| m.name == TREE_MAP) {
            Some(i) => MapId(i as u32),
            None => {
                self.tree_span = Some(span);
                self.add_map(TREE_MAP, MapKind::Hash, 4, 8, MAX_MEMBERS)
            }
        }
    }
}

impl Gen<'_, '_> {
    /// In a uprobe program: leave unless the current process is in the target's tree.
    /// `process(PID)` sites keep the kernel's own pid filter instead.
    pub fn tree_filter(&mut self) {
        let Site::Uprobe(u) = &self.probe.site else {
            return;
        };
        if u.pid.is_some() {
            return;
        }
        let member = self.tree_member_check();
        self.e.bind(member);
    }

    /// Emits the membership test and returns the label to bind where members go on;
    /// others leave through the exit label. Clobbers r0-r5.
    pub(super) fn tree_member_check(&mut self) -> super::emit::Label {
        let exit = self.exit_label;
        let member = self.e.label();
        let m = self.frame.mark();
        let target = self.temp();
        // The target first: without one, every process passes and no helper is called.
        self.lookup_u32(self.sh.config, ConfigSlot::TargetPid as u32);
        self.e.jmp_imm(Cond::Eq, R0, 0, member);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.jmp_imm(Cond::Eq, R1, 0, member);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, target));
        self.e.emit(Insn::call(Helper::GetCurrentPidTgid));
        self.e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 32));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, target));
        self.e.jmp_reg(Cond::Eq, R0, R1, member);
        self.e.emit(Insn::stx_mem(Size::W, R10, R0, KEY_SLOT));
        let span = self.hir().probes[self.probe.probe].span;
        let map = self.sh.tree_map(span);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R10, KEY_SLOT);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        self.e.jmp_imm(Cond::Eq, R0, 0, exit);
        self.frame.release(m);
        member
    }
}

/// The program that keeps the tree, once some program reads it. Without the kernel's
/// `task_struct` layout the children cannot be named, and only the target itself is
/// traced.
pub fn companions(sh: &mut Shared, programs: &mut Vec<ProgramSpec>) {
    let (Some(i), Some(span)) = (
        sh.maps.iter().position(|m| m.name == TREE_MAP),
        sh.tree_span,
    ) else {
        return;
    };
    let tree = MapId(i as u32);
    let layout = match sh.opts.task_layout {
        Some(l) => Some(l),
        None => super::kbtf::running_kernel().ok(),
    };
    if let Some(l) = layout {
        if let Some(p) = fork_program(sh, tree, l.task_tgid, span) {
            programs.push(p);
        }
    }
}

fn raw_tp(name: &str, insns: Vec<Insn>, notes: Vec<SourceNote>) -> ProgramSpec {
    ProgramSpec {
        name: format!("tree_{}", name.trim_start_matches("sched_process_")),
        kind: ProgramKind::RawTracepoint,
        probe_point: format!("the target's process tree ({name})"),
        attach: Attach::RawTracepoint {
            name: name.into(),
            tgids: None,
            target_only: true,
        },
        insns,
        notes,
        subprograms: Vec::new(),
    }
}

/// `sched_process_fork(parent, child)`, run by the parent: a member's child joins, any
/// other child leaves (a new thread repeats its parent's tgid, and stays as it was).
fn fork_program(sh: &Shared, tree: MapId, task_tgid: u32, span: Span) -> Option<ProgramSpec> {
    let mut e = Emitter::default();
    e.note(sh.sources, span);
    let out = e.label();
    let known = e.label();
    let member = e.label();
    e.emit(Insn::mov64_reg(R6, R1));
    e.emit(Insn::st_mem(
        Size::W,
        R10,
        KEY_SLOT,
        ConfigSlot::TargetPid as i32,
    ));
    e.emit2(Insn::ld_map_fd(R1, sh.config));
    e.emit(Insn::mov64_reg(R2, R10));
    e.emit(Insn::add64_imm(R2, KEY_SLOT as i32));
    e.emit(Insn::call(Helper::MapLookupElem));
    e.jmp_imm(Cond::Eq, R0, 0, out);
    e.emit(Insn::ldx_mem(Size::DW, R7, R0, 0));
    e.jmp_imm(Cond::Eq, R7, 0, out);
    // r8 = whether the parent is a member.
    e.emit(Insn::mov64_imm(R8, 1));
    e.emit(Insn::call(Helper::GetCurrentPidTgid));
    e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 32));
    e.jmp_reg(Cond::Eq, R0, R7, known);
    e.emit(Insn::stx_mem(Size::W, R10, R0, KEY_SLOT));
    e.emit2(Insn::ld_map_fd(R1, tree));
    e.emit(Insn::mov64_reg(R2, R10));
    e.emit(Insn::add64_imm(R2, KEY_SLOT as i32));
    e.emit(Insn::call(Helper::MapLookupElem));
    e.jmp_imm(Cond::Ne, R0, 0, known);
    e.emit(Insn::mov64_imm(R8, 0));
    e.bind(known);
    // The child's tgid, from `child->tgid`.
    e.emit(Insn::ldx_mem(Size::DW, R3, R6, 8));
    e.emit(Insn::add64_imm(R3, task_tgid as i32));
    e.emit(Insn::mov64_reg(R1, R10));
    e.emit(Insn::add64_imm(R1, KEY_SLOT as i32));
    e.emit(Insn::mov64_imm(R2, 4));
    e.emit(Insn::call(Helper::ProbeReadKernel));
    e.jmp_imm(Cond::Ne, R0, 0, out);
    e.emit2(Insn::ld_map_fd(R1, tree));
    e.emit(Insn::mov64_reg(R2, R10));
    e.emit(Insn::add64_imm(R2, KEY_SLOT as i32));
    e.jmp_imm(Cond::Ne, R8, 0, member);
    e.emit(Insn::call(Helper::MapDeleteElem));
    e.goto(out);
    e.bind(member);
    e.emit(Insn::st_mem(Size::DW, R10, KEY_SLOT - 8, 1));
    e.emit(Insn::mov64_reg(R3, R10));
    e.emit(Insn::add64_imm(R3, KEY_SLOT as i32 - 8));
    e.emit(Insn::mov64_imm(R4, 0));
    e.emit(Insn::call(Helper::MapUpdateElem));
    e.bind(out);
    e.emit(Insn::mov64_imm(R0, 0));
    e.emit(Insn::exit());
    let (insns, notes) = e.finish().ok()?;
    Some(raw_tp("sched_process_fork", insns, notes))
}
