//! The CORS policy (WHATWG Fetch, "CORS protocol"), built with actix-cors.
//!
//! A browser sends the preflight `OPTIONS` *without* credentials, so this layer must answer it
//! before Basic auth ever runs; see `app.rs` for where it sits. actix-cors answers preflights
//! itself and never calls the services it wraps. Over 300 lines with its tests: the policy and
//! the origin parsing it needs are one thing, and are tested against the real actix-cors
//! middleware. Why a preflight was refused, for the body and the log: `explain.rs`.

mod explain;

use std::fmt;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;

use actix_cors::{Cors, CorsError, CorsMiddleware};
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, header};

use crate::answered_by::{AnsweredBy, Layer};
use crate::error::ApiError;
use crate::fetch;

/// Request headers a page may send, named one by one: the `*` wildcard never covers
/// Authorization (Fetch standard). X-Requested-With: some HTTP clients (older Angular
/// interceptors, jQuery) still add it. X-Request-Id: a test or a page naming its request in the
/// server's log (`access.rs`). `--allow-header` adds to these.
const ALLOWED_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("x-requested-with"),
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-request-id"),
];

/// Response headers a page may read (without this, it cannot read them on a 401, a 201, a page
/// of the list). `--expose-header` adds to these.
const EXPOSED_HEADERS: [HeaderName; 7] = [
    header::WWW_AUTHENTICATE,
    header::LOCATION,
    header::RETRY_AFTER,
    header::ETAG,
    header::LINK,
    HeaderName::from_static("x-total-count"),
    HeaderName::from_static("x-request-id"),
];

/// One `--allow-header` / `--expose-header` value: a header name, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderRule {
    Any,
    Name(HeaderName),
}

impl HeaderRule {
    /// A valid HTTP field name (RFC 9110 §5.1: a token), lower-cased as browsers send it; or `*`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        HeaderName::from_bytes(raw.as_bytes())
            .map(Self::Name)
            .map_err(|_| {
                format!("{raw:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
            })
    }
}

/// Methods the frontend may use. Preflights only ever ask for non-safelisted ones, but listing
/// GET/HEAD too is harmless and reads clearly.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The methods this server allows (no flag changes them) and the request headers it allows
/// whatever its flags (`--allow-header` adds to them). The doctor compares a refused preflight
/// with them when the file it reads lacks the refusal's body (`preflight --har`).
pub fn always_allowed() -> (Vec<String>, Vec<String>) {
    (
        METHODS.iter().map(ToString::to_string).collect(),
        ALLOWED_HEADERS
            .iter()
            .map(|h| h.as_str().to_owned())
            .collect(),
    )
}

/// One allowed origin: a browser's serialised origin (`scheme://host[:port]`), or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    Any,
    Exact(String),
}

impl FromStr for AllowedOrigin {
    type Err = String;

    /// Accepts exactly what a browser puts in `Origin`: scheme, host and optional port, nothing
    /// else. A path, a trailing slash, a query or user info would never match byte for byte, so
    /// they are refused here instead of silently never matching.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        let bad = |why: &str| {
            Err(format!(
                "invalid allowed origin {raw:?}: {why} (expected scheme://host[:port], e.g. http://localhost:4200)"
            ))
        };
        if raw.contains('*') {
            // `http://*.example.com` would parse as a host literally named `*.example.com`,
            // which no page has: the Fetch standard matches origins byte for byte, and
            // actix-cors has no patterns. Refused, so it is not silently never matched.
            return bad(
                "`*` is allowed only alone (any origin); wildcard subdomains are not supported: \
                 list each origin",
            );
        }
        match crate::fetch::serialized_origin(raw) {
            Ok(serialized) => Ok(Self::Exact(serialized)),
            Err(why) => bad(&why),
        }
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(origin) => f.write_str(origin),
        }
    }
}

/// What the policy is built from; checked once at start-up by [`CorsConfig::validate`].
#[derive(Debug, Clone)]
pub struct CorsConfig {
    pub origins: Vec<AllowedOrigin>,
    pub allow_credentials: bool,
    pub max_age_secs: usize,
    /// Added to [`ALLOWED_HEADERS`] / [`EXPOSED_HEADERS`].
    pub allow_headers: Vec<HeaderRule>,
    pub expose_headers: Vec<HeaderRule>,
}

