//! Name resolution, type inference and checks: AST → typed HIR.
//!
//! One pass builds the HIR while recording type constraints in a union-find;
//! a second step resolves every type and reports what stayed unknown.

mod calls;
mod expr;
mod fill;
mod probes;
mod stmt;
mod unify;

use crate::ast;
use crate::diag::Diagnostic;
use crate::hir::{self, GlobalId, LocalId, Type};
use crate::span::{SourceMap, Span};
// Names are short and trusted: FxHash is much cheaper than SipHash here.
use rustc_hash::FxHashMap as HashMap;
use unify::{TyVar, Unify};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Unknown,
    Scalar,
    /// An array whose key count is not known yet.
    AnyArray,
    Array(usize),
}

struct GlobalInfo {
    name: String,
    ty: TyVar,
    keys: Vec<TyVar>,
    shape: Shape,
    max_entries: Option<u64>,
    wrap: bool,
    init: Option<hir::Literal>,
    read: bool,
    written: bool,
    /// Histogram kind used on it, to refuse mixing `@hist_log` and `@hist_linear`.
    hist: Option<(bool, Span)>,
    span: Span,
}

struct FuncInfo {
    name: String,
    /// Called somewhere with the right arity: unresolved types in an uncalled function are no error.
    called: bool,
    params: Vec<(String, TyVar, Span)>,
    ret: TyVar,
    span: Span,
}

struct LocalInfo {
    name: String,
    ty: TyVar,
    span: Span,
}

/// What a probe handler's points allow: target variables, `$return`, `@entry`.
#[derive(Clone, Debug, Default)]
struct ProbeCtx {
    /// The first point that has no target variables, as text.
    no_targets: Option<String>,
    /// Every point is a `.return` probe.
    all_return: bool,
    /// Every point is a `.mark` probe.
    all_mark: bool,
}

#[derive(Clone, Debug)]
enum Ctx {
    Function {
        ret: TyVar,
        name: String,
    },
    Probe(ProbeCtx),
    /// A probe point's `if (...)`: globals only.
    Condition,
}

/// Locals of one function or probe handler.
struct Scope {
    locals: Vec<LocalInfo>,
    names: HashMap<String, LocalId>,
    ctx: Ctx,
    loops: u32,
    /// Arrays being iterated by enclosing `foreach` loops.
    iterating: Vec<GlobalId>,
    in_entry: bool,
    in_defined: bool,
}

impl Scope {
    fn new(ctx: Ctx) -> Scope {
        Scope {
            locals: Vec::new(),
            names: HashMap::default(),
            ctx,
            loops: 0,
            iterating: Vec::new(),
            in_entry: false,
            in_defined: false,
        }
    }
}

struct Checker<'a> {
    diags: Vec<Diagnostic>,
    u: Unify,
    globals: Vec<GlobalInfo>,
    global_names: HashMap<String, GlobalId>,
    funcs: Vec<FuncInfo>,
    /// Functions by name: each arity and its id, in declaration order.
    func_names: HashMap<String, Vec<(usize, hir::FuncId)>>,
    aliases: Vec<&'a ast::AliasDecl>,
    expr_tys: Vec<TyVar>,
    /// Uses where statistics are not allowed: checked once types are known.
    no_stats: Vec<(TyVar, Span, String)>,
    long: TyVar,
    string: TyVar,
    /// Concrete probe points so far, to cap what braces and aliases expand to.
    points: usize,
}

