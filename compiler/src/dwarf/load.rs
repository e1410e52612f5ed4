//! Loading one ELF: mapped with memmap2, DWARF sections (in-file or separate), CFI, segments, symbols.

use super::bytes::Bytes;
use super::{DwarfError, R};
use gimli::{BaseAddresses, RunTimeEndian};
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub(crate) use super::symtab::Symbol;

/// Everything read from the file(s); no lifetimes, sections are owned.
pub(crate) struct Loaded {
    /// Shared with the lazily parsed units of the index.
    pub dwarf: Arc<gimli::Dwarf<R>>,
    pub eh_frame: Option<(gimli::EhFrame<R>, BaseAddresses)>,
    pub debug_frame: Option<gimli::DebugFrame<R>>,
    eh_fdes: OnceLock<Vec<(u64, u64, usize)>>,
    debug_fdes: OnceLock<Vec<(u64, u64, usize)>>,
    /// PT_LOAD segments: (vaddr, file offset, file size).
    segments: Vec<(u64, u64, u64)>,
    pub symbols: Vec<Symbol>,
    /// Set when no debug info was found: functions then come from the symbol table
    /// alone (as SystemTap lists them, without variables), and target variables fail
    /// with this error.
    pub no_debug: Option<DwarfError>,
}

fn map(path: &Path) -> Result<memmap2::Mmap, DwarfError> {
    let file =
        std::fs::File::open(path).map_err(|_| DwarfError::NotFound(path.display().to_string()))?;
    // SAFETY: the mapping is read-only; a file changed under us yields bad data, not UB in Rust
    // code that only reads bytes through bounds-checked slices.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| DwarfError::BadElf {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn bad_elf(path: &Path, e: impl ToString) -> DwarfError {
    DwarfError::BadElf {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One file: its mapping and what `object` parsed of it.
#[derive(Clone, Copy)]
struct Mapped<'a> {
    map: &'a Arc<memmap2::Mmap>,
    file: &'a object::File<'a>,
}

fn section_reader(m: Mapped<'_>, name: &str, endian: RunTimeEndian) -> Option<R> {
    let section = m.file.section_by_name(name)?;
    Some(R::new(section_bytes(m, &section)?, endian))
}

/// A section's bytes: read in place when stored plain, else inflated.
fn section_bytes(m: Mapped<'_>, section: &object::Section<'_, '_>) -> Option<Bytes> {
    if let Ok(range) = section.compressed_file_range() {
        if range.format == object::CompressionFormat::None {
            let start = usize::try_from(range.offset).ok()?;
            let len = usize::try_from(range.uncompressed_size).ok()?;
            if let Some(b) = Bytes::mapped(m.map, start, len) {
                return Some(b);
            }
        }
    }
    if let Some(bytes) = section.compressed_data().ok().and_then(|c| inflate(&c)) {
        return Some(Bytes::Owned(bytes));
    }
    let data = section.uncompressed_data().ok()?;
    Some(Bytes::Owned(Arc::from(&*data)))
}

/// A zlib-compressed section inflated straight into its shared buffer: no second copy.
fn inflate(c: &object::CompressedData<'_>) -> Option<Arc<[u8]>> {
    if c.format != object::CompressionFormat::Zlib {
        return None;
    }
    let size = usize::try_from(c.uncompressed_size).ok()?;
    let mut out: Arc<[u8]> = std::iter::repeat_n(0u8, size).collect();
    let buf = Arc::get_mut(&mut out)?;
    let mut z = flate2::Decompress::new(true);
    let status = z
        .decompress(c.data, buf, flate2::FlushDecompress::Finish)
        .ok()?;
    (status == flate2::Status::StreamEnd && z.total_out() == size as u64).then_some(out)
}

/// Every DWARF section gimli asks for, decompressed on all cores: inflating is most of
/// the time spent opening a distribution's compressed debug file.
fn dwarf_sections(m: Mapped<'_>, endian: RunTimeEndian) -> HashMap<&'static str, R> {
    let mut names: Vec<(&'static str, u64)> = Vec::new();
    for id in ALL_SECTIONS {
        if let Some(s) = m.file.section_by_name(id.name()) {
            let size = s
                .compressed_file_range()
                .map_or(s.size(), |r| r.compressed_size);
            names.push((id.name(), size));
        }
    }
    // Largest first, each taken by whichever thread is free.
    names.sort_by_key(|&(_, size)| std::cmp::Reverse(size));
    let readers = super::index::parallel(names.len(), |i| section_reader(m, names[i].0, endian));
    names
        .iter()
        .zip(readers)
        .filter_map(|(&(name, _), r)| Some((name, r?)))
        .collect()
}

/// The sections `gimli::Dwarf::load` reads.
const ALL_SECTIONS: [gimli::SectionId; 13] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugLoc,
    gimli::SectionId::DebugLocLists,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
    gimli::SectionId::DebugTypes,
];

/// Where separate debug info may live, in the order GDB and SystemTap try.
fn debug_candidates(path: &Path, file: &object::File<'_>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(id) = file.build_id().ok().flatten().filter(|id| id.len() > 1) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        out.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        )));
    }
    if let Ok(Some((name, _crc))) = file.gnu_debuglink() {
        let name = String::from_utf8_lossy(name).into_owned();
        let dir = path.parent().unwrap_or(Path::new("/"));
        out.push(dir.join(&name));
        out.push(dir.join(".debug").join(&name));
        let rel = dir.strip_prefix("/").unwrap_or(dir);
        out.push(Path::new("/usr/lib/debug").join(rel).join(&name));
    }
    out
}

fn has_debug_info(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_info")
        .is_some_and(|s| s.size() > 0 && s.file_range().is_some())
}

impl Loaded {
    pub fn open(path: &Path) -> Result<Loaded, DwarfError> {
        let data = Arc::new(map(path)?);
        let file = object::File::parse(&**data).map_err(|e| bad_elf(path, e))?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };

        // The debug info may sit in a separate file; addresses still come from `file`.
        let mut separate = None;
        let mut no_debug = None;
        if !has_debug_info(&file) {
            let candidates = debug_candidates(path, &file);
            for c in &candidates {
                if let Ok(m) = map(c) {
                    separate = Some(Arc::new(m));
                    break;
                }
            }
            if separate.is_none() {
                let mut looked = vec![format!("`{}`", path.display())];
                looked.extend(candidates.iter().map(|c| format!("`{}`", c.display())));
                no_debug = Some(DwarfError::NoDebugInfo {
                    path: path.display().to_string(),
                    looked: looked.join(", "),
                });
            }
        }
        let debug_file = match &separate {
            Some(m) => Some(object::File::parse(&***m).map_err(|e| bad_elf(path, e))?),
            None => None,
        };
        let dfile = debug_file.as_ref().unwrap_or(&file);
        let main = Mapped {
            map: &data,
            file: &file,
        };
        let debug = Mapped {
            map: separate.as_ref().unwrap_or(&data),
            file: dfile,
        };
        if no_debug.is_none() && !has_debug_info(dfile) {
            no_debug = Some(DwarfError::NoDebugInfo {
                path: path.display().to_string(),
                looked: format!("`{}`", path.display()),
            });
        }

        let empty = R::new(Bytes::Owned(Arc::from(&[][..])), endian);
        let mut sections = dwarf_sections(debug, endian);
        let dwarf = gimli::Dwarf::load(|id| -> Result<R, std::convert::Infallible> {
            Ok(sections.remove(id.name()).unwrap_or_else(|| empty.clone()))
        })
        .unwrap_or_else(|e| match e {});

        let eh_frame = file.section_by_name(".eh_frame").and_then(|s| {
            let bytes = section_bytes(main, &s)?;
            let mut bases = BaseAddresses::default().set_eh_frame(s.address());
            if let Some(text) = file.section_by_name(".text") {
                bases = bases.set_text(text.address());
            }
            let mut frame = gimli::EhFrame::from(R::new(bytes, endian));
            frame.set_address_size(8);
            Some((frame, bases))
        });
        let debug_frame = section_reader(debug, ".debug_frame", endian)
            .or_else(|| section_reader(main, ".debug_frame", endian))
            .map(|r| {
                let mut f = gimli::DebugFrame::from(r);
                f.set_address_size(8);
                f
            });

        let segments = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (s.address(), off, size)
            })
            .collect();

        let symbols = super::symtab::read(&data, separate.as_deref().map(|m| &**m));

        Ok(Loaded {
            dwarf: Arc::new(dwarf),
            eh_frame,
            debug_frame,
            eh_fdes: OnceLock::new(),
            debug_fdes: OnceLock::new(),
            segments,
            symbols,
            no_debug,
        })
    }

    /// File offset of a link-time virtual address, through the containing PT_LOAD.
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|&&(addr, _, size)| vaddr >= addr && vaddr < addr + size)
            .map(|&(addr, off, _)| vaddr - addr + off)
    }

    /// The CFA rule at `pc` as (DWARF register, offset).
    pub fn cfa_at(&self, pc: u64) -> Option<(u16, i64)> {
        if let Some((eh, bases)) = &self.eh_frame {
            let table = self.eh_fdes.get_or_init(|| fde_table(eh, bases));
            if let Some(cfa) = cfa_in(eh, bases, table, pc) {
                return Some(cfa);
            }
        }
        let df = self.debug_frame.as_ref()?;
        let bases = BaseAddresses::default();
        let table = self.debug_fdes.get_or_init(|| fde_table(df, &bases));
        cfa_in(df, &bases, table, pc)
    }
}

