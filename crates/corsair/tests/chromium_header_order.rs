//! Which unlisted request header the engine names for Chromium, against what Chromium 156 named.
//!
//! `data/chromium_header_order.jsonl` holds 364 `fetch()` calls made by headless Chromium
//! 156.0.8078.108 (Debian) from a window, each with several non-safelisted headers set in a
//! given order and a preflight answer (`Access-Control-Allow-Origin: *`,
//! `Access-Control-Allow-Methods: GET, POST, PUT`, `Access-Control-Allow-Headers:` a chosen
//! subset), and the header Chromium's console message named (`null`: the request passed).
//! "secure" rows ran from a page on `http://localhost` calling `http://127.0.0.1`, "nonsecure"
//! rows from `http://page.test` calling `http://api.test`: Blink adds client-hint headers to its
//! header map only when the URL fetched is potentially trustworthy, which moves the others.
//!
//! Naming the first unlisted header in sorted order, as the engine did before, agrees with
//! Chromium on about half of these rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;
use common::headers;

use corsair::browser::{Blocked, Browser, CorsErrorKind, Fetch, RequestBody, RequestInit};
use serde_json::Value;

const DATA: &str = include_str!("data/chromium_header_order.jsonl");

/// The header the engine names for one recorded fetch, or `None` when it lets it through.
fn engine_names(row: &Value) -> Option<String> {
    let (page, api) = match row["context"].as_str().unwrap() {
        "secure" => ("http://localhost:18000", "http://127.0.0.1:18001/p"),
        "nonsecure" => ("http://page.test", "http://api.test/p"),
        other => panic!("unknown context {other}"),
    };
    let init = RequestInit {
        method: row["method"].as_str().unwrap().into(),
        headers: row["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
        ..Default::default()
    };
    let mut fetch = if row["body"].is_string() {
        Fetch::with_body(Browser::Chromium, page, api, init, &RequestBody::Text).unwrap()
    } else {
        Fetch::new(Browser::Chromium, page, api, init).unwrap()
    };
    assert!(fetch.needs_preflight(), "{row}");
    let preflight = fetch.request().unwrap();
    assert_eq!(preflight.method, "OPTIONS", "{row}");
    let allow = row["allow"].as_str().unwrap();
    let answer = headers(&[
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, POST, PUT"),
        ("access-control-allow-headers", allow),
    ]);
    match fetch.receive(204, &answer) {
        None => None,
        Some(Err(Blocked::Cors(e))) => {
            assert_eq!(
                e.kind(),
                CorsErrorKind::HeaderDisallowedByPreflightResponse,
                "{row}"
            );
            Some(e.value().unwrap().to_owned())
        }
        Some(other) => panic!("{row}: unexpected {other:?}"),
    }
}

#[test]
fn the_engine_names_the_header_chromium_names() {
    let mut rows = 0;
    let mut misses = Vec::new();
    for line in DATA.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let chromium = row["named"].as_str().map(str::to_owned);
        rows += 1;
        let ours = engine_names(&row);
        if ours != chromium {
            misses.push(format!(
                "{} {}: Chromium named {chromium:?}, the engine {ours:?}",
                row["context"], row["id"]
            ));
        }
    }
    assert_eq!(rows, 364);
    assert!(
        misses.is_empty(),
        "{} of {rows}:\n{}",
        misses.len(),
        misses.join("\n")
    );
}
