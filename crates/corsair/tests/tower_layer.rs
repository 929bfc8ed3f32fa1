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
use corsair::{Policy, PolicyHandle};
use tower::ServiceExt;

fn cors() -> Policy {
    Policy::builder()
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
    let handle = PolicyHandle::new(cors());
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
        Policy::builder()
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
    let a = Policy::builder()
        .allow_origins(["https://a.example"])
        .expose_headers(["x-from-a"])
        .build()
        .unwrap();
    let b = Policy::builder()
        .allow_origins(["https://a.example", "https://b.example"])
        .expose_headers(["x-from-b"])
        .build()
        .unwrap();
    let handle = PolicyHandle::new(a.clone());
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

/// tonic: its body type works as the layer's response body (a gRPC-web service behind CORS).
#[tokio::test]
async fn works_with_tonic_bodies() {
    use tower::{Layer, ServiceExt};
    let svc = tower::service_fn(|_req: http::Request<tonic::body::Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
    });
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_headers(["content-type", "x-grpc-web", "x-user-agent"])
        .expose_headers(["grpc-status", "grpc-message"])
        .build()
        .unwrap();
    let svc = CorsLayer::new(cors).layer(svc);
    let req = |method: &str, extra: &[(&str, &str)]| {
        let mut b = http::Request::builder()
            .method(method)
            .uri("/pkg.Service/Method")
            .header("origin", "http://localhost:8000");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(tonic::body::Body::empty()).unwrap()
    };
    let pre = svc
        .clone()
        .oneshot(req(
            "OPTIONS",
            &[
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,x-grpc-web"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        pre.headers()["access-control-allow-headers"],
        "content-type, x-grpc-web, x-user-agent"
    );
    let post = svc
        .oneshot(req(
            "POST",
            &[("content-type", "application/grpc-web+proto")],
        ))
        .await
        .unwrap();
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "http://localhost:8000"
    );
    assert_eq!(
        post.headers()["access-control-expose-headers"],
        "grpc-status, grpc-message"
    );
}

/// hyper without axum: the layer served over a real connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_with_bare_hyper() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use tower::Layer;
    let inner = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from("hi"),
        )))
    });
    let svc = CorsLayer::new(cors()).layer(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc),
            );
        }
    });
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let get = |method: &str, extra: &[(&str, &str)]| {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}/"))
            .header("origin", "http://localhost:8000");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        client.request(b.body(http_body_util::Empty::new()).unwrap())
    };
    let r = get("GET", &[]).await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:8000"
    );
    let r = get("OPTIONS", &[("access-control-request-method", "PUT")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-methods"], "PUT");
}
