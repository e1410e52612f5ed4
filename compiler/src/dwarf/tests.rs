//! Unit tests of DWARF resolution on the fixtures built with gcc.

use super::*;
use crate::access::{AccessOp, DwarfReg};
use std::process::Command;
use std::sync::Mutex;

/// Builds `tests/fixtures/NAME.c` at `opt` once per test run into a temp dir.
pub(crate) fn fixture(name: &str, opt: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let key = format!("{name}{opt}");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == key) {
        return p.clone();
    }
    let dir = std::env::temp_dir().join("rtap-dwarf-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    // Built as tests/build.rs does (from tests/, relative source), so file names match.
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let src = format!("fixtures/{name}.c");
    let out = dir.join(&key);
    // Built under a private name, then renamed: concurrent test runs never see half a file.
    let tmp = dir.join(format!("{key}.{}", std::process::id()));
    let status = Command::new("gcc")
        .current_dir(&tests)
        .args(["-g", opt, "-pthread", "-o"])
        .arg(&tmp)
        .arg(&src)
        .status()
        .expect("gcc builds the fixtures");
    assert!(status.success(), "gcc failed on {src}");
    std::fs::rename(&tmp, &out).unwrap();
    built.push((key, out.clone()));
    out
}

fn site(b: &Binary, name: &str) -> FunctionSite {
    let mut s = b.functions(&FunctionPattern::parse(name).unwrap());
    s.retain(|s| s.kind != InstanceKind::Inline);
    assert_eq!(s.len(), 1, "one out-of-line `{name}`: {s:?}");
    s.remove(0)
}

fn path(text: &str) -> TargetPath {
    let (address_of, text) = match text.strip_prefix('&') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let text = text.strip_prefix('$').unwrap();
    let mut parts = text.split("->");
    let base = match parts.next().unwrap() {
        "return" => PathBase::Return,
        v => PathBase::Var(v.to_string()),
    };
    let mut chain = Vec::new();
    for p in parts {
        match p.strip_suffix("[]") {
            Some(m) => {
                chain.push(PathStep::Member(m.to_string()));
                chain.push(PathStep::Index);
            }
            None => chain.push(PathStep::Member(p.to_string())),
        }
    }
    TargetPath {
        base,
        chain,
        address_of,
    }
}

fn ops(b: &Binary, s: &FunctionSite, ret: bool, expr: &str) -> (Vec<AccessOp>, String) {
    let p = b
        .plan(s, ret, &path(expr))
        .unwrap_or_else(|e| panic!("{expr}: {}", e.message));
    (p.ops, p.value.c_type)
}

fn load(size: u8, signed: bool) -> AccessOp {
    AccessOp::Load { size, signed }
}

#[test]
fn send_msg_at_o0_reads_stack_slots_after_the_prologue() {
    let b = Binary::open(&fixture("sendmsg", "-O0")).unwrap();
    let s = site(&b, "send_msg");
    assert!(s.probe > s.entry, "probe after the prologue");
    assert_eq!(s.decl_line, Some(20));
    let (m, ty) = ops(&b, &s, false, "$m");
    assert_eq!(ty, "struct msg*");
    // rbp- or rsp-relative slot from the CFA, then a load.
    let [AccessOp::RegAddr { reg, offset }, l] = m.as_slice() else {
        panic!("{m:?}")
    };
    assert!(matches!(reg.0, 6 | 7) && *offset < 0, "{m:?}");
    assert_eq!(*l, load(8, false));
    let (q, ty) = ops(&b, &s, false, "$q");
    assert_eq!(
        (q.len(), q[1].clone(), ty.as_str()),
        (2, load(4, true), "int")
    );
    let (iface, ty) = ops(&b, &s, false, "$m->interface");
    assert_eq!(&iface[..2], &m[..]);
    assert_eq!(&iface[2..], &[AccessOp::Add(8), load(8, false)]);
    assert_eq!(ty, "char const*");
    let (serial, ty) = ops(&b, &s, false, "$m->serial");
    assert_eq!(&serial[2..], &[AccessOp::Add(24), load(8, true)]);
    assert_eq!(ty, "long int");
    let (addr, ty) = ops(&b, &s, false, "&$m->serial");
    assert_eq!(&addr[2..], &[AccessOp::Add(24)]);
    assert_eq!(ty, "long int*");
    let (r, ty) = ops(&b, &s, true, "$return");
    assert_eq!(
        (r, ty.as_str()),
        (
            vec![
                AccessOp::Reg(DwarfReg(0)),
                AccessOp::Bitfield {
                    shift: 0,
                    bits: 32,
                    signed: true
                }
            ],
            "int"
        )
    );
}

