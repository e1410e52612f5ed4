//! The function index: one pass over every unit's raw DIEs, reading attributes only of
//! subprograms and inlined subroutines; names resolved through abstract origins.

use super::load::Loaded;
use super::pattern::FunctionPattern;
use super::{FunctionSite, InstanceKind, R};
use gimli::{constants as dw, AttributeValue, Reader, UnitOffset};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// Where a function instance's DIE is, and the out-of-line subprogram whose frame it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FuncDie {
    pub unit: u32,
    pub die: UnitOffset,
    pub frame: UnitOffset,
}

/// One line-table row, enough for prologue analysis.
#[derive(Clone, Copy, Debug)]
struct Row {
    address: u64,
    prologue_end: bool,
    end_sequence: bool,
}

pub(crate) struct UnitInfo {
    pub unit: gimli::Unit<R>,
    /// `.debug_info` offset range of the unit (for cross-unit references).
    start: usize,
    end: usize,
    /// The producer says it optimized: locations are tracked at every address.
    optimized: bool,
    files: OnceLock<Vec<Option<String>>>,
    rows: OnceLock<Vec<Row>>,
}

struct Func {
    name: String,
    /// (unit, file index, line) of the declaration.
    decl: Option<DeclPlace>,
    kind: InstanceKind,
    entry: u64,
    /// End of the address range that starts at `entry` (limits prologue analysis).
    high: u64,
    die: Option<FuncDie>,
    exported: bool,
}

pub(crate) struct Index {
    pub units: Vec<UnitInfo>,
    /// Type DIE → its printed name: `-L '*'` prints the same few types thousands of times.
    pub type_names: Mutex<HashMap<(u32, usize), String>>,
    funcs: Vec<Func>,
    by_name: HashMap<String, Vec<u32>>,
}

/// (unit, file index, line) of a declaration.
type DeclPlace = (u32, u64, u64);

/// Name and declaration facts of any subprogram DIE, keyed by `.debug_info` offset.
struct Decl {
    name: Option<String>,
    origin: Option<usize>,
    file: Option<(u32, u64)>,
    line: Option<u64>,
    external: bool,
}

/// A concrete instance found in the pass, before names are resolved.
struct Concrete {
    global: usize,
    die: FuncDie,
    inline: bool,
    entry: u64,
    high: u64,
}

