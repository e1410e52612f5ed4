//! Access plans: a `$var->member[i]` chain at one site → ops on a 64-bit accumulator.

use super::index::{FuncDie, Index};
use super::load::Loaded;
use super::location::{Located, Place};
use super::scope::{self, ScopeVar};
use super::types::{Shape, TypeRef, Types};
use super::{FunctionSite, PathBase, PathStep, TargetError, TargetPath, VarLookup};
use crate::access::{AccessOp, AccessPlan, DwarfReg, ValueInfo};
use gimli::constants as dw;

/// `acc += n`, folded into the previous op when it is an address computation.
fn push_add(ops: &mut Vec<AccessOp>, n: i64) {
    if n == 0 {
        return;
    }
    match ops.last_mut() {
        Some(AccessOp::RegAddr { offset, .. }) => *offset += n,
        Some(AccessOp::StaticAddr(a)) => *a = a.wrapping_add_signed(n),
        Some(AccessOp::Add(k)) => *k += n,
        _ => ops.push(AccessOp::Add(n)),
    }
}

pub(super) fn load_size(size: u64) -> Option<u8> {
    matches!(size, 1 | 2 | 4 | 8).then_some(size as u8)
}

/// The value held at `place`, `size` bytes wide.
pub(super) fn value_of(place: Place, size: u8, signed: bool) -> Vec<AccessOp> {
    match place {
        Place::Memory(mut ops) => {
            ops.push(AccessOp::Load { size, signed });
            ops
        }
        Place::Value(mut ops) => {
            // A narrow value in a register has undefined upper bits: cut them.
            if size < 8 && matches!(ops.last(), Some(AccessOp::Reg(_))) {
                ops.push(AccessOp::Bitfield {
                    shift: 0,
                    bits: size * 8,
                    signed,
                });
            }
            ops
        }
    }
}

/// Find `name` among the variables in scope: the innermost wins.
fn lookup<'v>(vars: &'v [ScopeVar], name: &str) -> VarLookup<&'v ScopeVar> {
    match vars
        .iter()
        .filter(|v| v.name == name)
        .max_by_key(|v| v.depth)
    {
        Some(v) => VarLookup::Found(v),
        None => VarLookup::NotInScope,
    }
}

pub(super) struct Walk<'a> {
    pub types: Types<'a>,
    /// The expression text so far, for messages (`$m->interface`).
    pub text: String,
}

/// A bitfield still to extract: (shift, bits, signed, storage size).
pub(super) type Bitfield = (u8, u8, bool, u8);

pub(crate) fn plan(
    loaded: &Loaded,
    index: &Index,
    site: &FunctionSite,
    retprobe: bool,
    expr: &TargetPath,
) -> Result<AccessPlan, TargetError> {
    let types = Types { loaded, index };
    let Some(fd) = site.die else {
        return Err(TargetError::new(format!(
            "`{}` is not available: `{}` has no debug info",
            base_text(expr),
            site.name
        )));
    };
    let (place, ty) = base_place(loaded, index, site, fd, retprobe, &expr.base)?;
    let mut w = Walk {
        types,
        text: base_text(expr),
    };
    w.finish(place, ty, expr)
}

/// Where the base of a target expression is, and its type.
pub(super) fn base_place(
    loaded: &Loaded,
    index: &Index,
    site: &FunctionSite,
    fd: FuncDie,
    retprobe: bool,
    base: &PathBase,
) -> Result<(Place, Option<TypeRef>), TargetError> {
    let types = Types { loaded, index };
    Ok(match base {
        PathBase::Return => return_value(&types, site, fd, retprobe)?,
        // In a `.return` probe a variable is read at entry, as SystemTap does: the
        // plan is for the `.function` placement, where the entry program runs.
        PathBase::Var(name) => variable(loaded, index, site, fd, name)?,
        PathBase::Cast(type_name) => {
            let t = super::cast::find_type(loaded, index, type_name)?;
            (Place::Memory(vec![AccessOp::Script]), Some(t))
        }
        PathBase::Global { name, cu } => {
            super::cast::find_global(loaded, index, name, cu.as_deref())?
        }
    })
}

