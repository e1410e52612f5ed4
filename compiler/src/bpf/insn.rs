//! eBPF instructions: one constructor per mnemonic, and a disassembler.

pub use super::helpers::Helper;
use std::fmt;

/// One 8-byte eBPF instruction, in the kernel's `struct bpf_insn` layout.
/// `ld_imm64` takes two of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// A BPF register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
/// The read-only frame pointer.
pub const R10: Reg = Reg(10);

// Instruction classes.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_JMP32: u8 = 0x06;
pub const BPF_ALU64: u8 = 0x07;
// Operand source.
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
// Memory modes.
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_ATOMIC: u8 = 0xc0;
/// `imm` flag of an atomic operation: return the old value in `src`.
pub const BPF_FETCH: i32 = 0x01;
/// `src` of an `ld_imm64` whose `imm` is a map fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `src` of an `ld_imm64` whose `imm` is the offset of a subprogram (a callback).
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// `BPF_END`: byte swaps.
const END: u8 = 0xd0;
/// `BPF_TO_BE` flag of `BPF_END`.
const TO_BE: u8 = 0x08;

/// Access size of loads and stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

impl Size {
    /// The size for 1, 2, 4 or 8 bytes.
    pub fn from_bytes(n: u8) -> Option<Size> {
        match n {
            1 => Some(Size::B),
            2 => Some(Size::H),
            4 => Some(Size::W),
            8 => Some(Size::DW),
            _ => None,
        }
    }

    pub fn bytes(self) -> u8 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    fn c_name(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// ALU operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Neg = 0x80,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

impl AluOp {
    const ALL: [AluOp; 13] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];

    fn symbol(self) -> &'static str {
        match self {
            AluOp::Add => "+=",
            AluOp::Sub => "-=",
            AluOp::Mul => "*=",
            AluOp::Div => "/=",
            AluOp::Or => "|=",
            AluOp::And => "&=",
            AluOp::Lsh => "<<=",
            AluOp::Rsh => ">>=",
            AluOp::Neg => "= -",
            AluOp::Mod => "%=",
            AluOp::Xor => "^=",
            AluOp::Mov => "=",
            AluOp::Arsh => "s>>=",
        }
    }
}

/// Jump conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Sgt = 0x60,
    Sge = 0x70,
    Lt = 0xa0,
    Le = 0xb0,
    Slt = 0xc0,
    Sle = 0xd0,
}

impl Cond {
    const ALL: [Cond; 11] = [
        Cond::Eq,
        Cond::Gt,
        Cond::Ge,
        Cond::Set,
        Cond::Ne,
        Cond::Sgt,
        Cond::Sge,
        Cond::Lt,
        Cond::Le,
        Cond::Slt,
        Cond::Sle,
    ];

    fn symbol(self) -> &'static str {
        match self {
            Cond::Eq => "==",
            Cond::Gt => ">",
            Cond::Ge => ">=",
            Cond::Set => "&",
            Cond::Ne => "!=",
            Cond::Sgt => "s>",
            Cond::Sge => "s>=",
            Cond::Lt => "<",
            Cond::Le => "<=",
            Cond::Slt => "s<",
            Cond::Sle => "s<=",
        }
    }

    /// The condition that holds exactly when this one does not.
    pub fn negate(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Sgt => Cond::Sle,
            Cond::Sle => Cond::Sgt,
            Cond::Sge => Cond::Slt,
            Cond::Slt => Cond::Sge,
            // `jset` has no negation; callers never negate it.
            Cond::Set => Cond::Set,
        }
    }
}

const JA: u8 = 0x00;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
/// `BPF_JCOND`: with `src = 0`, `may_goto`.
const JCOND: u8 = 0xe0;

fn regs(dst: Reg, src: Reg) -> u8 {
    (src.0 << 4) | (dst.0 & 0x0f)
}

