//! Why a preflight was refused, in the words of the rule that failed: for the 400's body (the
//! curl user) and, with the flag that fixes it, for the server's log (the developer).
//!
//! actix-cors refuses with a bare 400 and logs nothing; in Chromium that 400 reads exactly like
//! the auth-before-CORS bug ("No 'Access-Control-Allow-Origin' header is present"). So every
//! refusal gets one WARN line, once per cause per minute: a client controls these requests, so
//! identical repeats are only counted, and the distinct causes tracked are bounded.

use std::sync::LazyLock;

use actix_cors::CorsError;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use actix_web::http::header::HeaderName;

use super::{AllowedOrigin, METHODS};
use crate::telemetry::{self, Throttles};

/// Longest origin, method or header name quoted in a log line or a body.
const MAX_QUOTED: usize = 100;
/// Distinct causes remembered at once (an attacker can vary the Origin at will).
const MAX_CAUSES: usize = 32;

/// One log line per cause (kind + what the client asked for) per minute.
static LOGGED: LazyLock<Throttles<(Kind, String)>> =
    LazyLock::new(|| Throttles::per_minute(MAX_CAUSES));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Origin,
    Method,
    Headers,
    Malformed,
    NotAPreflight,
}

/// A refused preflight: the rule that failed, and what the request asked for (capped).
#[derive(Debug)]
pub enum Refusal {
    Origin(String),
    MissingOrigin,
    Method(String),
    /// The refused names, and every allowed one.
    Headers(Vec<String>, String),
    MalformedHeaders(String),
    Other(String),
}

impl Refusal {
    pub fn new(error: &CorsError, request: &HeaderMap, allowed_headers: &[HeaderName]) -> Self {
        let value = |name| quoted(request.get(name));
        match error {
            CorsError::OriginNotAllowed => Self::Origin(value(header::ORIGIN)),
            CorsError::MissingOrigin => Self::MissingOrigin,
            CorsError::MethodNotAllowed => {
                Self::Method(value(header::ACCESS_CONTROL_REQUEST_METHOD))
            }
            CorsError::HeadersNotAllowed => {
                let requested = value(header::ACCESS_CONTROL_REQUEST_HEADERS).to_ascii_lowercase();
                let mut refused: Vec<String> = requested
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !allowed_headers.iter().any(|a| a.as_str() == *h))
                    .map(str::to_owned)
                    .collect();
                refused.dedup();
                let allowed = allowed_headers.iter().map(HeaderName::as_str);
                Self::Headers(refused, allowed.collect::<Vec<_>>().join(", "))
            }
            CorsError::BadRequestHeaders => {
                Self::MalformedHeaders(value(header::ACCESS_CONTROL_REQUEST_HEADERS))
            }
            other => Self::Other(other.to_string()),
        }
    }

    /// The rule that failed, as one word from a fixed set (a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Origin(_) => "origin",
            Self::MissingOrigin => "missing_origin",
            Self::Method(_) => "method",
            Self::Headers(..) => "headers",
            Self::MalformedHeaders(_) => "malformed",
            Self::Other(_) => "other",
        }
    }

    /// The rule that failed, without configuration: safe to send to any client.
    pub fn reason(&self) -> String {
        match self {
            Self::Origin(origin) => format!("origin {origin:?} is not allowed"),
            Self::MissingOrigin => "a preflight needs an Origin header".into(),
            Self::Method(method) => format!(
                "method {method:?} is not allowed (allowed: {})",
                METHODS.map(|m| m.to_string()).join(", ")
            ),
            Self::Headers(refused, allowed) => {
                let shown: Vec<String> = refused.iter().take(5).map(|h| format!("{h:?}")).collect();
                let more = refused.len().saturating_sub(shown.len());
                format!(
                    "request header{} {}{} {} not allowed (allowed: {})",
                    if refused.len() == 1 { "" } else { "s" },
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    },
                    if refused.len() == 1 { "is" } else { "are" },
                    allowed
                )
            }
            Self::MalformedHeaders(raw) => format!(
                "Access-Control-Request-Headers {raw:?} is malformed (an empty or invalid name)"
            ),
            Self::Other(why) => why.clone(),
        }
    }

    /// The log line's advice: the allowed origins (configuration, so for the log only) and the
    /// flag that fixes it.
    fn advice(&self, allowed_origins: &str) -> String {
        match self {
            Self::Origin(origin) if origin == "null" => format!(
                " (allowed: {allowed_origins}); a page opened from file:// or a sandboxed iframe \
                 sends Origin: null, which cannot be allowed: serve the page over http(s)"
            ),
            Self::Origin(origin) => match origin.parse::<AllowedOrigin>() {
                Ok(AllowedOrigin::Exact(serialized)) if &serialized == origin => {
                    format!(" (allowed: {allowed_origins}); add --allowed-origin {origin}")
                }
                _ => format!(
                    " (allowed: {allowed_origins}); it is not an origin a browser sends \
                     (scheme://host[:port])"
                ),
            },
            Self::MissingOrigin => {
                "; browsers always send one, so this came from another client".into()
            }
            Self::Method(_) => "; no flag allows other methods".into(),
            Self::Headers(refused, _) => {
                let flags: Vec<String> = refused
                    .iter()
                    .filter(|h| HeaderName::from_bytes(h.as_bytes()).is_ok())
                    .map(|h| format!("--allow-header {h}"))
                    .collect();
                if flags.is_empty() {
                    "; the page must not send it".into()
                } else {
                    format!("; add {} (or the page must not send it)", flags.join(" "))
                }
            }
            Self::MalformedHeaders(_) => {
                "; browsers send lower-case names separated by commas".into()
            }
            Self::Other(_) => String::new(),
        }
    }

    fn key(&self) -> (Kind, String) {
        match self {
            Self::Origin(origin) => (Kind::Origin, origin.clone()),
            Self::Method(method) => (Kind::Method, method.clone()),
            Self::Headers(refused, _) => (Kind::Headers, refused.join(",")),
            Self::MissingOrigin => (Kind::Malformed, "no origin".into()),
            Self::MalformedHeaders(_) => (Kind::Malformed, "headers".into()),
            Self::Other(why) => (Kind::Malformed, why.clone()),
        }
    }

    /// One WARN line, unless this cause was already logged in the last minute.
    pub fn log(&self, allowed_origins: &str) {
        if let Some(held_back) = LOGGED.admit(self.key()) {
            tracing::warn!(
                "preflight refused: {}{}{}",
                self.reason(),
                self.advice(allowed_origins),
                telemetry::held_back(held_back)
            );
        }
    }
}

