//! A multi-tenant API on axum whose customers register their own front-end origins, kept in
//! SQLite. Run it from the repository's root:
//!
//! ```sh
//! cargo run -p corsair --features tower,sqlite --example multi_tenant_sqlite -- 127.0.0.1:3000 /tmp/tenants.db
//! ```
//!
//! Then, from another terminal:
//!
//! ```sh
//! # Not registered yet: no Access-Control-Allow-Origin, and a 403 preflight.
//! curl -si http://127.0.0.1:3000/api/orders -H 'Origin: https://shop.example'
//! # A tenant registers its origin (the sign-up service would; here, an admin route).
//! curl -si -X POST http://127.0.0.1:3000/admin/origins -d 'https://shop.example'
//! # Admitted at once: the route invalidated the cache entry.
//! curl -si http://127.0.0.1:3000/api/orders -H 'Origin: https://shop.example'
//! ```
//!
//! The company's own front end is listed in the policy and never waits for the database; every
//! other origin is looked up in SQLite through a bounded cache (admitted origins kept 5
//! minutes, refused ones 30 seconds, lookups timed out after 250 ms, failing closed). Changes
//! made by another process are seen within a second (`SqliteSource::watch`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use corsair::origin::RequestOrigin;
use corsair::origin_source::sqlite::SqliteSource;
use corsair::origin_source::OriginCache;
use corsair::tower::CorsLayer;
use corsair::Policy;

#[derive(Clone)]
struct App {
    db: std::path::PathBuf,
    cache: OriginCache,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let db = std::path::PathBuf::from(args.next().unwrap_or_else(|| "tenants.db".to_owned()));

    rusqlite::Connection::open(&db)?.execute_batch(SqliteSource::SCHEMA)?;
    let cache = OriginCache::builder(SqliteSource::open(&db)?.watch(Duration::from_secs(1)))
        .capacity(100_000)
        .allowed_ttl(Duration::from_secs(300))
        .refused_ttl(Duration::from_secs(30))
        .timeout(Duration::from_millis(250))
        .build();
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_origin_source(cache.clone())
        .allow_methods(["GET", "POST", "DELETE"])
        .allow_headers(["content-type", "authorization"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
        .build()?;

    let api = Router::new()
        .route(
            "/api/orders",
            get(|| async { Json(serde_json::json!({ "orders": [] })) }),
        )
        .layer(CorsLayer::new(cors));
    // Not behind CORS: a same-origin admin tool, or the sign-up service, calls it.
    let admin = Router::new()
        .route("/admin/origins", post(register).delete(unregister))
        .with_state(App { db, cache });
    let app = api.merge(admin);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "multi-tenant API on http://{}/api/orders",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Checks that `body` is an origin a browser sends, in the form it sends it, and that it is
/// safe to admit with credentials (https).
fn origin(body: &str) -> Result<String, (StatusCode, String)> {
    let body = body.trim();
    let bad = |why: &str| Err((StatusCode::BAD_REQUEST, format!("{body:?}: {why}\n")));
    let Some(o) = RequestOrigin::parse(body.as_bytes()) else {
        return bad("not a serialized origin such as https://shop.example (lowercase, no path)");
    };
    if o.scheme() != "https" {
        return bad("only https origins may read this API with credentials");
    }
    Ok(o.as_str().to_owned())
}

async fn register(State(app): State<App>, body: String) -> Result<String, (StatusCode, String)> {
    let origin = origin(&body)?;
    change(
        &app,
        "INSERT OR IGNORE INTO cors_origins (origin) VALUES (?1)",
        &origin,
    )
    .await?;
    Ok(format!("registered {origin}\n"))
}

async fn unregister(State(app): State<App>, body: String) -> Result<String, (StatusCode, String)> {
    let origin = origin(&body)?;
    change(&app, "DELETE FROM cors_origins WHERE origin = ?1", &origin).await?;
    Ok(format!("removed {origin}\n"))
}

/// Runs one statement, then drops the origin's cache entry so the change takes effect now.
async fn change(app: &App, sql: &'static str, origin: &str) -> Result<(), (StatusCode, String)> {
    let (db, o) = (app.db.clone(), origin.to_owned());
    let result = tokio::task::spawn_blocking(move || {
        rusqlite::Connection::open(db)?
            .execute(sql, [o])
            .map(|_| ())
    })
    .await;
    let failed = |e: String| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database: {e}\n"),
        )
    };
    result
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    app.cache.invalidate(origin);
    Ok(())
}
