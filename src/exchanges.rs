//! What the server saw, for the demo page: a small record of the recent exchanges whose `Origin`
//! is the demo page's own, and which layer answered each one.
//!
//! A blocked response is status 0 to the page whatever the cause (auth before CORS, an origin not
//! allowed, a certificate the browser does not trust): the browser hides the details from
//! JavaScript on purpose. The server knows which layer answered, so it writes that down, and the
//! page reads it back from its own origin (`GET /exchanges` on the demo page's bind, same-origin,
//! no CORS involved; the API's bind never serves it).
//!
//! How "which layer" is known: a layer that answers a request itself puts an `AnsweredBy` in the
//! request's extensions (the CORS policy for preflights, Basic auth and its login limiter for
//! their refusals); no marker means the request went through to the routes. [`Recorder`], wrapped
//! outside every scope in `app.rs`, reads it on the final response, CORS headers included.
//!
//! Bounded by construction: [`CAPACITY`] entries, every string cut to [`MAX_TEXT`], at most
//! [`MAX_CORS_HEADERS`] headers each. Never the value of `Authorization`, only whether it was
//! there. A request from any other origin costs one header comparison per page alias.

use std::collections::VecDeque;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap};
use futures_util::future::{Either, LocalBoxFuture};
use parking_lot::Mutex;
use serde::Serialize;

use crate::answered_by::{AnsweredBy, Layer};

/// How many exchanges are kept (the oldest go first).
pub const CAPACITY: usize = 64;
/// Longest path, header value or note kept, in bytes (cut on a character boundary).
pub const MAX_TEXT: usize = 200;
/// Most CORS response headers kept per exchange.
pub const MAX_CORS_HEADERS: usize = 10;

/// One exchange as the server saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Increases by one per recorded exchange: the page asks for those after the last it saw.
    pub seq: u64,
    pub origin: String,
    pub method: String,
    /// The path as sent (no query string).
    pub path: String,
    /// A preflight's `Access-Control-Request-Method` and `-Headers`.
    pub requested_method: Option<String>,
    pub requested_headers: Option<String>,
    /// Whether the request carried `Authorization`. Its value is never kept.
    pub authorization: bool,
    pub layer: Layer,
    pub note: Option<String>,
    pub status: u16,
    /// The `Access-Control-*` headers of the response, as sent.
    pub cors_headers: Vec<(String, String)>,
}

/// The record, shared by the API's workers (writing) and the demo page (reading).
#[derive(Debug)]
pub struct Exchanges {
    /// The origins the demo page can be opened as: the one it is announced as, and its loopback
    /// aliases (127.0.0.1, [::1]), so the page opened as another name still sees what happened.
    origins: Vec<String>,
    inner: Mutex<(u64, VecDeque<Exchange>)>,
}

impl Exchanges {
    pub fn new(origins: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            origins,
            inner: Mutex::new((0, VecDeque::with_capacity(CAPACITY))),
        })
    }

    /// The origin the request came from, if it is one of the demo page's.
    fn page_origin(&self, headers: &HeaderMap) -> Option<&str> {
        let origin = headers.get(header::ORIGIN)?.as_bytes();
        self.origins
            .iter()
            .find(|o| o.as_bytes() == origin)
            .map(String::as_str)
    }

    fn push(&self, mut exchange: Exchange) {
        let mut inner = self.inner.lock();
        inner.0 += 1;
        exchange.seq = inner.0;
        if inner.1.len() == CAPACITY {
            inner.1.pop_front();
        }
        inner.1.push_back(exchange);
    }

    /// The kept exchanges with `seq` above `after`, oldest first.
    pub fn since(&self, after: u64) -> Vec<Exchange> {
        let inner = self.inner.lock();
        inner.1.iter().filter(|e| e.seq > after).cloned().collect()
    }

    /// The `seq` of the last exchange recorded (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().0
    }
}

/// The request half of an exchange, taken before the request is passed on.
struct Seen {
    origin: String,
    method: String,
    path: String,
    requested_method: Option<String>,
    requested_headers: Option<String>,
    authorization: bool,
}

impl Seen {
    fn of(req: &ServiceRequest, origin: &str) -> Self {
        let header = |name| req.headers().get(name).map(|v| capped(v.as_bytes()));
        Self {
            origin: origin.to_owned(),
            method: capped(req.method().as_str().as_bytes()),
            path: capped(req.path().as_bytes()),
            requested_method: header(header::ACCESS_CONTROL_REQUEST_METHOD),
            requested_headers: header(header::ACCESS_CONTROL_REQUEST_HEADERS),
            authorization: req.headers().contains_key(header::AUTHORIZATION),
        }
    }

