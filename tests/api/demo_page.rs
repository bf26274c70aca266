//! The demo page on its own origin: allowed wherever it is moved, running only its own script,
//! optional, and recording what the server saw: which layer answered, never an Authorization value.
//!
//! The record is `GET /exchanges` on the page's bind, bounded; the API explorer shares its CSP.

use base64::Engine;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_demo_page_origin_is_allowed_wherever_the_page_is_moved() {
    // The page on a random port (as `--demo-page-bind 127.0.0.1:9711` moves it), not listed.
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page.clone().expect("the demo page");
    let page_origin = page.trim_end_matches('/');
    assert_ne!(page_origin, ORIGIN, "the page is not on the default port");

    let res = app.preflight("/delivery/all", "GET", page_origin).await;

    assert_eq!(res.status(), 200, "the page's own origin passes");
    assert_eq!(
        header(res.headers(), "access-control-allow-origin"),
        Some(page_origin)
    );
    // Still allowed too: the configured origin. Not allowed: the page opened as 127.0.0.1.
    let res = app.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_eq!(res.status(), 200, "{ORIGIN}");
    let other = page_origin.replace("localhost", "127.0.0.1");
    let res = app.preflight("/delivery/all", "GET", &other).await;
    assert_eq!(res.status(), 400, "{other} is another origin");
}

#[tokio::test]
async fn the_demo_page_answers_head_like_get() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page.clone().expect("the page is served");
    let client = &app.client; // plain HTTP here: its TLS settings do not matter

    let get = client.get(&page).send().await.expect("GET");
    let head = client.head(&page).send().await.expect("HEAD");

    assert_eq!(get.status(), 200);
    assert_eq!(
        head.status(),
        200,
        "HEAD answers like GET (RFC 9110 §9.3.2)"
    );
    assert_eq!(
        header(head.headers(), "content-type"),
        header(get.headers(), "content-type")
    );
    assert!(
        head.text().await.expect("body").is_empty(),
        "HEAD has no body"
    );
}

/// The demo page runs only its own inline script and style (by hash), may call only itself and
/// the API, cannot be framed by another page, and nothing on its origin is MIME-sniffed.
#[tokio::test]
async fn the_demo_page_runs_only_its_own_script_and_cannot_be_framed() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page.clone().expect("page");

    let res = app.client.get(page.clone()).send().await.expect("sent");

    assert_eq!(res.status(), 200);
    let csp = header(res.headers(), "content-security-policy")
        .expect("a CSP on the index")
        .to_owned();
    assert_eq!(
        header(res.headers(), "x-content-type-options"),
        Some("nosniff")
    );
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        &format!("connect-src 'self' {}", app.base),
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    let script = csp
        .split(';')
        .find_map(|d| d.trim().strip_prefix("script-src "))
        .expect("script-src");
    assert!(
        script.starts_with("'sha256-") && !script.contains("unsafe"),
        "only the page's own script, by hash: {script}"
    );
    let recorded = app
        .client
        .get(format!("{page}exchanges"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        header(recorded.headers(), "x-content-type-options"),
        Some("nosniff")
    );
}

#[tokio::test]
async fn the_explorer_is_served_from_the_binary_on_the_page_origin_within_a_csp() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page.clone().expect("page");
    let get = |path: &str| app.client.get(format!("{page}{path}")).send();

    let res = get("explorer/").await.expect("sent");
    assert_eq!(res.status(), 200);
    let csp = header(res.headers(), "content-security-policy")
        .expect("a CSP")
        .to_owned();
    assert!(csp.contains(&format!("connect-src {};", app.base)), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline or remote script: {csp}"
    );
    let html = res.text().await.expect("html");
    assert!(!html.contains("//cdn") && !html.contains("unpkg"), "{html}");
    assert!(
        html.contains("Possible cross-origin (CORS) issue?")
            && html.contains("does not trust the API's certificate"),
        "Swagger UI's status-0 message is explained on the page: {html}"
    );

    let init = get("explorer/init.js").await.expect("sent");
    let init = init.text().await.expect("js");
    assert!(
        init.contains(&format!("{}/openapi.json", app.base)),
        "{init}"
    );
    for (asset, kind) in [
        ("explorer/swagger-ui-bundle.js", "text/javascript"),
        ("explorer/swagger-ui.css", "text/css"),
    ] {
        let res = get(asset).await.expect("sent");
        assert_eq!(res.status(), 200, "{asset}");
        assert!(
            header(res.headers(), "content-type").is_some_and(|t| t.starts_with(kind)),
            "{asset}"
        );
    }
    let index = get("").await.expect("sent").text().await.expect("html");
    assert!(
        index.contains(r#"href="/explorer/""#),
        "linked from the demo page"
    );
}

