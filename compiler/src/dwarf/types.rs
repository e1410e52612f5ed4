//! C types from DWARF: names as SystemTap prints them, shapes for access, struct members.

use super::index::{string, Index};
use super::load::Loaded;
use super::R;
use gimli::{constants as dw, AttributeValue, UnitOffset};

/// A type DIE: (unit index, offset in unit).
pub(crate) type TypeRef = (u32, UnitOffset);

/// What a type is, once typedefs and qualifiers are stripped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Integers, `_Bool`, chars; `char_like` for `user_string` purposes.
    Int {
        size: u8,
        signed: bool,
        char_like: bool,
    },
    Float,
    /// `target` is `None` for `void*`.
    Pointer {
        target: Option<TypeRef>,
    },
    Struct {
        union: bool,
    },
    Array {
        elem: Option<TypeRef>,
        count: Option<u64>,
    },
    Enum {
        size: u8,
        signed: bool,
    },
    Void,
    Other,
}

/// A struct or union member, offsets in bits from the start of the aggregate.
pub(crate) struct Member {
    pub ty: Option<TypeRef>,
    pub bit_offset: u64,
    /// `Some(bits)` for bitfields.
    pub bit_size: Option<u64>,
}

pub(crate) struct Types<'a> {
    pub loaded: &'a Loaded,
    pub index: &'a Index,
}