    fn answered(self, status: u16, by: Option<AnsweredBy>, headers: &HeaderMap) -> Exchange {
        let (layer, note) = by.map_or((Layer::Handler, None), |a| (a.layer, a.note));
        let cors_headers = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("access-control-"))
            .take(MAX_CORS_HEADERS)
            .map(|(name, value)| (name.to_string(), capped(value.as_bytes())))
            .collect();
        Exchange {
            seq: 0,
            origin: self.origin,
            method: self.method,
            path: self.path,
            requested_method: self.requested_method,
            requested_headers: self.requested_headers,
            authorization: self.authorization,
            layer,
            note: note.map(|n| capped(n.as_bytes())),
            status,
            cors_headers,
        }
    }
}

/// At most [`MAX_TEXT`] bytes of `raw`, as text (invalid UTF-8 replaced).
fn capped(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_TEXT * 4)]);
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The middleware that writes the record: wrapped outside the scopes, so it sees each final
/// response with its CORS headers. It never changes a request or a response.
pub struct Recorder(pub Option<Arc<Exchanges>>);

impl<S, B> Transform<S, ServiceRequest> for Recorder
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type InitError = ();
    type Transform = RecorderService<S>;
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecorderService {
            service: Rc::new(service),
            exchanges: self.0.clone(),
        }))
    }
}

pub struct RecorderService<S> {
    service: Rc<S>,
    exchanges: Option<Arc<Exchanges>>,
}

impl<S, B> Service<ServiceRequest> for RecorderService<S>
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
        // Every other origin: this comparison, then straight through.
        let Some((exchanges, origin)) = self
            .exchanges
            .as_ref()
            .and_then(|e| e.page_origin(req.headers()).map(|o| (e, o)))
        else {
            return Either::Left(self.service.call(req));
        };
        let seen = Seen::of(&req, origin);
        let exchanges = exchanges.clone();
        let answer = self.service.call(req);
        Either::Right(Box::pin(async move {
            let result = answer.await;
            let exchange = match &result {
                Ok(res) => {
                    let by = res.request().extensions().get::<AnsweredBy>().cloned();
                    seen.answered(res.status().as_u16(), by, res.headers())
                }
                Err(e) => {
                    let status = e.as_response_error().status_code().as_u16();
                    seen.answered(status, None, &HeaderMap::new())
                }
            };
            exchanges.push(exchange);
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(path: &str) -> Exchange {
        Exchange {
            seq: 0,
            origin: "http://localhost:4200".into(),
            method: "GET".into(),
            path: path.into(),
            requested_method: None,
            requested_headers: None,
            authorization: true,
            layer: Layer::Handler,
            note: None,
            status: 200,
            cors_headers: Vec::new(),
        }
    }

    #[test]
    fn the_record_keeps_the_last_entries_in_order() {
        let record = Exchanges::new(vec!["http://localhost:4200".into()]);
        for i in 0..CAPACITY + 10 {
            record.push(exchange(&format!("/{i}")));
        }
        let kept = record.since(0);
        assert_eq!(kept.len(), CAPACITY);
        assert_eq!(kept[0].seq, 11);
        assert_eq!(kept[CAPACITY - 1].path, format!("/{}", CAPACITY + 9));
        assert_eq!(record.since(record.last_seq() - 2).len(), 2);
    }

    #[test]
    fn text_is_capped_on_a_character_boundary() {
        assert_eq!(capped(b"/short"), "/short");
        let long = "é".repeat(MAX_TEXT);
        let cut = capped(long.as_bytes());
        assert!(
            cut.len() <= MAX_TEXT && cut.len() >= MAX_TEXT - 1,
            "{}",
            cut.len()
        );
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(
            capped(&[0xff; 10 * MAX_TEXT]).len(),
            MAX_TEXT - MAX_TEXT % 3
        );
    }

    #[test]
    fn only_the_pages_own_origins_are_recognised() {
        let record = Exchanges::new(vec![
            "http://localhost:4200".into(),
            "http://127.0.0.1:4200".into(),
        ]);
        let with = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ORIGIN, origin.parse().expect("value"));
            record.page_origin(&headers).map(str::to_owned)
        };
        assert_eq!(
            with("http://127.0.0.1:4200").as_deref(),
            Some("http://127.0.0.1:4200")
        );
        assert_eq!(with("http://localhost:4201"), None);
        assert_eq!(with("http://localhost:4200/"), None);
        assert_eq!(record.page_origin(&HeaderMap::new()), None);
    }
}
