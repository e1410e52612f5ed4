//! Statements: control flow, `foreach`, `delete`, `try`, `return`.

use super::expr::Name;
use super::{tn, Checker, Ctx, Scope, Shape};
use crate::ast::{self, ExprKind as A, StmtKind as S};
use crate::hir::{self, StmtKind as H, Type};

impl Checker<'_> {
    pub(super) fn block(&mut self, b: &ast::Block, sc: &mut Scope) -> hir::Block {
        hir::Block {
            stmts: b.stmts.iter().filter_map(|s| self.stmt(s, sc)).collect(),
            span: b.span,
        }
    }

    fn sub(&mut self, s: &ast::Stmt, sc: &mut Scope) -> Box<hir::Stmt> {
        Box::new(self.stmt(s, sc).unwrap_or(hir::Stmt {
            kind: H::Block(hir::Block {
                stmts: Vec::new(),
                span: s.span,
            }),
            span: s.span,
        }))
    }

    fn loop_body(&mut self, s: &ast::Stmt, sc: &mut Scope) -> Box<hir::Stmt> {
        sc.loops += 1;
        let b = self.sub(s, sc);
        sc.loops -= 1;
        b
    }

    fn stmt(&mut self, s: &ast::Stmt, sc: &mut Scope) -> Option<hir::Stmt> {
        let kind = match &s.kind {
            S::Empty => return None,
            S::Expr(e) => H::Expr(self.expr_stmt(e, sc)),
            S::Block(b) => H::Block(self.block(b, sc)),
            S::If { cond, then, els } => H::If {
                cond: self.long_expr(cond, "an `if` condition", sc),
                then: self.sub(then, sc),
                els: els.as_ref().map(|e| self.sub(e, sc)),
            },
            S::While { cond, body } => H::While {
                cond: self.long_expr(cond, "a `while` condition", sc),
                body: self.loop_body(body, sc),
            },
            S::For {
                init,
                cond,
                step,
                body,
            } => H::For {
                init: init.as_ref().map(|e| self.expr_stmt(e, sc)),
                cond: cond
                    .as_ref()
                    .map(|e| self.long_expr(e, "a `for` condition", sc)),
                step: step.as_ref().map(|e| self.expr_stmt(e, sc)),
                body: self.loop_body(body, sc),
            },
            S::Foreach(f) => H::Foreach(Box::new(self.foreach(f, sc)?)),
            S::Break | S::Continue => {
                if sc.loops == 0 {
                    let w = if s.kind == S::Break {
                        "break"
                    } else {
                        "continue"
                    };
                    self.error(format!("`{w}` outside a loop"), s.span);
                }
                if s.kind == S::Break {
                    H::Break
                } else {
                    H::Continue
                }
            }
            S::Next => {
                if let Ctx::Function { name, .. } = &sc.ctx {
                    let name = name.clone();
                    self.error(
                        format!(
                            "`next` in function `{name}` (overload chains) is not supported yet"
                        ),
                        s.span,
                    );
                }
                H::Next
            }
            S::Return(value) => {
                let Ctx::Function { ret, name } = sc.ctx.clone() else {
                    self.error(
                        "`return` is only allowed in functions; use `next` to leave a probe",
                        s.span,
                    );
                    return None;
                };
                match value {
                    None => H::Return(None),
                    Some(v) => {
                        let h = self.expr(v, sc);
                        let hv = self.ty_of(&h);
                        self.same(ret, hv, v.span, |a, b| {
                            format!(
                                "type mismatch: function `{name}` returns {} elsewhere, found {}",
                                tn(a),
                                tn(b)
                            )
                        });
                        H::Return(Some(h))
                    }
                }
            }
            S::Delete(e) => H::Delete(self.delete(e, sc)?),
            S::Try {
                body,
                catch_var,
                catch,
            } => {
                let body = self.block(body, sc);
                let var = catch_var.as_ref().and_then(|v| match self.name(&v.name, v.span, sc) {
                    Some(Name::Local(l)) => {
                        let t = sc.locals[l.0 as usize].ty;
                        self.want(t, Type::String, v.span, |t| {
                            format!("type mismatch: the `catch` variable is a `string`, but `{}` is {}", v.name, tn(t))
                        });
                        Some(l)
                    }
                    _ => {
                        self.error(format!("the `catch` variable `{}` must be a local", v.name), v.span);
                        None
                    }
                });
                H::Try {
                    body,
                    catch_var: var,
                    catch: self.block(catch, sc),
                }
            }
        };
        Some(hir::Stmt { kind, span: s.span })
    }

    /// An expression statement: any type, statistics and histograms refused as values.
    fn expr_stmt(&mut self, e: &ast::Expr, sc: &mut Scope) -> hir::Expr {
        self.expr(e, sc)
    }

    fn delete(&mut self, e: &ast::Expr, sc: &mut Scope) -> Option<hir::DeleteTarget> {
        let target = match &e.kind {
            A::Var(n) => match self.name(n, e.span, sc)? {
                Name::Local(l) => hir::DeleteTarget::Local(l),
                Name::Global(g) => {
                    let gi = &self.globals[g.0 as usize];
                    if gi.shape == Shape::Unknown {
                        // `delete x` alone does not say whether `x` is an array.
                    }
                    self.globals[g.0 as usize].written = true;
                    hir::DeleteTarget::Global(g)
                }
            },
            A::Index { array, keys } => {
                let Some(&g) = self.global_names.get(&array.name) else {
                    self.error(
                        format!(
                            "unknown array `{}`: arrays must be declared `global`",
                            array.name
                        ),
                        array.span,
                    );
                    return None;
                };
                let hk = self.keys(g, keys, true, e.span, sc);
                self.globals[g.0 as usize].written = true;
                if sc.iterating.contains(&g) {
                    self.error(
                        format!(
                            "array `{}` cannot be modified inside a `foreach` over it",
                            array.name
                        ),
                        e.span,
                    );
                }
                if hk.iter().all(Option::is_some) {
                    hir::DeleteTarget::Element {
                        array: g,
                        keys: hk.into_iter().flatten().collect(),
                    }
                } else {
                    hir::DeleteTarget::Slice { array: g, keys: hk }
                }
            }
            _ => {
                self.error(
                    "`delete` takes a variable, an array or an array element",
                    e.span,
                );
                return None;
            }
        };
        Some(target)
    }

    fn foreach(&mut self, f: &ast::Foreach, sc: &mut Scope) -> Option<hir::Foreach> {
        let Some(&g) = self.global_names.get(&f.array.name) else {
            self.error(
                format!(
                    "unknown array `{}`: arrays must be declared `global`",
                    f.array.name
                ),
                f.array.span,
            );
            return None;
        };
        if !self.use_shape(g, Shape::Array(f.keys.len()), f.array.span) {
            return None;
        }
        self.globals[g.0 as usize].read = true;
        let slice = f.slice.as_ref().map(|keys| {
            if keys.len() != f.keys.len() {
                self.error(
                    format!(
                        "the slice has {} keys, but the loop binds {}",
                        keys.len(),
                        f.keys.len()
                    ),
                    f.array.span,
                );
            }
            self.keys(g, keys, true, f.array.span, sc)
        });
        let mut key_ids = Vec::new();
        for (i, k) in f.keys.iter().enumerate() {
            let Some(Name::Local(l)) = self.name(&k.name, k.span, sc) else {
                self.error(
                    format!(
                        "the `foreach` key `{}` must be a local, not a global",
                        k.name
                    ),
                    k.span,
                );
                continue;
            };
            let lt = sc.locals[l.0 as usize].ty;
            let kt = self.globals[g.0 as usize].keys[i];
            let arr = f.array.name.clone();
            self.same(kt, lt, k.span, |a, b| {
                format!(
                    "type mismatch: key {} of `{arr}` is {}, but `{}` is {}",
                    i + 1,
                    tn(a),
                    k.name,
                    tn(b)
                )
            });
            key_ids.push(l);
        }
        let value = f
            .value
            .as_ref()
            .and_then(|v| match self.name(&v.name, v.span, sc) {
                Some(Name::Local(l)) => {
                    let lt = sc.locals[l.0 as usize].ty;
                    let gt = self.globals[g.0 as usize].ty;
                    let arr = f.array.name.clone();
                    self.same(gt, lt, v.span, |a, b| {
                        format!(
                            "type mismatch: values of `{arr}` are {}, but `{}` is {}",
                            tn(a),
                            v.name,
                            tn(b)
                        )
                    });
                    Some(l)
                }
                _ => {
                    self.error(
                        format!("the `foreach` value `{}` must be a local", v.name),
                        v.span,
                    );
                    None
                }
            });
        let sort = f.sort.map(|m| {
            let by = match m.on {
                ast::SortOn::Key(k) => hir::SortBy::Key(k),
                ast::SortOn::Value => {
                    if m.agg.is_some() {
                        let gt = self.globals[g.0 as usize].ty;
                        self.want(gt, Type::Stats, m.span, |t| {
                            format!(
                                "sorting by an aggregate needs a statistics array, `{}` holds {}",
                                f.array.name,
                                tn(t)
                            )
                        });
                    }
                    hir::SortBy::Value(m.agg)
                }
            };
            hir::Sort {
                by,
                descending: m.descending,
            }
        });
        let limit = f
            .limit
            .as_ref()
            .map(|l| self.long_expr(l, "a `foreach` limit", sc));
        sc.iterating.push(g);
        let body = self.loop_body(&f.body, sc);
        sc.iterating.pop();
        Some(hir::Foreach {
            value,
            keys: key_ids,
            array: g,
            slice,
            sort,
            limit,
            body,
        })
    }
}
