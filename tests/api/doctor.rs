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
    app.dir.path().join("dev-ca.crt").display().to_string()
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
            &["--cacert", &ca, "-u", user, "--method", method],
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
        delivery_api::preflight::rules::preflight_reasons(&req).is_empty(),
        "now a simple request"
    );
}
