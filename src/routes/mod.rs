//! The route tree, in two parts that `app.rs` wraps differently: the public routes, and the
//! protected ones (everything under `/delivery`, behind Basic auth). Also the extractor settings
//! that turn every bad input into problem+json.

pub mod delivery;
pub mod health;
pub mod openapi;
pub mod problems;

use actix_web::error::{JsonPayloadError, PathError, PayloadError};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// JSON bodies above this size get 413.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Public: no credentials needed. A route added here is readable by anyone, so keep it short.
pub fn public(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(openapi::configure)
        .default_service(web::to(not_found));
}

/// Mounted at `/delivery` behind Basic auth (app.rs): its routes, and its 404s, need credentials.
pub fn protected(cfg: &mut web::ServiceConfig) {
    cfg.configure(delivery::configure)
        .default_service(web::to(not_found));
}

/// Extractor settings for the whole app: bad bodies, paths and queries become problem+json.
pub fn extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(path_config())
        .app_data(query_config());
}

/// Every operation but `GET /delivery/all` takes no query parameters: one sent anyway is a 400
/// naming it, rather than ignored as if it had done something (`/delivery/1?fields=id`).
pub fn no_query(req: &HttpRequest) -> Result<(), ApiError> {
    match url::form_urlencoded::parse(req.query_string().as_bytes()).next() {
        None => Ok(()),
        Some((name, _)) => Err(ApiError::BadRequest(format!(
            "unknown query parameter `{name}`: {} {} takes none",
            req.method(),
            req.match_pattern().unwrap_or_else(|| req.path().to_owned())
        ))),
    }
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no resource at {}", req.path())))
}

/// A resource's fallback for methods it does not serve: 405 with `Allow` (RFC 9110 §15.5.6).
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(
            format!("{} is not allowed here", req.method()),
            allow,
        ))
    })
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge(format!("JSON bodies are limited to {MAX_JSON_BODY} bytes"))
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Unprocessable(format!("invalid delivery: {e}"))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        JsonPayloadError::Payload(PayloadError::Io(e))
            if e.kind() == std::io::ErrorKind::TimedOut =>
        {
            ApiError::RequestTimeout(format!("{e}: send the whole body within the time allowed"))
        }
        other => ApiError::BadRequest(format!("cannot read the request body: {other}")),
    }
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("invalid query string: {err}")).into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        let PathError::Deserialize(_) = err else {
            return ApiError::BadRequest(err.to_string()).into();
        };
        ApiError::NotFound(format!(
            "no resource at {}: a delivery id is a whole number",
            req.path()
        ))
        .into()
    })
}
