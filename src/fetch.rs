//! The Fetch vocabulary: the browser's side of CORS, as the WHATWG Fetch standard defines it
//! (serialized origins, forbidden methods, which headers need a preflight, and whether the browser
//! lets the page read a response). Pure functions, no I/O, and nothing else from this crate: the
//! server's CORS policy, the flags, the doctor (`delivery-api preflight`) and the tests all judge
//! by these same rules.
//!
//! References are to <https://fetch.spec.whatwg.org/> (section names in the comments).
//! Over 300 lines on purpose: one cohesive thing (the Fetch CORS checks) and their unit tests.

use serde::Serialize;

/// A serialised origin (HTML, "serialization of an origin"): `scheme://host[:port]`, nothing else.
/// Returns the browser's serialisation (lower-case scheme and host, default port dropped), or why
/// `raw` is not an origin: a path, a trailing slash, a query or user info never match byte for byte.
pub fn serialized_origin(raw: &str) -> Result<String, String> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err("no scheme".into());
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err("the scheme must be http or https".into());
    }
    if rest.is_empty() {
        return Err("no host".into());
    }
    if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
        return Err(match c {
            '/' => "an origin has no path, not even a trailing slash",
            '@' => "an origin has no user info",
            _ => "an origin has no query or fragment",
        }
        .into());
    }
    let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
    Ok(url.origin().ascii_serialization())
}

/// Methods `fetch()` refuses to send at all (Fetch, "forbidden method").
pub fn is_forbidden_method(method: &str) -> bool {
    ["CONNECT", "TRACE", "TRACK"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// A CORS-preflight request (Fetch, "CORS-preflight request"): `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`. `has_header` answers for a lower-case header name.
pub fn is_preflight(method: &str, has_header: impl Fn(&str) -> bool) -> bool {
    method == "OPTIONS" && has_header("origin") && has_header("access-control-request-method")
}

/// What the page asks `fetch()` / `XMLHttpRequest` to send.
#[derive(Debug, Clone, Serialize)]
pub struct CorsRequest {
    /// The page's origin, serialised (`http://localhost:4200`).
    pub origin: String,
    pub method: String,
    /// Author request headers (name, value), as the page sets them.
    pub headers: Vec<(String, String)>,
    /// Credentials mode "include" (`withCredentials: true`, `credentials: "include"`).
    pub with_credentials: bool,
}

/// The response as the browser sees it: status and headers (names lower-case).
#[derive(Debug, Clone, Serialize)]
pub struct SeenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl SeenResponse {
    /// All values of a header, combined as the Fetch "get" algorithm does (`, ` joined).
    pub fn get(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not a browser failure, but something a frontend will trip over.
    Warn,
    Info,
    /// Not checked: a rule it depends on already failed, and the browser stops there.
    #[serde(rename = "not_reached")]
    NotReached,
}

/// One rule, checked: what it says, what was found, and (on failure) the likely cause.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub outcome: Outcome,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Check {
    fn new(outcome: Outcome, rule: impl Into<String>) -> Self {
        Self {
            outcome,
            rule: rule.into(),
            cause: None,
        }
    }
    fn pass(rule: impl Into<String>) -> Self {
        Self::new(Outcome::Pass, rule)
    }
    fn fail(rule: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(Outcome::Fail, rule)
        }
    }
    /// This check, as one the browser never gets to.
    fn not_reached(self) -> Self {
        Self {
            outcome: Outcome::NotReached,
            cause: None,
            ..self
        }
    }
    fn warn(rule: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(Outcome::Warn, rule)
        }
    }
}

/// True when every check would let the page through (warnings and info do not block).
pub fn passes(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.outcome != Outcome::Fail)
}

// ---- Does the request need a preflight? ("CORS-preflight fetch" is used when ...) ----

/// "CORS-safelisted method": GET, HEAD, POST.
pub fn is_safelisted_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "POST")
}

