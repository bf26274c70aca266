//! Whether a username and password are right: the credential cache, the guessing limits, and
//! argon2 on the blocking pool (`Authenticator::verify`). No HTTP here beyond the error it returns.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use argon2::Block;
use tokio::sync::{OnceCell, Semaphore};

use super::cache::{self, CredentialCache};
use super::credentials::{Credentials, unauthorized};
use super::limits::LoginLimits;
use crate::error::ApiError;
use crate::store::{Db, users};

/// How long a refusal for too many login attempts is held before it is sent.
const TARPIT: Duration = Duration::from_secs(1);

/// The logged-in user, put in the request extensions for handlers that want it.
#[derive(Debug, Clone)]
pub struct AuthedUser(pub String);

/// Checks credentials against the users table. Shared by all workers (`web::Data`).
///
/// A fresh login (not in the cache) goes: guessing limits (429 before any waiting) → the stored
/// hash → argon2, one at a time, on the blocking pool. An unknown user name costs no argon2 at
/// all, so a flood of made-up names cannot queue real users' first logins behind it; to keep
/// unknown names indistinguishable from wrong passwords by timing, its refusal waits as long as a
/// recent real check took, queueing included (a replayed sample, a timer: no CPU).
pub struct Authenticator {
    pub(super) db: Db,
    /// argon2 is CPU-bound (~20 ms): it runs on the blocking pool, at most this many at once,
    /// so a flood of wrong passwords cannot take every core.
    verifications: Arc<Semaphore>,
    /// Successful logins, so argon2 runs once per credential, not once per request.
    cache: CredentialCache,
    /// Fresh logins being checked now, by credential fingerprint: a page's parallel first
    /// requests share one check (and count once against the limits).
    in_flight: Mutex<HashMap<CheckKey, Arc<OnceCell<Outcome>>>>,
    /// How many argon2 verifications ran (for tests and metrics).
    verified: AtomicU64,
    /// How long recent real checks took, from asking for a permit to the answer.
    durations: Mutex<VecDeque<Duration>>,
    /// argon2 working memory, one buffer per concurrent verification, reused.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Password-guessing limits, per client and per user name.
    limits: LoginLimits,
}

/// What a fresh check concluded, shared by every request that waited for it.
#[derive(Clone)]
enum Outcome {
    Verified,
    Refused,
    Failed(Arc<ApiError>),
}

/// How many recent check durations are kept to replay for unknown user names.
const DURATIONS_KEPT: usize = 64;

/// What the flags decide about logins (`config::AuthArgs`, converted once by start-up).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a successful login is remembered, and how many are.
    pub cache_ttl: Duration,
    pub cache_size: usize,
    /// Password checks per client (IP or IPv6 /64) and per user name, per minute.
    pub attempts_per_ip: NonZeroU32,
    pub attempts_per_user: NonZeroU32,
    /// argon2 checks allowed to run at once.
    pub max_concurrent_verifications: usize,
}

impl Authenticator {
    /// The authenticator for `db`, as `settings` say.
    pub fn with_settings(db: Db, settings: &Settings) -> anyhow::Result<Self> {
        let cache = CredentialCache::new(settings.cache_size, settings.cache_ttl)?;
        let limits = LoginLimits::new(settings.attempts_per_ip, settings.attempts_per_user);
        Ok(Self::new(
            db,
            settings.max_concurrent_verifications,
            cache,
            limits,
        ))
    }

    pub fn new(
        db: Db,
        max_concurrent_verifications: usize,
        cache: CredentialCache,
        limits: LoginLimits,
    ) -> Self {
        Self {
            db,
            verifications: Arc::new(Semaphore::new(max_concurrent_verifications.max(1))),
            cache,
            in_flight: Mutex::default(),
            verified: AtomicU64::new(0),
            durations: Mutex::default(),
            memory: Arc::default(),
            limits,
        }
    }

    /// Checks `creds` from `client`; `users_revision` is the database's current one (`revision.rs`).
    pub async fn verify(
        &self,
        creds: Credentials,
        users_revision: u64,
        client: Option<IpAddr>,
    ) -> Result<AuthedUser, ApiError> {
        if let Some(user) = self.cache.get(&creds, users_revision) {
            return Ok(AuthedUser(user));
        }
        // Shared only by requests that saw the same users revision: a request that arrives after
        // a password change (a newer revision) never takes a check begun under the old password.
        let key = (self.cache.fingerprint(&creds), users_revision);
        let check = InFlight::join(&self.in_flight, key);
        let outcome = check
            .cell
            .get_or_init(|| self.check_fresh(&creds, client))
            .await
            .clone();
        match outcome {
            Outcome::Verified => Ok(AuthedUser(creds.user)),
            Outcome::Refused => Err(unauthorized("wrong user name or password")),
            Outcome::Failed(e) => Err(ApiError::Shared(e)),
        }
    }

