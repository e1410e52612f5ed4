//! PLT stubs: each `jmp *GOT(%rip)` in `.plt` or `.plt.sec`, named by the
//! `R_X86_64_JUMP_SLOT` relocation of its GOT slot (as SystemTap lists them).

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};
use std::collections::HashMap;

const R_X86_64_JUMP_SLOT: u32 = 7;

/// One stub: the symbol it jumps to and its link-time address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PltStub {
    pub name: String,
    pub address: u64,
}

/// Every stub whose GOT slot has a symbol, sorted by address. Decoding the jumps, not
/// assuming a layout, covers lazy `.plt` and IBT's `.plt.sec` alike.
pub(crate) fn plt_stubs(elf: &ElfFile64<'_, Endianness>) -> Vec<PltStub> {
    let mut slots: HashMap<u64, String> = HashMap::new();
    if let Some(relocs) = elf.dynamic_relocations() {
        for (offset, r) in relocs {
            let RelocationFlags::Elf { r_type } = r.flags() else {
                continue;
            };
            if r_type.0 != R_X86_64_JUMP_SLOT {
                continue;
            }
            let RelocationTarget::Symbol(i) = r.target() else {
                continue;
            };
            let Some(Ok(sym)) = elf
                .dynamic_symbol_table()
                .map(|t| object::ObjectSymbolTable::symbol_by_index(&t, i))
            else {
                continue;
            };
            if let Ok(name) = sym.name() {
                slots.insert(offset, name.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for name in [".plt", ".plt.sec"] {
        let Some(section) = elf.section_by_name(name) else {
            continue;
        };
        let Ok(data) = section.data() else { continue };
        let entsize = match object::read::elf::SectionHeader::sh_entsize(
            section.elf_section_header(),
            elf.endian(),
        ) {
            0 => 16,
            n => n as usize,
        };
        for (i, stub) in data.chunks(entsize).enumerate() {
            let address = section.address() + (i * entsize) as u64;
            let Some(got) = jump_slot(stub, address) else {
                continue;
            };
            if let Some(name) = slots.get(&got) {
                out.push(PltStub {
                    name: name.clone(),
                    address,
                });
            }
        }
    }
    out.sort_by_key(|s| s.address);
    out
}

/// The GOT address of the stub's `jmp *disp32(%rip)` (`ff 25`), after an optional
/// `endbr64` and `bnd` prefix.
fn jump_slot(stub: &[u8], address: u64) -> Option<u64> {
    let mut i = 0;
    if stub.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        i = 4;
    }
    if stub.get(i) == Some(&0xf2) {
        i += 1;
    }
    if stub.get(i..i + 2)? != [0xff, 0x25] {
        return None;
    }
    let disp = i32::from_le_bytes(stub.get(i + 2..i + 6)?.try_into().ok()?);
    Some((address + i as u64 + 6).wrapping_add(disp as i64 as u64))
}

#[cfg(test)]
mod tests {
    use super::jump_slot;

    #[test]
    fn decodes_plain_and_ibt_stubs() {
        // 1030: jmp *0x2fca(%rip) → 0x4000
        assert_eq!(
            jump_slot(&[0xff, 0x25, 0xca, 0x2f, 0, 0, 0x68, 0], 0x1030),
            Some(0x4000)
        );
        // endbr64; bnd jmp *0x2f75(%rip)
        let ibt = [0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0x75, 0x2f, 0, 0];
        assert_eq!(jump_slot(&ibt, 0x1080), Some(0x1080 + 11 + 0x2f75));
        // PLT0's push is not a stub.
        assert_eq!(jump_slot(&[0xff, 0x35, 0, 0, 0, 0], 0x1020), None);
    }
}
