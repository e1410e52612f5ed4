//! Attaching what plain uprobes do not cover: SDT semaphores, raw tracepoints, and
//! the processes already running a file when a lifecycle probe starts.

use crate::kernel::KernelError;
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

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
