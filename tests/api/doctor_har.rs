//! `delivery-api preflight --har FILE` names the cause from what a browser recorded: Chromium's and
//! Firefox's export shapes (tests/api/har/), a sanitised export among them, bad files refused
//! with the reason (never a panic), and `--replay` asking the live server again.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::*;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/har")
        .join(name)
        .display()
        .to_string()
}

/// `delivery-api preflight ARGS`: (exit code, stdout, stderr).
async fn doctor(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BINARY)
        .arg("preflight")
        .args(args)
        .output()
        .await
        .expect("runs");
    let (stdout, stderr) = output_text(&out);
    (out.status.code().expect("an exit code"), stdout, stderr)
}

#[tokio::test]
async fn a_chromium_har_of_auth_before_cors_names_the_401_preflight_and_exits_1() {
    let (code, out, err) = doctor(&["--har", &fixture("chromium-auth-before-cors.har")]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("== entry 3 (its preflight: entry 2)"), "{out}");
    assert!(
        out.contains(
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. \
             the preflight got 401: your authentication runs before CORS"
        ),
        "{out}"
    );
    assert!(
        out.contains("2. Actual request: not sent (the browser stops at a failed preflight)"),
        "Chromium's status-0 entry for the GET is its refusal, not a response: {out}"
    );
    assert!(
        !out.contains("ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        "the recorded credentials are not printed: {out}"
    );
    assert!(out.contains("0 readable, 1 blocked"), "{out}");
}

#[tokio::test]
async fn a_firefox_har_of_a_refused_origin_names_the_origin_and_exits_1() {
    let (code, out, err) = doctor(&["--har", &fixture("firefox-origin-not-allowed.har")]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("GET https://localhost:8443/delivery/all from origin http://127.0.0.1:4200"),
        "the page's origin, from the recorded Origin: {out}"
    );
    assert!(
        out.contains(
            "the origin http://127.0.0.1:4200 is not allowed (exact scheme, host and port)"
        ),
        "{out}"
    );
    assert!(
        out.contains("the preflight got 400: the CORS layer refused it"),
        "{out}"
    );
    assert!(
        out.contains(
            "The server's answer says: CORS preflight refused: origin \"http://127.0.0.1:4200\" \
             is not allowed"
        ),
        "the refusal's problem+json body, kept in the export, names the cause: {out}"
    );
}

#[tokio::test]
async fn a_sanitised_export_without_authorization_is_still_judged_by_what_the_preflight_announced()
{
    let (code, out, err) = doctor(&["--har", &fixture("chromium-sanitized-ok.har")]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("authorization is not a CORS-safelisted request header"),
        "the preflight's Access-Control-Request-Headers names the header the export removed: {out}"
    );
    assert!(
        out.contains("PASS  header authorization is allowed"),
        "{out}"
    );
    assert!(
        out.contains("PASS: a page on http://localhost:4200 can read the response (status 200)."),
        "{out}"
    );
    assert!(out.contains("1 readable, 0 blocked"), "{out}");

    let (code, json, _) = doctor(&["--har", &fixture("chromium-sanitized-ok.har"), "--json"]).await;
    assert_eq!(code, 0);
    let reports: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(reports[0]["readable"], true, "{reports:#}");
    assert_eq!(reports[0]["recorded"], "entry 3 (its preflight: entry 2)");
}

/// Recorded from headless Chromium by har_recorded.rs, and kept: the request listed before its
/// preflight, HTTP/2 pseudo-headers, the sanitised one without Authorization.
#[tokio::test]
async fn hars_recorded_by_chromium_and_kept_in_the_repo_are_judged_with_their_cause() {
    for (name, code, says) in [
        (
            "chromium-recorded-auth-before-cors.har",
            1,
            "the preflight got 401: your authentication runs before CORS",
        ),
        (
            "chromium-recorded-header-not-allowed.har",
            1,
            "the preflight got 400: the CORS layer refused it",
        ),
        (
            "chromium-recorded-ok-sanitized.har",
            0,
            "can read the response (status 200)",
        ),
    ] {
        let (exit, out, err) = doctor(&["--har", &fixture(name)]).await;
        assert_eq!(exit, code, "{name}: {out}{err}");
        assert!(out.contains(says), "{name}: {out}");
        assert!(
            out.contains("\n1 cross-origin request(s) in "),
            "{name}: {out}"
        );
    }
}

#[tokio::test]
async fn entry_and_url_pick_one_exchange_and_a_pick_that_matches_nothing_says_so() {
    let har = fixture("chromium-auth-before-cors.har");
    let (code, out, _) = doctor(&["--har", &har, "--entry", "2"]).await;
    assert_eq!(code, 1, "entry 2 is the preflight of entry 3: {out}");
    assert!(out.contains("== entry 3 (its preflight: entry 2)"), "{out}");
    let (code, out, _) = doctor(&["--har", &har, "--url", "/delivery/all"]).await;
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = doctor(&["--har", &har, "--entry", "1"]).await;
    assert_eq!(code, 2, "entry 1 is the page itself: {err}");
    assert!(
        err.contains("none of them is a cross-origin request that --entry / --url picks"),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_usable_har_is_refused_with_the_reason_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let big = dir.path().join("big.har");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(65 * 1024 * 1024)) // sparse: nothing is written
        .expect("a 65 MiB file");
    let cases: [(PathBuf, &str); 7] = [
        (write("not-json.har", "<html>nope</html>"), "is not JSON"),
        (
            write("cut.har", r#"{"log": {"entries": [{"request": "#),
            "is cut short",
        ),
        (
            write("other.json", r#"{"name": "x"}"#),
            "is JSON but not a HAR",
        ),
        (
            write("empty.har", r#"{"log": {"entries": []}}"#),
            "holds no requests at all",
        ),
        (
            PathBuf::from(fixture("same-origin-only.har")),
            "none of them is a cross-origin request",
        ),
        (big, "over the 64 MiB this reads"),
        (dir.path().join("missing.har"), "cannot read"),
    ];
    for (file, reason) in cases {
        let (code, out, err) = doctor(&["--har", &file.display().to_string()]).await;
        assert_eq!(code, 2, "{}: {out}{err}", file.display());
        assert!(err.contains(reason), "{}: {err}", file.display());
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--replay` asks the server as it is now: a HAR recorded while auth ran first, replayed
/// against the server in the right order, shows the fix worked.
#[tokio::test]
async fn replay_sends_the_recorded_preflight_again_and_shows_todays_verdict() {
    let app = spawn_app().await;
    let url = app.url("/delivery/all");
    let har = json!({"log": {"version": "1.2", "entries": [
        {
            "request": {"method": "OPTIONS", "url": url, "headers": [
                {"name": "Origin", "value": ORIGIN},
                {"name": "Access-Control-Request-Method", "value": "GET"},
                {"name": "Access-Control-Request-Headers", "value": "authorization,content-type"},
            ]},
            "response": {"status": 401, "headers": [
                {"name": "WWW-Authenticate", "value": "Basic realm=\"delivery-api\""},
            ]},
        },
        {
            "request": {"method": "GET", "url": url, "headers": [
                {"name": "Origin", "value": ORIGIN},
                {"name": "Content-Type", "value": "application/json"},
            ]},
            "response": {"status": 0, "headers": [], "_error": "net::ERR_FAILED"},
        },
    ]}});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("recorded.har");
    std::fs::write(&file, har.to_string()).expect("write");
    let ca = app.dir.path().join("dev-ca.crt").display().to_string();
    let (code, out, err) = doctor(&[
        "--har",
        &file.display().to_string(),
        "--replay",
        "--cacert",
        &ca,
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ])
    .await;
    assert_eq!(code, 1, "the recording itself was blocked: {out}{err}");
    assert!(out.contains("the preflight got 401"), "{out}");
    assert!(
        out.contains(&format!(
            "Replayed now: PASS: a page on {ORIGIN} can read the response (status 200)."
        )),
        "{out}{err}"
    );
}