fn udata(v: &AttributeValue<R>) -> Option<u64> {
    match v {
        AttributeValue::Udata(x) => Some(*x),
        AttributeValue::Data1(x) => Some(u64::from(*x)),
        AttributeValue::Data2(x) => Some(u64::from(*x)),
        AttributeValue::Data4(x) => Some(u64::from(*x)),
        AttributeValue::Data8(x) => Some(*x),
        AttributeValue::Sdata(x) => u64::try_from(*x).ok(),
        _ => None,
    }
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

impl Index {
    pub fn build(loaded: &Loaded) -> Index {
        let mut units = Vec::new();
        // Appended in `.debug_info` order, so sorted by offset: binary search, no hashing.
        let mut decls: Vec<(usize, Decl)> = Vec::new();
        let mut concrete = Vec::new();
        let mut headers = loaded.dwarf.units();
        // A unit that fails to parse is skipped: the rest of the file stays usable.
        while let Ok(Some(header)) = headers.next() {
            let Some(start) = header.offset().to_debug_info_offset(&header).map(|o| o.0) else {
                continue;
            };
            let end = start + header.length_including_self();
            let Ok(unit) = loaded.dwarf.unit(header) else {
                continue;
            };
            let uidx = units.len() as u32;
            let mut info = UnitInfo {
                unit,
                start,
                end,
                optimized: false,
                files: OnceLock::new(),
                rows: OnceLock::new(),
            };
            let _ = scan_unit(loaded, &mut info, uidx, &mut decls, &mut concrete);
            units.push(info);
        }

        let exported: HashSet<u64> = loaded
            .symbols
            .iter()
            .filter(|s| s.exported)
            .map(|s| s.address)
            .collect();
        // GCC's partial-inlining splits (`foo.part.0`) hold only the tail of `foo`: SystemTap
        // does not offer them as `foo`, and their parameters are not `foo`'s at entry.
        let parts: HashSet<u64> = loaded
            .symbols
            .iter()
            .filter(|s| s.name.contains(".part."))
            .map(|s| s.address)
            .collect();
        // Entries of out-of-line copies: their clone symbols (`.constprop.0`, `.localalias`)
        // are not functions of their own.
        let entries: HashSet<u64> = concrete
            .iter()
            .filter(|c| !c.inline)
            .map(|c| c.entry)
            .collect();
        let mut funcs = Vec::new();
        let mut seen = HashSet::new();
        for c in concrete {
            if !c.inline && parts.contains(&c.entry) {
                continue;
            }
            let Some((name, decl, external)) = resolve_decl(&decls, c.global) else {
                continue;
            };
            // Dead code keeps DWARF with a zero (or tombstone) address outside every segment.
            if c.entry == 0 || loaded.file_offset(c.entry).is_none() {
                continue;
            }
            let kind = if c.inline {
                InstanceKind::Inline
            } else {
                InstanceKind::OutOfLine
            };
            if !seen.insert((name.clone(), c.entry, kind)) {
                continue;
            }
            funcs.push(Func {
                name,
                decl,
                kind,
                entry: c.entry,
                high: c.high,
                die: Some(c.die),
                exported: external && !c.inline && exported.contains(&c.entry),
            });
        }
        // A symbol is a function of its own only when DWARF knows no function of that name
        // (declarations count), as in SystemTap; `.cold` parts are thus listed by symbol.
        let dwarf_names: HashSet<&str> = decls
            .iter()
            .filter_map(|(_, d)| d.name.as_deref())
            .collect();
        for s in &loaded.symbols {
            if dwarf_names.contains(s.name.as_str())
                || entries.contains(&s.address)
                || !seen.insert((s.name.clone(), s.address, InstanceKind::Symbol))
            {
                continue;
            }
            funcs.push(Func {
                name: s.name.clone(),
                decl: None,
                kind: InstanceKind::Symbol,
                entry: s.address,
                high: s.address + s.size,
                die: None,
                exported: s.exported,
            });
        }
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, f) in funcs.iter().enumerate() {
            by_name.entry(f.name.clone()).or_default().push(i as u32);
        }
        Index {
            units,
            type_names: Mutex::new(HashMap::new()),
            funcs,
            by_name,
        }
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

    pub fn matching(&self, loaded: &Loaded, pattern: &FunctionPattern) -> Vec<FunctionSite> {
        let ids: Vec<u32> = match pattern.literal_name() {
            Some(n) => self.by_name.get(n).cloned().unwrap_or_default(),
            None => self
                .by_name
                .iter()
                .filter(|(n, _)| pattern.matches_name(n))
                .flat_map(|(_, v)| v.iter().copied())
                .collect(),
        };
        let mut out = Vec::new();
        for id in ids {
            let f = &self.funcs[id as usize];
            if f.kind == InstanceKind::Symbol && pattern.has_file() {
                continue;
            }
            let decl_file = f
                .decl
                .and_then(|(u, file, _)| self.file_name(loaded, u, file));
            let decl_line = f.decl.map(|(_, _, l)| l);
            if !pattern.matches_decl(decl_file.as_deref(), decl_line) {
                continue;
            }
            out.push(FunctionSite {
                name: f.name.clone(),
                decl_file,
                decl_line,
                kind: f.kind,
                entry: f.entry,
                probe: self.probe_address(loaded, f),
                exported: f.exported,
                die: f.die,
            });
        }
        out.sort_by(|a, b| (&a.name, a.entry, a.kind).cmp(&(&b.name, b.entry, b.kind)));
        out
    }

    /// After the prologue for out-of-line functions of unoptimized units: the first
    /// line-table row past the entry (or one marked `prologue_end`). Optimized code
    /// tracks locations everywhere, so it is probed at the entry, as SystemTap does.
    fn probe_address(&self, loaded: &Loaded, f: &Func) -> u64 {
        let Some(die) = f.die else { return f.entry };
        let u = &self.units[die.unit as usize];
        if f.kind != InstanceKind::OutOfLine || u.optimized {
            return f.entry;
        }
        let rows = u.rows.get_or_init(|| line_rows(&u.unit));
        let start = rows.partition_point(|r| r.address < f.entry);
        let mut rest = rows[start..]
            .iter()
            .filter(|r| !r.end_sequence || r.address > f.entry);
        let Some(first) = rest.next() else {
            return f.entry;
        };
        if first.address != f.entry || first.prologue_end {
            return f.entry;
        }
        let _ = loaded;
        for r in rest {
            if r.end_sequence || r.address >= f.high {
                break;
            }
            if r.prologue_end || r.address > f.entry {
                return r.address;
            }
        }
        f.entry
    }

    /// A line-table file name as SystemTap prints it: its directory entry joined, no
    /// normalizing (relative directories stay relative).
    pub fn file_name(&self, loaded: &Loaded, unit: u32, file: u64) -> Option<String> {
        let u = &self.units[unit as usize];
        let files = u.files.get_or_init(|| file_names(loaded, &u.unit));
        let idx = if u.unit.header.version() >= 5 {
            file as usize
        } else {
            (file as usize).checked_sub(1)?
        };
        files.get(idx).cloned().flatten()
    }
}

fn file_names(loaded: &Loaded, unit: &gimli::Unit<R>) -> Vec<Option<String>> {
    let Some(lp) = &unit.line_program else {
        return Vec::new();
    };
    let header = lp.header();
    header
        .file_names()
        .iter()
        .map(|f| {
            let name = string(loaded, unit, f.path_name())?;
            if name.starts_with('/') {
                return Some(name);
            }
            match f.directory(header).and_then(|d| string(loaded, unit, d)) {
                Some(dir) if !dir.is_empty() => Some(format!("{dir}/{name}")),
                _ => Some(name),
            }
        })
        .collect()
}

fn line_rows(unit: &gimli::Unit<R>) -> Vec<Row> {
    let mut out = Vec::new();
    if let Some(lp) = unit.line_program.clone() {
        let mut rows = lp.rows();
        while let Ok(Some((_, row))) = rows.next_row() {
            out.push(Row {
                address: row.address(),
                prologue_end: row.prologue_end(),
                end_sequence: row.end_sequence(),
            });
        }
    }
    // Stable: rows of one sequence keep their order at equal addresses.
    out.sort_by_key(|r| r.address);
    out
}

/// Follow abstract origins and specifications to a name and declaration.
fn resolve_decl(
    decls: &[(usize, Decl)],
    global: usize,
) -> Option<(String, Option<DeclPlace>, bool)> {
    let mut name = None;
    let mut file = None;
    let mut line = None;
    let mut external = false;
    let mut cur = Some(global);
    for _ in 0..8 {
        let found = cur.and_then(|g| decls.binary_search_by_key(&g, |(o, _)| *o).ok());
        let Some((_, d)) = found.map(|i| &decls[i]) else {
            break;
        };
        name = name.or_else(|| d.name.clone());
        if file.is_none() {
            file = d.file;
            line = line.or(d.line);
        }
        external |= d.external;
        cur = d.origin;
    }
    let decl = file.map(|(u, f)| (u, f, line.unwrap_or(0)));
    Some((name?, decl, external))
}

/// The single pass over one unit's DIEs.
fn scan_unit(
    loaded: &Loaded,
    info: &mut UnitInfo,
    uidx: u32,
    decls: &mut Vec<(usize, Decl)>,
    concrete: &mut Vec<Concrete>,
) -> gimli::Result<()> {
    let unit = &info.unit;
    let base = info.start;
    let global_of = |o: UnitOffset| o.to_debug_info_offset(&unit.header).map(|g| g.0);
    let to_global = |v: &AttributeValue<R>| match v {
        AttributeValue::UnitRef(o) => global_of(*o),
        AttributeValue::DebugInfoRef(o) => Some(o.0),
        _ => None,
    };
    let mut raw = unit.entries_raw(None)?;
    // Enclosing concrete out-of-line subprograms: (depth, offset).
    let mut frames: Vec<(isize, UnitOffset)> = Vec::new();
    while !raw.is_empty() {
        let depth = raw.next_depth();
        let offset = raw.next_offset();
        let Some(abbrev) = raw.read_abbreviation()? else {
            continue;
        };
        let tag = abbrev.tag();
        if tag == dw::DW_TAG_compile_unit || tag == dw::DW_TAG_partial_unit {
            for spec in abbrev.attributes() {
                let attr = raw.read_attribute(*spec)?;
                if attr.name() == dw::DW_AT_producer {
                    if let Some(p) = string(loaded, unit, attr.value()) {
                        info.optimized = producer_optimized(&p);
                    }
                }
            }
            continue;
        }
        if tag != dw::DW_TAG_subprogram && tag != dw::DW_TAG_inlined_subroutine {
            raw.skip_attributes(abbrev.attributes())?;
            continue;
        }
        while frames.last().is_some_and(|&(d, _)| d >= depth) {
            frames.pop();
        }
        let mut decl = Decl {
            name: None,
            origin: None,
            file: None,
            line: None,
            external: false,
        };
        let (mut low, mut high, mut entry_pc, mut ranges) = (None, None, None, None);
        let mut declaration = false;
        for spec in abbrev.attributes() {
            let attr = raw.read_attribute(*spec)?;
            let v = attr.value();
            match attr.name() {
                dw::DW_AT_name => decl.name = string(loaded, unit, v),
                dw::DW_AT_abstract_origin | dw::DW_AT_specification => decl.origin = to_global(&v),
                dw::DW_AT_decl_file => {
                    let f = match v {
                        AttributeValue::FileIndex(f) => Some(f),
                        ref other => udata(other),
                    };
                    decl.file = f.map(|f| (uidx, f));
                }
                dw::DW_AT_decl_line => decl.line = udata(&v),
                dw::DW_AT_external => decl.external = matches!(v, AttributeValue::Flag(true)),
                dw::DW_AT_declaration => declaration = matches!(v, AttributeValue::Flag(true)),
                dw::DW_AT_low_pc => low = loaded.dwarf.attr_address(unit, v)?,
                dw::DW_AT_high_pc => high = Some(v),
                dw::DW_AT_entry_pc => entry_pc = Some(v),
                dw::DW_AT_ranges => ranges = Some(v),
                _ => {}
            }
        }
        let Some(global) = global_of(offset) else {
            continue;
        };
        let _ = base;
        decls.push((global, decl));
        if declaration {
            continue;
        }
        // The address ranges of this instance.
        let mut spans = Vec::new();
        if let Some(lo) = low {
            match high.as_ref() {
                Some(AttributeValue::Addr(hi)) => spans.push((lo, *hi)),
                Some(h) => {
                    if let Some(len) = udata(h) {
                        spans.push((lo, lo + len));
                    }
                }
                None => spans.push((lo, lo + 1)),
            }
        }
        if let Some(Ok(Some(mut iter))) = ranges.map(|r| loaded.dwarf.attr_ranges(unit, r)) {
            while let Ok(Some(r)) = iter.next() {
                if r.begin < r.end {
                    spans.push((r.begin, r.end));
                }
            }
        }
        // An inlined copy whose code vanished keeps its `DW_AT_entry_pc` and no ranges:
        // SystemTap still offers it there.
        let first_lo = spans.first().map(|&(lo, _)| lo);
        let entry = match entry_pc {
            Some(AttributeValue::Addr(a)) => Some(a),
            Some(ref v) => match (udata(v), low) {
                (Some(off), Some(lo)) => Some(lo + off),
                _ => loaded.dwarf.attr_address(unit, v.clone())?.or(first_lo),
            },
            None => low.or(first_lo),
        };
        let Some(entry) = entry else {
            continue;
        };
        let high = spans
            .iter()
            .find(|&&(lo, hi)| lo <= entry && entry < hi)
            .map_or(entry, |&(_, hi)| hi);
        let inline = tag == dw::DW_TAG_inlined_subroutine;
        if !inline {
            frames.push((depth, offset));
        }
        let Some(&(_, frame)) = frames.last() else {
            continue;
        };
        concrete.push(Concrete {
            global,
            die: FuncDie {
                unit: uidx,
                die: offset,
                frame,
            },
            inline,
            entry,
            high,
        });
    }
    Ok(())
}
