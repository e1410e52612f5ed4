//! `sprintf` and `sprint*` in BPF: formats into a string buffer, number conversion included.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use rtap_lang::hir::{Expr, PrintKind};
use rtap_lang::printf::{ConvKind, Flags, Format, Piece};
use rtap_lang::span::Span;

/// Bytes of the digit area a number is converted in (sign, `0x` and 22 octal digits fit).
pub(super) const NUM_AREA: u32 = 32;

impl Gen<'_, '_> {
    /// `sprint`/`sprintln`/`sprintd`/`sprintdln` into `dst`.
    pub fn sprint(
        &mut self,
        kind: PrintKind,
        delim: Option<&str>,
        args: &[Expr],
        dst: Buf,
        span: Span,
    ) -> R<()> {
        let format = self.print_format(kind, delim, args)?;
        self.sprintf(&format, args, dst, span)
    }

    /// Formats into `dst`: plain conversions directly, others with their flags, width
    /// and precision through [`Gen::conversion`].
    pub fn sprintf(&mut self, format: &Format, args: &[Expr], dst: Buf, span: Span) -> R<()> {
        if Self::has_memory(format) {
            return self.with_memory(format, args, span, |g, f, a| g.sprintf(f, a, dst, span));
        }
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        let mut args = args.iter();
        for p in &format.pieces {
            let m = self.scratch.mark();
            let tmp = self.scratch_buf();
            match p {
                Piece::Text(t) => {
                    self.store_literal(t, tmp);
                    self.append(dst, tmp);
                }
                Piece::Conv(c)
                    if c.flags != Flags::default()
                        || c.width.is_some()
                        || c.precision.is_some()
                        || !matches!(
                            c.kind,
                            ConvKind::Str
                                | ConvKind::Signed
                                | ConvKind::Unsigned
                                | ConvKind::Octal
                                | ConvKind::HexLower
                                | ConvKind::HexUpper
                                | ConvKind::Char
                        ) =>
                {
                    self.conversion(c, &mut args, dst, span)?;
                }
                Piece::Conv(c) => {
                    let Some(arg) = args.next() else {
                        return Err(rtap_lang::diag::Diagnostic::error(
                            "too few arguments for the format",
                            span,
                        ));
                    };
                    if c.kind == ConvKind::Str {
                        self.string_into(arg, tmp)?;
                        self.append(dst, tmp);
                    } else {
                        self.long(arg)?;
                        self.number_to_str(c.kind, tmp);
                        let fm = self.frame.mark();
                        let t = self.temp();
                        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, t));
                        self.append_from(dst, t);
                        self.frame.release(fm);
                    }
                }
            }
            self.scratch.release(m);
        }
        Ok(())
    }

    /// Converts r0 into text inside `tmp`'s first [`NUM_AREA`] bytes; r1 = its start.
    pub(super) fn number_to_str(&mut self, kind: ConvKind, tmp: Buf) {
        let end = tmp.off + NUM_AREA as i16 - 1;
        self.lea(R1, tmp.base, end);
        self.e.emit(Insn::st_mem(Size::B, R1, 0, 0));
        self.e.emit(Insn::mov64_reg(R2, R0));
        if kind == ConvKind::Char {
            self.e.emit(Insn::add64_imm(R1, -1));
            self.e.emit(Insn::stx_mem(Size::B, R1, R2, 0));
            return;
        }
        let base = match kind {
            ConvKind::Octal => 8,
            ConvKind::HexLower | ConvKind::HexUpper | ConvKind::Pointer => 16,
            _ => 10,
        };
        let signed = kind == ConvKind::Signed;
        if signed {
            // r4 = 1 for a negative value; the magnitude is then converted unsigned.
            self.e.emit(Insn::mov64_imm(R4, 0));
            self.e.emit(Insn::jmp_imm(Cond::Sge, R2, 0, 2));
            self.e.emit(Insn::neg64(R2));
            self.e.emit(Insn::mov64_imm(R4, 1));
        }
        let letter = if kind == ConvKind::HexUpper {
            b'A'
        } else {
            b'a'
        };
        let top = self.e.label();
        let done = self.e.label();
        self.e.emit(Insn::mov64_imm(R3, 0));
        self.e.bind(top);
        self.e.emit(Insn::add64_imm(R1, -1));
        self.e.emit(Insn::mov64_reg(R5, R2));
        self.e.emit(Insn::alu64_imm(AluOp::Mod, R5, base));
        self.e.emit(Insn::jmp_imm(Cond::Lt, R5, 10, 2));
        self.e.emit(Insn::add64_imm(R5, letter as i32 - 10));
        self.e.emit(Insn::ja(1));
        self.e.emit(Insn::add64_imm(R5, b'0' as i32));
        self.e.emit(Insn::stx_mem(Size::B, R1, R5, 0));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R2, base));
        self.e.emit(Insn::add64_imm(R3, 1));
        self.e.jmp_imm(Cond::Eq, R2, 0, done);
        self.e.jmp_imm(Cond::Lt, R3, 22, top);
        self.e.bind(done);
        if signed {
            self.e.emit(Insn::jmp_imm(Cond::Eq, R4, 0, 2));
            self.e.emit(Insn::add64_imm(R1, -1));
            self.e.emit(Insn::st_mem(Size::B, R1, 0, b'-' as i32));
        }
        if kind == ConvKind::Pointer {
            self.e.emit(Insn::add64_imm(R1, -2));
            self.e.emit(Insn::st_mem(Size::B, R1, 0, b'0' as i32));
            self.e.emit(Insn::st_mem(Size::B, R1, 1, b'x' as i32));
        }
    }

    /// Appends the string whose address is in r10-relative slot `src` to `dst`.
    pub(super) fn append_from(&mut self, dst: Buf, src: i16) {
        self.strlen(dst);
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::add64_reg(R1, R0));
        self.e.emit(Insn::mov64_imm(R2, dst.cap as i32));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R2, R0));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, src));
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
    }
}
