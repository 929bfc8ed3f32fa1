//! Origins that live outside the policy (feature `origin-source`): a SaaS product's tenants
//! register their own domains in a database, and the policy admits them without a rebuild.
//!
//! An [`OriginSource`] answers, asynchronously, whether one origin is admitted. An
//! [`OriginCache`] puts a bounded in-memory cache in front of it: positive and negative
//! answers are kept for their own time to live, a source that does not answer within the
//! timeout (or fails) refuses the origin (fail closed, with the reason logged as a `warn`
//! event of target `corsair`), and entries can be invalidated or refreshed explicitly. A
//! policy reads a cache through
//! [`PolicyBuilder::allow_origin_source`](crate::PolicyBuilder::allow_origin_source).
//!
//! The engine stays pure and synchronous: the adapter resolves the origin before it asks the
//! engine, in three steps, all in [`server`](crate::server):
//! 1. [`origin_lookup`](crate::server::origin_lookup) says whether the request's policy must
//!    ask its source, and about which origin: only when the listed origins, patterns and
//!    predicate all refuse it (a listed origin never waits for a database);
//! 2. the adapter reads [`OriginCache::cached`] (synchronous, no allocation) or, on a miss,
//!    awaits [`OriginCache::resolve`];
//! 3. it passes the [`Resolved`] answer in
//!    [`RequestInfo::resolved`](crate::server::RequestInfo::resolved) to
//!    [`answer_in`](crate::server::answer_in), which decides as for any other origin.
//!
//! The tower layer and the actix middleware do all of this through
//! [`server::ask`](crate::server::ask) and [`server::answer_resolved`](crate::server::answer_resolved),
//! which also hold a WebSocket handshake until its origin is resolved when upgrades from
//! disallowed origins are refused; the decision is still the engine's alone. Sources shipped here: [`sqlite::SqliteSource`] (feature `sqlite`)
//! and [`postgres::PostgresSource`] (feature `postgres`, which learns of changes through
//! `LISTEN`/`NOTIFY`).
//!
//! ```
//! use corsair::origin_source::{OriginCache, OriginSource, SourceError};
//! use corsair::server::Resolved;
//! use std::time::Duration;
//!
//! /// Tenants' origins, from wherever they live.
//! struct Tenants;
//!
//! impl OriginSource for Tenants {
//!     async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
//!         Ok(origin == "https://shop.tenant-a.example")
//!     }
//! }
//!
//! let cache = OriginCache::builder(Tenants)
//!     .capacity(100_000)
//!     .allowed_ttl(Duration::from_secs(300))
//!     .refused_ttl(Duration::from_secs(30))
//!     .timeout(Duration::from_millis(250))
//!     .build();
//! let cors = corsair::Policy::builder()
//!     .allow_origins(["https://app.example.com"])
//!     .allow_origin_source(cache.clone())
//!     .allow_credentials(true)
//!     .build()?;
//!
//! tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//!     assert_eq!(cache.cached("https://shop.tenant-a.example"), None);
//!     assert_eq!(cache.resolve("https://shop.tenant-a.example").await, Resolved::Allowed);
//!     assert_eq!(cache.cached("https://shop.tenant-a.example"), Some(Resolved::Allowed));
//!     assert_eq!(cache.resolve("https://evil.example").await, Resolved::NotAllowed);
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

pub use crate::policy::Resolved;

/// Where tenants' origins live: answers whether one origin is admitted.
///
/// The origin is a serialized origin as browsers send it (`https://shop.example`,
/// `http://localhost:8000`: lowercase, no path, no default port), so a source compares it
/// exactly with what it stores; store origins in that form.
pub trait OriginSource: Send + Sync + 'static {
    /// Whether `origin` is admitted. An error refuses it (the cache does not keep errors).
    fn lookup(&self, origin: &str) -> impl Future<Output = Result<bool, SourceError>> + Send;

    /// Called once by [`OriginCacheBuilder::build`] with a handle on the new cache: a source
    /// that learns of changes (a database notification) invalidates the entries they touch.
    /// The default does nothing: entries then change when their time to live runs out, or when
    /// the application calls [`OriginCache::invalidate`].
    fn attach(&self, invalidator: Invalidator) {
        let _ = invalidator;
    }
}

/// Why a source could not answer.
#[derive(Debug)]
pub struct SourceError(Box<dyn Error + Send + Sync>);