/// "CORS-safelisted request-header" (name and value). Returns why not, or None when safelisted.
pub fn unsafe_reason(name: &str, value: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let bad_bytes = |v: &str| {
        v.bytes().any(|b| {
            (b < 0x20 && b != b'\t')
                || b == 0x7f
                || matches!(
                    b,
                    b'"' | b'('
                        | b')'
                        | b':'
                        | b'<'
                        | b'>'
                        | b'?'
                        | b'@'
                        | b'['
                        | b'\\'
                        | b']'
                        | b'{'
                        | b'}'
                )
        })
    };
    let safelisted_name = matches!(
        lower.as_str(),
        "accept" | "accept-language" | "content-language" | "content-type" | "range"
    );
    if !safelisted_name {
        return Some(format!("{name} is not a CORS-safelisted request header"));
    }
    // The length rule applies to the safelisted names only (an unsafe name is unsafe anyway).
    if value.len() > 128 {
        return Some(format!("{name} is longer than 128 bytes"));
    }
    match lower.as_str() {
        "accept" if !bad_bytes(value) => None,
        "accept" => Some(format!("{name} {value:?} contains a CORS-unsafe byte")),
        "accept-language" | "content-language" => {
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b))
            {
                None
            } else {
                Some(format!(
                    "{name} {value:?} has a byte other than 0-9, A-Z, a-z, space and *,-.;="
                ))
            }
        }
        "content-type" => {
            if bad_bytes(value) {
                return Some(format!("{name} {value:?} contains a CORS-unsafe byte"));
            }
            let essence = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match essence.as_str() {
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" => None,
                _ => Some(format!(
                    "Content-Type {value:?} is not one of the three form types (application/x-www-form-urlencoded, multipart/form-data, text/plain)"
                )),
            }
        }
        "range" => Some(format!("{name} is only safelisted as a single byte range")),
        _ => Some(format!("{name} is not a CORS-safelisted request header")),
    }
}

/// "CORS-unsafe request-header names": lower-cased, sorted, without duplicates. This is
/// exactly what the browser puts in `Access-Control-Request-Headers`.
pub fn unsafe_header_names(headers: &[(String, String)]) -> Vec<String> {
    let mut total = 0;
    let mut names: Vec<String> = Vec::new();
    for (name, value) in headers {
        if unsafe_reason(name, value).is_none() {
            total += value.len();
        } else {
            names.push(name.to_ascii_lowercase());
        }
    }
    if total > 1024 {
        // Safelisted values above 1024 bytes in total make all of them unsafe.
        names = headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
    }
    names.sort();
    names.dedup();
    names
}

/// Whether the browser sends a preflight first, and why (empty when it does not).
pub fn preflight_reasons(req: &CorsRequest) -> Vec<String> {
    let mut reasons = Vec::new();
    if !is_safelisted_method(&req.method) {
        reasons.push(format!(
            "the method {} is not GET, HEAD or POST",
            req.method
        ));
    }
    reasons.extend(req.headers.iter().filter_map(|(n, v)| unsafe_reason(n, v)));
    reasons
}

// ---- Would the browser accept the response? ----

/// "CORS check": Access-Control-Allow-Origin (and -Credentials) on any CORS response, the
/// preflight and the actual response alike, whatever the status.
pub fn cors_check(req: &CorsRequest, res: &SeenResponse) -> Vec<Check> {
    let mut checks = Vec::new();
    match res.get("access-control-allow-origin") {
        None => checks.push(Check::fail(
            "Access-Control-Allow-Origin is present",
            format!(
                "the response has no Access-Control-Allow-Origin: the origin {} is not allowed \
                 (exact scheme, host and port), or the CORS layer never saw this response",
                req.origin
            ),
        )),
        Some(v) if v.contains(',') => checks.push(Check::fail(
            "Access-Control-Allow-Origin is a single value",
            format!(
                "Access-Control-Allow-Origin is {v:?}: it must be one origin. Two layers (a proxy \
                 and the app?) both add it, or a list was configured where one echoed origin is needed"
            ),
        )),
        Some(v) if v == "*" && req.with_credentials => checks.push(Check::fail(
            "Access-Control-Allow-Origin is not `*` for a credentialed request",
            "with credentials (withCredentials: true) the server must echo the origin, not `*`",
        )),
        Some(v) if v == "*" => checks.push(Check::pass("Access-Control-Allow-Origin is `*`")),
        Some(v) if v == req.origin => checks.push(Check::pass(format!(
            "Access-Control-Allow-Origin is {v}"
        ))),
        Some(v) => checks.push(Check::fail(
            format!("Access-Control-Allow-Origin equals {} byte for byte", req.origin),
            format!(
                "Access-Control-Allow-Origin is {v:?} but the page's origin is {:?}{}",
                req.origin,
                if v.trim_end_matches('/') == req.origin {
                    ": remove the trailing slash from the configured origin"
                } else {
                    ": the server echoes the wrong origin"
                }
            ),
        )),
    }
    if req.with_credentials {
        let origin_ok = passes(&checks);
        let check = match res.get("access-control-allow-credentials").as_deref() {
            Some("true") => Check::pass("Access-Control-Allow-Credentials is true"),
            other => Check::fail(
                "Access-Control-Allow-Credentials is `true` for a credentialed request",
                match other {
                    None => {
                        "with credentials the response needs Access-Control-Allow-Credentials: \
                             true, and it has none"
                            .to_owned()
                    }
                    Some(value) => format!(
                        "with credentials the response needs Access-Control-Allow-Credentials: \
                         true, not {value:?}"
                    ),
                },
            ),
        };
        // The CORS check returns failure at Allow-Origin; Allow-Credentials comes after it.
        checks.push(if origin_ok {
            check
        } else {
            check.not_reached()
        });
    }
    checks
}

