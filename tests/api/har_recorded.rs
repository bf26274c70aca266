//! HARs recorded by real browsers, judged by `delivery-api preflight --har`: headless Chromium and
//! Firefox make a call from a page on an origin of its own, once per cause in
//! docs/troubleshooting.md; their network events are written out as the HAR their own export
//! writes, and the doctor must name the cause the browser met.
//!
//! - Chromium: the DevTools Network events (chromedriver's performance log) that DevTools builds
//!   its "Export HAR" from: the preflight as a request of its own (`_resourceType: preflight`),
//!   the headers as sent on the wire, and `response._error`, `Network.loadingFailed`'s
//!   errorText (`net::ERR_CERT_AUTHORITY_INVALID`…), as DevTools writes it.
//! - Firefox: WebDriver BiDi's `network` events. Firefox ESR 153 reports the preflight as a
//!   request of its own, after the request that triggers it, as its "Save All As HAR" lists them.
//!   That export writes no reason for a failed request (status 0 and nothing else; see
//!   tests/api/har/README.md), so the HAR written here has none either: the reason BiDi gives
//!   (`network.fetchError`'s errorText) is checked beside it, as what Firefox knows and does not
//!   export. A last test has Firefox's own exporter write its HAR of the same calls, and checks
//!   that the doctor judges both alike.
//!
//! With `RECORD_HARS=DIR`, each recording is also saved there (how the `*-recorded-*.har` files
//! in tests/api/har/ were made).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// The page's call: the article's headers, and what a case adds (`method`, `headers`,
/// `credentials`; `simple: true` sends no header of ours, so no preflight; `authorizationKiB: N`
/// sends an `Authorization` of N KiB).
const CALL: &str = "
    const [url, init] = arguments;
    const done = arguments[arguments.length - 1];
    const { simple, authorizationKiB, ...options } = init;
    const authorization = authorizationKiB
      ? 'Basic ' + 'A'.repeat(authorizationKiB * 1024)
      : 'Basic ' + btoa('demo:demo-password');
    const headers = simple ? {} : Object.assign({
      'Authorization': authorization,
      'Content-Type': 'application/json',
    }, init.headers || {});
    fetch(url, { ...options, headers }).then(r => done(r.status), e => done(0));";

/// What one call left: the status the page saw (0: blocked or failed), the HAR, and (Firefox)
/// the errorText of each BiDi `network.fetchError`, as `METHOD errorText`.
struct Recorded {
    status: u64,
    har: Value,
    errors: Vec<String>,
}

/// Makes the call from `page` to `url` with `init`, and records every request to `url`'s origin.
async fn record(browser: &Browser, page: &str, url: &str, init: &Value) -> Recorded {
    browser.open(page).await;
    browser.network_events().await; // the page load's own
    let status = browser
        .client
        .execute_async(CALL, vec![json!(url), init.clone()])
        .await
        .expect("the call runs")
        .as_u64()
        .expect("a status");
    let origin = origin_of(url);
    let method = init["method"].as_str().unwrap_or("GET");
    // The call has settled; its events may still be on their way (a condition, bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    loop {
        events.extend(browser.network_events().await);
        if complete(browser.kind, &events, &origin, method)
            || tokio::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (har, errors) = match browser.kind {
        Kind::Chromium => (har_from_devtools(&events, &origin, page), Vec::new()),
        Kind::Firefox => har_from_bidi(&events, &origin, page),
    };
    Recorded {
        status,
        har,
        errors,
    }
}

fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .origin()
        .ascii_serialization()
}

/// Every request to `origin` has ended (and, in Chromium, every response has its wire headers),
/// and one of them is the page's `method`.
fn complete(kind: Kind, events: &[Value], origin: &str, method: &str) -> bool {
    let (sent, ended, id): (&str, &[&str], fn(&Value) -> &Value) = match kind {
        Kind::Chromium => (
            "Network.requestWillBeSent",
            &["Network.loadingFinished", "Network.loadingFailed"],
            |p| &p["requestId"],
        ),
        Kind::Firefox => (
            "network.beforeRequestSent",
            &["network.responseCompleted", "network.fetchError"],
            |p| &p["request"]["request"],
        ),
    };
    let has = |names: &[&str], request: &Value| {
        events
            .iter()
            .any(|e| names.iter().any(|n| e["method"] == *n) && id(&e["params"]) == request)
    };
    let requests: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == sent)
        .map(|e| &e["params"])
        .filter(|p| {
            p["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(origin))
        })
        .collect();
    let wire_headers = |p: &&Value| {
        kind == Kind::Firefox
            || !has(&["Network.responseReceived"], id(p))
            || has(&["Network.responseReceivedExtraInfo"], id(p))
    };
    requests.iter().any(|p| p["request"]["method"] == method)
        && requests
            .iter()
            .all(|p| has(ended, id(p)) && wire_headers(p))
}

