//! Callback subprograms of `bpf_for_each_map_elem`: `foreach` snapshots, whole and
//! slice deletes, wildcard `in`, and the oldest element of a wrapping array.
//!
//! A BPF program cannot walk a hash map by itself; the helper calls a subprogram once
//! per element with the map, the key, the value and a context pointer into the
//! caller's stack. Callbacks are small fixed routines emitted after the program's
//! epilogue. Register use inside one: r6 = key, r7 = value, r8 = context, r9 = map.

use super::codegen::Gen;
use super::emit::Label;
use super::insn::*;
use crate::object::MapId;
use rtap_lang::span::Span;

/// Stack bytes of a callback's frame, as the verifier rounds it.
pub const CALLBACK_STACK: u32 = 32;

/// Fixed key fields to match: a packed key in scratch at `at`, compared on `fields`
/// (offset and size in the key). String fields are zero-padded on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub at: i16,
    pub fields: Vec<(u32, u32)>,
}

/// What a snapshot copies after each key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapValue {
    None,
    /// `n` bytes as they are.
    Bytes(u32),
    /// A string of `cap` bytes, zero-padded after its NUL so entries compare by words.
    Str(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// Copies each matching key (and value) to `snap[n]`, `n` being the context's
    /// first `u64`, which it counts; stops when `entries` are taken.
    Snapshot {
        snap: MapId,
        entries: u32,
        key_size: u32,
        value: SnapValue,
        pattern: Option<Pattern>,
    },
    /// Deletes each matching element, and its entry in `order` for a wrapping array.
    Delete {
        pattern: Option<Pattern>,
        order: Option<MapId>,
    },
    /// Sets the context's first `u64` to 1 at the first matching element, and stops.
    Find { pattern: Pattern },
    /// Over a wrapping array's order map (key → insertion number): keeps the smallest
    /// number in the context's first `u64`, sets the second to 1, and copies that
    /// key to scratch at `key_at`. Entries whose element is gone are dropped.
    Oldest {
        values: MapId,
        key_at: i16,
        key_size: u32,
    },
}

impl Gen<'_, '_> {
    /// The label of a callback, generated once per program.
    fn callback(&mut self, cb: Callback, span: Span) -> Label {
        if let Some((_, l, _)) = self.callbacks.iter().find(|(c, _, _)| *c == cb) {
            return *l;
        }
        let l = self.e.label();
        self.callbacks.push((cb, l, span));
        l
    }

    /// `bpf_for_each_map_elem(map, cb, r10 + ctx, 0)`.
    pub fn for_each(&mut self, map: MapId, cb: Callback, ctx: i16, span: Span) {
        let l = self.callback(cb, span);
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.e.ld_func(R2, l);
        self.lea(R3, R10, ctx);
        self.e.emit(Insn::mov64_imm(R4, 0));
        self.e.emit(Insn::call(Helper::ForEachMapElem));
    }

