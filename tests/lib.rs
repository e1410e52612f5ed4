//! Shared helpers for the data-driven test runner: expected files, fixtures, privileges.

use std::path::{Path, PathBuf};

/// Where `build.rs` put the compiled fixtures (`NAME-O0`, `NAME-O2`).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("RTAP_FIXTURES"))
}

/// The directory of case files.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// Compares `actual` with the expected file; `UPDATE_EXPECT=1` rewrites it instead.
pub fn expect_file(path: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        std::fs::write(path, actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{} differs (rerun with UPDATE_EXPECT=1 to accept)\n{}",
        path.display(),
        diff(&expected, actual)
    ))
}

fn diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("-{:4} {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+{:4} {y}\n", i + 1));
                }
            }
        }
    }
    out
}

/// Header options of a case file: lines `# key: value` (or `// key: value`) at the top.
pub fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map_while(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix("// ")))
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
}

/// Why BPF cannot be used here, if it cannot.
pub fn bpf_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    if !root {
        return Some("loading BPF needs root (CAP_BPF and CAP_PERFMON)".into());
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        return Some("this kernel has no uprobe PMU".into());
    }
    None
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Whether a skipped BPF test must fail instead (`CI=true`).
pub fn must_not_skip() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
