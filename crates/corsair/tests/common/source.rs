//! An origin source behind the middleware, as a script shared by every adapter's tests
//! (`tower_layer.rs`, `actix_layer.rs`): the same requests in the same order, the same answers,
//! and the same number of questions to the source.
#![cfg(feature = "origin-source")]
#![allow(dead_code)] // each test binary uses the part for its adapter

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::Policy;

use super::layer::Case;

/// A tenants' table: counts its lookups, and fails while told to.
#[derive(Clone, Default)]
pub struct Tenants {
    origins: Arc<Mutex<HashSet<String>>>,
    lookups: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Tenants {
    pub fn new(origins: &[&str]) -> Self {
        let t = Tenants::default();
        t.origins
            .lock()
            .unwrap()
            .extend(origins.iter().map(|o| (*o).to_owned()));
        t
    }
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl OriginSource for Tenants {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(SourceError::new("connection refused"));
        }
        Ok(self.origins.lock().unwrap().contains(origin))
    }
}

/// The tenants of [`SOURCE_STEPS`].
pub const TENANTS: &[&str] = &["https://t1.example", "https://t2.example"];

/// [`super::layer::policy`]'s listed origin and methods, and the origins of `tenants`.
pub fn source_policy(tenants: &Tenants) -> Policy {
    let cache = OriginCache::builder(tenants.clone())
        .allowed_ttl(Duration::from_secs(60))
        .refused_ttl(Duration::from_secs(60))
        .timeout(Duration::from_secs(5))
        .build();
    Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .allow_origin_source(cache)
        .build()
        .unwrap()
}

/// One request of the script: whether the source is down when it is sent, the request and its
/// answer, and how many lookups the source has answered after it.
#[derive(Debug)]
pub struct Step {
    pub down: bool,
    pub case: Case,
    pub lookups: usize,
}

const PUT: (&str, &str) = ("access-control-request-method", "PUT");
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
const VARY: &[(&str, &str)] = &[("vary", "Origin")];

/// The script, in order, against a fresh [`Tenants::new`]`(`[`TENANTS`]`)`.
#[rustfmt::skip]
pub const SOURCE_STEPS: &[Step] = &[
    // A miss, resolved while the application runs; then a hit.
    Step { down: false, lookups: 1, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t1.example")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://t1.example"), ("vary", "Origin")] } },
    Step { down: false, lookups: 1, case: Case { method: "GET", path: "/fail", headers: &[("origin", "https://t1.example")], status: 500, reaches_app: true, cors: &[("access-control-allow-origin", "https://t1.example"), ("vary", "Origin")] } },
    // A preflight miss: answered by the middleware once the source has said.
    Step { down: false, lookups: 2, case: Case { method: "OPTIONS", path: "/ok", headers: &[("origin", "https://t2.example"), PUT], status: 204, reaches_app: false, cors: &[("access-control-allow-origin", "https://t2.example"), ("access-control-allow-methods", "PUT"), ("vary", PREFLIGHT_VARY)] } },
    // A refused origin, refused again from the cache; its preflight refused too.
    Step { down: false, lookups: 3, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://x.example")], status: 200, reaches_app: true, cors: VARY } },
    Step { down: false, lookups: 3, case: Case { method: "OPTIONS", path: "/ok", headers: &[("origin", "https://x.example"), PUT], status: 403, reaches_app: false, cors: &[("vary", PREFLIGHT_VARY)] } },
    Step { down: false, lookups: 4, case: Case { method: "OPTIONS", path: "/missing", headers: &[("origin", "https://y.example"), PUT], status: 403, reaches_app: false, cors: &[("vary", PREFLIGHT_VARY)] } },
    // An error from an inner handler, on a miss.
    Step { down: false, lookups: 5, case: Case { method: "PUT", path: "/error", headers: &[("origin", "https://z.example")], status: 500, reaches_app: true, cors: VARY } },
    // The listed origin, malformed and repeated origins: the source is never asked.
    Step { down: false, lookups: 5, case: Case { method: "GET", path: "/ok", headers: &[("origin", "http://localhost:8000")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "http://localhost:8000"), ("vary", "Origin")] } },
    Step { down: false, lookups: 5, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t9.example/")], status: 200, reaches_app: true, cors: VARY } },
    Step { down: false, lookups: 5, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t9.example"), ("origin", "https://t9.example")], status: 200, reaches_app: true, cors: VARY } },
    // A source that fails refuses (fail closed), and is asked again next time.
    Step { down: true, lookups: 6, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t9.example")], status: 200, reaches_app: true, cors: VARY } },
    Step { down: true, lookups: 7, case: Case { method: "OPTIONS", path: "/ok", headers: &[("origin", "https://t9.example"), PUT], status: 403, reaches_app: false, cors: &[("vary", PREFLIGHT_VARY)] } },
    // What the cache holds still answers while the source is down.
    Step { down: true, lookups: 7, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t1.example")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://t1.example"), ("vary", "Origin")] } },
];

const WS: (&str, &str) = ("connection", "Upgrade");
const WEBSOCKET: (&str, &str) = ("upgrade", "websocket");

/// Upgrade requests through a middleware that refuses upgrades from disallowed origins: a
/// tenant's handshake is admitted by the source, from the cache when it holds the origin and
/// after a lookup (which it waits for) when it does not; an origin the source refuses, or one
/// it cannot answer for, is refused with 403 and never reaches the application; the listed
/// origin's handshake passes without a lookup.
#[rustfmt::skip]
pub const SOURCE_UPGRADE_STEPS: &[Step] = &[
    Step { down: false, lookups: 1, case: Case { method: "GET", path: "/ok", headers: &[("origin", "https://t1.example")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://t1.example"), ("vary", "Origin")] } },
    // Cached: no lookup.
    Step { down: false, lookups: 1, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://t1.example")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://t1.example"), ("vary", "Origin")] } },
    // A miss: looked up before the application sees it.
    Step { down: false, lookups: 2, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://t2.example")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://t2.example"), ("vary", "Origin")] } },
    // Refused by the source, then by its cached answer.
    Step { down: false, lookups: 3, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://x.example")], status: 403, reaches_app: false, cors: VARY } },
    Step { down: false, lookups: 3, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://x.example")], status: 403, reaches_app: false, cors: VARY } },
    // A source that fails refuses (fail closed), and is asked again next time.
    Step { down: true, lookups: 4, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://t9.example")], status: 403, reaches_app: false, cors: VARY } },
    Step { down: true, lookups: 5, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "https://t9.example")], status: 403, reaches_app: false, cors: VARY } },
    // The listed origin never waits for the source.
    Step { down: true, lookups: 5, case: Case { method: "GET", path: "/ok", headers: &[WS, WEBSOCKET, ("origin", "http://localhost:8000")], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "http://localhost:8000"), ("vary", "Origin")] } },
];