/// The requests to `origin` in Chromium's DevTools Network events, as DevTools exports them.
fn har_from_devtools(events: &[Value], origin: &str, page: &str) -> Value {
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
    for sent in sent_to(events, "Network.requestWillBeSent", origin) {
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
        let version = received.map_or(json!(""), |r| r["response"]["protocol"].clone());
        entries.push(json!({
            "pageref": "page_1",
            "_resourceType": resource_type,
            "request": {
                "method": sent["request"]["method"],
                "url": sent["request"]["url"],
                "httpVersion": version,
                "headers": request_headers,
                "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0,
            },
            "response": {
                "status": status,
                "statusText": "",
                "httpVersion": version,
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
    har(entries, page, "Chromium DevTools events")
}

/// The requests to `origin` in Firefox's WebDriver BiDi `network` events, as Firefox's "Save All
/// As HAR" writes them (no reason for a failure: see the module's comment); and each
/// `network.fetchError`'s errorText, as `METHOD errorText`.
fn har_from_bidi(events: &[Value], origin: &str, page: &str) -> (Value, Vec<String>) {
    let last = |id: &Value, methods: &[&str]| {
        events
            .iter()
            .rev()
            .find(|e| {
                methods.iter().any(|m| e["method"] == *m)
                    && e["params"]["request"]["request"] == *id
            })
            .map(|e| &e["params"])
    };
    let (mut entries, mut errors) = (Vec::new(), Vec::new());
    for sent in sent_to(events, "network.beforeRequestSent", origin) {
        let id = &sent["request"]["request"];
        // The request's headers as the last event about it shows them: as sent.
        let all = [
            "network.responseCompleted",
            "network.responseStarted",
            "network.fetchError",
        ];
        let request = &last(id, &all).unwrap_or(sent)["request"];
        let response = last(id, &all[..2]).map(|p| &p["response"]);
        if let Some(failed) = last(id, &all[2..]) {
            errors.push(format!(
                "{} {}",
                request["method"].as_str().unwrap_or_default(),
                failed["errorText"].as_str().unwrap_or_default()
            ));
        }
        entries.push(firefox_entry(request, response));
    }
    (har(entries, page, "Firefox WebDriver BiDi events"), errors)
}

/// A BiDi request and its response (if one arrived), as an entry of Firefox's export.
fn firefox_entry(request: &Value, response: Option<&Value>) -> Value {
    let headers = |list: &Value| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|h| json!({"name": h["name"], "value": h["value"]["value"]}))
            .collect()
    };
    // Firefox writes `HTTP/2`, `HTTP/1.1`; BiDi says `h2`, `http/1.1`.
    let version =
        response
            .and_then(|r| r["protocol"].as_str())
            .map_or(String::new(), |p| match p {
                "h2" => "HTTP/2".to_owned(),
                other => other.to_ascii_uppercase(),
            });
    let field = |name: &str, or: Value| match response.map(|r| &r[name]) {
        Some(value) if !value.is_null() => value.clone(),
        _ => or,
    };
    json!({
        "pageref": "page_1",
        "startedDateTime": "1970-01-01T00:00:00.000+00:00",
        "request": {
            "bodySize": 0,
            "method": request["method"],
            "url": request["url"],
            "httpVersion": version,
            "headers": headers(&request["headers"]),
            "cookies": [], "queryString": [],
            "headersSize": request["headersSize"],
        },
        "response": {
            "status": field("status", json!(0)),
            "statusText": field("statusText", json!("")),
            "httpVersion": version,
            "headers": response.map_or(Vec::new(), |r| headers(&r["headers"])),
            "cookies": [],
            "content": {"mimeType": field("mimeType", json!("")), "size": 0},
            "redirectURL": "",
            "headersSize": field("headersSize", json!(-1)),
            "bodySize": field("bodySize", json!(-1)),
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": 0, "connect": 0, "ssl": 0, "send": 0, "wait": 0, "receive": 0},
        "time": 0,
    })
}

/// The `params` of each `sent` event for a request to `origin`, in the order they came.
fn sent_to<'a>(
    events: &'a [Value],
    sent: &'a str,
    origin: &'a str,
) -> impl Iterator<Item = &'a Value> {
    events
        .iter()
        .filter(move |e| e["method"] == sent)
        .map(|e| &e["params"])
        .filter(move |p| {
            p["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(origin))
        })
}

/// The HAR of `entries`, made on `page`: both browsers' exports write the page's URL as its
/// title.
fn har(entries: Vec<Value>, page: &str, from: &str) -> Value {
    json!({"log": {
        "version": "1.2",
        "creator": {"name": format!("delivery-api tests ({from})"), "version": "1"},
        "pages": [{
            "startedDateTime": "1970-01-01T00:00:00.000Z",
            "id": "page_1",
            "title": page,
            "pageTimings": {"onContentLoad": -1, "onLoad": -1},
        }],
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
        std::fs::write(Path::new(&keep).join(format!("{name}.har")), &text).expect("keep");
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

/// The API a case calls.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// Allows the page's origin, in the right order.
    Right,
    AuthFirst,
    /// The defaults: allows http://localhost:4200 only.
    Elsewhere,
    /// `--allowed-origin '*' --allow-credentials false`.
    Wildcard,
    /// `--allow-credentials false`, the page's origin allowed.
    NoCredentials,
    /// Another server (not this one), whose preflights get 401 with CORS headers.
    Other401,
    /// Another server, whose CORS headers allow GET and POST, Authorization and Accept.
    Other200,
    /// Another server, whose preflights pass (as `Other200`) and whose requests get 401 without
    /// CORS headers: an error path that skips them.
    Other401After,
}

/// Which URL of it.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// `/delivery/all`.
    Api,
    /// `/delivery/all` with `http://` for the TLS port.
    OverHttp,
    /// A port where nothing listens: the server is down, or the URL's port is wrong.
    Closed,
    /// `/health`.
    Health,
    /// Another server's URL by a name that is not loopback (`http://api.test:PORT`), from a page
    /// served over https: mixed content.
    MixedContent,
}

/// One cause: docs/troubleshooting.md's row, a name for the file, the call, and what the doctor
/// says in each browser (`<origin>`: the page's origin, `<host>`: the URL's host:port).
struct Case {
    row: &'static str,
    name: &'static str,
    server: Server,
    target: Target,
    /// fetch()'s options beyond the article's headers, as JSON.
    init: &'static str,
    /// The browser trusts the API's certificate.
    trusted: bool,
    /// The doctor's exit code (0: the page read the response, status 200).
    code: i32,
    /// Firefox's, when it differs (2: its recording holds no cross-origin request).
    firefox_code: Option<i32>,
    chromium: &'static [&'static str],
    firefox: &'static [&'static str],
    /// Firefox: the errorText BiDi gives for the preflight, which its export leaves out.
    firefox_error: Option<&'static str>,
    /// What `--replay` adds (sent again now, trusting what the browser trusted): the server's
    /// own reason, or the network error the file leaves out.
    replayed: Option<&'static str>,
}

const fn case(
    row: &'static str,
    name: &'static str,
    server: Server,
    init: &'static str,
    code: i32,
    both: &'static [&'static str],
) -> Case {
    Case {
        row,
        name,
        server,
        target: Target::Api,
        init,
        trusted: true,
        code,
        firefox_code: None,
        chromium: both,
        firefox: both,
        firefox_error: None,
        replayed: None,
    }
}

impl Case {
    const fn replayed(self, says: &'static str) -> Self {
        Self {
            replayed: Some(says),
            ..self
        }
    }
}

const REFUSED: &str = "the preflight got 400: the CORS layer refused it";

/// Every cause of docs/troubleshooting.md's tables a browser page can meet (row 9 from a page
/// served over https, calling another server by a name that is not loopback).
const CASES: &[Case] = &[
    case(
        "ok",
        "ok",
        Server::Right,
        "{}",
        0,
        &["PASS: a page on <origin> can read the response (status 200)."],
    ),
    case(
        "1a",
        "auth-before-cors",
        Server::AuthFirst,
        "{}",
        1,
        &["the preflight got 401: your authentication runs before CORS"],
    ),
    case(
        "1b",
        "origin-not-allowed",
        Server::Elsewhere,
        "{}",
        1,
        &[
            REFUSED,
            "  - origin <origin>: refused unless the server lists it",
            "  - method GET: allowed",
            "  - request headers: all allowed",
        ],
    )
    .replayed("The server's answer says: CORS preflight refused: origin \"<origin>\" is not allowed"),
    case(
        "1c",
        "header-not-allowed",
        Server::Right,
        r#"{"headers": {"X-Api-Key": "k"}}"#,
        1,
        &[
            REFUSED,
            "  - request header x-api-key: refused unless the server runs with --allow-header x-api-key",
        ],
    )
    .replayed("The server's answer says: CORS preflight refused: request header \"x-api-key\" is not allowed"),
    case(
        "1d",
        "method-not-allowed",
        Server::Right,
        r#"{"method": "PROPFIND"}"#,
        1,
        &[REFUSED, "  - method PROPFIND: refused in any case"],
    )
    .replayed("The server's answer says: CORS preflight refused: method \"PROPFIND\" is not allowed"),
    case(
        "1c-2xx",
        "other-server-header",
        Server::Other200,
        r#"{"headers": {"X-Api-Key": "k"}}"#,
        1,
        &["Access-Control-Allow-Headers lacks x-api-key"],
    ),
    case(
        "1d-2xx",
        "other-server-method",
        Server::Other200,
        r#"{"method": "PATCH"}"#,
        1,
        &["Access-Control-Allow-Methods is \"GET, POST\": add PATCH"],
    ),
    case(
        "2",
        "other-server-401",
        Server::Other401,
        "{}",
        1,
        &["the preflight got 401"],
    ),
    Case {
        target: Target::Health,
        ..case(
            "3a",
            "no-preflight-origin-not-allowed",
            Server::Elsewhere,
            r#"{"simple": true}"#,
            1,
            &[
                "0. Preflight needed? no",
                "the response has no Access-Control-Allow-Origin: the origin <origin> is not allowed",
            ],
        )
    },
    case(
        "3b",
        "headers-too-large",
        Server::Right,
        r#"{"authorizationKiB": 100}"#,
        1,
        &[
            "FAIL: the browser blocks the response; the page sees status 0. the request got 431 \
             (request headers too large) without Access-Control-Allow-Origin, after a preflight \
             that passed: it was answered below the CORS layer",
            "or raise the limit (delivery-api: --h2-max-header-list)",
        ],
    ),
    case(
        "3c",
        "other-server-401-after-preflight",
        Server::Other401After,
        // (Its preflight allows Authorization and Accept: a safelisted Content-Type.)
        r#"{"headers": {"Content-Type": "text/plain"}}"#,
        1,
        &[
            "FAIL: the browser blocks the response; the page sees status 0. the 401 has no \
             usable CORS headers, so the page sees status 0 instead of 401: error responses (auth \
             failures above all) must pass through the CORS layer",
        ],
    ),
    case(
        "4",
        "wildcard-with-credentials",
        Server::Wildcard,
        r#"{"credentials": "include"}"#,
        1,
        &[
            "the server must echo the origin, not `*`",
            "The file does not record the credentials mode.",
        ],
    ),
    case(
        "5",
        "credentials-not-allowed",
        Server::NoCredentials,
        r#"{"credentials": "include"}"#,
        1,
        &[
            "needs Access-Control-Allow-Credentials: true, and it has none",
            "The file does not record the credentials mode.",
        ],
    ),
    Case {
        trusted: false,
        chromium: &[
            "FAIL: the preflight got no HTTP answer",
            "net::ERR_CERT_AUTHORITY_INVALID: the browser does not trust the server's certificate",
        ],
        firefox: &[
            "FAIL: the preflight got no HTTP answer",
            "the browser recorded no answer and no reason",
            "the browser does not trust the certificate, nothing listens at <host>",
        ],
        firefox_error: Some(
            "OPTIONS NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_SECURITY, SEC_ERROR_UNKNOWN_ISSUER)",
        ),
        replayed: Some("the certificate is not trusted"),
        ..case("6", "certificate-not-trusted", Server::Right, "{}", 1, &[])
    },
    Case {
        target: Target::Closed,
        chromium: &[
            "FAIL: the preflight got no HTTP answer",
            "net::ERR_CONNECTION_REFUSED: nothing listens at <host>",
        ],
        firefox: &[
            "FAIL: the preflight got no HTTP answer",
            "the browser recorded no answer and no reason",
            "nothing listens at <host>",
        ],
        firefox_error: Some("OPTIONS NS_ERROR_CONNECTION_REFUSED"),
        replayed: Some("nothing answers there"),
        ..case("7", "server-down", Server::Right, "{}", 1, &[])
    },
    Case {
        target: Target::OverHttp,
        chromium: &[
            "FAIL: the preflight got no HTTP answer",
            "net::ERR_INVALID_HTTP_RESPONSE: what answered at <host> is not plain HTTP",
        ],
        firefox: &[
            "FAIL: the preflight got no HTTP answer",
            "the answer has no HTTP headers at all (HTTP/0.9)",
            "the URL says http:// for a server that speaks HTTPS",
        ],
        ..case("8", "http-for-https", Server::Right, "{}", 1, &[])
    },
    // Chromium records the request (status 0, `_error` empty; DevTools' `Network.loadingFailed`
    // has `blockedReason: "mixed-content"`). Firefox sends no BiDi event for it, and its
    // recording holds no request: the doctor says what an https page's file leaves out.
    Case {
        target: Target::MixedContent,
        chromium: &[
            "FAIL: the request got no HTTP answer, so no CORS rule was checked; the page sees \
             status 0. mixed content: an https page cannot call an http:// API; call it over https",
        ],
        firefox: &[
            "holds no requests at all",
            "The page is https: if it calls an http:// API by a name that is not loopback, that \
             is mixed content: an https page cannot call an http:// API; call it over https.",
            "Firefox records nothing of it",
        ],
        firefox_code: Some(2),
        ..case("9", "mixed-content", Server::Other200, "{}", 1, &[])
    },
];

/// Starts what `server` names for a page on `origin`; returns the app (whose certificate the
/// browser trusts) and, for another server, its URL.
async fn serve(server: Server, origin: &str) -> (TestApp, Option<String>) {
    let page = origin.to_owned();
    let app = spawn_app_with(move |args| {
        args.cors.allowed_origins = vec![page.parse().expect("origin")];
        match server {
            Server::AuthFirst => args.auth_before_cors = true,
            Server::Elsewhere => args.cors.allowed_origins = vec![ORIGIN.parse().expect("origin")],
            Server::Wildcard => {
                args.cors.allowed_origins = vec!["*".parse().expect("origin")];
                args.cors.allow_credentials = false;
            }
            Server::NoCredentials => args.cors.allow_credentials = false,
            _ => {}
        }
    })
    .await;
    let other = match server {
        Server::Other401 => Some(
            other_server(Answers::all("401 Unauthorized"), origin.to_owned())
                .await
                .0,
        ),
        Server::Other200 => Some(
            other_server(Answers::all("200 OK"), origin.to_owned())
                .await
                .0,
        ),
        Server::Other401After => {
            let answers = Answers {
                preflight: "200 OK",
                actual: "401 Unauthorized",
                actual_allows_origin: false,
            };
            Some(other_server(answers, origin.to_owned()).await.0)
        }
        _ => None,
    };
    (app, other)
}

fn target_url(app: &TestApp, other: Option<String>, target: Target) -> String {
    let api = other.unwrap_or_else(|| app.url("/delivery/all"));
    match target {
        Target::Api => api,
        Target::OverHttp => api.replacen("https://", "http://", 1),
        Target::Health => app.url("/health"),
        Target::MixedContent => api.replacen("//localhost:", "//api.test:", 1),
        Target::Closed => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            let port = closed.local_addr().expect("addr").port();
            format!("https://localhost:{port}/delivery/all")
        }
    }
}

/// Where a case was recorded: the browser, the page's origin, the URL called, the API's CA.
struct Recording<'a> {
    kind: Kind,
    origin: &'a str,
    url: &'a str,
    ca: std::path::PathBuf,
}

