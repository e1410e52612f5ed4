//! User stacks and symbols: captured in BPF, turned into text by the runtime's symbolizer.
//!
//! `ubacktrace()` and `ucallers(n)` are hex strings made in BPF, so they work as
//! values anywhere (map keys included). Names of symbols, modules and frames exist only
//! in user space: `print_ubacktrace()`, `print_ustack(s)` and the string-valued
//! `sprint_ubacktrace()`, `sprint_ustack(s)`, `usymname`, `usymdata` and `umodname`
//! become fields of a [`EventKind::SymbolicPrintf`] record, so the latter are allowed
//! only where their value goes straight into `print*`/`printf`.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use crate::object::*;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Expr, ExprId, ExprKind, Type};
use rtap_lang::printf::{ConvKind, Conversion, Flags, Format, Piece};
use rtap_lang::span::Span;

const BPF_F_USER_STACK: i32 = 1 << 8;
const BPF_F_USER_BUILD_ID: i32 = 1 << 11;
/// `offsetof(struct pt_regs, sp)` on x86-64.
const PT_REGS_SP: i16 = 152;

/// The builtins whose text only user space can produce.
const SYMBOLIC: [&str; 7] = [
    "print_ubacktrace",
    "sprint_ubacktrace",
    "print_ustack",
    "sprint_ustack",
    "usymname",
    "usymdata",
    "umodname",
];

/// What a symbolic printf argument becomes, if `e` is one. `print_ubacktrace` and
/// `print_ustack` only arrive here as the string argument [`Gen::print_symbolic`] builds.
pub(super) fn symbolic(e: &Expr) -> Option<Symbolic> {
    let ExprKind::Builtin { name, args } = &e.kind else {
        return None;
    };
    if e.ty != Type::String {
        return None;
    }
    Some(match (name.as_str(), args.len()) {
        ("print_ubacktrace", 0) => Symbolic::Stack(StackStyle::Full),
        ("sprint_ubacktrace", 0) => Symbolic::Stack(StackStyle::Simple),
        ("print_ustack", 1) => Symbolic::HexStack(StackStyle::Full),
        ("sprint_ustack", 1) => Symbolic::HexStack(StackStyle::Simple),
        ("usymname", 1) => Symbolic::Addr(AddrStyle::Name),
        ("usymdata", 1) => Symbolic::Addr(AddrStyle::Data),
        ("umodname", 1) => Symbolic::Addr(AddrStyle::Module),
        _ => return None,
    })
}

/// Whether `name` is computed in user space (see [`symbolic`]).
pub(super) fn is_symbolic(name: &str) -> bool {
    SYMBOLIC.contains(&name)
}

/// The record field of a symbolic argument, and its size.
pub(super) fn field(s: Symbolic, cap: u32) -> (FieldKind, u32) {
    match s {
        Symbolic::Stack(_) => (FieldKind::Long, USTACK_BYTES),
        Symbolic::HexStack(_) => (FieldKind::Str { cap }, cap.div_ceil(8) * 8 + ANCHOR_BYTES),
        Symbolic::Addr(_) => (FieldKind::Long, 8 + ANCHOR_BYTES),
    }
}

/// A symbolic argument evaluated before its record is reserved.
pub(super) enum Deferred {
    /// Captured straight into the record.
    Stack,
    /// An address in an r10-relative slot.
    Addr(i16),
    /// `ubacktrace()` text in scratch.
    Text(i16),
}

impl Gen<'_, '_> {
    /// `print_ubacktrace()` and `print_ustack(s)`: a `printf("%s", …)` of their text.
    pub(super) fn print_symbolic(&mut self, name: &str, args: &[Expr], span: Span) -> R<()> {
        let arg = Expr {
            id: ExprId(u32::MAX),
            kind: ExprKind::Builtin {
                name: name.to_string(),
                args: args.to_vec(),
            },
            ty: Type::String,
            span,
        };
        let format = Format {
            pieces: vec![Piece::Conv(Conversion {
                flags: Flags::default(),
                width: None,
                precision: None,
                kind: ConvKind::Str,
            })],
        };
        self.printf(&format, &[arg], span)?;
        self.e.emit(Insn::mov64_imm(R0, 0));
        Ok(())
    }

    /// Refuses a symbolic builtin whose string would be needed in BPF.
    pub(super) fn symbolic_elsewhere(&self, name: &str, span: Span) -> Diagnostic {
        Diagnostic::error(
            format!(
                "`{name}` is computed in user space: it can only be an argument of \
                 `print`, `println`, `printd`, `printdln` or `printf`"
            ),
            span,
        )
    }

    /// Evaluates what a symbolic argument needs before the record is reserved.
    pub(super) fn stage_symbolic(&mut self, s: Symbolic, e: &Expr) -> R<Deferred> {
        let ExprKind::Builtin { args, .. } = &e.kind else {
            return Ok(Deferred::Stack);
        };
        Ok(match s {
            Symbolic::Stack(_) => Deferred::Stack,
            Symbolic::Addr(_) => {
                let t = self.temp();
                self.long(&args[0])?;
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                Deferred::Addr(t)
            }
            Symbolic::HexStack(_) => {
                let b = self.scratch_buf();
                self.string_into(&args[0], b)?;
                Deferred::Text(b.off)
            }
        })
    }

