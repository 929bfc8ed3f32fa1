//! Every resource bound of the library, at the bound and one step past it (docs/LIMITS.md lists
//! them all). Expected values are written out here, never computed by corsair.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[allow(dead_code)] // each test file uses part of the helpers
mod common;
use common::headers;

use std::time::Duration;

use corsair::browser::{effective_max_age, Blocked, Browser, Credentials, Fetch, RequestInit};
use corsair::server::{
    Action, Outcome, Rejection, MAX_REQUEST_HEADERS_ITEMS, MAX_REQUEST_HEADERS_LEN,
};
use corsair::{ErrorCode, Policy};
use http::{HeaderMap, Method, StatusCode};

const APP: &str = "https://app.example.com";

/// A preflight from `APP` asking for `GET` and these `Access-Control-Request-Headers` lines.
fn preflight(cors: &Policy, lines: &[&str]) -> (Action, Outcome, HeaderMap) {
    let mut pairs = vec![("origin", APP), ("access-control-request-method", "GET")];
    for l in lines {
        pairs.push(("access-control-request-headers", l));
    }
    let d = cors.decide(&Method::OPTIONS, &headers(&pairs));
    let (action, outcome) = (d.action(), d.outcome());
    let mut out = HeaderMap::new();
    d.into_parts().1.apply(&mut out);
    (action, outcome, out)
}

fn any_header() -> Policy {
    Policy::builder()
        .allow_origins([APP])
        .allow_headers(["*"])
        .build()
        .unwrap()
}

/// Refused unread: the reason is `HeadersTooLong` and nothing of the request's list is in the
/// answer. The origin is allowed, so the preflight is still answered with the policy's status
/// and its own lists (`listed`, or no `Access-Control-Allow-Headers` for "any header"), and the
/// browser fails it for the headers it asked for.
fn refused(action: Action, outcome: Outcome, out: &HeaderMap, listed: Option<&str>) {
    assert_eq!(outcome, Outcome::Rejected(Rejection::HeadersTooLong));
    assert_eq!(action, Action::Respond(StatusCode::NO_CONTENT));
    assert_eq!(out["access-control-allow-origin"], APP);
    assert_eq!(
        out.get("access-control-allow-headers")
            .map(|v| v.to_str().unwrap()),
        listed,
        "{out:?}"
    );
}

#[test]
fn the_documented_request_headers_bounds_are_4096_bytes_and_64_elements() {
    // The numbers docs/LIMITS.md and the README state.
    assert_eq!(MAX_REQUEST_HEADERS_LEN, 4096);
    assert_eq!(MAX_REQUEST_HEADERS_ITEMS, 64);
}

#[test]
fn request_headers_of_exactly_4096_bytes_are_read_and_4097_refused() {
    let cors = any_header();
    // One name of 4096 bytes: at the bound, reflected whole.
    let name = "x".repeat(4096);
    let (action, outcome, out) = preflight(&cors, &[&name]);
    assert_eq!(outcome, Outcome::Allowed);
    assert_eq!(action, Action::Respond(StatusCode::NO_CONTENT));
    assert_eq!(out["access-control-allow-headers"], name.as_str());
    // One byte more: refused unread.
    let name = "x".repeat(4097);
    let (action, outcome, out) = preflight(&cors, &[&name]);
    refused(action, outcome, &out, None);
}

#[test]
fn the_length_bound_is_on_all_lines_together() {
    let cors = any_header();
    let (a, b) = ("a".repeat(2048), "b".repeat(2048));
    let (_, outcome, out) = preflight(&cors, &[&a, &b]);
    assert_eq!(outcome, Outcome::Allowed);
    assert_eq!(
        out["access-control-allow-headers"],
        format!("{a},{b}").as_str()
    );
    let b = "b".repeat(2049);
    let (action, outcome, out) = preflight(&cors, &[&a, &b]);
    refused(action, outcome, &out, None);
}

