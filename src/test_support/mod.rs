//! `--test-support`: what a Playwright or Cypress suite reaches for, built in and off by default
//! (docs/test-support.md). One flag turns on:
//!
//! - faults and delays per request, asked for with RFC 7240's `Prefer` header
//!   (`Prefer: code=503, delay=250`; `prefer.rs`, answered by `middleware.rs`);
//! - a request log a test can query by request id (`requests.rs`);
//! - `POST /reset` to put the seed back between tests, and the log's endpoints, on a bind of
//!   their own (`admin.rs`);
//! - higher login and connection limits, for a suite that logs in and connects many times.
//!
//! It is refused unless the API itself is bound to loopback ([`refuse_a_public_bind`]): a
//! reachable server must never let anyone reset its data or skip its login limits.

mod admin;
pub mod middleware;
pub mod prefer;
pub mod requests;

use std::net::SocketAddr;
use std::num::NonZeroU32;

pub use admin::{Admin, bind, serve};
pub use middleware::{Faults, Observe};
pub use requests::RequestLog;

use crate::auth;
use crate::cors::{CorsConfig, HeaderRule};
use crate::net;
use crate::store::Db;
use crate::store::deliveries::NewDelivery;
use crate::store::seed::{self, Restored, Sample};

/// What `POST /reset` puts back.
#[derive(Default)]
pub enum ResetTo {
    /// The built-in sample's deliveries (users untouched).
    #[default]
    BuiltIn,
    /// `--seed`'s deliveries, and its users if it has any (name, argon2 hash).
    Seed {
        deliveries: Vec<NewDelivery>,
        users: Vec<(String, String)>,
    },
}

async fn reset(db: &Db, to: &ResetTo) -> anyhow::Result<Restored> {
    let sample = match to {
        ResetTo::BuiltIn => Sample::BuiltIn,
        ResetTo::Seed { deliveries, users } => Sample::Given { deliveries, users },
    };
    seed::reset(db, sample).await
}

/// Refuses `--test-support` on an API other machines can reach.
pub fn refuse_a_public_bind(api: SocketAddr) -> anyhow::Result<()> {
    if api.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing --test-support on {api}, reachable from other machines: it lets any client \
         reset the data, read the request log and inject faults, and it lifts the login limits. \
         It is for a test suite on this machine: --bind 127.0.0.1:PORT (or [::1]:PORT). \
         Anywhere else, leave --test-support (DELIVERY_API_TEST_SUPPORT) off"
    )
}

/// A page's `Prefer` makes its request preflighted: allowed, and `Preference-Applied` readable.
pub fn allow_prefer(cors: &mut CorsConfig) {
    cors.allow_headers.push(HeaderRule::Name(prefer::PREFER));
    (cors.expose_headers).push(HeaderRule::Name(prefer::PREFERENCE_APPLIED));
}

/// Password checks a minute per client and per user under `--test-support` (at least).
pub const LOGIN_ATTEMPTS: u32 = 100_000;
/// Connections per client under `--test-support` (at least): every browser of a parallel suite
/// connects from 127.0.0.1.
pub const CONNECTIONS_PER_CLIENT: u32 = 4096;
/// TLS handshakes in progress per client under `--test-support` (at least).
pub const HANDSHAKES_PER_CLIENT: u32 = 256;

/// The test profile's limits: raised to at least the values above (a higher flag still wins).
/// The test suite is the only client, on loopback: a 429 after 10 wrong passwords, or a
/// connection closed past 64, would be a flaky test, not a defence.
pub fn lift_limits(auth: &mut auth::Settings, limits: &mut net::Limits) {
    let attempts = NonZeroU32::new(LOGIN_ATTEMPTS).unwrap_or(NonZeroU32::MIN);
    auth.attempts_per_ip = auth.attempts_per_ip.max(attempts);
    auth.attempts_per_user = auth.attempts_per_user.max(attempts);
    limits.per_client = limits.per_client.max(CONNECTIONS_PER_CLIENT);
    limits.handshakes_per_client = limits.handshakes_per_client.max(HANDSHAKES_PER_CLIENT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_api_may_have_test_support() {
        for public in ["0.0.0.0:8443", "[::]:8443", "192.168.1.5:8443"] {
            let err = refuse_a_public_bind(public.parse().expect("addr")).expect_err(public);
            assert!(err.to_string().contains("--bind 127.0.0.1:PORT"), "{err}");
        }
        for local in ["127.0.0.1:8443", "[::1]:0"] {
            assert!(
                refuse_a_public_bind(local.parse().expect("addr")).is_ok(),
                "{local}"
            );
        }
    }
}
