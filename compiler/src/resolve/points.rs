//! Probe points other than `.function`: SDT markers, statements, PLT stubs and the
//! process lifecycle, as sites (for `resolve`) and as listed lines (for `-L`).

use super::address;
use super::visit::{visit_block, visit_expr};
use super::{target_binaries, FunctionContext};
use crate::access::AccessPlan;
use crate::dwarf::{mark_name_matches, mark_pp, Cache, ElfFacts, StatementSite};
use crate::list::ListError;
use crate::resolved::{
    LifecycleEvent, LifecycleSite, ResolvedProbe, RunningSite, Site, UprobeSite,
};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Block, ExprKind, ProcessProbe, ProcessSite, ProcessTarget, TargetBase};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a site's target expressions are planned against.
pub(crate) enum Context {
    /// A function instance (`.function`, `.statement`): DWARF variables.
    Function(FunctionContext),
    /// An SDT marker: `$argN` from its argument specs.
    Mark(Vec<Result<AccessPlan, String>>),
}

type Sites = Vec<(Site, Option<Context>)>;

/// `process("/abs")`, `process(PID)` or `process`, as a canonical probe point starts.
fn process_pp(target: &ProcessTarget, path: Option<&Path>) -> String {
    match (target, path) {
        (ProcessTarget::Pid(p), _) => format!("process({p})"),
        (_, Some(path)) => format!("process(\"{}\")", path.display()),
        (_, None) => "process".into(),
    }
}

fn pid_of(target: &ProcessTarget) -> Option<u32> {
    match target {
        ProcessTarget::Pid(p) => Some(*p),
        _ => None,
    }
}

fn uprobe(facts: &ElfFacts, vaddr: u64, what: &str) -> Result<(PathBuf, u64), String> {
    let offset = facts.file_offset(vaddr).ok_or_else(|| {
        format!(
            "{what} at {vaddr:#x} is outside every loadable segment of `{}`",
            facts.path.display()
        )
    })?;
    Ok((facts.path.clone(), offset))
}

/// The sites of a non-`.function` process probe point.
pub(crate) fn sites(
    point: &hir::ProbePoint,
    pp: &ProcessProbe,
    cache: &mut Cache,
) -> Result<Sites, String> {
    let pid = pid_of(&pp.target);
    let text = &point.text;
    match &pp.site {
        ProcessSite::Function { .. } => unreachable!("`.function` is resolved by the caller"),
        ProcessSite::Mark { provider, name } => {
            let mut out = Vec::new();
            for path in
                target_binaries(&pp.target, pp.library.as_deref()).map_err(|e| e.to_string())?
            {
                let facts = ElfFacts::open(&path).map_err(|e| e.to_string())?;
                for m in matching_marks(&facts, provider.as_deref(), name) {
                    let (path, offset) = uprobe(&facts, m.pc, &format!("marker `{}`", m.name))?;
                    let semaphore = match m.semaphore {
                        Some(s) => Some(facts.file_offset(s).ok_or_else(|| {
                            format!("the semaphore of marker `{}` is not in the file", m.name)
                        })?),
                        None => None,
                    };
                    let site = Site::Uprobe(UprobeSite {
                        pp: mark_pp(&file_prefix(pp, &path), m, provider.is_some()),
                        path,
                        vaddr: m.pc,
                        offset,
                        retprobe: false,
                        function: m.name.clone(),
                        semaphore,
                        pid,
                    });
                    out.push((site, Some(Context::Mark(m.args.clone()))));
                }
            }
            if out.is_empty() {
                return Err(format!("no marker matches `{text}`"));
            }
            Ok(out)
        }
        ProcessSite::Statement { pattern, nearest } => {
            if let Some(addr) = address::parse(pattern) {
                return address_sites(pp, addr, *nearest, cache);
            }
            let mut out = Vec::new();
            for path in
                target_binaries(&pp.target, pp.library.as_deref()).map_err(|e| e.to_string())?
            {
                let binary = cache.get(&path).map_err(|e| e.to_string())?;
                for s in binary
                    .statements(pattern, *nearest)
                    .map_err(|e| e.to_string())?
                {
                    let offset = binary.file_offset(s.function.probe).ok_or_else(|| {
                        format!("statement `{}` is outside every loadable segment", s.spec())
                    })?;
                    let site = Site::Uprobe(UprobeSite {
                        path: binary.path().to_path_buf(),
                        vaddr: s.function.probe,
                        offset,
                        retprobe: false,
                        function: s.function.name.clone(),
                        pp: statement_pp(&file_prefix(pp, binary.path()), &s, *nearest),
                        semaphore: None,
                        pid,
                    });
                    let cx = (binary.path().to_path_buf(), s.function, false);
                    out.push((site, Some(Context::Function(cx))));
                }
            }
            if out.is_empty() {
                return Err(format!("no line records match `{text}`"));
            }
            Ok(out)
        }
        ProcessSite::Plt { pattern, is_return } => {
            let mut out = Vec::new();
            for path in
                target_binaries(&pp.target, pp.library.as_deref()).map_err(|e| e.to_string())?
            {
                let facts = ElfFacts::open(&path).map_err(|e| e.to_string())?;
                for stub in matching_plt(&facts, pattern.as_deref()) {
                    let (path, offset) =
                        uprobe(&facts, stub.address, &format!("`{}@plt`", stub.name))?;
                    let site = Site::Uprobe(UprobeSite {
                        pp: plt_pp(&file_prefix(pp, &path), &stub.name, *is_return),
                        path,
                        vaddr: stub.address,
                        offset,
                        retprobe: *is_return,
                        function: stub.name.clone(),
                        semaphore: None,
                        pid,
                    });
                    out.push((site, None));
                }
            }
            if out.is_empty() {
                return Err(format!("no PLT entry matches `{text}`"));
            }
            Ok(out)
        }
        ProcessSite::Begin
        | ProcessSite::End
        | ProcessSite::ThreadBegin
        | ProcessSite::ThreadEnd => lifecycle_sites(pp, text),
    }
}

