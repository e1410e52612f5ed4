//! printf and print: one ring-buffer record per call, laid out by an [`EventSpec`].

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use super::strings::USER_STRING_FAULT;
use crate::object::*;
use rtap_lang::hir::{Expr, ExprKind, PrintKind, Type};
use rtap_lang::printf::{ConvKind, Conversion, Flags, Format, Piece};
use rtap_lang::span::Span;

/// How one argument reaches its record field once the record is reserved.
enum Staged {
    /// A long in an r10-relative slot.
    Long(i16),
    Literal(String),
    Comm,
    /// `user_string*` read straight into the record; address and length in r10 slots.
    User {
        addr: i16,
        n: Option<i16>,
        err: Option<Box<Staged>>,
        span: Span,
    },
    /// Already evaluated into scratch.
    Scratch(i16),
    /// Stacks and symbols, turned into text in user space.
    Symbolic(super::stack::Deferred),
}

impl Gen<'_, '_> {
    /// `print`/`println`/`printd`/`printdln` as a printf with `%d`/`%s` conversions.
    pub fn print(
        &mut self,
        kind: PrintKind,
        delim: Option<&str>,
        args: &[Expr],
        span: Span,
    ) -> R<()> {
        if let [Expr {
            kind: ExprKind::Hist { stat, .. },
            ..
        }] = args
        {
            return self.print_hist(stat, matches!(kind, PrintKind::Println), span);
        }
        let format = self.print_format(kind, delim, args)?;
        self.printf(&format, args, span)
    }

    /// `print(@hist_*(s))`: a record naming the global and its key; the runtime reads the
    /// merged buckets and prints them, as it does for the user-space handlers.
    fn print_hist(&mut self, stat: &rtap_lang::hir::LValue, newline: bool, span: Span) -> R<()> {
        use rtap_lang::hir::LValue;
        let (g, keys) = match stat {
            LValue::Global(g) => (*g, &[][..]),
            LValue::Element { array, keys } => (*array, &keys[..]),
            LValue::Local(_) => return Err(self.not_yet("local statistics", span)),
        };
        let map = self.sh.globals[g.0 as usize].map;
        let key_size = if keys.is_empty() {
            0
        } else {
            self.sh.maps[map.0 as usize].key_size
        };
        let location = self.sh.location(span);
        let id = self.sh.event(EventSpec {
            kind: EventKind::PrintHist {
                global: g.0,
                newline,
                location,
            },
            size: RECORD_HEADER + key_size.div_ceil(8) * 8,
            fields: Vec::new(),
        });
        let sm = self.scratch.mark();
        let key = if keys.is_empty() {
            0
        } else {
            self.build_key(g, keys, span)?
        };
        self.record(id, RECORD_HEADER + key_size.div_ceil(8) * 8, |g| {
            if key_size > 0 {
                g.lea(R1, R8, RECORD_HEADER as i16);
                g.e.emit(Insn::mov64_imm(R2, key_size as i32));
                g.lea(R3, R7, key);
                g.e.emit(Insn::call(Helper::ProbeReadKernel));
            }
        });
        self.scratch.release(sm);
        Ok(())
    }

