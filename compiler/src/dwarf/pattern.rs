//! Function patterns `PAT[@FILE[:LINE|:A-B|:*|+N]]`, matched with fnmatch rules (`*` crosses `/`).

use super::DwarfError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineSpec {
    /// `:N`: the function declared at line N.
    Exact(u64),
    /// `:A-B`: declared in that line range (inclusive).
    Range(u64, u64),
    /// `:*`: any line.
    Any,
    /// `+N`: N lines after the function's declaration line. A `.function` probe
    /// ignores it (SystemTap 4.8 matches the function as if no line were given); a
    /// `.statement` probe probes line `DW_AT_decl_line + N` of each matching function.
    Relative(u64),
}

/// A parsed `.function("...")` argument.
#[derive(Clone, Debug)]
pub struct FunctionPattern {
    name: glob::Pattern,
    literal: Option<String>,
    file: Option<(glob::Pattern, glob::Pattern)>,
    pub line: Option<LineSpec>,
}

fn glob_pattern(pat: &str, whole: &str) -> Result<glob::Pattern, DwarfError> {
    glob::Pattern::new(pat).map_err(|e| DwarfError::BadPattern {
        pattern: whole.to_string(),
        reason: e.msg.to_string(),
    })
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl FunctionPattern {
    pub fn parse(text: &str) -> Result<FunctionPattern, DwarfError> {
        let bad = |reason: &str| DwarfError::BadPattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let (name, rest) = match text.split_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(bad("empty function name"));
        }
        let mut file = None;
        let mut line = None;
        if let Some(rest) = rest {
            // `FILE+N`: the last `+` followed by digits only (a file name may hold `+`).
            let relative = rest
                .rsplit_once('+')
                .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let (f, l) = match (relative, rest.rsplit_once(':')) {
                (Some((f, n)), _) => (f, Some(n)),
                (None, Some((f, l))) => (f, Some(l)),
                (None, None) => (rest, None),
            };
            if f.is_empty() {
                return Err(bad("empty file name"));
            }
            // fnmatch of the file name, retried with `*/` prepended, as SystemTap does.
            file = Some((
                glob_pattern(f, text)?,
                glob_pattern(&format!("*/{f}"), text)?,
            ));
            line = match l {
                None => None,
                Some(n) if relative.is_some() => Some(LineSpec::Relative(
                    n.parse().map_err(|_| bad("bad relative line number"))?,
                )),
                Some("*") => Some(LineSpec::Any),
                Some(l) => Some(match l.split_once('-') {
                    Some((a, b)) => LineSpec::Range(
                        a.parse().map_err(|_| bad("bad line range"))?,
                        b.parse().map_err(|_| bad("bad line range"))?,
                    ),
                    None => LineSpec::Exact(l.parse().map_err(|_| bad("bad line number"))?),
                }),
            };
        }
        Ok(FunctionPattern {
            name: glob_pattern(name, text)?,
            literal: (!has_wildcard(name)).then(|| name.to_string()),
            file,
            line,
        })
    }

    /// The exact name when the pattern has no wildcard (a hash lookup instead of a scan).
    pub fn literal_name(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    pub fn matches_name(&self, name: &str) -> bool {
        match &self.literal {
            Some(l) => l == name,
            None => self.name.matches(name),
        }
    }

    /// Whether a declaration place passes the `@FILE:LINE` part.
    pub fn matches_decl(&self, file: Option<&str>, line: Option<u64>) -> bool {
        if let Some((plain, prefixed)) = &self.file {
            let Some(file) = file else { return false };
            if !plain.matches(file) && !prefixed.matches(file) {
                return false;
            }
        }
        match (&self.line, line) {
            (None | Some(LineSpec::Any | LineSpec::Relative(_)), _) => true,
            (Some(LineSpec::Exact(n)), Some(l)) => l == *n,
            (Some(LineSpec::Range(a, b)), Some(l)) => (*a..=*b).contains(&l),
            (Some(_), None) => false,
        }
    }

    /// Has an `@FILE` part (symbol-table-only functions never match those).
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_rules() {
        let p = FunctionPattern::parse("send_*@sendmsg.c:19").unwrap();
        assert!(p.matches_name("send_msg"));
        assert!(!p.matches_name("main"));
        assert!(p.matches_decl(Some("/src/fixtures/sendmsg.c"), Some(19)));
        assert!(!p.matches_decl(Some("/src/fixtures/sendmsg.c"), Some(20)));
        assert!(!p.matches_decl(None, None));
        let p = FunctionPattern::parse("*").unwrap();
        assert!(p.literal_name().is_none() && p.matches_name("a/b"));
        let p = FunctionPattern::parse("f@*.c:10-20").unwrap();
        assert_eq!(p.literal_name(), Some("f"));
        assert!(p.matches_decl(Some("x/y.c"), Some(15)));
        let p = FunctionPattern::parse("f@x.c+3").unwrap();
        assert_eq!(p.line, Some(LineSpec::Relative(3)));
        assert!(p.matches_decl(Some("/s/x.c"), Some(40)));
        let p = FunctionPattern::parse("f@g++.c:7").unwrap();
        assert_eq!(p.line, Some(LineSpec::Exact(7)));
        assert!(p.matches_decl(Some("/s/g++.c"), Some(7)));
    }
}
