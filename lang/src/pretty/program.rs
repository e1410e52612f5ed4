//! `-p2`: a checked program with globals, locals and function signatures typed.

use super::{long, quote};
use crate::hir::*;
use crate::printf::{Format, Piece};
use std::fmt::Write;

/// `-p2`: globals, functions and probes with inferred types, then bodies.
pub fn program(p: &Program) -> String {
    crate::with_stack(|| program_text(p))
}

fn program_text(p: &Program) -> String {
    let mut out = String::new();
    if !p.globals.is_empty() {
        out.push_str("# globals\n");
        for g in &p.globals {
            out.push_str(&global(g));
            out.push('\n');
        }
    }
    if !p.functions.is_empty() {
        out.push_str("# functions\n");
        for f in &p.functions {
            let params: Vec<String> = f
                .params
                .iter()
                .map(|l| {
                    let l = &f.locals[l.0 as usize];
                    format!("{}:{}", l.name, l.ty.name())
                })
                .collect();
            let _ = writeln!(out, "{}:{} ({})", f.name, f.ret.name(), params.join(", "));
            let mut pr = Printer {
                p,
                locals: &f.locals,
                out: String::new(),
                indent: 0,
            };
            pr.locals_header(&f.locals[f.params.len()..]);
            pr.block(&f.body);
            out.push_str(&pr.out);
        }
    }
    if !p.probes.is_empty() {
        out.push_str("# probes\n");
        for probe in &p.probes {
            let points: Vec<String> = probe.points.iter().map(|pt| point(p, pt)).collect();
            let _ = writeln!(out, "{}", points.join(",\n"));
            let mut pr = Printer {
                p,
                locals: &probe.locals,
                out: String::new(),
                indent: 0,
            };
            pr.locals_header(&probe.locals);
            pr.block(&probe.body);
            out.push_str(&pr.out);
        }
    }
    out
}

fn global(g: &Global) -> String {
    let mut s = format!("{}:{}", g.name, g.ty.name());
    if !g.keys.is_empty() {
        let keys: Vec<&str> = g.keys.iter().map(|k| k.name()).collect();
        let _ = write!(s, " [{}]", keys.join(", "));
    }
    if let Some(n) = g.max_entries {
        let _ = write!(s, " size={n}");
    }
    if g.wrap {
        s.push_str(" wrap");
    }
    match &g.init {
        Some(Literal::Long(v)) => {
            let _ = write!(s, " = {v}");
        }
        Some(Literal::String(v)) => {
            let _ = write!(s, " = {}", quote(v));
        }
        None => {}
    }
    if g.auto_print {
        s.push_str(" /* auto-print */");
    }
    s
}

fn point(p: &Program, pt: &ProbePoint) -> String {
    let mut s = pt.text.clone();
    if pt.sufficient {
        s.push('!');
    } else if pt.optional {
        s.push('?');
    }
    if let Some(c) = &pt.condition {
        let pr = Printer {
            p,
            locals: &[],
            out: String::new(),
            indent: 0,
        };
        let _ = write!(s, " if ({})", pr.expr(c));
    }
    let _ = write!(s, " /* {} */", kind(&pt.kind));
    s
}

