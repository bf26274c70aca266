//! The auth boundary is the route table: every request the router sends into `/delivery` has
//! passed Basic auth, however its path was spelled, and nothing else reaches the data.
//!
//! (The defect this guards against: auth decided "protected or not" with a string prefix on the
//! raw path, so `GET /%64elivery/all` returned the whole list without credentials.)

use crate::helpers::*;

/// What a spelling must get without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The router sends it into the protected scope: 401 with a Basic challenge.
    Challenge,
    /// It reaches no protected route: any 4xx (404, 400, a reset stream) and no data.
    Refusal,
}
use Expect::*;

/// How an attacker might spell `path` (one of the protected routes), and what each must get.
fn spellings(path: &str) -> Vec<(String, Expect)> {
    let rest = path.strip_prefix("/delivery").expect("a protected path"); // "", "/all", "/1"
    let encode_all = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    // A suffix on the last segment: on "/delivery/all" it stays inside the scope; on "/delivery"
    // itself it makes another first segment ("/delivery;x"), outside it.
    let suffixed = if rest.is_empty() { Refusal } else { Challenge };
    let mut table = vec![
        // Percent-encoded letters: decoded by the router, so they ARE the protected route.
        (format!("/%64elivery{rest}"), Challenge),
        (format!("/d%65livery{rest}"), Challenge),
        (format!("/deliver%79{rest}"), Challenge),
        (format!("/{}{rest}", encode_all("delivery")), Challenge),
        (
            format!("/{}{rest}", encode_all("delivery").to_lowercase()),
            Challenge,
        ),
        // Inside the scope but no route of it: the scope's 404 is behind auth too.
        (format!("/delivery{rest}/"), Challenge),
        (format!("/delivery/.{rest}"), Challenge),
        (format!("/delivery/x/..{rest}"), Challenge),
        (format!("/delivery/%2e%2e{rest}"), Challenge),
        (format!("/delivery/{rest}"), Challenge), // a double slash
        (format!("/delivery{rest};jsessionid=1"), suffixed),
        (format!("/delivery{rest}%00"), suffixed),
        (format!("/delivery{rest}%20"), suffixed),
        (format!("/delivery/%2F{rest}"), Challenge),
        (format!("/delivery{rest}?admin=true&%00"), Challenge),
        // Outside the scope, whatever they look like: nothing protected answers them.
        (format!("/%2564elivery{rest}"), Refusal), // double encoding
        (format!("//delivery{rest}"), Refusal),
        (format!("/./delivery{rest}"), Refusal),
        (format!("/x/../delivery{rest}"), Refusal),
        (format!("/%2e%2e/delivery{rest}"), Refusal),
        (format!("/delivery;x{rest}"), Refusal),
        (format!("/Delivery{rest}"), Refusal),
        (format!("/DELIVERY{rest}"), Refusal),
        (
            format!("/delivery%2F{}", rest.trim_start_matches('/')),
            Refusal,
        ), // an encoded slash
        (
            format!("/delivery%2f{}", rest.trim_start_matches('/')),
            Refusal,
        ),
        (format!("/delivery%00{rest}"), Refusal),
        (format!("/delivery%20{rest}"), Refusal),
        (format!("/%EF%BD%84elivery{rest}"), Refusal), // fullwidth "d"
        (format!("/%C1%A4elivery{rest}"), Refusal),    // overlong UTF-8 "d"
        (
            format!("/%64elivery%2F{}", rest.trim_start_matches('/')),
            Refusal,
        ),
    ];
    if let Some(last) = rest.strip_prefix('/') {
        // The second segment encoded: "/delivery/%61%6C%6C", "/delivery/%31".
        table.push((format!("/delivery/{}", encode_all(last)), Challenge));
        table.push((format!("/delivery/{}", last.to_uppercase()), Challenge));
    }
    table
}

/// Every protected route and method, with a body that would be accepted if auth let it through.
fn protected_requests() -> Vec<(&'static str, &'static str, &'static str)> {
    const BODY: &str =
        r#"{"reference":"PWNED-1","recipient":"Mallory","address":"Nowhere 1","status":"pending"}"#;
    vec![
        ("GET", "/delivery/all", ""),
        ("HEAD", "/delivery/all", ""),
        ("POST", "/delivery", BODY),
        ("GET", "/delivery/1", ""),
        ("HEAD", "/delivery/1", ""),
        ("PUT", "/delivery/2", BODY),
        ("PATCH", "/delivery/2", BODY),
        ("DELETE", "/delivery/3", ""),
    ]
}

