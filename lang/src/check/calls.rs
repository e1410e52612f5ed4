//! Calls (script functions, builtins, the print family) and target expressions.

use super::{tn, Checker, Ctx, Scope};
use crate::ast::{self, ExprKind as A};
use crate::builtins;
use crate::hir::{self, ExprKind as H, Type};
use crate::printf::parse_format;
use crate::span::Span;

pub(super) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl Checker<'_> {
    pub(super) fn call(
        &mut self,
        name: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        sc: &mut Scope,
    ) -> hir::Expr {
        let n = &name.name;
        if let Some(f) = self.function_id(n, args.len()) {
            let params: Vec<_> = self.funcs[f.0 as usize]
                .params
                .iter()
                .map(|p| p.1)
                .collect();
            let ret = self.funcs[f.0 as usize].ret;
            let mut hargs = Vec::new();
            for (i, (a, p)) in args.iter().zip(params).enumerate() {
                let h = self.expr(a, sc);
                let v = self.ty_of(&h);
                self.same(p, v, a.span, |want, got| {
                    format!(
                        "type mismatch: argument {} of `{n}` must be {}, found {}",
                        i + 1,
                        tn(want),
                        tn(got)
                    )
                });
                hargs.push(h);
            }
            self.funcs[f.0 as usize].called = true;
            return self.mk(
                H::Call {
                    func: f,
                    args: hargs,
                },
                ret,
                span,
            );
        }
        if let Some(arity) = self
            .func_names
            .get(n)
            .and_then(|ids| ids.first())
            .map(|&(a, _)| a)
        {
            self.error(
                format!(
                    "function `{n}` takes {}, found {}",
                    plural(arity, "argument"),
                    args.len()
                ),
                span,
            );
            return self.fallback(args, sc);
        }
        if builtins::is_print(n) {
            return self.print_call(n, args, span, sc);
        }
        let Some(b) = builtins::lookup(n) else {
            self.error(format!("unknown function `{n}`"), name.span);
            return self.fallback(args, sc);
        };
        let max = b.params.len();
        let min = max - b.optional;
        if args.len() < min || args.len() > max {
            let want = if min == max {
                plural(max, "argument")
            } else {
                format!("{min} to {max} arguments")
            };
            self.error(format!("`{n}` takes {want}, found {}", args.len()), span);
            return self.fallback(args, sc);
        }
        let mut hargs = Vec::new();
        for (i, (a, &t)) in args.iter().zip(b.params).enumerate() {
            let h = self.expr(a, sc);
            let v = self.ty_of(&h);
            self.want(v, t, a.span, |got| {
                format!(
                    "type mismatch: argument {} of `{n}` must be {}, found {}",
                    i + 1,
                    tn(t),
                    tn(got)
                )
            });
            hargs.push(h);
        }
        let ret = self.u.known(b.ret);
        self.mk(
            H::Builtin {
                name: n.clone(),
                args: hargs,
            },
            ret,
            span,
        )
    }

    /// After an error: still check the arguments, so their mistakes are reported too.
    fn fallback(&mut self, args: &[ast::Expr], sc: &mut Scope) -> hir::Expr {
        for a in args {
            self.expr(a, sc);
        }
        let v = self.u.fresh();
        self.mk(H::Long(0), v, Span::default())
    }

    fn print_call(&mut self, n: &str, args: &[ast::Expr], span: Span, sc: &mut Scope) -> hir::Expr {
        let to_string = n.starts_with("sprint");
        let base = n.trim_start_matches('s');
        let ret = if to_string { self.string } else { self.long };
        if base == "printf" {
            let Some(first) = args.first() else {
                self.error(format!("`{n}` needs a format string"), span);
                return self.fallback(args, sc);
            };
            let A::Str(text) = &first.kind else {
                self.error(
                    format!("the format of `{n}` must be a string literal"),
                    first.span,
                );
                return self.fallback(args, sc);
            };
            let format = match parse_format(text) {
                Ok(f) => f,
                Err(m) => {
                    self.error(format!("invalid format: {m}"), first.span);
                    return self.fallback(&args[1..], sc);
                }
            };
            let kinds = format.arg_kinds();
            let rest = &args[1..];
            if kinds.len() != rest.len() {
                self.error(
                    format!(
                        "{n} format expects {}, found {}",
                        plural(kinds.len(), "argument"),
                        rest.len()
                    ),
                    span,
                );
                return self.fallback(rest, sc);
            }
            // The conversion each argument feeds, `*` arguments included.
            let mut convs: Vec<String> = Vec::new();
            for p in &format.pieces {
                if let crate::printf::Piece::Conv(cv) = p {
                    let text = cv.to_string();
                    let stars = usize::from(cv.width == Some(crate::printf::Count::Star))
                        + usize::from(cv.precision == Some(crate::printf::Count::Star));
                    for _ in 0..=stars {
                        convs.push(text.clone());
                    }
                }
            }
            let mut hargs = Vec::new();
            for (i, (a, is_str)) in rest.iter().zip(kinds).enumerate() {
                let h = self.expr(a, sc);
                let v = self.ty_of(&h);
                let want = if is_str { Type::String } else { Type::Long };
                let conv = convs.get(i).cloned().unwrap_or_default();
                self.want(v, want, a.span, |got| {
                    format!(
                        "type mismatch: argument {} of `{n}` must be {} for `{conv}`, found {}",
                        i + 1,
                        tn(want),
                        tn(got)
                    )
                });
                hargs.push(h);
            }
            return self.mk(
                H::Printf {
                    to_string,
                    format,
                    args: hargs,
                },
                ret,
                span,
            );
        }
        let (kind, delim, values) = match base {
            "printd" | "printdln" => {
                let kind = if base == "printd" {
                    hir::PrintKind::Printd
                } else {
                    hir::PrintKind::Printdln
                };
                let delim = match args.first().map(|a| &a.kind) {
                    Some(A::Str(d)) => d.clone(),
                    _ => {
                        self.error(
                            format!(
                                "the first argument of `{n}` must be a string literal delimiter"
                            ),
                            span,
                        );
                        return self.fallback(args, sc);
                    }
                };
                if args.len() < 3 {
                    self.error(
                        format!("`{n}` needs a delimiter and at least two values"),
                        span,
                    );
                    return self.fallback(args, sc);
                }
                (kind, Some(delim), &args[1..])
            }
            "print" | "println" => {
                if base == "print" && args.is_empty() {
                    self.error(format!("`{n}` needs at least one argument"), span);
                }
                let kind = if base == "print" {
                    hir::PrintKind::Print
                } else {
                    hir::PrintKind::Println
                };
                (kind, None, args)
            }
            _ => unreachable!("print family member `{n}`"),
        };
        let mut hargs = Vec::new();
        for a in values {
            let h = match &a.kind {
                A::Hist { spec, arg } => self.hist(spec, arg, a.span, sc),
                _ => self.expr(a, sc),
            };
            hargs.push(h);
        }
        self.mk(
            H::Print {
                kind,
                to_string,
                delim,
                args: hargs,
            },
            ret,
            span,
        )
    }

    fn hist(
        &mut self,
        spec: &ast::HistSpec,
        arg: &ast::Expr,
        span: Span,
        sc: &mut Scope,
    ) -> hir::Expr {
        let (kind, log) = match spec {
            ast::HistSpec::Log => (hir::HistKind::Log, true),
            ast::HistSpec::Linear { lo, hi, width } => {
                let mut vals = [0i64; 3];
                for (slot, e) in vals.iter_mut().zip([lo, hi, width]) {
                    *slot = match const_long(e) {
                        Some(v) => v,
                        None => {
                            self.error(
                                "`@hist_linear` bounds and width must be literal numbers",
                                e.span,
                            );
                            0
                        }
                    };
                }
                let [lo, hi, width] = vals;
                if width <= 0 {
                    self.error("`@hist_linear` width must be positive", span);
                } else if hi <= lo {
                    self.error(
                        "`@hist_linear` needs the upper bound above the lower bound",
                        span,
                    );
                }
                (hir::HistKind::Linear { lo, hi, width }, false)
            }
        };
        let stat = self.stat_lvalue(
            arg,
            if log { "@hist_log" } else { "@hist_linear" },
            false,
            sc,
        );
        let stats = self.u.known(Type::Stats);
        let Some(stat) = stat else {
            return self.mk(H::Long(0), stats, span);
        };
        self.mark_read(&stat);
        if let hir::LValue::Global(g) | hir::LValue::Element { array: g, .. } = &stat {
            let g = g.0 as usize;
            match self.globals[g].hist {
                Some((was_log, first)) if was_log != log => {
                    let name = self.globals[g].name.clone();
                    self.diags.push(
                        crate::diag::Diagnostic::error(
                            format!("`{name}` cannot be printed with both `@hist_log` and `@hist_linear`"),
                            span,
                        )
                        .with_secondary(first, "the other histogram is here"),
                    );
                }
                Some(_) => {}
                None => self.globals[g].hist = Some((log, span)),
            }
        }
        self.mk(H::Hist { kind, stat }, stats, span)
    }

    pub(super) fn target(&mut self, t: &ast::TargetExpr, span: Span, sc: &mut Scope) -> hir::Expr {
        let probe = match &sc.ctx {
            Ctx::Probe(p) => Some(p.clone()),
            _ => None,
        };
        let quiet = sc.in_defined;
        let is_cast = matches!(t.base, ast::TargetBase::Cast { .. });
        // Only needed for messages, so only built for them.
        let text = || {
            crate::pretty::expr(&ast::Expr {
                kind: A::Target(t.clone()),
                span,
            })
        };
        let base = match &t.base {
            ast::TargetBase::Var(v) => {
                let is_ret = v == "return";
                if let Some(n) = v.strip_prefix("arg").and_then(|d| d.parse::<u8>().ok()) {
                    if probe.as_ref().is_some_and(|p| p.all_mark) {
                        if n == 0 || n > 12 {
                            self.error(format!("`$arg{n}` is out of range: `.mark` probes have `$arg1` to `$arg12`"), span);
                        }
                        hir::TargetBase::MarkArg(n)
                    } else {
                        hir::TargetBase::Var(v.clone())
                    }
                } else if is_ret {
                    hir::TargetBase::Return
                } else {
                    if probe.as_ref().is_some_and(|p| p.all_mark) && !quiet {
                        self.error(
                            format!(
                                "`.mark` probes only provide `$arg1`…`$argN`, not `{}`",
                                text()
                            ),
                            span,
                        );
                    }
                    hir::TargetBase::Var(v.clone())
                }
            }
            ast::TargetBase::Bulk(b) => hir::TargetBase::Bulk(*b),
            ast::TargetBase::Cast {
                pointer,
                type_name,
                module,
            } => {
                let p = self.long_expr(pointer, "the pointer given to `@cast`", sc);
                hir::TargetBase::Cast {
                    pointer: Box::new(p),
                    type_name: type_name.clone(),
                    module: module.clone(),
                }
            }
            ast::TargetBase::AtVar { name, module } => hir::TargetBase::Var2 {
                name: name.clone(),
                module: module.clone(),
            },
        };
        let needs_return = matches!(
            base,
            hir::TargetBase::Return | hir::TargetBase::Bulk(hir::Bulk::Return)
        );
        if !quiet && !is_cast && !matches!(base, hir::TargetBase::Var2 { .. }) {
            match &probe {
                None => match &sc.ctx {
                    Ctx::Function { name, .. } => self.error(
                        format!("target variable `{}` cannot be used in function `{name}`: pass it as an argument", text()),
                        span,
                    ),
                    _ => self.error(format!("target variable `{}` cannot be used here", text()), span),
                },
                Some(p) => {
                    if let Some(pt) = &p.no_targets {
                        self.error(format!("target variable `{}` is not available in probe `{pt}`", text()), span);
                    } else if needs_return && !p.all_return {
                        let shown = if matches!(base, hir::TargetBase::Return) {
                            "$return"
                        } else {
                            "$$return"
                        };
                        self.error(format!("`{shown}` is only available in `.return` probes"), span);
                    }
                }
            }
        }
        let mut chain = Vec::new();
        for a in &t.chain {
            chain.push(match a {
                ast::Accessor::Member { name, span } => hir::Accessor::Member {
                    name: name.clone(),
                    span: *span,
                },
                ast::Accessor::Index { index, span } => hir::Accessor::Index {
                    index: Box::new(self.long_expr(index, "an index into a target expression", sc)),
                    span: *span,
                },
            });
        }
        let is_string = t.pretty.is_some() || matches!(base, hir::TargetBase::Bulk(_));
        if t.address_of && is_string {
            self.error(
                "cannot take the address of a pretty-printed target expression",
                span,
            );
        }
        let ty = if is_string { self.string } else { self.long };
        self.mk(
            H::Target(hir::TargetExpr {
                base,
                chain,
                address_of: t.address_of,
                pretty: t.pretty,
                span,
            }),
            ty,
            span,
        )
    }
}

/// A literal number, possibly negated.
fn const_long(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        A::Long(v) => Some(*v),
        A::Unary {
            op: ast::UnaryOp::Neg,
            operand,
        } => const_long(operand).map(i64::wrapping_neg),
        _ => None,
    }
}
