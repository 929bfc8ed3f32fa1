//! An API that gets CORS wrong in every way Chromium reports, one path per console message:
//! the server of [`docs/debugging-cors-errors.md`](../../../docs/debugging-cors-errors.md).
//! Every header here is written by hand, as a server without a CORS library (or with a
//! misconfigured one) writes it; the page it expects is `http://localhost:8000`.
//!
//! ```text
//! cargo run --example misconfigured          # then, from another terminal:
//! corsair check http://localhost:9000/actual/missing --origin http://localhost:8000
//! ```
//!
//! Paths under `/actual/` break the answer to the request itself (a `GET`); paths under
//! `/preflight/` break the answer to the preflight (send a `PUT`) and answer the request itself
//! correctly.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use axum::routing::any;
use axum::Router;

/// The page origin the API means to allow.
pub const APP: &str = "http://localhost:8000";

/// A response with `status` and `headers` (repeated names give repeated lines).
fn reply(status: u16, headers: &[(&str, &str)]) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    r.body(Body::from("{\"msg\":\"success\"}"))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A correct answer to a request that passed its preflight (or needed none).
fn ok() -> Response<Body> {
    reply(200, &[("access-control-allow-origin", APP)])
}

/// A correct preflight answer for a `PUT` with `X-Token`.
fn good_preflight() -> Response<Body> {
    reply(
        204,
        &[
            ("access-control-allow-origin", APP),
            ("access-control-allow-methods", "PUT"),
            ("access-control-allow-headers", "x-token"),
        ],
    )
}

/// The actual response is wrong; a preflight, if any, is answered correctly.
fn actual(flawed: fn() -> Response<Body>) -> Router {
    Router::new().fallback(any(move |method: Method| async move {
        if method == Method::OPTIONS {
            good_preflight()
        } else {
            flawed()
        }
    }))
}

/// The preflight's answer is wrong; the request itself is answered correctly.
fn preflight(flawed: fn() -> Response<Body>) -> Router {
    Router::new().fallback(any(move |method: Method| async move {
        if method == Method::OPTIONS {
            flawed()
        } else {
            ok()
        }
    }))
}

/// Every misconfiguration, each at its own path.
pub fn app() -> Router {
    Router::new()
        // The access check on the response itself.
        .nest("/actual/missing", actual(|| reply(200, &[])))
        .nest(
            "/actual/twice",
            // A proxy and the application both add the header.
            actual(|| {
                reply(
                    200,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-origin", APP),
                    ],
                )
            }),
        )
        .nest(
            "/actual/invalid",
            // A configuration template whose variable was never filled in.
            actual(|| reply(200, &[("access-control-allow-origin", "${CORS_ORIGIN}")])),
        )
        .nest(
            "/actual/other",
            actual(|| {
                reply(
                    200,
                    &[("access-control-allow-origin", "http://localhost:3000")],
                )
            }),
        )
        .nest(
            "/actual/wildcard",
            actual(|| reply(200, &[("access-control-allow-origin", "*")])),
        )
        .nest(
            "/actual/no-credentials",
            // Right origin, but no Access-Control-Allow-Credentials for a request with cookies.
            actual(ok),
        )
        .route(
            "/actual/redirect-with-password",
            // A redirect to this same server, with a user name and password in the URL.
            any(|headers: HeaderMap| async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost:9000");
                let location = format!("http://user:secret@{host}/actual/missing");
                reply(
                    302,
                    &[
                        ("access-control-allow-origin", APP),
                        ("location", &location),
                    ],
                )
            }),
        )
        // The same access check on the preflight's answer.
        .nest(
            "/preflight/missing",
            preflight(|| reply(204, &[("access-control-allow-methods", "PUT")])),
        )
        .nest(
            "/preflight/twice",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/invalid",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", "${CORS_ORIGIN}"),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/other",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", "http://localhost:3000"),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/wildcard",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", "*"),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/no-credentials",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
        // What only a preflight can get wrong.
        .nest(
            "/preflight/status",
            // The framework refuses OPTIONS (no route for it); a CORS layer adds its header.
            preflight(|| reply(405, &[("access-control-allow-origin", APP)])),
        )
        .nest(
            "/preflight/redirect",
            // A trailing-slash redirect, sent to the preflight too.
            preflight(|| {
                reply(
                    301,
                    &[
                        ("access-control-allow-origin", APP),
                        ("location", "/preflight/redirect/"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/bad-methods",
            // Methods separated by spaces: the list separator is a comma.
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "GET POST PUT"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/bad-headers",
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "PUT"),
                        ("access-control-allow-headers", "content-type x-token"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/method",
            // PUT is missing from the list.
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "GET, POST"),
                    ],
                )
            }),
        )
        .nest(
            "/preflight/header",
            // X-Token is missing: no Access-Control-Allow-Headers at all.
            preflight(|| {
                reply(
                    204,
                    &[
                        ("access-control-allow-origin", APP),
                        ("access-control-allow-methods", "PUT"),
                    ],
                )
            }),
        )
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9000));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "A misconfigured API on http://localhost:9000 (paths: see docs/debugging-cors-errors.md)"
    );
    if let Err(e) = axum::serve(listener, app()).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
