//! C type names as SystemTap's `dwarf_type_name` spells them, read from any source of type DIEs.

use super::index::{string, Index};
use super::load::Loaded;
use super::types::{TypeRef, Types};
use super::R;
use gimli::{constants as dw, AttributeValue};

/// Where type DIEs are read: the index's units, or one unit a scan has parsed (and
/// will drop) while it names the types its variables use.
pub(crate) trait TypeDies {
    fn loaded(&self) -> &Loaded;
    fn index(&self) -> &Index;
    fn unit_of(&self, unit: u32) -> &gimli::Unit<R>;
}

impl TypeDies for Types<'_> {
    fn loaded(&self) -> &Loaded {
        self.loaded
    }

    fn index(&self) -> &Index {
        self.index
    }

    fn unit_of(&self, unit: u32) -> &gimli::Unit<R> {
        &self.index.units[unit as usize].unit
    }
}

/// One parsed unit standing in for the index's copy of it; other units come from the index.
pub(crate) struct Scanned<'a> {
    pub loaded: &'a Loaded,
    pub index: &'a Index,
    pub unit: u32,
    pub parsed: &'a gimli::Unit<R>,
}

impl TypeDies for Scanned<'_> {
    fn loaded(&self) -> &Loaded {
        self.loaded
    }

    fn index(&self) -> &Index {
        self.index
    }

    fn unit_of(&self, unit: u32) -> &gimli::Unit<R> {
        match unit == self.unit {
            true => self.parsed,
            false => &self.index.units[unit as usize].unit,
        }
    }
}

fn entry<D: TypeDies>(d: &D, t: TypeRef) -> Option<gimli::DebuggingInformationEntry<R>> {
    d.unit_of(t.0).entry(t.1).ok()
}

fn attr_ref<D: TypeDies>(
    d: &D,
    unit: u32,
    e: &gimli::DebuggingInformationEntry<R>,
    attr: gimli::DwAt,
) -> Option<TypeRef> {
    d.index().reference(unit, &e.attr_value(attr)?)
}

fn die_name<D: TypeDies>(
    d: &D,
    t: TypeRef,
    e: &gimli::DebuggingInformationEntry<R>,
) -> Option<String> {
    string(d.loaded(), d.unit_of(t.0), e.attr_value(dw::DW_AT_name)?)
}

/// The printed name of `t` (`void` for none), uncached.
pub(crate) fn name<D: TypeDies>(d: &D, t: Option<TypeRef>) -> String {
    name_rec(d, t, 0)
}

fn name_rec<D: TypeDies>(d: &D, t: Option<TypeRef>, depth: u32) -> String {
    let Some(t) = t else { return "void".into() };
    let Some(e) = entry(d, t) else {
        return "?".into();
    };
    if depth > 32 {
        return "?".into();
    }
    let named = |prefix: &str| {
        format!(
            "{prefix}{}",
            die_name(d, t, &e).unwrap_or_else(|| "{...}".into())
        )
    };
    let sub = || attr_ref(d, t.0, &e, dw::DW_AT_type);
    match e.tag {
        dw::DW_TAG_base_type | dw::DW_TAG_typedef | dw::DW_TAG_unspecified_type => named(""),
        dw::DW_TAG_structure_type => named("struct "),
        dw::DW_TAG_union_type => named("union "),
        dw::DW_TAG_class_type => named("class "),
        dw::DW_TAG_enumeration_type => named("enum "),
        dw::DW_TAG_pointer_type => pointer_name(d, sub(), depth),
        dw::DW_TAG_reference_type => format!("{}&", name_rec(d, sub(), depth + 1)),
        dw::DW_TAG_array_type => format!("{}[]", name_rec(d, sub(), depth + 1)),
        dw::DW_TAG_const_type => format!("{} const", name_rec(d, sub(), depth + 1)),
        dw::DW_TAG_volatile_type => format!("{} volatile", name_rec(d, sub(), depth + 1)),
        dw::DW_TAG_restrict_type => format!("{} restrict", name_rec(d, sub(), depth + 1)),
        dw::DW_TAG_atomic_type => format!("{} _Atomic", name_rec(d, sub(), depth + 1)),
        _ => "?".into(),
    }
}

/// A pointer to `target`: the stars of a function pointer go inside its parentheses
/// (`int (**) (int)`), and the decayed builtin `va_list` keeps its name.
fn pointer_name<D: TypeDies>(d: &D, target: Option<TypeRef>, depth: u32) -> String {
    let mut stars = 1;
    let mut cur = target;
    while let Some((t, e)) = cur.and_then(|t| Some((t, entry(d, t)?))) {
        match e.tag {
            dw::DW_TAG_pointer_type if stars < 8 => {
                stars += 1;
                cur = attr_ref(d, t.0, &e, dw::DW_AT_type);
            }
            dw::DW_TAG_subroutine_type => return function_pointer(d, t, stars, depth),
            _ => break,
        }
    }
    if let Some((t, e)) = target.and_then(|t| Some((t, entry(d, t)?))) {
        if e.tag == dw::DW_TAG_structure_type
            && die_name(d, t, &e).as_deref() == Some("__va_list_tag")
        {
            return "va_list".into();
        }
    }
    format!("{}*", name_rec(d, target, depth + 1))
}

/// `int (*) (int, char*)`, with `stars` levels of pointer.
fn function_pointer<D: TypeDies>(d: &D, f: TypeRef, stars: usize, depth: u32) -> String {
    let Some(e) = entry(d, f) else {
        return "?".into();
    };
    let ret = name_rec(d, attr_ref(d, f.0, &e, dw::DW_AT_type), depth + 1);
    let mut params = Vec::new();
    let unit = d.unit_of(f.0);
    let mut tree = unit.entries_tree(Some(f.1)).ok();
    if let Some(root) = tree.as_mut().and_then(|t| t.root().ok()) {
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let c = child.entry();
            match c.tag {
                dw::DW_TAG_formal_parameter => {
                    params.push(name_rec(d, attr_ref(d, f.0, c, dw::DW_AT_type), depth + 1))
                }
                dw::DW_TAG_unspecified_parameters => params.push("...".into()),
                _ => {}
            }
        }
    }
    let prototyped = matches!(
        e.attr_value(dw::DW_AT_prototyped),
        Some(AttributeValue::Flag(true))
    );
    if params.is_empty() && prototyped {
        params.push("void".into());
    }
    format!("{ret} ({}) ({})", "*".repeat(stars), params.join(", "))
}
