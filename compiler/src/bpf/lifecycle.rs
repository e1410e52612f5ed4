//! Lifecycle probes in BPF: their raw tracepoints, the event filters ahead of the
//! handler, and the companion uprobe that records which processes run a file.

use super::codegen::{Gen, Shared, KEY_SLOT};
use super::emit::Emitter;
use super::helpers::Helper;
use super::insn::*;
use crate::object::{Attach, ConfigSlot, MapId, MapKind, ProgramKind, ProgramSpec};
use crate::resolved::{LifecycleEvent, LifecycleSite, ResolvedProbe, Site};
use std::path::Path;

/// x86-64 syscalls whose child returns 0 to user space: clone, fork, vfork, clone3.
const FORK_SYSCALLS: [i32; 4] = [56, 57, 58, 435];
/// Offset of `orig_ax` (the syscall number) in x86-64 `struct pt_regs`.
const PT_REGS_ORIG_AX: i32 = 120;
/// Processes of one file tracked at once.
const MAX_TGIDS: u32 = 16384;

/// The raw tracepoint an event is seen at.
pub fn program_kind(l: &LifecycleSite) -> (ProgramKind, Attach) {
    let name = match l.event {
        LifecycleEvent::Exec => "sched_process_exec",
        // The child of a fork returns to user space through the syscall exit path,
        // so its handler runs in the child: pid() and tid() are the new ones.
        LifecycleEvent::Fork { .. } => "sys_exit",
        LifecycleEvent::Exit { .. } => "sched_process_exit",
    };
    (
        ProgramKind::RawTracepoint,
        Attach::RawTracepoint {
            name: name.into(),
            tgids: None,
            target_only: false,
        },
    )
}

/// The hash map (tgid → 1) of processes running `path`, shared by every probe on it.
fn tgids_map(sh: &mut Shared, path: &Path) -> MapId {
    let name = format!("tgids {}", path.display());
    match sh.maps.iter().position(|m| m.name == name) {
        Some(i) => MapId(i as u32),
        None => sh.add_map(&name, MapKind::Hash, 4, 8, MAX_TGIDS),
    }
}

impl Gen<'_, '_> {
    /// After `program_start`: leave unless this event is one the probe point names.
    pub fn lifecycle_filter(&mut self) {
        let probe = self.probe;
        let Site::Lifecycle(l) = &probe.site else {
            return;
        };
        let exit = self.exit_label;
        let m = self.frame.mark();
        let t = self.temp();
        if let LifecycleEvent::Fork { .. } = l.event {
            // sys_exit(regs, ret): a return value of 0 from a fork-like syscall.
            self.e.emit(Insn::ldx_mem(Size::DW, R0, R6, 8));
            self.e.jmp_imm(Cond::Ne, R0, 0, exit);
            self.e.emit(Insn::ldx_mem(Size::DW, R3, R6, 0));
            self.e.emit(Insn::add64_imm(R3, PT_REGS_ORIG_AX));
            self.lea(R1, R10, t);
            self.e.emit(Insn::mov64_imm(R2, 8));
            self.e.emit(Insn::call(Helper::ProbeReadKernel));
            self.e.jmp_imm(Cond::Ne, R0, 0, exit);
            self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, t));
            let forked = self.e.label();
            for nr in FORK_SYSCALLS {
                self.e.jmp_imm(Cond::Eq, R0, nr, forked);
            }
            self.e.goto(exit);
            self.e.bind(forked);
        }
        // t = tgid; r0 = tid.
        self.e.emit(Insn::call(Helper::GetCurrentPidTgid));
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::alu64_imm(AluOp::Rsh, R1, 32));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, t));
        self.e.emit(Insn::alu32_reg(AluOp::Mov, R0, R0));
        match l.event {
            LifecycleEvent::Fork { thread: true } | LifecycleEvent::Exit { thread: true } => {
                self.e.jmp_reg(Cond::Eq, R0, R1, exit)
            }
            LifecycleEvent::Fork { thread: false } | LifecycleEvent::Exit { thread: false } => {
                self.e.jmp_reg(Cond::Ne, R0, R1, exit)
            }
            LifecycleEvent::Exec => {}
        }
        if let Some(pid) = l.pid {
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
            self.e.jmp_imm(Cond::Ne, R1, pid as i32, exit);
        }
        // With -c/-x, only the target's process tree (see `tree.rs`).
        let member = self.tree_member_check();
        self.e.bind(member);
        if l.event == (LifecycleEvent::Fork { thread: false }) {
            // The target itself was forked before the probes were armed: its late
            // return from `fork` is no begin.
            let other = self.e.label();
            self.lookup_u32(self.sh.config, ConfigSlot::TargetPid as u32);
            self.e.jmp_imm(Cond::Eq, R0, 0, other);
            self.e.emit(Insn::ldx_mem(Size::DW, R0, R0, 0));
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
            self.e.jmp_reg(Cond::Eq, R0, R1, exit);
            self.e.bind(other);
        }
        if let Some((path, _)) = &l.path {
            let map = tgids_map(self.sh, path);
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
            self.e.emit(Insn::stx_mem(Size::W, R10, R1, KEY_SLOT));
            self.e.emit2(Insn::ld_map_fd(R1, map));
            self.lea(R2, R10, KEY_SLOT);
            self.e.emit(Insn::call(Helper::MapLookupElem));
            self.e.jmp_imm(Cond::Eq, R0, 0, exit);
            if l.event == (LifecycleEvent::Exit { thread: false }) {
                // The process is gone: forget it, so a recycled pid is not mistaken for it.
                self.e.emit2(Insn::ld_map_fd(R1, map));
                self.lea(R2, R10, KEY_SLOT);
                self.e.emit(Insn::call(Helper::MapDeleteElem));
            }
        }
        self.frame.release(m);
    }
}

