//! The pipeline in one place: text → AST → checked program → resolved program → BPF object.
//! The CLI calls this so that it never handles the AST itself.

use crate::bpf::{self, CodegenOptions};
use crate::dwarf::Cache;
use crate::object::BpfObject;
use rtap_lang::diag::Diagnostic;
use rtap_lang::span::{FileId, SourceMap};
use rtap_lang::ScriptArgs;
use std::time::{Duration, Instant};

/// Where to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `-p1`: the parsed script in canonical form.
    Parse,
    /// `-p2`: the checked program with inferred types.
    Check,
    /// Everything, up to the BPF object.
    Codegen,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub codegen: CodegenOptions,
}

#[derive(Debug)]
pub enum Output {
    Text(String),
    /// Boxed: an object is large, and outputs move around by value.
    Object(Box<BpfObject>),
}

/// How long each pass took, for `-v`.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// (pass number, what it did, time taken).
    pub passes: Vec<(u8, String, Duration)>,
}

impl Timings {
    fn pass(&mut self, n: u8, what: String, since: Instant) {
        self.passes.push((n, what, since.elapsed()));
    }
}

/// Runs the pipeline up to `stage`. Returns the output and the warnings, or every error.
pub fn compile(
    sources: &SourceMap,
    file: FileId,
    args: &[String],
    stage: Stage,
    opts: &Options,
) -> Result<(Output, Vec<Diagnostic>), Vec<Diagnostic>> {
    compile_timed(sources, file, args, stage, opts, &mut Timings::default())
}

/// [`compile`], recording the time of each pass.
pub fn compile_timed(
    sources: &SourceMap,
    file: FileId,
    args: &[String],
    stage: Stage,
    opts: &Options,
    timings: &mut Timings,
) -> Result<(Output, Vec<Diagnostic>), Vec<Diagnostic>> {
    let t = Instant::now();
    let script = rtap_lang::parse(sources, file, &ScriptArgs(args.to_vec()))?;
    timings.pass(1, "parsed user script".into(), t);
    if stage == Stage::Parse {
        return Ok((Output::Text(rtap_lang::pretty::script(&script)), Vec::new()));
    }
    let t = Instant::now();
    let (program, diags) = rtap_lang::check(&script, sources);
    let (errors, mut warnings): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.is_error());
    let Some(program) = program.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    if stage == Stage::Check {
        return Ok((Output::Text(rtap_lang::pretty::program(&program)), warnings));
    }
    let mut cache = Cache::default();
    let resolved = crate::resolve::resolve(&program, sources, &mut cache)?;
    timings.pass(
        2,
        format!(
            "analyzed script: {} probe sites, {} functions, {} globals",
            resolved.probes.len(),
            program.functions.len(),
            program.globals.len()
        ),
        t,
    );
    let t = Instant::now();
    let mut obj = bpf::codegen(&resolved, sources, &opts.codegen).map_err(|mut e| {
        e.append(&mut warnings);
        e
    })?;
    warnings.append(&mut obj.host.warnings);
    let insns: usize = obj.programs.iter().map(|p| p.insns.len()).sum();
    timings.pass(
        3,
        format!(
            "translated to BPF: {} programs, {insns} instructions, {} user-space handlers",
            obj.programs.len(),
            obj.host.handlers.len()
        ),
        t,
    );
    Ok((Output::Object(Box::new(obj)), warnings))
}

/// `-l`/`-L`: the lines for a probe point, or the rendered reason it is invalid.
pub fn list(pp: &str, with_vars: bool) -> Result<Vec<String>, String> {
    let points = crate::list::parse_points(pp)?;
    crate::list::list(&points, with_vars, &mut Cache::default())
        .map_err(|e| format!("error: {e}\n"))
}

/// The listing as a JSON array of `{probe, vars: [{name, type}]}` objects.
pub fn listing_json(lines: &[String]) -> String {
    let items: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            let (probe, vars) = split_listing(line);
            let vars: Vec<_> = vars
                .into_iter()
                .map(|(name, ty)| serde_json::json!({ "name": name, "type": ty }))
                .collect();
            serde_json::json!({ "probe": probe, "vars": vars })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// Splits `PP $a:int $b:struct msg*` into the probe point and its variables; types may
/// contain spaces, so a variable starts only at ` $`.
fn split_listing(line: &str) -> (&str, Vec<(&str, &str)>) {
    let mut parts = line.split(" $");
    let probe = parts.next().unwrap_or("").trim_end();
    let vars = parts
        .map(|v| v.split_once(':').unwrap_or((v, "")))
        .collect();
    (probe, vars)
}
