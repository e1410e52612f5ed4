//! Function instances tied to the symbol table as SystemTap ties them, and the query that
//! picks probe points from them.
//!
//! SystemTap (`module_info::update_symtab`) looks each non-inline subprogram DIE up in the
//! symbol table by its linkage name (else its name); every symbol at a found symbol's
//! address then belongs to DWARF, and its name becomes an alias of that DIE (`malloc` →
//! `__libc_malloc`). Out-of-line matches are kept once per entry address; symbols that
//! DWARF does not claim are probe points of their own, once per address.

use super::index::{FuncDie, Index};
use super::load::{Loaded, Symbol};
use super::pattern::FunctionPattern;
use super::scan::{Decl, Strings};
use super::stl_order::MultiMap;
use super::{FunctionSite, InstanceKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::OnceLock;

/// (unit, file index, line) of a declaration.
type DeclPlace = (u32, u64, u64);

struct Func {
    /// `.debug_info` offset of the DIE.
    global: usize,
    name: String,
    decl: Option<DeclPlace>,
    kind: InstanceKind,
    entry: u64,
    high: u64,
    die: FuncDie,
    exported: bool,
}

/// The symbol table, by name and by address (indices into `Loaded::symbols`).
pub(crate) struct Symbols {
    by_name: FxHashMap<String, Vec<u32>>,
    /// (address, index), sorted: symbol-table order within an address.
    by_addr: Vec<(u64, u32)>,
}

impl Symbols {
    pub fn new(all: &[Symbol]) -> Symbols {
        let mut by_name: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut by_addr = Vec::with_capacity(all.len());
        for (i, s) in all.iter().enumerate() {
            by_name.entry(s.name.clone()).or_default().push(i as u32);
            by_addr.push((s.address, i as u32));
        }
        by_addr.sort_unstable();
        Symbols { by_name, by_addr }
    }

    fn at<'a>(&'a self, all: &'a [Symbol], address: u64) -> impl Iterator<Item = &'a Symbol> {
        let i = self.by_addr.partition_point(|&(a, _)| a < address);
        self.by_addr[i..]
            .iter()
            .take_while(move |&&(a, _)| a == address)
            .map(move |&(_, i)| &all[i as usize])
    }

    fn at_indexed<'a>(
        &'a self,
        all: &'a [Symbol],
        address: u64,
    ) -> impl Iterator<Item = (u32, &'a Symbol)> {
        let i = self.by_addr.partition_point(|&(a, _)| a < address);
        self.by_addr[i..]
            .iter()
            .take_while(move |&&(a, _)| a == address)
            .map(move |&(_, i)| (i, &all[i as usize]))
    }

    fn named_indexed<'a>(
        &'a self,
        all: &'a [Symbol],
        name: &str,
    ) -> impl Iterator<Item = (u32, &'a Symbol)> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(move |&i| (i, &all[i as usize]))
    }

    fn named<'a>(&'a self, all: &'a [Symbol], name: &str) -> impl Iterator<Item = &'a Symbol> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(move |&i| &all[i as usize])
    }
}

/// Every DWARF function instance of some units, and what the symbol table says of them.
pub(crate) struct Catalog {
    funcs: Vec<Func>,
    by_name: FxHashMap<String, Vec<u32>>,
    /// Symbol addresses that belong to a DWARF function (their names are aliases).
    claimed: FxHashSet<u64>,
    /// Claimed address → the out-of-line instances whose name claimed it.
    aliases: FxHashMap<u64, Vec<u32>>,
    /// GCC's partial-inlining splits (`foo.part.0`), by name and entry: never probe points,
    /// but their symbols are not functions of their own either.
    parts: Vec<(String, u64)>,
    /// Each instance's place in name order, for sorting with integer compares.
    rank: OnceLock<Vec<u32>>,
}

/// Follow abstract origins and specifications to a name, a linkage name and a declaration.
struct Resolved<'a> {
    name: Option<&'a str>,
    linkage: Option<&'a str>,
    decl: Option<DeclPlace>,
    external: bool,
}

