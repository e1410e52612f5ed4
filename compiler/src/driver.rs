//! The pipeline in one place: text → AST → checked program → resolved program → BPF object.
//! The CLI calls this so that it never handles the AST itself.

use crate::bpf::{self, CodegenOptions};
use crate::dwarf::Cache;
use crate::object::BpfObject;
use rtap_lang::diag::Diagnostic;
use rtap_lang::span::{FileId, SourceMap};
use rtap_lang::ScriptArgs;

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
    Object(BpfObject),
}

/// Runs the pipeline up to `stage`. Returns the output and the warnings, or every error.
pub fn compile(
    sources: &SourceMap,
    file: FileId,
    args: &[String],
    stage: Stage,
    opts: &Options,
) -> Result<(Output, Vec<Diagnostic>), Vec<Diagnostic>> {
    let script = rtap_lang::parse(sources, file, &ScriptArgs(args.to_vec()))?;
    if stage == Stage::Parse {
        return Ok((Output::Text(rtap_lang::pretty::script(&script)), Vec::new()));
    }
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
    let obj = bpf::codegen(&resolved, sources, &opts.codegen).map_err(|mut e| {
        e.append(&mut warnings);
        e
    })?;
    Ok((Output::Object(obj), warnings))
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
