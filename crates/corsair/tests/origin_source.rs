//! Async origin sources behind `OriginCache`: positive and negative caching, a timeout that
//! refuses, failures that are not kept, explicit invalidation, and the tower layer resolving a
//! miss before the engine decides. Fake sources: slow, failing, flapping.
#![cfg(all(feature = "origin-source", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::server::{answer, Reasons, Rejection, Resolved};
use corsair::tower::CorsLayer;
use corsair::{Policy, PolicyHandle, PolicySet};
use tower::ServiceExt;

/// What the fake source does on each lookup.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Answer,
    Fail,
    /// Fails on odd-numbered lookups (1st, 3rd, …), answers on the others.
    Flap,
}

#[derive(Clone)]
struct Fake {
    origins: Arc<Mutex<HashSet<String>>>,
    lookups: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    mode: Arc<Mutex<Mode>>,
}

impl Fake {
    fn new(origins: &[&str]) -> Self {
        Fake {
            origins: Arc::new(Mutex::new(
                origins.iter().map(|o| (*o).to_owned()).collect(),
            )),
            lookups: Arc::default(),
            delay: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Answer)),
        }
    }
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
    fn add(&self, o: &str) {
        self.origins.lock().unwrap().insert(o.to_owned());
    }
    fn remove(&self, o: &str) {
        self.origins.lock().unwrap().remove(o);
    }
}

impl OriginSource for Fake {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let fail = match *self.mode.lock().unwrap() {
            Mode::Answer => false,
            Mode::Fail => true,
            Mode::Flap => n % 2 == 1,
        };
        if fail {
            return Err(SourceError::new("connection refused"));
        }
        Ok(self.origins.lock().unwrap().contains(origin))
    }
}

const TENANT: &str = "https://shop.tenant.example";
const STATIC: &str = "https://app.example.com";

fn cache(fake: &Fake) -> OriginCache {
    OriginCache::builder(fake.clone())
        .allowed_ttl(Duration::from_secs(60))
        .refused_ttl(Duration::from_secs(60))
        .timeout(Duration::from_millis(200))
        .build()
}

fn app(cache: OriginCache, calls: Arc<AtomicUsize>) -> Router {
    let policy = Policy::builder()
        .allow_origins([STATIC])
        .allow_origin_source(cache)
        .allow_methods(["PUT"])
        .allow_credentials(true)
        .build()
        .unwrap();
    Router::new()
        .route(
            "/api",
            any(move || {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        )
        .layer(CorsLayer::new(policy))
}

fn get(origin: &str) -> Request<Body> {
    Request::get("/api")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap()
}

fn preflight(origin: &str) -> Request<Body> {
    Request::options("/api")
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .body(Body::empty())
        .unwrap()
}

async fn allow_origin(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>) {
    let r = app.clone().oneshot(req).await.unwrap();
    let acao = r
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), acao)
}

