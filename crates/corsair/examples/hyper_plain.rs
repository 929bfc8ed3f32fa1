//! Plain hyper (no axum, no tower): corsair's engine called directly from a hyper service.
//!
//! `corsair::server::answer` is the simplest entry point (middleware with WebSocket refusal and
//! origin sources use `corsair::server::ask`, which ends in it): give it the request's method,
//! path and headers, and it says whether to answer now (a preflight) or to pass the
//! request on, and which headers to write on the response either way. This file is a complete
//! CORS adapter in a dozen lines; with tower available, `corsair::tower::CorsLayer` does the
//! same for you.
//!
//! ```text
//! cargo run -p corsair --example hyper_plain
//! curl -i -X OPTIONS http://localhost:9000/api -H 'Origin: http://localhost:8000' -H 'Access-Control-Request-Method: PUT'
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use corsair::server::{answer, Action, Reasons};
use corsair::{ConfigErrors, Policy, PolicySet};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The CORS policies (here one, for every path), validated once at start.
pub fn policies() -> Result<PolicySet, ConfigErrors> {
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .allow_headers(["content-type"])
        .build()?;
    Ok(PolicySet::single(cors))
}

/// The application, unaware of CORS.
async fn application(req: Request<Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/api" => Response::new(Full::new(Bytes::from_static(b"{\"msg\":\"success\"}"))),
        _ => {
            let mut not_found = Response::new(Full::new(Bytes::from_static(b"not found")));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            not_found
        }
    }
}

/// The CORS adapter: ask the engine, then either answer now or call the application, and
/// write the engine's headers on whatever response goes out (errors included, so that the
/// browser shows the page the real error rather than a CORS failure).
pub async fn handle(
    policies: &PolicySet,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (action, cors_headers) = answer(
        policies,
        req.method(),
        req.uri().path(),
        req.headers(),
        // Refusals are `tracing` events at debug level; the reason is worked out only when a
        // subscriber listens.
        Reasons::WhenTraced,
    )
    .into_parts();
    let mut response = match action {
        // A preflight: answered here, the application never sees it.
        Action::Respond(status) => {
            let mut response = Response::new(Full::default());
            *response.status_mut() = status;
            response
        }
        Action::Forward => application(req).await,
    };
    cors_headers.apply(response.headers_mut());
    Ok(response)
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: tokio::net::TcpListener, policies: PolicySet) {
    let policies = Arc::new(policies);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, say: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let policies = policies.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req| {
                let policies = policies.clone();
                async move { handle(&policies, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let policies = match policies() {
        Ok(p) => p,
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
    println!("http://localhost:9000/api, readable by pages of http://localhost:8000");
    serve(listener, policies).await;
    ExitCode::SUCCESS
}
