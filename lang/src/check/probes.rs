//! Probe points: brace expansion, aliases, and the mapping to `hir::ProbeKind`.

use super::{Checker, Ctx, ProbeCtx, Scope};
use crate::ast::{self, Component, Literal};
use crate::hir::{self, FunctionFilter, ProbeKind, ProcessProbe, ProcessSite, ProcessTarget};
use crate::span::Span;

/// One concrete point after brace and alias expansion.
struct Point<'a> {
    comps: Vec<Component>,
    optional: bool,
    sufficient: bool,
    cond: Option<&'a ast::Expr>,
    prologues: Vec<&'a ast::Block>,
    epilogues: Vec<&'a ast::Block>,
    span: Span,
}

struct Group<'a> {
    pro: Vec<&'a ast::Block>,
    epi: Vec<&'a ast::Block>,
    points: Vec<hir::ProbePoint>,
}

const MAX_ALIAS_DEPTH: usize = 16;

/// Most concrete points a script may expand to: braces and aliases multiply.
const MAX_POINTS: usize = 10_000;

/// `{a,b}x` → `ax`, `bx`, each group in turn; `None` past [`MAX_POINTS`].
fn brace_expand(name: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut rest = name;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let (head, body) = (&rest[..open], &rest[open + 1..close]);
        let alts: Vec<&str> = body.split(',').collect();
        if out.len() * alts.len() > MAX_POINTS {
            return None;
        }
        out = out
            .iter()
            .flat_map(|p| alts.iter().map(move |a| format!("{p}{head}{a}")))
            .collect();
        rest = &rest[close + 1..];
    }
    for p in &mut out {
        p.push_str(rest);
    }
    Some(out)
}

/// SystemTap-style text of a point: `process("./app").function("f").return`.
pub fn point_text(comps: &[Component]) -> String {
    let parts: Vec<String> = comps.iter().map(crate::pretty::component).collect();
    parts.join(".")
}

fn comp_matches(pat: &Component, name: &Component) -> bool {
    let names = if pat.name.contains('*') {
        crate::preproc::glob_match(&pat.name, &name.name)
    } else {
        pat.name == name.name
    };
    names && pat.arg == name.arg
}