#[tokio::test]
async fn a_taken_demo_page_port_leaves_the_api_running_without_the_page() {
    let dir = certs();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut args = delivery_api::config::ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().expect("addr");
    args.demo.demo_page_bind = taken.local_addr().expect("addr");
    args.shutdown_grace = 1;
    args.db.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.tls.cert = Some(dir.path().join("localhost.crt"));
    args.tls.key = Some(dir.path().join("localhost.key"));

    let app = delivery_api::startup::Application::build(args)
        .await
        .expect("the API starts anyway");

    assert_eq!(app.demo_page_addr(), None);
    let api = Api::new(app.addr(), &dir.path().join("dev-ca.crt"));
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let res = api.get_without_credentials("/health").await;
    assert_eq!(res.status(), 200, "the API answers");
    drop(api);
    handle.stop(true).await;
    server.await.expect("task").expect("stopped cleanly");
}

// ---------------------------------------------------------------------------------------------
// The record of what the server saw (`GET /exchanges` on the page's bind), bounded.

impl TestApp {
    /// The demo page's origin, `http://localhost:PORT`.
    fn page_origin(&self) -> String {
        self.page
            .as_deref()
            .expect("the demo page is served")
            .trim_end_matches('/')
            .to_owned()
    }

    /// What the page reads: `GET /exchanges?after=N` on its own origin.
    async fn exchanges(&self, after: u64) -> (String, Value) {
        let res = self
            .client
            .get(format!("{}/exchanges?after={after}", self.page_origin()))
            .send()
            .await
            .expect("GET /exchanges");
        assert_eq!(res.status(), 200);
        assert_eq!(header(res.headers(), "cache-control"), Some("no-store"));
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            None,
            "same-origin only"
        );
        let text = res.text().await.expect("body");
        let value = serde_json::from_str(&text).expect("JSON");
        (text, value)
    }
}