pub(super) fn base_text(expr: &TargetPath) -> String {
    match &expr.base {
        PathBase::Return => "$return".into(),
        PathBase::Var(n) => format!("${n}"),
        PathBase::Cast(t) => format!("@cast(.., \"{t}\")"),
        PathBase::Global { name, cu: None } => format!("@var(\"{name}\")"),
        PathBase::Global { name, cu: Some(cu) } => format!("@var(\"{name}@{cu}\")"),
    }
}

/// The declared return type, from the abstract origin or specification when not on the DIE.
pub(crate) fn return_type(types: &Types<'_>, fd: FuncDie) -> Option<TypeRef> {
    let mut die = (fd.unit, fd.die);
    for _ in 0..4 {
        let e = types.entry(die)?;
        if let Some(t) = types.attr_ref(die.0, &e, dw::DW_AT_type) {
            return Some(t);
        }
        die = types
            .attr_ref(die.0, &e, dw::DW_AT_abstract_origin)
            .or_else(|| types.attr_ref(die.0, &e, dw::DW_AT_specification))?;
    }
    None
}

pub(super) fn return_value(
    types: &Types<'_>,
    site: &FunctionSite,
    fd: FuncDie,
    retprobe: bool,
) -> Result<(Place, Option<TypeRef>), TargetError> {
    if !retprobe {
        return Err(TargetError::new(
            "`$return` is only available in `.return` probes",
        ));
    }
    let ty = return_type(types, fd);
    match ty {
        None => Err(TargetError::new(format!(
            "`$return` is not available: `{}` returns `void`",
            site.name
        ))),
        Some(t) => Ok((Place::Value(vec![AccessOp::Reg(DwarfReg(0))]), Some(t))),
    }
}

pub(super) fn variable(
    loaded: &Loaded,
    index: &Index,
    site: &FunctionSite,
    fd: FuncDie,
    name: &str,
) -> Result<(Place, Option<TypeRef>), TargetError> {
    let vars = scope::scope_vars(loaded, index, fd, site.probe);
    let v = match lookup(&vars, name) {
        VarLookup::Found(v) => v,
        VarLookup::OptimizedOut | VarLookup::NotInScope => {
            let names: Vec<String> = vars.iter().map(|v| format!("`${}`", v.name)).collect();
            let hint = if names.is_empty() {
                "no variables are".to_string()
            } else {
                format!("available: {}", names.join(", "))
            };
            let hint = if names.is_empty() {
                format!("{hint} in scope")
            } else {
                hint
            };
            return Err(TargetError::new(format!(
                "`${name}` is not in scope at `{}`; {hint}",
                site.name
            )));
        }
    };
    match scope::locate(loaded, index, fd, v, site.probe) {
        Located::At(place) => Ok((place, v.ty)),
        Located::OptimizedOut | Located::EntryValue => Err(TargetError::new(format!(
            "`${name}` is optimized out at `{}`",
            site.label(site.probe)
        ))),
        Located::Unsupported(what) => Err(TargetError::new(format!(
            "the location of `${name}` at `{}` is {what}, which is not supported yet",
            site.label(site.probe)
        ))),
    }
}

