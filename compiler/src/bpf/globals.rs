//! Script globals: their maps, packed keys, element access, and statistics.

use super::codegen::{Buf, Gen, Shared, R};
use super::insn::*;
use super::short_keys::KeyAt;
use crate::object::*;
use crate::resolve::visit::visit_block;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Expr, ExprKind, GlobalId, HistKind, LValue, StatOp, Type};
use rtap_lang::span::Span;
use std::collections::HashSet;

/// Bytes of a per-CPU stats value before its histogram: count, sum, min, max, sum of squares.
pub const STATS_VALUE: u32 = 40;

/// The histogram each global is printed with, if any (the checker allows one kind).
fn hist_layouts(hir: &rtap_lang::hir::Program) -> Vec<Option<HistLayout>> {
    let mut out = vec![None; hir.globals.len()];
    let mut see = |e: &Expr| {
        if let ExprKind::Hist {
            kind,
            stat: LValue::Global(g) | LValue::Element { array: g, .. },
        } = &e.kind
        {
            out[g.0 as usize].get_or_insert(match kind {
                HistKind::Log => HistLayout::Log,
                HistKind::Linear { lo, hi, width } => HistLayout::Linear {
                    lo: *lo,
                    hi: *hi,
                    width: *width,
                },
            });
        }
    };
    for p in &hir.probes {
        visit_block(&p.body, &mut see);
    }
    for f in &hir.functions {
        visit_block(&f.body, &mut see);
    }
    out
}
pub(super) const BPF_NOEXIST: i32 = 1;

impl Shared<'_> {
    /// One map per global; returns errors for globals that cannot be laid out.
    pub fn declare_globals(&mut self, walked: &HashSet<GlobalId>) -> Vec<Diagnostic> {
        let diags = Vec::new();
        let cap = self.opts.max_string_len;
        let hists = hist_layouts(self.hir);
        for (i, (g, hist)) in self.hir.globals.iter().zip(hists).enumerate() {
            let value = match g.ty {
                Type::Long => GlobalValue::Long,
                Type::String => GlobalValue::Str { cap },
                Type::Stats => GlobalValue::Stats,
            };
            let value_size = match value {
                GlobalValue::Long => 8,
                GlobalValue::Str { cap } => cap,
                GlobalValue::Stats => STATS_VALUE + 8 * hist.map_or(0, |h| h.buckets() as u32),
            };
            let mut keys = Vec::new();
            let mut key_size = 0;
            for k in &g.keys {
                let (kind, size) = match k {
                    Type::String => (FieldKind::Str { cap }, cap),
                    _ => (FieldKind::Long, 8),
                };
                keys.push(Field {
                    offset: key_size,
                    kind,
                });
                key_size += size;
            }
            let stats = g.ty == Type::Stats;
            let mut short = None;
            let map = if keys.is_empty() {
                let kind = if stats {
                    MapKind::PercpuArray
                } else {
                    MapKind::Array
                };
                self.add_map(&g.name, kind, 4, value_size, 1)
            } else {
                let kind = if stats {
                    MapKind::PercpuHash
                } else {
                    MapKind::Hash
                };
                let n = g.max_entries.map_or(self.opts.max_map_entries, |n| {
                    n.clamp(1, u32::MAX as u64) as u32
                });
                let map = self.add_map(&g.name, kind, key_size, value_size, n);
                if g.wrap {
                    self.declare_wrap(i as u32, &g.name, key_size, n);
                }
                let has_str = keys.iter().any(|f| matches!(f.kind, FieldKind::Str { .. }));
                if has_str && cap > SHORT_KEY && !g.wrap && !walked.contains(&GlobalId(i as u32)) {
                    let mut short_keys = Vec::new();
                    let mut size = 0;
                    for f in &keys {
                        let kind = match f.kind {
                            FieldKind::Str { .. } => FieldKind::Str { cap: SHORT_KEY },
                            k => k,
                        };
                        short_keys.push(Field { offset: size, kind });
                        size += short_keys.last().map_or(0, Field::size);
                    }
                    let m = self.add_map(&format!("{}_s", g.name), kind, size, value_size, n);
                    short = Some(ShortKeys {
                        map: m,
                        keys: short_keys,
                    });
                }
                map
            };
            self.globals.push(GlobalSpec {
                name: g.name.clone(),
                map,
                keys,
                value,
                init: g.init.clone(),
                auto_print: g.auto_print,
                hist,
                short,
            });
        }
        diags
    }
}

