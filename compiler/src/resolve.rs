//! Resolution: hir probe points → concrete sites, target expressions → access plans.

use crate::dwarf::{Binary, Cache, DwarfError, FunctionPattern, FunctionSite, InstanceKind};
use crate::list::{function_pp, unsupported_target};
use crate::resolved::{EntrySite, ResolvedProbe, ResolvedProgram, Site, UprobeSite};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{
    self, Block, Expr, ExprKind, FunctionFilter, ProbeKind, ProcessSite, ProcessTarget, Stmt,
    StmtKind, TargetBase, UnOp,
};
use rtap_lang::span::SourceMap;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use visit::{children, visit_block, visit_expr};

mod address;
mod library;
pub(crate) mod points;
mod targets;
pub(crate) mod visit;

/// Why one probe point could not be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Dwarf(#[from] DwarfError),
    #[error("{0}")]
    Unsupported(String),
}

/// A `timer.profile` tick: Debian kernels run at HZ=250.
const PROFILE_PERIOD_NS: u64 = 4_000_000;

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Files named by a path that may contain wildcards.
fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, ResolveError> {
    if !has_wildcard(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let paths = glob::glob(pattern).map_err(|e| {
        ResolveError::Unsupported(format!("bad path pattern `{pattern}`: {}", e.msg))
    })?;
    let found: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    if found.is_empty() {
        return Err(DwarfError::NotFound(pattern.to_string()).into());
    }
    Ok(found)
}

/// The files a `process("P")[.library("L")]` probe point names: globbed, a bare name
/// searched in `$PATH` (then the current directory, as stap 4.8 does).
pub fn target_binaries(
    target: &ProcessTarget,
    library: Option<&str>,
) -> Result<Vec<PathBuf>, ResolveError> {
    // `process(PID)`: the file it runs (its probes are restricted to it).
    let exe;
    let path = match target {
        ProcessTarget::Pid(pid) => {
            let link = PathBuf::from(format!("/proc/{pid}/exe"));
            exe = std::fs::read_link(&link)
                .map_err(|_| DwarfError::NotFound(format!("process {pid}")))?
                .display()
                .to_string();
            &exe
        }
        ProcessTarget::Path(path) => path,
        ProcessTarget::Any => {
            return Err(ResolveError::Unsupported(
                unsupported_target(target).unwrap_or_default(),
            ));
        }
    };
    if let Some(lib) = library {
        if !lib.contains('/') {
            let program = target_binaries(&ProcessTarget::Path(path.clone()), None)?;
            let mut out = Vec::new();
            for p in program {
                out.extend(library::needed_libraries(&p, lib)?);
            }
            return Ok(out);
        }
        return glob_files(lib);
    }
    if path.contains('/') {
        return glob_files(path);
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from(".")])
        .map(|d| d.join(path))
        .find(|p| p.is_file())
        .map(|p| vec![p])
        .ok_or_else(|| DwarfError::NotFound(path.clone()).into())
}

/// The instances a function probe attaches to, after the `.call`/`.inline`/`.exported`
/// and `.return` filters.
pub fn function_sites(
    binary: &Binary,
    pattern: &FunctionPattern,
    filter: FunctionFilter,
    is_return: bool,
) -> Vec<FunctionSite> {
    binary
        .functions(pattern)
        .into_iter()
        .filter(|s| match filter {
            FunctionFilter::Any => true,
            FunctionFilter::Call => s.kind != InstanceKind::Inline,
            FunctionFilter::Inline => s.kind == InstanceKind::Inline,
            FunctionFilter::Exported => s.exported,
        })
        // An inlined copy has no return to catch; SystemTap lists no `.return` for
        // `_start`, which never returns.
        .filter(|s| !is_return || (s.kind != InstanceKind::Inline && s.name != "_start"))
        .collect()
}

/// Expand every probe point into sites and plan every target expression at each site.
pub fn resolve<'h>(
    hir: &'h hir::Program,
    sources: &SourceMap,
    cache: &mut Cache,
) -> Result<ResolvedProgram<'h>, Vec<Diagnostic>> {
    let _ = sources;
    let mut probes = Vec::new();
    let mut errors = Vec::new();
    for (pi, probe) in hir.probes.iter().enumerate() {
        let mut reads_targets = false;
        visit_block(&probe.body, &mut |e| {
            reads_targets |= matches!(
                e.kind,
                ExprKind::Target(_) | ExprKind::Entry(_) | ExprKind::Defined(_)
            );
        });
        for (qi, point) in probe.points.iter().enumerate() {
            let before = probes.len();
            match point_sites(point, cache, reads_targets) {
                Ok(sites) => {
                    for (site, fsite) in sites {
                        let mut r = ResolvedProbe {
                            probe: pi,
                            point: qi,
                            site,
                            targets: HashMap::new(),
                            defined: HashMap::new(),
                            pretty: HashMap::new(),
                            entry: None,
                        };
                        if let Some(points::Context::Function((path, fsite, retprobe))) = &fsite {
                            let binary = cache
                                .get(path)
                                .map_err(|e| vec![Diagnostic::error(e.to_string(), point.span)])?;
                            let mut w = Walker {
                                binary,
                                site: fsite,
                                retprobe: *retprobe,
                                probe: &mut r,
                                errors: &mut errors,
                                saved: Vec::new(),
                            };
                            w.block(&probe.body);
                            let saved = std::mem::take(&mut w.saved);
                            if !saved.is_empty() {
                                r.entry = entry_site(binary, fsite, &r.site, saved)
                                    .map_err(|e| vec![Diagnostic::error(e, point.span)])?;
                            }
                        } else if let Some(points::Context::Mark(args)) = &fsite {
                            points::mark_targets(&probe.body, args, &mut r, &mut errors);
                        } else {
                            no_targets(&probe.body, &mut errors);
                        }
                        probes.push(r);
                    }
                }
                Err(e) if point.optional || point.sufficient => {
                    let _ = e;
                }
                Err(e) => errors.push(Diagnostic::error(e, point.span)),
            }
            if point.sufficient && probes.len() > before {
                break;
            }
        }
    }
    dedup(&mut errors);
    if errors.is_empty() {
        Ok(ResolvedProgram { hir, probes })
    } else {
        Err(errors)
    }
}

