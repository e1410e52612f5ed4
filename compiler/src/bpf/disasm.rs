//! The `-p3` listing: maps, record layouts, and each program's instructions under their script lines.

use super::insn::format_insn;
use crate::object::*;
use rtap_lang::printf::{Format, Piece};
use std::fmt::Write;

/// Renders a parsed format back to printf syntax, escaping control characters.
pub fn format_text(f: &Format) -> String {
    let mut s = String::new();
    for p in &f.pieces {
        match p {
            Piece::Text(t) => {
                for c in t.chars() {
                    match c {
                        '%' => s.push_str("%%"),
                        '\n' => s.push_str("\\n"),
                        '\t' => s.push_str("\\t"),
                        '"' => s.push_str("\\\""),
                        '\\' => s.push_str("\\\\"),
                        c => s.push(c),
                    }
                }
            }
            // The conversion as written; `%%` arrives as text, so `%` here is always a conversion.
            Piece::Conv(c) => s.push_str(&c.to_string()),
        }
    }
    s
}

fn field_text(f: &Field) -> String {
    match f.kind {
        FieldKind::Long => format!("long@{}", f.offset),
        FieldKind::Str { cap } => format!("str[{cap}]@{}", f.offset),
    }
}

/// The whole object as text: what `-p3` prints and what codegen snapshots hold.
pub fn disassemble(obj: &BpfObject) -> String {
    let mut out = String::new();
    let name = |id: u32| {
        obj.maps
            .get(id as usize)
            .map_or_else(|| format!("id:{id}"), |m| m.name.clone())
    };
    for (i, m) in obj.maps.iter().enumerate() {
        let _ = writeln!(
            out,
            "map {i} {}: {:?} key {} value {} entries {}{}",
            m.name,
            m.kind,
            m.key_size,
            m.value_size,
            m.max_entries,
            if m.init.is_empty() {
                String::new()
            } else {
                format!(" init {} bytes", m.init.len())
            }
        );
    }
    for (i, e) in obj.events.iter().enumerate() {
        let what = match &e.kind {
            EventKind::Printf(f) => format!("printf \"{}\"", format_text(f)),
            EventKind::Error { message, location } => format!("error \"{message}\" at {location}"),
            EventKind::Exit => "exit".to_string(),
            EventKind::Warn => "warn".to_string(),
            EventKind::Abort => "abort".to_string(),
            EventKind::PrintHist { global, .. } => format!("print histogram of global {global}"),
            EventKind::SymbolicPrintf {
                format, symbolic, ..
            } => {
                let sym: Vec<String> = symbolic
                    .iter()
                    .map(|s| s.map_or("-".to_string(), |s| format!("{s:?}")))
                    .collect();
                format!(
                    "printf \"{}\" symbolic [{}]",
                    format_text(format),
                    sym.join(", ")
                )
            }
        };
        let fields: Vec<String> = e.fields.iter().map(field_text).collect();
        let _ = writeln!(
            out,
            "event {i}: {what} size {} [{}]",
            e.size,
            fields.join(", ")
        );
    }
    for p in &obj.programs {
        let attach = match &p.attach {
            Attach::Uprobe {
                path,
                offsets,
                retprobe,
                ref_ctr_offsets,
                pid,
            } => {
                let offs: Vec<String> = offsets.iter().map(|o| format!("{o:#x}")).collect();
                let kind = if *retprobe { "uretprobe" } else { "uprobe" };
                let mut s = format!("{kind} {} [{}]", path.display(), offs.join(", "));
                if !ref_ctr_offsets.is_empty() {
                    let refs: Vec<String> =
                        ref_ctr_offsets.iter().map(|o| format!("{o:#x}")).collect();
                    s.push_str(&format!(" semaphores [{}]", refs.join(", ")));
                }
                if let Some(pid) = pid {
                    s.push_str(&format!(" pid {pid}"));
                }
                s
            }
            Attach::RawTracepoint {
                name,
                tgids,
                target_only,
            } => match (tgids, target_only) {
                (Some((map, path)), _) => format!(
                    "raw tracepoint {name} for processes of {} (map {})",
                    path.display(),
                    map.0
                ),
                (None, true) => format!("raw tracepoint {name}, with -c/-x only"),
                (None, false) => format!("raw tracepoint {name}"),
            },
            Attach::Timer {
                period_ns,
                randomize_ns,
                every_cpu,
            } => format!(
                "timer every {period_ns}ns randomize {randomize_ns}ns{}",
                if *every_cpu { " on every cpu" } else { "" }
            ),
        };
        let _ = writeln!(out, "\nprogram {} ({:?}) {}", p.name, p.kind, p.probe_point);
        let _ = writeln!(out, "  attach {attach}");
        let mut notes = p.notes.iter().peekable();
        let mut i = 0;
        while i < p.insns.len() {
            while let Some(n) = notes.next_if(|n| n.insn as usize <= i) {
                let _ = writeln!(out, "; {}  {}", n.location, n.text);
            }
            if p.subprograms.contains(&(i as u32)) {
                let _ = writeln!(out, "; callback subprogram");
            }
            let insn = &p.insns[i];
            let next = p.insns.get(i + 1);
            let _ = writeln!(out, "{i:5}: {}", format_insn(insn, next, &name));
            i += if insn.is_ld_imm64() { 2 } else { 1 };
        }
    }
    for h in &obj.host.handlers {
        let at = h.body.stmts.first().map_or_else(
            || obj.host.location(h.body.span),
            |s| obj.host.location(s.span),
        );
        let _ = writeln!(
            out,
            "\nhandler {} {}\n  runs in user space from {at}",
            h.name, h.probe_point
        );
    }
    out
}
