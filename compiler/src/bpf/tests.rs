//! Unit tests of code generation on hand-built programs: layouts, attachment, diagnostics, jump sanity.

use super::insn::{Helper, Insn};
use super::testing::{resolve_trivial, Hb};
use super::{codegen, disassemble, CodegenOptions};
use crate::access::{AccessOp, AccessPlan, DwarfReg, ValueInfo};
use crate::object::*;
use crate::resolved::{ResolvedProbe, ResolvedProgram, Site, UprobeSite};
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::*;
use rtap_lang::span::{SourceFile, SourceMap};
use std::collections::HashMap;

fn sources() -> SourceMap {
    let mut sm = SourceMap::default();
    sm.add(SourceFile::new("t.stp", "probe begin { printf(\"x\") }\n"));
    sm
}

fn compile(p: &Program) -> Result<BpfObject, Vec<Diagnostic>> {
    let r = resolve_trivial(p).map_err(|d| d.to_vec())?;
    codegen(&r, &sources(), &CodegenOptions::default())
}

fn begin(h: &Hb, locals: Vec<Local>, body: Vec<Stmt>) -> Probe {
    // timer.profile runs in BPF; begin handlers run in the user-space interpreter.
    h.probe(ProbeKind::TimerProfile, "timer.profile", locals, body)
}

/// Every jump lands inside the program and never in the second half of an `ld_imm64`,
/// and the last instruction does not fall through.
fn assert_jumps_sane(insns: &[Insn]) {
    let mut second_half = vec![false; insns.len()];
    for i in 0..insns.len() {
        if insns[i].is_ld_imm64() {
            second_half[i + 1] = true;
        }
    }
    for (i, insn) in insns.iter().enumerate() {
        if insn.is_jump() && !second_half[i] {
            let t = i as i64 + 1 + insn.off as i64;
            assert!(
                t >= 0 && (t as usize) < insns.len(),
                "jump at {i} out of range"
            );
            assert!(!second_half[t as usize], "jump at {i} into an ld_imm64");
        }
    }
    // Control never runs off the end.
    let last = insns.last().copied().unwrap_or_default();
    assert!(
        last == Insn::exit() || last.code == 0x05,
        "ends with {last}"
    );
}

fn calls(insns: &[Insn], h: Helper) -> usize {
    insns.iter().filter(|i| **i == Insn::call(h)).count()
}

/// A printf record has the 24-byte header (event, probe point, pid/tid, time), then
/// 8-byte longs and `MAXSTRINGLEN` string slots, in order.
#[test]
fn printf_record_layout() {
    let mut h = Hb::default();
    let pid = h.builtin("pid", vec![], Type::Long);
    let name = h.builtin("execname", vec![], Type::String);
    let pf = h.printf("{d} {s}\n", vec![pid, name]);
    let p = h.program(
        vec![],
        vec![],
        vec![begin(&h, vec![], vec![h.stmt(StmtKind::Expr(pf))])],
    );
    let obj = compile(&p).unwrap();
    assert_eq!(obj.events.len(), 1);
    let e = &obj.events[0];
    assert!(matches!(e.kind, EventKind::Printf(_)));
    assert_eq!(e.size, PRINTF_HEADER + 8 + 512);
    assert_eq!(
        e.fields,
        vec![
            Field {
                offset: 24,
                kind: FieldKind::Long
            },
            Field {
                offset: 32,
                kind: FieldKind::Str { cap: 512 }
            },
        ]
    );
    let prog = &obj.programs[0];
    assert_eq!(prog.kind, ProgramKind::PerfEvent);
    assert!(matches!(
        prog.attach,
        Attach::Timer {
            every_cpu: true,
            ..
        }
    ));
    assert_eq!(calls(&prog.insns, Helper::RingbufReserve), 1);
    assert_eq!(calls(&prog.insns, Helper::RingbufSubmit), 1);
    assert_eq!(calls(&prog.insns, Helper::GetCurrentComm), 1);
    assert_jumps_sane(&prog.insns);
    assert_eq!(prog.notes[0].location, "t.stp:1:1");
    assert_eq!(prog.notes[0].text, "probe begin { printf(\"x\") }");
    // The always-present maps come first.
    assert_eq!(obj.maps[obj.ringbuf.0 as usize].kind, MapKind::RingBuf);
    assert_eq!(obj.maps[obj.counters.0 as usize].max_entries, COUNTER_SLOTS);
    assert_eq!(obj.maps[obj.config.0 as usize].max_entries, CONFIG_SLOTS);
}

