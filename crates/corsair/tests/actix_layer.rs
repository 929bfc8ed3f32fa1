//! The actix-web middleware around an actix application: the tower layer's behaviour tests, from
//! the same tables (tests/common/layer.rs), and what only actix has (errors that an inner
//! middleware returns, answered by actix's dispatcher).
#![cfg(feature = "actix")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/layer.rs"]
mod layer;
#[path = "common/source.rs"]
mod source;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use actix_web::{error, web, App, HttpResponse};
use corsair::actix::Cors;
use corsair::{Policy, PolicyHandle};
use layer::{
    cors_part, expected, host_policy, policy, Case, CASES, HOST_CASES, ORIGIN, OWN_HEADERS,
    UPGRADES_AS_REQUESTS, UPGRADE_CASES,
};

fn counted(
    calls: &Arc<AtomicUsize>,
    response: fn() -> Result<HttpResponse, actix_web::Error>,
) -> actix_web::Route {
    let calls = calls.clone();
    web::to(move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(response())
    })
}

/// The shared application (tests/common/layer.rs) behind `cors`, with one more route:
/// `/denied`, refused by an inner middleware with an `Err` (401) before any handler runs.
async fn service(
    calls: &Arc<AtomicUsize>,
    cors: Cors,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .wrap_fn(|req, srv| {
                let denied = req.path() == "/denied";
                let inner = srv.call(req);
                async move {
                    if denied {
                        Err(error::ErrorUnauthorized("denied"))
                    } else {
                        inner.await
                    }
                }
            })
            .wrap(cors)
            .route("/ok", counted(calls, || Ok(HttpResponse::Ok().finish())))
            .route(
                "/fail",
                counted(calls, || Ok(HttpResponse::InternalServerError().finish())),
            )
            .route(
                "/error",
                counted(calls, || Err(error::ErrorInternalServerError("boom"))),
            )
            .route(
                "/own",
                counted(calls, || {
                    let mut r = HttpResponse::Ok();
                    for header in OWN_HEADERS {
                        r.append_header(header);
                    }
                    Ok(r.finish())
                }),
            )
            .default_service(counted(calls, || Ok(HttpResponse::NotFound().finish()))),
    )
    .await
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> actix_http::Request {
    let mut r = TestRequest::default()
        .method(method.parse().unwrap())
        .uri(uri);
    for &h in headers {
        r = r.append_header(h);
    }
    r.to_request()
}

fn part(status: u16, headers: &actix_web::http::header::HeaderMap) -> (u16, Vec<(String, String)>) {
    cors_part(
        status,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
    )
}

/// The CORS part of the answer to `req`, however actix makes it: from the service's response,
/// or from the error it returned (as actix's dispatcher does).
async fn send<S, B>(app: &S, req: actix_http::Request) -> (u16, Vec<(String, String)>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    match test::try_call_service(app, req).await {
        Ok(r) => part(r.status().as_u16(), r.headers()),
        Err(e) => {
            let r = e.error_response();
            part(r.status().as_u16(), r.headers())
        }
    }
}

/// The shared table: preflights answered and never passed on, other `OPTIONS` requests passed
/// on, error responses (a failed handler's included) decorated, the application's own CORS
/// headers replaced, `Vary` appended to.
#[actix_web::test]
async fn answers_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = service(&calls, Cors::new(policy())).await;
    for case in CASES {
        check(&app, &calls, case).await;
    }
}

/// Sends one case's request through `app` and checks its answer and whether it reached the
/// application.
async fn check<S, B>(app: &S, calls: &AtomicUsize, case: &Case)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let before = calls.load(Ordering::SeqCst);
    let got = send(app, request(case.method, case.path, case.headers)).await;
    assert_eq!(got, expected(case.status, case.cors), "{case:?}");
    let reached = calls.load(Ordering::SeqCst) > before;
    assert_eq!(reached, case.reaches_app, "{case:?}");
}

/// WebSocket handshakes from disallowed origins refused (403) when asked, by the shared table.
#[actix_web::test]
async fn upgrades_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let refusing = service(
        &calls,
        Cors::new(policy()).refuse_upgrades_from_disallowed_origins(),
    )
    .await;
    for case in UPGRADE_CASES {
        check(&refusing, &calls, case).await;
    }
    let plain = service(&calls, Cors::new(policy())).await;
    for case in UPGRADES_AS_REQUESTS {
        check(&plain, &calls, case).await;
    }
}

/// A request-aware predicate sees `Host` and the path; responses vary on `Host`.
#[actix_web::test]
async fn request_aware_policies_as_the_shared_table_says() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = service(&calls, Cors::new(host_policy())).await;
    for case in HOST_CASES {
        check(&app, &calls, case).await;
    }
}

/// An origin source behind the middleware: misses resolved (beside the application for a
/// forwarded request), answers cached, failures refused, by the shared script.
#[cfg(feature = "origin-source")]
#[actix_web::test]
async fn origin_sources_as_the_shared_script_says() {
    for (steps, upgrades) in [
        (source::SOURCE_STEPS, false),
        (source::SOURCE_UPGRADE_STEPS, true),
    ] {
        let tenants = source::Tenants::new(source::TENANTS);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut cors = Cors::new(source::source_policy(&tenants));
        if upgrades {
            cors = cors.refuse_upgrades_from_disallowed_origins();
        }
        let app = service(&calls, cors).await;
        for step in steps {
            tenants.set_down(step.down);
            check(&app, &calls, &step.case).await;
            assert_eq!(tenants.lookups(), step.lookups, "{step:?}");
        }
    }
}

