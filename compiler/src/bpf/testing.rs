//! Layer test helpers: codegen of scripts with no process probes, and a small HIR builder for unit tests.

use super::{codegen, disassemble, CodegenOptions};
use crate::resolved::{ResolvedProbe, ResolvedProgram, Site};
use rtap_lang::diag::{render, Diagnostic};
use rtap_lang::hir::*;
use rtap_lang::printf::{ConvKind, Conversion, Flags, Format, Piece};
use rtap_lang::span::{SourceFile, SourceMap, Span};
use rtap_lang::ScriptArgs;
use std::collections::HashMap;

/// The codegen case helper: script text in, its `-p3` listing (or rendered
/// diagnostics) out. Only probes that need no debug info are allowed here.
pub fn run_codegen_case(text: &str, name: &str) -> String {
    let mut sources = SourceMap::default();
    let file = sources.add(SourceFile::new(name, text));
    let script = match rtap_lang::parse(&sources, file, &ScriptArgs::default()) {
        Ok(s) => s,
        Err(d) => return render(&sources, &d),
    };
    let (program, diags) = rtap_lang::check(&script, &sources);
    let mut out = render(&sources, &diags);
    let Some(program) = program.filter(|_| !diags.iter().any(|d| d.is_error())) else {
        return out;
    };
    // Fixed kernel offsets: listings do not depend on the machine that makes them.
    let opts = CodegenOptions {
        task_layout: Some(EXAMPLE_TASK_LAYOUT),
        ..CodegenOptions::default()
    };
    match resolve_trivial(&program) {
        Ok(r) => out.push_str(&codegen_text(&r, &sources, &opts)),
        Err(d) => out.push_str(&render(&sources, &d)),
    }
    out
}

/// Kernel offsets used by codegen cases (those of a 6.x x86-64 build).
pub const EXAMPLE_TASK_LAYOUT: super::kbtf::TaskLayout = super::kbtf::TaskLayout {
    task_real_parent: 1512,
    task_tgid: 1492,
    task_cred: 1888,
    task_mm: 1256,
    cred_euid: 20,
    cred_egid: 24,
    mm_arg_start: 336,
    mm_arg_end: 344,
    mm_env_start: 352,
    mm_env_end: 360,
};

/// The site of a probe point that needs no debug info, or `None` for process probes.
pub fn trivial_site(kind: &ProbeKind) -> Option<Site> {
    Some(match kind {
        ProbeKind::Begin { seq } => Site::Begin { seq: *seq },
        ProbeKind::End { seq } => Site::End { seq: *seq },
        ProbeKind::Error { seq } => Site::Error { seq: *seq },
        ProbeKind::Never => Site::Never,
        ProbeKind::Timer {
            period_ns,
            randomize_ns,
        } => Site::Timer {
            period_ns: *period_ns,
            randomize_ns: *randomize_ns,
            every_cpu: false,
        },
        ProbeKind::TimerHz(hz) => Site::Timer {
            period_ns: 1_000_000_000 / (*hz).max(1),
            randomize_ns: 0,
            every_cpu: false,
        },
        ProbeKind::TimerProfile => Site::Timer {
            period_ns: 1_000_000_000 / 250,
            randomize_ns: 0,
            every_cpu: true,
        },
        ProbeKind::Process(_) => return None,
    })
}

/// Resolves a program whose probes need no debug info; process probes are an error.
pub fn resolve_trivial(p: &Program) -> Result<ResolvedProgram<'_>, Vec<Diagnostic>> {
    let mut probes = Vec::new();
    for (i, probe) in p.probes.iter().enumerate() {
        for (j, point) in probe.points.iter().enumerate() {
            let Some(site) = trivial_site(&point.kind) else {
                return Err(vec![Diagnostic::error(
                    "process probes need debug info: not available in this test",
                    point.span,
                )]);
            };
            probes.push(ResolvedProbe {
                probe: i,
                point: j,
                site,
                targets: HashMap::new(),
                defined: HashMap::new(),
                pretty: HashMap::new(),
                entry: None,
            });
        }
    }
    Ok(ResolvedProgram { hir: p, probes })
}

/// The `-p3` listing of a resolved program, or its rendered diagnostics.
pub fn codegen_text(p: &ResolvedProgram, sources: &SourceMap, opts: &CodegenOptions) -> String {
    match codegen(p, sources, opts) {
        Ok(obj) => disassemble(&obj),
        Err(d) => render(sources, &d),
    }
}