/// `.statement(ADDR)` in each target file.
fn address_sites(
    pp: &ProcessProbe,
    addr: u64,
    nearest: bool,
    cache: &mut Cache,
) -> Result<Sites, String> {
    let mut out = Vec::new();
    let mut first_error = None;
    for path in target_binaries(&pp.target, pp.library.as_deref()).map_err(|e| e.to_string())? {
        let binary = cache.get(&path).map_err(|e| e.to_string())?;
        let (s, offset) = match address::site(binary, addr) {
            Ok(found) => found,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let site = Site::Uprobe(UprobeSite {
            path: binary.path().to_path_buf(),
            vaddr: addr,
            offset,
            retprobe: false,
            function: s.function.name.clone(),
            pp: address::pp(&file_prefix(pp, binary.path()), addr, nearest),
            semaphore: None,
            pid: pid_of(&pp.target),
        });
        let cx = (binary.path().to_path_buf(), s.function, false);
        out.push((site, Some(Context::Function(cx))));
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

/// `process("P").begin` is a uprobe on the entry point; the rest are raw tracepoints.
fn lifecycle_sites(pp: &ProcessProbe, text: &str) -> Result<Sites, String> {
    if pp.library.is_some() {
        return Err(format!("`{text}`: a library has no process lifecycle"));
    }
    let pid = pid_of(&pp.target);
    let file = match &pp.target {
        ProcessTarget::Path(_) => {
            let paths = target_binaries(&pp.target, None).map_err(|e| e.to_string())?;
            let mut files = Vec::new();
            for p in paths {
                let facts = ElfFacts::open(&p).map_err(|e| e.to_string())?;
                if !facts.executable {
                    return Err(format!("`{}` is not an executable", facts.path.display()));
                }
                let (path, offset) = uprobe(&facts, facts.entry, "the entry point")?;
                files.push((path, facts.entry, offset));
            }
            Some(files)
        }
        _ => None,
    };
    let suffix = match pp.site {
        ProcessSite::Begin => "begin",
        ProcessSite::End => "end",
        ProcessSite::ThreadBegin => "thread.begin",
        _ => "thread.end",
    };
    let lifecycle = |event, path: Option<(PathBuf, u64)>| {
        let pp_text = format!(
            "{}.{suffix}",
            process_pp(&pp.target, path.as_ref().map(|p| p.0.as_path()))
        );
        (
            Site::Lifecycle(LifecycleSite {
                event,
                path,
                pid,
                pp: pp_text,
            }),
            None,
        )
    };
    // `.begin` also fires for processes already running when the session starts, as
    // SystemTap's task finder does; the runtime finds them in /proc.
    let running = |path: Option<PathBuf>| {
        let pp_text = format!("{}.begin", process_pp(&pp.target, path.as_deref()));
        (
            Site::Running(RunningSite {
                path,
                pid,
                pp: pp_text,
            }),
            None,
        )
    };
    let events: &[LifecycleEvent] = match pp.site {
        // The process exists already: nothing else can begin it.
        ProcessSite::Begin if pid.is_some() => return Ok(vec![running(None)]),
        // Any process: a fork's child, and every successful exec (SystemTap reports
        // an exec as the end of one image and the begin of the next).
        ProcessSite::Begin => &[LifecycleEvent::Exec, LifecycleEvent::Fork { thread: false }],
        ProcessSite::End => &[LifecycleEvent::Exit { thread: false }],
        ProcessSite::ThreadBegin => &[LifecycleEvent::Fork { thread: true }],
        _ => &[LifecycleEvent::Exit { thread: true }],
    };
    let Some(files) = file else {
        let mut out: Sites = events.iter().map(|&e| lifecycle(e, None)).collect();
        if pp.site == ProcessSite::Begin {
            out.push(running(None));
        }
        return Ok(out);
    };
    let mut out = Vec::new();
    for (path, entry, offset) in files {
        if pp.site == ProcessSite::Begin {
            let facts_path = path.clone();
            // The first instruction the new program runs, in its first thread.
            let site = Site::Uprobe(UprobeSite {
                pp: format!("process(\"{}\").begin", path.display()),
                path,
                vaddr: entry,
                offset,
                retprobe: false,
                function: String::new(),
                semaphore: None,
                pid,
            });
            out.push((site, None));
            out.push(running(Some(facts_path)));
            continue;
        }
        for &e in events {
            out.push(lifecycle(e, Some((path.clone(), offset))));
        }
    }
    Ok(out)
}

fn matching_marks<'f>(
    facts: &'f ElfFacts,
    provider: Option<&'f str>,
    name: &'f str,
) -> impl Iterator<Item = &'f crate::dwarf::Marker> {
    facts.markers.iter().filter(move |m| {
        provider.is_none_or(|p| mark_name_matches(p, &m.provider))
            && mark_name_matches(name, &m.name)
    })
}

fn matching_plt<'f>(
    facts: &'f ElfFacts,
    pattern: Option<&str>,
) -> impl Iterator<Item = &'f crate::dwarf::PltStub> {
    let pattern = pattern.and_then(|p| glob::Pattern::new(p).ok());
    facts
        .plt
        .iter()
        .filter(move |s| pattern.as_ref().is_none_or(|p| p.matches(&s.name)))
}

