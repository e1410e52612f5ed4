//! pest pairs → AST: declarations and statements. The `parse` module is the only one that sees pest.

mod errors;
mod expr;

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::preproc::{Expanded, MAX_NESTING};
use crate::span::Span;
use pest::iterators::{Pair, Pairs};
use pest::Parser;
use std::cell::Cell;

#[derive(pest_derive::Parser)]
#[grammar = "src/grammar.pest"]
struct StapParser;

/// Parses preprocessed text into a script.
pub fn parse_script(exp: &Expanded) -> Result<Script, Vec<Diagnostic>> {
    let pairs = match StapParser::parse(Rule::script, &exp.text) {
        Ok(p) => p,
        Err(_) => return Err(vec![errors::detailed_error(exp)]),
    };
    let b = Builder {
        exp,
        depth: Cell::new(0),
    };
    b.script(pairs).map_err(|d| vec![d])
}

/// Reserved words (a `match` compiles to a length switch, cheaper than scanning a list).
fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "probe"
            | "global"
            | "private"
            | "function"
            | "if"
            | "else"
            | "foreach"
            | "for"
            | "in"
            | "limit"
            | "return"
            | "delete"
            | "while"
            | "break"
            | "continue"
            | "next"
            | "string"
            | "long"
            | "try"
            | "catch"
    )
}

/// `strtoull(s, 0)`: decimal, `0x` hex or leading-`0` octal; values above `i64::MAX` wrap.
pub fn parse_number(text: &str) -> Result<i64, String> {
    let (digits, radix) =
        if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (h, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!("invalid number `{text}`"));
    }
    u64::from_str_radix(digits, radix)
        .map(|v| v as i64)
        .map_err(|_| format!("number `{text}` does not fit in 64 bits"))
}

/// Byte ranges of the literal bodies (between the quotes) in a glued string token.
fn literal_bodies(t: &str) -> Vec<(usize, usize)> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        i = start;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        out.push((start, i.min(b.len())));
        i += 1;
    }
    out
}

/// Decodes the body of a string literal (without quotes).
pub fn unescape(body: &str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\0' {
            return Err("a NUL byte cannot appear in a string".to_string());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("string ends with a lone `\\`".to_string());
        };
        let byte = match e {
            'a' => 7,
            'b' => 8,
            't' => 9,
            'n' => 10,
            'v' => 11,
            'f' => 12,
            'r' => 13,
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                v
            }
            'x' => {
                let mut v = 0;
                let mut n = 0;
                while n < 2 {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            chars.next();
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    return Err("`\\x` needs hex digits".to_string());
                }
                v
            }
            '\0' => 0,
            other => {
                out.push(other);
                continue;
            }
        };
        if byte > 0x7f {
            return Err(format!(
                "escape for byte {byte:#x} is not supported yet (only ASCII)"
            ));
        }
        if byte == 0 {
            return Err("a NUL byte cannot appear in a string".to_string());
        }
        out.push(byte as u8 as char);
    }
    Ok(out)
}

struct Builder<'e> {
    exp: &'e Expanded,
    depth: Cell<usize>,
}

type R<T> = Result<T, Diagnostic>;

/// An operand while precedence is applied: an expression with its depth, or a `[k, *]` list.
enum Val {
    E(Expr, usize),
    Tuple(Vec<Option<Expr>>, Span, usize),
}

/// Keyword pairs only mark where a word ended; the builder skips them.
fn is_kw(r: Rule) -> bool {
    use Rule::*;
    matches!(
        r,
        kw_private
            | kw_global
            | kw_function
            | kw_probe
            | kw_else
            | kw_in
            | kw_limit
            | kw_return
            | kw_delete
            | kw_break
            | kw_continue
            | kw_next
    )
}

/// The children of a pair, without keyword pairs.
fn kids(p: Pair<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    p.into_inner().filter(|x| !is_kw(x.as_rule()))
}

