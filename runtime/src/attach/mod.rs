//! Attaching programs: uprobes (uprobe_multi links, or perf events where the kernel
//! lacks them), raw tracepoints, and the processes already running a file when a
//! lifecycle probe starts.

use crate::kernel::{self, KernelError};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use rtap_compiler::object::{Attach, BpfObject, ProgramKind, ProgramSpec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

mod perf;

/// How uprobes are attached (`--uprobe-attach`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UprobeMode {
    /// uprobe_multi links where the kernel has them (Linux 6.6+), else perf events.
    #[default]
    Auto,
    /// Only uprobe_multi links: one per program, however many sites.
    Multi,
    /// One perf event per site on the uprobe PMU.
    Perf,
}

/// Loads and attaches a session's uprobe programs in one mode; in `auto` mode it
/// switches to perf events for the rest of the session when the kernel refuses a
/// uprobe_multi link as unsupported.
pub struct Uprobes {
    mode: UprobeMode,
    perf: bool,
    /// How the programs were loaded; after a fallback each is loaded again for perf.
    loaded_for_perf: bool,
    verbose: bool,
    /// The perf events, when uprobes go through them; closed in the background.
    events: perf::Events,
}

impl Uprobes {
    /// Settles the mode before any program is loaded, since the attach type is part of
    /// the load: `auto` asks the kernel once, and only if `obj` has uprobes.
    pub fn new(mode: UprobeMode, verbose: bool, obj: &BpfObject) -> Uprobes {
        let mut u = Uprobes {
            mode,
            perf: mode == UprobeMode::Perf,
            loaded_for_perf: false,
            verbose,
            events: perf::Events::new(verbose),
        };
        let has_uprobes = obj.programs.iter().any(|p| p.kind == ProgramKind::Uprobe);
        if mode == UprobeMode::Auto && has_uprobes {
            if let Err(why) = uprobe_multi_supported() {
                u.fall_back(&why);
            }
        }
        u.loaded_for_perf = u.perf;
        u
    }

    fn fall_back(&mut self, why: &str) {
        self.perf = true;
        if self.verbose {
            eprintln!("Pass 5: uprobe_multi links are not available ({why}): attaching each uprobe site through a perf event");
        }
    }

    /// Loads one program with the attach type the mode needs.
    pub fn load(&self, spec: &ProgramSpec, maps: &[MapHandle]) -> Result<OwnedFd, KernelError> {
        kernel::load_program_as(spec, maps, self.loaded_for_perf)
    }

    /// Attaches a uprobe program, filtered by pid in the kernel only for `process(PID)`
    /// sites. The returned descriptors are the links. In `auto`
    /// mode a refused uprobe_multi link switches to perf events, for which `prog` (and
    /// each later program) is loaded again.
    pub fn attach(
        &mut self,
        spec: &ProgramSpec,
        prog: &mut OwnedFd,
        maps: &[MapHandle],
    ) -> Result<Vec<OwnedFd>, KernelError> {
        let Attach::Uprobe {
            path,
            offsets,
            retprobe,
            ref_ctr_offsets,
            pid,
        } = &spec.attach
        else {
            return Ok(Vec::new());
        };
        let probe = &spec.probe_point;
        // Only `process(PID)` sites filter in the kernel: the `-c`/`-x` target's
        // process tree is checked by the programs, since the kernel's filter would
        // leave out the target's children.
        let pid = *pid;
        if !self.perf {
            match attach_uprobes(prog, probe, path, offsets, ref_ctr_offsets, *retprobe, pid) {
                Ok(link) => return Ok(vec![link]),
                Err(KernelError::Attach { source, .. })
                    if self.mode == UprobeMode::Auto && means_unsupported(&source) =>
                {
                    self.fall_back(&format!("the kernel refused one: {source}"));
                }
                Err(e) => return Err(e),
            }
        }
        if !self.loaded_for_perf {
            *prog = kernel::load_program_as(spec, maps, true)?;
        }
        self.events
            .attach(prog, probe, path, offsets, ref_ctr_offsets, *retprobe, pid)
    }
}

/// Errors with which kernels without uprobe_multi refuse the link: an unknown attach
/// type or attr field. A real error (a bad path, a gone process) has another errno.
fn means_unsupported(e: &std::io::Error) -> bool {
    /// The kernel-internal `ENOTSUPP`, which some paths leak to user space.
    const ENOTSUPP: i32 = 524;
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | libc::E2BIG | ENOTSUPP)
    )
}

