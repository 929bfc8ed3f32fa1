//! docs/JSON.md is the contract of the JSON output: its field tables must list exactly the keys
//! real outputs have (check: allowed, blocked, usage error; audit: a finding, a failed target;
//! proxy: an access-log line).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use axum::routing::any;
use axum::Router;
use common::{corsair, raw, serve, stdout, Proxy};
use corsair::tower::CorsLayer;
use corsair::Policy;
use serde_json::Value;

const PAGE: &str = "http://localhost:8000";

/// The field paths of the table under the heading that starts with `section`.
fn documented(section: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/JSON.md"))
        .unwrap();
    let start = doc
        .find(&format!("## {section}"))
        .unwrap_or_else(|| panic!("no section {section:?} in docs/JSON.md"));
    let body = &doc[start + 3..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let fields: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(f, _)| f.to_owned())
        .collect();
    assert!(!fields.is_empty(), "no field table under {section:?}");
    fields
}

/// Every path of a JSON value, as docs/JSON.md writes them. Arrays of `[name, value]` pairs
/// (headers) and of strings are leaves.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let p = format!("{prefix}[]");
            out.remove(prefix);
            out.insert(p.clone());
            for i in items {
                paths(i, &p, out);
            }
        }
        _ => {}
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out
}

/// Asserts that the outputs, together, have exactly the fields `doc` lists (an empty array of
/// objects looks like a leaf: it is the documented `name[]`).
fn assert_documented(doc: &BTreeSet<String>, outputs: &[(&str, &Value)]) {
    let mut seen = BTreeSet::new();
    for (name, v) in outputs {
        let k: BTreeSet<String> = keys(v)
            .into_iter()
            .map(|k| {
                let array = format!("{k}[]");
                if doc.contains(&array) {
                    array
                } else {
                    k
                }
            })
            .collect();
        let undocumented: Vec<&String> = k.difference(doc).collect();
        assert!(
            undocumented.is_empty(),
            "{name}: fields missing from docs/JSON.md: {undocumented:?}"
        );
        seen.extend(k);
    }
    let stale: Vec<&String> = doc.difference(&seen).collect();
    assert!(
        stale.is_empty(),
        "docs/JSON.md lists fields no output has: {stale:?}"
    );
}

#[tokio::test]
async fn check_json_matches_docs_json_md() {
    let cors = Policy::builder()
        .allow_origins([PAGE])
        .expose_headers(["x-request-id"])
        .build()
        .unwrap();
    let base = serve(
        Router::new()
            .route("/api", any(|| async { ([("x-request-id", "1")], "ok") }))
            .layer(CorsLayer::new(cors)),
    )
    .await;
    let url = format!("{base}/api");
    let doc = documented("`corsair check --json`");

    let run = |args: Vec<&'static str>, url: String| async move {
        let mut all = vec!["check".to_owned(), url, "--json".to_owned()];
        all.extend(args.into_iter().map(str::to_owned));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = corsair(&all).await;
        let v: Value = serde_json::from_str(&stdout(&o))
            .unwrap_or_else(|e| panic!("{all:?}: not JSON ({e}): {}", stdout(&o)));
        (o.status.code(), v)
    };
    let (code, allowed) = run(vec!["--origin", PAGE], url.clone()).await;
    assert_eq!(code, Some(0));
    assert_eq!(allowed["version"], 1);
    let (code, blocked) = run(
        vec!["--origin", "null", "-X", "PUT", "-H", "Cookie: a=b"],
        url.clone(),
    )
    .await;
    assert_eq!(code, Some(1), "{blocked}");
    assert_eq!(blocked["version"], 1);
    let (code, error) = run(vec!["--origin", PAGE], "localhost:1/api".to_owned()).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        keys(&error),
        ["allowed", "error", "message", "version"]
            .map(str::to_owned)
            .into(),
        "the error object"
    );

    assert_documented(
        &doc,
        &[
            ("allowed", &allowed),
            ("blocked", &blocked),
            ("error", &error),
        ],
    );
}

#[tokio::test]
async fn audit_json_matches_docs_json_md() {
    // Reflects any origin with cookies, and `*` with cookies when there is none.
    let base = serve(Router::new().route(
        "/api",
        any(|h: HeaderMap| async move {
            let origin = h
                .get("origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("*")
                .to_owned();
            (
                [
                    ("access-control-allow-origin", origin),
                    ("access-control-allow-credentials", "true".to_owned()),
                ],
                "ok",
            )
        }),
    ))
    .await;
    let run = |url: String| async move {
        let o = corsair(&["audit", &url, "--rate", "2000", "--json"]).await;
        let v: Value = serde_json::from_str(&stdout(&o))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)));
        (o.status.code(), v)
    };
    let (code, found) = run(format!("{base}/api")).await;
    assert_eq!(code, Some(1), "{found}");
    // A finding with each engine's verdict (origin-reflection), and one without (missing-vary).
    let f = &found["findings"];
    assert_eq!(f[0]["id"], "origin-reflection", "{found}");
    assert_eq!(f[0]["evidence"]["engines"][0]["readable"], true, "{found}");
    assert_eq!(f[1]["id"], "missing-vary", "{found}");
    assert_eq!(
        f[1]["evidence"]["engines"],
        serde_json::json!([]),
        "{found}"
    );
    let closed = common::closed_port();
    let (code, error) = run(format!("http://127.0.0.1:{closed}/api")).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        keys(&error),
        ["error", "target", "version"].map(str::to_owned).into(),
        "the error object"
    );
    assert_documented(
        &documented("`corsair audit --json`"),
        &[("found", &found), ("error", &error)],
    );
}

#[tokio::test]
async fn proxy_json_log_matches_docs_json_md() {
    let up = serve(Router::new().route("/api", any(|| async { "ok" }))).await;
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &up,
        "--allow-origin",
        PAGE,
        "--log",
        "--log-format",
        "json",
    ]);
    raw(
        &proxy.addr,
        "GET",
        "/api",
        &[("Origin", "http://evil.example")],
    )
    .await;
    let line = proxy.wait_stdout("\"cors\"");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["reason"], "origin-not-allowed");
    assert_eq!(
        keys(&v),
        documented("`corsair proxy --log --log-format json`")
    );
}