/// Builds HIR by hand, with fresh expression ids and one span for everything.
#[derive(Default)]
pub struct Hb {
    next: u32,
    pub span: Span,
}

impl Hb {
    pub fn expr(&mut self, kind: ExprKind, ty: Type) -> Expr {
        self.next += 1;
        Expr {
            id: ExprId(self.next - 1),
            kind,
            ty,
            span: self.span,
        }
    }

    pub fn long(&mut self, v: i64) -> Expr {
        self.expr(ExprKind::Long(v), Type::Long)
    }

    pub fn str(&mut self, s: &str) -> Expr {
        self.expr(ExprKind::Str(s.to_string()), Type::String)
    }

    pub fn local(&mut self, id: u32, ty: Type) -> Expr {
        self.expr(ExprKind::Local(LocalId(id)), ty)
    }

    pub fn global(&mut self, id: u32, ty: Type) -> Expr {
        self.expr(ExprKind::Global(GlobalId(id)), ty)
    }

    pub fn bin(&mut self, op: BinOp, a: Expr, b: Expr) -> Expr {
        self.expr(
            ExprKind::Binary {
                op,
                lhs: Box::new(a),
                rhs: Box::new(b),
            },
            Type::Long,
        )
    }

    pub fn cmp(&mut self, op: CmpOp, a: Expr, b: Expr) -> Expr {
        self.expr(
            ExprKind::Compare {
                op,
                lhs: Box::new(a),
                rhs: Box::new(b),
            },
            Type::Long,
        )
    }

    pub fn builtin(&mut self, name: &str, args: Vec<Expr>, ty: Type) -> Expr {
        self.expr(
            ExprKind::Builtin {
                name: name.to_string(),
                args,
            },
            ty,
        )
    }

    pub fn assign(&mut self, target: LValue, op: Option<AssignOp>, value: Expr) -> Expr {
        let ty = value.ty;
        self.expr(
            ExprKind::Assign {
                target,
                op,
                value: Box::new(value),
            },
            ty,
        )
    }

    /// `printf` with a format of text and `%d`/`%s` conversions written as `{d}`/`{s}`.
    pub fn printf(&mut self, fmt: &str, args: Vec<Expr>) -> Expr {
        let mut pieces = Vec::new();
        let mut rest = fmt;
        while let Some(i) = rest.find('{') {
            if i > 0 {
                pieces.push(Piece::Text(rest[..i].to_string()));
            }
            let kind = if rest[i..].starts_with("{s}") {
                ConvKind::Str
            } else {
                ConvKind::Signed
            };
            pieces.push(Piece::Conv(Conversion {
                flags: Flags::default(),
                width: None,
                precision: None,
                kind,
            }));
            rest = &rest[i + 3..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        self.expr(
            ExprKind::Printf {
                to_string: false,
                format: Format { pieces },
                args,
            },
            Type::Long,
        )
    }

    pub fn stmt(&self, kind: StmtKind) -> Stmt {
        Stmt {
            kind,
            span: self.span,
        }
    }

    pub fn block(&self, stmts: Vec<Stmt>) -> Block {
        Block {
            stmts,
            span: self.span,
        }
    }

    pub fn local_decl(&self, name: &str, ty: Type) -> Local {
        Local {
            name: name.to_string(),
            ty,
            span: self.span,
        }
    }

    pub fn global_decl(&self, name: &str, ty: Type, keys: Vec<Type>) -> Global {
        Global {
            name: name.to_string(),
            ty,
            keys,
            max_entries: None,
            wrap: false,
            init: None,
            auto_print: false,
            span: self.span,
        }
    }

    pub fn probe(&self, kind: ProbeKind, text: &str, locals: Vec<Local>, body: Vec<Stmt>) -> Probe {
        Probe {
            points: vec![ProbePoint {
                kind,
                optional: false,
                sufficient: false,
                condition: None,
                text: text.to_string(),
                span: self.span,
            }],
            locals,
            body: self.block(body),
            span: self.span,
        }
    }

    pub fn program(
        &self,
        globals: Vec<Global>,
        functions: Vec<Function>,
        probes: Vec<Probe>,
    ) -> Program {
        Program {
            globals,
            functions,
            probes,
            expr_count: self.next,
        }
    }
}
