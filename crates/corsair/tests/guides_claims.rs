//! What the migration guides (docs/migrating-from-*.md) say corsair does differently from
//! tower-http's CorsLayer, actix-cors and Express's cors, each pinned here where no other test
//! states it in those terms. The expectations are written by hand from the guides' text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[allow(dead_code)] // not every helper
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::headers;
use corsair::server::{Action, Outcome};
use corsair::{ErrorCode, Policy, PolicyBuilder};
use http::{HeaderMap, Method, StatusCode};

/// The response headers a decision writes on an empty response, as sorted `name: value` lines.
fn answer(policy: &Policy, method: &str, request: &[(&str, &str)]) -> (Action, Vec<String>) {
    let decision = policy.decide(
        &Method::from_bytes(method.as_bytes()).unwrap(),
        &headers(request),
    );
    let (action, cors) = decision.into_parts();
    let mut response = HeaderMap::new();
    cors.apply(&mut response);
    let mut lines: Vec<String> = response
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
        .collect();
    lines.sort();
    (action, lines)
}

const APP: &str = "https://app.example.com";

/// "Configurations the peers accept and that never work, or work for everyone, are build
/// errors" (every guide's table of refusals).
#[test]
fn silent_peer_configurations_are_build_errors() {
    let b = || Policy::builder();
    let rows: Vec<(PolicyBuilder, ErrorCode)> = vec![
        (
            b().allow_origins(["https://app.example.com/"]),
            ErrorCode::OriginTrailingSlash,
        ),
        (
            b().allow_origins(["https://App.example.com"]),
            ErrorCode::OriginUppercase,
        ),
        (
            b().allow_origins(["https://app.example.com:443"]),
            ErrorCode::OriginDefaultPort,
        ),
        (
            b().allow_origins(["https://app.example.com/api"]),
            ErrorCode::OriginHasPath,
        ),
        (b().allow_origins(["null"]), ErrorCode::NullOrigin),
        (b().allow_origins(["*", APP]), ErrorCode::AnyOriginInList),
        (b(), ErrorCode::NoOrigins),
        (
            b().allow_origins(["*"]).allow_credentials(true),
            ErrorCode::CredentialsWithAnyOrigin,
        ),
        (
            b().allow_origins([APP])
                .expose_headers(["*"])
                .allow_credentials(true),
            ErrorCode::CredentialsWithAnyExposedHeader,
        ),
        (
            b().allow_origin_predicate(|_| true).allow_credentials(true),
            ErrorCode::OriginPredicateTooBroad,
        ),
        (
            b().allow_origins(["http://app.example.com"])
                .allow_credentials(true),
            ErrorCode::InsecureOriginWithCredentials,
        ),
        (
            b().allow_origins(["https://*.github.io"]),
            ErrorCode::PatternOverPublicSuffix,
        ),
        (
            b().allow_origins(["*"]).allow_private_network(true),
            ErrorCode::PrivateNetworkWithAnyOrigin,
        ),
        (
            b().allow_origins([APP])
                .max_age(Duration::from_secs(86_401)),
            ErrorCode::MaxAgeTooLarge,
        ),
        (
            b().allow_origins([APP]).allow_methods(["TRACE"]),
            ErrorCode::MethodForbidden,
        ),
        (
            b().allow_origins([APP]).allow_methods(["CONNECT"]),
            ErrorCode::MethodForbidden,
        ),
        (
            b().allow_origins([APP]).allow_headers(["cookie"]),
            ErrorCode::HeaderForbidden,
        ),
        (
            b().allow_origins([APP]).expose_headers(["set-cookie"]),
            ErrorCode::ExposedHeaderForbidden,
        ),
        (
            b().allow_origins([APP]).preflight_status(400),
            ErrorCode::PreflightStatusInvalid,
        ),
    ];
    for (builder, code) in rows {
        let errors = builder
            .build()
            .err()
            .unwrap_or_else(|| panic!("{code:?}: built"));
        assert_eq!(errors.codes(), [code]);
    }
    // The edges of what is accepted.
    assert!(b()
        .allow_origins([APP])
        .max_age(Duration::from_secs(86_400))
        .build()
        .is_ok());
    assert!(b()
        .allow_origins([APP])
        .preflight_status(200)
        .build()
        .is_ok());
}

/// "An allowed origin is echoed to that origin only, with `Vary: Origin` on every response,
/// where tower-http's `AllowOrigin::exact` and Express's `origin: 'https://…'` send the one
/// value to everyone."
#[test]
fn one_allowed_origin_is_sent_to_that_origin_only() {
    let p = Policy::builder().allow_origins([APP]).build().unwrap();
    let (_, mine) = answer(&p, "GET", &[("origin", APP)]);
    assert_eq!(
        mine,
        [
            format!("access-control-allow-origin: {APP}"),
            "vary: Origin".into()
        ]
    );
    let (_, other) = answer(&p, "GET", &[("origin", "https://other.example")]);
    assert_eq!(other, ["vary: Origin"]);
    let (_, none) = answer(&p, "GET", &[]);
    assert_eq!(none, ["vary: Origin"]);
}

