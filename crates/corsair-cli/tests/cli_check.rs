//! `corsair check` as a user runs it: the binary, against servers started here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;
use common::{corsair, serve, stderr, stdout};

use std::net::SocketAddr;

use axum::routing::any;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::Policy;

/// An API on 127.0.0.1 allowing `http://localhost:8000` with PUT and `x-custom`.
async fn api() -> String {
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT", "PATCH"])
        .allow_headers(["x-custom"])
        .expose_headers(["x-request-id"])
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api",
            any(|| async { ([("x-request-id", "7")], "{\"msg\":\"success\"}") }),
        )
        .layer(CorsLayer::new(cors));
    serve(app).await
}

#[tokio::test]
async fn allowed_request_exits_zero_and_lists_readable_headers() {
    let base = api().await;
    let url = format!("{base}/api");
    let o = corsair(&["check", &url, "--origin", "http://localhost:8000"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("ALLOWED  GET {url} from http://localhost:8000")),
        "{out}"
    );
    assert!(out.contains("The script can read the response (status 200) and these headers: content-length, content-type, x-request-id."), "{out}");
}

#[tokio::test]
async fn blocked_request_prints_chromiums_message_the_culprit_and_the_fix() {
    let base = api().await;
    let url = format!("{base}/api");
    let o = corsair(&[
        "check",
        &url,
        "--origin",
        "http://localhost:8000",
        "-X",
        "DELETE",
        "-H",
        "X-Custom: 1",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    let message = format!(
        "Access to fetch at '{url}' from origin 'http://localhost:8000' has been blocked by CORS policy: \
         Method DELETE is not allowed by Access-Control-Allow-Methods in preflight response."
    );
    assert!(out.contains(&format!("Console:\n  {message}\n")), "{out}");
    assert!(
        out.contains("<   access-control-allow-methods: PUT, PATCH   <-- here"),
        "{out}"
    );
    assert!(
        out.contains("  Access-Control-Allow-Methods: DELETE\n"),
        "{out}"
    );
    assert!(
        out.contains("  Access-Control-Allow-Headers: x-custom\n"),
        "{out}"
    );
    assert!(
        out.contains("a preflight is needed because DELETE is not GET, HEAD or POST"),
        "{out}"
    );
}

#[tokio::test]
async fn disallowed_origin_is_blocked_with_the_missing_header_marked() {
    let base = api().await;
    let url = format!("{base}/api");
    let o = corsair(&["check", &url, "--origin", "https://evil.example"]).await;
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header is present on the requested resource.\n"), "{out}");
    assert!(
        out.contains("(access-control-allow-origin is missing)   <-- here"),
        "{out}"
    );
    assert!(
        out.contains("  Access-Control-Allow-Origin: https://evil.example\n"),
        "{out}"
    );
}

#[tokio::test]
async fn lowercase_patch_is_sent_as_written() {
    let base = api().await;
    let url = format!("{base}/api");
    let o = corsair(&[
        "check",
        &url,
        "--origin",
        "http://localhost:8000",
        "-X",
        "patch",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("Method patch is not allowed by Access-Control-Allow-Methods"),
        "{out}"
    );
    assert!(
        out.contains("write \"PATCH\" if the server lists that"),
        "{out}"
    );
}

#[tokio::test]
async fn json_has_the_documented_fields() {
    let base = api().await;
    let url = format!("{base}/api");
    let o = corsair(&[
        "check",
        &url,
        "--origin",
        "http://localhost:8000",
        "-X",
        "PUT",
        "-H",
        "X-Other: 1",
        "--json",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["preflight"], true);
    assert_eq!(v["error"], "header-disallowed-by-preflight-response");
    assert_eq!(
        v["message"],
        format!(
            "Access to fetch at '{url}' from origin 'http://localhost:8000' has been blocked by CORS policy: \
             Request header field x-other is not allowed by Access-Control-Allow-Headers in preflight response."
        )
    );
    let exchanges = v["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0]["request"]["method"], "OPTIONS");
    assert_eq!(exchanges[0]["response"]["status"], 204);
    let sent: Vec<(String, String)> =
        serde_json::from_value(exchanges[0]["request"]["headers"].clone()).unwrap();
    assert!(
        sent.contains(&("Access-Control-Request-Headers".into(), "x-other".into())),
        "{sent:?}"
    );

    let o = corsair(&["check", &url, "--origin", "http://localhost:8000", "--json"]).await;
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["allowed"].clone(), v["preflight"].clone()),
        (true.into(), false.into())
    );
    assert!(v["message"].is_null() && v["error"].is_null());
    assert_eq!(v["exchanges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn network_failures_exit_two_with_one_line() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = corsair(&[
        "check",
        &format!("http://127.0.0.1:{port}/x"),
        "--origin",
        "http://localhost:8000",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: connection refused: http://127.0.0.1:{port}/x (is the server running?)\n")
    );

    let o = corsair(&[
        "check",
        "http://name.invalid/x",
        "--origin",
        "http://localhost:8000",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: name not resolved: http://name.invalid/x\n"
    );

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let o = corsair(&[
        "check",
        &format!("http://127.0.0.1:{port}/x"),
        "--origin",
        "http://localhost:8000",
        "--timeout",
        "0.3",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: timed out after 0.3s: http://127.0.0.1:{port}/x\n")
    );
}

/// Each usage error, against a live server that would allow the request were the argument not
/// refused: exit status 2, the error's own message as the first line of stderr, nothing on
/// stdout, and no request reaches the server.
#[tokio::test]
async fn usage_errors_exit_two() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let hits = Arc::new(AtomicUsize::new(0));
    let counted = {
        let hits = hits.clone();
        any(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "{\"msg\":\"success\"}" }
        })
    };
    let cors = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["*"])
        .allow_headers(["*"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", counted)
        .layer(CorsLayer::new(cors));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://127.0.0.1:{port}/api");
    let ftp = format!("ftp://127.0.0.1:{port}/api");
    const O: &str = "http://localhost:8000";

    // The server is live and allows the plain request.
    let o = corsair(&["check", &url, "--origin", O]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(hits.swap(0, Ordering::SeqCst), 1);

    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--credentials", "always"],
            "error: invalid value 'always' for '--credentials <CREDENTIALS>': \"always\" is not a credentials mode: use omit, same-origin or include".to_owned(),
        ),
        (
            vec!["--browser", "edge"],
            "error: invalid value 'edge' for '--browser <BROWSER>': \"edge\" is not a browser: use chromium, firefox or safari".to_owned(),
        ),
        (
            vec!["-H", "no colon"],
            "error: --header \"no colon\" is not 'Name: value'".to_owned(),
        ),
        (
            vec!["-H", "bad name: 1"],
            "error: \"bad name\" is not a valid header name".to_owned(),
        ),
        (
            vec!["-X", "TRACE"],
            "error: \"TRACE\" is a forbidden method".to_owned(),
        ),
        (
            vec!["-X", "P UT"],
            "error: \"P UT\" is not a valid HTTP method".to_owned(),
        ),
        (
            vec!["--timeout", "0"],
            "error: invalid value '0' for '--timeout <TIMEOUT>': \"0\" is not a positive number of seconds, such as 10 or 0.5".to_owned(),
        ),
        (
            vec!["--timeout", "nan"],
            "error: invalid value 'nan' for '--timeout <TIMEOUT>': \"nan\" is not a positive number of seconds, such as 10 or 0.5".to_owned(),
        ),
        (
            vec!["--cacert", "/nonexistent/corsair-ca.pem"],
            "error: cannot read CA file /nonexistent/corsair-ca.pem: I/O error: No such file or directory (os error 2)".to_owned(),
        ),
    ];
    let mut runs: Vec<(Vec<String>, String)> = cases
        .into_iter()
        .map(|(extra, message)| {
            let mut args: Vec<String> = ["check", url.as_str(), "--origin", O]
                .map(str::to_owned)
                .to_vec();
            args.extend(extra.into_iter().map(str::to_owned));
            (args, message)
        })
        .collect();
    runs.push((
        ["check", &ftp, "--origin", O].map(str::to_owned).to_vec(),
        format!("error: fetch() of {ftp} is not a CORS request: only http and https are supported"),
    ));
    runs.push((
        ["check", &url, "--origin", "not an origin"]
            .map(str::to_owned)
            .to_vec(),
        "error: invalid page origin \"not an origin\": relative URL without a base".to_owned(),
    ));
    runs.push((
        ["check", &url].map(str::to_owned).to_vec(),
        "error: the following required arguments were not provided:".to_owned(),
    ));
    for (args, message) in runs {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = corsair(&argv).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).lines().next(),
            Some(message.as_str()),
            "{args:?}"
        );
        assert_eq!(stdout(&o), "", "{args:?}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{args:?} reached the server"
        );
    }

    // With --json, a usage error is also one JSON object on stdout.
    let o = corsair(&["check", &url, "--origin", O, "-X", "TRACE", "--json"]).await;
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "version": 1,
            "allowed": false,
            "error": "usage-or-network",
            "message": "\"TRACE\" is a forbidden method",
        })
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_broken_redirect_is_a_network_error_not_a_cors_error() {
    let app = Router::new().route(
        "/r",
        any(|| async {
            (
                axum::http::StatusCode::FOUND,
                [
                    ("access-control-allow-origin", "*"),
                    ("location", "ftp://elsewhere.example/"),
                ],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{}/r",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let o = corsair(&["check", &url, "--origin", "http://localhost:8000", "--json"]).await;
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"], "network");
    assert_eq!(
        v["message"],
        "TypeError: Failed to fetch (redirect to a non-HTTP URL: ftp://elsewhere.example/)"
    );
    assert_eq!(v["culprit"], "location");
}
