//! corsair against no middleware, tower-http's `CorsLayer` and actix-cors (corsair's tower layer
//! and its actix middleware), on identical requests
//! through a trivial inner service. Run with `bash scripts/bench.sh`, which also writes the table
//! of BENCHMARKS.md from criterion's estimates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failing setup should stop the run
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::Duration;

use corsair_bench::{call, floor, request, scenarios, with_corsair, with_tower_http};
use criterion::{criterion_group, criterion_main, Criterion};

fn middleware(c: &mut Criterion) {
    for s in scenarios() {
        let mut group = c.benchmark_group(s.name);
        let mut bare = floor();
        let mut corsair = with_corsair(&s).unwrap();
        let mut tower_http = with_tower_http(&s);

        // The headers corsair adds, to measure the bare cost of inserting them.
        let added = corsair_bench::added_headers(&s).unwrap();

        group.bench_function("floor", |b| {
            b.iter(|| black_box(call(&mut bare, request(&s))))
        });
        group.bench_function("insert_only", |b| {
            b.iter(|| {
                let mut r = call(&mut bare, request(&s)).unwrap();
                for (k, v) in &added {
                    r.headers_mut().append(k.clone(), v.clone());
                }
                black_box(r)
            })
        });
        let policy = corsair_bench::corsair_policy(&s).unwrap();
        group.bench_function("request_only", |b| b.iter(|| black_box(request(&s))));
        group.bench_function("corsair_decide", |b| {
            b.iter(|| {
                let r = request(&s);
                black_box(policy.decide(r.method(), r.headers()))
            })
        });
        let mut static_layer = corsair_bench::with_static_headers(&s).unwrap();
        group.bench_function("static_layer", |b| {
            b.iter(|| black_box(call(&mut static_layer, request(&s))))
        });
        group.bench_function("corsair", |b| {
            b.iter(|| black_box(call(&mut corsair, request(&s))))
        });
        group.bench_function("tower_http", |b| {
            b.iter(|| black_box(call(&mut tower_http, request(&s))))
        });
        let mut actix = corsair_bench::actix::prepare(&s).unwrap();
        let mut nothing = |_: u16, _: &actix_web::http::header::HeaderMap| {};
        assert!(
            (actix.floor)(&mut nothing)
                && (actix.cors)(&mut nothing)
                && (actix.corsair)(&mut nothing)
                && (actix.insert_only)(&mut nothing),
            "actix services are ready"
        );
        group.bench_function("actix_floor", |b| {
            b.iter(|| black_box((actix.floor)(&mut nothing)))
        });
        group.bench_function("actix_insert_only", |b| {
            b.iter(|| black_box((actix.insert_only)(&mut nothing)))
        });
        group.bench_function("actix_cors", |b| {
            b.iter(|| black_box((actix.cors)(&mut nothing)))
        });
        group.bench_function("actix_corsair", |b| {
            b.iter(|| black_box((actix.corsair)(&mut nothing)))
        });
        drop(actix.system);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50);
    targets = middleware
}
criterion_main!(benches);
