//! Prometheus metrics, on a separate plain-HTTP bind (`--metrics-bind`, off unless given): what
//! is counted, the middleware that counts it, and the server that answers `GET /metrics` (one
//! cohesive thing, over 400 lines with its tests).
//!
//! Everything is recorded in one place, [`Measure`], wrapped outside the scopes in `app.rs`, on
//! the final response. Which layer answered it comes from the [`AnsweredBy`] marker that layer
//! left in the request (the one the demo page's record reads); a store failure from the
//! `ApiError` the response carries. The layers themselves know nothing of metrics.
//!
//! Every label value comes from a fixed set, so no client can create series: the route is the
//! *pattern* that matched (`/delivery/{id}`, never the path) or `unmatched`, the method one of
//! the standard ones or `other`, the status three digits, and the reasons the layers' own
//! `&'static str` kinds.
//!
//! Each application has its own recorder rather than the process-wide one, so that two servers
//! in one process (the tests) count separately. (`metrics::with_local_recorder` points the
//! `counter!` macros at it for the length of one call.)

use std::future::{Ready, ready};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpMessage as _, HttpResponse, HttpServer, web};
use metrics::{SharedString, Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::RwLock;

use crate::answered_by::{AnsweredBy, Layer};
use crate::error::ApiError;
use crate::net::{KnownHosts, only_known_hosts};

const REQUESTS: &str = "http_requests_total";
const DURATION: &str = "http_request_duration_seconds";
const PREFLIGHTS: &str = "cors_preflights_total";
const AUTH_REJECTIONS: &str = "auth_rejections_total";
const LOGIN_LIMITED: &str = "login_limited_total";
const DATABASE_UNAVAILABLE: &str = "database_unavailable_total";
const STORAGE_FULL: &str = "storage_full_total";

/// The `route` of a request no route pattern matched (a 404 on a made-up path).
pub const UNMATCHED: &str = "unmatched";
/// Latency buckets (seconds): a cached list answers in well under a millisecond, a first login
/// (argon2) takes tens of milliseconds, a write waits for its group commit; past a second (a
/// database waiting out its lock timeout, a slow body) the steps say how far past.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Route patterns kept as shared strings. The route tree has a handful; this only guards
/// against a future one that would build patterns at run time.
const MAX_ROUTES: usize = 64;

/// One application's metrics: its recorder, and the route patterns seen so far.
pub struct Metrics {
    recorder: PrometheusRecorder,
    /// `req.match_pattern()` builds a new `String` each time; a label built from it would be
    /// copied once more per series lookup. Kept here once, each is shared (a reference count).
    routes: RwLock<Vec<SharedString>>,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Arc<Self>> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)?
            .build_recorder();
        metrics::with_local_recorder(&recorder, || {
            describe_counter!(REQUESTS, "Responses, by route pattern, method and status.");
            describe_histogram!(
                DURATION,
                Unit::Seconds,
                "Time to the response head, by route pattern and method."
            );
            describe_counter!(
                PREFLIGHTS,
                "CORS preflights, answered (reason=\"allowed\") or refused (reason: the rule that failed)."
            );
            describe_counter!(
                AUTH_REJECTIONS,
                "401s from Basic auth, by reason (missing, malformed, wrong_credentials, auth_before_cors_preflight)."
            );
            describe_counter!(LOGIN_LIMITED, "429s: too many failed logins.");
            describe_counter!(DATABASE_UNAVAILABLE, "503s: the database was unavailable.");
            describe_counter!(STORAGE_FULL, "507s: the database's disk was full.");
            // Present from the start, at 0, so that rate() works before the first one.
            for name in [LOGIN_LIMITED, DATABASE_UNAVAILABLE, STORAGE_FULL] {
                counter!(name).absolute(0);
            }
        });
        Ok(Arc::new(Self {
            recorder,
            routes: RwLock::new(Vec::new()),
        }))
    }

    /// What `GET /metrics` renders.
    pub fn handle(&self) -> PrometheusHandle {
        self.recorder.handle()
    }

    /// Counts one answer. `method` and every other label are `&'static str`s or shared strings.
    fn record<B>(
        &self,
        result: &Result<ServiceResponse<B>, actix_web::Error>,
        method: &'static str,
        elapsed: Duration,
    ) {
        let (status, route, answered, failure) = match result {
            Ok(res) => {
                let req = res.request();
                let answered = req
                    .extensions()
                    .get::<AnsweredBy>()
                    .map(|a| (a.layer, a.reason));
                let failure = res
                    .response()
                    .error()
                    .and_then(|e| e.as_error::<ApiError>());
                (
                    res.status(),
                    self.route(req.match_pattern()),
                    answered,
                    failure.map(root),
                )
            }
            Err(e) => (
                e.as_response_error().status_code(),
                SharedString::const_str(UNMATCHED),
                None,
                e.as_error::<ApiError>().map(root),
            ),
        };
        metrics::with_local_recorder(&self.recorder, || {
            let status_label = status_label(status);
            counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status_label)
                .increment(1);
            histogram!(DURATION, "route" => route, "method" => method)
                .record(elapsed.as_secs_f64());
            match answered {
                Some((Layer::CorsPreflight, reason)) => {
                    let outcome = if status.is_success() {
                        "answered"
                    } else {
                        "refused"
                    };
                    counter!(PREFLIGHTS, "outcome" => outcome, "reason" => reason).increment(1);
                }
                Some((Layer::BasicAuth, reason)) if status == StatusCode::UNAUTHORIZED => {
                    counter!(AUTH_REJECTIONS, "reason" => reason).increment(1);
                }
                Some((Layer::LoginLimiter, _)) => counter!(LOGIN_LIMITED).increment(1),
                _ => {}
            }
            match failure {
                Some(ApiError::Unavailable(_)) => counter!(DATABASE_UNAVAILABLE).increment(1),
                Some(ApiError::InsufficientStorage(_)) => counter!(STORAGE_FULL).increment(1),
                _ => {}
            }
        });
    }

    /// The route label: the matched pattern, kept once and shared, or `unmatched`.
    fn route(&self, pattern: Option<String>) -> SharedString {
        let Some(pattern) = pattern else {
            return SharedString::const_str(UNMATCHED);
        };
        if let Some(known) = self.routes.read().iter().find(|r| r.as_ref() == pattern) {
            return known.clone();
        }
        let mut routes = self.routes.write();
        if let Some(known) = routes.iter().find(|r| r.as_ref() == pattern) {
            return known.clone();
        }
        if routes.len() >= MAX_ROUTES {
            return SharedString::const_str(UNMATCHED);
        }
        let shared = SharedString::from(Arc::<str>::from(pattern));
        routes.push(shared.clone());
        shared
    }
}

