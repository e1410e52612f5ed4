//! User-space symbolization of the stacks and addresses BPF captured: build ids and
//! `/proc/PID/maps` name the file, blazesym turns a file offset into `sym+off/size`.
//!
//! Files are found by build id among those the object attaches to, the files seen in
//! the maps of processes that sent records (kept after they exit), and, when that
//! fails, the libraries those files need and the ones rtap itself maps.

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer as Blaze};
use rtap_compiler::object::{
    AddrStyle, Attach, BpfObject, Symbolic, BUILD_ID_FRAME, MAX_BACKTRACE,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

mod files;
mod text;

use files::{load_segments, needed_libraries, read_maps, Mapping, Segment};
use text::frame_text;
pub use text::{parse_hex_stack, stack_text};

/// `BPF_STACK_BUILD_ID_VALID`: the frame holds a build id and a file offset.
const BUILD_ID_VALID: i32 = 1;
/// `BPF_BUILD_ID_SIZE`.
const BUILD_ID_BYTES: usize = 20;

/// One frame or address, resolved as far as possible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The address in the process (a file offset when the mapping is unknown).
    pub addr: u64,
    /// Symbol name, the address's offset in it, and its size.
    pub sym: Option<(String, u64, u64)>,
    /// The file holding the address, and the address's file offset in it.
    pub module: Option<(PathBuf, u64)>,
}

pub struct Symbolizer {
    blaze: Blaze,
    by_build_id: HashMap<Vec<u8>, PathBuf>,
    /// Files whose build id has been read.
    read: HashSet<PathBuf>,
    /// Files to read when an unknown build id shows up, and whether that was done.
    fallback: Vec<PathBuf>,
    fallback_done: bool,
    /// Mappings of each process seen, kept after it exits.
    maps: HashMap<u32, Vec<Mapping>>,
    /// Load biases (runtime address less link-time address) of files in each
    /// process, learnt from build-id frames: they place addresses once it is gone.
    biases: HashMap<u32, Vec<(PathBuf, u64)>>,
    /// `PT_LOAD` segments of each file read: offset, address, file and memory sizes.
    segments: HashMap<PathBuf, Vec<Segment>>,
}

impl Symbolizer {
    /// A symbolizer that knows the files `obj` attaches to; nothing is read until needed.
    pub fn new(obj: &BpfObject) -> Symbolizer {
        let fallback = obj
            .programs
            .iter()
            .filter_map(|p| match &p.attach {
                Attach::Uprobe { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        Symbolizer {
            blaze: Blaze::new(),
            by_build_id: HashMap::new(),
            read: HashSet::new(),
            fallback,
            fallback_done: false,
            maps: HashMap::new(),
            biases: HashMap::new(),
            segments: HashMap::new(),
        }
    }

    /// Also knows the session's target: the executables named by the `-c` command
    /// (it may exit before its records are read) and the mappings of the `-x` process.
    pub fn with_target(mut self, command: Option<&str>, pid: Option<u32>) -> Symbolizer {
        for (i, word) in command.unwrap_or_default().split_whitespace().enumerate() {
            let found = if word.contains('/') {
                Some(PathBuf::from(word))
            } else if i == 0 {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join(word))
                        .find(|p| p.is_file())
                })
            } else {
                None
            };
            if let Some(p) = found.filter(|p| p.is_file()) {
                self.fallback.push(p.canonicalize().unwrap_or(p));
            }
        }
        if let Some(pid) = pid {
            if let Some(maps) = read_maps(pid) {
                self.learn(pid, &maps);
                self.maps.insert(pid, maps);
            }
        }
        self
    }

