//! The delivery resource, in one place: `/delivery/**` (list, read, create, replace, delete)
//! here; its wire types (`wire.rs`), what a body must be (`input.rs`), and the cache of
//! serialized bodies (`cache.rs`) beside. Mounted in the `/delivery` scope, behind Basic auth
//! (see app.rs): every handler here runs only for an authenticated user.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, EntityTag};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, mime, web};
use serde_json::value::RawValue;

pub mod cache;
pub mod input;
pub mod query;
pub mod wire;

use cache::ReadCache;
use query::{ListQuery, Sort};
use wire::{Delivery, DeliveryPatch, DeliveryReplacement, NewDelivery, Status};

use super::problems::{
    BadRequest, Conflict, InsufficientStorage, Internal, NotFound, PayloadTooLarge, RequestTimeout,
    TooManyRequests, Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use super::{method_not_allowed, no_query};
use crate::error::{ApiError, Result};
use crate::store::Db;
use crate::store::deliveries;
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
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, HEAD, PUT, PATCH, DELETE")),
    );
}

/// The paths of this module, relative to the `/delivery` scope (nested there in openapi.rs).
/// Each needs Basic auth, and can be refused by it: 401, 429 (login limiter), 503 (database).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, create, read, replace, update, delete),
    components(schemas(
        Delivery,
        NewDelivery,
        DeliveryReplacement,
        DeliveryPatch,
        Status,
        Sort
    ))
)]
pub struct DeliveryApi;

/// The number of deliveries the list holds (all of them, or those that match the filters), on
/// every form of `GET /delivery/all`, for data-grid frontends that page (exposed to pages by the
/// CORS policy, as json-server does).
const TOTAL_COUNT: &str = "x-total-count";

/// Every delivery, in id order; or some of them.
///
/// Without parameters: the whole list, as one JSON array, with an `ETag` (the article's call,
/// served from memory). With `status`, `q`, `sort`, `limit` or `offset`: the deliveries that
/// match, in that order, read from the database. Any other parameter is a 400 naming it.
#[utoipa::path(
    get,
    path = "/all",
    tag = "deliveries",
    operation_id = "list_deliveries",
    security(("basic" = [])),
    params(
        query::ListParams,
        ("If-None-Match" = Option<String>, Header, nullable = false,
            description = "The `ETag` of a previous whole list: 304 if unchanged (without parameters only)."),
    ),
    responses(
        (status = 200, description = "The deliveries.", body = Vec<Delivery>, headers(
            ("X-Total-Count" = String, description = "How many deliveries match, on every page (all of them without `status` or `q`): a whole number, as digits."),
            ("ETag" = String, description = "Without parameters: the list's version."),
            ("Cache-Control" = String, description = "Without parameters: `private, no-cache`."),
            ("Link" = String, description = "With `limit`: RFC 8288 links, `rel=\"next\"` and `rel=\"prev\"`, when there are such pages (never past either end); every other parameter is kept."),
        )),
        (status = 304, description = "Not modified: `If-None-Match` names the current version.", headers(
            ("ETag" = String, description = "The list's version."),
            ("Cache-Control" = String, description = "`private, no-cache`."),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<ReadCache>,
) -> Result<HttpResponse> {
    let query = ListQuery::parse(req.query_string())?;
    if query.is_whole_list() {
        return whole_list(&req, &db, &cache).await;
    }
    let revision = deliveries_revision(&req, &db).await?;
    let filter = query.filter();
    let offset = query.offset.unwrap_or(0);
    let items = deliveries::filtered(&db, &filter, query.limit, offset).await?;
    let total = if query.filters() {
        deliveries::count_matching(&db, &filter).await?
    } else {
        cache.count(&db, revision).await?
    };
    let mut res = HttpResponse::Ok();
    res.insert_header((TOTAL_COUNT, total));
    if let Some(limit) = query.limit
        && let Some(links) = query::page_links(&query, limit, total)
    {
        res.insert_header((header::LINK, links));
    }
    let items: Vec<Delivery> = items.into_iter().map(Delivery::from).collect();
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
        .body(cache::Sliced(list)))
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

/// One delivery.
#[utoipa::path(
    get,
    path = "/{id}",
    tag = "deliveries",
    operation_id = "read_delivery",
    security(("basic" = [])),
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 200, description = "The delivery.", body = Delivery),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn read(
    req: HttpRequest,
    db: web::Data<Db>,
    cache: web::Data<ReadCache>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    no_query(&req)?;
    let revision = deliveries_revision(&req, &db).await?;
    let delivery = cache
        .one(&db, *id, revision)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(delivery))
}

