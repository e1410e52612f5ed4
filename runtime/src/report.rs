//! End-of-run reports: globals written but never read, printed as SystemTap does.

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use rtap_compiler::object::{Field, FieldKind, GlobalSpec, GlobalValue};

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Long(i64),
    Str(String),
    Stats {
        count: i64,
        sum: i64,
        min: i64,
        max: i64,
    },
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn long_at(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .map_or(0, |s| i64::from_ne_bytes(s.try_into().unwrap_or_default()))
}

fn value(map: &MapHandle, kind: GlobalValue, key: &[u8]) -> Option<Val> {
    match kind {
        GlobalValue::Long => map
            .lookup(key, MapFlags::ANY)
            .ok()?
            .map(|b| Val::Long(long_at(&b, 0))),
        GlobalValue::Str { .. } => map
            .lookup(key, MapFlags::ANY)
            .ok()?
            .map(|b| Val::Str(cstr(&b))),
        GlobalValue::Stats => {
            let per_cpu = map.lookup_percpu(key, MapFlags::ANY).ok()??;
            let (mut count, mut sum, mut min, mut max) = (0i64, 0i64, i64::MAX, i64::MIN);
            for b in &per_cpu {
                let c = long_at(b, 0);
                if c == 0 {
                    continue;
                }
                count += c;
                sum = sum.wrapping_add(long_at(b, 8));
                min = min.min(long_at(b, 16));
                max = max.max(long_at(b, 24));
            }
            Some(Val::Stats {
                count,
                sum,
                min,
                max,
            })
        }
    }
}

fn show(v: &Val) -> String {
    match v {
        Val::Long(n) => n.to_string(),
        Val::Str(s) => format!("\"{s}\""),
        Val::Stats {
            count,
            sum,
            min,
            max,
        } => {
            if *count == 0 {
                "@count=0x0".to_string()
            } else {
                format!(
                    "@count={count} @min={min} @max={max} @sum={sum} @avg={}",
                    sum / count
                )
            }
        }
    }
}

fn key_text(fields: &[Field], key: &[u8]) -> String {
    fields
        .iter()
        .map(|f| match f.kind {
            FieldKind::Long => long_at(key, f.offset as usize).to_string(),
            FieldKind::Str { cap } => {
                let at = f.offset as usize;
                format!("\"{}\"", cstr(&key[at..(at + cap as usize).min(key.len())]))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The auto-print text for every global written but never read.
pub fn auto_print(globals: &[GlobalSpec], maps: &[MapHandle]) -> String {
    let mut out = String::new();
    for g in globals.iter().filter(|g| g.auto_print) {
        let map = &maps[g.map.0 as usize];
        if g.keys.is_empty() {
            let v = value(map, g.value, &0u32.to_ne_bytes()).unwrap_or(Val::Long(0));
            let sep = if matches!(v, Val::Stats { .. }) {
                " "
            } else {
                "="
            };
            out.push_str(&format!("{}{sep}{}\n", g.name, show(&v)));
            continue;
        }
        let mut rows: Vec<(String, Val)> = Vec::new();
        for (id, fields) in g.parts() {
            let part = &maps[id.0 as usize];
            rows.extend(
                part.keys()
                    .filter_map(|k| value(part, g.value, &k).map(|v| (key_text(fields, &k), v))),
            );
        }
        // SystemTap prints arrays sorted by value, largest first; ties by key keep it stable.
        rows.sort_by(|a, b| {
            let by_value = match (&b.1, &a.1) {
                (Val::Long(x), Val::Long(y)) => x.cmp(y),
                (Val::Stats { count: x, .. }, Val::Stats { count: y, .. }) => x.cmp(y),
                (Val::Str(x), Val::Str(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            };
            by_value.then_with(|| a.0.cmp(&b.0))
        });
        for (k, v) in rows {
            let sep = if matches!(v, Val::Stats { .. }) {
                " "
            } else {
                "="
            };
            out.push_str(&format!("{}[{k}]{sep}{}\n", g.name, show(&v)));
        }
    }
    out
}
