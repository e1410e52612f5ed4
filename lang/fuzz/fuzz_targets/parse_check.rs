//! Fuzz target: preprocess, parse, check and print any text; nothing may panic, hang or overflow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtap_lang::diag::render;
use rtap_lang::span::{SourceFile, SourceMap};
use rtap_lang::{check, parse, pretty, ScriptArgs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new("fuzz.stp", text));
    // Two arguments, so `$1`/`@2` substitution is exercised too.
    let args = ScriptArgs(vec!["42".to_string(), "a \"b\"".to_string()]);
    let script = match parse(&sources, file, &args) {
        Ok(s) => s,
        Err(diags) => {
            render(&sources, &diags);
            return;
        }
    };
    // `-p1` output must parse again to the same text.
    let printed = pretty::script(&script);
    let mut again = SourceMap::default();
    let f2 = again.add(SourceFile::new("printed.stp", printed.clone()));
    match parse(&again, f2, &ScriptArgs::default()) {
        Ok(s2) => assert_eq!(
            pretty::script(&s2),
            printed,
            "round trip changed the script"
        ),
        Err(d) => panic!(
            "printed script does not parse:\n{printed}\n{}",
            render(&again, &d)
        ),
    }
    let (program, diags) = check(&script, &sources);
    render(&sources, &diags);
    if let Some(p) = program {
        pretty::program(&p);
    }
});
