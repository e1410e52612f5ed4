//! `.statement(ADDR)`: a link-time virtual address (what `objdump -d` and `nm` show),
//! turned into the (file, file offset) a uprobe wants through the program headers.

use crate::dwarf::{Binary, StatementSite};
use object::{Object, ObjectSegment, SegmentFlags};
use std::path::Path;

/// The address of `.statement(0x1234)` or `.statement(4660)`, if the pattern is one.
pub(crate) fn parse(pattern: &str) -> Option<u64> {
    match pattern
        .strip_prefix("0x")
        .or_else(|| pattern.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if !pattern.is_empty() && pattern.bytes().all(|b| b.is_ascii_digit()) => {
            pattern.parse().ok()
        }
        None => None,
    }
}

/// The file offset of `vaddr` when it lies in an executable `PT_LOAD` segment.
fn executable_offset(path: &Path, vaddr: u64) -> Result<Option<u64>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    // SAFETY: read-only mapping; a file changed under us yields bad data, not UB in
    // code that reads through bounds-checked slices.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("`{}`: {e}", path.display()))?;
    let elf = object::File::parse(&*map)
        .map_err(|e| format!("`{}` is not a valid ELF file: {e}", path.display()))?;
    for seg in elf.segments() {
        let exec = matches!(seg.flags(), SegmentFlags::Elf { p_flags, .. } if p_flags.0 & object::elf::PF_X.0 != 0);
        let (offset, size) = seg.file_range();
        if exec && seg.address() <= vaddr && vaddr - seg.address() < size {
            return Ok(Some(vaddr - seg.address() + offset));
        }
    }
    Ok(None)
}

/// The statement at `addr` in `binary` and its file offset; an address outside every
/// executable segment, or not at the start of a line-table row, is an error.
pub(crate) fn site(binary: &Binary, addr: u64) -> Result<(StatementSite, u64), String> {
    let offset = executable_offset(binary.path(), addr)?.ok_or_else(|| {
        format!(
            "address {addr:#x} is not in an executable segment of `{}`",
            binary.path().display()
        )
    })?;
    Ok((binary.statement_at(addr)?, offset))
}

/// `process("/abs").statement(0x1234)`, always in hex, as SystemTap prints it.
pub(crate) fn pp(prefix: &str, addr: u64, nearest: bool) -> String {
    let suffix = if nearest { ".nearest" } else { "" };
    format!("{prefix}.statement({addr:#x}){suffix}")
}

#[cfg(test)]
mod tests {
    use super::{parse, site};
    use crate::dwarf::{Binary, FunctionPattern};

    /// In a non-PIE executable the text starts at 0x401000, file offset 0x1000: the
    /// address is what `nm` shows, the uprobe gets the offset.
    #[test]
    fn virtual_address_to_file_offset() {
        let path = crate::dwarf::test_fixture("sendmsg", "-no-pie");
        let b = Binary::open(&path).unwrap();
        let f = b.functions(&FunctionPattern::parse("send_msg").unwrap())[0].clone();
        assert!(f.entry > 0x40_0000);
        let (s, offset) = site(&b, f.entry).unwrap();
        assert_eq!(offset, f.entry - 0x40_0000);
        assert_eq!(
            (s.function.name.as_str(), s.function.probe),
            ("send_msg", f.entry)
        );
        let e = site(&b, f.entry + 1).unwrap_err();
        assert!(e.contains(&format!("(try {:#x})", f.entry)), "{e}");
        let e = site(&b, 0x40_0000).unwrap_err();
        assert!(e.contains("not in an executable segment"), "{e}");
    }

    #[test]
    fn hex_and_decimal() {
        assert_eq!(parse("0x1159"), Some(0x1159));
        assert_eq!(parse("4441"), Some(4441));
        assert_eq!(parse("main@a.c:3"), None);
        assert_eq!(parse(""), None);
    }
}