/// The same mistake at many sites is reported once.
fn dedup(errors: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    errors.retain(|d| seen.insert((d.message.clone(), d.primary.as_ref().map(|l| l.span))));
}

type FunctionContext = (PathBuf, FunctionSite, bool);

/// The entry half of a `.return` site: the `.function` placement of the same
/// instance, where parameters hold their entry values and the plans were made.
fn entry_site(
    binary: &Binary,
    fs: &FunctionSite,
    ret: &Site,
    saved: Vec<hir::ExprId>,
) -> Result<Option<EntrySite>, String> {
    let Site::Uprobe(u) = ret else {
        return Ok(None);
    };
    let offset = binary.file_offset(fs.probe).ok_or_else(|| {
        format!(
            "`{}` at {:#x} is outside every loadable segment of `{}`",
            fs.name,
            fs.probe,
            binary.path().display()
        )
    })?;
    let pp = u.pp.strip_suffix(".return").unwrap_or(&u.pp).to_string();
    Ok(Some(EntrySite {
        site: UprobeSite {
            path: u.path.clone(),
            vaddr: fs.probe,
            offset,
            retprobe: false,
            function: u.function.clone(),
            pp,
            semaphore: None,
            pid: u.pid,
        },
        saved,
        cfa: binary.cfa_at(fs.probe),
    }))
}

/// One point → its sites; uprobe sites carry the function instance for planning.
///
/// A `.function` probe whose handler reads no target variables sits on the function's
/// entry instead of after the prologue: the handler sees the same thing, and the first
/// instruction (`push`, `endbr64`) is emulated by the kernel instead of single-stepped,
/// about ten times cheaper.
fn point_sites(
    point: &hir::ProbePoint,
    cache: &mut Cache,
    reads_targets: bool,
) -> Result<Vec<(Site, Option<points::Context>)>, String> {
    let simple = |s: Site| Ok(vec![(s, None)]);
    let pp = match &point.kind {
        ProbeKind::Begin { seq } => return simple(Site::Begin { seq: *seq }),
        ProbeKind::End { seq } => return simple(Site::End { seq: *seq }),
        ProbeKind::Error { seq } => return simple(Site::Error { seq: *seq }),
        ProbeKind::Never => return simple(Site::Never),
        ProbeKind::Timer {
            period_ns,
            randomize_ns,
        } => {
            return simple(Site::Timer {
                period_ns: *period_ns,
                randomize_ns: *randomize_ns,
                every_cpu: false,
            });
        }
        ProbeKind::TimerHz(hz) => {
            return simple(Site::Timer {
                period_ns: 1_000_000_000 / (*hz).max(1),
                randomize_ns: 0,
                every_cpu: false,
            });
        }
        ProbeKind::TimerProfile => {
            return simple(Site::Timer {
                period_ns: PROFILE_PERIOD_NS,
                randomize_ns: 0,
                every_cpu: true,
            });
        }
        ProbeKind::Process(pp) => pp,
    };
    if !matches!(pp.site, ProcessSite::Function { .. }) {
        return points::sites(point, pp, cache);
    }
    let ProcessSite::Function {
        pattern,
        filter,
        is_return,
    } = &pp.site
    else {
        return Err(format!("probe point `{}` is not supported yet", point.text));
    };
    let paths = target_binaries(&pp.target, pp.library.as_deref()).map_err(|e| e.to_string())?;
    let fpattern = FunctionPattern::parse(pattern).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for path in paths {
        let binary = cache.get(&path).map_err(|e| e.to_string())?;
        let sites = function_sites(binary, &fpattern, *filter, *is_return);
        if sites.is_empty() {
            continue;
        }
        for fs in sites {
            let vaddr = if *is_return || !reads_targets {
                fs.entry
            } else {
                fs.probe
            };
            let offset = binary.file_offset(vaddr).ok_or_else(|| {
                format!(
                    "`{}` at {vaddr:#x} is outside every loadable segment of `{}`",
                    fs.name,
                    binary.path().display()
                )
            })?;
            let site = Site::Uprobe(UprobeSite {
                path: binary.path().to_path_buf(),
                vaddr,
                offset,
                retprobe: *is_return,
                function: fs.name.clone(),
                pp: function_pp(binary.path(), &fs, *filter, *is_return),
                semaphore: None,
                pid: match pp.target {
                    ProcessTarget::Pid(p) => Some(p),
                    _ => None,
                },
            });
            let cx = (binary.path().to_path_buf(), fs, *is_return);
            out.push((site, Some(points::Context::Function(cx))));
        }
    }
    if out.is_empty() {
        let shown = match &pp.target {
            ProcessTarget::Path(p) => cache_path(p),
            _ => String::new(),
        };
        return Err(format!("unable to find function `{pattern}` in `{shown}`"));
    }
    Ok(out)
}

