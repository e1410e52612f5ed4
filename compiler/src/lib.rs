//! The rtap compiler: DWARF resolution and eBPF code generation.
//! Its output is plain data; it never touches the kernel.

pub mod access;
pub mod bpf;
pub mod driver;
pub mod dwarf;
pub mod errno;
pub mod host;
pub mod list;
pub mod object;
pub mod resolve;
pub mod resolved;
