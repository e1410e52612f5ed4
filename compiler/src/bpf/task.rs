//! Context functions that read the current `task_struct`: `ppid`, `euid`, `egid`,
//! `cmdline_str`, `env_var`.
//!
//! `bpf_get_current_task` gives the task's address; its fields are read with
//! `bpf_probe_read_kernel` at offsets from the kernel's BTF (`kbtf.rs`), or from
//! `CodegenOptions::task_layout` when set (tests, cross-compiling a listing). An
//! unreadable field reads 0: a kernel thread has no `mm`. The command line and the
//! environment are the process's own memory between `mm->arg_start`/`arg_end` and
//! `env_start`/`env_end`, read with `bpf_probe_read_user`.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use super::kbtf::TaskLayout;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::Expr;
use rtap_lang::span::Span;

/// Whether a builtin is one of this file's.
pub fn is_task_builtin(name: &str) -> bool {
    matches!(name, "ppid" | "euid" | "egid" | "cmdline_str" | "env_var")
}

impl Gen<'_, '_> {
    fn task_layout(&self, name: &str, span: Span) -> R<TaskLayout> {
        match self.sh.opts.task_layout {
            Some(l) => Ok(l),
            None => super::kbtf::running_kernel()
                .map_err(|m| Diagnostic::error(format!("`{name}` cannot be compiled: {m}"), span)),
        }
    }

