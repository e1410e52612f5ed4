//! Handlers that run in user space: `begin`, `end`, `error`, `timer.{s,ms,us,ns,hz}`, and
//! `process.begin` for processes already running when the session starts.
//!
//! They need no probe context, and they are where scripts do what BPF cannot do well:
//! sorted `foreach` with `limit`, histogram and statistics printing, `ctime`, big
//! reports. The runtime interprets them over the checked program, reading and writing
//! the same maps the BPF programs use, so a global means the same thing everywhere.
//! This module decides which handlers run here and refuses, at compile time, what
//! cannot run outside a probed process (target variables, user memory).

use crate::resolve::visit::visit_block;
use crate::resolved::{ResolvedProgram, Site};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Block, Expr, ExprKind, FuncId, Local};
use rtap_lang::span::{SourceMap, Span};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

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
    /// Once per process already running when the session starts (after `begin`),
    /// with that process as the context of `pid()`, `execname()` and friends.
    ProcessBegin {
        /// Only processes running this executable (canonical path).
        path: Option<PathBuf>,
        /// `process(PID)`: only this process.
        pid: Option<u32>,
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
    /// Said at compile time, then dropped: the driver takes them out.
    pub warnings: Vec<Diagnostic>,
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
        Site::Begin { .. } | Site::End { .. } | Site::Error { .. } | Site::Running(_) => true,
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
    let mut warnings = Vec::new();
    let mut checked_funcs: HashMap<Why, HashSet<FuncId>> = HashMap::new();
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
            Site::Running(r) => HostWhen::ProcessBegin {
                path: r.path.clone(),
                pid: r.pid,
            },
            _ => continue,
        };
        let probe = &p.hir.probes[rp.probe];
        let point = &probe.points[rp.point];
        let (probe_point, why) = match &rp.site {
            Site::Running(r) => (r.pp.clone(), Why::Running),
            _ => (point.text.clone(), Why::NoProcess),
        };
        // `.begin` of a path (or of any process) also has its BPF site for processes
        // that start later: a handler that needs the probed process only loses the
        // processes already running, with a warning, not the whole script.
        if let Site::Running(r) = &rp.site {
            if r.pid.is_none() {
                let mut mine = Vec::new();
                Validator {
                    hir: p.hir,
                    what: &point.text,
                    why,
                    diags: &mut mine,
                    funcs: &mut HashSet::new(),
                }
                .block(&probe.body);
                if let Some(first) = mine.first() {
                    let span = first.primary.as_ref().map_or(probe.span, |l| l.span);
                    warnings.push(Diagnostic::warning(
                        format!(
                            "`{}` does not run for processes already running at start: \
                             its handler reads the process's memory or registers",
                            point.text
                        ),
                        span,
                    ));
                    continue;
                }
            }
        }
        let mut v = Validator {
            hir: p.hir,
            what: &point.text,
            why,
            diags: &mut diags,
            funcs: checked_funcs.entry(why).or_default(),
        };
        v.block(&probe.body);
        let same_probe = handlers
            .iter()
            .filter(|h: &&HostHandler| h.name.starts_with(&format!("host_{}_", rp.probe)))
            .count();
        handlers.push(HostHandler {
            name: format!("host_{}_{}", rp.probe, same_probe),
            when,
            probe_point,
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
        warnings,
    })
}

/// Why a host handler has no probe context, for its error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Why {
    /// `begin`, `end`, `error`, timers: no process at all.
    NoProcess,
    /// `.begin` of a process that was running before rtap: the handler runs in rtap,
    /// which knows that process only through /proc.
    Running,
}

/// Refuses what a handler without a probed process cannot evaluate, in its body and in
/// every function it calls (each function is walked once per reason).
struct Validator<'a> {
    hir: &'a hir::Program,
    what: &'a str,
    why: Why,
    diags: &'a mut Vec<Diagnostic>,
    funcs: &'a mut HashSet<FuncId>,
}

impl Validator<'_> {
    fn block(&mut self, body: &Block) {
        let (what, why) = (self.what, self.why);
        let mut calls = Vec::new();
        let diags = &mut *self.diags;
        visit_block(body, &mut |e: &Expr| {
            let msg = match (&e.kind, why) {
                (ExprKind::Target(_) | ExprKind::Entry(_), Why::NoProcess) => {
                    format!("target variables need a probe in a process; `{what}` has none")
                }
                (ExprKind::Target(_) | ExprKind::Entry(_), Why::Running) => format!(
                    "target variables cannot be read in `{what}` for a process already running at start (there the handler runs in user space)"
                ),
                (ExprKind::Builtin { name, .. }, Why::NoProcess)
                    if !HOST_BUILTINS.contains(&name.as_str()) =>
                {
                    format!("`{name}` needs a probe in a process; `{what}` has none")
                }
                (ExprKind::Builtin { name, .. }, Why::Running)
                    if !HOST_BUILTINS.contains(&name.as_str()) =>
                {
                    format!(
                        "`{name}` cannot run in `{what}` for a process already running at start (there the handler runs in user space)"
                    )
                }
                (ExprKind::Call { func, .. }, _) => {
                    calls.push(*func);
                    return;
                }
                _ => return,
            };
            let d = Diagnostic::error(msg, e.span);
            if !diags.contains(&d) {
                diags.push(d);
            }
        });
        for f in calls {
            if self.funcs.insert(f) {
                let hir = self.hir;
                self.block(&hir.functions[f.0 as usize].body);
            }
        }
    }
}
