//! Compiles every C fixture with `gcc -g` at -O0 and -O2 into OUT_DIR.
//!
//! `libNAME.c` becomes the shared library `libNAME-O0.so`/`libNAME-O2.so`; other files
//! become executables. A `/* cflags: … */` line adds compiler flags, and a
//! `/* links: libNAME */` line links the executable with that library (same level,
//! found at run time through an RPATH to OUT_DIR).

use std::path::Path;
use std::process::Command;

/// The text after `/* KEY:` on a line of the source, up to `*/`.
fn header(src: &str, key: &str) -> Option<String> {
    let tag = format!("/* {key}:");
    src.lines()
        .find_map(|l| l.trim().strip_prefix(&tag))
        .map(|rest| rest.trim_end_matches("*/").trim().to_string())
}

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = Path::new("fixtures");
    println!("cargo:rerun-if-changed=fixtures");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    // Libraries first: executables link against them.
    entries.sort_by_key(|p| {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        (!stem.starts_with("lib"), stem)
    });
    for src in entries {
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&src).expect("fixture is readable");
        let cflags = header(&text, "cflags").unwrap_or_default();
        let library = stem.starts_with("lib");
        for opt in ["-O0", "-O2"] {
            let mut cmd = Command::new("gcc");
            cmd.args(["-g", opt, "-pthread"]);
            cmd.args(cflags.split_whitespace());
            let bin = if library {
                cmd.args(["-shared", "-fPIC"]);
                Path::new(&out).join(format!("{stem}{opt}.so"))
            } else {
                Path::new(&out).join(format!("{stem}{opt}"))
            };
            cmd.arg("-o").arg(&bin).arg(&src);
            if let Some(lib) = header(&text, "links") {
                let name = lib.trim_start_matches("lib");
                cmd.arg(format!("-L{out}"))
                    .arg(format!("-l:lib{name}{opt}.so"))
                    .arg(format!("-Wl,-rpath,{out}"));
            }
            let status = cmd
                .status()
                .expect("gcc must be installed to build the test fixtures");
            assert!(status.success(), "gcc failed on {}", src.display());
        }
    }
    println!("cargo:rustc-env=RTAP_FIXTURES={out}");
}