/// actix-cors treats an OPTIONS without a valid Access-Control-Request-Method as an ordinary
/// request (it reaches the routes, and auth); with an Origin it was most likely meant as a
/// preflight, so say why it was not one.
pub fn log_if_not_a_preflight(req: &ServiceRequest) {
    let headers = req.headers();
    if req.method() != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
        return;
    }
    let acrm = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD);
    let why = match acrm {
        None => "no Access-Control-Request-Method",
        Some(v) if Method::from_bytes(v.as_bytes()).is_err() => {
            "an invalid Access-Control-Request-Method"
        }
        Some(_) => return,
    };
    if let Some(held_back) = LOGGED.admit((Kind::NotAPreflight, why.to_owned())) {
        tracing::warn!(
            "not a preflight: OPTIONS {} from origin {:?} has {why}, so it is answered as an \
             ordinary request (a browser's preflight always carries that header){}",
            telemetry::client_text(req.path()),
            quoted(headers.get(header::ORIGIN)),
            telemetry::held_back(held_back)
        );
    }
}

/// A header value as text, capped (the caller quotes it with `{:?}`).
fn quoted(value: Option<&HeaderValue>) -> String {
    value
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(MAX_QUOTED)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn an_origin_refusal_names_the_flag_that_fixes_it() {
        let refusal = Refusal::new(
            &CorsError::OriginNotAllowed,
            &headers(&[("origin", "http://127.0.0.1:4200")]),
            &super::super::ALLOWED_HEADERS,
        );
        assert_eq!(
            format!(
                "{}{}",
                refusal.reason(),
                refusal.advice("http://localhost:4200")
            ),
            "origin \"http://127.0.0.1:4200\" is not allowed (allowed: http://localhost:4200); \
             add --allowed-origin http://127.0.0.1:4200"
        );
    }

    #[test]
    fn origins_no_flag_can_allow_get_no_flag_suggested() {
        for origin in ["null", "http://localhost:4200/", "HTTP://LOCALHOST:4200"] {
            let refusal = Refusal::new(
                &CorsError::OriginNotAllowed,
                &headers(&[("origin", origin)]),
                &super::super::ALLOWED_HEADERS,
            );
            let advice = refusal.advice("http://localhost:4200");
            assert!(!advice.contains("--allowed-origin"), "{origin}: {advice}");
        }
    }

    #[test]
    fn quoted_values_are_capped_and_escaped() {
        let long = format!("http://{}", "a".repeat(500));
        let refusal = Refusal::new(
            &CorsError::OriginNotAllowed,
            &headers(&[("origin", &long)]),
            &super::super::ALLOWED_HEADERS,
        );
        let reason = refusal.reason();
        assert!(reason.len() < 2 * MAX_QUOTED, "{reason}");
        let escaped = Refusal::Origin("a\"b\nc".into()).reason();
        assert!(escaped.contains("\\\"b\\nc"), "{escaped}");
    }

    #[test]
    fn a_line_after_a_quiet_interval_says_how_many_were_not_logged() {
        assert_eq!(
            telemetry::held_back(0),
            "",
            "nothing to say on a first line"
        );
        assert_eq!(
            telemetry::held_back(9_999),
            " (and 9999 similar not logged since the last such line)"
        );
    }

    #[test]
    fn refused_headers_are_named_and_the_allowed_ones_listed() {
        let refusal = Refusal::new(
            &CorsError::HeadersNotAllowed,
            &headers(&[("access-control-request-headers", "authorization,X-Api-Key")]),
            &super::super::ALLOWED_HEADERS,
        );
        assert_eq!(
            refusal.reason(),
            "request header \"x-api-key\" is not allowed (allowed: authorization, content-type, \
             accept, x-requested-with, if-none-match, x-request-id)"
        );
    }
}
