//! ELF facts that need no debug info: segments, entry point, SDT notes, PLT stubs, needed libraries.

use super::plt::{plt_stubs, PltStub};
use super::sdt::{markers, Marker};
use super::DwarfError;
use object::read::elf::{Dyn, ElfFile64, FileHeader};
use object::{elf, Endianness, Object, ObjectSection, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What probe points other than `.function` need from one ELF file.
#[derive(Debug)]
pub struct ElfFacts {
    /// Canonical absolute path.
    pub path: PathBuf,
    /// `e_entry`: where `process("PATH").begin` attaches.
    pub entry: u64,
    /// `ET_EXEC` or `ET_DYN` with a `PT_INTERP`: something `exec` can run.
    pub executable: bool,
    /// SDT markers from `.note.stapsdt`, addresses adjusted with `.stapsdt.base`.
    pub markers: Vec<Marker>,
    /// PLT stubs, named by their relocation's symbol.
    pub plt: Vec<PltStub>,
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, or `DT_RPATH` without it: directories with `$ORIGIN` expanded.
    pub runpath: Vec<PathBuf>,
    /// PT_LOAD segments: (vaddr, file offset, file size).
    segments: Vec<(u64, u64, u64)>,
}

fn bad_elf(path: &Path, e: impl ToString) -> DwarfError {
    DwarfError::BadElf {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl ElfFacts {
    /// Read `path` (canonicalized); no debug info is needed.
    pub fn open(path: &Path) -> Result<ElfFacts, DwarfError> {
        let path = std::fs::canonicalize(path)
            .map_err(|_| DwarfError::NotFound(path.display().to_string()))?;
        let file = std::fs::File::open(&path)
            .map_err(|_| DwarfError::NotFound(path.display().to_string()))?;
        // SAFETY: read-only mapping; a file changed under us yields bad data, never UB in
        // code that reads through bounds-checked slices.
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| bad_elf(&path, e))?;
        let elf = ElfFile64::<Endianness>::parse(&*data).map_err(|e| bad_elf(&path, e))?;
        let endian = elf.endian();
        let header = elf.elf_header();
        let segments: Vec<(u64, u64, u64)> = elf
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (s.address(), off, size)
            })
            .collect();
        let has_interp = elf
            .elf_program_headers()
            .iter()
            .any(|p| object::read::elf::ProgramHeader::p_type(p, endian) == elf::PT_INTERP);
        let e_type = header.e_type(endian);
        let base = elf.section_by_name(".stapsdt.base").map(|s| s.address());
        let symbols = || {
            let mut m = HashMap::new();
            for s in elf.symbols().chain(elf.dynamic_symbols()) {
                if let (Ok(n), true) = (s.name(), s.is_definition()) {
                    m.entry(n.to_string()).or_insert(s.address());
                }
            }
            m
        };
        let markers = markers(&elf, base, symbols).map_err(|e| bad_elf(&path, e))?;
        let plt = plt_stubs(&elf);
        let (needed, runpath) = dynamic(&elf, &path).map_err(|e| bad_elf(&path, e))?;
        Ok(ElfFacts {
            entry: elf.entry(),
            executable: e_type == elf::ET_EXEC || (e_type == elf::ET_DYN && has_interp),
            markers,
            plt,
            needed,
            runpath,
            segments,
            path,
        })
    }

    /// File offset of a link-time virtual address, through the containing PT_LOAD.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|&&(addr, _, size)| vaddr >= addr && vaddr < addr + size)
            .map(|&(addr, off, _)| vaddr - addr + off)
    }
}

/// `DT_NEEDED` names and the run path (`$ORIGIN` expanded).
fn dynamic(
    elf: &ElfFile64<'_, Endianness>,
    path: &Path,
) -> object::Result<(Vec<String>, Vec<PathBuf>)> {
    let endian = elf.endian();
    let sections = elf.elf_section_table();
    let Some((dyns, link)) = sections.dynamic(endian, elf.data())? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let strings = sections.strings(endian, elf.data(), link)?;
    let mut needed = Vec::new();
    let (mut runpath, mut rpath) = (None, None);
    for d in dyns {
        let tag = d.d_tag(endian);
        let s = || -> object::Result<String> {
            let s = d.string(endian, strings)?;
            Ok(String::from_utf8_lossy(s).into_owned())
        };
        match tag {
            elf::DT_NEEDED => needed.push(s()?),
            elf::DT_RUNPATH => runpath = Some(s()?),
            elf::DT_RPATH => rpath = Some(s()?),
            _ => {}
        }
    }
    let origin = path
        .parent()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    let dirs = runpath
        .or(rpath)
        .map(|p| {
            p.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)))
                .collect()
        })
        .unwrap_or_default();
    Ok((needed, dirs))
}