impl Gen<'_, '_> {
    pub(super) fn global_map(&self, g: GlobalId) -> MapId {
        self.sh.globals[g.0 as usize].map
    }

    /// Builds a packed key in scratch; returns its r7-relative offset.
    pub(super) fn build_key(&mut self, g: GlobalId, keys: &[Expr], span: Span) -> R<i16> {
        let keys: Vec<Option<&Expr>> = keys.iter().map(Some).collect();
        self.pack_key(g, &keys, span)
    }

    /// Builds a packed key in scratch, leaving wildcard (`None`) fields zero.
    pub(super) fn pack_key(&mut self, g: GlobalId, keys: &[Option<&Expr>], span: Span) -> R<i16> {
        let spec = self.sh.globals[g.0 as usize].clone();
        let size = self.sh.maps[spec.map.0 as usize].key_size;
        if keys.len() != spec.keys.len() {
            return Err(Diagnostic::error(
                format!(
                    "`{}` takes {} keys, not {}",
                    spec.name,
                    spec.keys.len(),
                    keys.len()
                ),
                span,
            ));
        }
        let base = self.scratch.alloc(size) as i16;
        for (k, f) in keys.iter().zip(&spec.keys) {
            let off = base + f.offset as i16;
            match (f.kind, k) {
                (FieldKind::Long, Some(k)) => {
                    self.long(k)?;
                    self.e.emit(Insn::stx_mem(Size::DW, R7, R0, off));
                }
                (FieldKind::Long, None) => self.e.emit(Insn::st_mem(Size::DW, R7, off, 0)),
                (FieldKind::Str { cap }, k) => {
                    // Hash keys compare every byte, so the tail after the NUL must be zero.
                    for i in (0..cap).step_by(8) {
                        self.e.emit(Insn::st_mem(Size::DW, R7, off + i as i16, 0));
                    }
                    if let Some(k) = k {
                        self.string_into(k, Buf { base: R7, off, cap })?;
                    }
                }
            }
        }
        Ok(base)
    }

    /// The fixed fields of a slice `a[k, *]` as a pattern for a callback.
    pub(super) fn slice_pattern(
        &mut self,
        g: GlobalId,
        keys: &[Option<Expr>],
        span: Span,
    ) -> R<super::each::Pattern> {
        let refs: Vec<Option<&Expr>> = keys.iter().map(Option::as_ref).collect();
        let at = self.pack_key(g, &refs, span)?;
        let spec = &self.sh.globals[g.0 as usize];
        let fields = keys
            .iter()
            .zip(&spec.keys)
            .filter(|(k, _)| k.is_some())
            .map(|(_, f)| {
                let size = match f.kind {
                    FieldKind::Long => 8,
                    FieldKind::Str { cap } => cap,
                };
                (f.offset, size)
            })
            .collect();
        Ok(super::each::Pattern { at, fields })
    }

    /// r0 = `bpf_map_lookup_elem` of the element (or scalar) `g[keys]`; may be null.
    pub(super) fn lookup(&mut self, g: GlobalId, keys: &[Expr], span: Span) -> R<()> {
        if keys.is_empty() {
            self.lookup_u32(self.global_map(g), 0);
            return Ok(());
        }
        self.with_element(g, keys, span, &mut |s, map, key| {
            s.e.emit2(Insn::ld_map_fd(R1, map));
            s.lea(R2, key.base, key.off);
            s.e.emit(Insn::call(Helper::MapLookupElem));
            Ok(())
        })
    }

    pub fn global_long(&mut self, g: GlobalId, span: Span) -> R<()> {
        self.element_long(g, &[], span)
    }

