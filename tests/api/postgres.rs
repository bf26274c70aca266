//! Several instances on one PostgreSQL database stay coherent, and a PostgreSQL that goes away
//! is a 503 the page can read, then recovery without a restart.
//!
//! These need PostgreSQL whatever engine the rest of the suite runs on (`helpers/pg.rs` starts
//! it); without it they are ignored, with the reason, and under `CI=true` the build fails.

use reqwest::Method;
use serde_json::json;

use crate::durability::write_until_killed;
use crate::helpers::pg;
use crate::helpers::*;

/// Two servers (A and B) on one new database of the shared cluster.
async fn two_instances() -> (TestApp, TestApp) {
    let url = pg::cluster().new_database().await;
    let a = spawn_app_with(|args| args.db.database_url = url.clone()).await;
    let b = spawn_app_with(|args| args.db.database_url = url.clone()).await;
    (a, b)
}

/// B has the login cached; the password is changed in the shared database (by `delivery-api
/// user`, as an operator would, and the change A serves from); B refuses the old password on
/// its very next request, and so does A. Then the user is removed: refused everywhere at once.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn a_password_changed_on_one_instance_is_refused_by_the_other_on_its_next_request() {
    let (a, b) = two_instances().await;
    for app in [&a, &b] {
        for _ in 0..2 {
            assert_eq!(app.get_all_as(USER, PASSWORD).await.status(), 200);
        }
    }
    assert_eq!(
        b.authenticator.verifications_run(),
        1,
        "B serves it from its cache"
    );

    let out = cli(
        &["user", "add", USER, "--password-stdin"],
        &a.db_url,
        "the-new-password\n",
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (name, app) in [("B", &b), ("A", &a)] {
        let res = app.get_all_as(USER, PASSWORD).await;
        assert_eq!(
            res.status(),
            401,
            "{name}: the old password, on the next request"
        );
        assert_readable_by_origin(&res, "401");
        let res = app.get_all_as(USER, "the-new-password").await;
        assert_eq!(res.status(), 200, "{name}: the new password");
    }

    let out = cli(&["user", "remove", USER], &b.db_url, "").await;
    assert!(out.status.success());
    for (name, app) in [("A", &a), ("B", &b)] {
        let res = app.get_all_as(USER, "the-new-password").await;
        assert_eq!(
            res.status(),
            401,
            "{name}: a removed user, on the next request"
        );
    }
}

