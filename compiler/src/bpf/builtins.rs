//! Tapset functions compiled inline: process identity, clocks, user memory, control.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use crate::object::{ConfigSlot, EventKind, EventSpec, RECORD_HEADER};
use crate::resolved::Site;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Expr, ExprKind};
use rtap_lang::span::Span;

/// `user_<type>(addr)`: bytes and signedness.
fn user_int(name: &str) -> Option<(Size, bool)> {
    Some(match name {
        "user_char" | "user_int8" => (Size::B, true),
        "user_uint8" => (Size::B, false),
        "user_short" | "user_int16" => (Size::H, true),
        "user_ushort" | "user_uint16" => (Size::H, false),
        "user_int" | "user_int32" => (Size::W, true),
        "user_uint" | "user_uint32" => (Size::W, false),
        "user_long" | "user_int64" | "user_ulong" | "user_uint64" => (Size::DW, true),
        _ => return None,
    })
}

impl Gen<'_, '_> {
    fn call_helper(&mut self, h: Helper) {
        self.e.emit(Insn::call(h));
    }

    /// r0 = config slot value (0 if unreadable).
    pub(super) fn config(&mut self, slot: ConfigSlot) {
        self.lookup_u32(self.sh.config, slot as u32);
        self.e.emit(Insn::jmp_imm(Cond::Eq, R0, 0, 1));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R0, 0));
    }

    /// Wall-clock ns: boot-time clock plus the runtime's realtime offset, so
    /// suspend and `settimeofday` before start are accounted for.
    fn realtime_ns(&mut self) {
        let m = self.frame.mark();
        let t = self.temp();
        self.call_helper(Helper::KtimeGetBootNs);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
        self.config(ConfigSlot::RealtimeOffsetNs);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
        self.e.emit(Insn::add64_reg(R0, R1));
        self.frame.release(m);
    }

    fn div_const(&mut self, d: i32) {
        if d != 1 {
            self.e.emit(Insn::alu64_imm(AluOp::Div, R0, d));
        }
    }

    /// Long-valued builtins into r0.
    pub fn builtin_long(&mut self, name: &str, args: &[Expr], span: Span) -> R<()> {
        match (name, args.len()) {
            ("pid", 0) => {
                self.call_helper(Helper::GetCurrentPidTgid);
                self.e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 32));
            }
            ("tid", 0) => {
                self.call_helper(Helper::GetCurrentPidTgid);
                self.e.emit(Insn::alu32_reg(AluOp::Mov, R0, R0));
            }
            ("uid", 0) => {
                self.call_helper(Helper::GetCurrentUidGid);
                self.e.emit(Insn::alu32_reg(AluOp::Mov, R0, R0));
            }
            ("gid", 0) => {
                self.call_helper(Helper::GetCurrentUidGid);
                self.e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 32));
            }
            ("cpu", 0) => self.call_helper(Helper::GetSmpProcessorId),
            ("target", 0) => self.config(ConfigSlot::TargetPid),
            ("local_clock_ns" | "ktime_get_ns", 0) => self.call_helper(Helper::KtimeGetNs),
            ("uaddr", 0) => {
                if self.kind != crate::object::ProgramKind::Uprobe {
                    return Err(Diagnostic::error(
                        "`uaddr` is only available in process probes",
                        span,
                    ));
                }
                self.e.emit(Insn::ldx_mem(Size::DW, R0, R6, 128));
            }
            ("randint", 1) => {
                let m = self.frame.mark();
                let t = self.temp();
                self.long(&args[0])?;
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                self.call_helper(Helper::GetPrandomU32);
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
                self.frame.release(m);
                let ok = self.e.label();
                self.e.jmp_imm(Cond::Sgt, R1, 0, ok);
                self.raise("invalid range for randint", span, None);
                self.e.bind(ok);
                self.e.emit(Insn::alu64_reg(AluOp::Mod, R0, R1));
            }
            ("stringat", 2) => {
                let m = self.scratch.mark();
                let b = self.scratch_buf();
                self.string_into(&args[0], b)?;
                let fm = self.frame.mark();
                let t = self.temp();
                self.long(&args[1])?;
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                self.strlen(b);
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
                self.frame.release(fm);
                // Unsigned: a negative index is out of range too.
                let ok = self.e.label();
                self.e.jmp_reg(Cond::Lt, R1, R0, ok);
                self.raise("index out of range in `stringat`", span, None);
                self.e.bind(ok);
                self.lea(R2, R7, b.off);
                self.e.emit(Insn::add64_reg(R2, R1));
                self.e.emit(Insn::ldx_mem(Size::B, R0, R2, 0));
                self.scratch.release(m);
            }
            ("local_clock_us", 0) => {
                self.call_helper(Helper::KtimeGetNs);
                self.div_const(1000);
            }
            ("gettimeofday_ns" | "gettimeofday_us" | "gettimeofday_ms" | "gettimeofday_s", 0) => {
                self.realtime_ns();
                self.div_const(match name {
                    "gettimeofday_ns" => 1,
                    "gettimeofday_us" => 1000,
                    "gettimeofday_ms" => 1_000_000,
                    _ => 1_000_000_000,
                });
            }
            ("is_return", 0) => {
                let ret = matches!(&self.probe.site, Site::Uprobe(u) if u.retprobe);
                self.e.emit(Insn::mov64_imm(R0, ret as i32));
            }
            ("exit", 0) => {
                // SystemTap lets the handler run to its end after `exit()`.
                let id = self.sh.event(EventSpec {
                    kind: EventKind::Exit,
                    size: RECORD_HEADER,
                    fields: Vec::new(),
                });
                self.header_record(id);
                self.e.emit(Insn::mov64_imm(R0, 0));
            }
            ("warn", 1) => self.string_record(EventKind::Warn, &args[0])?,
            ("abort", 0) => {
                // Nothing after `abort()` runs, not even the rest of this handler.
                let id = self.sh.event(EventSpec {
                    kind: EventKind::Abort,
                    size: RECORD_HEADER,
                    fields: Vec::new(),
                });
                self.header_record(id);
                let exit = self.exit_label;
                self.e.goto(exit);
            }
            ("error", 1) => match &args[0].kind {
                ExprKind::Str(msg) => self.raise(msg, span, None),
                _ => self.raise_computed(&args[0], span)?,
            },
            ("isinstr", 2) => self.isinstr(args)?,
            ("strlen", 1) => {
                let m = self.scratch.mark();
                let b = self.scratch_buf();
                self.string_into(&args[0], b)?;
                self.strlen(b);
                self.scratch.release(m);
            }
            ("print_ubacktrace", 0) | ("print_ustack", 1) => {
                self.print_symbolic(name, args, span)?
            }
            (n, 1) if user_int(n).is_some() => {
                let (size, signed) = user_int(n).unwrap_or((Size::DW, true));
                let m = self.frame.mark();
                let slot = self.temp();
                self.long(&args[0])?;
                // SystemTap's user_<type>() read 0 from unreadable memory.
                self.load_user(size, signed, slot, None);
                self.frame.release(m);
            }
            (n, 0) if super::task::is_task_builtin(n) => self.task_long(n, span)?,
            (n, k) if super::misc::is_misc_long(n, k) => self.misc_long(n, args, span)?,
            ("log", 1) => self.log(args, span)?,
            _ => return Err(self.unsupported(name, span)),
        }
        Ok(())
    }

    /// String-valued builtins into `dst`.
    pub fn builtin_str(&mut self, name: &str, args: &[Expr], dst: Buf, span: Span) -> R<()> {
        match (name, args.len()) {
            ("execname", 0) => {
                self.lea(R1, dst.base, dst.off);
                self.e.emit(Insn::mov64_imm(R2, 16));
                self.call_helper(Helper::GetCurrentComm);
            }
            ("pp", 0) => {
                let pp = self.pp.clone();
                self.store_literal(&pp, dst);
            }
            ("ppfunc" | "probefunc", 0) => {
                let f = match &self.probe.site {
                    Site::Uprobe(u) => u.function.clone(),
                    _ => String::new(),
                };
                self.store_literal(&f, dst);
            }
            ("user_string", 1 | 2) => self.user_string(args, false, dst, span)?,
            ("user_string_n", 2 | 3) => self.user_string(args, true, dst, span)?,
            ("user_string_quoted", 1) => self.user_string_quoted(args, false, dst)?,
            ("user_string_n_quoted", 2) => self.user_string_quoted(args, true, dst)?,
            ("text_str", 1) => self.text_str(&args[0], dst, false)?,
            ("string_quoted", 1) => self.text_str(&args[0], dst, true)?,
            ("substr", 3) => self.substr(args, dst)?,
            ("errno_str", 1) => self.errno_str(&args[0], dst)?,
            ("str_replace", 3) => self.str_replace(args, dst)?,
            ("error", _) => {
                return Err(Diagnostic::error("`error` does not return a value", span));
            }
            ("ubacktrace", 0) => self.hex_backtrace(None, dst)?,
            ("ucallers", 1) => self.hex_backtrace(Some(&args[0]), dst)?,
            (n, _) if super::stack::is_symbolic(n) => return Err(self.symbolic_elsewhere(n, span)),
            (n, _) if super::task::is_task_builtin(n) => self.task_str(n, args, dst, span)?,
            (n, k) if super::misc::is_misc_str(n, k) => self.misc_str(n, args, dst, span)?,
            ("tokenize", 2) => self.tokenize(args, dst)?,
            _ => return Err(self.unsupported(name, span)),
        }
        Ok(())
    }
}
