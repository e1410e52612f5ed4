//! The unit table and lazy per-unit scans: units are scanned when a query needs them (all of
//! them for a wildcard, on every core; only those naming the function for a literal name).

use super::catalog::{Catalog, Symbols};
use super::lines::{Lines, Row};
use super::listvars::UnitCx;
use super::load::Loaded;
use super::pattern::FunctionPattern;
use super::scan::{self, Decl, Strings, UnitScan};
use super::{FunctionSite, R};
use gimli::{constants as dw, AttributeValue, Reader, UnitOffset};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Where a function instance's DIE is, and the out-of-line subprogram whose frame it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FuncDie {
    pub unit: u32,
    pub die: UnitOffset,
    pub frame: UnitOffset,
    /// Its index in the unit scan's `concrete`, for reading what the scan kept of it.
    pub concrete: u32,
}

/// A unit parsed on first use. Parsed abbreviations take about 20 times the bytes of
/// `.debug_abbrev` (40 MB for libc), so passes over every unit parse each one, use it
/// and drop it; only units a query keeps working with stay parsed, until released.
pub(crate) struct LazyUnit {
    header: gimli::UnitHeader<R>,
    dwarf: Arc<gimli::Dwarf<R>>,
    cell: OnceLock<gimli::Unit<R>>,
}

impl LazyUnit {
    /// A fresh parse, not kept.
    fn parse(&self) -> gimli::Result<gimli::Unit<R>> {
        self.dwarf.unit(self.header.clone())
    }

    /// The parsed unit if it is parsed already, else a fresh parse. `f` also gets the line
    /// program: moved out of a fresh parse, not copied.
    fn with<T>(&self, f: impl FnOnce(&gimli::Unit<R>, Option<Program>) -> T) -> Option<T> {
        match self.cell.get() {
            Some(u) => Some(f(u, u.line_program.clone())),
            None => {
                let mut u = self.parse().ok()?;
                let program = u.line_program.take();
                Some(f(&u, program))
            }
        }
    }
}

impl std::ops::Deref for LazyUnit {
    type Target = gimli::Unit<R>;

    fn deref(&self) -> &gimli::Unit<R> {
        self.cell.get_or_init(|| {
            // A unit that does not parse reads as an empty one: its DIEs fail to read,
            // and every caller treats that as "nothing there".
            self.parse().unwrap_or_else(|_| gimli::Unit {
                header: self.header.clone(),
                abbreviations: Arc::default(),
                name: None,
                comp_dir: None,
                low_pc: 0,
                str_offsets_base: gimli::DebugStrOffsetsBase(0),
                addr_base: gimli::DebugAddrBase(0),
                loclists_base: gimli::DebugLocListsBase(0),
                rnglists_base: gimli::DebugRngListsBase(0),
                line_program: None,
                dwo_id: None,
            })
        })
    }
}

type Program = gimli::IncompleteLineProgram<R>;

/// What the root DIE says, read by whichever pass reads the unit first.
struct RootFacts {
    /// The producer says it optimized: locations are tracked at every address.
    optimized: bool,
    /// C: functions are top-level DIEs, so the quick name pass is exact.
    c_language: bool,
    /// What is kept of the line program.
    lines: Lines,
}

pub(crate) struct UnitInfo {
    pub unit: LazyUnit,
    /// `.debug_info` offset range of the unit (for cross-unit references).
    start: usize,
    end: usize,
    facts: OnceLock<RootFacts>,
    /// File names, each read on first use.
    files: OnceLock<Vec<OnceLock<Option<String>>>>,
    rows: OnceLock<Vec<Row>>,
    scan: OnceLock<UnitScan>,
}

pub(crate) struct Index {
    pub units: Vec<UnitInfo>,
    /// Type DIE → its printed name: `-L '*'` prints the same few types thousands of times.
    pub type_names: Mutex<HashMap<(u32, usize), String>>,
    /// Every function instance, built on the first wildcard query.
    all: OnceLock<Catalog>,
    symbols: OnceLock<Symbols>,
}

fn producer_optimized(producer: &str) -> bool {
    let mut optimized = false;
    for tok in producer.split_whitespace() {
        if let Some(level) = tok.strip_prefix("-O") {
            optimized = level != "0";
        }
    }
    optimized
}

pub(crate) fn string(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    v: AttributeValue<R>,
) -> Option<String> {
    let r = loaded.dwarf.attr_string(unit, v).ok()?;
    Some(r.to_string_lossy().ok()?.into_owned())
}

