//! The examples layer: every `examples/NAME.rtap` runs for real against a fixture or a
//! system binary, as `tests/cases/examples/NAME.case` describes.
//!
//! Headers: `# fixture: NAME -O2` (a private copy, `@FIXTURE@` in the other headers),
//! `# args: …` (script arguments), `# command: …` (for `-c`). Output that is the same
//! on every run is compared with `NAME.out` (`UPDATE_EXPECT=1` rewrites it); `# sorted`
//! sorts output lines first (several threads print). Output with times in it is checked
//! with `# match: REGEX` lines instead, each of which some output line must match.

use super::{fixture_copy, read, render_run, rtap_binary, stem};
use libtest_mimic::{Failed, Trial};
use rtap_tests::{bpf_unavailable, cases_dir, expect_file, header, must_not_skip};
use std::path::{Path, PathBuf};
use std::process::Command;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub fn cases() -> Vec<Trial> {
    let Ok(entries) = std::fs::read_dir(examples_dir()) else {
        return Vec::new();
    };
    let mut scripts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rtap"))
        .collect();
    scripts.sort();
    scripts
        .into_iter()
        .map(|script| {
            let name = stem(&script);
            let trial = Trial::test(format!("examples::{name}"), move || {
                if let Some(why) = bpf_unavailable() {
                    return Err(format!("CI=true but BPF is unavailable: {why}").into());
                }
                run(&script)
            });
            match bpf_unavailable() {
                Some(_) if !must_not_skip() => trial.with_ignored_flag(true),
                _ => trial,
            }
        })
        .collect()
}

fn run(script: &Path) -> Result<(), Failed> {
    let name = stem(script);
    let case = cases_dir().join("examples").join(format!("{name}.case"));
    let text = read(&case)
        .map_err(|_| format!("every example needs a test: {} is missing", case.display()))?;
    let fixture = match header(&text, "fixture") {
        Some(fx) => {
            let (fname, opt) = fx.split_once(' ').unwrap_or((fx.as_str(), "-O2"));
            Some(fixture_copy(fname, opt, &format!("example_{name}"))?)
        }
        None => None,
    };
    let fx = fixture
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let subst = |s: String| s.replace("@FIXTURE@", &fx);
    let mut cmd = Command::new(rtap_binary()?);
    cmd.arg(script);
    if let Some(args) = header(&text, "args") {
        cmd.args(subst(args).split_whitespace());
    }
    if let Some(c) = header(&text, "command") {
        cmd.arg("-c").arg(subst(c));
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if let Some(p) = &fixture {
        let _ = std::fs::remove_file(p);
    }
    let rendered = render_run(&out, fixture.as_deref().unwrap_or(Path::new("@none@")));
    let patterns: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# match:"))
        .map(|p| p.trim().to_string())
        .collect();
    if patterns.is_empty() {
        let mut actual = rendered;
        if text.lines().any(|l| l.trim() == "# sorted") {
            let mut lines: Vec<&str> = actual.lines().collect();
            lines.sort_unstable();
            actual = lines.join("\n") + "\n";
        }
        return expect_file(&case.with_extension("out"), &actual).map_err(Failed::from);
    }
    for p in &patterns {
        let re = regex::Regex::new(p).map_err(|e| format!("bad `# match:` pattern `{p}`: {e}"))?;
        if !rendered.lines().any(|l| re.is_match(l)) {
            return Err(
                format!("no output line matches `{p}`; the output was:\n{rendered}").into(),
            );
        }
    }
    Ok(())
}
