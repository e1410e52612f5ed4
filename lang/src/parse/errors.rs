//! Syntax errors in words: what was expected, from pest's parse attempts.

use super::{Rule, StapParser};
use crate::diag::Diagnostic;
use crate::preproc::Expanded;
use pest::Parser;
use std::sync::Mutex;

/// Serializes re-parses with pest's (global) error detail switched on.
static DETAIL: Mutex<()> = Mutex::new(());

/// Parses again with error detail on: slower, but it knows which tokens were expected.
pub(super) fn detailed_error(exp: &Expanded) -> Diagnostic {
    let _guard = DETAIL.lock().unwrap_or_else(|e| e.into_inner());
    pest::set_error_detail(true);
    let result = StapParser::parse(Rule::script, &exp.text);
    pest::set_error_detail(false);
    match result {
        Err(e) => syntax_error(exp, &e),
        Ok(_) => Diagnostic::bare("internal error: the script parsed on the second try"),
    }
}

fn rule_words(r: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match r {
        EOI => "end of input",
        ident => "an identifier",
        number | neg_number => "a number",
        string => "a string",
        literal => "a literal",
        expr | paren | key_tuple | target | stat_call | hist_log | hist_linear | entry_call
        | defined_call | cast_call | var_call | stat_name | prefix_op => "an expression",
        infix_op | ternary_op | incdec_post | in_op | member_op | index_op => "an operator",
        kw_else => "`else`",
        kw_in => "`in`",
        kw_limit => "`limit`",
        empty_stmt | if_stmt | while_stmt | for_stmt | foreach_stmt | break_stmt
        | continue_stmt | next_stmt | return_stmt | delete_stmt | try_stmt => "a statement",
        probe_point | component | component_name => "a probe point",
        type_ann => "a type annotation `:long` or `:string`",
        param => "a parameter name",
        global_var => "a global variable name",
        array_size | wrap_mark => "an array size",
        global_init => "`=` and a literal",
        foreach_head | foreach_value | foreach_keys | foreach_key => "a `foreach` key",
        sort_mark | array_sort => "a sort mark `+` or `-`",
        foreach_slice => "a slice `[...]`",
        for_part => "an expression",
        member_name => "a member name",
        _ => return None,
    })
}

fn syntax_error(exp: &Expanded, e: &pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let rule_pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    // pest places the error at the last failed rule; plain tokens may have been tried further on.
    // Those inside atomic rules (a brace list, say) can sit on whitespace: ignore them.
    let text = &exp.text;
    let attempts = e.parse_attempts();
    let start = attempts
        .as_ref()
        .map(|a| a.max_position)
        .filter(|&p| p > rule_pos && !text[p..].starts_with(char::is_whitespace))
        .unwrap_or(rule_pos);
    // Point at the offending token, a word or else one character (a zero-width caret is hard to see).
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let first_len = text[start..].chars().next().map_or(0, char::len_utf8);
    let tok_end = if text[start..].starts_with(word) {
        text[start..]
            .find(|c: char| !word(c))
            .map_or(text.len(), |i| start + i)
    } else {
        start + first_len
    };
    let span = exp.span(start, tok_end);
    let mut words: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    if let Some(attempts) = attempts.as_ref().filter(|a| a.max_position == start) {
        let tokens: Vec<String> = attempts
            .expected_tokens()
            .iter()
            .map(|t| t.to_string())
            .collect();
        // `->` is only tried by the postfix guard, right after an operand.
        let after_operand = tokens.iter().any(|t| t == "->");
        for s in tokens {
            let postfix = ["++", "--", "->", "[", "in"].contains(&s.as_str());
            if after_operand && postfix {
                push("an operator".to_string());
            } else if !s.trim().is_empty() && !s.starts_with('/') && !s.starts_with('#') {
                push(format!("`{s}`"));
            }
        }
    }
    // A `(` that would only have made the name before it a call is noise.
    let mut after_name = false;
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        after_name = positives.contains(&Rule::call_args);
        if rule_pos == start {
            for r in positives {
                if let Some(w) = rule_words(*r) {
                    push(w.to_string());
                }
            }
        }
    }
    // Tokens covered by a description ("an expression", "an operator") add only noise.
    let has = |w: &str, words: &[String]| words.iter().any(|x| x == w);
    let expr = has("an expression", &words);
    let op = has("an operator", &words);
    let literal = has("a literal", &words);
    let sort = has("a sort mark `+` or `-`", &words);
    words.retain(|w| {
        let Some(tok) = w.strip_prefix('`').and_then(|t| t.strip_suffix('`')) else {
            return !(expr && ["an identifier", "a number", "a string"].contains(&w.as_str()));
        };
        let range = tok.len() == 4 && tok.contains("..");
        let starts_expr = tok.starts_with('@')
            || [
                "!", "\"", "$", "$$", "&", "(", "+", "++", "-", "--", "[", "~", "_",
            ]
            .contains(&tok);
        // `(` after a name would make a call: noise next to "an operator".
        let is_op = OPERATORS.contains(&tok) || ["in", "->", "[", "?", "("].contains(&tok);
        let starts_literal = ["\"", "-"].contains(&tok);
        let sign = ["+", "-"].contains(&tok);
        !(range
            || tok == "_"
            || (after_name && tok == "(")
            || (expr && starts_expr)
            || (op && is_op)
            || (literal && starts_literal)
            || (sort && sign))
    });
    // At the end of input, what is missing is a closing bracket.
    if start >= text.len() {
        let closers: Vec<String> = words
            .iter()
            .filter(|w| ["`}`", "`)`", "`]`"].contains(&w.as_str()))
            .cloned()
            .collect();
        if !closers.is_empty() {
            words = closers;
        }
    }
    // Literal tokens first, then descriptions, so the message reads naturally.
    words.sort_by_key(|w| !w.starts_with('`'));
    let found = if start >= text.len() {
        "end of input".to_string()
    } else {
        format!("`{}`", text[start..tok_end].trim())
    };
    let msg = match words.len() {
        0 => format!("syntax error: unexpected {found}"),
        _ => format!("expected {}, found {found}", join_or(&words)),
    };
    Diagnostic::error(msg, span)
}

const OPERATORS: &[&str] = &[
    "!=", "!~", "%", "%=", "&", "&&", "&=", "*", "*=", "+", "++", "+=", "-", "--", "-=", ".", ".=",
    "/", "/=", "<", "<<", "<<<", "<<=", "<=", "=", "==", "=~", ">", ">=", ">>", ">>=", ">>>", "^",
    "^=", "|", "|=", "||",
];

fn join_or(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
