//! Target expressions: access plans executed on an accumulator over x86-64 `pt_regs`.

use super::codegen::{Gen, R};
use super::insn::*;
use crate::access::{AccessOp, DwarfReg};
use crate::object::ProgramKind;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Accessor, Expr, TargetBase, TargetExpr};

/// Offset in x86-64 `struct pt_regs` of a DWARF register.
pub fn pt_regs_offset(r: DwarfReg) -> Option<i16> {
    Some(match r.0 {
        0 => 80,   // rax
        1 => 96,   // rdx
        2 => 88,   // rcx
        3 => 40,   // rbx
        4 => 104,  // rsi
        5 => 112,  // rdi
        6 => 32,   // rbp
        7 => 152,  // rsp
        8 => 72,   // r8
        9 => 64,   // r9
        10 => 56,  // r10
        11 => 48,  // r11
        12 => 24,  // r12
        13 => 16,  // r13
        14 => 8,   // r14
        15 => 0,   // r15
        16 => 128, // rip
        _ => return None,
    })
}

/// The message of a failed target memory read.
pub const USER_READ_FAULT: &str = "user memory read fault at {addr}";

impl Gen<'_, '_> {
    /// r0 = the value of a target expression at this probe's site.
    pub fn target(&mut self, e: &Expr, t: &TargetExpr) -> R<()> {
        let name = self.sh.sources.snippet(t.span).to_string();
        if self.kind != ProgramKind::Uprobe {
            return Err(Diagnostic::error(
                format!("target variable `{name}` is only available in process probes"),
                e.span,
            ));
        }
        let Some(plan) = self.probe.targets.get(&e.id) else {
            return Err(Diagnostic::error(
                format!("target variable `{name}` has no location at this probe"),
                e.span,
            ));
        };
        self.run_ops(&plan.ops, e, t, None)
    }

