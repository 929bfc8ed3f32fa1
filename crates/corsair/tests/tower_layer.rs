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

/// The CORS headers and `Vary` of a response, sorted, and its status: what a policy decides.
fn cors_part(r: &axum::response::Response) -> (u16, Vec<(String, String)>) {
    let mut h: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-") || k == &"vary")
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    h.sort();
    (r.status().as_u16(), h)
}

fn expected(status: u16, pairs: &[(&str, &str)]) -> (u16, Vec<(String, String)>) {
    let mut h: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    h.sort();
    (status, h)
}

/// While a thread swaps between two policies that disagree in every header (and in the
/// preflight status), every response, simple or preflight, is wholly one policy's answer, and
/// both policies are served. A torn read (the origin check of one policy with the lists of the
/// other) would give an answer that is neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_are_atomic_under_load() {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    // A: public. B: one origin, credentials, private network, another status. A request from
    // https://a.example is allowed by both, so each answers it with all of its headers.
    let a = Policy::builder()
        .allow_origins(["*"])
        .allow_methods(["PUT"])
        .allow_headers(["x-a"])
        .expose_headers(["x-from-a"])
        .max_age(Duration::from_secs(10))
        .build()
        .unwrap();
    let b = Policy::builder()
        .allow_origins(["https://a.example"])
        .allow_methods(["PATCH"])
        .allow_headers(["x-b"])
        .expose_headers(["x-from-b"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(20))
        .allow_private_network(true)
        .preflight_status(200)
        .build()
        .unwrap();
    let answers = [
        // (policy, simple GET, preflight)
        (
            "A",
            expected(
                200,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-expose-headers", "x-from-a"),
                ],
            ),
            expected(
                204,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", "PUT"),
                    ("access-control-allow-headers", "x-a"),
                    ("access-control-max-age", "10"),
                    (
                        "vary",
                        "Access-Control-Request-Method, Access-Control-Request-Headers",
                    ),
                ],
            ),
        ),
        (
            "B",
            expected(
                200,
                &[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-expose-headers", "x-from-b"),
                    ("vary", "Origin"),
                ],
            ),
            expected(
                200,
                &[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-allow-methods", "PATCH"),
                    ("access-control-allow-headers", "x-b"),
                    ("access-control-max-age", "20"),
                    ("access-control-allow-private-network", "true"),
                    (
                        "vary",
                        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
                    ),
                ],
            ),
        ),
    ];

    let handle = PolicyHandle::new(a.clone());
    let app: Router = Router::new()
        .route("/", get(|| async { "hi" }))
        .layer(CorsLayer::reloadable(handle.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
    // The swapper: a thread of its own, so swaps interleave with requests on both workers.
    let swapper = {
        let (handle, stop) = (handle.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                handle.store(if swaps % 2 == 0 { b.clone() } else { a.clone() });
                swaps += 1;
                if swaps % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            swaps
        })
    };
    // Two clients; each sends at least 2,000 requests, alternating simple and preflight, and
    // goes on (until the deadline) until it has seen both policies answer both kinds.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (app, answers) = (app.clone(), answers.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = [[0usize; 2]; 2]; // [policy][simple, preflight]
            let mut sent = 0usize;
            while sent < 2_000 || seen.iter().flatten().any(|&n| n == 0) {
                assert!(
                    Instant::now() < deadline,
                    "after {sent} requests, not every policy was seen: {seen:?}"
                );
                let kind = sent % 2;
                let req = if kind == 0 {
                    request("GET", "/", &[("origin", "https://a.example")])
                } else {
                    request(
                        "OPTIONS",
                        "/",
                        &[
                            ("origin", "https://a.example"),
                            ("access-control-request-method", "PUT"),
                            ("access-control-request-headers", "x-a"),
                            ("access-control-request-private-network", "true"),
                        ],
                    )
                };
                let got = cors_part(&app.clone().oneshot(req).await.unwrap());
                let which = answers.iter().position(|(_, simple, pre)| {
                    got == if kind == 0 {
                        simple.clone()
                    } else {
                        pre.clone()
                    }
                });
                match which {
                    Some(p) => seen[p][kind] += 1,
                    None => panic!("an answer that is neither policy's: {got:?}"),
                }
                sent += 1;
            }
            seen
        }));
    }
    let mut total = [[0usize; 2]; 2];
    for c in clients {
        let seen = c.await.unwrap();
        for p in 0..2 {
            for k in 0..2 {
                total[p][k] += seen[p][k];
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    println!("{swaps} swaps; answers [A, B] x [simple, preflight]: {total:?}");
    assert!(total.iter().flatten().all(|&n| n > 0), "{total:?}");
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
