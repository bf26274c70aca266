//! HARs recorded by a real browser, judged by `delivery-api preflight --har`: headless Chromium
//! makes the article's call from a page on its own origin, its DevTools Network events (the ones
//! DevTools builds its own "Export HAR" from: the preflight as a request of its own, the headers
//! as sent on the wire, `net::ERR_FAILED` for a blocked request) are written out as a HAR 1.2
//! file, and the doctor must name the cause the browser met.
//!
//! With `RECORD_HARS=DIR`, each recording is also saved there (how tests/api/har/recorded-*.har
//! were made).

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::*;

/// What the page sends: the article's headers, and what each case adds.
const ARTICLE_CALL: &str = "
    const [url, extra, credentials] = arguments;
    const done = arguments[arguments.length - 1];
    const headers = Object.assign({
      'Authorization': 'Basic ' + btoa('demo:demo-password'),
      'Content-Type': 'application/json',
    }, extra);
    fetch(url, {headers, credentials}).then(r => done(r.status), e => done(0));";

struct Recorded {
    /// The status the page saw (0: blocked).
    status: u64,
    har: Value,
}

/// Opens `page`, makes the article's call to `api_url` with `extra` headers, and returns what the
/// page saw and the HAR of every request to the API's origin.
async fn record(
    browser: &Browser,
    page: &str,
    api_url: &str,
    extra: Value,
    credentials: &str,
) -> Recorded {
    browser.open(page).await;
    browser.devtools_events().await; // what the page load itself logged
    let status = browser
        .client
        .execute_async(
            ARTICLE_CALL,
            vec![json!(api_url), extra, json!(credentials)],
        )
        .await
        .expect("the call runs")
        .as_u64()
        .expect("a status");
    let api = url::Url::parse(api_url).expect("url");
    let har = har_from(
        &browser.devtools_events().await,
        &api.origin().ascii_serialization(),
    );
    Recorded { status, har }
}

/// The requests to `origin` in DevTools Network events, as DevTools exports them.
fn har_from(events: &[Value], origin: &str) -> Value {
    let by = |method: &str, id: &str| {
        events
            .iter()
            .rev()
            .find(|e| e["method"] == method && e["params"]["requestId"] == id)
            .map(|e| &e["params"])
    };
    let headers = |map: &Value| -> Vec<Value> {
        map.as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect()
    };
    let mut entries = Vec::new();
    for sent in events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .map(|e| &e["params"])
        .filter(|p| {
            p["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(origin))
        })
    {
        let id = sent["requestId"].as_str().unwrap_or_default();
        let wire = by("Network.requestWillBeSentExtraInfo", id);
        let request_headers = headers(wire.map_or(&sent["request"]["headers"], |w| &w["headers"]));
        let received = by("Network.responseReceived", id);
        let raw = by("Network.responseReceivedExtraInfo", id);
        let failed = by("Network.loadingFailed", id);
        let (status, response_headers) = match (raw, received) {
            (Some(raw), _) => (raw["statusCode"].clone(), headers(&raw["headers"])),
            (None, Some(r)) => (
                r["response"]["status"].clone(),
                headers(&r["response"]["headers"]),
            ),
            (None, None) => (json!(0), Vec::new()),
        };
        let resource_type = if sent["initiator"]["type"] == "preflight" {
            "preflight".to_owned()
        } else {
            sent["type"]
                .as_str()
                .unwrap_or("other")
                .to_ascii_lowercase()
        };
        entries.push(json!({
            "_resourceType": resource_type,
            "request": {
                "method": sent["request"]["method"],
                "url": sent["request"]["url"],
                "httpVersion": received.map_or(json!(""), |r| r["response"]["protocol"].clone()),
                "headers": request_headers,
                "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0,
            },
            "response": {
                "status": status,
                "statusText": "",
                "httpVersion": received.map_or(json!(""), |r| r["response"]["protocol"].clone()),
                "headers": response_headers,
                "cookies": [],
                "content": {"size": 0, "mimeType": received.map_or(json!("x-unknown"), |r| r["response"]["mimeType"].clone())},
                "redirectURL": "", "headersSize": -1, "bodySize": -1,
                "_error": failed.map_or(Value::Null, |f| f["errorText"].clone()),
            },
            "startedDateTime": "1970-01-01T00:00:00.000Z",
            "time": 0, "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0},
        }));
    }
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "delivery-api tests (Chromium DevTools events)", "version": "1"},
        "pages": [],
        "entries": entries,
    }})
}