impl<'a> Checker<'a> {
    pub(super) fn probe(&mut self, p: &'a ast::ProbeDecl) -> Vec<(hir::Probe, Scope)> {
        let mut points: Vec<Point<'a>> = Vec::new();
        for pt in &p.points {
            // Cartesian product of each component's brace alternatives.
            let mut combos: Vec<Vec<Component>> = vec![Vec::new()];
            for c in &pt.components {
                let alts = match brace_expand(&c.name) {
                    Some(a) if a.len() * combos.len() + self.points <= MAX_POINTS => a,
                    _ => {
                        self.too_many_points(pt.span);
                        return Vec::new();
                    }
                };
                let mut next = Vec::new();
                for prefix in &combos {
                    for a in &alts {
                        let mut v = prefix.clone();
                        v.push(Component {
                            name: a.clone(),
                            ..c.clone()
                        });
                        next.push(v);
                    }
                }
                combos = next;
            }
            for comps in combos {
                let point = Point {
                    comps,
                    optional: pt.optional,
                    sufficient: pt.sufficient,
                    cond: pt.condition.as_ref(),
                    prologues: Vec::new(),
                    epilogues: Vec::new(),
                    span: pt.span,
                };
                if !self.resolve_aliases(point, 0, &mut points) {
                    return Vec::new();
                }
            }
        }
        self.points += points.len();
        // Points with the same alias bodies share one handler.
        let mut groups: Vec<Group<'a>> = Vec::new();
        for pt in points {
            let kind = match probe_kind(&pt.comps) {
                Ok(k) => k,
                Err(m) => {
                    if !pt.optional {
                        self.error(m, pt.span);
                    }
                    continue;
                }
            };
            let condition = pt.cond.map(|c| {
                let mut cs = Scope::new(Ctx::Condition);
                self.long_expr(c, "a probe point condition", &mut cs)
            });
            let hp = hir::ProbePoint {
                kind,
                optional: pt.optional,
                sufficient: pt.sufficient,
                condition,
                text: point_text(&pt.comps),
                span: pt.span,
            };
            let same = |x: &[&ast::Block], y: &[&ast::Block]| {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| std::ptr::eq(*a, *b))
            };
            match groups
                .iter_mut()
                .find(|g| same(&g.pro, &pt.prologues) && same(&g.epi, &pt.epilogues))
            {
                Some(g) => g.points.push(hp),
                None => groups.push(Group {
                    pro: pt.prologues,
                    epi: pt.epilogues,
                    points: vec![hp],
                }),
            }
        }
        let mut out = Vec::new();
        if groups.is_empty() {
            // Still check the body so its mistakes are reported.
            let mut sc = Scope::new(Ctx::Probe(ProbeCtx::default()));
            self.block(&p.body, &mut sc);
            return out;
        }
        for Group { pro, epi, points } in groups {
            let ctx = probe_ctx(&points);
            let mut sc = Scope::new(Ctx::Probe(ctx));
            let mut stmts = Vec::new();
            for b in pro {
                let hb = self.block(b, &mut sc);
                stmts.push(hir::Stmt {
                    span: hb.span,
                    kind: hir::StmtKind::Block(hb),
                });
            }
            let main = self.block(&p.body, &mut sc);
            let body = if stmts.is_empty() && epi.is_empty() {
                main
            } else {
                stmts.push(hir::Stmt {
                    span: main.span,
                    kind: hir::StmtKind::Block(main),
                });
                for b in epi {
                    let hb = self.block(b, &mut sc);
                    stmts.push(hir::Stmt {
                        span: hb.span,
                        kind: hir::StmtKind::Block(hb),
                    });
                }
                hir::Block {
                    stmts,
                    span: p.body.span,
                }
            };
            out.push((
                hir::Probe {
                    points,
                    locals: Vec::new(),
                    body,
                    span: p.span,
                },
                sc,
            ));
        }
        out
    }

    fn too_many_points(&mut self, span: Span) {
        self.error(
            format!("probe points expand to more than {MAX_POINTS} concrete points in this script"),
            span,
        );
    }

    /// Expands `pt` through matching aliases into `out`; false once it gave up with an error.
    fn resolve_aliases(&mut self, pt: Point<'a>, depth: usize, out: &mut Vec<Point<'a>>) -> bool {
        if out.len() + self.points >= MAX_POINTS {
            self.too_many_points(pt.span);
            return false;
        }
        let aliases = self.aliases.clone();
        let matching: Vec<&ast::AliasDecl> = aliases
            .iter()
            .copied()
            .filter(|a| {
                a.name.len() <= pt.comps.len()
                    && a.name
                        .iter()
                        .zip(&pt.comps)
                        .all(|(an, pc)| comp_matches(pc, an))
            })
            .collect();
        if matching.is_empty() {
            out.push(pt);
            return true;
        }
        if depth >= MAX_ALIAS_DEPTH {
            self.error(
                "probe alias expansion is too deep (is an alias recursive?)",
                pt.span,
            );
            return false;
        }
        for a in matching {
            let suffix = &pt.comps[a.name.len()..];
            for target in &a.points {
                let mut comps = target.components.clone();
                comps.extend_from_slice(suffix);
                let mut prologues = pt.prologues.clone();
                let mut epilogues = pt.epilogues.clone();
                if a.append {
                    epilogues.insert(0, &a.body);
                } else {
                    prologues.push(&a.body);
                }
                let next = Point {
                    comps,
                    optional: pt.optional || target.optional,
                    sufficient: pt.sufficient || target.sufficient,
                    cond: pt.cond.or(target.condition.as_ref()),
                    prologues,
                    epilogues,
                    span: pt.span,
                };
                if !self.resolve_aliases(next, depth + 1, out) {
                    return false;
                }
            }
        }
        true
    }
}

fn probe_ctx(points: &[hir::ProbePoint]) -> ProbeCtx {
    let mut ctx = ProbeCtx {
        all_return: true,
        all_mark: true,
        ..ProbeCtx::default()
    };
    for p in points {
        let (targets, ret, mark) = match &p.kind {
            ProbeKind::Process(pp) => match &pp.site {
                ProcessSite::Function { is_return, .. } => (true, *is_return, false),
                ProcessSite::Plt { is_return, .. } => (true, *is_return, false),
                ProcessSite::Statement { .. } => (true, false, false),
                ProcessSite::Mark { .. } => (true, false, true),
                _ => (false, false, false),
            },
            _ => (false, false, false),
        };
        if !targets && ctx.no_targets.is_none() {
            ctx.no_targets = Some(p.text.clone());
        }
        ctx.all_return &= ret;
        ctx.all_mark &= mark;
    }
    ctx
}

