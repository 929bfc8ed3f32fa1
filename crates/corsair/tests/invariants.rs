//! Security invariants over random policies and random requests, each judged by an oracle
//! written here and in fuzz/src/oracle.rs, never by corsair's own matcher:
//! - `grants_only_what_the_policy_allows`: `Access-Control-Allow-Origin` only for an origin the
//!   policy means to allow (or `*` from a public policy), never `*` with credentials, `Vary:
//!   Origin` on every answer of a policy that depends on the origin;
//! - `a_shared_cache_never_changes_a_verdict`: two requests a cache keyed on the URL, the method
//!   and the response's `Vary` would treat as the same get answers the browser judges alike;
//! - `the_engines_agree_with_the_intent`: the server engine's answers, fed to the browser engine,
//!   let through exactly the fetches the policy means to allow, and expose exactly the headers it
//!   means to expose.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[allow(dead_code)]
#[path = "../../../fuzz/src/oracle.rs"]
mod oracle;
#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use corsair::browser::{Browser, Credentials, Fetch, RequestInit};
use corsair::server::Action;
use corsair::Policy;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use oracle::{Entry, Intent, Port};
use proptest::prelude::*;
use targets::Case;

/// A policy as generated: its settings, which become both the builder's input and the intent.
#[derive(Debug, Clone)]
struct Spec {
    any: bool,
    entries: Vec<Entry>,
    null: bool,
    credentials: bool,
    /// `None`: any (`*`).
    methods: Option<Vec<&'static str>>,
    headers: Option<Vec<&'static str>>,
    expose: Option<Vec<&'static str>>,
}

impl Spec {
    fn build(&self) -> Policy {
        let mut origins: Vec<String> = self.entries.iter().map(Entry::to_config).collect();
        if self.any {
            origins.push("*".into());
        }
        if self.null {
            origins.push("null".into());
        }
        let list = |l: &Option<Vec<&'static str>>| l.clone().unwrap_or_else(|| vec!["*"]);
        let result = Policy::builder()
            .allow_origins(origins)
            .allow_methods(list(&self.methods))
            .allow_headers(list(&self.headers))
            .expose_headers(list(&self.expose))
            .allow_credentials(self.credentials)
            .dangerously_allow_null_origin(self.null)
            .dangerously_allow_credentials_with_any_origin(self.any && self.credentials)
            .dangerously_allow_insecure_origins_with_credentials(self.credentials)
            .build();
        match result {
            Ok(cors) => cors,
            Err(e) => panic!("{self:?}: {e}"),
        }
    }

    fn intent(&self) -> Intent {
        Intent {
            any: self.any,
            null: self.null,
            entries: self.entries.clone(),
            predicate: None,
            credentials: self.credentials,
        }
    }

    fn case(&self) -> Case {
        Case {
            name: "generated",
            cors: self.build(),
            intent: self.intent(),
        }
    }

    /// Whether the policy means to let `method` through a preflight.
    fn allows_method(&self, method: &str) -> bool {
        matches!(method, "GET" | "HEAD" | "POST")
            || self.methods.as_ref().is_none_or(|l| l.contains(&method))
    }

    /// Whether the policy means to let a script send the header `name`.
    fn allows_header(&self, name: &str) -> bool {
        self.headers
            .as_ref()
            .is_none_or(|l| l.iter().any(|h| h.eq_ignore_ascii_case(name)))
    }

    /// Whether the policy means scripts of a fetch with this credentials mode to read the
    /// response header `name` (`*`: every header, but only without credentials).
    fn exposes(&self, name: &str, include: bool) -> bool {
        match &self.expose {
            None => !include && name != "set-cookie",
            Some(l) => l.iter().any(|h| h.eq_ignore_ascii_case(name)),
        }
    }
}

