//! Which layer answered a request, when it was not a handler: the CORS policy (preflights),
//! Basic auth and its login limiter (refusals) each put an [`AnsweredBy`] in the request's
//! extensions; the metrics and the demo page's record read it on the final response. A leaf: it
//! knows nothing of the layers that write it or the ones that read it.

use actix_web::HttpMessage;
use serde::Serialize;

/// The layer that answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// actix-cors answered a preflight itself (passed or refused): nothing inside it ran.
    CorsPreflight,
    /// Basic auth refused the request (missing or wrong credentials, or it could not check).
    BasicAuth,
    /// Too many failed logins: refused before any password check (429).
    LoginLimiter,
    /// `--test-support` answered with the fault the request asked for (`Prefer: code=…`).
    TestSupport,
    /// It went through to the routes (a handler, or the router's 404/405).
    Handler,
}

/// Put in a request's extensions by the layer that answered it instead of passing it on.
#[derive(Debug, Clone)]
pub struct AnsweredBy {
    pub layer: Layer,
    /// The kind of answer, from a fixed set (`allowed`, `origin`, `missing`, `wrong_credentials`…):
    /// a metrics label (`metrics.rs`), so never text a client chose.
    pub reason: &'static str,
    /// Why, when the layer refused (e.g. a refused preflight's rule); never a credential.
    pub note: Option<String>,
}

impl AnsweredBy {
    /// Marks `req` as answered by `layer`, for `reason`.
    pub fn mark(req: &impl HttpMessage, layer: Layer, reason: &'static str, note: Option<String>) {
        req.extensions_mut().insert(Self {
            layer,
            reason,
            note,
        });
    }
}
