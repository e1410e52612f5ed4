//! The data-driven test runner: one trial per case file under `tests/cases/<layer>/`.
//! `UPDATE_EXPECT=1` rewrites the expected files.

use libtest_mimic::{Arguments, Failed, Trial};
use rtap_tests::{bpf_unavailable, cases_dir, expect_file, fixture_dir, header, must_not_skip};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod corpus;
mod examples;
mod rig;

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(layer("parse", "rtap", "out", |text, name| {
        Ok(rtap_lang::testing::run_parse_case(text, name))
    }));
    trials.extend(layer("check", "rtap", "out", |text, name| {
        Ok(rtap_lang::testing::run_check_case(text, name))
    }));
    trials.extend(layer("codegen", "rtap", "bpf", |text, name| {
        Ok(rtap_compiler::bpf::testing::run_codegen_case(text, name))
    }));
    trials.extend(layer("host", "rtap", "out", |text, name| {
        Ok(rtap_runtime::interp::testing::run_host_case(text, name))
    }));
    trials.extend(layer("list", "args", "out", list_case));
    trials.extend(run_cases());
    trials.extend(rig::rig_cases());
    trials.extend(corpus::corpus_trials());
    trials.extend(examples::cases());
    // Without the sd-bus rig beside the checkout (a laptop), its cases are skipped, saying
    // why; CI always has it, and there they run.
    if !rig_root().join("build.sh").exists() && !must_not_skip() {
        trials = trials
            .into_iter()
            .map(|t| {
                let uses_rig = t.name().starts_with("rig::") || t.name().starts_with("list::rig-");
                if uses_rig {
                    t.with_ignored_flag(true)
                } else {
                    t
                }
            })
            .collect();
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The rig's scripts, in the `shared/` folder laid beside the checkout.
fn rig_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rig")
}

type CaseFn = fn(&str, &str) -> Result<String, String>;

/// Cases of one layer: `NAME.<ext>` → `NAME.<out>`.
fn layer(dir: &str, ext: &str, out: &'static str, f: CaseFn) -> Vec<Trial> {
    case_files(dir, ext)
        .into_iter()
        .map(|path| {
            let name = format!("{dir}::{}", stem(&path));
            Trial::test(name, move || {
                let text = read(&path)?;
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                let actual = f(&text, &file).map_err(Failed::from)?;
                expect_file(&path.with_extension(out), &actual).map_err(Failed::from)
            })
        })
        .collect()
}

fn case_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cases_dir().join(dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn read(p: &Path) -> Result<String, Failed> {
    std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()).into())
}

/// The `rtap` binary built next to this test executable.
fn rtap_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rtap"))
        .ok_or("cannot locate the target directory")?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "`{}` is missing: run `cargo build --workspace` before the tests",
            bin.display()
        ))
    }
}