const HOSTS: [&str; 5] = [
    "app.example.com",
    "example.org",
    "corp.example",
    "localhost",
    "127.0.0.1",
];

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (
        prop::sample::select(vec!["https", "http"]),
        prop::sample::select(HOSTS.to_vec()),
        any::<bool>(),
        prop::sample::select(vec![
            Port::Default,
            Port::Exact(8443),
            Port::Exact(8000),
            Port::Any,
        ]),
    )
        .prop_map(|(scheme, host, subdomains, port)| Entry {
            scheme: scheme.into(),
            host: host.into(),
            subdomains: subdomains && host != "127.0.0.1",
            port,
        })
}

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop_oneof![
        1 => Just(None),
        3 => prop::sample::subsequence(pool, 0..=pool.len()).prop_map(Some),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        prop::bool::weighted(0.25),
        prop::collection::vec(entry_strategy(), 0..4),
        prop::bool::weighted(0.15),
        any::<bool>(),
        subset(&["PUT", "PATCH", "DELETE", "patch", "X-CUSTOM"]),
        subset(&["x-custom", "content-type", "authorization", "X-B"]),
        subset(&["x-request-id", "x-total"]),
    )
        .prop_map(
            |(any, mut entries, null, credentials, methods, headers, expose)| {
                // `*` stands alone in a list.
                if any {
                    entries.clear();
                } else if !null && entries.is_empty() {
                    entries.push(Entry::parse("https://app.example.com").unwrap());
                }
                Spec {
                    any,
                    entries,
                    null: null && !any,
                    credentials,
                    methods,
                    headers,
                    // `*` exposes nothing with credentials, and is refused then.
                    expose: if credentials {
                        Some(expose.unwrap_or_default())
                    } else {
                        expose
                    },
                }
            },
        )
}

/// Origins around the generated policies: allowed ones, near misses, `null`, malformed ones.
fn origin_strategy() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["https", "http", "HTTPS", "wss"]);
    let prefix = prop::sample::select(vec!["", "", "", "a.", "a.b.", "x-", "evil", "A."]);
    let host = prop::sample::select(
        HOSTS
            .iter()
            .copied()
            .chain(["example.com", "other.test", "[::1]"])
            .collect::<Vec<_>>(),
    );
    let suffix = prop::sample::select(vec!["", "", "", ".", ".evil.test", "_", "evil"]);
    let port = prop::sample::select(vec![
        "", "", "", ":8443", ":8000", ":80", ":443", ":1", ":65535", ":65536", ":08000", ":",
    ]);
    let tail = prop::sample::select(vec!["", "", "", "", "/", " ", "/x"]);
    prop_oneof![
        9 => (scheme, prefix, host, suffix, port, tail)
            .prop_map(|(s, p, h, x, o, t)| format!("{s}://{p}{h}{x}{o}{t}")),
        1 => Just("null".to_owned()),
        1 => "[ -~]{0,24}",
    ]
}

/// A request's CORS-relevant headers.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    origin: Option<String>,
    acrm: Option<&'static str>,
    acrh: Option<&'static str>,
}

impl Req {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = self
            .origin
            .as_deref()
            .and_then(|o| HeaderValue::from_str(o).ok())
        {
            h.insert("origin", o);
        }
        if let Some(m) = self.acrm {
            h.insert("access-control-request-method", HeaderValue::from_static(m));
        }
        if let Some(v) = self.acrh {
            h.insert(
                "access-control-request-headers",
                HeaderValue::from_static(v),
            );
        }
        h
    }

    fn method(&self) -> Method {
        Method::from_bytes(self.method.as_bytes()).unwrap()
    }
}

const ACRM: [&str; 6] = ["PUT", "PATCH", "patch", "DELETE", "GET", "X-CUSTOM"];
const ACRH: [&str; 5] = [
    "x-custom",
    "authorization,content-type",
    "x-b,x-custom",
    "x-other",
    "",
];

fn req_strategy() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec!["GET", "POST", "OPTIONS", "PUT"]),
        prop::option::weighted(0.85, origin_strategy()),
        prop::option::of(prop::sample::select(ACRM.to_vec())),
        prop::option::of(prop::sample::select(ACRH.to_vec())),
    )
        .prop_map(|(method, origin, acrm, acrh)| Req {
            method,
            origin,
            acrm,
            acrh,
        })
}