/// "A refused origin gets no `Access-Control-*` header at all: not `-Allow-Credentials`, not
/// `-Expose-Headers`, which the peers send to everyone once configured; its preflight is a
/// 403 without them."
#[test]
fn a_refused_origin_gets_no_cors_header_at_all() {
    let p = Policy::builder()
        .allow_origins([APP])
        .allow_methods(["PUT"])
        .allow_headers(["x-token"])
        .expose_headers(["x-request-id"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
        .build()
        .unwrap();
    let evil = ("origin", "https://evil.example");
    let (action, lines) = answer(&p, "GET", &[evil]);
    assert_eq!(
        (action, lines),
        (Action::Forward, vec!["vary: Origin".to_owned()])
    );
    let (action, lines) = answer(
        &p,
        "OPTIONS",
        &[evil, ("access-control-request-method", "PUT")],
    );
    assert_eq!(action, Action::Respond(StatusCode::FORBIDDEN));
    assert_eq!(
        lines,
        ["vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
    );
}

/// "Only `OPTIONS` with `Origin` and `Access-Control-Request-Method` is a preflight; every
/// other `OPTIONS` request reaches the application", where tower-http and Express answer
/// every `OPTIONS` and actix-cors every `OPTIONS` with a method in
/// `Access-Control-Request-Method` (refusing one without `Origin` with 400).
#[test]
fn only_real_preflights_are_answered() {
    let p = Policy::builder().allow_origins([APP]).build().unwrap();
    let acrm = ("access-control-request-method", "GET");
    for (request, action) in [
        (vec![], Action::Forward),
        (vec![acrm], Action::Forward),
        (vec![("origin", APP)], Action::Forward),
        (
            vec![("origin", APP), acrm],
            Action::Respond(StatusCode::NO_CONTENT),
        ),
    ] {
        assert_eq!(answer(&p, "OPTIONS", &request).0, action, "{request:?}");
    }
}

/// "An allowed origin's preflight is answered 204 with the full lists whatever it asks, so the
/// browser names the missing method or header", where actix-cors answers 400.
#[test]
fn an_allowed_origins_preflight_gets_the_lists_even_for_an_unlisted_method() {
    let p = Policy::builder()
        .allow_origins([APP])
        .allow_methods(["PUT"])
        .allow_headers(["x-token"])
        .build()
        .unwrap();
    let (action, lines) = answer(
        &p,
        "OPTIONS",
        &[
            ("origin", APP),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "x-other"),
        ],
    );
    assert_eq!(action, Action::Respond(StatusCode::NO_CONTENT));
    assert!(
        lines.contains(&"access-control-allow-methods: PUT".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"access-control-allow-headers: x-token".to_owned()),
        "{lines:?}"
    );
    // GET, HEAD and POST need no listing: actix-cors refuses them unless listed.
    let p = Policy::builder().allow_origins([APP]).build().unwrap();
    for method in ["GET", "HEAD", "POST"] {
        let d = p.decide(
            &Method::OPTIONS,
            &headers(&[("origin", APP), ("access-control-request-method", method)]),
        );
        assert_eq!(d.outcome(), Outcome::Allowed, "{method}");
    }
}

/// "`https://*.example.com` covers every subdomain, at any depth, and not `example.com`
/// itself; it is matched label by label, never as a regular expression, so
/// `https://evilexample.com` and `https://example.com.evil.io` do not match."
#[test]
fn subdomain_patterns_match_whole_labels() {
    let p = Policy::builder()
        .allow_origins(["https://*.example.com", "http://localhost:*"])
        .build()
        .unwrap();
    let allowed =
        |o: &str| p.decide(&Method::GET, &headers(&[("origin", o)])).outcome() == Outcome::Allowed;
    for o in [
        "https://api.example.com",
        "https://a.b.example.com",
        "http://localhost:3000",
        "http://localhost",
    ] {
        assert!(allowed(o), "{o}");
    }
    for o in [
        "https://example.com",
        "https://evilexample.com",
        "https://example.com.evil.io",
        "http://api.example.com",
        "http://localhost.evil.io:3000",
    ] {
        assert!(!allowed(o), "{o}");
    }
}

/// "The predicate receives the origin only, already checked and lowercase, and is asked only
/// when the list does not match; it admits an origin by echoing it (never `*`), with
/// `Vary: Origin`."
#[test]
fn the_origin_predicate_sees_a_checked_origin_after_the_list() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let p = Policy::builder()
        .allow_origins([APP])
        .allow_origin_predicate(move |o| {
            log.lock().unwrap().push(o.to_owned());
            true
        })
        .build()
        .unwrap();
    let (_, lines) = answer(&p, "GET", &[("origin", "https://partner.example")]);
    assert_eq!(
        lines,
        [
            "access-control-allow-origin: https://partner.example",
            "vary: Origin"
        ]
    );
    let _ = answer(&p, "GET", &[("origin", APP)]);
    let _ = answer(&p, "GET", &[("origin", "not an origin")]);
    assert_eq!(*seen.lock().unwrap(), ["https://partner.example"]);
}

/// "Anything but `*` with credentials is reflected: `allow_methods(["*"])` and
/// `allow_headers(["*"])` answer with what was asked."
#[test]
fn any_method_and_header_with_credentials_are_reflected() {
    let p = Policy::builder()
        .allow_origins([APP])
        .allow_methods(["*"])
        .allow_headers(["*"])
        .allow_credentials(true)
        .build()
        .unwrap();
    let (_, lines) = answer(
        &p,
        "OPTIONS",
        &[
            ("origin", APP),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "authorization,x-token"),
        ],
    );
    assert!(
        lines.contains(&"access-control-allow-methods: PATCH".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"access-control-allow-headers: authorization,x-token".to_owned()),
        "{lines:?}"
    );
}