    /// r0 = `g[keys]`, or 0 when missing.
    pub fn element_long(&mut self, g: GlobalId, keys: &[Expr], span: Span) -> R<()> {
        self.lookup(g, keys, span)?;
        self.e.emit(Insn::jmp_imm(Cond::Eq, R0, 0, 1));
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R0, 0));
        Ok(())
    }

    /// Copies string `g[keys]` into `dst`, or "" when missing.
    pub fn element_str(&mut self, g: GlobalId, keys: &[Expr], dst: Buf, span: Span) -> R<()> {
        self.lookup(g, keys, span)?;
        let found = self.e.label();
        let end = self.e.label();
        self.e.jmp_imm(Cond::Ne, R0, 0, found);
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.e.goto(end);
        self.e.bind(found);
        self.copy_str(dst, R0, 0);
        self.e.bind(end);
        Ok(())
    }

    /// r0 = non-null pointer to the value of a global lvalue, creating a zero element if missing.
    pub fn lvalue_ptr(&mut self, target: &LValue, span: Span) -> R<()> {
        let (g, keys) = match target {
            LValue::Global(g) => (*g, &[][..]),
            LValue::Element { array, keys } => (*array, &keys[..]),
            LValue::Local(_) => return Err(self.not_yet("a local used as an array", span)),
        };
        if keys.is_empty() {
            self.lookup_u32(self.global_map(g), 0);
            let exit = self.exit_label;
            // Single-entry arrays always exist; the check is for the verifier.
            self.e.jmp_imm(Cond::Eq, R0, 0, exit);
            return Ok(());
        }
        let value_size = self.sh.maps[self.global_map(g).0 as usize].value_size;
        self.with_element(g, keys, span, &mut |s, map, key| {
            s.element_or_insert(g, map, key, value_size, span)
        })
    }

    /// r0 = the element at `key` in `map`, inserted as zeros when missing.
    fn element_or_insert(
        &mut self,
        g: GlobalId,
        map: MapId,
        key: KeyAt,
        value_size: u32,
        span: Span,
    ) -> R<()> {
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, key.base, key.off);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        let found = self.e.label();
        self.e.jmp_imm(Cond::Ne, R0, 0, found);
        // Insert a zero value, then look it up again.
        let m = self.scratch.mark();
        let zero = self.scratch.alloc(value_size) as i16;
        for i in (0..value_size).step_by(8) {
            self.e.emit(Insn::st_mem(Size::DW, R7, zero + i as i16, 0));
        }
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, key.base, key.off);
        self.lea(R3, R7, zero);
        self.e.emit(Insn::mov64_imm(R4, BPF_NOEXIST));
        self.e.emit(Insn::call(Helper::MapUpdateElem));
        if self.wrap_order(g).is_some() {
            // Arrays that wrap have no short keys: the key is the full one, in scratch.
            debug_assert_eq!(key.base, R7);
            self.wrap_insert(g, key.off, zero, span);
        }
        self.scratch.release(m);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, key.base, key.off);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        self.e.jmp_imm(Cond::Ne, R0, 0, found);
        let name = self.sh.globals[g.0 as usize].name.clone();
        let limit = self.sh.maps[map.0 as usize].max_entries;
        self.raise(
            &format!("array `{name}` overflow, check size limit ({limit})"),
            span,
            None,
        );
        self.e.bind(found);
        Ok(())
    }

    /// `s <<< v`: count, sum, min and max in the per-CPU value.
    pub fn aggregate(&mut self, target: &LValue, value: &Expr, span: Span) -> R<()> {
        let m = self.frame.mark();
        let t = self.temp();
        self.long(value)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
        self.lvalue_ptr(target, span)?;
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, t));
        self.frame.release(m);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        // First sample: min = max = v.
        self.e.emit(Insn::jmp_imm(Cond::Ne, R1, 0, 3));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 16));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 24));
        self.e.emit(Insn::ja(6));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R0, 16));
        self.e.emit(Insn::jmp_reg(Cond::Sle, R3, R2, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 16));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R0, 24));
        self.e.emit(Insn::jmp_reg(Cond::Sge, R3, R2, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R2, 24));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R1, 0));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R0, 8));
        self.e.emit(Insn::add64_reg(R3, R2));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R3, 8));
        // The sum of squares, for `@variance`.
        self.e.emit(Insn::mov64_reg(R3, R2));
        self.e.emit(Insn::alu64_reg(AluOp::Mul, R3, R2));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R0, 32));
        self.e.emit(Insn::add64_reg(R4, R3));
        self.e.emit(Insn::stx_mem(Size::DW, R0, R4, 32));
        let g = match target {
            LValue::Global(g) | LValue::Element { array: g, .. } => *g,
            LValue::Local(_) => return Ok(()),
        };
        if let Some(h) = self.sh.globals[g.0 as usize].hist {
            self.hist_bucket(h, span)?;
            // r3 = bucket; count it in the slot after the five aggregates.
            self.e.emit(Insn::alu64_imm(AluOp::Lsh, R3, 3));
            self.e.emit(Insn::add64_reg(R0, R3));
            self.e
                .emit(Insn::ldx_mem(Size::DW, R4, R0, STATS_VALUE as i16));
            self.e.emit(Insn::add64_imm(R4, 1));
            self.e
                .emit(Insn::stx_mem(Size::DW, R0, R4, STATS_VALUE as i16));
        }
        Ok(())
    }

    /// r3 = the histogram bucket of the sample in r2 (see `HistLayout::bucket`),
    /// bounded for the verifier. Clobbers r1, r4, r5.
    fn hist_bucket(&mut self, h: HistLayout, span: Span) -> R<()> {
        let last = h.buckets() as i32 - 1;
        match h {
            HistLayout::Log => {
                // r1 = |v|, r4 = whether v < 0, r5 = bit length of |v|.
                self.e.emit(Insn::mov64_reg(R1, R2));
                self.e.emit(Insn::mov64_imm(R4, 0));
                self.e.emit(Insn::jmp_imm(Cond::Sge, R1, 0, 2));
                self.e.emit(Insn::neg64(R1));
                self.e.emit(Insn::mov64_imm(R4, 1));
                self.e.emit(Insn::mov64_imm(R5, 0));
                for sh in [32, 16, 8, 4, 2, 1] {
                    self.e.emit(Insn::mov64_reg(R3, R1));
                    self.e.emit(Insn::alu64_imm(AluOp::Rsh, R3, sh));
                    self.e.emit(Insn::jmp_imm(Cond::Eq, R3, 0, 2));
                    self.e.emit(Insn::add64_imm(R5, sh));
                    self.e.emit(Insn::mov64_reg(R1, R3));
                }
                self.e.emit(Insn::jmp_imm(Cond::Eq, R1, 0, 1));
                self.e.emit(Insn::add64_imm(R5, 1));
                let zero = HistLayout::LOG_ZERO as i32;
                self.e.emit(Insn::jmp_imm(Cond::Eq, R4, 0, 3));
                self.e.emit(Insn::mov64_imm(R3, zero));
                self.e.emit(Insn::alu64_reg(AluOp::Sub, R3, R5));
                self.e.emit(Insn::ja(2));
                self.e.emit(Insn::mov64_reg(R3, R5));
                self.e.emit(Insn::add64_imm(R3, zero));
            }
            HistLayout::Linear { lo, width, .. } => {
                let (Ok(lo), Ok(width)) = (i32::try_from(lo), i32::try_from(width)) else {
                    return Err(Diagnostic::error(
                        "`@hist_linear` bounds must fit in 32 bits",
                        span,
                    ));
                };
                self.e.emit(Insn::mov64_reg(R3, R2));
                self.e.emit(Insn::alu64_imm(AluOp::Sub, R3, lo));
                self.e.emit(Insn::jmp_imm(Cond::Sge, R3, 0, 2));
                self.e.emit(Insn::mov64_imm(R3, 0));
                self.e.emit(Insn::ja(2));
                self.e.emit(Insn::alu64_imm(AluOp::Div, R3, width));
                self.e.emit(Insn::add64_imm(R3, 1));
            }
        }
        // Unsigned: also catches anything negative.
        self.e.emit(Insn::jmp_imm(Cond::Le, R3, last, 1));
        self.e.emit(Insn::mov64_imm(R3, last));
        Ok(())
    }

    /// `@count(s)` and friends: merge every CPU's value with `bpf_map_lookup_percpu_elem`.
    pub fn stat_extract(&mut self, op: StatOp, stat: &LValue, span: Span) -> R<()> {
        let (g, keys) = match stat {
            LValue::Global(g) => (*g, &[][..]),
            LValue::Element { array, keys } => (*array, &keys[..]),
            LValue::Local(_) => return Err(self.not_yet("local statistics", span)),
        };
        let sm = self.scratch.mark();
        if keys.is_empty() {
            let k = self.scratch.alloc(4) as i16;
            self.e.emit(Insn::st_mem(Size::W, R7, k, 0));
            self.stat_merge(op, self.global_map(g), k, true, span);
        } else {
            let key = self.build_key(g, keys, span)?;
            self.per_key_map(g, key, &mut |s, map, key| {
                s.stat_merge(op, map, key.off, true, span);
                Ok(())
            })?;
        }
        self.scratch.release(sm);
        Ok(())
    }

    /// r0 = aggregate `op` of the per-CPU stats of `map` at the key in scratch at
    /// `key`. Without `raise_empty`, an empty statistic gives 0 instead of an error.
    pub(super) fn stat_merge(
        &mut self,
        op: StatOp,
        map: MapId,
        key: i16,
        raise_empty: bool,
        span: Span,
    ) {
        let m = self.frame.mark();
        // count, sum, min, max, sum-of-squares accumulators and the cpu index.
        let acc = [
            self.temp(),
            self.temp(),
            self.temp(),
            self.temp(),
            self.temp(),
        ];
        // The CPU number lives in scratch: the verifier checks the loop body once.
        let sm = self.scratch.mark();
        let cpu = self.scratch.alloc(8) as i16;
        for a in acc {
            self.e.emit(Insn::st_mem(Size::DW, R10, a, 0));
        }
        self.e.emit(Insn::st_mem(Size::DW, R7, cpu, 0));
        let top = self.e.label();
        let next = self.e.label();
        let done = self.e.label();
        self.e.bind(top);
        self.e.may_goto(done);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R7, key);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, cpu));
        self.e.emit(Insn::call(Helper::MapLookupPercpuElem));
        // A null value past the last possible CPU ends the walk.
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 0));
        self.e.jmp_imm(Cond::Eq, R1, 0, next);
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, acc[0]));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R0, 16));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R0, 24));
        // The first non-empty CPU sets min and max; the comparisons then keep them.
        self.e.emit(Insn::jmp_imm(Cond::Ne, R2, 0, 2));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R3, acc[2]));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R4, acc[3]));
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R10, acc[2]));
        self.e.emit(Insn::jmp_reg(Cond::Sle, R5, R3, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R3, acc[2]));
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R10, acc[3]));
        self.e.emit(Insn::jmp_reg(Cond::Sge, R5, R4, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R4, acc[3]));
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R2, acc[0]));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, acc[1]));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 8));
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R2, acc[1]));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, acc[4]));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, 32));
        self.e.emit(Insn::add64_reg(R2, R1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R2, acc[4]));
        self.e.bind(next);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, cpu));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, cpu));
        self.e.jmp_imm(Cond::Lt, R1, MAX_CPUS, top);
        self.scratch.release(sm);
        self.e.bind(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, acc[0]));
        if op != StatOp::Count {
            if op != StatOp::Sum && raise_empty {
                let ok = self.e.label();
                self.e.jmp_imm(Cond::Ne, R0, 0, ok);
                self.raise("empty aggregate", span, None);
                self.e.bind(ok);
            }
            match op {
                StatOp::Sum => self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, acc[1])),
                StatOp::Min => self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, acc[2])),
                StatOp::Max => self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, acc[3])),
                StatOp::Variance => {
                    // (n·Σx² − (Σx)²) / (n·(n − 1)); 0 for a single sample.
                    let one = self.e.label();
                    let end = self.e.label();
                    self.e.jmp_imm(Cond::Eq, R0, 1, one);
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, acc[4]));
                    self.e.emit(Insn::alu64_reg(AluOp::Mul, R1, R0));
                    self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, acc[1]));
                    self.e.emit(Insn::alu64_reg(AluOp::Mul, R2, R2));
                    self.e.emit(Insn::alu64_reg(AluOp::Sub, R1, R2));
                    self.e.emit(Insn::mov64_reg(R2, R0));
                    self.e.emit(Insn::add64_imm(R2, -1));
                    self.e.emit(Insn::alu64_reg(AluOp::Mul, R2, R0));
                    self.e.emit(Insn::mov64_reg(R0, R1));
                    self.e.emit(Insn::sdiv64_reg(R0, R2));
                    self.e.goto(end);
                    self.e.bind(one);
                    self.e.emit(Insn::mov64_imm(R0, 0));
                    self.e.bind(end);
                }
                _ => {
                    self.e.emit(Insn::mov64_reg(R2, R0));
                    self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, acc[1]));
                    self.e.emit(Insn::sdiv64_reg(R0, R2));
                }
            }
        }
        self.frame.release(m);
    }

    /// Stores r-value string `src` (already in `dst`-compatible scratch) into a global string.
    pub fn store_str_global(&mut self, target: &LValue, src: Buf, span: Span) -> R<()> {
        self.lvalue_ptr(target, span)?;
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::mov64_imm(R2, src.cap as i32));
        self.lea(R3, src.base, src.off);
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
        Ok(())
    }
}

/// CPUs walked when merging per-CPU statistics.
pub const MAX_CPUS: i32 = 256;
