//! A unit's line table kept small: file names as borrowed strings, rows read again on demand.

// gimli's parsed header takes about 200 bytes a file: 12 MB for libc's 55,000 files.

use super::load::Loaded;
use super::scan::{Name, Strings};
use super::R;

/// One line-table row, enough for prologue analysis and a declaration fallback.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub address: u64,
    pub file: u64,
    pub line: u64,
    pub prologue_end: bool,
    pub end_sequence: bool,
}

/// A file entry: its name and its directory's, unread.
#[derive(Clone, Copy)]
struct FileRef {
    path: Option<Name>,
    dir: Option<Name>,
}

/// What is kept of a unit's line program.
pub(crate) struct Lines {
    files: Vec<FileRef>,
    /// Where to parse the program again, with the unit's name and directory.
    program: Option<(gimli::DebugLineOffset, Option<R>, Option<R>)>,
}

impl Lines {
    /// From the program a unit parse made, and the unit it came with.
    pub fn new(
        loaded: &Loaded,
        unit: &gimli::Unit<R>,
        program: Option<gimli::IncompleteLineProgram<R>>,
    ) -> Lines {
        let Some(program) = program else {
            return Lines {
                files: Vec::new(),
                program: None,
            };
        };
        let strings = Strings::new(loaded);
        let header = program.header();
        let files = header
            .file_names()
            .iter()
            .map(|f| FileRef {
                path: strings.line_name(&f.path_name()),
                dir: f.directory(header).and_then(|d| strings.line_name(&d)),
            })
            .collect();
        Lines {
            files,
            program: Some((header.offset(), unit.comp_dir.clone(), unit.name.clone())),
        }
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// A file name as SystemTap prints it: its directory joined, no normalizing.
    pub fn file_path(&self, loaded: &Loaded, idx: usize) -> Option<String> {
        let strings = Strings::new(loaded);
        let f = self.files.get(idx)?;
        let name = String::from_utf8_lossy(strings.bytes(f.path?)).into_owned();
        if name.starts_with('/') {
            return Some(name);
        }
        match f.dir.map(|d| strings.bytes(d)) {
            Some(dir) if !dir.is_empty() => {
                Some(format!("{}/{name}", String::from_utf8_lossy(dir)))
            }
            _ => Some(name),
        }
    }

    /// Every row, sorted by address (rows of one sequence keep their order).
    pub fn rows(&self, loaded: &Loaded, address_size: u8) -> Vec<Row> {
        let mut out = Vec::new();
        let Some((offset, dir, name)) = &self.program else {
            return out;
        };
        let Ok(program) =
            loaded
                .dwarf
                .debug_line
                .program(*offset, address_size, dir.clone(), name.clone())
        else {
            return out;
        };
        let mut rows = program.rows();
        while let Ok(Some((_, row))) = rows.next_row() {
            out.push(Row {
                address: row.address(),
                file: row.file_index(),
                line: row.line().map_or(0, |l| l.get()),
                prologue_end: row.prologue_end(),
                end_sequence: row.end_sequence(),
            });
        }
        out.sort_by_key(|r| r.address);
        out
    }
}