/// Writes the HAR and runs the doctor on it: (exit code, its report).
async fn judge(har: &Value, name: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.har"));
    let text = serde_json::to_string_pretty(har).expect("json");
    std::fs::write(&file, &text).expect("write");
    if let Some(keep) = std::env::var_os("RECORD_HARS") {
        std::fs::write(Path::new(&keep).join(format!("recorded-{name}.har")), &text).expect("keep");
    }
    let out = tokio::process::Command::new(BINARY)
        .args(["preflight", "--har"])
        .arg(&file)
        .args(extra)
        .output()
        .await
        .expect("runs");
    let (stdout, stderr) = output_text(&out);
    (
        out.status.code().expect("code"),
        format!("{stdout}{stderr}"),
    )
}

/// A blank page on an origin of its own (`http://localhost:PORT`).
async fn blank_page() -> (StaticFiles, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        root.path().join("index.html"),
        "<!doctype html><title>page</title>",
    )
    .expect("page");
    (StaticFiles::serve(root.path()).await, root)
}

/// (name, server, extra headers, credentials mode, doctor flags, status the page sees, the
/// doctor's exit code, what its report says).
type Case<'a> = (
    &'a str,
    &'a TestApp,
    Value,
    &'a str,
    &'a [&'a str],
    u64,
    i32,
    &'a str,
);

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver (apt-get install chromium chromium-driver)"
)]
async fn recorded_in_chromium_each_cause_is_named_by_the_doctor() {
    let (page, _root) = blank_page().await;
    let origin = page.origin();
    let right = {
        let origin = origin.clone();
        spawn_app_with(move |args| {
            args.cors.allowed_origins = vec![origin.parse().expect("origin")];
        })
        .await
    };
    let auth_first = {
        let origin = origin.clone();
        spawn_app_with(move |args| {
            args.cors.allowed_origins = vec![origin.parse().expect("origin")];
            args.auth_before_cors = true;
        })
        .await
    };
    let elsewhere = spawn_app().await; // allows only http://localhost:4200
    let wildcard = spawn_app_with(|args| {
        args.cors.allowed_origins = vec!["*".parse().expect("origin")];
        args.cors.allow_credentials = false;
    })
    .await;

    let cases: [Case; 5] = [
        (
            "ok",
            &right,
            json!({}),
            "same-origin",
            &[],
            200,
            0,
            "1 readable, 0 blocked",
        ),
        (
            "auth-before-cors",
            &auth_first,
            json!({}),
            "same-origin",
            &[],
            0,
            1,
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. the \
             preflight got 401: your authentication runs before CORS",
        ),
        (
            "origin-not-allowed",
            &elsewhere,
            json!({}),
            "same-origin",
            &[],
            0,
            1,
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. the \
             preflight got 400: the CORS layer refused it",
        ),
        (
            "header-not-allowed",
            &right,
            json!({"X-Api-Key": "k"}),
            "same-origin",
            &[],
            0,
            1,
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. the \
             preflight got 400: the CORS layer refused it",
        ),
        (
            // A HAR does not record the credentials mode: the page's withCredentials is told.
            "wildcard-with-credentials",
            &wildcard,
            json!({}),
            "include",
            &["--with-credentials"],
            0,
            1,
            "with credentials (withCredentials: true) the server must echo the origin, not `*`",
        ),
    ];
    let mut failures = Vec::new();
    for (name, app, extra, credentials, flags, seen, code, cause) in cases {
        // Each app has its own key, and the browser trusts exactly that one.
        let browser = Browser::launch(app).await;
        let page_url = format!("{origin}/");
        let recorded = record(
            &browser,
            &page_url,
            &app.url("/delivery/all"),
            extra,
            credentials,
        )
        .await;
        let (exit, report) = judge(&recorded.har, name, flags).await;
        // One exchange: the request paired with its preflight, whichever the browser listed first.
        let one = report.contains("\n1 cross-origin request(s) in ");
        if recorded.status != seen || exit != code || !report.contains(cause) || !one {
            failures.push(format!(
                "{name}: the page saw {} (expected {seen}); the doctor exited {exit} (expected \
                 {code}) and should say {cause:?}:\n{report}\nHAR: {:#}",
                recorded.status, recorded.har
            ));
        }
        browser.close().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
