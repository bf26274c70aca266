//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Every rejection is returned as a *response* (never as a bare middleware error), so the CORS
//! layer outside it can add `Access-Control-Allow-Origin` and the page can read the status.
//! Details of 5xx errors are logged, never sent. Storage failures (full disk, database
//! unavailable) are logged at most once a minute per kind, with a count of the ones in between:
//! a flood of writes to a full disk must not fill the disk further with log lines.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::{Failure, StoreError};
use crate::telemetry::Throttle;

pub const REALM_CHALLENGE: &str = r#"Basic realm="delivery-api", charset="UTF-8""#;
pub const PROBLEM_JSON: &str = "application/problem+json";

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whoever asks (the test-support bind refuses requests made by a page).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String, &'static str),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Too many login attempts; retry after this many seconds.
    #[error("{0}")]
    TooManyRequests(String, u64),
    /// The database is unreachable, read-only or locked: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The disk is full: the write was not stored (and not acknowledged).
    #[error("storage full: {0}")]
    InsufficientStorage(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// One outcome answered to several requests (concurrent logins with the same credentials).
    #[error(transparent)]
    Shared(std::sync::Arc<ApiError>),
}

/// An RFC 9457 problem: every error this API answers has this body, as
/// `application/problem+json`. `type` stays `about:blank`, so `title` is the status phrase.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[schema(example = "about:blank")]
    r#type: &'static str,
    /// The status's reason phrase, e.g. `Unauthorized`.
    title: &'a str,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What was wrong with this request, for a person to read (generic for 5xx).
    detail: String,
}

/// The store's errors, mapped to HTTP here and nowhere else: a unique reference is 409, a full
/// disk 507, an unavailable database 503.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => e.into(),
            duplicate @ StoreError::DuplicateReference(_) => Self::Conflict(duplicate.to_string()),
            StoreError::Failed(failure, why) => {
                let e = sqlx::Error::Io(std::io::Error::other(why));
                match failure {
                    Failure::Full => Self::InsufficientStorage(e),
                    Failure::Unavailable => Self::Unavailable(e),
                    Failure::Other => Self::Internal(e.into()),
                }
            }
            StoreError::Other(e) => Self::Internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match crate::store::classify(&e) {
            Failure::Full => Self::InsufficientStorage(e),
            Failure::Unavailable => Self::Unavailable(e),
            Failure::Other => Self::Internal(e.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Shared(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Shared(e) = self {
            return e.error_response();
        }
        let status = self.status_code();
        let detail = match self {
            Self::Unavailable(e) => {
                static LOG: Throttle = Throttle::per_minute();
                if let Some(also) = LOG.admit() {
                    tracing::warn!(error = %e, also, "database unavailable");
                }
                "The database is temporarily unavailable; retry shortly.".to_owned()
            }
            Self::InsufficientStorage(e) => {
                static LOG: Throttle = Throttle::per_minute();
                if let Some(also) = LOG.admit() {
                    tracing::error!(
                        error = %e,
                        also,
                        "the database's disk is full: writes are refused with 507 (nothing is \
                         acknowledged that was not stored) until space is freed"
                    );
                }
                "The server has no space left to store this; nothing was changed.".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "An unexpected error occurred; it has been logged.".to_owned()
            }
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, REALM_CHALLENGE));
            }
            Self::MethodNotAllowed(_, allow) => {
                res.insert_header((header::ALLOW, *allow));
            }
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::RequestTimeout(_) => {
                res.insert_header((header::CONNECTION, "close"));
            }
            Self::TooManyRequests(_, secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        res.json(Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use sqlx::SqlitePool;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;
    use crate::store::{self, Failure, classify};

    /// A database SQLite can only read (a read-only file, mount or connection) answers writes
    /// with SQLITE_READONLY: that is "unavailable" (503 + Retry-After), not a bug (500).
    /// (chmod/chattr on the file cannot show this on a running server: its connections were
    /// opened read-write and keep writing.)
    #[tokio::test]
    async fn a_read_only_database_is_unavailable_not_an_internal_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = store::Settings {
            url: format!("sqlite://{}", dir.path().join("ro.db").display()),
            busy_timeout: std::time::Duration::from_millis(100),
        };
        store::connect(&args)
            .await
            .expect("created")
            .db
            .close()
            .await;
        let options = SqliteConnectOptions::from_str(&args.url)
            .expect("url")
            .read_only(true);
        let pool = SqlitePool::connect_with(options)
            .await
            .expect("read-only pool");

        let err = sqlx::query(
            "INSERT INTO deliveries (reference, recipient, address) VALUES ('R', 'A', 'B')",
        )
        .execute(&pool)
        .await
        .expect_err("read-only");

        assert_eq!(classify(&err), Failure::Unavailable, "{err}");
        let api = ApiError::from(err);
        assert_eq!(api.status_code().as_u16(), 503);
        assert_eq!(
            api.error_response()
                .headers()
                .get("retry-after")
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
    }
}
