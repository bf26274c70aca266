//! The admin bind of `--test-support` (`--test-support-bind`, plain HTTP, loopback only): what a
//! test runner calls between tests. Never the API's origin, so nothing on it changes the API's
//! routes, its OpenAPI document or its CORS policy, and no page can call it:
//!
//! - the `Host` check of the metrics bind (`net::host`): a DNS-rebinding page is refused (421);
//! - a request that carries `Origin` or `Sec-Fetch-Site` comes from a browser, so from a page:
//!   refused (403). Browsers send `Origin` on every POST and DELETE, so no site open in the
//!   developer's browser can reset the data with a form or a `fetch`; curl, Node's `fetch` and
//!   Playwright's or Cypress's request APIs send neither. (Node's `fetch` does send
//!   `Sec-Fetch-Mode: cors`, with no origin to go with it: that header alone is no page.)
//!
//! `POST /reset` puts the seed back; `GET /requests[?request_id=…][&since=SEQ]` reads the request
//! log, `DELETE /requests` clears it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, ResponseError as _, web};

use super::requests::{Filter, RequestLog};
use super::{ResetTo, reset};
use crate::error::ApiError;
use crate::net::{KnownHosts, only_known_hosts};
use crate::routes;
use crate::store::Db;

/// What the admin endpoints work on.
pub struct Admin {
    pub db: Db,
    pub log: Arc<RequestLog>,
    pub reset_to: ResetTo,
}

/// Serves the admin endpoints on `listener`, one worker, stopped with the API.
pub fn serve(listener: TcpListener, admin: Admin) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let hosts = web::Data::new(KnownHosts::of(addr));
    let admin = web::Data::new(admin);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(from_fn(not_from_a_page))
            .wrap(from_fn(only_known_hosts))
            .app_data(hosts.clone())
            .app_data(admin.clone())
            .service(
                web::resource("/reset")
                    .post(reset_data)
                    .default_service(routes::method_not_allowed("POST")),
            )
            .service(
                web::resource("/requests")
                    .get(requests)
                    .delete(clear_requests)
                    .default_service(routes::method_not_allowed("GET, DELETE")),
            )
            .app_data(web::QueryConfig::default().error_handler(|err, _req| {
                ApiError::BadRequest(format!(
                    "invalid query string: {err} (request_id=ID, since=SEQ)"
                ))
                .into()
            }))
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .listen(listener)?
    .disable_signals()
    .run())
}

/// 403 for a request a browser made (it names the page's origin, or says where it was fetched
/// from).
async fn not_from_a_page(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let headers = req.headers();
    if !headers.contains_key("origin") && !headers.contains_key("sec-fetch-site") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = ApiError::Forbidden(
        "the test-support endpoints answer test runners (curl, Node, Playwright's request \
         context), never a page in a browser: a request with Origin or Sec-Fetch-Site is refused, \
         so that no site you visit can reset your data"
            .into(),
    );
    Ok(req
        .into_response(refusal.error_response())
        .map_into_right_body())
}

/// `POST /reset`: the seed again, in one transaction; says what it restored.
async fn reset_data(admin: web::Data<Admin>) -> Result<HttpResponse, ApiError> {
    let restored =
        reset(&admin.db, &admin.reset_to)
            .await
            .map_err(|e| match e.downcast::<sqlx::Error>() {
                Ok(e) => ApiError::from(e),
                Err(e) => ApiError::Internal(e),
            })?;
    tracing::info!(
        deliveries = restored.deliveries,
        users = restored.users,
        "test support: data reset to the seed"
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "deliveries": restored.deliveries,
        "users": restored.users,
    })))
}

/// `GET /requests`: the request log, oldest first, filtered.
async fn requests(admin: web::Data<Admin>, filter: web::Query<Filter>) -> HttpResponse {
    HttpResponse::Ok().json(admin.log.find(&filter))
}

/// `DELETE /requests`: forgets them.
async fn clear_requests(admin: web::Data<Admin>) -> HttpResponse {
    admin.log.clear();
    HttpResponse::NoContent().finish()
}

/// Binds `--test-support-bind`: loopback only, like the API itself under `--test-support`.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing --test-support-bind {addr}: it must be a loopback address (127.0.0.1:PORT \
             or [::1]:PORT), since anyone who reaches it can reset the data and read the \
             request log"
        );
    }
    TcpListener::bind(addr).with_context(|| format!("cannot serve test support on {addr}"))
}
