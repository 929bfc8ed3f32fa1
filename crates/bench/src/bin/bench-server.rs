//! An axum hello-world for the end-to-end load benchmark, with no CORS, with corsair or with
//! tower-http's `CorsLayer` (equivalent policies), or with corsair's headers added as fixed values
//! (`static-headers`: the cost of the bigger response alone):
//! `bench-server none|static-headers|corsair|tower-http PORT`.
//! Binds 127.0.0.1 only.

use std::process::ExitCode;

use axum::http::HeaderValue;
use axum::{routing::get, Router};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(port)) = (args.next(), args.next().and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("usage: bench-server none|static-headers|corsair|tower-http PORT");
        return ExitCode::from(2);
    };
    let scenario = corsair_bench::scenarios()
        .into_iter()
        .find(|s| s.name == "allowed_simple");
    let Some(scenario) = scenario else {
        return ExitCode::FAILURE;
    };
    let app: Router = Router::new().route("/", get(|| async { "Hello, World!" }));
    let app = match mode.as_str() {
        "none" => app,
        "corsair" => match corsair_bench::corsair_policy(&scenario) {
            Ok(cors) => app.layer(corsair::tower::CorsLayer::new(cors)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        "tower-http" => app.layer(corsair_bench::tower_http_layer(&scenario)),
        // The same four headers corsair adds, fixed: the cost of the bigger response alone.
        "static-headers" => app.layer(axum::middleware::map_response(
            |mut r: axum::response::Response| async move {
                let h = r.headers_mut();
                h.insert(
                    "access-control-allow-origin",
                    HeaderValue::from_static("https://app.example.com"),
                );
                h.insert(
                    "access-control-allow-credentials",
                    HeaderValue::from_static("true"),
                );
                h.insert(
                    "access-control-expose-headers",
                    HeaderValue::from_static("x-request-id"),
                );
                h.insert("vary", HeaderValue::from_static("Origin"));
                r
            },
        )),
        other => {
            eprintln!("unknown mode {other:?}: use none, static-headers, corsair or tower-http");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
