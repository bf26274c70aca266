//! HTTP Basic auth (RFC 7617), with actix-web-httpauth. `app.rs` wraps the `/delivery` scope in
//! it, so it runs for every request the router sends there, and for nothing else.
//!
//! Every rejection is an `ApiError::Unauthorized`, which actix-web-httpauth turns into an
//! `Ok(401 response)`: the CORS layer outside it then adds `Access-Control-Allow-Origin`, so the
//! page sees 401 instead of status 0. This guard never sees a preflight in the default order
//! (CORS answers those first); see `app.rs`.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use actix_web_httpauth::headers::authorization::{Basic, ParseError, Scheme};
use actix_web_httpauth::middleware::HttpAuthentication;
use argon2::Block;
use secrecy::SecretString;
use sqlx::SqlitePool;
use tokio::sync::{OnceCell, Semaphore};

use crate::credential_cache::{self as cache, CredentialCache};
use crate::db::DbFile;
use crate::error::ApiError;
use crate::login_limit::LoginLimits;
use crate::revision::{self, RevisionProbe};
use crate::users;

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
    pool: SqlitePool,
    /// argon2 is CPU-bound (~20 ms): it runs on the blocking pool, at most this many at once,
    /// so a flood of wrong passwords cannot take every core.
    verifications: Arc<Semaphore>,
    /// Successful logins, so argon2 runs once per credential, not once per request.
    cache: CredentialCache,
    /// Fresh logins being checked now, by credential fingerprint: a page's parallel first
    /// requests share one check (and count once against the limits).
    in_flight: Mutex<HashMap<cache::Key, Arc<OnceCell<Outcome>>>>,
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

impl Authenticator {
    pub fn new(
        pool: SqlitePool,
        max_concurrent_verifications: usize,
        cache: CredentialCache,
        limits: LoginLimits,
    ) -> Self {
        Self {
            pool,
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
        let key = self.cache.fingerprint(&creds);
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
        let (revision, hash) = match users::password_hash_at_revision(&self.pool, &creds.user).await
        {
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
            let take = || memory.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut buffer = take().unwrap_or_default();
            let ok =
                span.in_scope(|| users::verify_password_in(Some(&hash), &password, &mut buffer));
            memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(buffer);
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
        let mut durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        if durations.len() == DURATIONS_KEPT {
            durations.pop_front();
        }
        durations.push_back(took);
    }

    /// A recent real check's duration, picked at random, so the replayed ones have the same
    /// spread as the real ones, not just the same mean.
    fn typical_check(&self) -> Duration {
        let durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let pick = std::hash::BuildHasher::hash_one(&RandomState::new(), Instant::now());
        let index = (pick % durations.len().max(1) as u64) as usize;
        durations.get(index).copied().unwrap_or(FALLBACK_CHECK)
    }

    /// How many argon2 verifications have run since start.
    pub fn verifications_run(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }
}

/// Replayed for an unknown name if nothing was measured yet (argon2id defaults, release build).
const FALLBACK_CHECK: Duration = Duration::from_millis(25);

/// One request's share in a fresh check; the map entry goes when the last sharer does (even if
/// they are all cancelled: a client that disconnects mid-check leaves nothing behind).
struct InFlight<'a> {
    map: &'a Mutex<HashMap<cache::Key, Arc<OnceCell<Outcome>>>>,
    key: cache::Key,
    cell: Arc<OnceCell<Outcome>>,
}

impl<'a> InFlight<'a> {
    fn join(map: &'a Mutex<HashMap<cache::Key, Arc<OnceCell<Outcome>>>>, key: cache::Key) -> Self {
        let cell = map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        Self { map, key, cell }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
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

/// Basic credentials, decoded. The password is a `SecretString`: redacted in Debug, never logged.
#[derive(Debug)]
pub struct Credentials {
    pub user: String,
    pub password: SecretString,
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::Unauthorized(format!("{detail}; use HTTP Basic authentication"))
}

impl Credentials {
    /// Decodes `Authorization: Basic base64(user:password)`. The scheme is matched
    /// case-insensitively (RFC 9110 §11.1); decoding itself is actix-web-httpauth's. Both parts
    /// are normalised to NFC, as stored by `delivery-api user add` (RFC 7617 §2.1).
    pub fn from_header(value: Option<&HeaderValue>) -> Result<Self, ApiError> {
        let value = value.ok_or_else(|| unauthorized("missing Authorization header"))?;
        let text = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not visible ASCII"))?;
        let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized("only the Basic scheme is accepted"));
        }
        let normalised = HeaderValue::from_str(&format!("Basic {}", token.trim_start()))
            .map_err(|_| unauthorized("malformed Basic credentials"))?;
        let basic = Basic::parse(&normalised).map_err(|e| {
            unauthorized(match e {
                ParseError::Base64DecodeError(_) | ParseError::Invalid => {
                    "the Basic credentials are not valid base64"
                }
                ParseError::Utf8Error(_) => "the Basic credentials are not UTF-8",
                ParseError::MissingField(_) => "the Basic credentials have no ':' separator",
                _ => "malformed Basic credentials",
            })
        })?;
        let user = basic.user_id();
        let Some(password) = basic.password() else {
            return Err(unauthorized("empty password"));
        };
        if user.is_empty() {
            return Err(unauthorized("empty user name"));
        }
        Ok(Self {
            user: users::nfc(user),
            password: users::nfc(password).into(),
        })
    }
}

impl FromRequest for Credentials {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_header(req.headers().get(header::AUTHORIZATION)))
    }
}

