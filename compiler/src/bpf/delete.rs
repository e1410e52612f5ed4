//! `delete` of elements, slices, whole arrays and statistics, and `in` with wildcards.

use super::codegen::{Gen, R};
use super::each::Callback;
use super::insn::*;
use crate::object::GlobalValue;
use rtap_lang::hir::{Expr, GlobalId};
use rtap_lang::span::Span;

impl Gen<'_, '_> {
    /// `delete g[keys]`.
    pub fn delete_element(&mut self, g: GlobalId, keys: &[Expr], span: Span) -> R<()> {
        let m = self.scratch.mark();
        let key = self.build_key(g, keys, span)?;
        self.per_key_map(g, key, &mut |s, map, key| {
            s.e.emit2(Insn::ld_map_fd(R1, map));
            s.lea(R2, key.base, key.off);
            s.e.emit(Insn::call(Helper::MapDeleteElem));
            Ok(())
        })?;
        if let Some(order) = self.wrap_order(g) {
            self.e.emit2(Insn::ld_map_fd(R1, order));
            self.lea(R2, R7, key);
            self.e.emit(Insn::call(Helper::MapDeleteElem));
        }
        self.scratch.release(m);
        Ok(())
    }

    /// `delete g` of an array, or `delete g[k, *]` of a slice of it.
    pub fn delete_matching(
        &mut self,
        g: GlobalId,
        slice: Option<&[Option<Expr>]>,
        span: Span,
    ) -> R<()> {
        let sm = self.scratch.mark();
        let fm = self.frame.mark();
        let pattern = match slice {
            Some(keys) => Some(self.slice_pattern(g, keys, span)?),
            None => None,
        };
        let order = self.wrap_order(g);
        let ctx = self.temp();
        let map = self.global_map(g);
        self.for_each(map, Callback::Delete { pattern, order }, ctx, span);
        // Arrays with short keys are never sliced in BPF: this is a whole `delete`.
        if let Some(short) = self.sh.globals[g.0 as usize].short.clone() {
            let pattern = None;
            let order = None;
            self.for_each(short.map, Callback::Delete { pattern, order }, ctx, span);
        }
        self.frame.release(fm);
        self.scratch.release(sm);
        Ok(())
    }

    /// r0 = 1 when `[keys] in g`; a wildcard matches any value.
    pub fn in_array(&mut self, g: GlobalId, keys: &[Option<Expr>], span: Span) -> R<()> {
        if let Some(keys) = keys.iter().cloned().collect::<Option<Vec<_>>>() {
            self.lookup(g, &keys, span)?;
            self.e.emit(Insn::jmp_imm(Cond::Eq, R0, 0, 1));
            self.e.emit(Insn::mov64_imm(R0, 1));
            return Ok(());
        }
        let sm = self.scratch.mark();
        let fm = self.frame.mark();
        let pattern = self.slice_pattern(g, keys, span)?;
        let ctx = self.temp();
        self.zero_ctx(ctx, 1);
        let map = self.global_map(g);
        self.for_each(map, Callback::Find { pattern }, ctx, span);
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, ctx));
        self.frame.release(fm);
        self.scratch.release(sm);
        Ok(())
    }

    /// `delete s` of a scalar statistic: zeroes every CPU's slot.
    pub fn clear_stats(&mut self, g: GlobalId) {
        let spec = &self.sh.globals[g.0 as usize];
        debug_assert_eq!(spec.value, GlobalValue::Stats);
        let map = spec.map;
        let size = self.sh.maps[map.0 as usize].value_size;
        let sm = self.scratch.mark();
        let (key, cpu) = (self.scratch.alloc(8) as i16, self.scratch.alloc(8) as i16);
        self.e.emit(Insn::st_mem(Size::DW, R7, key, 0));
        self.e.emit(Insn::st_mem(Size::DW, R7, cpu, 0));
        let top = self.e.label();
        let done = self.e.label();
        // The CPU number lives in memory, so the verifier checks the loop body once.
        self.e.bind(top);
        self.e.may_goto(done);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R7, key);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, cpu));
        self.e.emit(Insn::call(Helper::MapLookupPercpuElem));
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        for i in (0..size).step_by(8) {
            self.e.emit(Insn::st_mem(Size::DW, R0, i as i16, 0));
        }
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, cpu));
        self.e.emit(Insn::add64_imm(R1, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, cpu));
        self.e.jmp_imm(Cond::Lt, R1, super::globals::MAX_CPUS, top);
        self.e.bind(done);
        self.scratch.release(sm);
    }
}
