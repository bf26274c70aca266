//! Each request's id and its access-log line: the root span tracing-actix-web opens for every
//! request (`app.rs` wraps it outermost, so preflights have one too).
//!
//! - **The request id** is the client's `X-Request-Id` when it is a plausible id (1 to 128
//!   characters of `A-Z a-z 0-9 - _ . : / + = @`; anything else could forge log text), else the
//!   one tracing-actix-web generated. It is a field of the request's span, so every log line
//!   written while serving the request carries it, and it is sent back as `X-Request-Id` on every
//!   response (CORS exposes it, so a page can read it).
//! - **The access log** (`--access-log`): one line per request at INFO under the target
//!   `delivery_api::access`, when the response is sent: method, path, status, which layer
//!   answered, the time taken. In text or JSON with the rest of the log (`--log-format`). Off by
//!   default: a busy server's log should say what went wrong, not everything that went right.
//!
//! Client-chosen text (the path, the user agent) goes through `telemetry::client_text`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::answered_by::AnsweredBy;
use crate::telemetry;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id taken as is.
const MAX_ID: usize = 128;

/// Whether each request gets an access-log line (`--access-log`); app data.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(pub bool);

/// The request's id, as sent back and logged; in the request's extensions.
#[derive(Debug, Clone)]
struct Id(HeaderValue);

/// When the request arrived; in the request's extensions.
struct Arrived(Instant);

/// The root span of every request (tracing-actix-web's `RootSpanBuilder`).
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let id = client_id(req).unwrap_or_else(|| generated_id(req));
        // The fields are only computed when the span is enabled (INFO): the route lookup, the
        // strings and the client text cost nothing at `RUST_LOG=warn`.
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %req.method(),
            http.route = %req.match_pattern().unwrap_or_default(),
            http.flavor = ?req.version(),
            http.scheme = %if req.app_config().secure() { "https" } else { "http" },
            http.client_ip = %req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
            http.user_agent = %telemetry::client_text(user_agent(req)),
            http.target = %telemetry::client_text(req.path()),
            http.status_code = tracing::field::Empty,
            request_id = %id.to_str().unwrap_or_default(),
        );
        let mut extensions = req.extensions_mut();
        extensions.insert(Id(id));
        extensions.insert(Arrived(Instant::now()));
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, req) = match outcome {
            Ok(res) => (res.status(), Some(res.request())),
            Err(e) => (e.as_response_error().status_code(), None),
        };
        span.record("http.status_code", status.as_u16());
        let Some(req) = req else { return };
        if !req
            .app_data::<web::Data<AccessLog>>()
            .is_some_and(|on| on.0)
        {
            return;
        }
        let extensions = req.extensions();
        let took = extensions.get::<Arrived>().map(|a| a.0.elapsed());
        let layer = extensions.get::<AnsweredBy>().map(|a| a.layer);
        let _inside = span.enter();
        tracing::info!(
            target: "delivery_api::access",
            method = %req.method(),
            path = %telemetry::client_text(req.path()),
            status = status.as_u16(),
            answered_by = ?layer.unwrap_or(crate::answered_by::Layer::Handler),
            ms = took.map(|t| t.as_secs_f64() * 1000.0).unwrap_or_default(),
            "{} {} {}",
            req.method(),
            telemetry::client_text(req.path()),
            status.as_u16(),
        );
    }
}

fn user_agent(req: &ServiceRequest) -> &str {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Sends the request's id back on its response (inside the logger, which put it there).
pub async fn echo_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.extensions().get::<Id>().cloned();
    let mut res = next.call(req).await?;
    if let Some(Id(id)) = id {
        res.headers_mut().insert(X_REQUEST_ID, id);
    }
    Ok(res)
}

/// The client's `X-Request-Id`, if it is one id and a plausible one.
fn client_id(req: &ServiceRequest) -> Option<HeaderValue> {
    let mut values = req.headers().get_all(X_REQUEST_ID);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    let plausible = (1..=MAX_ID).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b));
    plausible.then(|| value.clone())
}

/// The id tracing-actix-web gave the request, written once into the header value.
fn generated_id(req: &ServiceRequest) -> HeaderValue {
    let Some(id) = req.extensions().get::<RequestId>().copied() else {
        return HeaderValue::from_static("-");
    };
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::from(id).hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn id_of(value: &[u8]) -> Option<HeaderValue> {
        let req = TestRequest::default()
            .insert_header((X_REQUEST_ID, HeaderValue::from_bytes(value).expect("value")))
            .to_srv_request();
        client_id(&req)
    }

    #[test]
    fn a_plausible_client_id_is_kept_and_anything_else_replaced() {
        assert!(id_of(b"3f2c9a1e-7b44-4c1d-9d4e-0a6b2f1c8e77").is_some());
        assert!(id_of(b"checkout:step-2/retry=1").is_some());
        assert!(id_of(b"").is_none());
        assert!(id_of(b"has space").is_none());
        assert!(id_of(b"quote\"d").is_none());
        assert!(id_of("caf\u{e9}".as_bytes()).is_none());
        assert!(id_of(&[b'a'; MAX_ID]).is_some());
        assert!(id_of(&[b'a'; MAX_ID + 1]).is_none());
    }
}
