//! An origin source that fails or times out refuses the origin with its reason logged: a `warn`
//! event of target `corsair` from the cache (with the error), then the engine's `debug`
//! rejection. In a test binary of its own: `tracing` caches each call site's interest
//! process-wide (see tracing_events.rs).
#![cfg(all(feature = "origin-source", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::tower::CorsLayer;
use corsair::Policy;
use tower::ServiceExt;

#[path = "common/tracing_recorder.rs"]
mod recorder;

use recorder::Recorder;

struct Down;
impl OriginSource for Down {
    async fn lookup(&self, _: &str) -> Result<bool, SourceError> {
        Err(SourceError::new("db is down: connection refused"))
    }
}

struct Slow;
impl OriginSource for Slow {
    async fn lookup(&self, _: &str) -> Result<bool, SourceError> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(true)
    }
}

fn app(cache: OriginCache) -> Router {
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_origin_source(cache)
        .build()
        .unwrap();
    Router::new()
        .route("/", any(|| async { "ok" }))
        .layer(CorsLayer::new(cors))
}

#[tokio::test]
async fn source_failures_are_logged_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let preflight = || {
        Request::options("/")
            .header("origin", "https://tenant.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    let down = app(OriginCache::builder(Down).build());
    assert_eq!(
        down.oneshot(preflight()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let slow = app(OriginCache::builder(Slow)
        .timeout(Duration::from_millis(50))
        .build());
    assert_eq!(
        slow.oneshot(preflight()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    let events = recorder.events();
    let warn = |reason: &str| (tracing::Level::WARN, Some(reason.to_owned()));
    let debug = (
        tracing::Level::DEBUG,
        Some("origin-source-failed".to_owned()),
    );
    assert_eq!(
        recorder.reasons(),
        [
            warn("origin-source-failed"),
            debug.clone(),
            warn("origin-source-timeout"),
            debug
        ]
    );
    assert!(
        events[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("db is down: connection refused")),
        "{events:?}"
    );
}
