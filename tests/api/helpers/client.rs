//! One way to speak to the API, whether the server runs in this process ([`super::TestApp`]) or
//! as the real binary ([`super::Served`]): both dereference to an [`Api`], so a test makes the
//! article's requests the same way against either. Every client here trusts only the dev CA the
//! server's certificate was made with, so every answer has verified it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio::net::TcpStream;

use super::{ACCEPT, CONTENT_TYPE, ORIGIN, PASSWORD, USER};

/// A TLS connection to the API.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// The API at `https://localhost:PORT`, and a client for it.
#[derive(Clone)]
pub struct Api {
    /// Where the server listens (a loopback address).
    pub addr: SocketAddr,
    /// `https://localhost:PORT`: the name in the certificate, resolved to `addr`.
    pub base: String,
    /// Offers h2 and http/1.1 (as browsers do), trusts only [`Api::ca`], follows no redirect.
    pub client: reqwest::Client,
    /// The dev CA the server's certificate verifies against.
    pub ca: PathBuf,
}

impl Api {
    pub fn new(addr: SocketAddr, ca: &Path) -> Self {
        let client = client_trusting(ca, addr);
        Self {
            addr,
            base: format!("https://localhost:{}", addr.port()),
            client,
            ca: ca.to_owned(),
        }
    }

    /// The API a started binary announces in its ready line (`api`, `ca_cert`).
    pub fn from_ready_line(ready: &Value) -> Self {
        let api = ready["api"].as_str().expect("api");
        let port: u16 = api
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let ca = ready["ca_cert"].as_str().expect("the dev CA");
        Self::new(([127, 0, 0, 1], port).into(), Path::new(ca))
    }

    /// The same API with a client of its own (new connections, closed when it is dropped).
    pub fn fresh(&self) -> Self {
        Self::new(self.addr, &self.ca)
    }

    /// The same API with a client that offers HTTP/1.1 only. (actix-http closes idle HTTP/1.1
    /// connections at a graceful stop, while an idle HTTP/2 one holds it for the grace period.)
    pub fn http1_only(&self) -> Self {
        let client = client_builder(&self.ca, self.addr, false)
            .build()
            .expect("client");
        Self {
            client,
            ..self.clone()
        }
    }

