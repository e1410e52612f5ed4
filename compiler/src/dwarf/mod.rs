//! One ELF file and its debug info: open once, index lazily, answer probe-site questions.
//!
//! Entry points: [`Binary::open`] (or [`Cache::get`]), then [`Binary::functions`]
//! for probe sites, [`Binary::variables`] for `-L`, [`Binary::plan`] for `$vars`.

mod bytes;
mod cast;
mod catalog;
mod elf;
mod index;
mod lines;
mod listvars;
mod load;
mod location;
mod pattern;
mod plan;
mod plt;
mod pretty;
mod scan;
mod scope;
mod sdt;
mod stl_order;
mod stmt;
mod symtab;
mod typename;
mod types;

#[cfg(test)]
mod tests;

use crate::access::AccessPlan;
use index::Index;
use load::Loaded;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use elf::ElfFacts;
pub(crate) use index::parallel;
pub use pattern::{FunctionPattern, LineSpec};
pub use plt::PltStub;
pub use pretty::BulkKind;
pub use sdt::{mark_pp, name_matches as mark_name_matches, Marker};
pub use stmt::StatementSite;

/// The gimli reader used everywhere: shared section bytes, so `Binary` has no lifetime.
pub(crate) type R = gimli::EndianReader<gimli::RunTimeEndian, bytes::Bytes>;

#[derive(Debug, thiserror::Error)]
pub enum DwarfError {
    #[error("`{0}` not found")]
    NotFound(String),
    #[error("`{path}` has no debug info; looked in {looked}")]
    NoDebugInfo { path: String, looked: String },
    #[error("`{path}` is not a valid ELF file: {reason}")]
    BadElf { path: String, reason: String },
    #[error("cannot read debug info of `{path}`: {reason}")]
    BadDwarf { path: String, reason: String },
    #[error("invalid function pattern `{pattern}`: {reason}")]
    BadPattern { pattern: String, reason: String },
}

/// How a function instance exists in the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceKind {
    /// An out-of-line copy described by DWARF (clones included).
    OutOfLine,
    /// A copy inlined into another function.
    Inline,
    /// Only known from the ELF symbol table: no variables.
    Symbol,
}

/// One place a function can be probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSite {
    /// The DWARF name (`foo`, never `foo.constprop.0`), or the symbol name.
    pub name: String,
    /// `DW_AT_decl_file` as SystemTap prints it (directory entry joined, no normalizing).
    pub decl_file: Option<String>,
    pub decl_line: Option<u64>,
    pub kind: InstanceKind,
    /// True entry address (link-time vaddr): where `.return` probes attach.
    pub entry: u64,
    /// Where `.function` probes attach: after the prologue in unoptimized code.
    pub probe: u64,
    /// Visible in `.dynsym` (for `.exported`).
    pub exported: bool,
    pub(crate) die: Option<index::FuncDie>,
}

impl FunctionSite {
    /// `name@file:line` as in a canonical probe point, or the bare name without DWARF.
    pub fn spec(&self) -> String {
        match (&self.decl_file, self.decl_line) {
            (Some(f), Some(l)) => format!("{}@{}:{}", self.name, f, l),
            (Some(f), None) => format!("{}@{}", self.name, f),
            _ => self.name.clone(),
        }
    }

    /// The unit of its DIE, if it has one (listing goes unit by unit).
    pub fn unit(&self) -> Option<u32> {
        self.die.map(|d| d.unit)
    }

    /// `name` or `name+0x12`: where a probe sits, for messages.
    pub fn label(&self, at: u64) -> String {
        match at.checked_sub(self.entry) {
            Some(0) | None => self.name.clone(),
            Some(d) => format!("{}+{:#x}", self.name, d),
        }
    }
}

/// A variable in scope at a probe address (for `-L` and hints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// The C type as SystemTap prints it.
    pub c_type: String,
    pub is_param: bool,
    /// Has a location (or constant value) at the probe address.
    pub available: bool,
}

/// An expected miss, kept as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarLookup<T> {
    Found(T),
    OptimizedOut,
    NotInScope,
}

/// A target expression reduced to what DWARF resolution needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPath {
    pub base: PathBase,
    pub chain: Vec<PathStep>,
    /// `&$p->f`: the address instead of the value.
    pub address_of: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathBase {
    /// `$name` without the `$`.
    Var(String),
    /// `$return`.
    Return,
    /// `@cast(p, "type")`: the object of that type at the script value `p`.
    Cast(String),
    /// `@var("name@cu")`: a global or file-static variable.
    Global { name: String, cu: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// `->name` or `.name`.
    Member(String),
    /// `[e]`: the index value comes from the script at run time.
    Index,
}

/// Why a target expression cannot be planned; `step` points into the chain when the
/// failure belongs to one accessor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    pub message: String,
    pub step: Option<usize>,
}

impl TargetError {
    pub(crate) fn new(message: impl Into<String>) -> TargetError {
        TargetError {
            message: message.into(),
            step: None,
        }
    }

    pub(crate) fn at(message: impl Into<String>, step: usize) -> TargetError {
        TargetError {
            message: message.into(),
            step: Some(step),
        }
    }
}

/// One ELF (executable or shared library) and its debug info.
pub struct Binary {
    path: PathBuf,
    loaded: Loaded,
    index: OnceLock<Index>,
}

