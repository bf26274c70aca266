//! `/delivery/**`: list, read, create, replace, delete. Basic auth has already run (see app.rs).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sqlx::SqlitePool;

use crate::deliveries::{self, NewDelivery};
use crate::error::{ApiError, Result};
use crate::routes::method_not_allowed;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/delivery/all")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .default_service(method_not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/delivery")
            .route(web::post().to(create))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/delivery/{id}")
            .route(web::get().to(read))
            .route(web::head().to(read))
            .route(web::put().to(replace))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, HEAD, PUT, DELETE")),
    );
}

/// `?limit=&offset=`, both optional. Without `limit` the whole list is returned (unchanged API).
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<u32>,
    #[serde(default)]
    offset: u32,
}

const MAX_LIMIT: u32 = 1000;

#[tracing::instrument(skip_all)]
async fn list(pool: web::Data<SqlitePool>, page: web::Query<Page>) -> Result<HttpResponse> {
    let Some(limit) = page.limit else {
        return Ok(HttpResponse::Ok().json(deliveries::all(&pool).await?));
    };
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let items = deliveries::page(&pool, limit, page.offset).await?;
    let mut res = HttpResponse::Ok();
    // RFC 8288 links to the neighbouring pages (exposed to the page by the CORS policy).
    let link = |offset: u32, rel: &str| {
        format!("</delivery/all?limit={limit}&offset={offset}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if items.len() == limit as usize {
        links.push(link(page.offset.saturating_add(limit), "next"));
    }
    if page.offset > 0 {
        links.push(link(page.offset.saturating_sub(limit), "prev"));
    }
    if !links.is_empty() {
        res.insert_header((header::LINK, links.join(", ")));
    }
    Ok(res.json(items))
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn read(pool: web::Data<SqlitePool>, id: web::Path<i64>) -> Result<HttpResponse> {
    let delivery = deliveries::one(&pool, *id)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(delivery))
}

#[tracing::instrument(skip_all)]
async fn create(pool: web::Data<SqlitePool>, body: web::Json<NewDelivery>) -> Result<HttpResponse> {
    let new = body.into_inner().validated()?;
    let delivery = deliveries::create(&pool, &new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/delivery/{}", delivery.id)))
        .json(delivery))
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn replace(
    pool: web::Data<SqlitePool>,
    id: web::Path<i64>,
    body: web::Json<NewDelivery>,
) -> Result<HttpResponse> {
    let new = body.into_inner().validated()?;
    let delivery = deliveries::replace(&pool, *id, &new)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(delivery))
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn delete(pool: web::Data<SqlitePool>, id: web::Path<i64>) -> Result<HttpResponse> {
    if deliveries::delete(&pool, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(*id))
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no delivery with id {id}"))
}
