//! The tower middleware's logging: rejections are `debug` events carrying their reason, and
//! nothing else is logged per request. In a test binary of its own, because `tracing` caches
//! each call site's interest process-wide: another test hitting the call site without a
//! subscriber could cache "never" before this test's subscriber is set.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::Policy;
use tower::ServiceExt;

fn request(method: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri("/ok");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

const ORIGIN: (&str, &str) = ("origin", "http://localhost:8000");

/// A subscriber that records every event's level and `reason` field.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

/// An event's level and its `reason` field.
type Recorded = (tracing::Level, Option<String>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Reason(Option<String>);
        impl tracing::field::Visit for Reason {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "reason" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut r = Reason(None);
        event.record(&mut r);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), r.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn rejections_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .build()
        .unwrap();
    let app: Router = Router::new()
        .route("/ok", any(|| async { StatusCode::OK }))
        .layer(CorsLayer::new(cors));
    let requests = [
        request("GET", &[ORIGIN]),
        request("GET", &[]),
        request("GET", &[("origin", "http://evil.test")]),
        request(
            "OPTIONS",
            &[ORIGIN, ("access-control-request-method", "PATCH")],
        ),
    ];
    for r in requests {
        app.clone().oneshot(r).await.unwrap();
    }
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            (tracing::Level::DEBUG, Some("origin-not-allowed".to_owned())),
            (tracing::Level::DEBUG, Some("method-not-allowed".to_owned())),
        ]
    );
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
