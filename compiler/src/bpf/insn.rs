//! eBPF instructions: one constructor per mnemonic, and a disassembler.

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
