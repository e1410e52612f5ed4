//! Globals in maps: key packing, value bytes, statistics merged across CPUs.

use super::{Flow, Interp, Stop, Store, V};
use rtap_compiler::object::{Field, FieldKind, GlobalSpec, GlobalValue, HistLayout};
use rtap_lang::hir::GlobalId;
use rtap_lang::span::Span;

/// Statistics of one stats value, merged over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: i64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    /// Sum of squares, for `@variance`.
    pub sumsq: i64,
    /// Histogram buckets, when the global has a histogram.
    pub buckets: Vec<i64>,
}

impl Stats {
    /// Sample variance, in integers.
    pub fn variance(&self) -> i64 {
        if self.count < 2 {
            return 0;
        }
        let n = i128::from(self.count);
        let (sum, sumsq) = (i128::from(self.sum), i128::from(self.sumsq));
        ((n * sumsq - sum * sum) / (n * (n - 1))) as i64
    }
}

/// Bytes before the histogram buckets: count, sum, min, max, sum of squares.
const STATS_HEAD: usize = 40;

fn stats_bytes(hist: Option<HistLayout>) -> usize {
    STATS_HEAD + 8 * hist.map_or(0, HistLayout::buckets)
}

fn long_at(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .map_or(0, |s| i64::from_ne_bytes(s.try_into().unwrap_or_default()))
}