    /// Writes a symbolic argument into its field of the record in r8.
    pub(super) fn fill_symbolic(&mut self, d: &Deferred, dst: Buf) {
        match d {
            Deferred::Addr(t) => {
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, *t));
                self.e.emit(Insn::stx_mem(Size::DW, R8, R1, dst.off));
                self.capture_stack(dst.off + 8, MAX_BACKTRACE);
            }
            Deferred::Text(off) => {
                self.copy_str(dst, R7, *off);
                self.capture_stack(dst.off + (dst.cap.div_ceil(8) * 8) as i16, MAX_BACKTRACE);
            }
            Deferred::Stack => self.capture_stack(dst.off, MAX_BACKTRACE),
        }
    }

    /// Fills a stack area of `frames` frames (see [`USTACK_BYTES`]) at `r8 + off`.
    fn capture_stack(&mut self, off: i16, frames: u32) {
        let ips = off + 8;
        let n_ids = ips + 8 * frames as i16;
        let ids = n_ids + 8;
        let sp = ids + (BUILD_ID_FRAME * frames) as i16;
        for (count, at, size, flags, shift) in [
            (off, ips, 8 * frames, BPF_F_USER_STACK, 3),
            (
                n_ids,
                ids,
                BUILD_ID_FRAME * frames,
                BPF_F_USER_STACK | BPF_F_USER_BUILD_ID,
                5,
            ),
        ] {
            self.e.emit(Insn::mov64_reg(R1, R6));
            self.lea(R2, R8, at);
            self.e.emit(Insn::mov64_imm(R3, size as i32));
            self.e.emit(Insn::mov64_imm(R4, flags));
            self.e.emit(Insn::call(Helper::GetStack));
            // A negative result (no user stack) is an empty stack.
            self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
            self.e.emit(Insn::mov64_imm(R0, 0));
            self.e.emit(Insn::alu64_imm(AluOp::Rsh, R0, shift));
            self.e.emit(Insn::stx_mem(Size::DW, R8, R0, count));
        }
        if self.kind == ProgramKind::Uprobe {
            // The word at the stack pointer; the helper zeroes it on a fault.
            self.e.emit(Insn::ldx_mem(Size::DW, R3, R6, PT_REGS_SP));
            self.lea(R1, R8, sp);
            self.e.emit(Insn::mov64_imm(R2, 8));
            self.e.emit(Insn::call(Helper::ProbeReadUser));
        } else {
            self.e.emit(Insn::st_mem(Size::DW, R8, sp, 0));
        }
    }

    /// `ubacktrace()` and `ucallers(n)`: the user stack's addresses as `0x…` words
    /// separated by spaces; `ucallers` keeps the top frame and `n` more (all for -1).
    pub(super) fn hex_backtrace(&mut self, callers: Option<&Expr>, dst: Buf) -> R<()> {
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let limit = self.temp();
        let count = self.temp();
        let i = self.temp();
        let text = self.temp();
        match callers {
            Some(n) => {
                self.long(n)?;
                // n = -1 (or any negative) keeps every frame.
                self.e.emit(Insn::add64_imm(R0, 1));
                self.e.emit(Insn::jmp_imm(Cond::Sgt, R0, 0, 1));
                self.e.emit(Insn::mov64_imm(R0, MAX_BACKTRACE as i32));
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, limit));
            }
            None => self
                .e
                .emit(Insn::st_mem(Size::DW, R10, limit, MAX_BACKTRACE as i32)),
        }
        let area = self.scratch.alloc(8 * MAX_BACKTRACE) as i16;
        let tmp = self.scratch_buf();
        self.e.emit(Insn::mov64_reg(R1, R6));
        self.lea(R2, R7, area);
        self.e.emit(Insn::mov64_imm(R3, (8 * MAX_BACKTRACE) as i32));
        self.e.emit(Insn::mov64_imm(R4, BPF_F_USER_STACK));
        self.e.emit(Insn::call(Helper::GetStack));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.emit(Insn::alu64_imm(AluOp::Rsh, R0, 3));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, limit));
        self.e.emit(Insn::jmp_reg(Cond::Le, R0, R1, 1));
        self.e.emit(Insn::mov64_reg(R0, R1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, count));
        self.e.emit(Insn::st_mem(Size::DW, R10, i, 0));
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));

        let top = self.e.label();
        let first = self.e.label();
        let done = self.e.label();
        self.e.bind(top);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, i));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, count));
        self.e.jmp_reg(Cond::Ge, R1, R2, done);
        // The verifier needs the bound in the register it checks.
        self.e.jmp_imm(Cond::Ge, R1, MAX_BACKTRACE as i32, done);
        self.e.jmp_imm(Cond::Eq, R1, 0, first);
        self.store_literal(" ", tmp);
        self.append(dst, tmp);
        self.e.bind(first);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, i));
        self.e.jmp_imm(Cond::Ge, R1, MAX_BACKTRACE as i32, done);
        self.e.emit(Insn::alu64_imm(AluOp::Lsh, R1, 3));
        self.e.emit(Insn::mov64_reg(R2, R7));
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R2, area));
        self.number_to_str(ConvKind::Pointer, tmp);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, text));
        self.append_from(dst, text);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, i));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, i));
        self.e.goto(top);
        self.e.bind(done);
        self.scratch.release(sm);
        self.frame.release(fm);
        Ok(())
    }
}
