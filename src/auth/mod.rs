//! HTTP Basic auth (RFC 7617), with actix-web-httpauth. `app.rs` wraps the `/delivery` scope in
//! it, so it runs for every request the router sends there, and for nothing else.
//!
//! Every rejection is an `ApiError::Unauthorized`, which actix-web-httpauth turns into an
//! `Ok(401 response)`: the CORS layer outside it then adds `Access-Control-Allow-Origin`, so the
//! page sees 401 instead of status 0. This guard never sees a preflight in the default order
//! (CORS answers those first); see `app.rs`.

pub mod authenticator;
pub mod cache;
pub mod credentials;
pub mod limits;

use std::pin::Pin;

use actix_web::dev::ServiceRequest;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, ResponseError, web};
use actix_web_httpauth::middleware::HttpAuthentication;

pub use authenticator::{AuthedUser, Authenticator, Settings};
pub use credentials::Credentials;

use crate::answered_by::{AnsweredBy, Layer};
use crate::error::ApiError;
use crate::fetch;
use crate::store::revision::{self, RevisionProbe};
use crate::telemetry::{self, Throttle};

type Validation =
    Pin<Box<dyn Future<Output = Result<ServiceRequest, (actix_web::Error, ServiceRequest)>>>>;
type Validator = fn(ServiceRequest, Result<Credentials, ApiError>) -> Validation;

/// The Basic-auth middleware. Where it is wrapped decides whether preflights ever reach it.
pub fn basic() -> HttpAuthentication<Result<Credentials, ApiError>, Validator> {
    let validator: Validator = |req, creds| Box::pin(validate(req, creds));
    HttpAuthentication::with_fn(validator)
}

/// The same middleware, for `--auth-before-cors` only: there it sees the browsers' preflights,
/// and logs (once a minute) that it answered one, so the teaching mode explains itself.
pub fn basic_before_cors() -> HttpAuthentication<Result<Credentials, ApiError>, Validator> {
    let validator: Validator = |req, creds| {
        Box::pin(async move {
            let preflight =
                fetch::is_preflight(req.method().as_str(), |h| req.headers().contains_key(h));
            let result = validate(req, creds).await;
            if let (true, Err((error, req))) = (preflight, &result) {
                let status = error.as_response_error().status_code();
                log_preflight_answered(req, status.as_u16());
                if status == StatusCode::UNAUTHORIZED {
                    let reason = "auth_before_cors_preflight";
                    AnsweredBy::mark(req, Layer::BasicAuth, reason, None);
                }
            }
            result
        })
    };
    HttpAuthentication::with_fn(validator)
}

/// Says (once a minute) that auth answered a preflight, which never carries credentials.
fn log_preflight_answered(req: &ServiceRequest, status: u16) {
    static LOGGED: Throttle = Throttle::per_minute();
    if let Some(held_back) = LOGGED.admit() {
        // Under the CORS refusals' target, where it always was: a log filter on
        // `delivery_api::cors` sees every "why did the preflight fail" line.
        tracing::warn!(
            target: "delivery_api::cors::explain",
            "preflight OPTIONS {} answered {status} by Basic auth: auth runs before CORS \
             (--auth-before-cors){}",
            telemetry::client_text(req.path()),
            telemetry::held_back(held_back)
        );
    }
}

async fn validate(
    req: ServiceRequest,
    creds: Result<Credentials, ApiError>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        return Err((
            ApiError::Internal(anyhow::anyhow!("no Authenticator")).into(),
            req,
        ));
    };
    let probe = req.app_data::<web::Data<RevisionProbe>>().cloned();
    // Why a 401 is a 401, as a metrics label: nothing sent, something unreadable, or credentials
    // that do not match a user (an unknown user and a wrong password are one reason, on purpose).
    let unreadable = match &creds {
        Ok(_) => None,
        Err(_) if !req.headers().contains_key(header::AUTHORIZATION) => Some("missing"),
        Err(_) => Some("malformed"),
    };
    let checked = async {
        let creds = creds?;
        // A deleted or replaced database file: 503 rather than answers from a ghost.
        auth.db.check()?;
        // Read once per request; the list handler reuses it from the extensions.
        let revisions = revision::current(probe.as_ref().map(|p| p.get_ref()), &auth.db).await?;
        let client = req.peer_addr().map(|a| a.ip());
        let user = auth.verify(creds, revisions.users, client).await?;
        Ok::<_, ApiError>((user, revisions))
    };
    match checked.await {
        Ok((user, revisions)) => {
            req.extensions_mut().insert(user);
            req.extensions_mut().insert(revisions);
            Ok(req)
        }
        Err(e) => {
            // For the demo page's record (`exchanges.rs`): this layer answered, not a handler.
            let (layer, reason) = match e.status_code() {
                StatusCode::TOO_MANY_REQUESTS => (Layer::LoginLimiter, "login_limited"),
                StatusCode::UNAUTHORIZED => {
                    (Layer::BasicAuth, unreadable.unwrap_or("wrong_credentials"))
                }
                _ => (Layer::BasicAuth, "error"), // 503, 500: not a rejection
            };
            AnsweredBy::mark(&req, layer, reason, None);
            Err((e.into(), req))
        }
    }
}
