//! After inference: resolve every type, report what stayed unknown, assemble the program.

use super::{Checker, Scope, Shape};
use crate::hir::{self, Type};

impl Checker<'_> {
    pub(super) fn finish(
        &mut self,
        mut functions: Vec<hir::Function>,
        mut probes: Vec<hir::Probe>,
        fscopes: Vec<Scope>,
        pscopes: Vec<Scope>,
    ) -> hir::Program {
        // A function that never returns a value returns 0.
        for i in 0..self.funcs.len() {
            let ret = self.funcs[i].ret;
            if self.u.get(ret).is_none() {
                let _ = self.u.set(ret, Type::Long);
            }
        }
        for (v, span, what) in std::mem::take(&mut self.no_stats) {
            let reported = self
                .diags
                .iter()
                .any(|d| d.primary.as_ref().is_some_and(|l| l.span == span));
            if self.u.get(v) == Some(Type::Stats) && !reported {
                self.error(
                    format!("statistics {what} can only be used with `<<<`, `@count`/`@sum`/`@min`/`@max`/`@avg`/`@variance`, `@hist_*` and `delete`"),
                    span,
                );
            }
        }
        let mut globals = Vec::new();
        for i in 0..self.globals.len() {
            let (ty, keys, name, span, used, shape) = {
                let g = &self.globals[i];
                (
                    g.ty,
                    g.keys.clone(),
                    g.name.clone(),
                    g.span,
                    g.read || g.written,
                    g.shape,
                )
            };
            let t = match self.u.get(ty) {
                Some(t) => t,
                None if !used => {
                    self.diags.push(crate::diag::Diagnostic::warning(
                        format!("global `{name}` is never used"),
                        span,
                    ));
                    Type::Long
                }
                None => {
                    self.error(format!("cannot infer the type of global `{name}`"), span);
                    Type::Long
                }
            };
            if used && shape == Shape::AnyArray {
                self.error(
                    format!("array `{name}` is declared but never indexed"),
                    span,
                );
            }
            let mut key_types = Vec::new();
            for (k, kv) in keys.iter().enumerate() {
                match self.u.get(*kv) {
                    Some(Type::Stats) => {
                        self.error(
                            format!("key {} of array `{name}` cannot be statistics", k + 1),
                            span,
                        );
                        key_types.push(Type::Long);
                    }
                    Some(t) => key_types.push(t),
                    None => {
                        self.error(
                            format!("cannot infer the type of key {} of array `{name}`", k + 1),
                            span,
                        );
                        key_types.push(Type::Long);
                    }
                }
            }
            let g = &self.globals[i];
            globals.push(hir::Global {
                name,
                ty: t,
                keys: key_types,
                max_entries: g.max_entries,
                wrap: g.wrap,
                init: g.init.clone(),
                auto_print: g.written && !g.read,
                span,
            });
        }
        for (i, (f, scope)) in functions.iter_mut().zip(&fscopes).enumerate() {
            let called = self.funcs[i].called;
            if !called {
                self.diags.push(crate::diag::Diagnostic::warning(
                    format!("function `{}` is never called", f.name),
                    self.funcs[i].span,
                ));
            }
            f.locals = self.locals(scope, Some(&f.name), called);
            let ret = self.funcs[i].ret;
            f.ret = self.u.get(ret).unwrap_or(Type::Long);
            if f.ret == Type::Stats {
                self.error(
                    format!("function `{}` cannot return statistics", f.name),
                    f.span,
                );
            }
        }
        for (p, scope) in probes.iter_mut().zip(&pscopes) {
            p.locals = self.locals(scope, None, true);
        }
        let mut unresolved = None;
        for f in &mut functions {
            self.fill_block(&mut f.body, &mut unresolved);
        }
        for p in &mut probes {
            for pt in &mut p.points {
                if let Some(c) = &mut pt.condition {
                    self.fill_expr(c, &mut unresolved);
                }
            }
            self.fill_block(&mut p.body, &mut unresolved);
        }
        if let Some(span) = unresolved {
            if !self.diags.iter().any(|d| d.is_error()) {
                self.error("cannot infer the type of this expression", span);
            }
        }
        hir::Program {
            globals,
            functions,
            probes,
            expr_count: self.expr_tys.len() as u32,
        }
    }

    /// Resolved locals; `strict` is false for uncalled functions, whose unknown types default to `long`.
    fn locals(&mut self, scope: &Scope, func: Option<&str>, strict: bool) -> Vec<hir::Local> {
        let mut out = Vec::new();
        for l in &scope.locals {
            let ty = match self.u.get(l.ty) {
                Some(Type::Stats) => {
                    self.error(
                        format!(
                            "local `{}` cannot hold statistics; statistics must be global",
                            l.name
                        ),
                        l.span,
                    );
                    Type::Long
                }
                Some(t) => t,
                None if !strict => {
                    let _ = self.u.set(l.ty, Type::Long);
                    Type::Long
                }
                None => {
                    let what = match func {
                        Some(f) => format!(" in function `{f}`"),
                        None => String::new(),
                    };
                    self.error(
                        format!(
                            "cannot infer the type of local `{}`{what}: it is never assigned",
                            l.name
                        ),
                        l.span,
                    );
                    Type::Long
                }
            };
            out.push(hir::Local {
                name: l.name.clone(),
                ty,
                span: l.span,
            });
        }
        out
    }

    fn fill_block(&mut self, b: &mut hir::Block, un: &mut Option<crate::span::Span>) {
        for s in &mut b.stmts {
            self.fill_stmt(s, un);
        }
    }

    fn fill_stmt(&mut self, s: &mut hir::Stmt, un: &mut Option<crate::span::Span>) {
        use hir::StmtKind::*;
        match &mut s.kind {
            Expr(e) => self.fill_expr(e, un),
            Block(b) => self.fill_block(b, un),
            If { cond, then, els } => {
                self.fill_expr(cond, un);
                self.fill_stmt(then, un);
                if let Some(e) = els {
                    self.fill_stmt(e, un);
                }
            }
            While { cond, body } => {
                self.fill_expr(cond, un);
                self.fill_stmt(body, un);
            }
            For {
                init,
                cond,
                step,
                body,
            } => {
                for e in [init, cond, step].into_iter().flatten() {
                    self.fill_expr(e, un);
                }
                self.fill_stmt(body, un);
            }
            Foreach(f) => {
                for e in f.slice.iter_mut().flatten().flatten() {
                    self.fill_expr(e, un);
                }
                if let Some(l) = &mut f.limit {
                    self.fill_expr(l, un);
                }
                self.fill_stmt(&mut f.body, un);
            }
            Return(Some(e)) => self.fill_expr(e, un),
            Delete(d) => match d {
                hir::DeleteTarget::Element { keys, .. } => {
                    for k in keys {
                        self.fill_expr(k, un);
                    }
                }
                hir::DeleteTarget::Slice { keys, .. } => {
                    for k in keys.iter_mut().flatten() {
                        self.fill_expr(k, un);
                    }
                }
                _ => {}
            },
            Try { body, catch, .. } => {
                self.fill_block(body, un);
                self.fill_block(catch, un);
            }
            Break | Continue | Next | Return(None) => {}
        }
    }

    fn fill_lvalue(&mut self, l: &mut hir::LValue, un: &mut Option<crate::span::Span>) {
        if let hir::LValue::Element { keys, .. } = l {
            for k in keys {
                self.fill_expr(k, un);
            }
        }
    }

    fn fill_expr(&mut self, e: &mut hir::Expr, un: &mut Option<crate::span::Span>) {
        use hir::ExprKind::*;
        let v = self.expr_tys[e.id.0 as usize];
        e.ty = match self.u.get(v) {
            Some(t) => t,
            None => {
                un.get_or_insert(e.span);
                Type::Long
            }
        };
        match &mut e.kind {
            Long(_) | Str(_) | Local(_) | Global(_) => {}
            Element { keys, .. } | Builtin { args: keys, .. } | Call { args: keys, .. } => {
                for k in keys {
                    self.fill_expr(k, un);
                }
            }
            Printf { args, .. } | Print { args, .. } => {
                for k in args {
                    self.fill_expr(k, un);
                }
            }
            Binary { lhs, rhs, .. } | Compare { lhs, rhs, .. } | Concat(lhs, rhs) => {
                self.fill_expr(lhs, un);
                self.fill_expr(rhs, un);
            }
            Unary { operand, .. } => self.fill_expr(operand, un),
            Regex { subject, .. } => self.fill_expr(subject, un),
            In { keys, .. } => {
                for k in keys.iter_mut().flatten() {
                    self.fill_expr(k, un);
                }
            }
            Ternary { cond, then, els } => {
                self.fill_expr(cond, un);
                self.fill_expr(then, un);
                self.fill_expr(els, un);
            }
            Assign { target, value, .. } | Aggregate { target, value } => {
                self.fill_lvalue(target, un);
                self.fill_expr(value, un);
            }
            IncDec { target, .. } => self.fill_lvalue(target, un),
            StatExtract { stat, .. } | Hist { stat, .. } => self.fill_lvalue(stat, un),
            Target(t) => self.fill_target(t, un),
            Entry(x) | Defined(x) => self.fill_expr(x, un),
        }
    }

    fn fill_target(&mut self, t: &mut hir::TargetExpr, un: &mut Option<crate::span::Span>) {
        if let hir::TargetBase::Cast { pointer, .. } = &mut t.base {
            self.fill_expr(pointer, un);
        }
        for a in &mut t.chain {
            if let hir::Accessor::Index { index, .. } = a {
                self.fill_expr(index, un);
            }
        }
    }
}