/// A request a browser sends: one well-formed (or `null`) origin; a preflight when `acrm` is set.
fn browser_req_strategy() -> impl Strategy<Value = Req> {
    let origin = prop_oneof![
        (
            prop::sample::select(vec!["https", "http"]),
            prop::sample::select(vec!["", "a.", "x-"]),
            prop::sample::select(HOSTS.to_vec()),
            prop::sample::select(vec!["", ":8443", ":8000", ":1"]),
        )
            .prop_map(|(s, p, h, o)| format!("{s}://{p}{h}{o}")),
        Just("null".to_owned()),
    ];
    (
        origin,
        prop::option::of(prop::sample::select(ACRM.to_vec())),
        prop::option::of(prop::sample::select(ACRH.to_vec())),
        prop::sample::select(vec!["GET", "POST"]),
    )
        .prop_map(|(origin, acrm, acrh, simple)| Req {
            method: if acrm.is_some() { "OPTIONS" } else { simple },
            origin: Some(origin),
            acrh: acrm.and(acrh),
            acrm,
        })
}

/// The response the server engine gives, with an application answer carrying two headers
/// scripts may or may not read.
fn answer(cors: &Policy, req: &Req) -> (u16, HeaderMap) {
    let d = cors.decide(&req.method(), &req.headers());
    let (status, mut app) = match d.action() {
        Action::Respond(s) => (s.as_u16(), HeaderMap::new()),
        Action::Forward => {
            let mut h = HeaderMap::new();
            h.insert("x-request-id", HeaderValue::from_static("7"));
            h.insert("content-type", HeaderValue::from_static("text/plain"));
            (200, h)
        }
    };
    d.into_parts().1.apply(&mut app);
    (status, app)
}

/// How a browser judges a response to `req` with a credentials mode, by the oracle: whether it
/// passes, and which of the two application headers the script may read.
fn verdict(req: &Req, status: u16, resp: &HeaderMap, include: bool) -> (bool, Vec<String>) {
    let origin = req.origin.as_deref().unwrap_or_default();
    let mut ok = oracle::cors_check(resp, origin, include);
    if let Some(m) = req.acrm {
        ok &= (200..=299).contains(&status) && oracle::preflight_allows_method(resp, m, include);
        for h in oracle::elements([req.acrh.unwrap_or_default().as_bytes()]) {
            let h = std::str::from_utf8(h).unwrap();
            ok &= oracle::preflight_allows_header(resp, h, include);
        }
        return (ok, Vec::new());
    }
    let listed = oracle::elements(
        resp.get_all("access-control-expose-headers")
            .iter()
            .map(|v| v.as_bytes()),
    );
    let readable = ["x-request-id"]
        .into_iter()
        .filter(|n| {
            ok && listed
                .iter()
                .any(|l| l.eq_ignore_ascii_case(n.as_bytes()) || (!include && *l == b"*"))
        })
        .map(str::to_owned)
        .collect();
    (ok, readable)
}

/// Whether a cache that stored `stored` for request `a` hands it out for request `b`: same
/// method, and every request header the response's `Vary` names has the same value.
fn cache_hit(a: &Req, b: &Req, stored: &HeaderMap) -> bool {
    if a.method != b.method {
        return false;
    }
    let (ha, hb) = (a.headers(), b.headers());
    oracle::elements(stored.get_all("vary").iter().map(|v| v.as_bytes()))
        .iter()
        .all(|token| {
            let Ok(name) = HeaderName::from_bytes(token) else {
                return false; // `*` and anything odd: never a hit
            };
            let lines = |h: &HeaderMap| -> Vec<Vec<u8>> {
                h.get_all(&name)
                    .iter()
                    .map(|v| v.as_bytes().to_vec())
                    .collect()
            };
            lines(&ha) == lines(&hb)
        })
}

/// A fetch from a page, as generated.
#[derive(Debug, Clone)]
struct Script {
    page: String,
    method: &'static str,
    /// (name, value, safelisted by the Fetch Standard)
    headers: Vec<(&'static str, &'static str, bool)>,
    credentials: Credentials,
}

