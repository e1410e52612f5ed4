//! Smaller tapset functions in BPF: `jiffies`, `get_cycles`, `cpu_clock_ns`,
//! `probemod`, `kernel_string[_n]`, `log`, `isdigit`, `strtol`, `ctime`, `text_strn`.
//!
//! `get_cycles` and `cpu_clock_ns` are the monotonic clock in nanoseconds, as in the
//! user-space handlers: BPF has no cycle counter and reads only this CPU's clock.

use super::codegen::{Buf, Gen, R};
use super::insn::*;
use crate::object::{MapId, MapKind};
use crate::resolved::Site;
use rtap_lang::hir::Expr;
use rtap_lang::printf::{Conversion, Flags, Format, Piece};
use rtap_lang::span::Span;

/// SystemTap's message when `kernel_string` cannot read.
pub const KERNEL_STRING_FAULT: &str = "kernel string copy fault at {addr}";

/// Day then month abbreviations, three bytes each.
const NAMES: &[u8] = b"SunMonTueWedThuFriSatJanFebMarAprMayJunJulAugSepOctNovDec";

/// Whether a long builtin is one of this file's.
pub fn is_misc_long(name: &str, args: usize) -> bool {
    matches!(
        (name, args),
        ("jiffies" | "get_cycles", 0) | ("cpu_clock_ns" | "isdigit", 1) | ("strtol", 2)
    )
}

/// Whether a string builtin (or `log`) is one of this file's.
pub fn is_misc_str(name: &str, args: usize) -> bool {
    matches!(
        (name, args),
        ("probemod", 0)
            | ("kernel_string", 1 | 2)
            | ("kernel_string_n", 2)
            | ("ctime", 0 | 1)
            | ("tz_ctime", 1)
            | ("text_strn", 3)
    )
}

impl Gen<'_, '_> {
    /// Long-valued functions into r0.
    pub fn misc_long(&mut self, name: &str, args: &[Expr], span: Span) -> R<()> {
        match name {
            "jiffies" => self.e.emit(Insn::call(Helper::Jiffies64)),
            "get_cycles" | "cpu_clock_ns" => {
                if let Some(a) = args.first() {
                    // The argument (a cpu) is evaluated for its effects only.
                    self.long(a)?;
                }
                self.e.emit(Insn::call(Helper::KtimeGetNs));
            }
            "isdigit" => {
                let m = self.scratch.mark();
                let b = self.scratch_buf();
                self.string_into(&args[0], b)?;
                self.e.emit(Insn::ldx_mem(Size::B, R1, R7, b.off));
                self.e.emit(Insn::mov64_imm(R0, 0));
                self.e.emit(Insn::jmp_imm(Cond::Lt, R1, b'0' as i32, 2));
                self.e.emit(Insn::jmp_imm(Cond::Gt, R1, b'9' as i32, 1));
                self.e.emit(Insn::mov64_imm(R0, 1));
                self.scratch.release(m);
            }
            "strtol" => self.strtol(args)?,
            _ => return Err(self.unsupported(name, span)),
        }
        Ok(())
    }

    /// String-valued functions into `dst`.
    pub fn misc_str(&mut self, name: &str, args: &[Expr], dst: Buf, span: Span) -> R<()> {
        match name {
            "probemod" => {
                let module = match &self.probe.site {
                    Site::Uprobe(u) => u.path.display().to_string(),
                    _ => String::new(),
                };
                self.store_literal(&module, dst);
            }
            "kernel_string" | "kernel_string_n" => {
                let fm = self.frame.mark();
                let with_n = name == "kernel_string_n";
                let (addr, n) = self.user_string_operands(args, with_n)?;
                self.read_str(dst, addr, n, Helper::ProbeReadKernelStr);
                let ok = self.e.label();
                self.e.jmp_imm(Cond::Sge, R0, 0, ok);
                match args.get(1).filter(|_| !with_n) {
                    Some(err) => self.string_into(err, dst)?,
                    None => self.raise(KERNEL_STRING_FAULT, span, Some(addr)),
                }
                self.e.bind(ok);
                self.frame.release(fm);
            }
            "ctime" => self.ctime(args.first(), dst)?,
            "tz_ctime" => self.tz_ctime(&args[0], dst)?,
            "text_strn" => self.text_strn(args, dst)?,
            _ => return Err(self.unsupported(name, span)),
        }
        Ok(())
    }

