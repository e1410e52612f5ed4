//! Target expressions of one probe site: access plans, pretty-printing plans,
//! `@cast` and `@var` (in the probed file or another module).

use super::{cache_path, Walker};
use crate::dwarf::{Binary, BulkKind, PathBase, PathStep, TargetPath};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{self, Accessor, Expr, TargetBase};
use rtap_lang::span::Span;
use std::path::Path;

/// `TargetExpr` → the DWARF side's path, or why it cannot be planned.
fn target_path(t: &hir::TargetExpr) -> Result<TargetPath, Diagnostic> {
    let base = match &t.base {
        TargetBase::Var(n) => PathBase::Var(n.clone()),
        TargetBase::Return => PathBase::Return,
        TargetBase::Bulk(_) => {
            return Err(Diagnostic::error(
                "bulk variables such as `$$parms` have no access path",
                t.span,
            ));
        }
        TargetBase::Cast { type_name, .. } => PathBase::Cast(type_name.clone()),
        TargetBase::Var2 { name, .. } => match name.split_once('@') {
            Some((n, cu)) => PathBase::Global {
                name: n.to_string(),
                cu: Some(cu.to_string()),
            },
            None => PathBase::Global {
                name: name.clone(),
                cu: None,
            },
        },
        TargetBase::MarkArg(n) => {
            return Err(Diagnostic::error(
                format!("`$arg{n}` is only available in `.mark` probes"),
                t.span,
            ));
        }
    };
    let chain = t
        .chain
        .iter()
        .map(|a| match a {
            Accessor::Member { name, .. } => PathStep::Member(name.clone()),
            Accessor::Index { .. } => PathStep::Index,
        })
        .collect();
    Ok(TargetPath {
        base,
        chain,
        address_of: t.address_of,
    })
}

fn accessor_span(t: &hir::TargetExpr, step: usize) -> Span {
    match t.chain.get(step) {
        Some(Accessor::Member { span, .. } | Accessor::Index { span, .. }) => *span,
        None => t.span,
    }
}

impl Walker<'_> {
    /// Plan one target expression; `report` is false inside `@defined`.
    pub(super) fn target(
        &mut self,
        e: &Expr,
        t: &hir::TargetExpr,
        retprobe: bool,
        report: bool,
    ) -> bool {
        for a in &t.chain {
            if let Accessor::Index { index, .. } = a {
                self.expr(index);
            }
        }
        if let TargetBase::Bulk(b) = &t.base {
            let kind = match b {
                hir::Bulk::Parms => BulkKind::Parms,
                hir::Bulk::Locals => BulkKind::Locals,
                hir::Bulk::Vars => BulkKind::Vars,
                hir::Bulk::Return => BulkKind::Return,
            };
            let pretty = t.pretty.map(|p| p == hir::Pretty::Deep);
            return match self.binary.pretty_bulk(self.site, retprobe, kind, pretty) {
                Ok(plan) => {
                    self.probe.pretty.insert(e.id, plan);
                    true
                }
                Err(err) => {
                    if report {
                        self.errors.push(Diagnostic::error(err.message, t.span));
                    }
                    false
                }
            };
        }
        let path = match target_path(t) {
            Ok(p) => p,
            Err(d) => {
                if report {
                    self.errors.push(d);
                }
                return false;
            }
        };
        let other = match self.module_binary(t) {
            Ok(b) => b,
            Err(d) => {
                if report {
                    self.errors.push(d);
                }
                return false;
            }
        };
        let binary = other.as_ref().unwrap_or(self.binary);
        let planned = match t.pretty {
            Some(p) => binary
                .pretty_path(self.site, retprobe, &path, p == hir::Pretty::Deep)
                .map(|plan| {
                    self.probe.pretty.insert(e.id, plan);
                }),
            None => binary.plan(self.site, retprobe, &path).map(|plan| {
                self.probe.targets.insert(e.id, plan);
            }),
        };
        match planned {
            Ok(()) => true,
            Err(err) => {
                if report {
                    let span = err.step.map_or(t.span, |s| accessor_span(t, s));
                    self.errors.push(Diagnostic::error(err.message, span));
                }
                false
            }
        }
    }

    /// For `@cast`/`@var` naming a module other than the probed file: that file.
    /// Also resolves the targets inside `@cast`'s pointer operand.
    fn module_binary(&mut self, t: &hir::TargetExpr) -> Result<Option<Binary>, Diagnostic> {
        let (module, global) = match &t.base {
            TargetBase::Cast {
                pointer, module, ..
            } => {
                self.expr(pointer);
                (module, false)
            }
            TargetBase::Var2 { module, .. } => (module, true),
            _ => return Ok(None),
        };
        let Some(m) = module else { return Ok(None) };
        if m.contains('<') {
            return Err(Diagnostic::error(
                format!("types from header `{m}` need a C compiler; name a binary with debug info"),
                t.span,
            ));
        }
        if cache_path(m) == cache_path(&self.binary.path().to_string_lossy()) {
            return Ok(None);
        }
        if global {
            return Err(Diagnostic::error(
                format!("`@var` of a variable in `{m}`, not the probed file, is not supported yet"),
                t.span,
            ));
        }
        Binary::open(Path::new(m))
            .map(Some)
            .map_err(|e| Diagnostic::error(e.to_string(), t.span))
    }
}
