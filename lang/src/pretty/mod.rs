//! Canonical text of a script (`-p1`) and of a checked program (`-p2`).

mod program;

use crate::ast::*;
use std::fmt::Write;

pub use program::{format_text, program};

/// `-p1`: the script in canonical form; parsing it again gives the same tree.
pub fn script(s: &Script) -> String {
    crate::with_stack(|| script_text(s))
}

fn script_text(s: &Script) -> String {
    let mut p = Printer::default();
    for (i, item) in s.items.iter().enumerate() {
        if i > 0 {
            p.out.push('\n');
        }
        p.item(item);
    }
    p.out
}

/// A string literal that reads back as `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn literal(l: &Literal) -> String {
    match l {
        Literal::Long(v) => v.to_string(),
        Literal::Str(s) => quote(s),
    }
}

/// A long in expression position: negative values come from wrapped literals, printed in hex.
pub fn long(v: i64) -> String {
    if v < 0 {
        format!("{:#x}", v as u64)
    } else {
        v.to_string()
    }
}

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Global(g) => {
                let vars: Vec<String> = g.vars.iter().map(global_var).collect();
                let private = if g.private { "private " } else { "" };
                self.line(&format!("{private}global {}", vars.join(", ")));
            }
            Item::Function(f) => {
                let private = if f.private { "private " } else { "" };
                let ret = f.ret.map(|t| format!(":{}", t.text())).unwrap_or_default();
                let params: Vec<String> = f
                    .params
                    .iter()
                    .map(|p| match p.ty {
                        Some(t) => format!("{}:{}", p.name.name, t.text()),
                        None => p.name.name.clone(),
                    })
                    .collect();
                let head = format!(
                    "{private}function {}{ret}({})",
                    f.name.name,
                    params.join(", ")
                );
                self.block_after(&head, &f.body);
            }
            Item::Probe(pr) => {
                let points: Vec<String> = pr.points.iter().map(probe_point).collect();
                self.block_after(&format!("probe {}", points.join(", ")), &pr.body);
            }
            Item::Alias(a) => {
                let name: Vec<String> = a.name.iter().map(component).collect();
                let points: Vec<String> = a.points.iter().map(probe_point).collect();
                let op = if a.append { "+=" } else { "=" };
                self.block_after(
                    &format!("probe {} {op} {}", name.join("."), points.join(", ")),
                    &a.body,
                );
            }
        }
    }

    fn block_after(&mut self, head: &str, b: &Block) {
        self.line(&format!("{head} {{"));
        self.stmts(b);
        self.line("}");
    }

    fn stmts(&mut self, b: &Block) {
        self.indent += 1;
        for s in &b.stmts {
            self.stmt(s);
        }
        self.indent -= 1;
    }

    /// A statement in a nested position: blocks open on the same line.
    fn body(&mut self, head: &str, s: &Stmt) {
        match &s.kind {
            StmtKind::Block(b) => self.block_after(head, b),
            _ => {
                self.line(head);
                self.indent += 1;
                self.stmt(s);
                self.indent -= 1;
            }
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Empty => self.line(";"),
            StmtKind::Expr(e) => self.line(&format!("{};", expr(e))),
            StmtKind::Block(b) => {
                self.line("{");
                self.stmts(b);
                self.line("}");
            }
            StmtKind::If { cond, then, els } => {
                self.body(&format!("if ({})", expr(cond)), then);
                if let Some(e) = els {
                    self.body("else", e);
                }
            }
            StmtKind::While { cond, body } => self.body(&format!("while ({})", expr(cond)), body),
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                let part = |e: &Option<Box<Expr>>| e.as_deref().map(expr).unwrap_or_default();
                let head = format!("for ({}; {}; {})", part(init), part(cond), part(step));
                self.body(&head, body);
            }
            StmtKind::Foreach(f) => self.body(&format!("foreach ({})", foreach_head(f)), &f.body),
            StmtKind::Break => self.line("break;"),
            StmtKind::Continue => self.line("continue;"),
            StmtKind::Next => self.line("next;"),
            StmtKind::Return(None) => self.line("return;"),
            StmtKind::Return(Some(e)) => self.line(&format!("return {};", expr(e))),
            StmtKind::Delete(e) => self.line(&format!("delete {};", expr(e))),
            StmtKind::Try {
                body,
                catch_var,
                catch,
            } => {
                self.line("try {");
                self.stmts(body);
                match catch_var {
                    Some(v) => self.line(&format!("}} catch ({}) {{", v.name)),
                    None => self.line("} catch {"),
                }
                self.stmts(catch);
                self.line("}");
            }
        }
    }
}

fn sign(desc: bool) -> &'static str {
    if desc {
        "-"
    } else {
        "+"
    }
}

fn foreach_head(f: &Foreach) -> String {
    let mut s = String::new();
    let key_mark = |i: usize| match f.sort {
        Some(SortMark {
            on: SortOn::Key(k),
            descending,
            ..
        }) if k as usize == i => sign(descending),
        _ => "",
    };
    if let Some(v) = &f.value {
        let _ = write!(s, "{} = ", v.name);
    }
    let keys: Vec<String> = f
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{}{}", k.name, key_mark(i)))
        .collect();
    if f.bracketed {
        let _ = write!(s, "[{}]", keys.join(", "));
    } else {
        s.push_str(&keys.join(", "));
    }
    let _ = write!(s, " in {}", f.array.name);
    if let Some(slice) = &f.slice {
        let _ = write!(s, "[{}]", keys_text(slice));
    }
    if let Some(SortMark {
        on: SortOn::Value,
        descending,
        agg,
        ..
    }) = f.sort
    {
        if let Some(a) = agg {
            let _ = write!(s, " {}", a.text());
        }
        s.push_str(sign(descending));
    }
    if let Some(l) = &f.limit {
        let _ = write!(s, " limit {}", expr(l));
    }
    s
}

