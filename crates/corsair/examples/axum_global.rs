//! axum with one CORS policy for the whole service.
//!
//! The API on `http://localhost:9000` serves `/api/todos`; pages from `http://localhost:8000`
//! (the app) may read it and write to it, with cookies. Every other origin gets no
//! `Access-Control-Allow-Origin`, so the browser refuses to show it the response.
//!
//! ```text
//! cargo run -p corsair --example axum_global --features tower
//! curl -i http://localhost:9000/api/todos -H 'Origin: http://localhost:8000'
//! corsair check http://localhost:9000/api/todos --origin http://localhost:8000 -X PUT -H 'Content-Type: application/json'
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use corsair::tower::CorsLayer;
use corsair::{ConfigErrors, Policy};
use serde_json::{json, Value};

/// The page that calls this API. An origin is scheme, host and port, without a path or a
/// trailing slash, exactly as the browser sends it in `Origin`.
const APP_ORIGIN: &str = "http://localhost:8000";

/// The service: its routes, wrapped in one CORS layer.
///
/// `build()` checks the whole policy at once; a mistake (a trailing slash in an origin, `*`
/// with credentials…) comes back as an error listing every problem, each with a fix.
pub fn app() -> Result<Router, ConfigErrors> {
    let cors = Policy::builder()
        .allow_origins([APP_ORIGIN])
        // GET, HEAD and POST are always allowed; list the others the page uses.
        .allow_methods(["PUT", "DELETE"])
        // `Content-Type: application/json` is not one of the "simple" content types, so the
        // browser asks first (a preflight) and the header must be allowed here.
        .allow_headers(["content-type", "authorization"])
        // Response headers a script may read besides the always-readable ones.
        .expose_headers(["x-request-id"])
        // Cookies: the page must also ask for them, with `credentials: "include"`.
        .allow_credentials(true)
        // The browser may reuse a preflight answer for 10 minutes.
        .max_age(Duration::from_secs(600))
        .build()?;

    Ok(Router::new()
        .route("/api/todos", get(list).put(replace).delete(clear))
        // `.layer` wraps every route above, and the 404s of unknown paths: put the CORS layer
        // last (outermost), before authentication, so that preflights (which carry no
        // credentials) are answered before anything can refuse them.
        .layer(CorsLayer::new(cors)))
}

async fn list() -> ([(&'static str, &'static str); 1], Json<Value>) {
    ([("x-request-id", "42")], Json(json!(["write the docs"])))
}

async fn replace(Json(todos): Json<Value>) -> Json<Value> {
    Json(todos)
}

async fn clear() -> Json<Value> {
    Json(json!([]))
}

#[tokio::main]
async fn main() -> ExitCode {
    let app = match app() {
        Ok(app) => app,
        Err(errors) => {
            eprintln!("{errors}");
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
    println!("http://localhost:9000/api/todos, readable by pages of {APP_ORIGIN}");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
