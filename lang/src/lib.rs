//! The rtap language: parse SystemTap scripts and check them into a typed program.
//! It knows nothing of DWARF or BPF.

pub mod diag;
pub mod hir;
pub mod printf;
pub mod span;
