//! The instruction buffer: labels and jump fix-ups, source notes, and byte arenas for frames.

use super::insn::{Cond, Insn, Reg};
use crate::object::SourceNote;
use rtap_lang::span::{SourceMap, Span};

/// A jump target, bound to an instruction index once emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Code after an unconditional jump or `exit` is dropped until a label that
/// something jumps to is bound: the verifier rejects unreachable instructions.
pub struct Emitter {
    pub insns: Vec<Insn>,
    notes: Vec<SourceNote>,
    labels: Vec<Option<usize>>,
    /// Whether some emitted jump targets the label.
    referenced: Vec<bool>,
    /// (jump instruction, target).
    fixups: Vec<(usize, Label)>,
    /// (`ld_func` instruction, subprogram start).
    func_fixups: Vec<(usize, Label)>,
    live: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter {
            insns: Vec::new(),
            notes: Vec::new(),
            labels: Vec::new(),
            referenced: Vec::new(),
            fixups: Vec::new(),
            func_fixups: Vec::new(),
            live: true,
        }
    }
}

impl Emitter {
    pub fn emit(&mut self, insn: Insn) {
        if self.live {
            self.insns.push(insn);
            if insn == Insn::exit() {
                self.live = false;
            }
        }
    }

    pub fn emit2(&mut self, pair: [Insn; 2]) {
        if self.live {
            self.insns.extend(pair);
        }
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        self.referenced.push(false);
        Label(self.labels.len() - 1)
    }

    /// Whether an emitted jump targets `l`.
    pub fn is_referenced(&self, l: Label) -> bool {
        self.referenced[l.0]
    }

    pub fn bind(&mut self, l: Label) {
        // A `goto` to the very next instruction is dropped; jumps to it go on to `l` anyway.
        if let Some(&(at, target)) = self.fixups.last() {
            if target == l && at + 1 == self.insns.len() && self.insns[at].code == Insn::ja(0).code
            {
                self.fixups.pop();
                self.insns.pop();
                self.live = true;
                let end = self.insns.len();
                for p in self.labels.iter_mut().flatten() {
                    *p = (*p).min(end);
                }
                for n in &mut self.notes {
                    n.insn = n.insn.min(end as u32);
                }
            }
        }
        self.labels[l.0] = Some(self.insns.len());
        self.live |= self.referenced[l.0];
    }

    fn jump(&mut self, insn: Insn, l: Label) {
        if self.live {
            self.fixups.push((self.insns.len(), l));
            self.referenced[l.0] = true;
            self.insns.push(insn);
        }
    }

    /// `reg = &l`, where `l` starts a subprogram (a helper's callback).
    pub fn ld_func(&mut self, reg: Reg, l: Label) {
        if self.live {
            self.func_fixups.push((self.insns.len(), l));
            self.referenced[l.0] = true;
            self.insns.extend(Insn::ld_func(reg, 0));
        }
    }

