//! The only module that talks to the kernel: maps, program loads, links, test runs.

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use rtap_compiler::bpf::insn::Insn;
use rtap_compiler::object::{BpfObject, MapKind, MapSpec, ProgramKind, ProgramSpec};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("rtap needs root, or the CAP_BPF and CAP_PERFMON capabilities, to load BPF programs")]
    Permission,
    #[error("cannot create map `{name}`: {source}")]
    Map {
        name: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("the kernel verifier rejected the program for `{probe}`{at}\n{log}")]
    Verifier {
        probe: String,
        at: String,
        log: String,
    },
    #[error("cannot load the program for `{probe}`: {source}")]
    Load {
        probe: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot attach `{probe}`: {source}")]
    Attach {
        probe: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read map `{name}`: {source}")]
    MapRead {
        name: String,
        #[source]
        source: libbpf_rs::Error,
    },
}

fn is_permission(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// Creates every map of the object, in order, so `MapId(i)` is `maps[i]`.
pub fn create_maps(obj: &BpfObject) -> Result<Vec<MapHandle>, KernelError> {
    obj.maps.iter().map(create_map).collect()
}

fn create_map(spec: &MapSpec) -> Result<MapHandle, KernelError> {
    let ty = match spec.kind {
        MapKind::Hash => MapType::Hash,
        MapKind::Array => MapType::Array,
        MapKind::PercpuHash => MapType::PercpuHash,
        MapKind::PercpuArray => MapType::PercpuArray,
        MapKind::RingBuf => MapType::RingBuf,
        MapKind::TaskStorage => MapType::TaskStorage,
    };
    let mut opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    // Task storage must name its key and value types, and allocates on demand.
    let _btf = if spec.kind == MapKind::TaskStorage {
        use rtap_compiler::bpf::btf;
        let fd = load_btf(&btf::map_btf(spec.value_size)).map_err(|e| KernelError::Map {
            name: spec.name.clone(),
            source: libbpf_rs::Error::from(e),
        })?;
        opts.btf_fd = fd.as_raw_fd() as u32;
        opts.btf_key_type_id = btf::MAP_KEY_TYPE;
        opts.btf_value_type_id = btf::MAP_VALUE_TYPE;
        opts.map_flags = libbpf_sys::BPF_F_NO_PREALLOC;
        Some(fd)
    } else {
        None
    };
    // Kernel map names are limited to 15 characters.
    let name: String = spec
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(15)
        .collect();
    let map = MapHandle::create(
        ty,
        Some(name),
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        &opts,
    )
    .map_err(|source| {
        if source.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            KernelError::Permission
        } else {
            KernelError::Map {
                name: spec.name.clone(),
                source,
            }
        }
    })?;
    // Read-only tables the compiler filled (errno names): one value per key from 0.
    let size = spec.value_size.max(1) as usize;
    for (key, value) in (0u32..).zip(spec.init.chunks(size)) {
        map.update(&key.to_ne_bytes(), value, MapFlags::ANY)
            .map_err(|source| KernelError::Map {
                name: spec.name.clone(),
                source,
            })?;
    }
    Ok(map)
}

/// Replaces map ids in `ld_imm64` pseudo-map-fd instructions with real fds.
fn patch_map_fds(insns: &[Insn], maps: &[MapHandle]) -> Vec<libbpf_sys::bpf_insn> {
    let mut out = Vec::with_capacity(insns.len());
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let mut raw = to_raw(insn);
        // BPF_LD | BPF_IMM | BPF_DW with src = BPF_PSEUDO_MAP_FD.
        if insn.code == 0x18 && (insn.regs >> 4) == 1 {
            if let Some(map) = maps.get(insn.imm as usize) {
                raw.imm = map.as_fd().as_raw_fd();
            }
        }
        if insn.is_kfunc_call() {
            raw.imm = kfunc_btf_id(insn.imm as usize);
        }
        out.push(raw);
        if insn.code == 0x18 {
            if let Some(next) = insns.get(i + 1) {
                out.push(to_raw(*next));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// The BTF id of a kernel function in `KFUNCS`, from the running kernel's BTF (0, which
/// the verifier rejects with a clear message, if the kernel lacks it).
fn kfunc_btf_id(index: usize) -> i32 {
    static IDS: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| {
        // SAFETY: libbpf parses /sys/kernel/btf/vmlinux; the names are NUL-terminated and
        // the handle is freed once the ids are read.
        unsafe {
            let btf = libbpf_sys::btf__load_vmlinux_btf();
            if btf.is_null() {
                return Vec::new();
            }
            let ids = rtap_compiler::object::KFUNCS
                .iter()
                .map(|name| {
                    let c = CString::new(*name).unwrap_or_default();
                    libbpf_sys::btf__find_by_name_kind(btf, c.as_ptr(), libbpf_sys::BTF_KIND_FUNC)
                        .max(0)
                })
                .collect();
            libbpf_sys::btf__free(btf);
            ids
        }
    });
    ids.get(index).copied().unwrap_or(0)
}

fn to_raw(insn: Insn) -> libbpf_sys::bpf_insn {
    let mut raw = libbpf_sys::bpf_insn {
        code: insn.code,
        off: insn.off,
        imm: insn.imm,
        ..Default::default()
    };
    raw.set_dst_reg(insn.regs & 0x0f);
    raw.set_src_reg(insn.regs >> 4);
    raw
}

/// Loads one program; on a verifier rejection, points at the script line of the rejected instruction.
pub fn load_program(spec: &ProgramSpec, maps: &[MapHandle]) -> Result<OwnedFd, KernelError> {
    load_program_as(spec, maps, false)
}

/// Like [`load_program`]; `perf_uprobe` loads a uprobe program for perf-event attach
/// instead of uprobe_multi links (the attach type changes what `bpf_get_func_ip` reads).
pub fn load_program_as(
    spec: &ProgramSpec,
    maps: &[MapHandle],
    perf_uprobe: bool,
) -> Result<OwnedFd, KernelError> {
    let insns = patch_map_fds(&spec.insns, maps);
    let (prog_type, attach_type) = match spec.kind {
        ProgramKind::Uprobe if perf_uprobe => (libbpf_sys::BPF_PROG_TYPE_KPROBE, 0),
        ProgramKind::Uprobe => (
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ),
        ProgramKind::PerfEvent => (libbpf_sys::BPF_PROG_TYPE_PERF_EVENT, 0),
        ProgramKind::RawTracepoint => (libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT, 0),
    };
    let name = CString::new(
        spec.name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(15)
            .collect::<String>(),
    )
    .unwrap_or_default();
    let license = c"GPL";
    // Callbacks need `func_info`, which refers to BTF: the compiler's fixed blob.
    let btf = if spec.subprograms.is_empty() {
        None
    } else {
        Some(load_func_btf().map_err(|source| KernelError::Load {
            probe: spec.probe_point.clone(),
            source,
        })?)
    };
    let func_info = rtap_compiler::bpf::btf::func_info(&spec.subprograms);
    let mut log = vec![0u8; 4 << 20];
    let mut attempt = |with_log: bool| {
        let mut opts = libbpf_sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
            expected_attach_type: attach_type,
            ..Default::default()
        };
        if spec.insns.iter().any(|i| i.is_kfunc_call()) {
            opts.prog_flags |= libbpf_sys::BPF_F_SLEEPABLE;
        }
        if let Some(btf) = &btf {
            opts.prog_btf_fd = btf.as_raw_fd() as u32;
            opts.func_info = func_info.as_ptr().cast();
            opts.func_info_cnt = func_info.len() as u32;
            opts.func_info_rec_size = 8;
        }
        if with_log {
            opts.log_level = 1;
            opts.log_size = log.len() as u32;
            opts.log_buf = log.as_mut_ptr().cast();
        }
        // SAFETY: every pointer refers to a live buffer of the stated size.
        let fd = unsafe {
            libbpf_sys::bpf_prog_load(
                prog_type,
                name.as_ptr(),
                license.as_ptr(),
                insns.as_ptr(),
                insns.len() as _,
                &mut opts,
            )
        };
        if fd < 0 {
            Err(std::io::Error::from_raw_os_error(-fd))
        } else {
            // SAFETY: the kernel just returned this fd to us.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    // Load without a log first: logging slows the verifier down.
    match attempt(false) {
        Ok(fd) => Ok(fd),
        Err(e) if is_permission(&e) && !has_bpf_privileges() => Err(KernelError::Permission),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EINVAL | libc::E2BIG | libc::EFAULT)
            ) =>
        {
            let _ = attempt(true);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            if text.trim().is_empty() {
                return Err(KernelError::Load {
                    probe: spec.probe_point.clone(),
                    source: e,
                });
            }
            Err(KernelError::Verifier {
                probe: spec.probe_point.clone(),
                at: rejected_at(spec, &text),
                log: text,
            })
        }
        Err(source) => Err(KernelError::Load {
            probe: spec.probe_point.clone(),
            source,
        }),
    }
}

/// Loads the BTF that callback programs refer to.
fn load_func_btf() -> std::io::Result<OwnedFd> {
    load_btf(&rtap_compiler::bpf::btf::func_btf())
}

fn load_btf(blob: &[u8]) -> std::io::Result<OwnedFd> {
    let mut opts = libbpf_sys::bpf_btf_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_btf_load_opts>() as _,
        ..Default::default()
    };
    // SAFETY: the blob outlives the call; the kernel copies it.
    let fd = unsafe { libbpf_sys::bpf_btf_load(blob.as_ptr().cast(), blob.len() as _, &mut opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The script line of the last instruction the verifier log mentions.
fn rejected_at(spec: &ProgramSpec, log: &str) -> String {
    let idx = log.lines().rev().find_map(|l| {
        let (n, rest) = l.split_once(": ")?;
        rest.starts_with('(')
            .then(|| n.trim().parse::<u32>().ok())?
    });
    let Some(idx) = idx else {
        return String::new();
    };
    match spec.notes.iter().rev().find(|n| n.insn <= idx) {
        Some(note) => format!(
            " at instruction {idx}, from {}: `{}`",
            note.location, note.text
        ),
        None => format!(" at instruction {idx}"),
    }
}

/// Whether this process may load BPF programs at all.
pub fn has_bpf_privileges() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    // CAP_BPF is 39, CAP_PERFMON 38; CapEff is a hex mask.
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 39) != 0 && caps & (1 << 38) != 0)
}

/// Sums a per-CPU array's `u64` slot over all CPUs.
pub fn percpu_sum(map: &MapHandle, slot: u32) -> Result<u64, KernelError> {
    let values = map
        .lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| KernelError::MapRead {
            name: map.name().to_string_lossy().into_owned(),
            source,
        })?;
    Ok(values
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.get(..8))
        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
        .sum())
}

