//! From TCP accept to the app: what a connection must get through before it may send a request.
//! (One cohesive chain, about 400 lines with its tests.) Also here, because every connection
//! meets them: who a client is ([`ClientKey`]), the request-body deadline (`body.rs`), shedding the
//! stalest connection near the cap (`shed.rs`), the Host check of the plain-HTTP servers
//! (`host.rs`), and the signals that stop every server (`signals.rs`).
//!
//! actix-web's `HttpServer` builds this same chain (actix-server → rustls → actix-http → App), but
//! offers no place to stand before TLS, and no HTTP/2 limits. Built by hand, each stage bounds
//! what one client can hold:
//!
//! 1. **Per client** (an IPv4 address, or an IPv6 /64): at most `per_client` open connections and
//!    `handshakes_per_client` connections that have not finished TLS. Past either, the new
//!    connection is closed at once: it costs a `close()`, not a TLS handshake.
//! 2. **The first byte of the ClientHello** within `first_byte`, waited for *outside* actix-tls's
//!    handshake slots (256 per worker), so connections that never speak cannot queue real
//!    clients' handshakes behind them. Then the whole handshake within `handshake`.
//! 3. **HTTP**: the request head within `request_head`; over HTTP/2 at most `h2_streams` streams
//!    per connection and `h2_header_list` bytes of decoded headers per request (431 past it), so
//!    HPACK references cannot expand a small header block into megabytes. Bodies have their own
//!    deadline ([`bound_request_body`]). `TCP_NODELAY` is on: with Nagle's algorithm an
//!    HTTP/2 response's HEADERS and DATA frames wait ~40 ms for the client's delayed ACK.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_server::Server;
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod body;
mod client_key;
mod host;
mod shed;
pub mod signals;

pub use body::{BodyTimeout, DRAIN_LIMIT, DRAIN_TIME, bound_request_body};
pub use client_key::ClientKey;
pub use host::{KnownHosts, only_known_hosts};
use shed::{Held, Slots};

use crate::telemetry::Throttle;

/// What one client may hold, and how long each step may take. All are flags (`config.rs`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub per_client: u32,
    pub handshakes_per_client: u32,
    pub first_byte: Duration,
    pub handshake: Duration,
    pub request_head: Duration,
    pub keep_alive: Duration,
    pub h2_streams: u32,
    pub h2_header_list: u32,
    /// Open connections per worker thread (actix-server's cap, over all clients).
    pub per_worker: usize,
}

/// Serves `app` on `listener` over TLS, behind the limits above.
pub fn serve<F, T>(
    listener: TcpListener,
    mut tls: rustls::ServerConfig,
    app: F,
    workers: usize,
    shutdown_grace: u64,
    limits: Limits,
) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: AppFactory + 'static,
{
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = Arc::new(tls);
    let clients = Arc::new(Clients::default());
    let addr = listener.local_addr()?;
    let builder = Server::build();
    // Tells actix-http when a graceful stop begins, so idle keep-alive connections close at once
    // instead of holding the stop for the whole grace period.
    let stopping = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        .max_concurrent_connections(limits.per_worker)
        .shutdown_timeout(shutdown_grace)
        // actix-server treats SIGINT (Ctrl-C) as a forced stop; here both SIGINT and SIGTERM
        // finish in-flight requests first (see `signals.rs`, which start-up wires to every server).
        .disable_signals()
        .listen("delivery-api", listener, move || {
            let (clients, limits) = (clients.clone(), limits.clone());
            // This worker's connections, so that the stalest can make room (`shed.rs`).
            let slots = Slots::new(limits.per_worker);
            let mut tls_acceptor = Acceptor::new(Arc::unwrap_or_clone(tls.clone()));
            tls_acceptor.set_handshake_timeout(limits.handshake);
            let stopping = stopping.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .client_request_timeout(limits.request_head)
                .keep_alive(limits.keep_alive)
                .secure()
                .h2_max_concurrent_streams(limits.h2_streams)
                .h2_max_header_list_size(limits.h2_header_list)
                .finish(map_config(
                    app().into_factory().map_err(|e| e.error_response()),
                    // What the app knows of its server: HTTPS (else `ConnectionInfo::scheme`,
                    // and the request log's `http.scheme`, say "http") and its address.
                    // actix-web builds this in its own HttpServer; from outside, only this
                    // constructor exists (public, documented as semver-exempt).
                    move |_| AppConfig::__priv_test_new(true, addr.to_string(), addr),
                ));
            fn_service(move |tcp: TcpStream| {
                admit(tcp, clients.clone(), limits.clone(), slots.clone())
            })
            .and_then(tls_acceptor.map_err(|_| ()).map_init_err(|_| ()))
            .and_then(fn_service(after_handshake))
            .and_then(http.map_err(|_| ()))
        })?
        .run();
    Ok(server)
}

