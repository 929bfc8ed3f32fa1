//! The tower middleware's logging: rejections are `debug` events carrying their reason, and
//! nothing else is logged per request. In a test binary of its own, because `tracing` caches
//! each call site's interest process-wide: another test hitting the call site without a
//! subscriber could cache "never" before this test's subscriber is set. The requests and
//! events are shared with actix's test (tests/common/tracing_recorder.rs).
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/tracing_recorder.rs"]
mod recorder;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::tower::CorsLayer;
use recorder::{
    expected_events, expected_upgrades, policy, upgrade_policy, Recorder, REQUESTS,
    UPGRADE_REQUESTS,
};
use tower::ServiceExt;

fn request(method: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri("/ok");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn rejections_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let app: Router = Router::new()
        .route("/ok", any(|| async { StatusCode::OK }))
        .layer(CorsLayer::new(policy()));
    for (method, headers) in REQUESTS {
        app.clone().oneshot(request(method, headers)).await.unwrap();
    }
    assert_eq!(recorder.reasons(), expected_events());
}

#[tokio::test]
async fn refused_upgrades_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let app: Router = Router::new()
        .route("/ok", any(|| async { StatusCode::OK }))
        .layer(CorsLayer::new(upgrade_policy()).refuse_upgrades_from_disallowed_origins());
    let mut statuses = [0; 4];
    for (status, (method, headers)) in statuses.iter_mut().zip(UPGRADE_REQUESTS) {
        *status = app
            .clone()
            .oneshot(request(method, headers))
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!((statuses, recorder.reasons()), expected_upgrades());
}