/// A private copy of a fixture, so no other test's uprobes fire in it.
fn fixture_copy(name: &str, opt: &str, case: &str) -> Result<PathBuf, String> {
    let src = fixture_dir().join(format!("{name}{opt}"));
    let dir = std::env::temp_dir().join(format!("rtap-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dst = dir.join(format!("{case}{opt}"));
    std::fs::copy(&src, &dst).map_err(|e| format!("cannot copy fixture {}: {e}", src.display()))?;
    Ok(dst)
}

/// The rig's libsystemd (`stock` or `blogcompat`), built once per test run by
/// `../shared/rig/build.sh`, which caches its output under /tmp/rig.
fn rig_library(variant: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let root = rig_root();
    BUILT
        .get_or_init(|| {
            let script = root.join("build.sh");
            if !script.exists() {
                return Err(format!(
                    "the sd-bus rig is missing: no {}",
                    script.display()
                ));
            }
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "the sd-bus rig build failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()?;
    let dir = match variant {
        "stock" => "systemd-build",
        "blogcompat" => "systemd-build-blogcompat",
        _ => return Err(format!("unknown rig variant `{variant}`")),
    };
    Ok(Path::new("/tmp/rig").join(dir).join("libsystemd.so.0.35.0"))
}

/// `-l`/`-L` cases: `# fixture: NAME -O2` (or `# fixture: rig stock|blogcompat`) and the
/// probe point on the first other line, with `@FIXTURE@` standing for the binary's path in
/// input and output.
fn list_case(text: &str, file: &str) -> Result<String, String> {
    let fx = header(text, "fixture").ok_or("missing `# fixture:` header")?;
    let (name, opt) = fx.split_once(' ').unwrap_or((fx.as_str(), "-O0"));
    // `# fixture: /abs/path` lists a system file in place (e.g. libc with libc6-dbg).
    let system = name.starts_with('/');
    let path = if system {
        std::fs::canonicalize(name).map_err(|e| format!("`{name}`: {e}"))?
    } else if name == "rig" {
        rig_library(opt)?
    } else {
        fixture_copy(name, opt, &file.replace('.', "_"))?
    };
    let flag = header(text, "flag").unwrap_or_else(|| "-L".into());
    let pp = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .ok_or("missing probe point line")?
        .replace("@FIXTURE@", &path.to_string_lossy());
    let (pp, addrs) = addresses(&pp, &path)?;
    let out = Command::new(rtap_binary()?)
        .arg(&flag)
        .arg(&pp)
        .output()
        .map_err(|e| e.to_string())?;
    if name != "rig" && !system {
        let _ = std::fs::remove_file(&path);
    }
    Ok(unaddress(render_run(&out, &path), &addrs))
}

/// `@ADDR(symbol)@` and `@ADDR(file.c:LINE)@`, optionally with `+N` bytes: the symbol's
/// address (`nm`) or the lowest address of the line (`objdump --dwarf=decodedline`) in
/// `fixture`, in hex as `objdump -d` shows it; `@ADDR10(...)@` is the same in decimal.
/// Fixture addresses differ by optimisation level, so cases name them instead. Returns
/// the text and, for each address, its hex form and the placeholder that prints it.
fn addresses(text: &str, fixture: &Path) -> Result<(String, Vec<(String, String)>), String> {
    let re = regex::Regex::new(r"@ADDR(10)?\(([^)+]+)(?:\+(\d+))?\)@").expect("valid regex");
    let mut found = Vec::new();
    let mut out = text.to_string();
    for c in re.captures_iter(text) {
        let spec = &c[2];
        let base = match spec.rsplit_once(':') {
            Some((file, line)) => line_address(fixture, file, line)?,
            None => symbol_address(fixture, spec)?,
        };
        let extra: u64 = c
            .get(3)
            .map_or(Ok(0), |n| n.as_str().parse())
            .map_err(|e| format!("{e}"))?;
        let addr = base + extra;
        let value = match c.get(1) {
            Some(_) => addr.to_string(),
            None => format!("{addr:#x}"),
        };
        out = out.replace(&c[0], &value);
        found.push((format!("{addr:#x}"), c[0].replacen("@ADDR10(", "@ADDR(", 1)));
        if extra != 0 {
            // The base shows too (in suggestions such as "try 0x1149").
            found.push((format!("{base:#x}"), format!("@ADDR({spec})@")));
        }
    }
    Ok((out, found))
}

/// Output with each address printed back as its placeholder.
fn unaddress(mut text: String, addrs: &[(String, String)]) -> String {
    // Longer addresses first, so `0x1149` is not taken inside `0x11490`.
    let mut addrs = addrs.to_vec();
    addrs.sort_by_key(|(hex, _)| std::cmp::Reverse(hex.len()));
    for (hex, shown) in addrs {
        let re = regex::Regex::new(&format!(r"{hex}\b")).expect("valid regex");
        text = re.replace_all(&text, regex::NoExpand(&shown)).into_owned();
    }
    text
}

fn tool_output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn symbol_address(fixture: &Path, name: &str) -> Result<u64, String> {
    let text = tool_output(Command::new("nm").arg("--defined-only").arg(fixture))?;
    text.lines()
        .find_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [addr, _, n] if n == name => u64::from_str_radix(addr, 16).ok(),
            _ => None,
        })
        .ok_or_else(|| format!("no symbol `{name}` in {}", fixture.display()))
}

fn line_address(fixture: &Path, file: &str, line: &str) -> Result<u64, String> {
    let text = tool_output(
        Command::new("objdump")
            .arg("--dwarf=decodedline")
            .arg(fixture),
    )?;
    text.lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [f, n, addr, ..] if f == file && n == line => {
                u64::from_str_radix(addr.strip_prefix("0x")?, 16).ok()
            }
            _ => None,
        })
        .min()
        .ok_or_else(|| format!("no line `{file}:{line}` in {}", fixture.display()))
}

fn render_run(out: &std::process::Output, fixture: &Path) -> String {
    let fx = fixture.to_string_lossy();
    // `@FIXTURES@` is the build directory of every fixture (shared libraries live there).
    let dir = fixture_dir().to_string_lossy().into_owned();
    let paths = |t: &[u8]| {
        String::from_utf8_lossy(t)
            .replace(&*fx, "@FIXTURE@")
            .replace(&dir, "@FIXTURES@")
    };
    let mut s = paths(&out.stdout);
    if !out.stderr.is_empty() {
        s.push_str("--- stderr\n");
        s.push_str(&paths(&out.stderr));
    }
    match out.status.code() {
        Some(0) => {}
        Some(c) => s.push_str(&format!("--- exit {c}\n")),
        None => s.push_str("--- killed by a signal\n"),
    }
    s
}

