//! The explainer's example, in Rust: an API on `localhost:9000` answering `GET /api` with
//! `{"msg":"success"}`, CORS-enabled for pages from `http://localhost:8000`.
//!
//! It is the counterpart of the Express snippet `cors({ origin: 'http://localhost:8000' })`:
//!
//! ```text
//! cargo run --release --example seed
//! curl -i http://localhost:9000/api -H 'Origin: http://localhost:8000'
//! ```

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use axum::{routing::get, Json, Router};
use corsair::{tower::CorsLayer, Policy};
use serde_json::json;

const PAGE_ORIGIN: &str = "http://localhost:8000";
const PORT: u16 = 9000;

#[tokio::main]
async fn main() -> ExitCode {
    let cors = match Policy::builder().allow_origins([PAGE_ORIGIN]).build() {
        Ok(cors) => cors,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/api", get(|| async { Json(json!({ "msg": "success" })) }))
        .layer(CorsLayer::new(cors));

    // Loopback only, both address families, as `localhost` may resolve to either.
    let v4 =
        match tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, PORT))).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on 127.0.0.1:{PORT}: {e}");
                return ExitCode::FAILURE;
            }
        };
    if let Ok(v6) =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, PORT))).await
    {
        let app = app.clone();
        tokio::spawn(async move { axum::serve(v6, app).await });
    }
    println!("Serving GET http://localhost:{PORT}/api -> {{\"msg\":\"success\"}}");
    println!("CORS-enabled for {PAGE_ORIGIN}: scripts on that origin may read the response;");
    println!("any other origin gets no Access-Control-Allow-Origin and the browser blocks it.");
    println!(
        "Try: curl -i http://localhost:{PORT}/api -H 'Origin: {PAGE_ORIGIN}'   (Ctrl-C stops)"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(v4, app).with_graceful_shutdown(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
