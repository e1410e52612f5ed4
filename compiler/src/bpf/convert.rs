//! One `sprintf` conversion with flags, width and precision, laid out as the runtime's
//! printf formatter does: `[pad][sign][prefix][zeros][digits]`, zero padding after the
//! sign, or left-justified with trailing spaces.
//!
//! Each part is copied into a piece buffer with `bpf_probe_read_kernel` at a clamped
//! position, padding included (from a read-only map of spaces and zeros), so a
//! conversion has no loops of its own.

use super::codegen::{Buf, Gen, Shared, R};
use super::insn::*;
use super::sprintf::NUM_AREA;
use crate::object::{MapId, MapKind};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::Expr;
use rtap_lang::printf::{ConvKind, Conversion, Count};
use rtap_lang::span::Span;

impl Shared<'_> {
    /// `MAXSTRINGLEN` spaces then as many `0`s: the padding a conversion copies.
    pub fn pad_table(&mut self) -> MapId {
        if let Some(m) = self.maps.iter().position(|m| m.name == "pads") {
            return MapId(m as u32);
        }
        let cap = self.opts.max_string_len;
        let id = self.add_map("pads", MapKind::Array, 4, 2 * cap, 1);
        let mut init = vec![b' '; cap as usize];
        init.extend(vec![b'0'; cap as usize]);
        self.maps[id.0 as usize].init = init;
        id
    }
}

/// Frame slots of a conversion's parts.
struct Parts {
    /// Output position in the piece buffer.
    pos: i16,
    width: i16,
    /// Address of the digits or string, and their length.
    text: i16,
    len: i16,
    /// Sign and prefix bytes (in scratch) and how many.
    pre_len: i16,
    /// Zeros the precision adds before the digits.
    zeros: i16,
    /// The pad table's address.
    pads: i16,
}

