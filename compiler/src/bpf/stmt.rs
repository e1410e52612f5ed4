//! Statements, loops bounded by MAXACTION, and inlined script functions.

use super::codegen::{Buf, FuncCtx, Gen, RetDest, Slot, R};
use super::insn::*;
use rtap_lang::diag::Diagnostic;
use rtap_lang::hir::{DeleteTarget, Expr, ExprKind, FuncId, LValue, Stmt, StmtKind, Type};
use rtap_lang::span::Span;

/// Statements in a loop body, counted as actions per iteration.
fn count_stmts(s: &Stmt) -> u32 {
    match &s.kind {
        StmtKind::Block(b) => b.stmts.iter().map(count_stmts).sum(),
        StmtKind::If { then, els, .. } => {
            1 + count_stmts(then).max(els.as_ref().map_or(0, |e| count_stmts(e)))
        }
        _ => 1,
    }
}

impl Gen<'_, '_> {
    pub fn stmt(&mut self, s: &Stmt) -> R<()> {
        if !matches!(s.kind, StmtKind::Block(_)) {
            self.e.note(self.sh.sources, s.span);
        }
        match &s.kind {
            StmtKind::Expr(e) => self.effect(e)?,
            StmtKind::Block(b) => {
                for s in &b.stmts {
                    self.stmt(s)?;
                }
            }
            StmtKind::If { cond, then, els } if self.known(cond).is_some() => {
                // The branch `@defined` rules out was never resolved: it is not compiled.
                if self.known(cond) == Some(true) {
                    self.stmt(then)?;
                } else if let Some(els) = els {
                    self.stmt(els)?;
                }
            }
            StmtKind::If { cond, then, els } => {
                let f = self.e.label();
                self.branch(cond, f, false)?;
                self.stmt(then)?;
                match els {
                    Some(els) => {
                        let end = self.e.label();
                        self.e.goto(end);
                        self.e.bind(f);
                        self.stmt(els)?;
                        self.e.bind(end);
                    }
                    None => self.e.bind(f),
                }
            }
            StmtKind::While { cond, body } => {
                self.lower_loop(None, Some(cond), None, body, s.span)?
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => self.lower_loop(init.as_ref(), cond.as_ref(), step.as_ref(), body, s.span)?,
            StmtKind::Break | StmtKind::Continue => {
                let Some(&(brk, cont)) = self.loops.last() else {
                    return Err(Diagnostic::error(
                        "`break` or `continue` outside a loop",
                        s.span,
                    ));
                };
                self.e.goto(if matches!(s.kind, StmtKind::Break) {
                    brk
                } else {
                    cont
                });
            }
            StmtKind::Next => {
                // In a function, `next` moves on to the next overload; past the last one
                // the call returns 0 or "", as in the user-space handlers.
                if let Some(ctx) = &self.func {
                    let end = ctx.end;
                    self.e.goto(end);
                    return Ok(());
                }
                let exit = self.exit_label;
                self.e.goto(exit);
            }
            StmtKind::Return(value) => {
                let Some(ctx) = &self.func else {
                    return Err(Diagnostic::error("`return` outside a function", s.span));
                };
                let (ret, end) = (ctx.ret, ctx.end);
                if let Some(v) = value {
                    match ret {
                        RetDest::Long(slot) => {
                            self.long(v)?;
                            self.e.emit(Insn::stx_mem(Size::DW, R10, R0, slot));
                        }
                        RetDest::Str(buf) => self.string_into(v, buf)?,
                        RetDest::None => self.effect(v)?,
                    }
                }
                self.e.goto(end);
            }
            StmtKind::Delete(t) => self.delete(t, s.span)?,
            StmtKind::Foreach(fe) => self.foreach(fe, count_stmts(&fe.body) + 1, s.span)?,
            StmtKind::Try {
                body,
                catch_var,
                catch,
            } => {
                let handler = self.e.label();
                let end = self.e.label();
                let var = catch_var.map(|v| self.locals[v.0 as usize]);
                let saved = self.catch.replace((handler, var));
                let r = body.stmts.iter().try_for_each(|s| self.stmt(s));
                self.catch = saved;
                r?;
                self.e.goto(end);
                // The catch block is emitted only if something in the body can raise.
                self.e.bind(handler);
                for s in &catch.stmts {
                    self.stmt(s)?;
                }
                self.e.bind(end);
            }
        }
        Ok(())
    }

    /// Evaluates an expression for its side effects.
    pub fn effect(&mut self, e: &Expr) -> R<()> {
        match (&e.kind, e.ty) {
            (ExprKind::Assign { target, op, value }, Type::String) => {
                self.assign_str(target, *op, value, e.span)
            }
            (ExprKind::Call { func, args }, _) => self.call(*func, args, RetDest::None, e.span),
            (_, Type::String) => {
                let m = self.scratch.mark();
                let b = self.scratch_buf();
                self.string_into(e, b)?;
                self.scratch.release(m);
                Ok(())
            }
            _ => self.long(e),
        }
    }

    fn lower_loop(
        &mut self,
        init: Option<&Expr>,
        cond: Option<&Expr>,
        step: Option<&Expr>,
        body: &Stmt,
        span: Span,
    ) -> R<()> {
        if let Some(i) = init {
            self.effect(i)?;
        }
        let top = self.e.label();
        let cont = self.e.label();
        let end = self.e.label();
        self.e.bind(top);
        // Every iteration counts, so the verifier sees a bounded loop.
        self.tick(count_stmts(body) + 1, span);
        if let Some(c) = cond {
            self.branch(c, end, false)?;
        }
        self.loops.push((end, cont));
        let r = self.stmt(body);
        self.loops.pop();
        r?;
        self.e.bind(cont);
        if let Some(s) = step {
            self.effect(s)?;
        }
        self.e.goto(top);
        self.e.bind(end);
        Ok(())
    }

    fn delete(&mut self, t: &DeleteTarget, span: Span) -> R<()> {
        match t {
            DeleteTarget::Local(id) => match self.locals[id.0 as usize] {
                Slot::Long(off) => self.e.emit(Insn::st_mem(Size::DW, R10, off, 0)),
                Slot::Str(off) => self.e.emit(Insn::st_mem(Size::B, R7, off, 0)),
            },
            DeleteTarget::Global(g) if self.hir().globals[g.0 as usize].keys.is_empty() => {
                let ty = self.hir().globals[g.0 as usize].ty;
                if ty == Type::Stats {
                    self.clear_stats(*g);
                    return Ok(());
                }
                self.lvalue_ptr(&LValue::Global(*g), span)?;
                let store = if ty == Type::String {
                    Size::B
                } else {
                    Size::DW
                };
                self.e.emit(Insn::st_mem(store, R0, 0, 0));
            }
            DeleteTarget::Element { array, keys } => self.delete_element(*array, keys, span)?,
            DeleteTarget::Global(g) => self.delete_matching(*g, None, span)?,
            DeleteTarget::Slice { array, keys } => {
                self.delete_matching(*array, Some(keys), span)?
            }
        }
        Ok(())
    }

    /// Inlines a script function; its value goes to `ret`.
    pub fn call(&mut self, func: FuncId, args: &[Expr], ret: RetDest, span: Span) -> R<()> {
        let f = &self.hir().functions[func.0 as usize];
        if self.inlining.contains(&func) {
            return Err(Diagnostic::error(
                format!(
                    "recursive call of `{}` is not supported: functions are inlined",
                    f.name
                ),
                span,
            ));
        }
        let fm = self.frame.mark();
        let sm = self.scratch.mark();
        // Arguments are evaluated in the caller's scope, into the callee's fresh slots.
        let mut slots = Vec::new();
        for (a, &p) in args.iter().zip(&f.params) {
            let slot = match f.locals[p.0 as usize].ty {
                Type::String => {
                    let b = self.scratch_buf();
                    self.string_into(a, b)?;
                    Slot::Str(b.off)
                }
                _ => {
                    let t = self.temp();
                    self.long(a)?;
                    self.e.emit(Insn::stx_mem(Size::DW, R10, R0, t));
                    Slot::Long(t)
                }
            };
            slots.push(slot);
        }
        let rest = self.alloc_locals(&f.locals[f.params.len()..]);
        slots.extend(rest);
        match ret {
            RetDest::Long(t) => self.e.emit(Insn::st_mem(Size::DW, R10, t, 0)),
            RetDest::Str(Buf { base, off, .. }) => self.e.emit(Insn::st_mem(Size::B, base, off, 0)),
            RetDest::None => {}
        }
        let end = self.e.label();
        let saved_locals = std::mem::replace(&mut self.locals, slots);
        let saved_func = self.func.replace(FuncCtx { ret, end });
        let saved_loops = std::mem::take(&mut self.loops);
        self.inlining.push(func);
        let mut result = Ok(());
        for s in &f.body.stmts {
            result = self.stmt(s);
            if result.is_err() {
                break;
            }
        }
        self.inlining.pop();
        self.loops = saved_loops;
        self.func = saved_func;
        self.locals = saved_locals;
        self.e.bind(end);
        self.scratch.release(sm);
        self.frame.release(fm);
        result
    }
}
