//! The server log says why a preflight was refused, once per cause, with the fix: read from the
//! real binary's log, since that is what a developer reads.

use reqwest::Method;

use crate::helpers::*;

/// `OPTIONS path` with `headers`, as a browser (or a hand-written curl) sends it.
async fn options(served: &Served, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = served.client.request(Method::OPTIONS, served.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("sent").status().as_u16()
}

/// The message of a log line: what follows the target (`delivery_api::cors::explain: `).
fn message(line: &str) -> &str {
    line.split_once("delivery_api::cors::explain: ")
        .map_or(line, |(_, message)| message)
}

/// What is wrong, the request's headers, the expected log message.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn each_refused_preflight_logs_one_line_naming_the_rule_and_the_fix() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "warn", &[]).await;
    let cases: [Case; 4] = [
        (
            "an origin that is not allowed",
            &[
                ("Origin", "http://127.0.0.1:4200"),
                ("Access-Control-Request-Method", "GET"),
            ],
            "preflight refused: origin \"http://127.0.0.1:4200\" is not allowed (allowed: \
             http://localhost:4200); add --allowed-origin http://127.0.0.1:4200",
        ),
        (
            "a header that is not allowed",
            &[
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "authorization,x-api-key"),
            ],
            "preflight refused: request header \"x-api-key\" is not allowed (allowed: \
             authorization, content-type, accept, x-requested-with, if-none-match, x-request-id); add \
             --allow-header x-api-key (or the page must not send it)",
        ),
        (
            "a method that is not allowed",
            &[
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "PROPFIND"),
            ],
            "preflight refused: method \"PROPFIND\" is not allowed (allowed: GET, HEAD, POST, PUT, \
             PATCH, DELETE); no flag allows other methods",
        ),
        (
            "no Access-Control-Request-Method",
            &[("Origin", ORIGIN)],
            "not a preflight: OPTIONS /delivery/all from origin \"http://localhost:4200\" has no \
             Access-Control-Request-Method, so it is answered as an ordinary request (a \
             browser's preflight always carries that header)",
        ),
    ];
    for (what, headers, expected) in cases {
        let status = options(&served, "/delivery/all", headers).await;
        assert!(status >= 400, "{what}: answered {status}");

        let line = served
            .wait_for_log_line(|l| l.contains(" WARN ") && l.contains("delivery_api::cors"))
            .await;

        assert_eq!(message(&line), expected, "{what}: {line}");
    }
}

#[tokio::test]
async fn with_auth_before_cors_the_preflight_answered_by_auth_is_logged() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "warn", &["--auth-before-cors"]).await;
    let headers = [
        ("Origin", ORIGIN),
        ("Access-Control-Request-Method", "GET"),
        (
            "Access-Control-Request-Headers",
            "authorization,content-type",
        ),
    ];

    let status = options(&served, "/delivery/all", &headers).await;

    assert_eq!(status, 401);
    let line = served
        .wait_for_log_line(|l| l.contains("delivery_api::cors"))
        .await;
    assert_eq!(
        message(&line),
        "preflight OPTIONS /delivery/all answered 401 by Basic auth: auth runs before CORS \
         (--auth-before-cors)",
        "{line}"
    );
}

/// At `info`, a line written while serving a request carries the request's span: it must say
/// what the request was, HTTPS included (it said `http.scheme=http`: the app was not told).
#[tokio::test]
async fn a_line_inside_a_request_names_the_request_and_its_scheme() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "info", &[]).await;
    let headers = [
        ("Origin", "http://elsewhere.example"),
        ("Access-Control-Request-Method", "GET"),
    ];

    assert_eq!(options(&served, "/delivery/all", &headers).await, 400);
    let line = served
        .wait_for_log_line(|l| l.contains("preflight refused"))
        .await;
    assert!(
        line.contains("http.scheme=https") && line.contains("http.method=OPTIONS"),
        "{line}"
    );
}

#[tokio::test]
async fn a_flood_of_bad_preflights_writes_a_bounded_number_of_lines() {
    const FLOOD: usize = 10_000;
    const CONNECTIONS: usize = 4;
    let dir = certs();
    let mut served = serve_binary(dir.path(), "warn", &[]).await;
    // A refused preflight, not even asking for headers.
    let refused = |api: &Api, origin: &str| {
        api.request(Method::OPTIONS, "/delivery/all", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };

    // A few keep-alive connections (one HTTP/2 connection per client), each with a few requests
    // in flight at a time. Not a benchmark: only the count of log lines matters.
    let clients: Vec<Api> = (0..CONNECTIONS).map(|_| served.fresh()).collect();
    let flooding = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for client in &clients {
            for _ in 0..4 {
                let client = client.clone();
                tasks.spawn(async move {
                    for _ in 0..FLOOD / CONNECTIONS / 4 {
                        let res = refused(&client, "http://flood.example").await;
                        assert_eq!(res.expect("sent").status(), 400);
                    }
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a flood task");
        }
        // Every flood response has arrived, and each was logged (or not) before it was sent:
        // a line for another cause, logged after them, ends what the flood could have written.
        refused(&clients[0], "http://end.example")
            .await
            .expect("sent");
    });
    // Read the log meanwhile: a server logging every refusal would otherwise block on a full
    // pipe, and this test would hang instead of failing.
    served
        .wait_for_log_line(|l| l.contains("http://end.example"))
        .await;
    flooding.await.expect("the flood");

    let lines = served
        .log
        .lines()
        .filter(|l| l.contains("origin \"http://flood.example\" is not allowed"))
        .count();
    assert!(
        (1..=5).contains(&lines),
        "{FLOOD} refusals for one cause wrote {lines} lines"
    );
}
