//! The iteration order of a GCC libstdc++ `std::unordered_multimap<std::string, T>`.
//!
//! SystemTap keeps each unit's functions in such a map and, where several DIEs share an
//! entry address (assembler aliases: `chdir`, `__chdir`, `__GI_chdir`), probes the one it
//! meets first. Listing the same name means replaying the same inserts: `std::hash` of a
//! string (`_Hash_bytes`, MurmurHash2 with seed `0xc70f6907`), the prime rehash policy
//! (at least 11 buckets, doubling, primes from `__prime_list`), and node placement
//! (a new bucket goes first in the list; an equal key goes before its equals).

/// `std::_Hash_bytes(ptr, len, 0xc70f6907)` on 64-bit targets.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    const MUL: u64 = (0xc6a4_a793_u64 << 32) + 0x5bd1_e995;
    let shift_mix = |v: u64| v ^ (v >> 47);
    let len = bytes.len();
    let mut hash = 0xc70f_6907_u64 ^ (len as u64).wrapping_mul(MUL);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let data = u64::from_le_bytes(c.try_into().unwrap_or_default());
        let data = shift_mix(data.wrapping_mul(MUL)).wrapping_mul(MUL);
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let data = rest
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        hash ^= data;
        hash = hash.wrapping_mul(MUL);
    }
    hash = shift_mix(hash).wrapping_mul(MUL);
    shift_mix(hash)
}

/// `__prime_list` up to where a unit's function table can reach.
const PRIMES: [u64; 100] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    103, 109, 113, 127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313,
    337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109,
    1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739,
    4027, 4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273, 11113, 12011,
    12983, 14033, 15173, 16411, 17749, 19183, 20753,
];
const FAST_BUCKETS: [u64; 14] = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];
const NONE: usize = usize::MAX;
/// The list head (`_M_before_begin`), as a node index.
const HEAD: usize = usize::MAX - 1;

/// The table: nodes in a singly linked list, each bucket pointing at the node before its
/// first one (or at the head).
pub(crate) struct MultiMap<'k> {
    keys: Vec<&'k [u8]>,
    hashes: Vec<u64>,
    next: Vec<usize>,
    head: usize,
    buckets: Vec<usize>,
    next_resize: u64,
}

