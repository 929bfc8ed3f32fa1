//! The origin cache's invalidations against lookups under way, with the interleaving held by the
//! test: the source reads its answer, then waits for the test's go before it returns it, as a
//! database query whose result is in flight while the tenant's row changes. A lookup that began
//! before an invalidation serves the requests that were waiting for it, but its answer must
//! not stay cached after the invalidation: the next request asks the source again and sees the
//! change.
#![cfg(feature = "origin-source")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corsair::origin_source::{Invalidator, OriginCache, OriginSource, SourceError};
use corsair::server::Resolved;
use tokio::sync::Semaphore;

const TENANT: &str = "https://shop.tenant.example";

/// Tenants in a "database". A lookup reads the table, then waits for a permit of `gate` before
/// it answers what it read; the invalidator the cache attached is kept, as a source told of
/// changes (`LISTEN`/`NOTIFY`) keeps it.
#[derive(Clone)]
struct Tenants {
    table: Arc<Mutex<HashSet<String>>>,
    lookups: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    invalidator: Arc<Mutex<Option<Invalidator>>>,
}

impl Tenants {
    fn with(origin: &str) -> Self {
        Tenants {
            table: Arc::new(Mutex::new(HashSet::from([origin.to_owned()]))),
            lookups: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            invalidator: Arc::default(),
        }
    }
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
    /// Returns once `n` lookups have begun (each has read the table); fails after 5 s.
    async fn until_lookups(&self, n: usize) {
        let begun = async {
            while self.lookups() < n {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), begun)
            .await
            .unwrap_or_else(|_| panic!("{n} lookups never began ({} did)", self.lookups()));
    }
    fn remove(&self, origin: &str) {
        self.table.lock().unwrap().remove(origin);
    }
    /// Lets every lookup, now and later, answer.
    fn open(&self) {
        self.gate.add_permits(1_000);
    }
}

impl OriginSource for Tenants {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        let found = self.table.lock().unwrap().contains(origin);
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        Ok(found)
    }

    fn attach(&self, invalidator: Invalidator) {
        *self.invalidator.lock().unwrap() = Some(invalidator);
    }
}

fn cache(tenants: &Tenants) -> OriginCache {
    OriginCache::builder(tenants.clone())
        .allowed_ttl(Duration::from_secs(600))
        .refused_ttl(Duration::from_secs(600))
        .timeout(Duration::from_secs(10))
        .build()
}

/// Lets a spawned task run up to its first wait.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// After the interleaving, nothing stale is cached: the next request asks the source again
/// and is refused.
async fn asks_again_and_sees_the_removal(tenants: &Tenants, cache: &OriginCache, asked: usize) {
    assert_eq!(cache.cached(TENANT), None, "the stale answer stayed cached");
    tenants.open();
    assert_eq!(cache.resolve(TENANT).await, Resolved::NotAllowed);
    assert_eq!(
        tenants.lookups(),
        asked + 1,
        "the source was not asked again"
    );
    assert_eq!(cache.cached(TENANT), Some(Resolved::NotAllowed));
}

#[tokio::test]
async fn a_miss_under_way_when_its_origin_is_invalidated_is_not_kept() {
    let tenants = Tenants::with(TENANT);
    let cache = cache(&tenants);
    let miss = tokio::spawn({
        let cache = cache.clone();
        async move { cache.resolve(TENANT).await }
    });
    tenants.until_lookups(1).await;
    tenants.remove(TENANT);
    cache.invalidate(TENANT);
    tenants.gate.add_permits(1);
    // It serves its own request with what it read.
    assert_eq!(miss.await.unwrap(), Resolved::Allowed);
    asks_again_and_sees_the_removal(&tenants, &cache, 1).await;
}

/// The source's own invalidator (a database notification), clearing everything.
#[tokio::test]
async fn a_miss_under_way_during_a_source_invalidate_all_is_not_kept() {
    let tenants = Tenants::with(TENANT);
    let cache = cache(&tenants);
    let miss = tokio::spawn({
        let cache = cache.clone();
        async move { cache.resolve(TENANT).await }
    });
    tenants.until_lookups(1).await;
    tenants.remove(TENANT);
    let invalidator = tenants.invalidator.lock().unwrap().clone().unwrap();
    assert!(invalidator.invalidate_all());
    tenants.gate.add_permits(1);
    assert_eq!(miss.await.unwrap(), Resolved::Allowed);
    asks_again_and_sees_the_removal(&tenants, &cache, 1).await;
}

#[tokio::test]
async fn a_refresh_under_way_when_its_origin_is_invalidated_is_not_kept() {
    let tenants = Tenants::with(TENANT);
    let cache = cache(&tenants);
    let refresh = tokio::spawn({
        let cache = cache.clone();
        async move { cache.refresh(TENANT).await }
    });
    tenants.until_lookups(1).await;
    tenants.remove(TENANT);
    cache.invalidate(TENANT);
    tenants.gate.add_permits(1);
    assert_eq!(refresh.await.unwrap(), Resolved::Allowed);
    asks_again_and_sees_the_removal(&tenants, &cache, 1).await;
}

/// Coalesced misses: a request that joined the lookup before the invalidation gets its
/// answer; one that comes after the invalidation does not join it, but asks the source anew,
/// while the old lookup is still under way.
#[tokio::test]
async fn a_miss_after_an_invalidation_does_not_join_the_lookup_it_made_stale() {
    let tenants = Tenants::with(TENANT);
    let cache = cache(&tenants);
    let spawn = || {
        let cache = cache.clone();
        tokio::spawn(async move { cache.resolve(TENANT).await })
    };
    let first = spawn();
    tenants.until_lookups(1).await;
    let joined = spawn();
    settle().await;
    assert_eq!(
        tenants.lookups(),
        1,
        "the second miss did not wait for the first"
    );
    tenants.remove(TENANT);
    cache.invalidate(TENANT);
    let after = spawn();
    tenants.until_lookups(2).await;
    // The stale lookup ends first (the gate is first come, first served), while the new one
    // is under way: it must not take the new one's place, or its answer, out of the cache.
    tenants.gate.add_permits(1);
    assert_eq!(first.await.unwrap(), Resolved::Allowed);
    assert_eq!(joined.await.unwrap(), Resolved::Allowed);
    assert_eq!(cache.cached(TENANT), None);
    tenants.gate.add_permits(1);
    assert_eq!(after.await.unwrap(), Resolved::NotAllowed);
    assert_eq!(cache.cached(TENANT), Some(Resolved::NotAllowed));
    assert_eq!(tenants.lookups(), 2);
}
