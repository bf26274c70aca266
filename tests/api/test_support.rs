//! `--test-support` used the way a Playwright or Cypress suite uses it: the seed back between two
//! tests, a readable 503 and a delay asked for with `Prefer` (and `Vary: Prefer` on what a
//! `Prefer` could change), a request found in the log by its id; off by default (the header does nothing, the admin endpoints do not exist), and refused on
//! a public bind.
//!
//! Each test runs on both engines; the reset test also with a second instance on the same
//! database, whose cached list must not outlive the reset.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn spawn_with_test_support() -> TestApp {
    spawn_app_with(|args| args.harness.test_support = true).await
}

/// The admin bind's URL for `path` (`/reset`, `/requests…`).
fn admin(app: &TestApp, path: &str) -> String {
    let base = app
        .test_support
        .as_deref()
        .expect("--test-support's admin bind");
    format!("{base}{path}")
}

/// `POST /reset` as a test's `beforeEach` sends it (no Origin: not a page).
async fn reset(app: &TestApp) -> Value {
    let res = app
        .client
        .post(admin(app, "/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(res.status(), 200, "POST /reset");
    json(res).await
}

async fn logged(app: &TestApp, query: &str) -> Vec<Value> {
    let res = (app.client.get(admin(app, &format!("/requests{query}"))))
        .send()
        .await
        .expect("GET /requests");
    assert_eq!(res.status(), 200, "GET /requests{query}");
    json(res).await.as_array().expect("an array").clone()
}

async fn list_body(app: &Api) -> (String, String) {
    let res = app.get_all().await;
    assert_eq!(res.status(), 200);
    let etag = header(res.headers(), "etag").expect("an ETag").to_owned();
    (res.text().await.expect("body"), etag)
}

#[tokio::test]
async fn a_reset_between_two_tests_brings_the_seed_back_on_every_instance() {
    let app = spawn_with_test_support().await;
    // A second instance on the same database (on PostgreSQL: the multi-instance set-up).
    let url = app.db_url.clone();
    let other = spawn_app_with(move |args| args.db.database_url = url).await;
    let (seeded, seeded_etag) = list_body(&app).await;

    // "Test 1" changes the data, and both instances cache the changed list.
    let created = app
        .create(&json!({"reference": "E2E-1", "recipient": "Test", "address": "Here 1"}))
        .await;
    assert_eq!(created.status(), 201);
    let deleted = (app.article_request(Method::DELETE, "/delivery/1", ORIGIN))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);
    let (changed, changed_etag) = list_body(&app).await;
    assert_ne!(changed, seeded);
    assert_eq!(
        list_body(&other).await.0,
        changed,
        "the other instance sees it too"
    );

    // Between the tests.
    let restored = reset(&app).await;
    assert_eq!(restored, json!({"deliveries": SEEDED, "users": 0}));

    // "Test 2" starts from the seed, on either instance, and no old ETag matches.
    for api in [&*app, &*other] {
        let (list, etag) = list_body(api).await;
        assert_eq!(list, seeded, "the seed again, ids from 1");
        assert!(etag != changed_etag && etag != seeded_etag, "{etag}");
        let stale = (api.article_request(Method::GET, "/delivery/all", ORIGIN))
            .header("If-None-Match", &changed_etag)
            .send()
            .await
            .expect("GET");
        assert_eq!(stale.status(), 200, "not 304 for the list before the reset");
    }
    let next = app
        .create(&json!({"reference": "E2E-1", "recipient": "Test", "address": "Here 1"}))
        .await;
    assert_eq!(
        json(next).await["id"],
        SEEDED + 1,
        "ids go on from the seed"
    );
}

#[tokio::test]
async fn a_seeded_server_resets_to_its_seed_file_users_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed.json");
    let file = json!({
        "deliveries": [
            {"reference": "SEED-1", "recipient": "Ana", "address": "Rua 1"},
            {"reference": "SEED-2", "recipient": "Bo", "address": "Gata 2", "status": "delivered"},
        ],
        "users": [{"name": "tester", "password": "a long test password"}],
    });
    std::fs::write(&seed, file.to_string()).expect("seed file");
    let app = spawn_app_with(|args| {
        args.harness.test_support = true;
        args.harness.seed = Some(seed);
    })
    .await;
    let as_tester = || {
        (app.request(Method::GET, "/delivery/all", ORIGIN))
            .basic_auth("tester", Some("a long test password"))
            .send()
    };
    let before = json(as_tester().await.expect("GET")).await;
    let created = (app.request(Method::POST, "/delivery", ORIGIN))
        .basic_auth("tester", Some("a long test password"))
        .json(&json!({"reference": "E2E-2", "recipient": "Cy", "address": "Via 3"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);

    assert_eq!(reset(&app).await, json!({"deliveries": 2, "users": 1}));

    let after = as_tester().await.expect("GET");
    assert_eq!(
        after.status(),
        200,
        "the seed's user logs in after the reset"
    );
    // The seed's rows again, ids from 1; their timestamps are the reset's, as they were the
    // start's (a seed file has none).
    assert_eq!(
        without_timestamps(&json(after).await),
        without_timestamps(&before)
    );
    assert_eq!(app.get_all().await.status(), 401, "still no demo user");
}

fn without_timestamps(list: &Value) -> Vec<Value> {
    let rows = list.as_array().expect("a list").iter().cloned();
    rows.map(|mut row| {
        let fields = row.as_object_mut().expect("a delivery");
        fields.remove("created_at");
        fields.remove("updated_at");
        row
    })
    .collect()
}

#[tokio::test]
async fn prefer_code_503_gives_a_503_the_page_can_read_and_changes_nothing() {
    let app = spawn_with_test_support().await;

    // A page that sends `Prefer` cross-origin is preflighted first: allowed.
    let preflight = (app.request(Method::OPTIONS, "/delivery", ORIGIN))
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,prefer",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert!(tokens(preflight.headers(), "access-control-allow-headers").contains(&"prefer".into()));

    let fault = (app.article_request(Method::POST, "/delivery", ORIGIN))
        .header("Prefer", "code=503")
        .body(json!({"reference": "NEVER", "recipient": "A", "address": "B"}).to_string())
        .send()
        .await
        .expect("POST");
    assert_readable_by_origin(&fault, "an injected 503");
    assert_eq!(
        header(fault.headers(), "retry-after"),
        Some("1"),
        "as a real 503"
    );
    assert_eq!(
        header(fault.headers(), "preference-applied"),
        Some("code=503")
    );
    let vary = tokens(fault.headers(), "vary");
    assert!(
        vary.contains(&"prefer".into()) && vary.contains(&"origin".into()),
        "{vary:?}"
    );
    for exposed in ["retry-after", "preference-applied"] {
        assert!(
            tokens(fault.headers(), "access-control-expose-headers").contains(&exposed.into()),
            "{exposed} readable by the page"
        );
    }
    let detail = assert_problem(fault, 503, "Prefer: code=503").await;
    assert!(
        detail.contains("temporarily unavailable"),
        "the real 503's detail: {detail}"
    );
    assert_eq!(
        app.count_deliveries().await,
        SEEDED as i64,
        "nothing was written"
    );

    // Auth still comes first, as on a real server: no credentials, a 401, nothing applied.
    let anonymous = (app.request(Method::GET, "/delivery/all", ORIGIN))
        .header("Prefer", "code=503")
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(header(anonymous.headers(), "preference-applied"), None);

    // Other statuses come with their own layer's headers.
    let challenge = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("Prefer", "code=401")
        .send()
        .await
        .expect("GET");
    assert!(
        header(challenge.headers(), "www-authenticate").is_some_and(|v| v.starts_with("Basic"))
    );
    assert_problem(challenge, 401, "Prefer: code=401").await;
}

#[tokio::test]
async fn prefer_delay_holds_the_answer_at_least_that_long() {
    let app = spawn_with_test_support().await;
    let asked = Duration::from_millis(400);
    let start = Instant::now();
    let slow = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("Prefer", format!("delay={}", asked.as_millis()))
        .send()
        .await
        .expect("GET");
    let took = start.elapsed();
    assert_eq!(slow.status(), 200);
    assert!(
        took >= asked,
        "answered after {took:?}, asked for {asked:?}"
    );
    assert_eq!(
        header(slow.headers(), "preference-applied"),
        Some("delay=400")
    );

    // With a fault: the spinner, then the error.
    let start = Instant::now();
    let both = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("Prefer", "code=500, delay=250")
        .send()
        .await
        .expect("GET");
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        header(both.headers(), "preference-applied"),
        Some("code=500, delay=250")
    );
    assert_problem(both, 500, "Prefer: code=500, delay=250").await;
}

#[tokio::test]
async fn every_answer_a_prefer_could_have_changed_says_vary_prefer_and_only_those() {
    let app = spawn_with_test_support().await;
    let varies = |res: &reqwest::Response| tokens(res.headers(), "vary").contains(&"prefer".into());

    // RFC 7240 §2: whether or not the request sent a `Prefer`, since one could have made it a
    // fault: a cache must not answer a `Prefer: code=503` with it, nor the reverse.
    let plain = app.get_all().await;
    assert_eq!(plain.status(), 200);
    assert!(varies(&plain), "{plain:?}");
    let etag = header(plain.headers(), "etag").expect("an ETag").to_owned();
    let not_modified = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(not_modified.status(), 304);
    assert!(varies(&not_modified), "a 304 names what its 200 does");
    let missing = (app.article_request(Method::GET, "/delivery/999", ORIGIN))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    assert!(varies(&missing), "{missing:?}");

    // The same whatever the `Prefer`: a preflight, auth's 401, the public routes.
    let preflight = app.preflight("/delivery/all", "GET", ORIGIN).await;
    let anonymous = app.get_without_credentials("/delivery/all").await;
    assert_eq!(anonymous.status(), 401);
    let health = (app.request(Method::GET, "/health", ORIGIN))
        .header("Prefer", "delay=1")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        header(health.headers(), "preference-applied"),
        Some("delay=1"),
        "delayed, and says so"
    );
    for (what, res) in [
        ("a preflight", &preflight),
        ("a 401", &anonymous),
        ("/health", &health),
    ] {
        assert!(!varies(res), "{what}: {res:?}");
    }
}

