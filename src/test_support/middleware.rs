//! The two layers `app.rs` wraps for `--test-support`:
//!
//! - [`Observe`], outside everything but the tracing span (so it sees the `X-Request-Id` each
//!   response leaves with): reads `Prefer`, holds the response until `delay` has passed since
//!   the request arrived, says what it honoured in `Preference-Applied`, and writes the request
//!   log. With test support off it is a pass-through (no `Box`, no parsing), so `Prefer` does
//!   nothing at all.
//! - [`Faults`], innermost in the `/delivery` scope: inside CORS, so the page can read the
//!   fault, and inside Basic auth, so a request without credentials still gets the 401 it would
//!   get from a real server whose database is down. (The public routes, `/health` and the
//!   documents, only get delays: their failures are not what a frontend's tests are about.) It answers `code=…` with the problem
//!   the layer that really answers that status would send (its headers included: `Retry-After`
//!   on a 503 or a 429, `WWW-Authenticate` on a 401), and marks the request as answered by
//!   `test-support`, so neither the log nor the metrics take it for a real failure. Every
//!   answer it lets through or gives says `Vary: Prefer`: a `Prefer` could have changed it.
//!
//! The delay is a floor on the time to answer, counted from arrival, not added to it: it holds
//! only a timer and the finished response (no CPU, no database), waits after the handler has read
//! the body (so it never eats into the body deadline), and is capped at `prefer::MAX_DELAY`.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, VARY};
use actix_web::{HttpMessage as _, ResponseError as _};
use futures_util::future::{Either, LocalBoxFuture};

use super::prefer::{PREFER, PREFERENCE_APPLIED, Preferences};
use super::requests::{Answered, RequestLog};
use crate::answered_by::{AnsweredBy, Layer};
use crate::error::ApiError;
use crate::telemetry::{self, Throttle};

const X_REQUEST_ID: &str = "x-request-id";

/// The outer layer: `Prefer` read, the delay, `Preference-Applied`, the request log. `None`:
/// test support is off, and requests go straight through.
pub struct Observe(pub Option<Arc<RequestLog>>);

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type InitError = ();
    type Transform = ObserveService<S>;
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService {
            service: Rc::new(service),
            log: self.0.clone(),
        }))
    }
}

pub struct ObserveService<S> {
    service: Rc<S>,
    log: Option<Arc<RequestLog>>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future =
        Either<S::Future, LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(log) = self.log.clone() else {
            return Either::Left(self.service.call(req));
        };
        let (arrived, wall) = (Instant::now(), SystemTime::now());
        let preferences = Preferences::parse(req.headers().get_all(PREFER));
        if !preferences.ignored.is_empty() {
            log_ignored(&preferences.ignored);
        }
        let method = telemetry::client_text(req.method().as_str());
        let path = telemetry::client_text(req.path());
        let delay = preferences.delay;
        req.extensions_mut().insert(preferences.clone()); // for `Faults`: test support is on
        let answer = self.service.call(req);
        Either::Right(Box::pin(async move {
            let mut result = answer.await;
            if let Some(delay) = delay {
                tokio::time::sleep_until((arrived + delay).into()).await;
            }
            let (status, request_id, answered_by, injected) = match &result {
                Ok(res) => {
                    let by = res
                        .request()
                        .extensions()
                        .get::<AnsweredBy>()
                        .map(|a| a.layer);
                    let id = res
                        .headers()
                        .get(X_REQUEST_ID)
                        .and_then(|v| v.to_str().ok());
                    (
                        res.status(),
                        id.map(str::to_owned),
                        by.unwrap_or(Layer::Handler),
                        by == Some(Layer::TestSupport),
                    )
                }
                Err(e) => (
                    e.as_response_error().status_code(),
                    None,
                    Layer::Handler,
                    false,
                ),
            };
            // A code is applied only if the request got as far as `Faults` (without
            // credentials, auth answered first).
            let applied = Preferences {
                code: preferences.code.filter(|_| injected),
                ..preferences
            }
            .applied();
            if let (Ok(res), Some(applied)) = (&mut result, &applied) {
                res.headers_mut()
                    .insert(PREFERENCE_APPLIED, applied.clone());
            }
            log.record(Answered {
                arrived: wall,
                method,
                path,
                status: status.as_u16(),
                request_id,
                answered_by,
                took: arrived.elapsed(),
                preference_applied: applied.and_then(|v| v.to_str().ok().map(str::to_owned)),
            });
            result
        }))
    }
}