/// Checks a parsed script. Returns the program when there are no errors, and every diagnostic.
pub fn check(script: &ast::Script, sources: &SourceMap) -> (Option<hir::Program>, Vec<Diagnostic>) {
    let mut u = Unify::default();
    let long = u.known(Type::Long);
    let string = u.known(Type::String);
    // Spans carry everything messages need; the sources are for future lookups.
    let _ = sources;
    let mut c = Checker {
        diags: Vec::new(),
        u,
        globals: Vec::new(),
        global_names: HashMap::default(),
        funcs: Vec::new(),
        func_names: HashMap::default(),
        aliases: Vec::new(),
        expr_tys: Vec::new(),
        no_stats: Vec::new(),
        long,
        string,
        points: 0,
    };
    c.declare(script);
    let mut functions = Vec::new();
    let mut probes = Vec::new();
    let mut fscopes = Vec::new();
    let mut pscopes = Vec::new();
    let mut fn_index = 0;
    for item in &script.items {
        match item {
            ast::Item::Function(f) => {
                if let Some((func, scope)) = c.function(f, fn_index) {
                    functions.push(func);
                    fscopes.push(scope);
                }
                fn_index += 1;
            }
            ast::Item::Probe(p) => {
                for (probe, scope) in c.probe(p) {
                    probes.push(probe);
                    pscopes.push(scope);
                }
            }
            _ => {}
        }
    }
    let program = c.finish(functions, probes, fscopes, pscopes);
    let failed = c.diags.iter().any(Diagnostic::is_error);
    (if failed { None } else { Some(program) }, c.diags)
}

impl<'a> Checker<'a> {
    fn error(&mut self, msg: impl Into<String>, span: Span) {
        self.diags.push(Diagnostic::error(msg, span));
    }

    /// Requires `v` to have type `t`; `msg` gets the type found.
    fn want(&mut self, v: TyVar, t: Type, span: Span, msg: impl FnOnce(Type) -> String) {
        self.want_ok(v, t, span, msg);
    }

    /// Like [`Checker::want`]; returns whether the type fit.
    fn want_ok(&mut self, v: TyVar, t: Type, span: Span, msg: impl FnOnce(Type) -> String) -> bool {
        match self.u.set(v, t) {
            Ok(()) => true,
            Err(found) => {
                let m = msg(found);
                self.error(m, span);
                false
            }
        }
    }

    /// Requires two types to be equal; `msg` gets both.
    fn same(&mut self, a: TyVar, b: TyVar, span: Span, msg: impl FnOnce(Type, Type) -> String) {
        if let Err((x, y)) = self.u.join(a, b) {
            let m = msg(x, y);
            self.error(m, span);
        }
    }

    fn declare(&mut self, script: &'a ast::Script) {
        for item in &script.items {
            match item {
                ast::Item::Global(g) => {
                    for v in &g.vars {
                        self.declare_global(v);
                    }
                }
                ast::Item::Function(f) => self.declare_function(f),
                ast::Item::Alias(a) => self.aliases.push(a),
                ast::Item::Probe(_) => {}
            }
        }
    }

    fn declare_global(&mut self, v: &ast::GlobalVar) {
        if let Some(&prev) = self.global_names.get(&v.name.name) {
            let prev_span = self.globals[prev.0 as usize].span;
            self.diags.push(
                Diagnostic::error(
                    format!("global `{}` is declared twice", v.name.name),
                    v.name.span,
                )
                .with_secondary(prev_span, "first declared here"),
            );
            return;
        }
        let ty = self.u.fresh();
        let init = v.init.as_ref().map(|l| match l {
            ast::Literal::Long(n) => {
                let _ = self.u.set(ty, Type::Long);
                hir::Literal::Long(*n)
            }
            ast::Literal::Str(s) => {
                let _ = self.u.set(ty, Type::String);
                hir::Literal::String(s.clone())
            }
        });
        let id = GlobalId(self.globals.len() as u32);
        self.global_names.insert(v.name.name.clone(), id);
        self.globals.push(GlobalInfo {
            name: v.name.name.clone(),
            ty,
            keys: Vec::new(),
            shape: if v.size.is_some() {
                Shape::AnyArray
            } else if init.is_some() {
                Shape::Scalar
            } else {
                Shape::Unknown
            },
            max_entries: v.size.flatten(),
            wrap: v.wrap,
            init,
            read: false,
            written: false,
            hist: None,
            span: v.name.span,
        });
    }

