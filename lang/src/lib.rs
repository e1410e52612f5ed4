//! The rtap language: parse SystemTap scripts and check them into a typed program.
//! It knows nothing of DWARF or BPF.

pub mod ast;
pub mod builtins;
mod check;
pub mod diag;
pub mod hir;
mod parse;
mod preproc;
pub mod pretty;
pub mod printf;
pub mod span;
pub mod testing;

use diag::Diagnostic;
use span::{FileId, SourceMap};

/// `$1`.. / `@1`.. values from the command line.
#[derive(Clone, Debug, Default)]
pub struct ScriptArgs(pub Vec<String>);

/// Parses one file (already added to `sources`): runs the preprocessor
/// (`%( %? %: %)`, `@define` macros) and `$N`/`@N` substitution first.
pub fn parse(
    sources: &SourceMap,
    file: FileId,
    args: &ScriptArgs,
) -> Result<ast::Script, Vec<Diagnostic>> {
    with_stack(|| {
        let text = &sources.file(file).text;
        let expanded = preproc::expand(text, file, &args.0)?;
        parse::parse_script(&expanded)
    })
}

/// Stack for the recursive phases: nesting is capped at [`preproc::MAX_NESTING`],
/// but unoptimized builds use large frames, so do not rely on the caller's stack.
const STACK_SIZE: usize = 256 << 20;

pub(crate) fn with_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("rtap-lang".to_string())
            .stack_size(STACK_SIZE)
            .spawn_scoped(s, f)
            .expect("spawning the parser thread");
        handle
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Name resolution, type inference and checks. Returns all errors at once, and warnings.
pub fn check(script: &ast::Script, sources: &SourceMap) -> (Option<hir::Program>, Vec<Diagnostic>) {
    with_stack(|| check::check(script, sources))
}
