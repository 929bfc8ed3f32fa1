//! `corsair check` answers for Chromium, Firefox and Safari unless `--browser` narrows it: one
//! verdict per engine, and a line where they differ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use common::{corsair, serve, stdout};
use serde_json::Value;

/// Preflights fail (404, no CORS headers); requests are allowed for any origin.
fn api() -> Router {
    Router::new().route(
        "/api",
        any(|method: Method| async move {
            if method == Method::OPTIONS {
                StatusCode::NOT_FOUND.into_response()
            } else {
                ([("access-control-allow-origin", "*")], "ok").into_response()
            }
        }),
    )
}

/// Two `Accept` values of 70 bytes: 142 bytes combined, over the 128-byte safelist limit for
/// Chromium, which checks the combined value and preflights; Firefox checks each value on its
/// own and sends none (seen in both by the differential suite's `safelist` family).
#[tokio::test]
async fn engines_that_differ_are_named_on_one_line() {
    let base = serve(api()).await;
    let url = format!("{base}/api");
    let accept = format!("Accept: {}", "a".repeat(70));
    let args = [
        "check",
        &url,
        "--origin",
        "http://localhost:8000",
        "-H",
        &accept,
        "-H",
        &accept,
    ];
    let out = corsair(&args).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("Engines differ: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("allowed in Firefox"), "{line}");
    assert!(
        line.contains("blocked in Chromium")
            && line.contains("Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Origin' header is present on the requested resource."),
        "{line}"
    );
    assert!(line.contains("Safari"), "{line}");
    assert!(
        text.starts_with("BLOCKED  GET"),
        "Chromium's report: {text}"
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v: Value = serde_json::from_str(&stdout(&corsair(&json_args).await)).unwrap();
    assert_eq!(v["allowed"], false);
    let engines = v["engines"].as_array().unwrap();
    let names: Vec<&str> = engines
        .iter()
        .map(|e| e["browser"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chromium", "firefox", "safari"]);
    assert_eq!(engines[0]["allowed"], false);
    assert_eq!(engines[1]["allowed"], true);
    assert_eq!(engines[1]["status"], 200);

    // --browser narrows it to one engine, as before: Firefox allows it.
    let mut firefox = args.to_vec();
    firefox.extend(["--browser", "firefox"]);
    let out = corsair(&firefox).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        !text.contains("Engines differ") && !text.contains("Same verdict"),
        "{text}"
    );
}

/// The engines send the same GET: the server sees it once, not once per engine.
#[tokio::test]
async fn engines_that_agree_get_one_line_saying_so() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new().route(
        "/api",
        any(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { ([("access-control-allow-origin", "*")], "ok") }
        }),
    );
    let base = serve(app).await;
    let url = format!("{base}/api");
    let out = corsair(&[
        "check",
        &url,
        "--origin",
        "http://localhost:8000",
        "-X",
        "DELETE",
    ])
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // A preflight (answered without Allow-Methods: blocked in every engine), sent once.
    assert_eq!(hits.swap(0, Ordering::SeqCst), 1, "{text}");
    let out = corsair(&["check", &url, "--origin", "http://localhost:8000"]).await;
    let text = stdout(&out);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        text.lines().nth(1),
        Some("Same verdict in Chromium, Firefox and Safari."),
        "{text}"
    );
}
