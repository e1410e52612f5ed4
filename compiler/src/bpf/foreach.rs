//! `foreach` in a probe handler: a snapshot, a partial selection sort, then the body per element.
//!
//! A callback of `bpf_for_each_map_elem` copies the matching keys (and values) into a
//! per-CPU array, the snapshot, one entry per element; the body then runs in the
//! program itself, over the snapshot, so it can use locals and everything else the
//! handler can. Statistics values are merged over CPUs into the snapshot afterwards.
//!
//! Sorting selects the best remaining entry once per iteration to come, before the
//! body runs: only as many passes as iterations can happen, which `limit` and
//! MAXACTION bound, so `foreach (k in a- limit 10)` costs 10 walks of the snapshot.
//! Ties are broken by the keys in ascending order, as the user-space handlers do;
//! the sort loops are headed by `may_goto`, and running out of the kernel's loop
//! budget is an error, never a silently unsorted result. Without a sort the order is
//! the hash map's, which SystemTap leaves unspecified too.

use super::codegen::{Gen, R};
use super::each::{Callback, SnapValue};
use super::emit::Label;
use super::insn::*;
use crate::object::{FieldKind, GlobalValue, MapId, MapKind};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{Foreach, SortBy, StatOp};
use rtap_lang::span::Span;

/// Raised when a sort runs out of the kernel's `may_goto` budget.
pub const SORT_BUDGET: &str = "`foreach` sorting ran out of the kernel's loop budget";

/// One comparison in the sort order: a field of the entry, long or string.
#[derive(Clone, Copy)]
struct Component {
    off: i16,
    /// String bytes, or `None` for a long.
    cap: Option<u32>,
    descending: bool,
}

/// Scratch slots of the loop state: kept in memory so the verifier sees unknown
/// values and checks each loop body once.
struct State {
    n: i16,
    m: i16,
    i: i16,
    j: i16,
    best: i16,
}

impl Gen<'_, '_> {
    /// The snapshot map for this array at this nesting depth, grown to `entry` bytes.
    fn snapshot_map(&mut self, g: u32, entry: u32, entries: u32) -> MapId {
        let key = (g, self.foreach_depth);
        if let Some(&m) = self.sh.snapshots.get(&key) {
            let spec = &mut self.sh.maps[m.0 as usize];
            spec.value_size = spec.value_size.max(entry);
            return m;
        }
        let name = format!(
            "{}_each{}",
            self.sh.globals[g as usize].name, self.foreach_depth
        );
        // One spare entry past the snapshot: the swap space of the sort.
        let m = self
            .sh
            .add_map(&name, MapKind::PercpuArray, 4, entry, entries + 1);
        self.sh.snapshots.insert(key, m);
        m
    }

