//! The tower middleware around an axum application.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::{Cors, CorsHandle};
use tower::ServiceExt;

fn cors() -> Cors {
    Cors::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .build()
        .unwrap()
}

fn app(calls: Arc<AtomicUsize>, layer: CorsLayer) -> Router {
    let counted = move |status: StatusCode| {
        let calls = calls.clone();
        move || {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                status
            }
        }
    };
    Router::new()
        .route("/ok", any(counted(StatusCode::OK)))
        .route("/fail", any(counted(StatusCode::INTERNAL_SERVER_ERROR)))
        .fallback(counted(StatusCode::NOT_FOUND))
        .layer(layer)
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

const ORIGIN: (&str, &str) = ("origin", "http://localhost:8000");

#[tokio::test]
async fn error_responses_carry_cors_headers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(calls.clone(), CorsLayer::new(cors()));
    for (uri, status) in [
        ("/ok", StatusCode::OK),
        ("/missing", StatusCode::NOT_FOUND),
        ("/fail", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let resp = app
            .clone()
            .oneshot(request("GET", uri, &[ORIGIN]))
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{uri}");
        assert_eq!(
            resp.headers()["access-control-allow-origin"],
            "http://localhost:8000",
            "{uri}"
        );
        assert_eq!(resp.headers()["vary"], "Origin", "{uri}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn preflights_never_reach_the_application() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(calls.clone(), CorsLayer::new(cors()));
    let cases = [
        (
            vec![ORIGIN, ("access-control-request-method", "PUT")],
            StatusCode::NO_CONTENT,
        ),
        (
            vec![ORIGIN, ("access-control-request-method", "DELETE")],
            StatusCode::NO_CONTENT,
        ),
        (
            vec![
                ("origin", "http://evil.test"),
                ("access-control-request-method", "PUT"),
            ],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (headers, status) in cases {
        for uri in ["/ok", "/missing"] {
            let resp = app
                .clone()
                .oneshot(request("OPTIONS", uri, &headers))
                .await
                .unwrap();
            assert_eq!(resp.status(), status, "{uri} {headers:?}");
        }
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a preflight reached the application"
    );
}

#[tokio::test]
async fn other_options_requests_reach_the_application() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(calls.clone(), CorsLayer::new(cors()));
    for headers in [
        vec![],
        vec![ORIGIN],
        vec![("access-control-request-method", "PUT")],
    ] {
        let resp = app
            .clone()
            .oneshot(request("OPTIONS", "/ok", &headers))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{headers:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_reloadable_layer_follows_its_handle() {
    let handle = CorsHandle::new(cors());
    let app: Router = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(CorsLayer::reloadable(handle.clone()));
    let other = ("origin", "https://other.example");
    let acao =
        |r: &axum::response::Response| r.headers().get("access-control-allow-origin").cloned();

    let r = app
        .clone()
        .oneshot(request("GET", "/", &[other]))
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
    handle.store(
        Cors::builder()
            .allow_origins(["https://other.example"])
            .build()
            .unwrap(),
    );
    let r = app
        .clone()
        .oneshot(request("GET", "/", &[other]))
        .await
        .unwrap();
    assert_eq!(acao(&r).unwrap(), "https://other.example");
    let r = app
        .clone()
        .oneshot(request("GET", "/", &[ORIGIN]))
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
}

/// While one task swaps between two policies, every response matches one policy whole: the
/// origin of A never comes with B's exposed header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_are_atomic_under_load() {
    let a = Cors::builder()
        .allow_origins(["https://a.example"])
        .expose_headers(["x-from-a"])
        .build()
        .unwrap();
    let b = Cors::builder()
        .allow_origins(["https://a.example", "https://b.example"])
        .expose_headers(["x-from-b"])
        .build()
        .unwrap();
    let handle = CorsHandle::new(a.clone());
    let app: Router = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(CorsLayer::reloadable(handle.clone()));
    let swapper = {
        let handle = handle.clone();
        tokio::spawn(async move {
            for i in 0..2_000 {
                handle.store(if i % 2 == 0 { b.clone() } else { a.clone() });
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = [0usize; 2];
    for _ in 0..4_000 {
        let r = app
            .clone()
            .oneshot(request("GET", "/", &[("origin", "https://a.example")]))
            .await
            .unwrap();
        let expose = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        match expose.as_str() {
            "x-from-a" => seen[0] += 1,
            "x-from-b" => seen[1] += 1,
            other => panic!("mixed policy: {other}"),
        }
    }
    swapper.await.unwrap();
    assert_eq!(seen[0] + seen[1], 4_000);
}
