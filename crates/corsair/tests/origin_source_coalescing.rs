//! Request coalescing in `OriginCache`: a burst of misses for one origin asks the source once
//! and every request gets that one answer (a failure included); misses for different origins do
//! not wait for each other; a request that started a lookup and went away hands it on.
//!
//! No timing is asserted. The source holds each lookup until the test lets it go, and the test
//! lets it go only once every request of the burst is waiting: each request's future is wrapped
//! so that its first `Pending` is counted, and a miss is pending only while it waits for a lookup
//! or is one.
#![cfg(all(feature = "origin-source", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::server::Resolved;
use corsair::tower::CorsLayer;
use corsair::Policy;
use tokio::sync::{Barrier, Semaphore};
use tower::ServiceExt;

const TENANT: &str = "https://shop.tenant.example";
const OTHER: &str = "https://other.tenant.example";
const BURST: usize = 50;

/// A source whose lookups wait for the test's permission, then answer from a fixed list (or
/// fail); `meet` makes each lookup also wait at a barrier with the others.
#[derive(Clone)]
struct Gated {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    fail: Arc<AtomicBool>,
    meet: Option<Arc<Barrier>>,
}

impl Default for Gated {
    /// Shut: no lookup answers until [`Gated::open`].
    fn default() -> Self {
        Gated {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            fail: Arc::default(),
            meet: None,
        }
    }
}

impl Gated {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    /// Lets every lookup, under way or to come, answer.
    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

impl OriginSource for Gated {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(meet) = &self.meet {
            meet.wait().await;
        }
        self.gate.acquire().await.unwrap().forget();
        if self.fail.load(Ordering::SeqCst) {
            return Err(SourceError::new("connection refused"));
        }
        Ok(origin == TENANT || origin == OTHER)
    }
}

/// Counts a future's first `Pending` in `waiting`.
struct Counted<F> {
    inner: Pin<Box<F>>,
    waiting: Arc<AtomicUsize>,
    counted: bool,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let poll = self.inner.as_mut().poll(cx);
        if poll.is_pending() && !self.counted {
            self.counted = true;
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        poll
    }
}

fn counted<F: Future>(waiting: &Arc<AtomicUsize>, f: F) -> Counted<F> {
    Counted {
        inner: Box::pin(f),
        waiting: waiting.clone(),
        counted: false,
    }
}

/// Waits (at most 10 s, then fails) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never: {what}");
}

fn cache(source: &Gated, timeout: Duration) -> OriginCache {
    OriginCache::builder(source.clone())
        .allowed_ttl(Duration::from_secs(3600))
        .refused_ttl(Duration::from_secs(3600))
        .timeout(timeout)
        .build()
}

/// Starts `BURST` concurrent `resolve`s of `origin` and returns them once all are waiting.
async fn burst(cache: &OriginCache, origin: &str) -> Vec<tokio::task::JoinHandle<Resolved>> {
    let waiting = Arc::new(AtomicUsize::new(0));
    let tasks = (0..BURST)
        .map(|_| {
            let cache = cache.clone();
            let origin = origin.to_owned();
            tokio::spawn(counted(
                &waiting,
                async move { cache.resolve(&origin).await },
            ))
        })
        .collect();
    until("the whole burst waits", || {
        waiting.load(Ordering::SeqCst) == BURST
    })
    .await;
    tasks
}