/// `code=` or `delay=` values that could not be honoured: said once a minute (RFC 7240 forbids
/// answering them with an error, and a test that expected its 503 deserves a clue).
fn log_ignored(ignored: &[String]) {
    static LOG: Throttle = Throttle::per_minute();
    if let Some(also) = LOG.admit() {
        tracing::warn!(
            ignored = %telemetry::client_text(&ignored.join(", ")),
            also,
            "Prefer: ignored what cannot be honoured (code= takes one of {:?}; delay= takes \
             milliseconds)",
            super::prefer::CODES
        );
    }
}

/// The inner layer: answers a request whose `Prefer` asked for a `code` (as `Observe` found it)
/// with that problem; every other request goes straight through.
pub struct Faults;

impl<S, B> Transform<S, ServiceRequest> for Faults
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type InitError = ();
    type Transform = FaultsService<S>;
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(FaultsService { service }))
    }
}

pub struct FaultsService<S> {
    service: S,
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for FaultsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Either<
        futures_util::future::MapOk<
            S::Future,
            fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>,
        >,
        Ready<Answer<B>>,
    >;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        use futures_util::TryFutureExt as _;
        // `Observe` leaves the request's preferences here only when test support is on.
        let asked = req.extensions().get::<Preferences>().map(|p| p.code);
        let pass: fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> = match asked {
            Some(Some(code)) => return Either::Right(ready(Ok(inject(req, code)))),
            Some(None) => |res| vary_by_prefer(res.map_into_left_body()),
            None => ServiceResponse::map_into_left_body, // test support off
        };
        Either::Left(self.service.call(req).map_ok(pass))
    }
}

/// The fault `Prefer: code=…` asked for, in place of the answer.
fn inject<B>(req: ServiceRequest, code: StatusCode) -> ServiceResponse<EitherBody<B>> {
    let note = format!("Prefer: code={}", code.as_u16());
    AnsweredBy::mark(&req, Layer::TestSupport, "injected", Some(note));
    let problem = req.into_response(fault(code).error_response());
    vary_by_prefer(problem.map_into_right_body())
}

/// `Vary: Prefer` (RFC 7240 §2): with test support on, a `Prefer` could have turned this answer
/// into a fault, so a cache must not give it to a request whose `Prefer` differs, whether or not
/// this one sent any. (Only here: a preflight, a 401 from auth and the public routes are the same
/// whatever the `Prefer`; a delay changes when an answer comes, not what it is.) One field:
/// actix-cors, outside this layer, reads the first `Vary` field and appends its names to it.
fn vary_by_prefer<B>(mut res: ServiceResponse<B>) -> ServiceResponse<B> {
    let headers = res.headers_mut();
    let mut names: Vec<&str> = (headers.get_all(VARY))
        .filter_map(|v| v.to_str().ok())
        .collect();
    names.push("Prefer");
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(VARY, value);
    }
    res
}

/// The problem a real server answers with this status, from the layer that answers it: the same
/// body shape and headers. 5xx details are the real ones (they are generic anyway; the log line
/// names the injection); 4xx ones say they were injected.
fn fault(code: StatusCode) -> ApiError {
    let why = format!(
        "injected by Prefer: code={} (--test-support)",
        code.as_u16()
    );
    let io = || sqlx::Error::Io(std::io::Error::other(why.clone()));
    match code.as_u16() {
        401 => ApiError::Unauthorized(why),
        404 => ApiError::NotFound(why),
        408 => ApiError::RequestTimeout(why),
        409 => ApiError::Conflict(why),
        413 => ApiError::PayloadTooLarge(why),
        415 => ApiError::UnsupportedMediaType(why),
        422 => ApiError::Unprocessable(why),
        // As the login limiter says it: a minute's budget.
        429 => ApiError::TooManyRequests(
            format!("too many login attempts; retry in 60 s ({why})"),
            60,
        ),
        503 => ApiError::Unavailable(io()),
        507 => ApiError::InsufficientStorage(io()),
        500 => ApiError::Internal(anyhow::anyhow!(why)),
        _ => ApiError::BadRequest(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_that_can_be_asked_for_is_answered_with_that_status() {
        for code in super::super::prefer::CODES {
            let status = StatusCode::from_u16(code).expect("a status");
            assert_eq!(fault(status).status_code(), status, "{code}");
        }
    }
}
