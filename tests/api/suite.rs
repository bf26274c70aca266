//! The suite's own rules: every file says in its header what it proves, and the tests left out of
//! the PostgreSQL pass are exactly the SQLite-only ones, each listed once with its reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::helpers::engine::sqlite_only_tests;

const TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api");

/// Every `.rs` file under tests/api, helpers included.
fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::from(TESTS)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/api") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The tests of one file, by their libtest name (`module::name`), and their bodies: a test is a
/// top-level `fn` after `#[test]` or `#[tokio::test]`, its body up to the `}` in column 0.
/// (Enough for this suite's files, which rustfmt keeps in that shape.)
fn tests_in(path: &Path) -> BTreeMap<String, String> {
    let module = path.file_stem().expect("a name").to_string_lossy();
    let text = std::fs::read_to_string(path).expect("a test file");
    let mut tests = BTreeMap::new();
    let mut lines = text.lines();
    let mut is_test = false;
    while let Some(line) = lines.next() {
        if line == "#[test]" || line.starts_with("#[tokio::test") {
            is_test = true;
        }
        let Some(rest) = line
            .strip_prefix("async fn ")
            .or_else(|| line.strip_prefix("fn "))
        else {
            continue;
        };
        if !std::mem::take(&mut is_test) {
            continue;
        }
        let name = rest.split('(').next().expect("a name");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "}").collect();
        tests.insert(format!("{module}::{name}"), body.join("\n"));
    }
    tests
}

/// Whether a test's body calls the guard (a line of its own, as rustfmt writes a call).
fn calls_sqlite_only(body: &str) -> bool {
    body.lines().any(|line| line.trim() == "sqlite_only();")
}

#[test]
fn every_test_file_says_what_it_proves_in_its_header() {
    let missing: Vec<String> = sources()
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("a source");
            !text.starts_with("//! ")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` header saying what they prove: {missing:#?}"
    );
}

#[test]
fn the_tests_left_out_on_postgres_are_exactly_those_that_call_sqlite_only() {
    let top: Vec<PathBuf> = sources()
        .into_iter()
        .filter(|p| p.parent() == Some(Path::new(TESTS)))
        .collect();
    let tests: BTreeMap<String, String> = top.iter().flat_map(|p| tests_in(p)).collect();
    assert!(
        tests.len() > 100,
        "the scanner found {} tests: it no longer reads these files right",
        tests.len()
    );
    let listed = sqlite_only_tests();
    let mut problems = Vec::new();
    for (name, reason) in &listed {
        match tests.get(*name) {
            None => problems.push(format!("{name} is listed, but there is no such test")),
            Some(body) if !calls_sqlite_only(body) => {
                problems.push(format!("{name} is listed, but does not call sqlite_only()"))
            }
            Some(_) if reason.trim().len() < 10 => problems.push(format!(
                "{name} is listed without a reason (`NAME — REASON`)"
            )),
            Some(_) => {}
        }
        if listed.iter().filter(|(other, _)| other == name).count() > 1 {
            problems.push(format!("{name} is listed twice"));
        }
    }
    for (name, body) in &tests {
        if calls_sqlite_only(body) && !listed.iter().any(|(l, _)| l == name) {
            problems.push(format!(
                "{name} calls sqlite_only(), so the PostgreSQL pass would fail it: list it, \
                 with the reason"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "tests/api/sqlite-only.txt and the tests disagree:\n{}",
        problems.join("\n")
    );
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test"))
        .expect("scripts/test");
    assert!(
        script.contains("--skip") && script.contains("tests/api/sqlite-only.txt"),
        "scripts/test leaves the listed tests out of its PostgreSQL pass"
    );
}

#[test]
fn the_scanner_finds_tests_and_their_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sample.rs");
    std::fs::write(
        &path,
        "/// doc\n#[tokio::test]\nasync fn a_test() {\n    sqlite_only();\n}\n\n\
         fn helper() {\n    sqlite_only();\n}\n\n#[test]\nfn another() {\n    x();\n}\n",
    )
    .expect("write");
    let found = tests_in(&path);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["sample::a_test", "sample::another"]
    );
    assert!(calls_sqlite_only(&found["sample::a_test"]));
    assert!(!calls_sqlite_only(&found["sample::another"]));
}
