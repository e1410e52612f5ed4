//! String tapset functions in BPF: `substr`, escaping and quoting (`text_str`,
//! `string_quoted`, `user_string_quoted`, `user_string_n_quoted`) and `errno_str`.

use super::codegen::{Buf, Gen, Shared, R};
use super::emit::Label;
use super::insn::*;
use crate::errno::ERRNO_NAMES;
use crate::object::{MapId, MapKind};
use rtap_lang::hir::Expr;

/// Bytes per errno name in the table, NUL included (`ENOTRECOVERABLE` is 15).
const ERRNO_NAME: u32 = 16;

impl Shared<'_> {
    /// The read-only array of errno names, created on first use.
    pub fn errno_table(&mut self) -> MapId {
        if let Some(m) = self.maps.iter().position(|m| m.name == "errno_names") {
            return MapId(m as u32);
        }
        let n = ERRNO_NAMES.len() as u32;
        let id = self.add_map("errno_names", MapKind::Array, 4, ERRNO_NAME, n);
        let mut init = Vec::with_capacity((n * ERRNO_NAME) as usize);
        for name in ERRNO_NAMES {
            let mut v = name.as_bytes().to_vec();
            v.resize(ERRNO_NAME as usize, 0);
            init.extend(v);
        }
        self.maps[id.0 as usize].init = init;
        id
    }

    /// The read-only table [`escape_entries`], created on first use.
    pub fn escape_table(&mut self) -> MapId {
        if let Some(m) = self.maps.iter().position(|m| m.name == "escapes") {
            return MapId(m as u32);
        }
        let id = self.add_map("escapes", MapKind::Array, 4, 256 * 8, 1);
        self.maps[id.0 as usize].init = escape_entries();
        id
    }
}

