//! Bounds and hostile input: every case a clear 4xx (never a 500), security headers everywhere,
//! unsafe configurations refused at start-up.

use std::time::Duration;

use delivery_api::startup::Application;
use reqwest::Method;
use reqwest::header::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

#[tokio::test]
async fn every_response_carries_hsts_and_nosniff_preflights_included() {
    let app = spawn_app().await;
    let responses = [
        app.preflight("/delivery/all", "GET", ORIGIN).await,
        app.get_all().await,
        app.get_without_credentials("/delivery/all").await,
        app.get_without_credentials("/nowhere").await,
    ];
    for res in responses {
        let h = res.headers();
        assert_eq!(
            header(h, "strict-transport-security"),
            Some("max-age=31536000"),
            "{}",
            res.status()
        );
        assert_eq!(
            header(h, "x-content-type-options"),
            Some("nosniff"),
            "{}",
            res.status()
        );
    }
}

#[tokio::test]
async fn hostile_headers_get_a_clear_4xx_and_the_service_keeps_running() {
    let app = spawn_app().await;
    // actix-http answers 431 when an HTTP/1.1 request head passes 128 KiB. (Over HTTP/2 the h2
    // crate's 16 MiB header-list default applies; actix-http does not expose it.)
    let huge = "a".repeat(200 * 1024);
    let long_origin = format!("http://{}.example", "o".repeat(6000));
    let cases: Vec<(&str, reqwest::RequestBuilder, &[u16])> = vec![
        (
            "an absurd Origin",
            app.request(Method::GET, "/delivery/all", &long_origin)
                .basic_auth(USER, Some(PASSWORD)),
            &[200],
        ),
        (
            "non-UTF-8 bytes in Authorization",
            app.request(Method::GET, "/delivery/all", ORIGIN).header(
                "Authorization",
                HeaderValue::from_bytes(b"Basic \xff\xfe\xfd").expect("obs-text"),
            ),
            &[401],
        ),
        (
            "non-UTF-8 credentials",
            app.request(Method::GET, "/delivery/all", ORIGIN)
                .header("Authorization", "Basic //79"),
            &[401],
        ),
        (
            "a huge Basic token",
            app.request(Method::GET, "/delivery/all", ORIGIN)
                .header("Authorization", format!("Basic {}", "QUFB".repeat(3000))),
            &[401],
        ),
    ];
    // A 200 KiB request head over HTTP/1.1: actix-http answers 431 once it passes 128 KiB and
    // closes while the client is still writing, so the client sees the 431 or, when the close
    // resets the connection first, only the reset. Never a served request.
    let head = format!("GET /delivery/all HTTP/1.1\r\nHost: localhost\r\nX-Big: {huge}\r\n\r\n");
    let reply = app.raw_http1(head.as_bytes()).await;
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "a 200 KiB head: {}",
        &reply[..reply.len().min(200)]
    );
    for (what, req, expected) in cases {
        let res = req.send().await.expect(what);
        let status = res.status().as_u16();
        assert!(
            expected.contains(&status),
            "{what}: got {status}, expected {expected:?}"
        );
        if what == "an absurd Origin" {
            assert_eq!(
                header(res.headers(), "access-control-allow-origin"),
                None,
                "{what}"
            );
        }
    }
    assert_eq!(app.get_all().await.status(), 200, "still serving");
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_cut() {
    let app = spawn_app_with(|args| args.connections.tls_handshake_timeout = 1).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    // The first byte of a ClientHello (a handshake record), then nothing.
    stream.write_all(&[22]).await.expect("write");
    let mut buf = [0u8; 16];
    // The bound is for a broken build; the handshake timeout is 1 s.
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the server closed the connection: {read:?}"
    );
}

#[tokio::test]
async fn a_public_bind_is_refused_while_the_demo_password_is_the_default() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let args = |bind: &str| app.args_on(bind);

    let err = Application::build(args("0.0.0.0:0"))
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("default password") && message.contains("user add demo"),
        "{message}"
    );

    // Once the password is changed, the same bind is accepted.
    let out = cli(
        &["user", "add", "demo", "--password-stdin"],
        &db,
        "a-better-password\n",
    )
    .await;
    assert!(out.status.success());
    let app2 = Application::build(args("0.0.0.0:0"))
        .await
        .expect("accepted");
    assert!(!app2.addr().ip().is_loopback());
}