/// Division checks its divisor at run time and reports "division by 0" with a location.
#[test]
fn division_raises_a_runtime_error() {
    let mut h = Hb::default();
    let one = h.long(1);
    let z = h.local(0, Type::Long);
    let d = h.bin(BinOp::Div, one, z);
    let pf = h.printf("{d}", vec![d]);
    let locals = vec![h.local_decl("z", Type::Long)];
    let p = h.program(
        vec![],
        vec![],
        vec![begin(&h, locals, vec![h.stmt(StmtKind::Expr(pf))])],
    );
    let obj = compile(&p).unwrap();
    let err = obj
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Error { message, .. } if message == "division by 0"))
        .expect("an error event");
    assert_eq!(err.size, 16);
    assert!(obj.programs[0]
        .insns
        .iter()
        .any(|i| i.code == 0x3f && i.off == 1));
    assert_jumps_sane(&obj.programs[0].insns);
}

/// Without any possible error, no error block is emitted (the verifier rejects dead code).
#[test]
fn no_error_block_without_errors() {
    let mut h = Hb::default();
    let pf = h.printf("hi\n", vec![]);
    let p = h.program(
        vec![],
        vec![],
        vec![begin(&h, vec![], vec![h.stmt(StmtKind::Expr(pf))])],
    );
    let obj = compile(&p).unwrap();
    assert!(obj
        .events
        .iter()
        .all(|e| !matches!(e.kind, EventKind::Error { .. })));
    // Reserve for the printf only; the lost-record path bumps the counter.
    assert_eq!(calls(&obj.programs[0].insns, Helper::RingbufReserve), 1);
}

/// Target variables are rejected outside process probes, with the span.
#[test]
fn target_outside_uprobe_is_an_error() {
    let mut h = Hb::default();
    let t = TargetExpr {
        base: TargetBase::Var("x".into()),
        chain: vec![],
        address_of: false,
        pretty: None,
        span: h.span,
    };
    let e = h.expr(ExprKind::Target(t), Type::Long);
    let pf = h.printf("{d}", vec![e]);
    let p = h.program(
        vec![],
        vec![],
        vec![begin(&h, vec![], vec![h.stmt(StmtKind::Expr(pf))])],
    );
    let d = compile(&p).unwrap_err();
    assert!(
        d[0].message.contains("only available in process probes"),
        "{:?}",
        d
    );
}

/// `foreach` walks the array with a callback subprogram: the program lists where it
/// starts, the `ld_imm64` that names it points there, and the callback ends in `exit`.
#[test]
fn foreach_uses_a_callback_subprogram() {
    let h = Hb::default();
    let body = h.stmt(StmtKind::Block(h.block(vec![])));
    let fe = Foreach {
        value: None,
        keys: vec![LocalId(0)],
        array: GlobalId(0),
        slice: None,
        sort: None,
        limit: None,
        body: Box::new(body),
    };
    let s = h.stmt(StmtKind::Foreach(Box::new(fe)));
    let g = h.global_decl("a", Type::Long, vec![Type::Long]);
    let locals = vec![h.local_decl("k", Type::Long)];
    let p = h.program(vec![g], vec![], vec![begin(&h, locals, vec![s])]);
    let obj = compile(&p).unwrap();
    let prog = &obj.programs[0];
    assert_eq!(calls(&prog.insns, Helper::ForEachMapElem), 1);
    assert_eq!(prog.subprograms.len(), 1);
    let start = prog.subprograms[0] as usize;
    let at = prog
        .insns
        .iter()
        .position(|i| i.is_ld_imm64() && i.src() == super::insn::BPF_PSEUDO_FUNC)
        .unwrap();
    assert_eq!(at as i64 + 1 + prog.insns[at].imm as i64, start as i64);
    assert_eq!(
        prog.insns[start - 1].code & 0x07,
        0x05,
        "main ends in a jump"
    );
    assert_jumps_sane(&prog.insns);
}

/// Recursive functions cannot be inlined and say so.
#[test]
fn recursion_is_rejected() {
    let mut h = Hb::default();
    let call = h.expr(
        ExprKind::Call {
            func: FuncId(0),
            args: vec![],
        },
        Type::Long,
    );
    let body = h.block(vec![h.stmt(StmtKind::Return(Some(call)))]);
    let f = Function {
        name: "f".into(),
        params: vec![],
        locals: vec![],
        ret: Type::Long,
        body,
        span: h.span,
    };
    let outer = h.expr(
        ExprKind::Call {
            func: FuncId(0),
            args: vec![],
        },
        Type::Long,
    );
    let p = h.program(
        vec![],
        vec![f],
        vec![begin(&h, vec![], vec![h.stmt(StmtKind::Expr(outer))])],
    );
    let d = compile(&p).unwrap_err();
    assert!(d[0].message.contains("recursive call of `f`"), "{:?}", d);
}