/// A delivery created through A is in B's very next list, whose ETag changes (B's cached list
/// and its 304 are never older than a write made anywhere); a delete through B is gone from A's
/// next read of that delivery.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn a_delivery_written_through_one_instance_is_in_the_next_list_of_the_other() {
    let (a, b) = two_instances().await;
    let res = b.get_all().await;
    assert_eq!(res.status(), 200);
    let etag = header(res.headers(), "etag").expect("etag").to_owned();
    assert_eq!(json(res).await.as_array().map(Vec::len), Some(SEEDED));
    let res = b
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 304, "unchanged: B's cache answers");
    let one = b
        .article_request(Method::GET, "/delivery/1", ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(one.status(), 200, "B caches delivery 1 too");

    let res = a
        .create(&json!({"reference": "MULTI-1", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(res.status(), 201);
    let created = json(res).await;

    let res = b
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200, "the old ETag no longer matches on B");
    assert_ne!(header(res.headers(), "etag"), Some(etag.as_str()));
    assert_eq!(
        header(res.headers(), "x-total-count"),
        Some((SEEDED + 1).to_string().as_str())
    );
    let list = json(res).await;
    assert!(
        list.as_array().expect("array").contains(&created),
        "B lists A's delivery exactly as A acknowledged it"
    );

    // A change to delivery 1 through A: B's cached copy is not served.
    let res = a
        .article_request(Method::PUT, "/delivery/1", ORIGIN)
        .body(
            json!({"reference": "DLV-2026-0001", "recipient": "Changed on A", "address": "X",
                   "status": "pending"})
            .to_string(),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let one = json(
        b.article_request(Method::GET, "/delivery/1", ORIGIN)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(one["recipient"], "Changed on A");

    let id = created["id"].as_i64().expect("id");
    let res = b
        .article_request(Method::DELETE, &format!("/delivery/{id}"), ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204);
    let res = a
        .article_request(Method::GET, &format!("/delivery/{id}"), ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 404, "deleted through B, gone on A");
}

/// A is killed with `kill -9` while 16 clients write through it; B, on the same database, keeps
/// serving, and lists every write A acknowledged.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn kill_9_of_one_instance_while_writing_loses_nothing_and_the_other_keeps_serving() {
    let url = pg::cluster().new_database().await;
    let (dir_a, dir_b) = (certs(), certs());
    use_database(dir_a.path(), &url);
    use_database(dir_b.path(), &url);
    let mut a = serve_binary(dir_a.path(), "warn", &[]).await;
    let b = serve_binary(dir_b.path(), "warn", &[]).await;

    let acknowledged = write_until_killed(&mut a).await;

    let res = b.get_all().await;
    assert_eq!(res.status(), 200, "B answers");
    let listed: Vec<String> = json(res)
        .await
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["reference"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|r| !listed.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged by A are not listed by B: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    let res = b
        .create(&json!({"reference": "AFTER-A", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(res.status(), 201, "B still writes");
}

/// PostgreSQL stops while the server runs: every request that needs it gets 503 with
/// Retry-After, readable by the page (CORS headers on it), preflights are still answered; when
/// PostgreSQL is back, the server recovers by itself.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn postgres_going_away_is_a_readable_503_and_the_server_recovers_when_it_is_back() {
    let cluster = pg::PgCluster::start_private(pg::bin()); // its own: this test stops it
    let url = cluster.new_database().await;
    let app = spawn_app_with(|args| args.db.database_url = url.clone()).await;
    assert_eq!(app.get_all().await.status(), 200);

    cluster.stop();
    for what in ["GET /delivery/all", "again"] {
        let res = app.get_all().await;
        assert_eq!(res.status(), 503, "{what}");
        assert_readable_by_origin(&res, what);
        assert_eq!(header(res.headers(), "retry-after"), Some("1"), "{what}");
        assert_problem(res, 503, what).await;
    }
    // A burst of writes while it is down: one batch, all answered 503 together (not retried one
    // by one, each waiting out the connection timeout: 20 × 2 s). The bound is 10× the expected
    // few seconds, so only the one-by-one behaviour can exceed it.
    let started = std::time::Instant::now();
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let request = app.article_request(Method::POST, "/delivery", ORIGIN).body(
                json!({"reference": format!("DOWN-{i}"), "recipient": "R", "address": "A"})
                    .to_string(),
            );
            tokio::spawn(async move { request.send().await.expect("sent").status() })
        })
        .collect();
    for status in burst {
        assert_eq!(status.await.expect("task"), 503, "a write while it is down");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "20 writes took {:?}",
        started.elapsed()
    );
    let health = app.get_without_credentials("/health").await;
    assert_eq!(health.status(), 503);
    let preflight = app.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_preflight_passes(&preflight, "GET", "a preflight needs no database");

    cluster.restart();
    // Connections broken by the stop are dropped as they fail: within a few requests (at most
    // one per pooled connection), without a restart, answers are back.
    let mut failures = 0;
    loop {
        let res = app.get_all().await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 503);
        failures += 1;
        assert!(failures <= 16, "not recovered after {failures} requests");
    }
    eprintln!("recovered after {failures} more 503s");
    let res = app
        .create(&json!({"reference": "DOWN-1", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(
        res.status(),
        201,
        "the write refused while down was not made; now it is"
    );
    assert_eq!(app.get_without_credentials("/health").await.status(), 200);
}

/// `delivery-api copy-data` moves a SQLite database that was used (a new user, new and deleted
/// deliveries) to PostgreSQL: a server on the copy lists exactly what the old one did, the user
/// logs in with the same password, and a deleted id is not handed out again. A second copy into
/// the same database is refused, leaving it as it was.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn copy_data_moves_a_sqlite_database_to_postgres_as_it_was() {
    let cluster = pg::cluster();
    let dir = certs();
    let sqlite = format!("sqlite://{}", dir.path().join("old.db").display());
    let old = spawn_app_with(|args| args.db.database_url = sqlite.clone()).await;
    let out = cli(
        &["user", "add", "alice", "--password-stdin"],
        &sqlite,
        "alice-password\n",
    )
    .await;
    assert!(out.status.success());
    let mut last = 0;
    for i in 0..3 {
        let res = old
            .create(&json!({"reference": format!("OLD-{i}"), "recipient": "R", "address": "A"}))
            .await;
        last = json(res).await["id"].as_i64().expect("id");
    }
    let res = old
        .article_request(Method::DELETE, &format!("/delivery/{last}"), ORIGIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 204, "the highest id is deleted");
    let res = old.get_all().await;
    let old_etag = header(res.headers(), "etag").expect("etag").to_owned();
    let before = json(res).await;

    let target = cluster.new_database().await;
    let copy = |to: String| {
        let sqlite = sqlite.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
                .args(["copy-data", "--from", &sqlite, "--to", &to])
                .env("RUST_LOG", "off")
                .output()
                .await
                .expect("runs")
        }
    };
    let out = copy(target.clone()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("copied 2 users and 14 deliveries"), "{said}");

    let new = spawn_app_with(|args| args.db.database_url = target.clone()).await;
    assert_eq!(
        json(new.get_all().await).await,
        before,
        "the same list, ids and timestamps"
    );
    let res = new
        .article_request(Method::GET, "/delivery/all", ORIGIN)
        .header("If-None-Match", &old_etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.status(),
        200,
        "an ETag from the old database never matches in the new one"
    );
    let res = new.get_all_as("alice", "alice-password").await;
    assert_eq!(res.status(), 200, "the same password");
    let res = new
        .create(&json!({"reference": "NEW-1", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(res.status(), 201);
    let id = json(res).await["id"].as_i64().expect("id");
    assert!(
        id > last,
        "deleted id {last} is not handed out again: got {id}"
    );

    // A source that was never a delivery-api database is refused, and left as it was.
    let empty = cluster.new_database().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"))
        .args([
            "copy-data",
            "--from",
            &empty,
            "--to",
            &cluster.new_database().await,
        ])
        .env("RUST_LOG", "off")
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("never migrated"), "{stderr}");
    let untouched = sqlx::PgPool::connect(&empty).await.expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&untouched)
    .await
    .expect("count");
    assert_eq!(tables, 0, "the source was not migrated");

    let out = copy(target.clone()).await;
    assert!(!out.status.success(), "a second copy into it is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already existed"), "{stderr}");
    assert_eq!(new.count_deliveries().await, 15, "and it left it alone");
}

/// Under concurrent load (each worker's revision reads are shared by the requests waiting at one
/// time), no request sent after a password change returned is ever accepted with the old
/// password, on either instance: a request never uses a read that started before it arrived.
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn under_load_no_request_sent_after_a_password_change_is_accepted_with_the_old_one() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    const BEFORE: u8 = 0; // the CLI has not started: the old password works
    const CHANGING: u8 = 1; // while it runs, either answer is right
    const AFTER: u8 = 2; // it has returned: the old password is refused, everywhere
    let (a, b) = two_instances().await;
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let (before, after) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for (i, app) in [&a, &b].into_iter().cycle().take(16).enumerate() {
        let (request, phase, before, after) = (
            app.request(Method::GET, "/delivery/all", ORIGIN)
                .basic_auth(USER, Some(PASSWORD)),
            phase.clone(),
            before.clone(),
            after.clone(),
        );
        clients.push(tokio::spawn(async move {
            // Each client: requests in a row until 8 have been sent after the change.
            let mut sent_after = 0;
            while sent_after < 8 {
                let sent_in = phase.load(Ordering::SeqCst);
                let request = request.try_clone().expect("a plain GET");
                let status = request.send().await.expect("sent").status();
                match sent_in {
                    BEFORE => {
                        assert_eq!(status, 200, "client {i}: before the change");
                        before.fetch_add(1, Ordering::SeqCst);
                    }
                    AFTER => {
                        // Refused: 401, or 429 once the login limiter has seen enough of them.
                        assert!(
                            matches!(status.as_u16(), 401 | 429),
                            "client {i}: {status} after the change"
                        );
                        sent_after += 1;
                        after.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => assert!(
                        matches!(status.as_u16(), 200 | 401 | 429),
                        "client {i}: {status}"
                    ),
                }
            }
        }));
    }
    // Let every client get some requests through first (a condition: a count, not a time).
    while before.load(Ordering::SeqCst) < 200 && !clients.iter().any(|c| c.is_finished()) {
        tokio::task::yield_now().await; // (a client that failed early ends the wait; it fails below)
    }
    phase.store(CHANGING, Ordering::SeqCst);
    let out = cli(
        &["user", "add", USER, "--password-stdin"],
        &a.db_url,
        "changed-under-load\n",
    )
    .await;
    assert!(out.status.success());
    phase.store(AFTER, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client");
    }
    assert_eq!(after.load(Ordering::SeqCst), 16 * 8);
}

/// Two instances started at once with `--seed` on one new database: exactly one seeds it; the
/// other stops with the reason (it never replaces what the first wrote).
#[tokio::test]
#[cfg_attr(
    not(postgres),
    ignore = "needs PostgreSQL's server: apt-get install postgresql (.ci/run does), or PG_BIN=DIR"
)]
async fn two_instances_seeding_one_new_database_at_once_seed_it_once() {
    let url = pg::cluster().new_database().await;
    let dir = certs();
    let seed = dir.path().join("seed.json");
    let rows: Vec<_> = (0..50)
        .map(|i| json!({"reference": format!("SEED-{i}"), "recipient": "R", "address": "A"}))
        .collect();
    std::fs::write(&seed, json!({ "deliveries": rows }).to_string()).expect("seed file");
    let args = || {
        let mut args = delivery_api::config::ServeArgs::defaults();
        args.bind = "127.0.0.1:0".parse().expect("addr");
        args.demo.no_demo_page = true;
        args.db.database_url = url.clone();
        args.tls.cert = Some(dir.path().join(delivery_api::tls::dev_ca::SERVER_CERT));
        args.tls.key = Some(dir.path().join(delivery_api::tls::dev_ca::SERVER_KEY));
        args.harness.seed = Some(seed.clone());
        args
    };
    let (a, b) = tokio::join!(
        delivery_api::startup::Application::build(args()),
        delivery_api::startup::Application::build(args())
    );
    let refusal = match (&a, &b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => format!("{e:#}"),
        _ => panic!("exactly one seeds: {:?} / {:?}", a.is_ok(), b.is_ok()),
    };
    assert!(
        refusal.contains("already has data") || refusal.contains("not seeding over it"),
        "{refusal}"
    );
    let db = open_db(&url).await;
    assert_eq!(scalar(&db, "SELECT count(*) FROM deliveries").await, 50);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM deliveries WHERE reference LIKE 'SEED-%'"
        )
        .await,
        50
    );
}