/// Sends every spelling of every protected request, over both HTTP versions, without
/// credentials; returns a description of each one that got more than it should.
async fn spellings_that_get_through(app: &TestApp) -> Vec<String> {
    let mut failures = Vec::new();
    for (method, path, body) in protected_requests() {
        for (target, expect) in spellings(path) {
            for http in [Http::One, Http::Two] {
                let what = format!("{method} {target} over {http:?}: expected {expect:?}");
                let headers = [("content-type", "application/json"), ("origin", ORIGIN)];
                match app.raw(http, method, &target, &headers, body).await {
                    // A refusal at the protocol level touches nothing.
                    Err(e) if expect == Refusal => drop(e),
                    Err(e) => failures.push(format!("{what}, got no response: {e}")),
                    Ok(res) => {
                        if res.body.contains("DLV-2026") || res.body.contains("\"id\"") {
                            failures.push(format!("{what}, got data: {}", res.body));
                        }
                        let challenged = res.status == 401
                            && res
                                .headers
                                .get("www-authenticate")
                                .is_some_and(|v| v.as_bytes().starts_with(b"Basic "));
                        let ok = match expect {
                            Challenge => challenged,
                            Refusal => (400..500).contains(&res.status),
                        };
                        if !ok {
                            failures.push(format!("{what}, got {}", res.status));
                        }
                    }
                }
            }
        }
    }
    failures
}

#[tokio::test]
async fn no_spelling_of_a_protected_route_gets_past_basic_auth() {
    // Arrange
    let app = spawn_app().await;
    let before = app.snapshot().await;
    assert_eq!(before.len(), SEEDED);

    // Act
    let failures = spellings_that_get_through(&app).await;

    // Assert
    assert!(
        failures.is_empty(),
        "{} spellings got through:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(app.snapshot().await, before, "the database is unchanged");
}

#[tokio::test]
async fn in_teaching_mode_the_same_scope_is_guarded_auth_first() {
    let app = spawn_app_with(|args| args.auth_before_cors = true).await;
    let before = app.snapshot().await;

    let failures = spellings_that_get_through(&app).await;

    assert!(failures.is_empty(), "got through:\n{}", failures.join("\n"));
    assert_eq!(app.snapshot().await, before, "the database is unchanged");
}

#[tokio::test]
async fn the_articles_encoded_path_is_a_401_on_both_http_versions_and_a_200_with_credentials() {
    let app = spawn_app().await;
    for http in [Http::One, Http::Two] {
        let res = app
            .raw(http, "GET", "/%64elivery/all", &[("origin", ORIGIN)], "")
            .await
            .expect("a response");
        assert_eq!(res.status, 401, "{http:?}: {}", res.body);
        assert_eq!(
            header(&res.headers, "access-control-allow-origin"),
            Some(ORIGIN),
            "{http:?}: the page can read the 401"
        );

        let authorized = [
            ("origin", ORIGIN),
            ("authorization", "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"),
        ];
        let res = app
            .raw(http, "GET", "/%64elivery/all", &authorized, "")
            .await
            .expect("a response");
        assert_eq!(
            res.status, 200,
            "{http:?}: the same route, with credentials"
        );
        assert!(res.body.contains("DLV-2026-0001"), "{http:?}: the list");
    }
}

#[tokio::test]
async fn public_routes_stay_public_and_unknown_paths_are_404_without_data() {
    let app = spawn_app().await;

    let health = app.get_without_credentials("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        header(health.headers(), "access-control-allow-origin"),
        Some(ORIGIN),
        "public routes carry CORS headers too"
    );

    // A request target no scope can match is a problem+json 404 too, not the framework's bare one.
    let reply = app
        .raw_http1(b"GET * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(reply.contains("application/problem+json"), "{reply}");

    for path in ["/nowhere", "/deliveryx", "/health/../delivery/all"] {
        let res = app
            .raw(Http::One, "GET", path, &[("origin", ORIGIN)], "")
            .await
            .expect("a response");
        assert_eq!(res.status, 404, "{path}: {}", res.body);
        assert!(!res.body.contains("DLV-2026"), "{path}: no data");
    }
}
