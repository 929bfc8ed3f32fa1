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
use corsair::Policy;
use recorder::{expected_events, policy, Recorder, ORIGIN, REQUESTS};
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
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(events, expected_events());
}

#[tokio::test]
async fn refused_upgrades_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .build()
        .unwrap();
    let app: Router = Router::new()
        .route("/ok", any(|| async { StatusCode::OK }))
        .layer(CorsLayer::new(cors).refuse_upgrades_from_disallowed_origins());
    const WS: [(&str, &str); 2] = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let requests = [
        request("GET", &[WS[0], WS[1], ORIGIN]),
        request("GET", &[WS[0], WS[1]]),
        request("GET", &[WS[0], WS[1], ("origin", "http://evil.test")]),
        request("GET", &[WS[0], WS[1], ("origin", "http://evil.test/")]),
    ];
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(app.clone().oneshot(r).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 403, 403]);
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            (tracing::Level::DEBUG, Some("origin-not-allowed".to_owned())),
            (tracing::Level::DEBUG, Some("origin-malformed".to_owned())),
        ]
    );
}
