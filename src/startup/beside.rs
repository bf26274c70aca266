//! The servers beside the API, each on a bind of its own: the demo page (a second origin), the
//! Prometheus metrics and the test-support admin endpoints. Start-up binds them early (a refusal
//! leaves nothing behind) and serves them once the API is built.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;

use super::seed;
use super::{Listeners, ServeArgs};
use crate::cors::CorsConfig;
use crate::demo_page;
use crate::exchanges::Exchanges;
use crate::metrics::{self, Metrics};
use crate::store::Db;
use crate::test_support::{self, ResetTo};

/// The demo page's origin (what it is announced as) and the record of what the API saw of its
/// requests (under every name the page can be opened as); both `None` without a demo page.
pub(super) struct DemoOrigins {
    pub(super) origin: Option<String>,
    pub(super) exchanges: Option<Arc<Exchanges>>,
}

impl DemoOrigins {
    pub(super) fn of(listeners: &Listeners) -> anyhow::Result<Self> {
        let Some(listener) = &listeners.demo_page else {
            return Ok(Self {
                origin: None,
                exchanges: None,
            });
        };
        let addr = listener.local_addr()?;
        Ok(Self {
            origin: Some(demo_page::origin(addr)),
            exchanges: Some(Exchanges::new(demo_page::origins(addr))),
        })
    }
}

/// `--test-support`: refused unless the API is on loopback, then its own bind (checked and bound
/// early, like the metrics', so a refusal leaves nothing behind).
pub(super) fn test_support_bind(
    args: &ServeArgs,
    listeners: &Listeners,
) -> anyhow::Result<Option<TcpListener>> {
    if !args.harness.test_support {
        return Ok(None);
    }
    test_support::refuse_a_public_bind(listeners.api.local_addr()?)?;
    test_support::bind(args.harness.test_support_bind).map(Some)
}

/// `POST /reset` and `/requests` on their own bind, if `--test-support` is on.
pub(super) fn serve_test_support(
    listener: Option<TcpListener>,
    db: &Db,
    log: Option<Arc<test_support::RequestLog>>,
    seed: Option<seed::Seed>,
) -> anyhow::Result<Option<(SocketAddr, Server)>> {
    let (Some(listener), Some(log)) = (listener, log) else {
        return Ok(None);
    };
    let addr = listener.local_addr()?;
    let reset_to = seed.map_or(ResetTo::BuiltIn, |seed| {
        let (deliveries, users) = seed.into_data();
        ResetTo::Seed { deliveries, users }
    });
    let admin = test_support::Admin {
        db: db.clone(),
        log,
        reset_to,
    };
    Ok(Some((addr, test_support::serve(listener, admin)?)))
}

/// `GET /metrics` on its own bind, if asked for.
pub(super) fn serve_metrics(
    listener: Option<TcpListener>,
    meters: Option<&Arc<Metrics>>,
    public: bool,
) -> anyhow::Result<Option<(SocketAddr, Server)>> {
    let (Some(listener), Some(meters)) = (listener, meters) else {
        return Ok(None);
    };
    let addr = listener.local_addr()?;
    Ok(Some((addr, metrics::serve(listener, meters, public)?)))
}

/// The demo page on its own bind, calling the API at `api_origin`.
pub(super) fn serve_demo_page(
    listener: Option<TcpListener>,
    exchanges: Option<Arc<Exchanges>>,
    api_origin: &str,
    cors: &CorsConfig,
) -> anyhow::Result<Option<(SocketAddr, Server)>> {
    let (Some(listener), Some(exchanges)) = (listener, exchanges) else {
        return Ok(None);
    };
    let addr = listener.local_addr()?;
    let page = demo_page::Page {
        api_base: api_origin.to_owned(),
        allowed_origins: cors.origins.iter().map(ToString::to_string).collect(),
        exchanges,
    };
    Ok(Some((addr, demo_page::serve(listener, page)?)))
}
