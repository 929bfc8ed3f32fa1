//! axum with a CORS policy per route, read from a policy file.
//!
//! The policies live in [`axum_routes.toml`](./axum_routes.toml), the format `corsair proxy`
//! reads: top-level keys for the whole service, and one `[[route]]` table per path prefix with
//! its own policy. One `CorsLayer` serves them all; each request gets the policy of the first
//! route whose path covers it, or the top level's.
//!
//! ```text
//! cargo run -p corsair --example axum_routes --features tower,serde [-- FILE]
//! curl -i http://localhost:9000/public/status -H 'Origin: https://anyone.example'
//! curl -i http://localhost:9000/api/me -H 'Origin: https://anyone.example'      # no CORS headers
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use axum::routing::{get, post};
use axum::{Json, Router};
use corsair::config::{FileErrors, PolicySet};
use corsair::tower::CorsLayer;
use serde_json::{json, Value};

/// The policy file checked in beside this example.
pub fn default_policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/axum_routes.toml")
}

/// The service, with the policies of `file`. A file with mistakes is refused whole: every
/// problem is reported with its line, code and fix, and nothing is served.
pub fn app(file: &Path) -> Result<Router, FileErrors> {
    let policies = PolicySet::load(file)?;
    Ok(Router::new()
        .route("/api/me", get(|| async { Json(json!({ "name": "Ada" })) }))
        .route(
            "/public/status",
            get(|| async { ([("etag", "\"v1\"")], Json(json!({ "status": "ok" }))) }),
        )
        .route(
            "/partner/orders",
            post(|Json(order): Json<Value>| async { Json(order) }),
        )
        // One layer for every route: the path picks the policy.
        .layer(CorsLayer::new(policies)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let file = std::env::args_os()
        .nth(1)
        .map_or_else(default_policy_file, PathBuf::from);
    let app = match app(&file) {
        Ok(app) => app,
        Err(errors) => {
            // Printed as a compiler prints errors: FILE:LINE: [code] ... Fix: ...
            eprintln!("{}", errors.with_file(&file.display().to_string()));
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9000));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "http://localhost:9000 with the CORS policies of {}",
        file.display()
    );
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
