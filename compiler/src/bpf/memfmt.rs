//! `%m` and `%M` in printf: user memory, raw or as hex, read in BPF.
//!
//! The precision is the byte count (default 1, `*` from an argument). Each such
//! conversion becomes a `%s` of a string built before the record: the bytes
//! themselves for `%m` (cut at the first NUL, as record strings are), two hex digits
//! per byte for `%M`. Counts past what a string holds are cut to MAXSTRINGLEN − 1
//! bytes (half that for `%M`). Memory that cannot be read raises the user memory
//! read fault error, as SystemTap does for memory it cannot read.

use super::codegen::{Gen, Slot, R};
use super::insn::*;
use super::target::USER_READ_FAULT;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Expr, ExprId, ExprKind, LocalId, Type};
use rtap_lang::printf::{ConvKind, Conversion, Count, Format, Piece};
use rtap_lang::span::Span;

/// Hex digits, indexed by nibble.
const HEX: &[u8; 16] = b"0123456789abcdef";

impl Gen<'_, '_> {
    /// Whether a format has `%m` or `%M`.
    pub fn has_memory(format: &Format) -> bool {
        format.pieces.iter().any(|p| {
            matches!(p, Piece::Conv(c) if matches!(c.kind, ConvKind::Memory | ConvKind::MemoryHex))
        })
    }

    /// printf or sprintf with `%m`/`%M`: the memory is read into temporary string
    /// locals, then `then` formats the rewritten format, which has `%s` in their place.
    pub fn with_memory(
        &mut self,
        format: &Format,
        args: &[Expr],
        span: Span,
        then: impl FnOnce(&mut Self, &Format, &[Expr]) -> R<()>,
    ) -> R<()> {
        let sm = self.scratch.mark();
        let fm = self.frame.mark();
        let locals = self.locals.len();
        let r = self
            .rewrite_memory(format, args, span)
            .and_then(|(f, a)| then(self, &f, &a));
        self.locals.truncate(locals);
        self.frame.release(fm);
        self.scratch.release(sm);
        r
    }

    fn rewrite_memory(
        &mut self,
        format: &Format,
        args: &[Expr],
        span: Span,
    ) -> R<(Format, Vec<Expr>)> {
        let mut args = args.iter();
        let mut next = |span| {
            args.next()
                .cloned()
                .ok_or_else(|| Diagnostic::error("too few arguments for the format", span))
        };
        let mut pieces = Vec::new();
        let mut out_args = Vec::new();
        for p in &format.pieces {
            let Piece::Conv(c) = p else {
                pieces.push(p.clone());
                continue;
            };
            if c.width == Some(Count::Star) {
                out_args.push(next(span)?);
            }
            let precision = match c.precision {
                Some(Count::Star) => Some(next(span)?),
                _ => None,
            };
            let value = next(span)?;
            if !matches!(c.kind, ConvKind::Memory | ConvKind::MemoryHex) {
                out_args.extend(precision);
                out_args.push(value);
                pieces.push(p.clone());
                continue;
            }
            let text = self.memory_text(c, precision.as_ref(), &value)?;
            pieces.push(Piece::Conv(Conversion {
                kind: ConvKind::Str,
                precision: None,
                ..*c
            }));
            out_args.push(text);
        }
        Ok((Format { pieces }, out_args))
    }

