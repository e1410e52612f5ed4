//! The builtin and tapset function table: name, argument types, return type, one-line doc.
//!
//! The print family (`print`, `printf`, `printd`, …) is not listed: its
//! arguments are checked against formats and values, see `check::calls`.

use crate::hir::Type::{self, Long as L, String as S};
use rustc_hash::FxHashMap as HashMap;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub params: &'static [Type],
    /// How many trailing parameters may be left out.
    pub optional: usize,
    pub ret: Type,
    pub doc: &'static str,
}

const fn f(
    name: &'static str,
    params: &'static [Type],
    optional: usize,
    ret: Type,
    doc: &'static str,
) -> Builtin {
    Builtin {
        name,
        params,
        optional,
        ret,
        doc,
    }
}

pub static BUILTINS: &[Builtin] = &[
    // User memory.
    f(
        "user_string",
        &[L, S],
        1,
        S,
        "string at a user address; `err` is returned on a fault instead of an error",
    ),
    f(
        "user_string_n",
        &[L, L, S],
        1,
        S,
        "at most `n` bytes of the string at a user address",
    ),
    f(
        "user_string_quoted",
        &[L],
        0,
        S,
        "the string at a user address, escaped and quoted, or its address on a fault",
    ),
    f(
        "user_string_n_quoted",
        &[L, L],
        0,
        S,
        "at most `n` bytes of a user string, escaped and quoted",
    ),
    f("user_char", &[L], 0, L, "signed char at a user address"),
    f("user_short", &[L], 0, L, "signed short at a user address"),
    f(
        "user_ushort",
        &[L],
        0,
        L,
        "unsigned short at a user address",
    ),
    f("user_int", &[L], 0, L, "signed int at a user address"),
    f("user_uint", &[L], 0, L, "unsigned int at a user address"),
    f("user_long", &[L], 0, L, "signed long at a user address"),
    f("user_ulong", &[L], 0, L, "unsigned long at a user address"),
    f(
        "user_int8",
        &[L],
        0,
        L,
        "8-bit signed integer at a user address",
    ),
    f(
        "user_uint8",
        &[L],
        0,
        L,
        "8-bit unsigned integer at a user address",
    ),
    f(
        "user_int16",
        &[L],
        0,
        L,
        "16-bit signed integer at a user address",
    ),
    f(
        "user_uint16",
        &[L],
        0,
        L,
        "16-bit unsigned integer at a user address",
    ),
    f(
        "user_int32",
        &[L],
        0,
        L,
        "32-bit signed integer at a user address",
    ),
    f(
        "user_uint32",
        &[L],
        0,
        L,
        "32-bit unsigned integer at a user address",
    ),
    f(
        "user_int64",
        &[L],
        0,
        L,
        "64-bit signed integer at a user address",
    ),
    f(
        "user_uint64",
        &[L],
        0,
        L,
        "64-bit unsigned integer at a user address",
    ),
    f("kernel_string", &[L, S], 1, S, "string at a kernel address"),
    f(
        "kernel_string_n",
        &[L, L],
        0,
        S,
        "at most `n` bytes of the string at a kernel address",
    ),
    // Process.
    f("pid", &[], 0, L, "process id (tgid) of the current task"),
    f("tid", &[], 0, L, "thread id of the current task"),
    f("ppid", &[], 0, L, "parent process id"),
    f(
        "execname",
        &[],
        0,
        S,
        "command name (comm) of the current task",
    ),
    f("uid", &[], 0, L, "user id"),
    f("euid", &[], 0, L, "effective user id"),
    f("gid", &[], 0, L, "group id"),
    f("egid", &[], 0, L, "effective group id"),
    f("cpu", &[], 0, L, "current cpu number"),
    f(
        "target",
        &[],
        0,
        L,
        "pid given with `-x`, or of the `-c` command",
    ),
    f(
        "cmdline_str",
        &[],
        0,
        S,
        "command line of the current process",
    ),
    f(
        "env_var",
        &[S],
        0,
        S,
        "value of an environment variable of the current process",
    ),
    // Time.
    f(
        "gettimeofday_s",
        &[],
        0,
        L,
        "wall-clock seconds since the epoch",
    ),
    f(
        "gettimeofday_ms",
        &[],
        0,
        L,
        "wall-clock milliseconds since the epoch",
    ),
    f(
        "gettimeofday_us",
        &[],
        0,
        L,
        "wall-clock microseconds since the epoch",
    ),
    f(
        "gettimeofday_ns",
        &[],
        0,
        L,
        "wall-clock nanoseconds since the epoch",
    ),
    f(
        "local_clock_ns",
        &[],
        0,
        L,
        "monotonic per-cpu clock in nanoseconds",
    ),
    f(
        "local_clock_us",
        &[],
        0,
        L,
        "monotonic per-cpu clock in microseconds",
    ),
    f("cpu_clock_ns", &[L], 0, L, "clock of a cpu in nanoseconds"),
    f("ktime_get_ns", &[], 0, L, "monotonic clock in nanoseconds"),
    f("get_cycles", &[], 0, L, "processor cycle counter"),
    f("jiffies", &[], 0, L, "kernel jiffies counter"),
    f(
        "ctime",
        &[L],
        1,
        S,
        "UTC time as `Thu Jan  1 00:00:00 1970`",
    ),
    f(
        "tz_ctime",
        &[L],
        0,
        S,
        "local time with the zone name appended",
    ),
    // Probe identity.
    f("pp", &[], 0, S, "the probe point being run, fully expanded"),
    f("ppfunc", &[], 0, S, "the function name part of `pp()`"),
    f("probefunc", &[], 0, S, "the function at the probed address"),
    f("probemod", &[], 0, S, "the module of the probed address"),
    f("is_return", &[], 0, L, "1 in a `.return` probe, else 0"),
    // Symbols and stacks.
    f(
        "usymname",
        &[L],
        0,
        S,
        "symbol name of a user address, or hex when unknown",
    ),
    f(
        "usymdata",
        &[L],
        0,
        S,
        "`sym+0xoff/0xsize [mod]` of a user address",
    ),
    f("umodname", &[L], 0, S, "module containing a user address"),
    f("uaddr", &[], 0, L, "user-space address of the probe"),
    f("ubacktrace", &[], 0, S, "user stack as hex addresses"),
    f(
        "print_ubacktrace",
        &[],
        0,
        L,
        "print the user stack, one frame per line",
    ),
    f(
        "sprint_ubacktrace",
        &[],
        0,
        S,
        "the user stack, one symbolized frame per line",
    ),
    f(
        "print_ustack",
        &[S],
        0,
        L,
        "print a stack returned by `ubacktrace()`",
    ),
    f(
        "sprint_ustack",
        &[S],
        0,
        S,
        "symbolize a stack returned by `ubacktrace()`",
    ),
    f(
        "ucallers",
        &[L],
        0,
        S,
        "the first `n` user return addresses",
    ),
    // Control.
    f(
        "exit",
        &[],
        0,
        L,
        "end the session after the current handler",
    ),
    f("abort", &[], 0, L, "end the session at once"),
    f("error", &[S], 0, L, "abort the handler with an error"),
    f("warn", &[S], 0, L, "print a warning"),
    f("log", &[S], 0, L, "print a line to the output"),
    f("errno_str", &[L], 0, S, "symbolic name of an errno value"),
    // Strings.
    f("strlen", &[S], 0, L, "length of a string"),
    f(
        "substr",
        &[S, L, L],
        0,
        S,
        "`len` characters from `start` (0-based)",
    ),
    f("stringat", &[S, L], 0, L, "character at an index"),
    f(
        "isinstr",
        &[S, S],
        0,
        L,
        "1 when the second string occurs in the first",
    ),
    f(
        "tokenize",
        &[S, S],
        0,
        S,
        "next token, like strtok; pass \"\" to continue",
    ),
    f(
        "str_replace",
        &[S, S, S],
        0,
        S,
        "replace every occurrence of a substring",
    ),
    f("text_str", &[S], 0, S, "escape non-printable characters"),
    f(
        "text_strn",
        &[S, L, L],
        0,
        S,
        "escape non-printable characters, limited in length",
    ),
    f("string_quoted", &[S], 0, S, "escape and quote a string"),
    f("strtol", &[S, L], 0, L, "parse an integer in a base"),
    f(
        "isdigit",
        &[S],
        0,
        L,
        "1 when the first character is a digit",
    ),
    f("randint", &[L], 0, L, "random number below `n`"),
];

pub fn lookup(name: &str) -> Option<&'static Builtin> {
    // Calls are frequent and the table is long: index it once.
    static INDEX: OnceLock<HashMap<&'static str, &'static Builtin>> = OnceLock::new();
    INDEX
        .get_or_init(|| BUILTINS.iter().map(|b| (b.name, b)).collect())
        .get(name)
        .copied()
}

/// Print-family functions handled by the checker itself.
pub fn is_print(name: &str) -> bool {
    matches!(
        name,
        "print"
            | "println"
            | "printd"
            | "printdln"
            | "printf"
            | "sprint"
            | "sprintln"
            | "sprintd"
            | "sprintdln"
            | "sprintf"
    )
}
