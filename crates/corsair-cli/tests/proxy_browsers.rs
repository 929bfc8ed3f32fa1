//! The foundation's real-browser matrix rerun through `corsair proxy`, in front of an upstream
//! that knows nothing of CORS, with the matrix's policies as a policy file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use corsair_testkit::matrix::{observed_upstream, policy_file, run_matrix, Observed, Place};
use corsair_testkit::{Headless, PageServer};

async fn through_proxy(browser: Headless) {
    let pages = PageServer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let up = format!("http://{}", listener.local_addr().unwrap());
    // What reaches the upstream is recorded there; what reaches the proxy, from its access log.
    let observed = Observed::new();
    let app = observed_upstream(&observed);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!(
        "corsair-proxy-matrix-{}-{}",
        std::process::id(),
        browser.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(&file, policy_file(pages.port())).unwrap();
    let lint = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .arg("lint")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    let mut proxy = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--log",
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(proxy.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let addr = first
        .strip_prefix("corsair proxy listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let log = observed.clone();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let (Some(method), Some(path)) = (entry["method"].as_str(), entry["path"].as_str()) {
                log.push(Place::Front, method, path);
            }
        }
    });

    let result = run_matrix(&pages, browser, &addr, &observed, "through corsair proxy").await;
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(summary) => println!("{summary}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_through_the_proxy() {
    through_proxy(Headless::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_through_the_proxy() {
    through_proxy(Headless::Firefox).await;
}