/// `process("/abs")`, or `process("/abs/prog").library("/abs/lib")` for a library
/// named in the probe point, as SystemTap prints them.
fn file_prefix(pp: &ProcessProbe, file: &Path) -> String {
    if pp.library.is_some() {
        let program = target_binaries(&pp.target, None)
            .ok()
            .and_then(|p| p.into_iter().next())
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        if let Some(program) = program {
            return format!(
                "process(\"{}\").library(\"{}\")",
                program.display(),
                file.display()
            );
        }
    }
    format!("process(\"{}\")", file.display())
}

fn statement_pp(prefix: &str, s: &StatementSite, nearest: bool) -> String {
    let suffix = if nearest { ".nearest" } else { "" };
    format!("{prefix}.statement(\"{}\"){suffix}", s.spec())
}

/// ` $name:type` of each variable available at a statement.
fn push_vars(line: &mut String, binary: &crate::dwarf::Binary, s: &StatementSite) {
    for v in binary.statement_variables(&s.function) {
        if v.available {
            line.push_str(&format!(" ${}:{}", v.name, v.c_type));
        }
    }
}

fn plt_pp(prefix: &str, name: &str, is_return: bool) -> String {
    let ret = if is_return { ".return" } else { "" };
    format!("{prefix}.plt(\"{name}\"){ret}")
}

