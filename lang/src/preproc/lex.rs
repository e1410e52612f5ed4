//! The preprocessor's lexer: coarse tokens, and the text with its comments blanked out.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Ident,
    Number,
    Str,
    /// `$1`
    ArgRaw(usize),
    /// `@1`
    ArgStr(usize),
    /// `$#`, `@#`
    ArgCount,
    /// `@name`
    At,
    CondOpen,
    CondThen,
    CondElse,
    CondClose,
    EmbeddedC,
    Punct(u8),
    /// `$name`, `$$name`.
    Dollar,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// Splits the text into tokens; comments and whitespace are dropped.
/// Also returns where an unterminated `/*` comment starts.
pub(super) fn lex(text: &str) -> (Vec<Token>, Option<usize>) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut open_comment = None;
    let mut i = 0;
    let word = |mut j: usize| {
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = match text[i + 2..].find("*/") {
                    Some(p) => i + 2 + p + 2,
                    None => {
                        open_comment = Some(i);
                        b.len()
                    }
                };
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' && i + 1 < b.len() {
                        2
                    } else {
                        1
                    };
                }
                if b.get(i) == Some(&b'"') {
                    i += 1;
                }
                Tok::Str
            }
            b'0'..=b'9' => {
                i = word(i);
                Tok::Number
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                i = word(i);
                Tok::Ident
            }
            b'$' | b'@' => {
                let next = b.get(i + 1).copied().unwrap_or(0);
                if next == b'#' {
                    i += 2;
                    Tok::ArgCount
                } else if next.is_ascii_digit() {
                    i = word(i + 1);
                    let n = text[start + 1..i].parse().unwrap_or(usize::MAX);
                    if c == b'$' {
                        Tok::ArgRaw(n)
                    } else {
                        Tok::ArgStr(n)
                    }
                } else if c == b'@' {
                    i = word(i + 1);
                    Tok::At
                } else {
                    // `$name`, `$$name`, with a `$`/`$$` pretty suffix.
                    i += 1;
                    if b.get(i) == Some(&b'$') {
                        i += 1;
                    }
                    i = word(i);
                    while b.get(i) == Some(&b'$') {
                        i += 1;
                    }
                    Tok::Dollar
                }
            }
            b'%' => match b.get(i + 1) {
                Some(b'(') => {
                    i += 2;
                    Tok::CondOpen
                }
                Some(b'?') => {
                    i += 2;
                    Tok::CondThen
                }
                Some(b':') => {
                    i += 2;
                    Tok::CondElse
                }
                Some(b')') => {
                    i += 2;
                    Tok::CondClose
                }
                Some(b'{') => {
                    i = text[i + 2..].find("%}").map_or(b.len(), |p| i + 2 + p + 2);
                    Tok::EmbeddedC
                }
                _ => {
                    i += 1;
                    Tok::Punct(c)
                }
            },
            _ => {
                // Keep multi-byte characters whole so slicing stays on char boundaries.
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                Tok::Punct(c)
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    (out, open_comment)
}

/// The text with every comment byte turned into a space (newlines kept), so offsets do not
/// move: the grammar then never has to look for comments between tokens.
pub(super) fn blank_comments(text: &str, toks: &[Token]) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut prev = 0;
    for t in toks
        .iter()
        .map(|t| (t.start, t.end))
        .chain([(b.len(), b.len())])
    {
        out.extend(b[prev..t.0].iter().map(|&c| {
            if c.is_ascii_whitespace() || c == 0x0b {
                c
            } else {
                b' '
            }
        }));
        out.extend_from_slice(&b[t.0..t.1]);
        prev = t.1;
    }
    // Gaps only lose whole comments and tokens are copied whole, so this stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}