fn kind(k: &ProbeKind) -> String {
    match k {
        ProbeKind::Begin { seq } => format!("begin seq={seq}"),
        ProbeKind::End { seq } => format!("end seq={seq}"),
        ProbeKind::Error { seq } => format!("error seq={seq}"),
        ProbeKind::Never => "never".to_string(),
        ProbeKind::Timer {
            period_ns,
            randomize_ns,
        } => format!("timer period={period_ns}ns randomize={randomize_ns}ns"),
        ProbeKind::TimerHz(hz) => format!("timer hz={hz}"),
        ProbeKind::TimerProfile => "timer profile".to_string(),
        ProbeKind::Process(pp) => {
            let target = match &pp.target {
                ProcessTarget::Path(p) => format!("path={}", quote(p)),
                ProcessTarget::Pid(n) => format!("pid={n}"),
                ProcessTarget::Any => "any process".to_string(),
            };
            let lib = pp
                .library
                .as_ref()
                .map(|l| format!(" library={}", quote(l)))
                .unwrap_or_default();
            let site = match &pp.site {
                ProcessSite::Function {
                    pattern,
                    filter,
                    is_return,
                } => format!(
                    "function={} {:?}{}",
                    quote(pattern),
                    filter,
                    if *is_return { " return" } else { "" }
                ),
                ProcessSite::Statement { pattern, nearest } => format!(
                    "statement={}{}",
                    quote(pattern),
                    if *nearest { " nearest" } else { "" }
                ),
                ProcessSite::Mark { provider, name } => match provider {
                    Some(p) => format!("mark={} provider={}", quote(name), quote(p)),
                    None => format!("mark={}", quote(name)),
                },
                ProcessSite::Plt { pattern, is_return } => format!(
                    "plt{}{}",
                    pattern
                        .as_ref()
                        .map(|p| format!("={}", quote(p)))
                        .unwrap_or_default(),
                    if *is_return { " return" } else { "" }
                ),
                ProcessSite::Begin => "begin".to_string(),
                ProcessSite::End => "end".to_string(),
                ProcessSite::ThreadBegin => "thread begin".to_string(),
                ProcessSite::ThreadEnd => "thread end".to_string(),
            };
            format!("process {target}{lib} {site}")
        }
    }
}

/// The format as a literal again: `%` doubled in text, conversions as written.
pub fn format_text(f: &Format) -> String {
    let mut s = String::new();
    for p in &f.pieces {
        match p {
            Piece::Text(t) => s.push_str(&t.replace('%', "%%")),
            Piece::Conv(c) => {
                let _ = write!(s, "{c}");
            }
        }
    }
    quote(&s)
}

struct Printer<'a> {
    p: &'a Program,
    locals: &'a [Local],
    out: String,
    indent: usize,
}

