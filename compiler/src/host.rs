//! Handlers that run in user space: `begin`, `end`, `error` and `timer.{s,ms,us,ns,hz}`.
//!
//! They need no probe context, and they are where scripts do what BPF cannot do well:
//! sorted `foreach` with `limit`, histogram and statistics printing, `ctime`, big
//! reports. The runtime interprets them over the checked program, reading and writing
//! the same maps the BPF programs use, so a global means the same thing everywhere.
//! This module decides which handlers run here and refuses, at compile time, what
//! cannot run outside a probed process (target variables, user memory).

use crate::resolved::{ResolvedProgram, Site};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Block, Expr, ExprKind, FuncId, Local, Stmt, StmtKind};
use rtap_lang::span::{SourceMap, Span};
use std::collections::HashSet;

/// When a host handler runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostWhen {
    Begin {
        seq: i64,
    },
    End {
        seq: i64,
    },
    Error {
        seq: i64,
    },
    /// Every `period_ns`, plus a uniform random offset within ±`randomize_ns`.
    Timer {
        period_ns: u64,
        randomize_ns: u64,
    },
}

#[derive(Clone, Debug)]
pub struct HostHandler {
    pub name: String,
    pub when: HostWhen,
    /// `pp()` inside the handler.
    pub probe_point: String,
    /// The probe's locals, indexed by `LocalId`.
    pub locals: Vec<Local>,
    pub body: Block,
}

/// The user-space half of a compiled script.
#[derive(Clone, Debug, Default)]
pub struct HostProgram {
    pub handlers: Vec<HostHandler>,
    /// Every script function, indexed by `FuncId` (only those reachable from a
    /// handler are checked for host use).
    pub functions: Vec<hir::Function>,
    /// The script text, so runtime errors can name `file:line:col`.
    pub sources: SourceMap,
    /// `MAXSTRINGLEN`, NUL included: strings are cut to one byte less.
    pub max_string_len: u32,
}

impl HostProgram {
    /// `file:line:col` of a span, as error messages print it.
    pub fn location(&self, span: Span) -> String {
        match self.sources.files.get(span.file.0 as usize) {
            Some(f) => {
                let (line, col) = f.line_col(span.start);
                format!("{}:{line}:{col}", f.name)
            }
            None => "?".to_string(),
        }
    }
}

/// Builtins the runtime can evaluate outside a probed process.
pub const HOST_BUILTINS: &[&str] = &[
    "pid",
    "tid",
    "ppid",
    "uid",
    "euid",
    "gid",
    "egid",
    "cpu",
    "execname",
    "target",
    "pp",
    "ppfunc",
    "probefunc",
    "probemod",
    "is_return",
    "gettimeofday_s",
    "gettimeofday_ms",
    "gettimeofday_us",
    "gettimeofday_ns",
    "local_clock_ns",
    "local_clock_us",
    "ktime_get_ns",
    "cpu_clock_ns",
    "get_cycles",
    "jiffies",
    "ctime",
    "tz_ctime",
    "exit",
    "abort",
    "error",
    "warn",
    "log",
    "errno_str",
    "strlen",
    "substr",
    "stringat",
    "isinstr",
    "str_replace",
    "text_str",
    "text_strn",
    "string_quoted",
    "strtol",
    "isdigit",
    "tokenize",
    "randint",
    "env_var",
    "cmdline_str",
];

/// Whether a site's handler runs in user space.
pub fn runs_on_host(site: &Site) -> bool {
    match site {
        Site::Begin { .. } | Site::End { .. } | Site::Error { .. } => true,
        Site::Timer { every_cpu, .. } => !every_cpu,
        Site::Uprobe(_) | Site::Never | Site::Lifecycle(_) => false,
    }
}

/// Collects the handlers that run in user space and checks they need no probe context.
pub fn lower(
    p: &ResolvedProgram,
    sources: &SourceMap,
    max_string_len: u32,
) -> Result<HostProgram, Vec<Diagnostic>> {
    let mut handlers = Vec::new();
    let mut diags = Vec::new();
    let mut checked_funcs = HashSet::new();
    for rp in &p.probes {
        let when = match &rp.site {
            Site::Begin { seq } => HostWhen::Begin { seq: *seq },
            Site::End { seq } => HostWhen::End { seq: *seq },
            Site::Error { seq } => HostWhen::Error { seq: *seq },
            Site::Timer {
                period_ns,
                randomize_ns,
                every_cpu: false,
            } => HostWhen::Timer {
                period_ns: *period_ns,
                randomize_ns: *randomize_ns,
            },
            _ => continue,
        };
        let probe = &p.hir.probes[rp.probe];
        let point = &probe.points[rp.point];
        let mut v = Validate {
            hir: p.hir,
            what: &point.text,
            diags: &mut diags,
            funcs: &mut checked_funcs,
        };
        v.block(&probe.body);
        let same_probe = handlers
            .iter()
            .filter(|h: &&HostHandler| h.name.starts_with(&format!("host_{}_", rp.probe)))
            .count();
        handlers.push(HostHandler {
            name: format!("host_{}_{}", rp.probe, same_probe),
            when,
            probe_point: point.text.clone(),
            locals: probe.locals.clone(),
            body: probe.body.clone(),
        });
    }
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(HostProgram {
        handlers,
        functions: p.hir.functions.clone(),
        sources: sources.clone(),
        max_string_len,
    })
}