/// The entries of a record, as (method, layer, status).
fn summary(record: &Value) -> Vec<(String, String, u64)> {
    record["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .map(|e| {
            (
                e["method"].as_str().expect("method").to_owned(),
                e["layer"].as_str().expect("layer").to_owned(),
                e["status"].as_u64().expect("status"),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_exchange_names_the_layer_that_answered_it() {
    let app = spawn_app_with_page(|args, _| {
        args.auth.login_attempts_per_ip = 3.try_into().expect("non-zero");
    })
    .await;
    let page = app.page_origin();
    let alias = page.replacen("//localhost:", "//127.0.0.1:", 1);

    app.preflight("/delivery/all", "GET", &page).await;
    app.article_request(Method::GET, "/delivery/all", &page)
        .send()
        .await
        .expect("sent");
    app.request(Method::GET, "/delivery/all", &page)
        .send()
        .await
        .expect("sent");
    app.preflight("/delivery/all", "GET", &alias).await;
    for _ in 0..3 {
        // The right password was the first attempt: two wrong ones reach the limit of three.
        app.request(Method::GET, "/delivery/all", &page)
            .basic_auth(USER, Some("wrong"))
            .send()
            .await
            .expect("sent");
    }

    let (_, record) = app.exchanges(0).await;
    let s = |m: &str, l: &str, st: u64| (m.to_owned(), l.to_owned(), st);
    assert_eq!(
        summary(&record),
        [
            s("OPTIONS", "cors-preflight", 200),
            s("GET", "handler", 200),
            s("GET", "basic-auth", 401),
            s("OPTIONS", "cors-preflight", 400),
            s("GET", "basic-auth", 401),
            s("GET", "basic-auth", 401),
            s("GET", "login-limiter", 429),
        ]
    );
    let entries = record["exchanges"].as_array().expect("exchanges");
    let preflight = &entries[0];
    assert_eq!(preflight["authorization"], false);
    assert_eq!(preflight["requested_method"], "GET");
    assert_eq!(preflight["requested_headers"], "authorization,content-type");
    let sent = |e: &Value, name: &str| {
        e["cors_headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().expect("value").to_owned())
    };
    assert_eq!(
        sent(preflight, "access-control-allow-origin").as_deref(),
        Some(page.as_str())
    );
    assert_eq!(entries[1]["authorization"], true);
    assert_eq!(
        sent(&entries[2], "access-control-allow-origin").as_deref(),
        Some(page.as_str()),
        "the 401 carries the CORS headers it was sent with"
    );
    let refused = &entries[3];
    assert_eq!(refused["origin"], alias.as_str());
    assert_eq!(sent(refused, "access-control-allow-origin"), None);
    assert!(
        refused["note"]
            .as_str()
            .expect("note")
            .starts_with(&format!("refused: origin {alias:?} is not allowed")),
        "{refused}"
    );
    assert_eq!(record["last"], 7);
    assert_eq!(summary(&app.exchanges(6).await.1).len(), 1, "?after=6");
}

#[tokio::test]
async fn with_auth_before_cors_the_preflight_is_recorded_as_answered_by_basic_auth() {
    let app = spawn_app_with_page(|args, _| args.auth_before_cors = true).await;

    let res = app
        .preflight("/delivery/all", "GET", &app.page_origin())
        .await;

    assert_eq!(res.status(), 401);
    let (_, record) = app.exchanges(0).await;
    assert_eq!(
        summary(&record),
        [("OPTIONS".to_owned(), "basic-auth".to_owned(), 401)]
    );
    assert_eq!(
        record["exchanges"][0]["cors_headers"],
        serde_json::json!([]),
        "auth outside CORS: its 401 has no CORS headers"
    );
}

#[tokio::test]
async fn the_record_never_holds_an_authorization_value() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page_origin();
    let secret = "s3cret-Passw0rd";
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"));
    let good = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));

    for authorization in [
        format!("Basic {token}"),
        format!("basic {token}"),
        format!("Basic {good}"),
        format!("Bearer {token}"),
        format!("Basic {token}{token}"),
    ] {
        app.request(Method::GET, "/delivery/all", &page)
            .header("Authorization", &authorization)
            .send()
            .await
            .expect("sent");
        app.request(Method::OPTIONS, "/delivery/all", &page)
            .header("Authorization", &authorization)
            .header("Access-Control-Request-Method", "GET")
            .send()
            .await
            .expect("sent");
    }

    let (text, record) = app.exchanges(0).await;
    assert_eq!(summary(&record).len(), 10, "{text}");
    for leaked in [
        secret, &token, &good, PASSWORD, "Basic ", "basic ", "Bearer",
    ] {
        assert!(
            !text.contains(leaked),
            "{leaked:?} is in the record: {text}"
        );
    }
    assert!(
        record["exchanges"]
            .as_array()
            .expect("exchanges")
            .iter()
            .all(|e| e["authorization"] == true),
        "only that it was there: {text}"
    );
}

#[tokio::test]
async fn the_record_stays_at_its_bound_and_caps_every_field() {
    let app = spawn_app_with_page(|_, _| {}).await;
    let page = app.page_origin();
    let long_path = format!("/delivery/{}", "x".repeat(1_000));
    let long_headers = vec!["x-custom"; 300].join(",");

    for i in 0..300 {
        let req = app
            .request(Method::OPTIONS, &long_path, &page)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", &long_headers);
        let res = req.send().await.expect("sent");
        assert_eq!(res.status(), 400, "request {i}");
    }

    let (text, record) = app.exchanges(0).await;
    let entries = record["exchanges"].as_array().expect("exchanges");
    assert_eq!(entries.len(), 64, "the last 64 only");
    assert_eq!(record["last"], 300);
    assert_eq!(entries[0]["seq"], 237);
    for e in entries {
        assert!(e["path"].as_str().expect("path").len() <= 200);
        assert!(e["requested_headers"].as_str().expect("acrh").len() <= 200);
        assert!(e["note"].as_str().expect("note").len() <= 200);
    }
    assert!(text.len() < 64 * 2_000, "{} bytes", text.len());
}

#[tokio::test]
async fn other_origins_are_not_recorded_and_the_record_is_not_served_by_the_api() {
    let app = spawn_app_with_page(|_, _| {}).await;

    app.preflight("/delivery/all", "GET", ORIGIN).await; // allowed, but not the page's origin
    app.preflight("/delivery/all", "GET", "https://elsewhere.example")
        .await;
    app.get_all().await;
    app.request(Method::GET, "/health", "http://localhost:1")
        .send()
        .await
        .expect("sent");

    let (_, record) = app.exchanges(0).await;
    assert_eq!(summary(&record), [], "{record}");
    assert_eq!(record["last"], 0);
    for path in ["/exchanges", "/exchanges?after=0"] {
        let res = app.get_without_credentials(path).await;
        assert_problem(res, 404, path).await;
    }
}

/// The page judges by the doctor's rules, for the credentials mode it used: a wildcard answer
/// passes a plain call, and fails one with `withCredentials` (the browser refuses it), so the
/// page never paints a green step where the browser refuses.
#[tokio::test]
async fn the_record_judges_each_answer_by_the_fetch_rules_for_the_pages_credentials_mode() {
    let app = spawn_app_with_page(|args, _| {
        args.cors.allowed_origins = vec!["*".parse().expect("origin")];
        args.cors.allow_credentials = false;
    })
    .await;
    let page = app.page_origin();
    let preflight = app.preflight("/delivery/all", "GET", &page).await;
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(preflight.headers(), "access-control-allow-origin"),
        Some("*")
    );

    let judged = |mode: &'static str| {
        let url = format!("{page}/exchanges?after=0&credentials={mode}");
        let client = app.client.clone();
        async move {
            let record: Value = client
                .get(url)
                .send()
                .await
                .expect("GET /exchanges")
                .json()
                .await
                .expect("JSON");
            record["exchanges"][0]["fetch"].clone()
        }
    };
    let plain = judged("same-origin").await;
    assert_eq!(plain["passes"], true, "{plain}");
    assert_eq!(plain["cause"], Value::Null, "{plain}");
    let credentialed = judged("include").await;
    assert_eq!(credentialed["passes"], false, "{credentialed}");
    assert!(
        credentialed["cause"]
            .as_str()
            .is_some_and(|c| c.contains("must echo the origin, not `*`")),
        "the doctor's words: {credentialed}"
    );
}
