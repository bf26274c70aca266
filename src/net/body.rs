//! The request body's deadline, and what happens to a body nobody read.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::BoxedPayloadStream;
use actix_web::HttpMessage as _;
use actix_web::ResponseError as _;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{Method, Version, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_core::Stream;

use crate::error::ApiError;

/// How long a request body may take to arrive, from the end of the request head.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Over HTTP/2, what is left of a request body up to this size is read and discarded after an
/// early answer (below), for at most [`DRAIN_TIME`]; past either, the stream is reset.
pub const DRAIN_LIMIT: usize = 1024 * 1024;
/// Short, because the client may be anyone (a 401 is an early answer): without it a client that
/// trickles its body could hold a stream for the whole body deadline after being refused.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

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
/// - An answer given before the body has all arrived (401, 413, 415, 404, 405…): over HTTP/2
///   the stream would be reset (RST_STREAM NO_ERROR) as soon as the unread body is dropped.
///   RFC 9113 §8.1 allows that, but curl (7.88 at least) then reports a stream error instead of
///   the response. So the rest of the body, up to [`DRAIN_LIMIT`] bytes and within the same
///   deadline, is read and discarded after the answer; the client finishes its upload and reads
///   the response (within [`DRAIN_TIME`]). (HTTP/1.1 needs nothing: actix-http does the
///   equivalent for it.)
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
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let bodiless = length == Some(0)
        || (length.is_none()
            && matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS));
    let Some(timeout) = req.app_data::<BodyTimeout>().copied().filter(|_| !bodiless) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let body = Rc::new(RefCell::new(Deadline {
        body: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(timeout.0)),
        read: 0,
        ended: false,
    }));
    req.set_payload(Payload::from(
        Box::pin(SharedBody(body.clone())) as BoxedPayloadStream
    ));
    let drain = req.version() == Version::HTTP_2 && length.is_none_or(|n| n <= DRAIN_LIMIT as u64);
    let res = next.call(req).await?;
    if drain && !body.borrow().ended {
        actix_web::rt::spawn(discard_rest(body));
    }
    Ok(res.map_into_left_body())
}

/// Reads what is left of a request body, up to [`DRAIN_LIMIT`] bytes in all, for at most
/// [`DRAIN_TIME`] and not past its deadline; then drops it (which resets the HTTP/2 stream if the
/// client is still sending).
async fn discard_rest(body: Rc<RefCell<Deadline>>) {
    let drain = std::future::poll_fn(|cx| {
        let mut body = body.borrow_mut();
        loop {
            match Pin::new(&mut *body).poll_next(cx) {
                Poll::Ready(Some(Ok(_))) if body.read <= DRAIN_LIMIT => continue,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}

/// A request body that fails with `TimedOut` once its deadline has passed, and knows how much
/// of it was read and whether it ended.
struct Deadline {
    body: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    read: usize,
    ended: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.body).poll_next(cx) {
            match &item {
                Some(Ok(chunk)) => self.read += chunk.len(),
                _ => self.ended = true,
            }
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow");
            return Poll::Ready(Some(Err(PayloadError::Io(late))));
        }
        Poll::Pending
    }
}

/// The handler's view of the body; the middleware keeps the other handle, to drain it.
struct SharedBody(Rc<RefCell<Deadline>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}
