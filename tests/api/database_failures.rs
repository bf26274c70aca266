//! When the database fails (locked, its file gone, its schema broken, the disk full) the page can
//! read why, nothing acknowledged is lost or half-written, and the server recovers by itself.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_database_failure_is_a_503_the_page_can_read_not_a_500() {
    let app = spawn_app().await;
    // Another writer holds the write lock longer than the busy timeout.
    let app = app.restart(|args| args.db.db_busy_timeout_ms = 200).await;
    // SQLite: the database's write lock. PostgreSQL: the lock on the deliveries revision row,
    // which every write to deliveries updates (its trigger), so the wait ends at lock_timeout.
    on_db!(&app.db, |pool| {
        let mut locker = pool.begin().await.expect("tx");
        sqlx::query(
            "INSERT INTO deliveries (reference, recipient, address) VALUES ('LOCK', 'L', 'L')",
        )
        .execute(&mut *locker)
        .await
        .expect("holds the write lock");

        let res = app
            .create(&json!({"reference": "DLV-X", "recipient": "A", "address": "B"}))
            .await;

        assert_readable_by_origin(&res, "503");
        assert_eq!(header(res.headers(), "retry-after"), Some("1"));
        assert_problem(res, 503, "locked").await;
        locker.rollback().await.expect("rollback");
    });

    // Once the lock is gone, it works again by itself.
    let res = app
        .create(&json!({"reference": "DLV-X", "recipient": "A", "address": "B"}))
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn an_internal_error_is_a_500_problem_with_cors_headers_and_no_internals() {
    let app = spawn_app().await;
    // A schema that is broken beyond "temporarily unavailable".
    app.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
        .await;

    let res = app.get_all().await;

    assert_readable_by_origin(&res, "500");
    let detail = assert_problem(res, 500, "500").await;
    assert!(
        !detail.contains("deliveries"),
        "no SQL in the body: {detail}"
    );
    // The service keeps running.
    let res = app.get_without_credentials("/nowhere").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_deleted_database_file_is_a_503_everywhere_and_recovers_when_it_is_back() {
    sqlite_only();
    let app = spawn_app().await;
    let db = app.dir.path().join("test.db");
    assert_eq!(app.get_all().await.status(), 200);
    let aside = app.dir.path().join("test.db.aside");
    std::fs::rename(&db, &aside).expect("move the file away");

    let res = app
        .create(&json!({"reference": "GHOST", "recipient": "A", "address": "B"}))
        .await;
    assert_readable_by_origin(&res, "503");
    let detail = assert_problem(res, 503, "write without the file").await;
    assert!(
        !detail.contains("test.db"),
        "no internals in the body: {detail}"
    );
    let health = app.get_without_credentials("/health").await;
    assert_problem(health, 503, "health without the file").await;
    assert_eq!(
        app.get_all().await.status(),
        503,
        "no answers from a ghost file"
    );

    // The fault is gone: the service recovers by itself, and the refused write was not made.
    std::fs::rename(&aside, &db).expect("restore");
    assert_eq!(app.get_all().await.status(), 200);
    let health = app.get_without_credentials("/health").await;
    assert_eq!(health.status(), 200);
    let ghost = app
        .scalar("SELECT count(*) FROM deliveries WHERE reference = 'GHOST'")
        .await;
    assert_eq!(ghost, 0);
}

/// ~450 characters (the limit is 500); with [`RECIPIENT`], a ~900-byte row as in the report.
fn address(tag: &str) -> String {
    format!("{tag}{}", " Long Street 1,".repeat(29))
}

const RECIPIENT: &str = "Recipient with a long name ............................................................................................................................................................................................................................................................................................................................................................................................................................................";

/// The file-size limit (RLIMIT_FSIZE) of a running process, set from outside: writes past it
/// fail with EFBIG, as on a full disk (SQLite reports SQLITE_IOERR_WRITE for it, SQLITE_FULL for
/// ENOSPC). No root needed, and it can be lifted again while the process runs.
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (null old-limit pointer).
    let done = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// A full disk under the real binary: every write is either acknowledged and stored, or refused
/// (507/503 problem+json the page can read) and not stored; writing works again once space is
/// freed, without a restart. (The defect this guards against: `INSERT … RETURNING` read with
/// `fetch_one` handed the row back before the implicit COMMIT failed, so 1,440 of 1,500 POSTs on
/// a full disk were answered 201 and never stored, and their ids were handed out again later.)
#[tokio::test]
async fn on_a_full_disk_every_acknowledged_write_is_stored_and_writing_recovers() {
    // Arrange: the real binary, which ignores SIGXFSZ itself (so a write past the limit fails
    // with EFBIG instead of killing it: the test does not set that up for it), then a file-size
    // limit just above its files' sizes.
    sqlite_only();
    let dir = certs();
    let mut served = serve_binary_with(dir.path(), "warn", &[], |_| {}).await;
    let pid = served.child.id().expect("pid");
    let db = dir.path().join("test.db");
    let wal = dir.path().join("test.db-wal");
    let largest = file_len(&db).max(file_len(&wal));
    limit_file_size(pid, Some(largest + 96 * 1024));

    // Act: POST (and now and then PUT delivery 1) until the disk has refused 20 writes.
    let mut stored = BTreeMap::<String, (i64, String)>::new(); // reference -> (id, address)
    let mut refused = Vec::<String>::new();
    let mut put_acknowledged: Option<String> = None;
    let mut put_refused = 0;
    let mut i = 0;
    while refused.len() < 20 {
        i += 1;
        assert!(i < 5000, "the limit never filled: {} stored", stored.len());
        let reference = format!("FULL-{i}");
        let body =
            json!({"reference": reference, "recipient": RECIPIENT, "address": address(&reference)});
        let res = served.create(&body).await;
        match res.status().as_u16() {
            201 => {
                let created = json(res).await;
                let id = created["id"].as_i64().expect("id");
                assert!(
                    stored.values().all(|(other, _)| *other != id),
                    "id {id} handed out twice"
                );
                stored.insert(reference.clone(), (id, address(&reference)));
            }
            status => {
                assert_readable_by_origin(&res, "a refused write");
                assert!(
                    status == 507 || status == 503,
                    "a full disk is 507 or 503, got {status}"
                );
                assert_problem(res, status, "a refused write").await;
                refused.push(reference.clone());
            }
        }
        if i % 3 == 0 {
            let update = format!("PUT-{i}");
            let res = served
                .article_request(Method::PUT, "/delivery/1", ORIGIN)
                .body(
                    json!({"reference": "DLV-2026-0001", "recipient": "R", "address": update,
                           "status": "pending"})
                    .to_string(),
                )
                .send()
                .await
                .expect("an answer");
            match res.status().as_u16() {
                200 => put_acknowledged = Some(update),
                507 | 503 => put_refused += 1,
                other => panic!("PUT on a full disk: {other}"),
            }
        }
    }
    assert!(stored.len() > 2, "some writes fit before the disk filled");
    assert!(put_refused > 0, "the disk refused PUTs too");

    // Space is freed: the next write works, without a restart, under a new id.
    limit_file_size(pid, None);
    let res = served
        .create(&json!({"reference": "AFTER", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(res.status(), 201, "writing recovers once there is space");
    let after = json(res).await["id"].as_i64().expect("id");
    let highest = stored.values().map(|(id, _)| *id).max().expect("some");
    assert!(
        after > highest,
        "a new id ({after}), never one handed out before (up to {highest})"
    );
    let res = served
        .article_request(Method::GET, &format!("/delivery/{highest}"), ORIGIN)
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), 200, "an acknowledged id is readable");

    // Assert, in the file itself: exactly what was acknowledged is there.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open");
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, reference, address FROM deliveries WHERE reference LIKE 'FULL-%'",
    )
    .fetch_all(&pool)
    .await
    .expect("read");
    let in_file: BTreeMap<String, (i64, String)> =
        rows.into_iter().map(|(id, r, a)| (r, (id, a))).collect();
    assert_eq!(
        in_file, stored,
        "every acknowledged write, and nothing refused, is in the database"
    );
    let first: String = sqlx::query_scalar("SELECT address FROM deliveries WHERE id = 1")
        .fetch_one(&pool)
        .await
        .expect("read");
    let expected = put_acknowledged.unwrap_or_else(|| "Rua Augusta".into());
    assert!(
        first.starts_with(&expected),
        "delivery 1 holds the last acknowledged PUT ({expected}), got {first}"
    );

    // The cause was logged, once: not one line per refused write.
    served.child.start_kill().expect("kill");
    served.child.wait().await.expect("dead");
    let log = served.drain_log().await;
    let lines = log
        .lines()
        .filter(|l| l.contains("database unavailable") || l.contains("disk is full"))
        .count();
    assert_eq!(
        lines,
        1,
        "one log line for {} refusals:\n{log}",
        refused.len()
    );
}

/// All of the pool's connections, held at once, so a per-connection PRAGMA reaches each.
async fn set_max_page_count(pool: &sqlx::SqlitePool, pages: i64) {
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.expect("a connection"));
    }
    for conn in &mut held {
        // PRAGMA takes no bind parameters; `pages` is an i64 we computed.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {pages}"
        )))
        .execute(&mut **conn)
        .await
        .expect("pragma");
    }
}

