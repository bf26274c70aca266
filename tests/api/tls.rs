//! HTTPS only, with certificates that verify against the generated dev CA.

use delivery_api::startup::Application;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

#[tokio::test]
async fn the_certificate_verifies_against_the_generated_ca_for_every_local_name() {
    let app = spawn_app().await;
    // `app.client` trusts only the dev CA; localhost is resolved to the bound address.
    let res = app
        .request(Method::GET, "/health", ORIGIN)
        .send()
        .await
        .expect("verified TLS");
    assert_eq!(res.status(), 200);

    // 127.0.0.1 is in the certificate too.
    let by_ip = format!("https://127.0.0.1:{}/health", app.addr.port());
    let res = app
        .client
        .get(by_ip)
        .send()
        .await
        .expect("verified TLS by IP");
    assert_eq!(res.status(), 200);

    // A client that does not trust the dev CA refuses the server.
    let other = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(other.path()).expect("another CA");
    let stranger = client_trusting(&other.path().join("dev-ca.crt"), app.addr);
    assert!(stranger.get(app.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn plain_http_is_not_offered() {
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    // What a plain-HTTP client sees: a TLS alert record (content type 21), or just the close.
    assert!(
        reply.is_empty() || reply[0] == 21,
        "a plain-HTTP request gets a TLS alert or a closed connection, never HTTP: {:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test]
async fn a_missing_certificate_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = delivery_api::config::ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().expect("addr");
    args.db.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.tls.cert = Some(dir.path().join("missing.crt"));
    args.tls.key = Some(dir.path().join("missing.key"));

    let err = Application::build(args)
        .await
        .err()
        .expect("start-up fails");

    let message = format!("{err:#}");
    assert!(message.contains("missing.crt"), "names the file: {message}");
}
