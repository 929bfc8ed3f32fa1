//! Request-aware origin predicates: the decision sees `Host` and the path, and every response of
//! such a policy varies on `Host`, so that a shared cache keyed on the URL and the response's
//! `Vary` never hands one tenant's answer to another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use corsair::server::{answer, answer_in, Action, Reasons, Rejection, RequestInfo};
use corsair::{ErrorCode, OriginRequest, Policy, PolicySet};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use proptest::prelude::*;

/// Tenants by API host, each admitting its own front end; every tenant's front end may read
/// `/public`.
const TENANTS: [(&str, &str); 3] = [
    ("api.a.example", "https://a.example"),
    ("api.b.example", "https://b.example"),
    ("api.c.example:8443", "https://c.example"),
];

fn tenant_predicate(r: &OriginRequest<'_>) -> bool {
    let own = TENANTS.iter().any(|(host, origin)| {
        r.host().is_some_and(|h| h.eq_ignore_ascii_case(host)) && r.origin() == *origin
    });
    let public = r.path() == Some("/public") && TENANTS.iter().any(|(_, o)| r.origin() == *o);
    own || public
}

fn policy() -> Policy {
    Policy::builder()
        .allow_origins(["https://admin.example"])
        .allow_origin_request_predicate(tenant_predicate)
        .allow_methods(["PUT"])
        .allow_credentials(true)
        .build()
        .unwrap()
}

fn respond(set: &PolicySet, method: &str, path: &str, pairs: &[(&str, &str)]) -> (u16, HeaderMap) {
    let headers = common::headers(pairs);
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let (action, cors) = answer(set, &method, path, &headers, Reasons::Always).into_parts();
    let status = match action {
        Action::Respond(s) => s.as_u16(),
        Action::Forward => 200,
    };
    let mut response = HeaderMap::new();
    cors.apply(&mut response);
    (status, response)
}

fn vary(h: &HeaderMap) -> Vec<String> {
    h.get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|t| t.trim().to_owned())
        .collect()
}

#[test]
fn the_predicate_sees_host_and_path() {
    let set = PolicySet::single(policy());
    // (host, path, origin, allowed): written from the tenant table by hand.
    let table = [
        ("api.a.example", "/orders", "https://a.example", true),
        ("API.A.EXAMPLE", "/orders", "https://a.example", true),
        ("api.b.example", "/orders", "https://a.example", false),
        ("api.b.example", "/public", "https://a.example", true),
        ("api.b.example", "/public/x", "https://a.example", false),
        ("api.c.example:8443", "/", "https://c.example", true),
        ("api.c.example", "/", "https://c.example", false),
        ("api.a.example", "/public", "https://evil.example", false),
        // The listed origin is admitted whatever the host.
        ("anything.example", "/", "https://admin.example", true),
    ];
    for (host, path, origin, allowed) in table {
        let (_, r) = respond(&set, "GET", path, &[("host", host), ("origin", origin)]);
        assert_eq!(
            r.get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed.then_some(origin),
            "{host} {path} {origin}"
        );
    }
    // Two Host lines name no host: refused, as is a request without one.
    let (_, r) = respond(
        &set,
        "GET",
        "/orders",
        &[
            ("host", "api.a.example"),
            ("host", "api.a.example"),
            ("origin", "https://a.example"),
        ],
    );
    assert!(r.get("access-control-allow-origin").is_none());
    let (_, r) = respond(&set, "GET", "/orders", &[("origin", "https://a.example")]);
    assert!(r.get("access-control-allow-origin").is_none());
}

#[test]
fn http2_authority_stands_for_host() {
    let set = PolicySet::single(policy());
    let headers = common::headers(&[("origin", "https://b.example")]);
    let decide = |authority| {
        let info = RequestInfo::at("/orders").authority(authority);
        let a = answer_in(&set, &Method::GET, &headers, &info, Reasons::Always);
        a.outcome().unwrap()
    };
    assert_eq!(
        decide(Some("api.b.example")),
        corsair::server::Outcome::Allowed
    );
    assert_eq!(
        decide(Some("api.a.example")),
        corsair::server::Outcome::Rejected(Rejection::OriginNotAllowed)
    );
    // A Host header wins over the authority (HTTP/1.1 with an absolute URI).
    let with_host = common::headers(&[("origin", "https://b.example"), ("host", "api.a.example")]);
    let info = RequestInfo::at("/orders").authority(Some("api.b.example"));
    let a = answer_in(&set, &Method::GET, &with_host, &info, Reasons::Always);
    assert_eq!(
        a.outcome(),
        Some(corsair::server::Outcome::Rejected(
            Rejection::OriginNotAllowed
        ))
    );
}

