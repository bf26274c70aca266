//! The error responses every route shares, each an RFC 9457 problem (`error.rs` renders them),
//! described once for the OpenAPI document and referenced by status from the handlers'
//! `#[utoipa::path]` annotations, so that "what a 401 carries" is written once.

use utoipa::ToResponse;

use crate::error::Problem;

macro_rules! problem_response {
    ($name:ident, $description:literal $(, $header:literal = $what:literal)*) => {
        #[derive(ToResponse)]
        #[response(
            description = $description,
            content_type = "application/problem+json",
            headers($(($header = String, description = $what)),*)
        )]
        #[allow(dead_code)] // a description of a response, never built
        pub struct $name(Problem<'static>);
    };
}

problem_response!(
    BadRequest,
    "Malformed request: JSON that does not parse, an invalid query string, or two different \
     `Content-Length` values (any route)."
);
problem_response!(
    Unauthorized,
    "Missing, malformed or wrong credentials.",
    "WWW-Authenticate" = "`Basic realm=\"delivery-api\", charset=\"UTF-8\"`"
);
problem_response!(
    NotFound,
    "No such delivery, or the id is not a whole number."
);
problem_response!(
    RequestTimeout,
    "The request body did not arrive in time (--body-timeout); the connection is closed.",
    "Connection" = "`close`"
);
problem_response!(Conflict, "Another delivery already has this `reference`.");
problem_response!(PayloadTooLarge, "The body is over 64 KiB.");
problem_response!(
    UnsupportedMediaType,
    "The body is not sent as `Content-Type: application/json` (`application/merge-patch+json` \
     for a PATCH)."
);
problem_response!(
    Unprocessable,
    "Valid JSON that is not a delivery: the detail names the field (unknown, missing, wrong \
     type, unknown status, empty, over 500 characters, control characters)."
);
problem_response!(
    TooManyRequests,
    "Too many login attempts from this client or for this user.",
    "Retry-After" = "Seconds to wait."
);
problem_response!(
    Unavailable,
    "The database is busy, locked, read-only or gone: retry shortly.",
    "Retry-After" = "Seconds to wait."
);
problem_response!(InsufficientStorage, "The disk is full: nothing was stored.");
problem_response!(
    Internal,
    "An unexpected error; details are logged, not sent."
);
