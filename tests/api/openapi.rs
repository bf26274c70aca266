//! The OpenAPI document (`GET /openapi.json`) is valid OpenAPI 3.1, documents exactly what the app
//! serves, and the API's responses validate against its schemas.
//!
//! The meta-schema is the official one for OpenAPI 3.1 (`schema/2022-10-07`), vendored from the
//! PyPI package openapi-spec-validator 0.9.0 (Apache-2.0), so no network is needed.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

const META_SCHEMA: &str = include_str!("openapi/schema-2022-10-07.json");

/// Methods a client could try on any path (CONNECT aside: it is not a method on a path).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
];

/// A concrete path for a template: `{id}` is a seeded delivery.
fn concrete(template: &str, id: i64) -> String {
    template.replace("{id}", &id.to_string())
}

/// A valid body for the operations that take one.
fn body_for(method: &str, n: usize) -> Option<String> {
    matches!(method, "POST" | "PUT" | "PATCH").then(|| {
        json!({"reference": format!("OAS-{method}-{n}"), "recipient": "Ana", "address": "Rua 1",
               "status": "in_transit"})
        .to_string()
    })
}

/// True when the router itself refused the path (no route), not a handler's 404.
async fn no_such_route(res: reqwest::Response, method: &str) -> bool {
    if res.status() != 404 {
        return false;
    }
    if method == "HEAD" {
        return true;
    }
    let body: Value = res.json().await.unwrap_or_default();
    body["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("no resource at") && !d.contains("whole number"))
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_public_and_names_the_api_origin() {
    let app = spawn_app().await;

    let res = app.get_without_credentials("/openapi.json").await;

    assert_eq!(res.status(), 200, "public: no credentials");
    assert_readable_by_origin(&res, "GET /openapi.json");
    let doc = json(res).await;
    let meta: Value = serde_json::from_str(META_SCHEMA).expect("the meta-schema");
    let validator = jsonschema::draft202012::new(&meta).expect("the meta-schema builds");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not OpenAPI 3.1: {errors:#?}");
    assert_eq!(doc["openapi"], "3.1.0");
    // The meta-schema leaves Schema Objects unchecked: each must be JSON Schema 2020-12.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        jsonschema::draft202012::meta::validate(schema)
            .unwrap_or_else(|e| panic!("components.schemas.{name}: {e}"));
    }
    assert_eq!(
        doc["servers"][0]["url"],
        json!(app.base),
        "the announced https origin, so that an explorer on another origin calls it there"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"],
        json!({"type": "http", "scheme": "basic", "description": doc["components"]["securitySchemes"]["basic"]["description"]})
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_with_and_without_credentials_as_documented() {
    let app = spawn_app().await;
    let api = app.openapi().await;
    let mut operations = api.operations();
    // DELETE last, so that the others find delivery 1.
    operations.sort_by_key(|(_, method)| method == "DELETE");
    assert!(operations.len() >= 10, "{operations:?}");

    for (n, (template, method)) in operations.iter().enumerate() {
        let path = concrete(template, 1);
        let with_body = |req: reqwest::RequestBuilder| match body_for(method, n) {
            Some(body) if method == "PATCH" => with_content_type(req, MERGE_PATCH).body(body),
            Some(body) => with_content_type(req, CONTENT_TYPE).body(body),
            None => req,
        };
        let verb = Method::from_bytes(method.as_bytes()).expect("method");

        let anonymous = with_body(app.request(verb.clone(), &path, ORIGIN))
            .send()
            .await
            .expect("sent");
        let status = anonymous.status().as_u16();
        if api.needs_credentials(method, template) {
            assert_eq!(status, 401, "{method} {path} without credentials");
        } else {
            assert!((200..300).contains(&status), "{method} {path}: {status}");
        }
        api.checked(method, template, anonymous).await;

        let signed_in = with_body(app.article_request(verb, &path, ORIGIN))
            .send()
            .await
            .expect("sent");
        let (status, _, _) = api.checked(method, template, signed_in).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} with credentials: {status}"
        );
    }
}

#[tokio::test]
async fn a_method_a_documented_path_does_not_list_gets_405_with_exactly_the_documented_allow() {
    let app = spawn_app().await;
    let api = app.openapi().await;
    let paths: Vec<String> = api.doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();

    for template in &paths {
        let documented: Vec<String> = api.doc["paths"][template]
            .as_object()
            .expect("path item")
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        for method in METHODS
            .iter()
            .filter(|m| !documented.iter().any(|d| d == *m))
        {
            let path = concrete(template, 1);
            let verb = Method::from_bytes(method.as_bytes()).expect("method");
            // With credentials, so that a protected path's 405 is not hidden behind its 401.
            let res = app
                .article_request(verb, &path, ORIGIN)
                .send()
                .await
                .expect("sent");
            assert_eq!(res.status(), 405, "{method} {path}");
            let mut allow = tokens(res.headers(), "allow");
            allow.sort();
            let mut expected: Vec<String> =
                documented.iter().map(|m| m.to_ascii_lowercase()).collect();
            expected.sort();
            assert_eq!(
                allow, expected,
                "{method} {path}: Allow lists what is documented"
            );
            if *method != "HEAD" {
                assert_problem(res, 405, &format!("{method} {path}")).await;
            }
        }
    }
}

#[tokio::test]
async fn no_route_is_served_that_the_document_does_not_list() {
    // actix-web cannot list its routes, so this probes: every prefix and neighbour of a
    // documented path, and the names a route is likely to be added under. Whatever answers
    // other than the router's 404 must be documented. (The demo page's routes live on its own
    // origin, and /metrics on --metrics-bind: neither is this API.)
    let app = spawn_app().await;
    let api = app.openapi().await;
    let templates: Vec<String> = api.doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let mut candidates: Vec<String> = [
        "/",
        "/index.html",
        "/metrics",
        "/exchanges",
        "/explorer/",
        "/docs",
        "/swagger-ui/",
        "/openapi.yaml",
        "/api-docs",
        "/api",
        "/users",
        "/user",
        "/login",
        "/status",
        "/ready",
        "/delivery/",
        "/delivery/all/",
        "/delivery/search",
        "/delivery/count",
        "/deliveries",
        "/delivery/1/status",
        "/health/",
        "/openapi.json/",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for template in &templates {
        let path = concrete(template, 1);
        let mut prefix = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(segment);
            candidates.push(prefix.clone());
            candidates.push(format!("{prefix}/x"));
        }
    }
    let documented = |path: &str| {
        templates.iter().any(|t| {
            let (t, p): (Vec<_>, Vec<_>) = (t.split('/').collect(), path.split('/').collect());
            t.len() == p.len()
                && t.iter()
                    .zip(&p)
                    .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
        })
    };

    for path in candidates.iter().filter(|p| !documented(p)) {
        for method in METHODS.iter().filter(|m| **m != "OPTIONS") {
            let verb = Method::from_bytes(method.as_bytes()).expect("method");
            let res = app
                .article_request(verb, path, ORIGIN)
                .send()
                .await
                .expect("sent");
            let status = res.status();
            assert!(
                no_such_route(res, method).await,
                "{method} {path} is served ({status}) but not documented"
            );
        }
    }
}

#[tokio::test]
async fn the_responses_to_every_route_validate_against_the_document() {
    let app = spawn_app().await;
    let api = app.openapi().await;
    let get = |path: &str| app.article_request(Method::GET, path, ORIGIN);
    let send_json = |method: Method, path: &str, body: &str| {
        app.article_request(method, path, ORIGIN)
            .body(body.to_owned())
    };
    let new = |reference: &str| {
        json!({"reference": reference, "recipient": "Ana", "address": "Rua 1", "status": "pending"})
            .to_string()
    };
    // (method, template, request, expected status)
    let mut cases: Vec<(&str, &str, reqwest::RequestBuilder, u16)> = vec![
        ("GET", "/health", get("/health"), 200),
        (
            "HEAD",
            "/health",
            app.request(Method::HEAD, "/health", ORIGIN),
            200,
        ),
        ("GET", "/openapi.json", get("/openapi.json"), 200),
        ("GET", "/delivery/all", get("/delivery/all"), 200),
        (
            "GET",
            "/delivery/all",
            get("/delivery/all?limit=5&offset=5"),
            200,
        ),
        ("GET", "/delivery/all", get("/delivery/all?limit=0"), 400),
        (
            "GET",
            "/delivery/all",
            get("/delivery/all?offset=-1&limit=2"),
            400,
        ),
        (
            "GET",
            "/delivery/all",
            app.request(Method::GET, "/delivery/all", ORIGIN),
            401,
        ),
        (
            "GET",
            "/delivery/all",
            app.request(Method::GET, "/delivery/all", ORIGIN)
                .basic_auth(USER, Some("wrong")),
            401,
        ),
        (
            "HEAD",
            "/delivery/all",
            app.article_request(Method::HEAD, "/delivery/all", ORIGIN),
            200,
        ),
        ("GET", "/delivery/{id}", get("/delivery/1"), 200),
        ("GET", "/delivery/{id}", get("/delivery/999999"), 404),
        ("GET", "/delivery/{id}", get("/delivery/abc"), 404),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", &new("OAS-1")),
            201,
        ),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", &new("OAS-1")),
            409,
        ),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", "{"),
            400,
        ),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", r#"{"reference": 5}"#),
            422,
        ),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", &"x".repeat(70_000)),
            413,
        ),
        (
            "POST",
            "/delivery",
            app.request(Method::POST, "/delivery", ORIGIN)
                .basic_auth(USER, Some(PASSWORD))
                .header("Content-Type", "text/plain")
                .body(new("OAS-2")),
            415,
        ),
        (
            "PUT",
            "/delivery/{id}",
            send_json(Method::PUT, "/delivery/1", &new("OAS-3")),
            200,
        ),
        (
            "PUT",
            "/delivery/{id}",
            send_json(Method::PUT, "/delivery/999999", &new("OAS-4")),
            404,
        ),
        (
            "PUT",
            "/delivery/{id}",
            send_json(Method::PUT, "/delivery/2", &new("OAS-3")),
            409,
        ),
        (
            "PUT",
            "/delivery/{id}",
            send_json(Method::PUT, "/delivery/2", "[]"),
            422,
        ),
        (
            "DELETE",
            "/delivery/{id}",
            app.article_request(Method::DELETE, "/delivery/3", ORIGIN),
            204,
        ),
        (
            "DELETE",
            "/delivery/{id}",
            app.article_request(Method::DELETE, "/delivery/3", ORIGIN),
            404,
        ),
    ];

    for (n, (method, template, request, expected)) in cases.drain(..).enumerate() {
        let res = request.send().await.expect("sent");
        let (status, headers, _) = api.checked(method, template, res).await;
        assert_eq!(status, expected, "case {n}: {method} {template}");
        match status {
            401 => assert!(headers.contains_key("www-authenticate"), "case {n}"),
            201 => assert!(headers.contains_key("location"), "case {n}"),
            _ => {}
        }
    }

    // 304: the whole list's ETag, sent back.
    let etag = header(app.get_all().await.headers(), "etag")
        .expect("ETag")
        .to_owned();
    let res = get("/delivery/all")
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("sent");
    let (status, headers, _) = api.checked("GET", "/delivery/all", res).await;
    assert_eq!(
        (status, header(&headers, "etag")),
        (304, Some(etag.as_str()))
    );

    // 500: a schema broken beyond "unavailable" (and mended again).
    app.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
        .await;
    let res = send_json(Method::POST, "/delivery", &new("OAS-6"))
        .send()
        .await
        .expect("sent");
    let (status, _, _) = api.checked("POST", "/delivery", res).await;
    assert_eq!(status, 500);
    app.execute("ALTER TABLE deliveries_gone RENAME TO deliveries")
        .await;

    // 503 (and its Retry-After): the database is out of reach. SQLite: its file is moved away.
    // PostgreSQL: the pool is closed (the revisions are read on another connection, so the whole
    // list, cached, would still be served: a page is read through the pool).
    let db = app.dir.path().join("test.db");
    let aside = app.dir.path().join("test.db.aside");
    match &app.db {
        delivery_api::store::Db::Sqlite { .. } => {
            std::fs::rename(&db, &aside).expect("move the database away")
        }
        delivery_api::store::Db::Postgres(_) => app.db.close().await,
    }
    for (method, template, request) in [
        ("GET", "/health", get("/health")),
        ("GET", "/delivery/all", get("/delivery/all?limit=5")),
        (
            "POST",
            "/delivery",
            send_json(Method::POST, "/delivery", &new("OAS-5")),
        ),
    ] {
        let res = request.send().await.expect("sent");
        let (status, headers, _) = api.checked(method, template, res).await;
        assert_eq!(status, 503, "{method} {template}");
        assert!(headers.contains_key("retry-after"), "{method} {template}");
    }
}

