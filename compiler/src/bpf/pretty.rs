//! Pretty-printed target expressions (`$v$`, `$$vars` ...) in BPF: the resolver's
//! `PrettyPlan` formatted into a string, value by value.

use super::codegen::{Buf, Gen, R};
use super::emit::Label;
use super::insn::*;
use crate::access::{PrettyConv, PrettyPiece};
use crate::object::ProgramKind;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Expr, TargetExpr};
use rtap_lang::printf::ConvKind;

/// What a user string that cannot be read prints as (SystemTap's `user_string2` default).
const UNKNOWN: &str = "<unknown>";

impl Gen<'_, '_> {
    /// Formats a pretty-printed target expression into `dst`.
    pub fn pretty(&mut self, e: &Expr, t: &TargetExpr, dst: Buf) -> R<()> {
        let name = self.sh.sources.snippet(t.span).to_string();
        if self.kind != ProgramKind::Uprobe {
            return Err(Diagnostic::error(
                format!("target variable `{name}` is only available in process probes"),
                e.span,
            ));
        }
        let Some(plan) = self.probe.pretty.get(&e.id).cloned() else {
            return Err(Diagnostic::error(
                format!("`{name}` cannot be pretty-printed at this probe"),
                e.span,
            ));
        };
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.pretty_pieces(&plan.pieces, e, t, dst, None)
    }

    fn pretty_pieces(
        &mut self,
        pieces: &[PrettyPiece],
        e: &Expr,
        t: &TargetExpr,
        dst: Buf,
        fault: Option<Label>,
    ) -> R<()> {
        for p in pieces {
            match p {
                PrettyPiece::Text(s) => self.append_literal(dst, s),
                PrettyPiece::Value { ops, conv } => {
                    self.run_ops(ops, e, t, fault)?;
                    self.pretty_value(*conv, dst);
                }
                PrettyPiece::Guarded(inner) => {
                    let fm = self.frame.mark();
                    let len = self.temp();
                    self.strlen(dst);
                    self.e.emit(Insn::stx_mem(Size::DW, R10, R0, len));
                    let err = self.e.label();
                    let done = self.e.label();
                    self.pretty_pieces(inner, e, t, dst, Some(err))?;
                    self.e.goto(done);
                    // A fault: what this group printed gives way to `ERROR`.
                    self.e.bind(err);
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, len));
                    let cut = self.e.label();
                    self.e.jmp_imm(Cond::Ge, R1, dst.cap as i32, cut);
                    self.lea(R2, dst.base, dst.off);
                    self.e.emit(Insn::add64_reg(R2, R1));
                    self.e.emit(Insn::st_mem(Size::B, R2, 0, 0));
                    self.e.bind(cut);
                    self.append_literal(dst, "ERROR");
                    self.e.bind(done);
                    self.frame.release(fm);
                }
            }
        }
        Ok(())
    }

    /// `%#c` of the byte in r0 into `tmp`: its escape from the escape table, as
    /// `_stp_text_str` writes it, and `'` as `\'`; NUL, which ends strings there, is `\000`.
    pub fn escaped_char(&mut self, tmp: Buf) {
        let table = self.sh.escape_table();
        let fm = self.frame.mark();
        let v = self.temp();
        self.e.emit(Insn::alu64_imm(AluOp::And, R0, 0xff));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, v));
        let done = self.e.label();
        let nul = self.e.label();
        let quote = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, nul);
        // `%#c` escapes the single quote too, as the printf formatter does.
        self.e.jmp_imm(Cond::Eq, R0, b'\'' as i32, quote);
        self.lookup_u32(table, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, nul);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, v));
        self.e.emit(Insn::alu64_imm(AluOp::Lsh, R1, 3));
        self.e.emit(Insn::add64_reg(R0, R1));
        self.e.emit(Insn::ldx_mem(Size::W, R1, R0, 0));
        self.e.emit(Insn::stx_mem(Size::W, tmp.base, R1, tmp.off));
        self.e.emit(Insn::st_mem(Size::B, tmp.base, tmp.off + 4, 0));
        self.e.goto(done);
        self.e.bind(quote);
        self.store_literal("\\'", tmp);
        self.e.goto(done);
        self.e.bind(nul);
        self.store_literal("\\000", tmp);
        self.e.bind(done);
        self.frame.release(fm);
    }

    fn append_literal(&mut self, dst: Buf, s: &str) {
        let m = self.scratch.mark();
        let tmp = self.scratch_buf();
        self.store_literal(s, tmp);
        self.append(dst, tmp);
        self.scratch.release(m);
    }

    /// Appends the value in r0 to `dst`.
    fn pretty_value(&mut self, conv: PrettyConv, dst: Buf) {
        let m = self.scratch.mark();
        let fm = self.frame.mark();
        let v = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, v));
        let tmp = self.scratch_buf();
        match conv {
            PrettyConv::Str => {
                let ok = self.e.label();
                self.read_user_str(tmp, v, None);
                self.e.jmp_imm(Cond::Sge, R0, 0, ok);
                self.store_literal(UNKNOWN, tmp);
                self.e.bind(ok);
                self.append(dst, tmp);
            }
            PrettyConv::Char => {
                self.escaped_char(tmp);
                self.append(dst, tmp);
            }
            PrettyConv::Hex | PrettyConv::Signed | PrettyConv::Unsigned | PrettyConv::Pointer => {
                if conv == PrettyConv::Hex {
                    self.append_literal(dst, "0x");
                    self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, v));
                }
                let kind = match conv {
                    PrettyConv::Hex => ConvKind::HexLower,
                    PrettyConv::Signed => ConvKind::Signed,
                    PrettyConv::Unsigned => ConvKind::Unsigned,
                    _ => ConvKind::Pointer,
                };
                self.number_to_str(kind, tmp);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, v));
                self.append_from(dst, v);
            }
        }
        self.frame.release(fm);
        self.scratch.release(m);
    }
}
