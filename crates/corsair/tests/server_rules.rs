//! The server engine's rules, one table row each, through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;
use common::{headers, Pairs};

use std::time::Duration;

use corsair::server::{Action, Outcome, Rejection};
use corsair::Policy;
use http::{Method, StatusCode};

/// Runs a decision and returns (action, outcome, response headers as sorted "name: value" lines).
fn run(
    cors: &Policy,
    method: &str,
    req: &[(&str, &str)],
    existing: &[(&str, &str)],
) -> (Action, Outcome, Vec<String>) {
    let d = cors.decide(
        &Method::from_bytes(method.as_bytes()).unwrap(),
        &headers(req),
    );
    let (action, outcome) = (d.action(), d.outcome());
    let mut resp = headers(existing);
    d.into_parts().1.apply(&mut resp);
    let mut lines: Vec<String> = resp
        .iter()
        .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap()))
        .collect();
    lines.sort();
    (action, outcome, lines)
}

fn api() -> Policy {
    Policy::builder()
        .allow_origins(["https://app.example.com", "https://*.example.org"])
        .allow_methods(["PUT", "PATCH"])
        .allow_headers(["x-custom", "content-type"])
        .expose_headers(["x-request-id"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
        .build()
        .unwrap()
}

const APP: (&str, &str) = ("origin", "https://app.example.com");
const EVIL: (&str, &str) = ("origin", "https://evil.example.com");
const NO_CONTENT: Action = Action::Respond(StatusCode::NO_CONTENT);
const FORBIDDEN: Action = Action::Respond(StatusCode::FORBIDDEN);
const FORWARD: Action = Action::Forward;
const PREFLIGHT_VARY: &str =
    "vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

#[test]
fn actual_requests() {
    let c = api();
    let rows: Vec<(&str, Pairs, Outcome, Vec<&str>)> = vec![
        // No Origin: not CORS, forwarded, but the answer depends on Origin.
        ("GET", vec![], Outcome::NotCors, vec!["vary: Origin"]),
        // Allowed origin: origin echoed, credentials, exposed headers.
        (
            "GET",
            vec![APP],
            Outcome::Allowed,
            vec![
                "access-control-allow-credentials: true",
                "access-control-allow-origin: https://app.example.com",
                "access-control-expose-headers: x-request-id",
                "vary: Origin",
            ],
        ),
        // A subdomain pattern.
        (
            "DELETE",
            vec![("origin", "https://a.b.example.org")],
            Outcome::Allowed,
            vec![
                "access-control-allow-credentials: true",
                "access-control-allow-origin: https://a.b.example.org",
                "access-control-expose-headers: x-request-id",
                "vary: Origin",
            ],
        ),
        // Disallowed: nothing but Vary.
        (
            "GET",
            vec![EVIL],
            Outcome::Rejected(Rejection::OriginNotAllowed),
            vec!["vary: Origin"],
        ),
        (
            "GET",
            vec![("origin", "https://example.org")],
            Outcome::Rejected(Rejection::OriginNotAllowed),
            vec!["vary: Origin"],
        ),
        (
            "GET",
            vec![("origin", "null")],
            Outcome::Rejected(Rejection::OriginNotAllowed),
            vec!["vary: Origin"],
        ),
        (
            "GET",
            vec![("origin", "https://app.example.com/")],
            Outcome::Rejected(Rejection::OriginMalformed),
            vec!["vary: Origin"],
        ),
        (
            "GET",
            vec![("origin", "HTTPS://APP.EXAMPLE.COM")],
            Outcome::Rejected(Rejection::OriginMalformed),
            vec!["vary: Origin"],
        ),
        (
            "GET",
            vec![APP, APP],
            Outcome::Rejected(Rejection::MultipleOrigins),
            vec!["vary: Origin"],
        ),
        // OPTIONS without Access-Control-Request-Method is not a preflight: forwarded, and its
        // answer varies like a preflight's, so a cache never serves it for one.
        (
            "OPTIONS",
            vec![APP],
            Outcome::Allowed,
            vec![
                "access-control-allow-credentials: true",
                "access-control-allow-origin: https://app.example.com",
                "access-control-expose-headers: x-request-id",
                PREFLIGHT_VARY,
            ],
        ),
        // OPTIONS with the request method but no Origin is not a preflight either.
        (
            "OPTIONS",
            vec![("access-control-request-method", "PUT")],
            Outcome::NotCors,
            vec![PREFLIGHT_VARY],
        ),
    ];
    for (method, req, outcome, want) in rows {
        let (action, got_outcome, got) = run(&c, method, &req, &[]);
        assert_eq!(action, Action::Forward, "{method} {req:?}");
        assert_eq!(got_outcome, outcome, "{method} {req:?}");
        assert_eq!(got, want, "{method} {req:?}");
    }
}

#[test]
fn preflights() {
    let c = api();
    let allowed_lists = |extra: &[&'static str]| {
        let mut v = vec![
            "access-control-allow-credentials: true",
            "access-control-allow-headers: x-custom, content-type",
            "access-control-allow-methods: PUT, PATCH",
            "access-control-allow-origin: https://app.example.com",
            "access-control-max-age: 600",
            PREFLIGHT_VARY,
        ];
        v.extend_from_slice(extra);
        v.sort();
        v
    };
    let acrm = |m| ("access-control-request-method", m);
    let acrh = |h| ("access-control-request-headers", h);
    let rows: Vec<(Pairs, Action, Outcome, Vec<&str>)> = vec![
        (
            vec![APP, acrm("PUT")],
            NO_CONTENT,
            Outcome::Allowed,
            allowed_lists(&[]),
        ),
        (
            vec![APP, acrm("PUT"), acrh("x-custom,content-type")],
            NO_CONTENT,
            Outcome::Allowed,
            allowed_lists(&[]),
        ),
        // Header names are case-insensitive; whitespace, empty elements and several lines are fine.
        (
            vec![
                APP,
                acrm("PATCH"),
                acrh(" X-Custom ,, "),
                acrh("Content-Type"),
            ],
            NO_CONTENT,
            Outcome::Allowed,
            allowed_lists(&[]),
        ),
        // Safelisted methods need no listing.
        (
            vec![APP, acrm("GET"), acrh("x-custom")],
            NO_CONTENT,
            Outcome::Allowed,
            allowed_lists(&[]),
        ),
        // Methods are case-sensitive: `patch` is not `PATCH`. The lists are still sent.
        (
            vec![APP, acrm("patch")],
            NO_CONTENT,
            Outcome::Rejected(Rejection::MethodNotAllowed),
            allowed_lists(&[]),
        ),
        (
            vec![APP, acrm("DELETE")],
            NO_CONTENT,
            Outcome::Rejected(Rejection::MethodNotAllowed),
            allowed_lists(&[]),
        ),
        (
            vec![APP, acrm("PUT"), acrh("x-custom,authorization")],
            NO_CONTENT,
            Outcome::Rejected(Rejection::HeaderNotAllowed),
            allowed_lists(&[]),
        ),
        (
            vec![APP, acrm("PUT"), acrh("x custom")],
            NO_CONTENT,
            Outcome::Rejected(Rejection::HeadersInvalid),
            allowed_lists(&[]),
        ),
        (
            vec![APP, acrm("P U T")],
            NO_CONTENT,
            Outcome::Rejected(Rejection::MethodInvalid),
            allowed_lists(&[]),
        ),
        (
            vec![
                APP,
                acrm("PUT"),
                ("access-control-request-private-network", "true"),
            ],
            NO_CONTENT,
            Outcome::Rejected(Rejection::PrivateNetworkNotAllowed),
            allowed_lists(&[]),
        ),
        // A disallowed origin's preflight: 403, no Access-Control-* at all.
        (
            vec![EVIL, acrm("PUT")],
            FORBIDDEN,
            Outcome::Rejected(Rejection::OriginNotAllowed),
            vec![PREFLIGHT_VARY],
        ),
        (
            vec![("origin", "null"), acrm("PUT")],
            FORBIDDEN,
            Outcome::Rejected(Rejection::OriginNotAllowed),
            vec![PREFLIGHT_VARY],
        ),
    ];
    for (req, action, outcome, want) in rows {
        let (got_action, got_outcome, got) = run(&c, "OPTIONS", &req, &[]);
        assert_eq!((got_action, got_outcome), (action, outcome), "{req:?}");
        assert_eq!(got, want, "{req:?}");
    }
}

#[test]
fn wildcards_without_credentials_send_star() {
    let c = Policy::builder()
        .allow_origins(["*"])
        .allow_methods(["*"])
        .allow_headers(["*"])
        .expose_headers(["*"])
        .build()
        .unwrap();
    // The answer does not depend on Origin: no Vary: Origin.
    let (_, _, got) = run(&c, "GET", &[APP], &[]);
    assert_eq!(
        got,
        [
            "access-control-allow-origin: *",
            "access-control-expose-headers: *"
        ]
    );
    // Nor on a request without Origin: a shared cache may store it for everyone.
    let (_, _, got) = run(&c, "GET", &[], &[]);
    assert_eq!(
        got,
        [
            "access-control-allow-origin: *",
            "access-control-expose-headers: *"
        ]
    );
    // Any header is reflected, because `*` never covers Authorization.
    let (action, _, got) = run(
        &c,
        "OPTIONS",
        &[
            APP,
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "authorization,x-a"),
        ],
        &[],
    );
    assert_eq!(action, NO_CONTENT);
    assert_eq!(
        got,
        [
            "access-control-allow-headers: authorization,x-a",
            "access-control-allow-methods: *",
            "access-control-allow-origin: *",
            "vary: Access-Control-Request-Method, Access-Control-Request-Headers",
        ]
    );
}

/// Hole 1 of the hardening review: a public API behind a shared cache. A request without
/// `Origin`, or with one that is malformed, repeated or `null`, must get the same answer as any
/// browser's request, or the cache stores a bare response and serves it to every browser.
#[test]
fn public_api_answers_star_whatever_origin_says() {
    let c = Policy::builder()
        .allow_origins(["*"])
        .expose_headers(["x-request-id"])
        .build()
        .unwrap();
    let want = [
        "access-control-allow-origin: *",
        "access-control-expose-headers: x-request-id",
    ];
    let requests: [&[(&str, &str)]; 7] = [
        &[],
        &[APP],
        &[("origin", "null")],
        &[("origin", "https://app.example.com/")],
        &[("origin", "not an origin")],
        &[APP, ("origin", "https://evil.example")],
        &[("origin", "HTTPS://APP.EXAMPLE.COM")],
    ];
    for req in requests {
        for method in ["GET", "POST", "OPTIONS", "DELETE"] {
            let (action, _, got) = run(&c, method, req, &[]);
            assert_eq!(action, FORWARD, "{method} {req:?}");
            if method == "OPTIONS" {
                // An OPTIONS answer that is not a preflight's varies like one, Origin included:
                // whether a request is a preflight depends on it, even under `*`.
                let mut want = want.to_vec();
                want.push(PREFLIGHT_VARY);
                assert_eq!(got, want, "{method} {req:?}");
            } else {
                assert_eq!(got, want, "{method} {req:?}");
            }
        }
    }
    // The application's own Vary is kept, and nothing about Origin is added.
    let (_, _, got) = run(&c, "GET", &[], &[("vary", "accept-encoding")]);
    assert!(got.contains(&"vary: accept-encoding".to_owned()), "{got:?}");
    assert!(!got.iter().any(|h| h.contains("Origin")), "{got:?}");
}

/// The other half of the cache rule: a policy whose answer depends on the origin says so on
/// every response, CORS or not, allowed or refused, well-formed or not.
#[test]
fn origin_dependent_policies_vary_on_every_response() {
    let policies = [
        api(),
        Policy::builder()
            .allow_origins(["*"])
            .allow_credentials(true)
            .dangerously_allow_credentials_with_any_origin(true)
            .build()
            .unwrap(),
        Policy::builder()
            .allow_origin_predicate(|o| o == "https://app.example.com")
            .build()
            .unwrap(),
    ];
    let requests: [&[(&str, &str)]; 5] = [
        &[],
        &[APP],
        &[EVIL],
        &[("origin", "null")],
        &[("origin", "not an origin")],
    ];
    for c in &policies {
        for req in requests {
            for method in ["GET", "POST", "PUT"] {
                let (_, _, got) = run(c, method, req, &[]);
                assert!(
                    got.contains(&"vary: Origin".to_owned()),
                    "{c:?} {method} {req:?}: {got:?}"
                );
            }
        }
    }
}

/// Hole 3 of the hardening review: every dangerous grant stands on its own option. Credentials
/// with any origin does not grant `null`; only `dangerously_allow_null_origin` does.
#[test]
fn null_is_granted_only_by_its_own_option() {
    let any = Policy::builder()
        .allow_origins(["*"])
        .allow_credentials(true)
        .dangerously_allow_credentials_with_any_origin(true)
        .build()
        .unwrap();
    let (_, outcome, got) = run(&any, "GET", &[("origin", "null")], &[]);
    assert_eq!(outcome, Outcome::Rejected(Rejection::OriginNotAllowed));
    assert_eq!(got, ["vary: Origin"]);
    let (action, _, _) = run(
        &any,
        "OPTIONS",
        &[("origin", "null"), ("access-control-request-method", "PUT")],
        &[],
    );
    assert_eq!(action, FORBIDDEN);
    // A real origin is still reflected.
    let (_, outcome, _) = run(&any, "GET", &[("origin", "https://anyone.example")], &[]);
    assert_eq!(outcome, Outcome::Allowed);

    let both = Policy::builder()
        .allow_origins(["*", "null"])
        .allow_credentials(true)
        .dangerously_allow_credentials_with_any_origin(true)
        .dangerously_allow_null_origin(true);
    // `*` beside another origin is its own error; with `null` named alone it is granted.
    assert!(both.build().is_err());
    let null = Policy::builder()
        .allow_origins(["null"])
        .allow_credentials(true)
        .dangerously_allow_null_origin(true)
        .build()
        .unwrap();
    let (_, outcome, got) = run(&null, "GET", &[("origin", "null")], &[]);
    assert_eq!(outcome, Outcome::Allowed);
    assert!(
        got.contains(&"access-control-allow-origin: null".to_owned()),
        "{got:?}"
    );
}

#[test]
fn wildcards_with_credentials_reflect_never_star() {
    let c = Policy::builder()
        .allow_origins(["*"])
        .allow_methods(["*"])
        .allow_headers(["*"])
        .allow_credentials(true)
        .dangerously_allow_credentials_with_any_origin(true)
        .build()
        .unwrap();
    let (_, _, got) = run(
        &c,
        "OPTIONS",
        &[
            ("origin", "https://anyone.example"),
            ("access-control-request-method", "patch"),
            ("access-control-request-headers", "x-a"),
            ("access-control-request-headers", "authorization"),
        ],
        &[],
    );
    assert_eq!(
        got,
        [
            "access-control-allow-credentials: true",
            "access-control-allow-headers: x-a,authorization",
            "access-control-allow-methods: patch",
            "access-control-allow-origin: https://anyone.example",
            PREFLIGHT_VARY,
        ]
    );
    assert!(!got.iter().any(|l| l.ends_with(": *")));
}

#[test]
fn vary_is_appended_never_overwritten_nor_duplicated() {
    let c = api();
    let rows: Vec<(Pairs, Vec<&str>)> = vec![
        (
            vec![("vary", "Accept-Encoding")],
            vec!["vary: Accept-Encoding", "vary: Origin"],
        ),
        (
            vec![("vary", "accept-encoding, origin")],
            vec!["vary: accept-encoding, origin"],
        ),
        (vec![("vary", "ORIGIN")], vec!["vary: ORIGIN"]),
        (vec![("vary", "*")], vec!["vary: *"]),
        (
            vec![("vary", "Accept"), ("vary", "Origin")],
            vec!["vary: Accept", "vary: Origin"],
        ),
    ];
    for (existing, want) in rows {
        let (_, _, got) = run(&c, "GET", &[EVIL], &existing);
        assert_eq!(got, want, "{existing:?}");
    }
}

#[test]
fn the_policy_replaces_cors_headers_the_application_set() {
    let c = api();
    let inner = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET"),
        ("access-control-expose-headers", "x-secret"),
        ("access-control-max-age", "9999"),
        ("content-type", "text/plain"),
    ];
    // Allowed origin: the policy's values, one of each.
    let (_, _, got) = run(&c, "GET", &[APP], &inner);
    assert_eq!(
        got,
        [
            "access-control-allow-credentials: true",
            "access-control-allow-origin: https://app.example.com",
            "access-control-expose-headers: x-request-id",
            "content-type: text/plain",
            "vary: Origin",
        ]
    );
    // Disallowed origin and non-CORS request: none at all.
    for req in [vec![EVIL], vec![]] {
        let (_, _, got) = run(&c, "GET", &req, &inner);
        assert_eq!(got, ["content-type: text/plain", "vary: Origin"], "{req:?}");
    }
}

