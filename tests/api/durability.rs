//! Nothing acknowledged is lost: a burst of concurrent POSTs, `kill -9` at a random moment, a
//! restart on the same file, and every 201 is there. And SIGTERM stops the server cleanly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(dir.path()).expect("certs");
    let mut served = serve_binary(dir.path(), "warn", &[]).await;
    let client = served.client(dir.path());
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    // 16 writers, each POSTing in a loop until the server dies under them.
    let mut writers = Vec::new();
    for w in 0..16 {
        let (client, url, acknowledged) = (
            client.clone(),
            served.url("/delivery"),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let reference = format!("KILL-{w}-{i}");
                let res = client
                    .post(&url)
                    .basic_auth(USER, Some(PASSWORD))
                    .header("Content-Type", "application/json")
                    .body(
                        json!({"reference": reference, "recipient": "R", "address": "A"})
                            .to_string(),
                    )
                    .send()
                    .await;
                match res {
                    Ok(res) if res.status() == 201 => {
                        acknowledged.lock().expect("lock").push(reference)
                    }
                    Ok(res) => assert!(res.status().is_success(), "unexpected {}", res.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // A "random" moment between 300 and 1300 ms into the burst.
    let jitter = Instant::now().elapsed().subsec_nanos() as u64 % 1000;
    tokio::time::sleep(Duration::from_millis(300 + jitter)).await;
    served.child.start_kill().expect("SIGKILL");
    served.child.wait().await.expect("dead");
    for w in writers {
        w.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 10,
        "the burst wrote something: {}",
        acknowledged.len()
    );

    // Restart on the same file (this also runs SQLite's WAL recovery).
    let served = serve_binary(dir.path(), "warn", &[]).await;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("test.db").display()
    ))
    .await
    .expect("open");
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT reference FROM deliveries WHERE reference LIKE 'KILL-%'")
            .fetch_all(&pool)
            .await
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

#[tokio::test]
async fn sigterm_stops_accepting_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    delivery_api::tls::dev_ca::generate(dir.path()).expect("certs");
    let mut served = serve_binary(dir.path(), "info", &["--shutdown-grace", "2"]).await;
    let client = served.client(dir.path());
    // Requests in flight while the signal arrives all get a real answer.
    let inflight: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), served.url("/delivery/all"));
            tokio::spawn(async move {
                client
                    .get(url)
                    .basic_auth(USER, Some(PASSWORD))
                    .send()
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pid = served.child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(status.success());

    for request in inflight {
        if let Ok(res) = request.await.expect("task") {
            assert!(
                res.status() == 200 || res.status() == 401,
                "{}",
                res.status()
            );
        }
    }
    drop(client);
    let exit = tokio::time::timeout(Duration::from_secs(10), served.child.wait())
        .await
        .expect("exits within the grace period")
        .expect("status");
    assert!(
        exit.success(),
        "exit status {exit:?}\n{}",
        served.drain_log().await
    );
    let log = served.drain_log().await;
    assert!(log.contains("SIGTERM") || log.contains("graceful"), "{log}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", served.port))
            .await
            .is_err(),
        "no longer accepting"
    );
}