/// Producer, language and line program, from the unit's root DIE.
fn unit_facts(loaded: &Loaded, unit: &gimli::Unit<R>, line_program: Option<Program>) -> RootFacts {
    let mut optimized = false;
    let mut c = false;
    let Ok(mut raw) = unit.entries_raw(None) else {
        return RootFacts {
            optimized,
            c_language: c,
            lines: Lines::new(loaded, unit, line_program),
        };
    };
    if let Ok(Some(abbrev)) = raw.read_abbreviation() {
        for spec in abbrev.attributes() {
            let Ok(attr) = raw.read_attribute(*spec) else {
                break;
            };
            match attr.name() {
                dw::DW_AT_producer => {
                    if let Some(p) = string(loaded, unit, attr.value()) {
                        optimized = producer_optimized(&p);
                    }
                }
                dw::DW_AT_language => {
                    c = matches!(
                        attr.value(),
                        AttributeValue::Language(
                            dw::DW_LANG_C89 | dw::DW_LANG_C | dw::DW_LANG_C99 | dw::DW_LANG_C11
                        )
                    ) || matches!(attr.value(), AttributeValue::Language(l) if l.0 == 0x2c)
                }
                _ => {}
            }
        }
    }
    RootFacts {
        optimized,
        c_language: c,
        lines: Lines::new(loaded, unit, line_program),
    }
}

/// The cores to use, asked once (the answer reads cgroup files).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}

/// Run `work(i)` for every `i < n` on all cores, the calling thread included.
pub(crate) fn parallel<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = cores().min(n);
    if threads < 2 {
        return (0..n).map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let run = || {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            mine.push((i, work(i)));
        }
        mine
    };
    let mut all: Vec<(usize, T)> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(run)).collect();
        all.extend(run());
        for h in handles {
            if let Ok(p) = h.join() {
                all.extend(p);
            }
        }
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

impl Index {
    /// The unit table: headers only, nothing parsed yet.
    pub fn build(loaded: &Loaded) -> Index {
        let mut units = Vec::new();
        let mut iter = loaded.dwarf.units();
        // A unit whose header fails to parse ends the walk: the rest stays usable.
        while let Ok(Some(header)) = iter.next() {
            let Some(start) = header.offset().to_debug_info_offset(&header) else {
                continue;
            };
            let end = start.0 + header.length_including_self();
            units.push(UnitInfo {
                unit: LazyUnit {
                    header,
                    dwarf: loaded.dwarf.clone(),
                    cell: OnceLock::new(),
                },
                start: start.0,
                end,
                facts: OnceLock::new(),
                files: OnceLock::new(),
                rows: OnceLock::new(),
                scan: OnceLock::new(),
            });
        }
        Index {
            units,
            type_names: Mutex::new(HashMap::new()),
            all: OnceLock::new(),
            symbols: OnceLock::new(),
        }
    }

    /// One unit's subprograms and inlined subroutines, read on first use.
    pub fn scan(&self, loaded: &Loaded, unit: u32) -> &UnitScan {
        let u = &self.units[unit as usize];
        u.scan.get_or_init(|| {
            u.unit
                .with(|parsed, program| {
                    let facts = u.facts.get_or_init(|| unit_facts(loaded, parsed, program));
                    let cx = UnitCx {
                        loaded,
                        index: self,
                        unit,
                        parsed,
                        c_language: facts.c_language,
                    };
                    // Only the unit of a `FuncDie` matters to the probe address.
                    let die = FuncDie {
                        unit,
                        die: UnitOffset(0),
                        frame: UnitOffset(0),
                        concrete: 0,
                    };
                    let probe_of = |inline: bool, entry: u64, high: u64| {
                        self.probe_address(loaded, Some(die), !inline, entry, high)
                    };
                    scan::scan_unit(&cx, &Strings::new(loaded), &probe_of)
                })
                .unwrap_or_default()
        })
    }

    fn facts(&self, loaded: &Loaded, unit: u32) -> &RootFacts {
        let u = &self.units[unit as usize];
        u.facts.get_or_init(|| {
            u.unit
                .with(|parsed, program| unit_facts(loaded, parsed, program))
                .unwrap_or(RootFacts {
                    optimized: false,
                    c_language: false,
                    lines: Lines::new(loaded, &self.units[unit as usize].unit, None),
                })
        })
    }

