//! String values: NUL-terminated buffers of `MAXSTRINGLEN` bytes in the per-CPU scratch value.

use super::codegen::{Buf, Gen, RetDest, Slot, R};
use super::insn::*;
use rtap_lang::hir::{AssignOp, Expr, ExprKind, LValue};
use rtap_lang::span::Span;

/// The message of a `user_string` fault, SystemTap's wording.
pub const USER_STRING_FAULT: &str = "user string copy fault at {addr}";

impl Gen<'_, '_> {
    /// Evaluates a string expression into `dst`.
    pub fn string_into(&mut self, e: &Expr, dst: Buf) -> R<()> {
        match &e.kind {
            ExprKind::Str(s) => self.store_literal(s, dst),
            ExprKind::Local(id) => match self.locals[id.0 as usize] {
                Slot::Str(off) => {
                    if dst.base != R7 || dst.off != off {
                        self.copy_str(dst, R7, off);
                    }
                }
                Slot::Long(_) => return Err(self.not_yet("a number used as a string", e.span)),
            },
            ExprKind::Global(g) => self.element_str(*g, &[], dst, e.span)?,
            ExprKind::Element { array, keys } => self.element_str(*array, keys, dst, e.span)?,
            ExprKind::Ternary { cond, then, els } if self.known(cond).is_some() => {
                let taken = if self.known(cond) == Some(true) {
                    then
                } else {
                    els
                };
                self.string_into(taken, dst)?;
            }
            ExprKind::Ternary { cond, then, els } => {
                let f = self.e.label();
                let end = self.e.label();
                self.branch(cond, f, false)?;
                self.string_into(then, dst)?;
                self.e.goto(end);
                self.e.bind(f);
                self.string_into(els, dst)?;
                self.e.bind(end);
            }
            ExprKind::Call { func, args } => self.call(*func, args, RetDest::Str(dst), e.span)?,
            ExprKind::Builtin { name, args } => self.builtin_str(name, args, dst, e.span)?,
            ExprKind::Concat(a, b) => {
                self.string_into(a, dst)?;
                let m = self.scratch.mark();
                let tmp = self.scratch_buf();
                self.string_into(b, tmp)?;
                self.append(dst, tmp);
                self.scratch.release(m);
            }
            ExprKind::Printf {
                to_string: true,
                format,
                args,
            } => self.sprintf(format, args, dst, e.span)?,
            ExprKind::Print {
                kind,
                to_string: true,
                delim,
                args,
            } => self.sprint(*kind, delim.as_deref(), args, dst, e.span)?,
            ExprKind::Assign { target, op, value } => {
                self.assign_str(target, *op, value, e.span)?;
                let m = self.scratch.mark();
                let tmp = self.scratch_buf();
                self.string_into(&lvalue_expr(target, e), tmp)?;
                self.copy_str(dst, tmp.base, tmp.off);
                self.scratch.release(m);
            }
            ExprKind::Target(_) | ExprKind::Entry(_) if self.read_saved(e, Some(dst))? => {}
            ExprKind::Target(t) => self.pretty(e, t, dst)?,
            ExprKind::Entry(_) => {
                return Err(self.not_yet("`@entry` outside a `.return` probe's handler", e.span))
            }
            _ => return Err(self.unsupported(super::expr::describe(e), e.span)),
        }
        Ok(())
    }