    /// The text a symbolic field of a record from process `pid` stands for; an error
    /// message when SystemTap would raise one (`umodname` of an unmapped address).
    pub fn text(
        &mut self,
        s: Symbolic,
        pid: u32,
        field: &[u8],
        max_len: u32,
    ) -> Result<Vec<u8>, String> {
        let max = max_len.saturating_sub(1) as usize;
        Ok(match s {
            Symbolic::Stack(style) => {
                let frames = self.stack(pid, field, MAX_BACKTRACE as usize);
                stack_text(&frames, style, max)
            }
            Symbolic::HexStack(style) => {
                let text_len = (max + 1).div_ceil(8) * 8;
                self.stack(
                    pid,
                    field.get(text_len..).unwrap_or_default(),
                    MAX_BACKTRACE as usize,
                );
                let field = field.get(..text_len).unwrap_or(field);
                let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
                let frames: Vec<Frame> = parse_hex_stack(&field[..end])
                    .into_iter()
                    .map(|a| self.address(pid, a))
                    .collect();
                stack_text(&frames, style, max)
            }
            Symbolic::Addr(style) => {
                let addr = long_at(field, 0);
                self.stack(
                    pid,
                    field.get(8..).unwrap_or_default(),
                    MAX_BACKTRACE as usize,
                );
                let f = self.address(pid, addr);
                let mut text = match style {
                    AddrStyle::Name => match &f.sym {
                        Some((name, ..)) => name.clone().into_bytes(),
                        None => format!("0x{addr:x}").into_bytes(),
                    },
                    AddrStyle::Data => frame_text(&f, false, false).into_bytes(),
                    AddrStyle::Module => match &f.module {
                        Some((path, _)) => path.to_string_lossy().into_owned().into_bytes(),
                        None => return Err(format!("no module contains user address 0x{addr:x}")),
                    },
                };
                text.truncate(max);
                text
            }
        })
    }

    /// The frames of a stack area of `max` frames (see `USTACK_BYTES`).
    pub fn stack(&mut self, pid: u32, area: &[u8], max: usize) -> Vec<Frame> {
        let n_ips = (long_at(area, 0) as usize).min(max);
        let ids_at = 8 + 8 * max;
        let n_ids = (long_at(area, ids_at) as usize).min(max);
        let sp = long_at(area, ids_at + 8 + BUILD_ID_FRAME as usize * max);
        let mut frames = Vec::with_capacity(n_ips + 1);
        for i in 0..n_ips {
            let ip = long_at(area, 8 + 8 * i);
            let id = (i < n_ids).then(|| {
                let at = ids_at + 8 + BUILD_ID_FRAME as usize * i;
                let status = i32::from_ne_bytes(
                    area.get(at..at + 4)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or_default(),
                );
                (
                    status,
                    area.get(at + 4..at + 4 + BUILD_ID_BYTES)
                        .unwrap_or_default(),
                    long_at(area, at + 24),
                )
            });
            let frame = match id {
                Some((BUILD_ID_VALID, build_id, offset)) => match self.by_build_id(pid, build_id) {
                    Some(path) => {
                        self.learn_bias(pid, &path, ip, offset);
                        self.in_file(ip, &path, offset)
                    }
                    None => self.address(pid, ip),
                },
                _ => self.address(pid, ip),
            };
            frames.push(frame);
        }
        // At a function's first instruction the caller's frame is not set up yet, so a
        // frame-pointer walk skips the return address, which is at the stack pointer.
        let at_entry = frames
            .first()
            .is_some_and(|f| matches!(f.sym, Some((_, 0, _))));
        let seen = frames.get(1).is_some_and(|f| f.addr == sp);
        if at_entry && sp != 0 && !seen {
            let caller = self.address(pid, sp);
            frames.insert(1, caller);
            frames.truncate(MAX_BACKTRACE as usize);
        }
        frames
    }

    /// Resolves an address of process `pid` through its mappings.
    pub fn address(&mut self, pid: u32, addr: u64) -> Frame {
        let covered = |maps: &Vec<Mapping>| maps.iter().any(|m| m.start <= addr && addr < m.end);
        if !self.maps.get(&pid).is_some_and(covered) {
            // First sight of the process, or a mapping added since: read them again
            // (while it lives; the last good copy is kept).
            if let Some(maps) = read_maps(pid) {
                self.learn(pid, &maps);
                self.maps.insert(pid, maps);
            }
        }
        let found = self
            .maps
            .get(&pid)
            .and_then(|maps| maps.iter().find(|m| m.start <= addr && addr < m.end))
            .cloned();
        if let Some(m) = found {
            return self.in_file(addr, &m.path, addr - m.start + m.offset);
        }
        // The process is gone: place the address with a bias learnt from its frames.
        for (path, bias) in self.biases.get(&pid).cloned().unwrap_or_default() {
            let vaddr = addr.wrapping_sub(bias);
            let seg = self
                .segments_of(&path)
                .iter()
                .find(|s| s.vaddr <= vaddr && vaddr < s.vaddr + s.memsz)
                .copied();
            if let Some(s) = seg {
                let offset = vaddr - s.vaddr + s.offset;
                // By address: `.bss` lies past the file's bytes.
                return self.symbolize(addr, &path, Input::VirtOffset(vaddr), offset);
            }
        }
        Frame {
            addr,
            ..Frame::default()
        }
    }

