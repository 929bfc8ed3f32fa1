//! The SQLite origin source against a real database file: origins added and removed by another
//! connection are seen after an invalidation, after their time to live, or within a watch
//! interval; a missing table is a clear error.
#![cfg(all(feature = "sqlite", feature = "tower"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use corsair::origin_source::sqlite::SqliteSource;
use corsair::origin_source::OriginCache;
use corsair::server::Resolved;
use corsair::tower::CorsLayer;
use corsair::Policy;
use rusqlite::Connection;
use tower::ServiceExt;

const TENANT: &str = "https://shop.tenant.example";

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("corsair-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn database(dir: &TempDir) -> (PathBuf, Connection) {
    let path = dir.0.join("tenants.db");
    let admin = Connection::open(&path).unwrap();
    admin.execute_batch(SqliteSource::SCHEMA).unwrap();
    (path, admin)
}

fn add(admin: &Connection, origin: &str) {
    admin
        .execute("INSERT INTO cors_origins (origin) VALUES (?1)", [origin])
        .unwrap();
}

fn remove(admin: &Connection, origin: &str) {
    admin
        .execute("DELETE FROM cors_origins WHERE origin = ?1", [origin])
        .unwrap();
}

async fn admitted(app: &Router, origin: &str) -> bool {
    let req = Request::get("/api")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    r.headers()
        .get("access-control-allow-origin")
        .is_some_and(|v| v == origin)
}

fn app(cache: OriginCache) -> Router {
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_origin_source(cache)
        .allow_credentials(true)
        .build()
        .unwrap();
    Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(CorsLayer::new(cors))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_seen_after_invalidation_and_ttl() {
    let dir = TempDir::new("sqlite-ttl");
    let (path, admin) = database(&dir);
    add(&admin, TENANT);
    let cache = OriginCache::builder(SqliteSource::open(&path).unwrap())
        .allowed_ttl(Duration::from_millis(1500))
        .refused_ttl(Duration::from_millis(1500))
        .build();
    let app = app(cache.clone());

    // The TTL leaves room for a loaded machine between two lines: the last steps rely on a
    // refused entry still being cached (it expired mid-test at 300 ms under load).
    assert!(admitted(&app, TENANT).await);
    assert!(!admitted(&app, "https://evil.example").await);
    // A tenant signs up after its origin was refused: refused until the negative entry
    // expires.
    assert!(!admitted(&app, "https://new.tenant.example").await);
    add(&admin, "https://new.tenant.example");
    assert!(!admitted(&app, "https://new.tenant.example").await);
    // Removed: still admitted from the cache, until invalidated.
    remove(&admin, TENANT);
    assert!(admitted(&app, TENANT).await);
    cache.invalidate(TENANT);
    assert!(!admitted(&app, TENANT).await);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(admitted(&app, "https://new.tenant.example").await);
    // Refresh asks the database now.
    assert!(!admitted(&app, TENANT).await);
    add(&admin, TENANT);
    assert_eq!(cache.cached(TENANT), Some(Resolved::NotAllowed));
    assert_eq!(cache.refresh(TENANT).await, Resolved::Allowed);
    assert!(admitted(&app, TENANT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_database_is_seen_within_an_interval() {
    let dir = TempDir::new("sqlite-watch");
    let (path, admin) = database(&dir);
    let source = SqliteSource::open(&path)
        .unwrap()
        .watch(Duration::from_millis(50));
    // Long TTLs: only the watch can explain seeing a change.
    let cache = OriginCache::builder(source)
        .allowed_ttl(Duration::from_secs(600))
        .refused_ttl(Duration::from_secs(600))
        .build();
    let app = app(cache);
    assert!(!admitted(&app, TENANT).await);

    for (change, want) in [(true, true), (false, false)] {
        if change {
            add(&admin, TENANT);
        } else {
            remove(&admin, TENANT);
        }
        let started = Instant::now();
        while admitted(&app, TENANT).await != want {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "not seen in 3 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "sqlite watch: {} seen after {:?}",
            if want { "add" } else { "remove" },
            started.elapsed()
        );
    }
}

/// A change committed after the cache is built, before the watcher first looks, is seen: the
/// watcher's starting point is read when the cache is built. The watcher runs on a runtime of
/// its own that the test drives only once the change is made; before, it took its starting
/// point at its first look, after the change, and the cached refusal stayed for its whole
/// time to live (the watch test above failed so, now and then, under load).
#[test]
fn a_change_before_the_watchers_first_look_is_seen() {
    let dir = TempDir::new("sqlite-first-look");
    let (path, admin) = database(&dir);
    let watcher = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let cache = {
        let _watcher = watcher.enter();
        let source = SqliteSource::open(&path)
            .unwrap()
            .watch(Duration::from_millis(10));
        OriginCache::builder(source)
            .allowed_ttl(Duration::from_secs(600))
            .refused_ttl(Duration::from_secs(600))
            .build()
    };
    let requests = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(
        requests.block_on(cache.resolve(TENANT)),
        Resolved::NotAllowed
    );
    add(&admin, TENANT);
    watcher.block_on(async {
        let seen = async {
            while cache.cached(TENANT) == Some(Resolved::NotAllowed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(3), seen)
            .await
            .expect("the change was not seen in 3 s");
    });
    assert_eq!(requests.block_on(cache.resolve(TENANT)), Resolved::Allowed);
}

#[test]
fn a_database_without_the_table_is_a_clear_error() {
    let dir = TempDir::new("sqlite-empty");
    let path = dir.0.join("empty.db");
    Connection::open(&path).unwrap();
    let err = SqliteSource::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("cors_origins") && err.contains("does not prepare"),
        "{err}"
    );
    let missing = SqliteSource::open(dir.0.join("missing.db"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("unable to open"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_of_your_own() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE tenants (origin TEXT, active INTEGER);
         INSERT INTO tenants VALUES ('https://a.example', 1), ('https://b.example', 0);",
    )
    .unwrap();
    let source =
        SqliteSource::with_query(conn, "SELECT 1 FROM tenants WHERE origin = ?1 AND active")
            .unwrap();
    let cache = OriginCache::builder(source).build();
    assert_eq!(cache.resolve("https://a.example").await, Resolved::Allowed);
    assert_eq!(
        cache.resolve("https://b.example").await,
        Resolved::NotAllowed
    );
}