#[tokio::test]
async fn the_request_log_shows_a_request_by_its_id_and_keeps_no_credentials() {
    let app = spawn_with_test_support().await;
    let ok = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("X-Request-Id", "e2e-list-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status(), 200);
    let wrong = (app.request(Method::GET, "/delivery/all?secret=hidden", ORIGIN))
        .header("X-Request-Id", "e2e-wrong-password")
        .basic_auth(USER, Some("not-the-password"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    let injected = (app.article_request(Method::GET, "/delivery/3", ORIGIN))
        .header("X-Request-Id", "e2e-fault")
        .header("Prefer", "code=507")
        .send()
        .await
        .expect("GET");
    assert_eq!(injected.status(), 507);

    let found = logged(&app, "?request_id=e2e-list-1").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let entry = &found[0];
    assert_eq!(
        (
            &entry["method"],
            &entry["path"],
            &entry["status"],
            &entry["answered_by"]
        ),
        (
            &json!("GET"),
            &json!("/delivery/all"),
            &json!(200),
            &json!("handler")
        )
    );
    assert!(entry["at_unix_ms"].as_u64().is_some() && entry["ms"].as_f64().is_some());
    let refused = &logged(&app, "?request_id=e2e-wrong-password").await[0];
    assert_eq!(
        (&refused["status"], &refused["answered_by"]),
        (&json!(401), &json!("basic-auth"))
    );
    let fault = &logged(&app, "?request_id=e2e-fault").await[0];
    assert_eq!(
        (
            &fault["status"],
            &fault["answered_by"],
            &fault["preference_applied"]
        ),
        (&json!(507), &json!("test-support"), &json!("code=507"))
    );

    let everything = logged(&app, "").await;
    assert_eq!(everything.len(), 3, "{everything:?}");
    let text = serde_json::to_string(&everything).expect("json");
    for secret in ["not-the-password", PASSWORD, "Basic", "secret=hidden"] {
        assert!(
            !text.contains(secret),
            "{secret} in the request log: {text}"
        );
    }

    let cleared = app
        .client
        .delete(admin(&app, "/requests"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(cleared.status(), 204);
    assert!(logged(&app, "").await.is_empty());
}

#[tokio::test]
async fn off_by_default_prefer_does_nothing_and_the_admin_endpoints_do_not_exist() {
    let app = spawn_app().await;
    assert!(app.test_support.is_none(), "no admin bind");

    let start = Instant::now();
    let res = (app.article_request(Method::GET, "/delivery/all", ORIGIN))
        .header("Prefer", "code=503, delay=10000")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200, "no fault");
    assert_eq!(header(res.headers(), "preference-applied"), None);
    assert!(
        !tokens(res.headers(), "vary").contains(&"prefer".into()),
        "Prefer changes nothing, and Vary does not say it might: {res:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10), "no delay");

    let preflight = (app.request(Method::OPTIONS, "/delivery/all", ORIGIN))
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization,prefer")
        .send()
        .await
        .expect("preflight");
    assert!(
        !tokens(preflight.headers(), "access-control-allow-headers").contains(&"prefer".into()),
        "a page may not send Prefer: {preflight:?}"
    );
    for path in ["/reset", "/requests", "/test-support/reset"] {
        let res = app
            .article_request(Method::POST, path, ORIGIN)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 404, "{path} on the API");
    }
}

#[tokio::test]
async fn it_refuses_to_start_on_a_public_bind() {
    let app = spawn_app().await;
    let mut public = app.args_on("0.0.0.0:0");
    public.harness.test_support = true;
    let err = delivery_api::startup::Application::build(public)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("refusing --test-support on 0.0.0.0") && err.contains("--bind 127.0.0.1:PORT"),
        "{err}"
    );

    let mut admin_public = app.args_on("127.0.0.1:0");
    admin_public.harness.test_support = true;
    admin_public.harness.test_support_bind = "0.0.0.0:0".parse().expect("addr");
    let err = delivery_api::startup::Application::build(admin_public)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("--test-support-bind 0.0.0.0"), "{err}");
}

#[tokio::test]
async fn the_admin_bind_answers_test_runners_not_pages_or_rebound_names() {
    let app = spawn_with_test_support().await;
    let from_a_page = (app.client.post(admin(&app, "/reset")))
        .header("Origin", "https://attacker.example")
        .send()
        .await
        .expect("POST");
    assert_problem(from_a_page, 403, "a page's POST /reset").await;
    // What Node's `fetch` sends (undici): Sec-Fetch-Mode, but no Origin and no Sec-Fetch-Site.
    let from_node = (app.client.post(admin(&app, "/reset")))
        .header("Sec-Fetch-Mode", "cors")
        .header("Accept-Language", "*")
        .send()
        .await
        .expect("POST");
    assert_eq!(from_node.status(), 200, "a test runner's reset");
    let fetched_by_a_page = (app.client.get(admin(&app, "/requests")))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("GET");
    assert_eq!(fetched_by_a_page.status(), 403);
    let port = app
        .test_support
        .as_deref()
        .and_then(|u| u.rsplit(':').next())
        .expect("port");
    let rebound = (app.client.get(admin(&app, "/requests")))
        .header("Host", format!("attacker.example:{port}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(rebound.status(), 421, "DNS rebinding");
    let wrong = app
        .client
        .get(admin(&app, "/reset"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn the_test_profile_lifts_the_login_limit_and_the_ready_line_names_the_admin_bind() {
    let app = spawn_with_test_support().await;
    // Past the default 10 a minute: each still gets its 401, and the right one logs in.
    for _ in 0..12 {
        assert_eq!(app.get_all_as(USER, "a wrong password").await.status(), 401);
    }
    assert_eq!(app.get_all().await.status(), 200);

    let cwd = tempfile::tempdir().expect("tempdir");
    let (child, ready) = serve_in(
        cwd.path(),
        &["--test-support", "--ephemeral", "--no-demo-page"],
    )
    .await;
    let url = ready["test_support"]
        .as_str()
        .expect("test_support in the ready line");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let res = (app.client.get(format!("{url}/requests")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
    let out = stop(child, &ready).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("!!! --test-support is ON"),
        "said loudly:\n{log}"
    );

    let (plain, ready) = serve_in(cwd.path(), &["--ephemeral", "--no-demo-page"]).await;
    assert_eq!(ready["test_support"], Value::Null);
    stop(plain, &ready).await;
}

/// SIGTERM (a graceful stop: --ephemeral's directory goes too), then everything it wrote.
async fn stop(child: tokio::process::Child, ready: &Value) -> std::process::Output {
    let pid = ready["pid"].as_u64().expect("pid") as i32;
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().await.expect("exit");
    assert!(out.status.success(), "{:?}", out.status);
    out
}

#[tokio::test]
async fn a_reset_while_the_test_before_is_still_writing_waits_its_turn() {
    let app = spawn_with_test_support().await;
    let creates = (0..256).map(|i| {
        let body = json!({"reference": format!("LATE-{i}"), "recipient": "R", "address": "A"});
        let app = &app;
        async move { app.create(&body).await.status() }
    });
    let resets = (0..8).map(|_| async {
        let res = (app.client.post(admin(&app, "/reset"))).send().await;
        let res = res.expect("reset");
        (res.status(), res.text().await.expect("body"))
    });
    let (statuses, resets) = tokio::join!(
        futures_util::future::join_all(creates),
        futures_util::future::join_all(resets)
    );
    for (status, body) in resets {
        assert_eq!(status, 200, "{body}");
    }
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let kept = app.count_deliveries().await - SEEDED as i64;
    assert!(
        (0..=256).contains(&kept),
        "the seed, and the writes after the last reset: {kept}"
    );
}

#[tokio::test]
async fn the_test_profile_lifts_the_per_client_connection_cap() {
    // A parallel suite's browsers all connect from 127.0.0.1: a cap of 4 is raised.
    let app = spawn_app_with(|args| {
        args.harness.test_support = true;
        args.connections.max_connections_per_ip = 4;
    })
    .await;
    let mut held = Vec::new();
    for i in 0..8 {
        let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("TCP");
        let tls = app.tls_over(tcp, &[b"http/1.1"]).await;
        held.push(tls.unwrap_or_else(|e| panic!("connection {} closed: {e}", i + 1)));
    }
    assert_eq!(app.get_all().await.status(), 200, "and one more request");
}