fn cache_path(p: &str) -> String {
    std::fs::canonicalize(Path::new(p)).map_or_else(|_| p.to_string(), |c| c.display().to_string())
}

/// Target expressions outside function probes have nothing to resolve against.
fn no_targets(block: &Block, errors: &mut Vec<Diagnostic>) {
    let mut found = Vec::new();
    visit_block(block, &mut |e| {
        if let ExprKind::Target(t) = &e.kind {
            found.push(t.span);
        }
    });
    for span in found {
        errors.push(Diagnostic::error(
            "target variables are only available in function probes",
            span,
        ));
    }
}

struct Walker<'a> {
    binary: &'a Binary,
    site: &'a FunctionSite,
    retprobe: bool,
    probe: &'a mut ResolvedProbe,
    errors: &'a mut Vec<Diagnostic>,
    /// Expressions a `.return` probe reads at entry, in walk order.
    saved: Vec<hir::ExprId>,
}

impl Walker<'_> {
    /// `@defined(e)`: true when every target expression inside resolves.
    fn defined(&mut self, e: &Expr, inner: &Expr) -> bool {
        let mut targets = Vec::new();
        visit_expr(inner, &mut |x| {
            if let ExprKind::Target(t) = &x.kind {
                targets.push((x.clone(), t.clone()));
            }
        });
        let ok = targets.iter().fold(true, |ok, (x, t)| {
            self.target(x, t, self.retprobe, false) && ok
        });
        self.probe.defined.insert(e.id, ok);
        ok
    }

    /// The outcome of a condition that is `@defined(..)` or `!@defined(..)`, if it is one.
    fn guard(&mut self, cond: &Expr) -> Option<bool> {
        match &cond.kind {
            ExprKind::Defined(inner) => Some(self.defined(cond, inner)),
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => match &operand.kind {
                ExprKind::Defined(inner) => Some(!self.defined(operand, inner)),
                _ => None,
            },
            _ => None,
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
            StmtKind::If { cond, then, els } => match self.guard(cond) {
                // A branch that `@defined` rules out is never resolved, as in SystemTap.
                Some(true) => self.stmt(then),
                Some(false) => {
                    if let Some(e) = els {
                        self.stmt(e);
                    }
                }
                None => {
                    self.expr(cond);
                    self.stmt(then);
                    if let Some(e) = els {
                        self.stmt(e);
                    }
                }
            },
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
            StmtKind::Delete(d) => match d {
                hir::DeleteTarget::Element { keys, .. } => keys.iter().for_each(|k| self.expr(k)),
                hir::DeleteTarget::Slice { keys, .. } => {
                    keys.iter().flatten().for_each(|k| self.expr(k))
                }
                _ => {}
            },
            StmtKind::Try { body, catch, .. } => {
                self.block(body);
                self.block(catch);
            }
            StmtKind::Break | StmtKind::Continue | StmtKind::Next | StmtKind::Return(None) => {}
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Target(t) => {
                // In a `.return` probe, SystemTap reads `$param` (any variable, with
                // its chain) at entry, as if written `@entry($param)`.
                let at_entry = self.retprobe
                    && match &t.base {
                        TargetBase::Var(_) => true,
                        TargetBase::Bulk(b) => *b != hir::Bulk::Return,
                        _ => false,
                    };
                if self.target(e, t, self.retprobe, true) && at_entry {
                    self.saved.push(e.id);
                }
            }
            ExprKind::Defined(inner) => {
                self.defined(e, inner);
            }
            ExprKind::Entry(inner) => {
                // `@entry(..)` is read at the function probe, not at the return.
                let mut targets = Vec::new();
                visit_expr(inner, &mut |x| {
                    if let ExprKind::Target(t) = &x.kind {
                        targets.push((x.clone(), t.clone()));
                    }
                });
                for (x, t) in &targets {
                    self.target(x, t, false, true);
                }
                if self.retprobe {
                    self.saved.push(e.id);
                }
            }
            ExprKind::Ternary { cond, then, els } => match self.guard(cond) {
                Some(true) => self.expr(then),
                Some(false) => self.expr(els),
                None => {
                    self.expr(cond);
                    self.expr(then);
                    self.expr(els);
                }
            },
            _ => children(e, &mut |c| self.expr(c)),
        }
    }
}

#[cfg(test)]
mod tests;