impl Builder<'_> {
    /// The span of a pair, without the whitespace pest lets a rule end with.
    fn sp(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let end = s.start() + p.as_str().trim_end().len();
        self.exp.span(s.start(), end.max(s.start()))
    }

    fn ident(&self, p: Pair<Rule>) -> R<Ident> {
        let name = p.as_str();
        if is_keyword(name) {
            return Err(Diagnostic::error(
                format!("expected a name, found keyword `{name}`"),
                self.sp(&p),
            ));
        }
        Ok(Ident {
            name: name.to_string(),
            span: self.sp(&p),
        })
    }

    fn script(&self, mut pairs: Pairs<Rule>) -> R<Script> {
        let mut items = Vec::new();
        for p in pairs.next().into_iter().flat_map(|p| p.into_inner()) {
            items.push(match p.as_rule() {
                Rule::global_decl => Item::Global(self.global(p)?),
                Rule::function_decl => Item::Function(self.function(p)?),
                Rule::probe_decl => self.probe(p)?,
                _ => continue,
            });
        }
        Ok(Script { items })
    }

    fn global(&self, p: Pair<Rule>) -> R<GlobalDecl> {
        let span = self.sp(&p);
        let mut private = false;
        let mut vars = Vec::new();
        for v in p.into_inner() {
            match v.as_rule() {
                Rule::global_var => {}
                Rule::kw_private => {
                    private = true;
                    continue;
                }
                _ => continue,
            }
            let vspan = self.sp(&v);
            let mut it = v.into_inner();
            let name = self.ident(it.next().expect("global name"))?;
            let mut g = GlobalVar {
                name,
                size: None,
                wrap: false,
                init: None,
                span: vspan,
            };
            if let Some(x) = it.next() {
                if x.as_rule() == Rule::array_size {
                    let mut size = None;
                    for s in x.into_inner() {
                        match s.as_rule() {
                            Rule::wrap_mark => g.wrap = true,
                            _ => size = Some(self.number(&s)? as u64),
                        }
                    }
                    g.size = Some(size);
                } else {
                    g.init = Some(self.literal(x.into_inner().next().expect("literal"))?);
                }
            }
            vars.push(g);
        }
        Ok(GlobalDecl {
            private,
            vars,
            span,
        })
    }

    fn number(&self, p: &Pair<Rule>) -> R<i64> {
        parse_number(p.as_str()).map_err(|m| Diagnostic::error(m, self.sp(p)))
    }

    /// The value of a string token: glued literals, with the gaps between them skipped.
    fn string(&self, p: Pair<Rule>) -> R<String> {
        let base = p.as_span().start();
        let t = p.as_str();
        let mut s = String::new();
        for (start, end) in literal_bodies(t) {
            let body = unescape(&t[start..end]).map_err(|m| {
                Diagnostic::error(m, self.exp.span(base + start - 1, base + end + 1))
            })?;
            s.push_str(&body);
        }
        Ok(s)
    }

    fn literal(&self, p: Pair<Rule>) -> R<Literal> {
        let inner = p.into_inner().next().expect("literal");
        Ok(match inner.as_rule() {
            Rule::neg_number => {
                let n = inner.into_inner().next().expect("number");
                Literal::Long(self.number(&n)?.wrapping_neg())
            }
            Rule::number => Literal::Long(self.number(&inner)?),
            _ => Literal::Str(self.string(inner)?),
        })
    }

    fn type_ann(&self, p: Pair<Rule>) -> TypeName {
        match p
            .into_inner()
            .next()
            .map(|t| t.as_str().trim().to_string())
            .as_deref()
        {
            Some("string") => TypeName::String,
            _ => TypeName::Long,
        }
    }

    fn function(&self, p: Pair<Rule>) -> R<FunctionDecl> {
        let span = self.sp(&p);
        let mut private = false;
        let mut name = None;
        let mut ret = None;
        let mut params = Vec::new();
        let mut body = None;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::kw_private => private = true,
                Rule::kw_function => {}
                Rule::ident => name = Some(self.ident(x)?),
                Rule::type_ann => ret = Some(self.type_ann(x)),
                Rule::fn_priority => {
                    return Err(Diagnostic::error(
                        format!(
                            "function priorities (`{}`) are not supported yet",
                            x.as_str().trim()
                        ),
                        self.sp(&x),
                    ))
                }
                Rule::param => {
                    let pspan = self.sp(&x);
                    let mut it = x.into_inner();
                    let pname = self.ident(it.next().expect("param"))?;
                    params.push(Param {
                        name: pname,
                        ty: it.next().map(|t| self.type_ann(t)),
                        span: pspan,
                    });
                }
                _ => body = Some(self.block(x)?),
            }
        }
        Ok(FunctionDecl {
            private,
            name: name.expect("function name"),
            ret,
            params,
            body: body.expect("function body"),
            span,
        })
    }

    fn component(&self, p: Pair<Rule>) -> R<Component> {
        let span = self.sp(&p);
        let mut it = p.into_inner();
        let name = it.next().expect("component name").as_str().to_string();
        let arg = it.next().map(|l| self.literal(l)).transpose()?;
        Ok(Component { name, arg, span })
    }

    fn probe_point(&self, p: Pair<Rule>) -> R<ProbePoint> {
        let span = self.sp(&p);
        let mut pp = ProbePoint {
            components: Vec::new(),
            optional: false,
            sufficient: false,
            condition: None,
            span,
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::component => pp.components.push(self.component(x)?),
                Rule::pp_flag => {
                    pp.optional = true;
                    pp.sufficient = x.as_str() == "!";
                }
                _ => pp.condition = Some(self.expr(x.into_inner().next().expect("cond"))?),
            }
        }
        Ok(pp)
    }

    /// A probe, or an alias (`probe NAME = points { }`).
    fn probe(&self, p: Pair<Rule>) -> R<Item> {
        let span = self.sp(&p);
        let mut points = Vec::new();
        let mut alias: Option<(ProbePoint, bool)> = None;
        let mut body = None;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::kw_probe => {}
                Rule::probe_point => points.push(self.probe_point(x)?),
                Rule::alias_op => {
                    let name = points.pop().expect("alias name");
                    if name.optional || name.condition.is_some() {
                        return Err(Diagnostic::error(
                            "an alias name cannot have `?`, `!` or `if`",
                            name.span,
                        ));
                    }
                    alias = Some((name, x.as_str() == "+="));
                }
                _ => body = Some(self.block(x)?),
            }
        }
        let body = body.expect("probe body");
        Ok(match alias {
            Some((name, append)) => Item::Alias(AliasDecl {
                name: name.components,
                append,
                points,
                body,
                span,
            }),
            None => Item::Probe(ProbeDecl { points, body, span }),
        })
    }

    fn enter(&self, span: Span) -> R<()> {
        let d = self.depth.get() + 1;
        if d > MAX_NESTING {
            return Err(Diagnostic::error(
                format!("statements are nested too deeply (the limit is {MAX_NESTING})"),
                Span {
                    end: span.start + 1,
                    ..span
                },
            ));
        }
        self.depth.set(d);
        Ok(())
    }

    fn block(&self, p: Pair<Rule>) -> R<Block> {
        let span = self.sp(&p);
        self.enter(span)?;
        let stmts = p
            .into_inner()
            .map(|s| self.stmt(s))
            .collect::<R<Vec<_>>>()?;
        self.depth.set(self.depth.get() - 1);
        Ok(Block { stmts, span })
    }

    fn sub_stmt(&self, p: Pair<Rule>) -> R<Box<Stmt>> {
        let span = self.sp(&p);
        self.enter(span)?;
        let s = self.stmt(p)?;
        self.depth.set(self.depth.get() - 1);
        Ok(Box::new(s))
    }

    fn stmt(&self, p: Pair<Rule>) -> R<Stmt> {
        let span = self.sp(&p);
        let rule = p.as_rule();
        if rule == Rule::block {
            let b = self.block(p)?;
            return Ok(Stmt {
                kind: StmtKind::Block(b),
                span,
            });
        }
        // An expression statement is its expression: `expr_stmt` is silent to save a pair.
        if rule == Rule::expr {
            return Ok(Stmt {
                kind: StmtKind::Expr(self.expr(p)?),
                span,
            });
        }
        let mut it = kids(p);
        let kind = match rule {
            Rule::empty_stmt => StmtKind::Empty,
            Rule::if_stmt => {
                let cond = self.expr(it.next().expect("cond"))?;
                let then = self.sub_stmt(it.next().expect("then"))?;
                let els = it.next().map(|e| self.sub_stmt(e)).transpose()?;
                StmtKind::If { cond, then, els }
            }
            Rule::while_stmt => {
                let cond = self.expr(it.next().expect("cond"))?;
                StmtKind::While {
                    cond,
                    body: self.sub_stmt(it.next().expect("body"))?,
                }
            }
            Rule::for_stmt => {
                let mut part = || -> R<Option<Box<Expr>>> {
                    it.next()
                        .and_then(|p| p.into_inner().next())
                        .map(|e| self.expr(e).map(Box::new))
                        .transpose()
                };
                let (init, cond, step) = (part()?, part()?, part()?);
                StmtKind::For {
                    init,
                    cond,
                    step,
                    body: self.sub_stmt(it.next().expect("body"))?,
                }
            }
            Rule::foreach_stmt => {
                let head = it.next().expect("head");
                StmtKind::Foreach(Box::new(self.foreach(head, it.next().expect("body"))?))
            }
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::next_stmt => StmtKind::Next,
            Rule::return_stmt => StmtKind::Return(it.next().map(|e| self.expr(e)).transpose()?),
            Rule::delete_stmt => StmtKind::Delete(self.expr(it.next().expect("target"))?),
            Rule::try_stmt => {
                let body = self.block(it.next().expect("try"))?;
                let mut x = it.next().expect("catch");
                let catch_var = if x.as_rule() == Rule::ident {
                    let v = self.ident(x)?;
                    x = it.next().expect("catch block");
                    Some(v)
                } else {
                    None
                };
                StmtKind::Try {
                    body,
                    catch_var,
                    catch: self.block(x)?,
                }
            }
            r => unreachable!("statement rule {r:?}"),
        };
        Ok(Stmt { kind, span })
    }
}