/// The error under an `ApiError::Shared` (one login outcome answered to several requests).
fn root(error: &ApiError) -> &ApiError {
    match error {
        ApiError::Shared(inner) => root(inner),
        other => other,
    }
}

/// The method label: the standard methods by name, anything else `other` (a client may send
/// any token as a method).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// The status label: three digits, from one static string of all of them (100 to 999, all a
/// `StatusCode` can hold), so that no label is formatted per request.
fn status_label(status: StatusCode) -> &'static str {
    static DIGITS: LazyLock<&'static str> = LazyLock::new(|| {
        (100..1000)
            .map(|c: u16| c.to_string())
            .collect::<String>()
            .leak()
    });
    let at = usize::from(status.as_u16() - 100) * 3;
    &DIGITS[at..at + 3]
}

/// The middleware: times each request and counts its answer. A pass-through when metrics are off.
pub struct Measure(pub Option<Arc<Metrics>>);

impl<S, B> Transform<S, ServiceRequest> for Measure
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type InitError = ();
    type Transform = MeasureService<S>;
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MeasureService {
            service: Rc::new(service),
            metrics: self.0.clone(),
        }))
    }
}

pub struct MeasureService<S> {
    service: Rc<S>,
    metrics: Option<Arc<Metrics>>,
}

impl<S, B> Service<ServiceRequest> for MeasureService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Measured<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let measuring = self
            .metrics
            .clone()
            .map(|m| (m, method_label(req.method()), Instant::now()));
        Measured {
            answer: self.service.call(req),
            measuring,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, counted when it is ready (no `Box` per request).
    pub struct Measured<F> {
        #[pin]
        answer: F,
        measuring: Option<(Arc<Metrics>, &'static str, Instant)>,
    }
}

impl<F, B> Future for Measured<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.answer.poll(cx));
        if let Some((metrics, method, start)) = this.measuring.take() {
            metrics.record(&result, method, start.elapsed());
        }
        Poll::Ready(result)
    }
}

/// Refuses an address other machines can reach, unless `--metrics-public` says it is meant.
pub fn check_bind(addr: SocketAddr, public: bool) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if public {
        tracing::warn!(
            "!!! metrics are served on {addr}, which other machines can reach (--metrics-public): \
             /metrics is plain HTTP with no authentication; keep a firewall in front of it. !!!"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve metrics on {addr}, reachable from other machines: /metrics is plain \
         HTTP with no authentication, and tells anyone the API's traffic, routes and refusals. \
         Use a loopback address (--metrics-bind 127.0.0.1:9464), or pass --metrics-public if a \
         firewall or a private network already keeps others out"
    )
}

