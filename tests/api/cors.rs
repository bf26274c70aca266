//! CORS, the lesson: the article's preflight is answered before Basic auth, for the allowed
//! origins only, and every answer (errors included) carries what the page needs to read it.
//!
//! A refused preflight is a 400 that says why; another origin gets no CORS header on any status.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_articles_preflight_is_answered_without_credentials_and_the_get_succeeds() {
    let app = spawn_app().await;

    // Act 1: the browser's preflight. No Authorization header: browsers never send one here.
    let preflight = app.preflight("/delivery/all", "GET", ORIGIN).await;

    // Judged by the browser's rules (Fetch standard), then spelled out.
    assert_preflight_passes(&preflight, "GET", "the article's preflight");

    assert!(
        preflight.status().is_success(),
        "preflight must be 2xx, got {}",
        preflight.status()
    );
    let h = preflight.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(ORIGIN));
    assert!(tokens(h, "access-control-allow-methods").contains(&"get".to_owned()));
    let allowed = tokens(h, "access-control-allow-headers");
    // Named, not `*`: the wildcard never covers Authorization.
    assert!(allowed.contains(&"authorization".to_owned()), "{allowed:?}");
    assert!(allowed.contains(&"content-type".to_owned()), "{allowed:?}");
    let max_age: u32 = header(h, "access-control-max-age")
        .expect("Max-Age")
        .parse()
        .expect("number");
    assert!(
        max_age > 5,
        "a Max-Age above the browsers' 5 s default, got {max_age}"
    );
    assert!(tokens(h, "vary").contains(&"origin".to_owned()));

    // Act 2: the actual request, as the Angular app sends it.
    let get = app.get_all().await;

    assert_eq!(get.status(), 200);
    assert_readable_by_origin(&get, "GET /delivery/all");
    assert_eq!(
        header(get.headers(), "content-type"),
        Some("application/json")
    );
    let body = json(get).await;
    let items = body.as_array().expect("an array");
    assert_eq!(items.len(), SEEDED);
    for key in [
        "id",
        "reference",
        "recipient",
        "address",
        "status",
        "created_at",
        "updated_at",
    ] {
        assert!(
            items[0].get(key).is_some(),
            "each delivery has {key}: {}",
            items[0]
        );
    }
}

#[tokio::test]
async fn preflights_for_every_method_the_frontend_uses_are_answered() {
    let app = spawn_app().await;
    for (path, method) in [
        ("/delivery", "POST"),
        ("/delivery/1", "PUT"),
        ("/delivery/1", "PATCH"),
        ("/delivery/1", "DELETE"),
        ("/delivery/1", "GET"),
    ] {
        let res = app.preflight(path, method, ORIGIN).await;
        assert_preflight_passes(&res, method, path);
        assert!(
            res.status().is_success(),
            "{method} {path}: {}",
            res.status()
        );
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            Some(ORIGIN)
        );
        let methods = tokens(res.headers(), "access-control-allow-methods");
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{method}: {methods:?}"
        );
    }
}

#[tokio::test]
async fn a_preflight_touches_neither_auth_nor_the_database() {
    let app = spawn_app().await;
    // With the pool closed, anything that reaches auth or a handler fails...
    app.db.close().await;
    let get = app.get_all().await;
    assert_eq!(
        get.status(),
        503,
        "auth needs the database, so it is now unavailable"
    );
    assert_readable_by_origin(&get, "503");

    // ...but the preflight is still answered: CORS never called the layers inside it.
    let preflight = app.preflight("/delivery/all", "GET", ORIGIN).await;
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(preflight.headers(), "access-control-allow-origin"),
        Some(ORIGIN)
    );
}

#[tokio::test]
async fn origins_that_only_look_like_the_allowed_one_get_no_cors_headers() {
    let app = spawn_app().await;
    for origin in [
        "http://localhost:4200.evil.example",
        "http://evil.localhost:4200",
        "http://localhost:42000",
        "http://localhost:420",
        "https://localhost:4200",
        "http://localhost",
        "http://127.0.0.1:4200",
        "http://LOCALHOST:4200",
        "http://localhost:4200/",
        "null",
    ] {
        let preflight = app.preflight("/delivery/all", "GET", origin).await;
        assert_eq!(
            header(preflight.headers(), "access-control-allow-origin"),
            None,
            "preflight from {origin}"
        );
        assert!(
            !preflight.status().is_success(),
            "preflight from {origin} must not pass"
        );

        // Even with valid credentials, the response carries nothing a browser would accept.
        let get = app
            .article_request(Method::GET, "/delivery/all", origin)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            header(get.headers(), "access-control-allow-origin"),
            None,
            "GET from {origin}"
        );
    }
}

#[tokio::test]
async fn several_origins_can_be_allowed_and_each_gets_its_own_echo() {
    let other = "https://app.example.com";
    let app = spawn_app_with(|args| {
        args.cors.allowed_origins = vec![
            ORIGIN.parse().expect("origin"),
            other.parse().expect("origin"),
        ];
    })
    .await;
    for origin in [ORIGIN, other] {
        let res = app.preflight("/delivery/all", "GET", origin).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            Some(origin)
        );
    }
}

