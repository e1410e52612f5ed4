//! The rtap runtime: loads a compiled [`BpfObject`](rtap_compiler::object::BpfObject),
//! attaches it, consumes its records and prints them. It never sees the AST.

pub mod attach;
pub mod events;
pub mod format;
pub mod interp;
pub mod kernel;
pub mod report;
pub mod session;
pub mod symbolize;
