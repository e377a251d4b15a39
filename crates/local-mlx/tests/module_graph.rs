//! No circles among modules, in the core, the CLI, Handy's crate and the server: every
//! `crate::`, `super::` and `self::` path outside a test module is an edge, and any set
//! of modules that reach each other (a strongly connected component larger than one) is
//! a knot to untie. Checked twice: between the top-level modules (every edge), and
//! between files (an edge goes to the file that declares the module the path names; a
//! module's edges to its own children are its façade (`mod`, `pub use`) and are left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module as the path of names from the crate's root (`[]` is `lib.rs`/`main.rs`).
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`; `lib.rs` and `main.rs` are `[]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let mut names: Module = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(names.last().map(String::as_str), Some("mod"))
        || matches!(names.as_slice(), [one] if one == "lib" || one == "main")
    {
        names.pop();
    }
    names
}

/// The code of `source` without its `#[cfg(test)] mod tests` part and without comments.
fn code_of(source: &str) -> String {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    code.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn ident(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// The paths a `use` tree starting at `text` names (`a::b`, `a::{b, c::d}`), each as
/// its segments; the rest of the text is ignored.
fn paths_at(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return items.into_iter().flat_map(paths_at).collect();
    }
    let (name, rest) = ident(text);
    if name.is_empty() {
        return vec![Vec::new()];
    }
    match rest.strip_prefix("::") {
        Some(rest) => {
            paths_at(rest).into_iter().map(|tail| std::iter::once(name.to_string()).chain(tail).collect()).collect()
        }
        None => vec![vec![name.to_string()]],
    }
}

/// The modules `code` (in module `at`) names, each resolved to the longest known module.
fn references(code: &str, at: &Module, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("::") {
        let (before, after) = code.split_at(i);
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
        // Only the first `::` of a path: `crate::a::b` is one reference.
        if before[..start].ends_with("::") {
            continue;
        }
        let mut base = match &before[start..] {
            "crate" => Module::new(),
            "self" => at.clone(),
            "super" => at[..at.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        let mut rest = &after[2..];
        while let Some(more) = rest.strip_prefix("super::") {
            base.pop();
            rest = more;
        }
        for path in paths_at(rest) {
            let full: Module = base.iter().cloned().chain(path).collect();
            let target =
                (0..=full.len()).rev().map(|n| full[..n].to_vec()).find(|m| known.contains(m)).unwrap_or_default();
            found.insert(target);
        }
    }
    found
}

/// The modules of a crate's `src` and, for each, the modules it references.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let known: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    files
        .iter()
        .map(|file| {
            let at = module_of(src, file);
            let code = code_of(&std::fs::read_to_string(file).unwrap());
            let refs = references(&code, &at, &known);
            (at, refs)
        })
        .collect()
}

/// The strongly connected components with more than one member.
fn knots<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<BTreeSet<N>> {
    let reach = |from: &N| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&N, BTreeSet<N>> = edges.keys().map(|n| (n, reach(n))).collect();
    let mut knots: Vec<BTreeSet<N>> = Vec::new();
    for (n, from_n) in &reaches {
        if knots.iter().any(|k| k.contains(*n)) {
            continue;
        }
        let knot: BTreeSet<N> = from_n
            .iter()
            .filter(|m| *m != *n && reaches.get(m).is_some_and(|back| back.contains(*n)))
            .cloned()
            .chain(std::iter::once((*n).clone()))
            .collect();
        if knot.len() > 1 {
            knots.push(knot);
        }
    }
    knots
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// The knots of the crate at `crates/<dir>`: between top-level modules, then between files.
fn knots_of(dir: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("src");
    let files = graph(&src);
    assert!(files.len() > 3 && files.values().any(|refs| !refs.is_empty()), "the scan sees {dir}'s imports: {files:?}");
    let top = |m: &Module| m.first().cloned();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, refs) in &files {
        let Some(a) = top(from) else { continue };
        let entry = modules.entry(a.clone()).or_default();
        entry.extend(refs.iter().filter_map(top).filter(|b| *b != a));
    }
    let file_edges: BTreeMap<Module, BTreeSet<Module>> = files
        .iter()
        .map(|(from, refs)| (from.clone(), refs.iter().filter(|to| !to.starts_with(from)).cloned().collect()))
        .collect();
    let modules = knots(&modules).into_iter().map(|k| k.into_iter().collect()).collect();
    let files = knots(&file_edges).into_iter().map(|k| k.iter().map(name).collect()).collect();
    (modules, files)
}

#[test]
fn the_scan_resolves_paths_to_the_modules_that_declare_them() {
    let known: BTreeSet<Module> =
        [vec![], vec!["hub".into()], vec!["hub".into(), "fetch".into()], vec!["hub".into(), "partial".into()]].into();
    let at: Module = vec!["hub".into(), "resume".into()];
    let code = "use super::{fetch::Stop, partial::{A, B}};\nuse crate::hub::Error;\nfn f(x: super::super::Thing) {}";
    let refs = references(code, &at, &known);
    let expected: BTreeSet<Module> =
        [known.iter().cloned().collect::<Vec<_>>()[1..].to_vec(), vec![vec![]]].concat().into_iter().collect();
    assert_eq!(refs, expected);
    let edges: BTreeMap<u8, BTreeSet<u8>> = [(1, [2].into()), (2, [3].into()), (3, [1].into()), (4, [1].into())].into();
    assert_eq!(knots(&edges), vec![BTreeSet::from([1, 2, 3])]);
}

/// Knots known and left for now, each with why: the list may only shrink (a knot that
/// is gone must leave it, so the test notices).
const LEFT_FOR_NOW: &[&str] = &[];

#[test]
fn no_modules_of_the_core_the_cli_or_the_server_reach_each_other_in_a_circle() {
    let mut found = Vec::new();
    for dir in ["local-mlx", "local-mlx-cli", "local-mlx-handy", "local-mlx-server"] {
        let (modules, files) = knots_of(dir);
        found.extend(modules.iter().map(|knot| format!("{dir}: modules {knot:?}")));
        found.extend(files.iter().map(|knot| format!("{dir}: files {knot:?}")));
    }
    let new: Vec<&String> = found.iter().filter(|k| !LEFT_FOR_NOW.contains(&k.as_str())).collect();
    assert!(new.is_empty(), "circles:\n{new:#?}");
    let untied: Vec<&&str> = LEFT_FOR_NOW.iter().filter(|k| !found.iter().any(|f| f == **k)).collect();
    assert!(untied.is_empty(), "untied, remove from LEFT_FOR_NOW: {untied:?}");
}
