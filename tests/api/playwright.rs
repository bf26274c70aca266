//! The Playwright example of docs/test-support.md (examples/playwright) is run, not just shown:
//! `npx playwright test`, as its README says, with this build's binary as the program its
//! `webServer` starts (`--test-support`, `--access-log`, the demo page as the frontend) on free
//! ports, and Debian's chromium. Every test of the suite must pass: a reset between tests, a 503
//! and a delay asked for with `Prefer` and seen through the page, the request log and the access
//! log read by request id.
//!
//! `scripts/test` installs the example (`npm ci`). Without it this test is ignored, with the
//! reason (build.rs); under `CI=true` it runs, and fails without one.

use std::path::Path;

use serde_json::Value;

use crate::helpers::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/playwright");
const BINARY: &str = env!("CARGO_BIN_EXE_delivery-api");

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
#[cfg_attr(
    all(chromium, not(playwright_example)),
    ignore = "needs the Playwright example installed: scripts/install-playwright-example (scripts/test runs it when npm is here)"
)]
async fn the_playwright_example_passes_against_a_server_with_test_support() {
    let (chromium, _) = find_browser();
    // The json reporter's file, for the counts; traces and screenshots of a failure stay in the
    // example's test-results/, beside its server.log.
    let report_dir = tempfile::tempdir().expect("tempdir");
    let report = report_dir.path().join("report.json");
    let mut command = tokio::process::Command::new("npx");
    command
        .args(["--no-install", "playwright", "test", "--forbid-only"])
        .args(["--reporter", "list,json"])
        .current_dir(EXAMPLE)
        .env("DELIVERY_API", BINARY)
        .env("ADMIN_PORT", free_port().to_string())
        .env("PAGE_PORT", free_port().to_string())
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_JSON_OUTPUT_FILE", &report)
        // The server as the example's README starts it: no settings from this environment, and
        // the default log level, so the access log has its INFO lines.
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DELIVERY_API_") {
            command.env_remove(name);
        }
    }

    let out = command.output().await.expect("npx runs");

    let (stdout, stderr) = output_text(&out);
    let said = format!("stdout:\n{stdout}\nstderr:\n{stderr}\nserver log: {EXAMPLE}/server.log");
    assert!(out.status.success(), "npx playwright test failed: {said}");
    let stats = read_stats(&report);
    assert_eq!(
        stats["expected"],
        tests_in_the_spec(),
        "every test of the spec passed: {stats}\n{said}"
    );
    for outcome in ["unexpected", "flaky", "skipped"] {
        assert_eq!(stats[outcome], 0, "{outcome}: {stats}\n{said}");
    }
}

/// `test('…', …)` at the start of a line: the spec's tests.
fn tests_in_the_spec() -> usize {
    let spec = Path::new(EXAMPLE).join("tests/test-support.spec.ts");
    let text = std::fs::read_to_string(&spec).expect("the spec");
    text.lines().filter(|l| l.starts_with("test('")).count()
}

/// The json reporter's counts: `expected` (passed), `unexpected`, `flaky`, `skipped`.
fn read_stats(report: &Path) -> Value {
    let text =
        std::fs::read_to_string(report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
    let report: Value = serde_json::from_str(&text).expect("the json reporter's report");
    report["stats"].clone()
}
