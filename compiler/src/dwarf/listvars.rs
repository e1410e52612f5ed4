//! The variables `-L` prints, read in the unit scan's own pass: listing never parses a unit twice.

// Each instance's own parameters and locals with names, type names and availability at
// its probe address.

use super::index::{FuncDie, Index};
use super::load::Loaded;
use super::scan::{Name, Strings, UnitScan};
use super::typename::{self, Scanned};
use super::types::Types;
use super::{Variable, R};
use gimli::{AttributeValue, UnitOffset};
use rustc_hash::FxHashMap;

/// A variable or parameter DIE directly under a subprogram or inlined subroutine.
pub(crate) struct VarDie {
    pub global: usize,
    pub name: Option<Name>,
    pub origin: Option<usize>,
    pub ty: Option<usize>,
    pub is_param: bool,
    pub available: bool,
    /// Index of the concrete instance it belongs to, if any.
    pub owner: Option<u32>,
    /// Something this pass does not read the way the slow path does (a name it cannot
    /// borrow, a reference of another form): its instance is read the slow way.
    pub odd: bool,
}

/// One listed variable of a concrete instance.
pub(crate) struct ListedVar {
    name: Name,
    /// Index into `UnitScan::type_names`, or `NO_TYPE` for `void`.
    ty: u32,
    is_param: bool,
    available: bool,
}

const NO_TYPE: u32 = u32::MAX;

/// Whether a location (or constant value) covers `pc`: exactly the cases where
/// `location::locate` does not answer `OptimizedOut`.
pub(crate) fn available_at(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    has_const: bool,
    location: Option<AttributeValue<R>>,
    pc: u64,
) -> bool {
    if has_const {
        return true;
    }
    match location {
        None => false,
        // An expression that is not empty is readable, unsupported or an entry value.
        Some(AttributeValue::Exprloc(e)) => !gimli::Reader::is_empty(&e.0),
        Some(other) => {
            let Ok(Some(mut list)) = loaded.dwarf.attr_locations(unit, other) else {
                return false;
            };
            while let Ok(Some(e)) = list.next() {
                if e.range.begin <= pc && pc < e.range.end {
                    return !gimli::Reader::is_empty(&e.data.0);
                }
            }
            false
        }
    }
}

/// What the resolution after a unit's pass needs besides the scan itself.
pub(crate) struct UnitCx<'a> {
    pub loaded: &'a Loaded,
    pub index: &'a Index,
    pub unit: u32,
    pub parsed: &'a gimli::Unit<R>,
    /// C: structs and unions hold no functions.
    pub c_language: bool,
}

/// Turn the pass's variable DIEs into each concrete instance's list: names and types
/// through abstract origins of the same unit, type names read while the unit is parsed.
pub(crate) fn resolve(cx: &UnitCx<'_>, vars: &[VarDie], out: &mut UnitScan) {
    let (start, end) = unit_range(cx.parsed);
    let by_global = |g: usize| -> Option<&VarDie> {
        let i = vars.binary_search_by_key(&g, |v| v.global).ok()?;
        Some(&vars[i])
    };
    let scanned = Scanned {
        loaded: cx.loaded,
        index: cx.index,
        unit: cx.unit,
        parsed: cx.parsed,
    };
    let mut type_ids: FxHashMap<usize, u32> = FxHashMap::default();
    let mut type_name = |g: usize, names: &mut Vec<String>| -> u32 {
        *type_ids.entry(g).or_insert_with(|| {
            let name = if (start..end).contains(&g) {
                typename::name(&scanned, Some((cx.unit, UnitOffset(g - start))))
            } else {
                // A type in another unit: named through the index, which parses that unit.
                let types = Types {
                    loaded: cx.loaded,
                    index: cx.index,
                };
                types.name_of(cx.index.locate(g))
            };
            names.push(name);
            (names.len() - 1) as u32
        })
    };
    // Each instance's variables in DIE order (a nested instance may sit between them).
    let mut order: Vec<usize> = (0..vars.len())
        .filter(|&i| vars[i].owner.is_some())
        .collect();
    order.sort_by_key(|&i| vars[i].owner);
    for group in order.chunk_by(|&a, &b| vars[a].owner == vars[b].owner) {
        let Some(owner) = vars[group[0]].owner else {
            continue;
        };
        let first = out.listed.len();
        let mut ok = true;
        for v in group.iter().map(|&i| &vars[i]) {
            let origin = match v.origin {
                Some(g) => match by_global(g) {
                    Some(o) if !o.odd => Some(o),
                    _ => {
                        ok = false;
                        break;
                    }
                },
                None => None,
            };
            if v.odd {
                ok = false;
                break;
            }
            let Some(name) = v.name.or_else(|| origin?.name) else {
                continue;
            };
            let ty = match v.ty.or_else(|| origin?.ty) {
                Some(g) => type_name(g, &mut out.type_names),
                None => NO_TYPE,
            };
            out.listed.push(ListedVar {
                name,
                ty,
                is_param: v.is_param,
                available: v.available,
            });
        }
        let c = &mut out.concrete[owner as usize];
        if ok {
            c.vars = Some((first as u32, out.listed.len() as u32));
        } else {
            c.vars = None;
            out.listed.truncate(first);
        }
    }
}

/// The `.debug_info` range of a unit.
fn unit_range(unit: &gimli::Unit<R>) -> (usize, usize) {
    let start = UnitOffset(0)
        .to_debug_info_offset(&unit.header)
        .map_or(0, |o| o.0);
    (start, start + unit.header.length_including_self())
}

/// The variables of the instance `fd` probed at `pc`, from its unit's pass; `None` when the
/// pass could not read them (the caller then walks the DIEs).
pub(crate) fn listed(
    loaded: &Loaded,
    index: &Index,
    fd: FuncDie,
    pc: u64,
) -> Option<Vec<Variable>> {
    let scan = index.scan(loaded, fd.unit);
    let c = scan.concrete.get(fd.concrete as usize)?;
    if c.die != fd.die || c.probe != pc {
        return None;
    }
    let (first, end) = c.vars?;
    let strings = Strings::new(loaded);
    scan.listed[first as usize..end as usize]
        .iter()
        .map(|v| {
            // A name that is not UTF-8 is read the slow way, which replaces bad bytes.
            let name = std::str::from_utf8(strings.bytes(v.name)).ok()?;
            Some(Variable {
                name: name.to_string(),
                c_type: match v.ty {
                    NO_TYPE => "void".to_string(),
                    t => scan.type_names[t as usize].clone(),
                },
                is_param: v.is_param,
                available: v.available,
            })
        })
        .collect()
}