impl CorsConfig {
    /// Refuses configurations a browser would reject or that would be unsafe.
    pub fn validate(&self) -> Result<(), String> {
        if self.origins.is_empty() {
            return Err("no allowed origin: pass --allowed-origin http://localhost:4200".into());
        }
        let any = self.origins.contains(&AllowedOrigin::Any);
        if any && self.allow_credentials {
            return Err(
                "`*` as an allowed origin cannot be combined with credentials (the Fetch standard \
                 forbids `Access-Control-Allow-Origin: *` with `Access-Control-Allow-Credentials`): \
                 list the exact origins, or pass --allow-credentials false"
                    .into(),
            );
        }
        if any && self.origins.len() > 1 {
            return Err("`*` already allows every origin: list exact origins or `*` alone".into());
        }
        for (flag, rules) in [
            ("--allow-header", &self.allow_headers),
            ("--expose-header", &self.expose_headers),
        ] {
            if self.allow_credentials && rules.contains(&HeaderRule::Any) {
                return Err(format!(
                    "`{flag} *` cannot be combined with credentials: with credentials a browser \
                     takes `*` as a header literally named \"*\", and `*` never covers \
                     Authorization anyway (Fetch standard). Name each header ({flag} x-trace-id)"
                ));
            }
        }
        Ok(())
    }

    /// Every request header a page may send (the defaults, then `--allow-header`), or `None`
    /// for any (`*`, without credentials only).
    pub fn allowed_headers(&self) -> Option<Vec<HeaderName>> {
        with_defaults(&ALLOWED_HEADERS, &self.allow_headers)
    }

    fn exposed_headers(&self) -> Option<Vec<HeaderName>> {
        with_defaults(&EXPOSED_HEADERS, &self.expose_headers)
    }

    /// The CORS middleware: actix-cors, whose refusals are rewritten as problem+json. Cheap:
    /// built once per worker for each scope.
    pub fn policy(&self) -> Policy {
        let origins: Vec<String> = self.origins.iter().map(ToString::to_string).collect();
        Policy {
            cors: self.cors(),
            allowed_origins: origins.join(", ").into(),
            allowed_headers: self.allowed_headers().map(Rc::from),
        }
    }

    fn cors(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods(METHODS)
            .max_age(self.max_age_secs);
        cors = match self.allowed_headers() {
            Some(names) => cors.allowed_headers(names),
            None => cors.allow_any_header(),
        };
        cors = match self.exposed_headers() {
            Some(names) => cors.expose_headers(names),
            None => cors.expose_any_header(),
        };
        for origin in &self.origins {
            cors = match origin {
                AllowedOrigin::Exact(origin) => cors.allowed_origin(origin),
                AllowedOrigin::Any => cors.allow_any_origin().send_wildcard(),
            };
        }
        if self.allow_credentials {
            cors = cors.supports_credentials();
        }
        cors
    }
}

/// The defaults plus the extra names (each once), or `None` when `*` is among them.
fn with_defaults(defaults: &[HeaderName], extra: &[HeaderRule]) -> Option<Vec<HeaderName>> {
    let mut names = defaults.to_vec();
    for rule in extra {
        match rule {
            HeaderRule::Any => return None,
            HeaderRule::Name(name) if !names.contains(name) => names.push(name.clone()),
            HeaderRule::Name(_) => {}
        }
    }
    Some(names)
}

/// actix-cors, plus one thing it lacks: it refuses a preflight with a bare `400` in plain text
/// and no `Vary`. The status stays 400 (any non-2xx fails the preflight in the browser, which
/// ignores the body), but the body becomes problem+json saying which rule failed, for the curl
/// user and the test that reads it, and `Vary` says the answer depends on the request's Origin
/// and Access-Control-Request-* headers, so no cache serves it to another page. And the server's
/// log says why, with the flag that fixes it (`explain.rs`): actix-cors logs nothing.
pub struct Policy {
    cors: Cors,
    /// For the log line of a refused origin.
    allowed_origins: Rc<str>,
    /// For the explanation of refused headers (`None`: any).
    allowed_headers: Option<Rc<[HeaderName]>>,
}

impl<S, B> Transform<S, ServiceRequest> for Policy
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type InitError = ();
    type Transform = ExplainRefusals<CorsMiddleware<S>>;
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // actix-cors builds its middleware synchronously (a `Ready` future).
        let cors = self.cors.new_transform(service).into_inner();
        let allowed_origins = self.allowed_origins.clone();
        let allowed_headers = self.allowed_headers.clone();
        ready(cors.map(|cors| ExplainRefusals {
            cors,
            allowed_origins,
            allowed_headers,
        }))
    }
}