    /// `text_strn(s, len, quoted)`: the first `len` bytes of `s` (all when 0), escaped as
    /// `text_str` or, when `quoted`, as `string_quoted`, as the user-space handlers do.
    fn text_strn(&mut self, args: &[Expr], dst: Buf) -> R<()> {
        let sm = self.scratch.mark();
        let src = self.scratch_buf();
        self.string_into(&args[0], src)?;
        self.long(&args[1])?;
        let keep = self.e.label();
        self.e.jmp_imm(Cond::Sle, R0, 0, keep);
        self.e.jmp_imm(Cond::Ge, R0, src.cap as i32, keep);
        self.lea(R1, src.base, src.off);
        self.e.emit(Insn::add64_reg(R1, R0));
        self.e.emit(Insn::st_mem(Size::B, R1, 0, 0));
        self.e.bind(keep);
        self.long(&args[2])?;
        let plain = self.e.label();
        let done = self.e.label();
        self.e.jmp_imm(Cond::Eq, R0, 0, plain);
        self.escape(src, dst, true);
        self.e.goto(done);
        self.e.bind(plain);
        self.escape(src, dst, false);
        self.e.bind(done);
        self.scratch.release(sm);
        Ok(())
    }

    /// `log(msg)`: the message and a newline on the output, as `printf("%s\n", msg)`.
    pub fn log(&mut self, args: &[Expr], span: Span) -> R<()> {
        let format = Format {
            pieces: vec![
                Piece::Conv(Conversion {
                    flags: Flags::default(),
                    width: None,
                    precision: None,
                    kind: rtap_lang::printf::ConvKind::Str,
                }),
                Piece::Text("\n".into()),
            ],
        };
        self.printf(&format, args, span)?;
        self.e.emit(Insn::mov64_imm(R0, 0));
        Ok(())
    }

