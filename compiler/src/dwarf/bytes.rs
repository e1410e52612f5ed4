//! Section bytes behind the gimli reader: inflated into a shared buffer, or read in place from the mapping.

use std::sync::Arc;

/// The bytes of one section; clones share them.
#[derive(Clone)]
pub(crate) enum Bytes {
    Owned(Arc<[u8]>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
}

impl Bytes {
    /// `len` bytes at `start` of a mapping; `None` past its end.
    pub fn mapped(map: &Arc<memmap2::Mmap>, start: usize, len: usize) -> Option<Bytes> {
        (start.checked_add(len)? <= map.len()).then(|| Bytes::Mapped {
            map: map.clone(),
            start,
            len,
        })
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(b) => b,
            Bytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

// SAFETY: both variants deref to memory that never moves while a clone lives: an `Arc`'s
// heap buffer, or a read-only mapping kept alive by an `Arc` (the pattern gimli documents
// for `EndianReader`).
unsafe impl gimli::StableDeref for Bytes {}
// SAFETY: as above; a clone shares the same buffer or mapping.
unsafe impl gimli::CloneStableDeref for Bytes {}
