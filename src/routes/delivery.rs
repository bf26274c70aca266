//! `/delivery/**`: list, read, create, replace, delete. Mounted in the `/delivery` scope, behind
//! Basic auth (see app.rs): every handler here runs only for an authenticated user.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, EntityTag};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, mime, web};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ApiError, Result};
use crate::routes::{input, method_not_allowed};
use crate::store::Db;
use crate::store::deliveries;
use crate::store::read_cache::ReadCache;
use crate::store::revision::{self, Revisions};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/all")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .default_service(method_not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("")
            .route(web::post().to(create))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/{id}")
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

/// The number of deliveries in the whole list, on every form of `GET /delivery/all`, for
/// data-grid frontends that page (exposed to pages by the CORS policy, as json-server does).
const TOTAL_COUNT: &str = "x-total-count";

#[tracing::instrument(skip_all)]
async fn list(
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<ReadCache>,
    page: web::Query<Page>,
) -> Result<HttpResponse> {
    let Some(limit) = page.limit else {
        return whole_list(&req, &db, &cache).await;
    };
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let revision = deliveries_revision(&req, &db).await?;
    let items = deliveries::page(&db, limit, page.offset).await?;
    let total = cache.count(&db, revision).await?;
    let mut res = HttpResponse::Ok();
    res.insert_header((TOTAL_COUNT, total));
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

/// The bare list, served from the revision-checked cache, with an ETag (304 on If-None-Match).
async fn whole_list(req: &HttpRequest, db: &Db, cache: &ReadCache) -> Result<HttpResponse> {
    let revision = deliveries_revision(req, db).await?;
    let etag = EntityTag::new_strong(format!("deliveries-r{revision}"));
    let not_modified = client_has(req, &etag);
    let mut res = HttpResponse::build(if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    res.insert_header(header::ETag(etag))
        // Per user (Basic auth): no shared caches; browsers revalidate with the ETag.
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if not_modified {
        return Ok(res.finish());
    }
    let (list, total) = cache.list(db, revision).await?;
    Ok(res
        .insert_header((TOTAL_COUNT, total))
        .content_type(mime::APPLICATION_JSON)
        .body(list))
}

/// The deliveries' revision for this request: read by the auth layer (revision.rs), or here if
/// it did not run.
async fn deliveries_revision(req: &HttpRequest, db: &Db) -> Result<u64> {
    let revisions = req.extensions().get::<Revisions>().copied();
    Ok(match revisions {
        Some(r) => r.deliveries,
        None => revision::read_with_pool(db).await?.deliveries,
    })
}

/// True when If-None-Match names this version (weak comparison, RFC 9110 §13.1.2).
fn client_has(req: &HttpRequest, etag: &EntityTag) -> bool {
    match req.get_header::<header::IfNoneMatch>() {
        Some(header::IfNoneMatch::Any) => true,
        Some(header::IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(etag)),
        None => false,
    }
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn read(
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<ReadCache>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let revision = deliveries_revision(&req, &db).await?;
    let delivery = cache
        .one(&db, *id, revision)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(delivery))
}

#[tracing::instrument(skip_all)]
async fn create(
    creator: web::Data<deliveries::Creator>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse> {
    let new = input::delivery_from(&body)?;
    let delivery = creator.create(new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/delivery/{}", delivery.id)))
        .json(delivery))
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn replace(
    db: web::Data<Db>,
    id: web::Path<i64>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse> {
    let new = input::delivery_from(&body)?;
    let delivery = deliveries::replace(&db, *id, &new)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(delivery))
}

#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn delete(db: web::Data<Db>, id: web::Path<i64>) -> Result<HttpResponse> {
    if deliveries::delete(&db, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(*id))
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no delivery with id {id}"))
}
