//! Judging answers as a browser would (the Fetch standard's CORS rules, shared with the server and
//! the doctor), and the shapes every answer must have: problem+json with a detail, readable headers.

use delivery_api::fetch::{self as cors_check, CorsRequest, Outcome};
use reqwest::Response;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{ACCEPT, CONTENT_TYPE, ORIGIN};

pub async fn json(res: Response) -> Value {
    res.json().await.expect("a JSON body")
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// The comma-separated tokens of a header, lower-cased (for Vary, Allow-*, Expose-Headers).
pub fn tokens(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The article's request as the browser's CORS rules see it (credentials mode "include", the
/// stricter of the two, since the API allows credentials).
pub fn article_cors_request(origin: &str, method: &str) -> CorsRequest {
    CorsRequest {
        origin: origin.to_owned(),
        method: method.to_owned(),
        headers: vec![
            ("Accept".into(), ACCEPT.into()),
            (
                "Authorization".into(),
                "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk".into(),
            ),
            ("Content-Type".into(), CONTENT_TYPE.into()),
        ],
        with_credentials: true,
    }
}

pub use delivery_api::preflight::seen;

/// What a browser would object to (failures and warnings).
fn objections(checks: &[cors_check::Check]) -> Vec<&cors_check::Check> {
    checks
        .iter()
        .filter(|c| !matches!(c.outcome, Outcome::Pass | Outcome::Info))
        .collect()
}

/// Judged by the browser's rules (`cors_check`, the Fetch standard): a page on `ORIGIN` can read
/// this response, with no warning (Vary: Origin, exposed headers); and WWW-Authenticate and
/// Location are exposed whether or not this response carries them.
pub fn assert_readable_by_origin(res: &Response, what: &str) {
    let checks = cors_check::check_actual(&article_cors_request(ORIGIN, "GET"), &seen(res));
    let problems = objections(&checks);
    assert!(
        problems.is_empty(),
        "{what}: a browser would object: {problems:#?}"
    );
    let exposed = tokens(res.headers(), "access-control-expose-headers");
    for name in ["www-authenticate", "location"] {
        assert!(
            exposed.contains(&name.to_owned()),
            "{what}: {name} must be exposed, got {exposed:?}"
        );
    }
}

/// Judged by the browser's rules: the preflight for the article's request passes.
pub fn assert_preflight_passes(res: &Response, method: &str, what: &str) {
    let checks = cors_check::check_preflight(&article_cors_request(ORIGIN, method), &seen(res));
    let problems = objections(&checks);
    assert!(
        problems.is_empty(),
        "{what}: a browser would refuse this preflight: {problems:#?}"
    );
}

/// An RFC 9457 problem document with the given status; returns its `detail`.
pub async fn assert_problem(res: Response, status: u16, what: &str) -> String {
    assert_eq!(res.status().as_u16(), status, "{what}: status");
    assert_eq!(
        header(res.headers(), "content-type"),
        Some("application/problem+json"),
        "{what}: content type"
    );
    let body = json(res).await;
    assert_eq!(body["status"], status, "{what}: body.status");
    assert!(body["title"].is_string(), "{what}: body.title");
    let detail = body["detail"].as_str().expect("body.detail").to_owned();
    assert!(!detail.is_empty(), "{what}: detail says what is wrong");
    detail
}
