//! The foundation's matrix in real browsers: pages on loopback origins fetch from an API whose
//! prefixes sit behind corsair's tower middleware, and every fetch must succeed or be blocked
//! exactly as the policy intends. A missing browser fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::net::SocketAddr;
use std::time::Duration;

use corsair_testkit::matrix::{cases, disagreements, protected_api};
use corsair_testkit::{Browser, PageServer};

async fn run_matrix(browser: Browser) {
    let pages = PageServer::start().await.expect("page server");
    let app = protected_api(pages.port()).expect("matrix policies are valid");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind api");
    let api = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (frames, expect) = cases(pages.port(), &api);
    assert!(expect.len() >= 50, "the matrix has {} cases", expect.len());
    let run = pages
        .run(browser, &frames, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wrong = disagreements(&run, &expect);
    println!(
        "{} ({}): {} of {} cases as the policy intends",
        browser.name(),
        browser.version(),
        expect.len() - wrong.len(),
        expect.len()
    );
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_enforces_the_policies() {
    run_matrix(Browser::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_enforces_the_policies() {
    run_matrix(Browser::Firefox).await;
}