/// What is wrong with `recorded` for `case`, with the report and the HAR.
async fn check(case: &Case, at: &Recording<'_>, recorded: &Recorded, name: &str) -> Option<String> {
    let (code, report) = judge(&recorded.har, name, &[]).await;
    let host = url::Url::parse(at.url)
        .map(|u| format!("localhost:{}", u.port_or_known_default().unwrap_or(0)))
        .expect("url");
    let fill = |s: &str| s.replace("<origin>", at.origin).replace("<host>", &host);
    let (says, expected_code) = match at.kind {
        Kind::Chromium => (case.chromium, case.code),
        Kind::Firefox => (case.firefox, case.firefox_code.unwrap_or(case.code)),
    };
    let mut missing: Vec<String> = says
        .iter()
        .map(|s| fill(s))
        .filter(|s| !report.contains(s.as_str()))
        .collect();
    if expected_code != 2 && !report.contains("\n1 cross-origin request(s) in ") {
        missing.push("one cross-origin request".to_owned());
    }
    if let Some(expected) = case.replayed.map(fill) {
        let ca = at.ca.display().to_string();
        let trust: &[&str] = if case.trusted {
            &["--cacert", &ca]
        } else {
            &[]
        };
        let flags: Vec<&str> = ["--replay"].iter().chain(trust).copied().collect();
        let (_, replayed) = judge(&recorded.har, name, &flags).await;
        if !replayed.contains("Replayed now: FAIL") || !replayed.contains(&expected) {
            missing.push(format!("--replay: {expected:?} in\n{replayed}"));
        }
    }
    let seen = if case.code == 0 { 200 } else { 0 };
    let bidi = case.firefox_error.filter(|_| at.kind == Kind::Firefox);
    let bidi_ok = bidi.is_none_or(|e| recorded.errors.iter().any(|x| x == e));
    (recorded.status != seen || code != expected_code || !missing.is_empty() || !bidi_ok).then(|| {
        format!(
            "row {} ({}): the page saw {} (expected {seen}); the doctor exited {code} (expected \
             {expected_code}); missing {missing:?}; BiDi errors {:?} (expected {bidi:?}):\n{report}\nHAR: {:#}",
            case.row, case.name, recorded.status, recorded.errors, recorded.har
        )
    })
}

