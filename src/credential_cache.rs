//! Remembers successful Basic-auth logins, so argon2 (~20 ms of CPU) does not run on every request.
//!
//! - Keyed by HMAC-SHA256(per-process random key, user NUL password): the password itself is never
//!   stored, and the key dies with the process.
//! - Bounded (LRU, `capacity` entries) and each entry expires `ttl` after its verification.
//! - Every entry is dropped when any user is added, changed or removed, by this process or another
//!   one: the database bumps `users_revision` in a trigger, and the server polls it
//!   ([`POLL_INTERVAL`]), so a changed password stops working within that interval.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use ring::hmac;
use secrecy::ExposeSecret;

use crate::auth::Credentials;

/// How often the server reads `users_revision`: the staleness bound after `delivery-api user ...`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub struct CredentialCache {
    key: hmac::Key,
    entries: Mutex<LruCache<Key, Entry>>,
    ttl: Duration,
    /// The users revision the entries were verified under.
    revision: AtomicU64,
}

struct Entry {
    verified_at: Instant,
    revision: u64,
}

impl CredentialCache {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let rng = ring::rand::SystemRandom::new();
        Self {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng)
                .expect("the system random generator is available"),
            entries: Mutex::new(LruCache::new(capacity.max(1))),
            ttl,
            revision: AtomicU64::new(0),
        }
    }

    fn fingerprint(&self, creds: &Credentials) -> Key {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(creds.user.as_bytes());
        ctx.update(&[0]);
        ctx.update(creds.password.expose_secret().as_bytes());
        Key(ctx.sign())
    }

    /// The user, if these exact credentials were verified recently under the current revision.
    pub fn get(&self, creds: &Credentials) -> Option<String> {
        let key = self.fingerprint(creds);
        let revision = self.revision.load(Ordering::Acquire);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(key, entry);
    }

    /// Records the database's users revision; a new one drops every entry.
    pub fn observe_revision(&self, revision: u64) {
        if self.revision.swap(revision, Ordering::AcqRel) != revision {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }
}

/// The HMAC tag, hashable.
#[derive(Clone, Copy)]
struct Key(hmac::Tag);

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
        let cache = CredentialCache::new(8, Duration::from_secs(60));
        cache.insert(&creds("alice", "secret-1"), 0);
        assert_eq!(
            cache.get(&creds("alice", "secret-1")).as_deref(),
            Some("alice")
        );
        assert_eq!(cache.get(&creds("alice", "secret-2")), None);
        assert_eq!(cache.get(&creds("alicesecret-1", "")), None);
    }

    #[test]
    fn a_new_users_revision_drops_everything() {
        let cache = CredentialCache::new(8, Duration::from_secs(60));
        cache.insert(&creds("alice", "secret-1"), 0);
        cache.observe_revision(1);
        assert_eq!(cache.get(&creds("alice", "secret-1")), None);
        // A verification that started before the change is stale on arrival.
        cache.insert(&creds("alice", "secret-1"), 0);
        assert_eq!(cache.get(&creds("alice", "secret-1")), None);
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let cache = CredentialCache::new(2, Duration::ZERO);
        cache.insert(&creds("a", "p"), 0);
        assert_eq!(cache.get(&creds("a", "p")), None, "expired at once");

        let cache = CredentialCache::new(2, Duration::from_secs(60));
        for user in ["a", "b", "c"] {
            cache.insert(&creds(user, "p"), 0);
        }
        assert_eq!(
            cache.get(&creds("a", "p")),
            None,
            "the least recently used entry went"
        );
        assert!(cache.get(&creds("c", "p")).is_some());
    }
}
