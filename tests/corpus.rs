//! The `corpus/` trials: every probe of every script in the tree is loaded into the
//! kernel (`rtap -p4`: verified, not attached). A verifier rejection is an rtap bug;
//! rtap's message names the script line of the rejected instruction.
//!
//! - `run/NAME.rtap` at each optimisation level of its `# fixture:` header, with
//!   `@FIXTURE@` replaced and the options of `# rtap-args:`. A script that does not compile is the run layer's business
//!   (some cases expect errors); only a failed load fails here.
//! - `codegen/NAME.rtap`, the `-p3` snapshot scripts, under the same rule.
//! - `scripts/NAME.rtap` with the arguments of the first rig case that runs it
//!   (`# script:`, `# args:`, `# variant:`), `@LIB@` being the rig's libsystemd; without
//!   the rig beside the checkout, with no arguments (the system's library).
//! - `examples/NAME.rtap` with the `# fixture:` and `# args:` of
//!   `cases/examples/NAME.case`, when there is one.
//!
//! Scripts in `scripts/` and `examples/` must also compile.

use super::{case_files, read, rig_library, rig_root, rtap_binary, stem};
use libtest_mimic::{Failed, Trial};
use rtap_tests::{bpf_unavailable, cases_dir, fixture_dir, header, must_not_skip};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn corpus_trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    for path in case_files("run", "rtap") {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let fx = header(&text, "fixture").unwrap_or_default();
        let mut words = fx.split_whitespace();
        let fixture = words.next().unwrap_or("").to_string();
        let mut opts: Vec<String> = words.map(str::to_string).collect();
        if opts.is_empty() {
            opts.push("-O0".into());
        }
        for opt in opts {
            let (path, fixture) = (path.clone(), fixture.clone());
            trials.push(trial(
                format!("corpus::run/{}{opt}", stem(&path)),
                move || {
                    let text = read(&path)?;
                    let script = if fixture.is_empty() {
                        text
                    } else {
                        let fx = fixture_dir().join(format!("{fixture}{opt}"));
                        text.replace("@FIXTURE@", &fx.to_string_lossy())
                    };
                    let opts = header(&script, "rtap-args").unwrap_or_default();
                    let opts: Vec<String> = opts.split_whitespace().map(str::to_string).collect();
                    verify(Source::Text(script), &opts, &[], false)
                },
            ));
        }
    }
    // The `-p3` snapshot scripts are loaded too: their programs are real.
    for path in case_files("codegen", "rtap") {
        trials.push(trial(
            format!("corpus::codegen/{}", stem(&path)),
            move || verify(Source::Text(read(&path)?), &[], &[], false),
        ));
    }
    for path in tree_scripts("scripts") {
        trials.push(trial(
            format!("corpus::scripts/{}", stem(&path)),
            move || verify(Source::File(path.clone()), &[], &script_args(&path)?, true),
        ));
    }
    for path in tree_scripts("examples") {
        trials.push(trial(
            format!("corpus::examples/{}", stem(&path)),
            move || verify(Source::File(path.clone()), &[], &example_args(&path)?, true),
        ));
    }
    trials.push(trial("corpus::artifact".into(), artifact));
    trials
}

