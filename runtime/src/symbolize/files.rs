//! What the symbolizer reads from the system: `/proc/PID/maps`, and the ELF dynamic
//! section and program headers of the files it names.

use std::path::{Path, PathBuf};

/// One file-backed line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Segment {
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}
/// File-backed mappings of a live process, `None` once it is gone.
pub(super) fn read_maps(pid: u32) -> Option<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(parse_maps(&text))
}

pub(super) fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let _perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let _dev = f.next()?;
            let _inode = f.next()?;
            let path = f.collect::<Vec<_>>().join(" ");
            if !path.starts_with('/') {
                return None;
            }
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset,
                path: PathBuf::from(path.trim_end_matches(" (deleted)")),
            })
        })
        .collect()
}

/// Where the dynamic loader looks after a file's own RUNPATH (Debian's multiarch first).
const LIBRARY_DIRS: [&str; 6] = [
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/lib64",
    "/usr/lib",
    "/lib",
];

/// Adds the libraries `file` needs (`DT_NEEDED`, found through its RUNPATH/RPATH and
/// the standard directories), and theirs, to `out`.
pub(super) fn needed_libraries(file: &Path, out: &mut Vec<PathBuf>) {
    let mut todo = vec![file.to_path_buf()];
    while let Some(f) = todo.pop() {
        let Ok(data) = std::fs::read(&f) else {
            continue;
        };
        let (needed, runpath) = dynamic_names(&data);
        let origin = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let dirs: Vec<PathBuf> = runpath
            .iter()
            .flat_map(|r| r.split(':'))
            .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy())))
            .chain(LIBRARY_DIRS.iter().map(PathBuf::from))
            .collect();
        for name in needed {
            let found = dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| p.exists())
                .and_then(|p| p.canonicalize().ok());
            if let Some(p) = found {
                if !out.contains(&p) {
                    out.push(p.clone());
                    todo.push(p);
                }
            }
        }
    }
}

/// The `PT_LOAD` segments of an ELF file.
pub(super) fn load_segments(data: &[u8]) -> Vec<Segment> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let Ok(file) = ElfFile64::<object::Endianness>::parse(data) else {
        return Vec::new();
    };
    let endian = file.endian();
    file.elf_program_headers()
        .iter()
        .filter(|p| p.p_type(endian) == object::elf::PT_LOAD)
        .map(|p| Segment {
            offset: p.p_offset(endian),
            vaddr: p.p_vaddr(endian),
            filesz: p.p_filesz(endian),
            memsz: p.p_memsz(endian),
        })
        .collect()
}

/// The `DT_NEEDED` names and the RUNPATH (or RPATH) of an ELF file.
fn dynamic_names(data: &[u8]) -> (Vec<String>, Option<String>) {
    use object::elf::{DT_NEEDED, DT_RPATH, DT_RUNPATH};
    use object::read::elf::{Dyn, ElfFile64};
    let mut needed = Vec::new();
    let mut runpath = None;
    let Ok(file) = ElfFile64::<object::Endianness>::parse(data) else {
        return (needed, runpath);
    };
    let endian = file.endian();
    let sections = file.elf_section_table();
    let Ok(Some((dyns, link))) = sections.dynamic(endian, data) else {
        return (needed, runpath);
    };
    let Ok(strings) = sections.strings(endian, data, link) else {
        return (needed, runpath);
    };
    for d in dyns {
        let Ok(name) = d.string(endian, strings) else {
            continue;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match Some(d.tag(endian)) {
            Some(DT_NEEDED) => needed.push(name),
            Some(DT_RUNPATH) => runpath = Some(name),
            Some(DT_RPATH) if runpath.is_none() => runpath = Some(name),
            _ => {}
        }
    }
    (needed, runpath)
}