impl Gen<'_, '_> {
    /// `substr(s, start, len)`: `len` bytes from 0-based `start`; "" when `start` is
    /// outside the string, as SystemTap's `strlcpy` version gives.
    pub fn substr(&mut self, args: &[Expr], dst: Buf) -> R<()> {
        let sm = self.scratch.mark();
        let src = self.scratch_buf();
        self.string_into(&args[0], src)?;
        let fm = self.frame.mark();
        let start = self.temp();
        let len = self.temp();
        self.long(&args[1])?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, start));
        self.long(&args[2])?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, len));
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.strlen(src);
        let done = self.e.label();
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R10, start));
        self.e.jmp_imm(Cond::Slt, R3, 0, done);
        self.e.jmp_reg(Cond::Sge, R3, R0, done);
        self.e.jmp_imm(Cond::Sge, R3, src.cap as i32, done);
        // Size for the copy, NUL included: `len + 1` within [1, cap].
        let cap = dst.cap.min(src.cap) as i32;
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R10, len));
        self.e.jmp_imm(Cond::Slt, R2, 1, done);
        self.e.emit(Insn::add64_imm(R2, 1));
        self.e.emit(Insn::jmp_imm(Cond::Sle, R2, cap, 1));
        self.e.emit(Insn::mov64_imm(R2, cap));
        self.lea(R1, dst.base, dst.off);
        self.lea(R4, src.base, src.off);
        self.e.emit(Insn::add64_reg(R3, R4));
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
        self.e.bind(done);
        self.frame.release(fm);
        self.scratch.release(sm);
        Ok(())
    }

    /// `errno_str(n)`: the name of errno `n` or `-n`, "" for other numbers.
    pub fn errno_str(&mut self, arg: &Expr, dst: Buf) -> R<()> {
        let table = self.sh.errno_table();
        self.long(arg)?;
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 1));
        self.e.emit(Insn::neg64(R0));
        let done = self.e.label();
        self.e.jmp_imm(Cond::Ge, R0, ERRNO_NAMES.len() as i32, done);
        let fm = self.frame.mark();
        let key = self.temp();
        self.e.emit(Insn::stx_mem(Size::W, R10, R0, key));
        self.e.emit2(Insn::ld_map_fd(R1, table));
        self.lea(R2, R10, key);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        self.frame.release(fm);
        self.e.jmp_imm(Cond::Eq, R0, 0, done);
        self.e.emit(Insn::mov64_reg(R3, R0));
        self.lea(R1, dst.base, dst.off);
        self.e
            .emit(Insn::mov64_imm(R2, ERRNO_NAME.min(dst.cap) as i32));
        self.e.emit(Insn::call(Helper::ProbeReadKernelStr));
        self.e.bind(done);
        Ok(())
    }

    /// `text_str(s)` (`quoted` false) and `string_quoted(s)` (`quoted` true).
    pub fn text_str(&mut self, arg: &Expr, dst: Buf, quoted: bool) -> R<()> {
        let sm = self.scratch.mark();
        let src = self.scratch_buf();
        self.string_into(arg, src)?;
        self.escape(src, dst, quoted);
        self.scratch.release(sm);
        Ok(())
    }

    /// `user_string_quoted(addr)` and `user_string_n_quoted(addr, n)`: the quoted
    /// string, or the address as `0x…` when it cannot be read (NULL included).
    pub fn user_string_quoted(&mut self, args: &[Expr], with_n: bool, dst: Buf) -> R<()> {
        let sm = self.scratch.mark();
        let fm = self.frame.mark();
        let src = self.scratch_buf();
        let (addr, n) = self.user_string_operands(args, with_n)?;
        // SystemTap reads `n` bytes here, not `n` plus a NUL: `user_string_n(addr, n)`.
        self.read_user_str(src, addr, n);
        let fault = self.e.label();
        let done = self.e.label();
        self.e.jmp_imm(Cond::Slt, R0, 0, fault);
        self.escape(src, dst, true);
        self.e.goto(done);
        self.e.bind(fault);
        self.store_literal("0x", dst);
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R10, addr));
        let tmp = self.scratch_buf();
        self.number_to_str(rtap_lang::printf::ConvKind::HexLower, tmp);
        let t = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, t));
        self.append_from(dst, t);
        self.e.bind(done);
        self.frame.release(fm);
        self.scratch.release(sm);
        Ok(())
    }

    /// Escapes `src` into `dst` as SystemTap's `_stp_text_str` does: printable ASCII
    /// as is, `\n`-style escapes for `\a\b\f\n\r\t\v"\\`, octal `\ooo` for every
    /// other byte. Quoted output is wrapped in `"…"`; when it does not fit, it ends
    /// in `"...` at the length limit.
    ///
    /// Each byte's escape comes from a table, so an iteration has one branch the
    /// verifier must explore (end of input or out of room, told apart afterwards).
    pub fn escape(&mut self, src: Buf, dst: Buf, quoted: bool) {
        let table = self.sh.escape_table();
        let q = quoted as i32;
        // The last position output may reach, the leading quote included.
        let limit = dst.cap as i32 - 1 - q;
        // Output is built in a power-of-two area so a masked position is in bounds.
        let area = dst.cap.next_power_of_two();
        let mask = area as i32 - 1;
        let out = self.scratch.alloc(area + 16) as i16;
        let fm = self.frame.mark();
        let tbl = self.temp();
        self.e.emit(Insn::st_mem(Size::W, R10, tbl, 0));
        self.e.emit2(Insn::ld_map_fd(R1, table));
        self.lea(R2, R10, tbl);
        self.e.emit(Insn::call(Helper::MapLookupElem));
        self.frame.release(fm);
        let top = self.e.label();
        let stop = self.e.label();
        let done = self.e.label();
        let end = self.e.label();
        self.e.emit(Insn::st_mem(Size::B, dst.base, dst.off, 0));
        self.e.jmp_imm(Cond::Eq, R0, 0, end);
        if quoted {
            self.e.emit(Insn::st_mem(Size::B, R7, out, b'"' as i32));
        }
        // r0 = table, r2 = input index, r3 = output position.
        self.e.emit(Insn::mov64_imm(R2, 0));
        self.e.emit(Insn::mov64_imm(R3, q));
        // The positions pass through scratch memory at the head of each step: the
        // verifier then sees unknown (bounded) values and checks the body once.
        let (at_in, at_out) = (self.scratch.alloc(8) as i16, self.scratch.alloc(8) as i16);
        self.e.bind(top);
        self.e.emit(Insn::stx_mem(Size::DW, R7, R2, at_in));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R3, at_out));
        self.e.may_goto(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R2, R7, at_in));
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, at_out));
        self.e.jmp_imm(Cond::Ge, R2, src.cap as i32 - 1, done);
        self.lea(R1, src.base, src.off);
        self.e.emit(Insn::add64_reg(R1, R2));
        self.e.emit(Insn::ldx_mem(Size::B, R4, R1, 0));
        self.e.emit(Insn::alu64_imm(AluOp::Lsh, R4, 3));
        self.e.emit(Insn::add64_reg(R4, R0));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R4, 0));
        // r5 = the position after this byte's escape; NUL's length stops the loop too.
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Rsh, R5, 32));
        self.e.emit(Insn::add64_reg(R5, R3));
        self.e.jmp_imm(Cond::Gt, R5, limit, stop);
        self.e.emit(Insn::alu64_imm(AluOp::And, R3, mask));
        self.lea(R1, R7, out);
        self.e.emit(Insn::add64_reg(R1, R3));
        self.e.emit(Insn::stx_mem(Size::W, R1, R4, 0));
        self.e.emit(Insn::mov64_reg(R3, R5));
        self.e.emit(Insn::add64_imm(R2, 1));
        self.e.goto(top);
        // The input ended, a UTF-8 sequence starts, or the next escape does not fit.
        self.e.bind(stop);
        let full = self.e.label();
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Rsh, R5, 32));
        self.e.jmp_imm(Cond::Eq, R5, END_OF_INPUT as i32, done);
        self.e.emit(Insn::mov64_reg(R1, R5));
        self.e
            .emit(Insn::alu64_imm(AluOp::And, R1, UTF8_LEAD as i32));
        self.e.jmp_imm(Cond::Eq, R1, 0, full);
        self.utf8(src, out, mask, limit, top, full);
        self.e.bind(full);
        if quoted {
            // As SystemTap's: the text is cut three bytes early and ends in `"...`.
            let at = out + dst.cap as i16 - 5;
            for (i, b) in b"\"...\0".iter().enumerate() {
                self.e
                    .emit(Insn::st_mem(Size::B, R7, at + i as i16, *b as i32));
            }
            let copy = self.e.label();
            self.e.goto(copy);
            self.e.bind(done);
            self.close_escape(out, mask, true);
            self.e.bind(copy);
        } else {
            self.e.bind(done);
            self.close_escape(out, mask, false);
        }
        self.copy_str(dst, R7, out);
        self.e.bind(end);
    }

    /// A UTF-8 sequence whose lead byte is at input index r2 (below `cap - 1`; the
    /// scratch slack after the input covers the continuation bytes): `\uXXXX` or `\UXXXXXXXX` for a valid
    /// sequence, as SystemTap's `_stp_decode_utf8` accepts them, else the lead byte in
    /// octal. r0 = the escape table, r3 = output position, r4 = the lead's entry,
    /// r5 = its count; back to `top`, or to `full` when the escape does not fit.
    fn utf8(&mut self, src: Buf, out: i16, mask: i32, limit: i32, top: Label, full: Label) {
        let fm = self.frame.mark();
        let entry = self.temp();
        let tmp = self.temp();
        self.e.emit(Insn::stx_mem(Size::DW, R10, R4, entry));
        self.e.emit(Insn::alu64_imm(AluOp::And, R5, 3));
        let verbatim = self.e.label();
        for n in 1..=3i16 {
            let next = self.e.label();
            self.e.jmp_imm(Cond::Ne, R5, n as i32, next);
            // r4 = the code point, from the lead's low bits and each continuation's six.
            self.lea(R1, src.base, src.off);
            self.e.emit(Insn::add64_reg(R1, R2));
            self.e.emit(Insn::ldx_mem(Size::B, R4, R1, 0));
            self.e
                .emit(Insn::alu64_imm(AluOp::And, R4, 0x7f >> (n + 1)));
            for k in 1..=n {
                self.lea(R1, src.base, src.off);
                self.e.emit(Insn::add64_reg(R1, R2));
                self.e.emit(Insn::ldx_mem(Size::B, R1, R1, k));
                self.e.emit(Insn::stx_mem(Size::DW, R10, R1, tmp));
                self.e.emit(Insn::alu64_imm(AluOp::And, R1, 0xc0));
                self.e.jmp_imm(Cond::Ne, R1, 0x80, verbatim);
                self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, tmp));
                self.e.emit(Insn::alu64_imm(AluOp::And, R1, 0x3f));
                self.e.emit(Insn::alu64_imm(AluOp::Lsh, R4, 6));
                self.e.emit(Insn::alu64_reg(AluOp::Or, R4, R1));
            }
            // UTF-16 surrogates and code points past U+10FFFF are not characters.
            self.e.emit(Insn::mov64_reg(R1, R4));
            self.e.emit(Insn::add64_imm(R1, -0xd800));
            self.e.jmp_imm(Cond::Lt, R1, 0x800, verbatim);
            self.e.jmp_imm(Cond::Gt, R4, 0x10ffff, verbatim);
            let big = self.e.label();
            self.e.jmp_imm(Cond::Gt, R4, 0xffff, big);
            for (letter, digits) in [(b'u', 4), (b'U', 8)] {
                if letter == b'U' {
                    self.e.bind(big);
                }
                self.e.emit(Insn::mov64_reg(R5, R3));
                self.e.emit(Insn::add64_imm(R5, 2 + digits));
                self.e.jmp_imm(Cond::Gt, R5, limit, full);
                self.hex_escape(out, mask, letter, digits);
                self.e.emit(Insn::add64_imm(R3, 2 + digits));
                self.e.emit(Insn::add64_imm(R2, 1 + n as i32));
                self.e.goto(top);
            }
            self.e.bind(next);
        }
        // Not a valid sequence: the lead byte alone, in octal, from its table entry.
        self.e.bind(verbatim);
        self.e.emit(Insn::mov64_reg(R5, R3));
        self.e.emit(Insn::add64_imm(R5, 4));
        self.e.jmp_imm(Cond::Gt, R5, limit, full);
        self.e.emit(Insn::alu64_imm(AluOp::And, R3, mask));
        self.lea(R1, R7, out);
        self.e.emit(Insn::add64_reg(R1, R3));
        self.e.emit(Insn::ldx_mem(Size::DW, R4, R10, entry));
        self.e.emit(Insn::stx_mem(Size::W, R1, R4, 0));
        self.e.emit(Insn::mov64_reg(R3, R5));
        self.e.emit(Insn::add64_imm(R2, 1));
        self.frame.release(fm);
        self.e.goto(top);
    }

    /// `\` + `letter` + the low `digits` hex digits of r4, upper case, at position r3.
    /// Branch-free: a digit past 9 gets 7 more, to land on `A`.
    fn hex_escape(&mut self, out: i16, mask: i32, letter: u8, digits: i32) {
        self.e.emit(Insn::alu64_imm(AluOp::And, R3, mask));
        self.lea(R5, R7, out);
        self.e.emit(Insn::add64_reg(R5, R3));
        self.e.emit(Insn::st_mem(Size::B, R5, 0, b'\\' as i32));
        self.e.emit(Insn::st_mem(Size::B, R5, 1, letter as i32));
        for j in 0..digits {
            self.e.emit(Insn::mov64_reg(R1, R4));
            self.e
                .emit(Insn::alu64_imm(AluOp::Rsh, R1, 4 * (digits - 1 - j)));
            self.e.emit(Insn::alu64_imm(AluOp::And, R1, 0xf));
            self.e.emit(Insn::mov64_reg(R5, R1));
            self.e.emit(Insn::add64_imm(R5, 6));
            self.e.emit(Insn::alu64_imm(AluOp::Rsh, R5, 4));
            self.e.emit(Insn::alu64_imm(AluOp::Mul, R5, 7));
            self.e.emit(Insn::add64_reg(R1, R5));
            self.e.emit(Insn::add64_imm(R1, b'0' as i32));
            self.lea(R5, R7, out);
            self.e.emit(Insn::add64_reg(R5, R3));
            self.e.emit(Insn::stx_mem(Size::B, R5, R1, 2 + j as i16));
        }
    }

    /// The closing quote and NUL at output position r3.
    fn close_escape(&mut self, out: i16, mask: i32, quoted: bool) {
        self.e.emit(Insn::alu64_imm(AluOp::And, R3, mask));
        self.lea(R1, R7, out);
        self.e.emit(Insn::add64_reg(R1, R3));
        if quoted {
            self.e.emit(Insn::st_mem(Size::B, R1, 0, b'"' as i32));
            self.e.emit(Insn::st_mem(Size::B, R1, 1, 0));
        } else {
            self.e.emit(Insn::st_mem(Size::B, R1, 0, 0));
        }
    }
}