impl Printer<'_> {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn locals_header(&mut self, locals: &[Local]) {
        if locals.is_empty() {
            return;
        }
        self.line("  # locals");
        for l in locals {
            self.line(&format!("  {}:{}", l.name, l.ty.name()));
        }
    }

    fn block(&mut self, b: &Block) {
        self.line("{");
        self.indent += 1;
        for s in &b.stmts {
            self.stmt(s);
        }
        self.indent -= 1;
        self.line("}");
    }

    fn nested(&mut self, head: &str, s: &Stmt) {
        self.line(head);
        match &s.kind {
            StmtKind::Block(b) => self.block(b),
            _ => {
                self.indent += 1;
                self.stmt(s);
                self.indent -= 1;
            }
        }
    }

    fn local(&self, l: LocalId) -> &str {
        &self.locals[l.0 as usize].name
    }

    fn global(&self, g: GlobalId) -> &str {
        &self.p.globals[g.0 as usize].name
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Expr(e) => {
                let t = self.expr(e);
                self.line(&format!("{t};"));
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::If { cond, then, els } => {
                let c = self.expr(cond);
                self.nested(&format!("if ({c})"), then);
                if let Some(e) = els {
                    self.nested("else", e);
                }
            }
            StmtKind::While { cond, body } => {
                let c = self.expr(cond);
                self.nested(&format!("while ({c})"), body);
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                let part = |e: &Option<Expr>| e.as_ref().map(|e| self.expr(e)).unwrap_or_default();
                let head = format!("for ({}; {}; {})", part(init), part(cond), part(step));
                self.nested(&head, body);
            }
            StmtKind::Foreach(f) => {
                let mut h = String::from("foreach (");
                if let Some(v) = f.value {
                    let _ = write!(h, "{} = ", self.local(v));
                }
                let keys: Vec<&str> = f.keys.iter().map(|k| self.local(*k)).collect();
                let _ = write!(h, "[{}] in {}", keys.join(", "), self.global(f.array));
                if let Some(sl) = &f.slice {
                    let _ = write!(h, "[{}]", self.opt_keys(sl));
                }
                if let Some(sort) = f.sort {
                    let sign = if sort.descending { "-" } else { "+" };
                    match sort.by {
                        SortBy::Key(k) => {
                            let _ = write!(h, " sort key {}{sign}", k + 1);
                        }
                        SortBy::Value(None) => {
                            let _ = write!(h, " sort value{sign}");
                        }
                        SortBy::Value(Some(op)) => {
                            let _ = write!(h, " sort {}{sign}", op.text());
                        }
                    }
                }
                if let Some(l) = &f.limit {
                    let _ = write!(h, " limit {}", self.expr(l));
                }
                h.push(')');
                self.nested(&h, &f.body);
            }
            StmtKind::Break => self.line("break;"),
            StmtKind::Continue => self.line("continue;"),
            StmtKind::Next => self.line("next;"),
            StmtKind::Return(None) => self.line("return;"),
            StmtKind::Return(Some(e)) => {
                let t = self.expr(e);
                self.line(&format!("return {t};"));
            }
            StmtKind::Delete(d) => {
                let t = match d {
                    DeleteTarget::Global(g) => self.global(*g).to_string(),
                    DeleteTarget::Local(l) => self.local(*l).to_string(),
                    DeleteTarget::Element { array, keys } => {
                        format!("{}[{}]", self.global(*array), self.keys(keys))
                    }
                    DeleteTarget::Slice { array, keys } => {
                        format!("{}[{}]", self.global(*array), self.opt_keys(keys))
                    }
                };
                self.line(&format!("delete {t};"));
            }
            StmtKind::Try {
                body,
                catch_var,
                catch,
            } => {
                self.line("try");
                self.block(body);
                match catch_var {
                    Some(v) => {
                        let n = self.local(*v).to_string();
                        self.line(&format!("catch ({n})"));
                    }
                    None => self.line("catch"),
                }
                self.block(catch);
            }
        }
    }

    fn keys(&self, keys: &[Expr]) -> String {
        let k: Vec<String> = keys.iter().map(|k| self.expr(k)).collect();
        k.join(", ")
    }

    fn opt_keys(&self, keys: &[Option<Expr>]) -> String {
        let k: Vec<String> = keys
            .iter()
            .map(|k| k.as_ref().map_or("*".to_string(), |k| self.expr(k)))
            .collect();
        k.join(", ")
    }

    fn lvalue(&self, l: &LValue) -> String {
        match l {
            LValue::Local(id) => self.local(*id).to_string(),
            LValue::Global(g) => self.global(*g).to_string(),
            LValue::Element { array, keys } => {
                format!("{}[{}]", self.global(*array), self.keys(keys))
            }
        }
    }

    /// A subexpression: compound ones in parentheses, so precedence never matters.
    fn sub(&self, e: &Expr) -> String {
        match e.kind {
            ExprKind::Binary { .. }
            | ExprKind::Compare { .. }
            | ExprKind::Concat(..)
            | ExprKind::Regex { .. }
            | ExprKind::In { .. }
            | ExprKind::Ternary { .. }
            | ExprKind::Assign { .. }
            | ExprKind::Aggregate { .. }
            | ExprKind::Unary { .. }
            | ExprKind::IncDec { .. } => format!("({})", self.expr(e)),
            _ => self.expr(e),
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Long(v) => long(*v),
            ExprKind::Str(s) => quote(s),
            ExprKind::Local(l) => self.local(*l).to_string(),
            ExprKind::Global(g) => self.global(*g).to_string(),
            ExprKind::Element { array, keys } => {
                format!("{}[{}]", self.global(*array), self.keys(keys))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                format!("{} {} {}", self.sub(lhs), binop(*op), self.sub(rhs))
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let o = match op {
                    CmpOp::Eq => "==",
                    CmpOp::Ne => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                format!("{} {o} {}", self.sub(lhs), self.sub(rhs))
            }
            ExprKind::Unary { op, operand } => {
                let o = match op {
                    UnOp::Neg => "-",
                    UnOp::Plus => "+",
                    UnOp::Not => "!",
                    UnOp::BitNot => "~",
                };
                format!("{o}{}", self.sub(operand))
            }
            ExprKind::Concat(a, b) => format!("{} . {}", self.sub(a), self.sub(b)),
            ExprKind::Regex {
                subject,
                pattern,
                negated,
            } => format!(
                "{} {} {}",
                self.sub(subject),
                if *negated { "!~" } else { "=~" },
                quote(pattern)
            ),
            ExprKind::In { keys, array } => {
                format!("[{}] in {}", self.opt_keys(keys), self.global(*array))
            }
            ExprKind::Ternary { cond, then, els } => {
                format!(
                    "{} ? {} : {}",
                    self.sub(cond),
                    self.sub(then),
                    self.sub(els)
                )
            }
            ExprKind::Assign { target, op, value } => {
                let o = match op {
                    None => "=".to_string(),
                    Some(AssignOp::Concat) => ".=".to_string(),
                    Some(AssignOp::Bin(b)) => format!("{}=", binop(*b)),
                };
                format!("{} {o} {}", self.lvalue(target), self.sub(value))
            }
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => {
                let o = if *increment { "++" } else { "--" };
                if *prefix {
                    format!("{o}{}", self.lvalue(target))
                } else {
                    format!("{}{o}", self.lvalue(target))
                }
            }
            ExprKind::Aggregate { target, value } => {
                format!("{} <<< {}", self.lvalue(target), self.sub(value))
            }
            ExprKind::StatExtract { op, stat } => format!("{}({})", op.text(), self.lvalue(stat)),
            ExprKind::Hist { kind, stat } => match kind {
                HistKind::Log => format!("@hist_log({})", self.lvalue(stat)),
                HistKind::Linear { lo, hi, width } => {
                    format!("@hist_linear({}, {lo}, {hi}, {width})", self.lvalue(stat))
                }
            },
            ExprKind::Call { func, args } => {
                format!(
                    "{}({})",
                    self.p.functions[func.0 as usize].name,
                    self.keys(args)
                )
            }
            ExprKind::Builtin { name, args } => format!("{name}({})", self.keys(args)),
            ExprKind::Printf {
                to_string,
                format,
                args,
            } => {
                let name = if *to_string { "sprintf" } else { "printf" };
                let mut a = vec![format_text(format)];
                a.extend(args.iter().map(|x| self.expr(x)));
                format!("{name}({})", a.join(", "))
            }
            ExprKind::Print {
                kind,
                to_string,
                delim,
                args,
            } => {
                let base = match kind {
                    PrintKind::Print => "print",
                    PrintKind::Println => "println",
                    PrintKind::Printd => "printd",
                    PrintKind::Printdln => "printdln",
                };
                let mut a: Vec<String> = delim.iter().map(|d| quote(d)).collect();
                a.extend(args.iter().map(|x| self.expr(x)));
                format!(
                    "{}{base}({})",
                    if *to_string { "s" } else { "" },
                    a.join(", ")
                )
            }
            ExprKind::Target(t) => self.target(t),
            ExprKind::Entry(x) => format!("@entry({})", self.expr(x)),
            ExprKind::Defined(x) => format!("@defined({})", self.expr(x)),
        }
    }

    fn target(&self, t: &TargetExpr) -> String {
        let mut s = String::new();
        if t.address_of {
            s.push('&');
        }
        match &t.base {
            TargetBase::Var(v) => {
                let _ = write!(s, "${v}");
            }
            TargetBase::Return => s.push_str("$return"),
            TargetBase::Bulk(b) => s.push_str(b.text()),
            TargetBase::Cast {
                pointer,
                type_name,
                module,
            } => {
                let _ = write!(s, "@cast({}, {}", self.expr(pointer), quote(type_name));
                if let Some(m) = module {
                    let _ = write!(s, ", {}", quote(m));
                }
                s.push(')');
            }
            TargetBase::Var2 { name, module } => {
                let _ = write!(s, "@var({}", quote(name));
                if let Some(m) = module {
                    let _ = write!(s, ", {}", quote(m));
                }
                s.push(')');
            }
            TargetBase::MarkArg(n) => {
                let _ = write!(s, "$arg{n}");
            }
        }
        for a in &t.chain {
            match a {
                Accessor::Member { name, .. } => {
                    let _ = write!(s, "->{name}");
                }
                Accessor::Index { index, .. } => {
                    let _ = write!(s, "[{}]", self.expr(index));
                }
            }
        }
        match t.pretty {
            Some(Pretty::Shallow) => s.push('$'),
            Some(Pretty::Deep) => s.push_str("$$"),
            None => {}
        }
        s
    }
}

fn binop(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Shl => "<<",
        BinOp::Shr => ">>",
        BinOp::Ushr => ">>>",
        BinOp::BitAnd => "&",
        BinOp::BitOr => "|",
        BinOp::BitXor => "^",
        BinOp::LogAnd => "&&",
        BinOp::LogOr => "||",
    }
}
