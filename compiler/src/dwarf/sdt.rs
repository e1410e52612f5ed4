//! SDT (USDT) markers: `.note.stapsdt` notes and their AT&T argument specs as access plans.

use crate::access::{AccessOp, AccessPlan, DwarfReg, ValueInfo};
use object::read::elf::{ElfFile64, SectionHeader};
use object::Endianness;
use std::collections::HashMap;

/// `NT_STAPSDT`, owner `stapsdt`.
const NT_STAPSDT: u32 = 3;

/// One marker as the note describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub provider: String,
    pub name: String,
    /// Link-time address of the marker's `nop`.
    pub pc: u64,
    /// Link-time address of the `unsigned short` semaphore, if the marker has one.
    pub semaphore: Option<u64>,
    /// The argument string as written, e.g. `-4@%esi 8@-16(%rbp)`.
    pub arg_text: String,
    /// One plan per argument (`$arg1` first), or why it cannot be read.
    pub args: Vec<Result<AccessPlan, String>>,
}

/// Every marker of the file, in note order. `base` is the address of `.stapsdt.base`:
/// notes record the address they were linked at, and prelinking may have moved it.
pub(crate) fn markers(
    elf: &ElfFile64<'_, Endianness>,
    base: Option<u64>,
    symbols: impl Fn() -> HashMap<String, u64>,
) -> object::Result<Vec<Marker>> {
    let endian = elf.endian();
    let mut out = Vec::new();
    let mut syms = None;
    for section in elf.elf_section_table().iter() {
        let Some(mut notes) = section.notes(endian, elf.data())? else {
            continue;
        };
        while let Some(note) = notes.next()? {
            if note.name() != b"stapsdt" || note.n_type(endian).0 != NT_STAPSDT {
                continue;
            }
            let Some(raw) = parse_note(note.desc()) else {
                continue;
            };
            // The SDT spec: when `.stapsdt.base` moved, shift pc and semaphore by as much.
            let bias = match base {
                Some(b) if raw.base != 0 => b.wrapping_sub(raw.base),
                _ => 0,
            };
            let args = if raw.args.contains("(%rip)") {
                let s = syms.get_or_insert_with(&symbols);
                parse_args(&raw.args, |n| s.get(n).copied())
            } else {
                parse_args(&raw.args, |_| None)
            };
            out.push(Marker {
                provider: raw.provider,
                name: raw.name,
                pc: raw.pc.wrapping_add(bias),
                semaphore: (raw.semaphore != 0).then(|| raw.semaphore.wrapping_add(bias)),
                arg_text: raw.args,
                args,
            });
        }
    }
    Ok(out)
}

struct RawNote {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
    args: String,
}