/// Every FDE of a frame section as (start, end, offset), sorted: one pass instead of a
/// linear scan per lookup.
fn fde_table<S: gimli::UnwindSection<R>>(
    section: &S,
    bases: &BaseAddresses,
) -> Vec<(u64, u64, usize)>
where
    S::Offset: gimli::UnwindOffset<usize>,
{
    let mut out = Vec::new();
    let mut cies = std::collections::HashMap::new();
    let mut entries = section.entries(bases);
    while let Ok(Some(entry)) = entries.next() {
        let gimli::CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let fde = partial.parse(|s, b, o| {
            let key = gimli::UnwindOffset::into(o);
            if let Some(c) = cies.get(&key) {
                return Ok(std::clone::Clone::clone(c));
            }
            let c = s.cie_from_offset(b, o)?;
            cies.insert(key, c.clone());
            Ok(c)
        });
        if let Ok(fde) = fde {
            let start = fde.initial_address();
            out.push((start, start + fde.len(), fde.offset()));
        }
    }
    out.sort_unstable();
    out
}

fn cfa_in<S: gimli::UnwindSection<R>>(
    section: &S,
    bases: &BaseAddresses,
    table: &[(u64, u64, usize)],
    pc: u64,
) -> Option<(u16, i64)>
where
    S::Offset: gimli::UnwindOffset<usize> + From<usize>,
{
    use gimli::CfaRule;
    let i = table
        .partition_point(|&(start, _, _)| start <= pc)
        .checked_sub(1)?;
    let (_, end, offset) = table[i];
    if pc >= end {
        return None;
    }
    let fde = section
        .fde_from_offset(bases, S::Offset::from(offset), S::cie_from_offset)
        .ok()?;
    let mut ctx = gimli::UnwindContext::new();
    let row = fde
        .unwind_info_for_address(section, bases, &mut ctx, pc)
        .ok()?;
    match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => Some((register.0, *offset)),
        CfaRule::Expression(_) => None,
    }
}
