//! Bad input of every kind gets a clear 4xx problem+json, never a 500, and every error response
//! carries the CORS headers, so the page reads the real status instead of 0.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_bodies_get_a_4xx_problem_that_says_what_is_wrong_and_nothing_is_written() {
    let app = spawn_app().await;
    let valid = json!({"reference": "DLV-2026-0099", "recipient": "Ada", "address": "1 Loop Road"});
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"reference\": ".into(),
            400,
            "malformed JSON",
        ),
        ("not an object", "[1,2]".into(), 422, "invalid delivery"),
        (
            "an array that serde would read by position",
            r#"["ARR-1", "Ana", "Rua 1", "delivered"]"#.into(),
            422,
            "expected a JSON object",
        ),
        (
            "unknown field",
            json!({"reference": "X", "recipient": "A", "address": "B", "colour": "red"})
                .to_string(),
            422,
            "colour",
        ),
        (
            "missing field",
            json!({"reference": "X", "recipient": "A"}).to_string(),
            422,
            "address",
        ),
        (
            "empty string",
            json!({"reference": "", "recipient": "A", "address": "B"}).to_string(),
            422,
            "reference",
        ),
        (
            "blank string",
            json!({"reference": "X", "recipient": "   ", "address": "B"}).to_string(),
            422,
            "recipient",
        ),
        (
            "bad status",
            json!({"reference": "X", "recipient": "A", "address": "B", "status": "lost"})
                .to_string(),
            422,
            "lost",
        ),
        (
            "wrong type",
            json!({"reference": 7, "recipient": "A", "address": "B"}).to_string(),
            422,
            "expected a string",
        ),
        (
            "too long",
            json!({"reference": "X", "recipient": "A", "address": "a".repeat(501)}).to_string(),
            422,
            "address",
        ),
        (
            "duplicate reference",
            json!({"reference": "DLV-2026-0001", "recipient": "A", "address": "B"}).to_string(),
            409,
            "DLV-2026-0001",
        ),
    ];
    for (what, body, status, mention) in cases {
        let res = app
            .article_request(Method::POST, "/delivery", ORIGIN)
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_readable_by_origin(&res, what);
        let detail = assert_problem(res, status, what).await;
        assert!(
            detail.contains(mention),
            "{what}: {detail:?} should mention {mention:?}"
        );
    }
    assert_eq!(
        app.count_deliveries().await,
        SEEDED as i64,
        "no bad input was written"
    );

    // The valid body still works afterwards: the service kept running.
    assert_eq!(app.create(&valid).await.status(), 201);
}

#[tokio::test]
async fn every_error_path_carries_the_cors_headers() {
    let app = spawn_app().await;
    let big = format!("{{\"reference\": \"{}\"}}", "x".repeat(70 * 1024));
    let cases = vec![
        (
            "401",
            app.request(Method::GET, "/delivery/all", ORIGIN),
            401,
        ),
        (
            "404 unknown id",
            app.article_request(Method::GET, "/delivery/999999", ORIGIN),
            404,
        ),
        (
            "404 id that is not a number",
            app.article_request(Method::GET, "/delivery/abc", ORIGIN),
            404,
        ),
        (
            "404 unknown route",
            app.request(Method::GET, "/nowhere", ORIGIN),
            404,
        ),
        (
            "404 PUT unknown id",
            app.article_request(Method::PUT, "/delivery/999999", ORIGIN)
                .body(json!({"reference": "Z", "recipient": "A", "address": "B"}).to_string()),
            404,
        ),
        (
            "404 DELETE unknown id",
            app.article_request(Method::DELETE, "/delivery/999999", ORIGIN),
            404,
        ),
        (
            "405",
            app.article_request(Method::PATCH, "/delivery/all", ORIGIN),
            405,
        ),
        (
            "413",
            app.article_request(Method::POST, "/delivery", ORIGIN)
                .body(big),
            413,
        ),
        (
            "415",
            app.request(Method::POST, "/delivery", ORIGIN)
                .basic_auth(USER, Some(PASSWORD))
                .header("Content-Type", "text/plain")
                .body("reference=x"),
            415,
        ),
    ];
    for (what, req, status) in cases {
        let res = req.send().await.expect("sent");
        assert_readable_by_origin(&res, what);
        if status == 405 {
            assert_eq!(
                header(res.headers(), "allow"),
                Some("GET, HEAD"),
                "405 names what is allowed"
            );
        }
        assert_problem(res, status, what).await;
    }
}

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
    let app = spawn_app().await;
    let Some(db) = app.sqlite_file("a_deleted_database_file_is_a_503_everywhere") else {
        return;
    };
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

