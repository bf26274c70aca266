//! `delivery-api preflight --har FILE` names the cause from what a browser recorded: Chromium's and
//! Firefox's export shapes (tests/api/har/), a sanitised export among them, bad files refused
//! with the reason (never a panic), and `--replay` asking the live server again. What a file
//! leaves out is said: the network error behind a status 0 (Chromium writes it, Firefox does
//! not), the rule behind a 400 preflight without its body, the credentials mode, a preflight the
//! browser took from its cache.

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

/// Hand-written, with the refusal's body: Firefox's own export keeps no preflight body (see
/// firefox-recorded-header-not-allowed.har), an export that keeps response bodies (a proxy's) does.
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
async fn a_chromium_recording_of_an_untrusted_certificate_names_the_network_error() {
    let har = fixture("chromium-recorded-certificate-not-trusted.har");
    let (code, out, err) = doctor(&["--har", &har]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "FAIL: the preflight got no HTTP answer, so no CORS rule was checked; the page sees \
             status 0. net::ERR_CERT_AUTHORITY_INVALID: the browser does not trust the server's \
             certificate"
        ),
        "Chromium's `_error` on the preflight names the cause: {out}"
    );
    assert!(out.contains("\n1 cross-origin request(s) in "), "{out}");
}

/// Made by Firefox's own HAR exporter (tests/api/har/README.md): status 0 and no reason.
#[tokio::test]
async fn a_firefox_export_of_an_untrusted_certificate_lists_what_a_reasonless_status_0_can_be() {
    let har = fixture("firefox-exported-certificate-not-trusted.har");
    let (code, out, err) = doctor(&["--har", &har]).await;
    assert_eq!(code, 1, "{out}{err}");
    for says in [
        "== entry 1 (its preflight: entry 2)",
        "FAIL: the preflight got no HTTP answer",
        "the browser recorded no answer and no reason (status 0; Firefox's export writes none)",
        "the browser does not trust the certificate, nothing listens at localhost:40431 (the \
         server is down, or the port is wrong), or the connection failed otherwise",
        "or add --replay to send it again now",
    ] {
        assert!(out.contains(says), "{says:?}: {out}");
    }
}