    /// Whether the unit's producer optimized (`-O1` or more).
    pub fn optimized(&self, loaded: &Loaded, unit: u32) -> bool {
        self.facts(loaded, unit).optimized
    }

    /// Drop a parsed unit; it is parsed again if used again.
    pub fn release(&mut self, unit: u32) {
        if let Some(u) = self.units.get_mut(unit as usize) {
            u.unit.cell.take();
        }
    }

    /// The DIE facts at a `.debug_info` offset, scanning its unit if needed.
    pub fn decl(&self, loaded: &Loaded, global: usize) -> Option<(u32, &Decl)> {
        let (unit, _) = self.locate(global)?;
        let decls = &self.scan(loaded, unit).decls;
        let i = decls.binary_search_by_key(&global, |d| d.global).ok()?;
        Some((unit, &decls[i]))
    }

    /// The unit holding a `.debug_info` offset, and the offset within it.
    pub fn locate(&self, global: usize) -> Option<(u32, UnitOffset)> {
        let i = self
            .units
            .partition_point(|u| u.start <= global)
            .checked_sub(1)?;
        let u = &self.units[i];
        (global < u.end).then(|| (i as u32, UnitOffset(global - u.start)))
    }

    /// Resolve a reference attribute seen in `unit`.
    pub fn reference(&self, unit: u32, v: &AttributeValue<R>) -> Option<(u32, UnitOffset)> {
        match v {
            AttributeValue::UnitRef(o) => Some((unit, *o)),
            AttributeValue::DebugInfoRef(o) => self.locate(o.0),
            _ => None,
        }
    }

    /// Every function instance of the file, all units scanned on all cores.
    fn all(&self, loaded: &Loaded) -> &Catalog {
        self.all.get_or_init(|| {
            // The symbol table's maps are built by the first free core meanwhile.
            parallel(self.units.len() + 1, |i| match i {
                0 => {
                    self.symbols(loaded);
                }
                i => {
                    self.scan(loaded, i as u32 - 1);
                }
            });
            let units: Vec<u32> = (0..self.units.len() as u32).collect();
            Catalog::build(self, loaded, self.symbols(loaded), &units)
        })
    }

    fn symbols(&self, loaded: &Loaded) -> &Symbols {
        self.symbols.get_or_init(|| Symbols::new(&loaded.symbols))
    }

    /// Units whose bytes may hold one of `names`: the name inline (`DW_FORM_string`) or
    /// the 4-byte offset of one of its occurrences in `.debug_str`/`.debug_line_str`.
    /// A few memory searches instead of parsing every unit; `None` when the file uses
    /// forms this cannot see (string indices, 64-bit DWARF, references across units).
    fn units_mentioning(&self, loaded: &Loaded, names: &[&str]) -> Option<Vec<u32>> {
        use gimli::Section;
        let d = &loaded.dwarf;
        let abbrev = d.debug_abbrev.reader().bytes();
        let cross = memchr::memmem::find(abbrev, &[0x31, 0x10]).is_some()
            || memchr::memmem::find(abbrev, &[0x47, 0x10]).is_some();
        let strx = !d.debug_str_offsets.reader().is_empty();
        let dwarf64 = self
            .units
            .iter()
            .any(|u| u.unit.header.format() == gimli::Format::Dwarf64);
        if cross || strx || dwarf64 {
            return None;
        }
        let info = d.debug_info.reader().bytes();
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for name in names {
            let mut z = name.as_bytes().to_vec();
            z.push(0);
            for sec in [
                d.debug_str.reader().bytes(),
                d.debug_line_str.reader().bytes(),
            ] {
                for off in memchr::memmem::find_iter(sec, &z) {
                    needles.push((off as u32).to_le_bytes().to_vec());
                }
            }
            needles.push(z);
        }
        let mut hit = vec![false; self.units.len()];
        for needle in &needles {
            for pos in memchr::memmem::find_iter(info, needle) {
                let i = self.units.partition_point(|u| u.start <= pos);
                if let Some(h) = i.checked_sub(1).and_then(|i| hit.get_mut(i)) {
                    *h = true;
                }
            }
        }
        Some(
            (0..self.units.len() as u32)
                .filter(|&i| hit[i as usize])
                .collect(),
        )
    }

