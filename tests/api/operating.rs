//! Operating it: JSON logs for a log pipeline, and Prometheus metrics on their own bind, counted by
//! route pattern, status and the layer that answered, with a bounded number of series.

use std::collections::BTreeMap;
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
    let ready = ready_line(&mut stdout).await;

    // Act: a preflight from an origin that is not allowed.
    let refused = Api::from_ready_line(&ready)
        .request(Method::OPTIONS, "/delivery/all", "http://evil.example")
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

#[tokio::test]
async fn with_log_format_json_a_bad_command_line_is_one_json_object_too() {
    for (args, env) in [
        (
            &["serve", "--log-format", "json", "--bind", "nonsense"][..],
            None,
        ),
        (&["serve", "--bind", "nonsense"][..], Some("json")),
    ] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"));
        command.args(args).env_remove("DELIVERY_API_LOG_FORMAT");
        if let Some(format) = env {
            command.env("DELIVERY_API_LOG_FORMAT", format);
        }
        let out = command.output().await.expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        let object: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
        assert_eq!(object["level"], "ERROR", "{object}");
        assert!(
            object["error"]
                .as_str()
                .is_some_and(|e| e.contains("invalid value 'nonsense' for '--bind <BIND>'")),
            "{object}"
        );
    }
    // Help is not an error: printed as text, on stdout.
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args(["serve", "--log-format", "json", "--help"])
        .output()
        .await
        .expect("runs");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
}

/// The value of the sample `name{labels}` in a Prometheus text scrape (labels in any order), or
/// `None` when there is no such series.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    scrape.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
        if series_name != name {
            return None;
        }
        let inner = rest.strip_suffix('}')?;
        let found: BTreeMap<&str, &str> = inner
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (k, v) = pair.split_once("=\"")?;
                Some((k, v.trim_end_matches('"')))
            })
            .collect();
        (found == wanted).then(|| value.parse().expect("a number"))
    })
}