impl Gen<'_, '_> {
    /// `r0` = a width or precision: fixed, or the next long argument, within `[0, cap]`.
    fn count<'e>(
        &mut self,
        c: Option<Count>,
        args: &mut impl Iterator<Item = &'e Expr>,
        span: Span,
    ) -> R<Option<i16>> {
        let cap = self.cap() as i32;
        let slot = match c {
            None => return Ok(None),
            Some(Count::Fixed(n)) => {
                let t = self.temp();
                self.e
                    .emit(Insn::st_mem(Size::DW, R10, t, (n as i32).min(cap)));
                t
            }
            Some(Count::Star) => {
                let arg = args
                    .next()
                    .ok_or_else(|| Diagnostic::error("too few arguments for the format", span))?;
                let t = self.temp();
                self.long(arg)?;
                self.clamp(R0, 0, cap);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                t
            }
        };
        Ok(Some(slot))
    }

    /// `reg` = `reg` within `[lo, hi]`, signed.
    fn clamp(&mut self, reg: Reg, lo: i32, hi: i32) {
        self.e.emit(Insn::jmp_imm(Cond::Sle, reg, hi, 1));
        self.e.emit(Insn::mov64_imm(reg, hi));
        self.e.emit(Insn::jmp_imm(Cond::Sge, reg, lo, 1));
        self.e.emit(Insn::mov64_imm(reg, lo));
    }

    /// Copies `n` (slot) bytes from the address in r3 to the piece at the position, and
    /// advances it. Position and length are clamped to the string limit.
    fn put(&mut self, piece: i16, p: &Parts, n: i16) {
        let cap = self.cap() as i32;
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, n));
        self.clamp(R2, 0, cap);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, p.pos));
        self.e.emit(Insn::add64_reg(R1, R2));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.pos));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R1, R2));
        self.clamp(R1, 0, cap);
        self.e.emit(Insn::add64_reg(R1, R7));
        self.e.emit(Insn::add64_imm(R1, piece as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernel));
    }

    /// r3 = the pad table plus `offset` bytes.
    fn pads_at(&mut self, p: &Parts, offset: u32) {
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, p.pads));
        if offset > 0 {
            self.e.emit(Insn::add64_imm(R3, offset as i32));
        }
    }

    /// Formats one conversion with its flags, width and precision, and appends it to `dst`.
    pub fn conversion<'e>(
        &mut self,
        c: &Conversion,
        args: &mut impl Iterator<Item = &'e Expr>,
        dst: Buf,
        span: Span,
    ) -> R<()> {
        if matches!(c.kind, ConvKind::Memory | ConvKind::MemoryHex) {
            return Err(Diagnostic::error(
                "`%m` and `%M` are read before formatting",
                span,
            ));
        }
        let cap = self.cap();
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        let width = self.count(c.width, args, span)?;
        let prec = self.count(c.precision, args, span)?;
        let arg = args
            .next()
            .ok_or_else(|| Diagnostic::error("too few arguments for the format", span))?;
        let piece = self.scratch.alloc(2 * cap + 8) as i16;
        let body = self.scratch_buf();
        let pre = self.scratch.alloc(8) as i16;
        let p = Parts {
            pos: self.temp(),
            width: match width {
                Some(w) => w,
                None => {
                    let t = self.temp();
                    self.e.emit(Insn::st_mem(Size::DW, R10, t, 0));
                    t
                }
            },
            text: self.temp(),
            len: self.temp(),
            pre_len: self.temp(),
            zeros: self.temp(),
            pads: self.temp(),
        };
        for s in [p.pos, p.pre_len, p.zeros] {
            self.e.emit(Insn::st_mem(Size::DW, R10, s, 0));
        }
        let numeric = !matches!(c.kind, ConvKind::Str | ConvKind::Char | ConvKind::Binary);
        match c.kind {
            ConvKind::Str => {
                self.string_into(arg, body)?;
                self.strlen(body);
                if let Some(pr) = prec {
                    self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, pr));
                    self.e.emit(Insn::jmp_reg(Cond::Sle, R0, R1, 1));
                    self.e.emit(Insn::mov64_reg(R0, R1));
                }
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, p.len));
                self.lea(R1, R7, body.off);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.text));
            }
            ConvKind::Char if c.flags.alt => {
                self.long(arg)?;
                self.escaped_char(body);
                self.strlen(body);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R0, p.len));
                self.lea(R1, R7, body.off);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.text));
            }
            ConvKind::Char => {
                self.long(arg)?;
                self.e.emit(Insn::stx_mem(Size::B, R7, R0, body.off));
                self.e.emit(Insn::st_mem(Size::DW, R10, p.len, 1));
                self.lea(R1, R7, body.off);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.text));
            }
            ConvKind::Binary => {
                // The width is the byte count (1, 2, 4 or 8, else 8), not padding; the
                // bytes are native-endian, and a NUL among them ends the string.
                self.long(arg)?;
                self.e.emit(Insn::stx_mem(Size::DW, R7, R0, body.off));
                self.e.emit(Insn::st_mem(Size::B, R7, body.off + 8, 0));
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, p.width));
                let ok = self.e.label();
                for n in [1, 2, 4] {
                    self.e.jmp_imm(Cond::Eq, R1, n, ok);
                }
                self.e.emit(Insn::mov64_imm(R1, 8));
                self.e.bind(ok);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.len));
                self.e.emit(Insn::st_mem(Size::DW, R10, p.width, 0));
                self.lea(R1, R7, body.off);
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.text));
            }
            // `%p` is `%#x` and takes no precision.
            ConvKind::Pointer => self.digits(c, arg, body, pre, None, &p)?,
            _ => self.digits(c, arg, body, pre, prec, &p)?,
        }
        // The pad: what the width leaves after the sign, prefix, zeros and text.
        let pad = self.temp();
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, p.width));
        for s in [p.pre_len, p.zeros, p.len] {
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, s));
            self.e.emit(Insn::alu64_reg(AluOp::Sub, R0, R1));
        }
        self.clamp(R0, 0, cap as i32);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, pad));
        let table = self.sh.pad_table();
        self.e.emit(Insn::st_mem(Size::W, R10, p.pads, 0));
        self.e.emit2(Insn::ld_map_fd(R1, table));
        self.lea(R2, R10, p.pads);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        let done = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, p.pads));
        let f = c.flags;
        let zero_pad =
            numeric && f.zero && !f.left && prec.is_none() && c.kind != ConvKind::Pointer;
        if !f.left && !zero_pad {
            self.pads_at(&p, 0);
            self.put(piece, &p, pad);
        }
        self.lea(R3, R7, pre);
        self.put(piece, &p, p.pre_len);
        if zero_pad {
            self.pads_at(&p, cap);
            self.put(piece, &p, pad);
        }
        self.pads_at(&p, cap);
        self.put(piece, &p, p.zeros);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, p.text));
        self.put(piece, &p, p.len);
        if f.left {
            self.pads_at(&p, 0);
            self.put(piece, &p, pad);
        }
        // The piece ends at its position, cut at the string limit, then joins `dst`.
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, p.pos));
        self.clamp(R1, 0, cap as i32 - 1);
        self.e.emit(Insn::add64_reg(R1, R7));
        self.e.emit(Insn::st_mem(Size::B, R1, piece, 0));
        self.append(
            dst,
            Buf {
                base: R7,
                off: piece,
                cap,
            },
        );
        self.e.bind(done);
        self.scratch.release(sm);
        self.frame.release(fm);
        Ok(())
    }

    /// Digits of a number conversion in `body`, its sign and prefix in `pre`, and the
    /// zeros its precision asks for.
    fn digits(
        &mut self,
        c: &Conversion,
        arg: &Expr,
        body: Buf,
        pre: i16,
        prec: Option<i16>,
        p: &Parts,
    ) -> R<()> {
        let f = c.flags;
        let value = self.temp();
        self.long(arg)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, value));
        let mut pre_bytes = 0;
        let digits_kind = match c.kind {
            ConvKind::Signed => {
                // The sign goes first, then the magnitude's digits.
                let pos = self.e.label();
                let signed = self.e.label();
                self.e.jmp_imm(Cond::Sge, R0, 0, pos);
                self.e.emit(Insn::neg64(R0));
                self.e.emit(Insn::st_mem(Size::B, R7, pre, b'-' as i32));
                self.e.emit(Insn::st_mem(Size::DW, R10, p.pre_len, 1));
                self.e.goto(signed);
                self.e.bind(pos);
                if f.plus || f.space {
                    let b = if f.plus { b'+' } else { b' ' };
                    self.e.emit(Insn::st_mem(Size::B, R7, pre, b as i32));
                    self.e.emit(Insn::st_mem(Size::DW, R10, p.pre_len, 1));
                }
                self.e.bind(signed);
                ConvKind::Unsigned
            }
            ConvKind::Pointer => {
                self.store_pre(pre, b"0x", &mut pre_bytes, p);
                ConvKind::HexLower
            }
            ConvKind::HexLower | ConvKind::HexUpper if f.alt => {
                let x = if c.kind == ConvKind::HexLower {
                    b"0x"
                } else {
                    b"0X"
                };
                self.store_pre(pre, x, &mut pre_bytes, p);
                c.kind
            }
            k => k,
        };
        self.number_to_str(digits_kind, body);
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.text));
        // Length = end of the digit area less the start.
        self.lea(R2, R7, body.off + NUM_AREA as i16 - 1);
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R2, R1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R2, p.len));
        if let Some(pr) = prec {
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, pr));
            self.e.emit(Insn::alu64_reg(AluOp::Sub, R1, R2));
            self.e.emit(Insn::jmp_imm(Cond::Sge, R1, 0, 1));
            self.e.emit(Insn::mov64_imm(R1, 0));
            self.e.emit(Insn::stx_mem(Size::DW, R10, R1, p.zeros));
        }
        if c.kind == ConvKind::Octal && f.alt {
            // `%#o` adds a 0 only when the digits do not start with one already.
            let skip = self.e.label();
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, value));
            self.e.jmp_imm(Cond::Eq, R1, 0, skip);
            self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, p.zeros));
            self.e.jmp_imm(Cond::Ne, R1, 0, skip);
            self.store_pre(pre, b"0", &mut pre_bytes, p);
            self.e.bind(skip);
        }
        Ok(())
    }

    fn store_pre(&mut self, pre: i16, bytes: &[u8], used: &mut i16, p: &Parts) {
        for (i, b) in bytes.iter().enumerate() {
            self.e
                .emit(Insn::st_mem(Size::B, R7, pre + *used + i as i16, *b as i32));
        }
        *used += bytes.len() as i16;
        self.e
            .emit(Insn::st_mem(Size::DW, R10, p.pre_len, *used as i32));
    }
}
