//! `@cast(p, "type")` and `@var("name@cu.c")`: types and global variables by name.

use super::index::{string, Index};
use super::load::Loaded;
use super::location::{self, Located, Place};
use super::types::TypeRef;
use super::TargetError;
use crate::access::AccessOp;
use gimli::constants as dw;
use gimli::Reader;

/// `struct foo`, `union foo`, `enum foo`, or a plain name (typedef or base type).
fn split_type_name(name: &str) -> (Option<gimli::DwTag>, &str) {
    let name = name.trim();
    for (prefix, tag) in [
        ("struct ", dw::DW_TAG_structure_type),
        ("union ", dw::DW_TAG_union_type),
        ("enum ", dw::DW_TAG_enumeration_type),
        ("class ", dw::DW_TAG_class_type),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return (Some(tag), rest.trim());
        }
    }
    (None, name)
}

/// The first definition of a type named `name`; declarations only as a last resort.
pub(crate) fn find_type(
    loaded: &Loaded,
    index: &Index,
    name: &str,
) -> Result<TypeRef, TargetError> {
    let (tag, bare) = split_type_name(name);
    let mut declared = None;
    for (u, info) in index.units.iter().enumerate() {
        let mut entries = info.unit.entries();
        while let Ok(Some(e)) = entries.next_dfs() {
            let tag_ok = match tag {
                Some(t) => e.tag == t,
                None => matches!(
                    e.tag,
                    dw::DW_TAG_typedef
                        | dw::DW_TAG_base_type
                        | dw::DW_TAG_structure_type
                        | dw::DW_TAG_union_type
                        | dw::DW_TAG_enumeration_type
                ),
            };
            if !tag_ok {
                continue;
            }
            let Some(n) = e
                .attr_value(dw::DW_AT_name)
                .and_then(|v| string(loaded, &info.unit, v))
            else {
                continue;
            };
            if n != bare {
                continue;
            }
            let t = (u as u32, e.offset());
            if e.attr_value(dw::DW_AT_declaration).is_none() {
                return Ok(t);
            }
            declared.get_or_insert(t);
        }
    }
    declared.ok_or_else(|| TargetError::new(format!("no type `{name}` in the debug info")))
}

/// Whether a unit's name matches the `@cu` part of `@var("name@cu")`: the same file
/// name, or a path that ends with it.
fn cu_matches(unit_name: &str, cu: &str) -> bool {
    unit_name == cu || unit_name.ends_with(&format!("/{cu}"))
}

/// A global or file-static variable: where it is and its type.
pub(crate) fn find_global(
    loaded: &Loaded,
    index: &Index,
    name: &str,
    cu: Option<&str>,
) -> Result<(Place, Option<TypeRef>), TargetError> {
    for (u, info) in index.units.iter().enumerate() {
        let unit = &info.unit;
        if let Some(cu) = cu {
            let unit_name = unit
                .name
                .as_ref()
                .and_then(|n| n.to_string_lossy().ok().map(|c| c.into_owned()))
                .unwrap_or_default();
            if !cu_matches(&unit_name, cu) {
                continue;
            }
        }
        let Ok(mut tree) = unit.entries_tree(None) else {
            continue;
        };
        let Ok(root) = tree.root() else { continue };
        let mut children = root.children();
        // Only the unit's own level: globals and file statics, not function statics.
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag != dw::DW_TAG_variable || e.attr_value(dw::DW_AT_location).is_none() {
                continue;
            }
            let n = e
                .attr_value(dw::DW_AT_name)
                .and_then(|v| string(loaded, unit, v));
            if n.as_deref() != Some(name) {
                continue;
            }
            let ty = e
                .attr_value(dw::DW_AT_type)
                .and_then(|v| index.reference(u as u32, &v))
                .or_else(|| {
                    // A definition that completes a declaration carries the type there.
                    let spec = e.attr_value(dw::DW_AT_specification)?;
                    let d = index.reference(u as u32, &spec)?;
                    let de = index.units[d.0 as usize].unit.entry(d.1).ok()?;
                    index.reference(d.0, &de.attr_value(dw::DW_AT_type)?)
                });
            let no_frame = || None;
            return match location::locate(loaded, unit, e, 0, &no_frame) {
                Located::At(place @ Place::Memory(_)) if is_static(&place) => Ok((place, ty)),
                _ => Err(TargetError::new(format!(
                    "the location of `@var(\"{name}\")` is not a static address"
                ))),
            };
        }
    }
    Err(TargetError::new(match cu {
        Some(cu) => format!("no global variable `{name}` in a compilation unit `{cu}`"),
        None => format!("no global variable `{name}` in the debug info"),
    }))
}

fn is_static(place: &Place) -> bool {
    matches!(place, Place::Memory(ops) if matches!(ops.first(), Some(AccessOp::StaticAddr(_))))
}