impl<'k> MultiMap<'k> {
    pub fn new() -> MultiMap<'k> {
        MultiMap {
            keys: Vec::new(),
            hashes: Vec::new(),
            next: Vec::new(),
            head: NONE,
            buckets: vec![NONE],
            next_resize: 0,
        }
    }

    fn next_of(&self, n: usize) -> usize {
        if n == HEAD {
            self.head
        } else {
            self.next[n]
        }
    }

    fn set_next(&mut self, n: usize, to: usize) {
        if n == HEAD {
            self.head = to;
        } else {
            self.next[n] = to;
        }
    }

    /// `_Prime_rehash_policy::_M_next_bkt`.
    fn next_bucket_count(&mut self, n: u64) -> u64 {
        if let Some(&b) = FAST_BUCKETS.get(n as usize) {
            self.next_resize = b;
            return b;
        }
        let i = PRIMES[6..].partition_point(|&p| p < n) + 6;
        let p = PRIMES.get(i).copied().unwrap_or(n | 1);
        self.next_resize = p;
        p
    }

    /// `_Prime_rehash_policy::_M_need_rehash`, for `extra` more elements.
    fn need_rehash(&mut self, extra: u64) -> Option<u64> {
        let count = self.keys.len() as u64;
        let buckets = self.buckets.len() as u64;
        if count + extra <= self.next_resize {
            return None;
        }
        let min = (count + extra).max(if self.next_resize == 0 { 11 } else { 0 });
        if min >= buckets {
            return Some(self.next_bucket_count((min + 1).max(buckets * 2)));
        }
        self.next_resize = buckets;
        None
    }

    fn bucket(&self, n: usize, count: usize) -> usize {
        (self.hashes[n] % count as u64) as usize
    }

    /// `_M_rehash_aux` for equivalent keys: relative order of equal keys is kept.
    fn rehash(&mut self, count: u64) {
        let count = count as usize;
        let mut buckets = vec![NONE; count];
        let mut p = self.head;
        self.head = NONE;
        let (mut begin_bucket, mut prev_bucket, mut prev) = (0usize, 0usize, NONE);
        let mut check = false;
        while p != NONE {
            let next = self.next[p];
            let b = self.bucket(p, count);
            if prev != NONE && prev_bucket == b {
                self.next[p] = self.next[prev];
                self.next[prev] = p;
                check = true;
            } else {
                if check {
                    let after = self.next[prev];
                    if after != NONE {
                        let nb = self.bucket(after, count);
                        if nb != prev_bucket {
                            buckets[nb] = prev;
                        }
                    }
                    check = false;
                }
                if buckets[b] == NONE {
                    self.next[p] = self.head;
                    self.head = p;
                    buckets[b] = HEAD;
                    if self.next[p] != NONE {
                        buckets[begin_bucket] = p;
                    }
                    begin_bucket = b;
                } else {
                    let before = buckets[b];
                    self.next[p] = self.next_of(before);
                    self.set_next(before, p);
                }
            }
            prev = p;
            prev_bucket = b;
            p = next;
        }
        self.buckets = buckets;
    }

    /// The node before the first one equal to `key` in bucket `b`.
    fn find_before(&self, b: usize, key: &[u8]) -> Option<usize> {
        let mut before = self.buckets[b];
        if before == NONE {
            return None;
        }
        let mut p = self.next_of(before);
        loop {
            if self.keys[p] == key {
                return Some(before);
            }
            let n = self.next[p];
            if n == NONE || self.bucket(n, self.buckets.len()) != b {
                return None;
            }
            before = p;
            p = n;
        }
    }

    /// `insert(value)`; returns the node id (ids count up from 0).
    pub fn insert(&mut self, key: &'k [u8]) -> usize {
        if let Some(count) = self.need_rehash(1) {
            self.rehash(count);
        }
        let n = self.keys.len();
        self.keys.push(key);
        self.hashes.push(hash_bytes(key));
        self.next.push(NONE);
        let b = self.bucket(n, self.buckets.len());
        if let Some(before) = self.find_before(b, key) {
            self.next[n] = self.next_of(before);
            self.set_next(before, n);
        } else if self.buckets[b] != NONE {
            let before = self.buckets[b];
            self.next[n] = self.next_of(before);
            self.set_next(before, n);
        } else {
            self.next[n] = self.head;
            self.head = n;
            if self.next[n] != NONE {
                let nb = self.bucket(self.next[n], self.buckets.len());
                self.buckets[nb] = n;
            }
            self.buckets[b] = HEAD;
        }
        n
    }

    /// `insert(first, last)`: one rehash check for all, then inserts in turn.
    pub fn insert_all(&mut self, keys: &[&'k [u8]]) -> Vec<usize> {
        if keys.is_empty() {
            return Vec::new();
        }
        if let Some(count) = self.need_rehash(keys.len() as u64) {
            self.rehash(count);
        }
        keys.iter().map(|k| self.insert(k)).collect()
    }

    /// Node ids in iteration order.
    pub fn order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.keys.len());
        let mut p = self.head;
        while p != NONE {
            out.push(p);
            p = self.next[p];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_libstdcxx() {
        // std::hash<std::string>{}("") and ("a") with GCC 12 on x86-64.
        assert_eq!(hash_bytes(b""), 6_142_509_188_972_423_790);
        assert_eq!(hash_bytes(b"a"), 4_993_892_634_952_068_459);
    }

    /// Orders printed by g++ 12 for `unordered_multimap<string, int, H>` with `H` wrapping
    /// `std::hash<string>` (a "fast" hash, as SystemTap's `interned_string` hash is).
    #[test]
    fn orders_match_libstdcxx() {
        let keys: [&[u8]; 15] = [
            b"__chdir",
            b"__GI___chdir",
            b"chdir",
            b"__GI_chdir",
            b"chdir",
            b"x",
            b"y",
            b"z",
            b"w",
            b"v",
            b"u",
            b"t",
            b"s",
            b"r",
            b"q",
        ];
        let mut m = MultiMap::new();
        for k in keys {
            m.insert(k);
        }
        let first = m.order();
        assert_eq!(first, [14, 13, 0, 4, 2, 10, 3, 11, 5, 6, 7, 1, 8, 12, 9]);

        // `a.insert(n.begin(), n.end())` after four single inserts.
        let mut a = MultiMap::new();
        for k in [b"a", b"b", b"a", b"c"] {
            a.insert(k);
        }
        let ranged: Vec<&[u8]> = first.iter().map(|&i| keys[i]).collect();
        let ids = a.insert_all(&ranged);
        let value = |n: usize| match ids.iter().position(|&id| id == n) {
            Some(j) => first[j],
            None => n,
        };
        let got: Vec<usize> = a.order().into_iter().map(value).collect();
        assert_eq!(
            got,
            [9, 12, 8, 1, 7, 6, 5, 11, 3, 10, 2, 4, 0, 13, 14, 2, 0, 1, 3]
        );
    }
}