fn resolve<'a>(
    index: &'a Index,
    loaded: &'a Loaded,
    strings: &Strings<'a>,
    unit: u32,
    first: &'a Decl,
) -> Resolved<'a> {
    let mut r = Resolved {
        name: None,
        linkage: None,
        decl: None,
        external: false,
    };
    let mut file = None;
    let mut line = None;
    let mut cur = Some((unit, first));
    for _ in 0..8 {
        let Some((unit, d)) = cur else {
            break;
        };
        r.name = r.name.or_else(|| d.name.map(|n| strings.get(n)));
        r.linkage = r.linkage.or_else(|| d.linkage.map(|n| strings.get(n)));
        if file.is_none() {
            file = d.file.map(|f| (unit, f));
            line = line.or(d.line);
        }
        r.external |= d.external;
        cur = d.origin.and_then(|g| index.decl(loaded, g));
    }
    r.decl = file.map(|(u, f)| (u, f, line.unwrap_or(0)));
    r
}

/// What one unit contributes to a catalog, before instances seen in earlier units drop out.
struct Partial<'a> {
    claimed: Vec<u64>,
    parts: Vec<(String, u64)>,
    /// Each instance with its name and the name its symbols are looked up by
    /// (out-of-line ones).
    funcs: Vec<(Func, &'a str, Option<&'a str>)>,
}

/// The file-wide facts a unit's part of the catalog is read with.
struct Facts<'a> {
    index: &'a Index,
    loaded: &'a Loaded,
    symbols: &'a Symbols,
    exported: &'a FxHashSet<u64>,
    part_addrs: &'a FxHashSet<u64>,
}

impl<'a> Facts<'a> {
    fn unit(&self, u: u32) -> Partial<'a> {
        let (index, loaded) = (self.index, self.loaded);
        let strings = Strings::new(loaded);
        let all = &loaded.symbols[..];
        let mut out = Partial {
            claimed: Vec::new(),
            parts: Vec::new(),
            funcs: Vec::new(),
        };
        let scan = index.scan(loaded, u);
        // Lookup names of the unit's non-inline subprogram definitions (what
        // `dwarf_getfuncs` reports) claim their symbols' addresses.
        for d in &scan.decls {
            if !d.subprogram || d.inline || d.declaration {
                continue;
            }
            let r = resolve(index, loaded, &strings, u, d);
            if let Some(lookup) = r.linkage.or(r.name) {
                out.claimed
                    .extend(self.symbols.named(all, lookup).map(|s| s.address));
            }
        }
        for (ci, c) in scan.concrete.iter().enumerate() {
            let d = &scan.decls[c.decl as usize];
            let r = resolve(index, loaded, &strings, u, d);
            let Some(name) = r.name else { continue };
            if !c.inline && self.part_addrs.contains(&c.entry) {
                out.parts.push((name.to_string(), c.entry));
                continue;
            }
            // Dead code keeps DWARF with a zero (or tombstone) address outside every segment.
            if c.entry == 0 || loaded.file_offset(c.entry).is_none() {
                continue;
            }
            let kind = if c.inline {
                InstanceKind::Inline
            } else {
                InstanceKind::OutOfLine
            };
            // SystemTap reads a missing declaration from the line table at `DW_AT_low_pc`.
            let mut decl = r.decl;
            if decl.is_none() || decl.is_some_and(|(_, _, l)| l == 0) {
                if let Some((file, line)) = c.low.and_then(|pc| index.line_at(loaded, u, pc)) {
                    decl = Some(match decl {
                        Some((du, df, _)) => (du, df, line),
                        None => (u, file, line),
                    });
                }
            }
            // Read the file name now, on this core, rather than when the query needs it.
            if let Some((du, file, _)) = decl {
                index.file_name_ref(loaded, du, file);
            }
            let lookup = (!c.inline).then(|| r.linkage.or(r.name)).flatten();
            out.funcs.push((
                Func {
                    global: c.global,
                    name: name.to_string(),
                    decl,
                    kind,
                    entry: c.entry,
                    high: c.high,
                    die: FuncDie {
                        unit: u,
                        die: c.die,
                        frame: c.frame,
                        concrete: ci as u32,
                    },
                    exported: r.external && !c.inline && self.exported.contains(&c.entry),
                },
                name,
                lookup,
            ));
        }
        out
    }
}

