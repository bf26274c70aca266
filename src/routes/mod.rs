//! The route tree, in two parts that `app.rs` wraps differently: the public routes, and the
//! protected ones (everything under `/delivery`, behind Basic auth). Also the extractor settings
//! that turn every bad input into problem+json.

pub mod delivery;
pub mod health;
pub mod input;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::BoxedPayloadStream;
use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, PayloadError};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_core::Stream;

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

/// How long a request body may take to arrive, from the end of the request head.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// What is wrong with a request's body comes to light here, before any handler runs:
///
/// - Two different `Content-Length` values make its length ambiguous (RFC 9110 §8.6): an
///   intermediary may frame it one way and the server another. HTTP/1.1 parsing already refuses
///   them; over HTTP/2 the h2 crate uses the first value and ignores the rest: 400 here. Repeats
///   of one value are merged into one, as §8.6 allows (actix-web's JSON extractor assumes a
///   single value, asserting it in debug builds, because its HTTP/1.1 decoder guarantees one).
/// - A body that trickles in holds a connection (or an HTTP/2 stream) for as long as the client
///   likes: past [`BodyTimeout`] reading it fails, the handler answers 408, and the connection
///   is closed (actix-http cannot reuse one whose body was not read to the end).
pub async fn bound_request_body(
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
    let bodiless = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0");
    if let (false, Some(timeout)) = (bodiless, req.app_data::<BodyTimeout>().copied()) {
        let body = Deadline {
            body: req.take_payload(),
            deadline: Box::pin(tokio::time::sleep(timeout.0)),
        };
        req.set_payload(Payload::from(Box::pin(body) as BoxedPayloadStream));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A request body that fails with `TimedOut` once its deadline has passed.
struct Deadline {
    body: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.body).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow");
            return Poll::Ready(Some(Err(PayloadError::Io(late))));
        }
        Poll::Pending
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
