//! Pretty printing plans: `$v$`, `$v$$`, `$$vars`, `$$parms`, `$$locals`, `$$return`
//! (and their `$`/`$$` forms), laid out as SystemTap's `tapsets.cxx` lays them out.
//!
//! `$$vars` and friends give `name=%#x` per variable, `name={...}` for a struct,
//! `name=[...]` for an array and `name=?` for one without a location at the probe.
//! With a `$` suffix each variable prints as `$v$` would. `$v$` prints integers with
//! `%i`/`%u`, chars as `'%#c'`, `char` pointers and arrays as `"%s"` (`<unknown>` when
//! unreadable), other pointers with `%p`, a struct as `{.a=.., .b=..}` and an array as
//! `[first, ...]`; a top-level pointer is followed. Shallow (`$`) prints nested
//! structs as `{...}` and nested arrays as `[...]`; deep (`$$`) expands them. A fault
//! while reading makes that variable's text `ERROR`, and past 32 values a struct
//! ends in `...`, as in SystemTap.

use super::index::{FuncDie, Index};
use super::load::Loaded;
use super::location::{Located, Place};
use super::plan::{self, value_of, Walk};
use super::scope;
use super::types::{Shape, TypeRef, Types};
use super::{FunctionSite, TargetError, TargetPath};
use crate::access::{AccessOp, PrettyConv, PrettyPiece, PrettyPlan};

/// Which variables a bulk expression lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkKind {
    Parms,
    Locals,
    Vars,
    Return,
}

/// SystemTap's limit on the values of one pretty-printed variable.
const MAX_VALUES: usize = 32;

struct Pp<'a> {
    types: Types<'a>,
    /// Expand nested structs and arrays (`$$`).
    full: bool,
    values: usize,
}

fn push_text(out: &mut Vec<PrettyPiece>, s: &str) {
    if let Some(PrettyPiece::Text(t)) = out.last_mut() {
        t.push_str(s);
    } else {
        out.push(PrettyPiece::Text(s.to_string()));
    }
}

/// `$path$` (`full` for `$path$$`).
pub(crate) fn path(
    loaded: &Loaded,
    index: &Index,
    site: &FunctionSite,
    retprobe: bool,
    expr: &TargetPath,
    full: bool,
) -> Result<PrettyPlan, TargetError> {
    let types = Types { loaded, index };
    let fd = function(site, &plan::base_text(expr))?;
    if expr.address_of {
        return Err(TargetError::new(
            "cannot take the address of a pretty-printed variable",
        ));
    }
    let (place, ty) = plan::base_place(loaded, index, site, fd, retprobe, &expr.base)?;
    let mut w = Walk {
        types: Types { loaded, index },
        text: plan::base_text(expr),
    };
    let (place, ty, bitfield) = w.walk_chain(place, ty, expr)?;
    let mut pp = Pp {
        types,
        full,
        values: 0,
    };
    let mut inner = Vec::new();
    match bitfield {
        Some(b) => pp.bitfield(&mut inner, place, ty, b),
        None => pp.recurse(&mut inner, place, ty, true),
    }
    Ok(PrettyPlan {
        pieces: vec![PrettyPiece::Guarded(inner)],
    })
}

