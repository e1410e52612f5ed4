//! `.statement("FUNC@FILE:LINE")`: line-table rows inside a function instance's ranges;
//! `.statement(ADDR)`: the innermost function instance containing a row's address.

use super::location::Located;
use super::pattern::{FunctionPattern, LineSpec};
use super::scope::{locate, scope_vars};
use super::types::Types;
use super::{Binary, DwarfError, FunctionSite, Variable};
use std::collections::HashMap;

/// One statement probe site: the instance it lies in, with `probe` set to the
/// statement's address (so variables and plans are those in scope there).
#[derive(Clone, Debug)]
pub struct StatementSite {
    pub function: FunctionSite,
    /// The line asked for (with `.nearest`, the code probed may be on another).
    pub line: u64,
}

impl StatementSite {
    /// `send_msg@/src/app.c:25`, as in a canonical probe point.
    pub fn spec(&self) -> String {
        match &self.function.decl_file {
            Some(f) => format!("{}@{}:{}", self.function.name, f, self.line),
            None => format!("{}:{}", self.function.name, self.line),
        }
    }
}

/// A line-table row: where a line's code is.
#[derive(Clone, Copy)]
struct Row {
    address: u64,
    line: u64,
}

impl Binary {
    /// The sites of `.statement(text)`; `nearest` falls back to the closest line with code.
    pub fn statements(&self, text: &str, nearest: bool) -> Result<Vec<StatementSite>, DwarfError> {
        let bad = |reason: &str| DwarfError::BadPattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let full = FunctionPattern::parse(text)?;
        let Some(spec) = full.line else {
            return Err(bad("a statement needs `@FILE:LINE`"));
        };
        // The function part without the line: the line is the statement's, not the declaration's.
        let split = match spec {
            LineSpec::Relative(_) => text.rsplit_once('+'),
            _ => text.rsplit_once(':'),
        };
        let Some((func_file, _)) = split else {
            return Err(bad("a statement needs `@FILE:LINE`"));
        };
        let pattern = FunctionPattern::parse(func_file)?;
        let file_pattern = func_file.split_once('@').map(|(_, f)| f).unwrap_or("*");
        let globs = [
            glob::Pattern::new(file_pattern).map_err(|e| bad(e.msg))?,
            glob::Pattern::new(&format!("*/{file_pattern}")).map_err(|e| bad(e.msg))?,
        ];
        let index = self.index();
        let loaded = &self.loaded;
        let mut rows_of: HashMap<u32, Vec<Row>> = HashMap::new();
        // Each instance with the rows inside its ranges.
        let mut candidates = Vec::new();
        for f in self.functions(&pattern) {
            let Some(fd) = f.die else { continue };
            let rows = rows_of.entry(fd.unit).or_insert_with(|| {
                unit_rows(self, fd.unit, &|name: &str| {
                    globs.iter().any(|g| g.matches(name))
                })
            });
            let unit = &index.units[fd.unit as usize].unit;
            let Ok(entry) = unit.entry(fd.die) else {
                continue;
            };
            let mut ranges = Vec::new();
            if let Ok(mut rs) = loaded.dwarf.die_ranges(unit, &entry) {
                while let Ok(Some(r)) = rs.next() {
                    ranges.push((r.begin, r.end));
                }
            }
            let inside: Vec<Row> = rows
                .iter()
                .copied()
                .filter(|r| ranges.iter().any(|&(b, e)| b <= r.address && r.address < e))
                .collect();
            candidates.push((f, inside));
        }
        let all: Vec<&(FunctionSite, Vec<Row>)> = candidates.iter().collect();
        let mut found = Vec::new();
        match spec {
            // Each function's own line: its declaration line plus N.
            LineSpec::Relative(n) => {
                let mut decls: Vec<u64> =
                    candidates.iter().filter_map(|(f, _)| f.decl_line).collect();
                decls.sort_unstable();
                decls.dedup();
                for decl in decls {
                    let group: Vec<&(FunctionSite, Vec<Row>)> = candidates
                        .iter()
                        .filter(|(f, _)| f.decl_line == Some(decl))
                        .collect();
                    found.extend(sites_at(&group, &[decl + n], nearest));
                }
            }
            LineSpec::Exact(n) => found = sites_at(&all, &[n], nearest),
            LineSpec::Range(a, b) => found = sites_at(&all, &(a..=b).collect::<Vec<_>>(), nearest),
            LineSpec::Any => {
                let mut lines: Vec<u64> = candidates
                    .iter()
                    .flat_map(|(_, rows)| rows.iter().map(|r| r.line))
                    .collect();
                lines.sort_unstable();
                lines.dedup();
                found = sites_at(&all, &lines, nearest);
            }
        }
        // Every instance with the line is a site, an inlined copy and its caller alike,
        // as SystemTap lists them.
        let mut out = found;
        out.sort_by(|a, b| {
            (&a.function.name, a.function.probe).cmp(&(&b.function.name, b.function.probe))
        });
        Ok(out)
    }
}

