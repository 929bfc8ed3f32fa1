//! Allocation counts per scenario, corsair and tower-http side by side, and corsair's actix
//! middleware beside actix-cors (a counting global allocator; counts, not times).
//!
//! corsair's decision allocates nothing; a request through corsair's middleware, tower's or
//! actix's, gives the expected response (written out here by hand) and allocates no more than
//! the same request without it plus inserting those expected headers into the response's header
//! map (whose first insertion allocates its table).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::server::{answer, ask, Action, Reasons, RequestInfo, Resolved, Step, Upgrades};
use corsair::{Policy, PolicySet};
use corsair_bench::{call, floor, request, scenarios, with_corsair, with_tower_http};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// const-initialized thread-local `Cell`, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

/// The response corsair must give to a scenario (every scenario's policy: its origins; GET,
/// POST, PUT, DELETE; content-type, authorization, x-request-id; exposes x-request-id;
/// credentials; max-age 600), written out by hand: the status, and every header on it (the inner
/// service adds none).
fn expected_response(name: &str) -> (u16, Vec<(&'static str, &'static str)>) {
    const VARY_PREFLIGHT: &str =
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
    let simple = |origin: &'static str| {
        vec![
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-request-id"),
            ("vary", "Origin"),
        ]
    };
    let preflight = vec![
        ("access-control-allow-origin", "https://app.example.com"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET, POST, PUT, DELETE"),
        (
            "access-control-allow-headers",
            "content-type, authorization, x-request-id",
        ),
        ("access-control-max-age", "600"),
        ("vary", VARY_PREFLIGHT),
    ];
    match name {
        "no_origin" | "disallowed_simple" => (200, vec![("vary", "Origin")]),
        "allowed_simple" | "origins_1" | "origins_100" | "origins_10000" => {
            (200, simple("https://app.example.com"))
        }
        "patterns_1" => (200, simple("https://app.tenant0.example.com")),
        "patterns_1000" => (200, simple("https://app.tenant999.example.com")),
        // The hostile list is refused unread, but an allowed origin's preflight still gets the
        // full lists, so the browser can name the culprit.
        "allowed_preflight" | "hostile_preflight" => (204, preflight),
        "rejected_preflight" => (403, vec![("vary", VARY_PREFLIGHT)]),
        other => panic!("no expected response written for scenario {other}"),
    }
}

#[test]
fn corsair_allocates_only_what_the_header_map_needs() {
    println!(
        "{:<20} {:>8} {:>8} {:>8} {:>12} {:>10} | {:>14} {:>12} {:>11} {:>11}",
        "scenario",
        "decide",
        "corsair",
        "insert",
        "tower-http",
        "floor",
        "actix+corsair",
        "actix insert",
        "actix-cors",
        "actix floor"
    );
    let mut names = Vec::new();
    for s in scenarios() {
        names.push(s.name);
        let policy = corsair_bench::corsair_policy(&s).unwrap();
        let mut bare = floor();
        let mut corsair = with_corsair(&s).unwrap();
        let mut tower_http = with_tower_http(&s);
        let (status, headers) = expected_response(s.name);
        let mut want = http::HeaderMap::new();
        for (k, v) in &headers {
            want.append(*k, http::HeaderValue::from_static(v));
        }

        // Warm up every path once (lazily initialized statics, shared buffers).
        for _ in 0..2 {
            call(&mut corsair, request(&s));
            call(&mut tower_http, request(&s));
            call(&mut bare, request(&s));
        }

        let policies = PolicySet::single(policy.clone());
        let r = request(&s);
        let (decide, _) = count(|| {
            (
                policy.decide(r.method(), r.headers()),
                answer(
                    &policies,
                    r.method(),
                    r.uri().path(),
                    r.headers(),
                    Reasons::WhenTraced,
                ),
            )
        });
        let r = request(&s);
        let (with_corsair_n, response) = count(|| call(&mut corsair, r));
        let r = request(&s);
        let (with_tower_http_n, _) = count(|| call(&mut tower_http, r));
        let r = request(&s);
        let (floor_n, _) = count(|| call(&mut bare, r));
        // The allowance: the floor, plus inserting the expected headers into its response.
        let r = request(&s);
        let (insert_n, _) = count(|| {
            let mut resp = call(&mut bare, r).unwrap();
            for (k, v) in &want {
                resp.headers_mut().append(k.clone(), v.clone());
            }
            resp
        });
        let actix = actix_counts(&s, status, &headers);
        println!(
            "{:<20} {:>8} {:>8} {:>8} {:>12} {:>10} | {:>14} {:>12} {:>11} {:>11}",
            s.name,
            decide,
            with_corsair_n,
            insert_n,
            with_tower_http_n,
            floor_n,
            actix.corsair,
            actix.insert,
            actix.cors,
            actix.floor
        );
        // What was counted is the whole answer: a response, the expected one.
        let response =
            response.unwrap_or_else(|| panic!("{}: corsair gave no response at once", s.name));
        assert_eq!(response.status().as_u16(), status, "{}", s.name);
        assert_eq!(response.headers(), &want, "{}", s.name);
        assert_eq!(decide, 0, "{}: deciding allocated", s.name);
        assert!(
            with_corsair_n <= insert_n,
            "{}: corsair allocated {with_corsair_n}, the floor plus inserting its headers {insert_n}",
            s.name
        );
        assert!(
            actix.corsair <= actix.insert,
            "{}: corsair's actix middleware allocated {}, actix's floor plus inserting its headers {}",
            s.name,
            actix.corsair,
            actix.insert
        );
    }
    // Every scenario the benchmarks define was measured.
    assert_eq!(names.len(), 11, "{names:?}");
}

