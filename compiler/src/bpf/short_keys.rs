//! Arrays keyed by strings keep short keys in a second map, so a probe hashes 64 bytes
//! instead of `MAXSTRINGLEN`.
//!
//! The kernel hashes and compares a hash map's whole key, and a string key field is
//! `MAXSTRINGLEN` (512) bytes: that was most of a string-keyed probe's cost. An element
//! whose string keys all fit in [`SHORT_KEY`] bytes lives in the short map, with those
//! fields cut to that size; any other lives in the full map. The choice depends only on
//! the key, so each element has one home, and every reader (the probes here, the
//! interpreter and the printers through `GlobalSpec::place`) looks in the same one.
//! Probes that walk an array (`foreach`, wildcard `in`, slice `delete`) would have to
//! walk both maps, so arrays walked in BPF keep a single map.

use super::codegen::{Buf, Gen, R};
use super::emit::frame_off;
use super::insn::*;
use super::strings::USER_STRING_FAULT;
use crate::object::{FieldKind, MapId, SHORT_KEY};
use crate::resolve::visit::visit_block;
use crate::resolved::ResolvedProgram;
use rtap_lang::hir::{self, DeleteTarget, Expr, ExprKind, GlobalId, Stmt, StmtKind};
use rtap_lang::span::Span;
use std::collections::HashSet;

/// Arrays some BPF program walks: they keep one map.
pub fn walked_in_bpf(p: &ResolvedProgram) -> HashSet<GlobalId> {
    let mut out = HashSet::new();
    let mut blocks: Vec<&hir::Block> = p.hir.functions.iter().map(|f| &f.body).collect();
    for rp in &p.probes {
        if !crate::host::runs_on_host(&rp.site) {
            let probe = &p.hir.probes[rp.probe];
            blocks.push(&probe.body);
        }
    }
    for b in blocks {
        for s in &b.stmts {
            walked_stmt(s, &mut out);
        }
        visit_block(b, &mut |e| {
            if let ExprKind::In { keys, array } = &e.kind {
                if keys.iter().any(Option::is_none) {
                    out.insert(*array);
                }
            }
        });
    }
    // Probe conditions are expressions too; a wildcard `in` there is rare but possible.
    for probe in &p.hir.probes {
        for point in &probe.points {
            if let Some(c) = &point.condition {
                let block = hir::Block {
                    stmts: vec![Stmt {
                        kind: StmtKind::Expr(c.clone()),
                        span: c.span,
                    }],
                    span: c.span,
                };
                visit_block(&block, &mut |e| {
                    if let ExprKind::In { keys, array } = &e.kind {
                        if keys.iter().any(Option::is_none) {
                            out.insert(*array);
                        }
                    }
                });
            }
        }
    }
    out
}

fn walked_stmt(s: &Stmt, out: &mut HashSet<GlobalId>) {
    match &s.kind {
        StmtKind::Block(b) => b.stmts.iter().for_each(|s| walked_stmt(s, out)),
        StmtKind::If { then, els, .. } => {
            walked_stmt(then, out);
            if let Some(e) = els {
                walked_stmt(e, out);
            }
        }
        StmtKind::While { body, .. } | StmtKind::For { body, .. } => walked_stmt(body, out),
        StmtKind::Foreach(fe) => {
            out.insert(fe.array);
            walked_stmt(&fe.body, out);
        }
        StmtKind::Delete(DeleteTarget::Slice { array, .. }) => {
            out.insert(*array);
        }
        StmtKind::Try { body, catch, .. } => {
            body.stmts.iter().for_each(|s| walked_stmt(s, out));
            catch.stmts.iter().for_each(|s| walked_stmt(s, out));
        }
        _ => {}
    }
}

/// Where a packed key sits: `base + off`.
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyAt {
    pub base: Reg,
    pub off: i16,
}

/// The element callback: emits code for the element's map and key.
type Body<'b, 'a, 's> = &'b mut dyn FnMut(&mut Gen<'a, 's>, MapId, KeyAt) -> R<()>;

