//! The BPF back end: instructions, and code generation from the resolved program.

pub mod insn;
