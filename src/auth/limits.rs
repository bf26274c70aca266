//! Limits on password guessing (governor): how many logins that need a password check may be
//! attempted per minute, per client and per user name.
//!
//! Only attempts that need a password check count: a login already verified and cached
//! (`credential_cache`) never does. Past a limit the answer is 429 with `Retry-After`, before any
//! waiting or hashing (see `auth.rs`). A client is an IPv4 address or an IPv6 /64
//! (`net::ClientKey`).
//!
//! The per-user limit would let anyone lock a user out by guessing at the name from many
//! addresses, for as long as they keep at it. So it applies only to *new* sources, and a new
//! source near the user gets a budget of its own:
//!
//! - a client that logged in as that user successfully within the last [`KNOWN_CLIENT_TTL`] is
//!   "known", and only its own per-client limit applies;
//! - a new client in a *network* the user logged in from within that time (the IPv4 /24, the
//!   IPv6 /48: a renumbered home line, an office's NAT pool) first spends that network's own
//!   per-user budget, which guessers elsewhere cannot drain, then the shared one;
//! - any other client spends the per-user budget all new sources share.
//!
//! The guessing rate against one user is therefore at most `per_user` a minute from all new
//! sources together, plus `per_user` from each of the user's known networks, plus `per_ip` from
//! each known client. A new address in a network the user never logged in from still waits while
//! a distributed guesser keeps the shared budget empty: telling that user from the guessers would
//! take checking the password, the oracle the limit exists to deny (docs/security.md).

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
    /// The per-user budget of each network the user logged in from.
    per_user_network: DefaultKeyedRateLimiter<(String, Network)>,
    /// (user, client) → when that client last logged in as that user.
    known: Mutex<LruCache<(String, ClientKey), Instant>>,
    /// (user, network) → when a client in that network last logged in as that user.
    known_networks: Mutex<LruCache<(String, Network), Instant>>,
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
            per_user_network: RateLimiter::keyed(Quota::per_minute(per_user)),
            known: Mutex::new(LruCache::new(KNOWN_CLIENTS)),
            known_networks: Mutex::new(LruCache::new(KNOWN_CLIENTS)),
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
            self.per_user_network.retain_recent();
        }
        let now = self.clock.now();
        let Some(ip) = ip else {
            return self.shared(user, now);
        };
        let client = ClientKey::of(ip);
        self.per_ip
            .check_key(&client)
            .map_err(|n| n.wait_time_from(now))?;
        if recent(&self.known, (user.to_owned(), client)) {
            return Ok(());
        }
        let network = (user.to_owned(), Network::of(ip));
        if recent(&self.known_networks, network.clone())
            && self.per_user_network.check_key(&network).is_ok()
        {
            return Ok(());
        }
        self.shared(user, now)
    }

    /// The per-user budget every new source shares.
    fn shared(&self, user: &str, now: <DefaultClock as Clock>::Instant) -> Result<(), Duration> {
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|n| n.wait_time_from(now))
    }

    /// Remembers that `ip`, and its network, logged in as `user`.
    pub fn logged_in(&self, ip: Option<IpAddr>, user: &str) {
        if let Some(ip) = ip {
            let now = Instant::now();
            let key = (user.to_owned(), ClientKey::of(ip));
            self.known.lock().insert(key, now);
            let network = (user.to_owned(), Network::of(ip));
            self.known_networks.lock().insert(network, now);
        }
    }
}

/// Whether `key` logged in within [`KNOWN_CLIENT_TTL`].
fn recent<K: std::hash::Hash + Eq>(map: &Mutex<LruCache<K, Instant>>, key: K) -> bool {
    map.lock()
        .get(&key)
        .is_some_and(|at| at.elapsed() < KNOWN_CLIENT_TTL)
}

/// A client's network, as far as knowing a user goes: an IPv4 /24 or an IPv6 /48, the sizes
/// providers and offices usually hand out and renumber within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Network(IpAddr);

impl Network {
    fn of(ip: IpAddr) -> Self {
        match ClientKey::of(ip).ip() {
            IpAddr::V4(v4) => Self(IpAddr::V4((u32::from(v4) & !0xff).into())),
            IpAddr::V6(v6) => Self(IpAddr::V6((u128::from(v6) & !0u128 << 80).into())),
        }
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
            Some(IpAddr::from([10, 0, 1, 2])),
            Some(IpAddr::from([10, 0, 2, 3])),
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
    fn a_new_address_in_a_network_the_user_logged_in_from_has_a_budget_guessers_elsewhere_cannot_drain()
     {
        let l = limits(100, 2);
        let real = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(l.check(real, "demo").is_ok());
        l.logged_in(real, "demo");
        for last in 1..=3 {
            let _ = l.check(Some(IpAddr::from([192, 0, 2, last])), "demo");
        }
        let elsewhere = Some(IpAddr::from([198, 51, 100, 7]));
        assert!(
            l.check(elsewhere, "demo").is_err(),
            "the shared budget is spent"
        );
        // The same user from a renumbered address in the same /24: the network's own budget.
        let renumbered = Some(IpAddr::from([10, 0, 0, 77]));
        assert!(l.check(renumbered, "demo").is_ok());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 78])), "demo").is_ok());
        assert!(
            l.check(Some(IpAddr::from([10, 0, 0, 79])), "demo").is_err(),
            "that budget is per_user too, and guessers inside the network spend it"
        );
        assert!(
            l.check(Some(IpAddr::from([10, 0, 0, 80])), "alice").is_ok(),
            "it is the network's budget for this user only"
        );
        // IPv6: the /48.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        l.logged_in(v6("2001:db8:1:1::1"), "demo");
        assert!(l.check(v6("2001:db8:1:ffff::9"), "demo").is_ok());
        assert!(l.check(v6("2001:db8:2::9"), "demo").is_err());
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
