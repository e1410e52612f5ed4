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
