//! A small static page on a *second origin* (default http://localhost:4200, where an Angular dev
//! server would run), so a browser makes real cross-origin calls to the API. Plain HTTP on purpose:
//! the page's origin is `http://…`, the API's is `https://…`, exactly as in the article.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};

const PAGE: &str = include_str!("index.html");

/// Binds the demo page's address; `None` (with the reason logged) if it is taken, since the API
/// must start anyway.
pub fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(
                "the demo page is off: cannot listen on {addr} ({e}); is an Angular dev server \
                 running there? Pass --demo-page-bind to use another address, or --no-demo-page"
            );
            None
        }
    }
}

/// The origin the page is served as, and so the one its calls carry: `http://localhost:PORT` on a
/// loopback or wildcard address (what the start-up log tells you to open; the page calls the API
/// as `https://localhost:…`, the name in its certificate), else the address itself. Opened as
/// `http://127.0.0.1:PORT`, the page is another origin, and is not allowed unless listed.
pub fn origin(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Serves the page; `api_base` (e.g. `https://localhost:8443`) is written into it.
pub fn serve(listener: TcpListener, api_base: &str) -> std::io::Result<Server> {
    let page = web::Data::new(PAGE.replace("__API_BASE__", api_base));
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(page.clone())
            // HEAD answers like GET, without the body (RFC 9110 §9.3.2); actix drops the body.
            .service(web::resource(["/", "/index.html"]).get(index).head(index))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

async fn index(page: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(page.get_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_origin_is_the_one_it_is_announced_as() {
        for (bind, expected) in [
            ("127.0.0.1:9711", "http://localhost:9711"),
            ("[::1]:4200", "http://localhost:4200"),
            ("0.0.0.0:4200", "http://localhost:4200"),
            ("192.168.1.5:4200", "http://192.168.1.5:4200"),
            ("[fe80::1]:4200", "http://[fe80::1]:4200"),
        ] {
            assert_eq!(origin(bind.parse().expect("addr")), expected, "{bind}");
        }
    }
}
