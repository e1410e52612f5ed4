//! printf format strings, parsed once at check time and carried as data to the runtime formatter.

/// A parsed literal format: text runs and conversions, in order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Format {
    pub pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Literal text; `%%` arrives here as `%`.
    Text(String),
    Conv(Conversion),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags {
    /// `-`
    pub left: bool,
    /// `+`
    pub plus: bool,
    /// ` `
    pub space: bool,
    /// `#`
    pub alt: bool,
    /// `0`
    pub zero: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Fixed(u32),
    /// `*`: taken from a long argument before the value.
    Star,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// `%d`, `%i`
    Signed,
    /// `%u`
    Unsigned,
    /// `%o`
    Octal,
    /// `%x`
    HexLower,
    /// `%X`
    HexUpper,
    /// `%p`: `%#x` without padding.
    Pointer,
    /// `%c`
    Char,
    /// `%s`
    Str,
    /// `%b`, `%1b`…`%8b`: raw native-endian bytes; the width is the byte count.
    Binary,
    /// `%m`: raw memory bytes; the precision is the byte count.
    Memory,
    /// `%M`: memory as hex.
    MemoryHex,
}

impl ConvKind {
    /// Whether the value argument is a string (otherwise a long).
    pub fn takes_string(self) -> bool {
        matches!(self, ConvKind::Str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub flags: Flags,
    pub width: Option<Count>,
    pub precision: Option<Count>,
    pub kind: ConvKind,
}

impl Format {
    /// Argument types the format consumes, in order (`true` = string), `*` counts included.
    pub fn arg_kinds(&self) -> Vec<bool> {
        let mut out = Vec::new();
        for p in &self.pieces {
            if let Piece::Conv(c) = p {
                if c.width == Some(Count::Star) {
                    out.push(false);
                }
                if c.precision == Some(Count::Star) {
                    out.push(false);
                }
                out.push(c.kind.takes_string());
            }
        }
        out
    }
}

/// Parses a literal format as SystemTap does: one flag per conversion, a single `l` ignored.
pub fn parse_format(text: &str) -> Result<Format, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            lit.push('%');
            continue;
        }
        let mut flags = Flags::default();
        let mut seen_flag = false;
        if let Some(&f) = chars.peek() {
            let hit = match f {
                '-' => Some(&mut flags.left),
                '+' => Some(&mut flags.plus),
                ' ' => Some(&mut flags.space),
                '#' => Some(&mut flags.alt),
                '0' => Some(&mut flags.zero),
                _ => None,
            };
            if let Some(slot) = hit {
                *slot = true;
                seen_flag = true;
                chars.next();
            }
        }
        if seen_flag && matches!(chars.peek(), Some('-' | '+' | ' ' | '#')) {
            return Err("only one flag is allowed per conversion".to_string());
        }
        let count =
            |chars: &mut std::iter::Peekable<std::str::Chars>| -> Result<Option<Count>, String> {
                if chars.peek() == Some(&'*') {
                    chars.next();
                    return Ok(Some(Count::Star));
                }
                let mut n: Option<u32> = None;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    chars.next();
                    n = Some(
                        n.unwrap_or(0)
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(d))
                            .ok_or("width or precision is too large")?,
                    );
                }
                Ok(n.map(Count::Fixed))
            };
        let width = count(&mut chars)?;
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(count(&mut chars)?.unwrap_or(Count::Fixed(0)))
        } else {
            None
        };
        if chars.peek() == Some(&'l') {
            chars.next();
            if chars.peek() == Some(&'l') {
                return Err("`%ll` length modifiers are not supported".to_string());
            }
        }
        let Some(conv) = chars.next() else {
            return Err("format ends in the middle of a conversion".to_string());
        };
        let kind = match conv {
            'd' | 'i' => ConvKind::Signed,
            'u' => ConvKind::Unsigned,
            'o' => ConvKind::Octal,
            'x' => ConvKind::HexLower,
            'X' => ConvKind::HexUpper,
            'p' => ConvKind::Pointer,
            'c' => ConvKind::Char,
            's' => ConvKind::Str,
            'b' => ConvKind::Binary,
            'm' => ConvKind::Memory,
            'M' => ConvKind::MemoryHex,
            'h' | 'L' | 'q' | 'j' | 'z' | 't' => {
                return Err(format!("`{conv}` length modifiers are not supported"))
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'a' | 'A' => {
                return Err(format!("`%{conv}`: floating point is not supported"))
            }
            'n' => return Err("`%n` is not supported".to_string()),
            c => return Err(format!("unknown conversion `%{c}`")),
        };
        if kind == ConvKind::Binary {
            if let Some(Count::Fixed(w)) = width {
                if ![1, 2, 4, 8].contains(&w) {
                    return Err(format!("`%{w}b` needs a width of 1, 2, 4 or 8 bytes"));
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Conv(Conversion {
            flags,
            width,
            precision,
            kind,
        }));
    }
    if !lit.is_empty() {
        pieces.push(Piece::Text(lit));
    }
    Ok(Format { pieces })
}

impl std::fmt::Display for Conversion {
    /// The conversion as it would be written in a format.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("%")?;
        let fl = self.flags;
        for (on, c) in [
            (fl.left, '-'),
            (fl.plus, '+'),
            (fl.space, ' '),
            (fl.alt, '#'),
            (fl.zero, '0'),
        ] {
            if on {
                write!(f, "{c}")?;
            }
        }
        let count = |c: Count| match c {
            Count::Fixed(n) => n.to_string(),
            Count::Star => "*".to_string(),
        };
        if let Some(w) = self.width {
            f.write_str(&count(w))?;
        }
        if let Some(p) = self.precision {
            write!(f, ".{}", count(p))?;
        }
        let k = match self.kind {
            ConvKind::Signed => 'd',
            ConvKind::Unsigned => 'u',
            ConvKind::Octal => 'o',
            ConvKind::HexLower => 'x',
            ConvKind::HexUpper => 'X',
            ConvKind::Pointer => 'p',
            ConvKind::Char => 'c',
            ConvKind::Str => 's',
            ConvKind::Binary => 'b',
            ConvKind::Memory => 'm',
            ConvKind::MemoryHex => 'M',
        };
        write!(f, "{k}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(text: &str) -> Conversion {
        match parse_format(text).expect("parses").pieces.as_slice() {
            [Piece::Conv(c)] => *c,
            other => panic!("not one conversion: {other:?}"),
        }
    }

    #[test]
    fn flags_width_precision() {
        let c = conv("%-08d");
        assert!(c.flags.left && !c.flags.zero);
        assert_eq!(c.width, Some(Count::Fixed(8)));
        let c = conv("%05.*x");
        assert!(c.flags.zero);
        assert_eq!(c.width, Some(Count::Fixed(5)));
        assert_eq!(c.precision, Some(Count::Star));
        assert_eq!(conv("%ld").kind, ConvKind::Signed);
        assert_eq!(conv("%#x").to_string(), "%#x");
    }

    #[test]
    fn errors() {
        assert!(parse_format("%-+5d").is_err());
        assert!(parse_format("%lld").is_err());
        assert!(parse_format("%hd").is_err());
        assert!(parse_format("%f").is_err());
        assert!(parse_format("100%").is_err());
        assert!(parse_format("%3b").is_err());
    }

    #[test]
    fn text_and_percent() {
        let f = parse_format("a%%b %s\n").expect("parses");
        assert_eq!(f.pieces.len(), 3);
        assert_eq!(f.pieces[0], Piece::Text("a%b ".to_string()));
        assert_eq!(f.arg_kinds(), vec![true]);
    }
}