#[test]
fn every_response_varies_on_host() {
    let set = PolicySet::single(policy());
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("GET", &[("host", "api.a.example")]),
        (
            "GET",
            &[("host", "api.a.example"), ("origin", "https://a.example")],
        ),
        (
            "GET",
            &[
                ("host", "api.a.example"),
                ("origin", "https://evil.example"),
            ],
        ),
        (
            "GET",
            &[("host", "api.a.example"), ("origin", "not an origin")],
        ),
        (
            "OPTIONS",
            &[
                ("host", "api.a.example"),
                ("origin", "https://a.example"),
                ("access-control-request-method", "PUT"),
            ],
        ),
        (
            "OPTIONS",
            &[
                ("host", "api.b.example"),
                ("origin", "https://a.example"),
                ("access-control-request-method", "PUT"),
            ],
        ),
    ];
    for (method, pairs) in cases {
        let (_, r) = respond(&set, method, "/orders", pairs);
        let v = vary(&r);
        assert!(v.iter().any(|t| t == "Host"), "{method} {pairs:?}: {v:?}");
        assert!(v.iter().any(|t| t == "Origin"), "{method} {pairs:?}: {v:?}");
        assert_eq!(r.get_all("vary").iter().count(), 1, "one Vary line: {v:?}");
    }
    // A policy whose decision does not read the host does not vary on it.
    let plain = PolicySet::single(
        Policy::builder()
            .allow_origin_predicate(|o| o == "https://a.example")
            .build()
            .unwrap(),
    );
    let (_, r) = respond(
        &plain,
        "GET",
        "/",
        &[("host", "api.a.example"), ("origin", "https://a.example")],
    );
    assert_eq!(vary(&r), ["Origin"]);
}

#[test]
fn a_broad_request_predicate_is_refused_with_credentials() {
    type P = fn(&OriginRequest<'_>) -> bool;
    let broad: [(&str, P); 3] = [
        ("everything", |_| true),
        ("everything without a host", |r| r.host().is_none()),
        ("everything on a host it does not know", |r| {
            r.host().is_some_and(|h| !h.ends_with(".example"))
        }),
    ];
    for (name, p) in broad {
        let errors = Policy::builder()
            .allow_origin_request_predicate(p)
            .allow_credentials(true)
            .build()
            .unwrap_err();
        assert_eq!(
            errors.codes(),
            [ErrorCode::OriginPredicateTooBroad],
            "{name}"
        );
    }
    assert!(Policy::builder()
        .allow_origin_request_predicate(tenant_predicate)
        .allow_credentials(true)
        .build()
        .is_ok());
}

/// The request as a cache sees it: method, path, and the request headers a `Vary` may name.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: &'static str,
    host: &'static str,
    origin: Option<&'static str>,
    acrm: Option<&'static str>,
}

impl Req {
    fn pairs(&self) -> Vec<(&'static str, &'static str)> {
        let mut p = vec![("host", self.host)];
        p.extend(self.origin.map(|o| ("origin", o)));
        p.extend(self.acrm.map(|m| ("access-control-request-method", m)));
        p
    }
}

fn req_strategy() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec!["GET", "OPTIONS"]),
        prop::sample::select(vec!["/orders", "/public"]),
        prop::sample::select(vec![
            "api.a.example",
            "api.b.example",
            "api.c.example:8443",
            "other.example",
        ]),
        prop::option::weighted(
            0.9,
            prop::sample::select(vec![
                "https://a.example",
                "https://b.example",
                "https://c.example",
                "https://admin.example",
            ]),
        ),
        prop::option::of(Just("PUT")),
    )
        .prop_map(|(method, path, host, origin, acrm)| Req {
            method,
            path,
            host,
            origin,
            acrm,
        })
}

/// Whether a cache that stored `stored` for `a` serves it for `b`: the same method and URL path
/// (the cache key; the host is left out, as nginx's default key leaves out the client's `Host`),
/// and every request header the stored `Vary` names has the same lines.
fn cache_hit(a: &Req, b: &Req, stored: &HeaderMap) -> bool {
    if a.method != b.method || a.path != b.path {
        return false;
    }
    let (ha, hb) = (common::headers(&a.pairs()), common::headers(&b.pairs()));
    vary(stored).iter().all(|token| {
        let Ok(name) = HeaderName::from_bytes(token.to_ascii_lowercase().as_bytes()) else {
            return false;
        };
        let lines = |h: &HeaderMap| h.get_all(&name).iter().cloned().collect::<Vec<_>>();
        lines(&ha) == lines(&hb)
    })
}

/// What the browser reading the answer for `r` concludes: whether the origin may read it
/// (its status and `Access-Control-Allow-Origin`).
fn readable(r: &Req, status: u16, h: &HeaderMap) -> bool {
    (200..300).contains(&status)
        && r.origin
            .is_some_and(|o| h.get("access-control-allow-origin").is_some_and(|v| v == o))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// The engine's cache rule, extended to the host: an answer served from a shared cache is
    /// judged as the fresh answer would be. Without `Vary: Host`, a cache keyed without the host
    /// hands tenant A's grant to a request for tenant B.
    #[test]
    fn a_shared_cache_never_serves_one_hosts_answer_for_another(first in req_strategy(), then in req_strategy()) {
        let set = PolicySet::single(policy());
        let (stored_status, stored) = respond(&set, first.method, first.path, &first.pairs());
        if cache_hit(&first, &then, &stored) {
            let (status, fresh) = respond(&set, then.method, then.path, &then.pairs());
            prop_assert_eq!(
                readable(&then, stored_status, &stored),
                readable(&then, status, &fresh),
                "stored for {:?}: {:?}; fresh for {:?}: {:?}", first, stored, then, fresh
            );
        }
    }
}

#[test]
fn the_preflight_answer_depends_on_the_host() {
    let set = PolicySet::single(policy());
    let pre = |host| {
        respond(
            &set,
            "OPTIONS",
            "/orders",
            &[
                ("host", host),
                ("origin", "https://a.example"),
                ("access-control-request-method", "PUT"),
            ],
        )
        .0
    };
    assert_eq!(pre("api.a.example"), StatusCode::NO_CONTENT.as_u16());
    assert_eq!(pre("api.b.example"), StatusCode::FORBIDDEN.as_u16());
}
