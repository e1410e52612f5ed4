//! Processes already running when the session starts: which of them a `.begin`
//! handler runs for, and their context (`pid()`, `execname()` ...) read from /proc.

use super::{Interp, Store};
use rtap_compiler::host::{HostHandler, HostWhen};
use std::path::Path;

/// Which processes the session traces, as `-c`/`-x` limit them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `-c CMD`: the command has not run yet, so no process of the script's is running.
    Command,
    /// `-x PID`: that process only.
    Target(u32),
    /// Neither: every process.
    All,
}

/// Nanoseconds since boot (`CLOCK_BOOTTIME`), the clock of a process's start time.
pub fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn read(pid: u32, file: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

/// Fields of /proc/PID/stat after the command name (which may hold spaces and
/// parentheses): index 0 is the state, 1 the parent, 19 the start time, 36 the CPU.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = String::from_utf8_lossy(&read(pid, "stat")).into_owned();
    match stat.rfind(')') {
        Some(i) => stat[i + 1..]
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    }
}

fn stat_field(pid: u32, i: usize) -> i64 {
    stat_fields(pid)
        .get(i)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// The real (0) or effective (1) id of a `Uid:`/`Gid:` line of /proc/PID/status.
fn status_id(pid: u32, key: &str, which: usize) -> i64 {
    let status = String::from_utf8_lossy(&read(pid, "status")).into_owned();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().nth(which))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// When the process started, in nanoseconds since boot.
fn started_ns(pid: u32) -> Option<u64> {
    let ticks: u64 = stat_fields(pid).get(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks.saturating_mul(1_000_000_000 / hz))
}

/// A user-space process (kernel threads have no executable) running `path`, if given.
fn runs(pid: u32, path: Option<&Path>) -> bool {
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => path.is_none_or(|p| exe == p),
        Err(_) => false,
    }
}

/// The context builtins answer for `pid` instead of rtap; `None` for the others.
pub(super) fn builtin_long(name: &str, pid: u32) -> Option<i64> {
    Some(match name {
        // A process's `.begin` runs in its main thread.
        "pid" | "tid" => i64::from(pid),
        "ppid" => stat_field(pid, 1),
        "cpu" => stat_field(pid, 36),
        "uid" => status_id(pid, "Uid:", 0),
        "euid" => status_id(pid, "Uid:", 1),
        "gid" => status_id(pid, "Gid:", 0),
        "egid" => status_id(pid, "Gid:", 1),
        _ => return None,
    })
}

/// `execname`, `cmdline` (NUL-separated) or `environ` of `pid`.
pub(super) fn proc_file(pid: Option<u32>, file: &str) -> Vec<u8> {
    match pid {
        Some(pid) => read(pid, file),
        None => std::fs::read(format!("/proc/self/{file}")).unwrap_or_default(),
    }
}

impl<'p, S: Store> Interp<'p, S> {
    /// The `.begin` handlers of processes already running, with the process each runs
    /// for, in handler order then pid order. Processes that started after `armed_ns`
    /// (since boot) are left out: the probes armed by then report them.
    pub fn running_begins(&self, scope: Scope, armed_ns: u64) -> Vec<(&'p HostHandler, u32)> {
        let mut all: Option<Vec<u32>> = None;
        let mut out = Vec::new();
        for h in &self.prog.handlers {
            let HostWhen::ProcessBegin { path, pid } = &h.when else {
                continue;
            };
            let candidates = match (pid, scope) {
                (Some(p), _) => vec![*p],
                (None, Scope::Command) => Vec::new(),
                (None, Scope::Target(t)) => vec![t],
                (None, Scope::All) => all.get_or_insert_with(every_process).clone(),
            };
            for p in candidates {
                let existed = started_ns(p).is_some_and(|s| s <= armed_ns);
                if existed && runs(p, path.as_deref()) {
                    out.push((h, p));
                }
            }
        }
        out
    }
}

/// Every process but rtap itself, in pid order.
fn every_process() -> Vec<u32> {
    let me = std::process::id();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| p != me)
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process, read through /proc as another process would be.
    #[test]
    fn own_context() {
        let me = std::process::id();
        assert_eq!(builtin_long("pid", me), Some(i64::from(me)));
        // SAFETY: plain getters.
        let (ppid, uid, egid) = unsafe { (libc::getppid(), libc::getuid(), libc::getegid()) };
        assert_eq!(builtin_long("ppid", me), Some(i64::from(ppid)));
        assert_eq!(builtin_long("uid", me), Some(i64::from(uid)));
        assert_eq!(builtin_long("egid", me), Some(i64::from(egid)));
        assert!(started_ns(me).is_some_and(|s| s <= boot_ns()));
        assert!(runs(me, None));
    }
}