/// Whether uprobe_multi links work and filter by process, asked as libbpf does: a link
/// on `/` must fail with `EBADF` (the type is known), and one with pid -1 with `EINVAL`
/// (kernels before the fix filtered by thread, missing the target's other threads).
pub fn uprobe_multi_supported() -> Result<(), String> {
    let insns = [
        // r0 = 0; exit
        libbpf_sys::bpf_insn {
            code: 0xb7,
            ..Default::default()
        },
        libbpf_sys::bpf_insn {
            code: 0x95,
            ..Default::default()
        },
    ];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: the instructions and the license outlive the call.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            std::ptr::null(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        // Without privileges the real load says so more clearly.
        if matches!(-fd, libc::EPERM | libc::EACCES) {
            return Ok(());
        }
        return Err(format!("a uprobe_multi program does not load: {e}"));
    }
    // SAFETY: the kernel just returned this fd to us.
    let prog = unsafe { OwnedFd::from_raw_fd(fd) };
    let link = |pid| match attach_uprobes(&prog, "", Path::new("/"), &[0], &[], false, pid) {
        Ok(_) => None,
        Err(KernelError::Attach { source, .. }) => source.raw_os_error(),
        Err(_) => None,
    };
    match link(None) {
        Some(libc::EBADF) => {}
        Some(e) => {
            return Err(format!(
                "the kernel refuses the link: {}",
                std::io::Error::from_raw_os_error(e)
            ))
        }
        None => return Err("the kernel's answer to a test link was unexpected".into()),
    }
    match link(Some(u32::MAX)) {
        Some(libc::EINVAL) => Ok(()),
        _ => Err("their pid filter matches a thread, not a process".into()),
    }
}

fn attach_error(probe: &str, source: std::io::Error) -> KernelError {
    KernelError::Attach {
        probe: probe.to_string(),
        source,
    }
}

/// One uprobe_multi link for `offsets` in `path`. `ref_ctr_offsets` (empty, or one per
/// offset, 0 for none) are SDT semaphores: the kernel increments each while the probe
/// is attached, so guarded markers compute their arguments only then.
pub fn attach_uprobes(
    prog: &OwnedFd,
    probe: &str,
    path: &Path,
    offsets: &[u64],
    ref_ctr_offsets: &[u64],
    retprobe: bool,
    pid: Option<u32>,
) -> Result<OwnedFd, KernelError> {
    let err = |source| attach_error(probe, source);
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| err(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    let offs: Vec<libc::c_ulong> = offsets.iter().map(|&o| o as libc::c_ulong).collect();
    let refs: Vec<libc::c_ulong> = ref_ctr_offsets
        .iter()
        .map(|&o| o as libc::c_ulong)
        .collect();
    if !refs.is_empty() && refs.len() != offs.len() {
        return Err(err(std::io::Error::from_raw_os_error(libc::EINVAL)));
    }
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.uprobe_multi =
        libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
            path: cpath.as_ptr(),
            offsets: offs.as_ptr(),
            ref_ctr_offsets: if refs.is_empty() {
                std::ptr::null()
            } else {
                refs.as_ptr()
            },
            cnt: offs.len() as u32,
            flags: if retprobe {
                libbpf_sys::BPF_F_UPROBE_MULTI_RETURN
            } else {
                0
            },
            pid: pid.unwrap_or(0),
            ..Default::default()
        };
    // SAFETY: the path, offsets and counters outlive the call; opts is fully initialised.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            0,
            libbpf_sys::BPF_TRACE_UPROBE_MULTI,
            &opts,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attaches a raw-tracepoint program (`sched_process_exit`, `sys_exit`, ...): no tracefs.
pub fn attach_raw_tracepoint(
    prog: &OwnedFd,
    probe: &str,
    name: &str,
) -> Result<OwnedFd, KernelError> {
    let cname = CString::new(name)
        .map_err(|_| attach_error(probe, std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: the name outlives the call; the program fd is valid.
    let fd = unsafe { libbpf_sys::bpf_raw_tracepoint_open(cname.as_ptr(), prog.as_raw_fd()) };
    if fd < 0 {
        return Err(attach_error(probe, std::io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Records every running process whose executable is `path` in a tgid map, so end
/// and thread probes on the file also see processes that started before rtap.
pub fn add_running_processes(map: &MapHandle, path: &Path) -> Result<(), KernelError> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("exe")).is_ok_and(|exe| exe == path) {
            map.update(&pid.to_ne_bytes(), &1u64.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| KernelError::MapRead {
                    name: map.name().to_string_lossy().into_owned(),
                    source,
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::means_unsupported;
    use std::io::Error;

    #[test]
    fn only_refusals_of_the_link_type_fall_back() {
        for errno in [
            libc::EINVAL,
            libc::EOPNOTSUPP,
            libc::ENOSYS,
            libc::E2BIG,
            524,
        ] {
            assert!(
                means_unsupported(&Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [libc::ENOENT, libc::ESRCH, libc::EPERM, libc::EBADF] {
            assert!(
                !means_unsupported(&Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }
}
