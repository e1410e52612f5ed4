//! pest pairs → AST: expressions (precedence by a Pratt parser) and `foreach` heads.

use super::{kids, Builder, Rule, Val, R};
use crate::ast::*;
use crate::diag::Diagnostic;
use crate::preproc::MAX_NESTING;
use crate::span::Span;
use pest::iterators::{Pair, Pairs};
use std::iter::Peekable;

fn err<T>(msg: impl Into<String>, span: Span) -> R<T> {
    Err(Diagnostic::error(msg, span))
}

impl Builder<'_> {
    pub(super) fn foreach(&self, head: Pair<Rule>, body: Pair<Rule>) -> R<Foreach> {
        let mut f = Foreach {
            value: None,
            keys: Vec::new(),
            bracketed: false,
            array: Ident {
                name: String::new(),
                span: Span::default(),
            },
            slice: None,
            sort: None,
            limit: None,
            body: Box::new(Stmt {
                kind: StmtKind::Empty,
                span: Span::default(),
            }),
        };
        let mut marks: Vec<SortMark> = Vec::new();
        let mark = |m: Pair<Rule>, on: SortOn, agg: Option<StatOp>, span: Span| SortMark {
            on,
            descending: m.as_str() == "-",
            agg,
            span,
        };
        for x in kids(head) {
            match x.as_rule() {
                Rule::foreach_value => {
                    let mut it = x.into_inner();
                    f.value = Some(self.ident(it.next().expect("value"))?);
                    if let Some(m) = it.next() {
                        let span = self.sp(&m);
                        marks.push(mark(m, SortOn::Value, None, span));
                    }
                }
                Rule::foreach_keys => {
                    f.bracketed = x.as_str().starts_with('[');
                    for (i, k) in x.into_inner().enumerate() {
                        let mut it = k.into_inner();
                        f.keys.push(self.ident(it.next().expect("key"))?);
                        if let Some(m) = it.next() {
                            let span = self.sp(&m);
                            marks.push(mark(m, SortOn::Key(i as u8), None, span));
                        }
                    }
                }
                Rule::ident => f.array = self.ident(x)?,
                Rule::hist_log | Rule::hist_linear => {
                    return err(
                        "`foreach` over histogram buckets is not supported yet",
                        self.sp(&x),
                    )
                }
                Rule::foreach_slice => {
                    let keys = x.into_inner().map(|k| self.key(k)).collect::<R<Vec<_>>>()?;
                    f.slice = Some(keys.into_iter().map(|(k, _)| k).collect());
                }
                Rule::array_sort => {
                    let span = self.sp(&x);
                    let mut agg = None;
                    let mut sign = None;
                    for y in x.into_inner() {
                        match y.as_rule() {
                            Rule::stat_name => agg = StatOp::from_text(y.as_str()),
                            _ => sign = Some(y),
                        }
                    }
                    marks.push(mark(sign.expect("sort sign"), SortOn::Value, agg, span));
                }
                _ => f.limit = Some(self.expr(kids(x).next().expect("limit"))?),
            }
        }
        if f.keys.len() > 9 {
            return err("an array has at most 9 keys", f.keys[9].span);
        }
        if marks.len() > 1 {
            return err("`foreach` takes at most one sort mark", marks[1].span);
        }
        f.sort = marks.pop();
        f.body = self.sub_stmt(body)?;
        Ok(f)
    }

    /// An index key: an expression or `*`.
    fn key(&self, p: Pair<Rule>) -> R<(Option<Expr>, usize)> {
        if p.as_rule() == Rule::star {
            return Ok((None, 0));
        }
        let (e, d) = self.expr_d(p)?;
        Ok((Some(e), d))
    }

    pub(super) fn expr(&self, p: Pair<Rule>) -> R<Expr> {
        self.expr_d(p).map(|(e, _)| e)
    }

    /// An expression and its depth, with the nesting cap applied.
    fn expr_d(&self, p: Pair<Rule>) -> R<(Expr, usize)> {
        let span = self.sp(&p);
        match self.pratt_expr(p)? {
            Val::E(e, d) => Ok((e, d)),
            Val::Tuple(_, s, _) => err(
                "a key list `[...]` must be followed by `in ARRAY`",
                s.to(span),
            ),
        }
    }

    fn pratt_expr(&self, p: Pair<Rule>) -> R<Val> {
        self.climb(&mut p.into_inner().peekable(), 0)
    }

    /// Precedence climbing over the flat operand/operator list of an `expr` pair:
    /// operators bind while their power is above `min`.
    fn climb(&self, it: &mut Peekable<Pairs<Rule>>, min: u8) -> R<Val> {
        let first = it.next().expect("operand");
        let mut lhs = if first.as_rule() == Rule::prefix_op {
            let rhs = self.climb(it, prefix_power(first.as_str()))?;
            self.prefix(first, rhs)?
        } else if let Some(args) = it.next_if(|p| p.as_rule() == Rule::call_args) {
            self.call(first, args)?
        } else {
            self.primary(first)?
        };
        while let Some(op) = it.peek() {
            let (power, kind) = op_power(op);
            if power <= min {
                break;
            }
            let op = it.next().expect("operator");
            lhs = match kind {
                Fix::Postfix => self.postfix(lhs, op)?,
                Fix::Left | Fix::Right => {
                    let rhs = self.climb(it, power - u8::from(kind == Fix::Right))?;
                    self.infix(lhs, op, rhs)?
                }
            };
        }
        Ok(lhs)
    }

    fn mk(&self, kind: ExprKind, span: Span, depth: usize) -> R<Val> {
        if depth + self.depth.get() > MAX_NESTING {
            return err(
                format!("expression is nested too deeply (the limit is {MAX_NESTING})"),
                Span {
                    end: span.start + 1,
                    ..span
                },
            );
        }
        Ok(Val::E(Expr { kind, span }, depth))
    }

    /// `what` names the operator for the error; it is only formatted when needed.
    fn plain(&self, v: Val, what: impl std::fmt::Display) -> R<(Expr, usize)> {
        match v {
            Val::E(e, d) => Ok((e, d)),
            Val::Tuple(_, s, _) => err(
                format!("a key list `[...]` must be followed by `in ARRAY`, not {what}"),
                s,
            ),
        }
    }

    fn args<'i>(&self, it: impl Iterator<Item = Pair<'i, Rule>>) -> R<(Vec<Expr>, usize)> {
        let mut out = Vec::new();
        let mut depth = 0;
        for a in it {
            let (e, d) = self.expr_d(a)?;
            depth = depth.max(d);
            out.push(e);
        }
        Ok((out, depth))
    }

    fn string_arg(&self, p: Option<Pair<Rule>>) -> R<Option<String>> {
        p.map(|s| self.string(s)).transpose()
    }

    fn primary(&self, p: Pair<Rule>) -> R<Val> {
        let span = self.sp(&p);
        let rule = p.as_rule();
        let (kind, depth) = match rule {
            Rule::paren => return self.pratt_expr(p.into_inner().next().expect("inner")),
            Rule::number => (ExprKind::Long(self.number(&p)?), 0),
            Rule::string => (ExprKind::Str(self.string(p)?), 0),
            Rule::ident => (ExprKind::Var(self.ident(p)?.name), 0),
            Rule::key_tuple => {
                let mut keys = Vec::new();
                let mut depth = 0;
                for k in p.into_inner() {
                    let (e, d) = self.key(k)?;
                    depth = depth.max(d);
                    keys.push(e);
                }
                return Ok(Val::Tuple(keys, span, depth));
            }
            Rule::stat_call => {
                let mut it = p.into_inner();
                let op = StatOp::from_text(it.next().expect("op").as_str()).expect("stat op");
                let (arg, d) = self.expr_d(it.next().expect("arg"))?;
                (
                    ExprKind::Stat {
                        op,
                        arg: Box::new(arg),
                    },
                    d + 1,
                )
            }
            Rule::hist_log => {
                let (arg, d) = self.expr_d(p.into_inner().next().expect("arg"))?;
                (
                    ExprKind::Hist {
                        spec: HistSpec::Log,
                        arg: Box::new(arg),
                    },
                    d + 1,
                )
            }
            Rule::hist_linear => {
                let (mut a, d) = self.args(p.into_inner())?;
                let width = Box::new(a.pop().expect("width"));
                let hi = Box::new(a.pop().expect("hi"));
                let lo = Box::new(a.pop().expect("lo"));
                let arg = Box::new(a.pop().expect("stat"));
                (
                    ExprKind::Hist {
                        spec: HistSpec::Linear { lo, hi, width },
                        arg,
                    },
                    d + 1,
                )
            }
            Rule::entry_call | Rule::defined_call => {
                let (e, d) = self.expr_d(p.into_inner().next().expect("arg"))?;
                let e = Box::new(e);
                let kind = if rule == Rule::entry_call {
                    ExprKind::Entry(e)
                } else {
                    ExprKind::Defined(e)
                };
                (kind, d + 1)
            }
            Rule::cast_call => {
                let mut it = p.into_inner();
                let (pointer, d) = self.expr_d(it.next().expect("ptr"))?;
                let type_name = self.string(it.next().expect("type"))?;
                let module = self.string_arg(it.next())?;
                let base = TargetBase::Cast {
                    pointer: Box::new(pointer),
                    type_name,
                    module,
                };
                (target(base), d + 1)
            }
            Rule::var_call => {
                let mut it = p.into_inner();
                let name = self.string(it.next().expect("name"))?;
                let module = self.string_arg(it.next())?;
                (target(TargetBase::AtVar { name, module }), 0)
            }
            Rule::target => {
                let (name, pr) = split_pretty(p.as_str());
                let base = match name.strip_prefix("$$") {
                    Some(bulk) => TargetBase::Bulk(match bulk {
                        "parms" => Bulk::Parms,
                        "locals" => Bulk::Locals,
                        "vars" => Bulk::Vars,
                        _ => Bulk::Return,
                    }),
                    None => TargetBase::Var(name[1..].to_string()),
                };
                let mut k = target(base);
                if let ExprKind::Target(t) = &mut k {
                    t.pretty = pr;
                }
                (k, 0)
            }
            r => unreachable!("primary rule {r:?}"),
        };
        self.mk(kind, span, depth)
    }

    /// `name(args)`.
    fn call(&self, name: Pair<Rule>, args: Pair<Rule>) -> R<Val> {
        let span = self.sp(&name).to(self.sp(&args));
        let name = self.ident(name)?;
        let (args, d) = self.args(args.into_inner())?;
        self.mk(ExprKind::Call { name, args }, span, d + 1)
    }

    fn prefix(&self, op: Pair<Rule>, rhs: Val) -> R<Val> {
        let (e, d) = self.plain(rhs, format_args!("`{}`", op.as_str()))?;
        let span = self.sp(&op).to(e.span);
        let kind =
            match op.as_str() {
                "&" => match e.kind {
                    ExprKind::Target(mut t) if !t.address_of && t.pretty.is_none() => {
                        t.address_of = true;
                        ExprKind::Target(t)
                    }
                    _ => return err(
                        "`&` can only take the address of a target expression such as `$p->field`",
                        span,
                    ),
                },
                "++" | "--" => {
                    lvalue(&e, op.as_str())?;
                    ExprKind::IncDec {
                        target: Box::new(e),
                        increment: op.as_str() == "++",
                        prefix: true,
                    }
                }
                _ => ExprKind::Unary {
                    op: match op.as_str() {
                        "-" => UnaryOp::Neg,
                        "+" => UnaryOp::Plus,
                        "!" => UnaryOp::Not,
                        _ => UnaryOp::BitNot,
                    },
                    operand: Box::new(e),
                },
            };
        self.mk(kind, span, d + 1)
    }

    fn postfix(&self, lhs: Val, op: Pair<Rule>) -> R<Val> {
        let op_span = self.sp(&op);
        if op.as_rule() == Rule::in_op {
            let array = self.ident(kids(op).next().expect("array"))?;
            let (keys, bracketed, span, d) = match lhs {
                Val::Tuple(keys, s, d) => (keys, true, s, d),
                Val::E(e, d) => {
                    let s = e.span;
                    (vec![Some(e)], false, s, d)
                }
            };
            if keys.len() > 9 {
                return err("an array has at most 9 keys", span);
            }
            return self.mk(
                ExprKind::In {
                    keys,
                    bracketed,
                    array,
                },
                span.to(op_span),
                d + 1,
            );
        }
        let (e, d) = self.plain(lhs, "an operator")?;
        let span = e.span.to(op_span);
        let kind = match op.as_rule() {
            Rule::incdec_post => {
                lvalue(&e, op.as_str())?;
                ExprKind::IncDec {
                    target: Box::new(e),
                    increment: op.as_str() == "++",
                    prefix: false,
                }
            }
            Rule::member_op => {
                let name_pair = op.into_inner().next().expect("member");
                let (name, pr) = split_pretty(name_pair.as_str());
                let name = name.to_string();
                match e.kind {
                    ExprKind::Target(mut t) if t.pretty.is_none() && !t.address_of => {
                        t.chain.push(Accessor::Member { name, span: op_span });
                        t.pretty = pr;
                        ExprKind::Target(t)
                    }
                    ExprKind::Entry(_) => {
                        return err(
                            "`->` cannot follow `@entry(...)`; move it inside, as in `@entry($p->field)`",
                            span,
                        )
                    }
                    _ => return err("`->` can only follow a target expression such as `$p`", span),
                }
            }
            _ => {
                let mut keys = Vec::new();
                let mut depth = d;
                for k in op.into_inner() {
                    let (k, kd) = self.key(k)?;
                    depth = depth.max(kd);
                    keys.push(k);
                }
                let kind = match e.kind {
                    ExprKind::Var(name) => {
                        if keys.len() > 9 {
                            return err("an array has at most 9 keys", op_span);
                        }
                        ExprKind::Index {
                            array: Ident { name, span: e.span },
                            keys,
                        }
                    }
                    ExprKind::Target(mut t) if t.pretty.is_none() && !t.address_of => {
                        let [Some(index)] = <[Option<Expr>; 1]>::try_from(keys).unwrap_or([None])
                        else {
                            return err(
                                "a target expression takes exactly one index, and not `*`",
                                op_span,
                            );
                        };
                        t.chain.push(Accessor::Index {
                            index: Box::new(index),
                            span: op_span,
                        });
                        ExprKind::Target(t)
                    }
                    ExprKind::Hist { .. } => {
                        return err(
                            "indexing a histogram bucket (`@hist_*(s)[N]`) is not supported yet",
                            span,
                        )
                    }
                    _ => return err("only arrays and target expressions can be indexed", span),
                };
                return self.mk(kind, span, depth + 1);
            }
        };
        self.mk(kind, span, d + 1)
    }

    fn infix(&self, lhs: Val, op: Pair<Rule>, rhs: Val) -> R<Val> {
        let text = op.as_str();
        if op.as_rule() == Rule::ternary_op {
            let (c, dc) = self.plain(lhs, "`?`")?;
            let (t, dt) = self.expr_d(op.into_inner().next().expect("then"))?;
            let (e, de) = self.plain(rhs, "`:`")?;
            let span = c.span.to(e.span);
            let d = dc.max(dt).max(de) + 1;
            let kind = ExprKind::Ternary {
                cond: Box::new(c),
                then: Box::new(t),
                els: Box::new(e),
            };
            return self.mk(kind, span, d);
        }
        let (l, dl) = self.plain(lhs, format_args!("`{text}`"))?;
        let (r, dr) = self.plain(rhs, format_args!("`{text}`"))?;
        let span = l.span.to(r.span);
        let d = dl.max(dr) + 1;
        let kind = match op_power(&op).0 {
            ASSIGN => {
                let op = match text {
                    "=" => AssignOp::Set,
                    "<<<" => AssignOp::Aggregate,
                    t => AssignOp::Op(binary_op(&t[..t.len() - 1])),
                };
                lvalue(&l, text)?;
                ExprKind::Assign {
                    op,
                    target: Box::new(l),
                    value: Box::new(r),
                }
            }
            _ if text == "=~" || text == "!~" => match r.kind {
                ExprKind::Str(pattern) => ExprKind::Regex {
                    subject: Box::new(l),
                    pattern,
                    negated: text == "!~",
                },
                _ => {
                    return err(
                        format!("the right side of `{text}` must be a string literal"),
                        r.span,
                    )
                }
            },
            _ => ExprKind::Binary {
                op: binary_op(text),
                lhs: Box::new(l),
                rhs: Box::new(r),
            },
        };
        self.mk(kind, span, d)
    }
}

