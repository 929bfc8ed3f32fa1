//! Property tests: the engine never panics, and never allows an origin the policy does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use corsair::server::{Outcome, Rejection};
use corsair::Policy;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;

fn policy() -> Policy {
    Policy::builder()
        .allow_origins([
            "https://app.example.com",
            "http://127.0.0.1:9000",
            "https://*.example.org",
            "http://localhost:*",
        ])
        .allow_methods(["PUT", "PATCH"])
        .allow_headers(["x-custom", "content-type"])
        .allow_credentials(true)
        .build()
        .unwrap()
}

/// The policy above, restated independently of corsair's parser and matcher.
fn oracle(o: &str) -> bool {
    fn port_ok(p: &str, default: &str) -> bool {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && !(p.len() > 1 && p.starts_with('0'))
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
            && p != default
    }
    if o == "https://app.example.com" || o == "http://127.0.0.1:9000" {
        return true;
    }
    if let Some(rest) = o.strip_prefix("http://localhost") {
        return rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| port_ok(p, "80"));
    }
    if let Some(labels) = o
        .strip_prefix("https://")
        .and_then(|r| r.strip_suffix(".example.org"))
    {
        return !labels.is_empty()
            && labels.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            });
    }
    false
}

fn origin_strategy() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["https", "http", "HTTPS", "ftp", "", "https:"]);
    let sep = prop::sample::select(vec!["://", ":/", "//", ":///"]);
    let host = prop_oneof![
        prop::sample::select(vec![
            "app.example.com",
            "example.org",
            "a.example.org",
            "a.b.example.org",
            "a..example.org",
            ".example.org",
            "evil-example.org",
            "evilexample.org",
            "example.org.evil.com",
            "a.example.org.",
            "A.example.org",
            "localhost",
            "localhost.evil",
            "a.localhost",
            "127.0.0.1",
            "[::1]",
            "app.example.com.evil",
            "user@app.example.com",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9_.-]{0,12}\\.example\\.org",
        "[a-zA-Z0-9.@:/\\[\\]-]{0,20}",
    ];
    let port = prop::sample::select(vec![
        "", "", ":80", ":443", ":9000", ":8000", ":0", ":08000", ":65535", ":65536", ":abc", ":*",
        ":",
    ]);
    let tail = prop::sample::select(vec!["", "", "", "/", "/x", "?q", "#f", " ", "."]);
    prop_oneof![
        6 => (scheme, sep, host, port, tail)
            .prop_map(|(s, sep, h, p, t)| format!("{s}{sep}{h}{p}{t}")),
        // Shapes that are mostly allowed, so both sides of the property are exercised.
        3 => prop_oneof![
            "https://[a-z0-9-]{1,8}(\\.[a-z0-9_-]{1,5}){0,2}\\.example\\.org",
            "http://localhost(:[1-9][0-9]{0,4})?",
            prop::sample::select(vec!["https://app.example.com", "http://127.0.0.1:9000"])
                .prop_map(str::to_owned),
        ],
        1 => "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn allow_origin_only_for_allowed_origins(origin in origin_strategy(), preflight in any::<bool>()) {
        let Ok(value) = HeaderValue::from_str(&origin) else { return Ok(()) };
        let mut req = HeaderMap::new();
        req.insert("origin", value);
        let method = if preflight {
            req.insert("access-control-request-method", HeaderValue::from_static("PUT"));
            Method::OPTIONS
        } else {
            Method::GET
        };
        let decision = policy().decide(&method, &req);
        let mut resp = HeaderMap::new();
        decision.clone().into_parts().1.apply(&mut resp);
        let acao = resp.get("access-control-allow-origin");
        if oracle(&origin) {
            prop_assert_eq!(decision.outcome(), Outcome::Allowed);
            prop_assert_eq!(acao.map(|v| v.as_bytes()), Some(origin.as_bytes()));
        } else {
            prop_assert!(acao.is_none(), "ACAO {:?} for {:?}", acao, origin);
            prop_assert!(!resp.keys().any(|k| k.as_str().starts_with("access-control-")));
            prop_assert!(matches!(decision.outcome(), Outcome::Rejected(_)));
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(
        method in "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}",
        values in prop::collection::vec(
            (prop::sample::select(vec![
                "origin",
                "access-control-request-method",
                "access-control-request-headers",
                "access-control-request-private-network",
                "vary",
            ]), prop::collection::vec(any::<u8>(), 0..64)),
            0..8,
        ),
        existing in prop::collection::vec(
            (prop::sample::select(vec!["vary", "access-control-allow-origin", "x-other"]),
             prop::collection::vec(any::<u8>(), 0..32)),
            0..4,
        ),
    ) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = HeaderMap::new();
        for (name, bytes) in values {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                req.append(name, v);
            }
        }
        let mut resp = HeaderMap::new();
        for (name, bytes) in existing {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                resp.append(name, v);
            }
        }
        for cors in [policy(), Policy::builder().allow_origins(["*"]).allow_headers(["*"]).allow_methods(["*"]).build().unwrap()] {
            let d = cors.decide(&method, &req);
            let mut r = resp.clone();
            d.into_parts().1.apply(&mut r);
            prop_assert!(r.get_all("access-control-allow-origin").iter().count() <= 1);
        }
    }

    #[test]
    fn explaining_never_changes_the_response(
        origin in origin_strategy(),
        method in prop::sample::select(vec!["GET", "OPTIONS", "PUT", "patch"]),
        acrm in prop::option::of(prop::sample::select(vec!["PUT", "DELETE", "patch", "GET", "P T"])),
        acrh in prop::option::of("[a-zA-Z, -]{0,40}"),
        pna in any::<bool>(),
    ) {
        let policies = [
            policy(),
            Policy::builder().allow_origins(["https://app.example.com"]).allow_private_network(true).build().unwrap(),
            Policy::builder().allow_origins(["*"]).allow_headers(["*"]).allow_methods(["*"]).build().unwrap(),
        ];
        let mut req = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&origin) {
            req.insert("origin", v);
        }
        if let Some(m) = acrm {
            req.insert("access-control-request-method", HeaderValue::from_static(m));
        }
        if let Some(h) = acrh {
            req.insert("access-control-request-headers", HeaderValue::from_str(&h).unwrap());
        }
        if pna {
            req.insert("access-control-request-private-network", HeaderValue::from_static("true"));
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for cors in policies {
            let full = cors.decide(&method, &req);
            // No subscriber listens, so the middleware's entry point skips the reason-only checks.
            let set = corsair::PolicySet::single(cors.clone());
            let fast = corsair::server::answer(&set, &method, "/", &req, corsair::server::Reasons::WhenTraced);
            prop_assert_eq!(fast.outcome(), None);
            prop_assert_eq!(full.action(), fast.action());
            let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
            full.into_parts().1.apply(&mut a);
            fast.into_parts().1.apply(&mut b);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn requested_headers_pass_only_when_all_are_allowed(
        names in prop::collection::vec(
            prop::sample::select(vec!["x-custom", "X-Custom", "content-type", "x-other", "authorization", ""]),
            0..6,
        ),
        ws in prop::sample::select(vec!["", " ", "\t", "  "]),
    ) {
        let list = names.iter().map(|n| format!("{ws}{n}{ws}")).collect::<Vec<_>>().join(",");
        let mut req = HeaderMap::new();
        req.insert("origin", HeaderValue::from_static("https://app.example.com"));
        req.insert("access-control-request-method", HeaderValue::from_static("PUT"));
        req.insert("access-control-request-headers", HeaderValue::from_str(&list).unwrap());
        let d = policy().decide(&Method::OPTIONS, &req);
        let all_allowed = names
            .iter()
            .all(|n| n.is_empty() || ["x-custom", "content-type"].contains(&n.to_ascii_lowercase().as_str()));
        if all_allowed {
            prop_assert_eq!(d.outcome(), Outcome::Allowed);
        } else {
            prop_assert_eq!(d.outcome(), Outcome::Rejected(Rejection::HeaderNotAllowed));
        }
    }
}

/// The generator reaches both sides of the origin property in earnest.
#[test]
fn origin_generator_covers_both_sides() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = origin_strategy();
    let allowed = (0..2_000)
        .filter(|_| oracle(&strategy.new_tree(&mut runner).unwrap().current()))
        .count();
    assert!(
        (300..1_700).contains(&allowed),
        "{allowed} of 2000 generated origins are allowed"
    );
}