impl SourceError {
    /// An error with its cause (a database error, a message).
    pub fn new(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        SourceError(cause.into())
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for SourceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, SourceError>> + Send + 'a>>;

/// [`OriginSource`] as an object.
trait ErasedSource: Send + Sync {
    fn lookup<'a>(&'a self, origin: &'a str) -> LookupFuture<'a>;
    fn attach(&self, invalidator: Invalidator);
}

impl<S: OriginSource> ErasedSource for S {
    fn lookup<'a>(&'a self, origin: &'a str) -> LookupFuture<'a> {
        Box::pin(OriginSource::lookup(self, origin))
    }

    fn attach(&self, invalidator: Invalidator) {
        OriginSource::attach(self, invalidator);
    }
}

/// One answer, as the cache holds it.
///
/// An answer is fresh until `expires`. A failure ([`Resolved::Failed`]), and an answer that
/// an invalidation may have made stale, are stored already expired (`expires` is when they
/// were given): never served as cached, they reach only the requests that were waiting for
/// that lookup.
#[derive(Debug, Clone, Copy)]
struct Entry {
    resolved: Resolved,
    expires: Instant,
}

struct Shared {
    source: Box<dyn ErasedSource>,
    entries: quick_cache::sync::Cache<Box<str>, Entry>,
    allowed_ttl: Duration,
    refused_ttl: Duration,
    timeout: Duration,
    /// Bumped by every invalidation, which holds it exclusively while it bumps it and removes
    /// the entries; a lookup's answer is stored while it is held shared, and only if it has not
    /// changed since the lookup began (see [`Shared::store`]).
    generation: RwLock<u64>,
}

impl Shared {
    /// Asks the source about `origin`, allowing it `limit`: its answer, or [`Resolved::Failed`]
    /// with the reason logged when it errs or does not answer in time.
    async fn ask(&self, origin: &str, limit: Duration) -> Resolved {
        match tokio::time::timeout(limit, self.source.lookup(origin)).await {
            Ok(Ok(true)) => Resolved::Allowed,
            Ok(Ok(false)) => Resolved::NotAllowed,
            Ok(Err(error)) => {
                tracing::warn!(
                    target: "corsair",
                    reason = "origin-source-failed",
                    origin,
                    error = %error,
                    "origin source failed; origin refused"
                );
                Resolved::Failed
            }
            Err(_) => {
                self.timed_out(origin);
                Resolved::Failed
            }
        }
    }

    fn timed_out(&self, origin: &str) {
        tracing::warn!(
            target: "corsair",
            reason = "origin-source-timeout",
            origin,
            timeout_ms = self.timeout.as_millis() as u64,
            "origin source did not answer in time; origin refused"
        );
    }

    /// The generation a lookup begins at: read before the source is asked.
    fn generation(&self) -> u64 {
        *self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores, through `put`, what a lookup that began at `generation` found: fresh for its
    /// time to live if no invalidation came since (`put`'s `true`), else already stale (a
    /// failure too), so that it reaches only the requests that waited for that lookup.
    ///
    /// Invalidations are excluded meanwhile, so one either came before the check (the answer
    /// is stored stale) or comes after the store (and removes it): none can clear the cache
    /// between the check and the store and leave a stale answer behind, and nothing removes
    /// what a later lookup stored.
    fn store(&self, resolved: Resolved, generation: u64, put: impl FnOnce(Entry, bool)) {
        let current = self
            .generation
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let ttl = match resolved {
            _ if *current != generation => None,
            Resolved::Allowed => Some(self.allowed_ttl),
            Resolved::NotAllowed => Some(self.refused_ttl),
            Resolved::Failed | Resolved::NotAsked => None,
        };
        let expires = ttl.and_then(|ttl| now.checked_add(ttl));
        let entry = Entry {
            resolved,
            expires: expires.unwrap_or(now),
        };
        put(entry, expires.is_some());
    }

    fn invalidate(&self, origin: &str) {
        let mut generation = self
            .generation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.entries.remove(origin);
    }

    fn invalidate_all(&self) {
        let mut generation = self
            .generation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.entries.clear();
    }
}

/// A bounded in-memory cache in front of an [`OriginSource`], shared by its clones: what a
/// policy reads ([`PolicyBuilder::allow_origin_source`](crate::PolicyBuilder::allow_origin_source)).
///
/// - **Bounded**: at most [`capacity`](OriginCacheBuilder::capacity) origins, evicted by
///   quick_cache's scan-resistant S3-FIFO: origins seen once, such as an attacker's random
///   ones, leave first and do not push out the tenants seen every second.
/// - **Positive and negative**: an admitted origin is kept for
///   [`allowed_ttl`](OriginCacheBuilder::allowed_ttl), a refused one for
///   [`refused_ttl`](OriginCacheBuilder::refused_ttl), so an unknown origin does not cost a
///   query per request.
/// - **Fail closed**: a source that errs or does not answer within
///   [`timeout`](OriginCacheBuilder::timeout) refuses the origin
///   ([`Resolved::Failed`]); the reason is a `warn` event of target `corsair` with the origin and
///   the error. Failures are not cached: the first request after the source recovers is
///   answered by it.
/// - **Explicit**: [`invalidate`](Self::invalidate), [`invalidate_all`](Self::invalidate_all)
///   and [`refresh`](Self::refresh), for an application that changes the tenants itself;
///   sources that are told of changes invalidate through their [`Invalidator`]. An
///   invalidation covers the lookups under way too: what one that began before it finds
///   answers the requests already waiting for it, but is not kept, and a request that comes
///   after it asks the source again.
/// - **Coalesced**: concurrent misses for one origin ask the source once. The first starts
///   the lookup, the others wait for it (each within its own timeout) and all get its answer,
///   a failure included, which is logged once, by the lookup. Misses for different origins do
///   not wait for each other. If the request that started a lookup goes away (its future is
///   dropped: the client disconnected), one of the waiting requests asks the source instead.
#[derive(Clone)]
pub struct OriginCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for OriginCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginCache")
            .field("entries", &self.shared.entries.len())
            .field("capacity", &self.shared.entries.capacity())
            .field("allowed_ttl", &self.shared.allowed_ttl)
            .field("refused_ttl", &self.shared.refused_ttl)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// The settings of an [`OriginCache`]; [`build`](Self::build) makes it.
#[must_use]
pub struct OriginCacheBuilder {
    source: Box<dyn ErasedSource>,
    capacity: usize,
    allowed_ttl: Duration,
    refused_ttl: Duration,
    timeout: Duration,
}

impl fmt::Debug for OriginCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginCacheBuilder")
            .field("capacity", &self.capacity)
            .field("allowed_ttl", &self.allowed_ttl)
            .field("refused_ttl", &self.refused_ttl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OriginCacheBuilder {
    /// The most origins kept (default 10,000; at least 1). Each costs some 100 bytes.
    pub fn capacity(mut self, origins: usize) -> Self {
        self.capacity = origins.max(1);
        self
    }

    /// How long an admitted origin is kept (default 60 s): the longest a removed origin stays
    /// admitted when nothing invalidates it.
    pub fn allowed_ttl(mut self, ttl: Duration) -> Self {
        self.allowed_ttl = ttl;
        self
    }

    /// How long a refused origin is kept (default 10 s): the longest a newly added origin
    /// stays refused when nothing invalidates it.
    pub fn refused_ttl(mut self, ttl: Duration) -> Self {
        self.refused_ttl = ttl;
        self
    }

    /// How long a lookup may take before the origin is refused (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The cache, attached to its source ([`OriginSource::attach`]).
    pub fn build(self) -> OriginCache {
        let shared = Arc::new(Shared {
            source: self.source,
            entries: quick_cache::sync::Cache::new(self.capacity),
            allowed_ttl: self.allowed_ttl,
            refused_ttl: self.refused_ttl,
            timeout: self.timeout,
            generation: RwLock::new(0),
        });
        shared.source.attach(Invalidator {
            shared: Arc::downgrade(&shared),
        });
        OriginCache { shared }
    }
}

impl OriginCache {
    /// Starts a cache in front of `source`, with the defaults: 10,000 origins, admitted ones
    /// kept 60 s, refused ones 10 s, lookups timed out after 1 s.
    pub fn builder(source: impl OriginSource) -> OriginCacheBuilder {
        OriginCacheBuilder {
            source: Box::new(source),
            capacity: 10_000,
            allowed_ttl: Duration::from_secs(60),
            refused_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
        }
    }

    /// The cached answer for `origin`, if one is fresh: synchronous and allocation-free, for the
    /// request path.
    pub fn cached(&self, origin: &str) -> Option<Resolved> {
        let entry = self.shared.entries.get(origin)?;
        (Instant::now() < entry.expires).then_some(entry.resolved)
    }

    /// The answer for `origin`: the cached one if fresh, else the source's (which is then
    /// cached), else [`Resolved::Failed`] when the source errs or times out. While the source
    /// is being asked about `origin`, other calls for it wait for that answer rather than ask
    /// again.
    pub async fn resolve(&self, origin: &str) -> Resolved {
        match self.cached(origin) {
            Some(r) => r,
            None => self.load(origin).await,
        }
    }

    /// A miss: waits for the lookup of `origin` under way, or starts one that later misses wait
    /// for (quick_cache's placeholder: the guard is the right, and the duty, to answer).
    async fn load(&self, origin: &str) -> Resolved {
        let shared = &*self.shared;
        // On the entries' clock: what expired before this call is stale to it; anything later
        // is fresh or was found for it by the lookup it waited for.
        let asked = Instant::now();
        // On tokio's: the time left for the source once this call gets to ask it.
        let started = tokio::time::Instant::now();
        // quick_cache makes a placeholder's key from the one it is given, by `ToOwned`.
        let key: Box<str> = origin.into();
        let waited = tokio::time::timeout(shared.timeout, async {
            loop {
                match shared.entries.get_value_or_guard_async(&key).await {
                    Ok(entry) if entry.expires >= asked => return Ok(entry.resolved),
                    // Stale: make way for a lookup, unless a newer entry already replaced it.
                    Ok(_) => {
                        shared.entries.remove_if(origin, |e| e.expires < asked);
                    }
                    Err(guard) => return Err(guard),
                }
            }
        })
        .await;
        let guard = match waited {
            Ok(Ok(resolved)) => return resolved,
            Ok(Err(guard)) => guard,
            Err(_) => {
                shared.timed_out(origin);
                return Resolved::Failed;
            }
        };
        let generation = shared.generation();
        let limit = shared.timeout.saturating_sub(started.elapsed());
        let resolved = shared.ask(origin, limit).await;
        // An error: the origin was invalidated meanwhile, which took the lookup's place out of
        // the cache (and a later miss may have taken it since). The waiting calls have the
        // answer all the same.
        shared.store(resolved, generation, |entry, _| {
            let _ = guard.insert(entry);
        });
        resolved
    }

    /// Asks the source about `origin` now, whatever is cached, and caches its answer (a
    /// failure leaves the cache as it was).
    pub async fn refresh(&self, origin: &str) -> Resolved {
        let shared = &*self.shared;
        let generation = shared.generation();
        let resolved = shared.ask(origin, shared.timeout).await;
        shared.store(resolved, generation, |entry, fresh| {
            if fresh {
                shared.entries.insert(origin.into(), entry);
            }
        });
        resolved
    }

    /// Forgets `origin`: the next request from it asks the source.
    pub fn invalidate(&self, origin: &str) {
        self.shared.invalidate(origin);
    }

    /// Forgets every origin.
    pub fn invalidate_all(&self) {
        self.shared.invalidate_all();
    }

    /// How many origins the cache holds, fresh or not (a failure is held already stale, for the
    /// requests that waited for it, until the origin is asked about again).
    pub fn len(&self) -> usize {
        self.shared.entries.len()
    }

    /// Whether no origin is cached.
    pub fn is_empty(&self) -> bool {
        self.shared.entries.is_empty()
    }
}

/// A source's handle on the cache in front of it ([`OriginSource::attach`]): invalidates
/// entries when the source learns that origins changed. It does not keep the cache alive.
#[derive(Clone)]
pub struct Invalidator {
    shared: Weak<Shared>,
}

impl fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invalidator")
            .field("live", &(self.shared.strong_count() > 0))
            .finish()
    }
}

impl Invalidator {
    /// Forgets `origin`. `false` once the cache is gone (a listener can stop).
    pub fn invalidate(&self, origin: &str) -> bool {
        self.shared
            .upgrade()
            .map(|s| s.invalidate(origin))
            .is_some()
    }

    /// Forgets every origin (after missed notifications). `false` once the cache is gone.
    pub fn invalidate_all(&self) -> bool {
        self.shared.upgrade().map(|s| s.invalidate_all()).is_some()
    }

    /// Whether the cache still exists.
    pub fn is_live(&self) -> bool {
        self.shared.strong_count() > 0
    }
}
