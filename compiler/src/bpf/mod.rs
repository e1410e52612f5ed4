//! The BPF back end: instructions, and code generation from the resolved program.

pub mod btf;
mod builtins;
pub mod codegen;
mod convert;
mod delete;
pub mod disasm;
mod each;
pub mod emit;
mod entry;
mod expr;
mod foreach;
mod globals;
pub mod helpers;
pub mod insn;
pub mod kbtf;
mod lifecycle;
mod memfmt;
mod misc;
mod pretty;
mod printf;
mod search;
mod short_keys;
mod sprintf;
mod stack;
mod stmt;
mod strings;
pub mod target;
mod task;
pub mod testing;
mod text;
mod tokenize;
mod tree;
mod wrap;

pub use codegen::{codegen, CodegenOptions};
pub use disasm::disassemble;

#[cfg(test)]
mod tests;
