//! printf semantics: formats decoded values with a parsed format. Pure; no I/O.

use rtap_lang::printf::{ConvKind, Conversion, Count, Format, Piece};

/// One decoded argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Long(i64),
    Str(&'a [u8]),
}

impl Value<'_> {
    fn long(self) -> i64 {
        match self {
            Value::Long(v) => v,
            Value::Str(_) => 0,
        }
    }
}

/// Appends the formatted text to `out`. Missing arguments format as empty
/// (the checker guarantees the count; this keeps a corrupt record harmless).
pub fn format(fmt: &Format, args: &[Value<'_>], out: &mut Vec<u8>) {
    let mut args = args.iter().copied();
    for piece in &fmt.pieces {
        match piece {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Conv(c) => {
                let width = match c.width {
                    Some(Count::Fixed(n)) => Some(n as usize),
                    Some(Count::Star) => Some(args.next().map_or(0, |v| v.long().max(0)) as usize),
                    None => None,
                };
                let precision = match c.precision {
                    Some(Count::Fixed(n)) => Some(n as usize),
                    Some(Count::Star) => Some(args.next().map_or(0, |v| v.long().max(0)) as usize),
                    None => None,
                };
                let value = args.next().unwrap_or(Value::Long(0));
                conversion(c, width, precision, value, out);
            }
        }
    }
}

fn conversion(
    c: &Conversion,
    width: Option<usize>,
    precision: Option<usize>,
    value: Value<'_>,
    out: &mut Vec<u8>,
) {
    let f = c.flags;
    match c.kind {
        ConvKind::Str => {
            let num;
            let s = match value {
                Value::Str(s) => s,
                Value::Long(v) => {
                    num = v.to_string();
                    num.as_bytes()
                }
            };
            let s = match precision {
                Some(p) => &s[..s.len().min(p)],
                None => s,
            };
            pad(out, s, width, f.left, b' ');
        }
        ConvKind::Char => {
            let ch = value.long() as u8;
            if f.alt {
                let esc = escape_char(ch);
                pad(out, esc.as_bytes(), width, f.left, b' ');
            } else {
                pad(out, &[ch], width, f.left, b' ');
            }
        }
        ConvKind::Binary => {
            let n = width.filter(|n| matches!(n, 1 | 2 | 4 | 8)).unwrap_or(8);
            out.extend_from_slice(&value.long().to_ne_bytes()[..n]);
        }
        ConvKind::Memory | ConvKind::MemoryHex => {
            let s = match value {
                Value::Str(s) => s,
                Value::Long(_) => &[][..],
            };
            let n = precision.unwrap_or(1).min(s.len());
            if c.kind == ConvKind::Memory {
                pad(out, &s[..n], width, f.left, b' ');
            } else {
                let hex: String = s[..n].iter().map(|b| format!("{b:02x}")).collect();
                pad(out, hex.as_bytes(), width, f.left, b' ');
            }
        }
        ConvKind::Pointer => {
            let s = format!("0x{:x}", value.long() as u64);
            pad(out, s.as_bytes(), width, f.left, b' ');
        }
        ConvKind::Signed
        | ConvKind::Unsigned
        | ConvKind::Octal
        | ConvKind::HexLower
        | ConvKind::HexUpper => number(c, width, precision, value.long(), out),
    }
}

fn number(
    c: &Conversion,
    width: Option<usize>,
    precision: Option<usize>,
    v: i64,
    out: &mut Vec<u8>,
) {
    let f = c.flags;
    let (sign, digits, prefix) = match c.kind {
        ConvKind::Signed => {
            let sign = if v < 0 {
                "-"
            } else if f.plus {
                "+"
            } else if f.space {
                " "
            } else {
                ""
            };
            (sign, v.unsigned_abs().to_string(), "")
        }
        ConvKind::Unsigned => ("", (v as u64).to_string(), ""),
        ConvKind::Octal => ("", format!("{:o}", v as u64), if f.alt { "0" } else { "" }),
        ConvKind::HexLower => ("", format!("{:x}", v as u64), if f.alt { "0x" } else { "" }),
        _ => ("", format!("{:X}", v as u64), if f.alt { "0X" } else { "" }),
    };
    let mut digits = digits;
    if let Some(p) = precision {
        if digits.len() < p {
            digits = format!("{}{}", "0".repeat(p - digits.len()), digits);
        }
    }
    // `%#o` of a value that already starts with 0 needs no second 0.
    let prefix = if prefix == "0" && digits.starts_with('0') {
        ""
    } else {
        prefix
    };
    let body_len = sign.len() + prefix.len() + digits.len();
    let w = width.unwrap_or(0);
    if f.zero && !f.left && precision.is_none() && w > body_len {
        out.extend_from_slice(sign.as_bytes());
        out.extend_from_slice(prefix.as_bytes());
        out.extend(std::iter::repeat_n(b'0', w - body_len));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let s = format!("{sign}{prefix}{digits}");
        pad(out, s.as_bytes(), width, f.left, b' ');
    }
}

fn pad(out: &mut Vec<u8>, s: &[u8], width: Option<usize>, left: bool, fill: u8) {
    let w = width.unwrap_or(0);
    let n = w.saturating_sub(s.len());
    if !left {
        out.extend(std::iter::repeat_n(fill, n));
    }
    out.extend_from_slice(s);
    if left {
        out.extend(std::iter::repeat_n(b' ', n));
    }
}

/// `%#c`: C-style escapes for non-printable characters.
fn escape_char(c: u8) -> String {
    match c {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        b'\r' => "\\r".into(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0b => "\\v".into(),
        0x0c => "\\f".into(),
        b'\\' => "\\\\".into(),
        b'\'' => "\\'".into(),
        b'"' => "\\\"".into(),
        0x20..=0x7e => (c as char).to_string(),
        _ => format!("\\{c:03o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtap_lang::printf::Flags;

    fn conv(kind: ConvKind, flags: Flags, width: Option<u32>) -> Piece {
        Piece::Conv(Conversion {
            flags,
            width: width.map(Count::Fixed),
            precision: None,
            kind,
        })
    }

    fn run(pieces: Vec<Piece>, args: &[Value<'_>]) -> String {
        let mut out = Vec::new();
        format(&Format { pieces }, args, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// `%#x` of zero keeps its prefix, as SystemTap prints it.
    #[test]
    fn alt_hex_zero_has_prefix() {
        let alt = Flags {
            alt: true,
            ..Flags::default()
        };
        assert_eq!(
            run(vec![conv(ConvKind::HexLower, alt, None)], &[Value::Long(0)]),
            "0x0"
        );
    }

    /// Widths pad on the left, `-` pads on the right, `0` pads numbers with zeros.
    #[test]
    fn widths_and_flags() {
        let none = Flags::default();
        let left = Flags { left: true, ..none };
        let zero = Flags { zero: true, ..none };
        assert_eq!(
            run(
                vec![conv(ConvKind::Signed, none, Some(6))],
                &[Value::Long(-42)]
            ),
            "   -42"
        );
        assert_eq!(
            run(
                vec![conv(ConvKind::Signed, zero, Some(6))],
                &[Value::Long(-42)]
            ),
            "-00042"
        );
        assert_eq!(
            run(
                vec![conv(ConvKind::Str, left, Some(5)), Piece::Text("|".into())],
                &[Value::Str(b"ab")]
            ),
            "ab   |"
        );
        assert_eq!(
            run(
                vec![conv(ConvKind::Unsigned, none, None)],
                &[Value::Long(-1)]
            ),
            "18446744073709551615"
        );
        assert_eq!(
            run(
                vec![conv(ConvKind::Pointer, none, None)],
                &[Value::Long(4096)]
            ),
            "0x1000"
        );
    }
}