/// `rtap -p4 -o FILE` verifies, then writes the listing and each program's raw
/// instructions: as many 16-hex-digit lines as the listing has instruction slots.
fn artifact() -> Result<(), Failed> {
    let file = std::env::temp_dir().join(format!("rtap-artifact-{}.txt", std::process::id()));
    let out = Command::new(rtap_binary()?)
        .args(["-p4", "-o"])
        .arg(&file)
        .args(["-e", "global n; probe timer.profile { n++ }"])
        .output()
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        return Err(format!(
            "`rtap -p4 -o` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let (listing, raw) = text
        .split_once("\nraw probe_0_0 ")
        .ok_or("no `raw` section after the listing")?;
    if !listing.contains("program probe_0_0 (PerfEvent) timer.profile") {
        return Err(format!("the listing is missing:\n{listing}").into());
    }
    let mut lines = raw.lines();
    let count: usize = lines
        .next()
        .and_then(|l| l.strip_suffix(" instructions"))
        .and_then(|n| n.parse().ok())
        .ok_or("no instruction count")?;
    let hex: Vec<&str> = lines.collect();
    let slots = listing
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    let ok = hex.len() == count
        && hex
            .iter()
            .all(|l| l.len() == 16 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        && count >= slots;
    if !ok {
        return Err(format!(
            "malformed raw section ({count} declared, {} lines)",
            hex.len()
        )
        .into());
    }
    Ok(())
}

fn trial(name: String, f: impl FnOnce() -> Result<(), Failed> + Send + 'static) -> Trial {
    let skip = bpf_unavailable();
    let t = Trial::test(name, move || match bpf_unavailable() {
        Some(why) if must_not_skip() => {
            Err(format!("CI=true but BPF is unavailable: {why}").into())
        }
        _ => f(),
    });
    match skip {
        Some(_) if !must_not_skip() => t.with_ignored_flag(true),
        _ => t,
    }
}

/// `*.rtap` files of a directory at the top of the checkout.
fn tree_scripts(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "rtap"));
    files.sort();
    files
}

enum Source {
    Text(String),
    File(PathBuf),
}

/// `rtap -p4 OPTS SCRIPT ARGS`: fails on a load error, and on a compile error when
/// `must_compile`.
fn verify(src: Source, opts: &[String], args: &[String], must_compile: bool) -> Result<(), Failed> {
    let mut cmd = Command::new(rtap_binary()?);
    cmd.args(["-p4", "-w"]).args(opts);
    match &src {
        Source::Text(t) => cmd.arg("-e").arg(t),
        Source::File(p) => cmd.arg(p),
    };
    // Arguments may start with `-`; rtap takes them after `--`.
    cmd.arg("--").args(args);
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let load_failed = stderr.contains("verifier rejected") || stderr.contains("cannot load");
    if load_failed || must_compile {
        return Err(format!("`rtap -p4` failed ({}):\n{stderr}", out.status).into());
    }
    Ok(())
}

/// Arguments of a shipped script: those of the first rig case that runs it.
fn script_args(path: &Path) -> Result<Vec<String>, Failed> {
    let name = format!("scripts/{}", path.file_name().unwrap().to_string_lossy());
    let case = case_files("rig", "rtap").into_iter().find_map(|c| {
        let text = std::fs::read_to_string(&c).ok()?;
        (header(&text, "script")? == name).then_some(text)
    });
    let (Some(text), true) = (case, rig_root().join("build.sh").exists()) else {
        return Ok(Vec::new());
    };
    let variant = header(&text, "variant").unwrap_or_else(|| "stock".into());
    let mut args = header(&text, "args").unwrap_or_default();
    if !args.contains("@LIB@") {
        args = format!("@LIB@ {args}");
    }
    let lib = rig_library(&variant)?;
    Ok(args
        .split_whitespace()
        .map(|a| a.replace("@LIB@", &lib.to_string_lossy()))
        .collect())
}

/// Arguments of an example: those of its `cases/examples/NAME.case`, if any.
fn example_args(path: &Path) -> Result<Vec<String>, Failed> {
    let case = cases_dir()
        .join("examples")
        .join(format!("{}.case", stem(path)));
    let Ok(text) = std::fs::read_to_string(case) else {
        return Ok(Vec::new());
    };
    let fixture = header(&text, "fixture").and_then(|f| {
        let mut w = f.split_whitespace();
        let name = w.next()?.to_string();
        let opt = w.next().unwrap_or("-O0").to_string();
        Some(fixture_dir().join(format!("{name}{opt}")))
    });
    let args = header(&text, "args").unwrap_or_default();
    Ok(args
        .split_whitespace()
        .map(|a| match &fixture {
            Some(fx) => a.replace("@FIXTURE@", &fx.to_string_lossy()),
            None => a.to_string(),
        })
        .collect())
}
