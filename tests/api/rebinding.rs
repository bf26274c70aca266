//! The plain-HTTP servers beside the API (the demo page, the metrics) answer only to names that
//! cannot be rebound: `localhost` or an IP address, with their port. A page on another site that
//! points its own DNS name at 127.0.0.1 (DNS rebinding) gets 421, not the page or the metrics.

use crate::helpers::*;

/// A request to `url` (plain HTTP) that names `host` in its `Host` header: (status, body).
async fn with_host(url: &str, host: &str) -> (u16, String) {
    let url = url::Url::parse(url).expect("url");
    let addr = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().expect("port")
    );
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        url.path()
    );
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, response)
}

#[tokio::test]
async fn the_demo_page_and_the_metrics_refuse_a_rebound_name_with_421() {
    let app = spawn_app_with_page(|args, _| {
        args.operating.metrics_bind = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let page = app.page.clone().expect("a demo page");
    let metrics = app.metrics.clone().expect("metrics");
    let port = |url: &str| url::Url::parse(url).expect("url").port().expect("port");

    for (what, url) in [("demo page", page.as_str()), ("metrics", metrics.as_str())] {
        let port = port(url);
        for host in [
            format!("attacker.example:{port}"),
            format!("127.0.0.1.nip.io:{port}"),
            format!("localhost:{}", port + 1),
        ] {
            let (status, body) = with_host(url, &host).await;
            assert_eq!(status, 421, "{what} with Host {host}: {body}");
        }
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ] {
            let (status, body) = with_host(url, &host).await;
            assert_eq!(status, 200, "{what} with Host {host}: {body}");
        }
    }
}
