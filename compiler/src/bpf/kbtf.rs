//! Field offsets of kernel structures from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), for the context functions that read `task_struct`.
//!
//! The kernel describes its own types in BTF; the offsets of `task_struct.real_parent`,
//! `cred.euid` or `mm_struct.arg_start` change between builds and configurations, so
//! they are looked up, not assumed. Only what those functions need is parsed: struct
//! members, through anonymous structs and unions.

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

/// The kernel's BTF, read in place: one pass records where each type starts, and
/// lookups read names and members from the bytes. Parsing every type into owned
/// structures cost ~20 ms of every start.
struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Byte offset in `types` of each type id; id 0 (void) has none.
    offsets: Vec<u32>,
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    fn parse(b: &'a [u8]) -> Option<Btf<'a>> {
        if b.get(..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr = word(b, 4)? as usize;
        let (type_off, type_len) = (word(b, 8)? as usize, word(b, 12)? as usize);
        let (str_off, str_len) = (word(b, 16)? as usize, word(b, 20)? as usize);
        let strings = b.get(hdr + str_off..hdr + str_off + str_len)?;
        let t = b.get(hdr + type_off..hdr + type_off + type_len)?;
        let mut offsets = vec![u32::MAX];
        let mut at = 0;
        while at + 12 <= t.len() {
            offsets.push(at as u32);
            let info = word(t, at + 4)?;
            let (vlen, kind) = ((info & 0xffff) as usize, (info >> 24) & 0x1f);
            at += 12;
            at += match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                _ => 0,
            };
        }
        Some(Btf {
            types: t,
            strings,
            offsets,
        })
    }

    fn at(&self, id: u32) -> Option<usize> {
        let off = *self.offsets.get(id as usize)?;
        (off != u32::MAX).then_some(off as usize)
    }

    /// (name offset, kind, vlen, kind_flag, size or referenced type) of a type.
    fn header(&self, id: u32) -> Option<(u32, u32, usize, bool, u32)> {
        let at = self.at(id)?;
        let info = word(self.types, at + 4)?;
        Some((
            word(self.types, at)?,
            (info >> 24) & 0x1f,
            (info & 0xffff) as usize,
            info >> 31 == 1,
            word(self.types, at + 8)?,
        ))
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        &s[..end]
    }

    /// The first struct with members named `name`.
    fn find_struct(&self, name: &str) -> Option<u32> {
        (1..self.offsets.len() as u32).find(|&id| {
            self.header(id).is_some_and(|(n, kind, vlen, _, _)| {
                kind == KIND_STRUCT && vlen > 0 && self.name(n) == name.as_bytes()
            })
        })
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.header(id) {
                Some((
                    _,
                    KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG,
                    _,
                    _,
                    next,
                )) => id = next,
                _ => break,
            }
        }
        id
    }

    /// Byte offset of `member` in struct `id`, looking into anonymous members.
    fn member(&self, id: u32, member: &str) -> Option<u32> {
        let (_, _, vlen, kind_flag, _) = self.header(id)?;
        let base = self.at(id)? + 12;
        for i in 0..vlen {
            let m = base + 12 * i;
            let (name, mty, off) = (
                word(self.types, m)?,
                word(self.types, m + 4)?,
                word(self.types, m + 8)?,
            );
            let bits = if kind_flag { off & 0xff_ffff } else { off };
            if name == 0 {
                let inner = self.resolve(mty);
                if matches!(self.header(inner)?.1, KIND_STRUCT | KIND_UNION) {
                    if let Some(o) = self.member(inner, member) {
                        return Some(bits / 8 + o);
                    }
                }
            } else if self.name(name) == member.as_bytes() {
                return Some(bits / 8);
            }
        }
        None
    }

    fn field(&self, id: Option<u32>, s: &str, member: &str) -> Result<u32, String> {
        let id = id.ok_or_else(|| format!("the kernel's BTF has no `struct {s}`"))?;
        self.member(id, member)
            .ok_or_else(|| format!("the kernel's BTF has no `{member}` in `struct {s}`"))
    }
}

/// The layout from BTF bytes.
pub fn layout_from(bytes: &[u8]) -> Result<TaskLayout, String> {
    let btf = Btf::parse(bytes).ok_or("the kernel's BTF cannot be parsed")?;
    let (task, cred, mm) = (
        btf.find_struct("task_struct"),
        btf.find_struct("cred"),
        btf.find_struct("mm_struct"),
    );
    Ok(TaskLayout {
        task_real_parent: btf.field(task, "task_struct", "real_parent")?,
        task_tgid: btf.field(task, "task_struct", "tgid")?,
        task_cred: btf.field(task, "task_struct", "cred")?,
        task_mm: btf.field(task, "task_struct", "mm")?,
        cred_euid: btf.field(cred, "cred", "euid")?,
        cred_egid: btf.field(cred, "cred", "egid")?,
        mm_arg_start: btf.field(mm, "mm_struct", "arg_start")?,
        mm_arg_end: btf.field(mm, "mm_struct", "arg_end")?,
        mm_env_start: btf.field(mm, "mm_struct", "env_start")?,
        mm_env_end: btf.field(mm, "mm_struct", "env_end")?,
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
        let task = btf.find_struct("task_struct");
        assert_eq!(task, Some(3));
        assert_eq!(btf.field(task, "task_struct", "tgid"), Ok(8));
        assert_eq!(btf.field(task, "task_struct", "pad"), Ok(0));
        assert!(btf.field(task, "task_struct", "mm").is_err());
        assert!(btf.find_struct("cred").is_none());
    }
}