type Validation =
    Pin<Box<dyn Future<Output = Result<ServiceRequest, (actix_web::Error, ServiceRequest)>>>>;
type Validator = fn(ServiceRequest, Result<Credentials, ApiError>) -> Validation;

/// The Basic-auth middleware. Where it is wrapped decides whether preflights ever reach it.
pub fn basic() -> HttpAuthentication<Result<Credentials, ApiError>, Validator> {
    let validator: Validator = |req, creds| Box::pin(validate(req, creds));
    HttpAuthentication::with_fn(validator)
}

async fn validate(
    req: ServiceRequest,
    creds: Result<Credentials, ApiError>,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        return Err((
            ApiError::Internal(anyhow::anyhow!("no Authenticator")).into(),
            req,
        ));
    };
    let probe = req.app_data::<web::Data<RevisionProbe>>().cloned();
    let db_file = req.app_data::<web::Data<DbFile>>().cloned();
    let checked = async {
        let creds = creds?;
        // A deleted or replaced database file: 503 rather than answers from a ghost.
        db_file.as_ref().map_or(Ok(()), |f| f.check())?;
        // Read once per request; the list handler reuses it from the extensions.
        let revisions = revision::current(probe.as_ref().map(|p| p.get_ref()), &auth.pool).await?;
        let client = req.peer_addr().map(|a| a.ip());
        let user = auth.verify(creds, revisions.users, client).await?;
        Ok::<_, ApiError>((user, revisions))
    };
    match checked.await {
        Ok((user, revisions)) => {
            req.extensions_mut().insert(user);
            req.extensions_mut().insert(revisions);
            Ok(req)
        }
        Err(e) => Err((e.into(), req)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(value: &str) -> Result<Credentials, ApiError> {
        Credentials::from_header(Some(&HeaderValue::from_str(value).expect("header")))
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        // "demo:demo-password"
        for value in [
            "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk",
            "basic ZGVtbzpkZW1vLXBhc3N3b3Jk",
            "BASIC  ZGVtbzpkZW1vLXBhc3N3b3Jk",
        ] {
            let creds = parse(value).expect(value);
            assert_eq!(creds.user, "demo");
            assert_eq!(creds.password.expose_secret(), "demo-password");
        }
    }

    #[test]
    fn a_password_may_contain_colons() {
        // "alice:a:b"
        let creds = parse("Basic YWxpY2U6YTpi").expect("valid");
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.password.expose_secret(), "a:b");
    }

    #[test]
    fn malformed_credentials_are_refused_with_a_reason() {
        for (value, reason) in [
            ("Bearer abc", "only the Basic scheme"),
            ("Basic", "base64"),
            ("Basic !!!notbase64", "base64"),
            ("Basic ZGVtbw==", "':' separator"),  // "demo"
            ("Basic ZGVtbzo=", "empty password"), // "demo:"
            ("Basic OnNlY3JldA==", "empty user"), // ":secret"
            ("Basic //79", "UTF-8"),              // bytes ff fe fd
        ] {
            let err = parse(value).expect_err(value).to_string();
            assert!(err.contains(reason), "{value}: {err}");
        }
        assert!(Credentials::from_header(None).is_err());
    }
}

#[cfg(test)]
mod properties {
    use base64::Engine;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    proptest! {
        #[test]
        fn any_user_and_password_round_trip(user in "[^:\\p{Cc}]{1,24}", password in "\\PC{1,40}") {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let value = HeaderValue::from_str(&format!("Basic {token}")).expect("ASCII");
            let creds = Credentials::from_header(Some(&value)).expect("valid credentials");
            // Both come back in Unicode NFC (RFC 7617 §2.1).
            prop_assert_eq!(creds.user, users::nfc(&user));
            prop_assert_eq!(creds.password.expose_secret(), users::nfc(&password));
        }

        #[test]
        fn any_header_bytes_are_refused_or_accepted_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                match Credentials::from_header(Some(&value)) {
                    Ok(creds) => prop_assert!(!creds.user.is_empty() && !creds.user.contains(':')),
                    Err(e) => prop_assert!(matches!(e, ApiError::Unauthorized(_))),
                }
            }
        }
    }
}
