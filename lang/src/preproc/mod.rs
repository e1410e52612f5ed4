//! The preprocessor: `%( %? %: %)` conditionals, `@define` macros, `$N`/`@N` arguments and nesting caps.
//!
//! It works on a coarse token stream and produces new text plus a map from
//! that text back to the original file, so spans still point at what the user wrote.

use crate::diag::Diagnostic;
use crate::span::{FileId, Span};
use std::collections::HashMap;

mod cond;
mod lex;

use lex::{blank_comments, lex, Tok, Token};

pub use cond::glob_match;

/// Deepest bracket nesting accepted; deeper input is an error, not a stack overflow.
pub const MAX_NESTING: usize = 500;

/// How much macro expansion may add to a script, in bytes.
const MAX_EXPANSION: usize = 1 << 20;

/// What the preprocessor assumes about the session when evaluating `%( %)` conditions.
const ARCH: &str = std::env::consts::ARCH;
const RUNTIME: &str = "bpf";
const SYSTEMTAP_V: &str = "4.8";
const PRIVILEGE: &str = "stapusr";

/// `@name` operators that belong to the language, not to macros.
const AT_OPERATORS: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "variance",
    "hist_log",
    "hist_linear",
    "entry",
    "defined",
    "cast",
    "var",
];
const AT_UNSUPPORTED: &[&str] = &[
    "errno",
    "kregister",
    "uregister",
    "probewrite",
    "const",
    "module",
    "choose_defined",
    "this",
];

/// Preprocessed text and the way back to the original offsets.
pub struct Expanded {
    pub text: String,
    segs: Vec<Seg>,
    file: FileId,
}

#[derive(Clone, Copy, Debug)]
struct Seg {
    out_start: usize,
    /// `Some(start)`: bytes copied from the original; `None`: pasted text standing for `fixed`.
    orig_start: Option<usize>,
    fixed: (usize, usize),
}

impl Expanded {
    /// Maps a span in the expanded text back to the original file.
    pub fn span(&self, start: usize, end: usize) -> Span {
        if self.segs.is_empty() {
            return Span::new(self.file, start, end);
        }
        let s = self.map(start, false);
        let e = if end > start { self.map(end, true) } else { s };
        Span::new(self.file, s, e.max(s))
    }

    fn map(&self, off: usize, is_end: bool) -> usize {
        let probe = if is_end { off - 1 } else { off };
        let i = self.segs.partition_point(|s| s.out_start <= probe).max(1) - 1;
        let seg = self.segs[i];
        match seg.orig_start {
            Some(o) => o + (probe - seg.out_start) + usize::from(is_end),
            None if is_end => seg.fixed.1,
            None => seg.fixed.0,
        }
    }
}

struct Macro {
    params: Vec<String>,
    /// Token index range of the body.
    body: (usize, usize),
}

struct Pre<'a> {
    text: &'a str,
    toks: Vec<Token>,
    args: &'a [String],
    file: FileId,
    out: String,
    segs: Vec<Seg>,
    last_copied: Option<usize>,
    macros: HashMap<String, Macro>,
    errors: Vec<Diagnostic>,
    nest: Nesting,
    frames: Vec<Frame>,
    /// The script-level token being expanded, where expansion errors point.
    top: usize,
}

struct Frame {
    params: Vec<String>,
    actuals: Vec<(usize, usize)>,
}

/// Tracks bracket depth, runs of prefix operators and chains of right-associative ones:
/// the shapes that make the parser recurse deeply.
#[derive(Default)]
struct Nesting {
    depth: usize,
    prefix_run: usize,
    right_chain: usize,
    prev_operand: bool,
    reported: bool,
}