#[tokio::test]
async fn conflicting_content_lengths_are_refused_over_http2_as_over_http1() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let body = r#"{"reference":"CL-1","recipient":"A","address":"B"}"#;
    let len = body.len().to_string();
    let shorter = (body.len() - 10).to_string();
    // HTTP/1.1: actix-http's parser refuses them (hyper would merge the headers, so raw bytes).
    let request = format!(
        "POST /delivery HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Basic ZGVtbzpkZW1vLXBhc3N3b3Jk\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nContent-Length: {shorter}\r\n\r\n{body}"
    );
    let reply = app.raw_http1(request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "HTTP/1.1: {reply}");
    // HTTP/2: h2 would use the first value; the app refuses.
    let headers = [
        ("authorization", "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        ("content-type", "application/json"),
        ("content-length", len.as_str()),
        ("content-length", shorter.as_str()),
    ];
    match app
        .raw(Http::Two, "POST", "/delivery", &headers, body)
        .await
    {
        Ok(res) => assert_eq!(res.status, 400, "HTTP/2: {}", res.body),
        Err(e) => panic!("HTTP/2: a 400, not a reset stream: {e}"),
    }
    // Same value twice is merely redundant (RFC 9110 §8.6) and is accepted.
    let headers = [
        ("authorization", "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        ("content-type", "application/json"),
        ("content-length", len.as_str()),
        ("content-length", len.as_str()),
    ];
    let res = app
        .raw(Http::Two, "POST", "/delivery", &headers, body)
        .await
        .expect("a response");
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        app.snapshot().await.len(),
        before.len() + 1,
        "only that one was stored"
    );
}

#[tokio::test]
async fn malformed_http1_requests_are_summarised_in_the_log_not_one_error_line_each() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(dir.path()).expect("certs");
    let mut served = serve_binary(dir.path(), "info", &[]).await;
    let tls = std::sync::Arc::new(tls_trusting(&dir.path().join("dev-ca.crt"), &[b"http/1.1"]));

    let port = served.port;
    let malformed = async |bytes: &[u8]| {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .expect("handshake");
        stream.write_all(bytes).await.expect("write");
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await; // the server closes after its 400
        assert!(
            reply.starts_with(b"HTTP/1.1 400"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
    };
    malformed(b"GARBAGE\r\n\r\n").await;
    // The first one is logged once, at WARN, with what actix-http said...
    let summary = served
        .wait_for_log_line(|line| line.contains("HTTP/1.1 connection ended in error"))
        .await;
    assert!(summary.contains("WARN"), "{summary}");
    // ... and the next ones only counted.
    for i in 0..50 {
        let bytes = format!("GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header {i}\r\n\r\n");
        malformed(bytes.as_bytes()).await;
    }
    let res = served
        .client(dir.path())
        .get(served.url("/health"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(res.status(), 200);

    served.child.start_kill().expect("kill");
    served.child.wait().await.expect("dead");
    let log = served.drain_log().await;
    let lines: Vec<_> = log
        .lines()
        .filter(|l| l.contains("connection ended in error"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one summary line for 51 bad requests:\n{log}"
    );
    assert!(
        !log.contains("ERROR"),
        "no ERROR line per bad request:\n{log}"
    );
}

#[tokio::test]
async fn a_public_bind_is_refused_when_the_default_password_cannot_be_checked() {
    let app = spawn_app().await;
    // A database whose users cannot be read: the check errs, and an error is not a "no".
    app.execute("ALTER TABLE users RENAME TO users_elsewhere")
        .await;
    let err = Application::build(app.args_on("0.0.0.0:0"))
        .await
        .err()
        .expect("refused");

    let message = format!("{err:#}");
    assert!(message.contains("cannot check"), "{message}");
}
