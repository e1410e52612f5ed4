//! Tapset functions available in user-space handlers (`HOST_BUILTINS` in the compiler).

use super::task::proc_file;
use super::text::{ctime, quoted, text_str};
use super::{Flow, Interp, Stop, Store, V};
use rtap_lang::span::Span;
use std::time::{SystemTime, UNIX_EPOCH};

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `KEY=value` of a NUL-separated environment block.
fn environ_var(environ: &[u8], key: &[u8]) -> Vec<u8> {
    environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix(b"="))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

impl<S: Store> Interp<'_, S> {
    pub(super) fn builtin(&mut self, name: &str, args: Vec<V>, span: Span) -> Flow<V> {
        let long = |i: usize| args.get(i).map_or(0, V::long);
        let string = |i: usize| -> Vec<u8> {
            match args.get(i) {
                Some(V::Str(s)) => s.clone(),
                _ => Vec::new(),
            }
        };
        let s = |v: &str| V::Str(v.as_bytes().to_vec());
        // `.begin` of a process already running: its context, not rtap's.
        if let Some(v) = self
            .task
            .and_then(|pid| super::task::builtin_long(name, pid))
        {
            return Ok(V::Long(v));
        }
        // SAFETY (all libc calls below): plain getters without arguments.
        Ok(V::Long(match name {
            "pid" => i64::from(std::process::id()),
            "tid" => i64::from(unsafe { libc::gettid() }),
            "ppid" => i64::from(unsafe { libc::getppid() }),
            "uid" => i64::from(unsafe { libc::getuid() }),
            "euid" => i64::from(unsafe { libc::geteuid() }),
            "gid" => i64::from(unsafe { libc::getgid() }),
            "egid" => i64::from(unsafe { libc::getegid() }),
            "cpu" => i64::from(unsafe { libc::sched_getcpu() }.max(0)),
            "target" => i64::from(self.target),
            "is_return" => 0,
            "gettimeofday_s" => wall_ns() / 1_000_000_000,
            "gettimeofday_ms" => wall_ns() / 1_000_000,
            "gettimeofday_us" => wall_ns() / 1_000,
            "gettimeofday_ns" => wall_ns(),
            "local_clock_ns" | "ktime_get_ns" | "cpu_clock_ns" | "get_cycles" => {
                clock_ns(libc::CLOCK_MONOTONIC)
            }
            "local_clock_us" => clock_ns(libc::CLOCK_MONOTONIC) / 1000,
            // Debian kernels tick at 250 Hz.
            "jiffies" => clock_ns(libc::CLOCK_MONOTONIC) / 4_000_000,
            "exit" => {
                self.exit_requested = true;
                0
            }
            "abort" => return Err(Stop::Abort),
            "error" => {
                let msg = String::from_utf8_lossy(&string(0)).into_owned();
                return Err(Stop::Error(msg, span));
            }
            "warn" => {
                eprintln!("WARNING: {}", String::from_utf8_lossy(&string(0)));
                0
            }
            "log" => {
                self.out.extend_from_slice(&string(0));
                self.out.push(b'\n');
                0
            }
            "strlen" => string(0).len() as i64,
            "stringat" => {
                let st = string(0);
                let i = long(1);
                match usize::try_from(i).ok().and_then(|i| st.get(i)) {
                    Some(&c) => i64::from(c),
                    None => {
                        return Err(Stop::Error("index out of range in `stringat`".into(), span))
                    }
                }
            }
            "isinstr" => {
                let (a, b) = (string(0), string(1));
                (b.is_empty() || a.windows(b.len()).any(|w| w == b)).into()
            }
            "strtol" => strtol(&string(0), long(1)),
            "isdigit" => string(0).first().is_some_and(u8::is_ascii_digit).into(),
            "randint" => {
                let n = long(0);
                if n <= 0 || n > (1 << 32) {
                    return Err(Stop::Error("invalid range for randint".into(), span));
                }
                fastrand::i64(0..n)
            }
            // The rest return strings.
            _ => {
                return Ok(match name {
                    "execname" => {
                        let mut c = proc_file(self.task, "comm");
                        if c.last() == Some(&b'\n') {
                            c.pop();
                        }
                        V::Str(c)
                    }
                    "cmdline_str" => {
                        let c = proc_file(self.task, "cmdline");
                        let parts: Vec<&[u8]> =
                            c.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
                        V::Str(self.cut(parts.join(&b' ')))
                    }
                    "env_var" => {
                        let key = string(0);
                        match self.task {
                            Some(pid) => {
                                V::Str(environ_var(&proc_file(Some(pid), "environ"), &key))
                            }
                            None => {
                                let key = String::from_utf8_lossy(&key).into_owned();
                                V::Str(std::env::var(key).unwrap_or_default().into_bytes())
                            }
                        }
                    }
                    "pp" => V::Str(self.probe_point.clone().into_bytes()),
                    "ppfunc" | "probefunc" | "probemod" => V::Str(Vec::new()),
                    "ctime" => s(&ctime(
                        args.first().map_or(wall_ns() / 1_000_000_000, V::long),
                        false,
                    )),
                    "tz_ctime" => s(&ctime(long(0), true)),
                    "errno_str" => s(rtap_compiler::errno::errno_str(long(0))),
                    "substr" => {
                        let st = string(0);
                        let start = usize::try_from(long(1)).unwrap_or(usize::MAX).min(st.len());
                        let len = usize::try_from(long(2)).unwrap_or(0);
                        V::Str(st[start..(start.saturating_add(len)).min(st.len())].to_vec())
                    }
                    "str_replace" => {
                        let (st, from, to) = (string(0), string(1), string(2));
                        V::Str(self.cut(replace(&st, &from, &to)))
                    }
                    "text_str" => V::Str(self.cut(text_str(&string(0)))),
                    "text_strn" => {
                        let st = string(0);
                        let n = usize::try_from(long(1)).unwrap_or(0);
                        let n = if n == 0 { st.len() } else { n.min(st.len()) };
                        let t = if long(2) != 0 {
                            quoted(&st[..n])
                        } else {
                            text_str(&st[..n])
                        };
                        V::Str(self.cut(t))
                    }
                    "string_quoted" => V::Str(self.cut(quoted(&string(0)))),
                    "tokenize" => V::Str(self.tokenize(string(0), &string(1))),
                    _ => {
                        return Err(Stop::Error(
                            format!("`{name}` cannot run in a user-space handler"),
                            span,
                        ))
                    }
                })
            }
        }))
    }

    /// strtok: a non-empty `input` starts a new string, "" continues the last one.
    fn tokenize(&mut self, input: Vec<u8>, delims: &[u8]) -> Vec<u8> {
        if !input.is_empty() {
            self.tokens = input;
        }
        let is_delim = |c: &u8| delims.contains(c);
        let start = self
            .tokens
            .iter()
            .position(|c| !is_delim(c))
            .unwrap_or(self.tokens.len());
        let rest = self.tokens.split_off(start);
        let end = rest.iter().position(is_delim).unwrap_or(rest.len());
        let token = rest[..end].to_vec();
        self.tokens = rest[(end + 1).min(rest.len())..].to_vec();
        token
    }
}

fn replace(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// `strtol(s, base)`: leading blanks, a sign, an optional `0x` for base 16 (or base 0).
fn strtol(s: &[u8], base: i64) -> i64 {
    let t = String::from_utf8_lossy(s);
    let t = t.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (base, t) = match base {
        0 if t.starts_with("0x") || t.starts_with("0X") => (16, &t[2..]),
        0 if t.starts_with('0') && t.len() > 1 => (8, &t[1..]),
        0 => (10, t),
        16 => (16, t.trim_start_matches("0x").trim_start_matches("0X")),
        b => (b.clamp(2, 36) as u32, t),
    };
    let digits: String = t.chars().take_while(|c| c.is_digit(base)).collect();
    let v = i64::from_str_radix(&digits, base).unwrap_or(0);
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}
