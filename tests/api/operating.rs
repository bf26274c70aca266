//! Operating it (issue 14, part 4): JSON logs for a log pipeline, Prometheus metrics for a scraper.

use std::process::Stdio;

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::ChildStderr;

use crate::helpers::*;

/// Reads stderr until a line matches `wanted`; every line read must be one JSON object.
async fn next_json_line(
    lines: &mut Lines<BufReader<ChildStderr>>,
    seen: &mut Vec<Value>,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line());
        let line = next
            .await
            .unwrap_or_else(|_| panic!("no such line within 60 s; seen: {seen:#?}"))
            .expect("read stderr")
            .unwrap_or_else(|| panic!("the server exited; seen: {seen:#?}"));
        let object: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("a stderr line that is not JSON ({e}): {line:?}"));
        assert!(object.is_object(), "not an object: {line}");
        seen.push(object.clone());
        if wanted(&object) {
            return object;
        }
    }
}

#[tokio::test]
async fn with_log_format_json_stderr_holds_only_json_objects_and_stdout_the_ready_line() {
    // Arrange: the real binary, as a log pipeline would run it.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-demo-page"])
        .args(["--ephemeral", "--log-format", "json"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();

    // The start-up block: one object, its message still the multi-line text.
    let serving = next_json_line(&mut stderr, &mut seen, |o| {
        o["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("serving https://"))
    })
    .await;
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert!(
        serving["message"]
            .as_str()
            .is_some_and(|m| m.contains("allowed origins:")),
        "{serving}"
    );
    // stdout: the ready line, one JSON object, as without --log-format.
    let ready = stdout
        .next_line()
        .await
        .expect("read stdout")
        .expect("a ready line");
    let ready: Value = serde_json::from_str(&ready).expect("the ready line is JSON");
    assert_eq!(ready["event"], "ready", "{ready}");

    // Act: a preflight from an origin that is not allowed.
    let api = ready["api"].as_str().expect("api");
    let port: u16 = api
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let ca = ready["ca_cert"].as_str().expect("the dev CA");
    let client = client_trusting(std::path::Path::new(ca), ([127, 0, 0, 1], port).into());
    let refused = client
        .request(
            Method::OPTIONS,
            format!("https://localhost:{port}/delivery/all"),
        )
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 400);

    // Assert: its WARN is a JSON object too, and so was every line before it.
    let warn = next_json_line(&mut stderr, &mut seen, |o| {
        o["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("preflight refused"))
    })
    .await;
    assert_eq!(warn["level"], "WARN", "{warn}");
    assert!(
        warn["message"]
            .as_str()
            .is_some_and(|m| m.contains("http://evil.example")),
        "{warn}"
    );
    assert!(seen.iter().all(|o| o["timestamp"].is_string()), "{seen:#?}");
    let _ = child.start_kill();
}
