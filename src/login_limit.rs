//! Limits on password guessing (governor): how many logins that need a password check may be
//! attempted per minute, per client IP and per user name.
//!
//! Only attempts that reach argon2 count: a login already verified and cached (`credential_cache`)
//! never does, so a signed-in user is not slowed by someone guessing at their name. Past a limit
//! the answer is 429 with `Retry-After`, before any hashing (see `auth.rs`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
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
            clock: DefaultClock::default(),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one attempt; `Err(wait)` when the IP or the user name is over its limit.
    pub fn check(&self, ip: Option<IpAddr>, user: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_ip.retain_recent();
            self.per_user.retain_recent();
        }
        let now = self.clock.now();
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(now))?;
        }
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|n| n.wait_time_from(now))
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
    fn a_user_name_over_its_budget_is_refused_from_any_ip() {
        let l = limits(100, 2);
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 1])), "demo").is_ok());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 2])), "demo").is_ok());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 3])), "demo").is_err());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 3])), "alice").is_ok());
    }
}
