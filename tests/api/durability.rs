//! Nothing acknowledged is lost: every 201 survives `kill -9` in the middle of a burst of writes,
//! and SIGTERM or SIGINT (Ctrl-C) stop the server only after the requests in flight are answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = certs();
    let mut served = serve_binary(dir.path(), "warn", &[]).await;
    let acknowledged = write_until_killed(&mut served).await;

    // Restart on the same file (this also runs SQLite's WAL recovery).
    let served = serve_binary(dir.path(), "warn", &[]).await;
    let db = open_db(&database_url(dir.path()).await).await;
    let stored: Vec<String> = on_db!(&db, |pool| sqlx::query_scalar(
        "SELECT reference FROM deliveries WHERE reference LIKE 'KILL-%'"
    )
    .fetch_all(pool)
    .await)
    .expect("read");
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|r| !stored.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    eprintln!(
        "{} acknowledged writes before kill -9, all present after restart",
        acknowledged.len()
    );
    drop(served);
}

/// 16 writers POST in a loop to `served` until it dies under them: `kill -9` after a "random"
/// number (20 to 119) of acknowledged writes, a condition rather than a time, so it holds on a
/// loaded machine, with writes in flight at the moment of the kill. Returns every reference the
/// server acknowledged with 201.
pub async fn write_until_killed(served: &mut Served) -> Vec<String> {
    let api = served.fresh();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let progress = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for w in 0..16 {
        let (api, acknowledged, progress) = (api.clone(), acknowledged.clone(), progress.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let reference = format!("KILL-{w}-{i}");
                let res = api
                    .article_request(Method::POST, "/delivery", ORIGIN)
                    .body(
                        json!({"reference": reference, "recipient": "R", "address": "A"})
                            .to_string(),
                    )
                    .send()
                    .await;
                match res {
                    Ok(res) if res.status() == 201 => {
                        acknowledged.lock().expect("lock").push(reference);
                        progress.notify_one();
                    }
                    Ok(res) => assert!(res.status().is_success(), "unexpected {}", res.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    let target = 20 + std::process::id() as usize % 100;
    while acknowledged.lock().expect("lock").len() < target {
        progress.notified().await;
    }
    served.child.start_kill().expect("SIGKILL");
    served.child.wait().await.expect("dead");
    for w in writers {
        w.await.expect("writer");
    }
    // At least `target`: the wait above ended there, and the list only grows.
    acknowledged.lock().expect("lock").clone()
}

/// A request the server has started on (head sent, body not yet) when `signal` arrives.
async fn in_flight_when_signalled(signal: &str) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = certs();
    let mut served = serve_binary(dir.path(), "info", &["--shutdown-grace", "30"]).await;
    // The server answers (so it is past start-up, signal handlers included).
    let probe = served.fresh();
    let health = probe.get_without_credentials("/health").await;
    assert_eq!(health.status(), 200);
    // Its idle HTTP/2 connection would hold the graceful stop for the whole grace period
    // (actix-http drains idle HTTP/1.1 connections at once, not HTTP/2 ones): close it.
    drop((health, probe));

    let mut stream = served.tls(&[b"http/1.1"]).await;
    let body =
        json!({"reference": format!("IN-FLIGHT-{signal}"), "recipient": "R", "address": "A"})
            .to_string();
    // `Expect: 100-continue`: the server says "100 Continue" once it has parsed the head and
    // started on the request. Waiting for it (a condition) makes the request surely in flight.
    let head = format!(
        "POST /delivery HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Basic ZGVtbzpkZW1vLXBhc3N3b3Jk\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.flush().await.expect("flush");
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(1))), "100 Continue: {read:?}");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );

    let pid = served.child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .await
        .expect("kill");
    assert!(status.success());
    served
        .wait_for_log_line(|line| line.contains(&format!("{signal} received")))
        .await;

    // The request in flight is finished and answered...
    stream.write_all(body.as_bytes()).await.expect("the body");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 201"), "{signal}: {reply}");
    // ... then the process exits cleanly, no longer accepting.
    let exit = tokio::time::timeout(Duration::from_secs(60), served.child.wait())
        .await
        .expect("exits once the request is done")
        .expect("status");
    assert!(
        exit.success(),
        "{signal}: {exit:?}\n{}",
        served.drain_log().await
    );
    assert!(
        tokio::net::TcpStream::connect(served.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_cleanly() {
    in_flight_when_signalled("TERM").await;
}

#[tokio::test]
async fn sigint_is_graceful_too() {
    in_flight_when_signalled("INT").await;
}
