//! `.library("NAME")` by name: the program's needed libraries, found as ld.so finds them
//! (run path, `LD_LIBRARY_PATH`, `/etc/ld.so.cache`, the default directories).

use crate::dwarf::{DwarfError, ElfFacts};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

const DEFAULT_DIRS: [&str; 4] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// `ld.so.cache` entries of 64-bit x86 libc6 libraries: `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64`.
const CACHE_FLAGS: i32 = 0x0303;
const CACHE_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";

/// soname → path, from `/etc/ld.so.cache` (the "new" format glibc writes since 2.32).
fn ld_cache(data: &[u8]) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let Some(start) = data
        .windows(CACHE_MAGIC.len())
        .position(|w| w == CACHE_MAGIC)
    else {
        return out;
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let Some(n) = u32_at(start + 20) else {
        return out;
    };
    // Offsets in entries count from the start of the new-format header.
    let string = |o: u32| -> Option<String> {
        let s = data.get(start + o as usize..)?;
        let end = s.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    for i in 0..n as usize {
        let e = start + 48 + i * 24;
        let (Some(flags), Some(key), Some(value)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8))
        else {
            break;
        };
        if flags as i32 != CACHE_FLAGS {
            continue;
        }
        if let (Some(k), Some(v)) = (string(key), string(value)) {
            out.entry(k).or_insert_with(|| PathBuf::from(v));
        }
    }
    out
}

/// Where ld.so would find `soname` for a program with `runpath`.
fn find(soname: &str, runpath: &[PathBuf], cache: &HashMap<String, PathBuf>) -> Option<PathBuf> {
    if soname.contains('/') {
        return Some(PathBuf::from(soname));
    }
    let env: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    runpath
        .iter()
        .chain(&env)
        .map(|d| d.join(soname))
        .find(|p| p.is_file())
        .or_else(|| cache.get(soname).filter(|p| p.is_file()).cloned())
        .or_else(|| {
            DEFAULT_DIRS
                .iter()
                .map(|d| Path::new(d).join(soname))
                .find(|p| p.is_file())
        })
}

/// The libraries `program` loads (breadth first, as ld.so does) whose soname or file
/// name matches the fnmatch pattern `name`.
pub(crate) fn needed_libraries(program: &Path, name: &str) -> Result<Vec<PathBuf>, DwarfError> {
    let pattern = glob::Pattern::new(name).map_err(|e| DwarfError::BadPattern {
        pattern: name.to_string(),
        reason: e.msg.to_string(),
    })?;
    let cache = std::fs::read("/etc/ld.so.cache")
        .map(|d| ld_cache(&d))
        .unwrap_or_default();
    let root = ElfFacts::open(program)?;
    let mut queue: VecDeque<(String, Vec<PathBuf>)> = root
        .needed
        .iter()
        .map(|n| (n.clone(), root.runpath.clone()))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while let Some((soname, runpath)) = queue.pop_front() {
        if !seen.insert(soname.clone()) {
            continue;
        }
        let Some(path) = find(&soname, &runpath, &cache) else {
            continue;
        };
        let canon = std::fs::canonicalize(&path).unwrap_or(path);
        let file = canon.file_name().map(|f| f.to_string_lossy().into_owned());
        if pattern.matches(&soname) || file.is_some_and(|f| pattern.matches(&f)) {
            out.push(canon.clone());
        }
        if let Ok(lib) = ElfFacts::open(&canon) {
            queue.extend(lib.needed.iter().map(|n| (n.clone(), lib.runpath.clone())));
        }
    }
    out.dedup();
    if out.is_empty() {
        return Err(DwarfError::NotFound(format!(
            "library `{name}` among the libraries of `{}`",
            root.path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libc_is_found_through_the_cache_or_default_dirs() {
        let libs = needed_libraries(Path::new("/bin/sh"), "libc.so*").unwrap();
        assert_eq!(libs.len(), 1);
        assert!(libs[0].is_absolute() && libs[0].to_string_lossy().contains("libc.so"));
        assert!(needed_libraries(Path::new("/bin/sh"), "libnothing.so").is_err());
    }

    #[test]
    fn cache_parser_reads_entries() {
        let Ok(data) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let cache = ld_cache(&data);
        assert!(cache.keys().any(|k| k.starts_with("libc.so")), "{cache:?}");
    }
}
