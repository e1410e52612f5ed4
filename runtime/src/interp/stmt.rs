//! Statements: control flow, `foreach` with sorting, slices and `limit`, `delete`, `try`.

use super::globals::Stats;
use super::{Flow, Frame, Interp, Stop, Store, V};
use rtap_compiler::object::GlobalValue;
use rtap_lang::hir::{Block, DeleteTarget, Foreach, SortBy, StatOp, Stmt, StmtKind};

impl<S: Store> Interp<'_, S> {
    pub(super) fn block(&mut self, b: &Block, f: &mut Frame) -> Flow<()> {
        for s in &b.stmts {
            self.stmt(s, f)?;
        }
        Ok(())
    }

    /// Runs a loop body; `Ok(true)` means `break`.
    fn body(&mut self, s: &Stmt, f: &mut Frame) -> Flow<bool> {
        self.check_interrupt(s.span)?;
        match self.stmt(s, f) {
            Ok(()) | Err(Stop::Continue) => Ok(false),
            Err(Stop::Break) => Ok(true),
            Err(e) => Err(e),
        }
    }

    pub(super) fn stmt(&mut self, s: &Stmt, f: &mut Frame) -> Flow<()> {
        match &s.kind {
            StmtKind::Expr(e) => {
                self.expr(e, f)?;
            }
            StmtKind::Block(b) => self.block(b, f)?,
            StmtKind::If { cond, then, els } => {
                if self.expr(cond, f)?.long() != 0 {
                    self.stmt(then, f)?;
                } else if let Some(e) = els {
                    self.stmt(e, f)?;
                }
            }
            StmtKind::While { cond, body } => {
                while self.expr(cond, f)?.long() != 0 {
                    if self.body(body, f)? {
                        break;
                    }
                }
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                if let Some(e) = init {
                    self.expr(e, f)?;
                }
                loop {
                    if let Some(c) = cond {
                        if self.expr(c, f)?.long() == 0 {
                            break;
                        }
                    }
                    if self.body(body, f)? {
                        break;
                    }
                    if let Some(e) = step {
                        self.expr(e, f)?;
                    }
                }
            }
            StmtKind::Foreach(fe) => self.foreach(fe, f)?,
            StmtKind::Break => return Err(Stop::Break),
            StmtKind::Continue => return Err(Stop::Continue),
            StmtKind::Next => return Err(Stop::Next),
            StmtKind::Return(e) => {
                let v = match e {
                    Some(e) => self.expr(e, f)?,
                    None => V::Long(0),
                };
                return Err(Stop::Return(v));
            }
            StmtKind::Delete(t) => self.delete(t, f)?,
            StmtKind::Try {
                body,
                catch_var,
                catch,
            } => match self.block(body, f) {
                Err(Stop::Error(msg, _)) => {
                    if let Some(l) = catch_var {
                        f.locals[l.0 as usize] = V::Str(msg.into_bytes());
                    }
                    self.block(catch, f)?;
                }
                other => other?,
            },
        }
        Ok(())
    }

    fn delete(&mut self, t: &DeleteTarget, f: &mut Frame) -> Flow<()> {
        match t {
            DeleteTarget::Global(g) => self.clear_global(*g),
            DeleteTarget::Local(l) => {
                let slot = &mut f.locals[l.0 as usize];
                *slot = match slot {
                    V::Str(_) => V::Str(Vec::new()),
                    V::Long(_) => V::Long(0),
                };
            }
            DeleteTarget::Element { array, keys } => {
                let keys = self.exprs(keys, f)?;
                self.delete_element(*array, &keys);
            }
            DeleteTarget::Slice { array, keys } => {
                let want = self.slice(keys, f)?;
                for k in self.keys_of(*array) {
                    if matches_slice(&want, &k) {
                        self.delete_element(*array, &k);
                    }
                }
            }
        }
        Ok(())
    }

    fn slice(
        &mut self,
        keys: &[Option<rtap_lang::hir::Expr>],
        f: &mut Frame,
    ) -> Flow<Vec<Option<V>>> {
        keys.iter()
            .map(|k| k.as_ref().map(|e| self.expr(e, f)).transpose())
            .collect()
    }

    fn foreach(&mut self, fe: &Foreach, f: &mut Frame) -> Flow<()> {
        let want = match &fe.slice {
            Some(s) => Some(self.slice(s, f)?),
            None => None,
        };
        let limit = match &fe.limit {
            Some(e) => Some(self.expr(e, f)?.long().max(0) as usize),
            None => None,
        };
        let is_stats = self.spec(fe.array).value == GlobalValue::Stats;
        let mut rows: Vec<(Vec<V>, Row)> = self
            .keys_of(fe.array)
            .into_iter()
            .filter(|k| want.as_ref().is_none_or(|w| matches_slice(w, k)))
            .map(|k| {
                let row = if is_stats {
                    Row::Stats(self.read_stats(fe.array, &k))
                } else {
                    Row::Value(self.read_global(fe.array, &k))
                };
                (k, row)
            })
            .collect();
        // Without a sort order SystemTap's order is unspecified; key order is stable.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(sort) = fe.sort {
            rows.sort_by(|a, b| {
                let o = match sort.by {
                    SortBy::Key(i) => a.0[i as usize].cmp(&b.0[i as usize]),
                    SortBy::Value(op) => a.1.sort_key(op).cmp(&b.1.sort_key(op)),
                };
                if sort.descending {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        if let Some(n) = limit {
            rows.truncate(n);
        }
        for (keys, row) in rows {
            for (l, k) in fe.keys.iter().zip(keys) {
                f.locals[l.0 as usize] = k;
            }
            if let Some(v) = fe.value {
                f.locals[v.0 as usize] = match row {
                    Row::Value(v) => v,
                    Row::Stats(s) => V::Long(s.count),
                };
            }
            if self.body(&fe.body, f)? {
                break;
            }
        }
        Ok(())
    }
}

/// One element's value, kept for sorting.
enum Row {
    Value(V),
    Stats(Stats),
}

impl Row {
    fn sort_key(&self, op: Option<StatOp>) -> SortValue<'_> {
        match self {
            Row::Value(v) => SortValue::V(v),
            Row::Stats(s) => SortValue::Long(match op.unwrap_or(StatOp::Count) {
                StatOp::Count => s.count,
                StatOp::Sum => s.sum,
                StatOp::Min => s.min,
                StatOp::Max => s.max,
                StatOp::Variance => s.variance(),
                StatOp::Avg => {
                    if s.count == 0 {
                        0
                    } else {
                        s.sum / s.count
                    }
                }
            }),
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortValue<'a> {
    Long(i64),
    V(&'a V),
}

fn matches_slice(want: &[Option<V>], key: &[V]) -> bool {
    want.iter()
        .zip(key)
        .all(|(w, k)| w.as_ref().is_none_or(|w| w == k))
}
