//! What the middleware logs per request, shared by every adapter's tracing test
//! (`tracing_events.rs`, `actix_tracing.rs`): a recording subscriber, the requests, and the
//! events they must give.
#![allow(dead_code)] // each test binary uses the part for its adapter

use std::sync::{Arc, Mutex};

/// The policy of [`REQUESTS`].
pub fn policy() -> corsair::Policy {
    corsair::Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .build()
        .unwrap()
}

pub const ORIGIN: (&str, &str) = ("origin", "http://localhost:8000");

/// (method, headers) of requests to `/ok`: allowed, not CORS, a refused origin, a refused
/// preflight method.
pub const REQUESTS: [(&str, &[(&str, &str)]); 4] = [
    ("GET", &[ORIGIN]),
    ("GET", &[]),
    ("GET", &[("origin", "http://evil.test")]),
    (
        "OPTIONS",
        &[ORIGIN, ("access-control-request-method", "PATCH")],
    ),
];

/// The events [`REQUESTS`] give: one `debug` event per refusal, with its reason; nothing else.
pub fn expected_events() -> Vec<Recorded> {
    vec![
        (tracing::Level::DEBUG, Some("origin-not-allowed".to_owned())),
        (tracing::Level::DEBUG, Some("method-not-allowed".to_owned())),
    ]
}

/// A subscriber that records every event's level and `reason` field.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Recorded>>>);

/// An event's level and its `reason` field.
pub type Recorded = (tracing::Level, Option<String>);

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
