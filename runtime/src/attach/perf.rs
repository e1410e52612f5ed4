//! Uprobes as perf events on the uprobe PMU, one per site: the fallback where the
//! kernel has no uprobe_multi links.

use crate::kernel::KernelError;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

const PMU_DIR: &str = "/sys/bus/event_source/devices/uprobe";
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)` from `linux/perf_event.h`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;

/// A bit field of `perf_event_attr.config`, as a PMU's `format/` file describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    lo: u32,
    bits: u32,
}

impl Field {
    /// Parses `config:0` or `config:32-63`; other attr words are not expected here.
    fn parse(text: &str) -> Option<Field> {
        let range = text.trim().strip_prefix("config:")?;
        let (lo, hi) = match range.split_once('-') {
            Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
            None => {
                let b = range.parse().ok()?;
                (b, b)
            }
        };
        (lo <= hi && hi < 64).then(|| Field {
            lo,
            bits: hi - lo + 1,
        })
    }

    /// `value` placed in the field, or `None` if it does not fit.
    fn encode(self, value: u64) -> Option<u64> {
        (self.bits == 64 || value >> self.bits == 0).then(|| value << self.lo)
    }
}

/// What the kernel says about its uprobe PMU in sysfs.
#[derive(Debug)]
struct Pmu {
    ty: u32,
    retprobe: Field,
    /// Missing before Linux 4.20, which had no SDT semaphore support.
    ref_ctr_offset: Option<Field>,
}

fn read_pmu() -> io::Result<Pmu> {
    let read = |name: &str| std::fs::read_to_string(Path::new(PMU_DIR).join(name));
    let bad = |name: &str| {
        io::Error::other(format!(
            "cannot parse `{PMU_DIR}/{name}` (the uprobe perf PMU)"
        ))
    };
    let ty = read("type")?.trim().parse().map_err(|_| bad("type"))?;
    let retprobe = Field::parse(&read("format/retprobe")?).ok_or_else(|| bad("format/retprobe"))?;
    let ref_ctr_offset = match read("format/ref_ctr_offset") {
        Ok(t) => Some(Field::parse(&t).ok_or_else(|| bad("format/ref_ctr_offset"))?),
        Err(_) => None,
    };
    Ok(Pmu {
        ty,
        retprobe,
        ref_ctr_offset,
    })
}

fn pmu() -> io::Result<&'static Pmu> {
    static PMU: OnceLock<Result<Pmu, String>> = OnceLock::new();
    PMU.get_or_init(|| {
        read_pmu().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                format!("the kernel has no uprobe perf PMU (`{PMU_DIR}` is missing)")
            }
            _ => e.to_string(),
        })
    })
    .as_ref()
    .map_err(|e| io::Error::other(e.clone()))
}

/// The perf events of a session's uprobes. Closing one takes the kernel about 0.1 s
/// (a few RCU grace periods under a global mutex, so closes cannot overlap), which for
/// a thousand sites is minutes: once the session is over, they are closed by a
/// detached process, and rtap exits at once.
pub struct Events {
    fds: Vec<OwnedFd>,
    /// `-v`: say where the closing went.
    verbose: bool,
}

impl Events {
    pub fn new(verbose: bool) -> Events {
        Events {
            fds: Vec::new(),
            verbose,
        }
    }

    /// Attaches `prog` to each offset of `path` through its own uprobe perf event, and
    /// returns the BPF links, whose closing stops the program at once; the events stay
    /// here. `ref_ctr_offsets` and `pid` mean what they mean for
    /// [`attach_uprobes`](super::attach_uprobes). With a pid the event follows that
    /// task, and the kernel filters hits by its address space, so every thread of the
    /// process (and the program it execs) is traced, and nothing else.
    #[allow(clippy::too_many_arguments)]
    pub fn attach(
        &mut self,
        prog: &OwnedFd,
        probe: &str,
        path: &Path,
        offsets: &[u64],
        ref_ctr_offsets: &[u64],
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<Vec<OwnedFd>, KernelError> {
        let err = |source| KernelError::Attach {
            probe: probe.to_string(),
            source,
        };
        let pmu = pmu().map_err(err)?;
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        if !ref_ctr_offsets.is_empty() && ref_ctr_offsets.len() != offsets.len() {
            return Err(err(io::Error::from_raw_os_error(libc::EINVAL)));
        }
        // A system-wide uprobe event still needs one CPU; the program runs on every CPU.
        let (pid, cpu) = match pid {
            Some(p) => (p as libc::pid_t, -1),
            None => (-1, crate::kernel::online_cpus()[0] as libc::c_int),
        };
        raise_nofile(2 * offsets.len());
        let mut links = Vec::with_capacity(offsets.len());
        for (i, &offset) in offsets.iter().enumerate() {
            let ref_ctr = ref_ctr_offsets.get(i).copied().unwrap_or(0);
            let mut config = 0;
            if retprobe {
                config |= pmu.retprobe.encode(1).unwrap_or(0);
            }
            if ref_ctr != 0 {
                let Some(field) = pmu.ref_ctr_offset else {
                    return Err(err(io::Error::other(
                        "the kernel's uprobe PMU has no `ref_ctr_offset`: SDT semaphores need Linux 4.20",
                    )));
                };
                config |= field.encode(ref_ctr).ok_or_else(|| {
                    err(io::Error::other(format!(
                        "semaphore offset 0x{ref_ctr:x} does not fit the uprobe PMU's `ref_ctr_offset`"
                    )))
                })?;
            }
            let event = open_event(pmu.ty, config, &cpath, offset, pid, cpu).map_err(|e| {
                err(match e.raw_os_error() {
                    Some(libc::EMFILE) => io::Error::other(format!(
                        "too many open files: perf-event uprobes need two descriptors per site ({} here); raise the hard limit (`ulimit -Hn`)",
                        offsets.len()
                    )),
                    _ => e,
                })
            })?;
            let link = set_bpf(&event, prog).map_err(err)?;
            self.fds.push(event);
            links.extend(link);
        }
        Ok(links)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let fds = std::mem::take(&mut self.fds);
        if fds.is_empty() {
            return;
        }
        let n = fds.len();
        match close_detached(&fds) {
            Ok((pid, gate)) => {
                // The helper holds them: these closes only drop a reference.
                drop(fds);
                drop(gate);
                if self.verbose {
                    eprintln!(
                        "Pass 5: process {pid} closes the {n} uprobe perf events in the background"
                    );
                }
            }
            // Without a helper process, close them here, however long it takes.
            Err(e) => {
                if self.verbose {
                    eprintln!("Pass 5: closing {n} uprobe perf events here: {e}");
                }
                drop(fds);
            }
        }
    }
}

/// Starts a process, detached from rtap's session and output, that closes `fds` once
/// the returned gate is closed (after rtap's own copies); returns its pid and the gate.
fn close_detached(fds: &[OwnedFd]) -> io::Result<(libc::pid_t, OwnedFd)> {
    let mut keep: Vec<libc::c_int> = fds.iter().map(|f| f.as_raw_fd()).collect();
    keep.sort_unstable();
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(0, 1 << 20) as libc::c_int;
    let (read, write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    // SAFETY: the children only make async-signal-safe calls; `keep` was built before.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        // SAFETY: fork, setsid, write, read, open, dup2, close and _exit are async-signal-safe.
        unsafe {
            // A grandchild, so that rtap never has to reap it.
            let pid = libc::fork();
            if pid != 0 {
                libc::write(
                    report_write.as_raw_fd(),
                    (&pid as *const libc::pid_t).cast(),
                    4,
                );
                libc::_exit(0);
            }
            libc::setsid();
            libc::prctl(libc::PR_SET_NAME, c"rtap-detach".as_ptr());
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for std_fd in 0..3 {
                libc::dup2(null, std_fd);
            }
            // Everything but the events and the pipe it waits on goes, so no pipe or
            // file of rtap's stays open on its behalf.
            let wait = read.as_raw_fd();
            for fd in 3..max {
                if fd != wait && keep.binary_search(&fd).is_err() {
                    libc::close(fd);
                }
            }
            // Wait until rtap has closed its copies, so the last reference, and the
            // slow teardown, is always this process's.
            let mut b = 0u8;
            while libc::read(wait, (&mut b as *mut u8).cast(), 1) > 0 {}
            for &fd in &keep {
                libc::close(fd);
            }
            libc::_exit(0);
        }
    }
    drop(read);
    drop(report_write);
    let mut status = 0;
    // SAFETY: reaps the intermediate child, which exits at once.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let mut pid: libc::pid_t = 0;
    // SAFETY: pid is 4 writable bytes.
    let n = unsafe {
        libc::read(
            report_read.as_raw_fd(),
            (&mut pid as *mut libc::pid_t).cast(),
            4,
        )
    };
    if n != 4 || pid <= 0 {
        return Err(io::Error::other("the helper process did not start"));
    }
    Ok((pid, write))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds came from pipe2 and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Opens one disabled uprobe event.
fn open_event(
    ty: u32,
    config: u64,
    path: &CString,
    offset: u64,
    pid: libc::pid_t,
    cpu: libc::c_int,
) -> io::Result<OwnedFd> {
    let mut attr = libbpf_sys::perf_event_attr {
        type_: ty,
        size: std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32,
        config,
        ..Default::default()
    };
    attr.__bindgen_anon_3.uprobe_path = path.as_ptr() as u64;
    attr.__bindgen_anon_4.probe_offset = offset;
    attr.set_disabled(1);
    // SAFETY: attr and the path it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const libbpf_sys::perf_event_attr,
            pid,
            cpu,
            -1,
            libbpf_sys::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether `BPF_LINK_CREATE` takes perf events (Linux 5.15+); else the ioctl is used.
static PERF_LINKS: AtomicBool = AtomicBool::new(true);

/// Runs `prog` on every hit of the event, through a BPF link where the kernel has them
/// (returned), else through `PERF_EVENT_IOC_SET_BPF`; then enables the event.
fn set_bpf(event: &OwnedFd, prog: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let mut link = None;
    if PERF_LINKS.load(Ordering::Relaxed) {
        let opts = libbpf_sys::bpf_link_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
            ..Default::default()
        };
        // SAFETY: both fds are valid; opts is fully initialised.
        let fd = unsafe {
            libbpf_sys::bpf_link_create(
                prog.as_raw_fd(),
                event.as_raw_fd(),
                libbpf_sys::BPF_PERF_EVENT,
                &opts,
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd to us.
            link = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        } else if matches!(-fd, libc::EINVAL | libc::EOPNOTSUPP | libc::E2BIG) {
            PERF_LINKS.store(false, Ordering::Relaxed);
        } else {
            return Err(io::Error::from_raw_os_error(-fd));
        }
    }
    // SAFETY: both fds are valid; the ioctls take an int and nothing.
    unsafe {
        if link.is_none()
            && libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(link)
}

/// Raises the soft descriptor limit toward the hard one when `more` new descriptors
/// would not fit. The `-c` child is forked before attach, so it keeps the usual limit.
fn raise_nofile(more: usize) {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let need = (open + more + 64) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= need {
        return;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: lim is a valid rlimit; a failure leaves the old limit, and EMFILE says why.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}

#[cfg(test)]
mod tests {
    use super::Field;

    #[test]
    fn parses_format_fields() {
        assert_eq!(Field::parse("config:0\n"), Some(Field { lo: 0, bits: 1 }));
        assert_eq!(
            Field::parse("config:32-63\n"),
            Some(Field { lo: 32, bits: 32 })
        );
        assert_eq!(Field::parse("config1:0-63"), None);
        assert_eq!(Field::parse("config:9-3"), None);
    }

    #[test]
    fn encodes_within_the_field() {
        let f = Field { lo: 32, bits: 32 };
        assert_eq!(f.encode(0x1234), Some(0x1234 << 32));
        assert_eq!(f.encode(1 << 32), None);
        assert_eq!(Field { lo: 0, bits: 1 }.encode(1), Some(1));
    }
}