/// More locals than the 512-byte stack holds is a compile error, not a verifier failure.
#[test]
fn stack_overflow_is_reported() {
    let h = Hb::default();
    let locals = (0..70)
        .map(|i| h.local_decl(&format!("v{i}"), Type::Long))
        .collect();
    let p = h.program(vec![], vec![], vec![begin(&h, locals, vec![])]);
    let d = compile(&p).unwrap_err();
    assert!(
        d[0].message.contains("bytes of stack, more than 512"),
        "{:?}",
        d
    );
}

/// Globals get one map each, described for the runtime.
#[test]
fn globals_have_maps_and_specs() {
    let h = Hb::default();
    let globals = vec![
        h.global_decl("n", Type::Long, vec![]),
        h.global_decl("a", Type::Long, vec![Type::String, Type::Long]),
        h.global_decl("s", Type::Stats, vec![]),
    ];
    let p = h.program(globals, vec![], vec![begin(&h, vec![], vec![])]);
    let obj = compile(&p).unwrap();
    let a = &obj.globals[1];
    let m = &obj.maps[a.map.0 as usize];
    assert_eq!(
        (m.kind, m.key_size, m.value_size, m.max_entries),
        (MapKind::Hash, 520, 8, 2048)
    );
    assert_eq!(a.keys[1].offset, 512);
    let s = &obj.maps[obj.globals[2].map.0 as usize];
    assert_eq!((s.kind, s.value_size), (MapKind::PercpuArray, 40));
}

/// A uprobe program reads registers from `pt_regs` and biases static addresses by the site's vaddr.
#[test]
fn uprobe_site_and_access_plan() {
    let mut h = Hb::default();
    let t = TargetExpr {
        base: TargetBase::Var("q".into()),
        chain: vec![],
        address_of: false,
        pretty: None,
        span: h.span,
    };
    let e = h.expr(ExprKind::Target(t), Type::Long);
    let id = e.id;
    let pf = h.printf("{d}", vec![e]);
    let pp = ProcessProbe {
        target: ProcessTarget::Path("/bin/app".into()),
        library: None,
        site: ProcessSite::Function {
            pattern: "f".into(),
            filter: FunctionFilter::Any,
            is_return: false,
        },
    };
    let probe = h.probe(
        ProbeKind::Process(pp),
        "process(\"/bin/app\").function(\"f\")",
        vec![],
        vec![h.stmt(StmtKind::Expr(pf))],
    );
    let p = h.program(vec![], vec![], vec![probe]);
    let plan = AccessPlan {
        ops: vec![
            AccessOp::StaticAddr(0x4010),
            AccessOp::Load {
                size: 4,
                signed: true,
            },
            AccessOp::Add(0),
            AccessOp::Reg(DwarfReg(5)),
        ],
        value: ValueInfo {
            c_type: "int".into(),
            is_char_pointer: false,
            is_pointer: false,
        },
    };
    let site = UprobeSite {
        path: "/bin/app".into(),
        vaddr: 0x1139,
        offset: 0x139,
        retprobe: false,
        function: "f".into(),
        pp: "process(\"/bin/app\").function(\"f@app.c:3\")".into(),
        semaphore: None,
        pid: None,
    };
    let r = ResolvedProgram {
        hir: &p,
        probes: vec![ResolvedProbe {
            probe: 0,
            point: 0,
            site: Site::Uprobe(site),
            targets: HashMap::from([(id, plan)]),
            defined: HashMap::new(),
            pretty: HashMap::new(),
            entry: None,
        }],
    };
    let obj = codegen(&r, &sources(), &CodegenOptions::default()).unwrap();
    let prog = &obj.programs[0];
    assert_eq!(prog.kind, ProgramKind::Uprobe);
    assert_eq!(
        prog.probe_point,
        "process(\"/bin/app\").function(\"f@app.c:3\")"
    );
    assert_eq!(
        prog.attach,
        Attach::Uprobe {
            path: "/bin/app".into(),
            offsets: vec![0x139],
            retprobe: false,
            ref_ctr_offsets: vec![],
            pid: None
        }
    );
    assert_eq!(calls(&prog.insns, Helper::GetFuncIp), 1);
    assert_eq!(calls(&prog.insns, Helper::ProbeReadUser), 1);
    let text = disassemble(&obj);
    assert!(text.contains("r0 += 11991"), "{text}");
    assert!(text.contains("r0 = *(u64 *)(r6 +112)"), "{text}");
    assert!(text.contains("user memory read fault at {addr}"), "{text}");
    assert_jumps_sane(&prog.insns);
}