/// pc, base and semaphore (8 bytes each on a 64-bit file), then three NUL-terminated strings.
fn parse_note(desc: &[u8]) -> Option<RawNote> {
    let word = |i: usize| {
        Some(u64::from_le_bytes(
            desc.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let (pc, base, semaphore) = (word(0)?, word(1)?, word(2)?);
    let mut strings = desc.get(24..)?.split(|&b| b == 0);
    let mut next = || Some(String::from_utf8_lossy(strings.next()?).into_owned());
    Some(RawNote {
        pc,
        base,
        semaphore,
        provider: next()?,
        name: next()?,
        args: next().unwrap_or_default(),
    })
}

/// `-4@%esi 8@-16(%rbp) ...` → one plan per argument.
pub fn parse_args(
    text: &str,
    symbol: impl Fn(&str) -> Option<u64>,
) -> Vec<Result<AccessPlan, String>> {
    text.split_whitespace()
        .map(|a| parse_arg(a, &symbol))
        .collect()
}

/// A register name → (DWARF register, width in bits, shift of its low bit).
fn register(name: &str) -> Option<(u16, u8, u8)> {
    const R64: [&str; 16] = [
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    const R32: [&str; 8] = ["eax", "edx", "ecx", "ebx", "esi", "edi", "ebp", "esp"];
    const R16: [&str; 8] = ["ax", "dx", "cx", "bx", "si", "di", "bp", "sp"];
    const R8: [&str; 8] = ["al", "dl", "cl", "bl", "sil", "dil", "bpl", "spl"];
    const HIGH: [&str; 4] = ["ah", "dh", "ch", "bh"];
    let pos = |t: &[&str]| t.iter().position(|r| *r == name).map(|i| i as u16);
    if let Some(i) = pos(&R64) {
        return Some((i, 64, 0));
    }
    if let Some(i) = pos(&R32) {
        return Some((i, 32, 0));
    }
    if let Some(i) = pos(&R16) {
        return Some((i, 16, 0));
    }
    if let Some(i) = pos(&R8) {
        return Some((i, 8, 0));
    }
    if let Some(i) = pos(&HIGH) {
        return Some((i, 8, 8));
    }
    // r8d, r8w, r8b (and r8l).
    let n = name.strip_prefix('r')?;
    let (num, width) = match n.as_bytes().last()? {
        b'd' => (&n[..n.len() - 1], 32),
        b'w' => (&n[..n.len() - 1], 16),
        b'b' | b'l' => (&n[..n.len() - 1], 8),
        _ => return None,
    };
    let i: u16 = num.parse().ok()?;
    (8..=15).contains(&i).then_some((i, width, 0))
}

fn long(ops: Vec<AccessOp>) -> AccessPlan {
    AccessPlan {
        ops,
        value: ValueInfo {
            c_type: "long".into(),
            is_char_pointer: false,
            is_pointer: false,
        },
    }
}

/// One `[-]N@OPERAND`; a missing size means a signed 8-byte value (SDT version 1).
fn parse_arg(arg: &str, symbol: &impl Fn(&str) -> Option<u64>) -> Result<AccessPlan, String> {
    let (size, operand) = match arg.split_once('@') {
        Some((n, op)) => (n.parse::<i8>().map_err(|_| bad(arg))?, op),
        None => (-8, arg),
    };
    let signed = size < 0;
    let bytes = size.unsigned_abs();
    if ![1, 2, 4, 8].contains(&bytes) {
        return Err(format!("SDT argument `{arg}` has an unsupported size"));
    }
    if let Some(imm) = operand.strip_prefix('$') {
        return Ok(long(vec![AccessOp::Const(
            number(imm).ok_or_else(|| bad(arg))?,
        )]));
    }
    if let Some(reg) = operand.strip_prefix('%') {
        let (r, width, shift) = register(reg).ok_or_else(|| unsupported(arg))?;
        let bits = width.min(bytes * 8);
        let mut ops = vec![AccessOp::Reg(DwarfReg(r))];
        if bits < 64 || shift > 0 {
            ops.push(AccessOp::Bitfield {
                shift,
                bits,
                signed,
            });
        }
        return Ok(long(ops));
    }
    // disp(%reg), sym+off(%rip); no index registers or segment overrides.
    let (disp, inner) = operand
        .strip_suffix(')')
        .and_then(|o| o.split_once('('))
        .ok_or_else(|| unsupported(arg))?;
    let reg = inner.strip_prefix('%').ok_or_else(|| unsupported(arg))?;
    if reg.contains(',') || disp.contains(':') {
        return Err(unsupported(arg));
    }
    let load = AccessOp::Load {
        size: bytes,
        signed,
    };
    if reg == "rip" {
        let (sym, off) = match disp.find(['+', '-']) {
            Some(i) if i > 0 => (&disp[..i], number(&disp[i..]).ok_or_else(|| bad(arg))?),
            _ => (disp, 0),
        };
        if sym.is_empty() || number(sym).is_some() {
            return Err(unsupported(arg));
        }
        let addr = symbol(sym)
            .ok_or_else(|| format!("SDT argument `{arg}` names an unknown symbol `{sym}`"))?;
        return Ok(long(vec![
            AccessOp::StaticAddr(addr.wrapping_add(off as u64)),
            load,
        ]));
    }
    let (r, width, _) = register(reg).ok_or_else(|| unsupported(arg))?;
    if width != 64 {
        return Err(unsupported(arg));
    }
    let offset = if disp.is_empty() {
        0
    } else {
        number(disp).ok_or_else(|| bad(arg))?
    };
    Ok(long(vec![
        AccessOp::RegAddr {
            reg: DwarfReg(r),
            offset,
        },
        load,
    ]))
}

/// Decimal or `0x` hex, with an optional sign.
fn number(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()? as i64,
        None => s.parse::<i64>().ok()?,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn bad(arg: &str) -> String {
    format!("cannot parse SDT argument `{arg}`")
}

fn unsupported(arg: &str) -> String {
    format!("SDT argument `{arg}` is not supported yet")
}

/// `PREFIX.mark("NAME")` (prefix `process("/abs")`), with `.provider("P")` when the
/// probe point named one.
pub fn mark_pp(prefix: &str, m: &Marker, with_provider: bool) -> String {
    if with_provider {
        format!("{prefix}.provider(\"{}\").mark(\"{}\")", m.provider, m.name)
    } else {
        format!("{prefix}.mark(\"{}\")", m.name)
    }
}

/// Matches a marker name with fnmatch rules; `-` in the pattern stands for `__`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.replace('-', "__");
    glob::Pattern::new(&pattern).is_ok_and(|p| p.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Vec<AccessOp> {
        parse_args(text, |n| (n == "counter").then_some(0x4010))
            .remove(0)
            .unwrap()
            .ops
    }

    #[test]
    fn argument_specs() {
        use AccessOp::*;
        assert_eq!(
            ops("-4@%edx"),
            vec![
                Reg(DwarfReg(1)),
                Bitfield {
                    shift: 0,
                    bits: 32,
                    signed: true
                }
            ]
        );
        assert_eq!(ops("8@%rax"), vec![Reg(DwarfReg(0))]);
        assert_eq!(
            ops("1@%sil"),
            vec![
                Reg(DwarfReg(4)),
                Bitfield {
                    shift: 0,
                    bits: 8,
                    signed: false
                }
            ]
        );
        assert_eq!(
            ops("-2@-10(%rbp)"),
            vec![
                RegAddr {
                    reg: DwarfReg(6),
                    offset: -10
                },
                Load {
                    size: 2,
                    signed: true
                }
            ]
        );
        assert_eq!(
            ops("-4@(%rdi)"),
            vec![
                RegAddr {
                    reg: DwarfReg(5),
                    offset: 0
                },
                Load {
                    size: 4,
                    signed: true
                }
            ]
        );
        assert_eq!(ops("-4@$-9"), vec![Const(-9)]);
        assert_eq!(
            ops("8@counter+8(%rip)"),
            vec![
                StaticAddr(0x4018),
                Load {
                    size: 8,
                    signed: false
                }
            ]
        );
        assert_eq!(
            ops("4@%r9d")[0..1],
            [Reg(DwarfReg(9))],
            "extended registers keep their number"
        );
        let errs = parse_args("8@(%rax,%rbx,8) 3@%rax 8@nosuch(%rip)", |_| None);
        assert!(errs.iter().all(Result::is_err));
    }

    #[test]
    fn dash_matches_double_underscore() {
        assert!(name_matches("req-start", "req__start"));
        assert!(name_matches("req*", "req__done"));
        assert!(!name_matches("tick", "req__start"));
    }
}
