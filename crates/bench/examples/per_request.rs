//! Sends one scenario's request through one service N times, for an instruction count under
//! callgrind (`scripts/bench-instructions.sh`): `per_request SERVICE SCENARIO N`, where SERVICE is
//! `floor`, `static_layer`, `corsair` or `tower_http`, or at actix's service level
//! `actix_floor`, `actix_insert_only`, `actix_cors` (actix-cors) or `actix_corsair`. The
//! services and requests are the criterion benchmark's own (`corsair_bench`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // a bad argument stops the run

use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, service, scenario, n] = args.as_slice() else {
        panic!("usage: per_request floor|static_layer|corsair|tower_http SCENARIO N");
    };
    let s = corsair_bench::scenarios()
        .into_iter()
        .find(|s| s.name == scenario.as_str())
        .unwrap_or_else(|| panic!("no scenario {scenario}"));
    let n: u64 = n.parse().unwrap();
    if let Some(kind) = service.strip_prefix("actix_") {
        let mut actix = corsair_bench::actix::prepare(&s).unwrap();
        let call = match kind {
            "floor" => &mut actix.floor,
            "insert_only" => &mut actix.insert_only,
            "cors" => &mut actix.cors,
            "corsair" => &mut actix.corsair,
            other => panic!("no actix service {other}"),
        };
        let mut nothing = |_: u16, _: &actix_web::http::header::HeaderMap| {};
        assert!(call(&mut nothing));
        for _ in 0..n {
            black_box(call(&mut nothing));
        }
        return;
    }
    let mut svc = match service.as_str() {
        "floor" => corsair_bench::floor(),
        "static_layer" => corsair_bench::with_static_headers(&s).unwrap(),
        "corsair" => corsair_bench::with_corsair(&s).unwrap(),
        "tower_http" => corsair_bench::with_tower_http(&s),
        other => panic!("no service {other}"),
    };
    // One call before counting starts to matter: first-use costs (lazy statics) are not per
    // request. The script subtracts a run of 0 requests, which makes this call too.
    assert!(corsair_bench::call(&mut svc, corsair_bench::request(&s)).is_some());
    for _ in 0..n {
        black_box(corsair_bench::call(&mut svc, corsair_bench::request(&s)));
    }
}