/// `$$parms`, `$$locals`, `$$vars`, `$$return`, with `pretty` for a `$`/`$$` suffix
/// (`Some(true)` deep).
pub(crate) fn bulk(
    loaded: &Loaded,
    index: &Index,
    site: &FunctionSite,
    retprobe: bool,
    kind: BulkKind,
    pretty: Option<bool>,
) -> Result<PrettyPlan, TargetError> {
    let types = Types { loaded, index };
    let fd = function(site, "$$vars")?;
    let mut out = Vec::new();
    let one =
        |out: &mut Vec<PrettyPiece>, name: &str, located: Option<(Place, Option<TypeRef>)>| {
            if !out.is_empty() {
                push_text(out, " ");
            }
            push_text(out, &format!("{name}="));
            let Some((place, ty)) = located else {
                push_text(out, "?");
                return;
            };
            let mut pp = Pp {
                types: Types { loaded, index },
                full: pretty == Some(true),
                values: 0,
            };
            match pretty {
                Some(_) => {
                    let mut inner = Vec::new();
                    pp.recurse(&mut inner, place, ty, true);
                    out.push(PrettyPiece::Guarded(inner));
                }
                None => pp.plain(out, place, ty),
            }
        };
    if kind == BulkKind::Return {
        if !retprobe {
            return Err(TargetError::new(
                "`$$return` is only available in `.return` probes",
            ));
        }
        let (place, ty) = plan::return_value(&types, site, fd, retprobe)?;
        one(&mut out, "return", Some((place, ty)));
        return Ok(PrettyPlan { pieces: out });
    }
    // The function's own parameters and locals, as `-L` lists them.
    for v in scope::scope_vars(loaded, index, fd, site.probe) {
        let wanted = match kind {
            BulkKind::Parms => v.is_param,
            BulkKind::Locals => !v.is_param,
            _ => true,
        };
        if v.depth != 0 || !wanted {
            continue;
        }
        let located = match scope::locate(loaded, index, fd, &v, site.probe) {
            Located::At(place) => Some((place, v.ty)),
            _ => None,
        };
        one(&mut out, &v.name, located);
    }
    Ok(PrettyPlan { pieces: out })
}

fn function(site: &FunctionSite, what: &str) -> Result<FuncDie, TargetError> {
    site.die.ok_or_else(|| {
        TargetError::new(format!(
            "`{what}` is not available: `{}` has no debug info",
            site.name
        ))
    })
}