#[test]
fn request_headers_of_64_elements_are_read_and_65_refused() {
    let cors = any_header();
    let names: Vec<String> = (0..65).map(|i| format!("x-h{i}")).collect();
    let at = names[..64].join(",");
    let (_, outcome, out) = preflight(&cors, &[&at]);
    assert_eq!(outcome, Outcome::Allowed);
    assert_eq!(out["access-control-allow-headers"], at.as_str());
    let across = names.join(",");
    let (action, outcome, out) = preflight(&cors, &[&across]);
    refused(action, outcome, &out, None);
}

#[test]
fn empty_elements_count_toward_the_64() {
    let cors = any_header();
    // 63 commas are 64 empty elements: nothing is requested, the preflight passes.
    let (_, outcome, out) = preflight(&cors, &[&",".repeat(63)]);
    assert_eq!(outcome, Outcome::Allowed);
    assert!(out.get("access-control-allow-headers").is_none(), "{out:?}");
    // 64 commas are 65 elements.
    let (action, outcome, out) = preflight(&cors, &[&",".repeat(64)]);
    refused(action, outcome, &out, None);
}

#[test]
fn the_element_bound_is_on_all_lines_together() {
    let cors = any_header();
    let first: Vec<String> = (0..32).map(|i| format!("x-a{i}")).collect();
    let second: Vec<String> = (0..33).map(|i| format!("x-b{i}")).collect();
    let (first, second) = (first.join(","), second.join(","));
    let (_, outcome, _) = preflight(&cors, &[&first, &first]);
    assert_eq!(outcome, Outcome::Allowed);
    let (action, outcome, out) = preflight(&cors, &[&first, &second]);
    refused(action, outcome, &out, None);
}

#[test]
fn the_bounds_hold_with_a_listed_header_policy_too() {
    // With a configured list the answer does not reflect the request, but the read is bounded
    // the same way and the reason is the same.
    let cors = Policy::builder()
        .allow_origins([APP])
        .allow_headers(["x-h0"])
        .build()
        .unwrap();
    let (_, outcome, out) = preflight(&cors, &[&vec!["x-h0"; 64].join(",")]);
    assert_eq!(outcome, Outcome::Allowed);
    assert_eq!(out["access-control-allow-headers"], "x-h0");
    let (action, outcome, out) = preflight(&cors, &[&vec!["x-h0"; 65].join(",")]);
    refused(action, outcome, &out, Some("x-h0"));
}

fn codes(b: corsair::PolicyBuilder) -> Vec<ErrorCode> {
    match b.build() {
        Ok(_) => vec![],
        Err(e) => e.codes(),
    }
}

#[test]
fn max_age_of_86400_seconds_is_accepted_and_86401_refused() {
    let base = || Policy::builder().allow_origins([APP]);
    let cors = base().max_age(Duration::from_secs(86_400)).build().unwrap();
    let (_, _, out) = preflight(&cors, &[]);
    assert_eq!(out["access-control-max-age"], "86400");
    assert_eq!(
        codes(base().max_age(Duration::from_secs(86_401))),
        vec![ErrorCode::MaxAgeTooLarge]
    );
}

#[test]
fn preflight_status_must_be_200_to_299() {
    let base = || Policy::builder().allow_origins([APP]);
    for ok in [200, 299] {
        let cors = base().preflight_status(ok).build().unwrap();
        let (action, _, _) = preflight(&cors, &[]);
        assert_eq!(action, Action::Respond(StatusCode::from_u16(ok).unwrap()));
    }
    for bad in [199, 300] {
        assert_eq!(
            codes(base().preflight_status(bad)),
            vec![ErrorCode::PreflightStatusInvalid],
            "{bad}"
        );
    }
}