fn script_strategy() -> impl Strategy<Value = Script> {
    let page = prop_oneof![
        3 => (
            prop::sample::select(vec!["https", "http"]),
            prop::sample::select(vec!["", "", "a.", "a.b."]),
            prop::sample::select(HOSTS.to_vec()),
            prop::sample::select(vec!["", "", ":8443", ":8000", ":1"]),
        )
            .prop_map(|(s, p, h, o)| {
                let p = if h == "127.0.0.1" { "" } else { p };
                format!("{s}://{p}{h}{o}")
            }),
        1 => prop::sample::select(vec!["https://evil.test", "http://app.example.com.evil.test", "null"])
            .prop_map(str::to_owned),
    ];
    let header_pool = vec![
        ("x-custom", "1", false),
        ("X-B", "2", false),
        ("authorization", "Bearer t", false),
        ("content-type", "application/json", false),
        ("content-type", "text/plain", true),
        ("accept", "*/*", true),
        ("content-language", "en", true),
    ];
    (
        page,
        prop::sample::select(vec![
            "GET", "HEAD", "POST", "PUT", "PATCH", "patch", "DELETE", "X-CUSTOM", "OPTIONS",
        ]),
        prop::sample::subsequence(header_pool, 0..=3),
        prop::sample::select(vec![
            Credentials::Omit,
            Credentials::SameOrigin,
            Credentials::Include,
        ]),
    )
        .prop_map(|(page, method, mut headers, credentials)| {
            // One Content-Type at most, as a script would set it.
            if headers.iter().filter(|h| h.0 == "content-type").count() > 1 {
                headers.retain(|h| h.0 != "content-type" || !h.2);
            }
            Script {
                page,
                method,
                headers,
                credentials,
            }
        })
}

const API: &str = "https://api.service.test/r";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn grants_only_what_the_policy_allows(spec in spec_strategy(), reqs in prop::collection::vec(req_strategy(), 1..6)) {
        let case = spec.case();
        for req in &reqs {
            let (method, headers) = (req.method(), req.headers());
            let d = case.cors.decide(&method, &headers);
            let resp = targets::applied(&d, &HeaderMap::new());
            targets::check_answer(&case, &method, &headers, &d, &resp);
            // And the other direction: a well-formed allowed origin is granted.
            if let Some(o) = req.origin.as_deref() {
                let browser_shaped = o == "null" || oracle::origin_parts(o.as_bytes()).is_some();
                if browser_shaped && case.intent.allows(o.as_bytes()) && !matches!(d.action(), Action::Respond(_)) {
                    prop_assert!(resp.contains_key("access-control-allow-origin"), "{o} refused");
                }
            }
        }
    }

    #[test]
    fn the_engines_agree_with_the_intent(spec in spec_strategy(), script in script_strategy()) {
        let cors = spec.build();
        let init = RequestInit {
            method: script.method.to_owned(),
            headers: script.headers.iter().map(|(n, v, _)| ((*n).to_owned(), (*v).to_owned())).collect(),
            credentials: script.credentials,
        };
        let mut fetch = Fetch::new(Browser::Chromium, &script.page, API, init).unwrap();
        let mut verdict = None;
        let mut last = HeaderMap::new();
        let mut exchanges = 0;
        while let Some(out) = fetch.request() {
            exchanges += 1;
            prop_assert!(exchanges <= 2, "more than a preflight and a request");
            let mut headers = HeaderMap::new();
            for (n, v) in &out.headers {
                headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            let method = Method::from_bytes(out.method.as_bytes()).unwrap();
            let d = cors.decide(&method, &headers);
            let (status, mut resp) = match d.action() {
                Action::Respond(s) => (s.as_u16(), HeaderMap::new()),
                Action::Forward => {
                    let mut h = HeaderMap::new();
                    h.insert("x-request-id", HeaderValue::from_static("7"));
                    h.insert("x-total", HeaderValue::from_static("9"));
                    h.insert("content-type", HeaderValue::from_static("text/plain"));
                    (200, h)
                }
            };
            d.into_parts().1.apply(&mut resp);
            if let Some(v) = fetch.receive(status, &resp) {
                verdict = Some(v);
            }
            last = resp;
        }
        let verdict = verdict.unwrap();

        // The intent, stated from the spec alone.
        let include = script.credentials == Credentials::Include;
        let normalized = match script.method.to_ascii_uppercase().as_str() {
            m @ ("DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT") => m.to_owned(),
            _ => script.method.to_owned(),
        };
        let unsafe_headers: Vec<&str> = script.headers.iter().filter(|h| !h.2).map(|h| h.0).collect();
        let preflight = !matches!(normalized.as_str(), "GET" | "HEAD" | "POST") || !unsafe_headers.is_empty();
        let origin_ok = if spec.any && !spec.credentials {
            !include
        } else {
            spec.intent().allows(script.page.as_bytes()) && (!include || spec.credentials)
        };
        let want = origin_ok
            && (!preflight
                || (spec.allows_method(&normalized) && unsafe_headers.iter().all(|h| spec.allows_header(h))));
        prop_assert_eq!(verdict.is_ok(), want, "{:?} {:?}: {:?}", spec, script, verdict);
        if let Ok(allowed) = verdict {
            let mut exposed: Vec<String> = last
                .keys()
                .map(|k| k.as_str().to_owned())
                .filter(|n| n == "content-type" || spec.exposes(n, include))
                .collect();
            exposed.sort();
            prop_assert_eq!(allowed.exposed, exposed, "{:?} {:?}", spec, script);
            prop_assert_eq!(allowed.preflighted, preflight);
        }
    }
}

