//! `-l`/`-L`: probe points and their variables, as SystemTap prints them.

use crate::dwarf::{Binary, Cache, DwarfError, FunctionPattern, FunctionSite};
use crate::resolve::{function_sites, target_binaries, ResolveError};
use rtap_lang::hir::{FunctionFilter, ProbeKind, ProbePoint, ProcessSite, ProcessTarget};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Dwarf(#[from] DwarfError),
    #[error("{0}")]
    Unsupported(String),
}

impl From<ResolveError> for ListError {
    fn from(e: ResolveError) -> ListError {
        match e {
            ResolveError::Dwarf(d) => ListError::Dwarf(d),
            ResolveError::Unsupported(s) => ListError::Unsupported(s),
        }
    }
}

/// Units whose variables are read together before they are released.
const UNITS_PER_BATCH: usize = 32;

/// Suffix of a canonical function probe point.
pub(crate) fn pp_suffix(filter: FunctionFilter, is_return: bool) -> String {
    let mut s = String::from(match filter {
        FunctionFilter::Any => "",
        FunctionFilter::Call => ".call",
        FunctionFilter::Inline => ".inline",
        FunctionFilter::Exported => ".exported",
    });
    if is_return {
        s.push_str(".return");
    }
    s
}

/// `process("/abs/app").function("send_msg@app.c:12")` plus suffixes.
pub(crate) fn function_pp(
    path: &Path,
    site: &FunctionSite,
    filter: FunctionFilter,
    is_return: bool,
) -> String {
    format!(
        "process(\"{}\").function(\"{}\"){}",
        path.display(),
        site.spec(),
        pp_suffix(filter, is_return)
    )
}

/// `$name:type` of one instance's available variables; a name seen twice is dropped.
fn instance_vars(binary: &Binary, site: &FunctionSite) -> Vec<String> {
    let vars: Vec<_> = binary
        .variables(site)
        .into_iter()
        .filter(|v| v.available)
        .collect();
    vars.iter()
        .filter(|v| vars.iter().filter(|w| w.name == v.name).count() == 1)
        .map(|v| format!("${}:{}", v.name, v.c_type))
        .collect()
}

/// The lines `-l` (just probe points) or `-L` (with variables) prints, sorted.
/// Instances with the same probe point are merged, keeping variables present in all.
pub fn list(
    points: &[ProbePoint],
    with_vars: bool,
    cache: &mut Cache,
) -> Result<Vec<String>, ListError> {
    let mut lines = Vec::new();
    for point in points {
        let ProbeKind::Process(pp) = &point.kind else {
            lines.push(point.text.clone());
            continue;
        };
        if !matches!(pp.site, ProcessSite::Function { .. }) {
            lines.extend(crate::resolve::points::list(point, pp, with_vars, cache)?);
            continue;
        }
        let ProcessSite::Function {
            pattern,
            filter,
            is_return,
        } = &pp.site
        else {
            unreachable!("other probe points were listed above");
        };
        let pattern = FunctionPattern::parse(pattern)?;
        for path in target_binaries(&pp.target, pp.library.as_deref())? {
            let binary = cache.get(&path)?;
            let canon = binary.path().to_path_buf();
            let mut sites = function_sites(binary, &pattern, *filter, *is_return);
            // Unit by unit, each released once listed: a whole library's parsed units
            // would otherwise all stay in memory.
            sites.sort_by_key(|s| s.unit());
            // Probe point → variables common to all of its instances.
            let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut i = 0;
            while i < sites.len() {
                // A batch of whole units, their variables read on all cores.
                let start = i;
                let mut units = Vec::new();
                while i < sites.len() && (units.len() < UNITS_PER_BATCH || i == start) {
                    let unit = sites[i].unit();
                    units.extend(unit);
                    while i < sites.len() && sites[i].unit() == unit {
                        i += 1;
                    }
                }
                let batch = &sites[start..i];
                let binary = cache.get(&canon)?;
                let lines = crate::dwarf::parallel(batch.len(), |k| {
                    let site = &batch[k];
                    let key = function_pp(binary.path(), site, *filter, *is_return);
                    if !with_vars {
                        return (key, Vec::new());
                    }
                    let mut vars = instance_vars(binary, site);
                    if *is_return {
                        if let Some(ty) = binary.return_type(site) {
                            vars.insert(0, format!("$return:{ty}"));
                        }
                    }
                    (key, vars)
                });
                for (key, vars) in lines {
                    match merged.get_mut(&key) {
                        Some(common) => common.retain(|v| vars.contains(v)),
                        None => {
                            merged.insert(key, vars);
                        }
                    }
                }
                let binary = cache.get_mut(&canon)?;
                for u in units {
                    binary.release_unit(u);
                }
            }
            for (pp, vars) in merged {
                lines.push(if vars.is_empty() {
                    pp
                } else {
                    format!("{pp} {}", vars.join(" "))
                });
            }
        }
    }
    lines.sort();
    lines.dedup();
    Ok(lines)
}

/// Probe points of the script `probe PP {}`, parsed and checked by `rtap-lang`.
pub fn parse_points(pp: &str) -> Result<Vec<ProbePoint>, String> {
    use rtap_lang::span::{SourceFile, SourceMap};
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new("<probe point>", format!("probe {pp} {{}}")));
    let render = |d: &[rtap_lang::diag::Diagnostic], s: &SourceMap| rtap_lang::diag::render(s, d);
    let script = rtap_lang::parse(&sources, file, &rtap_lang::ScriptArgs::default())
        .map_err(|d| render(&d, &sources))?;
    let (program, diags) = rtap_lang::check(&script, &sources);
    let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
    let Some(program) = program.filter(|_| errors.is_empty()) else {
        return Err(render(&errors, &sources));
    };
    Ok(program.probes.into_iter().flat_map(|p| p.points).collect())
}

/// Pids and "any process" have no file to list from.
pub(crate) fn unsupported_target(target: &ProcessTarget) -> Option<String> {
    match target {
        ProcessTarget::Path(_) => None,
        ProcessTarget::Pid(p) => Some(format!("`process({p})` is not supported yet")),
        ProcessTarget::Any => Some("`process` without a path is not supported yet".into()),
    }
}
