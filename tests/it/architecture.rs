//! The architecture check (STYLE.md, README "Module map"): dependencies point one way, and
//! the rules that keep them so are checked on every test run, from the source text:
//!
//! - `src/ca/` — and every module it reaches — uses neither actix nor diesel;
//! - `src/http/` holds no database query (no diesel, no schema);
//! - no cycle of `crate::` references between top-level modules, nor between `service/`
//!   submodules (a submodule's own files count as one node);
//! - no source file passes 700 lines.
//!
//! The checker is tested on made-up sources that break each rule, so it cannot pass by
//! checking nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MAX_LINES: usize = 700;

/// A source file: its module path (`["service", "batches", "write"]`) and its text.
struct Source {
    path: String,
    module: Vec<String>,
    text: String,
}

fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

fn sources(root: &Path) -> Vec<Source> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<Source>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(Source {
                    module: module_of(&rel),
                    path: format!("src/{rel}"),
                    text: std::fs::read_to_string(&p).unwrap(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The text without `//` comments (doc comments name other modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The paths at the start of `s` (after `crate::`), with `prefix` before each: `a::b`,
/// or a group `{a, b::c}` (nested groups too), two components at most.
fn paths(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 0usize;
        let mut start = 0;
        for (i, ch) in group.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    paths(group[start..i].trim(), prefix.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    paths(group[start..i].trim(), prefix.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let mut path = prefix;
    let mut p = s;
    while let Some(id) = ident_at(p) {
        path.push(id.to_string());
        match p[id.len()..].strip_prefix("::") {
            Some(next) if next.starts_with('{') && path.len() < 2 => {
                return paths(next, path, out);
            }
            Some(next) if path.len() < 2 => p = next,
            _ => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The module paths a file refers to: `crate::a::b`, `crate::{a, b::c}`, and `super::x`.
fn references(src: &Source) -> Vec<Vec<String>> {
    let text = code(&src.text);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        paths(after, Vec::new(), &mut out);
        rest = after;
    }
    let parent: Vec<String> = src.module[..src.module.len().saturating_sub(1)].to_vec();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("super::") {
        let after = &rest[i + 7..];
        if let Some(id) = ident_at(after) {
            let mut path = parent.clone();
            path.push(id.to_string());
            out.push(path);
        }
        rest = after;
    }
    out
}

/// The node a module path belongs to: its top-level module, or `service::x`.
fn node(path: &[String]) -> String {
    match path {
        [s, sub, ..] if s == "service" => format!("service::{sub}"),
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

fn words(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A cycle in `graph`, if there is one (as the nodes along it).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[from..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Every broken rule, one line each.
fn check(files: &[Source]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        if f.module == ["lib"] || f.module == ["main"] {
            continue;
        }
        let me = node(&f.module);
        let entry = graph.entry(me.clone()).or_default();
        for r in references(f) {
            let to = node(&r);
            if !to.is_empty() && to != me {
                entry.insert(to);
            }
        }
        let lines = f.text.lines().count();
        if lines > MAX_LINES {
            errors.push(format!("{}: {lines} lines (at most {MAX_LINES})", f.path));
        }
        if f.module.first().map(String::as_str) == Some("http") {
            let c = code(&f.text);
            if words(&c, "diesel") || c.contains("schema::") {
                errors.push(format!(
                    "{}: a database query in http/ (move it to a service)",
                    f.path
                ));
            }
        }
    }
    // ca/ and what it reaches: no actix, no diesel.
    let mut reach: BTreeSet<String> = BTreeSet::from(["ca".to_string()]);
    let mut todo = vec!["ca".to_string()];
    while let Some(n) = todo.pop() {
        for m in graph.get(&n).into_iter().flatten() {
            if reach.insert(m.clone()) {
                todo.push(m.clone());
            }
        }
    }
    for f in files {
        if reach.contains(&node(&f.module)) {
            let c = code(&f.text);
            for fw in ["actix_web", "actix", "diesel"] {
                if words(&c, fw) {
                    errors.push(format!(
                        "{}: uses {fw}, and ca/ depends on it ({} reached from ca)",
                        f.path,
                        node(&f.module)
                    ));
                    break;
                }
            }
        }
    }
    let top: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .map(|(a, bs)| {
            let a_top = a.split("::").next().unwrap_or_default().to_string();
            let tops = bs
                .iter()
                .map(|b| b.split("::").next().unwrap_or_default().to_string())
                .filter(|b| *b != a_top)
                .collect::<BTreeSet<_>>();
            (a_top, tops)
        })
        .fold(BTreeMap::new(), |mut m, (a, bs)| {
            m.entry(a).or_insert_with(BTreeSet::new).extend(bs);
            m
        });
    if let Some(c) = cycle(&top) {
        errors.push(format!("module cycle: {}", c.join(" -> ")));
    }
    let service: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .filter(|(a, _)| a.starts_with("service::"))
        .map(|(a, bs)| {
            let within = bs
                .iter()
                .filter(|b| b.starts_with("service::"))
                .cloned()
                .collect();
            (a.clone(), within)
        })
        .collect();
    if let Some(c) = cycle(&service) {
        errors.push(format!("service cycle: {}", c.join(" -> ")));
    }
    errors
}

#[test]
fn the_code_keeps_its_architecture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&root);
    assert!(files.len() > 50, "found the sources");
    let errors = check(&files);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn fake(path: &str, text: &str) -> Source {
    Source {
        path: format!("src/{path}"),
        module: module_of(path),
        text: text.to_string(),
    }
}

#[test]
fn the_architecture_check_finds_each_kind_of_violation() {
    let clean = vec![
        fake("ca/mod.rs", "use crate::error::Error;\n"),
        fake("error.rs", "pub enum Error {}\n"),
        fake("http/mod.rs", "use crate::service::a::f;\n"),
        fake("service/a.rs", "use super::b::g;\n"),
        fake("service/b/mod.rs", "pub fn g() {}\n"),
    ];
    assert!(check(&clean).is_empty(), "{:?}", check(&clean));

    let mut through_error = clean;
    through_error[1] = fake(
        "error.rs",
        "impl From<diesel::result::Error> for Error {}\n",
    );
    let e = check(&through_error);
    assert!(
        e.iter().any(|e| e.contains("src/error.rs: uses diesel")),
        "{e:?}"
    );

    let files = vec![
        fake("ca/mod.rs", "use actix_web::HttpResponse;\n"),
        fake(
            "http/views/x.rs",
            "let n = cards::table.filter(x).load(c)?; use crate::db::schema::cards;\n",
        ),
        fake("app.rs", "use crate::http::app;\n"),
        fake("http/mod.rs", "pub fn f(s: crate::app::AppState) {}\n"),
        fake("service/a.rs", "use crate::service::{b::g, c};\n"),
        fake("service/b/mod.rs", "mod inner;\n"),
        fake(
            "service/b/inner.rs",
            "pub fn g() { super::super::a::h() } use crate::service::a::h;\n",
        ),
        fake("long.rs", &"x\n".repeat(701)),
        // A comment naming a module is not a reference.
        fake(
            "service/c.rs",
            "// crate::service::a is mentioned here only\n",
        ),
    ];
    let e = check(&files);
    let has = |s: &str| e.iter().any(|x| x.contains(s));
    assert!(has("src/ca/mod.rs: uses actix"), "{e:?}");
    assert!(has("src/http/views/x.rs: a database query"), "{e:?}");
    assert!(has("module cycle"), "{e:?}");
    assert!(
        has("service cycle: service::a -> service::b -> service::a"),
        "{e:?}"
    );
    assert!(has("src/long.rs: 701 lines"), "{e:?}");
    assert!(!has("service::c"), "{e:?}");
}
