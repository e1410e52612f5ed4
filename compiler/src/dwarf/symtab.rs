//! The ELF function symbols SystemTap consults, chosen as libdwfl chooses its symbol table.

use object::read::elf::{ElfFile64, SectionHeader, Sym};
use object::{elf, Endianness};
use std::collections::HashSet;

/// A function symbol (`STT_FUNC`, defined), in symbol-table order.
#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    /// As written in the string table: `.symtab` keeps version suffixes (`fopen@@GLIBC_2.2.5`).
    pub name: String,
    pub address: u64,
    /// Its address is defined with global or weak binding in `.dynsym`.
    pub exported: bool,
}

/// One table's defined `STT_FUNC` symbols (IFUNC resolvers are not functions to SystemTap).
fn functions(file: &ElfFile64<'_, Endianness>, dynamic: bool) -> Vec<(String, u64, bool)> {
    let endian = file.endian();
    let sections = file.elf_section_table();
    let kind = if dynamic {
        elf::SHT_DYNSYM
    } else {
        elf::SHT_SYMTAB
    };
    let Ok(table) = sections.symbols(endian, file.data(), kind) else {
        return Vec::new();
    };
    let strings = table.strings();
    let mut out = Vec::new();
    for sym in table.symbols() {
        if sym.st_type() != elf::STT_FUNC
            || sym.st_shndx(endian) == elf::SHN_UNDEF
            || sym.st_value(endian) == 0
        {
            continue;
        }
        let Ok(name) = sym.name(endian, strings) else {
            continue;
        };
        let global = matches!(sym.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK);
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            sym.st_value(endian),
            global,
        ));
    }
    out
}

fn has_table(file: &ElfFile64<'_, Endianness>, kind: elf::SectionType) -> bool {
    let endian = file.endian();
    file.elf_section_table()
        .iter()
        .any(|s| s.sh_type(endian) == kind)
}

/// The main file's `.symtab`, else the debug file's, else the main `.dynsym`: one table,
/// as `dwfl_module_getsymtab` gives SystemTap.
pub(crate) fn read(main: &[u8], debug: Option<&[u8]>) -> Vec<Symbol> {
    let Ok(file) = ElfFile64::<Endianness>::parse(main) else {
        return Vec::new();
    };
    let dynsym = functions(&file, true);
    let exported: HashSet<u64> = dynsym.iter().filter(|s| s.2).map(|s| s.1).collect();
    let debug = debug.and_then(|d| ElfFile64::<Endianness>::parse(d).ok());
    let table = if has_table(&file, elf::SHT_SYMTAB) {
        functions(&file, false)
    } else if let Some(d) = debug.as_ref().filter(|d| has_table(d, elf::SHT_SYMTAB)) {
        functions(d, false)
    } else {
        dynsym
    };
    table
        .into_iter()
        .map(|(name, address, _)| Symbol {
            exported: exported.contains(&address),
            name,
            address,
        })
        .collect()
}
