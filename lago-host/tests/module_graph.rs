//! The module graph of lago's host library has no cycles: imports run one
//! way, from the verbs (`cli`, `sdk`) through the operations (`ops`) and the
//! runtime (`environment`) down to storage (`prefix`, `files`) and the
//! leaves (issue 17).
//!
//! Read from the sources as text: every `crate::<module>` path outside
//! comments and `#[cfg(test)]` code is an edge between top-level modules;
//! inside a folder module, every `super::<file>` path (and
//! `crate::<folder>::<file>`) is an edge between its files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` in `code` (`crate::` → `ssh`, ...),
/// including those of a `prefix{a, b::c}` group.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn add(graph: &mut Graph, from: &str, to: &str, file: &str) {
    if from != to {
        graph
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_default()
            .insert(file.to_string());
    }
}

/// The strongly connected components with more than one node.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit<'a>(
        g: &'a BTreeMap<String, BTreeSet<String>>,
        n: &'a str,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<&'a str>,
    ) {
        if !seen.insert(n) {
            return;
        }
        if let Some(next) = g.get(n) {
            for m in next {
                visit(g, m, seen, out);
            }
        }
        out.push(n);
    }
    let forward: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect();
    let mut reverse: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in &forward {
        for b in bs {
            reverse.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in forward.keys() {
        visit(&forward, n, &mut seen, &mut order);
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        let mut comp = Vec::new();
        visit(&reverse, n, &mut assigned, &mut comp);
        if comp.len() > 1 {
            comp.sort();
            out.push(comp.into_iter().map(str::to_string).collect());
        }
    }
    out
}

fn describe(graph: &Graph, comps: &[Vec<String>]) -> String {
    let mut s = String::new();
    for comp in comps {
        s.push_str(&format!("cycle {comp:?}:\n"));
        for a in comp {
            for b in comp {
                if let Some(files) = graph.get(a).and_then(|m| m.get(b)) {
                    s.push_str(&format!("  {a} -> {b} ({files:?})\n"));
                }
            }
        }
    }
    s
}

#[test]
fn lago_host_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top = Graph::new();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        let module = parts[0].clone();
        if matches!(module.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        let shown = rel.display().to_string();
        let code = code_of(file);
        for to in names_after(&code, "crate::") {
            add(&mut top, &module, &to, &shown);
        }
        // Files of a folder module: `super::x` from a/b.rs, and
        // `crate::a::x`, name the sibling `x` (a/x.rs or a/x/).
        if parts.len() >= 2 {
            let folder = parts[..parts.len() - 1].join("/");
            let me = &parts[parts.len() - 1];
            let siblings = inner.entry(folder.clone()).or_default();
            let mut named = Vec::new();
            if me != "mod" {
                named.extend(names_after(&code, "super::"));
            } else {
                named.extend(names_after(&code, "self::"));
            }
            named.extend(names_after(
                &code,
                &format!("crate::{}::", folder.replace('/', "::")),
            ));
            for to in named {
                let to = if src.join(&folder).join(format!("{to}.rs")).is_file()
                    || src.join(&folder).join(&to).is_dir()
                {
                    to
                } else {
                    // An item of the folder's mod.rs.
                    "mod".to_string()
                };
                add(siblings, me, &to, &shown);
            }
        }
    }
    let comps = cycles(&top);
    assert!(
        comps.is_empty(),
        "lago-host's top-level modules import each other in a circle:\n{}",
        describe(&top, &comps)
    );
    let mut inside = String::new();
    for (folder, graph) in &inner {
        let comps = cycles(graph);
        if !comps.is_empty() {
            inside.push_str(&format!("in {folder}/:\n{}", describe(graph, &comps)));
        }
    }
    assert!(
        inside.is_empty(),
        "files of a module import each other in a circle:\n{inside}"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g = Graph::new();
    add(&mut g, "a", "b", "a.rs");
    add(&mut g, "b", "c", "b.rs");
    add(&mut g, "c", "a", "c.rs");
    add(&mut g, "c", "d", "c.rs");
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    add(&mut g, "d", "e", "d.rs");
    assert_eq!(cycles(&g).len(), 1);
    assert_eq!(
        names_after(
            "use crate::{ssh, prefix::Prefix}; x::crate::no; crate::ops::init",
            "crate::"
        ),
        vec!["ssh", "prefix", "ops"]
    );
}