/// How often the recorder folds histogram samples into its buckets when nobody scrapes
/// (otherwise the samples would pile up in memory until the next scrape).
const UPKEEP: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` (Prometheus text format) on `listener`, plain HTTP, one worker; every
/// other path or method gets 404. Also keeps the recorder's upkeep running while `metrics` lives.
pub fn serve(
    listener: TcpListener,
    metrics: &Arc<Metrics>,
    public: bool,
) -> std::io::Result<Server> {
    let handle = web::Data::new(metrics.handle());
    let addr = listener.local_addr()?;
    // A scraper may name a public bind as it likes; a loopback one answers only to names that
    // cannot be rebound (`net::host`).
    let hosts = web::Data::new(if public {
        KnownHosts::any(addr)
    } else {
        KnownHosts::of(addr)
    });
    let weak = Arc::downgrade(metrics);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            let Some(metrics) = weak.upgrade() else { break };
            metrics.handle().run_upkeep();
        }
    });
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(from_fn(only_known_hosts))
            .app_data(hosts.clone())
            .app_data(handle.clone())
            // HEAD answers like GET, without the body (RFC 9110 §9.3.2).
            .service(web::resource("/metrics").get(scrape).head(scrape))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .listen(listener)?
    // Stopped with the API, by the same signal handling (`net::signals`).
    .disable_signals()
    .run())
}

async fn scrape(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Binds `--metrics-bind`, after [`check_bind`].
pub fn bind(addr: SocketAddr, public: bool) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    check_bind(addr, public)?;
    TcpListener::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(status_label(StatusCode::OK), "200");
        assert_eq!(status_label(StatusCode::CONTINUE), "100");
        assert_eq!(status_label(StatusCode::INSUFFICIENT_STORAGE), "507");
        let odd = StatusCode::from_u16(999).expect("a status");
        assert_eq!(status_label(odd), "999");
        let brew = actix_web::http::Method::from_bytes(b"BREW").expect("a token");
        assert_eq!(method_label(&brew), "other");
        assert_eq!(method_label(&actix_web::http::Method::PATCH), "PATCH");
    }

    #[test]
    fn only_loopback_unless_public() {
        let public: SocketAddr = "0.0.0.0:9464".parse().expect("addr");
        let err = check_bind(public, false).expect_err("refused");
        assert!(err.to_string().contains("--metrics-public"), "{err}");
        assert!(check_bind(public, true).is_ok());
        assert!(check_bind("[::1]:9464".parse().expect("addr"), false).is_ok());
    }

    /// 503s and 507s are told apart by the error the response carries, whoever returned it
    /// (`Shared`: one login outcome answered to several requests); 429s by the limiter's mark.
    #[actix_web::test]
    async fn store_failures_and_login_limits_are_counted_from_the_answer() {
        use actix_web::{HttpRequest, test};
        let busy = || ApiError::Unavailable(sqlx::Error::PoolTimedOut);
        let full = || ApiError::InsufficientStorage(sqlx::Error::PoolTimedOut);
        let metrics = Metrics::new().expect("metrics");
        let app = test::init_service(
            App::new()
                .wrap(Measure(Some(metrics.clone())))
                .route(
                    "/busy",
                    web::get().to(move || async move { Err::<HttpResponse, _>(busy()) }),
                )
                .route(
                    "/full",
                    web::get().to(move || async move {
                        Err::<HttpResponse, _>(ApiError::Shared(Arc::new(full())))
                    }),
                )
                .route(
                    "/limited",
                    web::get().to(|req: HttpRequest| async move {
                        AnsweredBy::mark(&req, Layer::LoginLimiter, "login_limited", None);
                        HttpResponse::TooManyRequests().finish()
                    }),
                ),
        )
        .await;

        for path in ["/busy", "/full", "/full", "/limited"] {
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }

        let scrape = metrics.handle().render();
        for line in [
            "database_unavailable_total 1",
            "storage_full_total 2",
            "login_limited_total 1",
            r#"http_requests_total{route="/full",method="GET",status="507"} 2"#,
        ] {
            assert!(scrape.lines().any(|l| l == line), "{line}:\n{scrape}");
        }
    }

    #[test]
    fn a_route_pattern_is_kept_once_and_none_is_unmatched() {
        let metrics = Metrics::new().expect("metrics");
        let first = metrics.route(Some("/delivery/{id}".to_owned()));
        let again = metrics.route(Some("/delivery/{id}".to_owned()));
        assert_eq!(first, again);
        assert_eq!(metrics.routes.read().len(), 1);
        assert_eq!(&*metrics.route(None), UNMATCHED);
    }
}
