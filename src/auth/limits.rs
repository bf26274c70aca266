//! Limits on password guessing (governor): how many logins that need a password check may be
//! attempted per minute, per client and per user name.
//!
//! Only attempts that need a password check count: a login already verified and cached
//! (`credential_cache`) never does. Past a limit the answer is 429 with `Retry-After`, before any
//! waiting or hashing (see `auth.rs`). A client is an IPv4 address or an IPv6 /64
//! (`net::ClientKey`).
//!
//! The per-user limit would let anyone lock a user out by guessing at the name from many
//! addresses, for as long as they keep at it. So it applies only to *new* sources: a client that
//! logged in as that user successfully within the last [`KNOWN_CLIENT_TTL`] is "known" and only
//! its own per-client limit applies. The guessing rate against one user is therefore at most
//! `per_user` a minute from all new sources together, plus `per_ip` a minute from each known one.

use parking_lot::Mutex;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hashlink::LruCache;

use crate::net::ClientKey;

/// How long a successful login makes its client "known" for that user.
pub const KNOWN_CLIENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many (user, client) pairs are remembered (least recently used go first).
const KNOWN_CLIENTS: usize = 10_000;

pub struct LoginLimits {
    per_ip: DefaultKeyedRateLimiter<ClientKey>,
    per_user: DefaultKeyedRateLimiter<String>,
    /// (user, client) → when that client last logged in as that user.
    known: Mutex<LruCache<(String, ClientKey), Instant>>,
    clock: DefaultClock,
    /// Checks since the last sweep of idle keys (so random user names cannot grow the maps).
    checks: AtomicU32,
}

const SWEEP_EVERY: u32 = 1024;

impl LoginLimits {
    /// `per_ip` and `per_user` attempts per minute, each also the burst.
    pub fn new(per_ip: NonZeroU32, per_user: NonZeroU32) -> Self {
        Self {
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip)),
            per_user: RateLimiter::keyed(Quota::per_minute(per_user)),
            known: Mutex::new(LruCache::new(KNOWN_CLIENTS)),
            clock: DefaultClock::default(),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one attempt; `Err(wait)` when the client, or (for a client not known for this
    /// user) the user name, is over its limit.
    pub fn check(&self, ip: Option<IpAddr>, user: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_ip.retain_recent();
            self.per_user.retain_recent();
        }
        let now = self.clock.now();
        let client = ip.map(ClientKey::of);
        if let Some(client) = client {
            self.per_ip
                .check_key(&client)
                .map_err(|n| n.wait_time_from(now))?;
        }
        if client.is_some_and(|c| self.is_known(user, c)) {
            return Ok(());
        }
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|n| n.wait_time_from(now))
    }

    /// Remembers that `ip` logged in as `user`.
    pub fn logged_in(&self, ip: Option<IpAddr>, user: &str) {
        if let Some(ip) = ip {
            let mut known = self.known.lock();
            known.insert((user.to_owned(), ClientKey::of(ip)), Instant::now());
        }
    }

    fn is_known(&self, user: &str, client: ClientKey) -> bool {
        let mut known = self.known.lock();
        known
            .get(&(user.to_owned(), client))
            .is_some_and(|at| at.elapsed() < KNOWN_CLIENT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_user: u32) -> LoginLimits {
        LoginLimits::new(
            NonZeroU32::new(per_ip).expect("non-zero"),
            NonZeroU32::new(per_user).expect("non-zero"),
        )
    }

    #[test]
    fn an_ip_over_its_budget_waits_and_others_do_not() {
        let l = limits(3, 100);
        let attacker = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(l.check(attacker, "demo").is_ok());
        }
        let wait = l.check(attacker, "demo").expect_err("4th attempt refused");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 2])), "demo").is_ok());
    }

    #[test]
    fn a_client_that_logged_in_before_is_not_locked_out_by_guessing_elsewhere() {
        let l = limits(100, 2);
        let (real, attacker, newcomer) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
            Some(IpAddr::from([10, 0, 0, 3])),
        );
        assert!(l.check(real, "demo").is_ok());
        l.logged_in(real, "demo");
        assert!(l.check(attacker, "demo").is_ok());
        assert!(
            l.check(attacker, "demo").is_err(),
            "the user name is over its budget"
        );
        assert!(l.check(newcomer, "demo").is_err(), "for new sources too");
        assert!(l.check(real, "demo").is_ok(), "but not for a known client");
        let same_64 = Some("2001:db8::1".parse().expect("ip"));
        l.logged_in(same_64, "demo");
        assert!(
            l.check(Some("2001:db8::ffff".parse().expect("ip")), "demo")
                .is_ok(),
            "an IPv6 client is known by its /64"
        );
    }

    #[test]
    fn a_user_name_over_its_budget_is_refused_from_any_ip() {
        let l = limits(100, 2);
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 1])), "demo").is_ok());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 2])), "demo").is_ok());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 3])), "demo").is_err());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 3])), "alice").is_ok());
    }
}