/// "CORS-preflight fetch": the whole verdict on a preflight response.
pub fn check_preflight(req: &CorsRequest, res: &SeenResponse) -> Vec<Check> {
    let mut checks = vec![ok_status(res)];
    checks.extend(cors_check(req, res));
    // A preflight without an ok status or failing the CORS check is a network error: the browser
    // reads neither the allowed methods and headers nor Max-Age.
    let reached = passes(&checks);
    let dependent = checks.len();

    let credentialed = req.with_credentials;
    let methods = list(res.get("access-control-allow-methods"));
    let method_allowed = is_safelisted_method(&req.method)
        || methods.iter().any(|m| m == &req.method)
        || (!credentialed && methods.iter().any(|m| m == "*"));
    checks.push(if method_allowed {
        Check::pass(format!("method {} is allowed", req.method))
    } else {
        Check::fail(
            format!("Access-Control-Allow-Methods includes {}", req.method),
            format!(
                "Access-Control-Allow-Methods is {:?}: add {}{}",
                res.get("access-control-allow-methods").unwrap_or_default(),
                req.method,
                if methods.iter().any(|m| m == "*") {
                    " (`*` does not count for credentialed requests)"
                } else {
                    ""
                }
            ),
        )
    });

    let allowed: Vec<String> = list(res.get("access-control-allow-headers"))
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let wildcard = allowed.iter().any(|h| h == "*");
    for name in unsafe_header_names(&req.headers) {
        let listed = allowed.contains(&name);
        // The wildcard never covers Authorization ("CORS non-wildcard request-header name"),
        // and covers nothing for credentialed requests.
        let by_wildcard = wildcard && !credentialed && name != "authorization";
        checks.push(if listed || by_wildcard {
            Check::pass(format!("header {name} is allowed"))
        } else if wildcard && name == "authorization" {
            Check::fail(
                "Access-Control-Allow-Headers names authorization",
                "Access-Control-Allow-Headers is `*`, but the wildcard never covers Authorization: list it by name",
            )
        } else {
            Check::fail(
                format!("Access-Control-Allow-Headers includes {name}"),
                format!("Access-Control-Allow-Headers lacks {name}"),
            )
        });
    }

    checks.push(max_age(res));
    if !reached {
        for check in &mut checks[dependent..] {
            *check = check.clone().not_reached();
        }
    }
    checks.extend(vary_origin(res));
    checks
}

/// `Vary: Origin` whenever Access-Control-Allow-Origin echoes an origin ("CORS protocol and HTTP
/// caches"): otherwise a shared cache may serve one origin's answer to another.
fn vary_origin(res: &SeenResponse) -> Option<Check> {
    res.get("access-control-allow-origin")
        .filter(|v| v != "*")?;
    let names_origin = list(res.get("vary"))
        .iter()
        .any(|t| t.eq_ignore_ascii_case("origin") || t == "*");
    Some(if names_origin {
        Check::pass("Vary names Origin")
    } else {
        Check::warn(
            "Vary: Origin",
            "Access-Control-Allow-Origin depends on Origin but Vary does not name it: a shared cache may serve one origin's answer to another",
        )
    })
}

