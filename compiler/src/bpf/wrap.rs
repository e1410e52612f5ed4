//! Wrapping arrays (`global a%[N]`): a full array overwrites its oldest element.
//!
//! SystemTap keeps a `%` array's elements in insertion order and, when a new key
//! finds the array full, reuses the oldest element; updating an existing key does not
//! make it younger, and `delete` frees its slot. rtap implements exactly that: beside
//! the array's hash map sits an `order` hash (same keys, value = insertion number from
//! a shared `clock`). A new key that does not fit evicts the element with the smallest
//! number, found by one `bpf_for_each_map_elem` walk of `order` (so only inserts into a
//! full array cost O(N)). An LRU hash would be cheaper but is not exact: it evicts the
//! least recently *used* element, and its per-CPU free lists evict before the map is
//! full. Elements that user-space handlers (begin/end) insert have no insertion
//! number and are never evicted by a probe.

use super::codegen::{Gen, Shared};
use super::each::Callback;
use super::insn::*;
use crate::object::{MapId, MapKind};
use rtap_lang::hir::GlobalId;
use rtap_lang::span::Span;

/// The maps that keep a wrapping array's insertion order.
#[derive(Clone, Copy, Debug)]
pub struct WrapMaps {
    /// Key → insertion number.
    pub order: MapId,
    /// One `u64`: the next insertion number.
    pub clock: MapId,
}

/// `EEXIST`: the key appeared meanwhile (another CPU inserted it).
const EEXIST: i32 = 17;
const BPF_ANY: i32 = 0;

impl Shared<'_> {
    pub(super) fn declare_wrap(&mut self, g: u32, name: &str, key_size: u32, entries: u32) {
        let order = self.add_map(
            &format!("{name}_order"),
            MapKind::Hash,
            key_size,
            8,
            entries,
        );
        let clock = self.add_map(&format!("{name}_clock"), MapKind::Array, 4, 8, 1);
        self.wrap.insert(g, WrapMaps { order, clock });
    }
}

impl Gen<'_, '_> {
    /// The order map of a wrapping array.
    pub(super) fn wrap_order(&self, g: GlobalId) -> Option<MapId> {
        self.sh.wrap.get(&g.0).map(|w| w.order)
    }

    /// After `bpf_map_update_elem(a, key, zero, BPF_NOEXIST)` left its result in r0:
    /// when the array was full, evicts the oldest element and inserts again; then
    /// numbers the new element. `key` and `zero` are scratch offsets.
    pub(super) fn wrap_insert(&mut self, g: GlobalId, key: i16, zero: i16, span: Span) {
        let Some(w) = self.sh.wrap.get(&g.0).copied() else {
            return;
        };
        let map = self.global_map(g);
        let key_size = self.sh.maps[map.0 as usize].key_size;
        let inserted = self.e.label();
        let done = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, inserted);
        self.e.jmp_imm(Cond::Eq, R0, -EEXIST, done);
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let oldest = self.scratch.alloc(key_size) as i16;
        let ctx = super::emit::frame_off(self.frame.alloc(16), 16);
        self.zero_ctx(ctx, 2);
        self.for_each(
            w.order,
            Callback::Oldest {
                values: map,
                key_at: oldest,
                key_size,
            },
            ctx,
            span,
        );
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, ctx + 8));
        self.frame.release(fm);
        // Nothing to evict: the lookup after this raises the overflow error.
        self.e.jmp_imm(Cond::Eq, R1, 0, done);
        for m in [map, w.order] {
            self.e.emit2(Insn::ld_map_fd(R1, m));
            self.lea(R2, R7, oldest);
            self.e.emit(Insn::call(Helper::MapDeleteElem));
        }
        self.scratch.release(sm);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R7, key);
        self.lea(R3, R7, zero);
        self.e
            .emit(Insn::mov64_imm(R4, super::globals::BPF_NOEXIST));
        self.e.emit(Insn::call(Helper::MapUpdateElem));
        self.e.jmp_imm(Cond::Ne, R0, 0, done);
        self.e.bind(inserted);
        // order[key] = clock++.
        self.lookup_u32(w.clock, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::mov64_imm(R1, 1));
        self.e.emit(Insn::atomic_fetch_add64(R0, R1, 0));
        let fm = self.frame.mark();
        let seq = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, seq));
        self.e.emit2(Insn::ld_map_fd(R1, w.order));
        self.lea(R2, R7, key);
        self.lea(R3, R10, seq);
        self.e.emit(Insn::mov64_imm(R4, BPF_ANY));
        self.e.emit(Insn::call(Helper::MapUpdateElem));
        self.frame.release(fm);
        self.e.bind(done);
    }
}