    /// The format `print*` uses: `%d` or `%s` per value, delimiters, and a newline for `*ln`.
    pub fn print_format(&self, kind: PrintKind, delim: Option<&str>, args: &[Expr]) -> R<Format> {
        let mut pieces = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                if let Some(d) = delim {
                    pieces.push(Piece::Text(d.to_string()));
                }
            }
            let kind = match a.ty {
                Type::String => ConvKind::Str,
                Type::Long => ConvKind::Signed,
                Type::Stats => return Err(self.not_yet("printing statistics", a.span)),
            };
            pieces.push(Piece::Conv(Conversion {
                flags: Flags::default(),
                width: None,
                precision: None,
                kind,
            }));
        }
        if matches!(kind, PrintKind::Println | PrintKind::Printdln) {
            pieces.push(Piece::Text("\n".to_string()));
        }
        Ok(Format { pieces })
    }

    /// Evaluates every argument, then reserves, fills and submits one record.
    pub fn printf(&mut self, format: &Format, args: &[Expr], span: Span) -> R<()> {
        let kinds = format.arg_kinds();
        if kinds.len() != args.len() {
            return Err(rtap_lang::diag::Diagnostic::error(
                format!("format takes {} arguments, not {}", kinds.len(), args.len()),
                span,
            ));
        }
        if Self::has_memory(format) {
            return self.with_memory(format, args, span, |g, f, a| g.printf(f, a, span));
        }
        let cap = self.cap();
        let mut fields = Vec::new();
        let mut size = PRINTF_HEADER;
        let symbolic: Vec<_> = args.iter().map(super::stack::symbolic).collect();
        for (&is_str, sym) in kinds.iter().zip(&symbolic) {
            let (kind, len) = match sym {
                Some(s) => super::stack::field(*s, cap),
                None if is_str => (FieldKind::Str { cap }, cap),
                None => (FieldKind::Long, 8),
            };
            fields.push(Field { offset: size, kind });
            size += len.div_ceil(8) * 8;
        }
        let kind = if symbolic.iter().any(Option::is_some) {
            EventKind::SymbolicPrintf {
                format: format.clone(),
                symbolic: symbolic.clone(),
                max_len: cap,
            }
        } else {
            EventKind::Printf(format.clone())
        };
        let id = self.sh.event(EventSpec {
            kind,
            size,
            fields: fields.clone(),
        });
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let mut staged = Vec::new();
        for ((a, &is_str), sym) in args.iter().zip(&kinds).zip(&symbolic) {
            staged.push(if let Some(s) = sym {
                Staged::Symbolic(self.stage_symbolic(*s, a)?)
            } else if is_str {
                self.stage_str(a)?
            } else {
                let t = self.temp();
                self.long(a)?;
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                Staged::Long(t)
            });
        }
        let done = self.e.label();
        let got = self.e.label();
        self.reserve(size);
        self.e.jmp_imm(Cond::Ne, R0, 0, got);
        self.bump_counter(Counter::LostRecords);
        self.e.goto(done);
        self.e.bind(got);
        self.e.emit(Insn::mov64_reg(R8, R0));
        self.e.emit(Insn::st_mem(Size::W, R8, 0, id.0 as i32));
        let pp = self.probe_point_index();
        self.e.emit(Insn::st_mem(Size::W, R8, 4, pp as i32));
        self.e.emit(Insn::call(Helper::GetCurrentPidTgid));
        self.e.emit(Insn::stx_mem(Size::DW, R8, R0, 8));
        self.e.emit(Insn::call(Helper::KtimeGetBootNs));
        self.e.emit(Insn::stx_mem(Size::DW, R8, R0, 16));
        for (s, f) in staged.iter().zip(&fields) {
            let dst = Buf {
                base: R8,
                off: f.offset as i16,
                cap,
            };
            self.fill(s, dst)?;
        }
        self.submit_batched();
        self.e.bind(done);
        self.scratch.release(sm);
        self.frame.release(fm);
        Ok(())
    }

    /// Evaluates what must be evaluated before the record is reserved.
    fn stage_str(&mut self, a: &Expr) -> R<Staged> {
        if let ExprKind::Str(s) = &a.kind {
            return Ok(Staged::Literal(s.clone()));
        }
        if let ExprKind::Builtin { name, args } = &a.kind {
            match (name.as_str(), args.len()) {
                ("execname", 0) => return Ok(Staged::Comm),
                ("user_string", 1 | 2) | ("user_string_n", 2 | 3) => {
                    let with_n = name == "user_string_n";
                    let (addr, n) = self.user_string_operands(args, with_n)?;
                    let err = match args.get(1 + with_n as usize) {
                        Some(e) => Some(Box::new(self.stage_str(e)?)),
                        None => None,
                    };
                    return Ok(Staged::User {
                        addr,
                        n,
                        err,
                        span: a.span,
                    });
                }
                _ => {}
            }
        }
        let b = self.scratch_buf();
        self.string_into(a, b)?;
        Ok(Staged::Scratch(b.off))
    }

    /// Writes a staged argument into its record field (r8 holds the record).
    fn fill(&mut self, s: &Staged, dst: Buf) -> R<()> {
        match s {
            Staged::Long(t) => {
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, *t));
                self.e.emit(Insn::stx_mem(Size::DW, R8, R1, dst.off));
            }
            Staged::Literal(text) => self.store_literal(text, dst),
            Staged::Comm => {
                self.lea(R1, R8, dst.off);
                self.e.emit(Insn::mov64_imm(R2, 16));
                self.e.emit(Insn::call(Helper::GetCurrentComm));
            }
            Staged::Scratch(off) => self.copy_str(dst, R7, *off),
            Staged::Symbolic(d) => self.fill_symbolic(d, dst),
            Staged::User { addr, n, err, span } => {
                self.read_user_str(dst, *addr, *n);
                let ok = self.e.label();
                self.e.jmp_imm(Cond::Sge, R0, 0, ok);
                match err {
                    Some(e) => self.fill(e, dst)?,
                    None => {
                        // The record is released before the error ends the handler.
                        self.e.emit(Insn::mov64_reg(R1, R8));
                        self.e.emit(Insn::mov64_imm(R2, 0));
                        self.e.emit(Insn::call(Helper::RingbufDiscard));
                        self.raise(USER_STRING_FAULT, *span, Some(*addr));
                    }
                }
                self.e.bind(ok);
            }
        }
        Ok(())
    }
}

/// Below this many unread bytes, a record does not wake the reader: it polls
/// every few milliseconds anyway, and waking it per record costs more than the probe.
const WAKEUP_BYTES: i32 = 256 << 10;

impl Gen<'_, '_> {
    /// The index of this program's probe point in `BpfObject::probe_points`.
    fn probe_point_index(&mut self) -> u32 {
        let pps = &mut self.sh.probe_points;
        match pps.iter().position(|p| *p == self.pp) {
            Some(i) => i as u32,
            None => {
                pps.push(self.pp.clone());
                pps.len() as u32 - 1
            }
        }
    }

    /// Submits the record in r8, waking the reader only when the buffer fills up.
    fn submit_batched(&mut self) {
        self.e.emit2(Insn::ld_map_fd(R1, self.sh.ringbuf));
        self.e.emit(Insn::mov64_imm(R2, BPF_RB_AVAIL_DATA));
        self.e.emit(Insn::call(Helper::RingbufQuery));
        self.e.emit(Insn::mov64_imm(R2, BPF_RB_NO_WAKEUP));
        self.e.emit(Insn::jmp_imm(Cond::Le, R0, WAKEUP_BYTES, 1));
        self.e.emit(Insn::mov64_imm(R2, BPF_RB_FORCE_WAKEUP));
        self.e.emit(Insn::mov64_reg(R1, R8));
        self.e.emit(Insn::call(Helper::RingbufSubmit));
    }
}

const BPF_RB_NO_WAKEUP: i32 = 1;
const BPF_RB_FORCE_WAKEUP: i32 = 2;
const BPF_RB_AVAIL_DATA: i32 = 0;
