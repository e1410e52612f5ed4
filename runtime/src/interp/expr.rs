//! Expressions: arithmetic, strings, assignment, arrays, statistics, calls, printing.

use super::{Flow, Frame, Interp, Stop, Store, V};
use crate::format::{self, Value};
use rtap_lang::hir::{
    AssignOp, BinOp, CmpOp, Expr, ExprKind, FuncId, LValue, PrintKind, StatOp, UnOp,
};
use rtap_lang::span::Span;

impl<S: Store> Interp<'_, S> {
    pub(super) fn exprs(&mut self, es: &[Expr], f: &mut Frame) -> Flow<Vec<V>> {
        es.iter().map(|e| self.expr(e, f)).collect()
    }

    pub(super) fn expr(&mut self, e: &Expr, f: &mut Frame) -> Flow<V> {
        Ok(match &e.kind {
            ExprKind::Long(v) => V::Long(*v),
            ExprKind::Str(s) => V::Str(self.cut(s.as_bytes().to_vec())),
            ExprKind::Local(l) => f.locals[l.0 as usize].clone(),
            ExprKind::Global(g) => self.read_global(*g, &[]),
            ExprKind::Element { array, keys } => {
                let keys = self.exprs(keys, f)?;
                self.read_global(*array, &keys)
            }
            ExprKind::Binary { op, lhs, rhs } => match op {
                BinOp::LogAnd => {
                    let v = self.expr(lhs, f)?.long() != 0 && self.expr(rhs, f)?.long() != 0;
                    V::Long(v.into())
                }
                BinOp::LogOr => {
                    let v = self.expr(lhs, f)?.long() != 0 || self.expr(rhs, f)?.long() != 0;
                    V::Long(v.into())
                }
                _ => {
                    let a = self.expr(lhs, f)?.long();
                    let b = self.expr(rhs, f)?.long();
                    V::Long(arith(*op, a, b, e.span)?)
                }
            },
            ExprKind::Compare { op, lhs, rhs } => {
                let a = self.expr(lhs, f)?;
                let b = self.expr(rhs, f)?;
                let o = a.cmp(&b);
                V::Long(
                    match op {
                        CmpOp::Eq => o.is_eq(),
                        CmpOp::Ne => o.is_ne(),
                        CmpOp::Lt => o.is_lt(),
                        CmpOp::Le => o.is_le(),
                        CmpOp::Gt => o.is_gt(),
                        CmpOp::Ge => o.is_ge(),
                    }
                    .into(),
                )
            }
            ExprKind::Unary { op, operand } => {
                let v = self.expr(operand, f)?.long();
                V::Long(match op {
                    UnOp::Neg => v.wrapping_neg(),
                    UnOp::Plus => v,
                    UnOp::Not => (v == 0).into(),
                    UnOp::BitNot => !v,
                })
            }
            ExprKind::Concat(a, b) => {
                let mut s = self.expr(a, f)?.into_str();
                s.extend(self.expr(b, f)?.into_str());
                V::Str(self.cut(s))
            }
            ExprKind::Regex {
                subject,
                pattern,
                negated,
            } => {
                let s = self.expr(subject, f)?.into_str();
                let re = self
                    .regexes
                    .entry(pattern.clone())
                    .or_insert_with(|| regex::bytes::Regex::new(pattern).ok());
                let Some(re) = re else {
                    return Err(Stop::Error(
                        format!("invalid regular expression `{pattern}`"),
                        e.span,
                    ));
                };
                V::Long((re.is_match(&s) != *negated).into())
            }
            ExprKind::In { keys, array } => {
                let want: Vec<Option<V>> = keys
                    .iter()
                    .map(|k| k.as_ref().map(|e| self.expr(e, f)).transpose())
                    .collect::<Flow<_>>()?;
                let found = if want.iter().all(Option::is_some) {
                    let keys: Vec<V> = want.into_iter().flatten().collect();
                    self.contains(*array, &keys)
                } else {
                    self.keys_of(*array).iter().any(|k| {
                        want.iter()
                            .zip(k)
                            .all(|(w, k)| w.as_ref().is_none_or(|w| w == k))
                    })
                };
                V::Long(found.into())
            }
            ExprKind::Ternary { cond, then, els } => {
                if self.expr(cond, f)?.long() != 0 {
                    self.expr(then, f)?
                } else {
                    self.expr(els, f)?
                }
            }
            ExprKind::Assign { target, op, value } => {
                let keys = self.lvalue_keys(target, f)?;
                let v = self.expr(value, f)?;
                let new = match op {
                    None => v,
                    Some(AssignOp::Concat) => {
                        let mut s = self.load(target, &keys, f).into_str();
                        s.extend(v.into_str());
                        V::Str(self.cut(s))
                    }
                    Some(AssignOp::Bin(op)) => {
                        let old = self.load(target, &keys, f).long();
                        V::Long(arith(*op, old, v.long(), e.span)?)
                    }
                };
                self.store_to(target, &keys, new.clone(), f, e.span)?;
                new
            }
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => {
                let keys = self.lvalue_keys(target, f)?;
                let old = self.load(target, &keys, f).long();
                let new = if *increment {
                    old.wrapping_add(1)
                } else {
                    old.wrapping_sub(1)
                };
                self.store_to(target, &keys, V::Long(new), f, e.span)?;
                V::Long(if *prefix { new } else { old })
            }
            ExprKind::Aggregate { target, value } => {
                let keys = self.lvalue_keys(target, f)?;
                let v = self.expr(value, f)?.long();
                let g = stat_global(target);
                self.add_sample(g, &keys, v, e.span)?;
                V::Long(v)
            }
            ExprKind::StatExtract { op, stat } => {
                let keys = self.lvalue_keys(stat, f)?;
                let s = self.read_stats(stat_global(stat), &keys);
                if s.count == 0 && !matches!(op, StatOp::Count | StatOp::Sum) {
                    return Err(Stop::Error("empty aggregate".into(), e.span));
                }
                V::Long(match op {
                    StatOp::Count => s.count,
                    StatOp::Sum => s.sum,
                    StatOp::Min => s.min,
                    StatOp::Max => s.max,
                    StatOp::Avg => s.sum / s.count,
                    StatOp::Variance => s.variance(),
                })
            }
            ExprKind::Hist { stat, .. } => {
                let keys = self.lvalue_keys(stat, f)?;
                let g = stat_global(stat);
                let s = self.read_stats(g, &keys);
                let layout = self.spec(g).hist;
                match layout.map(|l| super::hist::render(l, &s.buckets)) {
                    Some(text) if !text.is_empty() => V::Str(text.into_bytes()),
                    _ => return Err(Stop::Error("empty aggregate".into(), e.span)),
                }
            }
            ExprKind::Call { func, args } => {
                let args = self.exprs(args, f)?;
                self.call(*func, args)?
            }
            ExprKind::Builtin { name, args } => {
                let args = self.exprs(args, f)?;
                self.builtin(name, args, e.span)?
            }
            ExprKind::Printf {
                to_string,
                format,
                args,
            } => {
                let args = self.exprs(args, f)?;
                let values: Vec<Value<'_>> = args
                    .iter()
                    .map(|v| match v {
                        V::Long(n) => Value::Long(*n),
                        V::Str(s) => Value::Str(s),
                    })
                    .collect();
                let mut text = Vec::new();
                format::format(format, &values, &mut text);
                self.emit(*to_string, text)
            }
            ExprKind::Print {
                kind,
                to_string,
                delim,
                args,
            } => {
                let args = self.exprs(args, f)?;
                let parts: Vec<Vec<u8>> = args.into_iter().map(V::into_str).collect();
                let sep: &[u8] = match kind {
                    PrintKind::Printd | PrintKind::Printdln => {
                        delim.as_deref().unwrap_or("").as_bytes()
                    }
                    _ => b"",
                };
                let mut text = parts.join(sep);
                if matches!(kind, PrintKind::Println | PrintKind::Printdln) {
                    text.push(b'\n');
                }
                self.emit(*to_string, text)
            }
            ExprKind::Defined(_) => V::Long(0),
            ExprKind::Target(_) | ExprKind::Entry(_) => {
                return Err(Stop::Error(
                    "target variables are not available here".into(),
                    e.span,
                ))
            }
        })
    }

    /// Printing appends to the output; the `s*` forms return the text instead.
    fn emit(&mut self, to_string: bool, text: Vec<u8>) -> V {
        if to_string {
            V::Str(self.cut(text))
        } else {
            self.out.extend_from_slice(&text);
            V::Long(0)
        }
    }

    fn lvalue_keys(&mut self, l: &LValue, f: &mut Frame) -> Flow<Vec<V>> {
        match l {
            LValue::Element { keys, .. } => self.exprs(keys, f),
            _ => Ok(Vec::new()),
        }
    }

    fn load(&self, l: &LValue, keys: &[V], f: &Frame) -> V {
        match l {
            LValue::Local(id) => f.locals[id.0 as usize].clone(),
            LValue::Global(g) => self.read_global(*g, &[]),
            LValue::Element { array, .. } => self.read_global(*array, keys),
        }
    }

    fn store_to(&mut self, l: &LValue, keys: &[V], v: V, f: &mut Frame, span: Span) -> Flow<()> {
        match l {
            LValue::Local(id) => {
                f.locals[id.0 as usize] = v;
                Ok(())
            }
            LValue::Global(g) => self.write_global(*g, &[], &v, span),
            LValue::Element { array, .. } => self.write_global(*array, keys, &v, span),
        }
    }

    fn call(&mut self, func: FuncId, args: Vec<V>) -> Flow<V> {
        let prog = self.prog;
        let fun = &prog.functions[func.0 as usize];
        let mut frame = Frame::new(&fun.locals);
        for (p, a) in fun.params.iter().zip(args) {
            frame.locals[p.0 as usize] = a;
        }
        match self.block(&fun.body, &mut frame) {
            Ok(()) | Err(Stop::Next) => Ok(V::zero(fun.ret)),
            Err(Stop::Return(v)) => Ok(v),
            Err(e) => Err(e),
        }
    }
}

fn stat_global(l: &LValue) -> rtap_lang::hir::GlobalId {
    match l {
        LValue::Global(g) | LValue::Element { array: g, .. } => *g,
        LValue::Local(_) => unreachable!("the checker allows statistics only in globals"),
    }
}

/// SystemTap's integer operators: wrapping, shifts by the low 6 bits, division by 0 trapped.
pub(super) fn arith(op: BinOp, a: i64, b: i64, span: Span) -> Flow<i64> {
    Ok(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div | BinOp::Mod if b == 0 => return Err(Stop::Error("division by 0".into(), span)),
        BinOp::Div => a.wrapping_div(b),
        BinOp::Mod => a.wrapping_rem(b),
        BinOp::Shl => a.wrapping_shl((b & 63) as u32),
        BinOp::Shr => a.wrapping_shr((b & 63) as u32),
        BinOp::Ushr => ((a as u64) >> (b & 63)) as i64,
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::LogAnd => (a != 0 && b != 0).into(),
        BinOp::LogOr => (a != 0 || b != 0).into(),
    })
}