impl Drop for Binary {
    /// A whole library's index is some 100,000 allocations: they are freed on a thread
    /// of their own, so a run that ends here does not wait for them.
    fn drop(&mut self) {
        if let Some(index) = self.index.take() {
            // Detached; if no thread can be made, the failed spawn frees the index here.
            let _ = std::thread::Builder::new().spawn(move || drop(index));
        }
    }
}

impl std::fmt::Debug for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binary").field("path", &self.path).finish()
    }
}

impl Binary {
    /// Open `path` (canonicalized) and its debug info (in the file or a separate debug file).
    pub fn open(path: &Path) -> Result<Binary, DwarfError> {
        let path = std::fs::canonicalize(path)
            .map_err(|_| DwarfError::NotFound(path.display().to_string()))?;
        let loaded = Loaded::open(&path)?;
        Ok(Binary {
            path,
            loaded,
            index: OnceLock::new(),
        })
    }

    /// The canonical absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drop the parsed form of `unit` (kept since a query used it): `-L` over a whole
    /// library releases each unit once its functions are listed.
    pub fn release_unit(&mut self, unit: u32) {
        if let Some(index) = self.index.get_mut() {
            index.release(unit);
        }
    }

    /// Target variables need debug info; a binary without it still has functions.
    pub fn has_debug_info(&self) -> Result<(), TargetError> {
        match &self.loaded.no_debug {
            Some(e) => Err(TargetError::new(e.to_string())),
            None => Ok(()),
        }
    }

    /// The unit table, built on first use; units are read when queries need them.
    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(&self.loaded))
    }

    /// Every function instance matching `pattern`, sorted by name then address.
    pub fn functions(&self, pattern: &FunctionPattern) -> Vec<FunctionSite> {
        self.index().matching(&self.loaded, pattern)
    }

    /// The function's own parameters then locals (nested blocks excluded, as `-L` shows).
    pub fn variables(&self, site: &FunctionSite) -> Vec<Variable> {
        scope::variables(&self.loaded, self.index(), site)
    }

    /// How to read `expr` at `site` (`.return` sites when `retprobe`).
    pub fn plan(
        &self,
        site: &FunctionSite,
        retprobe: bool,
        expr: &TargetPath,
    ) -> Result<AccessPlan, TargetError> {
        self.has_debug_info()?;
        plan::plan(&self.loaded, self.index(), site, retprobe, expr)
    }

    /// How to pretty-print `$expr$` (`full` for `$expr$$`) at `site`.
    pub fn pretty_path(
        &self,
        site: &FunctionSite,
        retprobe: bool,
        expr: &TargetPath,
        full: bool,
    ) -> Result<crate::access::PrettyPlan, TargetError> {
        self.has_debug_info()?;
        pretty::path(&self.loaded, self.index(), site, retprobe, expr, full)
    }

    /// How to print `$$parms`/`$$locals`/`$$vars`/`$$return` at `site`; `pretty` is
    /// `Some(deep)` for a `$`/`$$` suffix.
    pub fn pretty_bulk(
        &self,
        site: &FunctionSite,
        retprobe: bool,
        kind: BulkKind,
        pretty: Option<bool>,
    ) -> Result<crate::access::PrettyPlan, TargetError> {
        pretty::bulk(&self.loaded, self.index(), site, retprobe, kind, pretty)
    }

    /// The return type as SystemTap prints it; `None` for `void` or without DWARF.
    pub fn return_type(&self, site: &FunctionSite) -> Option<String> {
        let types = types::Types {
            loaded: &self.loaded,
            index: self.index(),
        };
        plan::return_type(&types, site.die?).map(|t| types.name_of(Some(t)))
    }

    /// File offset of a link-time virtual address (what uprobes want).
    pub fn file_offset(&self, vaddr: u64) -> Option<u64> {
        self.loaded.file_offset(vaddr)
    }

    /// The call frame address rule at `pc` from CFI, as (DWARF register, offset).
    pub fn cfa_at(&self, pc: u64) -> Option<(u16, i64)> {
        self.loaded.cfa_at(pc)
    }
}

/// Path → opened binary, so each file is opened and indexed once per run.
#[derive(Debug, Default)]
pub struct Cache {
    binaries: HashMap<PathBuf, Binary>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The binary at `path`, as [`Cache::get`] but mutable.
    pub fn get_mut(&mut self, path: &Path) -> Result<&mut Binary, DwarfError> {
        self.get(path)?;
        let canon = match self.binaries.contains_key(path) {
            true => path.to_path_buf(),
            false => std::fs::canonicalize(path)
                .map_err(|_| DwarfError::NotFound(path.display().to_string()))?,
        };
        self.binaries
            .get_mut(&canon)
            .ok_or_else(|| DwarfError::NotFound(path.display().to_string()))
    }

    /// The binary at `path` (canonicalized), opening it on first use.
    pub fn get(&mut self, path: &Path) -> Result<&Binary, DwarfError> {
        // Already canonical (the common case after the first lookup): no syscall.
        if self.binaries.contains_key(path) {
            return Ok(&self.binaries[path]);
        }
        let canon = std::fs::canonicalize(path)
            .map_err(|_| DwarfError::NotFound(path.display().to_string()))?;
        if !self.binaries.contains_key(&canon) {
            let b = Binary::open(&canon)?;
            self.binaries.insert(canon.clone(), b);
        }
        Ok(&self.binaries[&canon])
    }
}

/// Builds a `tests/fixtures` C file with gcc once per test run (for unit tests).
#[cfg(test)]
pub(crate) fn test_fixture(name: &str, opt: &str) -> PathBuf {
    tests::fixture(name, opt)
}
