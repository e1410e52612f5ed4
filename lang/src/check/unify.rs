//! Type variables joined by union-find: inference without a fixpoint loop.

use crate::hir::Type;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TyVar(u32);

#[derive(Default)]
pub struct Unify {
    parent: Vec<u32>,
    ty: Vec<Option<Type>>,
}

impl Unify {
    pub fn fresh(&mut self) -> TyVar {
        let v = self.parent.len() as u32;
        self.parent.push(v);
        self.ty.push(None);
        TyVar(v)
    }

    pub fn known(&mut self, t: Type) -> TyVar {
        let v = self.fresh();
        self.ty[v.0 as usize] = Some(t);
        v
    }

    fn find(&mut self, v: TyVar) -> usize {
        let mut x = v.0 as usize;
        while self.parent[x] as usize != x {
            let gp = self.parent[self.parent[x] as usize];
            self.parent[x] = gp;
            x = gp as usize;
        }
        x
    }

    pub fn get(&mut self, v: TyVar) -> Option<Type> {
        let r = self.find(v);
        self.ty[r]
    }

    /// Joins two variables; on a conflict returns both types and changes nothing.
    pub fn join(&mut self, a: TyVar, b: TyVar) -> Result<(), (Type, Type)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Ok(());
        }
        match (self.ty[ra], self.ty[rb]) {
            (Some(x), Some(y)) if x != y => Err((x, y)),
            (ta, tb) => {
                self.parent[rb] = ra as u32;
                self.ty[ra] = ta.or(tb);
                Ok(())
            }
        }
    }

    /// Requires `v` to be `t`; on a conflict returns the type it already has.
    pub fn set(&mut self, v: TyVar, t: Type) -> Result<(), Type> {
        let r = self.find(v);
        match self.ty[r] {
            Some(x) if x != t => Err(x),
            _ => {
                self.ty[r] = Some(t);
                Ok(())
            }
        }
    }
}
