//! Field offsets of kernel structures from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), for the context functions that read `task_struct`.
//!
//! The kernel describes its own types in BTF; the offsets of `task_struct.real_parent`,
//! `cred.euid` or `mm_struct.arg_start` change between builds and configurations, so
//! they are looked up, not assumed. Only what those functions need is parsed: struct
//! members, through anonymous structs and unions.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Byte offsets the task context functions read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskLayout {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_cred: u32,
    pub task_mm: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_env_start: u32,
    pub mm_env_end: u32,
}

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

struct Type {
    name: u32,
    kind: u32,
    kind_flag: bool,
    /// Size, or the referenced type.
    size_type: u32,
    /// (name, type, bit offset) of struct and union members.
    members: Vec<(u32, u32, u32)>,
}

struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs: HashMap<String, u32>,
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Btf {
    fn parse(b: &[u8]) -> Option<Btf> {
        if b.get(..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr = word(b, 4)? as usize;
        let (type_off, type_len) = (word(b, 8)? as usize, word(b, 12)? as usize);
        let (str_off, str_len) = (word(b, 16)? as usize, word(b, 20)? as usize);
        let strings = b.get(hdr + str_off..hdr + str_off + str_len)?.to_vec();
        let t = b.get(hdr + type_off..hdr + type_off + type_len)?;
        // Type 0 is void.
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            kind_flag: false,
            size_type: 0,
            members: Vec::new(),
        }];
        let mut at = 0;
        while at + 12 <= t.len() {
            let info = word(t, at + 4)?;
            let (vlen, kind) = ((info & 0xffff) as usize, (info >> 24) & 0x1f);
            let mut ty = Type {
                name: word(t, at)?,
                kind,
                kind_flag: info >> 31 == 1,
                size_type: word(t, at + 8)?,
                members: Vec::new(),
            };
            at += 12;
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => at += 4,
                KIND_ARRAY => at += 12,
                KIND_STRUCT | KIND_UNION => {
                    for _ in 0..vlen {
                        ty.members
                            .push((word(t, at)?, word(t, at + 4)?, word(t, at + 8)?));
                        at += 12;
                    }
                }
                KIND_ENUM | KIND_FUNC_PROTO => at += 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => at += 12 * vlen,
                _ => {}
            }
            types.push(ty);
        }
        let mut btf = Btf {
            types,
            strings,
            structs: HashMap::new(),
        };
        for (i, ty) in btf.types.iter().enumerate() {
            if ty.kind == KIND_STRUCT && !ty.members.is_empty() {
                let name = btf.name(ty.name).to_string();
                btf.structs.entry(name).or_insert(i as u32);
            }
        }
        Some(btf)
    }

    fn name(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize).map(|t| t.kind) {
                Some(KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) => {
                    id = self.types[id as usize].size_type;
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset of `member` in struct `id`, looking into anonymous members.
    fn member(&self, id: u32, member: &str) -> Option<u32> {
        let ty = self.types.get(id as usize)?;
        for &(name, mty, off) in &ty.members {
            let bits = if ty.kind_flag { off & 0xff_ffff } else { off };
            if name == 0 {
                let inner = self.resolve(mty);
                if matches!(
                    self.types.get(inner as usize)?.kind,
                    KIND_STRUCT | KIND_UNION
                ) {
                    if let Some(o) = self.member(inner, member) {
                        return Some(bits / 8 + o);
                    }
                }
            } else if self.name(name) == member {
                return Some(bits / 8);
            }
        }
        None
    }

    fn field(&self, s: &str, member: &str) -> Result<u32, String> {
        let id = *self
            .structs
            .get(s)
            .ok_or_else(|| format!("the kernel's BTF has no `struct {s}`"))?;
        self.member(id, member)
            .ok_or_else(|| format!("the kernel's BTF has no `{member}` in `struct {s}`"))
    }
}

/// The layout from BTF bytes.
pub fn layout_from(bytes: &[u8]) -> Result<TaskLayout, String> {
    let btf = Btf::parse(bytes).ok_or("the kernel's BTF cannot be parsed")?;
    Ok(TaskLayout {
        task_real_parent: btf.field("task_struct", "real_parent")?,
        task_tgid: btf.field("task_struct", "tgid")?,
        task_cred: btf.field("task_struct", "cred")?,
        task_mm: btf.field("task_struct", "mm")?,
        cred_euid: btf.field("cred", "euid")?,
        cred_egid: btf.field("cred", "egid")?,
        mm_arg_start: btf.field("mm_struct", "arg_start")?,
        mm_arg_end: btf.field("mm_struct", "arg_end")?,
        mm_env_start: btf.field("mm_struct", "env_start")?,
        mm_env_end: btf.field("mm_struct", "env_end")?,
    })
}

/// The running kernel's layout, read once.
pub fn running_kernel() -> Result<TaskLayout, String> {
    static LAYOUT: OnceLock<Result<TaskLayout, String>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let bytes = std::fs::read(BTF_PATH)
                .map_err(|e| format!("cannot read the kernel's BTF at {BTF_PATH}: {e}"))?;
            layout_from(&bytes)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made BTF: `struct task_struct { int pad; struct { int tgid; }; }`.
    #[test]
    fn members_inside_anonymous_structs() {
        let strings = b"\0int\0task_struct\0pad\0tgid\0";
        let mut t: Vec<u32> = Vec::new();
        // [1] int
        t.extend([1, KIND_INT << 24, 4, 32]);
        // [2] anonymous struct { int tgid; } at bit 0
        t.extend([0, (KIND_STRUCT << 24) | 1, 4, 21, 1, 0]);
        // [3] struct task_struct { int pad; <anon> at byte 8; }
        t.extend([5, (KIND_STRUCT << 24) | 2, 12, 17, 1, 0, 0, 2, 64]);
        let types: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            b.extend(w.to_le_bytes());
        }
        b.extend(&types);
        b.extend(strings);
        let btf = Btf::parse(&b).unwrap();
        assert_eq!(btf.field("task_struct", "tgid"), Ok(8));
        assert_eq!(btf.field("task_struct", "pad"), Ok(0));
        assert!(btf.field("task_struct", "mm").is_err());
    }
}