    /// Reads the memory of one conversion into a fresh string local; returns an
    /// expression reading that local.
    fn memory_text(&mut self, c: &Conversion, precision: Option<&Expr>, addr: &Expr) -> R<Expr> {
        let cap = self.cap();
        let hex = c.kind == ConvKind::MemoryHex;
        // Hex digits of byte i go at 2i, 2i+1, with i masked below half a power of two
        // that fits in the buffer.
        let half = (1u32 << (31 - cap.leading_zeros())) / 2;
        let limit = if hex {
            ((cap - 1) / 2).min(half - 1)
        } else {
            cap - 1
        } as i32;
        let n = self.temp();
        let a = self.temp();
        match (precision, c.precision) {
            (Some(e), _) => self.long(e)?,
            (None, Some(Count::Fixed(k))) => self.ld_imm(R0, i64::from(k)),
            _ => self.e.emit(Insn::mov64_imm(R0, 1)),
        }
        // n = clamp(precision, 0, limit).
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.emit(Insn::jmp_imm(Cond::Sle, R0, limit, 1));
        self.e.emit(Insn::mov64_imm(R0, limit));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, n));
        self.long(addr)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, a));
        // The bytes, then (for `%M`) their hex text after them in a second buffer.
        let raw = self.scratch.alloc(cap) as i16;
        let text = if hex {
            self.scratch.alloc(cap) as i16
        } else {
            raw
        };
        let read = self.e.label();
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, n));
        self.e.jmp_imm(Cond::Eq, R2, 0, read);
        self.lea(R1, R7, raw);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, a));
        self.e.emit(Insn::call(Helper::ProbeReadUser));
        self.e.jmp_imm(Cond::Eq, R0, 0, read);
        self.raise(USER_READ_FAULT, addr.span, Some(a));
        self.e.bind(read);
        if hex {
            self.hex_bytes(raw, text, n, limit);
        } else {
            // NUL-terminate after n bytes (n ≤ cap − 1).
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, n));
            self.e.emit(Insn::jmp_imm(Cond::Le, R1, limit, 1));
            self.e.emit(Insn::mov64_imm(R1, 0));
            self.lea(R2, R7, raw);
            self.e.emit(Insn::add64_reg(R2, R1));
            self.e.emit(Insn::st_mem(Size::B, R2, 0, 0));
        }
        let id = LocalId(self.locals.len() as u32);
        self.locals.push(Slot::Str(text));
        Ok(Expr {
            id: ExprId(u32::MAX - id.0),
            kind: ExprKind::Local(id),
            ty: Type::String,
            span: addr.span,
        })
    }

    /// `text` = two lower-case hex digits per byte of the first `n` bytes of `raw`,
    /// then a NUL. The byte index lives in scratch so the verifier checks the loop once.
    fn hex_bytes(&mut self, raw: i16, text: i16, n: i16, limit: i32) {
        let i = self.scratch.alloc(8) as i16;
        let cap = self.cap();
        let mask = ((1u32 << (31 - cap.leading_zeros())) / 2) as i32 - 1;
        let top = self.e.label();
        let done = self.e.label();
        self.e.emit(Insn::st_mem(Size::DW, R7, i, 0));
        self.e.bind(top);
        self.e.may_goto(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, n));
        self.e.jmp_reg(Cond::Ge, R1, R2, done);
        self.e.jmp_imm(Cond::Ge, R1, limit, done);
        // r3 = raw[i]; r4 = &text[2i].
        self.e.emit(Insn::alu64_imm(AluOp::And, R1, mask));
        self.lea(R3, R7, raw);
        self.e.emit(Insn::add64_reg(R3, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R3, R3, 0));
        self.lea(R4, R7, text);
        self.e.emit(Insn::add64_reg(R4, R1));
        self.e.emit(Insn::add64_reg(R4, R1));
        for (shift, at) in [(4, 0), (0, 1)] {
            self.e.emit(Insn::mov64_reg(R5, R3));
            if shift > 0 {
                self.e.emit(Insn::alu64_imm(AluOp::Rsh, R5, shift));
            }
            self.e.emit(Insn::alu64_imm(AluOp::And, R5, 15));
            // A digit or a letter: '0' + d, or 'a' + d - 10.
            self.e.emit(Insn::jmp_imm(Cond::Lt, R5, 10, 2));
            self.e.emit(Insn::add64_imm(R5, (HEX[10] - 10) as i32));
            self.e.emit(Insn::ja(1));
            self.e.emit(Insn::add64_imm(R5, HEX[0] as i32));
            self.e.emit(Insn::stx_mem(Size::B, R4, R5, at));
        }
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, i));
        self.e.goto(top);
        self.e.bind(done);
        // NUL after 2n digits.
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, n));
        self.e.emit(Insn::alu64_imm(AluOp::And, R1, mask));
        self.lea(R4, R7, text);
        self.e.emit(Insn::add64_reg(R4, R1));
        self.e.emit(Insn::add64_reg(R4, R1));
        self.e.emit(Insn::st_mem(Size::B, R4, 0, 0));
    }
}