/// The series of a scrape: its lines that are not comments.
fn series(scrape: &str) -> usize {
    scrape
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

async fn spawn_app_with_metrics() -> TestApp {
    spawn_app_with(|args| args.operating.metrics_bind = Some("127.0.0.1:0".parse().expect("addr")))
        .await
}

#[tokio::test]
async fn metrics_count_each_answer_by_route_pattern_status_and_the_layer_that_gave_it() {
    let app = spawn_app_with_metrics().await;
    let before = app.scrape().await;
    assert_eq!(
        sample(&before, "login_limited_total", &[]),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "database_unavailable_total", &[]),
        Some(0.0)
    );
    assert_eq!(sample(&before, "storage_full_total", &[]), Some(0.0));

    // Act: a known sequence, each answer checked as it comes.
    let ok = app.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_eq!(ok.status(), 200, "the preflight passes");
    let refused = app
        .preflight("/delivery/all", "GET", "http://evil.example")
        .await;
    assert_eq!(refused.status(), 400, "the preflight is refused");
    let missing = app.get_without_credentials("/delivery/all").await;
    assert_eq!(missing.status(), 401);
    let malformed = app
        .request(Method::GET, "/delivery/all", ORIGIN)
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .expect("sent");
    assert_eq!(malformed.status(), 401);
    let wrong = app.get_all_as(USER, "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.get_all().await.status(), 200);
    let one = app
        .article_request(Method::GET, "/delivery/1", ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(one.status(), 200);
    let nowhere = app.get_without_credentials("/no/such/page-4711").await;
    assert_eq!(nowhere.status(), 404);

    // Assert: every answer is counted once, under its pattern and its reason.
    let scrape = app.scrape().await;
    let requests = |route, method, status| {
        let labels = [("route", route), ("method", method), ("status", status)];
        sample(&scrape, "http_requests_total", &labels)
    };
    for (route, method, status, count, what) in [
        (
            "/delivery/all",
            "OPTIONS",
            "200",
            1.0,
            "the preflight that passed",
        ),
        (
            "/delivery/all",
            "OPTIONS",
            "400",
            1.0,
            "the refused preflight",
        ),
        ("/delivery/all", "GET", "401", 3.0, "the three 401s"),
        ("/delivery/all", "GET", "200", 1.0, "the list"),
        (
            "/delivery/{id}",
            "GET",
            "200",
            1.0,
            "one delivery: the pattern, not /delivery/1",
        ),
        ("unmatched", "GET", "404", 1.0, "a path no route matches"),
    ] {
        assert_eq!(
            requests(route, method, status),
            Some(count),
            "{what}:\n{scrape}"
        );
    }
    assert_eq!(
        requests("/delivery/1", "GET", "200"),
        None,
        "no path as a label"
    );
    let duration = [("route", "/delivery/all"), ("method", "GET")];
    assert_eq!(
        sample(&scrape, "http_request_duration_seconds_count", &duration),
        Some(4.0),
        "{scrape}"
    );
    let le = [
        ("route", "/delivery/all"),
        ("method", "GET"),
        ("le", "+Inf"),
    ];
    assert_eq!(
        sample(&scrape, "http_request_duration_seconds_bucket", &le),
        Some(4.0)
    );
    for (outcome, reason) in [("answered", "allowed"), ("refused", "origin")] {
        let labels = [("outcome", outcome), ("reason", reason)];
        assert_eq!(
            sample(&scrape, "cors_preflights_total", &labels),
            Some(1.0),
            "{outcome}"
        );
    }
    for reason in ["missing", "malformed", "wrong_credentials"] {
        let labels = [("reason", reason)];
        assert_eq!(
            sample(&scrape, "auth_rejections_total", &labels),
            Some(1.0),
            "{reason}"
        );
    }
    assert_eq!(sample(&scrape, "login_limited_total", &[]), Some(0.0));
    assert_eq!(
        sample(&scrape, "database_unavailable_total", &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn auth_before_cors_counts_the_preflights_it_rejects() {
    let app = spawn_app_with(|args| {
        args.operating.metrics_bind = Some("127.0.0.1:0".parse().expect("addr"));
        args.auth_before_cors = true;
    })
    .await;

    let res = app.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_eq!(res.status(), 401, "the bug, on purpose");

    let scrape = app.scrape().await;
    let labels = [("reason", "auth_before_cors_preflight")];
    assert_eq!(
        sample(&scrape, "auth_rejections_total", &labels),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, "auth_rejections_total", &[("reason", "missing")]),
        None
    );
    assert!(
        !scrape.contains("cors_preflights_total{"),
        "CORS never saw it:\n{scrape}"
    );
}

/// One of four request shapes no route matches, made unique by `i`: under the public scope,
/// under the protected one (401 before routing), with a method of its own, with a query.
fn made_up(i: usize) -> (Method, String) {
    match i % 4 {
        0 => (Method::GET, format!("/made-up/{i}")),
        1 => (Method::GET, format!("/delivery/{i}/made-up")),
        2 => (
            Method::from_bytes(format!("BREW{i}").as_bytes()).expect("a token"),
            format!("/pot-{i}"),
        ),
        _ => (Method::GET, format!("/q{i}?page={i}")),
    }
}

#[tokio::test]
async fn a_flood_of_made_up_paths_and_methods_creates_no_new_series() {
    use futures_util::StreamExt as _;
    let app = spawn_app_with_metrics().await;
    let send = |i| {
        let (method, path) = made_up(i);
        let request = app.request(method, &path, ORIGIN).send();
        async move { request.await.expect("sent").status().as_u16() }
    };
    // Each shape once: its series exist from here on.
    for i in 0..4 {
        assert!(send(i).await >= 400, "{:?}", made_up(i));
    }
    let before = app.scrape().await;

    let statuses: Vec<u16> = futures_util::stream::iter(4..1004)
        .map(send)
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s >= 400), "{statuses:?}");

    let after = app.scrape().await;
    assert_eq!(
        series(&after),
        series(&before),
        "before:\n{before}\nafter:\n{after}"
    );
    let unmatched: f64 = after
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("route=\"unmatched\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(
        unmatched, 1004.0,
        "all counted, under route=\"unmatched\":\n{after}"
    );
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(
        !after.contains("made-up") && !after.contains("BREW"),
        "{after}"
    );
}

#[tokio::test]
async fn metrics_are_served_on_their_own_bind_only() {
    let app = spawn_app_with_metrics().await;

    let on_the_api = app.get_without_credentials("/metrics").await;
    assert_eq!(on_the_api.status(), 404, "not on the API's port");
    let url = app.metrics.clone().expect("metrics url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let elsewhere = app
        .client
        .get(url.replace("/metrics", "/"))
        .send()
        .await
        .expect("sent");
    assert_eq!(elsewhere.status(), 404, "GET /metrics only");
    let scrape = app.scrape().await;
    assert!(
        scrape.contains("# TYPE http_requests_total counter"),
        "{scrape}"
    );
    assert!(
        scrape.contains("# TYPE http_request_duration_seconds histogram"),
        "{scrape}"
    );

    let off = spawn_app().await;
    assert_eq!(off.metrics, None, "off unless --metrics-bind is given");
}

/// A scraper (or a load balancer's health check) may ask with HEAD: the headers of a GET.
#[tokio::test]
async fn head_metrics_answers_like_get_without_the_body() {
    let app = spawn_app_with_metrics().await;
    let url = app.metrics.clone().expect("metrics");

    let res = app.client.head(&url).send().await.expect("sent");

    assert_eq!(res.status(), 200);
    assert!(
        header(res.headers(), "content-type").is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        res.headers()
    );
    assert!(res.bytes().await.expect("body").is_empty());
}
