//! Walking the checked program's expressions (the resolver plans the targets it finds).

use rtap_lang::hir::{self, Accessor, Block, Expr, ExprKind, LValue, Stmt, StmtKind, TargetBase};

/// Every expression in a block, outermost first.
pub(crate) fn visit_block(b: &Block, f: &mut dyn FnMut(&Expr)) {
    for s in &b.stmts {
        visit_stmt(s, f);
    }
}

fn visit_stmt(s: &Stmt, f: &mut dyn FnMut(&Expr)) {
    match &s.kind {
        StmtKind::Expr(e) | StmtKind::Return(Some(e)) => visit_expr(e, f),
        StmtKind::Block(b) => visit_block(b, f),
        StmtKind::If { cond, then, els } => {
            visit_expr(cond, f);
            visit_stmt(then, f);
            if let Some(e) = els {
                visit_stmt(e, f);
            }
        }
        StmtKind::While { cond, body } => {
            visit_expr(cond, f);
            visit_stmt(body, f);
        }
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            for e in [init, cond, step].into_iter().flatten() {
                visit_expr(e, f);
            }
            visit_stmt(body, f);
        }
        StmtKind::Foreach(fe) => {
            for e in fe.slice.iter().flatten().flatten() {
                visit_expr(e, f);
            }
            if let Some(l) = &fe.limit {
                visit_expr(l, f);
            }
            visit_stmt(&fe.body, f);
        }
        StmtKind::Try { body, catch, .. } => {
            visit_block(body, f);
            visit_block(catch, f);
        }
        StmtKind::Delete(hir::DeleteTarget::Element { keys, .. }) => {
            keys.iter().for_each(|k| visit_expr(k, f))
        }
        StmtKind::Delete(hir::DeleteTarget::Slice { keys, .. }) => {
            keys.iter().flatten().for_each(|k| visit_expr(k, f))
        }
        _ => {}
    }
}

pub(crate) fn visit_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    children(e, &mut |c| visit_expr(c, f));
}

fn lvalue_children(l: &LValue, f: &mut dyn FnMut(&Expr)) {
    if let LValue::Element { keys, .. } = l {
        keys.iter().for_each(&mut *f);
    }
}

/// The direct sub-expressions of `e`.
pub(super) fn children(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    match &e.kind {
        ExprKind::Long(_) | ExprKind::Str(_) | ExprKind::Local(_) | ExprKind::Global(_) => {}
        ExprKind::Element { keys, .. } => keys.iter().for_each(&mut *f),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
            f(lhs);
            f(rhs);
        }
        ExprKind::Unary { operand, .. } => f(operand),
        ExprKind::Concat(a, b) => {
            f(a);
            f(b);
        }
        ExprKind::Regex { subject, .. } => f(subject),
        ExprKind::In { keys, .. } => keys.iter().flatten().for_each(&mut *f),
        ExprKind::Ternary { cond, then, els } => {
            f(cond);
            f(then);
            f(els);
        }
        ExprKind::Assign { target, value, .. } => {
            lvalue_children(target, f);
            f(value);
        }
        ExprKind::IncDec { target, .. } => lvalue_children(target, f),
        ExprKind::Aggregate { target, value } => {
            lvalue_children(target, f);
            f(value);
        }
        ExprKind::StatExtract { stat, .. } | ExprKind::Hist { stat, .. } => {
            lvalue_children(stat, f)
        }
        ExprKind::Call { args, .. }
        | ExprKind::Builtin { args, .. }
        | ExprKind::Printf { args, .. }
        | ExprKind::Print { args, .. } => args.iter().for_each(&mut *f),
        ExprKind::Target(t) => {
            for a in &t.chain {
                if let Accessor::Index { index, .. } = a {
                    f(index);
                }
            }
            if let TargetBase::Cast { pointer, .. } = &t.base {
                f(pointer);
            }
        }
        ExprKind::Entry(inner) | ExprKind::Defined(inner) => f(inner),
    }
}