#[test]
fn private_network_access() {
    let c = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_private_network(true)
        .build()
        .unwrap();
    let (action, outcome, got) = run(
        &c,
        "OPTIONS",
        &[
            APP,
            ("access-control-request-method", "GET"),
            ("access-control-request-private-network", "true"),
        ],
        &[],
    );
    assert_eq!((action, outcome), (NO_CONTENT, Outcome::Allowed));
    assert_eq!(
        got,
        [
            "access-control-allow-origin: https://app.example.com",
            "access-control-allow-private-network: true",
            "vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
        ]
    );
    // Not asked for: not sent.
    let (_, _, got) = run(
        &c,
        "OPTIONS",
        &[APP, ("access-control-request-method", "GET")],
        &[],
    );
    assert!(
        !got.iter().any(|l| l.contains("allow-private-network")),
        "{got:?}"
    );
}

#[test]
fn preflight_status_is_configurable() {
    let c = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .preflight_status(200)
        .build()
        .unwrap();
    let (action, _, _) = run(
        &c,
        "OPTIONS",
        &[APP, ("access-control-request-method", "GET")],
        &[],
    );
    assert_eq!(action, Action::Respond(StatusCode::OK));
}

#[test]
fn hostile_request_headers_are_refused_unread() {
    let c = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_headers(["*"])
        .build()
        .unwrap();
    let long = ",".repeat(10_000) + &"x".repeat(90_000);
    let (_, outcome, got) = run(
        &c,
        "OPTIONS",
        &[
            APP,
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", &long),
        ],
        &[],
    );
    assert_eq!(outcome, Outcome::Rejected(Rejection::HeadersTooLong));
    // Nothing of it is reflected.
    assert!(
        !got.iter()
            .any(|l| l.starts_with("access-control-allow-headers")),
        "{got:?}"
    );
    // Many empty elements within the length bound: too many items.
    let commas = ",".repeat(100);
    let (_, outcome, _) = run(
        &c,
        "OPTIONS",
        &[
            APP,
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", &commas),
        ],
        &[],
    );
    assert_eq!(outcome, Outcome::Rejected(Rejection::HeadersTooLong));
    // Split over many lines: the bound is on the total.
    let line = "x".repeat(1000);
    let mut req = vec![APP, ("access-control-request-method", "GET")];
    for _ in 0..5 {
        req.push(("access-control-request-headers", &line));
    }
    let (_, outcome, _) = run(&c, "OPTIONS", &req, &[]);
    assert_eq!(outcome, Outcome::Rejected(Rejection::HeadersTooLong));
}

#[test]
fn cors_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<corsair::PolicyHandle>();
    assert_eq!(std::mem::size_of::<Policy>(), std::mem::size_of::<usize>());
}
