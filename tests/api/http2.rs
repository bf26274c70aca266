//! Over HTTP/2 as browsers and curl speak it, an early answer (401, 404, 405, 413, 415) reaches
//! the client as a response, not a reset stream; what HTTP/1.1 refuses, HTTP/2 refuses too.
//!
//! The server reads and discards the rest of a body up to 1 MiB (routes::bound_request_body); past
//! that, the reset RFC 9113 §8.1 allows is fine, and the connection keeps serving.

use crate::helpers::*;
use base64::Engine as _;
use bytes::Bytes;

const CHUNK: usize = 16 * 1024;

/// How the client's upload ended after the server's early answer.
#[derive(Debug, PartialEq)]
enum Upload {
    /// Every byte sent and the stream closed without a reset: what curl needs.
    Finished,
    /// The server reset the stream (with this reason) while the body was still being sent.
    Reset(h2::Reason),
}

struct Early {
    status: u16,
    body: String,
    upload: Upload,
}

/// Sends the head and the first 16 KiB of a `total`-byte body, waits for the whole response,
/// then sends the rest, as a client that writes its upload at its own pace does. Whether the
/// server reset the stream is read after a PING round trip, so any reset sent before has arrived.
async fn answer_before_body(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    total: usize,
) -> Early {
    let (client, mut connection) = app.h2().await;
    let mut ping = connection.ping_pong().expect("ping-pong handle");
    tokio::spawn(connection);

    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost:{}{path}", app.addr.port()))
        .header("content-length", total.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut client = client.ready().await.expect("ready");
    let (response, mut upload) = client
        .send_request(req.body(()).expect("request"), false)
        .expect("send head");
    let mut left = total;
    send(&mut upload, &mut left, CHUNK).expect("first chunk");

    let response = response.await.expect("a response, not a reset");
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let mut stream = response.into_body();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.expect("response body");
        let _ = stream.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }

    let mut outcome = Upload::Finished;
    while left > 0 {
        upload.reserve_capacity(CHUNK.min(left));
        match std::future::poll_fn(|cx| upload.poll_capacity(cx)).await {
            Some(Ok(n)) if n > 0 => {
                if send(&mut upload, &mut left, n).is_err() {
                    break;
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    ping.ping(h2::Ping::opaque()).await.expect("PING answered");
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    if let std::task::Poll::Ready(Ok(reason)) = upload.poll_reset(&mut cx) {
        outcome = Upload::Reset(reason);
    } else if left > 0 {
        panic!("{method} {path}: could not send the rest of the body, and no reset arrived");
    }
    Early {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        upload: outcome,
    }
}

/// Up to `n` bytes of the body; the last one ends the stream.
fn send(upload: &mut h2::SendStream<Bytes>, left: &mut usize, n: usize) -> Result<(), h2::Error> {
    let n = n.min(*left);
    *left -= n;
    upload.send_data(Bytes::from(vec![b' '; n]), *left == 0)
}

fn basic() -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {token}")
}

#[tokio::test]
async fn early_answers_reach_the_client_and_the_upload_finishes_cleanly() {
    let app = spawn_app().await;
    let auth = basic();
    let json = ("content-type", "application/json");
    // method, path, headers, body size, expected status
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, usize, u16);
    let cases: [Case; 5] = [
        (
            "POST",
            "/delivery",
            vec![("authorization", &auth), json],
            200_000,
            413,
        ),
        (
            "POST",
            "/delivery",
            vec![json, ("origin", ORIGIN)],
            60_000,
            401,
        ),
        (
            "POST",
            "/delivery",
            vec![("authorization", &auth), ("content-type", "text/plain")],
            60_000,
            415,
        ),
        (
            "POST",
            "/delivery/all",
            vec![("authorization", &auth), json],
            60_000,
            405,
        ),
        ("POST", "/nowhere", vec![json], 60_000, 404),
    ];
    for (method, path, headers, size, want) in cases {
        let early = answer_before_body(&app, method, path, &headers, size).await;
        assert_eq!(
            early.status, want,
            "{method} {path} ({size} bytes): {}",
            early.body
        );
        assert!(
            early.body.contains("\"status\""),
            "{method} {path}: problem+json, got {}",
            early.body
        );
        assert_eq!(
            early.upload,
            Upload::Finished,
            "{method} {path} ({size} bytes)"
        );
    }
    assert_eq!(
        app.count_deliveries().await,
        SEEDED as i64,
        "nothing was written"
    );
}

#[tokio::test]
async fn past_one_mib_the_stream_may_be_reset_but_the_connection_and_server_keep_serving() {
    let app = spawn_app().await;
    let auth = basic();
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let early = answer_before_body(&app, "POST", "/delivery", &headers, 3 * 1024 * 1024).await;
    assert_eq!(early.status, 413, "{}", early.body);
    // Not read: a body declared past the bound is refused at once, not downloaded and dropped.
    assert_eq!(early.upload, Upload::Reset(h2::Reason::NO_ERROR));
    let res = app.get_all().await;
    assert_eq!(res.status(), 200);
}

/// Anyone can get an early answer (a 401): one who then stops sending must not hold the stream
/// for the whole body deadline. The reset comes after the short drain time (2 s); the bound
/// below is for a broken build, far under the 60 s body deadline set here.
#[tokio::test]
async fn a_client_that_stops_sending_after_an_early_answer_is_reset_soon() {
    let app = spawn_app_with(|args| args.connections.body_timeout = 60).await;
    let (client, connection) = app.h2().await;
    tokio::spawn(connection);
    let req = http::Request::post(format!("https://localhost:{}/delivery", app.addr.port()))
        .header("content-length", "100000")
        .header("content-type", "application/json")
        .body(())
        .expect("request");
    let mut client = client.ready().await.expect("ready");
    let (response, mut upload) = client.send_request(req, false).expect("send head");
    let mut left = 100_000;
    send(&mut upload, &mut left, CHUNK).expect("first chunk");
    let response = response.await.expect("a response");
    assert_eq!(response.status(), 401);

    let reset = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        std::future::poll_fn(|cx| upload.poll_reset(cx)),
    )
    .await
    .expect("reset long before the body deadline")
    .expect("a reset, not an error");
    assert_eq!(reset, h2::Reason::NO_ERROR);
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
