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

async fn health(db: web::Data<Db>) -> Result<HttpResponse> {
    db.ping().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
