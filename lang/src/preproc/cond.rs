//! `%( COND %? … %)` conditions: comparisons of session facts, versions and globs.

use super::{Pre, Tok, ARCH, PRIVILEGE, RUNTIME, SYSTEMTAP_V};

impl Pre<'_> {
    /// Evaluates `%( COND %?`: `||` of `&&` of comparisons.
    pub(super) fn condition(&mut self, start: usize, end: usize) -> bool {
        let mut result = false;
        let mut conj = true;
        let mut i = start;
        if start == end {
            self.error("expected a condition after `%(`", start);
            return false;
        }
        while i < end {
            let Some((v, next)) = self.comparison(i, end) else {
                return false;
            };
            conj &= v;
            i = next;
            if i >= end {
                break;
            }
            let op = self.op_at(i, end);
            match op.as_deref() {
                Some("&&") => {}
                Some("||") => {
                    result |= conj;
                    conj = true;
                }
                _ => {
                    self.error("expected `&&`, `||` or `%?` in preprocessor condition", i);
                    return false;
                }
            }
            i += 2;
        }
        result | conj
    }

    /// A two-character operator made of adjacent punctuation, or a single one.
    fn op_at(&self, i: usize, end: usize) -> Option<String> {
        let Tok::Punct(a) = self.toks[i].kind else {
            return None;
        };
        if i + 1 < end {
            if let Tok::Punct(b) = self.toks[i + 1].kind {
                if self.toks[i + 1].start == self.toks[i].end {
                    let two = format!("{}{}", a as char, b as char);
                    if ["==", "!=", "<=", ">=", "&&", "||"].contains(&two.as_str()) {
                        return Some(two);
                    }
                }
            }
        }
        Some((a as char).to_string())
    }

    fn operand(&mut self, i: usize) -> Option<Operand> {
        let t = self.toks[i];
        let text = &self.text[t.start..t.end];
        Some(match t.kind {
            Tok::Number => Operand::Num(parse_num(text)?),
            Tok::Str => Operand::Str(unquote(text)),
            Tok::ArgCount => Operand::Num(self.args.len() as i64),
            Tok::ArgRaw(n) | Tok::ArgStr(n) => {
                let a = self.arg(n, i)?;
                match a.parse::<i64>() {
                    Ok(v) if matches!(t.kind, Tok::ArgRaw(_)) => Operand::Num(v),
                    _ => Operand::Str(a),
                }
            }
            Tok::Ident => match text {
                "kernel_v" | "kernel_vr" => Operand::Version(kernel_release()),
                "systemtap_v" => Operand::Version(SYSTEMTAP_V.to_string()),
                "arch" => Operand::Glob(ARCH.to_string()),
                "runtime" => Operand::Glob(RUNTIME.to_string()),
                "systemtap_privilege" => Operand::Glob(PRIVILEGE.to_string()),
                "guru_mode" => Operand::Num(0),
                t if t.starts_with("CONFIG_") => Operand::Glob(String::new()),
                _ => {
                    self.error(format!("unknown preprocessor name `{text}`"), i);
                    return None;
                }
            },
            _ => {
                self.error("expected a name or literal in preprocessor condition", i);
                return None;
            }
        })
    }

    fn comparison(&mut self, i: usize, end: usize) -> Option<(bool, usize)> {
        let lhs = self.operand(i)?;
        if i + 1 >= end {
            self.error(
                "expected a comparison operator in preprocessor condition",
                i,
            );
            return None;
        }
        let op = self.op_at(i + 1, end).unwrap_or_default();
        let width = op.len();
        if !["==", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
            self.error(
                "expected a comparison operator in preprocessor condition",
                i + 1,
            );
            return None;
        }
        let r = i + 1 + width;
        if r >= end {
            self.error("expected a value after the comparison operator", i + 1);
            return None;
        }
        let rhs = self.operand(r)?;
        let ord = match (&lhs, &rhs) {
            (Operand::Num(a), Operand::Num(b)) => a.cmp(b),
            (Operand::Version(v), Operand::Str(s)) => version_cmp(v, s),
            (Operand::Glob(v), Operand::Str(pat)) => {
                let m = glob_match(pat, v);
                return match op.as_str() {
                    "==" => Some((m, r + 1)),
                    "!=" => Some((!m, r + 1)),
                    _ => {
                        self.error(
                            format!(
                                "`{op}` cannot compare this preprocessor name; use `==` or `!=`"
                            ),
                            i + 1,
                        );
                        None
                    }
                };
            }
            (Operand::Str(a), Operand::Str(b)) => a.cmp(b),
            _ => {
                self.error(
                    "preprocessor condition compares values of different kinds",
                    i,
                );
                return None;
            }
        };
        use std::cmp::Ordering::*;
        let v = match op.as_str() {
            "==" => ord == Equal,
            "!=" => ord != Equal,
            "<" => ord == Less,
            "<=" => ord != Greater,
            ">" => ord == Greater,
            _ => ord != Less,
        };
        Some((v, r + 1))
    }
}

enum Operand {
    Num(i64),
    Str(String),
    Version(String),
    Glob(String),
}

fn parse_num(text: &str) -> Option<i64> {
    crate::parse::parse_number(text).ok()
}

fn unquote(lit: &str) -> String {
    crate::parse::unescape(lit.trim_start_matches('"').trim_end_matches('"')).unwrap_or_default()
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0".to_string())
}

/// Compares versions numerically piece by piece, like `strverscmp` does for these strings.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

/// `fnmatch` with `*`, `?` and `[...]` (no flags).
pub fn glob_match(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class_match(&p, pi, t[ti]) {
                        if ok {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let first = i;
    while i < p.len() && (p[i] != ']' || i == first) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("x86*", "x86_64"));
        assert!(glob_match("*_64", "x86_64"));
        assert!(!glob_match("arm*", "x86_64"));
        assert!(glob_match("[xa]86_6?", "x86_64"));
    }

    #[test]
    fn versions() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("4.8", "4.10"), Less);
        assert_eq!(version_cmp("6.1.0-13-amd64", "2.6.32"), Greater);
    }
}