impl Insn {
    pub const fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }

    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    fn raw(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: regs(dst, src),
            off,
            imm,
        }
    }

    pub fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_K | op as u8, dst, R0, 0, imm)
    }

    pub fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_X | op as u8, dst, src, 0, 0)
    }

    pub fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::raw(BPF_ALU | BPF_K | op as u8, dst, R0, 0, imm)
    }

    pub fn alu32_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::raw(BPF_ALU | BPF_X | op as u8, dst, src, 0, 0)
    }

    pub fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Mov, dst, imm)
    }

    pub fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Mov, dst, src)
    }

    pub fn add64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Add, dst, imm)
    }

    pub fn add64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Add, dst, src)
    }

    /// Signed 64-bit division (`off = 1`, kernel 6.6+): `dst s/= src`.
    pub fn sdiv64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_X | AluOp::Div as u8, dst, src, 1, 0)
    }

    /// Signed 64-bit remainder, with the dividend's sign: `dst s%= src`.
    pub fn smod64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_X | AluOp::Mod as u8, dst, src, 1, 0)
    }

    /// Signed division by a constant: `dst s/= imm`.
    pub fn sdiv64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_K | AluOp::Div as u8, dst, R0, 1, imm)
    }

    /// Signed remainder by a constant: `dst s%= imm`.
    pub fn smod64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::raw(BPF_ALU64 | BPF_K | AluOp::Mod as u8, dst, R0, 1, imm)
    }

    pub fn neg64(dst: Reg) -> Insn {
        Insn::alu64_imm(AluOp::Neg, dst, 0)
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(BPF_LDX | BPF_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx_mem(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(BPF_STX | BPF_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st_mem(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::raw(BPF_ST | BPF_MEM | size as u8, dst, R0, off, imm)
    }

    /// `lock *(u64 *)(dst + off) += src`.
    pub fn atomic_add64(dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(
            BPF_STX | BPF_ATOMIC | Size::DW as u8,
            dst,
            src,
            off,
            AluOp::Add as i32,
        )
    }

    /// `src = atomic64_fetch_add((u64 *)(dst + off), src)`.
    pub fn atomic_fetch_add64(dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(
            BPF_STX | BPF_ATOMIC | Size::DW as u8,
            dst,
            src,
            off,
            AluOp::Add as i32 | BPF_FETCH,
        )
    }

    /// `dst = imm64`: two instruction slots.
    pub fn ld_imm64(dst: Reg, imm: i64) -> [Insn; 2] {
        Insn::ld_imm64_src(dst, R0, imm as u64)
    }

    /// `dst = &subprogram`, `off` slots after this instruction (a helper's callback).
    pub fn ld_func(dst: Reg, off: i32) -> [Insn; 2] {
        Insn::ld_imm64_src(dst, Reg(BPF_PSEUDO_FUNC), off as u32 as u64)
    }

    /// `dst = be64(dst)`: on a little-endian host, reverses the bytes, so
    /// unsigned comparison of two words orders them as byte strings.
    pub fn to_be64(dst: Reg) -> Insn {
        Insn::raw(BPF_ALU | END | TO_BE, dst, R0, 0, 64)
    }

    /// `dst = map`: the runtime replaces the map id with its fd.
    pub fn ld_map_fd(dst: Reg, map: crate::object::MapId) -> [Insn; 2] {
        Insn::ld_imm64_src(dst, Reg(BPF_PSEUDO_MAP_FD), map.0 as u64)
    }

    fn ld_imm64_src(dst: Reg, src: Reg, imm: u64) -> [Insn; 2] {
        [
            Insn::raw(
                BPF_LD | BPF_IMM | Size::DW as u8,
                dst,
                src,
                0,
                imm as u32 as i32,
            ),
            Insn::raw(0, R0, R0, 0, (imm >> 32) as u32 as i32),
        ]
    }

    /// `if dst <cond> imm goto +off`.
    pub fn jmp_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::raw(BPF_JMP | BPF_K | cond as u8, dst, R0, off, imm)
    }

    /// `if dst <cond> src goto +off`.
    pub fn jmp_reg(cond: Cond, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::raw(BPF_JMP | BPF_X | cond as u8, dst, src, off, 0)
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn::raw(BPF_JMP | JA, R0, R0, off, 0)
    }

    /// `may_goto +off`: falls through until the kernel's per-run loop budget is spent,
    /// then jumps. Loops headed by it verify once, not once per iteration.
    pub fn may_goto(off: i16) -> Insn {
        Insn::raw(BPF_JMP | JCOND, R0, R0, off, 0)
    }

    pub fn call(helper: Helper) -> Insn {
        Insn::raw(BPF_JMP | CALL, R0, R0, 0, helper as i32)
    }

    /// A call of a kernel function (`src = BPF_PSEUDO_KFUNC_CALL`). `imm` indexes
    /// [`crate::object::KFUNCS`]; the runtime replaces it with the function's BTF id.
    pub fn call_kfunc(index: u32) -> Insn {
        Insn::raw(BPF_JMP | CALL, R0, Reg(2), 0, index as i32)
    }

    /// Whether this is a kernel-function call; its program must be loaded sleepable.
    pub fn is_kfunc_call(&self) -> bool {
        self.code == BPF_JMP | CALL && self.src() == 2
    }

    pub fn exit() -> Insn {
        Insn::raw(BPF_JMP | EXIT, R0, R0, 0, 0)
    }

    /// Whether this is the first slot of an `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD | BPF_IMM | Size::DW as u8
    }

    /// Whether this is a conditional or unconditional jump (not call/exit).
    pub fn is_jump(&self) -> bool {
        let class = self.class();
        let op = self.code & 0xf0;
        (class == BPF_JMP || class == BPF_JMP32) && op != CALL && op != EXIT
    }

    /// The 8 bytes the kernel reads (little-endian host).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

fn size_of_code(code: u8) -> Size {
    match code & 0x18 {
        0x10 => Size::B,
        0x08 => Size::H,
        0x00 => Size::W,
        _ => Size::DW,
    }
}

fn signed_off(off: i16) -> String {
    if off < 0 {
        format!("{off}")
    } else {
        format!("+{off}")
    }
}

/// Disassembles one instruction; `next` is the second slot of an `ld_imm64`.
/// `map_name` names the map of a `BPF_PSEUDO_MAP_FD` load.
pub fn format_insn(insn: &Insn, next: Option<&Insn>, map_name: &dyn Fn(u32) -> String) -> String {
    let dst = insn.dst();
    let src = insn.src();
    let off = insn.off;
    let imm = insn.imm;
    match insn.class() {
        BPF_ALU if insn.code & 0xf0 == END => {
            let order = if insn.code & TO_BE != 0 { "be" } else { "le" };
            format!("r{dst} = {order}{imm} r{dst}")
        }
        BPF_ALU64 | BPF_ALU => {
            let r = if insn.class() == BPF_ALU64 { 'r' } else { 'w' };
            let Some(op) = AluOp::ALL
                .into_iter()
                .find(|o| *o as u8 == insn.code & 0xf0)
            else {
                return format!("invalid alu {:#04x}", insn.code);
            };
            let rhs = if op == AluOp::Neg {
                return format!("{r}{dst} = -{r}{dst}");
            } else if insn.code & BPF_X != 0 {
                format!("{r}{src}")
            } else {
                format!("{imm}")
            };
            let signed = off == 1 && matches!(op, AluOp::Div | AluOp::Mod);
            format!(
                "{r}{dst} {}{} {rhs}",
                if signed { "s" } else { "" },
                op.symbol()
            )
        }
        BPF_LDX => format!(
            "r{dst} = *({} *)(r{src} {})",
            size_of_code(insn.code).c_name(),
            signed_off(off)
        ),
        BPF_STX if insn.code & 0xe0 == BPF_ATOMIC => {
            let ty = size_of_code(insn.code).c_name();
            if imm == AluOp::Add as i32 {
                format!("lock *({ty} *)(r{dst} {}) += r{src}", signed_off(off))
            } else if imm == AluOp::Add as i32 | BPF_FETCH {
                format!(
                    "r{src} = atomic64_fetch_add(({ty} *)(r{dst} {}), r{src})",
                    signed_off(off)
                )
            } else {
                format!(
                    "atomic {imm:#x} ({ty} *)(r{dst} {}), r{src}",
                    signed_off(off)
                )
            }
        }
        BPF_STX => format!(
            "*({} *)(r{dst} {}) = r{src}",
            size_of_code(insn.code).c_name(),
            signed_off(off)
        ),
        BPF_ST => format!(
            "*({} *)(r{dst} {}) = {imm}",
            size_of_code(insn.code).c_name(),
            signed_off(off)
        ),
        BPF_LD if insn.is_ld_imm64() => {
            let hi = next.map_or(0, |n| n.imm as u32 as u64);
            let value = (hi << 32) | imm as u32 as u64;
            if src == BPF_PSEUDO_MAP_FD {
                format!("r{dst} = map[{}]", map_name(imm as u32))
            } else if src == BPF_PSEUDO_FUNC {
                format!("r{dst} = func {imm:+}")
            } else {
                format!("r{dst} = {value:#x} ll")
            }
        }
        BPF_JMP | BPF_JMP32 => {
            let op = insn.code & 0xf0;
            match op {
                JA => format!("goto {}", signed_off(off)),
                JCOND if insn.class() == BPF_JMP => format!("may_goto {}", signed_off(off)),
                CALL if src == 2 => match crate::object::KFUNCS.get(imm as usize) {
                    Some(name) => format!("call kfunc {name}"),
                    None => format!("call kfunc #{imm}"),
                },
                CALL => match Helper::from_id(imm) {
                    Some(h) => format!("call {}#{imm}", h.name()),
                    None => format!("call #{imm}"),
                },
                EXIT => "exit".to_string(),
                _ => {
                    let r = if insn.class() == BPF_JMP { 'r' } else { 'w' };
                    let Some(c) = Cond::ALL.into_iter().find(|c| *c as u8 == op) else {
                        return format!("invalid jmp {:#04x}", insn.code);
                    };
                    let rhs = if insn.code & BPF_X != 0 {
                        format!("{r}{src}")
                    } else {
                        format!("{imm:#x}")
                    };
                    format!("if {r}{dst} {} {rhs} goto {}", c.symbol(), signed_off(off))
                }
            }
        }
        _ => format!("invalid {:#04x}", insn.code),
    }
}

impl fmt::Display for Insn {
    /// Disassembles a single slot; an `ld_imm64` shows only its low 32 bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_insn(self, None, &|id| format!("id:{id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::MapId;

    fn bytes(i: Insn) -> [u8; 8] {
        i.to_bytes()
    }

    /// Encodings match what the kernel's `BPF_*` macros (and clang) produce.
    #[test]
    fn encodings_match_kernel_bytes() {
        assert_eq!(
            bytes(Insn::mov64_imm(R1, 0)),
            [0xb7, 0x01, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::mov64_reg(R6, R1)),
            [0xbf, 0x16, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::add64_imm(R1, -8)),
            [0x07, 0x01, 0, 0, 0xf8, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            bytes(Insn::ldx_mem(Size::DW, R1, R6, 112)),
            [0x79, 0x61, 0x70, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::stx_mem(Size::DW, R10, R1, -8)),
            [0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::st_mem(Size::W, R10, -4, 7)),
            [0x62, 0x0a, 0xfc, 0xff, 7, 0, 0, 0]
        );
        assert_eq!(bytes(Insn::ldx_mem(Size::B, R2, R1, 0))[0], 0x71);
        assert_eq!(bytes(Insn::ldx_mem(Size::H, R2, R1, 0))[0], 0x69);
        assert_eq!(bytes(Insn::ldx_mem(Size::W, R2, R1, 0))[0], 0x61);
        assert_eq!(
            bytes(Insn::call(Helper::RingbufReserve)),
            [0x85, 0, 0, 0, 131, 0, 0, 0]
        );
        assert_eq!(bytes(Insn::exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            bytes(Insn::jmp_imm(Cond::Eq, R0, 0, 5)),
            [0x15, 0, 5, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::jmp_reg(Cond::Sgt, R1, R2, -3))[..3],
            [0x6d, 0x21, 0xfd]
        );
        assert_eq!(bytes(Insn::ja(2))[..3], [0x05, 0, 2]);
        assert_eq!(bytes(Insn::atomic_add64(R1, R2, 0))[..2], [0xdb, 0x21]);
        assert_eq!(bytes(Insn::atomic_fetch_add64(R1, R2, 0))[4], 0x01);
        assert_eq!(bytes(Insn::alu64_imm(AluOp::Arsh, R1, 3))[0], 0xc7);
        assert_eq!(bytes(Insn::alu64_reg(AluOp::Mod, R1, R2))[0], 0x9f);
        assert_eq!(bytes(Insn::neg64(R3))[0], 0x87);
        assert_eq!(bytes(Insn::sdiv64_reg(R1, R2))[..3], [0x3f, 0x21, 0x01]);
    }

    /// `ld_imm64` splits the constant across two slots; map loads carry `src = 1`.
    #[test]
    fn ld_imm64_uses_two_slots() {
        let [a, b] = Insn::ld_imm64(R1, 0x1122_3344_5566_7788);
        assert_eq!(a.to_bytes(), [0x18, 0x01, 0, 0, 0x88, 0x77, 0x66, 0x55]);
        assert_eq!(b.to_bytes(), [0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11]);
        let [m, n] = Insn::ld_map_fd(R1, MapId(3));
        assert_eq!(m.to_bytes(), [0x18, 0x11, 0, 0, 3, 0, 0, 0]);
        assert_eq!(n, Insn::default());
    }

    /// The disassembly reads like bpftool's.
    #[test]
    fn display_is_bpftool_like() {
        let names = |id: u32| format!("m{id}");
        let show = |i: Insn| format_insn(&i, None, &names);
        assert_eq!(
            show(Insn::ldx_mem(Size::DW, R1, R6, 112)),
            "r1 = *(u64 *)(r6 +112)"
        );
        assert_eq!(
            show(Insn::stx_mem(Size::W, R10, R1, -8)),
            "*(u32 *)(r10 -8) = r1"
        );
        assert_eq!(
            show(Insn::st_mem(Size::DW, R10, -16, 0)),
            "*(u64 *)(r10 -16) = 0"
        );
        assert_eq!(
            show(Insn::jmp_imm(Cond::Eq, R0, 0, 5)),
            "if r0 == 0x0 goto +5"
        );
        assert_eq!(
            show(Insn::jmp_reg(Cond::Slt, R1, R2, -2)),
            "if r1 s< r2 goto -2"
        );
        assert_eq!(
            show(Insn::call(Helper::RingbufReserve)),
            "call bpf_ringbuf_reserve#131"
        );
        assert_eq!(show(Insn::mov64_imm(R1, -1)), "r1 = -1");
        assert_eq!(show(Insn::mov64_reg(R6, R1)), "r6 = r1");
        assert_eq!(show(Insn::alu64_imm(AluOp::Arsh, R1, 3)), "r1 s>>= 3");
        assert_eq!(show(Insn::neg64(R1)), "r1 = -r1");
        assert_eq!(show(Insn::sdiv64_reg(R1, R2)), "r1 s/= r2");
        assert_eq!(show(Insn::smod64_reg(R1, R2)), "r1 s%= r2");
        assert_eq!(show(Insn::alu32_imm(AluOp::Mov, R1, 1)), "w1 = 1");
        assert_eq!(show(Insn::ja(-4)), "goto -4");
        assert_eq!(show(Insn::exit()), "exit");
        assert_eq!(
            show(Insn::atomic_add64(R1, R2, 8)),
            "lock *(u64 *)(r1 +8) += r2"
        );
        let [a, b] = Insn::ld_imm64(R2, 1 << 40);
        assert_eq!(format_insn(&a, Some(&b), &names), "r2 = 0x10000000000 ll");
        let [m, n] = Insn::ld_map_fd(R1, MapId(2));
        assert_eq!(format_insn(&m, Some(&n), &names), "r1 = map[m2]");
    }

    /// Every condition negates to its complement (and back).
    #[test]
    fn negation_is_an_involution() {
        for c in Cond::ALL {
            if c != Cond::Set {
                assert_ne!(c.negate(), c);
                assert_eq!(c.negate().negate(), c);
            }
        }
    }
}
