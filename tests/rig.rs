//! The `rig/` layer: scripts run against the real sd-bus through `../shared/rig/run.sh`.
//!
//! A case is `rig/NAME.rtap` with headers:
//! - `# variant: stock|blogcompat` (default stock), `# mode: MODE [flood options]`;
//! - `# script: PATH` (relative to the checkout) to run a shipped script instead of the
//!   case file itself, whose body is then empty;
//! - `# args: ...` script arguments, `@LIB@` standing for the variant's libsystemd
//!   (put first when absent);
//! - `# ready: REGEX` the line the script prints once running (default `READY`);
//! - `# check: OP; OP...` which lines to compare: `head N` (the first N) and `grep TEXT`
//!   (every line containing TEXT); without it, the whole output.
//!
//! Runs hold a machine-wide lock, so two test processes never flood at once. The tracer's
//! output is normalised before comparing: the driver's pids become `FLOOD`,
//! `CHILD` and `DAEMON`, rows of processes this run did not start are dropped (uprobes on
//! the library fire in every process that maps it), and `--- <ctime> GMT ---` headers
//! become `--- DATE GMT ---`. In `NAME.out`, `{=EXPR}` stands for a number computed from
//! the driver's `RESULT key=value` lines (`+ - * /`, integers, keys), so a count is
//! asserted equal to what the driver itself reports.

use super::{case_files, read, rig_library, rig_root, rtap_binary, stem};
use libtest_mimic::{Failed, Trial};
use rtap_tests::{bpf_unavailable, expect_file, header, must_not_skip};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn rig_cases() -> Vec<Trial> {
    let mut trials = vec![Trial::test("rig-harness::self-check", self_check)];
    trials.extend(case_files("rig", "rtap").into_iter().map(|path| {
        let trial = Trial::test(format!("rig::{}", stem(&path)), move || {
            if let Some(why) = bpf_unavailable() {
                return Err(format!("CI=true but BPF is unavailable: {why}").into());
            }
            rig_case(&path)
        });
        match bpf_unavailable() {
            Some(_) if !must_not_skip() => trial.with_ignored_flag(true),
            _ => trial,
        }
    }));
    trials
}

fn rig_case(path: &Path) -> Result<(), Failed> {
    // One flood at a time: the runs share the CPUs, and a run sees every other run's
    // processes through the library's uprobes.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The same across test processes (another checkout, another CI job on this machine).
    let _machine = machine_lock()?;
    let text = read(path)?;
    let variant = header(&text, "variant").unwrap_or_else(|| "stock".into());
    let mode = header(&text, "mode").ok_or("missing `# mode:` header")?;
    let mut args = header(&text, "args").unwrap_or_default();
    if !args.contains("@LIB@") {
        args = format!("@LIB@ {args}");
    }
    let script = match header(&text, "script") {
        Some(s) => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(s),
        None => path.to_path_buf(),
    };
    rig_library(&variant)?;
    let dir = RunDir::new(&stem(path))?;
    let out_file = dir.0.join("trace.out");
    let trace = format!("{} {} {args}", rtap_binary()?.display(), script.display());
    let run = Command::new("bash")
        .arg(rig_root().join("run.sh"))
        .args(mode.split_whitespace())
        .env("RIG", &dir.0)
        .env("VARIANT", &variant)
        .env("TRACE", &trace)
        .env("TRACE_OUT", &out_file)
        .env(
            "TRACE_READY",
            header(&text, "ready").unwrap_or_else(|| "READY".into()),
        )
        .output()
        .map_err(|e| format!("cannot run the rig: {e}"))?;
    let traced = std::fs::read_to_string(&out_file).unwrap_or_default();
    let driver = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        return Err(format!(
            "the rig's driver failed ({}):\n{driver}{}\n--- tracer output\n{traced}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        )
        .into());
    }
    let facts = Facts::parse(&driver);
    let normal = normalise(&traced, &facts.pids);
    let selected = select(&normal, header(&text, "check").as_deref())?;
    let expected = path.with_extension("out");
    let template = std::fs::read_to_string(&expected).unwrap_or_default();
    let merged = keep_template(&selected, &template, &facts.results);
    expect_file(&expected, &merged).map_err(Failed::from)
}

