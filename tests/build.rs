//! Compiles every C fixture with `gcc -g` at -O0 and -O2 into OUT_DIR.

use std::path::Path;
use std::process::Command;

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
    entries.sort();
    for src in entries {
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        for opt in ["-O0", "-O2"] {
            let bin = Path::new(&out).join(format!("{stem}{opt}"));
            let status = Command::new("gcc")
                .args(["-g", opt, "-pthread", "-o"])
                .arg(&bin)
                .arg(&src)
                .status()
                .expect("gcc must be installed to build the test fixtures");
            assert!(status.success(), "gcc failed on {}", src.display());
        }
    }
    println!("cargo:rustc-env=RTAP_FIXTURES={out}");
}
