//! Expressions: names, operators, arrays, statistics and target expressions.

use super::{tn, Checker, Ctx, LocalInfo, Scope, Shape};
use crate::ast::{self, BinaryOp, ExprKind as A};
use crate::hir::{self, ExprKind as H, GlobalId, LocalId, Type};
use crate::span::Span;

/// A resolved name.
pub(super) enum Name {
    Local(LocalId),
    Global(GlobalId),
}

impl Checker<'_> {
    /// Resolves a name: parameters and known locals, then globals, else a new local.
    pub(super) fn name(&mut self, name: &str, span: Span, sc: &mut Scope) -> Option<Name> {
        if let Some(&id) = sc.names.get(name) {
            return Some(Name::Local(id));
        }
        if let Some(&g) = self.global_names.get(name) {
            return Some(Name::Global(g));
        }
        if matches!(sc.ctx, Ctx::Condition) {
            self.error(
                format!("unknown global `{name}`: probe point conditions can only use globals"),
                span,
            );
            return None;
        }
        Some(Name::Local(self.new_local(name, span, sc)))
    }

    pub(super) fn new_local(&mut self, name: &str, span: Span, sc: &mut Scope) -> LocalId {
        let id = LocalId(sc.locals.len() as u32);
        let ty = self.u.fresh();
        sc.names.insert(name.to_string(), id);
        sc.locals.push(LocalInfo {
            name: name.to_string(),
            ty,
            span,
        });
        id
    }

    /// Marks how a global is used; reports shape conflicts (scalar vs array, key counts).
    pub(super) fn use_shape(&mut self, g: GlobalId, want: Shape, span: Span) -> bool {
        let info = &mut self.globals[g.0 as usize];
        let have = info.shape;
        let ok = match (have, want) {
            (Shape::Unknown, _) => {
                info.shape = want;
                true
            }
            (Shape::AnyArray, Shape::Array(_)) => {
                info.shape = want;
                true
            }
            (Shape::Array(_) | Shape::AnyArray, Shape::AnyArray) => true,
            (a, b) => a == b,
        };
        if let Shape::Array(n) = info.shape {
            let missing = n.saturating_sub(info.keys.len());
            for _ in 0..missing {
                let v = self.u.fresh();
                self.globals[g.0 as usize].keys.push(v);
            }
        }
        if !ok {
            let name = self.globals[g.0 as usize].name.clone();
            let msg = match (have, want) {
                (Shape::Scalar, _) => format!("`{name}` is a scalar, but is used here as an array"),
                (_, Shape::Scalar) => format!("`{name}` is an array, but is used here as a scalar"),
                (Shape::Array(n), Shape::Array(m)) => format!(
                    "array `{name}` is used with {} elsewhere, but with {m} here",
                    super::calls::plural(n, "key")
                ),
                _ => format!("`{name}` is used inconsistently"),
            };
            self.error(msg, span);
        }
        ok
    }

    /// Keys of an element access, typed against the array's key types.
    pub(super) fn keys(
        &mut self,
        g: GlobalId,
        keys: &[Option<ast::Expr>],
        allow_star: bool,
        span: Span,
        sc: &mut Scope,
    ) -> Vec<Option<hir::Expr>> {
        let ok = self.use_shape(g, Shape::Array(keys.len()), span);
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match k {
                None => {
                    if !allow_star {
                        self.error(
                            "`*` is only allowed in `delete`, `in` and `foreach` slices",
                            span,
                        );
                    }
                    out.push(None);
                }
                Some(k) => {
                    let e = self.expr(k, sc);
                    if ok {
                        let kv = self.globals[g.0 as usize].keys[i];
                        let name = self.globals[g.0 as usize].name.clone();
                        let ev = self.ty_of(&e);
                        self.same(kv, ev, k.span, |a, b| {
                            format!(
                                "type mismatch: key {} of `{name}` is {} elsewhere, found {}",
                                i + 1,
                                tn(a),
                                tn(b)
                            )
                        });
                    }
                    out.push(Some(e));
                }
            }
        }
        out
    }

    fn global_array(&mut self, array: &ast::Ident) -> Option<GlobalId> {
        match self.global_names.get(&array.name) {
            Some(&g) => Some(g),
            None => {
                self.error(
                    format!(
                        "unknown array `{}`: arrays must be declared `global`",
                        array.name
                    ),
                    array.span,
                );
                None
            }
        }
    }

    /// An assignable place; `write` marks globals as written (extractors only read).
    pub(super) fn lvalue(
        &mut self,
        e: &ast::Expr,
        write: bool,
        sc: &mut Scope,
    ) -> Option<(hir::LValue, super::TyVar)> {
        let (lv, ty, g) = match &e.kind {
            A::Var(name) => match self.name(name, e.span, sc)? {
                Name::Local(l) => (hir::LValue::Local(l), sc.locals[l.0 as usize].ty, None),
                Name::Global(g) => {
                    self.use_shape(g, Shape::Scalar, e.span);
                    (
                        hir::LValue::Global(g),
                        self.globals[g.0 as usize].ty,
                        Some(g),
                    )
                }
            },
            A::Index { array, keys } => {
                let g = self.global_array(array)?;
                let keys = self.keys(g, keys, false, e.span, sc);
                let keys = keys.into_iter().flatten().collect();
                (
                    hir::LValue::Element { array: g, keys },
                    self.globals[g.0 as usize].ty,
                    Some(g),
                )
            }
            A::Target(_) => {
                self.error("writing to target variables is not supported", e.span);
                return None;
            }
            _ => {
                self.error("this expression is not assignable", e.span);
                return None;
            }
        };
        if let Some(g) = g.filter(|_| write) {
            self.globals[g.0 as usize].written = true;
            if sc.iterating.contains(&g) && matches!(lv, hir::LValue::Element { .. }) {
                let name = self.globals[g.0 as usize].name.clone();
                self.error(
                    format!("array `{name}` cannot be modified inside a `foreach` over it"),
                    e.span,
                );
            }
        }
        Some((lv, ty))
    }

    /// A statistics variable for `<<<`, extractors and histograms: must be global.
    pub(super) fn stat_lvalue(
        &mut self,
        e: &ast::Expr,
        what: &str,
        write: bool,
        sc: &mut Scope,
    ) -> Option<hir::LValue> {
        if let A::Var(name) = &e.kind {
            if !self.global_names.contains_key(name) {
                self.error(
                    format!(
                        "statistics must be global: `{name}` in `{what}` is not a declared global"
                    ),
                    e.span,
                );
                return None;
            }
        }
        if !matches!(e.kind, A::Var(_) | A::Index { .. }) {
            self.error(
                format!("`{what}` needs a global statistics variable or array element"),
                e.span,
            );
            return None;
        }
        let (lv, ty) = self.lvalue(e, write, sc)?;
        self.want(ty, Type::Stats, e.span, |t| {
            format!("type mismatch: `{what}` needs statistics, found {}", tn(t))
        });
        Some(lv)
    }

    /// An expression whose value is used: statistics are refused here.
    pub(super) fn expr(&mut self, e: &ast::Expr, sc: &mut Scope) -> hir::Expr {
        let h = self.expr_inner(e, sc);
        let ty = self.ty_of(&h);
        // A type already known to be `long` or `string` can never become statistics.
        let settled = matches!(self.u.get(ty), Some(Type::Long | Type::String));
        if !settled && matches!(e.kind, A::Var(_) | A::Index { .. }) {
            let what = match &e.kind {
                A::Var(n) => format!("`{n}`"),
                A::Index { array, .. } => format!("in `{}`", array.name),
                _ => String::new(),
            };
            self.no_stats.push((ty, e.span, what));
        }
        h
    }

    /// An expression that must be a long.
    pub(super) fn long_expr(&mut self, e: &ast::Expr, what: &str, sc: &mut Scope) -> hir::Expr {
        let h = self.expr(e, sc);
        let v = self.ty_of(&h);
        self.want(v, Type::Long, e.span, |t| {
            format!("type mismatch: {what} must be `long`, found {}", tn(t))
        });
        h
    }

    fn expr_inner(&mut self, e: &ast::Expr, sc: &mut Scope) -> hir::Expr {
        let span = e.span;
        let (kind, ty) = match &e.kind {
            A::Long(v) => (H::Long(*v), self.long),
            A::Str(s) => (H::Str(s.clone()), self.string),
            A::Var(name) => match self.name(name, span, sc) {
                Some(Name::Local(l)) => (H::Local(l), sc.locals[l.0 as usize].ty),
                Some(Name::Global(g)) => {
                    self.use_shape(g, Shape::Scalar, span);
                    self.globals[g.0 as usize].read = true;
                    (H::Global(g), self.globals[g.0 as usize].ty)
                }
                None => (H::Long(0), self.long),
            },
            A::Index { array, keys } => match self.global_array(array) {
                Some(g) => {
                    let keys = self
                        .keys(g, keys, false, span, sc)
                        .into_iter()
                        .flatten()
                        .collect();
                    self.globals[g.0 as usize].read = true;
                    (H::Element { array: g, keys }, self.globals[g.0 as usize].ty)
                }
                None => (H::Long(0), self.long),
            },
            A::Binary { op, lhs, rhs } => return self.binary(*op, lhs, rhs, span, sc),
            A::Unary { op, operand } => {
                let x = self.long_expr(operand, &format!("the operand of `{}`", op.text()), sc);
                let op = match op {
                    ast::UnaryOp::Neg => hir::UnOp::Neg,
                    ast::UnaryOp::Plus => hir::UnOp::Plus,
                    ast::UnaryOp::Not => hir::UnOp::Not,
                    ast::UnaryOp::BitNot => hir::UnOp::BitNot,
                };
                (
                    H::Unary {
                        op,
                        operand: Box::new(x),
                    },
                    self.long,
                )
            }
            A::Regex {
                subject,
                pattern,
                negated,
            } => {
                let op = if *negated { "!~" } else { "=~" };
                let s = self.expr(subject, sc);
                let v = self.ty_of(&s);
                self.want(v, Type::String, subject.span, |t| {
                    format!(
                        "type mismatch: `{op}` needs a `string` on the left, found {}",
                        tn(t)
                    )
                });
                (
                    H::Regex {
                        subject: Box::new(s),
                        pattern: pattern.clone(),
                        negated: *negated,
                    },
                    self.long,
                )
            }
            A::In { keys, array, .. } => match self.global_array(array) {
                Some(g) => {
                    let keys = self.keys(g, keys, true, span, sc);
                    self.globals[g.0 as usize].read = true;
                    (H::In { keys, array: g }, self.long)
                }
                None => (H::Long(0), self.long),
            },
            A::Ternary { cond, then, els } => {
                let c = self.long_expr(cond, "the condition of `?:`", sc);
                let t = self.expr(then, sc);
                let f = self.expr(els, sc);
                let (tv, fv) = (self.ty_of(&t), self.ty_of(&f));
                self.same(tv, fv, span, |a, b| {
                    format!(
                        "type mismatch: the branches of `?:` are {} and {}",
                        tn(a),
                        tn(b)
                    )
                });
                (
                    H::Ternary {
                        cond: Box::new(c),
                        then: Box::new(t),
                        els: Box::new(f),
                    },
                    tv,
                )
            }
            A::Assign { op, target, value } => return self.assign(*op, target, value, span, sc),
            A::IncDec {
                target,
                increment,
                prefix,
            } => {
                let op = if *increment { "++" } else { "--" };
                match self.lvalue(target, true, sc) {
                    Some((lv, ty)) => {
                        self.want(ty, Type::Long, target.span, |t| {
                            format!("type mismatch: `{op}` needs a `long`, found {}", tn(t))
                        });
                        (
                            H::IncDec {
                                target: lv,
                                increment: *increment,
                                prefix: *prefix,
                            },
                            self.long,
                        )
                    }
                    None => (H::Long(0), self.long),
                }
            }
            A::Call { name, args } => return self.call(name, args, span, sc),
            A::Stat { op, arg } => match self.stat_lvalue(arg, op.text(), false, sc) {
                Some(stat) => {
                    self.mark_read(&stat);
                    (H::StatExtract { op: *op, stat }, self.long)
                }
                None => (H::Long(0), self.long),
            },
            A::Hist { .. } => {
                self.error(
                    "histograms can only be printed: use them as an argument of `print`/`println`",
                    span,
                );
                (H::Long(0), self.long)
            }
            A::Target(t) => return self.target(t, span, sc),
            A::Entry(inner) => {
                let ok = match &sc.ctx {
                    Ctx::Probe(p) => p.all_return,
                    _ => false,
                };
                if !ok {
                    self.error("`@entry` is only allowed in `.return` probes", span);
                }
                if sc.in_entry {
                    self.error("`@entry` cannot be nested", span);
                }
                let was = std::mem::replace(&mut sc.in_entry, true);
                let x = self.expr(inner, sc);
                sc.in_entry = was;
                let ty = self.ty_of(&x);
                (H::Entry(Box::new(x)), ty)
            }
            A::Defined(inner) => {
                if !matches!(inner.kind, A::Target(_)) {
                    self.error(
                        "`@defined` takes a target expression such as `$var`",
                        inner.span,
                    );
                }
                let was = std::mem::replace(&mut sc.in_defined, true);
                let x = self.expr(inner, sc);
                sc.in_defined = was;
                (H::Defined(Box::new(x)), self.long)
            }
        };
        self.mk(kind, ty, span)
    }

    pub(super) fn mark_read(&mut self, lv: &hir::LValue) {
        match lv {
            hir::LValue::Global(g) | hir::LValue::Element { array: g, .. } => {
                self.globals[g.0 as usize].read = true;
            }
            hir::LValue::Local(_) => {}
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        span: Span,
        sc: &mut Scope,
    ) -> hir::Expr {
        use BinaryOp::*;
        let l = self.expr(lhs, sc);
        let r = self.expr(rhs, sc);
        let (lv, rv) = (self.ty_of(&l), self.ty_of(&r));
        let sym = op.text();
        let (kind, ty) = match op {
            Eq | Ne | Lt | Le | Gt | Ge => {
                self.same(lv, rv, span, |a, b| {
                    format!("type mismatch: `{sym}` compares {} with {}", tn(a), tn(b))
                });
                let cmp = match op {
                    Eq => hir::CmpOp::Eq,
                    Ne => hir::CmpOp::Ne,
                    Lt => hir::CmpOp::Lt,
                    Le => hir::CmpOp::Le,
                    Gt => hir::CmpOp::Gt,
                    _ => hir::CmpOp::Ge,
                };
                (
                    H::Compare {
                        op: cmp,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    self.long,
                )
            }
            Concat => {
                for (v, s) in [(lv, lhs.span), (rv, rhs.span)] {
                    if !self.want_ok(v, Type::String, s, |t| {
                        format!(
                            "type mismatch: `.` needs `string` operands, found {}",
                            tn(t)
                        )
                    }) {
                        break;
                    }
                }
                (H::Concat(Box::new(l), Box::new(r)), self.string)
            }
            _ => {
                for (v, s) in [(lv, lhs.span), (rv, rhs.span)] {
                    if !self.want_ok(v, Type::Long, s, |t| {
                        format!(
                            "type mismatch: `{sym}` needs `long` operands, found {}",
                            tn(t)
                        )
                    }) {
                        break;
                    }
                }
                (
                    H::Binary {
                        op: hir_binop(op),
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    self.long,
                )
            }
        };
        self.mk(kind, ty, span)
    }

    fn assign(
        &mut self,
        op: ast::AssignOp,
        target: &ast::Expr,
        value: &ast::Expr,
        span: Span,
        sc: &mut Scope,
    ) -> hir::Expr {
        if op == ast::AssignOp::Aggregate {
            let lv = self.stat_lvalue(target, "<<<", true, sc);
            let v = self.long_expr(value, "the value given to `<<<`", sc);
            return match lv {
                Some(lv) => self.mk_ty(
                    H::Aggregate {
                        target: lv,
                        value: Box::new(v),
                    },
                    self.long,
                    span,
                ),
                None => v,
            };
        }
        let val = self.expr(value, sc);
        let Some((lv, ty)) = self.lvalue(target, true, sc) else {
            return val;
        };
        let vv = self.ty_of(&val);
        let sym = op.text();
        let hop = match op {
            ast::AssignOp::Set => {
                self.same(ty, vv, span, |a, b| {
                    let tname = crate::pretty::expr(target);
                    format!(
                        "type mismatch: cannot assign {} to `{tname}` of type {}",
                        tn(b),
                        tn(a)
                    )
                });
                None
            }
            ast::AssignOp::Op(BinaryOp::Concat) => {
                for (v, s) in [(ty, target.span), (vv, value.span)] {
                    if !self.want_ok(v, Type::String, s, |t| {
                        format!(
                            "type mismatch: `.=` needs `string` operands, found {}",
                            tn(t)
                        )
                    }) {
                        break;
                    }
                }
                Some(hir::AssignOp::Concat)
            }
            ast::AssignOp::Op(b) => {
                for (v, s) in [(ty, target.span), (vv, value.span)] {
                    if !self.want_ok(v, Type::Long, s, |t| {
                        format!(
                            "type mismatch: `{sym}` needs `long` operands, found {}",
                            tn(t)
                        )
                    }) {
                        break;
                    }
                }
                Some(hir::AssignOp::Bin(hir_binop(b)))
            }
            ast::AssignOp::Aggregate => unreachable!("handled above"),
        };
        self.mk_ty(
            H::Assign {
                target: lv,
                op: hop,
                value: Box::new(val),
            },
            ty,
            span,
        )
    }

    pub(super) fn mk_ty(&mut self, kind: H, ty: super::TyVar, span: Span) -> hir::Expr {
        self.mk(kind, ty, span)
    }
}

fn hir_binop(op: BinaryOp) -> hir::BinOp {
    use BinaryOp::*;
    match op {
        Add => hir::BinOp::Add,
        Sub => hir::BinOp::Sub,
        Mul => hir::BinOp::Mul,
        Div => hir::BinOp::Div,
        Mod => hir::BinOp::Mod,
        Shl => hir::BinOp::Shl,
        Shr => hir::BinOp::Shr,
        Ushr => hir::BinOp::Ushr,
        BitAnd => hir::BinOp::BitAnd,
        BitOr => hir::BinOp::BitOr,
        BitXor => hir::BinOp::BitXor,
        LogAnd => hir::BinOp::LogAnd,
        _ => hir::BinOp::LogOr,
    }
}
