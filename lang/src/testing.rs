//! Case-test helpers: input text in, the text a case file expects out.

use crate::diag::render;
use crate::span::{SourceFile, SourceMap};
use crate::{parse, pretty, ScriptArgs};

/// `# args: a b` on the first line sets the command line arguments of a case.
fn case_args(input: &str) -> ScriptArgs {
    let first = input.lines().next().unwrap_or("");
    match first.strip_prefix("# args:") {
        Some(rest) => ScriptArgs(rest.split_whitespace().map(str::to_string).collect()),
        None => ScriptArgs::default(),
    }
}

/// `-p1` output of a script, or its rendered diagnostics. Also checks that the output parses back to itself.
pub fn run_parse_case(input: &str, name: &str) -> String {
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new(name, input));
    match parse(&sources, file, &case_args(input)) {
        Ok(script) => {
            let text = pretty::script(&script);
            let mut again = SourceMap::default();
            let f2 = again.add(SourceFile::new(format!("{name} (printed)"), text.clone()));
            match parse(&again, f2, &ScriptArgs::default()) {
                Ok(s2) if pretty::script(&s2) == text => text,
                Ok(s2) => format!(
                    "{text}\n# round trip changed the script:\n{}",
                    pretty::script(&s2)
                ),
                Err(d) => format!(
                    "{text}\n# printed script does not parse:\n{}",
                    render(&again, &d)
                ),
            }
        }
        Err(diags) => render(&sources, &diags),
    }
}

/// `-p2` output of a script, or its rendered diagnostics (warnings first when it checks).
pub fn run_check_case(input: &str, name: &str) -> String {
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new(name, input));
    let script = match parse(&sources, file, &case_args(input)) {
        Ok(s) => s,
        Err(diags) => return render(&sources, &diags),
    };
    let (program, diags) = crate::check(&script, &sources);
    let mut out = render(&sources, &diags);
    if let Some(p) = program {
        out.push_str(&pretty::program(&p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Runs every case under tests/cases/{parse,check} like the workspace runner does.
    #[test]
    fn cases() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases");
        let update = std::env::var_os("UPDATE_EXPECT").is_some();
        let mut failures = Vec::new();
        let mut count = 0;
        for (layer, run) in [
            ("parse", run_parse_case as fn(&str, &str) -> String),
            ("check", run_check_case),
        ] {
            let dir = root.join(layer);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rtap"))
                .collect();
            files.sort();
            for path in files {
                count += 1;
                let input = std::fs::read_to_string(&path).expect("read case");
                let name = format!("{}.rtap", path.file_stem().unwrap().to_string_lossy());
                let got = run(&input, &name);
                let out = path.with_extension("out");
                if update {
                    std::fs::write(&out, &got).expect("write expectation");
                    continue;
                }
                let want = std::fs::read_to_string(&out).unwrap_or_default();
                if got != want {
                    failures.push(format!(
                        "{}:\n--- want\n{want}--- got\n{got}",
                        path.display()
                    ));
                }
            }
        }
        assert!(count > 0, "no case files found");
        assert!(
            failures.is_empty(),
            "{} of {count} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