/// A new delivery; written to disk before the answer.
#[utoipa::path(
    post,
    path = "",
    tag = "deliveries",
    operation_id = "create_delivery",
    security(("basic" = [])),
    request_body(content = NewDelivery, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = Delivery, headers(
            ("Location" = String, description = "`/delivery/{id}`"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 507, response = InsufficientStorage),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all)]
async fn create(
    req: HttpRequest,
    creator: web::Data<deliveries::Creator>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse> {
    no_query(&req)?;
    let new = input::delivery_from(&body)?;
    let delivery = creator.create(new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/delivery/{}", delivery.id)))
        .json(Delivery::from(delivery)))
}

/// Replaces a delivery.
///
/// The body is the whole delivery, `status` included: a field left out is a 422 naming it.
#[utoipa::path(
    put,
    path = "/{id}",
    tag = "deliveries",
    operation_id = "replace_delivery",
    security(("basic" = [])),
    params(("id" = i64, Path, description = "The delivery's id.")),
    request_body(content = DeliveryReplacement, content_type = "application/json"),
    responses(
        (status = 200, description = "The delivery as stored.", body = Delivery),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 507, response = InsufficientStorage),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn replace(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<i64>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse> {
    no_query(&req)?;
    let new = input::replacement_from(&body)?;
    let delivery = deliveries::replace(&db, *id, &new)
        .await?
        .ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(Delivery::from(delivery)))
}

/// The media type of a PATCH body (RFC 7396).
const MERGE_PATCH: &str = "application/merge-patch+json";

/// Changes some fields of a delivery.
///
/// A JSON merge patch (RFC 7396, `Content-Type: application/merge-patch+json`): the fields sent
/// are changed, under the same rules as in a PUT; the others are kept. No field can be removed:
/// `null` is a 422 naming it. An empty patch (`{}`) changes nothing and answers the delivery.
#[utoipa::path(
    patch,
    path = "/{id}",
    tag = "deliveries",
    operation_id = "update_delivery",
    security(("basic" = [])),
    params(("id" = i64, Path, description = "The delivery's id.")),
    request_body(content = DeliveryPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The delivery as stored.", body = Delivery),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 507, response = InsufficientStorage),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn update(
    req: HttpRequest,
    db: web::Data<Db>,
    id: web::Path<i64>,
    body: web::Json<Box<RawValue>>,
) -> Result<HttpResponse> {
    no_query(&req)?;
    // The JSON extractor took any JSON type; a merge patch says it is one.
    if !matches!(req.mime_type(), Ok(Some(m)) if m.essence_str() == MERGE_PATCH) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send a PATCH body as {MERGE_PATCH} (RFC 7396)"
        )));
    }
    let changes = input::changes_from(&body)?;
    let nothing = changes.reference.is_none()
        && changes.recipient.is_none()
        && changes.address.is_none()
        && changes.status.is_none();
    let delivery = if nothing {
        deliveries::one(&db, *id).await?
    } else {
        deliveries::update(&db, *id, &changes).await?
    };
    let delivery = delivery.ok_or_else(|| not_found(*id))?;
    Ok(HttpResponse::Ok().json(Delivery::from(delivery)))
}

/// Deletes a delivery.
#[utoipa::path(
    delete,
    path = "/{id}",
    tag = "deliveries",
    operation_id = "delete_delivery",
    security(("basic" = [])),
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
        (status = 507, response = InsufficientStorage),
        (status = 500, response = Internal),
    )
)]
#[tracing::instrument(skip_all, fields(delivery_id = %*id))]
async fn delete(req: HttpRequest, db: web::Data<Db>, id: web::Path<i64>) -> Result<HttpResponse> {
    no_query(&req)?;
    if deliveries::delete(&db, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(*id))
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no delivery with id {id}"))
}