/// Each reason a browser gives for a status 0, and Firefox's HTTP/0.9 reading of bytes that are
/// no HTTP, named as the cause; Firefox's error names (WebDriver BiDi's, Playwright's
/// `_failureText`) as well as Chromium's.
#[tokio::test]
async fn each_network_error_in_a_file_is_named() {
    let https = "https://localhost:8443/delivery/all";
    let http = "http://localhost:8443/delivery/all";
    let cases = [
        (
            https,
            json!({"status": 0, "_error": "net::ERR_CONNECTION_REFUSED"}),
            "net::ERR_CONNECTION_REFUSED: nothing listens at localhost:8443: the server is not running, or the page calls the wrong port",
        ),
        (
            http,
            json!({"status": 0, "_error": "net::ERR_INVALID_HTTP_RESPONSE"}),
            "what answered at localhost:8443 is not plain HTTP: the URL says http:// for a server that speaks HTTPS; call https://localhost:8443",
        ),
        (
            https,
            json!({"status": 0, "_error": "net::ERR_CERT_COMMON_NAME_INVALID"}),
            "the browser does not trust the server's certificate",
        ),
        (
            https,
            json!({"status": 0, "_error": "net::ERR_NAME_NOT_RESOLVED"}),
            "the host name in https://localhost:8443 does not resolve",
        ),
        (
            https,
            json!({"status": 0, "_failureText": "NS_ERROR_CONNECTION_REFUSED"}),
            "NS_ERROR_CONNECTION_REFUSED: nothing listens at localhost:8443",
        ),
        (
            https,
            json!({"status": 0, "_failureText": "NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_SECURITY, SEC_ERROR_UNKNOWN_ISSUER)"}),
            "the browser does not trust the server's certificate",
        ),
        (
            http,
            json!({"status": 200, "httpVersion": "HTTP/0.9", "headers": []}),
            "the answer has no HTTP headers at all (HTTP/0.9): what answered is not an HTTP server: the URL says http:// for a server that speaks HTTPS? Call https://localhost:8443/delivery/all",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (url, response, says) in cases {
        let har = json!({"log": {"version": "1.2", "entries": [
            {"request": {"method": "GET", "url": url, "headers": [
                {"name": "Origin", "value": ORIGIN},
                {"name": "Authorization", "value": "Basic <stripped>"},
            ]}, "response": {"status": 0, "headers": []}},
            {"request": {"method": "OPTIONS", "url": url, "headers": [
                {"name": "Origin", "value": ORIGIN},
                {"name": "Access-Control-Request-Method", "value": "GET"},
                {"name": "Access-Control-Request-Headers", "value": "authorization"},
            ]}, "response": response},
        ]}});
        let file = dir.path().join("failed.har");
        std::fs::write(&file, har.to_string()).expect("write");
        let (code, out, err) = doctor(&["--har", &file.display().to_string()]).await;
        assert_eq!(code, 1, "{response}: {out}{err}");
        assert!(
            out.contains("FAIL: the preflight got no HTTP answer, so no CORS rule was checked; the page sees status 0. "),
            "{response}: {out}"
        );
        assert!(out.contains(says), "{response}: {says:?} in {out}");
    }
}

/// Recorded from Firefox over WebDriver BiDi (har_recorded.rs), Authorization stripped: the 400
/// has no body, so the doctor compares what the preflight asked with delivery-api's lists.
#[tokio::test]
async fn a_400_preflight_without_its_body_is_compared_with_the_servers_lists() {
    let har = fixture("firefox-recorded-header-not-allowed.har");
    let (code, out, err) = doctor(&["--har", &har]).await;
    assert_eq!(code, 1, "{out}{err}");
    for says in [
        "== entry 1 (its preflight: entry 2)",
        "the preflight got 400: the CORS layer refused it (origin, method or headers not allowed)\n\
         Which rule? Neither browser's export keeps a preflight's body, which names it.",
        "(actix-cors checks the origin, then the method, then the headers, and refuses at the \
         first that fails):",
        "  - origin http://localhost:38507: refused unless the server lists it (--allowed-origin \
         http://localhost:38507; the default is http://localhost:4200 alone)\n",
        "  - method GET: allowed\n",
        "  - request header x-api-key: refused unless the server runs with --allow-header \
         x-api-key (always allowed: ",
        "To be sure: the server's log names the rule (one WARN line per refusal), or add --replay",
    ] {
        assert!(out.contains(says), "{says:?}: {out}");
    }
    let (_, json, _) = doctor(&["--har", &har, "--json"]).await;
    let reports: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        reports[0]["notes"].as_array().map(Vec::len),
        Some(5),
        "{reports:#}"
    );

    // A method no flag allows is said to be refused in any case.
    let propfind = std::fs::read_to_string(&har)
        .expect("fixture")
        .replace("\"GET\"", "\"PROPFIND\"");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("propfind.har");
    std::fs::write(&file, propfind).expect("write");
    let (_, out, _) = doctor(&["--har", &file.display().to_string()]).await;
    assert!(
        out.contains(
            "  - method PROPFIND: refused in any case (delivery-api allows GET, HEAD, POST, PUT, \
             PATCH, DELETE, and no flag adds one)"
        ),
        "{out}"
    );
}

/// `--replay` of a refused preflight quotes the server's own reason, which the file lacks.
#[tokio::test]
async fn replay_of_a_400_preflight_quotes_the_servers_reason() {
    let app = spawn_app().await;
    let url = app.url("/delivery/all");
    let origin = "http://127.0.0.1:4200";
    let har = json!({"log": {"version": "1.2", "entries": [
        {"request": {"method": "GET", "url": url, "headers": [{"name": "Origin", "value": origin}]},
         "response": {"status": 0, "headers": []}},
        {"request": {"method": "OPTIONS", "url": url, "headers": [
            {"name": "Origin", "value": origin},
            {"name": "Access-Control-Request-Method", "value": "GET"},
            {"name": "Access-Control-Request-Headers", "value": "authorization"},
        ]}, "response": {"status": 400, "headers": [{"name": "content-type", "value": "application/problem+json"}]}},
    ]}});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("refused.har");
    std::fs::write(&file, har.to_string()).expect("write");
    let ca = app.dir.path().join("dev-ca.crt").display().to_string();
    let (code, out, err) = doctor(&[
        "--har",
        &file.display().to_string(),
        "--replay",
        "--cacert",
        &ca,
    ])
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("  - origin http://127.0.0.1:4200: refused unless the server lists it"),
        "{out}"
    );
    assert!(
        out.contains(
            "Replayed now: FAIL: the browser blocks the request at the preflight; the page sees \
             status 0. the preflight got 400: the CORS layer refused it (origin, method or headers \
             not allowed) The server's answer says: CORS preflight refused: origin \
             \"http://127.0.0.1:4200\" is not allowed"
        ),
        "{out}"
    );
}