    /// `strtol(s, base)` as the user-space handlers parse: leading blanks, a sign,
    /// base 0 choosing by `0x`/`0`, digits until the first that does not fit.
    fn strtol(&mut self, args: &[Expr]) -> R<()> {
        let sm = self.scratch.mark();
        let b = self.scratch_buf();
        self.string_into(&args[0], b)?;
        let (i, base, neg, acc) = (
            self.scratch.alloc(8) as i16,
            self.scratch.alloc(8) as i16,
            self.scratch.alloc(8) as i16,
            self.scratch.alloc(8) as i16,
        );
        let last = self.cap() as i32 - 2;
        self.long(&args[1])?;
        self.e.emit(Insn::stx_mem(Size::DW, R7, R0, base));
        for s in [i, neg, acc] {
            self.e.emit(Insn::st_mem(Size::DW, R7, s, 0));
        }
        // r2 = the byte at i (bounded for the verifier); r1 = i.
        let byte = |g: &mut Self, out: super::emit::Label| {
            g.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
            g.e.jmp_imm(Cond::Gt, R1, last, out);
            g.lea(R2, R7, b.off);
            g.e.emit(Insn::add64_reg(R2, R1));
            g.e.emit(Insn::ldx_mem(Size::B, R2, R2, 0));
        };
        let step = |g: &mut Self| {
            g.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
            g.e.emit(Insn::add64_imm(R1, 1));
            g.e.emit(Insn::stx_mem(Size::DW, R7, R1, i));
        };
        let done = self.e.label();
        let blanks = self.e.label();
        let signed = self.e.label();
        self.e.bind(blanks);
        self.e.may_goto(done);
        byte(self, done);
        let skip = self.e.label();
        self.e.jmp_imm(Cond::Eq, R2, b' ' as i32, skip);
        self.e.jmp_imm(Cond::Lt, R2, 9, signed);
        self.e.jmp_imm(Cond::Gt, R2, 13, signed);
        self.e.bind(skip);
        step(self);
        self.e.goto(blanks);
        self.e.bind(signed);
        let plus = self.e.label();
        let prefix = self.e.label();
        self.e.jmp_imm(Cond::Eq, R2, b'+' as i32, plus);
        self.e.jmp_imm(Cond::Ne, R2, b'-' as i32, prefix);
        self.e.emit(Insn::st_mem(Size::DW, R7, neg, 1));
        self.e.bind(plus);
        step(self);
        // Base 0 and 16 take a `0x`; base 0 takes a leading `0` as octal.
        self.e.bind(prefix);
        let digits = self.e.label();
        let zero = self.e.label();
        byte(self, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, base));
        self.e.jmp_imm(Cond::Ne, R2, b'0' as i32, zero);
        self.e.jmp_imm(Cond::Eq, R3, 0, zero);
        self.e.jmp_imm(Cond::Ne, R3, 16, digits);
        self.e.bind(zero);
        // Here r2 is the first byte and r3 the base (0 or 16 when r2 is '0').
        let no_prefix = self.e.label();
        self.e.jmp_imm(Cond::Ne, R2, b'0' as i32, no_prefix);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, i));
        self.e.jmp_imm(Cond::Ge, R1, last, no_prefix);
        self.lea(R4, R7, b.off + 1);
        self.e.emit(Insn::add64_reg(R4, R1));
        self.e.emit(Insn::ldx_mem(Size::B, R4, R4, 0));
        self.e.emit(Insn::alu64_imm(AluOp::Or, R4, 0x20));
        let octal = self.e.label();
        self.e.jmp_imm(Cond::Ne, R4, b'x' as i32, octal);
        self.e.emit(Insn::add64_imm(R1, 2));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R1, i));
        self.e.emit(Insn::st_mem(Size::DW, R7, base, 16));
        self.e.goto(digits);
        self.e.bind(octal);
        self.e.jmp_imm(Cond::Ne, R3, 0, digits);
        self.e.emit(Insn::st_mem(Size::DW, R7, base, 8));
        self.e.goto(digits);
        self.e.bind(no_prefix);
        self.e.jmp_imm(Cond::Ne, R3, 0, digits);
        self.e.emit(Insn::st_mem(Size::DW, R7, base, 10));
        // Clamp other bases to 2..36, as the user-space handlers do.
        self.e.bind(digits);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, base));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R3, 2, 1));
        self.e.emit(Insn::mov64_imm(R3, 2));
        self.e.emit(Insn::jmp_imm(Cond::Sle, R3, 36, 1));
        self.e.emit(Insn::mov64_imm(R3, 36));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R3, base));
        let top = self.e.label();
        self.e.bind(top);
        self.e.may_goto(done);
        byte(self, done);
        // r4 = the digit's value, or done when it is not one.
        let letter = self.e.label();
        let have = self.e.label();
        self.e.emit(Insn::mov64_reg(R4, R2));
        self.e.emit(Insn::add64_imm(R4, -(b'0' as i32)));
        self.e.jmp_imm(Cond::Gt, R4, 9, letter);
        self.e.goto(have);
        self.e.bind(letter);
        self.e.emit(Insn::mov64_reg(R4, R2));
        self.e.emit(Insn::alu64_imm(AluOp::Or, R4, 0x20));
        self.e.emit(Insn::add64_imm(R4, -(b'a' as i32) + 10));
        self.e.jmp_imm(Cond::Lt, R4, 10, done);
        self.e.bind(have);
        self.e.emit(Insn::ldx_mem(Size::DW, R3, R7, base));
        self.e.jmp_reg(Cond::Ge, R4, R3, done);
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R7, acc));
        self.e.emit(Insn::alu64_reg(AluOp::Mul, R5, R3));
        self.e.emit(Insn::add64_reg(R5, R4));
        self.e.emit(Insn::stx_mem(Size::DW, R7, R5, acc));
        step(self);
        self.e.goto(top);
        self.e.bind(done);
        self.e.emit(Insn::ldx_mem(Size::DW, R0, R7, acc));
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R7, neg));
        self.e.emit(Insn::jmp_imm(Cond::Eq, R1, 0, 1));
        self.e.emit(Insn::neg64(R0));
        self.scratch.release(sm);
        Ok(())
    }

    /// The read-only day and month names.
    fn names_table(&mut self) -> MapId {
        if let Some(m) = self.sh.maps.iter().position(|m| m.name == "ctime_names") {
            return MapId(m as u32);
        }
        let size = NAMES.len().next_multiple_of(8) as u32;
        let id = self.sh.add_map("ctime_names", MapKind::Array, 4, size, 1);
        let mut init = NAMES.to_vec();
        init.resize(size as usize, 0);
        self.sh.maps[id.0 as usize].init = init;
        id
    }

    /// `ctime([secs])`: UTC as `Thu Jan  1 00:00:00 1970`, from days since the epoch
    /// with Howard Hinnant's `civil_from_days`.
    /// `tz_ctime(secs)`: `ctime` of local time, then a space and the zone's name, from
    /// the offset and name the runtime measured at start.
    fn tz_ctime(&mut self, secs: &Expr, dst: Buf) -> R<()> {
        if dst.cap < 40 {
            return Err(rtap_lang::diag::Diagnostic::bare(
                "`tz_ctime` needs `MAXSTRINGLEN` of at least 40",
            ));
        }
        let fm = self.frame.mark();
        let t = self.temp();
        self.long(secs)?;
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
        self.config(crate::object::ConfigSlot::TzOffsetSecs);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, t));
        self.e.emit(Insn::add64_reg(R0, R1));
        self.frame.release(fm);
        self.ctime_r0(dst)?;
        // ctime's text is always 24 bytes; the zone name follows a space.
        self.e
            .emit(Insn::st_mem(Size::B, dst.base, dst.off + 24, b' ' as i32));
        self.config(crate::object::ConfigSlot::TzName);
        self.e
            .emit(Insn::stx_mem(Size::DW, dst.base, R0, dst.off + 25));
        self.e
            .emit(Insn::st_mem(Size::B, dst.base, dst.off + 33, 0));
        Ok(())
    }

    fn ctime(&mut self, secs: Option<&Expr>, dst: Buf) -> R<()> {
        if dst.cap < 32 {
            return Err(rtap_lang::diag::Diagnostic::bare(
                "`ctime` needs `MAXSTRINGLEN` of at least 32",
            ));
        }
        match secs {
            Some(s) => self.long(s)?,
            None => self.builtin_long("gettimeofday_s", &[], Span::default())?,
        }
        self.ctime_r0(dst)
    }

    /// Formats the seconds in r0 as `ctime` does, into `dst`.
    fn ctime_r0(&mut self, dst: Buf) -> R<()> {
        let fm = self.frame.mark();
        let [days, rem, year, month, day] = [(); 5].map(|_| self.temp());
        // days = floor(secs / 86400), rem = secs - 86400 * days.
        self.e.emit(Insn::mov64_reg(R1, R0));
        self.e.emit(Insn::sdiv64_imm(R1, 86400));
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R2, 86400));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R0, R2));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R0, 0, 2));
        self.e.emit(Insn::add64_imm(R0, 86400));
        self.e.emit(Insn::add64_imm(R1, -1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R1, days));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R0, rem));
        // z = days + 719468; era = (z >= 0 ? z : z - 146096) / 146097.
        self.e.emit(Insn::add64_imm(R1, 719468));
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R2, 0, 1));
        self.e.emit(Insn::add64_imm(R2, -146096));
        self.e.emit(Insn::sdiv64_imm(R2, 146097));
        // doe = z - era * 146097 (r3); r2 = era.
        self.e.emit(Insn::mov64_reg(R3, R2));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R3, 146097));
        self.e.emit(Insn::mov64_reg(R4, R1));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R4, R3));
        self.e.emit(Insn::mov64_reg(R3, R4));
        // yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365 (r4).
        for (d, sign) in [(1460, -1), (36524, 1), (146096, -1)] {
            self.e.emit(Insn::mov64_reg(R5, R3));
            self.e.emit(Insn::alu64_imm(AluOp::Div, R5, d));
            let op = if sign < 0 { AluOp::Sub } else { AluOp::Add };
            self.e.emit(Insn::alu64_reg(op, R4, R5));
        }
        self.e.emit(Insn::alu64_imm(AluOp::Div, R4, 365));
        // year = yoe + era * 400.
        self.e.emit(Insn::mov64_reg(R5, R2));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R5, 400));
        self.e.emit(Insn::add64_reg(R5, R4));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R5, year));
        // doy = doe - (365*yoe + yoe/4 - yoe/100) (r3).
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R5, 365));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R3, R5));
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R5, 4));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R3, R5));
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R5, 100));
        self.e.emit(Insn::add64_reg(R3, R5));
        // mp = (5*doy + 2)/153 (r4); day = doy - (153*mp + 2)/5 + 1.
        self.e.emit(Insn::mov64_reg(R4, R3));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R4, 5));
        self.e.emit(Insn::add64_imm(R4, 2));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R4, 153));
        self.e.emit(Insn::mov64_reg(R5, R4));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, R5, 153));
        self.e.emit(Insn::add64_imm(R5, 2));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R5, 5));
        self.e.emit(Insn::alu64_reg(AluOp::Sub, R3, R5));
        self.e.emit(Insn::add64_imm(R3, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R3, day));
        // month 0..11 from March-based mp; January and February end the year after.
        self.e.emit(Insn::add64_imm(R4, 2));
        self.e.emit(Insn::jmp_imm(Cond::Lt, R4, 12, 4));
        self.e.emit(Insn::add64_imm(R4, -12));
        self.e.emit(Insn::ldx_mem(Size::DW, R5, R10, year));
        self.e.emit(Insn::add64_imm(R5, 1));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R5, year));
        self.e.emit(Insn::stx_mem(Size::DW, R10, R4, month));
        // The names: weekday (1970-01-01 was a Thursday), then month.
        let table = self.names_table();
        self.lookup_u32(table, 0);
        let out = dst.off;
        let end = self.e.label();
        self.e.emit(Insn::st_mem(Size::B, dst.base, out, 0));
        self.e.jmp_imm(Cond::Eq, R0, 0, end);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, days));
        self.e.emit(Insn::add64_imm(R1, 4));
        self.e.emit(Insn::smod64_imm(R1, 7));
        self.e.emit(Insn::jmp_imm(Cond::Sge, R1, 0, 1));
        self.e.emit(Insn::add64_imm(R1, 7));
        self.name_at(R1, 0, dst.base, out);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, month));
        self.name_at(R1, 7, dst.base, out + 4);
        for (at, b) in [
            (3, b' '),
            (7, b' '),
            (10, b' '),
            (13, b':'),
            (16, b':'),
            (19, b' '),
        ] {
            self.e
                .emit(Insn::st_mem(Size::B, dst.base, out + at, b as i32));
        }
        // `%e`: the day space-padded to two characters.
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, day));
        self.two_digits(R1, out + 8, dst.base, true);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, rem));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R1, 3600));
        self.two_digits(R1, out + 11, dst.base, false);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, rem));
        self.e.emit(Insn::alu64_imm(AluOp::Mod, R1, 3600));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R1, 60));
        self.two_digits(R1, out + 14, dst.base, false);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, rem));
        self.e.emit(Insn::alu64_imm(AluOp::Mod, R1, 60));
        self.two_digits(R1, out + 17, dst.base, false);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, year));
        self.e.emit(Insn::mov64_reg(R2, R1));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R2, 100));
        self.two_digits(R2, out + 20, dst.base, false);
        self.e.emit(Insn::ldx_mem(Size::DW, R1, R10, year));
        self.e.emit(Insn::alu64_imm(AluOp::Mod, R1, 100));
        self.two_digits(R1, out + 22, dst.base, false);
        self.e.emit(Insn::st_mem(Size::B, dst.base, out + 24, 0));
        self.e.bind(end);
        self.frame.release(fm);
        Ok(())
    }

    /// Three name bytes from the table in r0 at entry `group + index` (index in `idx`).
    fn name_at(&mut self, idx: Reg, group: i32, base: Reg, at: i16) {
        self.e.emit(Insn::alu64_imm(AluOp::Mod, idx, 12));
        self.e.emit(Insn::add64_imm(idx, group));
        self.e.emit(Insn::alu64_imm(AluOp::Mul, idx, 3));
        self.e.emit(Insn::jmp_imm(Cond::Le, idx, 54, 1));
        self.e.emit(Insn::mov64_imm(idx, 0));
        self.e.emit(Insn::mov64_reg(R2, R0));
        self.e.emit(Insn::add64_reg(R2, idx));
        for k in 0..3 {
            self.e.emit(Insn::ldx_mem(Size::B, R3, R2, k));
            self.e.emit(Insn::stx_mem(Size::B, base, R3, at + k));
        }
    }

    /// Two decimal digits of `v` (0–99) at `base + at`; a leading zero is a space when `blank`.
    fn two_digits(&mut self, v: Reg, at: i16, base: Reg, blank: bool) {
        self.e.emit(Insn::alu64_imm(AluOp::Mod, v, 100));
        self.e.emit(Insn::mov64_reg(R4, v));
        self.e.emit(Insn::alu64_imm(AluOp::Div, R4, 10));
        self.e.emit(Insn::add64_imm(R4, b'0' as i32));
        if blank {
            self.e.emit(Insn::jmp_imm(Cond::Ne, R4, b'0' as i32, 1));
            self.e.emit(Insn::mov64_imm(R4, b' ' as i32));
        }
        self.e.emit(Insn::stx_mem(Size::B, base, R4, at));
        self.e.emit(Insn::alu64_imm(AluOp::Mod, v, 10));
        self.e.emit(Insn::add64_imm(v, b'0' as i32));
        self.e.emit(Insn::stx_mem(Size::B, base, v, at + 1));
    }
}