#[test]
fn send_msg_at_o2_reads_registers_at_the_entry() {
    let b = Binary::open(&fixture("sendmsg", "-O2")).unwrap();
    let s = site(&b, "send_msg");
    assert_eq!(s.probe, s.entry);
    let (m, _) = ops(&b, &s, false, "$m");
    assert_eq!(m, vec![AccessOp::Reg(DwarfReg(5))]);
    let (q, _) = ops(&b, &s, false, "$q");
    assert_eq!(q[0], AccessOp::Reg(DwarfReg(4)));
    let (iface, _) = ops(&b, &s, false, "$m->interface");
    assert_eq!(
        iface,
        vec![AccessOp::Reg(DwarfReg(5)), AccessOp::Add(8), load(8, false)]
    );
    let err = b.plan(&s, false, &path("$local")).unwrap_err();
    assert_eq!(err.message, "`$local` is optimized out at `send_msg`");
}

#[test]
fn misses_explain_themselves() {
    let b = Binary::open(&fixture("sendmsg", "-O0")).unwrap();
    let s = site(&b, "send_msg");
    let e = b.plan(&s, false, &path("$len")).unwrap_err();
    assert_eq!(
        e.message,
        "`$len` is not in scope at `send_msg`; available: `$m`, `$q`, `$local`"
    );
    let e = b.plan(&s, false, &path("$m->foo")).unwrap_err();
    assert_eq!(
        e.message,
        "no member `foo` in `struct msg`; members are: `type`, `interface`, `member`, `serial`"
    );
    assert_eq!(e.step, Some(0));
    let e = b.plan(&s, false, &path("$return")).unwrap_err();
    assert_eq!(e.message, "`$return` is only available in `.return` probes");
    let e = Binary::open(Path::new("/nonexistent/app")).unwrap_err();
    assert_eq!(e.to_string(), "`/nonexistent/app` not found");
    let stripped = std::env::temp_dir().join(format!("rtap-dwarf-stripped-{}", std::process::id()));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(fixture("sendmsg", "-O0"))
        .status()
        .expect("binutils strip");
    assert!(ok.success());
    // Without debug info the functions still come from the symbol table; only target
    // variables fail, naming where the debug info was looked for.
    let b = Binary::open(&stripped).unwrap();
    let _ = std::fs::remove_file(&stripped);
    let e = b.has_debug_info().unwrap_err().message;
    assert!(e.contains("has no debug info; looked in `/tmp/"), "{e}");
    assert!(e.contains("`/usr/lib/debug/.build-id/"), "{e}");
    let sites = b.functions(&FunctionPattern::parse("send_msg").unwrap());
    assert_eq!(sites.len(), 1, "{sites:?}");
}

fn site_kind(b: &Binary, name: &str, kind: InstanceKind) -> FunctionSite {
    let s = b.functions(&FunctionPattern::parse(name).unwrap());
    s.into_iter()
        .find(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} `{name}`"))
}

