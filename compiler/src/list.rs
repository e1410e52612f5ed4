//! `-l`/`-L`: probe points and their variables, as SystemTap prints them.

use crate::dwarf::{Binary, Cache, DwarfError, FunctionPattern, FunctionSite};
use crate::resolve::{function_sites, target_binaries, ResolveError};
use rtap_lang::hir::{FunctionFilter, ProbeKind, ProbePoint, ProcessSite, ProcessTarget};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        let ProcessSite::Function {
            pattern,
            filter,
            is_return,
        } = &pp.site
        else {
            return Err(ListError::Unsupported(format!(
                "listing `{}` is not supported yet",
                point.text
            )));
        };
        let pattern = FunctionPattern::parse(pattern)?;
        for path in target_binaries(&pp.target, pp.library.as_deref())? {
            let binary = cache.get(&path)?;
            // Probe point → variables common to all of its instances.
            let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for site in function_sites(binary, &pattern, *filter, *is_return) {
                let key = function_pp(binary.path(), &site, *filter, *is_return);
                if !with_vars {
                    merged.entry(key).or_default();
                    continue;
                }
                let mut vars = instance_vars(binary, &site);
                if *is_return {
                    if let Some(ty) = binary.return_type(&site) {
                        vars.insert(0, format!("$return:{ty}"));
                    }
                }
                match merged.get_mut(&key) {
                    Some(common) => common.retain(|v| vars.contains(v)),
                    None => {
                        merged.insert(key, vars);
                    }
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

/// The layer helper for `tests/cases/list/NAME.args`, in the runner's format: headers
/// `# fixture: NAME -OLEVEL` and optional `# flag: -l`, then the probe point, where
/// `@FIXTURE@` stands for the fixture binary (`fixture(name, opt)` builds or finds it).
/// Output: the lines, then `--- exit 1` when nothing matched, as the CLI does.
pub fn run_list_case(
    case: &str,
    fixture: &dyn Fn(&str, &str) -> Result<PathBuf, String>,
) -> String {
    let header = |key: &str| {
        case.lines().find_map(|l| {
            let rest = l.strip_prefix('#')?.trim_start().strip_prefix(key)?;
            Some(rest.strip_prefix(':')?.trim().to_string())
        })
    };
    let Some(fx) = header("fixture") else {
        return "case error: missing `# fixture: NAME -OLEVEL` header\n".into();
    };
    let (name, opt) = fx.split_once(' ').unwrap_or((fx.as_str(), "-O0"));
    let with_vars = header("flag").is_none_or(|f| f != "-l");
    let Some(point) = case
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
    else {
        return "case error: missing probe point line\n".into();
    };
    let binary = match fixture(name, opt) {
        Ok(b) => b,
        Err(e) => return format!("case error: {e}\n"),
    };
    let canon = std::fs::canonicalize(&binary).unwrap_or(binary);
    let canon = canon.display().to_string();
    let point = point.trim().replace("@FIXTURE@", &canon);
    let out = match parse_points(&point).and_then(|points| {
        list(&points, with_vars, &mut Cache::new()).map_err(|e| format!("error: {e}\n"))
    }) {
        Ok(lines) if lines.is_empty() => "--- exit 1\n".to_string(),
        Ok(lines) => lines.iter().map(|l| format!("{l}\n")).collect(),
        Err(e) => format!("--- stderr\n{e}--- exit 1\n"),
    };
    out.replace(&canon, "@FIXTURE@")
}

/// Pids and "any process" have no file to list from.
pub(crate) fn unsupported_target(target: &ProcessTarget) -> Option<String> {
    match target {
        ProcessTarget::Path(_) => None,
        ProcessTarget::Pid(p) => Some(format!("`process({p})` is not supported yet")),
        ProcessTarget::Any => Some("`process` without a path is not supported yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `tests/cases/list/*.args` case; `UPDATE_EXPECT=1` rewrites the `.out` files.
    #[test]
    fn list_cases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/list");
        let mut cases: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "args"))
            .collect();
        cases.sort();
        assert!(!cases.is_empty());
        let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
        let fixture = |name: &str, opt: &str| Ok(crate::dwarf::test_fixture(name, opt));
        let mut failed = Vec::new();
        for case in cases {
            let text = std::fs::read_to_string(&case).unwrap();
            let got = run_list_case(&text, &fixture);
            let out = case.with_extension("out");
            if update {
                std::fs::write(&out, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&out).unwrap_or_default();
            if want != got {
                failed.push(format!(
                    "{}:\n--- want\n{want}--- got\n{got}",
                    case.display()
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