impl Binary {
    /// The site of `.statement(ADDR)`: `addr` (a link-time virtual address) must start a
    /// line-table row, as in SystemTap; variables are those in scope in the innermost
    /// function instance (an inlined copy when there is one) containing it.
    pub fn statement_at(&self, addr: u64) -> Result<StatementSite, String> {
        let path = self.path.display();
        let no_line = || format!("no line information at {addr:#x} in `{path}`");
        if self.loaded.no_debug.is_some() {
            return Err(no_line());
        }
        let ctx = addr2line::Context::from_arc_dwarf(self.loaded.dwarf.clone())
            .map_err(|e| format!("cannot read the line table of `{path}`: {e}"))?;
        let row = ctx
            .find_location_range(addr, addr.saturating_add(1))
            .map_err(|e| format!("cannot read the line table of `{path}`: {e}"))?
            .next();
        let Some((start, _, location)) = row else {
            return Err(no_line());
        };
        if start != addr {
            return Err(format!(
                "address {addr:#x} does not match the beginning of a statement (try {start:#x})"
            ));
        }
        let line = location.line.map_or(0, u64::from);
        let no_function =
            || format!("address {addr:#x} is in no function with debug info in `{path}`");
        let frames = ctx.find_frames(addr).skip_all_loads();
        let die = frames
            .ok()
            .and_then(|mut f| f.next().ok().flatten())
            .and_then(|f| f.dw_die_offset);
        let unit = ctx.find_dwarf_and_unit(addr).skip_all_loads();
        let (Some(die), Some(unit)) = (die, unit) else {
            return Err(no_function());
        };
        let Some(start) = unit.header.offset().to_debug_info_offset(&unit.header) else {
            return Err(no_function());
        };
        let index = self.index();
        let Some((u, off)) = index.locate(start.0 + die.0) else {
            return Err(no_function());
        };
        // The instance whose DIE that is, found by its name (a quick lookup), else
        // among every instance.
        let is_it = |f: &FunctionSite| f.die.is_some_and(|d| d.unit == u && d.die == off);
        let by_name = self
            .die_name(u, off)
            .and_then(|n| FunctionPattern::parse(&n).ok())
            .and_then(|p| self.functions(&p).into_iter().find(is_it));
        let function = match by_name {
            Some(f) => f,
            None => FunctionPattern::parse("*")
                .ok()
                .and_then(|p| self.functions(&p).into_iter().find(is_it))
                .ok_or_else(no_function)?,
        };
        let mut function = function;
        function.probe = addr;
        Ok(StatementSite { function, line })
    }