    /// Records the load bias of `path` in `pid` from an address and its file offset.
    fn learn_bias(&mut self, pid: u32, path: &Path, addr: u64, offset: u64) {
        let seg = self
            .segments_of(path)
            .iter()
            .find(|s| s.offset <= offset && offset < s.offset + s.filesz)
            .copied();
        let Some(s) = seg else {
            return;
        };
        let bias = addr.wrapping_sub(offset - s.offset + s.vaddr);
        let known = self.biases.entry(pid).or_default();
        if !known.iter().any(|(p, _)| p == path) {
            known.push((path.to_path_buf(), bias));
        }
    }

    fn segments_of(&mut self, path: &Path) -> &[Segment] {
        self.segments.entry(path.to_path_buf()).or_insert_with(|| {
            std::fs::read(path)
                .map(|d| load_segments(&d))
                .unwrap_or_default()
        })
    }

    /// Symbolizes file offset `offset` of `path`, for an address `addr`.
    fn in_file(&mut self, addr: u64, path: &Path, offset: u64) -> Frame {
        self.symbolize(addr, path, Input::FileOffset(offset), offset)
    }

    fn symbolize(&mut self, addr: u64, path: &Path, input: Input<u64>, offset: u64) -> Frame {
        let src = Source::Elf(Elf::new(path));
        let sym = match self.blaze.symbolize_single(&src, input) {
            Ok(Symbolized::Sym(s)) => Some((
                s.name.trim_start_matches('.').to_string(),
                s.offset as u64,
                s.size.unwrap_or(0) as u64,
            )),
            _ => None,
        };
        Frame {
            addr,
            sym,
            module: Some((path.to_path_buf(), offset)),
        }
    }

    /// The file with this build id: among files known so far, then in the maps of
    /// `pid` (if it still runs), then among the fallback files.
    fn by_build_id(&mut self, pid: u32, id: &[u8]) -> Option<PathBuf> {
        if let Some(p) = self.by_build_id.get(id) {
            return Some(p.clone());
        }
        let attached = self.fallback.clone();
        self.learn_files(attached.iter().map(PathBuf::as_path));
        if !self.maps.contains_key(&pid) {
            if let Some(maps) = read_maps(pid) {
                self.learn(pid, &maps);
                self.maps.insert(pid, maps);
            }
        }
        if !self.by_build_id.contains_key(id) && !self.fallback_done {
            self.fallback_done = true;
            let mut more: Vec<PathBuf> = Vec::new();
            for f in &attached {
                needed_libraries(f, &mut more);
            }
            if let Some(own) = read_maps(std::process::id()) {
                more.extend(own.into_iter().map(|m| m.path));
            }
            self.learn_files(more.iter().map(PathBuf::as_path));
        }
        self.by_build_id.get(id).cloned()
    }

    fn learn(&mut self, pid: u32, maps: &[Mapping]) {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let paths: Vec<PathBuf> = maps
            .iter()
            .map(|m| {
                // A process in another mount namespace sees other files.
                let inside = root.join(m.path.strip_prefix("/").unwrap_or(&m.path));
                if m.path.exists() || !inside.exists() {
                    m.path.clone()
                } else {
                    inside
                }
            })
            .collect();
        self.learn_files(paths.iter().map(PathBuf::as_path));
    }

    fn learn_files<'p>(&mut self, paths: impl Iterator<Item = &'p Path>) {
        for p in paths {
            if !self.read.insert(p.to_path_buf()) {
                continue;
            }
            if let Ok(Some(id)) = blazesym::helper::read_elf_build_id(p) {
                // The kernel reports 20 bytes, zero-padded when the id is shorter.
                let mut id = id.into_owned();
                id.resize(BUILD_ID_BYTES, 0);
                self.by_build_id
                    .entry(id)
                    .or_insert_with(|| p.to_path_buf());
            }
        }
    }
}

fn long_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}