/// Allocations of one request through actix: bare, bare plus inserting corsair's headers by
/// hand, actix-cors, corsair's middleware.
struct ActixCounts {
    floor: usize,
    insert: usize,
    cors: usize,
    corsair: usize,
}

/// Counts one request of scenario `s` through each actix service (after warming each up), and
/// checks that corsair's actix middleware gives the expected response, `status` and exactly
/// `headers`.
fn actix_counts(
    s: &corsair_bench::Scenario,
    status: u16,
    headers: &[(&'static str, &'static str)],
) -> ActixCounts {
    let mut actix = corsair_bench::actix::prepare(s).unwrap();
    let mut nothing = |_: u16, _: &actix_web::http::header::HeaderMap| {};
    for _ in 0..2 {
        assert!((actix.floor)(&mut nothing));
        assert!((actix.insert_only)(&mut nothing));
        assert!((actix.cors)(&mut nothing));
        assert!((actix.corsair)(&mut nothing));
    }
    let counts = ActixCounts {
        floor: count(|| (actix.floor)(&mut nothing)).0,
        insert: count(|| (actix.insert_only)(&mut nothing)).0,
        cors: count(|| (actix.cors)(&mut nothing)).0,
        corsair: count(|| (actix.corsair)(&mut nothing)).0,
    };
    let mut got = None;
    assert!((actix.corsair)(&mut |code, map| {
        let mut pairs: Vec<(String, String)> = map
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        pairs.sort();
        got = Some((code, pairs));
    }));
    let mut want: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    want.sort();
    assert_eq!(got, Some((status, want)), "{}: actix", s.name);
    counts
}

/// An origin source admitting one tenant.
struct Tenants;

impl OriginSource for Tenants {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        Ok(origin == "https://shop.tenant.example")
    }
}

/// The engine's entry point allocates nothing for a WebSocket handshake whose origin the origin
/// source's cache already knows, under `refuse_upgrades_from_disallowed_origins`: the same as
/// for an ordinary request from it (none), admitted or refused.
#[test]
fn a_cached_origin_costs_a_handshake_no_allocation() {
    let cache = OriginCache::builder(Tenants).build();
    let policies = PolicySet::single(
        Policy::builder()
            .allow_origins(["https://app.example"])
            .allow_origin_source(cache.clone())
            .build()
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (origin, resolved) in [
        ("https://shop.tenant.example", Resolved::Allowed),
        ("https://evil.example", Resolved::NotAllowed),
    ] {
        assert_eq!(runtime.block_on(cache.resolve(origin)), resolved);
    }
    let mut plain = HeaderMap::new();
    plain.insert(
        "origin",
        HeaderValue::from_static("https://shop.tenant.example"),
    );
    let mut handshake = plain.clone();
    handshake.insert("connection", HeaderValue::from_static("Upgrade"));
    handshake.insert("upgrade", HeaderValue::from_static("websocket"));
    let mut refused = handshake.clone();
    refused.insert("origin", HeaderValue::from_static("https://evil.example"));

    let action = |headers: &HeaderMap| {
        let info = RequestInfo::at("/ws");
        let refuse = Upgrades::RefuseDisallowedOrigins;
        match ask(
            &policies,
            &Method::GET,
            headers,
            info,
            refuse,
            Reasons::WhenTraced,
        ) {
            Step::Answer(answer) => answer.action(),
            other => panic!("not answered from the cache: {other:?}"),
        }
    };
    for (headers, want) in [
        (&plain, Action::Forward),
        (&handshake, Action::Forward),
        (&refused, Action::Respond(StatusCode::FORBIDDEN)),
    ] {
        // Once to warm up (lazily initialized statics), then counted.
        assert_eq!(action(headers), want);
        let (n, got) = count(|| action(headers));
        assert_eq!(got, want);
        assert_eq!(n, 0, "{headers:?}: {n} allocations");
    }
}
