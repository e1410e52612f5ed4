//! A tracing session: load → begin → attach → run the target → poll → end → report.

use crate::events;
use crate::format::{self, Value};
use crate::kernel::{self, KernelError};
use rtap_compiler::object::{Attach, BpfObject, ConfigSlot, Counter, EventKind, ProgramKind};
use std::cell::RefCell;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open output file `{path}`: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the ring buffer: {0}")]
    RingBuf(#[source] libbpf_rs::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("process {0} does not exist")]
    NoProcess(u32),
}

#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// `-c CMD`.
    pub command: Option<String>,
    /// `-x PID`.
    pub pid: Option<u32>,
    /// `-o FILE`.
    pub output: Option<PathBuf>,
    /// `-T SECS`.
    pub timeout: Option<Duration>,
    /// `-D MAXERRORS=N`: the session ends after more errors than this.
    pub max_errors: u64,
}

/// How the session ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub errors: u64,
    pub skipped: u64,
    pub lost: u64,
}

impl Outcome {
    /// SystemTap's: 0 for a clean run, 1 when a runtime error happened.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.errors > 0)
    }
}

struct Sink {
    out: Box<dyn Write>,
    errors: u64,
    exit_requested: bool,
    buf: Vec<u8>,
}

impl Sink {
    fn record(&mut self, obj: &BpfObject, rec: &[u8]) {
        let spec = events::event_id(rec)
            .ok()
            .and_then(|id| obj.events.get(id as usize));
        let Some(spec) = spec else {
            eprintln!("WARNING: ignoring a record with an unknown event id");
            return;
        };
        match &spec.kind {
            EventKind::Printf(fmt) => match events::decode(spec, rec) {
                Ok(values) => {
                    self.buf.clear();
                    format::format(fmt, &values, &mut self.buf);
                    let _ = self.out.write_all(&self.buf);
                }
                Err(e) => eprintln!("WARNING: {}", e.0),
            },
            EventKind::Error { message, location } => {
                self.errors += 1;
                // `{addr}` in the message stands for the record's first long field.
                let text = match events::decode(spec, rec).ok().as_deref() {
                    Some([Value::Long(addr), ..]) => {
                        message.replace("{addr}", &format!("0x{addr:x}"))
                    }
                    _ => message.clone(),
                };
                let _ = self.out.flush();
                eprintln!("ERROR: {text} near {location}");
            }
            EventKind::Exit => self.exit_requested = true,
        }
    }
}

/// A child forked for `-c`, held before `exec` until the probes are attached.
struct HeldChild {
    pid: libc::pid_t,
    go: Option<OwnedFd>,
}

