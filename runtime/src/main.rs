//! The `rtap` command line; the only place that uses anyhow.

use anyhow::{bail, Context, Result};
use clap::Parser;
use rtap_compiler::driver::{self, Stage};
use rtap_lang::span::{SourceFile, SourceMap};
use rtap_runtime::attach::UprobeMode;
use rtap_runtime::session::{self, SessionOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A SystemTap-style tracer: compiles a probe script to eBPF and runs it.
#[derive(Parser, Debug)]
#[command(name = "rtap", version, about, disable_help_subcommand = true)]
struct Cli {
    /// Run this script text instead of a script file.
    #[arg(short = 'e', value_name = "SCRIPT")]
    script_text: Option<String>,
    /// List matching probe points.
    #[arg(short = 'l', value_name = "PROBE", conflicts_with = "list_vars")]
    list: Option<String>,
    /// List matching probe points with their variables.
    #[arg(short = 'L', value_name = "PROBE")]
    list_vars: Option<String>,
    /// Start CMD with the probes armed; stop when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    command: Option<String>,
    /// Set `target()` to PID and trace only that process.
    #[arg(short = 'x', value_name = "PID")]
    pid: Option<u32>,
    /// Write output to FILE.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Stop after SECS seconds.
    #[arg(short = 'T', value_name = "SECS")]
    timeout: Option<f64>,
    /// Stop after pass N: 1 parse, 2 check, 3 code generation (prints the listing),
    /// 4 load every program into the kernel, which verifies it, without attaching.
    /// With `-o FILE`, passes 3 and 4 write the artifact to FILE: the `-p3` listing,
    /// then each program's instructions as the kernel reads them, 8 bytes in hex a line.
    #[arg(short = 'p', value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    pass: Option<u8>,
    /// Set a limit: MAXSTRINGLEN, MAXMAPENTRIES, MAXACTION, MAXERRORS, MAXSKIPPED.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    defines: Vec<String>,
    /// Print listings as JSON; when running, one JSON object per printed record.
    #[arg(long)]
    json: bool,
    /// Report each pass and its time on stderr.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Suppress warnings.
    #[arg(short = 'w')]
    no_warnings: bool,
    /// How uprobes attach: `multi` uses one uprobe_multi link per probe (Linux 6.6+),
    /// `perf` one perf event per site, `auto` the first when the kernel has it.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = UprobeMode::Auto)]
    uprobe_attach: UprobeMode,
    /// The script file (`-` for stdin), then script arguments; with `-e`, all are
    /// arguments. Options may follow the script, as with SystemTap; put `--` before
    /// arguments that start with `-`.
    rest: Vec<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each once: many messages already end with their cause.
fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.ends_with(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn run(cli: Cli) -> Result<u8> {
    if let Some(pp) = cli.list.as_deref().or(cli.list_vars.as_deref()) {
        return list(pp, cli.list_vars.is_some(), cli.json);
    }
    let mut opts = driver::Options::default();
    let mut max_errors = 0;
    let mut max_skipped = 100;
    for d in &cli.defines {
        let (name, value) = d
            .split_once('=')
            .with_context(|| format!("`-D {d}` needs the form NAME=VALUE"))?;
        let v: u64 = value
            .parse()
            .with_context(|| format!("`-D {name}` needs a number, not `{value}`"))?;
        match name {
            "MAXSTRINGLEN" => opts.codegen.max_string_len = v as u32,
            "MAXMAPENTRIES" => opts.codegen.max_map_entries = v as u32,
            "MAXACTION" => opts.codegen.max_action = v as u32,
            "MAXERRORS" => max_errors = v,
            "MAXSKIPPED" => max_skipped = v,
            _ => bail!("unknown limit `{name}` in `-D`"),
        }
    }

    let (name, text, args) = match cli.script_text {
        Some(t) => ("<input>".to_string(), t, cli.rest),
        None => {
            let mut rest = cli.rest.into_iter();
            let Some(path) = rest.next() else {
                bail!("no script given: pass a script file, `-` for stdin, or `-e SCRIPT`");
            };
            let text = if path == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the script from stdin")?;
                s
            } else {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read script `{path}`"))?
            };
            (path, text, rest.collect())
        }
    };
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new(name, text));
    let stage = match cli.pass {
        Some(1) => Stage::Parse,
        Some(2) => Stage::Check,
        Some(_) => Stage::Codegen,
        None => Stage::Codegen,
    };
    let mut timings = driver::Timings::default();
    let compiled = driver::compile_timed(&sources, file, &args, stage, &opts, &mut timings);
    if cli.verbose > 0 {
        for (n, what, took) in &timings.passes {
            eprintln!("Pass {n}: {what} in {:.3} ms", took.as_secs_f64() * 1000.0);
        }
    }
    let (out, warnings) = match compiled {
        Ok(v) => v,
        Err(diags) => {
            eprint!("{}", rtap_lang::diag::render(&sources, &diags));
            return Ok(1);
        }
    };
    if !warnings.is_empty() && !cli.no_warnings {
        eprint!("{}", rtap_lang::diag::render(&sources, &warnings));
    }
    let obj = match out {
        driver::Output::Text(t) => {
            print!("{t}");
            return Ok(0);
        }
        driver::Output::Object(obj) => *obj,
    };
    if let Some(pass @ (3 | 4)) = cli.pass {
        if pass == 4 {
            verify(&obj)?;
        }
        match &cli.output {
            Some(path) => std::fs::write(path, artifact(&obj))
                .with_context(|| format!("cannot write `{}`", path.display()))?,
            None if pass == 3 => print!("{}", rtap_compiler::bpf::disassemble(&obj)),
            None => {}
        }
        return Ok(0);
    }
    let session = SessionOptions {
        command: cli.command,
        pid: cli.pid,
        output: cli.output,
        timeout: cli.timeout.map(Duration::from_secs_f64),
        json: cli.json,
        max_errors,
        max_skipped,
        uprobe_mode: cli.uprobe_attach,
        verbose: cli.verbose > 0,
    };
    if cli.verbose > 0 {
        eprintln!("Pass 5: starting run");
    }
    let started = std::time::Instant::now();
    let outcome = session::run(&obj, &session)?;
    if cli.verbose > 0 {
        eprintln!(
            "Pass 5: run completed in {:.3} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(outcome.exit_code() as u8)
}

/// Loads every program, so the kernel verifies it, and closes it again.
fn verify(obj: &rtap_compiler::object::BpfObject) -> Result<()> {
    let maps = rtap_runtime::kernel::create_maps(obj)?;
    for p in &obj.programs {
        rtap_runtime::kernel::load_program(p, &maps)?;
    }
    Ok(())
}

/// The compiled object as a file: the listing, then the raw instructions of each program.
fn artifact(obj: &rtap_compiler::object::BpfObject) -> String {
    use std::fmt::Write;
    let mut out = rtap_compiler::bpf::disassemble(obj);
    for p in &obj.programs {
        let _ = writeln!(out, "\nraw {} {} instructions", p.name, p.insns.len());
        for i in &p.insns {
            let hex: String = i.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(out, "{hex}");
        }
    }
    out
}

fn list(pp: &str, with_vars: bool, json: bool) -> Result<u8> {
    let lines = match driver::list(pp, with_vars) {
        Ok(lines) => lines,
        Err(e) => {
            eprint!("{e}");
            return Ok(1);
        }
    };
    // One write for the whole listing: a large library lists thousands of lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if json {
        writeln!(out, "{}", driver::listing_json(&lines))
    } else {
        lines.iter().try_for_each(|l| writeln!(out, "{l}"))
    }
    .and_then(|()| out.flush());
    // A reader that stops early (`| head`) is not an error.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    // SystemTap exits 1 when nothing matches.
    Ok(u8::from(lines.is_empty()))
}
