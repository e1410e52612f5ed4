//! Long expressions: arithmetic with SystemTap semantics, comparisons, branches and assignments; results land in r0.

use super::codegen::{Gen, RetDest, Slot, R};
use super::emit::Label;
use super::insn::*;
use rtap_lang::hir::{AssignOp, BinOp, CmpOp, Expr, ExprKind, LValue, Type, UnOp};
use rtap_lang::span::Span;

/// An operand that needs no code of its own.
enum Simple {
    Imm(i32),
    Stack(i16),
}

fn signed_cond(op: CmpOp) -> Cond {
    match op {
        CmpOp::Eq => Cond::Eq,
        CmpOp::Ne => Cond::Ne,
        CmpOp::Lt => Cond::Slt,
        CmpOp::Le => Cond::Sle,
        CmpOp::Gt => Cond::Sgt,
        CmpOp::Ge => Cond::Sge,
    }
}

impl Gen<'_, '_> {
    fn simple(&self, e: &Expr) -> Option<Simple> {
        match &e.kind {
            ExprKind::Long(v) => i32::try_from(*v).ok().map(Simple::Imm),
            ExprKind::Local(id) => match self.locals[id.0 as usize] {
                Slot::Long(off) => Some(Simple::Stack(off)),
                Slot::Str(_) => None,
            },
            _ => None,
        }
    }