/// The actual response: readable by the page only if it passes the CORS check; plus the
/// headers the frontend will want to read.
pub fn check_actual(req: &CorsRequest, res: &SeenResponse) -> Vec<Check> {
    let mut checks = cors_check(req, res);
    if !passes(&checks) && res.status >= 400 {
        // The most actionable reading first: the page will not even see this error's status.
        checks.insert(
            0,
            Check::fail(
                format!("the {} response carries CORS headers", res.status),
                format!(
                    "the {} has no usable CORS headers, so the page sees status 0 instead of {}: \
                 error responses (auth failures above all) must pass through the CORS layer",
                    res.status, res.status
                ),
            ),
        );
    }
    checks.extend(vary_origin(res));
    let exposed: Vec<String> = list(res.get("access-control-expose-headers"))
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    // `*` exposes every header, but only to requests without credentials.
    let star = exposed.iter().any(|h| h == "*") && !req.with_credentials;
    for name in ["www-authenticate", "location", "retry-after"] {
        if res.get(name).is_some() && !star && !exposed.iter().any(|h| h == name) {
            checks.push(Check::warn(
                format!("{name} is exposed"),
                format!("the response has {name} but Access-Control-Expose-Headers does not list it: the page cannot read it"),
            ));
        }
    }
    checks
}

fn ok_status(res: &SeenResponse) -> Check {
    let status = res.status;
    if (200..=299).contains(&status) {
        return Check::pass(format!("ok status ({status})"));
    }
    let cause = match status {
        401 | 403 => format!(
            "the preflight got {status}: your authentication runs before CORS; preflights never carry credentials"
        ),
        300..=399 => format!(
            "the preflight got a {status} redirect: browsers never follow redirects on a preflight \
             (http→https, or a trailing slash?): call the final URL"
        ),
        404 | 405 => format!(
            "the preflight got {status}: nothing answers OPTIONS here: the CORS layer does not cover this route"
        ),
        400 => "the preflight got 400: the CORS layer refused it (origin, method or headers not allowed)".into(),
        500..=599 => format!("the preflight got {status}: the server failed on OPTIONS"),
        _ => format!("the preflight got {status}, not 200-299"),
    };
    Check::fail("the preflight has an ok status (200-299)", cause)
}

/// Max-Age: how long the browser caches this preflight (info only).
fn max_age(res: &SeenResponse) -> Check {
    let rule = match res
        .get("access-control-max-age")
        .map(|v| v.trim().parse::<u64>())
    {
        None => "no Access-Control-Max-Age: browsers re-send the preflight after 5 s".to_owned(),
        Some(Ok(secs)) if secs > 7200 => {
            format!(
                "Access-Control-Max-Age {secs} s (Chromium caps it at 7200 s, Firefox at 86400 s)"
            )
        }
        Some(Ok(secs)) => format!("Access-Control-Max-Age {secs} s"),
        Some(Err(_)) => "Access-Control-Max-Age is not a number: browsers use 5 s".to_owned(),
    };
    Check::new(Outcome::Info, rule)
}

