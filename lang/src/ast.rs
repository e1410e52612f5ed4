//! The syntax tree of one script, as written: every node carries its span.

use crate::span::Span;

pub use crate::hir::{Bulk, Pretty, StatOp};

/// A name and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Script {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Global(GlobalDecl),
    Function(FunctionDecl),
    Probe(ProbeDecl),
    Alias(AliasDecl),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDecl {
    pub private: bool,
    pub vars: Vec<GlobalVar>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalVar {
    pub name: Ident,
    /// `a[N]` (or `a%[N]`); `Some(None)` for `a%` without a size.
    pub size: Option<Option<u64>>,
    pub wrap: bool,
    pub init: Option<Literal>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeName {
    Long,
    String,
}

impl TypeName {
    pub fn text(self) -> &'static str {
        match self {
            TypeName::Long => "long",
            TypeName::String => "string",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDecl {
    pub private: bool,
    pub name: Ident,
    pub ret: Option<TypeName>,
    pub params: Vec<Param>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeName>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeDecl {
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub span: Span,
}

/// `probe NAME = points { prologue }` or `probe NAME += points { epilogue }`.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasDecl {
    pub name: Vec<Component>,
    pub append: bool,
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbePoint {
    pub components: Vec<Component>,
    pub optional: bool,
    pub sufficient: bool,
    pub condition: Option<Expr>,
    pub span: Span,
}

/// One `.`-separated piece of a probe point: `function("main")`, `*`, `{a,b}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub name: String,
    pub arg: Option<Literal>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Long(i64),
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Empty,
    Expr(Expr),
    Block(Block),
    If {
        cond: Expr,
        then: Box<Stmt>,
        els: Option<Box<Stmt>>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    /// Boxed parts keep every statement small: statements are moved around a lot.
    For {
        init: Option<Box<Expr>>,
        cond: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
        body: Box<Stmt>,
    },
    Foreach(Box<Foreach>),
    Break,
    Continue,
    Next,
    Return(Option<Expr>),
    Delete(Expr),
    Try {
        body: Block,
        catch_var: Option<Ident>,
        catch: Block,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Foreach {
    pub value: Option<Ident>,
    pub keys: Vec<Ident>,
    /// Whether the keys were written in brackets (`[k] in a`).
    pub bracketed: bool,
    pub array: Ident,
    pub slice: Option<Vec<Option<Expr>>>,
    pub sort: Option<SortMark>,
    pub limit: Option<Expr>,
    pub body: Box<Stmt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortMark {
    pub on: SortOn,
    pub descending: bool,
    /// `a @sum-`: the aggregate a stats array sorts by.
    pub agg: Option<StatOp>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOn {
    Key(u8),
    Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    Ushr,
    BitAnd,
    BitOr,
    BitXor,
    LogAnd,
    LogOr,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    pub fn text(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Shl => "<<",
            Shr => ">>",
            Ushr => ">>>",
            BitAnd => "&",
            BitOr => "|",
            BitXor => "^",
            LogAnd => "&&",
            LogOr => "||",
            Concat => ".",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
        }
    }

    /// Binding strength, higher binds tighter (reference section 1).
    pub fn level(self) -> u8 {
        use BinaryOp::*;
        match self {
            LogOr => 3,
            LogAnd => 4,
            BitOr => 5,
            BitXor => 6,
            BitAnd => 7,
            Eq | Ne | Lt | Le | Gt | Ge => 9,
            Shl | Shr | Ushr => 10,
            Concat => 11,
            Add | Sub => 12,
            Mul | Div | Mod => 13,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
    BitNot,
}

impl UnaryOp {
    pub fn text(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Plus => "+",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
        }
    }
}

/// `=`, a compound `op=`, `.=` or `<<<`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Op(BinaryOp),
    Aggregate,
}

impl AssignOp {
    pub fn text(self) -> &'static str {
        use BinaryOp::*;
        match self {
            AssignOp::Set => "=",
            AssignOp::Aggregate => "<<<",
            AssignOp::Op(op) => match op {
                Add => "+=",
                Sub => "-=",
                Mul => "*=",
                Div => "/=",
                Mod => "%=",
                Shl => "<<=",
                Shr => ">>=",
                BitAnd => "&=",
                BitOr => "|=",
                BitXor => "^=",
                Concat => ".=",
                _ => "?=",
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum HistSpec {
    Log,
    Linear {
        lo: Box<Expr>,
        hi: Box<Expr>,
        width: Box<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Long(i64),
    Str(String),
    Var(String),
    /// `a[k1, k2]`; `None` is `*` (only in `delete` and `in`).
    Index {
        array: Ident,
        keys: Vec<Option<Expr>>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Regex {
        subject: Box<Expr>,
        pattern: String,
        negated: bool,
    },
    /// `[k1, *] in a` (or `k in a`).
    In {
        keys: Vec<Option<Expr>>,
        bracketed: bool,
        array: Ident,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    Assign {
        op: AssignOp,
        target: Box<Expr>,
        value: Box<Expr>,
    },
    IncDec {
        target: Box<Expr>,
        increment: bool,
        prefix: bool,
    },
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    Stat {
        op: StatOp,
        arg: Box<Expr>,
    },
    Hist {
        spec: HistSpec,
        arg: Box<Expr>,
    },
    Target(TargetExpr),
    Entry(Box<Expr>),
    Defined(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TargetExpr {
    pub base: TargetBase,
    pub chain: Vec<Accessor>,
    pub address_of: bool,
    pub pretty: Option<Pretty>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TargetBase {
    /// `$name` without the `$` (`$return` included).
    Var(String),
    Bulk(Bulk),
    Cast {
        pointer: Box<Expr>,
        type_name: String,
        module: Option<String>,
    },
    AtVar {
        name: String,
        module: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Accessor {
    Member { name: String, span: Span },
    Index { index: Box<Expr>, span: Span },
}

impl StatOp {
    pub fn text(self) -> &'static str {
        match self {
            StatOp::Count => "@count",
            StatOp::Sum => "@sum",
            StatOp::Min => "@min",
            StatOp::Max => "@max",
            StatOp::Avg => "@avg",
            StatOp::Variance => "@variance",
        }
    }

    pub fn from_text(s: &str) -> Option<StatOp> {
        Some(match s {
            "@count" => StatOp::Count,
            "@sum" => StatOp::Sum,
            "@min" => StatOp::Min,
            "@max" => StatOp::Max,
            "@avg" => StatOp::Avg,
            "@variance" => StatOp::Variance,
            _ => return None,
        })
    }
}

impl Bulk {
    pub fn text(self) -> &'static str {
        match self {
            Bulk::Parms => "$$parms",
            Bulk::Locals => "$$locals",
            Bulk::Vars => "$$vars",
            Bulk::Return => "$$return",
        }
    }
}
