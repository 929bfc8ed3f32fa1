//! The tower middleware around an axum application.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::{Policy, PolicyHandle};
use tower::ServiceExt;

#[path = "common/layer.rs"]
mod layer;
#[path = "common/source.rs"]
mod source;

use layer::{
    cors_part, expected, host_policy, policy as cors, Case, CASES, HOST_CASES, ORIGIN, OWN_HEADERS,
    UPGRADES_AS_REQUESTS, UPGRADE_CASES,
};

fn app(calls: Arc<AtomicUsize>, layer: CorsLayer) -> Router {
    let counted = |calls: &Arc<AtomicUsize>, response: fn() -> axum::response::Response| {
        let calls = calls.clone();
        move || {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                response()
            }
        }
    };
    let own = || {
        let mut r = StatusCode::OK.into_response();
        for (k, v) in OWN_HEADERS {
            r.headers_mut().append(k, v.parse().unwrap());
        }
        r
    };
    Router::new()
        .route(
            "/ok",
            any(counted(&calls, || StatusCode::OK.into_response())),
        )
        .route(
            "/fail",
            any(counted(&calls, || {
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            })),
        )
        .route(
            "/error",
            any(counted(&calls, || {
                Err::<(), _>(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            })),
        )
        .route("/own", any(counted(&calls, own)))
        .fallback(counted(&calls, || StatusCode::NOT_FOUND.into_response()))
        .layer(layer)
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

fn part(r: &axum::response::Response) -> (u16, Vec<(String, String)>) {
    cors_part(
        r.status().as_u16(),
        r.headers().iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
    )
}

/// The shared table (tests/common/layer.rs): preflights answered and never passed on, other
/// `OPTIONS` requests passed on, error responses decorated, the application's own CORS headers
/// replaced, `Vary` appended to.
#[tokio::test]
async fn answers_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(calls.clone(), CorsLayer::new(cors()));
    for case in CASES {
        check(&app, &calls, case).await;
    }
}

/// Sends one case's request through `app` and checks its answer and whether it reached the
/// application.
async fn check(app: &Router, calls: &AtomicUsize, case: &Case) {
    let before = calls.load(Ordering::SeqCst);
    let resp = app
        .clone()
        .oneshot(request(case.method, case.path, case.headers))
        .await
        .unwrap();
    assert_eq!(part(&resp), expected(case.status, case.cors), "{case:?}");
    let reached = calls.load(Ordering::SeqCst) > before;
    assert_eq!(reached, case.reaches_app, "{case:?}");
}

/// WebSocket handshakes from disallowed origins refused (403) when asked, by the shared table.
#[tokio::test]
async fn upgrades_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let refusing = app(
        calls.clone(),
        CorsLayer::new(cors()).refuse_upgrades_from_disallowed_origins(),
    );
    for case in UPGRADE_CASES {
        check(&refusing, &calls, case).await;
    }
    let plain = app(calls.clone(), CorsLayer::new(cors()));
    for case in UPGRADES_AS_REQUESTS {
        check(&plain, &calls, case).await;
    }
}

/// A request-aware predicate sees `Host` and the path; responses vary on `Host`.
#[tokio::test]
async fn request_aware_policies_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(calls.clone(), CorsLayer::new(host_policy()));
    for case in HOST_CASES {
        check(&app, &calls, case).await;
    }
}

/// An origin source behind the layer: misses resolved (beside the application for a forwarded
/// request), answers cached, failures refused, by the shared script.
#[cfg(feature = "origin-source")]
#[tokio::test]
async fn origin_sources_as_the_shared_script_says() {
    for (steps, upgrades) in [
        (source::SOURCE_STEPS, false),
        (source::SOURCE_UPGRADE_STEPS, true),
    ] {
        let tenants = source::Tenants::new(source::TENANTS);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut layer = CorsLayer::new(source::source_policy(&tenants));
        if upgrades {
            layer = layer.refuse_upgrades_from_disallowed_origins();
        }
        let app = app(calls.clone(), layer);
        for step in steps {
            tenants.set_down(step.down);
            check(&app, &calls, &step.case).await;
            assert_eq!(tenants.lookups(), step.lookups, "{step:?}");
        }
    }
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

/// While a thread swaps between two policies that disagree in every header (and in the
/// preflight status), every response, simple or preflight, is wholly one policy's answer, and
/// both policies are served. A torn read (the origin check of one policy with the lists of the
/// other) would give an answer that is neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_are_atomic_under_load() {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    let (a, b) = layer::swap_policies();
    let answers = layer::swap_answers();

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
                let (method, headers) = layer::SWAP_REQUESTS[kind];
                let got = part(
                    &app.clone()
                        .oneshot(request(method, "/", headers))
                        .await
                        .unwrap(),
                );
                seen[layer::which_policy(&answers, kind, &got)][kind] += 1;
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
