//! The checked program: names bound, every expression typed, `$vars` still symbolic.
//!
//! This is the contract between `lang` and `compiler`. Expressions carry an
//! [`ExprId`] so later phases can keep side tables (e.g. DWARF access plans)
//! without changing these types.

use crate::printf::Format;
use crate::span::Span;

/// The three SystemTap value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Long,
    String,
    Stats,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Long => "long",
            Type::String => "string",
            Type::Stats => "stats",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);
/// Unique per expression in a [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

#[derive(Clone, Debug)]
pub struct Program {
    pub globals: Vec<Global>,
    pub functions: Vec<Function>,
    pub probes: Vec<Probe>,
    /// Number of expressions; every [`ExprId`] is below this.
    pub expr_count: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Long(i64),
    String(String),
}

#[derive(Clone, Debug)]
pub struct Global {
    pub name: String,
    /// Value type; for arrays the element type.
    pub ty: Type,
    /// Key types; empty for a scalar.
    pub keys: Vec<Type>,
    /// `a[1000]`: maximum entries.
    pub max_entries: Option<u64>,
    /// `a%[10]`: overwrite the oldest entry when full.
    pub wrap: bool,
    pub init: Option<Literal>,
    /// Written somewhere but never read: printed at exit, as SystemTap does.
    pub auto_print: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Local {
    pub name: String,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub params: Vec<LocalId>,
    /// Parameters first, then the other locals.
    pub locals: Vec<Local>,
    pub ret: Type,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Probe {
    /// Alternatives: each expands to zero or more concrete sites.
    pub points: Vec<ProbePoint>,
    pub locals: Vec<Local>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ProbePoint {
    pub kind: ProbeKind,
    /// `?`: no error when it matches nothing.
    pub optional: bool,
    /// `!`: optional, and later alternatives are skipped once this one resolves.
    pub sufficient: bool,
    /// `if (expr)` on globals.
    pub condition: Option<Expr>,
    /// The probe point as written, expanded (for `pp()` and messages).
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProbeKind {
    Begin {
        seq: i64,
    },
    End {
        seq: i64,
    },
    Error {
        seq: i64,
    },
    Never,
    /// Period in nanoseconds; `randomize` in nanoseconds too.
    Timer {
        period_ns: u64,
        randomize_ns: u64,
    },
    TimerHz(u64),
    TimerProfile,
    Process(ProcessProbe),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProcessTarget {
    /// `process("PATH")`: as written, before any `$PATH` search or globbing.
    Path(String),
    Pid(u32),
    /// `process` with no argument: every process.
    Any,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProcessProbe {
    pub target: ProcessTarget,
    /// `.library("NAME")`.
    pub library: Option<String>,
    pub site: ProcessSite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionFilter {
    /// `.function`: out-of-line and inlined instances.
    Any,
    /// `.call`: out-of-line only.
    Call,
    /// `.inline`: inlined instances only.
    Inline,
    /// `.exported`: exported symbols only.
    Exported,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProcessSite {
    Function {
        /// `PAT[@FILE[:LINE]]` as written.
        pattern: String,
        filter: FunctionFilter,
        is_return: bool,
    },
    Statement {
        /// `func@file:line`, or an address.
        pattern: String,
        nearest: bool,
    },
    Mark {
        provider: Option<String>,
        name: String,
    },
    Plt {
        pattern: Option<String>,
        is_return: bool,
    },
    Begin,
    End,
    ThreadBegin,
    ThreadEnd,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "statements are built once; boxing would change the contract"
)]
pub enum StmtKind {
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
    For {
        init: Option<Expr>,
        cond: Option<Expr>,
        step: Option<Expr>,
        body: Box<Stmt>,
    },
    Foreach(Box<Foreach>),
    Break,
    Continue,
    Next,
    Return(Option<Expr>),
    Delete(DeleteTarget),
    Try {
        body: Block,
        /// Receives the error message.
        catch_var: Option<LocalId>,
        catch: Block,
    },
}

#[derive(Clone, Debug)]
pub struct Foreach {
    /// Value binding `v = [k] in a`.
    pub value: Option<LocalId>,
    pub keys: Vec<LocalId>,
    pub array: GlobalId,
    /// `a[*, 5]`: `None` is a wildcard.
    pub slice: Option<Vec<Option<Expr>>>,
    pub sort: Option<Sort>,
    pub limit: Option<Expr>,
    pub body: Box<Stmt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    /// Key at this position.
    Key(u8),
    /// The value; for stats, the aggregate to sort by.
    Value(Option<StatOp>),
}

#[derive(Clone, Debug)]
pub enum DeleteTarget {
    Global(GlobalId),
    Local(LocalId),
    Element {
        array: GlobalId,
        keys: Vec<Expr>,
    },
    Slice {
        array: GlobalId,
        keys: Vec<Option<Expr>>,
    },
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub id: ExprId,
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    /// Arithmetic right shift.
    Shr,
    /// Logical right shift `>>>`.
    Ushr,
    BitAnd,
    BitOr,
    BitXor,
    LogAnd,
    LogOr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatOp {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Variance,
}

#[derive(Clone, Debug)]
pub enum HistKind {
    Log,
    Linear { lo: i64, hi: i64, width: i64 },
}

/// Something assignable.
#[derive(Clone, Debug)]
pub enum LValue {
    Local(LocalId),
    Global(GlobalId),
    Element { array: GlobalId, keys: Vec<Expr> },
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Long(i64),
    Str(String),
    Local(LocalId),
    Global(GlobalId),
    /// `a[k1, k2]` read; a missing key reads 0 or "".
    Element {
        array: GlobalId,
        keys: Vec<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Comparison of two longs or two strings (see the operands' type).
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    /// String concatenation `a . b`.
    Concat(Box<Expr>, Box<Expr>),
    /// `s =~ "re"` (negated for `!~`); the regex is a literal.
    Regex {
        subject: Box<Expr>,
        pattern: String,
        negated: bool,
    },
    /// `[k1, k2] in a`.
    In {
        keys: Vec<Option<Expr>>,
        array: GlobalId,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    /// `x = e`, `x += e` (op `Some(Add)`), `s .= e` (as `Concat`); value is the new value.
    Assign {
        target: LValue,
        op: Option<AssignOp>,
        value: Box<Expr>,
    },
    /// `++x`, `x--`, …
    IncDec {
        target: LValue,
        increment: bool,
        prefix: bool,
    },
    /// `s <<< v`.
    Aggregate {
        target: LValue,
        value: Box<Expr>,
    },
    /// `@count(s)`, `@sum(a[k])`, …
    StatExtract {
        op: StatOp,
        stat: LValue,
    },
    /// `@hist_log(s)`: only inside printing calls.
    Hist {
        kind: HistKind,
        stat: LValue,
    },
    /// Call of a script function.
    Call {
        func: FuncId,
        args: Vec<Expr>,
    },
    /// Call of a builtin or tapset function, by its canonical name.
    Builtin {
        name: String,
        args: Vec<Expr>,
    },
    /// `printf`/`sprintf` with a literal format, already parsed and checked.
    Printf {
        /// `sprintf` returns the string instead of printing.
        to_string: bool,
        format: Format,
        args: Vec<Expr>,
    },
    /// `print`, `println`, `printd`, `printdln` and their `sprint*` forms.
    Print {
        kind: PrintKind,
        to_string: bool,
        delim: Option<String>,
        args: Vec<Expr>,
    },
    Target(TargetExpr),
    /// `@entry(e)` in a `.return` probe: `e` evaluated at function entry.
    Entry(Box<Expr>),
    /// `@defined(e)`: decided when target variables are resolved.
    Defined(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Bin(BinOp),
    Concat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintKind {
    Print,
    Println,
    Printd,
    Printdln,
}

/// A `$`-expression, resolved against debug info by the compiler.
#[derive(Clone, Debug)]
pub struct TargetExpr {
    pub base: TargetBase,
    pub chain: Vec<Accessor>,
    /// `&$v->f`.
    pub address_of: bool,
    /// `$v$` (shallow) or `$v$$` (deep): a string.
    pub pretty: Option<Pretty>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TargetBase {
    /// `$name`, without the `$`.
    Var(String),
    /// `$return`.
    Return,
    /// `$$parms`, `$$locals`, `$$vars`, `$$return` (string).
    Bulk(Bulk),
    /// `@cast(ptr, "type", "module")`.
    Cast {
        pointer: Box<Expr>,
        type_name: String,
        module: Option<String>,
    },
    /// `@var("name@cu", "module")`.
    Var2 {
        name: String,
        module: Option<String>,
    },
    /// `$argN` in a `.mark` probe.
    MarkArg(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bulk {
    Parms,
    Locals,
    Vars,
    Return,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pretty {
    Shallow,
    Deep,
}

#[derive(Clone, Debug)]
pub enum Accessor {
    /// `->name` (pointer or struct alike) or `.name`.
    Member { name: String, span: Span },
    /// `[e]`.
    Index { index: Box<Expr>, span: Span },
}
