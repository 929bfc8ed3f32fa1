//! The foundation's matrix in real browsers, served by actix-web: pages on loopback origins
//! fetch from an actix application whose prefixes get their policies from one `PolicySet`
//! (per-route policies) through corsair's actix middleware, and every fetch must succeed or be
//! blocked exactly as the policy intends, with the server's records checked. A missing browser
//! fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use corsair::actix::Cors;
use corsair::PolicySet;
use corsair_testkit::matrix::{policies, run_matrix, Observed, Place};
use corsair_testkit::{Headless, PageServer};

/// The matrix's application: under every prefix, `/ok` answers 200 with a JSON body and the
/// headers `x-request-id: 42` and `x-secret: s`, `/404` answers 404 and `/500` answers 500;
/// any method (as `corsair_testkit::matrix::upstream`).
async fn endpoint(path: web::Path<(String, String)>) -> HttpResponse {
    let status = match path.1.as_str() {
        "ok" => StatusCode::OK,
        "404" => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header(("x-request-id", HeaderValue::from_static("42")))
        .insert_header(("x-secret", HeaderValue::from_static("s")))
        .body(r#"{"msg":"success"}"#)
}

/// The path and query of a request, as the matrix's records name it.
fn target(req: &actix_web::dev::ServiceRequest) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned())
}

/// Serves the matrix's application behind `policies` on a loopback port, in a thread with its
/// own actix system, recording what reaches the middleware and what passes it.
fn serve(policies: PolicySet, observed: Observed) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let cors = Cors::new(policies);
            let server = HttpServer::new(move || {
                let (app, front) = (observed.clone(), observed.clone());
                App::new()
                    .wrap_fn(move |req, srv| {
                        app.push(Place::App, req.method().as_str(), &target(&req));
                        srv.call(req)
                    })
                    .wrap(cors.clone())
                    .wrap_fn(move |req, srv| {
                        front.push(Place::Front, req.method().as_str(), &target(&req));
                        srv.call(req)
                    })
                    .route("/{prefix}/{kind}", web::route().to(endpoint))
            })
            .workers(2)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind the actix API");
            tx.send(server.addrs()[0]).expect("report the address");
            server.run().await
        })
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the actix server started")
}

async fn served_by_actix(browser: Headless) {
    let pages = PageServer::start().await.expect("page server");
    let observed = Observed::new();
    let mut by_prefix = policies(pages.port()).expect("matrix policies are valid");
    // The top level (which no case reaches) repeats /exact, as the proxy's policy file does.
    let mut set = PolicySet::single(by_prefix[0].1.clone());
    for (prefix, policy) in by_prefix.drain(..) {
        set = set
            .route(prefix, policy)
            .expect("the matrix's routes are valid");
    }
    let addr = serve(set, observed.clone());
    let api = format!("http://127.0.0.1:{}", addr.port());
    match run_matrix(
        &pages,
        browser,
        &api,
        &observed,
        "with the actix-web middleware (per-route policies)",
    )
    .await
    {
        Ok(summary) => println!("{summary}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_enforces_the_policies_through_actix() {
    served_by_actix(Headless::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_enforces_the_policies_through_actix() {
    served_by_actix(Headless::Firefox).await;
}