/// A comma-separated header list, trimmed, empty items dropped.
fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(with_credentials: bool) -> CorsRequest {
        CorsRequest {
            origin: "http://localhost:4200".into(),
            method: "GET".into(),
            headers: vec![
                ("Accept".into(), "application/json, text/plain, */*".into()),
                (
                    "Authorization".into(),
                    "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk".into(),
                ),
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                ),
            ],
            with_credentials,
        }
    }

    fn res(status: u16, headers: &[(&str, &str)]) -> SeenResponse {
        SeenResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn good_preflight() -> Vec<(&'static str, &'static str)> {
        vec![
            ("access-control-allow-origin", "http://localhost:4200"),
            ("access-control-allow-methods", "GET, POST"),
            (
                "access-control-allow-headers",
                "authorization, content-type",
            ),
            ("access-control-allow-credentials", "true"),
            ("access-control-max-age", "600"),
            ("vary", "Origin"),
        ]
    }

    fn failed_rules(checks: &[Check]) -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| format!("{} / {}", c.rule, c.cause.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn the_articles_request_needs_a_preflight_for_authorization_and_json() {
        let reasons = preflight_reasons(&article(false));
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("Authorization"));
        assert!(reasons[1].contains("Content-Type"));
        assert_eq!(
            unsafe_header_names(&article(false).headers),
            ["authorization", "content-type"]
        );
    }

    #[test]
    fn simple_requests_need_no_preflight() {
        let mut req = article(false);
        req.headers = vec![
            ("Accept".into(), "application/json".into()),
            ("Content-Type".into(), "text/plain;charset=UTF-8".into()),
            ("Accept-Language".into(), "en-GB,en;q=0.9".into()),
        ];
        assert!(preflight_reasons(&req).is_empty());
        req.method = "PUT".into();
        assert_eq!(preflight_reasons(&req).len(), 1);
    }

    #[test]
    fn unsafe_bytes_and_long_values_make_safelisted_headers_unsafe() {
        assert!(unsafe_reason("Accept", "text/html\"").is_some());
        assert!(unsafe_reason("Content-Type", "text/plain; x=\"(\"").is_some());
        assert!(unsafe_reason("Accept", &"a".repeat(129)).is_some());
        assert!(unsafe_reason("X-Custom", "1").is_some());
    }

    #[test]
    fn each_unsafe_header_is_refused_for_its_own_reason() {
        let reason = |name: &str, value: &str| unsafe_reason(name, value).expect(name);
        assert!(reason("X-Custom", &"a".repeat(300)).contains("not a CORS-safelisted"));
        assert!(reason("Accept", &"a".repeat(129)).contains("longer than 128 bytes"));
        let language = reason("Accept-Language", "en_GB");
        assert!(language.contains("byte other than"), "{language}");
        assert!(reason("Content-Language", "de/AT").contains("byte other than"));
        assert_eq!(unsafe_reason("Accept-Language", "en-GB,en;q=0.9"), None);
    }

    #[test]
    fn a_good_preflight_passes() {
        let checks = check_preflight(&article(true), &res(200, &good_preflight()));
        assert!(passes(&checks), "{:?}", failed_rules(&checks));
    }

    #[test]
    fn a_401_preflight_fails_and_blames_auth_before_cors() {
        let checks = check_preflight(&article(false), &res(401, &[("www-authenticate", "Basic")]));
        let failed = failed_rules(&checks).join("\n");
        assert!(
            failed.contains("authentication runs before CORS"),
            "{failed}"
        );
        assert!(
            failed.contains("no Access-Control-Allow-Origin"),
            "{failed}"
        );
    }

    #[test]
    fn after_a_failed_status_or_origin_the_methods_and_headers_are_not_reached() {
        let mut req = article(true);
        req.method = "DELETE".into();
        let checks = check_preflight(&req, &res(401, &[]));
        let failed = failed_rules(&checks);
        assert_eq!(failed.len(), 2, "status and Allow-Origin only: {failed:#?}");
        let not_reached: Vec<&str> = checks
            .iter()
            .filter(|c| c.outcome == Outcome::NotReached)
            .map(|c| c.rule.as_str())
            .collect();
        assert!(
            not_reached.iter().any(|r| r.contains("Allow-Methods")),
            "{not_reached:?}"
        );
        assert!(
            not_reached.iter().any(|r| r.contains("authorization")),
            "{not_reached:?}"
        );
        assert!(
            not_reached.iter().any(|r| r.contains("Allow-Credentials")),
            "{not_reached:?}"
        );
        // With status and origin right, the same missing method is a failure of its own.
        let mut headers = good_preflight();
        headers[1] = ("access-control-allow-methods", "GET");
        let failed = failed_rules(&check_preflight(&req, &res(200, &headers)));
        assert_eq!(failed.len(), 1, "{failed:#?}");
    }

    #[test]
    fn a_redirected_preflight_fails() {
        let checks = check_preflight(&article(false), &res(301, &good_preflight()));
        assert!(failed_rules(&checks).join("").contains("redirect"));
    }

    #[test]
    fn the_wildcard_never_covers_authorization() {
        let mut headers = good_preflight();
        headers[2] = ("access-control-allow-headers", "*");
        let checks = check_preflight(&article(false), &res(200, &headers));
        let failed = failed_rules(&checks).join("\n");
        assert!(failed.contains("never covers Authorization"), "{failed}");
        assert!(
            !failed.contains("content-type"),
            "`*` covers content-type without credentials: {failed}"
        );
        // With credentials, `*` covers nothing at all.
        let checks = check_preflight(&article(true), &res(200, &headers));
        assert!(
            failed_rules(&checks)
                .join("\n")
                .contains("lacks content-type")
        );
    }

    #[test]
    fn a_missing_allowed_header_is_named() {
        let mut headers = good_preflight();
        headers[2] = ("access-control-allow-headers", "content-type");
        let failed = failed_rules(&check_preflight(&article(false), &res(200, &headers))).join("");
        assert!(
            failed.contains("Access-Control-Allow-Headers lacks authorization"),
            "{failed}"
        );
    }

    #[test]
    fn a_method_must_be_listed_unless_safelisted() {
        let mut req = article(false);
        req.method = "DELETE".into();
        let failed = failed_rules(&check_preflight(&req, &res(200, &good_preflight()))).join("");
        assert!(failed.contains("add DELETE"), "{failed}");
        req.method = "POST".into();
        let mut headers = good_preflight();
        headers[1] = ("access-control-allow-methods", "GET");
        assert!(
            passes(&check_preflight(&req, &res(200, &headers))),
            "POST is safelisted"
        );
    }

    #[test]
    fn the_origin_must_match_byte_for_byte_and_be_single() {
        for (acao, expected) in [
            ("http://localhost:4200/", "trailing slash"),
            ("http://localhost:4201", "wrong origin"),
            ("HTTP://localhost:4200", "wrong origin"),
            (
                "http://localhost:4200, http://localhost:4200",
                "single value",
            ),
        ] {
            let checks = cors_check(
                &article(false),
                &res(200, &[("access-control-allow-origin", acao)]),
            );
            let failed = failed_rules(&checks).join("");
            assert!(failed.contains(expected), "{acao}: {failed}");
        }
    }

    #[test]
    fn star_is_fine_without_credentials_and_refused_with_them() {
        let star = res(200, &[("access-control-allow-origin", "*")]);
        assert!(passes(&cors_check(&article(false), &star)));
        let checks = cors_check(&article(true), &star);
        let failed = failed_rules(&checks).join("");
        assert!(failed.contains("not `*`"), "{failed}");
        // The CORS check stops at Allow-Origin: Allow-Credentials is not reached.
        assert!(
            checks
                .iter()
                .any(|c| c.outcome == Outcome::NotReached && c.rule.contains("Allow-Credentials")),
            "{checks:#?}"
        );
    }

    #[test]
    fn a_401_without_cors_headers_reads_as_status_0() {
        let failed = failed_rules(&check_actual(&article(false), &res(401, &[]))).join("");
        assert!(failed.contains("sees status 0 instead of 401"), "{failed}");
    }

    #[test]
    fn unexposed_headers_and_missing_vary_are_warnings() {
        let checks = check_actual(
            &article(false),
            &res(
                401,
                &[
                    ("access-control-allow-origin", "http://localhost:4200"),
                    ("www-authenticate", "Basic"),
                ],
            ),
        );
        assert!(passes(&checks));
        let warned: Vec<_> = checks
            .iter()
            .filter(|c| c.outcome == Outcome::Warn)
            .map(|c| c.rule.clone())
            .collect();
        assert!(
            warned.contains(&"www-authenticate is exposed".to_owned()),
            "{warned:?}"
        );
        assert!(warned.contains(&"Vary: Origin".to_owned()), "{warned:?}");
    }

    #[test]
    fn max_age_is_reported_with_the_browser_cap() {
        let mut headers = good_preflight();
        headers[4] = ("access-control-max-age", "86400");
        let checks = check_preflight(&article(false), &res(200, &headers));
        assert!(checks.iter().any(|c| c.rule.contains("caps it at 7200")));
    }
}