impl Catalog {
    /// `name` and the other names of its symbols' addresses.
    pub fn related_names<'a>(
        symbols: &'a Symbols,
        all: &'a [Symbol],
        name: &'a str,
    ) -> Vec<&'a str> {
        let mut out = vec![name];
        for s in symbols.named(all, name) {
            for other in symbols.at(all, s.address) {
                if !out.contains(&other.name.as_str()) {
                    out.push(&other.name);
                }
            }
        }
        out
    }

    /// The instances of `units` (already scanned): each unit read on all cores, then
    /// merged in unit order.
    pub fn build(index: &Index, loaded: &Loaded, symbols: &Symbols, units: &[u32]) -> Catalog {
        let all = &loaded.symbols[..];
        let exported: FxHashSet<u64> = all
            .iter()
            .filter(|s| s.exported)
            .map(|s| s.address)
            .collect();
        let part_addrs: FxHashSet<u64> = all
            .iter()
            .filter(|s| s.name.contains(".part."))
            .map(|s| s.address)
            .collect();
        let facts = Facts {
            index,
            loaded,
            symbols,
            exported: &exported,
            part_addrs: &part_addrs,
        };
        let partials = super::index::parallel(units.len(), |k| facts.unit(units[k]));
        let total = partials.iter().map(|p| p.funcs.len()).sum();
        let mut cat = Catalog {
            funcs: Vec::with_capacity(total),
            by_name: FxHashMap::default(),
            claimed: FxHashSet::default(),
            aliases: FxHashMap::default(),
            parts: Vec::new(),
            rank: OnceLock::new(),
        };
        let mut seen = FxHashSet::default();
        seen.reserve(total);
        for p in partials {
            cat.claimed.extend(p.claimed);
            cat.parts.extend(p.parts);
            for (f, name, lookup) in p.funcs {
                if !seen.insert((name, f.entry, f.kind)) {
                    continue;
                }
                let id = cat.funcs.len() as u32;
                if let Some(lookup) = lookup {
                    for s in symbols.named(all, lookup) {
                        cat.aliases.entry(s.address).or_default().push(id);
                    }
                }
                match cat.by_name.get_mut(name) {
                    Some(ids) => ids.push(id),
                    None => {
                        cat.by_name.insert(name.to_string(), vec![id]);
                    }
                }
                cat.funcs.push(f);
            }
        }
        cat
    }

    /// The probe points `pattern` names: DWARF instances by name or alias, one name per
    /// out-of-line entry, then symbols DWARF does not claim, one per address.
    pub fn select(
        &self,
        index: &Index,
        loaded: &Loaded,
        symbols: &Symbols,
        pattern: &FunctionPattern,
    ) -> Vec<FunctionSite> {
        let all = &loaded.symbols[..];
        let mut ids: Vec<u32> = match pattern.literal_name() {
            Some(n) => self.by_name.get(n).cloned().unwrap_or_default(),
            None => self
                .by_name
                .iter()
                .filter(|(n, _)| pattern.matches_name(n))
                .flat_map(|(_, v)| v.iter().copied())
                .collect(),
        };
        let matching_symbols: Vec<&Symbol> = match pattern.literal_name() {
            Some(n) => symbols.named(all, n).collect(),
            None => all
                .iter()
                .filter(|s| pattern.matches_name(&s.name))
                .collect(),
        };
        for s in &matching_symbols {
            if let Some(a) = self.aliases.get(&s.address) {
                ids.extend(a);
            }
        }
        // In output order (name, kind, entry), which is distinct per instance, so equal
        // ids end up adjacent; the symbol-only sites appended below are then merged in
        // by an adaptive sort in linear time.
        let rank = self.ranks();
        let mut keyed: Vec<(u32, InstanceKind, u64, u32)> = ids
            .iter()
            .map(|&id| {
                let f = &self.funcs[id as usize];
                (rank[id as usize], f.kind, f.entry, id)
            })
            .collect();
        keyed.sort_unstable();
        keyed.dedup();
        let ids = keyed.into_iter().map(|k| k.3);

        let mut kept = Vec::with_capacity(ids.len());
        let mut by_entry: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
        for id in ids {
            let f = &self.funcs[id as usize];
            let decl_file = f
                .decl
                .and_then(|(u, file, _)| index.file_name_ref(loaded, u, file));
            let decl_line = f.decl.map(|(_, _, l)| l);
            if !pattern.matches_decl(decl_file, decl_line) {
                continue;
            }
            if f.kind == InstanceKind::OutOfLine {
                by_entry.entry(f.entry).or_default().push(kept.len());
            }
            kept.push((f, decl_file, decl_line));
        }
        // One out-of-line function per entry: SystemTap keeps the one it meets first.
        let mut drop = vec![false; kept.len()];
        for group in by_entry.values().filter(|g| g.len() > 1) {
            let winner = self.first_met(
                index,
                loaded,
                symbols,
                pattern,
                group.iter().map(|&k| kept[k].0),
            );
            for &k in group {
                drop[k] = kept[k].0.global != winner;
            }
        }
        // Built on all cores: copying names is most of the work for a whole library.
        let chunk = kept.len().div_ceil(8).max(1);
        let parts = super::index::parallel(kept.len().div_ceil(chunk), |c| {
            let range = c * chunk..((c + 1) * chunk).min(kept.len());
            kept[range.clone()]
                .iter()
                .zip(&drop[range])
                .filter(|(_, &dropped)| !dropped)
                .map(|(&(f, decl_file, decl_line), _)| {
                    self.site(index, loaded, f, decl_file, decl_line)
                })
                .collect::<Vec<_>>()
        });
        let mut out = Vec::with_capacity(kept.len());
        for p in parts {
            out.extend(p);
        }
        if !pattern.has_file() {
            let mut used: FxHashSet<u64> = out.iter().map(|s| s.entry).collect();
            for (name, entry) in &self.parts {
                if pattern.matches_name(name) {
                    used.insert(*entry);
                }
            }
            let mut syms = matching_symbols;
            syms.sort_by_key(|s| s.address);
            let dwarf_sites = out.len();
            for s in syms {
                if self.claimed.contains(&s.address) || !used.insert(s.address) {
                    continue;
                }
                out.push(FunctionSite {
                    name: s.name.clone(),
                    decl_file: None,
                    decl_line: None,
                    kind: InstanceKind::Symbol,
                    entry: s.address,
                    probe: s.address,
                    exported: s.exported,
                    die: None,
                });
            }
            out[dwarf_sites..].sort_by(|a, b| (&a.name, a.entry).cmp(&(&b.name, b.entry)));
        }
        // Out-of-line instances first: within a unit, SystemTap meets them before the
        // inlined copies, and `-L` keeps the variable order of the first instance met.
        out.sort_by(|a, b| (&a.name, a.kind, a.entry).cmp(&(&b.name, b.kind, b.entry)));
        out
    }

    /// The probe site of one DWARF instance.
    fn site(
        &self,
        index: &Index,
        loaded: &Loaded,
        f: &Func,
        decl_file: Option<&str>,
        decl_line: Option<u64>,
    ) -> FunctionSite {
        FunctionSite {
            name: f.name.clone(),
            decl_file: decl_file.map(str::to_string),
            decl_line,
            kind: f.kind,
            entry: f.entry,
            probe: index.probe_address(
                loaded,
                Some(f.die),
                f.kind == InstanceKind::OutOfLine,
                f.entry,
                f.high,
            ),
            exported: f.exported,
            die: Some(f.die),
        }
    }

    /// Each instance's place in the sorted list of names.
    fn ranks(&self) -> &[u32] {
        self.rank.get_or_init(|| {
            let mut names: Vec<(&String, &Vec<u32>)> = self.by_name.iter().collect();
            names.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut rank = vec![0; self.funcs.len()];
            for (r, (_, ids)) in names.iter().enumerate() {
                for &id in ids.iter() {
                    rank[id as usize] = r as u32;
                }
            }
            rank
        })
    }

    /// Of out-of-line instances sharing an entry, the DIE SystemTap meets first: units in
    /// order, and within a unit the order of its function table (see `stl_order`).
    fn first_met<'f>(
        &self,
        index: &Index,
        loaded: &Loaded,
        symbols: &Symbols,
        pattern: &FunctionPattern,
        group: impl Iterator<Item = &'f Func>,
    ) -> usize {
        let group: Vec<&Func> = group.collect();
        let unit = group.iter().map(|f| f.die.unit).min().unwrap_or(0);
        let in_unit: FxHashSet<usize> = group
            .iter()
            .filter(|f| f.die.unit == unit)
            .map(|f| f.global)
            .collect();
        let fallback = group
            .iter()
            .filter(|f| f.die.unit == unit)
            .map(|f| f.global)
            .min()
            .unwrap_or(0);
        if in_unit.len() < 2 {
            return fallback;
        }
        unit_order(index, loaded, symbols, unit)
            .into_iter()
            .find(|(key, global)| in_unit.contains(global) && pattern.matches_name(key))
            .map_or(fallback, |(_, g)| g)
    }
}

