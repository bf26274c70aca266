//! HTTPS only: certificates that verify against the generated dev CA, no plain HTTP, and HSTS
//! (and nosniff) on every answer, preflights included.

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
