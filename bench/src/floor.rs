//! The benchmark floor: an empty BPF program on raw uprobe_multi links, no tracer.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

const USAGE: &str = "usage:
  floor run entry|return|pair BIN SYMBOL -- CMD [ARG...]
      attach an empty program to SYMBOL in BIN (restricted to CMD's pid), run CMD, detach
  floor attach BIN MAX [LINKS [seq|par]]
      attach one empty program to up to MAX function symbols of BIN, in one link or spread over
      LINKS links, then detach (closing the links one after another, or all at once from threads)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() >= 6 && args[4] == "--" => {
            run(&args[1], &args[2], &args[3], &args[5..])
        }
        Some("attach") if (3..=5).contains(&args.len()) => {
            let max = args[2].parse().context("`MAX` must be a number")?;
            let links = match args.get(3) {
                Some(l) => l.parse().context("`LINKS` must be a number")?,
                None => 1,
            };
            let parallel = match args.get(4).map(String::as_str) {
                None | Some("seq") => false,
                Some("par") => true,
                Some(o) => bail!("unknown close order `{o}`: use seq or par"),
            };
            attach_many(&args[1], max, links, parallel)
        }
        _ => bail!("{USAGE}"),
    }
}

/// `r0 = 0; exit`, loaded for uprobe_multi links.
fn load_empty_program() -> Result<OwnedFd> {
    let mut mov = libbpf_sys::bpf_insn {
        code: (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8,
        ..Default::default()
    };
    mov.set_dst_reg(0);
    let exit = libbpf_sys::bpf_insn {
        code: (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8,
        ..Default::default()
    };
    let insns = [mov, exit];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: the instructions and opts outlive the call.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_KPROBE,
            c"floor".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        bail!(
            "cannot load the empty program: {}",
            std::io::Error::from_raw_os_error(-fd)
        );
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One uprobe_multi link for all `offsets`; `pid` 0 means every process.
fn link(prog: &OwnedFd, path: &str, offsets: &[u64], ret: bool, pid: u32) -> Result<OwnedFd> {
    let cpath = CString::new(path)?;
    let offs: Vec<libc::c_ulong> = offsets.iter().map(|&o| o as libc::c_ulong).collect();
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.uprobe_multi =
        libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
            path: cpath.as_ptr(),
            offsets: offs.as_ptr(),
            cnt: offs.len() as u32,
            flags: if ret {
                libbpf_sys::BPF_F_UPROBE_MULTI_RETURN
            } else {
                0
            },
            pid,
            ..Default::default()
        };
    // SAFETY: path and offsets outlive the call.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            0,
            libbpf_sys::BPF_TRACE_UPROBE_MULTI,
            &opts,
        )
    };
    if fd < 0 {
        bail!(
            "cannot attach to `{path}`: {}",
            std::io::Error::from_raw_os_error(-fd)
        );
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// File offsets of function symbols (`want` = one name, or all when `None`), deduplicated.
fn function_offsets(path: &str, want: Option<&str>) -> Result<Vec<u64>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read `{path}`"))?;
    let file = object::File::parse(&*data)?;
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let mut offs = BTreeSet::new();
    let syms = file.symbols().chain(file.dynamic_symbols());
    for sym in syms {
        if sym.kind() != SymbolKind::Text || sym.is_undefined() || sym.size() == 0 {
            continue;
        }
        if want.is_some_and(|w| sym.name() != Ok(w)) {
            continue;
        }
        let addr = sym.address();
        if let Some((base, _, off)) = segments
            .iter()
            .find(|(base, size, _)| addr >= *base && addr < base + size)
        {
            offs.insert(addr - base + off);
        }
    }
    Ok(offs.into_iter().collect())
}

fn run(mode: &str, bin: &str, sym: &str, cmd: &[String]) -> Result<()> {
    let offsets = function_offsets(bin, Some(sym))?;
    if offsets.is_empty() {
        bail!("no function `{sym}` in `{bin}`");
    }
    let (entry, ret) = match mode {
        "entry" => (true, false),
        "return" => (false, true),
        "pair" => (true, true),
        _ => bail!("unknown mode `{mode}`: use entry, return or pair"),
    };
    let prog = load_empty_program()?;
    let child = HeldChild::spawn(cmd)?;
    let mut links = Vec::new();
    if entry {
        links.push(link(&prog, bin, &offsets, false, child.pid as u32)?);
    }
    if ret {
        links.push(link(&prog, bin, &offsets, true, child.pid as u32)?);
    }
    let status = child.run()?;
    drop(links);
    if status != 0 {
        bail!("`{}` exited with status {status}", cmd.join(" "));
    }
    Ok(())
}

fn attach_many(bin: &str, max: usize, links: usize, parallel: bool) -> Result<()> {
    let mut offsets = function_offsets(bin, None)?;
    offsets.truncate(max);
    let prog = load_empty_program()?;
    let t0 = Instant::now();
    let per = offsets.len().div_ceil(links.max(1)).max(1);
    let fds = offsets
        .chunks(per)
        .map(|c| link(&prog, bin, c, false, 0))
        .collect::<Result<Vec<_>>>()?;
    let t1 = Instant::now();
    let n = fds.len();
    if parallel {
        // Each close waits for a grace period; concurrent closes share them.
        std::thread::scope(|s| {
            for fd in fds {
                s.spawn(move || drop(fd));
            }
        });
    } else {
        drop(fds);
    }
    let t2 = Instant::now();
    println!(
        "probes={} links={n} attach_ms={:.1} detach_ms={:.1}",
        offsets.len(),
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3
    );
    Ok(())
}

/// A child forked and held before `exec` until the links exist, as `rtap -c` does.
struct HeldChild {
    pid: libc::pid_t,
    go: OwnedFd,
}

impl HeldChild {
    fn spawn(cmd: &[String]) -> Result<HeldChild> {
        let argv: Vec<CString> = cmd
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            bail!("pipe: {}", std::io::Error::last_os_error());
        }
        // SAFETY: the child calls only async-signal-safe functions before exec.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: read, execvp and _exit are async-signal-safe.
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                if libc::read(fds[0], (&mut b as *mut u8).cast(), 1) == 1 {
                    libc::execvp(ptrs[0], ptrs.as_ptr());
                }
                libc::_exit(127);
            }
        }
        // SAFETY: both fds came from pipe2; we keep the write end.
        unsafe { libc::close(fds[0]) };
        Ok(HeldChild {
            pid,
            // SAFETY: the write end is ours.
            go: unsafe { OwnedFd::from_raw_fd(fds[1]) },
        })
    }

    /// Lets the child exec and waits for it; returns its exit status.
    fn run(self) -> Result<i32> {
        let b = [1u8];
        // SAFETY: a valid pipe write end.
        if unsafe { libc::write(self.go.as_raw_fd(), b.as_ptr().cast(), 1) } != 1 {
            bail!(
                "cannot release the child: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        if unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0 {
            bail!("waitpid: {}", std::io::Error::last_os_error());
        }
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        })
    }
}