/// End-to-end cases: `run/NAME.rtap` with headers `# fixture: NAME -O0 -O2` and
/// `# command: @FIXTURE@ ARGS`; the script runs for real under `rtap -c` and its
/// output must equal `NAME.out` for every optimisation level listed. `@FIXTURES@`
/// stands for the directory the fixtures are built in (their shared libraries),
/// `@ADDR(...)@` for an address in the fixture (see `addresses`), and `@PID@` for the
/// process of `# background: CMD`.
fn run_cases() -> Vec<Trial> {
    let mut trials = Vec::new();
    for path in case_files("run", "rtap") {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let fx = header(&text, "fixture").unwrap_or_default();
        let mut words = fx.split_whitespace();
        let name = words.next().unwrap_or("").to_string();
        let opts: Vec<String> = words.map(str::to_string).collect();
        let opts = if opts.is_empty() {
            vec!["-O0".to_string()]
        } else {
            opts
        };
        for opt in opts {
            let trial_name = format!("run::{}{opt}", stem(&path));
            let path = path.clone();
            let name = name.clone();
            let skip = bpf_unavailable();
            let trial = Trial::test(trial_name, move || {
                if let Some(why) = &skip {
                    if must_not_skip() {
                        return Err(format!("CI=true but BPF is unavailable: {why}").into());
                    }
                }
                run_case(&path, &name, &opt)
            });
            trials.push(match bpf_unavailable() {
                Some(_) if !must_not_skip() => trial.with_ignored_flag(true),
                _ => trial,
            });
        }
    }
    trials
}

fn run_case(path: &Path, fixture: &str, opt: &str) -> Result<(), Failed> {
    let text = read(path)?;
    let case = stem(path);
    let fx = fixture_copy(fixture, opt, &case)?;
    let fxs = fx.to_string_lossy();
    // `# background: CMD` runs before rtap starts (a process that already exists), its
    // pid standing for `@PID@` in the script, the command and `# rtap-args`.
    let background = match header(&text, "background") {
        Some(b) => Some(Background::spawn(&b.replace("@FIXTURE@", &fxs))?),
        None => None,
    };
    let pid = background.as_ref().map(|b| b.0.id().to_string());
    let subst = |t: &str| match &pid {
        Some(p) => t.replace("@PID@", p),
        None => t.to_string(),
    };
    let script = subst(
        &text
            .replace("@FIXTURE@", &fxs)
            .replace("@FIXTURES@", &fixture_dir().to_string_lossy()),
    );
    let (script, addrs) = addresses(&script, &fx)?;
    let command = subst(
        &header(&text, "command")
            .unwrap_or_else(|| "@FIXTURE@".into())
            .replace("@FIXTURE@", &fxs),
    );
    let mut cmd = Command::new(rtap_binary()?);
    cmd.arg("-e").arg(&script);
    // `# command: none` runs the script without `-c`; it must end by itself.
    if command != "none" {
        cmd.arg("-c").arg(&command);
    }
    if let Some(extra) = header(&text, "rtap-args") {
        cmd.args(subst(&extra).split_whitespace());
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    drop(background);
    let _ = std::fs::remove_file(&fx);
    let mut rendered = unaddress(normalize_json(&render_run(&out, &fx)), &addrs);
    if let Some(p) = &pid {
        let re = regex::Regex::new(&format!(r"\b{p}\b")).expect("valid regex");
        rendered = re.replace_all(&rendered, "@PID@").into_owned();
    }
    expect_file(&path.with_extension("out"), &rendered).map_err(Failed::from)
}

/// A process started before rtap, killed when the case ends.
struct Background(std::process::Child);

impl Background {
    fn spawn(command: &str) -> Result<Background, String> {
        let mut words = command.split_whitespace();
        let program = words.next().ok_or("empty `# background:` command")?;
        let child = Command::new(program)
            .args(words)
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start `{command}`: {e}"))?;
        Ok(Background(child))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--json` records carry pids and times that change from run to run.
fn normalize_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !line.starts_with('{') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = ["\"pid\":", "\"tid\":", "\"timestamp_ns\":"]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| i + k.len()))
            .min()
        {
            out.push_str(&rest[..i]);
            let digits = rest[i..].bytes().take_while(u8::is_ascii_digit).count();
            out.push('N');
            rest = &rest[i + digits..];
        }
        out.push_str(rest);
    }
    out
}
