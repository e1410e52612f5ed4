//! Reading one unit's DIEs: the full pass over subprograms and inlined subroutines, and a
//! quick pass over top-level subprograms only, for finding which units name a function.

use super::listvars::{self, ListedVar, UnitCx, VarDie};
use super::load::Loaded;
use super::R;
use gimli::{constants as dw, AttributeValue, Reader, Section, UnitOffset};

/// A string in one of the DWARF string sections, borrowed rather than copied: a unit
/// scan allocates nothing per DIE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    sec: u8,
    off: u32,
    len: u32,
}

const SEC_STR: u8 = 0;
const SEC_LINE_STR: u8 = 1;
const SEC_INFO: u8 = 2;
const SEC_LINE: u8 = 3;

/// The bytes of the three sections names live in.
pub(crate) struct Strings<'a> {
    str: &'a [u8],
    line_str: &'a [u8],
    info: &'a [u8],
    line: &'a [u8],
}

impl<'a> Strings<'a> {
    pub fn new(loaded: &'a Loaded) -> Strings<'a> {
        Strings {
            str: loaded.dwarf.debug_str.reader().bytes(),
            line_str: loaded.dwarf.debug_line_str.reader().bytes(),
            info: loaded.dwarf.debug_info.reader().bytes(),
            line: loaded.dwarf.debug_line.reader().bytes(),
        }
    }

    pub fn bytes(&self, n: Name) -> &'a [u8] {
        let sec = match n.sec {
            SEC_STR => self.str,
            SEC_LINE_STR => self.line_str,
            SEC_LINE => self.line,
            _ => self.info,
        };
        &sec[n.off as usize..(n.off + n.len) as usize]
    }

    pub fn get(&self, n: Name) -> &'a str {
        std::str::from_utf8(self.bytes(n)).unwrap_or("")
    }

    /// A NUL-terminated string at `off` in a section.
    fn at(&self, sec: u8, data: &[u8], off: usize) -> Option<Name> {
        let rest = data.get(off..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        Some(Name {
            sec,
            off: u32::try_from(off).ok()?,
            len: u32::try_from(len).ok()?,
        })
    }

    /// A line-table string (`DW_FORM_string`, `strp` or `line_strp`), without copying it.
    pub fn line_name(&self, v: &AttributeValue<R>) -> Option<Name> {
        match v {
            AttributeValue::String(r) => {
                let off = (r.bytes().as_ptr() as usize).checked_sub(self.line.as_ptr() as usize)?;
                (off + r.len() <= self.line.len()).then_some(())?;
                Some(Name {
                    sec: SEC_LINE,
                    off: u32::try_from(off).ok()?,
                    len: u32::try_from(r.len()).ok()?,
                })
            }
            AttributeValue::DebugStrRef(o) => self.at(SEC_STR, self.str, o.0),
            AttributeValue::DebugLineStrRef(o) => self.at(SEC_LINE_STR, self.line_str, o.0),
            _ => None,
        }
    }

    /// A string attribute's value, without copying it.
    pub fn name(
        &self,
        loaded: &Loaded,
        unit: &gimli::Unit<R>,
        v: &AttributeValue<R>,
    ) -> Option<Name> {
        match v {
            AttributeValue::DebugStrRef(o) => self.at(SEC_STR, self.str, o.0),
            AttributeValue::DebugLineStrRef(o) => self.at(SEC_LINE_STR, self.line_str, o.0),
            AttributeValue::String(r) => {
                let base = self.info.as_ptr() as usize;
                let off = (r.bytes().as_ptr() as usize).checked_sub(base)?;
                Some(Name {
                    sec: SEC_INFO,
                    off: u32::try_from(off).ok()?,
                    len: u32::try_from(r.len()).ok()?,
                })
            }
            AttributeValue::DebugStrOffsetsIndex(i) => {
                let o = loaded
                    .dwarf
                    .debug_str_offsets
                    .get_str_offset(unit.header.format(), unit.str_offsets_base, *i)
                    .ok()?;
                self.at(SEC_STR, self.str, o.0)
            }
            _ => None,
        }
    }
}

/// Name and declaration facts of a subprogram or inlined-subroutine DIE.
#[derive(Clone, Debug)]
pub(crate) struct Decl {
    pub global: usize,
    pub name: Option<Name>,
    pub linkage: Option<Name>,
    pub origin: Option<usize>,
    pub file: Option<u64>,
    pub line: Option<u64>,
    pub external: bool,
    pub declaration: bool,
    /// `DW_AT_inline` says inlined (an abstract instance): never tied to a symbol.
    pub inline: bool,
    pub subprogram: bool,
}