#[tokio::test]
async fn the_login_limiters_429_validates_against_the_document() {
    let app = spawn_app_with(|args| {
        args.auth.login_attempts_per_user = std::num::NonZeroU32::new(2).expect("2");
    })
    .await;
    let api = app.openapi().await;

    let mut last = None;
    for _ in 0..3 {
        let res = app.get_all_as("someone", "guess").await;
        last = Some(api.checked("GET", "/delivery/all", res).await);
    }
    let (status, headers, _) = last.expect("three tries");
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_full_databases_507_validates_against_the_document() {
    sqlite_only();
    let app = spawn_app().await;
    let api = app.openapi().await;

    let full = crate::database_failures::fill_the_database(&app).await;

    let (status, _, _) = api.checked("POST", "/delivery", full).await;
    assert_eq!(status, 507);
}

/// What a client generator or a fuzzer reads besides the schemas: a summary on every operation,
/// `security: []` where no credentials are needed, an SPDX licence, header schemas a header can
/// meet (text), links between operations, and named examples that are themselves valid.
#[tokio::test]
async fn the_document_says_what_a_client_needs_and_its_examples_are_valid() {
    let app = spawn_app().await;
    let api = app.openapi().await;
    let doc = &api.doc;
    assert_eq!(doc["info"]["license"]["identifier"], "MIT OR Apache-2.0");

    let operation_ids: Vec<&str> = api
        .operations()
        .iter()
        .map(|(t, m)| {
            api.operation(m, t)["operationId"]
                .as_str()
                .expect("operationId")
        })
        .collect();
    let mut links = 0;
    let mut examples = 0;
    for (template, method) in api.operations() {
        let op = api.operation(&method, &template);
        let what = format!("{method} {template}");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: no summary"
        );
        let security = op["security"].as_array().unwrap_or_else(|| {
            panic!("{what}: no `security`; public operations say `security: []`")
        });
        if !template.starts_with("/delivery") {
            assert!(security.is_empty(), "{what} is public");
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            let response = api.resolve(response);
            for (name, header) in response["headers"].as_object().into_iter().flatten() {
                assert_eq!(
                    api.resolve(&header["schema"])["type"],
                    "string",
                    "{what} {status}: header {name} is text"
                );
            }
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().expect("operationId");
                assert!(
                    operation_ids.contains(&target),
                    "{what}: link {name} -> {target}"
                );
                assert_eq!(
                    link["parameters"]["id"], "$response.body#/id",
                    "{what}: {name}"
                );
            }
        }
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let at = format!(
            "/paths/{}/{}",
            escape(&template),
            method.to_ascii_lowercase()
        );
        for (media, content) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let schema = api.validator(&format!(
                "{at}/requestBody/content/{}/schema",
                escape(media)
            ));
            for (name, example) in content["examples"].as_object().into_iter().flatten() {
                examples += 1;
                assert!(schema.is_valid(&example["value"]), "{what}: example {name}");
            }
        }
    }
    assert!(
        links >= 9,
        "read, replace and delete from POST, GET and PUT: {links}"
    );
    let problem = api.validator("/components/schemas/Problem");
    for (name, response) in doc["components"]["responses"]
        .as_object()
        .expect("responses")
    {
        for (example, value) in response["content"]["application/problem+json"]["examples"]
            .as_object()
            .into_iter()
            .flatten()
        {
            examples += 1;
            assert!(
                problem.is_valid(&value["value"]),
                "{name}: example {example}"
            );
        }
    }
    assert!(examples >= 7, "{examples} named examples");
    let count =
        &doc["paths"]["/delivery/all"]["get"]["responses"]["200"]["headers"]["X-Total-Count"];
    assert_eq!(count["schema"]["pattern"], "^(0|[1-9][0-9]*)$");
}