/// Writes one `u64` slot of an array map.
pub fn array_set(map: &MapHandle, slot: u32, value: u64) -> Result<(), KernelError> {
    map.update(&slot.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| KernelError::MapRead {
            name: map.name().to_string_lossy().into_owned(),
            source,
        })
}

/// Fires a perf-event program every `period_ns` on each listed CPU (a software
/// CPU clock, which ticks whether the CPU is busy or idle). The counters are the links.
pub fn attach_timer(
    prog: &OwnedFd,
    probe: &str,
    period_ns: u64,
    cpus: &[u32],
) -> Result<Vec<perf_event_open::count::Counter>, KernelError> {
    use perf_event_open::config::{All, Cpu, Opts, SampleOn};
    use perf_event_open::count::Counter;
    use perf_event_open::event::sw::Software;
    let err = |source| KernelError::Attach {
        probe: probe.to_string(),
        source,
    };
    let prog_file = std::fs::File::from(prog.try_clone().map_err(err)?);
    let opts = Opts {
        sample_on: SampleOn::Count(period_ns.max(1)),
        enable: true,
        ..Opts::default()
    };
    cpus.iter()
        .map(|&cpu| {
            let c = Counter::new(Software::CpuClock, (Cpu(cpu), All), &opts).map_err(err)?;
            c.attach_bpf(&prog_file).map_err(err)?;
            Ok(c)
        })
        .collect()
}

/// The online CPUs, from `/sys/devices/system/cpu/online` (e.g. `0-3,6`).
pub fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}
