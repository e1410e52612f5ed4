//! DWARF location descriptions at one address → access ops (`DW_AT_location`, frame bases, CFA).

use super::load::Loaded;
use super::R;
use crate::access::{AccessOp, DwarfReg};
use gimli::{constants as dw, AttributeValue, Operation};

/// Where a variable's bits are at the probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The ops compute the variable's address in user memory.
    Memory(Vec<AccessOp>),
    /// The ops compute the variable's value itself (a register, a constant).
    Value(Vec<AccessOp>),
}

/// The outcome of evaluating a location at one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Located {
    At(Place),
    /// Only the value at function entry is described (`DW_OP_entry_value`): unreadable here.
    EntryValue,
    OptimizedOut,
    Unsupported(String),
}

/// The frame base of a function at `pc`, as ops computing an address.
pub(crate) type FrameBase<'a> = &'a dyn Fn() -> Option<Vec<AccessOp>>;

/// Evaluate a variable DIE's `DW_AT_location` / `DW_AT_const_value` at `pc`.
pub(crate) fn locate(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    entry: &gimli::DebuggingInformationEntry<R>,
    pc: u64,
    frame_base: FrameBase<'_>,
) -> Located {
    if let Some(v) = entry.attr_value(dw::DW_AT_const_value) {
        return match v {
            AttributeValue::Sdata(x) => Located::At(Place::Value(vec![AccessOp::Const(x)])),
            AttributeValue::Udata(x) => Located::At(Place::Value(vec![AccessOp::Const(x as i64)])),
            AttributeValue::Data1(x) => Located::At(Place::Value(vec![AccessOp::Const(x.into())])),
            AttributeValue::Data2(x) => Located::At(Place::Value(vec![AccessOp::Const(x.into())])),
            AttributeValue::Data4(x) => Located::At(Place::Value(vec![AccessOp::Const(x.into())])),
            AttributeValue::Data8(x) => Located::At(Place::Value(vec![AccessOp::Const(x as i64)])),
            _ => Located::Unsupported("a block constant value".into()),
        };
    }
    let Some(v) = entry.attr_value(dw::DW_AT_location) else {
        return Located::OptimizedOut;
    };
    match v {
        AttributeValue::Exprloc(e) => evaluate(loaded, unit, &e, pc, frame_base),
        other => {
            let Ok(Some(mut list)) = loaded.dwarf.attr_locations(unit, other) else {
                return Located::OptimizedOut;
            };
            while let Ok(Some(e)) = list.next() {
                if e.range.begin <= pc && pc < e.range.end {
                    return evaluate(loaded, unit, &e.data, pc, frame_base);
                }
            }
            Located::OptimizedOut
        }
    }
}

/// The frame base attribute of a subprogram at `pc`: CFA, a register, or register+offset.
pub(crate) fn frame_base(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    subprogram: &gimli::DebuggingInformationEntry<R>,
    pc: u64,
) -> Option<Vec<AccessOp>> {
    let expr = match subprogram.attr_value(dw::DW_AT_frame_base)? {
        AttributeValue::Exprloc(e) => e,
        other => {
            let mut list = loaded.dwarf.attr_locations(unit, other).ok()??;
            loop {
                let e = list.next().ok()??;
                if e.range.begin <= pc && pc < e.range.end {
                    break e.data;
                }
            }
        }
    };
    let ops = operations(unit, &expr)?;
    match ops.as_slice() {
        [Operation::CallFrameCFA] => {
            let (reg, offset) = loaded.cfa_at(pc)?;
            Some(vec![AccessOp::RegAddr {
                reg: DwarfReg(reg),
                offset,
            }])
        }
        // A register frame base means "the register's value" (e.g. `DW_OP_reg6` rbp).
        [Operation::Register { register }] => Some(vec![AccessOp::RegAddr {
            reg: DwarfReg(register.0),
            offset: 0,
        }]),
        [Operation::RegisterOffset {
            register, offset, ..
        }] => Some(vec![AccessOp::RegAddr {
            reg: DwarfReg(register.0),
            offset: *offset,
        }]),
        _ => None,
    }
}

