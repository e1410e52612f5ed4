//! The BPF back end: instructions, and code generation from the resolved program.

mod builtins;
pub mod codegen;
pub mod disasm;
pub mod emit;
mod expr;
mod globals;
pub mod helpers;
pub mod insn;
mod printf;
mod sprintf;
mod stmt;
mod strings;
pub mod target;
pub mod testing;

pub use codegen::{codegen, CodegenOptions};
pub use disasm::disassemble;

#[cfg(test)]
mod tests;