    pub fn foreach(&mut self, fe: &Foreach, count: u32, span: Span) -> R<()> {
        let g = fe.array;
        let spec = self.sh.globals[g.0 as usize].clone();
        let map = spec.map;
        let (key_size, entries) = {
            let m = &self.sh.maps[map.0 as usize];
            (m.key_size, m.max_entries)
        };
        let by_value = matches!(fe.sort, Some(s) if matches!(s.by, SortBy::Value(_)));
        let need_value = fe.value.is_some() || by_value;
        let (value, value_size) = match (need_value, spec.value) {
            (false, _) => (SnapValue::None, 0),
            (true, GlobalValue::Long) => (SnapValue::Bytes(8), 8),
            (true, GlobalValue::Str { cap }) => (SnapValue::Str(cap), cap),
            (true, GlobalValue::Stats) => (SnapValue::None, 8),
        };
        let entry = key_size + value_size;
        if entry > super::codegen::MAX_SCRATCH {
            return Err(Diagnostic::error(
                format!(
                    "`foreach` over `{}` needs {entry} bytes per element, more than {}",
                    spec.name,
                    super::codegen::MAX_SCRATCH
                ),
                span,
            ));
        }
        let snap = self.snapshot_map(g.0, entry, entries);
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let limit = match &fe.limit {
            Some(l) => {
                self.long(l)?;
                let t = self.temp();
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                Some(t)
            }
            None => None,
        };
        let pattern = match &fe.slice {
            Some(keys) => Some(self.slice_pattern(g, keys, span)?),
            None => None,
        };
        let mut slot = || self.scratch.alloc(8) as i16;
        let st = State {
            n: slot(),
            m: slot(),
            i: slot(),
            j: slot(),
            best: slot(),
        };
        let ctx = self.temp();
        self.zero_ctx(ctx, 1);
        self.for_each(
            map,
            Callback::Snapshot {
                snap,
                entries,
                key_size,
                value,
                pattern,
            },
            ctx,
            span,
        );
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, ctx));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R2, st.n));
        // m = min(n, max(limit, 0)).
        if let Some(t) = limit {
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
            self.e.emit(Insn::jmp_imm(Cond::Sge, R1, 0, 1));
            self.e.emit(Insn::mov64_imm(R1, 0));
            self.e.emit(Insn::jmp_reg(Cond::Ge, R1, R2, 1));
            self.e.emit(Insn::mov64_reg(R2, R1));
        }
        self.e.emit(Insn::stx_mem(Size::DW, R7, R2, st.m));
        if need_value && spec.value == GlobalValue::Stats {
            let op = match fe.sort {
                Some(s) => match s.by {
                    SortBy::Value(op) => op.unwrap_or(StatOp::Count),
                    SortBy::Key(_) => StatOp::Count,
                },
                None => StatOp::Count,
            };
            self.stat_values(op, map, snap, key_size, &st, span);
        }
        if let Some(sort) = fe.sort {
            let mut comps = Vec::new();
            let key_comp = |i: usize, descending: bool| {
                let f = spec.keys[i];
                Component {
                    off: f.offset as i16,
                    cap: match f.kind {
                        FieldKind::Long => None,
                        FieldKind::Str { cap } => Some(cap),
                    },
                    descending,
                }
            };
            match sort.by {
                SortBy::Key(i) => comps.push(key_comp(i as usize, sort.descending)),
                SortBy::Value(_) => comps.push(Component {
                    off: key_size as i16,
                    cap: match value {
                        SnapValue::Str(cap) => Some(cap),
                        _ => None,
                    },
                    descending: sort.descending,
                }),
            }
            comps.extend((0..spec.keys.len()).map(|i| key_comp(i, false)));
            // Passes past the iterations MAXACTION allows would sort entries never visited.
            let passes = self.max_action / count.max(1) + 1;
            self.select(snap, entry, &comps, &st, passes, span);
        }
        self.foreach_body(fe, snap, key_size, &spec, &st, count, span)?;
        self.scratch.release(sm);
        self.frame.release(fm);
        Ok(())
    }

    /// Merges each snapshot entry's statistics into its value slot.
    fn stat_values(
        &mut self,
        op: StatOp,
        map: MapId,
        snap: MapId,
        key_size: u32,
        st: &State,
        span: Span,
    ) {
        let key = self.scratch.alloc(key_size) as i16;
        let v = self.temp();
        let top = self.e.label();
        let done = self.e.label();
        let budget = self.e.label();
        self.e.emit(Insn::st_mem(Size::DW, R7, st.i, 0));
        self.e.bind(top);
        self.e.may_goto(budget);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.i));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R7, st.n));
        self.e.jmp_reg(Cond::Ge, R1, R2, done);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.lea(R1, R7, key);
        self.e.emit(Insn::mov64_imm(R2, key_size as i32));
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
        self.stat_merge(op, map, key, false, span);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, v));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.i));
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, v));
        self.e
            .emit(Insn::stx_mem(Size::DW, R0, R1, key_size as i16));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.i));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.i));
        self.e.goto(top);
        self.e.bind(budget);
        self.raise(SORT_BUDGET, span, None);
        self.e.bind(done);
    }

    /// Selection sort of the first `min(m, passes)` places of the snapshot.
    fn select(
        &mut self,
        snap: MapId,
        entry: u32,
        comps: &[Component],
        st: &State,
        passes: u32,
        span: Span,
    ) {
        let outer = self.e.label();
        let inner = self.e.label();
        let next_j = self.e.label();
        let place = self.e.label();
        let next_i = self.e.label();
        let sorted = self.e.label();
        let budget = self.e.label();
        let load = |g: &mut Self, reg: Reg, slot: i16| {
            g.e.emit(Insn::ldx_mem(Size::DW, reg, R7, slot));
        };
        self.e.emit(Insn::st_mem(Size::DW, R7, st.i, 0));
        self.e.bind(outer);
        self.e.may_goto(budget);
        load(self, R1, st.i);
        load(self, R2, st.m);
        self.e.jmp_reg(Cond::Ge, R1, R2, sorted);
        self.e.jmp_imm(Cond::Ge, R1, passes as i32, sorted);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.best));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.j));
        self.e.bind(inner);
        self.e.may_goto(budget);
        load(self, R1, st.j);
        load(self, R2, st.n);
        self.e.jmp_reg(Cond::Ge, R1, R2, place);
        load(self, R1, st.best);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, place);
        self.e.emit(Insn::mov64_reg(R8, R0));
        load(self, R1, st.j);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, place);
        let better = self.e.label();
        self.compare(comps, better, next_j);
        self.e.bind(better);
        load(self, R1, st.j);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.best));
        self.e.bind(next_j);
        load(self, R1, st.j);
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.j));
        self.e.goto(inner);
        // Swap entries i and best through the spare entry.
        self.e.bind(place);
        load(self, R1, st.best);
        load(self, R2, st.i);
        self.e.jmp_reg(Cond::Eq, R1, R2, next_i);
        self.copy_entry(snap, entry, Some(st.i), None, next_i);
        self.copy_entry(snap, entry, Some(st.best), Some(st.i), next_i);
        self.copy_entry(snap, entry, None, Some(st.best), next_i);
        self.e.bind(next_i);
        load(self, R1, st.i);
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.i));
        self.e.goto(outer);
        self.e.bind(budget);
        self.raise(SORT_BUDGET, span, None);
        self.e.bind(sorted);
    }

    /// Copies snapshot entry `from` to `to` (index slots in scratch; `None` is the
    /// spare entry past the end). Jumps to `fail` if a lookup fails.
    fn copy_entry(
        &mut self,
        snap: MapId,
        entry: u32,
        from: Option<i16>,
        to: Option<i16>,
        fail: Label,
    ) {
        let spare = self.sh.maps[snap.0 as usize].max_entries as i32 - 1;
        let index = |g: &mut Self, slot: Option<i16>| match slot {
            Some(s) => g.e.emit(Insn::ldx_mem(Size::DW, R1, R7, s)),
            None => g.e.emit(Insn::mov64_imm(R1, spare)),
        };
        index(self, from);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, fail);
        self.e.emit(Insn::mov64_reg(R8, R0));
        index(self, to);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, fail);
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::mov64_imm(R2, entry as i32));
        self.e.emit(Insn::mov64_reg(R3, R8));
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
    }

    /// Jumps to `better` when the entry at r0 sorts before the entry at r8, else to `worse`.
    fn compare(&mut self, comps: &[Component], better: Label, worse: Label) {
        for c in comps {
            let next = self.e.label();
            // Strings compare unsigned, longs signed.
            let (strs, longs) = if c.descending {
                (Cond::Gt, Cond::Sgt)
            } else {
                (Cond::Lt, Cond::Slt)
            };
            match c.cap {
                None => {
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, c.off));
                    self.e.emit(Insn::ldx_mem(Size::DW, R2, R8, c.off));
                    self.e.jmp_reg(Cond::Eq, R1, R2, next);
                    self.e.jmp_reg(longs, R1, R2, better);
                    self.e.goto(worse);
                }
                Some(cap) => {
                    // Zero-padded strings compare as big-endian words.
                    for w in (0..cap).step_by(8) {
                        let same = self.e.label();
                        let at = c.off + w as i16;
                        self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, at));
                        self.e.emit(Insn::ldx_mem(Size::DW, R2, R8, at));
                        self.e.jmp_reg(Cond::Eq, R1, R2, same);
                        self.e.emit(Insn::to_be64(R1));
                        self.e.emit(Insn::to_be64(R2));
                        self.e.jmp_reg(strs, R1, R2, better);
                        self.e.goto(worse);
                        self.e.bind(same);
                    }
                }
            }
            self.e.bind(next);
        }
        self.e.goto(worse);
    }

    /// Runs the body once per snapshot entry below `m`, with the keys and value bound.
    #[allow(clippy::too_many_arguments)]
    fn foreach_body(
        &mut self,
        fe: &Foreach,
        snap: MapId,
        key_size: u32,
        spec: &crate::object::GlobalSpec,
        st: &State,
        count: u32,
        span: Span,
    ) -> R<()> {
        let top = self.e.label();
        let cont = self.e.label();
        let end = self.e.label();
        let ptr = self.temp();
        self.e.emit(Insn::st_mem(Size::DW, R7, st.i, 0));
        self.e.bind(top);
        self.tick(count, span);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.i));
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R7, st.m));
        self.e.jmp_reg(Cond::Ge, R1, R2, end);
        self.lookup_reg(snap, R1);
        self.e.jmp_imm(Cond::Eq, R0, 0, end);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, ptr));
        let cap = self.cap();
        let mut binds: Vec<(rtap_lang::hir::LocalId, i16)> = fe
            .keys
            .iter()
            .zip(&spec.keys)
            .map(|(l, f)| (*l, f.offset as i16))
            .collect();
        if let Some(v) = fe.value {
            binds.push((v, key_size as i16));
        }
        for (l, off) in binds {
            match self.locals[l.0 as usize] {
                super::codegen::Slot::Long(slot) => {
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R0, off));
                    self.e.emit(Insn::stx_mem(Size::DW, R10, R1, slot));
                }
                super::codegen::Slot::Str(at) => {
                    let dst = super::codegen::Buf {
                        base: R7,
                        off: at,
                        cap,
                    };
                    self.copy_str(dst, R0, off);
                    self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, ptr));
                }
            }
        }
        self.loops.push((end, cont));
        self.foreach_depth += 1;
        let r = self.stmt(&fe.body);
        self.foreach_depth -= 1;
        self.loops.pop();
        r?;
        self.e.bind(cont);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, st.i));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, st.i));
        self.e.goto(top);
        self.e.bind(end);
        Ok(())
    }
}
