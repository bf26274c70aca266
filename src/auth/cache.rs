//! Remembers successful Basic-auth logins, so argon2 (~20 ms of CPU) does not run on every request.
//!
//! - Keyed by HMAC-SHA256(per-process random key, user NUL password): the password itself is never
//!   stored, and the key dies with the process.
//! - Bounded (LRU, `capacity` entries) and each entry expires `ttl` after its verification.
//! - An entry counts only under the users revision it was verified at: the database bumps
//!   `users_revision` in a trigger whenever any user is added, changed or removed (by this process
//!   or by `delivery-api user` in another one), and every request reads it (`revision.rs`). So a
//!   changed or removed password stops working on the very next request: no staleness window.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;
use ring::hmac;
use secrecy::ExposeSecret;

use super::credentials::Credentials;

pub struct CredentialCache {
    key: hmac::Key,
    entries: Mutex<LruCache<Key, Entry>>,
    ttl: Duration,
}

struct Entry {
    verified_at: Instant,
    revision: u64,
}

impl CredentialCache {
    /// Fails only if the system random generator does (at start-up, never per request).
    pub fn new(capacity: usize, ttl: Duration) -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| anyhow::anyhow!("the system random generator is unavailable"))?;
        Ok(Self {
            key,
            entries: Mutex::new(LruCache::new(capacity.max(1))),
            ttl,
        })
    }

    /// The credentials' HMAC: what identifies them here without holding the password.
    pub fn fingerprint(&self, creds: &Credentials) -> Key {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(creds.user.as_bytes());
        ctx.update(&[0]);
        ctx.update(creds.password.expose_secret().as_bytes());
        Key(ctx.sign())
    }

    /// The user, if these exact credentials were verified recently, at the users revision that is
    /// current now.
    pub fn get(&self, creds: &Credentials, revision: u64) -> Option<String> {
        let key = self.fingerprint(creds);
        let mut entries = self.entries.lock();
        let fresh = entries
            .get(&key)
            .map(|e| e.revision == revision && e.verified_at.elapsed() < self.ttl)?;
        if fresh {
            Some(creds.user.clone())
        } else {
            entries.remove(&key);
            None
        }
    }

    /// Remembers a successful verification made under `revision` (read *before* the password
    /// hash, so a change that lands during verification leaves the entry already stale).
    pub fn insert(&self, creds: &Credentials, revision: u64) {
        let entry = Entry {
            verified_at: Instant::now(),
            revision,
        };
        let key = self.fingerprint(creds);
        let mut entries = self.entries.lock();
        entries.insert(key, entry);
    }
}

/// The HMAC tag, hashable.
#[derive(Clone, Copy)]
pub struct Key(hmac::Tag);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref() == other.0.as_ref()
    }
}
impl Eq for Key {}
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_ref().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn only_the_exact_credentials_hit() {
        let cache = CredentialCache::new(8, Duration::from_secs(60)).expect("cache");
        cache.insert(&creds("alice", "secret-1"), 0);
        assert_eq!(
            cache.get(&creds("alice", "secret-1"), 0).as_deref(),
            Some("alice")
        );
        assert_eq!(cache.get(&creds("alice", "secret-2"), 0), None);
        assert_eq!(cache.get(&creds("alicesecret-1", ""), 0), None);
    }

    #[test]
    fn an_entry_counts_only_at_the_revision_it_was_verified_at() {
        let cache = CredentialCache::new(8, Duration::from_secs(60)).expect("cache");
        cache.insert(&creds("alice", "secret-1"), 0);
        assert_eq!(
            cache.get(&creds("alice", "secret-1"), 1),
            None,
            "users changed since"
        );
        // ...and it is gone, even if asked again at the old revision.
        assert_eq!(cache.get(&creds("alice", "secret-1"), 0), None);
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let cache = CredentialCache::new(2, Duration::ZERO).expect("cache");
        cache.insert(&creds("a", "p"), 0);
        assert_eq!(cache.get(&creds("a", "p"), 0), None, "expired at once");

        let cache = CredentialCache::new(2, Duration::from_secs(60)).expect("cache");
        for user in ["a", "b", "c"] {
            cache.insert(&creds(user, "p"), 0);
        }
        assert_eq!(
            cache.get(&creds("a", "p"), 0),
            None,
            "the least recently used entry went"
        );
        assert!(cache.get(&creds("c", "p"), 0).is_some());
    }
}