    /// A login that is not in the cache: limits, then the hash, then argon2 (see the type's doc).
    async fn check_fresh(&self, creds: &Credentials, client: Option<IpAddr>) -> Outcome {
        if let Err(wait) = self.limits.check(client, &creds.user) {
            // Tarpit: hold the refusal a moment (a timer, no CPU), so a client hammering past
            // its limit gets one answer per second per connection instead of taking the cores
            // from everyone else with a stream of cheap 429s.
            tokio::time::sleep(TARPIT).await;
            let secs = wait.as_secs() + 1;
            let limited = format!("too many login attempts; retry in {secs} s");
            return Outcome::Failed(Arc::new(ApiError::TooManyRequests(limited, secs)));
        }
        let (revision, hash) = match users::password_hash_at_revision(&self.db, &creds.user).await {
            Ok(found) => found,
            Err(e) => return Outcome::Failed(Arc::new(e.into())),
        };
        let Some(hash) = hash else {
            tokio::time::sleep(self.typical_check()).await;
            return Outcome::Refused;
        };
        match self.argon2(hash, creds).await {
            Ok(true) => {
                self.cache.insert(creds, revision);
                self.limits.logged_in(client, &creds.user);
                Outcome::Verified
            }
            Ok(false) => Outcome::Refused,
            Err(e) => Outcome::Failed(Arc::new(e)),
        }
    }

    /// One argon2 verification, under a permit, on the blocking pool; its duration is recorded.
    async fn argon2(&self, hash: String, creds: &Credentials) -> Result<bool, ApiError> {
        let started = Instant::now();
        let permit = self
            .verifications
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        self.verified.fetch_add(1, Ordering::Relaxed);
        let span = tracing::Span::current();
        let memory = self.memory.clone();
        let password = creds.password.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let take = || memory.lock().pop();
            let mut buffer = take().unwrap_or_default();
            let ok =
                span.in_scope(|| users::verify_password_in(Some(&hash), &password, &mut buffer));
            memory.lock().push(buffer);
            ok
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        self.record(started.elapsed());
        Ok(ok)
    }

    /// Measures one verification (against the dummy hash) so unknown names have a duration to
    /// replay before any real login happened. Called once at start-up.
    pub async fn calibrate(&self) {
        let creds = Credentials {
            user: String::new(),
            password: "calibration".into(),
        };
        let _ = self.argon2(users::DUMMY_HASH.to_owned(), &creds).await;
        self.verified.store(0, Ordering::Relaxed);
    }

    fn record(&self, took: Duration) {
        let mut durations = self.durations.lock();
        if durations.len() == DURATIONS_KEPT {
            durations.pop_front();
        }
        durations.push_back(took);
    }

    /// A recent real check's duration, picked at random, so the replayed ones have the same
    /// spread as the real ones, not just the same mean.
    fn typical_check(&self) -> Duration {
        let durations = self.durations.lock();
        let mut pick = [0u8; 8];
        // ring's system random source (a failure only makes the pick the first entry).
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut pick);
        let index = (u64::from_le_bytes(pick) % durations.len().max(1) as u64) as usize;
        durations.get(index).copied().unwrap_or(FALLBACK_CHECK)
    }

    /// How many argon2 verifications have run since start.
    pub fn verifications_run(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// How many requests are waiting on a login check (several may share one).
    pub fn requests_in_checks(&self) -> usize {
        // Each waiting request holds one reference to its check; the map holds one more.
        let map = self.in_flight.lock();
        map.values().map(|cell| Arc::strong_count(cell) - 1).sum()
    }

    /// Takes every argon2 permit until the guard is dropped: checks that reach argon2 wait.
    /// For tests that need a check to be in flight at a chosen moment.
    pub fn hold_verifications(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let all = self.verifications.available_permits();
        self.verifications
            .clone()
            .try_acquire_many_owned(u32::try_from(all).ok()?)
            .ok()
    }
}

/// Replayed for an unknown name if nothing was measured yet (argon2id defaults, release build).
const FALLBACK_CHECK: Duration = Duration::from_millis(25);

/// One request's share in a fresh check; the map entry goes when the last sharer does (even if
/// they are all cancelled: a client that disconnects mid-check leaves nothing behind).
/// The credentials' fingerprint and the users revision the waiting requests saw.
type CheckKey = (cache::Key, u64);

struct InFlight<'a> {
    map: &'a Mutex<HashMap<CheckKey, Arc<OnceCell<Outcome>>>>,
    key: CheckKey,
    cell: Arc<OnceCell<Outcome>>,
}

impl<'a> InFlight<'a> {
    fn join(map: &'a Mutex<HashMap<CheckKey, Arc<OnceCell<Outcome>>>>, key: CheckKey) -> Self {
        let cell = map.lock().entry(key).or_default().clone();
        Self { map, key, cell }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock();
        // Only the map and this share left: nobody else is waiting for this check.
        if Arc::strong_count(&self.cell) == 2
            && map
                .get(&self.key)
                .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            map.remove(&self.key);
        }
    }
}
