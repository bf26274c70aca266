//! Basic auth: every failure is a 401 the page can read (CORS headers + WWW-Authenticate).

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn failed_logins_get_401_with_a_challenge_and_cors_headers() {
    let app = spawn_app().await;
    let cases: [(&str, Option<&str>); 9] = [
        ("no Authorization header", None),
        ("wrong password", Some("Basic ZGVtbzp3cm9uZy1wYXNzd29yZA==")), // demo:wrong-password
        ("unknown user", Some("Basic bm9ib2R5OmRlbW8tcGFzc3dvcmQ=")),   // nobody:demo-password
        ("empty password", Some("Basic ZGVtbzo=")),                     // demo:
        ("no colon", Some("Basic ZGVtbw==")),                           // demo
        ("not base64", Some("Basic %%%not-base64%%%")),
        ("another scheme", Some("Bearer abc.def.ghi")),
        ("scheme only", Some("Basic")),
        (
            "user with a colon",
            Some("Basic ZDplbW86ZGVtby1wYXNzd29yZA=="),
        ), // d:emo:demo-password
    ];
    for (what, authorization) in cases {
        let mut req = app
            .request(Method::GET, "/delivery/all", ORIGIN)
            .header("Accept", ACCEPT)
            .header("Content-Type", CONTENT_TYPE);
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        let res = req.send().await.expect("sent");

        assert_readable_by_origin(&res, what);
        assert_eq!(
            header(res.headers(), "www-authenticate"),
            Some(r#"Basic realm="delivery-api", charset="UTF-8""#),
            "{what}"
        );
        assert_problem(res, 401, what).await;
    }
}

#[tokio::test]
async fn the_basic_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["Basic", "basic", "BASIC"] {
        let res = app
            .request(Method::GET, "/delivery/all", ORIGIN)
            .header(
                "Authorization",
                format!("{scheme} ZGVtbzpkZW1vLXBhc3N3b3Jk"),
            )
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn health_is_public_and_checks_the_database() {
    let app = spawn_app().await;
    let res = app.get_without_credentials("/health").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert_eq!(json(res).await, serde_json::json!({ "status": "ok" }));

    app.db.close().await;
    let res = app.get_without_credentials("/health").await;
    assert!(res.headers().contains_key("retry-after"));
    let detail = assert_problem(res, 503, "health without a database").await;
    assert!(
        !detail.contains("sqlx") && !detail.contains("Pool"),
        "no internals: {detail}"
    );
}

#[tokio::test]
async fn health_stays_public_in_the_teaching_mode_too() {
    let app = spawn_app_with(|args| args.auth_before_cors = true).await;
    let res = app.get_without_credentials("/health").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn argon2_runs_once_per_credential_not_once_per_request() {
    let app = spawn_app().await;
    for _ in 0..20 {
        assert_eq!(app.get_all().await.status(), 200);
    }
    assert_eq!(
        app.authenticator.verifications_run(),
        1,
        "one verification, then the cache"
    );

    // Wrong passwords are never cached: each one is verified (and refused).
    for _ in 0..3 {
        let res = app.get_all_as(USER, "wrong-password").await;
        assert_eq!(res.status(), 401);
    }
    assert_eq!(app.authenticator.verifications_run(), 4);
}

/// The cache never outlives a password change made by another process (`delivery-api user`):
/// the database bumps a revision in a trigger and every request reads it, so the very next request
/// after the CLI returns sees the change.
#[tokio::test]
async fn a_password_changed_from_the_cli_while_serving_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    assert_eq!(app.get_all_as(USER, PASSWORD).await.status(), 200);
    assert_eq!(
        app.get_all_as(USER, PASSWORD).await.status(),
        200,
        "served from the cache"
    );
    assert_eq!(app.authenticator.verifications_run(), 1);

    let out = cli(
        &["user", "add", USER, "--password-stdin"],
        &db,
        "a-brand-new-password\n",
    )
    .await;
    assert!(out.status.success());

    assert_eq!(
        app.get_all_as(USER, PASSWORD).await.status(),
        401,
        "the old password is dead at once"
    );
    assert_eq!(
        app.get_all_as(USER, "a-brand-new-password").await.status(),
        200
    );

    let out = cli(&["user", "remove", USER], &db, "").await;
    assert!(out.status.success());
    assert_eq!(
        app.get_all_as(USER, "a-brand-new-password").await.status(),
        401,
        "removed at once"
    );
}

#[tokio::test]
async fn names_and_passwords_match_in_any_unicode_normal_form() {
    // RFC 7617 §2.1: with charset="UTF-8" both are compared in NFC. "José" and "pässwörd" typed
    // with precomposed letters (NFC) or with combining accents (NFD) are the same credentials.
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let (name_nfc, name_nfd) = ("Jos\u{e9}", "Jose\u{301}");
    let (password_nfc, password_nfd) = ("p\u{e4}ssw\u{f6}rd-long", "pa\u{308}sswo\u{308}rd-long");

    // Added in NFD: stored in NFC.
    let out = cli(
        &["user", "add", name_nfd, "--password-stdin"],
        &db,
        &format!("{password_nfd}\n"),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<String> = on_db!(&app.db, |pool| sqlx::query_scalar(
        "SELECT name FROM users WHERE name LIKE 'Jos%'"
    )
    .fetch_all(pool)
    .await)
    .expect("names");
    assert_eq!(stored, [name_nfc], "stored in NFC");

    for (name, password) in [
        (name_nfc, password_nfc),
        (name_nfd, password_nfd),
        (name_nfc, password_nfd),
        (name_nfd, password_nfc),
    ] {
        let res = app.get_all_as(name, password).await;
        assert_eq!(res.status(), 200, "{name:?} / {password:?}");
    }
    let res = app.get_all_as(name_nfc, "passwo\u{308}rd-long").await;
    assert_eq!(res.status(), 401, "a different password is still refused");
}

/// A login check already under way (its hash read, waiting for argon2) when the password changes
/// is not shared with a request that arrives after the change: that one reads the new hash and
/// is refused, while the earlier one, which arrived before the change, is served.
#[tokio::test]
async fn a_login_check_in_flight_is_not_shared_with_a_request_after_a_password_change() {
    let app = spawn_app().await;
    let permits = app
        .authenticator
        .hold_verifications()
        .expect("every permit");
    let before = tokio::spawn(
        app.request(Method::GET, "/delivery/all", ORIGIN)
            .basic_auth(USER, Some(PASSWORD))
            .send(),
    );
    while app.authenticator.requests_in_checks() < 1 {
        tokio::task::yield_now().await; // the first request's check waits for argon2
    }
    let out = cli(
        &["user", "add", USER, "--password-stdin"],
        &app.db_url,
        "changed-while-checking\n",
    )
    .await;
    assert!(out.status.success());
    let after = tokio::spawn(
        app.request(Method::GET, "/delivery/all", ORIGIN)
            .basic_auth(USER, Some(PASSWORD))
            .send(),
    );
    while app.authenticator.requests_in_checks() < 2 {
        tokio::task::yield_now().await; // it waits too: on a check of its own (or, wrongly, the first)
    }
    drop(permits);
    let before = before.await.expect("task").expect("sent").status();
    let after = after.await.expect("task").expect("sent").status();
    assert_eq!(before, 200, "it arrived before the change");
    assert_eq!(
        after, 401,
        "it arrived after the change: the new password applies"
    );
}

/// A user name no user can have (a NUL or another control character, over 64 bytes) is a 401
/// before any database is asked: PostgreSQL would refuse a NUL in a text parameter with an error
/// (a 500), SQLite would just find no such user.
#[tokio::test]
async fn a_user_name_no_user_can_have_is_401_on_either_engine() {
    use base64::Engine as _;
    let app = spawn_app().await;
    for name in ["a\0b", "tab\there", &"x".repeat(65)] {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:some-password"));
        let res = app
            .request(Method::GET, "/delivery/all", ORIGIN)
            .header("Authorization", format!("Basic {token}"))
            .send()
            .await
            .expect("sent");
        assert_readable_by_origin(&res, "401");
        assert_problem(res, 401, name).await;
    }
    assert_eq!(
        app.get_all().await.status(),
        200,
        "and the service keeps running"
    );
}
