//! A WebSocket through `corsair proxy` from headless Chromium: a page on the allowed origin
//! opens it and gets its echo; a page on another origin is refused (403), and its handshake
//! never reaches the upstream. Browsers make no CORS check on WebSockets, so this refusal is
//! the only thing that stops another site's page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use corsair_testkit::{serve_loopback, Headless, ProxyProcess};

/// The page: opens the WebSocket, sends one message, posts what happened to its own origin.
fn page(proxy_port: u16, frame: Option<String>) -> String {
    let frame = frame
        .map(|f| format!("<iframe src=\"{f}\"></iframe>"))
        .unwrap_or_default();
    format!(
        r#"<!doctype html><title>ws</title>{frame}<script>
const report = outcome => fetch('/result', {{ method: 'POST', body: JSON.stringify({{ origin: location.origin, outcome }}) }});
let done = false;
const finish = outcome => {{ if (!done) {{ done = true; report(outcome); }} }};
const ws = new WebSocket('ws://127.0.0.1:{proxy_port}/ws');
ws.onopen = () => ws.send('hello from ' + location.hostname);
ws.onmessage = e => {{ finish('message: ' + e.data); ws.close(); }};
ws.onerror = () => finish('error');
ws.onclose = e => finish('closed ' + e.code);
setTimeout(() => finish('timeout'), 10000);
</script>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_through_the_proxy_from_chromium() {
    // The upstream: echoes text messages, counts handshakes.
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    let upstream = Router::new().route(
        "/ws",
        get(move |ws: WebSocketUpgrade| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(Message::Text(t))) = socket.recv().await {
                        let reply = Message::Text(format!("echo: {}", t.as_str()).into());
                        if socket.send(reply).await.is_err() {
                            break;
                        }
                    }
                })
            }
        }),
    );
    let up_port = serve_loopback(upstream, "websocket upstream")
        .await
        .unwrap();

    // The pages: one server, two origins (http://localhost:P and http://evil.test:P).
    let results: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let page_port = Arc::new(Mutex::new((0u16, 0u16)));
    let pages = {
        let results = results.clone();
        let ports = page_port.clone();
        Router::new()
            .route(
                "/",
                get(move |headers: HeaderMap| {
                    let (own, proxy) = *ports.lock().unwrap();
                    let host = headers["host"].to_str().unwrap().to_owned();
                    // The top page (localhost) embeds the other origin's page.
                    let frame = host
                        .starts_with("localhost:")
                        .then(|| format!("http://evil.test:{own}/"));
                    async move { Html(page(proxy, frame)) }
                }),
            )
            .route(
                "/result",
                post(move |body: String| {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    results.lock().unwrap().insert(
                        v["origin"].as_str().unwrap().to_owned(),
                        v["outcome"].as_str().unwrap().to_owned(),
                    );
                    async {}
                }),
            )
    };
    let port = serve_loopback(pages, "pages").await.unwrap();
    let allowed = format!("http://localhost:{port}");
    let proxy = ProxyProcess::start(
        corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")),
        &[
            "--upstream",
            &format!("http://127.0.0.1:{up_port}"),
            "--allow-origin",
            &allowed,
            "--log",
        ],
    )
    .unwrap();
    *page_port.lock().unwrap() = (port, proxy.port());

    let browser = Headless::Chromium.launch(&format!("{allowed}/")).unwrap();
    let evil = format!("http://evil.test:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while results.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let console = tokio::task::spawn_blocking(move || browser.stop())
        .await
        .unwrap();
    let results = results.lock().unwrap().clone();
    assert_eq!(
        results.get(&allowed).map(String::as_str),
        Some("message: echo: hello from localhost"),
        "{results:?}\n{console}"
    );
    // Refused: the handshake fails (the page sees an error and close code 1006, no details).
    assert_eq!(
        results.get(&evil).map(String::as_str),
        Some("error"),
        "{results:?}\n{console}"
    );
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        1,
        "the refused handshake reached the upstream"
    );
    let log = proxy.stdout.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.contains("\"GET /ws\" 403")
            && l.contains(&format!(
                "origin={evil} cors=rejected reason=origin-not-allowed"
            ))),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"GET /ws\" 101") && l.contains("cors=allowed")),
        "{log:?}"
    );
}