/// A concrete instance found in the pass, before names are resolved.
#[derive(Clone, Debug)]
pub(crate) struct Concrete {
    pub global: usize,
    /// Its `Decl` in `UnitScan::decls`.
    pub decl: u32,
    pub die: UnitOffset,
    pub frame: UnitOffset,
    pub inline: bool,
    pub entry: u64,
    pub high: u64,
    /// `DW_AT_low_pc`, where SystemTap reads a missing declaration from the line table.
    pub low: Option<u64>,
    /// Where `.function` probes attach (see `Index::probe_address`).
    pub probe: u64,
    /// Its variables at `probe`, a range of `UnitScan::listed`; `None` when the pass
    /// could not read them.
    pub vars: Option<(u32, u32)>,
}

/// Everything one unit contributes to the index.
#[derive(Default)]
pub(crate) struct UnitScan {
    /// In DIE order, hence sorted by `.debug_info` offset.
    pub decls: Vec<Decl>,
    pub concrete: Vec<Concrete>,
    /// The variables of every concrete instance, for `-L`.
    pub listed: Vec<ListedVar>,
    /// Type names the listed variables use.
    pub type_names: Vec<String>,
}

pub(crate) fn udata(v: &AttributeValue<R>) -> Option<u64> {
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

fn global_of(unit: &gimli::Unit<R>, o: UnitOffset) -> Option<usize> {
    o.to_debug_info_offset(&unit.header).map(|g| g.0)
}

fn to_global(unit: &gimli::Unit<R>, v: &AttributeValue<R>) -> Option<usize> {
    match v {
        AttributeValue::UnitRef(o) => global_of(unit, *o),
        AttributeValue::DebugInfoRef(o) => Some(o.0),
        _ => None,
    }
}

/// The probe address of an instance: (inline, entry, high) → address.
pub(crate) type ProbeOf<'a> = &'a dyn Fn(bool, u64, u64) -> u64;

/// The full pass over one unit's DIEs; a unit that fails to parse yields what was read.
pub(crate) fn scan_unit(cx: &UnitCx<'_>, strings: &Strings<'_>, probe_of: ProbeOf<'_>) -> UnitScan {
    let mut out = UnitScan::default();
    let mut vars = Vec::new();
    let _ = scan_into(
        cx.loaded,
        strings,
        cx.parsed,
        cx.c_language,
        probe_of,
        &mut out,
        &mut vars,
    );
    listvars::resolve(cx, &vars, &mut out);
    out
}

/// What a DIE with children is to the variables under it.
#[derive(Clone, Copy, PartialEq)]
enum Parent {
    /// A subprogram or inlined subroutine, with its concrete instance if it is one.
    Function(Option<u32>),
    Other,
}

fn scan_into(
    loaded: &Loaded,
    strings: &Strings<'_>,
    unit: &gimli::Unit<R>,
    c_language: bool,
    probe_of: ProbeOf<'_>,
    out: &mut UnitScan,
    vars: &mut Vec<VarDie>,
) -> gimli::Result<()> {
    let mut raw = unit.entries_raw(None)?;
    // Depth of the next entry is `base + raw.next_depth()`: a jump restarts the reader.
    let mut base = 0isize;
    // Enclosing concrete out-of-line subprograms: (depth, offset).
    let mut frames: Vec<(isize, UnitOffset)> = Vec::new();
    // Enclosing DIEs with children: (depth, what they are).
    let mut parents: Vec<(isize, Parent)> = Vec::new();
    while !raw.is_empty() {
        let depth = base + raw.next_depth();
        let offset = raw.next_offset();
        let Some(abbrev) = raw.read_abbreviation()? else {
            continue;
        };
        while parents.last().is_some_and(|&(d, _)| d >= depth) {
            parents.pop();
        }
        let parent = match parents.last() {
            Some(&(d, p)) if d == depth - 1 => p,
            _ => Parent::Other,
        };
        let tag = abbrev.tag();
        if tag != dw::DW_TAG_subprogram && tag != dw::DW_TAG_inlined_subroutine {
            match parent {
                Parent::Function(owner)
                    if tag == dw::DW_TAG_formal_parameter || tag == dw::DW_TAG_variable =>
                {
                    let pc = owner.map(|c| out.concrete[c as usize].probe);
                    let v = read_var(loaded, strings, unit, &mut raw, abbrev, offset, pc)?;
                    vars.push(VarDie {
                        owner: owner.filter(|_| v.global != 0),
                        ..v
                    });
                }
                _ if abbrev.has_children() && no_functions_inside(tag, c_language) => {
                    // Members, enumerators, subranges and call-site parameters are many
                    // and never wanted: jump to the sibling when there is one.
                    if let Some(next) = sibling(&mut raw, abbrev, offset)? {
                        raw = unit.entries_raw(Some(next))?;
                        base = depth;
                        continue;
                    }
                }
                _ => raw.skip_attributes(abbrev.attributes())?,
            }
            if abbrev.has_children() {
                parents.push((depth, Parent::Other));
            }
            continue;
        }
        while frames.last().is_some_and(|&(d, _)| d >= depth) {
            frames.pop();
        }
        let has_children = abbrev.has_children();
        let concrete = instance(
            loaded,
            strings,
            unit,
            &mut raw,
            abbrev,
            depth,
            offset,
            probe_of,
            &mut frames,
            out,
        )?;
        if has_children {
            parents.push((depth, Parent::Function(concrete)));
        }
    }
    Ok(())
}

/// DIEs whose children hold no subprogram, inlined subroutine or variable of one; C
/// structs and unions too (C++ ones declare member functions).
fn no_functions_inside(tag: gimli::DwTag, c_language: bool) -> bool {
    match tag {
        dw::DW_TAG_enumeration_type
        | dw::DW_TAG_array_type
        | dw::DW_TAG_subroutine_type
        | dw::DW_TAG_call_site
        | dw::DW_TAG_GNU_call_site => true,
        dw::DW_TAG_structure_type | dw::DW_TAG_union_type => c_language,
        _ => false,
    }
}

/// Read a DIE's attributes; its `DW_AT_sibling` if that points past it.
fn sibling(
    raw: &mut gimli::EntriesRaw<'_, R>,
    abbrev: &gimli::Abbreviation,
    offset: UnitOffset,
) -> gimli::Result<Option<UnitOffset>> {
    let mut next = None;
    for spec in abbrev.attributes() {
        let attr = raw.read_attribute(*spec)?;
        if let (dw::DW_AT_sibling, AttributeValue::UnitRef(o)) = (attr.name(), attr.value()) {
            next = Some(o).filter(|&o| o > offset);
        }
    }
    Ok(next)
}

/// A variable DIE's facts; its availability when `pc` (its instance's probe) is known.
fn read_var(
    loaded: &Loaded,
    strings: &Strings<'_>,
    unit: &gimli::Unit<R>,
    raw: &mut gimli::EntriesRaw<'_, R>,
    abbrev: &gimli::Abbreviation,
    offset: UnitOffset,
    pc: Option<u64>,
) -> gimli::Result<VarDie> {
    let mut v = VarDie {
        global: global_of(unit, offset).unwrap_or(0),
        name: None,
        origin: None,
        ty: None,
        is_param: abbrev.tag() == dw::DW_TAG_formal_parameter,
        available: false,
        owner: None,
        odd: false,
    };
    let (mut location, mut has_const) = (None, false);
    for spec in abbrev.attributes() {
        let attr = raw.read_attribute(*spec)?;
        match attr.name() {
            dw::DW_AT_name => {
                v.name = strings.name(loaded, unit, &attr.value());
                v.odd |= v.name.is_none();
            }
            dw::DW_AT_abstract_origin => v.origin = to_global(unit, &attr.value()),
            dw::DW_AT_type => v.ty = to_global(unit, &attr.value()),
            dw::DW_AT_location => location = Some(attr.value()),
            dw::DW_AT_const_value => has_const = true,
            _ => {}
        }
    }
    if let Some(pc) = pc {
        v.available = listvars::available_at(loaded, unit, has_const, location, pc);
    }
    Ok(v)
}

/// A subprogram or inlined-subroutine DIE: its declaration facts, and its concrete
/// instance (returned as an index into `out.concrete`) when it has code.
#[allow(clippy::too_many_arguments)]
fn instance(
    loaded: &Loaded,
    strings: &Strings<'_>,
    unit: &gimli::Unit<R>,
    raw: &mut gimli::EntriesRaw<'_, R>,
    abbrev: &gimli::Abbreviation,
    depth: isize,
    offset: UnitOffset,
    probe_of: ProbeOf<'_>,
    frames: &mut Vec<(isize, UnitOffset)>,
    out: &mut UnitScan,
) -> gimli::Result<Option<u32>> {
    let tag = abbrev.tag();
    let Some(global) = global_of(unit, offset) else {
        raw.skip_attributes(abbrev.attributes())?;
        return Ok(None);
    };
    let mut decl = Decl {
        global,
        name: None,
        linkage: None,
        origin: None,
        file: None,
        line: None,
        external: false,
        declaration: false,
        inline: false,
        subprogram: tag == dw::DW_TAG_subprogram,
    };
    let (mut low, mut high, mut entry_pc, mut ranges) = (None, None, None, None);
    for spec in abbrev.attributes() {
        let attr = raw.read_attribute(*spec)?;
        let v = attr.value();
        match attr.name() {
            dw::DW_AT_name => decl.name = strings.name(loaded, unit, &v),
            dw::DW_AT_linkage_name | dw::DW_AT_MIPS_linkage_name => {
                decl.linkage = strings.name(loaded, unit, &v)
            }
            dw::DW_AT_abstract_origin | dw::DW_AT_specification => {
                decl.origin = to_global(unit, &v)
            }
            dw::DW_AT_decl_file => {
                decl.file = match v {
                    AttributeValue::FileIndex(f) => Some(f),
                    ref other => udata(other),
                }
            }
            dw::DW_AT_decl_line => decl.line = udata(&v),
            dw::DW_AT_external => decl.external = matches!(v, AttributeValue::Flag(true)),
            dw::DW_AT_declaration => decl.declaration = matches!(v, AttributeValue::Flag(true)),
            dw::DW_AT_inline => {
                decl.inline = matches!(
                    v,
                    AttributeValue::Inline(dw::DW_INL_inlined | dw::DW_INL_declared_inlined)
                ) || udata(&v).is_some_and(|x| x == 1 || x == 3)
            }
            dw::DW_AT_low_pc => low = loaded.dwarf.attr_address(unit, v)?,
            dw::DW_AT_high_pc => high = Some(v),
            dw::DW_AT_entry_pc => entry_pc = Some(v),
            dw::DW_AT_ranges => ranges = Some(v),
            _ => {}
        }
    }
    let declaration = decl.declaration;
    out.decls.push(decl);
    if declaration {
        return Ok(None);
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
        return Ok(None);
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
        return Ok(None);
    };
    out.concrete.push(Concrete {
        global,
        decl: out.decls.len() as u32 - 1,
        die: offset,
        frame,
        inline,
        entry,
        high,
        low,
        probe: probe_of(inline, entry, high),
        vars: Some((0, 0)),
    });
    Ok(Some(out.concrete.len() as u32 - 1))
}

/// Whether a unit's top-level subprograms (declarations included) name one of `wanted`,
/// by `DW_AT_name` or `DW_AT_linkage_name`. Nested DIEs are jumped over with
/// `DW_AT_sibling`, so this reads a fraction of the unit.
pub(crate) fn names_any(
    loaded: &Loaded,
    strings: &Strings<'_>,
    unit: &gimli::Unit<R>,
    wanted: &dyn Fn(&str) -> bool,
) -> bool {
    names_any_inner(loaded, strings, unit, wanted).unwrap_or(true)
}

fn names_any_inner(
    loaded: &Loaded,
    strings: &Strings<'_>,
    unit: &gimli::Unit<R>,
    wanted: &dyn Fn(&str) -> bool,
) -> gimli::Result<bool> {
    let mut raw = unit.entries_raw(None)?;
    // Depth of the next entry is `base + raw.next_depth()`: a jump restarts the reader.
    let mut base = 0isize;
    while !raw.is_empty() {
        let depth = base + raw.next_depth();
        let Some(abbrev) = raw.read_abbreviation()? else {
            continue;
        };
        let tag = abbrev.tag();
        let mut sibling = None;
        let mut hit = false;
        for spec in abbrev.attributes() {
            let attr = raw.read_attribute(*spec)?;
            match attr.name() {
                dw::DW_AT_sibling => {
                    if let AttributeValue::UnitRef(o) = attr.value() {
                        sibling = Some(o);
                    }
                }
                dw::DW_AT_name | dw::DW_AT_linkage_name | dw::DW_AT_MIPS_linkage_name
                    if tag == dw::DW_TAG_subprogram && depth == 1 =>
                {
                    if let Some(n) = strings.name(loaded, unit, &attr.value()) {
                        hit |= wanted(strings.get(n));
                    }
                }
                // A name from another unit (LTO, dwz) cannot be checked here.
                dw::DW_AT_abstract_origin | dw::DW_AT_specification => {
                    hit |= matches!(attr.value(), AttributeValue::DebugInfoRef(_));
                }
                _ => {}
            }
        }
        if hit {
            return Ok(true);
        }
        // Without a sibling link the children are read (and ignored) in turn.
        if let (true, Some(s)) = (depth >= 1 && abbrev.has_children(), sibling) {
            raw = unit.entries_raw(Some(s))?;
            base = depth;
        }
    }
    Ok(false)
}