fn num_arg(c: &Component) -> Result<Option<i64>, String> {
    match &c.arg {
        None => Ok(None),
        Some(Literal::Long(n)) => Ok(Some(*n)),
        Some(Literal::Str(_)) => Err(format!("`{}` takes a number, not a string", c.name)),
    }
}

fn str_arg(c: &Component) -> Result<String, String> {
    match &c.arg {
        Some(Literal::Str(s)) => Ok(s.clone()),
        _ => Err(format!(
            "`{}` needs a string argument such as `{}(\"name\")`",
            c.name, c.name
        )),
    }
}

fn no_arg(c: &Component) -> Result<(), String> {
    match c.arg {
        None => Ok(()),
        Some(_) => Err(format!("`{}` takes no argument", c.name)),
    }
}

/// Maps expanded components to a probe kind.
fn probe_kind(comps: &[Component]) -> Result<ProbeKind, String> {
    let text = point_text(comps);
    let unknown = || format!("unknown probe point `{text}`");
    if comps.iter().any(|c| c.name.contains('*')) {
        return Err(format!(
            "no probe point matches `{text}`: wildcards only match probe aliases so far"
        ));
    }
    let first = &comps[0];
    let names: Vec<&str> = comps.iter().map(|c| c.name.as_str()).collect();
    match names[0] {
        "begin" | "end" | "error" if comps.len() == 1 => {
            let seq = num_arg(first)?.unwrap_or(0);
            Ok(match names[0] {
                "begin" => ProbeKind::Begin { seq },
                "end" => ProbeKind::End { seq },
                _ => ProbeKind::Error { seq },
            })
        }
        "never" if comps.len() == 1 => no_arg(first).map(|_| ProbeKind::Never),
        "timer" => timer(comps, &text),
        "process" => process(comps, &text).map(ProbeKind::Process),
        "kernel" | "module" | "syscall" | "nd_syscall" | "tp_syscall" | "kprobe" | "netfilter"
        | "perf" | "procfs" | "java" | "python2" | "python3" => Err(format!(
            "probe point `{text}` is not supported: rtap traces user space only"
        )),
        _ => Err(unknown()),
    }
}

fn timer(comps: &[Component], text: &str) -> Result<ProbeKind, String> {
    let Some(unit) = comps.get(1) else {
        return Err(format!("`{text}` needs a unit, such as `timer.ms(100)`"));
    };
    let n = |c: &Component| -> Result<u64, String> {
        match num_arg(c)? {
            Some(v) if v > 0 => Ok(v as u64),
            Some(_) => Err(format!("`{}` needs a positive number", c.name)),
            None => Err(format!(
                "`timer.{}` needs a number, such as `timer.{}(100)`",
                c.name, c.name
            )),
        }
    };
    let scale: u64 = match unit.name.as_str() {
        "s" | "sec" => 1_000_000_000,
        "ms" | "msec" => 1_000_000,
        "us" | "usec" => 1_000,
        "ns" | "nsec" => 1,
        "hz" if comps.len() == 2 => return Ok(ProbeKind::TimerHz(n(unit)?)),
        "profile" if comps.len() == 2 => return no_arg(unit).map(|_| ProbeKind::TimerProfile),
        "jiffies" => return Err("`timer.jiffies` is not supported yet; use `timer.ms`".to_string()),
        _ => return Err(format!("unknown probe point `{text}`")),
    };
    let period = n(unit)?
        .checked_mul(scale)
        .ok_or("timer period is too large")?;
    let randomize = match comps.get(2) {
        None => 0,
        Some(r) if r.name == "randomize" && comps.len() == 3 => n(r)?
            .checked_mul(scale)
            .ok_or("timer randomization is too large")?,
        Some(_) => return Err(format!("unknown probe point `{text}`")),
    };
    if randomize > period {
        return Err("`randomize` cannot exceed the timer period".to_string());
    }
    Ok(ProbeKind::Timer {
        period_ns: period,
        randomize_ns: randomize,
    })
}