#[tokio::test]
async fn auth_before_cors_rejects_the_preflight_with_401_the_bug_reproduced() {
    let app = spawn_app_with(|args| args.auth_before_cors = true).await;

    let preflight = app.preflight("/delivery/all", "GET", ORIGIN).await;

    // The article's failure: the guard demands credentials the preflight can never carry,
    // and (being outside CORS) its 401 has no Access-Control-Allow-Origin either.
    assert_eq!(preflight.status(), 401);
    assert_eq!(
        header(preflight.headers(), "access-control-allow-origin"),
        None
    );

    // Postman-style clients never preflight, so for them the API "works": that is the trap.
    let get = app.get_all().await;
    assert_eq!(get.status(), 200);
    assert_eq!(json(get).await.as_array().map(Vec::len), Some(SEEDED));
}

#[tokio::test]
async fn a_refused_preflight_is_a_400_problem_that_says_why_and_varies_on_the_request() {
    let app = spawn_app().await;
    let cases = [
        (
            "an origin that is not allowed",
            "http://evil.example",
            "GET",
            "authorization",
            "origin \"http://evil.example\" is not allowed",
        ),
        (
            "a method that is not allowed",
            ORIGIN,
            "PROPFIND",
            "authorization",
            "method \"PROPFIND\" is not allowed",
        ),
        (
            "a header that is not allowed",
            ORIGIN,
            "GET",
            "authorization,x-api-key",
            "request header \"x-api-key\" is not allowed",
        ),
    ];
    for (what, origin, method, headers, reason) in cases {
        for path in ["/delivery/all", "/health"] {
            let res = app
                .request(Method::OPTIONS, path, origin)
                .header("Access-Control-Request-Method", method)
                .header("Access-Control-Request-Headers", headers)
                .send()
                .await
                .expect("sent");

            assert_eq!(
                header(res.headers(), "access-control-allow-origin"),
                None,
                "{what}: nothing a browser would accept"
            );
            let vary = tokens(res.headers(), "vary");
            for name in [
                "origin",
                "access-control-request-method",
                "access-control-request-headers",
            ] {
                assert!(
                    vary.contains(&name.to_owned()),
                    "{what} {path}: Vary {vary:?}"
                );
            }
            let detail = assert_problem(res, 400, what).await;
            assert!(detail.contains(reason), "{what} {path}: {detail}");
        }
    }
}

/// A preflight asking for `headers` (comma-separated, as browsers send them).
async fn preflight_with_headers(app: &TestApp, headers: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, "/delivery/all", ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .expect("preflight sent")
}

/// A frontend that sends X-Trace-Id or X-XSRF-TOKEN can be allowed to, one name at a time,
/// without opening the list to everything.
#[tokio::test]
async fn allow_header_adds_request_headers_a_page_may_send_and_no_others() {
    let wanted = "authorization,content-type,x-trace-id,x-xsrf-token";
    let default = spawn_app().await;
    assert_problem(
        preflight_with_headers(&default, wanted).await,
        400,
        "by default",
    )
    .await;

    let app = spawn_app_with(|args| {
        args.cors.allow_headers = ["X-Trace-Id", "x-xsrf-token"]
            .map(|h| delivery_api::cors::HeaderRule::parse(h).expect("name"))
            .to_vec();
    })
    .await;
    let res = preflight_with_headers(&app, wanted).await;
    assert_preflight_passes(&res, "GET", "with --allow-header");
    let allowed = tokens(res.headers(), "access-control-allow-headers");
    for name in [
        "authorization",
        "content-type",
        "x-trace-id",
        "x-xsrf-token",
    ] {
        assert!(allowed.iter().any(|a| a == name), "{name} in {allowed:?}");
    }
    let refused = preflight_with_headers(&app, "authorization,x-api-key").await;
    let detail = assert_problem(refused, 400, "a header not added").await;
    assert!(detail.contains("x-api-key"), "{detail}");
}

/// Data grids page with X-Total-Count; the page can read it (and any --expose-header) only if
/// it is exposed.
#[tokio::test]
async fn x_total_count_and_expose_header_are_readable_by_the_page() {
    let app = spawn_app_with(|args| {
        args.cors.expose_headers =
            vec![delivery_api::cors::HeaderRule::parse("X-Trace").expect("name")];
    })
    .await;
    for path in ["/delivery/all", "/delivery/all?limit=5&offset=5"] {
        let res = app
            .article_request(Method::GET, path, ORIGIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            header(res.headers(), "x-total-count"),
            Some(SEEDED.to_string().as_str()),
            "{path}"
        );
        let exposed = tokens(res.headers(), "access-control-expose-headers");
        for name in ["x-total-count", "link", "x-trace"] {
            assert!(
                exposed.iter().any(|e| e == name),
                "{path}: {name} in {exposed:?}"
            );
        }
    }
    // The count follows writes.
    let new = serde_json::json!({"reference": "COUNT-1", "recipient": "A", "address": "B"});
    assert_eq!(app.create(&new).await.status(), 201);
    let res = app.get_all().await;
    assert_eq!(
        header(res.headers(), "x-total-count"),
        Some((SEEDED + 1).to_string().as_str())
    );
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
                .body(
                    json!({"reference": "Z", "recipient": "A", "address": "B", "status": "pending"})
                        .to_string(),
                ),
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
