//! The ceiling for this stack on this machine: actix-web + rustls answering with fixed bytes, no
//! auth, no database, no CORS logic. `bench/bench.py` runs it beside delivery-api.
//!
//! cargo run --release --example ceiling -- ADDR CERT KEY LIST_BODY_FILE ONE_BODY_FILE

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const ORIGIN: &str = "http://localhost:4200";

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, cert, key, list, one] = &args[..] else {
        eprintln!("usage: ceiling ADDR CERT KEY LIST_BODY_FILE ONE_BODY_FILE");
        std::process::exit(2);
    };
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
        let (list, one) = (list.clone(), one.clone());
        // The body is read, as a real handler does: an unread HTTP/1.1 body costs the connection.
        App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
            let body = if req.path() == "/delivery/all" {
                list.clone()
            } else {
                one.clone()
            };
            async move {
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