/// The cache property with a count of the pairs that did share a cache entry: the second
/// request is the first with some of its CORS headers replaced, so that hits are common.
#[test]
fn a_shared_cache_never_changes_a_verdict() {
    const CASES: u32 = 4_000;
    let hits = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        spec_strategy(),
        browser_req_strategy(),
        req_strategy(),
        any::<[bool; 3]>(),
    );
    runner
        .run(&strategy, |(spec, then, other, keep)| {
            let cors = spec.build();
            // The cache stored the answer to `first`; `then` comes from a browser.
            let first = Req {
                method: then.method,
                origin: if keep[0] { then.origin.clone() } else { other.origin },
                acrm: if keep[1] { then.acrm } else { other.acrm },
                acrh: if keep[2] { then.acrh } else { other.acrh },
            };
            let (stored_status, stored) = answer(&cors, &first);
            if !cache_hit(&first, &then, &stored) {
                return Ok(());
            }
            hits.set(hits.get() + 1);
            let (status, fresh) = answer(&cors, &then);
            for include in [false, true] {
                prop_assert_eq!(
                    verdict(&then, stored_status, &stored, include),
                    verdict(&then, status, &fresh, include),
                    "{:?}: the answer to {:?} ({:?}), served from the cache for {:?}, is judged unlike its own ({:?}); include={}",
                    spec, first, stored, then, fresh, include
                );
            }
            Ok(())
        })
        .unwrap();
    println!("cache safety: {CASES} cases, {} cache hits", hits.get());
    assert!(hits.get() > CASES / 4, "only {} hits", hits.get());
}

/// A shared cache that stores `OPTIONS` answers (some CDNs can be told to) may store the
/// application's answer to an `OPTIONS` request that is not a preflight (no
/// `Access-Control-Request-Method`) and serve it for a preflight: the forwarded answer does not
/// vary on `Access-Control-Request-Method`, so the preflight fails. Found by the cache property;
/// the server engine is outside this change, so the case is pinned here until it is fixed.
#[test]
fn a_forwarded_options_answer_can_be_served_for_a_preflight() {
    for cors in [
        Policy::builder()
            .allow_origins(["*"])
            .allow_methods(["*"])
            .build()
            .unwrap(),
        Policy::builder()
            .allow_origins(["https://app.example.com"])
            .allow_methods(["PUT"])
            .build()
            .unwrap(),
    ] {
        let preflight = Req {
            method: "OPTIONS",
            origin: Some("https://app.example.com".into()),
            acrm: Some("PUT"),
            acrh: None,
        };
        let plain = Req {
            acrm: None,
            ..preflight.clone()
        };
        let (status, stored) = answer(&cors, &plain);
        assert!(
            !cache_hit(&plain, &preflight, &stored)
                || verdict(&preflight, status, &stored, false).0,
            "the forwarded OPTIONS answer {stored:?} is a cache hit for a preflight, which it fails"
        );
    }
}
