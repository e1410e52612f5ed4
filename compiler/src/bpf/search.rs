//! Substring search in BPF: `isinstr` and `str_replace`.
//!
//! A search is two nested loops, which the verifier would walk once per pair of
//! positions. Here it is one loop, one comparison per step, headed by `may_goto`;
//! the positions live in scratch memory and are masked, not compared, to stay in
//! bounds. Every step then looks the same to the verifier, which checks the body
//! once; the kernel's loop budget (millions of steps) outlasts any search of
//! `MAXSTRINGLEN` bytes.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use rtap_lang::hir::Expr;

/// Scratch slots of a search's state.
struct State {
    /// Start of the candidate match in the subject.
    i: i16,
    /// Bytes of the pattern matched so far.
    j: i16,
    /// Output position (`str_replace`).
    o: i16,
    /// Position in the replacement being copied, or -1 while matching.
    k: i16,
}

impl Gen<'_, '_> {
    /// Evaluates string operands into buffers a masked index stays inside.
    fn search_operands(&mut self, args: &[Expr]) -> R<Vec<Buf>> {
        let cap = self.cap();
        let area = cap.next_power_of_two();
        let mut bufs = Vec::new();
        for a in args {
            let b = Buf {
                base: R7,
                off: self.scratch.alloc(area) as i16,
                cap,
            };
            self.string_into(a, b)?;
            bufs.push(b);
        }
        Ok(bufs)
    }

    fn search_state(&mut self) -> State {
        let mut slot = || {
            let off = self.scratch.alloc(8) as i16;
            self.e.emit(Insn::st_mem(Size::DW, R7, off, 0));
            off
        };
        State {
            i: slot(),
            j: slot(),
            o: slot(),
            k: slot(),
        }
    }

    /// `reg` = the byte at `buf[(slot value [+ reg2]) & mask]`.
    fn byte_at(&mut self, reg: Reg, buf: Buf, index: Reg) {
        let mask = self.cap().next_power_of_two() as i32 - 1;
        self.e.emit(Insn::alu64_imm(AluOp::And, index, mask));
        self.lea(reg, R7, buf.off);
        self.e.emit(Insn::add64_reg(reg, index));
        self.e.emit(Insn::ldx_mem(Size::B, reg, reg, 0));
    }