/// Stage 1 and 2: counts the connection against its client, waits its turn for one of the
/// client's handshake slots, then for the first byte; all within `first_byte`.
async fn admit(
    tcp: TcpStream,
    clients: Arc<Clients>,
    limits: Limits,
    slots: Slots,
) -> Result<Admitted, ()> {
    let key = ClientKey::of(tcp.peer_addr().map_err(|_| ())?.ip());
    let Some((open, handshakes)) = clients.admit(key, &limits) else {
        static LOG: Throttle = Throttle::per_minute();
        if let Some(also) = LOG.admit() {
            tracing::warn!(
                client = ?key.ip(),
                also,
                "a client is over its open-connection cap: its new connections are closed \
                 (`also` = how many more since the last line)"
            );
        }
        return Err(());
    };
    // Only now: a connection refused above must not make room by closing another.
    let held = slots.admit();
    let _ = tcp.set_nodelay(true);
    // A burst of connections (a page, a NAT, a test harness) queues here for a moment; a client
    // whose slots are held by connections that never speak waits out the deadline and is closed.
    let ready = async {
        let slot = handshakes.acquire_owned().await.map_err(|_| ())?;
        tcp.readable().await.map_err(|_| ())?;
        Ok::<_, ()>(slot)
    };
    let ready = tokio::time::timeout(limits.first_byte, ready);
    let outcome = tokio::select! {
        outcome = ready => outcome,
        () = held.slot.shed_notified() => return Err(()), // made room for a newer connection
    };
    match outcome {
        Ok(Ok(slot)) => {
            held.slot.sent();
            Ok(Admitted {
                tcp,
                _open: open,
                handshake: Some(slot),
                held,
            })
        }
        _ => Err(()), // silent (or broken): closed, having never held a TLS handshake slot
    }
}

/// After TLS: the client's handshake slot is free again; ALPN says which HTTP it speaks.
async fn after_handshake(
    mut tls: TlsStream<Admitted>,
) -> Result<(TlsStream<Admitted>, Protocol, Option<SocketAddr>), ()> {
    let (io, session) = tls.get_mut();
    io.handshake.take();
    let protocol = match session.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    let peer = io.tcp.peer_addr().ok();
    Ok((tls, protocol, peer))
}

/// Per client, over all workers: how many connections are open, and the semaphore its
/// handshakes take turns on.
#[derive(Default)]
struct Clients {
    by_key: Mutex<HashMap<ClientKey, Client>>,
}

struct Client {
    open: u32,
    handshakes: Arc<Semaphore>,
}

impl Clients {
    fn admit(self: &Arc<Self>, key: ClientKey, limits: &Limits) -> Option<(Open, Arc<Semaphore>)> {
        let mut clients = self.by_key.lock();
        let client = clients.entry(key).or_insert_with(|| Client {
            open: 0,
            handshakes: Arc::new(Semaphore::new(limits.handshakes_per_client as usize)),
        });
        if client.open >= limits.per_client {
            return None;
        }
        client.open += 1;
        let open = Open {
            clients: self.clone(),
            key,
        };
        Some((open, client.handshakes.clone()))
    }
}

/// One open connection of a client, given back when the connection closes.
struct Open {
    clients: Arc<Clients>,
    key: ClientKey,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut clients = self.clients.by_key.lock();
        if let Some(client) = clients.get_mut(&self.key) {
            client.open = client.open.saturating_sub(1);
            if client.open == 0 {
                clients.remove(&self.key);
            }
        }
    }
}

/// A TCP connection that counts against its client for as long as it is open.
pub struct Admitted {
    tcp: TcpStream,
    _open: Open,
    handshake: Option<OwnedSemaphorePermit>,
    /// Its place among the worker's connections; shed, it fails every read and write.
    held: Held,
}

/// What a shed connection's reads and writes fail with: actix-http then closes it.
fn shed_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "closed to make room for a new connection",
    )
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.held.slot.is_shed() {
            return Poll::Ready(Err(shed_error()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.tcp).poll_read(cx, buf);
        match &read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.held.slot.sent(),
            Poll::Pending => self.held.slot.wake_on_shed(cx.waker()),
            _ => {}
        }
        read
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.held.slot.is_shed() {
            return Poll::Ready(Err(shed_error()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.held.slot.is_shed() {
            return Poll::Ready(Err(shed_error()));
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl ActixStream for Admitted {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<Ready>> {
        if self.held.slot.is_shed() {
            return Poll::Ready(Err(shed_error()));
        }
        let ready = ActixStream::poll_read_ready(&self.tcp, cx);
        if ready.is_pending() {
            self.held.slot.wake_on_shed(cx.waker());
        }
        ready
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.tcp, cx)
    }
}

/// What `App::new()...` is (the app `serve` runs on every connection), spelled once so that
/// `app::app`'s signature stays readable.
pub trait AppFactory:
    ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<Self::Body>,
        Error = actix_web::Error,
        InitError = (),
    >
{
    type Body: MessageBody;
}

impl<T, B> AppFactory for T
where
    B: MessageBody,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        >,
{
    type Body = B;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_cap_and_its_slots_back_when_its_connections_close() {
        let clients = Arc::new(Clients::default());
        let limits = Limits {
            per_client: 3,
            handshakes_per_client: 2,
            first_byte: Duration::from_secs(1),
            handshake: Duration::from_secs(1),
            request_head: Duration::from_secs(1),
            keep_alive: Duration::from_secs(1),
            h2_streams: 1,
            h2_header_list: 1,
            per_worker: 1,
        };
        let me = ClientKey::of([10, 0, 0, 1].into());
        let other = ClientKey::of([10, 0, 0, 2].into());

        let (a, handshakes) = clients.admit(me, &limits).expect("1st");
        assert_eq!(
            handshakes.available_permits(),
            2,
            "two handshakes at a time"
        );
        let (b, _) = clients.admit(me, &limits).expect("2nd");
        let (c, _) = clients.admit(me, &limits).expect("3rd");
        assert!(clients.admit(me, &limits).is_none(), "3 open connections");
        assert!(
            clients.admit(other, &limits).is_some(),
            "another client is not affected"
        );
        drop(a);
        assert!(
            clients.admit(me, &limits).is_some(),
            "a closed one gives its place back"
        );
        drop((b, c));
        assert!(clients.by_key.lock().is_empty(), "nothing left behind");
    }
}
