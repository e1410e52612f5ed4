//! Ring-buffer records → decoded events, driven by the compiler's event layouts.

use crate::format::Value;
use rtap_compiler::object::{EventKind, EventSpec, FieldKind, Symbolic, RECORD_HEADER};

/// A record whose header or size does not match any layout.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRecord(pub String);

/// The event id of a record.
pub fn event_id(record: &[u8]) -> Result<u32, BadRecord> {
    let head = record
        .get(..4)
        .ok_or_else(|| BadRecord(format!("record of {} bytes has no header", record.len())))?;
    Ok(u32::from_ne_bytes(head.try_into().unwrap_or_default()))
}

/// The context a printf record carries after its event id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Index into `BpfObject::probe_points`.
    pub probe: u32,
    pub pid: u32,
    pub tid: u32,
    /// `bpf_ktime_get_boot_ns()` when the record was written.
    pub boot_ns: i64,
}

/// Reads the context of a printf record (see `PRINTF_HEADER`); zeros if it is short.
pub fn context(record: &[u8]) -> Context {
    let u32_at = |at: usize| {
        record
            .get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    let u64_at = |at: usize| {
        record
            .get(at..at + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    };
    let pid_tgid = u64_at(8);
    Context {
        probe: u32_at(4),
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        boot_ns: u64_at(16) as i64,
    }
}

/// Decodes the fields of a record laid out by `spec`.
pub fn decode<'r>(spec: &EventSpec, record: &'r [u8]) -> Result<Vec<Value<'r>>, BadRecord> {
    if (record.len() as u32) < spec.size.max(RECORD_HEADER) {
        return Err(BadRecord(format!(
            "record of {} bytes is shorter than its layout ({} bytes)",
            record.len(),
            spec.size
        )));
    }
    Ok(spec
        .fields
        .iter()
        .map(|f| {
            let at = f.offset as usize;
            match f.kind {
                FieldKind::Long => {
                    let b: [u8; 8] = record[at..at + 8].try_into().unwrap_or_default();
                    Value::Long(i64::from_ne_bytes(b))
                }
                FieldKind::Str { cap } => {
                    let slot = &record[at..at + cap as usize];
                    let end = slot.iter().position(|&b| b == 0).unwrap_or(slot.len());
                    Value::Str(&slot[..end])
                }
            }
        })
        .collect())
}

/// Whether an event kind produces output text.
pub fn is_printf(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Printf(_) | EventKind::SymbolicPrintf { .. }
    )
}

/// For each field of a symbolic printf record, `text(what, bytes)` of its bytes (to
/// the next field or the record's end), or `None` for a plain field.
pub fn symbolic_texts<T>(
    spec: &EventSpec,
    symbolic: &[Option<Symbolic>],
    record: &[u8],
    mut text: impl FnMut(Symbolic, &[u8]) -> T,
) -> Vec<Option<T>> {
    spec.fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let s = symbolic.get(i).copied().flatten()?;
            let end = spec
                .fields
                .get(i + 1)
                .map_or(spec.size, |n| n.offset)
                .min(record.len() as u32);
            let bytes = record
                .get(f.offset as usize..end as usize)
                .unwrap_or_default();
            Some(text(s, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtap_compiler::object::Field;

    /// Longs and NUL-terminated strings are read at their layout offsets.
    #[test]
    fn decodes_fields() {
        let spec = EventSpec {
            kind: EventKind::Exit,
            size: 8 + 8 + 8,
            fields: vec![
                Field {
                    offset: 8,
                    kind: FieldKind::Long,
                },
                Field {
                    offset: 16,
                    kind: FieldKind::Str { cap: 8 },
                },
            ],
        };
        let mut rec = vec![0u8; 24];
        rec[..4].copy_from_slice(&7u32.to_ne_bytes());
        rec[8..16].copy_from_slice(&(-5i64).to_ne_bytes());
        rec[16..19].copy_from_slice(b"abc");
        assert_eq!(event_id(&rec), Ok(7));
        assert_eq!(
            decode(&spec, &rec).unwrap(),
            vec![Value::Long(-5), Value::Str(b"abc")]
        );
    }
}
