//! `GET /health`: public, and honest: it asks the database, so a dead database reads 503.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::Result;
use crate::store::Db;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health))
            .route(web::head().to(health))
            .default_service(super::method_not_allowed("GET, HEAD")),
    );
}

/// Whether the database answers a read.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "The database answers.", body = super::openapi::schemas::Health),
        (status = 400, response = super::openapi::BadRequest),
        (status = 503, response = super::openapi::Unavailable),
        (status = 500, response = super::openapi::Internal),
    )
)]
pub(super) async fn health(db: web::Data<Db>) -> Result<HttpResponse> {
    db.ping().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