    /// The same API with a client whose connections come from another loopback address (another
    /// "client IP", as the per-client limits see it).
    pub fn as_client(&self, ip: [u8; 4]) -> Self {
        let client = client_builder(&self.ca, self.addr, true)
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client");
        Self {
            client,
            ..self.clone()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as a browser on `origin` would send it (no credentials unless added).
    pub fn request(&self, method: Method, path: &str, origin: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Origin", origin)
    }

    /// The preflight a browser sends before the article's request: no credentials, ever.
    pub async fn preflight(&self, path: &str, method: &str, origin: &str) -> Response {
        self.request(Method::OPTIONS, path, origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .expect("preflight sent")
    }

    /// The article's actual request: its three headers, from `origin`, as `user:password`.
    pub fn article_request(&self, method: Method, path: &str, origin: &str) -> RequestBuilder {
        self.request(method, path, origin)
            .header("Accept", ACCEPT)
            .header("Content-Type", CONTENT_TYPE)
            .basic_auth(USER, Some(PASSWORD))
    }

    /// `GET path` from `ORIGIN` without credentials (public routes, and 401s).
    pub async fn get_without_credentials(&self, path: &str) -> Response {
        self.request(Method::GET, path, ORIGIN)
            .send()
            .await
            .expect("GET sent")
    }

    /// The article's `GET /delivery/all`, as the demo user.
    pub async fn get_all(&self) -> Response {
        self.article_request(Method::GET, "/delivery/all", ORIGIN)
            .send()
            .await
            .expect("GET sent")
    }

    /// `GET /delivery/all` from `ORIGIN` as `user:password`: a login, right or wrong.
    pub async fn get_all_as(&self, user: &str, password: &str) -> Response {
        self.request(Method::GET, "/delivery/all", ORIGIN)
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("GET sent")
    }

    /// The article's `POST /delivery` of `body`, as the demo user.
    pub async fn create(&self, body: &Value) -> Response {
        self.article_request(Method::POST, "/delivery", ORIGIN)
            .body(body.to_string())
            .send()
            .await
            .expect("POST sent")
    }

    /// A TLS connection to the API offering `alpn`, on a new TCP connection.
    pub async fn tls(&self, alpn: &[&[u8]]) -> Tls {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        self.tls_over(tcp, alpn).await.expect("TLS handshake")
    }

    /// A TLS handshake with the API over `tcp` (made by the caller: from another address, say);
    /// an error when the server refuses it.
    pub async fn tls_over(&self, tcp: TcpStream, alpn: &[&[u8]]) -> std::io::Result<Tls> {
        let tls = tls_trusting(&self.ca, alpn);
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
    }

    /// A TLS connection offering only `h2`, and an HTTP/2 client on it (the caller drives or
    /// spawns the connection).
    pub async fn h2(
        &self,
    ) -> (
        h2::client::SendRequest<bytes::Bytes>,
        h2::client::Connection<Tls, bytes::Bytes>,
    ) {
        let tls = self.tls(&[b"h2"]).await;
        h2::client::handshake(tls).await.expect("h2")
    }

    /// Sends `method target` with the request-target exactly as given, on a new TLS connection.
    /// reqwest, like a browser, resolves dot segments and re-encodes the path before sending; an
    /// attacker's client does neither, so the tests of the auth boundary use this. `Err` means the
    /// server refused at the protocol level (a reset stream or connection): no response at all.
    pub async fn raw(
        &self,
        http: Http,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<RawResponse, String> {
        use http_body_util::BodyExt as _;
        let alpn: &[&[u8]] = match http {
            Http::One => &[b"http/1.1"],
            Http::Two => &[b"h2"],
        };
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let stream = self.tls_over(tcp, alpn).await.map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let uri = match http {
            Http::One => target.to_owned(),
            Http::Two => format!("https://localhost:{}{target}", self.addr.port()),
        };
        let mut request = http::Request::builder().method(method).uri(uri);
        if http == Http::One {
            request = request.header("host", format!("localhost:{}", self.addr.port()));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .map_err(|e| format!("cannot build {method} {target}: {e}"))?;
        let response = match http {
            Http::One => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                send.send_request(request).await
            }
            Http::Two => {
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                send.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Writes `bytes` as they are over a new HTTP/1.1 TLS connection and returns everything the
    /// server sends until it closes (send `Connection: close`, or a request it refuses).
    pub async fn raw_http1(&self, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = self.tls(&[b"http/1.1"]).await;
        // The server may answer and close before it has read everything (a 431): keep going.
        let _ = stream.write_all(bytes).await;
        let mut reply = Vec::new();
        // A refusal may end with a reset rather than a clean close: keep what arrived.
        let _ = stream.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    }
}

/// The HTTP version of an [`Api::raw`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    One,
    Two,
}

/// What came back from an [`Api::raw`] request.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// A reqwest client whose only trust anchor is `ca`, for the server at `addr` (as `localhost`).
pub fn client_trusting(ca: &Path, addr: SocketAddr) -> reqwest::Client {
    client_builder(ca, addr, true).build().expect("client")
}

/// `http2`: offer h2 in ALPN (as browsers do) or HTTP/1.1 only.
pub fn client_builder(ca: &Path, addr: SocketAddr, http2: bool) -> reqwest::ClientBuilder {
    let alpn: &[&[u8]] = if http2 {
        &[b"h2", b"http/1.1"]
    } else {
        &[b"http/1.1"]
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_trusting(ca, alpn))
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
}

/// A rustls client configuration whose only trust anchor is `ca`, offering `alpn`.
pub fn tls_trusting(ca: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let ca = std::fs::read(ca).expect("CA certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls
}