    fn declare_function(&mut self, f: &ast::FunctionDecl) {
        if let Some(prev) = self.function_id(&f.name.name, f.params.len()) {
            let prev_span = self.funcs[prev.0 as usize].span;
            self.diags.push(
                Diagnostic::error(
                    format!(
                        "function `{}` with {} is defined twice; overload chains with `next` are not supported yet",
                        f.name.name,
                        calls::plural(f.params.len(), "parameter")
                    ),
                    f.name.span,
                )
                .with_secondary(prev_span, "first defined here"),
            );
        }
        if crate::builtins::lookup(&f.name.name).is_some()
            || crate::builtins::is_print(&f.name.name)
        {
            self.diags.push(Diagnostic::warning(
                format!(
                    "function `{}` hides the builtin of the same name",
                    f.name.name
                ),
                f.name.span,
            ));
        }
        let mut params: Vec<(String, TyVar, Span)> = Vec::new();
        for p in &f.params {
            if params.iter().any(|(n, _, _)| *n == p.name.name) {
                self.error(
                    format!("parameter `{}` is declared twice", p.name.name),
                    p.name.span,
                );
            }
            let ty = match p.ty {
                Some(t) => self.u.known(type_of(t)),
                None => self.u.fresh(),
            };
            params.push((p.name.name.clone(), ty, p.name.span));
        }
        let ret = match f.ret {
            Some(t) => self.u.known(type_of(t)),
            None => self.u.fresh(),
        };
        let id = hir::FuncId(self.funcs.len() as u32);
        if self.function_id(&f.name.name, f.params.len()).is_none() {
            self.func_names
                .entry(f.name.name.clone())
                .or_default()
                .push((f.params.len(), id));
        }
        self.funcs.push(FuncInfo {
            name: f.name.name.clone(),
            called: false,
            params,
            ret,
            span: f.name.span,
        });
    }

    fn function(&mut self, f: &ast::FunctionDecl, index: usize) -> Option<(hir::Function, Scope)> {
        let info = &self.funcs[index];
        let mut scope = Scope::new(Ctx::Function {
            ret: info.ret,
            name: info.name.clone(),
        });
        let params: Vec<(String, TyVar, Span)> = info.params.clone();
        let mut ids = Vec::new();
        for (name, ty, span) in params {
            let id = LocalId(scope.locals.len() as u32);
            scope.names.insert(name.clone(), id);
            scope.locals.push(LocalInfo { name, ty, span });
            ids.push(id);
        }
        let body = self.block(&f.body, &mut scope);
        let func = hir::Function {
            name: f.name.name.clone(),
            params: ids,
            locals: Vec::new(),
            ret: Type::Long,
            body,
            span: f.span,
        };
        Some((func, scope))
    }

    /// The function `name` taking `arity` arguments.
    fn function_id(&self, name: &str, arity: usize) -> Option<hir::FuncId> {
        let ids = self.func_names.get(name)?;
        ids.iter().find(|(a, _)| *a == arity).map(|&(_, id)| id)
    }

    /// A new expression id whose type is `ty`.
    fn expr_id(&mut self, ty: TyVar) -> hir::ExprId {
        let id = hir::ExprId(self.expr_tys.len() as u32);
        self.expr_tys.push(ty);
        id
    }

    fn mk(&mut self, kind: hir::ExprKind, ty: TyVar, span: Span) -> hir::Expr {
        hir::Expr {
            id: self.expr_id(ty),
            kind,
            ty: Type::Long,
            span,
        }
    }

    fn ty_of(&self, e: &hir::Expr) -> TyVar {
        self.expr_tys[e.id.0 as usize]
    }
}

fn type_of(t: ast::TypeName) -> Type {
    match t {
        ast::TypeName::Long => Type::Long,
        ast::TypeName::String => Type::String,
    }
}

/// `long`, `string` or `stats` in backticks, for messages.
fn tn(t: Type) -> String {
    format!("`{}`", t.name())
}
