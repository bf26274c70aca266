//! The `Host` a request names must be one a browser can only send on purpose, on the plain-HTTP
//! servers beside the API (the demo page, the metrics): `localhost` or an IP address, with this
//! server's port. Else a page on any site could rebind its own DNS name to 127.0.0.1 (DNS
//! rebinding) and read these servers as its own origin: the browser would send that site's name
//! as `Host`. An IP literal or `localhost` cannot be rebound. Refused with 421 Misdirected
//! Request (RFC 9110 §15.5.20). `--metrics-public` turns the check off for the metrics, whose
//! scrapers may use any DNS name.

use std::net::SocketAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

/// Which `Host` values a server answers to.
#[derive(Clone, Debug)]
pub struct KnownHosts {
    port: u16,
    /// Any name at all (a bind its operator made public on purpose).
    any: bool,
}

impl KnownHosts {
    /// `localhost` or an IP address, with the port of `addr` (or without it on port 80).
    pub fn of(addr: SocketAddr) -> Self {
        Self {
            port: addr.port(),
            any: false,
        }
    }

    /// Every name: no check.
    pub fn any(addr: SocketAddr) -> Self {
        Self {
            port: addr.port(),
            any: true,
        }
    }

    fn allows(&self, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Some(host) = host else { return false };
        let host = host.to_ascii_lowercase();
        // `[v6]:port`, `v4:port`, `name:port`, or any of them without the port (port 80).
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && !port.contains(']') => {
                (name, port.parse::<u16>().ok())
            }
            _ => (host.as_str(), Some(80)),
        };
        if port != Some(self.port) {
            return false;
        }
        let unbracketed = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
        name == "localhost"
            || name.parse::<std::net::Ipv4Addr>().is_ok()
            || unbracketed.is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
    }
}

/// Middleware (`from_fn`): 421 for a request whose `Host` is not one of the [`KnownHosts`] in
/// the app's data.
pub async fn only_known_hosts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let known = req.app_data::<web::Data<KnownHosts>>().cloned();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(ToString::to_string));
    if known.is_none_or(|known| known.allows(host.as_deref())) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = HttpResponse::build(StatusCode::MISDIRECTED_REQUEST)
        .content_type("text/plain; charset=utf-8")
        .body(
            "421 Misdirected Request: open this server as localhost or by its IP address, with \
             its port (another name could be a DNS-rebinding page).\n",
        );
    Ok(req.into_response(refusal).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_only_to_names_that_cannot_be_rebound() {
        let known = KnownHosts::of(([127, 0, 0, 1], 4200).into());
        for host in [
            "localhost:4200",
            "LOCALHOST:4200",
            "127.0.0.1:4200",
            "[::1]:4200",
            "192.168.1.5:4200",
        ] {
            assert!(known.allows(Some(host)), "{host}");
        }
        for host in [
            "attacker.example:4200",
            "localhost:4201",
            "localhost",
            "127.0.0.1.nip.io:4200",
            "[::1]",
            "",
        ] {
            assert!(!known.allows(Some(host)), "{host}");
        }
        assert!(!known.allows(None), "no Host at all");
        let web = KnownHosts::of(([127, 0, 0, 1], 80).into());
        assert!(web.allows(Some("localhost")) && web.allows(Some("[::1]")));
        let public = KnownHosts::any(([0, 0, 0, 0], 9464).into());
        assert!(public.allows(Some("prometheus-target.internal:9464")));
    }
}