impl HeldChild {
    fn spawn(command: &str) -> Result<HeldChild, SessionError> {
        let spawn_err = |source| SessionError::Spawn {
            command: command.to_string(),
            source,
        };
        // Like SystemTap, go through `sh -c` only when the command needs a shell.
        let needs_shell = command.contains(|c: char| "|&;<>()$`\\\"'*?[#~{}".contains(c));
        let argv: Vec<CString> = if needs_shell {
            ["/bin/sh", "-c", command]
                .iter()
                .map(|s| CString::new(*s).unwrap_or_default())
                .collect()
        } else {
            command
                .split_whitespace()
                .map(|s| CString::new(s).unwrap_or_default())
                .collect()
        };
        if argv.is_empty() {
            return Err(spawn_err(std::io::Error::other("empty command")));
        }
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(spawn_err(std::io::Error::last_os_error()));
        }
        // SAFETY: the child only calls async-signal-safe functions before exec.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(spawn_err(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: read, execvp, write and _exit are async-signal-safe.
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                let n = libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                if n != 1 {
                    libc::_exit(127);
                }
                libc::execvp(ptrs[0], ptrs.as_ptr());
                let msg = b"rtap: cannot execute the -c command\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            }
        }
        // SAFETY: both fds came from pipe2 above.
        unsafe {
            libc::close(fds[0]);
        }
        Ok(HeldChild {
            pid,
            // SAFETY: we own the write end.
            go: Some(unsafe { OwnedFd::from_raw_fd(fds[1]) }),
        })
    }

    fn release(&mut self) -> Result<(), SessionError> {
        if let Some(fd) = self.go.take() {
            let b = [1u8];
            // SAFETY: fd is a valid pipe write end.
            if unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1) } != 1 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        Ok(())
    }
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned on success.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: the kernel returned a new fd.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Runs the whole session and returns its outcome. Output goes to `-o` or stdout.
pub fn run(obj: &BpfObject, opts: &SessionOptions) -> Result<Outcome, SessionError> {
    let out: Box<dyn Write> = match &opts.output {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|source| SessionError::Output {
                path: p.display().to_string(),
                source,
            })?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let sink = Rc::new(RefCell::new(Sink {
        out: Box::new(std::io::BufWriter::with_capacity(1 << 16, out)),
        errors: 0,
        exit_requested: false,
        buf: Vec::new(),
    }));

    let maps = kernel::create_maps(obj)?;
    let mut progs = Vec::with_capacity(obj.programs.len());
    for p in &obj.programs {
        progs.push(kernel::load_program(p, &maps)?);
    }

    let mut rb = libbpf_rs::RingBufferBuilder::new();
    {
        let sink = Rc::clone(&sink);
        rb.add(&maps[obj.ringbuf.0 as usize], move |rec: &[u8]| {
            sink.borrow_mut().record(obj, rec);
            0
        })
        .map_err(SessionError::RingBuf)?;
    }
    let rb = rb.build().map_err(SessionError::RingBuf)?;
    let drain = || {
        let _ = rb.consume();
        let _ = sink.borrow_mut().out.flush();
    };

    let (sig_read, sig_write) = UnixStream::pair()?;
    sig_read.set_nonblocking(true)?;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::low_level::pipe::register(sig, sig_write.try_clone()?)?;
    }

    let mut child = match &opts.command {
        Some(cmd) => Some(HeldChild::spawn(cmd)?),
        None => None,
    };
    let target = child.as_ref().map(|c| c.pid as u32).or(opts.pid);
    if let Some(pid) = opts.pid {
        if pidfd_open(pid as i32).is_none() {
            return Err(SessionError::NoProcess(pid));
        }
    }
    let config = &maps[obj.config.0 as usize];
    kernel::array_set(
        config,
        ConfigSlot::TargetPid as u32,
        target.unwrap_or(0) as u64,
    )?;
    kernel::array_set(
        config,
        ConfigSlot::RealtimeOffsetNs as u32,
        realtime_offset_ns() as u64,
    )?;
    crate::report::write_inits(&obj.globals, &maps).map_err(SessionError::RingBuf)?;

    let run_oneshots = |select: &dyn Fn(&Attach) -> Option<i64>| -> Result<(), SessionError> {
        let mut order: Vec<(i64, usize)> = obj
            .programs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| select(&p.attach).map(|seq| (seq, i)))
            .collect();
        order.sort();
        for (_, i) in order {
            kernel::run_once(&progs[i], &obj.programs[i].probe_point)?;
            drain();
        }
        Ok(())
    };
    run_oneshots(&|a| match a {
        Attach::Begin { seq } => Some(*seq),
        _ => None,
    })?;

    let mut links = Vec::new();
    let mut timers = Vec::new();
    if !sink.borrow().exit_requested {
        for (p, fd) in obj.programs.iter().zip(&progs) {
            match (p.kind, &p.attach) {
                (
                    ProgramKind::Uprobe,
                    Attach::Uprobe {
                        path,
                        offsets,
                        retprobe,
                    },
                ) => links.push(kernel::attach_uprobe_multi(
                    fd,
                    &p.probe_point,
                    path,
                    offsets,
                    *retprobe,
                    target,
                )?),
                (
                    ProgramKind::PerfEvent,
                    Attach::Timer {
                        period_ns,
                        every_cpu,
                        ..
                    },
                ) => {
                    // `timer.*` fires on one CPU; `timer.profile` on every CPU.
                    let cpus = kernel::online_cpus();
                    let cpus = if *every_cpu { &cpus[..] } else { &cpus[..1] };
                    timers.extend(kernel::attach_timer(fd, &p.probe_point, *period_ns, cpus)?);
                }
                _ => {}
            }
        }
    }

    let child_fd = match &mut child {
        Some(c) => {
            let fd = pidfd_open(c.pid);
            c.release()?;
            fd
        }
        None => opts.pid.and_then(|p| pidfd_open(p as i32)),
    };
    let deadline = opts.timeout.map(|t| Instant::now() + t);

    let counters = &maps[obj.counters.0 as usize];
    loop {
        {
            let s = sink.borrow();
            if s.exit_requested || s.errors > opts.max_errors {
                break;
            }
        }
        let mut fds = vec![
            libc::pollfd {
                fd: rb.epoll_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sig_read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Some(fd) = &child_fd {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout_ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                left.as_millis().min(1000) as i32
            }
            None => 1000,
        };
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        drain();
        if fds[1].revents != 0 {
            break;
        }
        if fds.get(2).is_some_and(|f| f.revents != 0) {
            break;
        }
    }

    // Stop new hits first, then take every record already in the buffer.
    drop(timers);
    drop(links);
    drain();
    if let Some(c) = &child {
        let mut status = 0;
        // SAFETY: reaps our own child; blocks only if it is still running.
        unsafe {
            if libc::waitpid(c.pid, &mut status, libc::WNOHANG) == 0 {
                libc::kill(c.pid, libc::SIGTERM);
                libc::waitpid(c.pid, &mut status, 0);
            }
        }
    }
    let failed = sink.borrow().errors > opts.max_errors;
    let has_error_probe = obj
        .programs
        .iter()
        .any(|p| matches!(p.attach, Attach::Error { .. }));
    if failed && has_error_probe {
        run_oneshots(&|a| match a {
            Attach::Error { seq } => Some(*seq),
            _ => None,
        })?;
    } else {
        run_oneshots(&|a| match a {
            Attach::End { seq } => Some(*seq),
            _ => None,
        })?;
    }
    drain();
    let report = crate::report::auto_print(&obj.globals, &maps);
    if !report.is_empty() {
        let mut s = sink.borrow_mut();
        let _ = s.out.write_all(report.as_bytes());
        let _ = s.out.flush();
    }

    let lost = kernel::percpu_sum(counters, Counter::LostRecords as u32)?;
    let bpf_errors = kernel::percpu_sum(counters, Counter::Errors as u32)?;
    let skipped = kernel::percpu_sum(counters, Counter::Skipped as u32)?;
    let errors = bpf_errors.max(sink.borrow().errors);
    if lost > 0 {
        eprintln!("WARNING: lost {lost} records: the ring buffer was full");
    }
    if errors > 0 || skipped > 0 {
        eprintln!("WARNING: Number of errors: {errors}, skipped probes: {skipped}");
    }
    Ok(Outcome {
        errors,
        skipped,
        lost,
    })
}

/// `CLOCK_REALTIME − CLOCK_BOOTTIME`, so BPF can turn boot time into wall-clock time.
fn realtime_offset_ns() -> i64 {
    let now = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_BOOTTIME)
}