#[tokio::test]
async fn a_miss_is_resolved_then_cached() {
    let fake = Fake::new(&[TENANT]);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(cache(&fake), calls.clone());
    // Actual request: forwarded to the application once, decorated after the lookup.
    assert_eq!(
        allow_origin(&app, get(TENANT)).await,
        (StatusCode::OK, Some(TENANT.into()))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(fake.lookups(), 1);
    // Cached: the source is not asked again, for a request or a preflight.
    assert_eq!(
        allow_origin(&app, get(TENANT)).await,
        (StatusCode::OK, Some(TENANT.into()))
    );
    assert_eq!(
        allow_origin(&app, preflight(TENANT)).await,
        (StatusCode::NO_CONTENT, Some(TENANT.into()))
    );
    assert_eq!(fake.lookups(), 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a preflight never reaches the application"
    );
}

#[tokio::test]
async fn a_preflight_miss_is_answered_without_the_application() {
    let fake = Fake::new(&[TENANT]);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(cache(&fake), calls.clone());
    assert_eq!(
        allow_origin(&app, preflight(TENANT)).await,
        (StatusCode::NO_CONTENT, Some(TENANT.into()))
    );
    assert_eq!(
        allow_origin(&app, preflight("https://evil.example")).await,
        (StatusCode::FORBIDDEN, None)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(fake.lookups(), 2);
}

#[tokio::test]
async fn refused_origins_are_cached_too() {
    let fake = Fake::new(&[]);
    let app = app(cache(&fake), Arc::default());
    for _ in 0..3 {
        assert_eq!(
            allow_origin(&app, get("https://evil.example")).await,
            (StatusCode::OK, None)
        );
    }
    assert_eq!(fake.lookups(), 1);
}

#[tokio::test]
async fn listed_origins_never_ask_the_source() {
    let fake = Fake::new(&[]);
    let app = app(cache(&fake), Arc::default());
    assert_eq!(
        allow_origin(&app, get(STATIC)).await,
        (StatusCode::OK, Some(STATIC.into()))
    );
    assert_eq!(
        allow_origin(&app, preflight(STATIC)).await.0,
        StatusCode::NO_CONTENT
    );
    // Nor do requests without an origin, or with a malformed one.
    let r = app
        .clone()
        .oneshot(Request::get("/api").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.headers()["vary"], "Origin");
    assert_eq!(
        allow_origin(&app, get("https://x.example/")).await,
        (StatusCode::OK, None)
    );
    assert_eq!(fake.lookups(), 0);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let fake = Fake::new(&[]);
    let cache = OriginCache::builder(fake.clone())
        .allowed_ttl(Duration::from_millis(150))
        .refused_ttl(Duration::from_millis(150))
        .build();
    let app = app(cache, Arc::default());
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
    fake.add(TENANT);
    // Within the refused TTL the negative answer stands.
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    fake.remove(TENANT);
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
    assert_eq!(fake.lookups(), 3);
}

#[tokio::test]
async fn a_slow_source_times_out_and_refuses() {
    let fake = Fake::new(&[TENANT]);
    *fake.delay.lock().unwrap() = Duration::from_secs(5);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(cache(&fake), calls.clone());
    let started = std::time::Instant::now();
    assert_eq!(
        allow_origin(&app, preflight(TENANT)).await,
        (StatusCode::FORBIDDEN, None)
    );
    assert_eq!(
        allow_origin(&app, get(TENANT)).await,
        (StatusCode::OK, None)
    );
    // Bounded by the 200 ms timeout each, far below the source's 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Timeouts are not cached: once the source is fast again, the origin is admitted.
    *fake.delay.lock().unwrap() = Duration::ZERO;
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
}

#[tokio::test]
async fn a_failing_source_refuses_and_recovers() {
    let fake = Fake::new(&[TENANT]);
    *fake.mode.lock().unwrap() = Mode::Fail;
    let app = app(cache(&fake), Arc::default());
    for _ in 0..2 {
        assert_eq!(
            allow_origin(&app, preflight(TENANT)).await,
            (StatusCode::FORBIDDEN, None)
        );
    }
    assert_eq!(fake.lookups(), 2, "failures are not cached");
    *fake.mode.lock().unwrap() = Mode::Answer;
    assert_eq!(
        allow_origin(&app, preflight(TENANT)).await.1,
        Some(TENANT.into())
    );
}

#[tokio::test]
async fn a_flapping_source_keeps_only_its_answers() {
    let fake = Fake::new(&[TENANT]);
    *fake.mode.lock().unwrap() = Mode::Flap;
    let app = app(cache(&fake), Arc::default());
    // 1st lookup fails: refused; 2nd answers: admitted and cached; then no lookup at all,
    // although the source would fail the 3rd.
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    for _ in 0..3 {
        assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    }
    assert_eq!(fake.lookups(), 2);
}

#[tokio::test]
async fn invalidation_and_refresh() {
    let fake = Fake::new(&[TENANT]);
    let cache = cache(&fake);
    let app = app(cache.clone(), Arc::default());
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    fake.remove(TENANT);
    assert_eq!(
        allow_origin(&app, get(TENANT)).await.1,
        Some(TENANT.into()),
        "cached"
    );
    cache.invalidate(TENANT);
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
    fake.add(TENANT);
    assert_eq!(cache.cached(TENANT), Some(Resolved::NotAllowed));
    assert_eq!(cache.refresh(TENANT).await, Resolved::Allowed);
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    fake.remove(TENANT);
    cache.invalidate_all();
    assert!(cache.is_empty());
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, None);
}

/// A lookup that was under way when the origin was invalidated may carry the old answer: it
/// serves its own request but is not kept.
#[tokio::test]
async fn an_answer_older_than_an_invalidation_is_not_kept() {
    let fake = Fake::new(&[TENANT]);
    *fake.delay.lock().unwrap() = Duration::from_millis(100);
    let cache = cache(&fake);
    let pending = tokio::spawn({
        let cache = cache.clone();
        async move { cache.resolve(TENANT).await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    cache.invalidate(TENANT);
    assert_eq!(pending.await.unwrap(), Resolved::Allowed);
    assert_eq!(cache.cached(TENANT), None);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let fake = Fake::new(&[]);
    let cache = OriginCache::builder(fake.clone()).capacity(100).build();
    for i in 0..1_000 {
        cache.resolve(&format!("https://t{i}.example")).await;
    }
    assert!(cache.len() <= 100, "{} entries", cache.len());
    assert_eq!(fake.lookups(), 1_000);
}

/// An adapter that does not resolve refuses what only the source could admit (fail closed),
/// and says why.
#[test]
fn an_unresolved_origin_is_refused() {
    let fake = Fake::new(&[TENANT]);
    let policies = PolicySet::single(
        Policy::builder()
            .allow_origins([STATIC])
            .allow_origin_source(cache(&fake))
            .build()
            .unwrap(),
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("origin", TENANT.parse().unwrap());
    let a = answer(
        &policies,
        &http::Method::GET,
        "/",
        &headers,
        Reasons::Always,
    );
    assert_eq!(
        a.outcome().unwrap(),
        corsair::server::Outcome::Rejected(Rejection::OriginUnresolved)
    );
    assert_eq!(fake.lookups(), 0);
}

#[tokio::test]
async fn a_reloadable_layer_resolves_too() {
    let fake = Fake::new(&[TENANT]);
    let policy = Policy::builder()
        .allow_origins([STATIC])
        .allow_origin_source(cache(&fake))
        .build()
        .unwrap();
    let handle = PolicyHandle::new(policy);
    let app = Router::new()
        .route("/api", any(|| async { "ok" }))
        .layer(CorsLayer::reloadable(handle));
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    assert_eq!(allow_origin(&app, get(TENANT)).await.1, Some(TENANT.into()));
    assert_eq!(fake.lookups(), 1);
}
