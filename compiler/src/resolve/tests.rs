//! Resolution on the `sendmsg` fixture: sites, plans, diagnostics, `?`/`!`/`@defined`.

use super::*;
use rtap_lang::span::SourceFile;

/// Parse, check and resolve a script against the `sendmsg` fixture at `opt`.
fn run(
    script: &str,
    opt: &str,
) -> (
    hir::Program,
    SourceMap,
    Result<Vec<ResolvedProbe>, Vec<String>>,
) {
    let fx = crate::dwarf::test_fixture("sendmsg", opt);
    let fx = std::fs::canonicalize(fx).unwrap();
    let text = script.replace("@FX@", &fx.display().to_string());
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new("t.stp", text));
    let ast = rtap_lang::parse(&sources, file, &rtap_lang::ScriptArgs::default()).unwrap();
    let (program, diags) = rtap_lang::check(&ast, &sources);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let program = program.unwrap();
    let mut cache = Cache::new();
    let r = resolve(&program, &sources, &mut cache)
        .map(|r| r.probes)
        .map_err(|ds| {
            ds.iter()
                .map(|d| {
                    let span = d
                        .primary
                        .as_ref()
                        .map(|l| sources.snippet(l.span))
                        .unwrap_or("");
                    format!("{} @ {span}", d.message)
                })
                .collect()
        });
    (program, sources, r)
}

fn uprobe(p: &ResolvedProbe) -> &UprobeSite {
    match &p.site {
        Site::Uprobe(u) => u,
        other => panic!("not a uprobe: {other:?}"),
    }
}

#[test]
fn function_probe_sites_and_plans() {
    let (_, _, r) = run(
        r#"probe process("@FX@").function("send_msg") { printf("%s %d\n", user_string($m->interface), $q) }"#,
        "-O0",
    );
    let probes = r.unwrap();
    assert_eq!(probes.len(), 1);
    let u = uprobe(&probes[0]);
    assert!(!u.retprobe && u.function == "send_msg");
    assert!(
        u.pp.ends_with(".function(\"send_msg@fixtures/sendmsg.c:20\")"),
        "{}",
        u.pp
    );
    let b = Binary::open(&u.path).unwrap();
    let s = &b.functions(&FunctionPattern::parse("send_msg").unwrap())[0];
    assert_eq!((u.vaddr, Some(u.offset)), (s.probe, b.file_offset(s.probe)));
    assert_eq!(probes[0].targets.len(), 2);
    let types: Vec<_> = probes[0]
        .targets
        .values()
        .map(|p| p.value.c_type.as_str())
        .collect();
    assert!(
        types.contains(&"char const*") && types.contains(&"int"),
        "{types:?}"
    );
}

#[test]
fn return_probes_sit_at_the_entry() {
    let (_, _, r) = run(
        r#"probe process("@FX@").function("send_msg").return { println($return) }"#,
        "-O0",
    );
    let probes = r.unwrap();
    let u = uprobe(&probes[0]);
    assert!(u.retprobe && u.pp.ends_with(".return"));
    let b = Binary::open(&u.path).unwrap();
    assert_eq!(
        u.vaddr,
        b.functions(&FunctionPattern::parse("send_msg").unwrap())[0].entry
    );
    assert_eq!(
        probes[0].targets.values().next().unwrap().value.c_type,
        "int"
    );
}

#[test]
fn errors_point_at_the_expression() {
    let (_, _, r) = run(
        r#"probe process("@FX@").function("send_msg") { println($len + $m->foo) }
probe process("@FX@").function("nope") { }"#,
        "-O0",
    );
    let errs = r.unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        errs[0],
        "`$len` is not in scope at `send_msg`; available: `$m`, `$q`, `$local` @ $len"
    );
    assert!(
        errs[1].starts_with("no member `foo` in `struct msg`"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].starts_with("unable to find function `nope` in `/"),
        "{}",
        errs[2]
    );
    let (_, _, r) = run(
        r#"probe process("@FX@").function("send_msg") { println($local) }"#,
        "-O2",
    );
    assert_eq!(
        r.unwrap_err(),
        vec!["`$local` is optimized out at `send_msg` @ $local"]
    );
}

#[test]
fn optional_sufficient_and_defined() {
    let (_, _, r) = run(
        r#"probe process("@FX@").function("nope")? { }
probe process("@FX@").function("send_msg")!, process("@FX@").function("main") {
println(@defined($nope) ? $nope : 0, @defined($q) ? $q : 1)
}"#,
        "-O0",
    );
    let probes = r.unwrap();
    assert_eq!(probes.len(), 1, "the `!` point stops the alternatives");
    assert_eq!(uprobe(&probes[0]).function, "send_msg");
    let mut defined: Vec<bool> = probes[0].defined.values().copied().collect();
    defined.sort();
    assert_eq!(defined, vec![false, true]);
    assert_eq!(probes[0].targets.len(), 2, "`$q` twice; `$nope` never");
}