/// The count of NUL in the escape table: out of any range, so one comparison ends
/// the loop at the input's end.
const END_OF_INPUT: u32 = 1 << 16;
/// Set in the count of a UTF-8 lead byte, with the number of continuation bytes.
const UTF8_LEAD: u32 = 1 << 17;

/// One entry per byte: up to four output bytes, then their count in the high half.
/// A UTF-8 lead byte holds its octal escape, for when no valid sequence follows.
pub fn escape_entries() -> Vec<u8> {
    let mut v = Vec::with_capacity(256 * 8);
    for c in 0u8..=255 {
        let octal = [
            b'\\',
            b'0' + (c >> 6),
            b'0' + ((c >> 3) & 7),
            b'0' + (c & 7),
        ];
        let (bytes, len): ([u8; 4], u32) = match c {
            0 => ([0; 4], END_OF_INPUT),
            0xc0..=0xdf => (octal, UTF8_LEAD | 1),
            0xe0..=0xef => (octal, UTF8_LEAD | 2),
            0xf0..=0xf7 => (octal, UTF8_LEAD | 3),
            7 => (*b"\\a\0\0", 2),
            8 => (*b"\\b\0\0", 2),
            12 => (*b"\\f\0\0", 2),
            b'\n' => (*b"\\n\0\0", 2),
            b'\r' => (*b"\\r\0\0", 2),
            b'\t' => (*b"\\t\0\0", 2),
            11 => (*b"\\v\0\0", 2),
            b'"' => (*b"\\\"\0\0", 2),
            b'\\' => (*b"\\\\\0\0", 2),
            0x20..=0x7e => ([c, 0, 0, 0], 1),
            _ => (octal, 4),
        };
        v.extend(bytes);
        v.extend(len.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::escape_entries;

    /// Entry `c`: its output bytes and their count, as `_stp_text_str` escapes them.
    fn entry(c: u8) -> (Vec<u8>, u32) {
        let t = escape_entries();
        let e = &t[c as usize * 8..c as usize * 8 + 8];
        let len = u32::from_le_bytes(e[4..].try_into().unwrap());
        (e[..len.min(4) as usize].to_vec(), len)
    }

    #[test]
    fn escapes_match_systemtap() {
        assert_eq!(entry(b'a'), (b"a".to_vec(), 1));
        assert_eq!(entry(b'\n'), (b"\\n".to_vec(), 2));
        assert_eq!(entry(b'"'), (b"\\\"".to_vec(), 2));
        assert_eq!(entry(b'\\'), (b"\\\\".to_vec(), 2));
        assert_eq!(entry(0xb0), (b"\\260".to_vec(), 4));
        assert_eq!(entry(0x7f), (b"\\177".to_vec(), 4));
        assert_eq!(entry(1), (b"\\001".to_vec(), 4));
        // NUL's count ends the loop whatever the position.
        assert!(entry(0).1 > 4096);
        // A UTF-8 lead byte: its continuation count, and its octal escape as a fallback.
        let (octal, count) = entry(0xe2);
        assert_eq!(count & !super::UTF8_LEAD, 2);
        assert_eq!(&octal, b"\\342");
    }
}