#[test]
fn members_bitfields_unions_and_arrays() {
    let b = Binary::open(&fixture("types", "-O0")).unwrap();
    let s = site(&b, "inspect");
    let (base, ty) = ops(&b, &s, false, "$b");
    assert_eq!(ty, "box_t*");
    let tail = |expr: &str| {
        let (o, ty) = ops(&b, &s, false, expr);
        assert_eq!(&o[..base.len()], &base[..], "{expr}");
        (o[base.len()..].to_vec(), ty)
    };
    let bf = |shift, bits, signed| AccessOp::Bitfield {
        shift,
        bits,
        signed,
    };
    // struct flags sits after name[16] and values[4]: byte 32.
    assert_eq!(
        tail("$b->fl->level"),
        (
            vec![AccessOp::Add(32), load(1, false), bf(1, 5, true)],
            "int".into()
        )
    );
    assert_eq!(
        tail("$b->fl->mode"),
        (
            vec![AccessOp::Add(32), load(2, false), bf(6, 3, false)],
            "unsigned int".into()
        )
    );
    let idx = AccessOp::AddIndex {
        accessor: 1,
        stride: 4,
    };
    assert_eq!(
        tail("$b->values[]"),
        (vec![AccessOp::Add(16), idx, load(4, true)], "int".into())
    );
    let (name, ty) = tail("$b->name");
    assert_eq!((name, ty.as_str()), (vec![], "char[]"));
    let p = b.plan(&s, false, &path("$b->name")).unwrap();
    assert!(p.value.is_char_pointer && p.value.is_pointer);
    assert_eq!(tail("$b->live").1, "_Bool");
    assert_eq!(tail("$b->callback").1, "int (*) (int)");
    assert_eq!(tail("&$b->size").1, "ulong_t*");
    let (label, ty) = tail("$b->next->label");
    assert_eq!(ty, "char const*");
    assert_eq!(label.len(), 4);
    let (c, ty) = ops(&b, &s, false, "$c");
    assert_eq!((c[1].clone(), ty.as_str()), (load(4, false), "enum color"));
    // `hi` lives in an anonymous struct inside the union.
    let (hi, ty) = ops(&b, &s, false, "$w->hi");
    assert_eq!(
        (hi[1..].to_vec(), ty.as_str()),
        (vec![load(2, true)], "short int")
    );
    // A double reads as the long with its bits, as in SystemTap.
    let (ratio, ty) = ops(&b, &s, false, "$b->ratio");
    assert_eq!(
        (ratio.last().cloned(), ty.as_str()),
        (Some(load(8, false)), "double")
    );
    let err = |expr: &str| b.plan(&s, false, &path(expr)).unwrap_err().message;
    assert_eq!(
        err("$b->fl"),
        "`$b->fl` is a `struct flags`, not a scalar; pick a member or take its address"
    );
    assert_eq!(
        err("$b->fl->ready->x"),
        "`$b->fl->ready` is a bitfield, it has no members or elements"
    );
    assert_eq!(
        err("$c->x"),
        "`$c` has type `enum color`, not a struct, union or pointer to one"
    );
}

#[test]
fn inline_instances_use_the_enclosing_frame() {
    let b = Binary::open(&fixture("types", "-O0")).unwrap();
    let s = site_kind(&b, "add_inline", InstanceKind::Inline);
    let (a, ty) = ops(&b, &s, false, "$a");
    assert!(
        matches!(
            a[0],
            AccessOp::RegAddr {
                reg: DwarfReg(6 | 7),
                ..
            }
        ),
        "{a:?}"
    );
    assert_eq!((a[1].clone(), ty.as_str()), (load(4, true), "int"));
}

#[test]
fn clones_are_found_by_their_dwarf_name() {
    let b = Binary::open(&fixture("types", "-O2")).unwrap();
    let s = site_kind(&b, "scale", InstanceKind::OutOfLine);
    assert_eq!(s.probe, s.entry);
    let (v, ty) = ops(&b, &s, false, "$v");
    assert_eq!(
        (v, ty.as_str()),
        (vec![AccessOp::Reg(DwarfReg(5))], "long int")
    );
    let (f, _) = ops(&b, &s, false, "$factor");
    assert_eq!(f, vec![AccessOp::Const(3)]);
    let (r, ty) = ops(&b, &s, true, "$return");
    assert_eq!(
        (r, ty.as_str()),
        (vec![AccessOp::Reg(DwarfReg(0))], "long int")
    );
    let touch = site_kind(&b, "touch", InstanceKind::OutOfLine);
    let e = b.plan(&touch, true, &path("$return")).unwrap_err();
    assert_eq!(
        e.message,
        "`$return` is not available: `touch` returns `void`"
    );
}

/// The variables `-L` prints come from the unit scan; they must equal a walk of the DIEs
/// for every instance (parameters, locals, clones, inlined copies, optimized or not).
#[test]
fn scanned_variables_match_the_die_walk() {
    let mut total = 0;
    for (name, opt) in [
        ("sendmsg", "-O0"),
        ("sendmsg", "-O2"),
        ("types", "-O0"),
        ("types", "-O2"),
    ] {
        let b = Binary::open(&fixture(name, opt)).unwrap();
        let sites = b.functions(&FunctionPattern::parse("*").unwrap());
        let mut compared = 0;
        for s in sites.iter().filter(|s| s.die.is_some()) {
            let fd = s.die.unwrap();
            let fast = listvars::listed(&b.loaded, b.index(), fd, s.probe);
            let walked = scope::walked_variables(&b.loaded, b.index(), fd, s);
            let fast =
                fast.unwrap_or_else(|| panic!("`{}` in {name}{opt} was not scanned", s.name));
            assert_eq!(fast, walked, "`{}` in {name}{opt}", s.name);
            compared += usize::from(!walked.is_empty());
        }
        assert!(compared > 0, "{name}{opt}: no instance with variables");
        total += compared;
    }
    assert!(total > 8, "only {total} instances with variables");
}