    /// Evaluates a long expression into r0.
    pub fn long(&mut self, e: &Expr) -> R<()> {
        match &e.kind {
            ExprKind::Long(v) => self.ld_imm(R0, *v),
            ExprKind::Local(id) => match self.locals[id.0 as usize] {
                Slot::Long(off) => self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, off)),
                Slot::Str(_) => return Err(self.not_yet("a string used as a number", e.span)),
            },
            ExprKind::Global(g) => self.global_long(*g, e.span)?,
            ExprKind::Element { array, keys } => self.element_long(*array, keys, e.span)?,
            ExprKind::In { keys, array } => self.in_array(*array, keys, e.span)?,
            ExprKind::Binary { op, lhs, rhs } => match op {
                BinOp::LogAnd | BinOp::LogOr => {
                    let f = self.e.label();
                    let end = self.e.label();
                    self.branch(e, f, false)?;
                    self.e.emit(Insn::mov64_imm(R0, 1));
                    self.e.goto(end);
                    self.e.bind(f);
                    self.e.emit(Insn::mov64_imm(R0, 0));
                    self.e.bind(end);
                }
                _ => {
                    if let Some(Simple::Imm(v)) = self.simple(rhs) {
                        self.long(lhs)?;
                        self.binop_imm(*op, v, e.span);
                    } else {
                        self.long_pair(lhs, rhs)?;
                        self.binop(*op, R1, R2, e.span);
                        self.e.emit(Insn::mov64_reg(R0, R1));
                    }
                }
            },
            ExprKind::Compare { op, lhs, rhs } => {
                if lhs.ty == Type::String {
                    self.str_compare(lhs, rhs)?;
                    self.e.emit(Insn::mov64_reg(R1, R0));
                    self.e.emit(Insn::mov64_imm(R2, 0));
                } else {
                    self.long_pair(lhs, rhs)?;
                }
                self.e.emit(Insn::mov64_imm(R0, 1));
                self.e.emit(Insn::jmp_reg(signed_cond(*op), R1, R2, 1));
                self.e.emit(Insn::mov64_imm(R0, 0));
            }
            ExprKind::Unary { op, operand } => {
                // Negative literals are folded.
                if let (UnOp::Neg, ExprKind::Long(v)) = (op, &operand.kind) {
                    self.ld_imm(R0, v.wrapping_neg());
                    return Ok(());
                }
                self.long(operand)?;
                match op {
                    UnOp::Neg => self.e.emit(Insn::neg64(R0)),
                    UnOp::Plus => {}
                    UnOp::Not => {
                        self.e.emit(Insn::mov64_reg(R1, R0));
                        self.e.emit(Insn::mov64_imm(R0, 1));
                        self.e.emit(Insn::jmp_imm(Cond::Eq, R1, 0, 1));
                        self.e.emit(Insn::mov64_imm(R0, 0));
                    }
                    UnOp::BitNot => self.e.emit(Insn::alu64_imm(AluOp::Xor, R0, -1)),
                }
            }
            ExprKind::Ternary { cond, then, els } if self.known(cond).is_some() => {
                // A side `@defined` rules out is never compiled (it was not resolved).
                let taken = if self.known(cond) == Some(true) {
                    then
                } else {
                    els
                };
                self.long(taken)?;
            }
            ExprKind::Ternary { cond, then, els } => {
                let f = self.e.label();
                let end = self.e.label();
                self.branch(cond, f, false)?;
                self.long(then)?;
                self.e.goto(end);
                self.e.bind(f);
                self.long(els)?;
                self.e.bind(end);
            }
            ExprKind::Assign { target, op, value } => {
                self.assign_long(target, *op, value, e.span)?
            }
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => self.incdec(target, *increment, *prefix, e.span)?,
            ExprKind::Aggregate { target, value } => {
                self.aggregate(target, value, e.span)?;
                self.e.emit(Insn::mov64_imm(R0, 0));
            }
            ExprKind::Call { func, args } => {
                let m = self.frame.mark();
                let t = self.temp();
                self.call(*func, args, RetDest::Long(t), e.span)?;
                self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, t));
                self.frame.release(m);
            }
            ExprKind::Builtin { name, args } => self.builtin_long(name, args, e.span)?,
            ExprKind::Printf {
                to_string: false,
                format,
                args,
            } => {
                self.printf(format, args, e.span)?;
                self.e.emit(Insn::mov64_imm(R0, 0));
            }
            ExprKind::Print {
                kind,
                to_string: false,
                delim,
                args,
            } => {
                self.print(*kind, delim.as_deref(), args, e.span)?;
                self.e.emit(Insn::mov64_imm(R0, 0));
            }
            ExprKind::Target(_) | ExprKind::Entry(_) if self.read_saved(e, None)? => {}
            ExprKind::Target(t) => self.target(e, t)?,
            ExprKind::Entry(_) => {
                return Err(self.not_yet("`@entry` outside a `.return` probe's handler", e.span))
            }
            ExprKind::Defined(_) => {
                // Outside probe bodies (in functions) nothing resolves: false.
                let d = self.probe.defined.get(&e.id).copied().unwrap_or(false);
                self.e.emit(Insn::mov64_imm(R0, d as i32));
            }
            ExprKind::StatExtract { op, stat } => self.stat_extract(*op, stat, e.span)?,
            _ => return Err(self.unsupported(describe(e), e.span)),
        }
        Ok(())
    }

    /// r1 = lhs, r2 = rhs, spilling lhs when rhs needs code of its own.
    pub fn long_pair(&mut self, lhs: &Expr, rhs: &Expr) -> R<()> {
        self.long(lhs)?;
        self.e.emit(Insn::mov64_reg(R1, R0));
        match self.simple(rhs) {
            Some(Simple::Imm(v)) => self.e.emit(Insn::mov64_imm(R2, v)),
            Some(Simple::Stack(off)) => self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, off)),
            None => {
                let m = self.frame.mark();
                let t = self.temp();
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, t));
                self.long(rhs)?;
                self.e.emit(Insn::mov64_reg(R2, R0));
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
                self.frame.release(m);
            }
        }
        Ok(())
    }

    /// `dst op= src` with SystemTap semantics; clobbers `src` for shifts.
    pub fn binop(&mut self, op: BinOp, dst: Reg, src: Reg, span: Span) {
        let alu = |a| Insn::alu64_reg(a, dst, src);
        match op {
            BinOp::Add => self.e.emit(alu(AluOp::Add)),
            BinOp::Sub => self.e.emit(alu(AluOp::Sub)),
            BinOp::Mul => self.e.emit(alu(AluOp::Mul)),
            BinOp::BitAnd => self.e.emit(alu(AluOp::And)),
            BinOp::BitOr => self.e.emit(alu(AluOp::Or)),
            BinOp::BitXor => self.e.emit(alu(AluOp::Xor)),
            BinOp::Div | BinOp::Mod => {
                let ok = self.e.label();
                self.e.jmp_imm(Cond::Ne, src, 0, ok);
                self.raise("division by 0", span, None);
                self.e.bind(ok);
                self.e.emit(if op == BinOp::Div {
                    Insn::sdiv64_reg(dst, src)
                } else {
                    Insn::smod64_reg(dst, src)
                });
            }
            BinOp::Shl | BinOp::Shr | BinOp::Ushr => {
                // SystemTap masks the count, so every shift is defined.
                self.e.emit(Insn::alu64_imm(AluOp::And, src, 63));
                self.e.emit(alu(match op {
                    BinOp::Shl => AluOp::Lsh,
                    BinOp::Shr => AluOp::Arsh,
                    _ => AluOp::Rsh,
                }));
            }
            BinOp::LogAnd | BinOp::LogOr => {
                // Callers lower these with branches; reaching here means a bug in the caller.
                unreachable!("logical operators are lowered with branches")
            }
        }
    }

    /// `r0 op= imm` with SystemTap semantics.
    pub fn binop_imm(&mut self, op: BinOp, v: i32, span: Span) {
        let alu = |a| Insn::alu64_imm(a, R0, v);
        match op {
            BinOp::Add => self.e.emit(alu(AluOp::Add)),
            BinOp::Sub => self.e.emit(alu(AluOp::Sub)),
            BinOp::Mul => self.e.emit(alu(AluOp::Mul)),
            BinOp::BitAnd => self.e.emit(alu(AluOp::And)),
            BinOp::BitOr => self.e.emit(alu(AluOp::Or)),
            BinOp::BitXor => self.e.emit(alu(AluOp::Xor)),
            BinOp::Div | BinOp::Mod if v == 0 => self.raise("division by 0", span, None),
            BinOp::Div => self.e.emit(Insn::sdiv64_imm(R0, v)),
            BinOp::Mod => self.e.emit(Insn::smod64_imm(R0, v)),
            BinOp::Shl | BinOp::Shr | BinOp::Ushr => {
                let op = match op {
                    BinOp::Shl => AluOp::Lsh,
                    BinOp::Shr => AluOp::Arsh,
                    _ => AluOp::Rsh,
                };
                self.e.emit(Insn::alu64_imm(op, R0, v & 63));
            }
            BinOp::LogAnd | BinOp::LogOr => {
                unreachable!("logical operators are lowered with branches")
            }
        }
    }

    /// The value of a condition that is `@defined(..)` or `!@defined(..)`, decided when
    /// target variables were resolved.
    pub fn known(&self, cond: &Expr) -> Option<bool> {
        match &cond.kind {
            ExprKind::Defined(_) => {
                Some(self.probe.defined.get(&cond.id).copied().unwrap_or(false))
            }
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => self.known(operand).map(|b| !b),
            _ => None,
        }
    }

    /// Jumps to `l` when `cond` is false (`when == false`) or true (`when == true`).
    pub fn branch(&mut self, cond: &Expr, l: Label, when: bool) -> R<()> {
        match &cond.kind {
            ExprKind::Compare { op, lhs, rhs } if lhs.ty == Type::Long => {
                self.long_pair(lhs, rhs)?;
                let c = signed_cond(*op);
                self.e.jmp_reg(if when { c } else { c.negate() }, R1, R2, l);
            }
            ExprKind::Binary {
                op: op @ (BinOp::LogAnd | BinOp::LogOr),
                lhs,
                rhs,
            } => {
                // `a && b` is false when either is; `a || b` is true when either is.
                let short = (*op == BinOp::LogAnd) != when;
                if short {
                    self.branch(lhs, l, when)?;
                    self.branch(rhs, l, when)?;
                } else {
                    let skip = self.e.label();
                    self.branch(lhs, skip, !when)?;
                    self.branch(rhs, l, when)?;
                    self.e.bind(skip);
                }
            }
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => self.branch(operand, l, !when)?,
            _ => {
                self.long(cond)?;
                self.e
                    .jmp_imm(if when { Cond::Ne } else { Cond::Eq }, R0, 0, l);
            }
        }
        Ok(())
    }

    fn assign_long(
        &mut self,
        target: &LValue,
        op: Option<AssignOp>,
        value: &Expr,
        span: Span,
    ) -> R<()> {
        let op = match op {
            None => None,
            Some(AssignOp::Bin(b)) => Some(b),
            Some(AssignOp::Concat) => return Err(self.not_yet("`.=` on a number", span)),
        };
        if let LValue::Local(id) = target {
            let Slot::Long(off) = self.locals[id.0 as usize] else {
                return Err(self.not_yet("a string assigned to a number", span));
            };
            self.long(value)?;
            match op {
                None => self.e.emit(Insn::stx_mem(Size::DW, R10, R0, off)),
                Some(b) => {
                    self.e.emit(Insn::mov64_reg(R2, R0));
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, off));
                    self.binop(b, R1, R2, span);
                    self.e.emit(Insn::stx_mem(Size::DW, R10, R1, off));
                    self.e.emit(Insn::mov64_reg(R0, R1));
                }
            }
            return Ok(());
        }
        let m = self.frame.mark();
        let t = self.temp();
        self.long(value)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
        self.lvalue_ptr(target, span)?;
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, t));
        self.frame.release(m);
        match op {
            None => {
                self.e.emit(Insn::stx_mem(Size::DW, R1, R2, 0));
                self.e.emit(Insn::mov64_reg(R0, R2));
            }
            Some(b @ (BinOp::Add | BinOp::Sub)) => {
                if b == BinOp::Sub {
                    self.e.emit(Insn::neg64(R2));
                }
                self.e.emit(Insn::mov64_reg(R3, R2));
                self.e.emit(Insn::atomic_fetch_add64(R1, R3, 0));
                self.e.emit(Insn::mov64_reg(R0, R3));
                self.e.emit(Insn::add64_reg(R0, R2));
            }
            Some(b) => {
                self.e.emit(Insn::ldx_mem(Size::DW, R3, R1, 0));
                self.binop(b, R3, R2, span);
                self.e.emit(Insn::stx_mem(Size::DW, R1, R3, 0));
                self.e.emit(Insn::mov64_reg(R0, R3));
            }
        }
        Ok(())
    }

    fn incdec(&mut self, target: &LValue, increment: bool, prefix: bool, span: Span) -> R<()> {
        let d = if increment { 1 } else { -1 };
        if let LValue::Local(id) = target {
            let Slot::Long(off) = self.locals[id.0 as usize] else {
                return Err(self.not_yet("`++` on a string", span));
            };
            self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, off));
            self.e.emit(Insn::mov64_reg(R1, R0));
            self.e.emit(Insn::add64_imm(R1, d));
            self.e.emit(Insn::stx_mem(Size::DW, R10, R1, off));
        } else {
            self.lvalue_ptr(target, span)?;
            self.e.emit(Insn::mov64_imm(R1, d));
            self.e.emit(Insn::atomic_fetch_add64(R0, R1, 0));
            self.e.emit(Insn::mov64_reg(R0, R1));
        }
        if prefix {
            self.e.emit(Insn::add64_imm(R0, d));
        }
        Ok(())
    }
}

/// A short name for an expression kind, for "not supported" messages.
pub fn describe(e: &Expr) -> &'static str {
    match &e.kind {
        ExprKind::Concat(..) => ".",
        ExprKind::Regex { .. } => "=~",
        ExprKind::In { .. } => "in",
        ExprKind::Hist { .. } => "@hist",
        ExprKind::Printf { .. } => "sprintf",
        ExprKind::Print { .. } => "sprint",
        ExprKind::Entry(_) => "@entry",
        ExprKind::Target(_) => "target expression",
        ExprKind::StatExtract { .. } => "statistic extraction",
        ExprKind::Aggregate { .. } => "<<<",
        ExprKind::Str(_) => "string literal as a number",
        _ => "this expression",
    }
}
