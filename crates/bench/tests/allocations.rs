//! Allocation counts per scenario, corsair and tower-http side by side (a counting global
//! allocator; counts, not times).
//!
//! corsair's decision allocates nothing; a request through corsair's middleware allocates no
//! more than the same request without it plus inserting the same headers into the response's
//! `http::HeaderMap` (whose first insertion allocates its table).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use corsair::server::{answer, Reasons};
use corsair::PolicySet;
use corsair_bench::{call, floor, request, scenarios, with_corsair, with_tower_http};

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

#[test]
fn corsair_allocates_only_what_the_header_map_needs() {
    println!(
        "{:<20} {:>8} {:>8} {:>8} {:>12} {:>10}",
        "scenario", "decide", "corsair", "insert", "tower-http", "floor"
    );
    for s in scenarios() {
        let policy = corsair_bench::corsair_policy(&s).unwrap();
        let mut bare = floor();
        let mut corsair = with_corsair(&s).unwrap();
        let mut tower_http = with_tower_http(&s);
        // The headers corsair adds, to measure the bare cost of inserting them.
        let added = corsair_bench::added_headers(&s).unwrap();

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
        let (with_corsair_n, _) = count(|| call(&mut corsair, r));
        let r = request(&s);
        let (with_tower_http_n, _) = count(|| call(&mut tower_http, r));
        let r = request(&s);
        let (floor_n, _) = count(|| call(&mut bare, r));
        let r = request(&s);
        let (insert_n, _) = count(|| {
            let mut resp = call(&mut bare, r).unwrap();
            for (k, v) in &added {
                resp.headers_mut().append(k.clone(), v.clone());
            }
            resp
        });
        println!(
            "{:<20} {:>8} {:>8} {:>8} {:>12} {:>10}",
            s.name, decide, with_corsair_n, insert_n, with_tower_http_n, floor_n
        );
        assert_eq!(decide, 0, "{}: deciding allocated", s.name);
        assert!(
            with_corsair_n <= insert_n,
            "{}: corsair allocated {with_corsair_n}, the floor plus inserting its headers {insert_n}",
            s.name
        );
    }
}