    /// Start instructions of the subprograms `ld_func` refers to, sorted.
    pub fn subprograms(&self) -> Vec<u32> {
        let mut starts: Vec<u32> = self
            .func_fixups
            .iter()
            .filter_map(|&(_, l)| self.labels[l.0].map(|p| p as u32))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    pub fn goto(&mut self, l: Label) {
        self.jump(Insn::ja(0), l);
        self.live = false;
    }

    /// `may_goto l`: to `l` once the kernel's loop budget is spent.
    pub fn may_goto(&mut self, l: Label) {
        self.jump(Insn::may_goto(0), l);
    }

    pub fn jmp_imm(&mut self, cond: Cond, r: Reg, imm: i32, l: Label) {
        self.jump(Insn::jmp_imm(cond, r, imm, 0), l);
    }

    pub fn jmp_reg(&mut self, cond: Cond, a: Reg, b: Reg, l: Label) {
        self.jump(Insn::jmp_reg(cond, a, b, 0), l);
    }

    /// Starts a source group at the next instruction, unless it continues the same line.
    pub fn note(&mut self, sources: &SourceMap, span: Span) {
        let loc = sources.location(span);
        let file = sources.file(span.file);
        let text = file
            .text
            .lines()
            .nth(loc.line as usize - 1)
            .unwrap_or("")
            .trim()
            .to_string();
        let location = loc.to_string();
        let insn = self.insns.len() as u32;
        if let Some(last) = self.notes.last_mut() {
            // One group per script line: later statements on the same line join it.
            let line = |l: &str| l.rsplit_once(':').map(|(a, _)| a.to_string());
            if line(&last.location) == line(&location) {
                return;
            }
            if last.insn == insn {
                // An empty group: the newer note replaces it.
                *last = SourceNote {
                    insn,
                    location,
                    text,
                };
                return;
            }
        }
        self.notes.push(SourceNote {
            insn,
            location,
            text,
        });
    }

    /// Resolves jumps; fails if a jump does not fit in 16 bits.
    pub fn finish(mut self) -> Result<(Vec<Insn>, Vec<SourceNote>), String> {
        for &(at, l) in &self.fixups {
            let target = self.labels[l.0].expect("jump to an unbound label");
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off =
                i16::try_from(off).map_err(|_| "program too large for a jump".to_string())?;
        }
        for &(at, l) in &self.func_fixups {
            let target = self.labels[l.0].expect("callback at an unbound label");
            self.insns[at].imm = (target as i64 - at as i64 - 1) as i32;
        }
        self.notes.retain(|n| (n.insn as usize) < self.insns.len());
        Ok((self.insns, self.notes))
    }
}

/// Bump allocation of 8-byte-aligned byte ranges, released in stack order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arena {
    used: u32,
    pub max: u32,
}

impl Arena {
    /// Starts with `reserved` bytes already taken.
    pub fn new(reserved: u32) -> Arena {
        Arena {
            used: reserved,
            max: reserved,
        }
    }

    /// Returns the start of `size` fresh bytes.
    pub fn alloc(&mut self, size: u32) -> u32 {
        let start = self.used;
        self.used += size.div_ceil(8) * 8;
        self.max = self.max.max(self.used);
        start
    }

    pub fn mark(&self) -> u32 {
        self.used
    }

    pub fn release(&mut self, mark: u32) {
        self.used = mark;
    }
}

/// The r10-relative offset of a frame allocation of `size` bytes at `start`.
pub fn frame_off(start: u32, size: u32) -> i16 {
    -((start + size.div_ceil(8) * 8) as i32) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::insn::R0;

    /// Forward and backward jumps get offsets relative to the next instruction.
    #[test]
    fn labels_resolve_both_ways() {
        let mut e = Emitter::default();
        let top = e.label();
        let end = e.label();
        e.bind(top);
        e.jmp_imm(Cond::Eq, R0, 0, end);
        e.emit(Insn::mov64_imm(R0, 1));
        e.goto(top);
        e.bind(end);
        e.emit(Insn::exit());
        let (insns, _) = e.finish().unwrap();
        assert_eq!(insns[0].off, 2);
        assert_eq!(insns[2].off, -3);
    }

    /// Code after a jump is dropped until a label with incoming jumps is bound,
    /// and a jump to the next instruction disappears.
    #[test]
    fn dead_code_is_dropped() {
        let mut e = Emitter::default();
        let used = e.label();
        let unused = e.label();
        e.emit(Insn::mov64_imm(R0, 1));
        e.jmp_imm(Cond::Eq, R0, 0, used);
        e.goto(used);
        e.emit(Insn::mov64_imm(R0, 2));
        e.bind(unused);
        e.emit(Insn::mov64_imm(R0, 3));
        e.bind(used);
        e.emit(Insn::exit());
        e.emit(Insn::exit());
        let (insns, _) = e.finish().unwrap();
        assert_eq!(
            insns,
            vec![
                Insn::mov64_imm(R0, 1),
                Insn::jmp_imm(Cond::Eq, R0, 0, 0),
                Insn::exit()
            ]
        );
    }

    /// Frame slots grow downwards from r10 and are reused after release.
    #[test]
    fn arena_reuses_released_bytes() {
        let mut a = Arena::new(8);
        let m = a.mark();
        let x = a.alloc(4);
        assert_eq!(frame_off(x, 4), -16);
        a.release(m);
        assert_eq!(a.alloc(16), 8);
        assert_eq!(a.max, 24);
    }
}
