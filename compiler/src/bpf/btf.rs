//! The BTF rtap emits: function types for programs with callbacks, and key and value
//! types for maps that must have them.
//!
//! The verifier accepts a callback (`ld_imm64` with `BPF_PSEUDO_FUNC`) only when the
//! program carries `func_info`: one record per subprogram naming a `BTF_KIND_FUNC`,
//! static for callbacks. Task-storage maps must name an `int` key and a sized value
//! type. Nothing else needs BTF, so this is all rtap emits.

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const LINKAGE_STATIC: u32 = 0;
const LINKAGE_GLOBAL: u32 = 1;
const INT_SIGNED: u32 = 1;

/// Type id of the main program's `BTF_KIND_FUNC`.
pub const MAIN_FUNC: u32 = 4;
/// Type id of every callback's `BTF_KIND_FUNC` (`long cb(map, key, value, ctx)`).
pub const CALLBACK_FUNC: u32 = 6;

fn info(kind: u32, vlen: u32) -> u32 {
    (kind << 24) | vlen
}

/// The BTF blob: `int`, `void *`, and the two function types.
pub fn func_btf() -> Vec<u8> {
    let mut strings = vec![0u8];
    let mut name = |s: &str| {
        let off = strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off
    };
    let (int, ctx, main, each) = (
        name("int"),
        name("ctx"),
        name("rtap_probe"),
        name("rtap_each"),
    );
    let arg_names = [name("map"), name("key"), name("value"), name("data")];
    let mut types: Vec<u32> = Vec::new();
    // [1] int: name, info, size, then encoding | offset | bits.
    types.extend([int, info(KIND_INT, 0), 4, (INT_SIGNED << 24) | 32]);
    // [2] void *.
    types.extend([0, info(KIND_PTR, 0), 0]);
    // [3] int (void *ctx).
    types.extend([0, info(KIND_FUNC_PROTO, 1), 1, ctx, 2]);
    // [4] the main program.
    types.extend([main, info(KIND_FUNC, LINKAGE_GLOBAL), 3]);
    // [5] int (void *map, void *key, void *value, void *data).
    types.extend([0, info(KIND_FUNC_PROTO, 4), 1]);
    for a in arg_names {
        types.extend([a, 2]);
    }
    // [6] a callback.
    types.extend([each, info(KIND_FUNC, LINKAGE_STATIC), 5]);
    blob(&types, &strings)
}

/// Type ids in [`map_btf`]: the key `int` and the value `unsigned char[N]`.
pub const MAP_KEY_TYPE: u32 = 1;
pub const MAP_VALUE_TYPE: u32 = 3;

/// Key and value types for a map with an `int` key and `value_size` opaque bytes.
pub fn map_btf(value_size: u32) -> Vec<u8> {
    let strings = b"\0int\0unsigned char\0".to_vec();
    let mut types: Vec<u32> = Vec::new();
    // [1] int.
    types.extend([1, info(KIND_INT, 0), 4, (INT_SIGNED << 24) | 32]);
    // [2] unsigned char.
    types.extend([5, info(KIND_INT, 0), 1, 8]);
    // [3] unsigned char[value_size]: element type, index type, count.
    types.extend([0, info(KIND_ARRAY, 0), 0, 2, 1, value_size]);
    blob(&types, &strings)
}

/// A BTF blob: header, type section, string section.
fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.push(1); // version
    out.push(0); // flags
    let header = [
        24u32,
        0,
        type_bytes.len() as u32,
        type_bytes.len() as u32,
        strings.len() as u32,
    ];
    for w in header {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&type_bytes);
    out.extend_from_slice(strings);
    out
}

/// `struct bpf_func_info` records (`insn_off`, `type_id`): the main program, then each callback.
pub fn func_info(subprograms: &[u32]) -> Vec<[u32; 2]> {
    std::iter::once([0, MAIN_FUNC])
        .chain(subprograms.iter().map(|&s| [s, CALLBACK_FUNC]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's sections cover the blob exactly.
    #[test]
    fn header_matches_sections() {
        let b = func_btf();
        let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!(&b[..2], &BTF_MAGIC.to_le_bytes());
        assert_eq!(word(4), 24);
        let (type_len, str_off, str_len) = (word(12), word(16), word(20));
        assert_eq!(str_off, type_len);
        assert_eq!(b.len() as u32, 24 + type_len + str_len);
        assert_eq!(func_info(&[7]), vec![[0, MAIN_FUNC], [7, CALLBACK_FUNC]]);
        let m = map_btf(40);
        let word = |i: usize| u32::from_le_bytes(m[i..i + 4].try_into().unwrap());
        // Three types: int (16 bytes), unsigned char (16), the array (24).
        assert_eq!(word(12), 56);
        assert_eq!(word(24 + 32 + 20), 40);
    }
}
