//! `delivery-api preflight` against this server in both orders, and against small misconfigured
//! servers made here, each failing with the right rule named.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use clap::Parser;
use delivery_api::config::{Cli, Command, PreflightArgs};
use delivery_api::preflight::{self as doctor, Report};

use crate::helpers::*;

fn args(url: &str, extra: &[&str]) -> PreflightArgs {
    let argv = ["delivery-api", "preflight", url]
        .into_iter()
        .chain(extra.iter().copied());
    match Cli::try_parse_from(argv).expect("valid flags").command {
        Some(Command::Preflight(args)) => args,
        other => panic!("not a preflight command: {other:?}"),
    }
}

fn ca(app: &TestApp) -> String {
    app.ca.display().to_string()
}

fn failures(report: &Report) -> String {
    format!("{}\n{}", report.verdict, doctor::render(report))
}

#[tokio::test]
async fn against_this_server_every_verdict_passes() {
    let app = spawn_app().await;
    for (method, path, user) in [
        ("GET", "/delivery/all", "demo:demo-password"),
        ("DELETE", "/delivery/1", "demo:demo-password"),
        ("GET", "/delivery/all", "demo:wrong"), // a 401 the page can read is a pass
    ] {
        let url = app.url(path);
        let ca = ca(&app);
        let report = doctor::run(&args(
            &url,
            &["--cacert", &ca, "-u", user, "--method", method, "--send"],
        ))
        .await
        .expect("report");
        assert!(
            report.readable,
            "{method} {path} as {user}: {}",
            failures(&report)
        );
        let preflight = report.preflight.as_ref().expect("a preflight was needed");
        assert_eq!(preflight.response.as_ref().map(|r| r.status), Some(200));
    }
}

#[tokio::test]
async fn against_auth_before_cors_it_fails_naming_the_401_preflight() {
    let app = spawn_app_with(|args| args.auth_before_cors = true).await;
    let report = doctor::run(&args(
        &app.url("/delivery/all"),
        &["--cacert", &ca(&app), "-u", "demo:demo-password"],
    ))
    .await
    .expect("report");

    assert!(!report.readable);
    assert!(report.actual.is_none(), "the browser never sends the GET");
    assert!(
        report
            .verdict
            .contains("the preflight got 401: your authentication runs before CORS"),
        "{}",
        failures(&report)
    );
}