fn udata(v: &AttributeValue<R>) -> Option<u64> {
    match v {
        AttributeValue::Udata(x) => Some(*x),
        AttributeValue::Data1(x) => Some((*x).into()),
        AttributeValue::Data2(x) => Some((*x).into()),
        AttributeValue::Data4(x) => Some((*x).into()),
        AttributeValue::Data8(x) => Some(*x),
        AttributeValue::Sdata(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

impl Types<'_> {
    pub fn entry(&self, t: TypeRef) -> Option<gimli::DebuggingInformationEntry<R>> {
        self.index.units[t.0 as usize].unit.entry(t.1).ok()
    }

    fn unit(&self, t: TypeRef) -> &gimli::Unit<R> {
        &self.index.units[t.0 as usize].unit
    }

    /// The DIE named by `attr` (usually `DW_AT_type`) of the DIE at `t`'s unit.
    pub fn attr_ref(
        &self,
        unit: u32,
        e: &gimli::DebuggingInformationEntry<R>,
        attr: gimli::DwAt,
    ) -> Option<TypeRef> {
        self.index.reference(unit, &e.attr_value(attr)?)
    }

    fn name(&self, t: TypeRef, e: &gimli::DebuggingInformationEntry<R>) -> Option<String> {
        string(self.loaded, self.unit(t), e.attr_value(dw::DW_AT_name)?)
    }

    pub fn byte_size(&self, t: Option<TypeRef>) -> Option<u64> {
        let t = self.strip(t?)?;
        let e = self.entry(t)?;
        if let Some(s) = e.attr_value(dw::DW_AT_byte_size).and_then(|v| udata(&v)) {
            return Some(s);
        }
        match e.tag {
            dw::DW_TAG_pointer_type | dw::DW_TAG_reference_type => Some(8),
            dw::DW_TAG_array_type => {
                let Shape::Array { elem, .. } = self.shape(Some(t)) else {
                    return None;
                };
                let mut size = self.byte_size(elem)?;
                for c in self.array_counts(t) {
                    size *= c?;
                }
                Some(size)
            }
            _ => None,
        }
    }

    /// Skip typedefs and qualifiers.
    pub fn strip(&self, mut t: TypeRef) -> Option<TypeRef> {
        for _ in 0..32 {
            let e = self.entry(t)?;
            match e.tag {
                dw::DW_TAG_typedef
                | dw::DW_TAG_const_type
                | dw::DW_TAG_volatile_type
                | dw::DW_TAG_restrict_type
                | dw::DW_TAG_atomic_type => t = self.attr_ref(t.0, &e, dw::DW_AT_type)?,
                _ => return Some(t),
            }
        }
        None
    }

    pub fn shape(&self, t: Option<TypeRef>) -> Shape {
        let Some(t) = t.and_then(|t| self.strip(t)) else {
            return Shape::Void;
        };
        let Some(e) = self.entry(t) else {
            return Shape::Other;
        };
        let size = e.attr_value(dw::DW_AT_byte_size).and_then(|v| udata(&v));
        match e.tag {
            dw::DW_TAG_base_type => {
                let enc = match e.attr_value(dw::DW_AT_encoding) {
                    Some(AttributeValue::Encoding(enc)) => enc,
                    _ => return Shape::Other,
                };
                let size = size.unwrap_or(0) as u8;
                match enc {
                    dw::DW_ATE_float | dw::DW_ATE_complex_float => Shape::Float,
                    dw::DW_ATE_signed | dw::DW_ATE_signed_char => Shape::Int {
                        size,
                        signed: true,
                        char_like: enc == dw::DW_ATE_signed_char,
                    },
                    dw::DW_ATE_unsigned | dw::DW_ATE_unsigned_char | dw::DW_ATE_boolean => {
                        Shape::Int {
                            size,
                            signed: false,
                            char_like: enc == dw::DW_ATE_unsigned_char,
                        }
                    }
                    _ => Shape::Other,
                }
            }
            dw::DW_TAG_pointer_type
            | dw::DW_TAG_reference_type
            | dw::DW_TAG_rvalue_reference_type => Shape::Pointer {
                target: self.attr_ref(t.0, &e, dw::DW_AT_type),
            },
            dw::DW_TAG_structure_type | dw::DW_TAG_class_type => Shape::Struct { union: false },
            dw::DW_TAG_union_type => Shape::Struct { union: true },
            dw::DW_TAG_enumeration_type => {
                let signed = match self.shape(self.attr_ref(t.0, &e, dw::DW_AT_type)) {
                    Shape::Int { signed, .. } => signed,
                    _ => false,
                };
                Shape::Enum {
                    size: size.unwrap_or(4) as u8,
                    signed,
                }
            }
            dw::DW_TAG_array_type => {
                let elem = self.attr_ref(t.0, &e, dw::DW_AT_type);
                Shape::Array {
                    elem,
                    count: self.array_count(t),
                }
            }
            _ => Shape::Other,
        }
    }

    /// Element count of the first dimension; later dimensions fold into the stride.
    fn array_count(&self, t: TypeRef) -> Option<u64> {
        self.array_counts(t).into_iter().next().flatten()
    }

    /// The element count of every dimension of an array, outermost first.
    pub fn array_counts(&self, t: TypeRef) -> Vec<Option<u64>> {
        let unit = self.unit(t);
        let Ok(mut tree) = unit.entries_tree(Some(t.1)) else {
            return Vec::new();
        };
        let Ok(root) = tree.root() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag != dw::DW_TAG_subrange_type {
                continue;
            }
            let count = e
                .attr_value(dw::DW_AT_count)
                .and_then(|v| udata(&v))
                .or_else(|| {
                    let upper = e
                        .attr_value(dw::DW_AT_upper_bound)
                        .and_then(|v| udata(&v))?;
                    let lower = e
                        .attr_value(dw::DW_AT_lower_bound)
                        .and_then(|v| udata(&v))
                        .unwrap_or(0);
                    Some(upper + 1 - lower)
                });
            out.push(count);
        }
        out
    }

    /// The type name as SystemTap's `dwarf_type_name` spells it.
    pub fn name_of(&self, t: Option<TypeRef>) -> String {
        let Some(t) = t else { return "void".into() };
        let key = (t.0, t.1 .0);
        if let Some(n) = self
            .index
            .type_names
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return n;
        }
        let name = super::typename::name(self, Some(t));
        if let Ok(mut m) = self.index.type_names.lock() {
            m.insert(key, name.clone());
        }
        name
    }

    /// Find a member by name, looking through anonymous struct/union members.
    pub fn member(&self, aggregate: TypeRef, name: &str) -> Option<Member> {
        for (n, m) in self.members(aggregate) {
            match n {
                Some(n) if n == name => return Some(m),
                None => {
                    // Anonymous struct/union: its members belong to the outer scope.
                    if let Some(inner) = m.ty.and_then(|t| self.strip(t)) {
                        if let Some(found) = self.member(inner, name) {
                            return Some(Member {
                                bit_offset: found.bit_offset + m.bit_offset,
                                ..found
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The direct members of a struct or union, in declaration order (anonymous ones
    /// unnamed). A member whose location cannot be read ends the list.
    pub fn members(&self, aggregate: TypeRef) -> Vec<(Option<String>, Member)> {
        let mut out = Vec::new();
        let unit = self.unit(aggregate);
        let Ok(mut tree) = unit.entries_tree(Some(aggregate.1)) else {
            return out;
        };
        let Ok(root) = tree.root() else { return out };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag != dw::DW_TAG_member || e.attr_value(dw::DW_AT_declaration).is_some() {
                continue;
            }
            let ty = self.attr_ref(aggregate.0, e, dw::DW_AT_type);
            let byte_off = match e.attr_value(dw::DW_AT_data_member_location) {
                None => Some(0),
                Some(v) => udata(&v).or_else(|| plus_uconst(unit, &v)),
            };
            let Some(byte_off) = byte_off else { break };
            let bit_size = e.attr_value(dw::DW_AT_bit_size).and_then(|v| udata(&v));
            let mut bit_offset = byte_off * 8;
            if let Some(bits) = bit_size {
                if let Some(b) = e
                    .attr_value(dw::DW_AT_data_bit_offset)
                    .and_then(|v| udata(&v))
                {
                    bit_offset = b;
                } else if let Some(b) = e.attr_value(dw::DW_AT_bit_offset).and_then(|v| udata(&v)) {
                    // DWARF 2/3 count from the storage unit's most significant bit.
                    let storage = e
                        .attr_value(dw::DW_AT_byte_size)
                        .and_then(|v| udata(&v))
                        .or_else(|| self.byte_size(ty));
                    let Some(storage) = storage else { break };
                    bit_offset = byte_off * 8 + storage * 8 - b - bits;
                }
            }
            let name = self.name(aggregate, e);
            out.push((
                name,
                Member {
                    ty,
                    bit_offset,
                    bit_size,
                },
            ));
        }
        out
    }

    /// Whether the type (typedefs stripped) is only declared here (`struct foo;`).
    pub fn is_declaration(&self, t: TypeRef) -> bool {
        self.entry(t)
            .is_some_and(|e| e.attr_value(dw::DW_AT_declaration).is_some())
    }

    /// The DIE name of a type with typedefs and qualifiers stripped (`char` for `const char`).
    pub fn base_name(&self, t: Option<TypeRef>) -> Option<String> {
        let t = self.strip(t?)?;
        let e = self.entry(t)?;
        self.name(t, &e)
    }

    /// Member names in declaration order (anonymous members expanded), for hints.
    pub fn member_names(&self, aggregate: TypeRef) -> Vec<String> {
        let mut out = Vec::new();
        let unit = self.unit(aggregate);
        let Ok(mut tree) = unit.entries_tree(Some(aggregate.1)) else {
            return out;
        };
        let Ok(root) = tree.root() else { return out };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag != dw::DW_TAG_member {
                continue;
            }
            match self.name(aggregate, e) {
                Some(n) => out.push(n),
                None => {
                    if let Some(inner) = self
                        .attr_ref(aggregate.0, e, dw::DW_AT_type)
                        .and_then(|t| self.strip(t))
                    {
                        out.extend(self.member_names(inner));
                    }
                }
            }
        }
        out
    }
}

/// Old-style member locations: `DW_OP_plus_uconst N`.
fn plus_uconst(unit: &gimli::Unit<R>, v: &AttributeValue<R>) -> Option<u64> {
    let AttributeValue::Exprloc(e) = v else {
        return None;
    };
    let mut ops = e.clone().operations(unit.encoding());
    match ops.next().ok()?? {
        gimli::Operation::PlusConstant { value } => Some(value),
        _ => None,
    }
}