    /// The name of a function DIE, through its abstract origin or specification.
    fn die_name(&self, unit: u32, die: gimli::UnitOffset) -> Option<String> {
        let index = self.index();
        let types = Types {
            loaded: &self.loaded,
            index,
        };
        let mut at = (unit, die);
        for _ in 0..4 {
            let u = &index.units[at.0 as usize].unit;
            let e = u.entry(at.1).ok()?;
            if let Some(v) = e.attr_value(gimli::DW_AT_name) {
                return super::index::string(&self.loaded, u, v);
            }
            at = types
                .attr_ref(at.0, &e, gimli::DW_AT_abstract_origin)
                .or_else(|| types.attr_ref(at.0, &e, gimli::DW_AT_specification))?;
        }
        None
    }

    /// Variables in scope at a statement, innermost block first (each block's in DIE
    /// order), a shadowed name listed once, as SystemTap lists them.
    pub fn statement_variables(&self, site: &FunctionSite) -> Vec<Variable> {
        let Some(fd) = site.die else {
            return Vec::new();
        };
        let index = self.index();
        let types = Types {
            loaded: &self.loaded,
            index,
        };
        let mut vars = scope_vars(&self.loaded, index, fd, site.probe);
        vars.sort_by_key(|v| std::cmp::Reverse(v.depth));
        let mut seen = std::collections::HashSet::new();
        vars.into_iter()
            .filter(|v| seen.insert(v.name.clone()))
            .map(|v| Variable {
                available: !matches!(
                    locate(&self.loaded, index, fd, &v, site.probe),
                    Located::OptimizedOut
                ),
                c_type: types.name_of(v.ty),
                name: v.name,
                is_param: v.is_param,
            })
            .collect()
    }
}

/// The sites of `lines` among `candidates` (instances with their rows); `nearest` falls
/// back to the closest line with code.
fn sites_at(
    candidates: &[&(FunctionSite, Vec<Row>)],
    lines: &[u64],
    nearest: bool,
) -> Vec<StatementSite> {
    let mut found = Vec::new();
    for &line in lines {
        let has = |l: u64| {
            candidates
                .iter()
                .any(|(_, rows)| rows.iter().any(|r| r.line == l))
        };
        // `.nearest`: the closest line with code, the later one on a tie, in an
        // instance whose lines span the one asked for.
        let target = if !has(line) && nearest {
            candidates
                .iter()
                .filter(|(f, rows)| {
                    let first = rows.iter().map(|r| r.line).chain(f.decl_line).min();
                    let last = rows.iter().map(|r| r.line).max();
                    first.is_some_and(|a| a <= line) && last.is_some_and(|b| line <= b)
                })
                .flat_map(|(_, rows)| rows.iter())
                .min_by_key(|r| (r.line.abs_diff(line), r.line < line))
                .map(|r| r.line)
        } else {
            Some(line)
        };
        let Some(target) = target else { continue };
        for (f, rows) in candidates {
            let Some(address) = rows
                .iter()
                .filter(|r| r.line == target)
                .map(|r| r.address)
                .min()
            else {
                continue;
            };
            let mut function = f.clone();
            function.probe = address;
            found.push(StatementSite { function, line });
        }
    }
    found
}

/// The rows of one unit whose file passes `file_ok`.
fn unit_rows(binary: &Binary, unit: u32, file_ok: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let index = binary.index();
    let u = &index.units[unit as usize].unit;
    let Some(program) = u.line_program.clone() else {
        return Vec::new();
    };
    let mut files: HashMap<u64, bool> = HashMap::new();
    let mut out = Vec::new();
    let mut rows = program.rows();
    while let Ok(Some((_, row))) = rows.next_row() {
        // Every row counts, `is_stmt` or not: SystemTap probes a line's lowest address.
        if row.end_sequence() {
            continue;
        }
        let Some(line) = row.line().map(|l| l.get()) else {
            continue;
        };
        let ok = *files.entry(row.file_index()).or_insert_with(|| {
            index
                .file_name(&binary.loaded, unit, row.file_index())
                .is_some_and(|n| file_ok(&n))
        });
        if ok {
            out.push(Row {
                address: row.address(),
                line,
            });
        }
    }
    out
}
