//! A tracing session: load → begin → attach → run the target → poll → end → report.

use crate::events;
use crate::format::{self, Value};
use crate::interp::{HostError, Interp, KernelStore, Phase};
use crate::kernel::{self, KernelError};
use rtap_compiler::host::{HostHandler, HostWhen};
use rtap_compiler::object::{
    Attach, BpfObject, ConfigSlot, Counter, EventKind, ProgramKind, RECORD_HEADER,
};
use rtap_lang::printf::Format;
use std::cell::RefCell;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
    /// `--json`: printf records as JSON objects, one per line.
    pub json: bool,
    /// `-D MAXERRORS=N`: the session ends after more errors than this.
    pub max_errors: u64,
    /// `-D MAXSKIPPED=N`: the session ends after more skipped hits than this.
    pub max_skipped: u64,
    /// `--uprobe-attach`: uprobe_multi links, perf events, or the first that works.
    pub uprobe_mode: crate::attach::UprobeMode,
    /// `-v`: say how uprobes were attached when it is not the default way.
    pub verbose: bool,
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
    /// `--json`: one object per printf record instead of its text.
    json: bool,
    /// Added to `bpf_ktime_get_boot_ns()` for wall-clock time.
    realtime_offset_ns: i64,
    /// Turns stacks and addresses into text.
    symbols: crate::symbolize::Symbolizer,
    /// `abort()` ran in a probe: the session ends without `end` probes.
    aborted: bool,
    /// `MAXERRORS`: past it the session is stopping, and records already in the
    /// buffer are counted but not printed, as if the probes had stopped at once.
    max_errors: u64,
}

impl Sink {
    fn record(&mut self, obj: &BpfObject, maps: &[libbpf_rs::MapHandle], rec: &[u8]) {
        // After `abort()` nothing more happens, whatever other hits left in the buffer.
        if self.aborted {
            return;
        }
        if self.errors > self.max_errors {
            if let Some(EventKind::Error { .. }) = events::event_id(rec)
                .ok()
                .and_then(|id| obj.events.get(id as usize))
                .map(|e| &e.kind)
            {
                self.errors += 1;
            }
            return;
        }
        let spec = events::event_id(rec)
            .ok()
            .and_then(|id| obj.events.get(id as usize));
        let Some(spec) = spec else {
            eprintln!("WARNING: ignoring a record with an unknown event id");
            return;
        };
        match &spec.kind {
            EventKind::Printf(fmt) => match events::decode(spec, rec) {
                Ok(values) => self.printf(obj, rec, fmt, &values),
                Err(e) => eprintln!("WARNING: {}", e.0),
            },
            EventKind::SymbolicPrintf {
                format,
                symbolic,
                max_len,
            } => {
                let pid = events::context(rec).pid;
                let texts = events::symbolic_texts(spec, symbolic, rec, |s, field| {
                    self.symbols.text(s, pid, field, *max_len)
                });
                let texts: Vec<Option<Vec<u8>>> = texts
                    .into_iter()
                    .map(|t| match t {
                        Some(Err(message)) => {
                            self.errors += 1;
                            let _ = self.out.flush();
                            eprintln!("ERROR: {message}");
                            Some(Vec::new())
                        }
                        Some(Ok(text)) => Some(text),
                        None => None,
                    })
                    .collect();
                match events::decode(spec, rec) {
                    Ok(mut values) => {
                        for (v, t) in values.iter_mut().zip(&texts) {
                            if let Some(t) = t {
                                *v = Value::Str(t);
                            }
                        }
                        self.printf(obj, rec, format, &values);
                    }
                    Err(e) => eprintln!("WARNING: {}", e.0),
                }
            }
            EventKind::Error { message, location } => {
                self.errors += 1;
                // `{addr}` in the message stands for the record's first long field.
                // `{addr}` stands for a faulting address, `{str}` for a message computed
                // at run time (`error(msg)`).
                let text = match events::decode(spec, rec).ok().as_deref() {
                    Some([Value::Long(addr), ..]) => {
                        message.replace("{addr}", &format!("0x{addr:x}"))
                    }
                    Some([Value::Str(s), ..]) => {
                        message.replace("{str}", &String::from_utf8_lossy(s))
                    }
                    _ => message.clone(),
                };
                let _ = self.out.flush();
                eprintln!("ERROR: {text} near {location}");
            }
            EventKind::Exit => self.exit_requested = true,
            EventKind::Warn => {
                if let Ok(values) = events::decode(spec, rec) {
                    if let Some(Value::Str(s)) = values.first() {
                        let _ = self.out.flush();
                        eprintln!("WARNING: {}", String::from_utf8_lossy(s));
                    }
                }
            }
            EventKind::PrintHist {
                global,
                newline,
                location,
            } => match hist_text(obj, maps, *global as usize, rec) {
                Some(mut text) => {
                    if *newline {
                        text.push('\n');
                    }
                    let _ = self.out.write_all(text.as_bytes());
                }
                None => {
                    self.errors += 1;
                    let _ = self.out.flush();
                    eprintln!("ERROR: empty aggregate near {location}");
                }
            },
            EventKind::Abort => {
                self.exit_requested = true;
                self.aborted = true;
            }
        }
    }