pub struct ExplainRefusals<S> {
    cors: S,
    allowed_origins: Rc<str>,
    allowed_headers: Option<Rc<[HeaderName]>>,
}

type Answer<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for ExplainRefusals<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<EitherBody<B>>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Answer<B>;

    forward_ready!(cors);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        explain::log_if_not_a_preflight(&req);
        let preflight = fetch::is_preflight(req.method().as_str(), |name| {
            req.headers().contains_key(name)
        });
        let answer = self.cors.call(req);
        let allowed_origins = self.allowed_origins.clone();
        let allowed_headers = self.allowed_headers.clone();
        Box::pin(async move {
            let res = answer.await?;
            let Some(refusal) = res
                .response()
                .error()
                .and_then(|e| e.as_error::<CorsError>())
            else {
                if preflight {
                    AnsweredBy::mark(res.request(), Layer::CorsPreflight, "allowed", None);
                }
                return Ok(res);
            };
            let allowed_headers = allowed_headers.as_deref().unwrap_or_default();
            let refusal = explain::Refusal::new(refusal, res.request().headers(), allowed_headers);
            let note = format!("refused: {}", refusal.reason());
            AnsweredBy::mark(
                res.request(),
                Layer::CorsPreflight,
                refusal.kind(),
                Some(note),
            );
            refusal.log(&allowed_origins);
            let detail = format!("CORS preflight refused: {}", refusal.reason());
            let mut problem = ApiError::BadRequest(detail).error_response();
            problem.headers_mut().insert(
                header::VARY,
                HeaderValue::from_static(
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                ),
            );
            Ok(res.into_response(problem.map_into_right_body()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> AllowedOrigin {
        AllowedOrigin::Exact(s.to_owned())
    }

    #[test]
    fn a_wildcard_inside_an_origin_is_refused_with_the_reason() {
        for raw in [
            "http://*.example.com",
            "https://app.*.com",
            "*://localhost:4200",
        ] {
            let err = raw.parse::<AllowedOrigin>().expect_err(raw);
            assert!(
                err.contains("wildcard subdomains are not supported"),
                "{raw}: {err}"
            );
        }
        assert_eq!("*".parse::<AllowedOrigin>(), Ok(AllowedOrigin::Any));
    }

    #[test]
    fn origins_are_normalised_the_way_browsers_serialise_them() {
        for (input, expected) in [
            ("http://localhost:4200", exact("http://localhost:4200")),
            ("HTTP://LocalHost:4200", exact("http://localhost:4200")),
            ("https://example.com:443", exact("https://example.com")),
            ("http://127.0.0.1:8080", exact("http://127.0.0.1:8080")),
            ("http://[::1]:4200", exact("http://[::1]:4200")),
            ("*", AllowedOrigin::Any),
        ] {
            assert_eq!(input.parse::<AllowedOrigin>(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn origins_that_can_never_match_are_refused_with_the_reason() {
        for (input, reason) in [
            ("localhost:4200", "no scheme"),
            ("http://localhost:4200/", "trailing slash"),
            ("http://localhost:4200/app", "no path"),
            ("http://user@localhost:4200", "user info"),
            ("http://localhost:4200?x", "query"),
            ("ftp://localhost", "http or https"),
            ("http://", "no host"),
            ("http://localhost:99999", "invalid port"),
            ("null", "no scheme"),
        ] {
            let err = input.parse::<AllowedOrigin>().expect_err(input);
            assert!(err.contains(reason), "{input}: {err}");
            assert!(err.contains(input), "the message names the origin: {err}");
        }
    }

    #[test]
    fn header_flags_take_header_names_or_a_star() {
        let name = |s: &'static str| HeaderRule::Name(HeaderName::from_static(s));
        assert_eq!(HeaderRule::parse("X-Request-Id"), Ok(name("x-request-id")));
        assert_eq!(
            HeaderRule::parse(" x-xsrf-token "),
            Ok(name("x-xsrf-token"))
        );
        assert_eq!(HeaderRule::parse("*"), Ok(HeaderRule::Any));
        for bad in ["", "x request", "x:y", "é", "a\nb"] {
            let err = HeaderRule::parse(bad).expect_err(bad);
            assert!(err.contains("not an HTTP header name"), "{bad}: {err}");
        }
    }

    #[test]
    fn extra_headers_add_to_the_defaults_and_a_star_needs_no_credentials() {
        let mut config = CorsConfig {
            origins: vec![exact("http://localhost:4200")],
            allow_credentials: true,
            max_age_secs: 600,
            allow_headers: vec![
                HeaderRule::parse("x-trace-id").expect("name"),
                HeaderRule::parse("Authorization").expect("name"),
            ],
            expose_headers: vec![],
        };
        let allowed = config.allowed_headers().expect("a list");
        assert_eq!(allowed.len(), ALLOWED_HEADERS.len() + 1, "{allowed:?}");
        assert_eq!(allowed.last().map(HeaderName::as_str), Some("x-trace-id"));

        for star_in_allow in [true, false] {
            let (allow, expose) = if star_in_allow {
                (vec![HeaderRule::Any], vec![])
            } else {
                (vec![], vec![HeaderRule::Any])
            };
            config.allow_headers = allow;
            config.expose_headers = expose;
            config.allow_credentials = true;
            let err = config.validate().expect_err("* with credentials");
            assert!(err.contains("never covers Authorization"), "{err}");
            config.allow_credentials = false;
            assert_eq!(config.validate(), Ok(()));
        }
    }

    #[test]
    fn wildcard_with_credentials_is_refused() {
        let config = CorsConfig {
            origins: vec![AllowedOrigin::Any],
            allow_credentials: true,
            max_age_secs: 600,
            allow_headers: vec![],
            expose_headers: vec![],
        };
        assert!(config.validate().is_err());
        let config = CorsConfig {
            allow_credentials: false,
            ..config
        };
        assert!(config.validate().is_ok());
    }
}

/// Properties over generated origins, checked against the real actix-cors middleware.
#[cfg(test)]
mod properties {
    use actix_web::test as actix_test;
    use actix_web::{App, HttpResponse, web};
    use proptest::prelude::*;

    use super::*;

    /// The preflight's Access-Control-Allow-Origin for `origin`, from a policy allowing `allowed`.
    fn acao(allowed: &str, origin: &str) -> Option<String> {
        let config = CorsConfig {
            origins: vec![allowed.parse().expect("valid")],
            allow_credentials: true,
            max_age_secs: 600,
            allow_headers: vec![],
            expose_headers: vec![],
        };
        actix_web::rt::System::new().block_on(async {
            let app = actix_test::init_service(
                App::new()
                    .wrap(config.policy())
                    .default_service(web::to(HttpResponse::Ok)),
            )
            .await;
            let req = actix_test::TestRequest::default()
                .method(Method::OPTIONS)
                .uri("/delivery/all")
                .insert_header((header::ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "GET"))
                .insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization"))
                .to_request();
            let res = actix_test::call_service(&app, req).await;
            res.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn no_origin_differing_in_scheme_host_or_port_is_ever_allowed(
            secure in any::<bool>(),
            host in "[a-z]{1,8}(\\.[a-z]{2,4})?",
            port in proptest::option::of(1u16..=65534),
            extra in "[a-z0-9]{1,4}",
            mutation in 0..6usize,
        ) {
            let scheme = if secure { "https" } else { "http" };
            let with_port = |h: &str, p: Option<u16>| match p {
                Some(p) => format!("{scheme}://{h}:{p}"),
                None => format!("{scheme}://{h}"),
            };
            let allowed = with_port(&host, port);
            let AllowedOrigin::Exact(serialized) = allowed.parse::<AllowedOrigin>().expect("valid") else {
                unreachable!()
            };
            let other_scheme = if secure { "http" } else { "https" };
            let candidate = match mutation {
                0 => serialized.replacen(scheme, other_scheme, 1),
                1 => format!("{serialized}.{extra}"),
                2 => serialized.replacen("://", &format!("://{extra}."), 1),
                3 => with_port(&host, Some(port.map_or(8080, |p| p + 1))),
                4 => format!("{serialized}/"),
                _ => serialized.replacen(&host, &format!("{host}{extra}"), 1),
            };
            prop_assume!(candidate != serialized);
            prop_assert_eq!(acao(&allowed, &candidate), None, "{} allowed {}", allowed, candidate);
            prop_assert_eq!(acao(&allowed, &serialized), Some(serialized.clone()));
        }

        #[test]
        fn parsing_never_panics_and_accepts_only_what_it_can_echo(raw in "\\PC{0,40}") {
            if let Ok(AllowedOrigin::Exact(origin)) = raw.parse::<AllowedOrigin>() {
                prop_assert!(origin.starts_with("http://") || origin.starts_with("https://"));
                prop_assert!(!origin.ends_with('/'));
                prop_assert_eq!(origin.parse::<AllowedOrigin>(), Ok(AllowedOrigin::Exact(origin.clone())));
            }
        }
    }
}
