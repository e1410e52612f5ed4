//! The host-layer case helper: a script's handlers run in the interpreter over
//! in-memory maps, without the kernel.

use super::{HostError, Interp, MemStore, Phase};
use rtap_compiler::driver::{compile, Options, Output, Stage};
use rtap_compiler::host::{HostHandler, HostWhen};
use rtap_lang::diag::render;
use rtap_lang::span::{SourceFile, SourceMap};

/// Runs the begin handlers, each timer handler once, then the end handlers (or the
/// error handlers after an error), and returns the compile warnings, what the
/// handlers printed and the errors.
pub fn run_host_case(text: &str, name: &str) -> String {
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new(name, text));
    let (obj, warnings) = match compile(&sources, file, &[], Stage::Codegen, &Options::default()) {
        Ok((Output::Object(obj), w)) => (*obj, w),
        Ok((Output::Text(t), _)) => return t,
        Err(d) => return render(&sources, &d),
    };
    let caps: Vec<u32> = obj.maps.iter().map(|m| m.max_entries).collect();
    let mut it = Interp::new(&obj, MemStore::new(&caps));
    it.init_globals();
    let mut out = if warnings.is_empty() {
        String::new()
    } else {
        render(&sources, &warnings)
    };
    let timers: Vec<&HostHandler> = obj
        .host
        .handlers
        .iter()
        .filter(|h| matches!(h.when, HostWhen::Timer { .. }))
        .collect();
    let begin = it.handlers(Phase::Begin);
    let mut failed = run(&mut it, begin, &mut out);
    if !failed && !it.exit_requested {
        failed = run(&mut it, timers, &mut out);
    }
    let last = if failed && !it.handlers(Phase::Error).is_empty() {
        Phase::Error
    } else {
        Phase::End
    };
    let last = it.handlers(last);
    run(&mut it, last, &mut out);
    out
}

/// Runs handlers in order until one fails; returns whether one did.
fn run(it: &mut Interp<'_, MemStore>, hs: Vec<&HostHandler>, out: &mut String) -> bool {
    for h in hs {
        let r = it.run(h);
        out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut it.out)));
        if let Err(HostError { message, location }) = r {
            out.push_str(&format!("ERROR: {message} near {location}\n"));
            return true;
        }
    }
    false
}