/// A unit's function table as SystemTap fills and walks it: every named subprogram
/// definition in DIE order (`dwarf_getfuncs`), then the aliases `update_symtab` adds.
/// Returns (key, DIE offset) in iteration order.
fn unit_order<'a>(
    index: &'a Index,
    loaded: &'a Loaded,
    symbols: &'a Symbols,
    unit: u32,
) -> Vec<(&'a str, usize)> {
    let strings = Strings::new(loaded);
    let all = &loaded.symbols[..];
    let scan = index.scan(loaded, unit);
    let mut keys: Vec<&str> = Vec::new();
    // (DIE offset, lookup name when not inline) per node.
    let mut dies: Vec<(usize, Option<&str>)> = Vec::new();
    let mut table = MultiMap::new();
    for d in scan.decls.iter().filter(|d| d.subprogram && !d.declaration) {
        let r = resolve(index, loaded, &strings, unit, d);
        let Some(name) = r.name else { continue };
        table.insert(name.as_bytes());
        keys.push(name);
        dies.push((d.global, (!d.inline).then(|| r.linkage.unwrap_or(name))));
    }
    let mut aliases = MultiMap::new();
    let mut alias_nodes: Vec<(&str, usize)> = Vec::new();
    for node in table.order() {
        let (global, Some(lookup)) = dies[node] else {
            continue;
        };
        for (fi, found) in symbols.named_indexed(all, lookup) {
            for (other, sym) in symbols.at_indexed(all, found.address) {
                if other != fi {
                    aliases.insert(sym.name.as_bytes());
                    alias_nodes.push((&sym.name, global));
                }
            }
        }
    }
    let ranged: Vec<&[u8]> = aliases
        .order()
        .into_iter()
        .map(|n| alias_nodes[n].0.as_bytes())
        .collect();
    let order_of_alias = aliases.order();
    let ids = table.insert_all(&ranged);
    for (j, _) in ids.iter().enumerate() {
        let (key, global) = alias_nodes[order_of_alias[j]];
        keys.push(key);
        dies.push((global, None));
    }
    table
        .order()
        .into_iter()
        .map(|n| (keys[n], dies[n].0))
        .collect()
}
