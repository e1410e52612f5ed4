//! `tokenize(s, delims)` in BPF: strtok over a string kept between calls.
//!
//! A non-empty `s` replaces the kept string; `""` continues with it. Leading
//! delimiters are skipped, the token runs to the next delimiter, which is consumed,
//! as the user-space handlers do. The kept string and the position live in a per-CPU
//! map, so calls continue where the last call on that CPU stopped (user-space
//! handlers keep their own).

use super::codegen::{Buf, Gen, R};
use super::emit::Label;
use super::insn::*;
use crate::object::{MapId, MapKind};
use rtap_lang::hir::Expr;

/// Scratch slots of the walk.
struct Walk {
    /// Position in the kept string.
    i: i16,
    /// Where the token starts.
    start: i16,
    /// Position in the delimiters.
    j: i16,
    /// The byte being classified.
    c: i16,
}

impl Gen<'_, '_> {
    /// The per-CPU state: the position (`u64`), then the kept string.
    fn token_state(&mut self) -> MapId {
        if let Some(m) = self.sh.maps.iter().position(|m| m.name == "tokenize") {
            return MapId(m as u32);
        }
        let cap = self.cap();
        self.sh
            .add_map("tokenize", MapKind::PercpuArray, 4, 8 + cap, 1)
    }

    pub fn tokenize(&mut self, args: &[Expr], dst: Buf) -> R<()> {
        let cap = self.cap() as i32;
        let sm = self.scratch.mark();
        let input = self.scratch_buf();
        self.string_into(&args[0], input)?;
        let delims = self.scratch_buf();
        self.string_into(&args[1], delims)?;
        let w = Walk {
            i: self.scratch.alloc(8) as i16,
            start: self.scratch.alloc(8) as i16,
            j: self.scratch.alloc(8) as i16,
            c: self.scratch.alloc(8) as i16,
        };
        let state = self.token_state();
        let done = self.e.label();
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        // A new string: keep it and start at 0.
        let kept = self.e.label();
        self.e.emit(Insn::ldx_mem(Size::B, R1, R7, input.off));
        self.e.jmp_imm(Cond::Eq, R1, 0, kept);
        self.lookup_u32(state, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::st_mem(Size::DW, R0, 0, 0));
        self.lea(R1, R0, 8);
        self.e.emit(Insn::mov64_imm(R2, cap));
        self.lea(R3, R7, input.off);
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
        self.e.bind(kept);
        self.lookup_u32(state, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, w.i));
        // Skip delimiters.
        let skip = self.e.label();
        let token = self.e.label();
        let at_end = self.e.label();
        self.e.bind(skip);
        self.e.may_goto(done);
        self.byte_at_i(state, &w, at_end, done);
        let not_delim = self.e.label();
        self.is_delim(delims, &w, not_delim, done);
        self.bump(w.i);
        self.e.goto(skip);
        self.e.bind(not_delim);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.i));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, w.start));
        // The token: up to a delimiter (consumed) or the end.
        let cut = self.e.label();
        self.e.bind(token);
        self.e.may_goto(done);
        self.byte_at_i(state, &w, cut, done);
        let more = self.e.label();
        let delim = self.e.label();
        self.is_delim(delims, &w, more, done);
        self.e.goto(delim);
        self.e.bind(more);
        self.bump(w.i);
        self.e.goto(token);
        // At a delimiter: the next call starts after it.
        self.e.bind(delim);
        self.copy_token(state, &w, dst, 1, done);
        self.e.goto(done);
        self.e.bind(cut);
        self.copy_token(state, &w, dst, 0, done);
        self.e.goto(done);
        // Only delimiters were left: an empty token, and nothing left.
        self.e.bind(at_end);
        self.lookup_u32(state, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.i));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R1, 0));
        self.e.bind(done);
        self.scratch.release(sm);
        Ok(())
    }

    fn bump(&mut self, slot: i16) {
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, slot));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, slot));
    }

    /// Stores the kept string's byte at `i` in `c`; to `end` at its NUL (or the buffer's end).
    fn byte_at_i(&mut self, state: MapId, w: &Walk, end: Label, fail: Label) {
        let last = self.cap() as i32 - 1;
        self.lookup_u32(state, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, fail);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.i));
        self.e.jmp_imm(Cond::Ge, R1, last, end);
        self.e.emit(Insn::add64_reg(R0, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R2, R0, 8));
        self.e.jmp_imm(Cond::Eq, R2, 0, end);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R2, w.c));
    }

    /// Falls through when byte `c` is one of the delimiters, else jumps to `not`.
    fn is_delim(&mut self, delims: Buf, w: &Walk, not: Label, fail: Label) {
        let last = self.cap() as i32 - 1;
        let top = self.e.label();
        let found = self.e.label();
        self.e.emit(Insn::st_mem(Size::DW, R7, w.j, 0));
        self.e.bind(top);
        self.e.may_goto(fail);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.j));
        self.e.jmp_imm(Cond::Ge, R1, last, not);
        self.lea(R2, R7, delims.off);
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R2, R2, 0));
        self.e.jmp_imm(Cond::Eq, R2, 0, not);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, w.c));
        self.e.jmp_reg(Cond::Eq, R2, R3, found);
        self.bump(w.j);
        self.e.goto(top);
        self.e.bind(found);
    }

    /// Copies the kept string's `[start, i)` to `dst` and sets the position to `i + skip`.
    fn copy_token(&mut self, state: MapId, w: &Walk, dst: Buf, skip: i32, fail: Label) {
        let last = dst.cap as i32 - 1;
        self.lookup_u32(state, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, fail);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.i));
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::add64_imm(R2, skip));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 0));
        // r2 = the token's length, within the buffer.
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, w.start));
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R2, R3));
        self.e.jmp_imm(Cond::Gt, R2, last, fail);
        self.e.jmp_imm(Cond::Gt, R3, last, fail);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R2, w.j));
        self.e.emit(Insn::add64_reg(R0, R3));
        self.e.emit(Insn::add64_imm(R0, 8));
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.lea(R1, dst.base, dst.off);
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, w.j));
        self.e.jmp_imm(Cond::Gt, R1, last, fail);
        self.lea(R2, dst.base, dst.off);
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::st_mem(Size::B, R2, 0, 0));
    }
}