impl Nesting {
    /// Returns an error message when the token makes nesting too deep.
    fn note(&mut self, text: &str, kind: Tok) -> Option<&'static str> {
        let operand = matches!(
            kind,
            Tok::Ident | Tok::Number | Tok::Str | Tok::Dollar | Tok::At | Tok::Punct(b')' | b']')
        );
        // Two operands in a row start a new statement (semicolons are optional).
        if operand && self.prev_operand {
            self.right_chain = 0;
        }
        self.prev_operand = operand;
        match kind {
            Tok::Punct(b'(' | b'[' | b'{') => {
                self.depth += 1;
                if kind == Tok::Punct(b'{') {
                    self.right_chain = 0;
                }
                if self.depth > MAX_NESTING {
                    return Some("brackets are nested too deeply");
                }
            }
            Tok::Punct(b')' | b']' | b'}') => {
                self.depth = self.depth.saturating_sub(1);
                if kind == Tok::Punct(b'}') {
                    self.right_chain = 0;
                }
            }
            Tok::Punct(b';') => self.right_chain = 0,
            Tok::Punct(b'=' | b'?') => self.right_chain += 1,
            _ => {}
        }
        if matches!(kind, Tok::Punct(b'!' | b'~' | b'-' | b'+' | b'&')) {
            self.prefix_run += 1;
        } else {
            self.prefix_run = 0;
        }
        let _ = text;
        if self.prefix_run > MAX_NESTING * 2 {
            return Some("too many operators in a row");
        }
        (self.right_chain > MAX_NESTING).then_some("assignments or `?:` are chained too deeply")
    }
}

/// Runs the preprocessor; plain scripts come back unchanged with an identity map.
pub fn expand(text: &str, file: FileId, args: &[String]) -> Result<Expanded, Vec<Diagnostic>> {
    let (toks, open_comment) = lex(text);
    if let Some(at) = open_comment {
        let end = (at + 2).min(text.len());
        return Err(vec![Diagnostic::error(
            "unterminated comment: `/*` has no `*/`",
            Span::new(file, at, end),
        )]);
    }
    let blanked = blank_comments(text, &toks);
    let text = blanked.as_str();
    let mut pre = Pre {
        text,
        toks,
        args,
        file,
        out: String::new(),
        segs: Vec::new(),
        last_copied: None,
        macros: HashMap::new(),
        errors: Vec::new(),
        nest: Nesting::default(),
        frames: Vec::new(),
        top: 0,
    };
    // Only these tokens need the rebuilding path; everything else maps one to one.
    let special = |t: &Token| match t.kind {
        Tok::ArgRaw(_)
        | Tok::ArgStr(_)
        | Tok::ArgCount
        | Tok::CondOpen
        | Tok::CondThen
        | Tok::CondElse
        | Tok::CondClose
        | Tok::EmbeddedC => true,
        Tok::At => !AT_OPERATORS.contains(&&text[t.start + 1..t.end]),
        _ => false,
    };
    let plain = !pre.toks.iter().any(special);
    if plain {
        for i in 0..pre.toks.len() {
            pre.note(i);
            if !pre.errors.is_empty() {
                return Err(pre.errors);
            }
        }
        return Ok(Expanded {
            text: text.to_string(),
            segs: Vec::new(),
            file,
        });
    }
    let n = pre.toks.len();
    pre.run(0, n, 0);
    if pre.errors.is_empty() {
        Ok(Expanded {
            text: pre.out,
            segs: pre.segs,
            file,
        })
    } else {
        Err(pre.errors)
    }
}

