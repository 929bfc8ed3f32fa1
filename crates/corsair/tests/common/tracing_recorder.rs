//! The tracing tests' recording subscriber, and what the middleware logs per request, shared by
//! every adapter's tracing test (`tracing_events.rs`, `actix_tracing.rs`): the requests, and the
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

/// The policy of [`UPGRADE_REQUESTS`], through a middleware that refuses upgrades from
/// disallowed origins.
pub fn upgrade_policy() -> corsair::Policy {
    corsair::Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .build()
        .unwrap()
}

const WS: [(&str, &str); 2] = [("connection", "Upgrade"), ("upgrade", "websocket")];

/// (method, headers) of upgrade requests to `/ok`: allowed, without `Origin`, refused, malformed.
pub const UPGRADE_REQUESTS: [(&str, &[(&str, &str)]); 4] = [
    ("GET", &[WS[0], WS[1], ORIGIN]),
    ("GET", &[WS[0], WS[1]]),
    ("GET", &[WS[0], WS[1], ("origin", "http://evil.test")]),
    ("GET", &[WS[0], WS[1], ("origin", "http://evil.test/")]),
];

/// The statuses of [`UPGRADE_REQUESTS`], and the events they give: one `debug` event per
/// refused handshake, with its reason.
pub fn expected_upgrades() -> ([u16; 4], Vec<Recorded>) {
    (
        [200, 200, 403, 403],
        vec![
            (tracing::Level::DEBUG, Some("origin-not-allowed".to_owned())),
            (tracing::Level::DEBUG, Some("origin-malformed".to_owned())),
        ],
    )
}

/// A subscriber that records every event's level and its `reason` and `error` fields: the one
/// recorder of the tracing tests (`tracing_events.rs`, `actix_tracing.rs`,
/// `origin_source_tracing.rs`, `postgres_source.rs`).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Event>>>);

/// An event's level and its `reason` field.
pub type Recorded = (tracing::Level, Option<String>);

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub level: tracing::Level,
    /// The `reason` field (a string).
    pub reason: Option<String>,
    /// The `error` field, as its `Debug` form.
    pub error: Option<String>,
}

impl Recorder {
    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Every event's level and reason, in order.
    pub fn reasons(&self) -> Vec<Recorded> {
        self.events()
            .into_iter()
            .map(|e| (e.level, e.reason))
            .collect()
    }
}

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
        #[derive(Default)]
        struct Fields(Option<String>, Option<String>);
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "reason" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "error" {
                    self.1 = Some(format!("{value:?}"));
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        self.0.lock().unwrap().push(Event {
            level: *event.metadata().level(),
            reason: f.0,
            error: f.1,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