fn operations(unit: &gimli::Unit<R>, expr: &gimli::Expression<R>) -> Option<Vec<Operation<R>>> {
    let mut ops = Vec::new();
    let mut iter = expr.clone().operations(unit.encoding());
    while let Some(op) = iter.next().ok()? {
        ops.push(op);
    }
    Some(ops)
}

/// `base + offset` folded into one op when the base is a register address.
fn offset_from(base: Vec<AccessOp>, offset: i64) -> Vec<AccessOp> {
    match base.as_slice() {
        [AccessOp::RegAddr { reg, offset: o }] => vec![AccessOp::RegAddr {
            reg: *reg,
            offset: o + offset,
        }],
        _ => {
            let mut v = base;
            v.push(AccessOp::Add(offset));
            v
        }
    }
}

/// The simple location shapes compilers emit; anything else is reported, never guessed.
fn evaluate(
    loaded: &Loaded,
    unit: &gimli::Unit<R>,
    expr: &gimli::Expression<R>,
    _pc: u64,
    frame_base: FrameBase<'_>,
) -> Located {
    let Some(ops) = operations(unit, expr) else {
        return Located::Unsupported("an unreadable location expression".into());
    };
    if ops.is_empty() {
        return Located::OptimizedOut;
    }
    if ops
        .iter()
        .any(|o| matches!(o, Operation::EntryValue { .. }))
    {
        // The value at entry lives nowhere we can read now.
        return Located::EntryValue;
    }
    let (ops, stack_value) = match ops.split_last() {
        Some((Operation::StackValue, rest)) => (rest, true),
        _ => (&ops[..], false),
    };
    let computed = match ops {
        [Operation::Register { register }] if !stack_value => {
            return Located::At(Place::Value(vec![AccessOp::Reg(DwarfReg(register.0))]));
        }
        [Operation::ImplicitValue { data }] if !stack_value => {
            let mut bytes = [0u8; 8];
            let slice = gimli::Reader::to_slice(data).ok();
            let Some(slice) = slice.filter(|s| s.len() <= 8) else {
                return Located::Unsupported("an implicit value wider than 8 bytes".into());
            };
            bytes[..slice.len()].copy_from_slice(&slice);
            return Located::At(Place::Value(vec![AccessOp::Const(i64::from_le_bytes(
                bytes,
            ))]));
        }
        [Operation::UnsignedConstant { value }] => vec![AccessOp::Const(*value as i64)],
        [Operation::SignedConstant { value }] => vec![AccessOp::Const(*value)],
        [Operation::RegisterOffset {
            register,
            offset,
            base_type,
        }] if base_type.0 == 0 => vec![AccessOp::RegAddr {
            reg: DwarfReg(register.0),
            offset: *offset,
        }],
        [Operation::FrameOffset { offset }] => match frame_base() {
            Some(fb) => offset_from(fb, *offset),
            None => return Located::Unsupported("an unknown frame base".into()),
        },
        [Operation::Address { address }] => vec![AccessOp::StaticAddr(*address)],
        [Operation::AddressIndex { index }] => match loaded.dwarf.address(unit, *index) {
            Ok(a) => vec![AccessOp::StaticAddr(a)],
            Err(_) => return Located::Unsupported("a bad address index".into()),
        },
        [Operation::ImplicitPointer { .. }] => {
            return Located::Unsupported("an implicit pointer".into());
        }
        _ if ops.iter().any(|o| matches!(o, Operation::Piece { .. })) => {
            return Located::Unsupported("a value split in pieces".into());
        }
        _ => return Located::Unsupported("a computed location".into()),
    };
    if stack_value {
        Located::At(Place::Value(computed))
    } else {
        Located::At(Place::Memory(computed))
    }
}