    /// The units whose top-level subprograms carry one of `names` (or that cannot be
    /// checked quickly: non-C units are scanned whole).
    fn units_naming(&self, loaded: &Loaded, names: &[&str]) -> Vec<u32> {
        let strings = Strings::new(loaded);
        let wanted = |n: &str| names.contains(&n);
        let candidates = self
            .units_mentioning(loaded, names)
            .unwrap_or_else(|| (0..self.units.len() as u32).collect());
        let hits = parallel(candidates.len(), |c| {
            let i = candidates[c] as usize;
            let u = &self.units[i];
            u.unit
                .with(|parsed, program| {
                    let facts = u.facts.get_or_init(|| unit_facts(loaded, parsed, program));
                    !facts.c_language || scan::names_any(loaded, &strings, parsed, &wanted)
                })
                .unwrap_or(false)
        });
        candidates
            .into_iter()
            .zip(hits)
            .filter(|&(_, hit)| hit)
            .map(|(u, _)| u)
            .collect()
    }

    pub fn matching(&self, loaded: &Loaded, pattern: &FunctionPattern) -> Vec<FunctionSite> {
        match pattern.literal_name() {
            Some(name) if self.all.get().is_none() => {
                let symbols = self.symbols(loaded);
                // The name itself and the other names of its symbols' addresses: enough
                // to find its DIEs, its aliases and whether its symbols are DWARF's.
                let names = Catalog::related_names(symbols, &loaded.symbols, name);
                let units = self.units_naming(loaded, &names);
                parallel(units.len(), |i| {
                    self.scan(loaded, units[i]);
                });
                let catalog = Catalog::build(self, loaded, symbols, &units);
                catalog.select(self, loaded, symbols, pattern)
            }
            _ => self
                .all(loaded)
                .select(self, loaded, self.symbols(loaded), pattern),
        }
    }

    /// After the prologue for out-of-line functions of unoptimized units: the first
    /// line-table row past the entry (or one marked `prologue_end`). Optimized code
    /// tracks locations everywhere, so it is probed at the entry, as SystemTap does.
    pub fn probe_address(
        &self,
        loaded: &Loaded,
        die: Option<FuncDie>,
        out_of_line: bool,
        entry: u64,
        high: u64,
    ) -> u64 {
        let Some(die) = die else { return entry };
        if !out_of_line || self.optimized(loaded, die.unit) {
            return entry;
        }
        let rows = self.rows(loaded, die.unit);
        let start = rows.partition_point(|r| r.address < entry);
        let mut rest = rows[start..]
            .iter()
            .filter(|r| !r.end_sequence || r.address > entry);
        let Some(first) = rest.next() else {
            return entry;
        };
        if first.address != entry || first.prologue_end {
            return entry;
        }
        for r in rest {
            if r.end_sequence || r.address >= high {
                break;
            }
            if r.prologue_end || r.address > entry {
                return r.address;
            }
        }
        entry
    }

    /// The line-table row at `pc` as (file, line): where SystemTap places a function whose
    /// DIE has no declaration (assembler sources).
    pub fn line_at(&self, loaded: &Loaded, unit: u32, pc: u64) -> Option<(u64, u64)> {
        let rows = self.rows(loaded, unit);
        let i = rows.partition_point(|r| r.address < pc);
        let r = rows.get(i).filter(|r| r.address == pc && !r.end_sequence)?;
        Some((r.file, r.line))
    }

    /// A line-table file name as SystemTap prints it: its directory entry joined, no
    /// normalizing (relative directories stay relative).
    pub fn file_name(&self, loaded: &Loaded, unit: u32, file: u64) -> Option<String> {
        self.file_name_ref(loaded, unit, file).map(str::to_string)
    }

    /// As [`Index::file_name`], borrowed from the unit's cache.
    pub fn file_name_ref(&self, loaded: &Loaded, unit: u32, file: u64) -> Option<&str> {
        let u = &self.units[unit as usize];
        let lines = &self.facts(loaded, unit).lines;
        let cells = u
            .files
            .get_or_init(|| (0..lines.file_count()).map(|_| OnceLock::new()).collect());
        let idx = if u.unit.header.version() >= 5 {
            file as usize
        } else {
            (file as usize).checked_sub(1)?
        };
        cells
            .get(idx)?
            .get_or_init(|| lines.file_path(loaded, idx))
            .as_deref()
    }

    fn rows(&self, loaded: &Loaded, unit: u32) -> &[Row] {
        let u = &self.units[unit as usize];
        u.rows.get_or_init(|| {
            let size = u.unit.header.address_size();
            self.facts(loaded, unit).lines.rows(loaded, size)
        })
    }
}