/// Each cause, recorded in `kind`, judged: the failures, each with its report and HAR.
async fn each_cause_recorded_in(kind: Kind) {
    let (page, _root) = blank_page().await;
    let mut failures = Vec::new();
    for case in CASES {
        let (app, other) = serve(case.server, &page.origin()).await;
        let url = target_url(&app, other, case.target);
        // A fresh browser for each: none remembers another's preflight.
        let (browser, page) = if case.target == Target::MixedContent {
            // A page over https (the app's certificate), and `api.test` resolved.
            let page = crate::browser::blank_page(Some(crate::browser::tls_of(&app))).await;
            let browser = Browser::launch_recording_resolving(kind, &app, "api.test").await;
            (browser, page)
        } else {
            let browser = Browser::launch_recording(kind, &app, case.trusted).await;
            (browser, format!("{}/", page.origin()))
        };
        let origin = origin_of(&page);
        let recorded = record(
            &browser,
            &page,
            &url,
            &serde_json::from_str(case.init).expect("JSON"),
        )
        .await;
        browser.close().await;
        let name = format!(
            "{}-recorded-{}",
            format!("{kind:?}").to_lowercase(),
            case.name
        );
        let at = Recording {
            kind,
            origin: &origin,
            url: &url,
            ca: app.dir.path().join(delivery_api::tls::dev_ca::CA_CERT),
        };
        failures.extend(check(case, &at, &recorded, &name).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
async fn recorded_in_chromium_each_cause_is_named_by_the_doctor() {
    each_cause_recorded_in(Kind::Chromium).await;
}

#[tokio::test]
#[cfg_attr(
    not(firefox),
    ignore = "needs firefox, geckodriver and certutil: apt-get install firefox-esr libnss3-tools; cargo install geckodriver --locked (.ci/run does)"
)]
async fn recorded_in_firefox_each_cause_is_named_by_the_doctor() {
    each_cause_recorded_in(Kind::Firefox).await;
}

/// A preflight the browser cached while the server had CORS first hides auth-before-CORS: the
/// recording holds the request and its 200, and no preflight. The doctor passes what it sees,
/// says the file cannot show how preflights are answered now, and points to --replay (which shows
/// the 401) and to DevTools' "Disable cache" (with which the next recording shows it too).
async fn a_cached_preflight_recorded_in(kind: Kind) {
    let (page, _root) = blank_page().await;
    let origin = page.origin();
    let page_url = format!("{origin}/");
    let (app, _) = serve(Server::Right, &origin).await;
    let browser = Browser::launch_recording(kind, &app, true).await;
    let url = app.url("/delivery/all");
    assert_eq!(
        record(&browser, &page_url, &url, &json!({})).await.status,
        200
    );
    let port = url::Url::parse(&url).expect("url").port().expect("a port");
    let allowed = origin.clone();
    let app = app
        .restart(move |args| {
            args.bind = format!("127.0.0.1:{port}").parse().expect("addr");
            args.cors.allowed_origins = vec![allowed.parse().expect("origin")];
            args.auth_before_cors = true;
        })
        .await;
    let name = format!(
        "{}-recorded-cached-preflight",
        format!("{kind:?}").to_lowercase()
    );

    let cached = record(&browser, &page_url, &url, &json!({})).await;

    assert_eq!(cached.status, 200, "the preflight came from the cache");
    let (code, report) = judge(&cached.har, &name, &[]).await;
    assert_eq!(code, 0, "{report}");
    for says in [
        "== entry 1 (no preflight recorded)",
        // (304: the browser's cache revalidated the first answer, and gives the page that.)
        "PASS: a page on <origin> can read the response (status",
        "NOTE: the file holds no preflight for this request, though it needs one",
        "Disable cache ticked, or add --replay",
    ] {
        let says = says.replace("<origin>", &origin);
        assert!(
            report.contains(&says),
            "{says:?}:\n{report}\nHAR: {:#}",
            cached.har
        );
    }
    let ca = app.dir.path().join(delivery_api::tls::dev_ca::CA_CERT);
    let ca = ca.display().to_string();
    let (_, replayed) = judge(&cached.har, &name, &["--replay", "--cacert", &ca]).await;
    assert!(
        replayed.contains(
            "Replayed now: FAIL: the browser blocks the request at the preflight; the page sees \
             status 0. the preflight got 401: your authentication runs before CORS"
        ),
        "{replayed}"
    );

    browser.disable_cache().await;
    let fresh = record(&browser, &page_url, &url, &json!({})).await;

    assert_eq!(
        fresh.status, 0,
        "with the cache disabled the preflight is sent: {:#}",
        fresh.har
    );
    let (code, report) = judge(&fresh.har, &format!("{name}-disabled"), &[]).await;
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("the preflight got 401: your authentication runs before CORS"),
        "{report}"
    );
    browser.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
async fn recorded_in_chromium_a_cached_preflight_is_said_to_hide_the_order() {
    a_cached_preflight_recorded_in(Kind::Chromium).await;
}

#[tokio::test]
#[cfg_attr(
    not(firefox),
    ignore = "needs firefox, geckodriver and certutil: apt-get install firefox-esr libnss3-tools; cargo install geckodriver --locked (.ci/run does)"
)]
async fn recorded_in_firefox_a_cached_preflight_is_said_to_hide_the_order() {
    a_cached_preflight_recorded_in(Kind::Firefox).await;
}

