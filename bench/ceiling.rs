//! The ceiling for this stack on this machine: actix-web + rustls answering with fixed bytes, no
//! auth, no database, no CORS logic. `bench/bench.py` runs it beside delivery-api.
//!
//! cargo run --release --example ceiling -- ADDR CERT KEY LIST_BODY_FILE ONE_BODY_FILE [HEADS_FILE]
//!
//! With HEADS_FILE it is the **same-head ceiling**: for each `METHOD PATH` the file names, it
//! answers the status and header fields delivery-api answered (bench.py records them from the
//! service with curl), a fresh `X-Request-Id` on each answer where the service sends one. Beside
//! the bare ceiling it shows what sending those fields costs (HPACK, TLS bytes), apart from the
//! cost of deciding them.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const ORIGIN: &str = "http://localhost:4200";

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (addr, cert, key, list, one, heads) = match &args[..] {
        [_, addr, cert, key, list, one] => (addr, cert, key, list, one, Heads::default()),
        [_, addr, cert, key, list, one, heads] => (addr, cert, key, list, one, Heads::read(heads)),
        _ => {
            eprintln!("usage: ceiling ADDR CERT KEY LIST_BODY_FILE ONE_BODY_FILE [HEADS_FILE]");
            std::process::exit(2);
        }
    };
    let heads = Arc::new(heads);
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("tls");
    let list = web::Bytes::from(std::fs::read(list).expect("list body file"));
    let one = web::Bytes::from(std::fs::read(one).expect("one body file"));

    HttpServer::new(move || {
        let (list, one, heads) = (list.clone(), one.clone(), heads.clone());
        // The body is read, as a real handler does: an unread HTTP/1.1 body costs the connection.
        App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
            let body = if req.path() == "/delivery/all" {
                list.clone()
            } else {
                one.clone()
            };
            let head = heads
                .0
                .get(&(req.method().to_string(), req.path().to_owned()))
                .cloned();
            async move {
                if let Some(head) = head {
                    return head.answer(body);
                }
                match (req.method().as_str(), req.path()) {
                    ("OPTIONS", _) => HttpResponse::Ok()
                        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN))
                        .insert_header((
                            header::ACCESS_CONTROL_ALLOW_METHODS,
                            "GET, POST, PUT, DELETE",
                        ))
                        .insert_header((
                            header::ACCESS_CONTROL_ALLOW_HEADERS,
                            "authorization, content-type",
                        ))
                        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                        .insert_header((header::VARY, "Origin"))
                        .finish(),
                    ("POST", _) => HttpResponse::Created()
                        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN))
                        .insert_header((header::LOCATION, "/delivery/1"))
                        .content_type("application/json")
                        .body(r#"{"id":1}"#),
                    (_, "/unauthorized") => HttpResponse::Unauthorized()
                        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN))
                        .insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="ceiling""#))
                        .finish(),
                    _ => HttpResponse::Ok()
                        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN))
                        .insert_header((header::VARY, "Origin"))
                        .content_type("application/json")
                        .body(body),
                }
            }
        }))
    })
    // As delivery-api does (server.rs): without it, Nagle's algorithm holds HTTP/2 responses ~40 ms.
    .tcp_nodelay(true)
    .listen_rustls_0_23(std::net::TcpListener::bind(addr)?, tls)?
    .run()
    .await
}

/// The heads recorded from delivery-api: `METHOD PATH`, then one line per field
/// (`METHOD PATH<TAB>name<TAB>value`, `:status` first).
#[derive(Default)]
struct Heads(HashMap<(String, String), Arc<Head>>);

struct Head {
    status: actix_web::http::StatusCode,
    /// Whether the service's answer had a body (then this one has the body file's).
    body: bool,
    fields: Vec<(String, String)>,
}

impl Heads {
    fn read(path: &str) -> Self {
        let text = std::fs::read_to_string(path).expect("heads file");
        let mut heads: HashMap<(String, String), Head> = HashMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(3, '\t');
            let (Some(target), Some(name), Some(value)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (method, path) = target.split_once(' ').expect("METHOD PATH");
            let head = heads
                .entry((method.to_owned(), path.to_owned()))
                .or_insert_with(|| Head {
                    status: actix_web::http::StatusCode::OK,
                    body: false,
                    fields: Vec::new(),
                });
            if name == ":status" {
                head.status = value.parse().expect("status");
            } else if name == ":body" {
                head.body = value == "1";
            } else {
                head.fields.push((name.to_owned(), value.to_owned()));
            }
        }
        Self(heads.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Head {
    fn answer(&self, body: web::Bytes) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in &self.fields {
            if name == "x-request-id" {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let id = uuid::Uuid::new_v4().hyphenated();
                res.append_header((name.as_str(), &*id.encode_lower(&mut text)));
            } else {
                res.append_header((name.as_str(), value.as_str()));
            }
        }
        if self.body {
            res.body(body)
        } else {
            res.finish()
        }
    }
}