fn cstr(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

/// Bytes of a string slot of `cap` bytes: cut to `cap - 1`, NUL-padded.
fn put_str(out: &mut Vec<u8>, s: &[u8], cap: u32) {
    let n = s.len().min(cap as usize - 1);
    out.extend_from_slice(&s[..n]);
    out.resize(out.len() + cap as usize - n, 0);
}

/// Packs keys the way the BPF programs do.
pub fn pack_key(fields: &[Field], keys: &[V]) -> Vec<u8> {
    if fields.is_empty() {
        return 0u32.to_ne_bytes().to_vec();
    }
    let mut out = Vec::new();
    for (f, k) in fields.iter().zip(keys) {
        out.resize(f.offset as usize, 0);
        match (f.kind, k) {
            (FieldKind::Long, k) => out.extend_from_slice(&k.long().to_ne_bytes()),
            (FieldKind::Str { cap }, V::Str(s)) => put_str(&mut out, s, cap),
            (FieldKind::Str { cap }, V::Long(_)) => put_str(&mut out, b"", cap),
        }
    }
    out
}

/// The key values of a packed key.
pub fn unpack_key(fields: &[Field], key: &[u8]) -> Vec<V> {
    fields
        .iter()
        .map(|f| {
            let at = f.offset as usize;
            match f.kind {
                FieldKind::Long => V::Long(long_at(key, at)),
                FieldKind::Str { cap } => {
                    V::Str(cstr(key.get(at..at + cap as usize).unwrap_or_default()))
                }
            }
        })
        .collect()
}

fn encode(kind: GlobalValue, v: &V) -> Vec<u8> {
    match (kind, v) {
        (GlobalValue::Str { cap }, V::Str(s)) => {
            let mut out = Vec::new();
            put_str(&mut out, s, cap);
            out
        }
        (_, v) => v.long().to_ne_bytes().to_vec(),
    }
}

fn decode(kind: GlobalValue, b: &[u8]) -> V {
    match kind {
        GlobalValue::Str { .. } => V::Str(cstr(b)),
        _ => V::Long(long_at(b, 0)),
    }
}

/// Merges per-CPU stats slots (`count, sum, min, max, sumsq`, then buckets); min and
/// max come from non-empty CPUs only.
pub fn merge(per_cpu: &[Vec<u8>], buckets: usize) -> Stats {
    let mut s = Stats {
        min: i64::MAX,
        max: i64::MIN,
        buckets: vec![0; buckets],
        ..Stats::default()
    };
    for b in per_cpu {
        let c = long_at(b, 0);
        if c == 0 {
            continue;
        }
        s.count += c;
        s.sum = s.sum.wrapping_add(long_at(b, 8));
        s.min = s.min.min(long_at(b, 16));
        s.max = s.max.max(long_at(b, 24));
        s.sumsq = s.sumsq.wrapping_add(long_at(b, 32));
        for (i, slot) in s.buckets.iter_mut().enumerate() {
            *slot += long_at(b, STATS_HEAD + 8 * i);
        }
    }
    if s.count == 0 {
        s.min = 0;
        s.max = 0;
    }
    s
}

impl<S: Store> Interp<'_, S> {
    pub(super) fn spec(&self, g: GlobalId) -> &GlobalSpec {
        &self.globals[g.0 as usize]
    }

    pub(super) fn read_global(&self, g: GlobalId, keys: &[V]) -> V {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        match self.store.get(map.0, &key) {
            Some(b) => decode(spec.value, &b),
            None => V::zero(match spec.value {
                GlobalValue::Str { .. } => rtap_lang::hir::Type::String,
                _ => rtap_lang::hir::Type::Long,
            }),
        }
    }

    pub(super) fn write_global(&mut self, g: GlobalId, keys: &[V], v: &V, span: Span) -> Flow<()> {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        let bytes = encode(spec.value, v);
        self.store
            .put(map.0, &key, &bytes)
            .map_err(|_| self.overflow(g, span))
    }

    fn overflow(&self, g: GlobalId, span: Span) -> Stop {
        let spec = self.spec(g);
        let limit = self.maps[spec.map.0 as usize].max_entries;
        Stop::Error(
            format!("array `{}` overflow, check size limit ({limit})", spec.name),
            span,
        )
    }

    pub(super) fn contains(&self, g: GlobalId, keys: &[V]) -> bool {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        match spec.value {
            GlobalValue::Stats => self.store.get_percpu(map.0, &key).is_some(),
            _ => self.store.get(map.0, &key).is_some(),
        }
    }

    /// Every key of an array, unpacked, from each map holding its elements.
    pub(super) fn keys_of(&self, g: GlobalId) -> Vec<Vec<V>> {
        let spec = self.spec(g);
        let mut out = Vec::new();
        for (map, fields) in spec.parts() {
            out.extend(self.store.keys(map.0).iter().map(|k| unpack_key(fields, k)));
        }
        out
    }

    pub(super) fn delete_element(&mut self, g: GlobalId, keys: &[V]) {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        self.store.remove(map.0, &key);
    }

    /// `delete a` or `delete scalar`: an array loses every key, a scalar reads 0 or "".
    pub(super) fn clear_global(&mut self, g: GlobalId) {
        let spec = self.spec(g);
        let map = spec.map.0;
        if spec.keys.is_empty() {
            let key = 0u32.to_ne_bytes();
            let _ = match spec.value {
                GlobalValue::Stats => {
                    let zero = vec![vec![0u8; stats_bytes(spec.hist)]; self.store.cpus()];
                    self.store.put_percpu(map, &key, &zero)
                }
                GlobalValue::Str { cap } => self.store.put(map, &key, &vec![0; cap as usize]),
                GlobalValue::Long => self.store.put(map, &key, &[0; 8]),
            };
            return;
        }
        let maps: Vec<u32> = spec.parts().iter().map(|(m, _)| m.0).collect();
        for map in maps {
            for k in self.store.keys(map) {
                self.store.remove(map, &k);
            }
        }
    }

    pub(super) fn read_stats(&self, g: GlobalId, keys: &[V]) -> Stats {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        self.store
            .get_percpu(map.0, &key)
            .map(|v| merge(&v, spec.hist.map_or(0, HistLayout::buckets)))
            .unwrap_or_default()
    }

    /// `s <<< v` from user space: recorded in the first CPU's slot.
    pub(super) fn add_sample(&mut self, g: GlobalId, keys: &[V], v: i64, span: Span) -> Flow<()> {
        let spec = self.spec(g);
        let (map, key) = spec.place(&pack_key(&spec.keys, keys));
        let map = map.0;
        let cpus = self.store.cpus().max(1);
        let size = stats_bytes(spec.hist);
        let bucket = spec.hist.map(|h| h.bucket(v));
        let mut slots = self
            .store
            .get_percpu(map, &key)
            .unwrap_or_else(|| vec![vec![0u8; size]; cpus]);
        let slot = &mut slots[0];
        slot.resize(size.max(slot.len()), 0);
        let (count, sum, sumsq) = (long_at(slot, 0), long_at(slot, 8), long_at(slot, 32));
        let (min, max) = if count == 0 {
            (v, v)
        } else {
            (long_at(slot, 16).min(v), long_at(slot, 24).max(v))
        };
        let head = [
            count + 1,
            sum.wrapping_add(v),
            min,
            max,
            sumsq.wrapping_add(v.wrapping_mul(v)),
        ];
        for (i, x) in head.iter().enumerate() {
            slot[i * 8..i * 8 + 8].copy_from_slice(&x.to_ne_bytes());
        }
        if let Some(b) = bucket {
            let at = STATS_HEAD + 8 * b;
            let c = long_at(slot, at) + 1;
            slot[at..at + 8].copy_from_slice(&c.to_ne_bytes());
        }
        self.store
            .put_percpu(map, &key, &slots)
            .map_err(|_| self.overflow(g, span))
    }
}