/// The page Firefox's exporter needs: it writes a file once a page has loaded, so the call is a
/// synchronous XHR made while the page loads (`?url=…&header=…`), the article's headers on it.
const XHR_PAGE: &str = "<!doctype html><title>xhr</title><script>
const q = new URLSearchParams(location.search);
const x = new XMLHttpRequest();
x.open('GET', q.get('url'), false);
x.setRequestHeader('Authorization', 'Basic ' + btoa('demo:demo-password'));
x.setRequestHeader('Content-Type', 'application/json');
if (q.get('header')) x.setRequestHeader(q.get('header'), 'k');
try { x.send(); document.title = 'status ' + x.status; } catch (e) { document.title = 'status 0'; }
</script>";

/// Firefox's own export (its DevTools HAR exporter, the one behind "Save All As HAR") and the HAR
/// written from BiDi events for the same call get the same verdict and notes from the doctor:
/// the recordings above stand for what a learner exports, in everything the doctor reads.
#[tokio::test]
#[cfg_attr(
    not(firefox),
    ignore = "needs firefox, geckodriver and certutil: apt-get install firefox-esr libnss3-tools; cargo install geckodriver --locked (.ci/run does)"
)]
async fn firefox_s_own_export_and_the_bidi_recording_are_judged_alike() {
    let (page, root) = blank_page().await;
    std::fs::write(root.path().join("xhr.html"), XHR_PAGE).expect("page");
    let origin = page.origin();
    let (app, _) = serve(Server::Right, &origin).await;
    // Its own CA, which the browser does not trust.
    let (untrusted, _) = serve(Server::Right, &origin).await;
    let exports = tempfile::tempdir().expect("tempdir");
    let browser = Browser::launch_firefox_exporting(&app, exports.path()).await;
    let api = app.url("/delivery/all");
    let closed = target_url(&app, None, Target::Closed);
    let mut cases = vec![
        (
            "certificate-not-trusted",
            untrusted.url("/delivery/all"),
            "",
        ),
        ("server-down", closed, ""),
        ("http-for-https", api.replacen("https://", "http://", 1), ""),
        ("header-not-allowed", api.clone(), "X-Api-Key"),
    ];
    let mut failures = Vec::new();
    for (name, url, header) in cases.drain(..) {
        failures.extend(compare(&browser, exports.path(), &origin, name, &url, header).await);
    }
    // None of the above left a passed preflight in the cache: the same origin and URL again.
    let port = url::Url::parse(&api).expect("url").port().expect("a port");
    let allowed = origin.clone();
    let _app = app
        .restart(move |args| {
            args.bind = format!("127.0.0.1:{port}").parse().expect("addr");
            args.cors.allowed_origins = vec![allowed.parse().expect("origin")];
            args.auth_before_cors = true;
        })
        .await;
    let name = "auth-before-cors";
    failures.extend(compare(&browser, exports.path(), &origin, name, &api, "").await);
    browser.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Loads the XHR page for `url` until Firefox's exporter writes a file for the load (DevTools
/// opens after the first page, so the first loads may go unwritten), and compares the doctor's
/// verdicts and notes on that file and on the BiDi recording of the same load.
async fn compare(
    browser: &Browser,
    exports: &Path,
    origin: &str,
    name: &str,
    url: &str,
    header: &str,
) -> Option<String> {
    let mut page = url::Url::parse(&format!("{origin}/xhr.html")).expect("url");
    page.query_pairs_mut()
        .append_pair("url", url)
        .append_pair("header", header);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let exported = loop {
        let before = std::fs::read_dir(exports).expect("dir").count();
        browser.network_events().await; // earlier loads'
        browser.open(page.as_str()).await;
        // Written after the load, if DevTools was open then (a condition, bounded).
        let written = tokio::time::Instant::now() + Duration::from_secs(5);
        let found = loop {
            let har = newest_har(exports, before);
            if har.is_some() || tokio::time::Instant::now() > written {
                break har;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(har) = found {
            break har;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Firefox's HAR exporter wrote nothing in 90 s"
        );
    };
    let mut events = Vec::new();
    let settled = tokio::time::Instant::now() + Duration::from_secs(30);
    while !complete(Kind::Firefox, &events, &origin_of(url), "GET")
        && tokio::time::Instant::now() < settled
    {
        events.extend(browser.network_events().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (recorded, _) = har_from_bidi(&events, &origin_of(url), page.as_str());
    let (_, of_export) = judge(&exported, &format!("firefox-exported-{name}"), &[]).await;
    let (_, of_recording) = judge(&recorded, &format!("firefox-recorded-{name}"), &[]).await;
    let (a, b) = (verdicts(&of_export), verdicts(&of_recording));
    (a.len() < 2 || a != b).then(|| {
        format!(
            "{name}: Firefox's export and the BiDi recording are judged differently:\n\
             {of_export}\nvs\n{of_recording}\nexport: {exported:#}\nrecording: {recorded:#}"
        )
    })
}

/// The newest HAR in `dir` once it holds more than `before` files and parses (it may still be
/// being written).
fn newest_har(dir: &Path, before: usize) -> Option<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .collect();
    if files.len() <= before {
        return None;
    }
    files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    let text = std::fs::read_to_string(files.last()?.path()).ok()?;
    serde_json::from_str(&text).ok()
}

/// A report's verdicts and notes, and how many exchanges were readable or blocked: what the
/// doctor concluded, without the positions and headers (Firefox's export also holds the page).
fn verdicts(report: &str) -> Vec<String> {
    let mut kept = Vec::new();
    let mut in_verdict = false;
    for line in report.lines() {
        if ["PASS:", "FAIL:", "PREFLIGHT ONLY:"]
            .iter()
            .any(|v| line.starts_with(v))
        {
            in_verdict = true;
        }
        if line.is_empty() {
            in_verdict = false;
        }
        if in_verdict {
            kept.push(line.to_owned());
        } else if let Some((_, counts)) = line.split_once(".har: ") {
            kept.push(counts.to_owned());
        }
    }
    kept
}