impl Pp<'_> {
    fn value(&mut self, out: &mut Vec<PrettyPiece>, ops: Vec<AccessOp>, conv: PrettyConv) {
        self.values += 1;
        out.push(PrettyPiece::Value { ops, conv });
    }

    /// `$$vars` without a suffix: `%#x`, `{...}`, `[...]` or `?`.
    fn plain(&mut self, out: &mut Vec<PrettyPiece>, place: Place, ty: Option<TypeRef>) {
        match self.types.shape(ty) {
            Shape::Struct { .. } => push_text(out, "{...}"),
            Shape::Array { .. } => push_text(out, "[...]"),
            Shape::Int { size, signed, .. } | Shape::Enum { size, signed } => {
                match plan::load_size(size.into()) {
                    Some(size) => self.value(out, value_of(place, size, signed), PrettyConv::Hex),
                    None => push_text(out, "?"),
                }
            }
            Shape::Pointer { .. } => self.value(out, value_of(place, 8, false), PrettyConv::Hex),
            _ => push_text(out, "?"),
        }
    }

    /// Whether `t` is `char` or `unsigned char` (SystemTap's test for strings).
    fn is_chars(&self, t: Option<TypeRef>) -> bool {
        matches!(
            self.types.base_name(t).as_deref(),
            Some("char" | "unsigned char")
        )
    }

    /// `"%s"` of the user string at `addr`.
    fn chars(&mut self, out: &mut Vec<PrettyPiece>, addr: Vec<AccessOp>) {
        push_text(out, "\"");
        self.value(out, addr, PrettyConv::Str);
        push_text(out, "\"");
    }

    fn recurse(
        &mut self,
        out: &mut Vec<PrettyPiece>,
        place: Place,
        ty: Option<TypeRef>,
        top: bool,
    ) {
        match self.types.shape(ty) {
            Shape::Int {
                char_like: true,
                size: 1,
                signed,
            } => {
                push_text(out, "'");
                self.value(out, value_of(place, 1, signed), PrettyConv::Char);
                push_text(out, "'");
            }
            Shape::Int { size, signed, .. } => self.number(out, place, size, signed, signed),
            // Enumerations print as `%i`, whatever their sign.
            Shape::Enum { size, signed } => self.number(out, place, size, signed, true),
            Shape::Array { elem, .. } => {
                if !top && !self.full {
                    push_text(out, "[...]");
                    return;
                }
                let Place::Memory(addr) = place else {
                    push_text(out, "?");
                    return;
                };
                if self.is_chars(elem) {
                    self.chars(out, addr);
                    return;
                }
                // As SystemTap: the first element only.
                push_text(out, "[");
                self.recurse(out, Place::Memory(addr), elem, false);
                push_text(out, ", ...]");
            }
            Shape::Pointer { target } => {
                let ptr = value_of(place, 8, false);
                let pointee = target.and_then(|t| self.types.strip(t));
                if pointee.is_some() && self.is_chars(pointee) {
                    self.chars(out, ptr);
                } else if top
                    && pointee.is_some()
                    && !matches!(self.types.shape(pointee), Shape::Void | Shape::Other)
                {
                    // Top-level pointers are followed.
                    self.recurse(out, Place::Memory(ptr), pointee, true);
                } else {
                    self.value(out, ptr, PrettyConv::Pointer);
                }
            }
            Shape::Struct { .. } => self.record(out, place, ty, top),
            _ => push_text(out, "?"),
        }
    }

    fn number(
        &mut self,
        out: &mut Vec<PrettyPiece>,
        place: Place,
        size: u8,
        signed: bool,
        as_signed: bool,
    ) {
        let conv = if as_signed {
            PrettyConv::Signed
        } else {
            PrettyConv::Unsigned
        };
        match plan::load_size(size.into()) {
            Some(size) => self.value(out, value_of(place, size, signed), conv),
            None => push_text(out, "?"),
        }
    }

    fn record(&mut self, out: &mut Vec<PrettyPiece>, place: Place, ty: Option<TypeRef>, top: bool) {
        let Some(t) = ty.and_then(|t| self.types.strip(t)) else {
            push_text(out, "?");
            return;
        };
        if self.types.is_declaration(t) || !(top || self.full) {
            push_text(out, "{...}");
            return;
        }
        let Place::Memory(addr) = place else {
            push_text(out, "?");
            return;
        };
        push_text(out, "{");
        for (i, (name, m)) in self.types.members(t).into_iter().enumerate() {
            if i > 0 {
                push_text(out, ", ");
            }
            if self.values >= MAX_VALUES {
                push_text(out, "...");
                break;
            }
            match &name {
                Some(n) => push_text(out, &format!(".{n}=")),
                None => match self.types.shape(m.ty) {
                    Shape::Struct { union: true } => push_text(out, "<union>="),
                    _ => push_text(out, "<struct>="),
                },
            }
            let mut ops = addr.clone();
            let byte = (m.bit_offset / 8) as i64;
            if byte != 0 {
                ops.push(AccessOp::Add(byte));
            }
            match m.bit_size {
                Some(bits) => {
                    let shift = (m.bit_offset % 8) as u8;
                    let storage = [1u8, 2, 4, 8]
                        .into_iter()
                        .find(|s| u64::from(*s) * 8 >= u64::from(shift) + bits);
                    let signed = matches!(
                        self.types.shape(m.ty),
                        Shape::Int { signed: true, .. } | Shape::Enum { signed: true, .. }
                    );
                    match storage {
                        Some(s) => self.bitfield(
                            out,
                            Place::Memory(ops),
                            m.ty,
                            (shift, bits as u8, signed, s),
                        ),
                        None => push_text(out, "?"),
                    }
                }
                None => self.recurse(out, Place::Memory(ops), m.ty, false),
            }
        }
        push_text(out, "}");
    }

    /// A bitfield always prints as a number.
    fn bitfield(
        &mut self,
        out: &mut Vec<PrettyPiece>,
        place: Place,
        ty: Option<TypeRef>,
        (shift, bits, signed, storage): plan::Bitfield,
    ) {
        if !matches!(self.types.shape(ty), Shape::Int { .. } | Shape::Enum { .. }) {
            push_text(out, "?");
            return;
        }
        let mut ops = value_of(place, storage, false);
        ops.push(AccessOp::Bitfield {
            shift,
            bits,
            signed,
        });
        let conv = if signed {
            PrettyConv::Signed
        } else {
            PrettyConv::Unsigned
        };
        self.value(out, ops, conv);
    }
}