    /// r0 = the result of access ops. A memory fault raises the user-memory error,
    /// or with `fault`, jumps there.
    pub fn run_ops(
        &mut self,
        ops: &[AccessOp],
        e: &Expr,
        t: &TargetExpr,
        fault: Option<super::emit::Label>,
    ) -> R<()> {
        let name = self.sh.sources.snippet(t.span).to_string();
        let vaddr = self.site_vaddr;
        let m = self.frame.mark();
        let acc = self.temp();
        for op in ops {
            match *op {
                AccessOp::Reg(r) | AccessOp::RegAddr { reg: r, .. } => {
                    let Some(off) = pt_regs_offset(r) else {
                        return Err(Diagnostic::error(
                            format!(
                                "DWARF register {} of `{name}` is not readable in a uprobe",
                                r.0
                            ),
                            e.span,
                        ));
                    };
                    self.e.emit(Insn::ldx_mem(Size::DW, R0, R6, off));
                    if let AccessOp::RegAddr { offset, .. } = *op {
                        self.add_const(offset);
                    }
                }
                AccessOp::Script => {
                    let TargetBase::Cast { pointer, .. } = &t.base else {
                        return Err(Diagnostic::error(
                            format!("access plan of `{name}` names a missing operand"),
                            e.span,
                        ));
                    };
                    self.long(pointer)?;
                }
                AccessOp::Const(c) => self.ld_imm(R0, c),
                AccessOp::StaticAddr(a) => {
                    // The probed instruction's runtime address minus its link-time one is the load bias.
                    self.e.emit(Insn::mov64_reg(R1, R6));
                    self.e.emit(Insn::call(Helper::GetFuncIp));
                    self.add_const(a.wrapping_sub(vaddr) as i64);
                }
                AccessOp::Add(c) => self.add_const(c),
                AccessOp::AddIndex { accessor, stride } => {
                    let Some(Accessor::Index { index, .. }) = t.chain.get(accessor as usize) else {
                        return Err(Diagnostic::error(
                            format!("access plan of `{name}` names a missing index"),
                            e.span,
                        ));
                    };
                    self.e.emit(Insn::stx_mem(Size::DW, R10, R0, acc));
                    self.long(index)?;
                    self.ld_imm(R1, stride as i64);
                    self.e.emit(Insn::alu64_reg(AluOp::Mul, R0, R1));
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, acc));
                    self.e.emit(Insn::add64_reg(R0, R1));
                }
                AccessOp::Load { size, signed } => {
                    let Some(sz) = Size::from_bytes(size) else {
                        return Err(Diagnostic::error(
                            format!("cannot load {size} bytes for `{name}`"),
                            e.span,
                        ));
                    };
                    match fault {
                        Some(l) => self.load_user_or(sz, signed, l),
                        None => self.load_user(sz, signed, acc, Some(e)),
                    }
                }
                AccessOp::Bitfield {
                    shift,
                    bits,
                    signed,
                } => {
                    let high = 64 - shift as i32 - bits as i32;
                    if high > 0 {
                        self.e.emit(Insn::alu64_imm(AluOp::Lsh, R0, high));
                    }
                    let down = 64 - bits as i32;
                    if down > 0 {
                        let op = if signed { AluOp::Arsh } else { AluOp::Rsh };
                        self.e.emit(Insn::alu64_imm(op, R0, down));
                    }
                }
            }
        }
        self.frame.release(m);
        Ok(())
    }

    fn add_const(&mut self, c: i64) {
        if c == 0 {
            return;
        }
        match i32::try_from(c) {
            Ok(small) => self.e.emit(Insn::add64_imm(R0, small)),
            Err(_) => {
                self.e.emit2(Insn::ld_imm64(R1, c));
                self.e.emit(Insn::add64_reg(R0, R1));
            }
        }
    }

    /// r0 = user memory at r0 (`size`, sign- or zero-extended). On a fault, raises
    /// "user memory read fault" when `raise_at` is given, else yields 0.
    /// `slot` is a free r10-relative 8-byte slot.
    pub fn load_user(&mut self, size: Size, signed: bool, slot: i16, raise_at: Option<&Expr>) {
        let m = self.frame.mark();
        let buf = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, slot));
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.lea(R1, R10, buf);
        self.e.emit(Insn::mov64_imm(R2, size.bytes() as i32));
        self.e.emit(Insn::call(Helper::ProbeReadUser));
        let ok = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, ok);
        match raise_at {
            Some(e) => self.raise(USER_READ_FAULT, e.span, Some(slot)),
            None => {
                let done = self.e.label();
                self.e.emit(Insn::mov64_imm(R0, 0));
                self.e.goto(done);
                self.e.bind(ok);
                self.load_extend(size, signed, buf);
                self.e.bind(done);
                self.frame.release(m);
                return;
            }
        }
        self.e.bind(ok);
        self.load_extend(size, signed, buf);
        self.frame.release(m);
    }

    /// r0 = user memory at r0, or a jump to `fail` when it cannot be read.
    pub fn load_user_or(&mut self, size: Size, signed: bool, fail: super::emit::Label) {
        let m = self.frame.mark();
        let buf = self.temp();
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.lea(R1, R10, buf);
        self.e.emit(Insn::mov64_imm(R2, size.bytes() as i32));
        self.e.emit(Insn::call(Helper::ProbeReadUser));
        self.e.jmp_imm(Cond::Ne, R0, 0, fail);
        self.load_extend(size, signed, buf);
        self.frame.release(m);
    }

    fn load_extend(&mut self, size: Size, signed: bool, buf: i16) {
        self.e.emit(Insn::ldx_mem(size, R0, R10, buf));
        if signed && size != Size::DW {
            let bits = 64 - 8 * size.bytes() as i32;
            self.e.emit(Insn::alu64_imm(AluOp::Lsh, R0, bits));
            self.e.emit(Insn::alu64_imm(AluOp::Arsh, R0, bits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every general-purpose DWARF register maps to a distinct `pt_regs` slot.
    #[test]
    fn pt_regs_offsets_are_distinct() {
        let mut seen: Vec<i16> = (0..=16)
            .filter_map(|r| pt_regs_offset(DwarfReg(r)))
            .collect();
        assert_eq!(seen.len(), 17);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 17);
        assert_eq!(pt_regs_offset(DwarfReg(5)), Some(112));
        assert_eq!(pt_regs_offset(DwarfReg(17)), None);
    }
}
