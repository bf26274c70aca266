//! The dependency rule, kept alive: modules import only what a request meets *after* them, and the
//! leaves (store, telemetry, tls, fetch, answered_by) import nothing else from the crate.
//!
//! A new module must be given a row here; a circle or an upward import fails with the file that
//! made it. The same table is shown in docs/layout.md, and checked against it.
//!
//! A folder is one module (`src/auth/` is `auth`); `use crate::x`, `crate::x::y` in code and
//! `use crate::{x, y}` all count; comments do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom. A module may import modules in LOWER rows only (never its own row's
/// neighbours); the last row imports nothing from the crate.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("the subcommands: user, preflight, copy-data", &["cli"]),
    ("flags -> a running server, in named steps", &["startup"]),
    ("the flags (clap), grouped by concern", &["config"]),
    (
        "beside the API: the demo page, the doctor",
        &["demo_page", "preflight"],
    ),
    ("THE middleware order: CORS outside auth", &["app"]),
    (
        "--test-support: Prefer faults and delays, the request log, reset",
        &["test_support"],
    ),
    (
        "observers that never reject",
        &["access", "metrics", "exchanges"],
    ),
    (
        "the policy layers and the routes",
        &["cors", "auth", "routes"],
    ),
    (
        "the connection: caps, TLS, HTTP limits, body deadline",
        &["net"],
    ),
    ("one error type, problem+json", &["error"]),
    (
        "leaves: import nothing from the crate",
        &["answered_by", "fetch", "store", "telemetry", "tls"],
    ),
];

fn row_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, row)| row.contains(&module))
}

/// Every `crate::<module>` a file names outside comments.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = strip_comment(line);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or_default();
                    found.insert(ident(name).to_owned());
                }
            } else {
                found.insert(ident(rest).to_owned());
            }
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

/// A multi-line `use crate::{a,\n b}` is rare but possible: join such groups first.
fn joined_groups(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut depth = 0usize;
    let mut in_group = false;
    let chars = source.char_indices();
    for (i, c) in chars {
        if !in_group && source[i..].starts_with("crate::{") {
            in_group = true;
            depth = 0;
        }
        if in_group {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        in_group = false;
                    }
                }
                '\n' => {
                    out.push(' ');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The line without its `//` comment (a `//` inside a string literal, as in a URL, stays).
fn strip_comment(line: &str) -> &str {
    let mut quotes = 0;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => quotes += 1,
            b'/' if quotes % 2 == 0 && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// module -> (imported module -> the files that import it).
fn module_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative.components().next().expect("a component");
        let first = first.as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("read a source file");
        let entry = graph.entry(module.clone()).or_default();
        for imported in imports(&joined_groups(&source)) {
            if imported != module {
                entry
                    .entry(imported)
                    .or_default()
                    .insert(format!("src/{}", relative.display()));
            }
        }
    }
    graph
}

#[test]
fn every_module_imports_only_modules_below_it_and_the_leaves_import_nothing() {
    let graph = module_graph();
    let mut wrong = Vec::new();
    for (module, imported) in &graph {
        let Some(row) = row_of(module) else {
            wrong.push(format!(
                "src/{module}: not in tests/api/layout.rs's LAYERS; give it a row (and docs/layout.md)"
            ));
            continue;
        };
        for (target, files) in imported {
            let files: Vec<_> = files.iter().map(String::as_str).collect();
            match row_of(target) {
                Some(target_row) if target_row > row => {}
                Some(target_row) if target_row == row => wrong.push(format!(
                    "{module} -> {target}: same row ({}), in {}",
                    LAYERS[row].0,
                    files.join(", ")
                )),
                Some(_) => wrong.push(format!(
                    "{module} -> {target}: an upward import ({target} is above {module}), in {}",
                    files.join(", ")
                )),
                None => wrong.push(format!(
                    "{module} -> {target}: {target} is not in LAYERS, in {}",
                    files.join(", ")
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the dependency rule is broken (a type is in the wrong room):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn every_module_in_the_table_exists_and_lib_rs_declares_them_in_its_order() {
    let graph = module_graph();
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let table: Vec<&str> = LAYERS
        .iter()
        .flat_map(|(_, row)| row.iter().copied())
        .collect();
    for module in &table {
        assert!(
            graph.contains_key(*module),
            "LAYERS names {module}, which src/ does not have"
        );
    }
    let rows: Vec<usize> = declared
        .iter()
        .map(|m| row_of(m).unwrap_or(usize::MAX))
        .collect();
    assert!(
        rows.windows(2).all(|pair| pair[0] <= pair[1]),
        "src/lib.rs is the tour: declare the modules top to bottom, row by row as LAYERS lists \
         them (within a row rustfmt sorts them); declared: {declared:?}"
    );
    let mut declared_set: Vec<&str> = declared.clone();
    declared_set.sort_unstable();
    let mut table_set = table.clone();
    table_set.sort_unstable();
    assert_eq!(
        declared_set, table_set,
        "lib.rs and LAYERS list the same modules"
    );
}

/// The table as docs/layout.md shows it.
pub fn rendered_table() -> String {
    let mut out = String::from("| imports only rows below | modules | what |\n|---|---|---|\n");
    for (i, (what, row)) in LAYERS.iter().enumerate() {
        let modules: Vec<String> = row.iter().map(|m| format!("`{m}`")).collect();
        out.push_str(&format!(
            "| {} | {} | {what} |\n",
            i + 1,
            modules.join(", ")
        ));
    }
    out
}

#[test]
fn the_layout_page_shows_the_rule_this_test_enforces() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/layout.md");
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    let table = rendered_table();
    let (begin, end) = ("<!-- layers: begin -->\n", "<!-- layers: end -->");
    let current = page
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inside, _)| inside);
    if current == Some(table.as_str()) {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() && current.is_some() {
        let (before, rest) = page.split_once(begin).expect("begin");
        let (_, after) = rest.split_once(end).expect("end");
        std::fs::write(&path, format!("{before}{begin}{table}{end}{after}")).expect("write");
        return;
    }
    panic!(
        "docs/layout.md must show the layers between `{}` and `{end}` exactly as \
         tests/api/layout.rs enforces them; run with UPDATE_DOCS=1 to rewrite it. Expected:\n{table}",
        begin.trim_end()
    );
}

#[test]
fn the_import_scanner_sees_every_form_and_ignores_comments() {
    let source = "use crate::a;\nuse crate::{b, c::D};\nfn f() { crate::d::x(); } // crate::e\n\
                  let url = \"https://x\"; crate::f::g();\nuse crate::{\n    h,\n    i::J,\n};\n";
    let found = imports(&joined_groups(source));
    let expected: BTreeSet<String> = ["a", "b", "c", "d", "f", "h", "i"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(found, expected);
}
