//! The map in ARCHITECTURE.md, checked: every module of `src/` uses only
//! modules of lower layers, and the submodules of one module form no
//! circle.
//!
//! Why a test: import circles crept in before (config ↔ auth, chain ↔
//! auth, proxy::endpoints ↔ proxy::wallet), each small, each making the
//! next feature harder to place. Reading the `use` lines of the sources is
//! crude but enough: a path `crate::x` (or `super::x` inside a module) is a
//! dependency. Unit-test modules (`#[cfg(test)]` and below) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first (ARCHITECTURE.md, "Dependencies"). A module may
/// use modules of lower layers only; modules of one layer never use each
/// other.
const LAYERS: &[&[&str]] = &[
    &["clock", "random"],
    &["store"],
    &["chain"],
    &["config"],
    &["logging", "pages"],
    &["auth", "policy"],
    &["access_log", "admin", "oidc", "report", "hello"],
    &["proxy"],
    &["reload"],
    &["server"],
    &["demo"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/proxy/endpoints.rs` → `["proxy", "endpoints"]`; `mod.rs` names its
/// folder; `lib.rs` and `main.rs` are the crate root (empty).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code before the file's unit tests, without comment lines (doc
/// links such as [`super::respond`] are not dependencies).
fn code_without_tests(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The first path segment after each `prefix` (`crate::`, `super::`),
/// including those inside `use prefix{a, b::c}` groups.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

struct Graph {
    /// Top-level module → the top-level modules it uses.
    top: BTreeMap<String, BTreeSet<String>>,
    /// (parent, submodule) → sibling submodules it uses.
    inner: BTreeMap<(String, String), BTreeSet<String>>,
}

fn read_graph() -> Graph {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph = Graph {
        top: BTreeMap::new(),
        inner: BTreeMap::new(),
    };
    for file in files {
        let path = module_path(&src, &file);
        let Some(top) = path.first().cloned() else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let code = &code_without_tests(&text);
        let used = graph.top.entry(top.clone()).or_default();
        for name in names_after(code, "crate::") {
            if name != top {
                used.insert(name);
            }
        }
        // Sibling uses inside one top-level module: `super::x` from a
        // direct submodule, `crate::top::x` from anywhere in it.
        if path.len() >= 2 {
            let own = path[1].clone();
            let mut siblings = BTreeSet::new();
            if path.len() == 2 {
                siblings.extend(names_after(code, "super::"));
            }
            siblings.extend(names_after(code, &format!("crate::{top}::")));
            siblings.remove(&own);
            graph
                .inner
                .entry((top.clone(), own))
                .or_default()
                .extend(siblings);
        }
    }
    graph
}

#[test]
fn every_module_uses_only_lower_layers() {
    let graph = read_graph();
    let mut wrong = Vec::new();
    for (module, used) in &graph.top {
        let Some(own) = layer_of(module) else {
            wrong.push(format!("{module} is in no layer of ARCHITECTURE.md"));
            continue;
        };
        for dependency in used {
            match layer_of(dependency) {
                Some(layer) if layer < own => {}
                Some(_) => wrong.push(format!(
                    "{module} (layer {own}) uses {dependency}, which is not below it"
                )),
                None => wrong.push(format!("{module} uses {dependency}, in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn submodules_of_one_module_form_no_circle() {
    let graph = read_graph();
    let mut circles = Vec::new();
    for (parent, start) in graph.inner.keys() {
        let edges = |from: &str| -> Vec<String> {
            graph
                .inner
                .get(&(parent.clone(), from.to_string()))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        };
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(route) = stack.pop() {
            let last = route.last().unwrap().clone();
            for next in edges(&last) {
                if &next == start {
                    let mut circle = route.clone();
                    circle.push(next);
                    circles.push(format!("{parent}: {}", circle.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = route.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

#[test]
fn the_reader_finds_uses_in_groups_and_paths() {
    let code = "use crate::{clock::now_unix, store};\nlet x = crate::chain::status::X;\nuse super::{a, b::c};";
    assert_eq!(
        names_after(code, "crate::"),
        ["chain", "clock", "store"].map(String::from).into()
    );
    assert_eq!(
        names_after(code, "super::"),
        ["a", "b"].map(String::from).into()
    );
    assert_eq!(
        code_without_tests("/// [`crate::y`]\nfn a() {}\n#[cfg(test)]\nuse crate::x;"),
        "fn a() {}\n"
    );
}

/// The built-in apps are upstreams like any other: they trust only the
/// identity header the gateway sets, so they may read how that header is
/// spelled (`auth::identity`) but never sessions, the store or policies.
#[test]
fn the_built_in_apps_trust_only_the_identity_header() {
    const ALLOWED: &[&str] = &["chain", "clock", "config", "pages", "random", "auth"];
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for app in ["report", "hello"] {
        let dir = src.join(app);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{app}.rs")));
        }
    }
    let mut wrong = Vec::new();
    for file in &files {
        let code = code_without_tests(&std::fs::read_to_string(file).unwrap());
        let app = module_path(&src, file)[0].clone();
        for used in names_after(&code, "crate::") {
            if used != app && !ALLOWED.contains(&used.as_str()) {
                wrong.push(format!("{} uses crate::{used}", file.display()));
            }
        }
        for part in names_after(&code, "crate::auth::") {
            if part != "identity" {
                wrong.push(format!("{} uses crate::auth::{part}", file.display()));
            }
        }
    }
    assert!(!files.is_empty());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