    /// r0 = the `size` bytes of kernel memory at r0 + `off`, zero-extended; 0 when unreadable.
    fn kread(&mut self, off: u32, size: Size) {
        let m = self.frame.mark();
        let buf = self.temp();
        self.e.emit(Insn::st_mem(Size::DW, R10, buf, 0));
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.e.emit(Insn::add64_imm(R3, off as i32));
        self.lea(R1, R10, buf);
        self.e.emit(Insn::mov64_imm(R2, size.bytes() as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
        self.e.emit(Insn::ldx_mem(size, R0, R10, buf));
        self.frame.release(m);
    }

    /// r0 = the current task's `mm`.
    fn current_mm(&mut self, l: &TaskLayout) {
        self.e.emit(Insn::call(Helper::GetCurrentTask));
        self.kread(l.task_mm, Size::DW);
    }

    /// `ppid`, `euid`, `egid` into r0.
    pub fn task_long(&mut self, name: &str, span: Span) -> R<()> {
        let l = self.task_layout(name, span)?;
        self.e.emit(Insn::call(Helper::GetCurrentTask));
        match name {
            "ppid" => {
                self.kread(l.task_real_parent, Size::DW);
                self.kread(l.task_tgid, Size::W);
            }
            "euid" | "egid" => {
                self.kread(l.task_cred, Size::DW);
                let off = if name == "euid" {
                    l.cred_euid
                } else {
                    l.cred_egid
                };
                self.kread(off, Size::W);
            }
            _ => return Err(self.unsupported(name, span)),
        }
        Ok(())
    }

    /// `cmdline_str()` and `env_var(name)` into `dst`.
    pub fn task_str(&mut self, name: &str, args: &[Expr], dst: Buf, span: Span) -> R<()> {
        let l = self.task_layout(name, span)?;
        match name {
            "cmdline_str" => {
                self.cmdline(&l, dst);
                Ok(())
            }
            "env_var" => self.env_var(&l, &args[0], dst),
            _ => Err(self.unsupported(name, span)),
        }
    }

    /// The arguments, NUL-separated in memory, joined with spaces.
    fn cmdline(&mut self, l: &TaskLayout, dst: Buf) {
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let (start, len) = (self.temp(), self.temp());
        let i = self.scratch.alloc(8) as i16;
        let last = dst.cap as i32 - 1;
        self.current_mm(l);
        let mm = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, mm));
        self.kread(l.mm_arg_start, Size::DW);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, start));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, mm));
        self.kread(l.mm_arg_end, Size::DW);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, start));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R0, R1));
        // len = clamp(end - start, 0, cap - 1).
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.emit(Insn::jmp_imm(Cond::Sle, R0, last, 1));
        self.e.emit(Insn::mov64_imm(R0, last));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, len));
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        let done = self.e.label();
        self.e.emit(Insn::mov64_reg(R2, R0));
        self.e.jmp_imm(Cond::Eq, R2, 0, done);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, start));
        self.e.emit(Insn::call(Helper::ProbeReadUser));
        let read = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, read);
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.e.goto(done);
        self.e.bind(read);
        // dst[len] = 0, then every NUL before the last byte becomes a space.
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, len));
        self.e.jmp_imm(Cond::Gt, R1, last, done);
        self.lea(R2, dst.base, dst.off);
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::st_mem(Size::B, R2, 0, 0));
        self.e.emit(Insn::st_mem(Size::DW, R7, i, 0));
        let top = self.e.label();
        let next = self.e.label();
        self.e.bind(top);
        self.e.may_goto(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, len));
        self.e.emit(Insn::add64_imm(R2, -1));
        self.e.jmp_reg(Cond::Sge, R1, R2, done);
        self.e.jmp_imm(Cond::Ge, R1, last, done);
        self.lea(R2, dst.base, dst.off);
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R3, R2, 0));
        self.e.jmp_imm(Cond::Ne, R3, 0, next);
        self.e.emit(Insn::st_mem(Size::B, R2, 0, b' ' as i32));
        self.e.bind(next);
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, i));
        self.e.goto(top);
        self.e.bind(done);
        self.scratch.release(sm);
        self.frame.release(fm);
    }

    /// The value of `NAME=value` in the environment block, or "".
    fn env_var(&mut self, l: &TaskLayout, name: &Expr, dst: Buf) -> R<()> {
        let cap = self.cap() as i32;
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let want = self.scratch_buf();
        self.string_into(name, want)?;
        let entry = self.scratch_buf();
        let (p, end, i) = (
            self.scratch.alloc(8) as i16,
            self.scratch.alloc(8) as i16,
            self.scratch.alloc(8) as i16,
        );
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.current_mm(l);
        let mm = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, mm));
        self.kread(l.mm_env_start, Size::DW);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R0, p));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, mm));
        self.kread(l.mm_env_end, Size::DW);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R0, end));
        let entries = self.e.label();
        let compare = self.e.label();
        let found = self.e.label();
        let done = self.e.label();
        // One `NAME=value` string per step.
        self.e.bind(entries);
        self.e.may_goto(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, p));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, end));
        self.e.jmp_reg(Cond::Ge, R3, R1, done);
        self.lea(R1, R7, entry.off);
        self.e.emit(Insn::mov64_imm(R2, cap));
        self.e.emit(Insn::call(Helper::ProbeReadUserStr));
        self.e.jmp_imm(Cond::Sle, R0, 0, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, p));
        self.e.emit(Insn::add64_reg(R1, R0));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, p));
        self.e.emit(Insn::st_mem(Size::DW, R7, i, 0));
        // Compare the name byte by byte; at its end the entry must have `=`.
        self.e.bind(compare);
        self.e.may_goto(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
        self.e.jmp_imm(Cond::Ge, R1, cap - 1, entries);
        self.lea(R2, R7, want.off);
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R2, R2, 0));
        self.lea(R3, R7, entry.off);
        self.e.emit(Insn::add64_reg(R3, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R3, R3, 0));
        let more = self.e.label();
        self.e.jmp_imm(Cond::Ne, R2, 0, more);
        self.e.jmp_imm(Cond::Eq, R3, b'=' as i32, found);
        self.e.goto(entries);
        self.e.bind(more);
        self.e.jmp_reg(Cond::Ne, R2, R3, entries);
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, i));
        self.e.goto(compare);
        // r1 = the name's length: the value starts after the `=`.
        self.e.bind(found);
        self.lea(R3, R7, entry.off + 1);
        self.e.emit(Insn::add64_reg(R3, R1));
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::mov64_imm(R2, dst.cap as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
        self.e.bind(done);
        self.scratch.release(sm);
        self.frame.release(fm);
        Ok(())
    }
}
