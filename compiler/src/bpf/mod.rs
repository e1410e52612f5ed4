//! The BPF back end: instructions, and code generation from the resolved program.

mod builtins;
pub mod codegen;
mod convert;
pub mod disasm;
pub mod emit;
mod entry;
mod expr;
mod globals;
pub mod helpers;
pub mod insn;
mod lifecycle;
mod printf;
mod search;
mod sprintf;
mod stmt;
mod strings;
pub mod target;
pub mod testing;
mod text;

pub use codegen::{codegen, CodegenOptions};
pub use disasm::disassemble;

#[cfg(test)]
mod tests;