    /// Zeroes `words` u64s of a callback context at `r10 + ctx`, with zeros read back
    /// from scratch: values the verifier does not know, so it checks the callback
    /// once instead of once per element it could count.
    pub fn zero_ctx(&mut self, ctx: i16, words: i16) {
        let m = self.scratch.mark();
        let z = self.scratch.alloc(8) as i16;
        self.e.emit(Insn::st_mem(Size::DW, R7, z, 0));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, z));
        for w in 0..words {
            self.e.emit(Insn::stx_mem(Size::DW, R10, R1, ctx + 8 * w));
        }
        self.scratch.release(m);
    }

    /// r0 = `bpf_map_lookup_elem(map, &(u32)reg)`.
    pub fn lookup_reg(&mut self, map: MapId, reg: Reg) {
        self.e
            .emit(Insn::stx_mem(Size::W, R10, reg, super::codegen::KEY_SLOT));
        self.e.emit2(Insn::ld_map_fd(R1, map));
        self.lea(R2, R10, super::codegen::KEY_SLOT);
        self.e.emit(Insn::call(Helper::MapLookupElem));
    }

    /// Emits every callback the program refers to, after its epilogue.
    pub(super) fn emit_callbacks(&mut self) {
        for (cb, l, span) in self.callbacks.clone() {
            self.e.note(self.sh.sources, span);
            self.e.bind(l);
            self.callback_body(&cb);
        }
    }

    fn callback_body(&mut self, cb: &Callback) {
        self.e.emit(Insn::mov64_reg(R6, R2));
        self.e.emit(Insn::mov64_reg(R7, R3));
        self.e.emit(Insn::mov64_reg(R8, R4));
        self.e.emit(Insn::mov64_reg(R9, R1));
        let next = self.e.label();
        let stop = self.e.label();
        let pattern = match cb {
            Callback::Snapshot { pattern, .. } | Callback::Delete { pattern, .. } => {
                pattern.as_ref()
            }
            Callback::Find { pattern } => Some(pattern),
            Callback::Oldest { .. } => None,
        };
        if let Some(p) = pattern {
            self.match_pattern(p, next);
        }
        match cb {
            Callback::Snapshot {
                snap,
                entries,
                key_size,
                value,
                ..
            } => {
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R8, 0));
                self.e.jmp_imm(Cond::Ge, R1, *entries as i32, stop);
                self.lookup_reg(*snap, R1);
                self.e.jmp_imm(Cond::Eq, R0, 0, stop);
                self.e.emit(Insn::mov64_reg(R9, R0));
                self.e.emit(Insn::mov64_reg(R1, R9));
                self.e.emit(Insn::mov64_imm(R2, *key_size as i32));
                self.e.emit(Insn::mov64_reg(R3, R6));
                self.e.emit(Insn::call(Helper::ProbeReadKernel));
                let at = *key_size as i16;
                match *value {
                    SnapValue::None => {}
                    SnapValue::Bytes(n) => {
                        self.lea(R1, R9, at);
                        self.e.emit(Insn::mov64_imm(R2, n as i32));
                        self.e.emit(Insn::mov64_reg(R3, R7));
                        self.e.emit(Insn::call(Helper::ProbeReadKernel));
                    }
                    SnapValue::Str(cap) => {
                        for w in (0..cap).step_by(8) {
                            self.e.emit(Insn::st_mem(Size::DW, R9, at + w as i16, 0));
                        }
                        self.lea(R1, R9, at);
                        self.e.emit(Insn::mov64_imm(R2, cap as i32));
                        self.e.emit(Insn::mov64_reg(R3, R7));
                        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
                    }
                }
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R8, 0));
                self.e.emit(Insn::add64_imm(R1, 1));
                self.e.emit(Insn::stx_mem(Size::DW, R8, R1, 0));
            }
            Callback::Delete { order, .. } => {
                self.e.emit(Insn::mov64_reg(R1, R9));
                self.e.emit(Insn::mov64_reg(R2, R6));
                self.e.emit(Insn::call(Helper::MapDeleteElem));
                if let Some(order) = order {
                    self.e.emit2(Insn::ld_map_fd(R1, *order));
                    self.e.emit(Insn::mov64_reg(R2, R6));
                    self.e.emit(Insn::call(Helper::MapDeleteElem));
                }
            }
            Callback::Find { .. } => {
                self.e.emit(Insn::st_mem(Size::DW, R8, 0, 1));
                self.e.goto(stop);
            }
            Callback::Oldest {
                values,
                key_at,
                key_size,
            } => {
                let live = self.e.label();
                let take = self.e.label();
                self.e.emit2(Insn::ld_map_fd(R1, *values));
                self.e.emit(Insn::mov64_reg(R2, R6));
                self.e.emit(Insn::call(Helper::MapLookupElem));
                self.e.jmp_imm(Cond::Ne, R0, 0, live);
                self.e.emit(Insn::mov64_reg(R1, R9));
                self.e.emit(Insn::mov64_reg(R2, R6));
                self.e.emit(Insn::call(Helper::MapDeleteElem));
                self.e.goto(next);
                self.e.bind(live);
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, 0));
                self.e.emit(Insn::ldx_mem(Size::DW, R2, R8, 8));
                self.e.jmp_imm(Cond::Eq, R2, 0, take);
                self.e.emit(Insn::ldx_mem(Size::DW, R2, R8, 0));
                self.e.jmp_reg(Cond::Ge, R1, R2, next);
                self.e.bind(take);
                self.e.emit(Insn::stx_mem(Size::DW, R8, R1, 0));
                self.e.emit(Insn::st_mem(Size::DW, R8, 8, 1));
                self.lookup_u32(self.sh.scratch, 0);
                self.e.jmp_imm(Cond::Eq, R0, 0, next);
                self.lea(R1, R0, *key_at);
                self.e.emit(Insn::mov64_imm(R2, *key_size as i32));
                self.e.emit(Insn::mov64_reg(R3, R6));
                self.e.emit(Insn::call(Helper::ProbeReadKernel));
            }
        }
        self.e.bind(next);
        self.e.emit(Insn::mov64_imm(R0, 0));
        self.e.emit(Insn::exit());
        self.e.bind(stop);
        self.e.emit(Insn::mov64_imm(R0, 1));
        self.e.emit(Insn::exit());
    }

    /// Falls through when the key at r6 matches the pattern, else jumps to `skip`.
    fn match_pattern(&mut self, p: &Pattern, skip: Label) {
        self.lookup_u32(self.sh.scratch, 0);
        self.e.jmp_imm(Cond::Eq, R0, 0, skip);
        for &(off, size) in &p.fields {
            for w in (0..size).step_by(8) {
                let at = (off + w) as i16;
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R6, at));
                self.e.emit(Insn::ldx_mem(Size::DW, R2, R0, p.at + at));
                self.e.jmp_reg(Cond::Ne, R1, R2, skip);
            }
        }
    }
}
