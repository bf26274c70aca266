//! The route tree, in two parts that `app.rs` wraps differently: the public routes, and the
//! protected ones (everything under `/delivery`, behind Basic auth). Also the extractor settings
//! that turn every bad input into problem+json.

pub mod delivery;
pub mod health;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::error::ApiError;

/// JSON bodies above this size get 413.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Public: no credentials needed. A route added here is readable by anyone, so keep it short.
pub fn public(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
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

/// Two different `Content-Length` values make a request's length ambiguous (RFC 9110 §8.6): an
/// intermediary may frame it one way and the server another. HTTP/1.1 parsing already refuses
/// them; over HTTP/2 the h2 crate uses the first value and ignores the rest, so refuse here.
/// Repeats of one value are merged into one, as §8.6 allows (actix-web's JSON extractor assumes a
/// single value, asserting it in debug builds, because its HTTP/1.1 decoder guarantees one).
pub async fn refuse_conflicting_content_length(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut values = req.headers().get_all(header::CONTENT_LENGTH);
    if let (Some(first), Some(_)) = (values.next().cloned(), values.next()) {
        let same =
            |v: &header::HeaderValue| v.as_bytes().trim_ascii() == first.as_bytes().trim_ascii();
        if !req.headers().get_all(header::CONTENT_LENGTH).all(same) {
            let refusal = ApiError::BadRequest("conflicting Content-Length values".into());
            return Ok(req
                .into_response(refusal.error_response())
                .map_into_right_body());
        }
        req.headers_mut().insert(header::CONTENT_LENGTH, first);
    }
    Ok(next.call(req).await?.map_into_left_body())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
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