/// Plans `$argN` of a marker probe's body; other target expressions are errors.
pub(crate) fn mark_targets(
    body: &Block,
    args: &[Result<AccessPlan, String>],
    probe: &mut ResolvedProbe,
    errors: &mut Vec<Diagnostic>,
) {
    let plan = |t: &hir::TargetExpr| -> Result<AccessPlan, String> {
        let TargetBase::MarkArg(n) = t.base else {
            return Err("only `$argN` target variables are available in `.mark` probes".into());
        };
        if !t.chain.is_empty() || t.address_of || t.pretty.is_some() {
            return Err(format!(
                "`$arg{n}` is a `long`; it has no members or address"
            ));
        }
        match args.get(usize::from(n).wrapping_sub(1)) {
            Some(r) => r.clone(),
            None => Err(format!(
                "`$arg{n}` is not available: the marker has {} argument{}",
                args.len(),
                if args.len() == 1 { "" } else { "s" }
            )),
        }
    };
    // `@defined(..)` first: its targets are tried, never reported.
    let mut in_defined = HashMap::new();
    visit_block(body, &mut |e| {
        if let ExprKind::Defined(inner) = &e.kind {
            let mut ok = true;
            visit_expr(inner, &mut |x| {
                if let ExprKind::Target(t) = &x.kind {
                    let r = plan(t);
                    ok &= r.is_ok();
                    in_defined.insert(x.id, r.ok());
                }
            });
            probe.defined.insert(e.id, ok);
        }
    });
    visit_block(body, &mut |e| {
        let ExprKind::Target(t) = &e.kind else { return };
        match in_defined.get(&e.id) {
            Some(Some(p)) => {
                probe.targets.insert(e.id, p.clone());
            }
            Some(None) => {}
            None => match plan(t) {
                Ok(p) => {
                    probe.targets.insert(e.id, p);
                }
                Err(m) => errors.push(Diagnostic::error(m, t.span)),
            },
        }
    });
}

/// `-l`/`-L` lines of a non-`.function` process probe point.
pub(crate) fn list(
    point: &hir::ProbePoint,
    pp: &ProcessProbe,
    with_vars: bool,
    cache: &mut Cache,
) -> Result<Vec<String>, ListError> {
    let mut lines = Vec::new();
    let binaries = || target_binaries(&pp.target, pp.library.as_deref());
    match &pp.site {
        ProcessSite::Function { .. } => unreachable!("`.function` is listed by the caller"),
        ProcessSite::Mark { provider, name } => {
            for path in binaries()? {
                let facts = ElfFacts::open(&path)?;
                for m in matching_marks(&facts, provider.as_deref(), name) {
                    let mut line = mark_pp(&file_prefix(pp, &facts.path), m, provider.is_some());
                    if with_vars {
                        for i in 1..=m.args.len() {
                            line.push_str(&format!(" $arg{i}:long"));
                        }
                    }
                    lines.push(line);
                }
            }
        }
        ProcessSite::Statement { pattern, nearest } if address::parse(pattern).is_some() => {
            let addr = address::parse(pattern).unwrap_or_default();
            for path in binaries()? {
                let binary = cache.get(&path)?;
                let (s, _) = address::site(binary, addr).map_err(ListError::Unsupported)?;
                let mut line = address::pp(&file_prefix(pp, binary.path()), addr, *nearest);
                if with_vars {
                    push_vars(&mut line, binary, &s);
                }
                lines.push(line);
            }
        }
        ProcessSite::Statement { pattern, nearest } => {
            for path in binaries()? {
                let binary = cache.get(&path)?;
                for s in binary.statements(pattern, *nearest)? {
                    let mut line = statement_pp(&file_prefix(pp, binary.path()), &s, *nearest);
                    if with_vars {
                        push_vars(&mut line, binary, &s);
                    }
                    lines.push(line);
                }
            }
        }
        ProcessSite::Plt { pattern, is_return } => {
            for path in binaries()? {
                let facts = ElfFacts::open(&path)?;
                for stub in matching_plt(&facts, pattern.as_deref()) {
                    lines.push(plt_pp(
                        &file_prefix(pp, &facts.path),
                        &stub.name,
                        *is_return,
                    ));
                }
            }
        }
        ProcessSite::Begin
        | ProcessSite::End
        | ProcessSite::ThreadBegin
        | ProcessSite::ThreadEnd => {
            for (site, _) in lifecycle_sites(pp, &point.text).map_err(ListError::Unsupported)? {
                lines.push(match site {
                    Site::Uprobe(u) => u.pp,
                    Site::Lifecycle(l) => l.pp,
                    Site::Running(r) => r.pp,
                    _ => continue,
                });
            }
        }
    }
    Ok(lines)
}