/// A refusal's reason is quoted as one bounded line: any server may have written it.
#[tokio::test]
async fn a_quoted_reason_is_one_line_without_control_characters() {
    let url = "https://localhost:8443/delivery/all";
    let detail = format!("\u{1b}[31mred\nnext line {}", "x".repeat(400));
    let body = json!({"status": 400, "detail": detail}).to_string();
    let har = json!({"log": {"version": "1.2", "entries": [
        {"request": {"method": "OPTIONS", "url": url, "headers": [
            {"name": "Origin", "value": ORIGIN},
            {"name": "Access-Control-Request-Method", "value": "GET"},
        ]}, "response": {"status": 400, "headers": [], "content": {"text": body}}},
    ]}});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("loud.har");
    std::fs::write(&file, har.to_string()).expect("write");
    let (code, out, err) = doctor(&["--har", &file.display().to_string()]).await;
    assert_eq!(code, 1, "{out}{err}");
    let said = out
        .lines()
        .find_map(|l| l.split_once("The server's answer says: "))
        .map(|(_, said)| said)
        .unwrap_or_else(|| panic!("quoted: {out}"));
    assert!(said.starts_with("[31mrednext line xxx"), "{said:?}");
    assert_eq!(said.chars().count(), 300, "{said:?}");
    assert!(said.ends_with('…') && !out.contains('\u{1b}'), "{said:?}");
}

/// A request that needs a preflight, recorded without one (Chromium, har_recorded.rs: the
/// browser had cached it): what the file shows passes, and the doctor says what it cannot show.
#[tokio::test]
async fn a_recording_without_the_preflight_says_a_cached_one_may_hide_the_order() {
    let har = fixture("chromium-recorded-cached-preflight.har");
    let (code, out, err) = doctor(&["--har", &har]).await;
    assert_eq!(code, 0, "what the file shows was readable: {out}{err}");
    for says in [
        "== entry 1 (no preflight recorded)",
        "0. Preflight needed? yes, because:",
        "PASS: a page on http://localhost:38005 can read the response (status 304).\n\
         NOTE: the file holds no preflight for this request, though it needs one (step 0): the \
         browser used a preflight it had cached",
        "So this file cannot show how the server answers a preflight today: a bug such as auth \
         running before CORS stays hidden until the cache expires. Record again with DevTools → \
         Network → Disable cache ticked, or add --replay to send the preflight now.",
    ] {
        assert!(out.contains(says), "{says:?}: {out}");
    }
    assert!(
        !out.contains("if-none-match is not a CORS-safelisted"),
        "the browser's cache added If-None-Match when it revalidated: not the page's: {out}"
    );
}

/// A HAR does not record the credentials mode: a request refused after a preflight that passes
/// without credentials, and fails with them, was made with credentials.
#[tokio::test]
async fn a_refusal_only_credentials_explain_is_judged_with_credentials() {
    let url = "https://localhost:8443/delivery/all";
    let har = json!({"log": {"version": "1.2", "entries": [
        {"request": {"method": "GET", "url": url, "headers": [{"name": "Origin", "value": ORIGIN}]},
         "response": {"status": 0, "headers": [], "_error": "net::ERR_FAILED"}},
        {"request": {"method": "OPTIONS", "url": url, "headers": [
            {"name": "Origin", "value": ORIGIN},
            {"name": "Access-Control-Request-Method", "value": "GET"},
            {"name": "Access-Control-Request-Headers", "value": "authorization"},
        ]}, "response": {"status": 200, "headers": [
            {"name": "access-control-allow-origin", "value": ORIGIN},
            {"name": "access-control-allow-headers", "value": "authorization"},
            {"name": "vary", "value": "Origin"},
        ]}},
    ]}});
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials.har");
    std::fs::write(&file, har.to_string()).expect("write");
    let (code, out, err) = doctor(&["--har", &file.display().to_string()]).await;
    assert_eq!(code, 1, "{out}{err}");
    for says in [
        "credentials mode: include (withCredentials: true)",
        "FAIL: the browser blocks the request at the preflight; the page sees status 0. with \
         credentials the response needs Access-Control-Allow-Credentials: true, and it has none",
        "The file does not record the credentials mode.",
    ] {
        assert!(out.contains(says), "{says:?}: {out}");
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
