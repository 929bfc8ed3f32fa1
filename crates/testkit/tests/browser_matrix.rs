//! The foundation's matrix in real browsers: pages on loopback origins fetch from an API whose
//! prefixes sit behind corsair's tower middleware, and every fetch must succeed or be blocked
//! exactly as the policy intends, in Chromium, Firefox ESR and WebKitGTK. A missing browser fails
//! the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::net::SocketAddr;

use corsair_testkit::matrix::{protected_api, run_matrix, Observed};
use corsair_testkit::{Headless, PageServer};

async fn in_process(browser: Headless) {
    let pages = PageServer::start().await.expect("page server");
    let observed = Observed::new();
    let app = protected_api(pages.port(), &observed).expect("matrix policies are valid");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind api");
    let api = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    match run_matrix(
        &pages,
        browser,
        &api,
        &observed,
        "with the tower middleware",
    )
    .await
    {
        Ok(summary) => println!("{summary}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_enforces_the_policies() {
    in_process(Headless::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_enforces_the_policies() {
    in_process(Headless::Firefox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webkit_enforces_the_policies() {
    in_process(Headless::WebKit).await;
}