#[tokio::test]
async fn the_binary_exits_0_only_when_a_browser_could_read_the_response() {
    let good = spawn_app().await;
    let bad = spawn_app_with(|args| args.auth_before_cors = true).await;
    // tokio's Command: a blocking wait would stall the runtime that drives both servers.
    let run = async |app: &TestApp, json: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"));
        cmd.args([
            "preflight",
            &app.url("/delivery/all"),
            "--cacert",
            &ca(app),
            "-u",
            "demo:demo-password",
        ]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().await.expect("runs")
    };

    let out = run(&good, false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS: a page on http://localhost:4200 can read the response (status 200)"),
        "{text}"
    );
    assert!(
        !text.contains("ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        "credentials are not printed: {text}"
    );

    let out = run(&bad, true).await;
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(json["readable"], false);
    assert_eq!(json["preflight"]["response"]["status"], 401, "{json:#}");
    assert!(
        !json.to_string().contains("ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        "credentials are redacted: {json:#}"
    );
}

/// A tiny plain-HTTP server answering OPTIONS and GET with fixed, misconfigured responses.
async fn misconfigured(
    preflight: fn() -> HttpResponse,
    actual: fn() -> HttpResponse,
) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        App::new().default_service(web::to(move |req: HttpRequest| async move {
            if req.method() == actix_web::http::Method::OPTIONS {
                preflight()
            } else {
                actual()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/delivery/all"), handle)
}

fn cors(
    mut res: actix_web::HttpResponseBuilder,
    headers: &[(&'static str, &'static str)],
) -> HttpResponse {
    for header in headers {
        res.insert_header(*header);
    }
    res.finish()
}

const ORIGIN_OK: (&str, &str) = ("Access-Control-Allow-Origin", "http://localhost:4200");

#[tokio::test]
async fn misconfigured_servers_fail_with_the_rule_that_they_break() {
    type Case = (
        &'static str,
        fn() -> HttpResponse,
        fn() -> HttpResponse,
        &'static [&'static str],
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "missing Allow-Headers entry",
            || {
                cors(
                    HttpResponse::NoContent(),
                    &[
                        ORIGIN_OK,
                        ("Access-Control-Allow-Methods", "GET"),
                        ("Access-Control-Allow-Headers", "content-type"),
                    ],
                )
            },
            || cors(HttpResponse::Ok(), &[ORIGIN_OK]),
            &[],
            "Access-Control-Allow-Headers lacks authorization",
        ),
        (
            "`*` with credentials",
            || {
                cors(
                    HttpResponse::Ok(),
                    &[
                        ("Access-Control-Allow-Origin", "*"),
                        ("Access-Control-Allow-Credentials", "true"),
                        ("Access-Control-Allow-Methods", "GET"),
                        (
                            "Access-Control-Allow-Headers",
                            "authorization, content-type",
                        ),
                    ],
                )
            },
            || cors(HttpResponse::Ok(), &[("Access-Control-Allow-Origin", "*")]),
            &["--with-credentials"],
            "must echo the origin, not `*`",
        ),
        (
            "wrong origin echoed",
            || {
                cors(
                    HttpResponse::Ok(),
                    &[
                        ("Access-Control-Allow-Origin", "http://localhost:3000"),
                        ("Access-Control-Allow-Methods", "GET"),
                        (
                            "Access-Control-Allow-Headers",
                            "authorization, content-type",
                        ),
                    ],
                )
            },
            || {
                cors(
                    HttpResponse::Ok(),
                    &[("Access-Control-Allow-Origin", "http://localhost:3000")],
                )
            },
            &[],
            "the server echoes the wrong origin",
        ),
        (
            "401 without CORS headers",
            || {
                cors(
                    HttpResponse::Ok(),
                    &[
                        ORIGIN_OK,
                        ("Access-Control-Allow-Methods", "GET"),
                        (
                            "Access-Control-Allow-Headers",
                            "authorization, content-type",
                        ),
                    ],
                )
            },
            || {
                cors(
                    HttpResponse::Unauthorized(),
                    &[("WWW-Authenticate", "Basic realm=\"x\"")],
                )
            },
            &[],
            "sees status 0 instead of 401",
        ),
        (
            "3xx redirect on the preflight",
            || {
                cors(
                    HttpResponse::MovedPermanently(),
                    &[
                        ("Location", "https://example.invalid/delivery/all"),
                        ORIGIN_OK,
                    ],
                )
            },
            || cors(HttpResponse::Ok(), &[ORIGIN_OK]),
            &[],
            "browsers never follow redirects on a preflight",
        ),
        (
            "`*` in Allow-Headers",
            || {
                cors(
                    HttpResponse::Ok(),
                    &[
                        ORIGIN_OK,
                        ("Access-Control-Allow-Methods", "GET"),
                        ("Access-Control-Allow-Headers", "*"),
                    ],
                )
            },
            || cors(HttpResponse::Ok(), &[ORIGIN_OK]),
            &[],
            "the wildcard never covers Authorization",
        ),
    ];
    for (what, preflight, actual, extra, rule) in cases {
        let (url, handle) = misconfigured(preflight, actual).await;
        let report = doctor::run(&args(&url, extra)).await.expect("report");
        handle.stop(false).await;

        assert!(!report.readable, "{what}: {}", failures(&report));
        assert!(
            report.verdict.contains(rule),
            "{what}: expected {rule:?} in\n{}",
            failures(&report)
        );
    }
}

#[tokio::test]
async fn header_flags_replace_or_remove_the_articles_defaults() {
    let a = args(
        "https://localhost:8443/delivery/all",
        &["-H", "content-type: text/plain", "-H", "Authorization:"],
    );
    let req = doctor::cors_request(&a).expect("request");
    assert_eq!(req.headers.len(), 2, "{:?}", req.headers);
    assert!(
        req.headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "text/plain")
    );
    assert!(
        delivery_api::fetch::preflight_reasons(&req).is_empty(),
        "now a simple request"
    );
}

/// Runs `delivery-api preflight ARGS` (tokio's process API: the test's servers keep running).
async fn doctor_binary(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .arg("preflight")
        .args(args)
        .output()
        .await
        .expect("runs")
}

#[tokio::test]
async fn usage_errors_exit_2_with_the_reason_and_send_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").expect("write");
    let not_pem = not_pem.display().to_string();
    // Nothing listens on port 9 (discard): a usage error must come before any connection.
    let url = "https://localhost:9/delivery/all";
    let cases: [(&str, &[&str], &str); 9] = [
        (
            "no scheme",
            &["localhost:9/delivery/all"],
            "is not an http(s) URL",
        ),
        (
            "not http(s)",
            &["ftp://localhost/delivery/all"],
            "is not an http(s) URL",
        ),
        (
            "origin with a path",
            &[url, "--origin", "http://localhost:4200/app"],
            "no path",
        ),
        (
            "origin with a trailing slash",
            &[url, "--origin", "http://localhost:4200/"],
            "not even a trailing slash",
        ),
        (
            "origin without a scheme",
            &[url, "--origin", "localhost:4200"],
            "no scheme",
        ),
        (
            "origin not as a browser writes it",
            &[url, "--origin", "http://LOCALHOST:4200"],
            "a browser sends it as http://localhost:4200",
        ),
        (
            "a --cacert without a certificate",
            &[url, "--cacert", &not_pem],
            "holds no PEM certificate",
        ),
        (
            "an invalid method",
            &[url, "--method", "GE T"],
            "is not an HTTP method",
        ),
        (
            "a method fetch() never sends",
            &[url, "--method", "TRACE"],
            "forbidden method",
        ),
    ];
    for (what, args, reason) in cases {
        let out = doctor_binary(args).await;

        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{what}: expected {reason:?} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{what}: no report");
    }
    let help = doctor_binary(&["--help"]).await;
    let help = String::from_utf8_lossy(&help.stdout);
    for code in [
        "0  a browser would let",
        "1  a browser would block",
        "2  usage error",
        "3  the preflight passes",
    ] {
        assert!(
            help.contains(code),
            "--help documents exit {code:?}: {help}"
        );
    }
}

#[tokio::test]
async fn an_unsafe_method_is_sent_only_with_send() {
    let app = spawn_app().await;
    let url = app.url("/delivery/1");
    let ca = ca(&app);
    let before = app.count_deliveries().await;
    let flags = [
        "--cacert",
        ca.as_str(),
        "-u",
        "demo:demo-password",
        "--method",
        "DELETE",
    ];

    let report = doctor::run(&args(&url, &flags)).await.expect("report");

    assert_eq!(app.count_deliveries().await, before, "nothing was deleted");
    assert!(report.actual.is_none(), "{}", failures(&report));
    assert!(report.verdict.contains("pass --send"), "{}", report.verdict);
    let text = doctor::render(&report);
    assert!(
        text.contains("Actual request: not sent (DELETE is not GET or HEAD"),
        "{text}"
    );
    let out = doctor_binary(&[url.as_str(), "--cacert", &ca, "--method", "DELETE"]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(app.count_deliveries().await, before, "nor by the binary");

    let sent = [&flags[..], &["--send"]].concat();
    let report = doctor::run(&args(&url, &sent)).await.expect("report");

    assert!(report.readable, "{}", failures(&report));
    assert_eq!(
        app.count_deliveries().await,
        before - 1,
        "--send sent the DELETE"
    );
}

#[tokio::test]
async fn a_server_without_cors_gets_that_verdict_and_no_extra_failures() {
    let (url, handle) = misconfigured(
        || HttpResponse::Ok().finish(),
        || HttpResponse::Ok().finish(),
    )
    .await;

    let preflighted = doctor::run(&args(&url, &[])).await.expect("report");
    // Without Authorization and with a safelisted Content-Type: a simple request, no preflight.
    let simple = doctor::run(&args(
        &url,
        &["-H", "Authorization:", "-H", "Content-Type: text/plain"],
    ))
    .await
    .expect("report");
    handle.stop(false).await;

    for (what, report) in [("preflighted", &preflighted), ("simple", &simple)] {
        assert!(!report.readable, "{what}");
        assert!(
            report
                .verdict
                .contains("The server sent no CORS headers at all (status 200)"),
            "{what}: {}",
            failures(report)
        );
    }
    assert!(
        simple.preflight.is_none(),
        "a simple request has no preflight"
    );
    // The preflight fails once, at Allow-Origin; what depends on it is "not reached".
    let text = doctor::render(&preflighted);
    assert_eq!(
        text.matches("FAIL").count(),
        2,
        "one FAIL and the verdict: {text}"
    );
    assert!(
        text.contains("not reached: Access-Control-Allow-Headers includes authorization"),
        "{text}"
    );
}
