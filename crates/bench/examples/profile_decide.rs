//! Runs one scenario's decision in a loop, for a profiler: `perf record` this binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "allowed_preflight".to_owned());
    let s = corsair_bench::scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap();
    let policy = corsair_bench::corsair_policy(&s).unwrap();
    let r = corsair_bench::request(&s);
    for _ in 0..20_000_000 {
        let _ = black_box(policy.decide(black_box(r.method()), black_box(r.headers())));
    }
}