    /// Writes a printf record's text, or its `--json` form.
    fn printf(&mut self, obj: &BpfObject, rec: &[u8], fmt: &Format, values: &[Value<'_>]) {
        self.buf.clear();
        format::format(fmt, values, &mut self.buf);
        if self.json {
            let line = self.json_line(obj, rec, values);
            let _ = writeln!(self.out, "{line}");
        } else {
            let _ = self.out.write_all(&self.buf);
        }
    }

    /// The `--json` form of a printf record whose text is in `self.buf`.
    fn json_line(&self, obj: &BpfObject, rec: &[u8], values: &[Value<'_>]) -> serde_json::Value {
        let ctx = events::context(rec);
        let args: Vec<serde_json::Value> = values
            .iter()
            .map(|v| match v {
                Value::Long(n) => serde_json::json!(n),
                Value::Str(s) => serde_json::json!(String::from_utf8_lossy(s)),
            })
            .collect();
        serde_json::json!({
            "probe": obj.probe_points.get(ctx.probe as usize),
            "pid": ctx.pid,
            "tid": ctx.tid,
            "timestamp_ns": ctx.boot_ns.wrapping_add(self.realtime_offset_ns),
            "text": String::from_utf8_lossy(&self.buf),
            "args": args,
        })
    }
}

/// Closes links in parallel: each close waits for an RCU grace period (tens of
/// milliseconds), so a thousand links closed in turn would take a minute.
fn detach<L: Send>(links: Vec<L>) {
    const THREADS: usize = 256;
    let per = links.len().div_ceil(THREADS).max(1);
    let mut links = links;
    std::thread::scope(|s| {
        while !links.is_empty() {
            let chunk: Vec<L> = links.drain(..per.min(links.len())).collect();
            s.spawn(move || drop(chunk));
        }
    });
}

/// The histogram a `PrintHist` record asks for, read from the live map; `None` when
/// the statistic is empty.
fn hist_text(
    obj: &BpfObject,
    maps: &[libbpf_rs::MapHandle],
    global: usize,
    rec: &[u8],
) -> Option<String> {
    use libbpf_rs::{MapCore, MapFlags};
    let spec = obj.globals.get(global)?;
    let layout = spec.hist?;
    let (map, key) = if spec.keys.is_empty() {
        (spec.map, 0u32.to_ne_bytes().to_vec())
    } else {
        let size = obj.maps[spec.map.0 as usize].key_size as usize;
        spec.place(rec.get(RECORD_HEADER as usize..RECORD_HEADER as usize + size)?)
    };
    let per_cpu = maps[map.0 as usize]
        .lookup_percpu(&key, MapFlags::ANY)
        .ok()??;
    let stats = crate::interp::merge(&per_cpu, layout.buckets());
    let text = crate::interp::hist::render(layout, &stats.buckets);
    (!text.is_empty()).then_some(text)
}

/// How often the ring buffer is read: printf records do not wake the reader until
/// the buffer fills up, so this bounds how late output can appear.
const POLL_MS: u128 = 20;

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
        json: opts.json,
        realtime_offset_ns: realtime_offset_ns(),
        max_errors: opts.max_errors,
        aborted: false,
        symbols: crate::symbolize::Symbolizer::new(obj)
            .with_target(opts.command.as_deref(), opts.pid),
    }));

    let maps = kernel::create_maps(obj)?;
    let mut uprobes = crate::attach::Uprobes::new(opts.uprobe_mode, opts.verbose, obj);
    let mut progs = Vec::with_capacity(obj.programs.len());
    for p in &obj.programs {
        progs.push(uprobes.load(p, &maps)?);
    }

    let mut rb = libbpf_rs::RingBufferBuilder::new();
    {
        let sink = Rc::clone(&sink);
        let maps = &maps;
        rb.add(&maps[obj.ringbuf.0 as usize], move |rec: &[u8]| {
            sink.borrow_mut().record(obj, maps, rec);
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
    let (tz_offset, tz_name) = local_zone();
    kernel::array_set(config, ConfigSlot::TzOffsetSecs as u32, tz_offset as u64)?;
    kernel::array_set(config, ConfigSlot::TzName as u32, tz_name)?;
    let store = KernelStore {
        maps: &maps,
        cpus: libbpf_rs::num_possible_cpus().unwrap_or(1),
    };
    let mut interp = Interp::new(obj, store);
    interp.target = target.unwrap_or(0);
    interp.init_globals();
    // A second Ctrl-C stops a long-running `end` handler.
    signal_hook::flag::register(libc::SIGINT, Arc::clone(&interp.interrupted))?;

    // Runs host handlers in order, each after the records already queued, so output
    // keeps the order in which things happened.
    let run_host = |interp: &mut Interp<'_, KernelStore<'_>>, handlers: &[&HostHandler]| {
        for h in handlers {
            drain();
            let r = interp.run(h);
            let mut s = sink.borrow_mut();
            let _ = s.out.write_all(&std::mem::take(&mut interp.out));
            if interp.exit_requested {
                s.exit_requested = true;
            }
            if let Err(HostError { message, location }) = r {
                s.errors += 1;
                let _ = s.out.flush();
                eprintln!("ERROR: {message} near {location}");
                if s.errors > opts.max_errors {
                    break;
                }
            }
        }
        drain();
    };
    let begin = interp.handlers(Phase::Begin);
    run_host(&mut interp, &begin);
    let mut timers_host: Vec<(Instant, &HostHandler)> = obj
        .host
        .handlers
        .iter()
        .filter_map(|h| match h.when {
            HostWhen::Timer { .. } => Some((next_fire(Instant::now(), h), h)),
            _ => None,
        })
        .collect();

    let mut links = Vec::new();
    let mut timers = Vec::new();
    let begin_failed = sink.borrow().errors > opts.max_errors;
    // Processes started from here on are the armed probes' to report.
    let armed_ns = crate::interp::task::boot_ns();
    if !sink.borrow().exit_requested && !begin_failed {
        for (p, fd) in obj.programs.iter().zip(progs.iter_mut()) {
            match (p.kind, &p.attach) {
                (ProgramKind::Uprobe, Attach::Uprobe { .. }) => {
                    links.extend(uprobes.attach(p, fd, &maps)?)
                }
                (
                    ProgramKind::RawTracepoint,
                    Attach::RawTracepoint {
                        name,
                        tgids,
                        target_only,
                    },
                ) => {
                    if *target_only && target.is_none() {
                        continue;
                    }
                    if let Some((map, path)) = tgids {
                        crate::attach::add_running_processes(&maps[map.0 as usize], path)?;
                    }
                    links.push(crate::attach::attach_raw_tracepoint(
                        fd,
                        &p.probe_point,
                        name,
                    )?);
                }
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

    // `.begin` of the processes already running, once the probes are armed, as
    // SystemTap's task finder does; each runs with that process as its context.
    if !sink.borrow().exit_requested && !begin_failed {
        let scope = match (&opts.command, opts.pid) {
            (Some(_), _) => crate::interp::task::Scope::Command,
            (None, Some(pid)) => crate::interp::task::Scope::Target(pid),
            (None, None) => crate::interp::task::Scope::All,
        };
        for (h, pid) in interp.running_begins(scope, armed_ns) {
            interp.task = Some(pid);
            run_host(&mut interp, &[h]);
        }
        interp.task = None;
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
        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            break;
        }
        let wake = timers_host
            .iter()
            .map(|t| t.0)
            .chain(deadline)
            .min()
            .map_or(POLL_MS, |w| {
                w.saturating_duration_since(now).as_millis().min(POLL_MS)
            });
        let timeout_ms = wake as i32;
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
        if kernel::percpu_sum(counters, Counter::Skipped as u32)? > opts.max_skipped {
            let _ = sink.borrow_mut().out.flush();
            eprintln!("ERROR: Skipped too many probes, check MAXSKIPPED");
            sink.borrow_mut().errors += 1;
            break;
        }
        let now = Instant::now();
        for t in timers_host.iter_mut().filter(|t| t.0 <= now) {
            run_host(&mut interp, &[t.1]);
            t.0 = next_fire(t.0.max(now - Duration::from_millis(100)), t.1);
        }
        if fds.get(2).is_some_and(|f| f.revents != 0) {
            break;
        }
    }

    // Stop new hits first, then take every record already in the buffer.
    drop(timers);
    detach(links);
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
    // End handlers run to completion unless Ctrl-C is pressed again.
    interp.interrupted.store(false, Ordering::Relaxed);
    let failed = sink.borrow().errors > opts.max_errors;
    let errors_handlers = interp.handlers(Phase::Error);
    if failed && !errors_handlers.is_empty() {
        run_host(&mut interp, &errors_handlers);
    } else if !interp.aborted && !sink.borrow().aborted {
        let end = interp.handlers(Phase::End);
        run_host(&mut interp, &end);
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

/// When a host timer fires next after `from`: its period, randomized by ±`randomize_ns`.
fn next_fire(from: Instant, h: &HostHandler) -> Instant {
    let HostWhen::Timer {
        period_ns,
        randomize_ns,
    } = h.when
    else {
        return from;
    };
    let jitter = if randomize_ns > 0 {
        fastrand::i64(-(randomize_ns as i64)..=randomize_ns as i64)
    } else {
        0
    };
    from + Duration::from_nanos((period_ns as i64 + jitter).max(1) as u64)
}

/// The local zone's UTC offset in seconds and its abbreviation (8 bytes, NUL-padded,
/// as a native-endian `u64`), for `tz_ctime` in BPF.
fn local_zone() -> (i64, u64) {
    // SAFETY: time and localtime_r fill plain data; tm_zone points to a static string.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, u64::from_ne_bytes(*b"UTC\0\0\0\0\0"));
        }
        let mut name = [0u8; 8];
        if !tm.tm_zone.is_null() {
            let z = std::ffi::CStr::from_ptr(tm.tm_zone).to_bytes();
            let n = z.len().min(7);
            name[..n].copy_from_slice(&z[..n]);
        }
        (tm.tm_gmtoff, u64::from_ne_bytes(name))
    }
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