fn global_var(g: &GlobalVar) -> String {
    let mut s = g.name.name.clone();
    if g.wrap {
        s.push('%');
    }
    if let Some(Some(n)) = g.size {
        let _ = write!(s, "[{n}]");
    }
    if let Some(l) = &g.init {
        let _ = write!(s, " = {}", literal(l));
    }
    s
}

pub fn component(c: &Component) -> String {
    match &c.arg {
        Some(a) => format!("{}({})", c.name, literal(a)),
        None => c.name.clone(),
    }
}

pub fn probe_point(p: &ProbePoint) -> String {
    let comps: Vec<String> = p.components.iter().map(component).collect();
    let mut s = comps.join(".");
    if p.sufficient {
        s.push('!');
    } else if p.optional {
        s.push('?');
    }
    if let Some(c) = &p.condition {
        let _ = write!(s, " if ({})", expr(c));
    }
    s
}

fn keys_text(keys: &[Option<Expr>]) -> String {
    let k: Vec<String> = keys
        .iter()
        .map(|k| k.as_ref().map_or("*".to_string(), expr))
        .collect();
    k.join(", ")
}

/// Binding level of an expression: 1 assignment … 16 primary.
fn level(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Assign { .. } => 1,
        ExprKind::Ternary { .. } => 2,
        ExprKind::Binary { op, .. } => op.level(),
        ExprKind::In { .. } => 8,
        ExprKind::Regex { .. } => 9,
        ExprKind::Unary { .. } => 14,
        ExprKind::IncDec { .. } => 15,
        ExprKind::Target(t) if t.address_of => 14,
        _ => 16,
    }
}

fn sub(e: &Expr, min: u8) -> String {
    if level(e) < min {
        format!("({})", expr(e))
    } else {
        expr(e)
    }
}

pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Long(v) => long(*v),
        ExprKind::Str(s) => quote(s),
        ExprKind::Var(v) => v.clone(),
        ExprKind::Index { array, keys } => format!("{}[{}]", array.name, keys_text(keys)),
        ExprKind::Binary { op, lhs, rhs } => {
            let l = op.level();
            format!("{} {} {}", sub(lhs, l), op.text(), sub(rhs, l + 1))
        }
        ExprKind::Unary { op, operand } => format!("{}{}", op.text(), sub(operand, 16)),
        ExprKind::Regex {
            subject,
            pattern,
            negated,
        } => {
            let op = if *negated { "!~" } else { "=~" };
            format!("{} {op} {}", sub(subject, 9), quote(pattern))
        }
        ExprKind::In {
            keys,
            bracketed,
            array,
        } => {
            if *bracketed {
                format!("[{}] in {}", keys_text(keys), array.name)
            } else {
                let k = keys[0].as_ref().map_or("*".to_string(), |k| sub(k, 8));
                format!("{k} in {}", array.name)
            }
        }
        ExprKind::Ternary { cond, then, els } => {
            format!("{} ? {} : {}", sub(cond, 3), expr(then), sub(els, 2))
        }
        ExprKind::Assign { op, target, value } => {
            format!("{} {} {}", sub(target, 16), op.text(), sub(value, 1))
        }
        ExprKind::IncDec {
            target,
            increment,
            prefix,
        } => {
            let op = if *increment { "++" } else { "--" };
            if *prefix {
                format!("{op}{}", sub(target, 16))
            } else {
                format!("{}{op}", sub(target, 16))
            }
        }
        ExprKind::Call { name, args } => {
            let a: Vec<String> = args.iter().map(expr).collect();
            format!("{}({})", name.name, a.join(", "))
        }
        ExprKind::Stat { op, arg } => format!("{}({})", op.text(), expr(arg)),
        ExprKind::Hist { spec, arg } => match spec {
            HistSpec::Log => format!("@hist_log({})", expr(arg)),
            HistSpec::Linear { lo, hi, width } => format!(
                "@hist_linear({}, {}, {}, {})",
                expr(arg),
                expr(lo),
                expr(hi),
                expr(width)
            ),
        },
        ExprKind::Target(t) => target(t),
        ExprKind::Entry(x) => format!("@entry({})", expr(x)),
        ExprKind::Defined(x) => format!("@defined({})", expr(x)),
    }
}

fn target(t: &TargetExpr) -> String {
    let mut s = String::new();
    if t.address_of {
        s.push('&');
    }
    match &t.base {
        TargetBase::Var(v) => {
            let _ = write!(s, "${v}");
        }
        TargetBase::Bulk(b) => s.push_str(b.text()),
        TargetBase::Cast {
            pointer,
            type_name,
            module,
        } => {
            let _ = write!(s, "@cast({}, {}", expr(pointer), quote(type_name));
            if let Some(m) = module {
                let _ = write!(s, ", {}", quote(m));
            }
            s.push(')');
        }
        TargetBase::AtVar { name, module } => {
            let _ = write!(s, "@var({}", quote(name));
            if let Some(m) = module {
                let _ = write!(s, ", {}", quote(m));
            }
            s.push(')');
        }
    }
    for a in &t.chain {
        match a {
            Accessor::Member { name, .. } => {
                let _ = write!(s, "->{name}");
            }
            Accessor::Index { index, .. } => {
                let _ = write!(s, "[{}]", expr(index));
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