/// Refuses what a handler without a probed process cannot evaluate.
struct Validate<'a> {
    hir: &'a hir::Program,
    /// The probe point, for messages.
    what: &'a str,
    diags: &'a mut Vec<Diagnostic>,
    funcs: &'a mut HashSet<FuncId>,
}

impl Validate<'_> {
    fn err(&mut self, msg: String, span: Span) {
        let d = Diagnostic::error(msg, span);
        if !self.diags.contains(&d) {
            self.diags.push(d);
        }
    }

    fn block(&mut self, b: &Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Block(b) => self.block(b),
            StmtKind::If { cond, then, els } => {
                self.expr(cond);
                self.stmt(then);
                if let Some(e) = els {
                    self.stmt(e);
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.stmt(body);
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                for e in [init, cond, step].into_iter().flatten() {
                    self.expr(e);
                }
                self.stmt(body);
            }
            StmtKind::Foreach(f) => {
                for e in f.slice.iter().flatten().flatten() {
                    self.expr(e);
                }
                if let Some(l) = &f.limit {
                    self.expr(l);
                }
                self.stmt(&f.body);
            }
            StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::Delete(hir::DeleteTarget::Element { keys, .. }) => {
                keys.iter().for_each(|k| self.expr(k))
            }
            StmtKind::Delete(hir::DeleteTarget::Slice { keys, .. }) => {
                keys.iter().flatten().for_each(|k| self.expr(k))
            }
            StmtKind::Try { body, catch, .. } => {
                self.block(body);
                self.block(catch);
            }
            StmtKind::Break
            | StmtKind::Continue
            | StmtKind::Next
            | StmtKind::Return(None)
            | StmtKind::Delete(_) => {}
        }
    }

    fn lvalue(&mut self, l: &hir::LValue) {
        if let hir::LValue::Element { keys, .. } = l {
            keys.iter().for_each(|k| self.expr(k));
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Target(_) | ExprKind::Entry(_) => {
                let what = self.what.to_string();
                self.err(
                    format!("target variables need a probe in a process; `{what}` has none"),
                    e.span,
                );
            }
            ExprKind::Builtin { name, args } => {
                if !HOST_BUILTINS.contains(&name.as_str()) {
                    let what = self.what.to_string();
                    self.err(
                        format!("`{name}` needs a probe in a process; `{what}` has none"),
                        e.span,
                    );
                }
                args.iter().for_each(|a| self.expr(a));
            }
            ExprKind::Call { func, args } => {
                args.iter().for_each(|a| self.expr(a));
                if self.funcs.insert(*func) {
                    let f = &self.hir.functions[func.0 as usize];
                    self.block(&f.body);
                }
            }
            ExprKind::Long(_)
            | ExprKind::Str(_)
            | ExprKind::Local(_)
            | ExprKind::Global(_)
            | ExprKind::Defined(_) => {}
            ExprKind::Element { keys, .. } => keys.iter().for_each(|k| self.expr(k)),
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Concat(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Regex { subject, .. } => self.expr(subject),
            ExprKind::In { keys, .. } => keys.iter().flatten().for_each(|k| self.expr(k)),
            ExprKind::Ternary { cond, then, els } => {
                self.expr(cond);
                self.expr(then);
                self.expr(els);
            }
            ExprKind::Assign { target, value, .. } | ExprKind::Aggregate { target, value } => {
                self.lvalue(target);
                self.expr(value);
            }
            ExprKind::IncDec { target, .. } => self.lvalue(target),
            ExprKind::StatExtract { stat, .. } | ExprKind::Hist { stat, .. } => self.lvalue(stat),
            ExprKind::Printf { args, .. } | ExprKind::Print { args, .. } => {
                args.iter().for_each(|a| self.expr(a))
            }
        }
    }
}