fn target(base: TargetBase) -> ExprKind {
    ExprKind::Target(TargetExpr {
        base,
        chain: Vec::new(),
        address_of: false,
        pretty: None,
    })
}

/// `name$` / `name$$`: the name and its pretty-printing suffix.
fn split_pretty(s: &str) -> (&str, Option<Pretty>) {
    let name = s.trim_end_matches('$');
    let pretty = match s.len() - name.len() {
        0 => None,
        1 => Some(Pretty::Shallow),
        _ => Some(Pretty::Deep),
    };
    (name, pretty)
}

/// Binding power of assignments, the loosest operators.
const ASSIGN: u8 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fix {
    Left,
    Right,
    Postfix,
}

/// SystemTap's precedence table, loosest first: assignment, `?:`, `||`, `&&`, `|`, `^`, `&`,
/// `in`, comparisons, shifts, `.`, `+ -`, `* / %`, unary, `++ --`, then `->` and `[]`.
fn op_power(op: &Pair<Rule>) -> (u8, Fix) {
    match op.as_rule() {
        Rule::ternary_op => (2, Fix::Right),
        Rule::in_op => (8, Fix::Postfix),
        Rule::incdec_post => (15, Fix::Postfix),
        Rule::member_op | Rule::index_op => (16, Fix::Postfix),
        _ => match op.as_str() {
            "||" => (3, Fix::Left),
            "&&" => (4, Fix::Left),
            "|" => (5, Fix::Left),
            "^" => (6, Fix::Left),
            "&" => (7, Fix::Left),
            "==" | "!=" | "=~" | "!~" | "<" | "<=" | ">" | ">=" => (9, Fix::Left),
            "<<" | ">>" | ">>>" => (10, Fix::Left),
            "." => (11, Fix::Left),
            "+" | "-" => (12, Fix::Left),
            "*" | "/" | "%" => (13, Fix::Left),
            _ => (ASSIGN, Fix::Right),
        },
    }
}

/// Binding power of a prefix operator's operand.
fn prefix_power(op: &str) -> u8 {
    if op == "++" || op == "--" {
        15
    } else {
        14
    }
}

fn lvalue(e: &Expr, op: &str) -> R<()> {
    match &e.kind {
        ExprKind::Var(_) | ExprKind::Index { .. } | ExprKind::Target(_) => Ok(()),
        _ => err(format!("the operand of `{op}` is not assignable"), e.span),
    }
}

fn binary_op(t: &str) -> BinaryOp {
    use BinaryOp::*;
    match t {
        "+" => Add,
        "-" => Sub,
        "*" => Mul,
        "/" => Div,
        "%" => Mod,
        "<<" => Shl,
        ">>" => Shr,
        ">>>" => Ushr,
        "&" => BitAnd,
        "|" => BitOr,
        "^" => BitXor,
        "&&" => LogAnd,
        "||" => LogOr,
        "." => Concat,
        "==" => Eq,
        "!=" => Ne,
        "<" => Lt,
        "<=" => Le,
        ">" => Gt,
        _ => Ge,
    }
}
