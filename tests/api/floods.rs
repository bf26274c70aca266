//! A flood a client controls must not become a flood in the log: the libraries' own warnings (a
//! reset HTTP/2 stream, a failed handshake) are summarised like ours, one line a minute per
//! library with a count, whatever the client sends.

use std::sync::Arc;

use crate::helpers::*;

/// CVE-2023-44487 ("rapid reset"): open a stream and cancel it at once, many times. The h2
/// library refuses the connection once too many cancelled streams wait to be accepted, and
/// writes a warning each time: one per attacking connection, before this summary.
#[tokio::test]
async fn an_http2_rapid_reset_flood_writes_one_line_not_one_per_connection() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "info", &[]).await;
    let tls = Arc::new(tls_trusting(&dir.path().join("dev-ca.crt"), &[b"h2"]));
    let connections = 20;

    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", served.port))
            .await
            .expect("tcp");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .expect("TLS");
        let (mut client, connection) = h2::client::handshake(stream).await.expect("h2");
        let driver = tokio::spawn(connection);
        for _ in 0..200 {
            let request = http::Request::get(format!("https://localhost:{}/health", served.port))
                .body(())
                .expect("request");
            let Ok(ready) = client.clone().ready().await else {
                break; // the server has had enough of this connection
            };
            client = ready;
            let Ok((_, mut stream)) = client.send_request(request, false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
        }
        // Ends when the server closes it (GOAWAY), which it does after its warning.
        let _ = driver.await;
    }
    let health = reqwest_client(&dir, served.port)
        .get(format!("https://localhost:{}/health", served.port))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200, "the server is still serving");

    // SAFETY: signalling the child this test started.
    let pid = served.child.id().expect("pid") as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let log = served.drain_log().await.to_owned();
    let resets = log.lines().filter(|l| l.contains("remotely-reset")).count();
    eprintln!("{connections} rapid-reset connections: {resets} log line(s) about it");
    assert_eq!(
        resets, 1,
        "one summary line, not one per connection:\n{log}"
    );
    assert!(
        log.contains("delivery_api::libraries"),
        "summarised as ours:\n{log}"
    );
}

fn reqwest_client(dir: &tempfile::TempDir, port: u16) -> reqwest::Client {
    client_builder(
        &dir.path().join("dev-ca.crt"),
        ([127, 0, 0, 1], port).into(),
        false,
    )
    .build()
    .expect("client")
}