    /// `isinstr(s1, s2)`: 1 when `s2` occurs in `s1` (the empty string always does).
    pub fn isinstr(&mut self, args: &[Expr]) -> R<()> {
        let sm = self.scratch.mark();
        let b = self.search_operands(args)?;
        let (s, f) = (b[0], b[1]);
        let st = self.search_state();
        let top = self.e.label();
        let found = self.e.label();
        let absent = self.e.label();
        let done = self.e.label();
        self.e.bind(top);
        self.e.may_goto(absent);
        // r2 = pattern byte j, r3 = subject byte i + j.
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.j));
        self.byte_at(R2, f, R4);
        self.e.jmp_imm(Cond::Eq, R2, 0, found);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.e.emit(Insn::add64_reg(R5, R4));
        self.byte_at(R3, s, R5);
        self.e.jmp_imm(Cond::Eq, R3, 0, absent);
        let differ = self.e.label();
        self.e.jmp_reg(Cond::Ne, R2, R3, differ);
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.j));
        self.e.emit(Insn::add64_imm(R4, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R4, st.j));
        self.e.goto(top);
        self.e.bind(differ);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.e.emit(Insn::add64_imm(R5, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R5, st.i));
        self.e.emit(Insn::st_mem(Size::DW, R7, st.j, 0));
        self.e.goto(top);
        self.e.bind(found);
        self.e.emit(Insn::mov64_imm(R0, 1));
        self.e.goto(done);
        self.e.bind(absent);
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.bind(done);
        self.scratch.release(sm);
        Ok(())
    }

    /// `str_replace(s, find, repl)`: every non-overlapping `find`, left to right,
    /// replaced; `s` unchanged when `find` is empty; cut at `MAXSTRINGLEN`.
    pub fn str_replace(&mut self, args: &[Expr], dst: Buf) -> R<()> {
        let sm = self.scratch.mark();
        let b = self.search_operands(args)?;
        let (s, f, r) = (b[0], b[1], b[2]);
        let out = Buf {
            base: R7,
            off: self.scratch.alloc(self.cap().next_power_of_two() + 8) as i16,
            cap: self.cap(),
        };
        let st = self.search_state();
        self.e.emit(Insn::st_mem(Size::DW, R7, st.k, -1));
        let top = self.e.label();
        let finish = self.e.label();
        let copying = self.e.label();
        let differ = self.e.label();
        let matched = self.e.label();
        let last = self.cap() as i32 - 1;
        // An empty pattern replaces nothing.
        self.e.emit(Insn::ldx_mem(Size::B, R2, R7, f.off));
        let scan = self.e.label();
        self.e.jmp_imm(Cond::Ne, R2, 0, scan);
        self.copy_str(dst, R7, s.off);
        let end = self.e.label();
        self.e.goto(end);
        self.e.bind(scan);
        self.e.bind(top);
        self.e.may_goto(finish);
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.k));
        self.e.jmp_imm(Cond::Sge, R4, 0, copying);
        // Matching: r2 = pattern byte j, r3 = subject byte i + j.
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.j));
        self.byte_at(R2, f, R4);
        self.e.jmp_imm(Cond::Eq, R2, 0, matched);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.e.emit(Insn::add64_reg(R5, R4));
        self.byte_at(R3, s, R5);
        self.e.jmp_reg(Cond::Ne, R2, R3, differ);
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.j));
        self.e.emit(Insn::add64_imm(R4, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R4, st.j));
        self.e.goto(top);
        // A whole match: skip it in the subject and copy the replacement.
        self.e.bind(matched);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.j));
        self.e.emit(Insn::add64_reg(R5, R4));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R5, st.i));
        self.e.emit(Insn::st_mem(Size::DW, R7, st.j, 0));
        self.e.emit(Insn::st_mem(Size::DW, R7, st.k, 0));
        self.e.goto(top);
        // No match at i: the subject's byte i goes out as is.
        self.e.bind(differ);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.byte_at(R3, s, R5);
        self.e.jmp_imm(Cond::Eq, R3, 0, finish);
        self.emit_byte(out, st.o, last, finish);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, st.i));
        self.e.emit(Insn::add64_imm(R5, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R5, st.i));
        self.e.emit(Insn::st_mem(Size::DW, R7, st.j, 0));
        self.e.goto(top);
        // Copying the replacement: byte k, until its NUL.
        self.e.bind(copying);
        self.byte_at(R3, r, R4);
        let copied = self.e.label();
        self.e.jmp_imm(Cond::Eq, R3, 0, copied);
        self.emit_byte(out, st.o, last, finish);
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R7, st.k));
        self.e.emit(Insn::add64_imm(R4, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R4, st.k));
        self.e.goto(top);
        self.e.bind(copied);
        self.e.emit(Insn::st_mem(Size::DW, R7, st.k, -1));
        self.e.goto(top);
        self.e.bind(finish);
        let mask = self.cap().next_power_of_two() as i32 - 1;
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.o));
        self.e.emit(Insn::alu64_imm(AluOp::And, R1, mask));
        self.e.emit(Insn::add64_reg(R1, R7));
        self.e.emit(Insn::st_mem(Size::B, R1, out.off, 0));
        self.copy_str(dst, R7, out.off);
        self.e.bind(end);
        self.scratch.release(sm);
        Ok(())
    }

    /// Appends the byte in r3 to `out` at the position in `slot`; to `full` when the
    /// string limit is reached.
    fn emit_byte(&mut self, out: Buf, slot: i16, last: i32, full: super::emit::Label) {
        let mask = self.cap().next_power_of_two() as i32 - 1;
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, slot));
        self.e.jmp_imm(Cond::Ge, R1, last, full);
        self.e.emit(Insn::mov64_reg(R4, R1));
        self.e.emit(Insn::add64_imm(R4, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R4, slot));
        self.e.emit(Insn::alu64_imm(AluOp::And, R1, mask));
        self.e.emit(Insn::add64_reg(R1, R7));
        self.e.emit(Insn::stx_mem(Size::B, R1, R3, out.off));
    }
}