fn process(comps: &[Component], text: &str) -> Result<ProcessProbe, String> {
    let target = match &comps[0].arg {
        None => ProcessTarget::Any,
        Some(Literal::Str(p)) => ProcessTarget::Path(p.clone()),
        Some(Literal::Long(n)) if *n > 0 && *n <= u32::MAX as i64 => ProcessTarget::Pid(*n as u32),
        Some(Literal::Long(_)) => return Err("`process` needs a positive pid".to_string()),
    };
    let mut rest = &comps[1..];
    let mut library = None;
    if rest.first().is_some_and(|c| c.name == "library") {
        library = Some(str_arg(&rest[0])?);
        rest = &rest[1..];
    }
    let unknown = || format!("unknown probe point `{text}`");
    let Some(site) = rest.first() else {
        return Err(format!(
            "`{text}` needs a site, such as `.function(\"name\")`"
        ));
    };
    let tail: Vec<&str> = rest[1..].iter().map(|c| c.name.as_str()).collect();
    if site.name != "provider" {
        for c in &rest[1..] {
            no_arg(c)?;
        }
    }
    let site = match site.name.as_str() {
        "function" => {
            let pattern = str_arg(site)?;
            let mut filter = FunctionFilter::Any;
            let mut is_return = false;
            for (i, t) in tail.iter().enumerate() {
                match *t {
                    "return" if !is_return => is_return = true,
                    "call" | "inline" | "exported" if i == 0 => {
                        filter = match *t {
                            "call" => FunctionFilter::Call,
                            "inline" => FunctionFilter::Inline,
                            _ => FunctionFilter::Exported,
                        }
                    }
                    "label" | "callee" | "callees" => {
                        return Err(format!("`.{t}` probes are not supported yet"))
                    }
                    _ => return Err(unknown()),
                }
            }
            if is_return && filter == FunctionFilter::Inline {
                return Err("`.return` cannot be used with `.inline`".to_string());
            }
            ProcessSite::Function {
                pattern,
                filter,
                is_return,
            }
        }
        "statement" => {
            let pattern = match &site.arg {
                Some(Literal::Str(s)) => s.clone(),
                Some(Literal::Long(a)) => format!("{:#x}", *a as u64),
                None => {
                    return Err(
                        "`statement` needs a location such as `statement(\"f@file.c:10\")`"
                            .to_string(),
                    )
                }
            };
            let nearest = match tail.as_slice() {
                [] => false,
                ["nearest"] => true,
                ["absolute"] => {
                    return Err(
                        "`.absolute` statement probes need guru mode, which rtap does not have"
                            .to_string(),
                    )
                }
                _ => return Err(unknown()),
            };
            ProcessSite::Statement { pattern, nearest }
        }
        "mark" if tail.is_empty() => ProcessSite::Mark {
            provider: None,
            name: str_arg(site)?,
        },
        "provider" => match rest.get(1) {
            Some(m) if m.name == "mark" && rest.len() == 2 => ProcessSite::Mark {
                provider: Some(str_arg(site)?),
                name: str_arg(m)?,
            },
            _ => return Err(unknown()),
        },
        "plt" => {
            let pattern = match &site.arg {
                None => None,
                Some(Literal::Str(s)) => Some(s.clone()),
                Some(Literal::Long(_)) => return Err("`plt` takes a symbol name".to_string()),
            };
            let is_return = match tail.as_slice() {
                [] => false,
                ["return"] => true,
                _ => return Err(unknown()),
            };
            ProcessSite::Plt { pattern, is_return }
        }
        "begin" | "end" if tail.is_empty() && library.is_none() => {
            no_arg(site)?;
            if site.name == "begin" {
                ProcessSite::Begin
            } else {
                ProcessSite::End
            }
        }
        "thread" if library.is_none() => match tail.as_slice() {
            ["begin"] => ProcessSite::ThreadBegin,
            ["end"] => ProcessSite::ThreadEnd,
            _ => return Err(unknown()),
        },
        "syscall" => return Err("`process.syscall` probes are not supported yet".to_string()),
        _ => return Err(unknown()),
    };
    Ok(ProcessProbe {
        target,
        library,
        site,
    })
}

#[cfg(test)]
mod tests {
    use super::brace_expand;

    #[test]
    fn braces() {
        let expand = |s| brace_expand(s).expect("few points");
        assert_eq!(expand("{a,b}x{1,2}"), ["ax1", "ax2", "bx1", "bx2"]);
        assert_eq!(expand("plain"), ["plain"]);
        assert_eq!(expand("x{a,b"), ["x{a,b"]);
        assert!(brace_expand(&"{a,b}".repeat(20)).is_none());
    }
}