#[tokio::test]
async fn an_origin_that_is_not_allowed_gets_no_cors_header_on_any_status() {
    let app = spawn_app().await;
    let evil = "http://localhost:4200.evil.example";
    let big = format!("{{\"reference\": \"{}\"}}", "x".repeat(70 * 1024));
    let cases = vec![
        (200, app.article_request(Method::GET, "/delivery/all", evil)),
        (
            201,
            app.article_request(Method::POST, "/delivery", evil)
                .body(json!({"reference": "E-1", "recipient": "A", "address": "B"}).to_string()),
        ),
        (401, app.request(Method::GET, "/delivery/all", evil)),
        (
            404,
            app.article_request(Method::GET, "/delivery/424242", evil),
        ),
        (
            405,
            app.article_request(Method::PATCH, "/delivery/all", evil),
        ),
        (
            413,
            app.article_request(Method::POST, "/delivery", evil)
                .body(big),
        ),
        (
            422,
            app.article_request(Method::POST, "/delivery", evil)
                .body("{}"),
        ),
        (
            204,
            app.article_request(Method::DELETE, "/delivery/1", evil),
        ),
    ];
    for (status, req) in cases {
        let res = req.send().await.expect("sent");
        assert_eq!(res.status().as_u16(), status);
        // Without Access-Control-Allow-Origin the browser lets the page read nothing. (actix-cors
        // still adds Allow-Credentials and Expose-Headers here: inert without ACAO.)
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            None,
            "{status}"
        );
        assert!(
            tokens(res.headers(), "vary").contains(&"origin".to_owned()),
            "{status}: Vary: Origin still"
        );
    }
    app.db.close().await;
    let res = app
        .article_request(Method::GET, "/delivery/all", evil)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 503);
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
}

/// POSTs `body` and PUTs it over delivery 1; returns each answer's status and detail.
async fn post_and_put(app: &TestApp, body: &serde_json::Value) -> Vec<(u16, String)> {
    let mut answers = Vec::new();
    for (method, path) in [(Method::POST, "/delivery"), (Method::PUT, "/delivery/1")] {
        let res = app
            .article_request(method, path, ORIGIN)
            .body(body.to_string())
            .send()
            .await
            .expect("sent");
        let status = res.status().as_u16();
        let detail = if status >= 400 {
            assert_problem(res, status, &body.to_string()).await
        } else {
            String::new()
        };
        answers.push((status, detail));
    }
    answers
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_422_that_names_the_field_not_malformed_json() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let base =
        json!({"reference": "TYPE-1", "recipient": "A", "address": "B", "status": "pending"});
    for field in ["status", "reference", "recipient", "address"] {
        for wrong in [
            json!(null),
            json!(5),
            json!(true),
            json!([]),
            json!({}),
            json!(1.5),
        ] {
            let mut body = base.clone();
            body[field] = wrong.clone();

            for (status, detail) in post_and_put(&app, &body).await {
                assert_eq!(status, 422, "{field}: {wrong}: {detail}");
                assert!(
                    detail.contains(&format!("`{field}`")),
                    "{field}: {wrong}: the detail names the field: {detail}"
                );
            }
        }
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");
}

#[tokio::test]
async fn text_that_is_invisible_or_carries_control_characters_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let cases = [
        ("reference", "\u{200B}"),                // zero-width space
        ("reference", " \u{200B}\u{FEFF}\t "),    // ZWSP, BOM, blanks
        ("recipient", "\u{2060}\u{00AD}"),        // word joiner, soft hyphen
        ("recipient", "\u{3164}"),                // Hangul filler
        ("address", "\u{200D}\u{200C} \u{3000}"), // joiners, ideographic space
        ("reference", "DLV\u{1b}[31m-1"),         // ESC: a terminal escape
        ("reference", "DLV\r\nX-Injected: 1"),    // CR LF
        ("reference", "DLV\0-1"),                 // NUL
        ("recipient", "Ana\nSouza"),              // LF in a name
        ("recipient", "Ana\u{7f}"),               // DEL
        ("address", "Rua Augusta\u{1b}1500"),     // ESC in an address
    ];
    for (field, value) in cases {
        let mut body = json!({"reference": "TEXT-1", "recipient": "A", "address": "B"});
        body[field] = json!(value);

        for (status, detail) in post_and_put(&app, &body).await {
            assert_eq!(status, 422, "{field} = {value:?}: {detail}");
            assert!(detail.contains(&format!("`{field}`")), "{field}: {detail}");
        }
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");
}