/// Caps the SQLite database a few pages above its size and creates deliveries until one is
/// refused; returns that refusal (a 507, for tests that look at its form). SQLite only.
pub async fn fill_the_database(app: &TestApp) -> reqwest::Response {
    let pool = app.sqlite_pool();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await
        .expect("page count");
    set_max_page_count(pool, pages + 4).await;
    for i in 0..200 {
        let reference = format!("FILL-{i}");
        let res = app
            .create(&json!({"reference": reference, "recipient": RECIPIENT, "address": address(&reference)}))
            .await;
        if res.status() != 201 {
            return res;
        }
    }
    panic!("200 deliveries fitted in 4 pages")
}

#[tokio::test]
async fn a_database_that_cannot_grow_answers_507_and_stores_nothing_until_it_can() {
    sqlite_only();
    let app = spawn_app().await;
    let pool = app.sqlite_pool();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(pool)
        .await
        .expect("page count");
    set_max_page_count(pool, pages + 4).await;

    let mut acknowledged = Vec::new();
    let mut refusals = 0;
    for i in 0..200 {
        let reference = format!("PAGE-{i}");
        let res = app
            .create(&json!({"reference": reference, "recipient": RECIPIENT, "address": address(&reference)}))
            .await;
        if res.status() == 201 {
            acknowledged.push(reference);
            continue;
        }
        assert_readable_by_origin(&res, "507");
        let detail = assert_problem(res, 507, "a full database").await;
        assert!(detail.contains("nothing was changed"), "{detail}");
        refusals += 1;
        if refusals == 5 {
            break;
        }
    }
    assert_eq!(refusals, 5, "the page limit was reached");
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT reference FROM deliveries WHERE reference LIKE 'PAGE-%' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("read");
    assert_eq!(stored, acknowledged, "exactly the acknowledged writes");

    set_max_page_count(pool, 1_000_000).await;
    let res = app
        .create(&json!({"reference": "PAGE-AFTER", "recipient": "R", "address": "A"}))
        .await;
    assert_eq!(res.status(), 201, "writes work again without a restart");
}