impl Pre<'_> {
    fn span(&self, i: usize) -> Span {
        Span::new(self.file, self.toks[i].start, self.toks[i].end)
    }

    fn tok_text(&self, i: usize) -> &str {
        &self.text[self.toks[i].start..self.toks[i].end]
    }

    fn error(&mut self, msg: impl Into<String>, i: usize) {
        let span = self.span(i.min(self.toks.len().saturating_sub(1)));
        self.errors.push(Diagnostic::error(msg, span));
    }

    fn note(&mut self, i: usize) {
        let t = self.toks[i];
        if t.kind == Tok::Str && (t.end - t.start < 2 || !self.text[..t.end].ends_with('"')) {
            self.error(
                "unterminated string literal (a string cannot span lines)",
                i,
            );
            return;
        }
        if let Some(msg) = self.nest.note(&self.text[t.start..t.end], t.kind) {
            if !self.nest.reported {
                self.nest.reported = true;
                self.errors.push(Diagnostic::error(
                    format!("{msg} (the limit is {MAX_NESTING})"),
                    self.span(i),
                ));
            }
        }
    }

    /// Copies token `i`, with the original gap before it when it follows the last copied token.
    fn copy(&mut self, i: usize) {
        self.note(i);
        let t = self.toks[i];
        if self.last_copied == Some(i.wrapping_sub(1)) && i > 0 {
            let prev_end = self.toks[i - 1].end;
            self.out.push_str(&self.text[prev_end..t.end]);
        } else {
            self.out.push(' ');
            self.segs.push(Seg {
                out_start: self.out.len(),
                orig_start: Some(t.start),
                fixed: (t.start, t.end),
            });
            self.out.push_str(&self.text[t.start..t.end]);
        }
        self.last_copied = Some(i);
    }

    fn paste(&mut self, text: &str, i: usize) {
        self.out.push(' ');
        self.segs.push(Seg {
            out_start: self.out.len(),
            orig_start: None,
            fixed: (self.toks[i].start, self.toks[i].end),
        });
        self.out.push_str(text);
        self.out.push(' ');
        self.last_copied = None;
    }

    /// Finds the `%?`, `%:` and `%)` that belong to the `%(` at `open`.
    fn cond_parts(&self, open: usize, end: usize) -> (Option<usize>, Option<usize>, Option<usize>) {
        let (mut then, mut els) = (None, None);
        let mut depth = 0;
        for j in open + 1..end {
            match self.toks[j].kind {
                Tok::CondOpen => depth += 1,
                Tok::CondClose if depth == 0 => return (then, els, Some(j)),
                Tok::CondClose => depth -= 1,
                Tok::CondThen if depth == 0 && then.is_none() => then = Some(j),
                Tok::CondElse if depth == 0 && els.is_none() => els = Some(j),
                _ => {}
            }
        }
        (then, els, None)
    }

    fn run(&mut self, mut i: usize, end: usize, depth: usize) {
        if depth > 64 {
            self.error("macro expansion is nested too deeply", i);
            return;
        }
        while i < end && self.errors.is_empty() {
            if depth == 0 {
                self.top = i;
            }
            // Macros that use each other twice double at every level: cap the output.
            if self.out.len() > self.text.len() + MAX_EXPANSION {
                self.error(
                    format!(
                        "macro expansion is too large (over {} MiB)",
                        MAX_EXPANSION >> 20
                    ),
                    self.top,
                );
                return;
            }
            let t = self.toks[i];
            match t.kind {
                Tok::CondOpen => {
                    let (then, els, close) = self.cond_parts(i, end);
                    let (Some(then), Some(close)) = (then, close) else {
                        self.error(
                            "unterminated preprocessor conditional: expected `%?` and `%)`",
                            i,
                        );
                        return;
                    };
                    let value = self.condition(i + 1, then);
                    match (value, els) {
                        (true, Some(e)) => self.run(then + 1, e, depth + 1),
                        (true, None) => self.run(then + 1, close, depth + 1),
                        (false, Some(e)) => self.run(e + 1, close, depth + 1),
                        (false, None) => {}
                    }
                    i = close + 1;
                    continue;
                }
                Tok::CondThen | Tok::CondElse | Tok::CondClose => {
                    let text = self.tok_text(i).to_string();
                    self.error(format!("`{text}` outside a preprocessor conditional"), i);
                    return;
                }
                Tok::EmbeddedC => {
                    self.error("embedded C (`%{ %}`) is not supported", i);
                    return;
                }
                Tok::ArgRaw(n) => match self.arg(n, i) {
                    Some(a) => self.paste(&a, i),
                    None => return,
                },
                Tok::ArgStr(n) => match self.arg(n, i) {
                    Some(a) => {
                        let q = quote(&a);
                        self.paste(&q, i);
                    }
                    None => return,
                },
                Tok::ArgCount => {
                    let n = self.args.len().to_string();
                    self.paste(&n, i);
                }
                Tok::At => {
                    let name = &self.text[t.start + 1..t.end];
                    if name == "define" {
                        i = self.define(i, end);
                        continue;
                    }
                    let param = self.frames.last().and_then(|f| {
                        f.params
                            .iter()
                            .position(|p| p == name)
                            .map(|k| f.actuals[k])
                    });
                    if let Some((s, e)) = param {
                        // Arguments expand in the caller's frame.
                        let frame = self.frames.pop();
                        self.run(s, e, depth + 1);
                        self.frames.extend(frame);
                    } else if AT_OPERATORS.contains(&name) {
                        self.copy(i);
                    } else if let Some(next) = self.invoke(i, end, depth) {
                        i = next;
                        continue;
                    } else {
                        return;
                    }
                }
                _ => self.copy(i),
            }
            i += 1;
        }
    }

    fn arg(&mut self, n: usize, i: usize) -> Option<String> {
        match n.checked_sub(1).and_then(|k| self.args.get(k)) {
            Some(a) => Some(a.clone()),
            None => {
                let text = self.tok_text(i).to_string();
                self.error(
                    format!(
                        "missing command line argument `{text}` ({} given)",
                        self.args.len()
                    ),
                    i,
                );
                None
            }
        }
    }

    /// `@define NAME[(a, b)] %( body %)`; returns the index after it.
    fn define(&mut self, at: usize, end: usize) -> usize {
        let mut i = at + 1;
        if i >= end || self.toks[i].kind != Tok::Ident {
            self.error(
                "expected a macro name after `@define`",
                i.min(end.max(1) - 1),
            );
            return end;
        }
        let name = self.tok_text(i).to_string();
        i += 1;
        let mut params = Vec::new();
        if i < end && self.toks[i].kind == Tok::Punct(b'(') {
            i += 1;
            while i < end && self.toks[i].kind != Tok::Punct(b')') {
                match self.toks[i].kind {
                    Tok::Ident => params.push(self.tok_text(i).to_string()),
                    Tok::Punct(b',') => {}
                    _ => {
                        self.error("expected a macro parameter name", i);
                        return end;
                    }
                }
                i += 1;
            }
            i += 1;
        }
        if i >= end || self.toks[i].kind != Tok::CondOpen {
            self.error(
                format!("expected `%(` to start the body of macro `@{name}`"),
                i.min(end - 1),
            );
            return end;
        }
        let (_, _, close) = self.cond_parts(i, end);
        let Some(close) = close else {
            self.error(
                format!("unterminated body of macro `@{name}`: expected `%)`"),
                i,
            );
            return end;
        };
        if AT_OPERATORS.contains(&name.as_str()) {
            self.error(
                format!("macro `@{name}` would hide a built-in operator"),
                at + 1,
            );
        }
        self.macros.insert(
            name,
            Macro {
                params,
                body: (i + 1, close),
            },
        );
        close + 1
    }

    /// Expands `@name[(args)]`; returns the index after the invocation.
    fn invoke(&mut self, at: usize, end: usize, depth: usize) -> Option<usize> {
        let name = self.text[self.toks[at].start + 1..self.toks[at].end].to_string();
        let Some(m) = self.macros.get(&name) else {
            if AT_UNSUPPORTED.contains(&name.as_str()) {
                self.error(format!("`@{name}` is not supported yet"), at);
            } else {
                self.error(format!("unknown macro `@{name}`"), at);
            }
            return None;
        };
        let (params, body) = (m.params.clone(), m.body);
        let mut i = at + 1;
        let mut actuals: Vec<(usize, usize)> = Vec::new();
        if !params.is_empty() {
            if i >= end || self.toks[i].kind != Tok::Punct(b'(') {
                self.error(
                    format!("macro `@{name}` needs {} arguments", params.len()),
                    at,
                );
                return None;
            }
            i += 1;
            let mut start = i;
            let mut level = 0;
            loop {
                if i >= end {
                    self.error(format!("unterminated arguments of macro `@{name}`"), at);
                    return None;
                }
                match self.toks[i].kind {
                    Tok::Punct(b'(' | b'[' | b'{') => level += 1,
                    Tok::Punct(b')') if level == 0 => {
                        actuals.push((start, i));
                        break;
                    }
                    Tok::Punct(b')' | b']' | b'}') => level -= 1,
                    Tok::Punct(b',') if level == 0 => {
                        actuals.push((start, i));
                        start = i + 1;
                    }
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            if actuals.len() != params.len() {
                self.error(
                    format!(
                        "macro `@{name}` takes {} arguments, found {}",
                        params.len(),
                        actuals.len()
                    ),
                    at,
                );
                return None;
            }
        }
        // The body sees the actual arguments through the innermost frame.
        self.frames.push(Frame { params, actuals });
        self.run(body.0, body.1, depth + 1);
        self.frames.pop();
        Some(i)
    }
}

/// A string literal whose value is `s`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}