#[test]
fn origin_ports_up_to_65535_match_and_beyond_are_malformed() {
    let cors = Policy::builder()
        .allow_origins(["http://localhost:*"])
        .build()
        .unwrap();
    let get = |origin: &str| {
        cors.decide(&Method::GET, &headers(&[("origin", origin)]))
            .outcome()
    };
    assert_eq!(get("http://localhost:65535"), Outcome::Allowed);
    // The same bound for an allowed origin written out.
    let port_max = Policy::builder()
        .allow_origins(["http://localhost:65535"])
        .build();
    assert!(port_max.is_ok(), "{port_max:?}");
    assert_eq!(
        get("http://localhost:65536"),
        Outcome::Rejected(Rejection::OriginMalformed)
    );
    assert_eq!(
        get("http://localhost:655350"),
        Outcome::Rejected(Rejection::OriginMalformed)
    );
}

/// Longer than any DNS name (253 bytes): a browser can never send it.
#[test]
fn an_origin_host_longer_than_dns_allows_is_malformed() {
    let cors = Policy::builder()
        .allow_origins(["https://*.example.com"])
        .build()
        .unwrap();
    let get = |origin: &str| {
        cors.decide(&Method::GET, &headers(&[("origin", origin)]))
            .outcome()
    };
    // 253 bytes: 61 labels of "abc." then "example.com" (244 + 11 - 2 = 253).
    let at = format!("https://{}example.com", "abc.".repeat(60) + "a.");
    let host_len = at.len() - "https://".len();
    assert_eq!(host_len, 253);
    assert_eq!(get(&at), Outcome::Allowed);
    let across = format!("https://{}example.com", "abc.".repeat(60) + "ab.");
    assert_eq!(get(&across), Outcome::Rejected(Rejection::OriginMalformed));
    // A hostile one: 128 KB of labels, refused unread.
    let hostile = format!("https://{}example.com", "a.".repeat(64 * 1024));
    assert_eq!(get(&hostile), Outcome::Rejected(Rejection::OriginMalformed));
}

#[test]
fn each_browsers_preflight_cache_cap_at_and_past_the_bound() {
    let rows = [
        (Browser::Chromium, "7200", 7200),
        (Browser::Chromium, "7201", 7200),
        (Browser::Firefox, "86400", 86_400),
        (Browser::Firefox, "86401", 86_400),
        (Browser::Safari, "600", 600),
        (Browser::Safari, "601", 600),
    ];
    for (browser, value, want) in rows {
        assert_eq!(
            effective_max_age(browser, Some(value)),
            want,
            "{browser:?} {value}"
        );
    }
}

/// A fetch that is redirected `n` times to the same origin (the API allows the page with `*`),
/// then answered 200.
fn redirected(n: usize) -> Result<corsair::browser::Readable, Blocked> {
    let init = RequestInit {
        method: "GET".into(),
        headers: vec![],
        credentials: Credentials::Omit,
    };
    let mut fetch = Fetch::new(
        Browser::Chromium,
        "http://page.test",
        "http://api.test/0",
        init,
    )
    .unwrap();
    for hop in 0..=n {
        assert!(fetch.request().is_some(), "hop {hop}");
        let location = format!("/{}", hop + 1);
        let h = if hop < n {
            headers(&[
                ("access-control-allow-origin", "*"),
                ("location", &location),
            ])
        } else {
            headers(&[("access-control-allow-origin", "*")])
        };
        let status = if hop < n { 302 } else { 200 };
        if let Some(verdict) = fetch.receive(status, &h) {
            return verdict;
        }
    }
    panic!("no verdict after {n} redirects and a final answer");
}

#[test]
fn the_browser_engine_follows_20_redirects_and_fails_the_21st() {
    assert_eq!(corsair::browser::MAX_REDIRECTS, 20);
    assert!(redirected(20).is_ok(), "{:?}", redirected(20));
    match redirected(21) {
        Err(Blocked::Network(m)) => assert!(m.contains("redirects"), "{m}"),
        other => panic!("the 21st redirect must be a network error: {other:?}"),
    }
}
