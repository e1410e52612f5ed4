//! The text of symbolized frames, after SystemTap's `_stp_snprint_addr`.

use super::Frame;
use rtap_compiler::object::StackStyle;

/// The addresses of `ubacktrace()` text: `0x…` words separated by spaces.
pub fn parse_hex_stack(text: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// SystemTap's `_stp_snprint_addr` text of a frame, without the line ending:
/// `sym+0xoff/0xsize [mod]` (`sized`), or `sym+0xoff [mod]` with the module's file
/// name only (`!sized`, `_STP_SYM_SIMPLE`); `0xADDR [mod+0xoff]` without a symbol.
pub(super) fn frame_text(f: &Frame, hex_prefix: bool, simple: bool) -> String {
    let module = f.module.as_ref().map(|(p, off)| {
        let name = if simple {
            p.file_name().map_or(p.as_os_str(), |n| n).to_string_lossy()
        } else {
            p.to_string_lossy()
        };
        (name.into_owned(), *off)
    });
    let prefix = if hex_prefix {
        format!("0x{:x} : ", f.addr)
    } else {
        String::new()
    };
    match (&f.sym, module) {
        (Some((name, off, _)), Some((m, _))) if simple => format!("{name}+0x{off:x} [{m}]"),
        (Some((name, off, _)), None) if simple => format!("{name}+0x{off:x}"),
        (Some((name, off, size)), Some((m, _))) => {
            format!("{prefix}{name}+0x{off:x}/0x{size:x} [{m}]")
        }
        (Some((name, off, size)), None) => format!("{prefix}{name}+0x{off:x}/0x{size:x}"),
        (None, Some((m, off))) => format!("0x{:x} [{m}+0x{off:x}]", f.addr),
        (None, None) => format!("0x{:x}", f.addr),
    }
}

/// A stack as `print_ubacktrace` (`Full`: a line per frame, each with a leading
/// space) or `sprint_ubacktrace` (`Simple`: newline-separated, at most `max` bytes).
pub fn stack_text(frames: &[Frame], style: StackStyle, max: usize) -> Vec<u8> {
    let mut out = String::new();
    for f in frames {
        match style {
            StackStyle::Full => {
                out.push(' ');
                out.push_str(&frame_text(f, true, false));
            }
            StackStyle::Simple => out.push_str(&frame_text(f, false, true)),
        }
        out.push('\n');
    }
    let mut out = out.into_bytes();
    if style == StackStyle::Simple {
        // SystemTap copies the printed text less its last byte, the final newline.
        out.pop();
        out.truncate(max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::files::{parse_maps, Mapping};
    use super::*;
    use std::path::PathBuf;

    fn frame(addr: u64, sym: Option<(&str, u64, u64)>, module: Option<&str>) -> Frame {
        Frame {
            addr,
            sym: sym.map(|(n, o, s)| (n.to_string(), o, s)),
            module: module.map(|m| (PathBuf::from(m), 0x1000)),
        }
    }

    /// The full and simple stack forms follow SystemTap's `_STP_SYM_FULL`/`_SIMPLE`.
    #[test]
    fn stack_forms() {
        let frames = [
            frame(0x401136, Some(("c", 0x4, 0x20)), Some("/tmp/t")),
            frame(0x7f00, None, Some("/lib/libx.so")),
            frame(0x10, None, None),
        ];
        let full = String::from_utf8(stack_text(&frames, StackStyle::Full, 511)).unwrap();
        assert_eq!(
            full,
            " 0x401136 : c+0x4/0x20 [/tmp/t]\n 0x7f00 [/lib/libx.so+0x1000]\n 0x10\n"
        );
        let simple = String::from_utf8(stack_text(&frames, StackStyle::Simple, 511)).unwrap();
        assert_eq!(simple, "c+0x4 [t]\n0x7f00 [libx.so+0x1000]\n0x10");
        assert_eq!(stack_text(&frames, StackStyle::Simple, 5), b"c+0x4");
    }

    /// `ubacktrace()` text and `/proc/PID/maps` lines parse.
    #[test]
    fn parses_inputs() {
        assert_eq!(parse_hex_stack(b"0x401136 0x7f00"), vec![0x401136, 0x7f00]);
        let maps = parse_maps(
            "55d0-55e0 r-xp 00001000 08:01 42 /tmp/a b\n7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n",
        );
        assert_eq!(
            maps,
            vec![Mapping {
                start: 0x55d0,
                end: 0x55e0,
                offset: 0x1000,
                path: PathBuf::from("/tmp/a b"),
            }]
        );
    }
}
