//! The interpreter for handlers that run in user space (`begin`, `end`, `error`, timers,
//! and `process.begin` for processes already running when the session starts).
//!
//! It walks the checked program the compiler hands over in `BpfObject::host` and reads
//! and writes globals in the same maps, with the same byte layouts, as the BPF programs.
//! Semantics follow SystemTap: 64-bit wrapping arithmetic, "division by 0" errors,
//! missing keys reading 0 or "", strings cut at `MAXSTRINGLEN`.

mod builtins;
mod expr;
mod globals;
pub mod hist;
mod stmt;
pub mod store;
pub mod task;
pub mod testing;
mod text;

pub use globals::{merge, Stats};
use rtap_compiler::host::{HostHandler, HostProgram, HostWhen};
use rtap_compiler::object::{BpfObject, GlobalSpec, MapSpec};
use rtap_lang::hir::{GlobalId, Literal, Local, Type};
use rtap_lang::span::Span;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
pub use store::{KernelStore, MemStore, Store};

/// A script value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum V {
    Long(i64),
    Str(Vec<u8>),
}

impl V {
    fn zero(ty: Type) -> V {
        match ty {
            Type::String => V::Str(Vec::new()),
            _ => V::Long(0),
        }
    }

    fn long(&self) -> i64 {
        match self {
            V::Long(v) => *v,
            V::Str(_) => 0,
        }
    }

    fn into_str(self) -> Vec<u8> {
        match self {
            V::Str(s) => s,
            V::Long(v) => v.to_string().into_bytes(),
        }
    }
}

/// Handlers that run once, at a point of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Begin,
    End,
    Error,
}

/// Why evaluation stopped early.
#[derive(Debug)]
enum Stop {
    Break,
    Continue,
    /// `next`: leave the handler.
    Next,
    Return(V),
    Error(String, Span),
    /// `abort()`: stop at once, not catchable.
    Abort,
}

type Flow<T> = Result<T, Stop>;

/// A runtime error raised by a handler: `ERROR: {message} near {location}`.
#[derive(Debug, PartialEq, Eq)]
pub struct HostError {
    pub message: String,
    pub location: String,
}

/// Interpreter state that lives for the whole session.
pub struct Interp<'p, S: Store> {
    prog: &'p HostProgram,
    globals: &'p [GlobalSpec],
    maps: &'p [MapSpec],
    pub store: S,
    /// Text printed by handlers, taken by the session after each run.
    pub out: Vec<u8>,
    /// `exit()` was called.
    pub exit_requested: bool,
    /// `abort()` was called.
    pub aborted: bool,
    /// `target()`.
    pub target: u32,
    /// Set by Ctrl-C: long loops stop with an error instead of hanging the session.
    pub interrupted: Arc<AtomicBool>,
    regexes: HashMap<String, Option<regex::bytes::Regex>>,
    /// `tokenize` remembers the rest of its string between calls, as strtok does.
    tokens: Vec<u8>,
    /// `pp()` of the running handler.
    probe_point: String,
    /// The process a `.begin` handler runs for, when it was running before the
    /// session: `pid()`, `execname()` and friends answer for it, from /proc.
    pub task: Option<u32>,
}

/// Locals of one handler or function call.
struct Frame {
    locals: Vec<V>,
}

impl Frame {
    fn new(locals: &[Local]) -> Frame {
        Frame {
            locals: locals.iter().map(|l| V::zero(l.ty)).collect(),
        }
    }
}

impl<'p, S: Store> Interp<'p, S> {
    pub fn new(obj: &'p BpfObject, store: S) -> Self {
        Interp {
            prog: &obj.host,
            globals: &obj.globals,
            maps: &obj.maps,
            store,
            out: Vec::new(),
            exit_requested: false,
            aborted: false,
            target: 0,
            interrupted: Arc::new(AtomicBool::new(false)),
            regexes: HashMap::new(),
            tokens: Vec::new(),
            probe_point: String::new(),
            task: None,
        }
    }

    /// Runs one handler to completion; a runtime error ends it early.
    pub fn run(&mut self, h: &HostHandler) -> Result<(), HostError> {
        // After `exit()`, only end and error handlers still run, as in SystemTap.
        if self.exit_requested
            && matches!(
                h.when,
                HostWhen::Begin { .. } | HostWhen::Timer { .. } | HostWhen::ProcessBegin { .. }
            )
        {
            return Ok(());
        }
        self.probe_point = h.probe_point.clone();
        let mut frame = Frame::new(&h.locals);
        match self.block(&h.body, &mut frame) {
            Ok(()) | Err(Stop::Next) | Err(Stop::Return(_)) => Ok(()),
            Err(Stop::Break) | Err(Stop::Continue) => Ok(()),
            Err(Stop::Abort) => {
                self.aborted = true;
                self.exit_requested = true;
                Ok(())
            }
            Err(Stop::Error(message, span)) => Err(HostError {
                message,
                location: self.prog.location(span),
            }),
        }
    }

    /// The handlers of one phase, in sequence order (`end(-1)` before `end`).
    pub fn handlers(&self, phase: Phase) -> Vec<&'p HostHandler> {
        let mut hs: Vec<(i64, &'p HostHandler)> = self
            .prog
            .handlers
            .iter()
            .filter_map(|h| match (&h.when, phase) {
                (HostWhen::Begin { seq }, Phase::Begin)
                | (HostWhen::End { seq }, Phase::End)
                | (HostWhen::Error { seq }, Phase::Error) => Some((*seq, h)),
                _ => None,
            })
            .collect();
        hs.sort_by_key(|(seq, _)| *seq);
        hs.into_iter().map(|(_, h)| h).collect()
    }

    /// Writes literal initialisers (`global x = 5`) before `begin` runs.
    pub fn init_globals(&mut self) {
        for (i, g) in self.globals.iter().enumerate() {
            let v = match &g.init {
                Some(Literal::Long(n)) => V::Long(*n),
                Some(Literal::String(s)) => V::Str(s.clone().into_bytes()),
                None => continue,
            };
            let _ = self.write_global(GlobalId(i as u32), &[], &v, Span::default());
        }
    }

    /// Strings are cut to `MAXSTRINGLEN - 1` bytes, as in BPF.
    fn cut(&self, mut s: Vec<u8>) -> Vec<u8> {
        s.truncate((self.prog.max_string_len as usize).saturating_sub(1));
        s
    }

    /// Polled in loops so Ctrl-C can stop a runaway `end` handler.
    fn check_interrupt(&self, span: Span) -> Flow<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err(Stop::Error("interrupted".into(), span));
        }
        Ok(())
    }
}