/// An inner middleware's `Err` travels outward as an error (for actix's loggers), and the
/// response actix makes of it carries the CORS headers.
#[actix_web::test]
async fn errors_of_inner_middleware_are_decorated() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = service(&calls, Cors::new(policy())).await;
    let err = test::try_call_service(&app, request("GET", "/denied", &[ORIGIN]))
        .await
        .err()
        .expect("the inner middleware's error comes out as an error");
    assert_eq!(err.to_string(), "denied");
    let allowed = err.error_response();
    assert_eq!(
        part(allowed.status().as_u16(), allowed.headers()),
        expected(
            401,
            &[
                ("access-control-allow-origin", "http://localhost:8000"),
                ("vary", "Origin"),
            ]
        )
    );
    // Making the response twice (actix may) writes the headers once.
    let again = err.error_response();
    assert_eq!(again.headers().get_all("vary").count(), 1);
    assert_eq!(
        send(
            &app,
            request("GET", "/denied", &[("origin", "http://evil.test")])
        )
        .await,
        expected(401, &[("vary", "Origin")])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// The same through a real actix server: its dispatcher renders the error.
#[test]
fn a_real_server_renders_decorated_errors() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(|| {
                App::new()
                    .wrap_fn(|req, srv| {
                        let denied = req.path() == "/denied";
                        let inner = srv.call(req);
                        async move {
                            if denied {
                                Err(error::ErrorUnauthorized("denied"))
                            } else {
                                inner.await
                            }
                        }
                    })
                    .wrap(Cors::new(policy()))
                    .default_service(web::to(HttpResponse::Ok))
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await
        })
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let raw = |path: &str, origin: &str| {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        let head = out.split("\r\n\r\n").next().unwrap().to_owned();
        let mut lines = head.lines();
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        cors_part(
            status,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
        )
    };
    assert_eq!(
        raw("/denied", "http://localhost:8000"),
        expected(
            401,
            &[
                ("access-control-allow-origin", "http://localhost:8000"),
                ("vary", "Origin"),
            ]
        )
    );
    assert_eq!(
        raw("/denied", "http://evil.test"),
        expected(401, &[("vary", "Origin")])
    );
    assert_eq!(
        raw("/ok", "http://localhost:8000"),
        expected(
            200,
            &[
                ("access-control-allow-origin", "http://localhost:8000"),
                ("vary", "Origin"),
            ]
        )
    );
}

#[actix_web::test]
async fn a_reloadable_middleware_follows_its_handle() {
    let handle = PolicyHandle::new(policy());
    let app = test::init_service(
        App::new()
            .wrap(Cors::reloadable(handle.clone()))
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    let other = ("origin", "https://other.example");
    let acao = |r: &ServiceResponse<_>| r.headers().get("access-control-allow-origin").cloned();

    let r = test::call_service(&app, request("GET", "/", &[other])).await;
    assert_eq!(acao(&r), None);
    handle.store(
        Policy::builder()
            .allow_origins(["https://other.example"])
            .build()
            .unwrap(),
    );
    let r = test::call_service(&app, request("GET", "/", &[other])).await;
    assert_eq!(acao(&r).unwrap(), "https://other.example");
    let r = test::call_service(&app, request("GET", "/", &[ORIGIN])).await;
    assert_eq!(acao(&r), None);
}

/// While a thread swaps between two policies that disagree in every header (and in the
/// preflight status), every response, simple or preflight, is wholly one policy's answer, and
/// both policies are served. (actix serves each connection on one thread; the swaps come from
/// another.)
#[actix_web::test]
async fn swaps_are_atomic_under_load() {
    let (a, b) = layer::swap_policies();
    let answers = layer::swap_answers();
    let handle = PolicyHandle::new(a.clone());
    let app = test::init_service(
        App::new()
            .wrap(Cors::reloadable(handle.clone()))
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
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
    // At least 4,000 requests, alternating simple and preflight, and on (until the deadline)
    // until both policies were seen answering both kinds.
    let mut seen = [[0usize; 2]; 2]; // [policy][simple, preflight]
    let mut sent = 0usize;
    while sent < 4_000 || seen.iter().flatten().any(|&n| n == 0) {
        assert!(
            Instant::now() < deadline,
            "after {sent} requests, not every policy was seen: {seen:?}"
        );
        let kind = sent % 2;
        let (method, headers) = layer::SWAP_REQUESTS[kind];
        let got = send(&app, request(method, "/", headers)).await;
        seen[layer::which_policy(&answers, kind, &got)][kind] += 1;
        sent += 1;
        if sent % 16 == 0 {
            // Let the swapper run between requests on this one thread.
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    println!("{swaps} swaps; answers [A, B] x [simple, preflight]: {seen:?}");
}