    /// Stores a literal, truncated to `cap - 1` bytes, with its NUL.
    pub fn store_literal(&mut self, s: &str, dst: Buf) {
        let mut bytes: Vec<u8> = s.bytes().take(dst.cap as usize - 1).collect();
        bytes.push(0);
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let v = i64::from_le_bytes(word);
            let off = dst.off + 8 * i as i16;
            match i32::try_from(v) {
                Ok(small) => self.e.emit(Insn::st_mem(Size::DW, dst.base, off, small)),
                Err(_) => {
                    self.e.emit2(Insn::ld_imm64(R1, v));
                    self.e.emit(Insn::stx_mem(Size::DW, dst.base, R1, off));
                }
            }
        }
    }

    /// Copies the NUL-terminated string at `src + off` into `dst`.
    pub fn copy_str(&mut self, dst: Buf, src: Reg, off: i16) {
        self.lea(R3, src, off);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::mov64_imm(R2, dst.cap as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
    }

    /// r0 = length of the string in `buf` (copying it onto itself counts it).
    pub fn strlen(&mut self, buf: Buf) {
        self.copy_str(buf, buf.base, buf.off);
        self.e.emit(Insn::add64_imm(R0, -1));
        self.e
            .emit(Insn::jmp_imm(Cond::Sle, R0, buf.cap as i32 - 1, 1));
        self.e.emit(Insn::mov64_imm(R0, buf.cap as i32 - 1));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
        self.e.emit(Insn::mov64_imm(R0, 0));
    }

    /// Appends `src` to `dst`, truncating at `dst.cap - 1` bytes.
    pub fn append(&mut self, dst: Buf, src: Buf) {
        self.strlen(dst);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::add64_reg(R1, R0));
        self.e.emit(Insn::mov64_imm(R2, dst.cap as i32));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R2, R0));
        self.lea(R3, src.base, src.off);
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
    }

    /// The scratch offset of a string operand, evaluating it unless it is a local.
    fn str_operand(&mut self, e: &Expr) -> R<i16> {
        if let ExprKind::Local(id) = &e.kind {
            if let Slot::Str(off) = self.locals[id.0 as usize] {
                return Ok(off);
            }
        }
        let b = self.scratch_buf();
        self.string_into(e, b)?;
        Ok(b.off)
    }

    /// r0 = sign of `strcmp(lhs, rhs)` as a difference of the first unequal bytes.
    pub fn str_compare(&mut self, lhs: &Expr, rhs: &Expr) -> R<()> {
        let m = self.scratch.mark();
        let a = self.str_operand(lhs)?;
        let b = self.str_operand(rhs)?;
        self.scratch.release(m);
        let top = self.e.label();
        let eq = self.e.label();
        let diff = self.e.label();
        let done = self.e.label();
        self.lea(R1, R7, a);
        self.lea(R2, R7, b);
        self.e.emit(Insn::mov64_imm(R3, 0));
        self.e.bind(top);
        self.e.emit(Insn::ldx_mem(Size::B, R4, R1, 0));
        self.e.emit(Insn::ldx_mem(Size::B, R5, R2, 0));
        self.e.jmp_reg(Cond::Ne, R4, R5, diff);
        self.e.jmp_imm(Cond::Eq, R4, 0, eq);
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::add64_imm(R2, 1));
        self.e.emit(Insn::add64_imm(R3, 1));
        self.e.jmp_imm(Cond::Lt, R3, self.cap() as i32, top);
        self.e.bind(eq);
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.goto(done);
        self.e.bind(diff);
        self.e.emit(Insn::mov64_reg(R0, R4));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R0, R5));
        self.e.bind(done);
        Ok(())
    }

    /// `s = e` and `s .= e` on a string local or global.
    pub fn assign_str(
        &mut self,
        target: &LValue,
        op: Option<AssignOp>,
        value: &Expr,
        span: Span,
    ) -> R<()> {
        let m = self.scratch.mark();
        match (target, op) {
            (LValue::Local(id), _) => {
                let Slot::Str(off) = self.locals[id.0 as usize] else {
                    return Err(self.not_yet("a string assigned to a number", span));
                };
                let slot = Buf {
                    base: R7,
                    off,
                    cap: self.cap(),
                };
                match op {
                    None if matches!(value.kind, ExprKind::Str(_)) => {
                        self.string_into(value, slot)?
                    }
                    None => {
                        // Through a temporary: the value may read the target (`s = "x" . s`).
                        let tmp = self.scratch_buf();
                        self.string_into(value, tmp)?;
                        self.copy_str(slot, R7, tmp.off);
                    }
                    Some(AssignOp::Concat) => {
                        let tmp = self.scratch_buf();
                        self.string_into(value, tmp)?;
                        self.append(slot, tmp);
                    }
                    Some(AssignOp::Bin(_)) => {
                        return Err(self.not_yet("arithmetic on a string", span))
                    }
                }
            }
            (_, None) => {
                let tmp = self.scratch_buf();
                self.string_into(value, tmp)?;
                self.store_str_global(target, tmp, span)?;
            }
            (_, Some(AssignOp::Concat)) => {
                let tmp = self.scratch_buf();
                let current = lvalue_expr(target, value);
                self.string_into(&current, tmp)?;
                let rhs = self.scratch_buf();
                self.string_into(value, rhs)?;
                self.append(tmp, rhs);
                self.store_str_global(target, tmp, span)?;
            }
            (_, Some(AssignOp::Bin(_))) => return Err(self.not_yet("arithmetic on a string", span)),
        }
        self.scratch.release(m);
        Ok(())
    }

    /// Reads a user string into `dst` with `bpf_probe_read_user_str`; r0 < 0 on a fault.
    /// `addr` and `n` are r10-relative slots.
    /// A page the process never touched cannot be read from a uprobe without faulting
    /// it in, so a failed read is retried with `bpf_copy_from_user_str`, which may sleep.
    pub fn read_user_str(&mut self, dst: Buf, addr: i16, n: Option<i16>) {
        self.read_str(dst, addr, n, Helper::ProbeReadUserStr);
        // Only uprobe programs may sleep; timers and tracepoints keep the plain read.
        if self.kind != crate::object::ProgramKind::Uprobe {
            return;
        }
        let done = self.e.label();
        self.e.jmp_imm(Cond::Sge, R0, 0, done);
        self.read_str_size(dst, n);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, addr));
        self.e.emit(Insn::mov64_imm(R4, 0));
        self.e.emit(Insn::call_kfunc(0));
        // The kfunc returns a 32-bit int: sign-extend it so failures stay negative.
        self.e.emit(Insn::alu64_imm(AluOp::Lsh, R0, 32));
        self.e.emit(Insn::alu64_imm(AluOp::Arsh, R0, 32));
        self.e.bind(done);
    }

    /// r2 = how many bytes a string read may write: `n + 1` within `[1, cap]`, or `cap`.
    fn read_str_size(&mut self, dst: Buf, n: Option<i16>) {
        let cap = dst.cap as i32;
        match n {
            Some(n) => {
                self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, n));
                self.e.emit(Insn::add64_imm(R2, 1));
                self.e.emit(Insn::jmp_imm(Cond::Sle, R2, cap, 1));
                self.e.emit(Insn::mov64_imm(R2, cap));
                self.e.emit(Insn::jmp_imm(Cond::Sge, R2, 1, 1));
                self.e.emit(Insn::mov64_imm(R2, 1));
            }
            None => self.e.emit(Insn::mov64_imm(R2, cap)),
        }
    }

    /// Reads at most `n` bytes (all of `dst` without `n`) of the string at the address in
    /// slot `addr`, with `helper` (the user or the kernel string read); r0 < 0 on a fault.
    pub fn read_str(&mut self, dst: Buf, addr: i16, n: Option<i16>, helper: Helper) {
        self.read_str_size(dst, n);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, addr));
        self.e.emit(Insn::call(helper));
    }

    /// Evaluates the address (and, for `user_string_n`, the length) of a user string read
    /// into stack temporaries.
    pub fn user_string_operands(&mut self, args: &[Expr], with_n: bool) -> R<(i16, Option<i16>)> {
        let addr = self.temp();
        self.long(&args[0])?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, addr));
        let n = if with_n {
            let n = self.temp();
            self.long(&args[1])?;
            self.e.emit(Insn::stx_mem(Size::DW, R10, R0, n));
            Some(n)
        } else {
            None
        };
        Ok((addr, n))
    }

    /// `user_string(addr[, err])` and `user_string_n(addr, n[, err])` into a scratch buffer.
    pub fn user_string(&mut self, args: &[Expr], with_n: bool, dst: Buf, span: Span) -> R<()> {
        let m = self.frame.mark();
        let (addr, n) = self.user_string_operands(args, with_n)?;
        self.read_user_str(dst, addr, n);
        let ok = self.e.label();
        self.e.jmp_imm(Cond::Sge, R0, 0, ok);
        match args.get(1 + with_n as usize) {
            Some(err) => self.string_into(err, dst)?,
            None => self.raise(USER_STRING_FAULT, span, Some(addr)),
        }
        self.e.bind(ok);
        self.frame.release(m);
        Ok(())
    }
}

/// An expression reading an lvalue, for read-modify-write of strings.
fn lvalue_expr(target: &LValue, like: &Expr) -> Expr {
    let kind = match target {
        LValue::Local(id) => ExprKind::Local(*id),
        LValue::Global(g) => ExprKind::Global(*g),
        LValue::Element { array, keys } => ExprKind::Element {
            array: *array,
            keys: keys.clone(),
        },
    };
    Expr {
        id: like.id,
        kind,
        ty: like.ty,
        span: like.span,
    }
}
