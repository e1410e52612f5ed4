//! Access plans: how to compute a target expression's value at one probe site.
//!
//! The contract between DWARF resolution and the BPF back end: the back end
//! executes these ops on a 64-bit accumulator and never sees DWARF.

/// A DWARF register number (x86-64 numbering: 0 rax, 1 rdx, 2 rcx, 3 rbx,
/// 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8–15 r8–r15, 16 return address/rip).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DwarfReg(pub u16);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessOp {
    /// acc = value of a register at the probe.
    Reg(DwarfReg),
    /// acc = register + offset (an address, e.g. a stack slot from `DW_OP_fbreg`).
    RegAddr { reg: DwarfReg, offset: i64 },
    /// acc = the value of the target expression's script operand (`@cast`'s pointer).
    Script,
    /// acc = constant (`DW_OP_implicit_value`, `DW_OP_lit*` with `stack_value`, enumerators).
    Const(i64),
    /// acc = link-time virtual address + the module's load bias in the traced process.
    StaticAddr(u64),
    /// acc += constant (member offsets, `&`).
    Add(i64),
    /// acc += index × stride, where the index is the script expression of
    /// `Accessor::Index` number `accessor` in the target expression's chain.
    AddIndex { accessor: u32, stride: u64 },
    /// acc = user memory at acc, `size` bytes (1, 2, 4 or 8), sign- or zero-extended.
    Load { size: u8, signed: bool },
    /// Extract a bitfield from acc (after its storage unit was loaded):
    /// shift right by `shift`, keep `bits` bits, sign-extend if `signed`.
    Bitfield { shift: u8, bits: u8, signed: bool },
}

/// What the final value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueInfo {
    /// The C type as SystemTap prints it (`struct msg*`, `char const*`, `int`).
    pub c_type: String,
    /// A pointer to `char` (signed, unsigned or plain): usable with `user_string`.
    pub is_char_pointer: bool,
    pub is_pointer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPlan {
    pub ops: Vec<AccessOp>,
    pub value: ValueInfo,
}

/// A pretty-printed target expression (`$v$`, `$v$$`, `$$vars`, `$$parms$` ...):
/// text and values, formatted into one string as SystemTap's `tapsets.cxx` does.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PrettyPlan {
    pub pieces: Vec<PrettyPiece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrettyPiece {
    Text(String),
    /// A value computed by `ops` (as an [`AccessPlan`]'s), printed with `conv`.
    Value {
        ops: Vec<AccessOp>,
        conv: PrettyConv,
    },
    /// SystemTap wraps each pretty-printed variable in `try`: a memory fault inside
    /// makes the whole group read `ERROR`.
    Guarded(Vec<PrettyPiece>),
}

/// How one value prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrettyConv {
    /// `%#x`.
    Hex,
    /// `%i`.
    Signed,
    /// `%u`.
    Unsigned,
    /// `%#c`: the character, escaped.
    Char,
    /// `%p`.
    Pointer,
    /// `%s` of the user string at the value, `<unknown>` when unreadable.
    Str,
}
