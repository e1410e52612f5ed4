//! Variables in scope at a probe address: a function instance's parameters and the
//! locals of every lexical block containing the address (nested inlines excluded).

use super::index::{string, FuncDie, Index};
use super::load::Loaded;
use super::location::{self, Located};
use super::types::{TypeRef, Types};
use super::{FunctionSite, Variable, R};
use gimli::{constants as dw, UnitOffset};

/// A variable DIE in scope (the concrete DIE, which holds the location).
pub(crate) struct ScopeVar {
    pub name: String,
    pub die: UnitOffset,
    pub ty: Option<TypeRef>,
    pub is_param: bool,
    /// Lexical nesting: deeper shadows shallower.
    pub depth: u32,
}

fn block_contains(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    e: &gimli::DebuggingInformationEntry<R>,
    pc: u64,
) -> bool {
    let Ok(mut ranges) = loaded.dwarf.die_ranges(unit, e) else {
        return false;
    };
    while let Ok(Some(r)) = ranges.next() {
        if r.begin <= pc && pc < r.end {
            return true;
        }
    }
    false
}

/// Parameters and locals in DIE order, for the instance `fd` at `pc`.
pub(crate) fn scope_vars(loaded: &Loaded, index: &Index, fd: FuncDie, pc: u64) -> Vec<ScopeVar> {
    let unit = &index.units[fd.unit as usize].unit;
    let mut vars = Vec::new();
    let mut tree = unit.entries_tree(Some(fd.die)).ok();
    if let Some(root) = tree.as_mut().and_then(|t| t.root().ok()) {
        let cx = Cx {
            loaded,
            index,
            types: Types { loaded, index },
            fd,
            pc,
        };
        cx.walk(root, 0, &mut vars);
    }
    // DIE order, as SystemTap lists them: parameters come first except in clones, where
    // a constant-propagated parameter follows the locals.
    vars
}

struct Cx<'a> {
    loaded: &'a Loaded,
    index: &'a Index,
    types: Types<'a>,
    fd: FuncDie,
    pc: u64,
}

impl Cx<'_> {
    /// Children of `node`, descending only into lexical blocks that contain `pc`.
    fn walk(&self, node: gimli::EntriesTreeNode<'_, '_, R>, depth: u32, out: &mut Vec<ScopeVar>) {
        let unit = &self.index.units[self.fd.unit as usize].unit;
        let mut children = node.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            match e.tag {
                dw::DW_TAG_formal_parameter | dw::DW_TAG_variable => {
                    if let Some(v) = self.var(unit, e, depth) {
                        out.push(v);
                    }
                }
                dw::DW_TAG_lexical_block if block_contains(self.loaded, unit, e, self.pc) => {
                    self.walk(child, depth + 1, out);
                }
                _ => {}
            }
        }
    }

    fn var(
        &self,
        unit: &gimli::Unit<R>,
        e: &gimli::DebuggingInformationEntry<R>,
        depth: u32,
    ) -> Option<ScopeVar> {
        let (loaded, index, types, fd) = (self.loaded, self.index, &self.types, self.fd);
        let origin = types
            .attr_ref(fd.unit, e, dw::DW_AT_abstract_origin)
            .and_then(|o| Some((o.0, types.entry(o)?)));
        let name = e
            .attr_value(dw::DW_AT_name)
            .and_then(|v| string(loaded, unit, v))
            .or_else(|| {
                let (u, oe) = origin.as_ref()?;
                let ou = &index.units[*u as usize].unit;
                string(loaded, ou, oe.attr_value(dw::DW_AT_name)?)
            })?;
        let ty = types.attr_ref(fd.unit, e, dw::DW_AT_type).or_else(|| {
            let (u, oe) = origin.as_ref()?;
            types.attr_ref(*u, oe, dw::DW_AT_type)
        });
        Some(ScopeVar {
            name,
            die: e.offset(),
            ty,
            is_param: e.tag == dw::DW_TAG_formal_parameter,
            depth,
        })
    }
}

/// Evaluate one scope variable's location at `pc`.
pub(crate) fn locate(
    loaded: &Loaded,
    index: &Index,
    fd: FuncDie,
    v: &ScopeVar,
    pc: u64,
) -> Located {
    let unit = &index.units[fd.unit as usize].unit;
    let Ok(e) = unit.entry(v.die) else {
        return Located::OptimizedOut;
    };
    let fb = || {
        let sub = unit.entry(fd.frame).ok()?;
        location::frame_base(loaded, unit, &sub, pc)
    };
    location::locate(loaded, unit, &e, pc, &fb)
}

pub(crate) fn variables(loaded: &Loaded, index: &Index, site: &FunctionSite) -> Vec<Variable> {
    let Some(fd) = site.die else {
        return Vec::new();
    };
    // Read in the unit's scan when it could be; else from the DIEs.
    if let Some(vars) = super::listvars::listed(loaded, index, fd, site.probe) {
        return vars;
    }
    walked_variables(loaded, index, fd, site)
}

/// [`variables`] read from the DIEs, without what the unit scan kept.
pub(crate) fn walked_variables(
    loaded: &Loaded,
    index: &Index,
    fd: FuncDie,
    site: &FunctionSite,
) -> Vec<Variable> {
    let types = Types { loaded, index };
    // SystemTap lists the function's own parameters and locals, not those of nested blocks.
    scope_vars(loaded, index, fd, site.probe)
        .into_iter()
        .filter(|v| v.depth == 0)
        .map(|v| Variable {
            // As SystemTap: listed when a location covers the address, readable or not.
            available: !matches!(
                locate(loaded, index, fd, &v, site.probe),
                Located::OptimizedOut
            ),
            c_type: types.name_of(v.ty),
            name: v.name,
            is_param: v.is_param,
        })
        .collect()
}