/// An exclusive lock on /tmp/rtap-rig.lock, released when the file is dropped.
fn machine_lock() -> Result<std::fs::File, String> {
    let path = std::env::temp_dir().join("rtap-rig.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

/// A private `RIG` directory for run.sh: links to the cached build in /tmp/rig, and its
/// own bus socket and run files, so another checkout's tests cannot collide with ours.
struct RunDir(PathBuf);

impl RunDir {
    fn new(case: &str) -> Result<RunDir, String> {
        let dir = std::env::temp_dir().join(format!("rtap-rig-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for name in [
            "flood",
            "flood-blogcompat",
            "systemd-build",
            "systemd-build-blogcompat",
        ] {
            std::os::unix::fs::symlink(Path::new("/tmp/rig").join(name), dir.join(name))
                .map_err(|e| format!("cannot link {name} into {}: {e}", dir.display()))?;
        }
        Ok(RunDir(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // remove_dir_all removes the links, not what they point to.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the run's stdout says: the pids it started and the driver's `RESULT` numbers.
struct Facts {
    pids: Vec<(String, &'static str)>,
    results: HashMap<String, i64>,
}

impl Facts {
    fn parse(stdout: &str) -> Facts {
        let mut pids = Vec::new();
        let mut results = HashMap::new();
        for line in stdout.lines() {
            let fields = || line.split_whitespace().filter_map(|w| w.split_once('='));
            if line.starts_with("flood pid=") {
                pids.extend(
                    fields()
                        .filter(|(k, _)| *k == "pid")
                        .map(|(_, v)| (v.to_string(), "FLOOD")),
                );
            } else if line.starts_with("dbus-daemon pid=") {
                pids.extend(
                    fields()
                        .filter(|(k, _)| *k == "pid")
                        .map(|(_, v)| (v.to_string(), "DAEMON")),
                );
            } else if let Some(rest) = line.strip_prefix("RESULT ") {
                for (k, v) in rest.split_whitespace().filter_map(|w| w.split_once('=')) {
                    if k == "child" {
                        pids.push((v.to_string(), "CHILD"));
                    }
                    if let Ok(n) = v.parse() {
                        results.insert(k.to_string(), n);
                    }
                }
            }
        }
        Facts { pids, results }
    }
}

/// Pids to names, other processes' rows dropped, dates masked.
fn normalise(text: &str, pids: &[(String, &str)]) -> String {
    let name = |pid: &str| pids.iter().find(|(p, _)| p == pid).map(|(_, n)| *n);
    let mut out = String::new();
    for line in text.lines() {
        let line = match pid_in(line) {
            Some((start, end)) => match name(&line[start..end]) {
                // A table row's pid is right-aligned in 6 columns, wider when the pid is
                // long: the name takes the usual 6, whatever the pid's length.
                Some(n) if line[..start].trim().is_empty() => {
                    format!("{n:>6}{}", &line[end..])
                }
                Some(n) => format!("{}{n}{}", &line[..start], &line[end..]),
                None => continue,
            },
            None => mask_date(line),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Where a row names its process: a table row starting with the pid and a function name
/// (`  1234 func ...`), or a sentence starting `comm[1234]/`.
fn pid_in(line: &str) -> Option<(usize, usize)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let lead = line.len() - line.trim_start().len();
    let n = digits(&line[lead..]);
    let after = &line.as_bytes()[lead + n..];
    if n > 0
        && after.len() > 1
        && after[0] == b' '
        && (after[1].is_ascii_alphabetic() || after[1] == b'_')
    {
        return Some((lead, lead + n));
    }
    let open = line.find('[')?;
    let n = digits(&line[open + 1..]);
    (n > 0 && line[open + 1 + n..].starts_with("]/")).then_some((open + 1, open + 1 + n))
}

/// `--- Wed Nov 20 09:02:05 2019 GMT ---` → `--- DATE GMT ---`, when it is a real ctime.
fn mask_date(line: &str) -> String {
    let Some(inner) = line
        .strip_prefix("--- ")
        .and_then(|l| l.strip_suffix(" GMT ---"))
    else {
        return line.to_string();
    };
    let w: Vec<&str> = inner.split_whitespace().collect();
    let num = |s: &str, len: usize| s.len() <= len && s.parse::<u32>().is_ok();
    let ok = w.len() == 5
        && ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&w[0])
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&w[1])
        && num(w[2], 2)
        && w[3].split(':').count() == 3
        && w[3].split(':').all(|p| p.len() == 2 && num(p, 2))
        && w[4].len() == 4
        && num(w[4], 4);
    if ok {
        "--- DATE GMT ---".to_string()
    } else {
        line.to_string()
    }
}

/// The lines `# check:` asks for, in the order its operations name them.
fn select(text: &str, check: Option<&str>) -> Result<String, String> {
    let Some(check) = check else {
        return Ok(text.to_string());
    };
    let mut out = String::new();
    for op in check.split(';').map(str::trim).filter(|o| !o.is_empty()) {
        let (verb, arg) = op.split_once(' ').unwrap_or((op, ""));
        let lines: Vec<&str> = match verb {
            "head" => {
                let n: usize = arg
                    .trim()
                    .parse()
                    .map_err(|_| format!("`head` needs a line count, got `{arg}`"))?;
                text.lines().take(n).collect()
            }
            "grep" => text.lines().filter(|l| l.contains(arg)).collect(),
            _ => return Err(format!("unknown `# check:` operation `{op}`")),
        };
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The actual output, with each line that the expected file's same line produces once its
/// `{=EXPR}` are evaluated replaced by that template line; `expect_file` then compares (or,
/// with `UPDATE_EXPECT=1`, writes) it, keeping the formulas that still hold.
fn keep_template(actual: &str, template: &str, results: &HashMap<String, i64>) -> String {
    let mut tlines = template.lines();
    let mut out = String::new();
    for line in actual.lines() {
        match tlines.next() {
            Some(t) if render(t, results).as_deref() == Ok(line) => out.push_str(t),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A template line with every `{=EXPR}` replaced by its value.
fn render(line: &str, results: &HashMap<String, i64>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("{=") {
        let end = rest[i..].find('}').ok_or("unclosed `{=`")? + i;
        out.push_str(&rest[..i]);
        out.push_str(&eval(&rest[i + 2..end], results)?.to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `+ - * /` over integers and `RESULT` keys, `*` and `/` binding tighter.
fn eval(expr: &str, results: &HashMap<String, i64>) -> Result<i64, String> {
    let mut sum = 0i64;
    let mut sign = 1i64;
    let mut term: Option<i64> = None;
    let mut op = '*';
    let mut word = String::new();
    let value = |w: &str| -> Result<i64, String> {
        w.parse()
            .or_else(|_| results.get(w).copied().ok_or(()))
            .map_err(|_| format!("no `RESULT {w}=` from the driver"))
    };
    for c in expr.chars().chain(std::iter::once('+')) {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let v = value(&word)?;
            word.clear();
            term = Some(match (term, op) {
                (None, _) => v,
                (Some(t), '*') => t * v,
                (Some(t), _) => t.checked_div(v).ok_or("division by 0")?,
            });
        }
        match c {
            '*' | '/' => op = c,
            '+' | '-' => {
                sum += sign * term.take().unwrap_or(0);
                sign = if c == '-' { -1 } else { 1 };
            }
            c if c.is_whitespace() => {}
            _ => return Err(format!("unexpected `{c}` in `{{={expr}}}`")),
        }
    }
    Ok(sum)
}

/// The harness's own helpers, checked without the rig: formulas, pids and dates.
fn self_check() -> Result<(), Failed> {
    let r = HashMap::from([("ok".to_string(), 2000)]);
    let formulas = [
        (eval("2*ok+2", &r), Ok(4002)),
        (eval("ok - 1", &r), Ok(1999)),
        (eval("ok/500 + ok", &r), Ok(2004)),
        (
            eval("nope", &r),
            Err("no `RESULT nope=` from the driver".to_string()),
        ),
    ];
    for (got, want) in formulas {
        if got != want {
            return Err(format!("formula gave {got:?}, want {want:?}").into());
        }
    }
    let pids = vec![("77".to_string(), "FLOOD")];
    let text = "--- Wed Nov 20 09:02:05 2019 GMT ---\n    77 f 0 1 1\n    78 f 0 1 1\n\
                flood[77]/f() x\nflood[78]/f() x\n2 \"a\" \"b\"\n--- Wed Nov 20 9:02 2019 GMT ---\n";
    let want = "--- DATE GMT ---\n FLOOD f 0 1 1\nflood[FLOOD]/f() x\n2 \"a\" \"b\"\n\
                --- Wed Nov 20 9:02 2019 GMT ---\n";
    let got = normalise(text, &pids);
    if got != want {
        return Err(format!("normalised:\n{got}want:\n{want}").into());
    }
    let kept = keep_template("a 2001\nb 3\n", "a {=ok+1}\nb {=ok}\n", &r);
    if kept != "a {=ok+1}\nb 3\n" {
        return Err(format!("template merge gave {kept:?}").into());
    }
    Ok(())
}