impl Walk<'_> {
    fn type_name(&self, t: Option<TypeRef>) -> String {
        self.types.name_of(t)
    }

    /// Apply the chain, then read the final value.
    fn finish(
        &mut self,
        place: Place,
        ty: Option<TypeRef>,
        expr: &TargetPath,
    ) -> Result<AccessPlan, TargetError> {
        let (place, ty, bitfield) = self.walk_chain(place, ty, expr)?;
        self.read(place, ty, bitfield, expr.address_of)
    }

    /// Apply the chain's members and indexes: where the result is, its type, and a
    /// bitfield still to extract.
    pub(super) fn walk_chain(
        &mut self,
        mut place: Place,
        mut ty: Option<TypeRef>,
        expr: &TargetPath,
    ) -> Result<(Place, Option<TypeRef>, Option<Bitfield>), TargetError> {
        let mut bitfield = None;
        // Dimensions of a multi-dimensional array already indexed.
        let mut consumed = 0;
        for (i, step) in expr.chain.iter().enumerate() {
            if consumed > 0 && matches!(step, PathStep::Member(_)) {
                return Err(TargetError::at(
                    format!("`{}` is an array row, it has no members", self.text),
                    i,
                ));
            }
            if bitfield.is_some() {
                return Err(TargetError::at(
                    format!(
                        "`{}` is a bitfield, it has no members or elements",
                        self.text
                    ),
                    i,
                ));
            }
            match step {
                PathStep::Member(name) => {
                    let (ops, aggregate) = self.aggregate(place, ty, i)?;
                    let Some(m) = self.types.member(aggregate, name) else {
                        let members: Vec<String> = self
                            .types
                            .member_names(aggregate)
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect();
                        return Err(TargetError::at(
                            format!(
                                "no member `{name}` in `{}`; members are: {}",
                                self.type_name(Some(aggregate)),
                                members.join(", ")
                            ),
                            i,
                        ));
                    };
                    let mut ops = ops;
                    match m.bit_size {
                        None => push_add(&mut ops, (m.bit_offset / 8) as i64),
                        Some(bits) => {
                            let shift = m.bit_offset % 8;
                            push_add(&mut ops, (m.bit_offset / 8) as i64);
                            let size = [1u8, 2, 4, 8]
                                .into_iter()
                                .find(|s| u64::from(*s) * 8 >= shift + bits)
                                .ok_or_else(|| {
                                    TargetError::at(format!("bitfield `{name}` is too wide"), i)
                                })?;
                            let signed = matches!(
                                self.types.shape(m.ty),
                                Shape::Int { signed: true, .. } | Shape::Enum { signed: true, .. }
                            );
                            bitfield = Some((shift as u8, bits as u8, signed, size));
                        }
                    }
                    place = Place::Memory(ops);
                    ty = m.ty;
                    self.text = format!("{}->{name}", self.text);
                }
                PathStep::Index => {
                    let (ops, elem, rest) = self.element(place, ty, consumed, i)?;
                    place = Place::Memory(ops);
                    // Inside a multi-dimensional array the type stays the array's.
                    consumed = rest;
                    if rest == 0 {
                        ty = elem;
                    }
                    self.text = format!("{}[..]", self.text);
                }
            }
        }
        Ok((place, ty, bitfield))
    }

    /// The value (or with `address_of`, the address) at `place`.
    fn read(
        &mut self,
        place: Place,
        ty: Option<TypeRef>,
        bitfield: Option<Bitfield>,
        address_of: bool,
    ) -> Result<AccessPlan, TargetError> {
        if address_of {
            if bitfield.is_some() {
                return Err(TargetError::new(format!(
                    "cannot take the address of bitfield `{}`",
                    self.text
                )));
            }
            let Place::Memory(ops) = place else {
                return Err(TargetError::new(format!(
                    "`{}` is not in memory, it has no address",
                    self.text
                )));
            };
            let is_char = matches!(
                self.types.shape(ty),
                Shape::Int {
                    char_like: true,
                    ..
                }
            );
            return Ok(AccessPlan {
                ops,
                value: ValueInfo {
                    c_type: format!("{}*", self.type_name(ty)),
                    is_char_pointer: is_char,
                    is_pointer: true,
                },
            });
        }
        let c_type = self.type_name(ty);
        let (ops, is_pointer, is_char_pointer) = match self.types.shape(ty) {
            Shape::Int { size, signed, .. } | Shape::Enum { size, signed } => {
                let size = load_size(size.into()).ok_or_else(|| {
                    TargetError::new(format!("`{}` has an unsupported size", self.text))
                })?;
                match bitfield {
                    Some((shift, bits, signed, storage)) => {
                        let mut ops = value_of(place, storage, false);
                        ops.push(AccessOp::Bitfield {
                            shift,
                            bits,
                            signed,
                        });
                        (ops, false, false)
                    }
                    None => (value_of(place, size, signed), false, false),
                }
            }
            Shape::Pointer { target } => {
                let is_char = matches!(
                    self.types.shape(target),
                    Shape::Int {
                        char_like: true,
                        ..
                    }
                );
                (value_of(place, 8, false), true, is_char && target.is_some())
            }
            Shape::Array { elem, .. } => {
                // Arrays decay to the address of their first element, as in C.
                let Place::Memory(ops) = place else {
                    return Err(TargetError::new(format!(
                        "array `{}` is not in memory",
                        self.text
                    )));
                };
                let is_char = matches!(
                    self.types.shape(elem),
                    Shape::Int {
                        char_like: true,
                        ..
                    }
                );
                (ops, true, is_char)
            }
            Shape::Struct { .. } => {
                return Err(TargetError::new(format!(
                    "`{}` is a `{c_type}`, not a scalar; pick a member or take its address",
                    self.text
                )));
            }
            // As SystemTap reads them: the bits of the value, as a long.
            Shape::Float => match self.types.byte_size(ty).and_then(load_size) {
                Some(size @ (4 | 8)) => (value_of(place, size, false), false, false),
                _ => {
                    return Err(TargetError::new(format!(
                        "`{}` has type `{c_type}`, whose size cannot be read as a long",
                        self.text
                    )));
                }
            },
            Shape::Void | Shape::Other => {
                return Err(TargetError::new(format!(
                    "`{}` has type `{c_type}`, which cannot be read",
                    self.text
                )));
            }
        };
        Ok(AccessPlan {
            ops,
            value: ValueInfo {
                c_type,
                is_char_pointer,
                is_pointer,
            },
        })
    }

    /// The address of the struct that `->`/`.` applies to: through a pointer or in place.
    fn aggregate(
        &self,
        place: Place,
        ty: Option<TypeRef>,
        step: usize,
    ) -> Result<(Vec<AccessOp>, TypeRef), TargetError> {
        let not_struct = || {
            TargetError::at(
                format!(
                    "`{}` has type `{}`, not a struct, union or pointer to one",
                    self.text,
                    self.type_name(ty)
                ),
                step,
            )
        };
        match self.types.shape(ty) {
            Shape::Pointer { target } => {
                let Some(t) = target.and_then(|t| self.types.strip(t)) else {
                    return Err(not_struct());
                };
                if !matches!(self.types.shape(Some(t)), Shape::Struct { .. }) {
                    return Err(not_struct());
                }
                Ok((value_of(place, 8, false), t))
            }
            Shape::Struct { .. } => match place {
                Place::Memory(ops) => Ok((
                    ops,
                    ty.and_then(|t| self.types.strip(t))
                        .ok_or_else(not_struct)?,
                )),
                Place::Value(_) => Err(TargetError::at(
                    format!(
                        "`{}` is a struct held in registers, which is not supported yet",
                        self.text
                    ),
                    step,
                )),
            },
            _ => Err(not_struct()),
        }
    }

    /// The address of element `[i]`: in an array in place, or through a pointer.
    fn element(
        &self,
        place: Place,
        ty: Option<TypeRef>,
        consumed: usize,
        step: usize,
    ) -> Result<(Vec<AccessOp>, Option<TypeRef>, usize), TargetError> {
        // The element size is multiplied by the counts of the dimensions after this one.
        let mut rows = 1;
        let mut rest = 0;
        let (mut ops, elem) = match self.types.shape(ty) {
            Shape::Array { elem, .. } => {
                if let Some(t) = ty.and_then(|t| self.types.strip(t)) {
                    let counts = self.types.array_counts(t);
                    if counts.len() > 1 {
                        for c in &counts[consumed + 1..] {
                            let Some(c) = c else {
                                return Err(TargetError::at(
                                    format!("`{}` has a dimension of unknown size", self.text),
                                    step,
                                ));
                            };
                            rows *= c;
                        }
                        rest = (consumed + 1) % counts.len();
                    }
                }
                let Place::Memory(ops) = place else {
                    return Err(TargetError::at(
                        format!("array `{}` is not in memory", self.text),
                        step,
                    ));
                };
                (ops, elem)
            }
            Shape::Pointer { target } => (value_of(place, 8, false), target),
            _ => {
                return Err(TargetError::at(
                    format!(
                        "cannot index `{}` of type `{}`",
                        self.text,
                        self.type_name(ty)
                    ),
                    step,
                ));
            }
        };
        let stride = self
            .types
            .byte_size(elem)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                TargetError::at(
                    format!(
                        "cannot index `{}`: element type `{}` has no size",
                        self.text,
                        self.type_name(elem)
                    ),
                    step,
                )
            })?;
        ops.push(AccessOp::AddIndex {
            accessor: step as u32,
            stride: stride * rows,
        });
        Ok((ops, elem, rest))
    }
}
