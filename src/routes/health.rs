//! `GET /health`: public, and honest: it asks the database, so a dead database reads 503.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
        (status = 200, description = "The database answers.", body = Health),
        (status = 400, response = super::problems::BadRequest),
        (status = 503, response = super::problems::Unavailable),
        (status = 500, response = super::problems::Internal),
    )
)]
pub(super) async fn health(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse> {
    super::no_query(&req)?;
    db.ping().await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
    }))
}

/// `GET /health`'s body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}