impl<'a, 's> Gen<'a, 's> {
    /// Emits `body` for the element `g[keys]`, once per map it may live in (see
    /// [`Self::per_key_map`]). A lone `user_string(addr)` key of an array with short
    /// keys is read into a stack key of at most [`SHORT_KEY`] bytes first, and only a
    /// longer string (rare) is read again in full: a stack copy skips the kernel's
    /// checks of heap copies, and nothing zeroes `MAXSTRINGLEN` bytes.
    pub(super) fn with_element(
        &mut self,
        g: GlobalId,
        keys: &[Expr],
        span: Span,
        body: Body<'_, 'a, 's>,
    ) -> R<()> {
        let spec = &self.sh.globals[g.0 as usize];
        let lone = match (&spec.short, keys) {
            (Some(_), [k]) => match &k.kind {
                ExprKind::Builtin { name, args } if name == "user_string" && args.len() == 1 => {
                    Some(&args[0])
                }
                _ => None,
            },
            _ => None,
        };
        let Some(addr_expr) = lone else {
            let m = self.scratch.mark();
            let key = self.build_key(g, keys, span)?;
            self.per_key_map(g, key, body)?;
            self.scratch.release(m);
            return Ok(());
        };
        let short = spec.short.clone().expect("matched above");
        let fm = self.frame.mark();
        let addr = self.temp();
        self.long(addr_expr)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, addr));
        // One byte past a short key: a string fits when its byte at SHORT_KEY - 1 is zero.
        let size = SHORT_KEY + 8;
        let buf = frame_off(self.frame.alloc(size), size);
        for i in (0..size as i16).step_by(8) {
            self.e.emit(Insn::st_mem(Size::DW, R10, buf + i, 0));
        }
        let dst = Buf {
            base: R10,
            off: buf,
            cap: SHORT_KEY + 1,
        };
        self.read_user_str(dst, addr, None);
        let ok = self.e.label();
        self.e.jmp_imm(Cond::Sge, R0, 0, ok);
        // Where the full read would say it: at the `user_string` call.
        self.raise(USER_STRING_FAULT, keys[0].span, Some(addr));
        self.e.bind(ok);
        let long = self.e.label();
        let join = self.e.label();
        self.e
            .emit(Insn::ldx_mem(Size::B, R1, R10, buf + SHORT_KEY as i16 - 1));
        self.e.jmp_imm(Cond::Ne, R1, 0, long);
        body(
            self,
            short.map,
            KeyAt {
                base: R10,
                off: buf,
            },
        )?;
        self.e.goto(join);
        self.e.bind(long);
        let m = self.scratch.mark();
        let key = self.build_key(g, keys, span)?;
        body(self, self.global_map(g), KeyAt { base: R7, off: key })?;
        self.scratch.release(m);
        self.e.bind(join);
        self.frame.release(fm);
        Ok(())
    }

    /// Emits `body(map, key)` for each map the element whose full key is packed in
    /// scratch at `key` may live in. With short keys, a test picks the short map when
    /// every string field fits (copying the fields into the short layout when there
    /// are several), else the full one; both arms join after `body`, so what `body`
    /// leaves in r0 is the result either way.
    pub(super) fn per_key_map(&mut self, g: GlobalId, key: i16, body: Body<'_, 'a, 's>) -> R<()> {
        let spec = self.sh.globals[g.0 as usize].clone();
        let full = KeyAt { base: R7, off: key };
        let Some(short) = spec.short else {
            return body(self, spec.map, full);
        };
        let long = self.e.label();
        let join = self.e.label();
        // The full key is zero after each string's NUL, so a string fits exactly when
        // its byte at SHORT_KEY - 1 is zero.
        for f in &spec.keys {
            if let FieldKind::Str { .. } = f.kind {
                let at = key + (f.offset + SHORT_KEY - 1) as i16;
                self.e.emit(Insn::ldx_mem(Size::B, R1, R7, at));
                self.e.jmp_imm(Cond::Ne, R1, 0, long);
            }
        }
        let m = self.scratch.mark();
        let skey = if spec.keys.len() == 1 {
            // A lone string field: the short key is the full key's first bytes.
            key
        } else {
            let size = short.keys.iter().map(|f| f.size()).sum::<u32>();
            let at = self.scratch.alloc(size) as i16;
            for (f, s) in spec.keys.iter().zip(&short.keys) {
                for i in (0..s.size() as i16).step_by(8) {
                    self.e
                        .emit(Insn::ldx_mem(Size::DW, R1, R7, key + f.offset as i16 + i));
                    self.e
                        .emit(Insn::stx_mem(Size::DW, R7, R1, at + s.offset as i16 + i));
                }
            }
            at
        };
        body(
            self,
            short.map,
            KeyAt {
                base: R7,
                off: skey,
            },
        )?;
        self.scratch.release(m);
        self.e.goto(join);
        self.e.bind(long);
        body(self, spec.map, full)?;
        self.e.bind(join);
        Ok(())
    }
}
