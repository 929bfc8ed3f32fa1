//! The numbers of BENCHMARKS.md's "Tenant origins": the origin decision with 1 and 100,000
//! cached tenant origins, a cache miss against SQLite and PostgreSQL, and how long a change
//! takes to reach three PostgreSQL-backed instances. Run by `bash scripts/bench-origins.sh`,
//! which starts a PostgreSQL server and passes its address in `CORSAIR_BENCH_PG`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corsair::origin_source::postgres::PostgresSource;
use corsair::origin_source::sqlite::SqliteSource;
use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::server::{answer_in, origin_lookup, Reasons, RequestInfo, Resolved};
use corsair::{Policy, PolicySet};
use http::{HeaderMap, HeaderValue, Method};

const TENANTS: usize = 100_000;

fn tenant(i: usize) -> String {
    format!("https://shop-{i}.tenants.example")
}

struct Memory(Arc<HashSet<String>>);

impl OriginSource for Memory {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        Ok(self.0.contains(origin))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// What the tower layer does per request on a hit: find the lookup, read the cache, decide,
/// write the headers.
fn decide(policies: &PolicySet, headers: &HeaderMap) {
    let mut info = RequestInfo::at("/api");
    if let Some(l) = origin_lookup(policies, headers, &info) {
        info = info.resolved(l.source.cached(l.origin).unwrap_or(Resolved::NotAsked));
    }
    let a = answer_in(policies, &Method::GET, headers, &info, Reasons::WhenTraced);
    let mut response = HeaderMap::new();
    a.into_parts().1.apply(&mut response);
    black_box(response);
}

/// [`decide`], median of 7 runs, in ns per request.
fn decision_ns(policies: &PolicySet, requests: &[HeaderMap]) -> f64 {
    let runs = (0..7)
        .map(|_| {
            let n = 1_000_000;
            let started = Instant::now();
            for i in 0..n {
                decide(policies, &requests[i % requests.len()]);
            }
            started.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    median(runs)
}

/// `origin_sources instructions SCENARIO N`: N requests of one scenario and nothing else, for
/// callgrind (`scripts/bench-origin-instructions.sh` subtracts a run of 0, so the set-up, the
/// same whatever N, cancels out). `listed`, `hit_one`, `hit_many`: [`decide`] as in the table;
/// `miss`: `resolve` of N distinct origins against an in-memory source (the cache's own cost of
/// a miss, the layer's path: up to `TENANTS`).
fn instructions(scenario: &str, n: usize) {
    let all: Arc<HashSet<String>> = Arc::new((0..TENANTS).map(tenant).collect());
    let list: Vec<String> = (0..TENANTS).map(tenant).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let cache = OriginCache::builder(Memory(all))
        .capacity(2 * TENANTS)
        .build();
    let requests = match scenario {
        "listed" => requests(std::iter::once("https://app.example.com".to_owned())),
        "hit_one" => {
            rt.block_on(cache.resolve(&tenant(7)));
            requests(std::iter::once(tenant(7)))
        }
        "hit_many" => {
            rt.block_on(async {
                for o in &list {
                    cache.resolve(o).await;
                }
            });
            requests((0..4_096).map(|i| tenant(i * 7919 % TENANTS)))
        }
        "miss" => {
            rt.block_on(async {
                for o in &list[..n.min(TENANTS)] {
                    assert_eq!(cache.resolve(black_box(o)).await, Resolved::Allowed);
                }
            });
            return;
        }
        other => panic!("no scenario {other}: listed, hit_one, hit_many, miss"),
    };
    let policies = policies(cache);
    for i in 0..n {
        decide(&policies, &requests[i % requests.len()]);
    }
}

fn requests(origins: impl Iterator<Item = String>) -> Vec<HeaderMap> {
    origins
        .map(|o| {
            let mut h = HeaderMap::new();
            h.insert("origin", HeaderValue::from_str(&o).unwrap());
            h
        })
        .collect()
}

fn policies(cache: OriginCache) -> PolicySet {
    PolicySet::single(
        Policy::builder()
            .allow_origins(["https://app.example.com"])
            .allow_origin_source(cache)
            .allow_credentials(true)
            .build()
            .unwrap(),
    )
}

/// Cache misses: `refresh` of distinct origins, half stored, half not; (median, p99) in µs.
async fn misses(cache: &OriginCache) -> (f64, f64) {
    let mut times = Vec::new();
    for i in 0..2_000 {
        let origin = if i % 2 == 0 {
            tenant(i * 37 % TENANTS)
        } else {
            format!("https://absent-{i}.example")
        };
        let started = Instant::now();
        let r = cache.refresh(&origin).await;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        assert_ne!(r, Resolved::Failed, "{origin}");
    }
    (median(times.clone()), percentile(times, 0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, scenario, n] = &args[..] {
        if mode == "instructions" {
            return instructions(scenario, n.parse().unwrap());
        }
    }
    timed();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn timed() {
    let all: Arc<HashSet<String>> = Arc::new((0..TENANTS).map(tenant).collect());

    // 1. The decision on a hit, with 1 and 100,000 tenants cached; a listed origin for scale.
    let one = OriginCache::builder(Memory(all.clone())).build();
    one.resolve(&tenant(7)).await;
    let many = OriginCache::builder(Memory(all.clone()))
        .capacity(2 * TENANTS)
        .build();
    for i in 0..TENANTS {
        many.resolve(&tenant(i)).await;
    }
    assert!(many.len() >= TENANTS * 9 / 10, "{} cached", many.len());
    let listed = decision_ns(
        &policies(one.clone()),
        &requests(std::iter::once("https://app.example.com".to_owned())),
    );
    let hit_one = decision_ns(&policies(one), &requests(std::iter::once(tenant(7))));
    let spread = requests((0..4_096).map(|i| tenant(i * 7919 % TENANTS)));
    let hit_many = decision_ns(&policies(many), &spread);
    println!("decision, listed origin (no source lookup): {listed:.0} ns");
    println!("decision, 1 tenant cached: {hit_one:.0} ns");
    println!("decision, 100,000 tenants cached (4,096 distinct origins in turn): {hit_many:.0} ns");

    // 2. A miss against SQLite, 100,000 rows.
    let dir = std::env::temp_dir().join(format!("corsair-bench-origins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("tenants.db");
    {
        let mut admin = rusqlite::Connection::open(&db).unwrap();
        admin.execute_batch(SqliteSource::SCHEMA).unwrap();
        let tx = admin.transaction().unwrap();
        for o in all.iter() {
            tx.execute("INSERT OR IGNORE INTO cors_origins VALUES (?1)", [o])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let sqlite = OriginCache::builder(SqliteSource::open(&db).unwrap()).build();
    let (med, p99) = misses(&sqlite).await;
    println!("miss, SQLite (100,000 rows): median {med:.1} µs, p99 {p99:.1} µs");
    let _ = std::fs::remove_dir_all(&dir);

    // 3. A miss against PostgreSQL, and propagation to three instances.
    let Ok(config) = std::env::var("CORSAIR_BENCH_PG") else {
        println!("CORSAIR_BENCH_PG not set: PostgreSQL numbers skipped (scripts/bench-origins.sh sets it)");
        return;
    };
    let (admin, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin.batch_execute(PostgresSource::SCHEMA).await.unwrap();
    admin.batch_execute("TRUNCATE cors_origins").await.unwrap();
    let list: Vec<&String> = all.iter().collect();
    for chunk in list.chunks(5_000) {
        let values: Vec<String> = chunk.iter().map(|o| format!("('{o}')")).collect();
        admin
            .batch_execute(&format!(
                "INSERT INTO cors_origins VALUES {}",
                values.join(",")
            ))
            .await
            .unwrap();
    }
    let instances: Vec<OriginCache> = (0..3)
        .map(|_| {
            OriginCache::builder(PostgresSource::connect(&config).unwrap())
                .allowed_ttl(Duration::from_secs(600))
                .refused_ttl(Duration::from_secs(600))
                .build()
        })
        .collect();
    let started = Instant::now();
    while instances[0].resolve(&tenant(1)).await != Resolved::Allowed {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "PostgreSQL source never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (med, p99) = misses(&instances[0]).await;
    println!("miss, PostgreSQL (100,000 rows, loopback): median {med:.1} µs, p99 {p99:.1} µs");

    // Propagation: every instance holds a negative answer for the origin (10 minutes); the
    // time from the committed INSERT (or DELETE) until every instance has dropped it.
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for round in 0..20 {
        let origin = format!("https://new-{round}.tenants.example");
        for (sql, times, want) in [
            (
                "INSERT INTO cors_origins VALUES ($1)",
                &mut add,
                Resolved::Allowed,
            ),
            (
                "DELETE FROM cors_origins WHERE origin = $1",
                &mut remove,
                Resolved::NotAllowed,
            ),
        ] {
            for i in &instances {
                let before = i.resolve(&origin).await;
                assert_ne!(before, want);
            }
            let started = Instant::now();
            admin.execute(sql, &[&origin]).await.unwrap();
            loop {
                if instances.iter().all(|i| i.cached(&origin).is_none()) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "no notification"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
            for i in &instances {
                assert_eq!(i.resolve(&origin).await, want);
            }
        }
    }
    println!(
        "propagation to 3 instances over 20 rounds (ms, from sending the statement): add median {:.2} max {:.2}; remove median {:.2} max {:.2}",
        median(add.clone()),
        percentile(add, 1.0),
        median(remove.clone()),
        percentile(remove, 1.0)
    );
}