/// After a lifecycle program restricted to a file: name its tgid map in the attach
/// (the runtime adds the processes already running the file) and add, once per file,
/// the uprobe at the file's entry point that records each process that starts it.
pub fn companions(
    sh: &mut Shared,
    rp: &ResolvedProbe,
    span: rtap_lang::span::Span,
    programs: &mut Vec<ProgramSpec>,
) {
    let Site::Lifecycle(LifecycleSite {
        path: Some((path, entry)),
        ..
    }) = &rp.site
    else {
        return;
    };
    let map = tgids_map(sh, path);
    if let Some(Attach::RawTracepoint { tgids, .. }) = programs.last_mut().map(|p| &mut p.attach) {
        *tgids = Some((map, path.clone()));
    }
    let name = format!("track_{}", map.0);
    if programs.iter().any(|p| p.name == name) {
        return;
    }
    let mut e = Emitter::default();
    e.note(sh.sources, span);
    e.emit(Insn::call(Helper::GetCurrentPidTgid));
    e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 32));
    e.emit(Insn::stx_mem(Size::W, R10, R0, KEY_SLOT));
    e.emit(Insn::st_mem(Size::DW, R10, KEY_SLOT - 8, 1));
    e.emit2(Insn::ld_map_fd(R1, map));
    e.emit(Insn::mov64_reg(R2, R10));
    e.emit(Insn::add64_imm(R2, KEY_SLOT as i32));
    e.emit(Insn::mov64_reg(R3, R10));
    e.emit(Insn::add64_imm(R3, KEY_SLOT as i32 - 8));
    e.emit(Insn::mov64_imm(R4, 0));
    e.emit(Insn::call(Helper::MapUpdateElem));
    e.emit(Insn::mov64_imm(R0, 0));
    e.emit(Insn::exit());
    let Ok((insns, notes)) = e.finish() else {
        return;
    };
    programs.push(ProgramSpec {
        name,
        kind: ProgramKind::Uprobe,
        probe_point: format!("process(\"{}\").begin", path.display()),
        attach: Attach::Uprobe {
            path: path.clone(),
            offsets: vec![*entry],
            retprobe: false,
            ref_ctr_offsets: Vec::new(),
            pid: None,
        },
        insns,
        notes,
        subprograms: Vec::new(),
    });
}