async fn answers(tasks: Vec<tokio::task::JoinHandle<Resolved>>) -> Vec<Resolved> {
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_misses_asks_the_source_once() {
    // An admitted origin and a refused one: each answer is shared, then cached for its TTL.
    for (origin, answer) in [
        (TENANT, Resolved::Allowed),
        ("https://evil.example", Resolved::NotAllowed),
    ] {
        let source = Gated::default();
        let cache = cache(&source, Duration::from_secs(30));
        let tasks = burst(&cache, origin).await;
        assert_eq!(
            source.calls(),
            1,
            "{origin}: every other request waits for the first one's lookup"
        );
        source.open();
        assert_eq!(answers(tasks).await, vec![answer; BURST], "{origin}");
        assert_eq!(source.calls(), 1, "{origin}");
        assert_eq!(cache.cached(origin), Some(answer), "{origin}");
        assert_eq!(cache.resolve(origin).await, answer, "{origin}");
        assert_eq!(source.calls(), 1, "{origin}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_against_a_failing_source_fails_closed_on_one_lookup() {
    let source = Gated::default();
    source.fail.store(true, Ordering::SeqCst);
    let cache = cache(&source, Duration::from_secs(30));
    let tasks = burst(&cache, TENANT).await;
    assert_eq!(source.calls(), 1);
    source.open();
    assert_eq!(answers(tasks).await, vec![Resolved::Failed; BURST]);
    assert_eq!(source.calls(), 1, "the waiting requests share the failure");
    assert_eq!(
        cache.cached(TENANT),
        None,
        "a failure is not served as cached"
    );

    // The next request asks again, without waiting out the negative TTL (an hour here): a
    // failure is not a refusal.
    source.fail.store(false, Ordering::SeqCst);
    assert_eq!(cache.resolve(TENANT).await, Resolved::Allowed);
    assert_eq!(source.calls(), 2);
    assert_eq!(cache.cached(TENANT), Some(Resolved::Allowed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_against_a_source_that_never_answers_times_out_on_one_lookup() {
    // The gate never opens: the lookup runs out of time.
    let source = Gated::default();
    let cache = cache(&source, Duration::from_secs(2));
    let tasks = burst(&cache, TENANT).await;
    assert_eq!(answers(tasks).await, vec![Resolved::Failed; BURST]);
    assert_eq!(source.calls(), 1, "the waiting requests share the timeout");
    assert_eq!(cache.cached(TENANT), None);

    // Once the source answers again, the next request is answered by it.
    source.open();
    assert_eq!(cache.resolve(TENANT).await, Resolved::Allowed);
    assert_eq!(source.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_for_different_origins_do_not_wait_for_each_other() {
    // Each lookup waits at a two-party barrier before answering: both answer only if both are
    // under way at once. Were the second origin's miss queued behind the first's, the first
    // lookup would wait at the barrier until it timed out (5 s) and fail.
    let source = Gated {
        meet: Some(Arc::new(Barrier::new(2))),
        ..Gated::default()
    };
    source.open();
    let cache = cache(&source, Duration::from_secs(5));
    let (a, b) = tokio::join!(cache.resolve(TENANT), cache.resolve(OTHER));
    assert_eq!((a, b), (Resolved::Allowed, Resolved::Allowed));
    assert_eq!(source.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_takes_over_when_the_first_one_goes_away() {
    let source = Gated::default();
    let cache = cache(&source, Duration::from_secs(30));
    let waiting = Arc::new(AtomicUsize::new(0));
    let first = tokio::spawn(counted(&waiting, {
        let cache = cache.clone();
        async move { cache.resolve(TENANT).await }
    }));
    until("the first lookup is under way", || {
        waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    let second = tokio::spawn(counted(&waiting, {
        let cache = cache.clone();
        async move { cache.resolve(TENANT).await }
    }));
    until("the second request waits", || {
        waiting.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(source.calls(), 1);
    // The client of the first request disconnects: its future is dropped mid-lookup.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    until("the second request asks the source", || source.calls() == 2).await;
    source.open();
    assert_eq!(second.await.unwrap(), Resolved::Allowed);
    assert_eq!(cache.cached(TENANT), Some(Resolved::Allowed));
}

/// Through the tower layer: a page opened by many users at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_through_the_layer_asks_once() {
    let source = Gated::default();
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_origin_source(cache(&source, Duration::from_secs(30)))
        .allow_methods(["PUT"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", any(|| async { "ok" }))
        .layer(CorsLayer::new(cors));
    let waiting = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            // Half preflights, half actual requests.
            let req = if i % 2 == 0 {
                Request::options("/api").header("access-control-request-method", "PUT")
            } else {
                Request::get("/api")
            }
            .header("origin", TENANT)
            .body(Body::empty())
            .unwrap();
            tokio::spawn(counted(&waiting, app.clone().oneshot(req)))
        })
        .collect();
    until("every request waits", || {
        waiting.load(Ordering::SeqCst) == BURST
    })
    .await;
    assert_eq!(source.calls(), 1);
    source.open();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap().unwrap();
        let want = if i % 2 == 0 {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status(), want, "request {i}");
        assert_eq!(r.headers()["access-control-allow-origin"], TENANT);
    }
    assert_eq!(source.calls(), 1);
}
