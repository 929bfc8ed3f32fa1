//! Property tests: the engine never allows an origin the policy does not, and its readers of
//! `Access-Control-Request-Method` and `-Headers` answer arbitrary bytes as an oracle says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use corsair::server::{Outcome, Rejection, MAX_REQUEST_HEADERS_ITEMS, MAX_REQUEST_HEADERS_LEN};
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

// ---------------------------------------------------------------------------------------------
// The preflight parsers on arbitrary bytes.
//
// The origin is fixed and allowed, so every request reaches the readers of
// `Access-Control-Request-Method` and `Access-Control-Request-Headers`; their values are
// arbitrary bytes (obs-text included) over one or more header lines, steered to and across the
// bounds of 4096 bytes and 64 elements. Every answer is compared with an oracle that restates the
// rules from the README and the Fetch Standard, without corsair's parser.
// ---------------------------------------------------------------------------------------------

const APP: &str = "https://app.example.com";

/// The policies under test: a list policy, an any-header policy with credentials (so methods
/// and headers are reflected), and a public any-header policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Any,
    Public,
}

const KINDS: [Kind; 3] = [Kind::List, Kind::Any, Kind::Public];

fn policy_of(kind: Kind) -> Policy {
    let b = Policy::builder();
    match kind {
        Kind::List => b
            .allow_origins([APP])
            .allow_methods(["PUT", "PATCH"])
            .allow_headers(["x-custom", "content-type"])
            .expose_headers(["x-request-id"])
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
        Kind::Any => b
            .allow_origins([APP])
            .allow_methods(["*"])
            .allow_headers(["*"])
            .allow_credentials(true),
        Kind::Public => b
            .allow_origins(["*"])
            .allow_methods(["*"])
            .allow_headers(["*"]),
    }
    .build()
    .unwrap()
}

/// RFC 9110 `tchar`, restated.
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the oracle expects for a request from [`APP`].
struct Expected {
    /// `None`: forwarded to the application.
    status: Option<u16>,
    /// Every CORS header and `Vary`, in full.
    headers: Vec<(&'static str, Vec<u8>)>,
    /// Empty when the request is allowed; otherwise the faults the request has (the engine
    /// must name one of them).
    faults: Vec<Rejection>,
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (*k, v.escape_ascii().to_string()))
            .collect();
        f.debug_struct("Expected")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("faults", &self.faults)
            .finish()
    }
}

/// The oracle. `acrm` and `acrh` are the lines of `Access-Control-Request-Method` and
/// `Access-Control-Request-Headers`, in order.
fn expect(kind: Kind, method: &Method, acrm: &[Vec<u8>], acrh: &[Vec<u8>]) -> Expected {
    let own = kind != Kind::Public;
    let mut headers: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let acao = if own { APP.as_bytes() } else { b"*" }.to_vec();
    headers.push(("access-control-allow-origin", acao));
    if own {
        headers.push(("access-control-allow-credentials", b"true".to_vec()));
    }
    // A preflight is OPTIONS with Origin and Access-Control-Request-Method (README).
    if method != Method::OPTIONS || acrm.is_empty() {
        if kind == Kind::List {
            headers.push(("access-control-expose-headers", b"x-request-id".to_vec()));
        }
        if *method == Method::OPTIONS {
            // Not a preflight, but a cache must never serve it for one (README, cache safety).
            headers.push((
                "vary",
                b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_vec(),
            ));
        } else if own {
            headers.push(("vary", b"Origin".to_vec()));
        }
        return Expected {
            status: None,
            headers,
            faults: vec![],
        };
    }

    let mut faults = Vec::new();
    // The method: exactly one line, a token, compared case-sensitively.
    let method_ok = acrm.len() == 1 && !acrm[0].is_empty() && acrm[0].iter().all(|&b| tchar(b));
    if !method_ok {
        faults.push(Rejection::MethodInvalid);
    } else if kind == Kind::List
        && ![&b"GET"[..], b"HEAD", b"POST", b"PUT", b"PATCH"].contains(&acrm[0].as_slice())
    {
        faults.push(Rejection::MethodNotAllowed);
    }
    match kind {
        Kind::List => headers.push(("access-control-allow-methods", b"PUT, PATCH".to_vec())),
        Kind::Any if method_ok => headers.push(("access-control-allow-methods", acrm[0].clone())),
        Kind::Public if method_ok => headers.push(("access-control-allow-methods", b"*".to_vec())),
        _ => {}
    }

    // The headers: all lines together at most 4096 bytes and 64 elements (empty ones counted),
    // as if joined with commas; elements trimmed of spaces and tabs, empty ones skipped.
    let joined = acrh.join(&b","[..]);
    let length: usize = acrh.iter().map(Vec::len).sum();
    let items = if acrh.is_empty() {
        0
    } else {
        joined.split(|&b| b == b',').count()
    };
    let elements: Vec<&[u8]> = joined
        .split(|&b| b == b',')
        .map(|e| {
            let start = e.iter().position(|&b| b != b' ' && b != b'\t');
            let end = e.iter().rposition(|&b| b != b' ' && b != b'\t');
            match (start, end) {
                (Some(s), Some(t)) => &e[s..=t],
                _ => &e[..0],
            }
        })
        .filter(|e| !e.is_empty())
        .collect();
    let mut header_faults = Vec::new();
    if length > MAX_REQUEST_HEADERS_LEN || items > MAX_REQUEST_HEADERS_ITEMS {
        header_faults.push(Rejection::HeadersTooLong);
    }
    if elements.iter().any(|e| !e.iter().all(|&b| tchar(b))) {
        header_faults.push(Rejection::HeadersInvalid);
    }
    if kind == Kind::List
        && elements.iter().any(|e| {
            e.iter().all(|&b| tchar(b))
                && !e.eq_ignore_ascii_case(b"x-custom")
                && !e.eq_ignore_ascii_case(b"content-type")
        })
    {
        header_faults.push(Rejection::HeaderNotAllowed);
    }
    match kind {
        Kind::List => headers.push((
            "access-control-allow-headers",
            b"x-custom, content-type".to_vec(),
        )),
        // Any header: the request's list is reflected when it is well-formed and not empty.
        _ if header_faults.is_empty() && !elements.is_empty() => {
            headers.push(("access-control-allow-headers", joined.clone()));
        }
        _ => {}
    }
    faults.extend(header_faults);
    if kind == Kind::List {
        headers.push(("access-control-max-age", b"600".to_vec()));
    }
    let vary = "Access-Control-Request-Method, Access-Control-Request-Headers";
    let vary = if own {
        format!("Origin, {vary}")
    } else {
        vary.to_owned()
    };
    headers.push(("vary", vary.into_bytes()));
    Expected {
        status: Some(204),
        headers,
        faults,
    }
}

/// Compares a response's headers with the oracle's, in full: nothing missing, nothing extra.
fn check_headers(got: &HeaderMap, want: &Expected) -> Result<(), TestCaseError> {
    let mut got_sorted: Vec<(String, String)> = got
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.as_bytes().escape_ascii().to_string(),
            )
        })
        .collect();
    got_sorted.sort();
    let mut want_sorted: Vec<(String, String)> = want
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.escape_ascii().to_string()))
        .collect();
    want_sorted.sort();
    prop_assert_eq!(
        got_sorted,
        want_sorted,
        "headers differ from the oracle's; expected {:?}",
        want
    );
    Ok(())
}

/// A byte a header value may hold: visible ASCII, space, tab, obs-text (0x80-0xFF).
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0x20u8..=0x7e, 1 => Just(b'\t'), 3 => 0x80u8..=0xff]
}

fn arbitrary_value(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(value_byte(), 0..max)
}

/// `Access-Control-Request-Method` lines: mostly one, a method or arbitrary bytes.
fn acrm_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![
        6 => prop::sample::select(vec!["PUT", "PATCH", "GET", "POST", "HEAD"])
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::sample::select(vec![
            "patch", "DELETE", "put", "OPTIONS", "*", " PUT", "PUT ", "P UT", "",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,10}".prop_map(String::into_bytes),
        2 => arbitrary_value(24),
    ];
    prop_oneof![
        1 => Just(vec![]),
        10 => prop::collection::vec(one.clone(), 1..=1),
        2 => prop::collection::vec(one, 2..=3),
    ]
}

/// An element of `Access-Control-Request-Headers`, well-formed or not.
fn acrh_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "x-custom", "X-Custom", "content-type", "Content-Type", " x-custom", "\tcontent-type \t",
            "x-other", "authorization", "*", "", " ", "x custom", "x/y",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}".prop_map(String::into_bytes),
        2 => arbitrary_value(16),
    ]
}

/// Splits `s` into 1 to 3 header lines at commas (each comma at a split is dropped, so the
/// list keeps its elements), at the positions `cuts` choose.
fn split_at_commas(s: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let commas: Vec<usize> = s
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b',')
        .map(|(i, _)| i)
        .collect();
    let mut at: Vec<usize> = if commas.is_empty() {
        vec![]
    } else {
        cuts.iter().map(|c| commas[c.index(commas.len())]).collect()
    };
    at.sort_unstable();
    at.dedup();
    let mut lines = Vec::new();
    let mut start = 0;
    for i in at {
        lines.push(s[start..i].to_vec());
        start = i + 1;
    }
    lines.push(s[start..].to_vec());
    lines
}

/// `Access-Control-Request-Headers` lines: arbitrary mixtures, lists of about 4096 bytes, and
/// lists of about 64 elements.
fn acrh_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let allowed = prop::sample::select(vec!["x-custom", "Content-Type", "X-CUSTOM"]);
    let cuts = prop::collection::vec(any::<prop::sample::Index>(), 0..=2);
    // Arbitrary: up to four lines of up to six pieces.
    let mixture = prop::collection::vec(
        prop::collection::vec(acrh_piece(), 0..6).prop_map(|p| p.join(&b","[..])),
        0..=4,
    );
    // Around the length bound: allowed names (sometimes one that is not), padded with
    // whitespace to a total length of 4090..=4102 bytes.
    let long = (
        prop::collection::vec(allowed.clone(), 1..5),
        prop::option::weighted(0.2, acrh_piece()),
        prop_oneof![3 => 4095usize..=4097, 1 => 4090usize..=4102],
        any::<prop::sample::Index>(),
        cuts.clone(),
    )
        .prop_map(|(names, odd, total, pad_at, cuts)| {
            let mut elements: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
            if let Some(odd) = odd {
                elements.push(odd);
            }
            let lines = split_at_commas(&elements.join(&b","[..]), &cuts);
            let length: usize = lines.iter().map(Vec::len).sum();
            let mut lines = lines;
            let i = pad_at.index(lines.len());
            let pad = total.saturating_sub(length);
            lines[i].splice(0..0, std::iter::repeat_n(b' ', pad));
            lines
        });
    // One long token: allowed by an any-header policy up to the bound.
    let token = prop_oneof![3 => 4094usize..=4098, 1 => 4000usize..=4200]
        .prop_map(|n| vec![[b"x-".as_slice(), &vec![b'a'; n - 2]].concat()]);
    // Around the element bound: 60..=68 elements, allowed names or empty.
    let element = prop_oneof![
        4 => allowed.prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => Just(" ".to_owned()),
    ];
    let many = (prop_oneof![2 => 63usize..=65, 1 => 60usize..=68], cuts)
        .prop_flat_map(move |(n, cuts)| (prop::collection::vec(element.clone(), n..=n), Just(cuts)))
        .prop_map(|(elements, cuts)| split_at_commas(elements.join(",").as_bytes(), &cuts));
    prop_oneof![5 => mixture, 2 => long, 1 => token, 2 => many]
}

/// A request from [`APP`]: mostly `OPTIONS`, sometimes another method.
fn request_strategy() -> impl Strategy<Value = (Method, Vec<Vec<u8>>, Vec<Vec<u8>>)> {
    let method = prop_oneof![
        8 => Just(Method::OPTIONS),
        1 => Just(Method::GET),
        1 => Just(Method::PUT),
    ];
    (method, acrm_strategy(), acrh_strategy())
}

fn request_headers(acrm: &[Vec<u8>], acrh: &[Vec<u8>]) -> HeaderMap {
    let mut req = HeaderMap::new();
    req.insert("origin", HeaderValue::from_static(APP));
    for line in acrm {
        req.append(
            "access-control-request-method",
            HeaderValue::from_bytes(line).unwrap(),
        );
    }
    for line in acrh {
        req.append(
            "access-control-request-headers",
            HeaderValue::from_bytes(line).unwrap(),
        );
    }
    req
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The engine's answer to arbitrary method and header values is the oracle's, headers and
    /// verdict, for a list policy and two any-header policies.
    #[test]
    fn preflight_readers_match_the_oracle_on_arbitrary_bytes(
        (method, acrm, acrh) in request_strategy(),
    ) {
        let req = request_headers(&acrm, &acrh);
        for kind in KINDS {
            let want = expect(kind, &method, &acrm, &acrh);
            let decision = policy_of(kind).decide(&method, &req);
            match decision.outcome() {
                Outcome::Allowed => prop_assert!(want.faults.is_empty(), "{:?}: allowed, oracle {:?}", kind, want),
                Outcome::Rejected(r) => prop_assert!(want.faults.contains(&r), "{:?}: rejected {:?}, oracle {:?}", kind, r, want),
                Outcome::NotCors => prop_assert!(false, "a request with Origin is CORS"),
            }
            let (action, cors) = decision.into_parts();
            let want_action = match want.status {
                None => corsair::server::Action::Forward,
                Some(s) => corsair::server::Action::Respond(http::StatusCode::from_u16(s).unwrap()),
            };
            prop_assert_eq!(action, want_action, "{:?}", kind);
            let mut resp = HeaderMap::new();
            cors.apply(&mut resp);
            check_headers(&resp, &want)?;
        }
    }
}

#[cfg(feature = "tower")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The same property through the tower layer: status and headers as the oracle says, and
    /// the application reached exactly when the request is not a preflight.
    #[test]
    fn the_tower_layer_matches_the_oracle_on_arbitrary_bytes(
        (method, acrm, acrh) in request_strategy(),
    ) {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tower::{Layer, ServiceExt};

        for kind in KINDS {
            let want = expect(kind, &method, &acrm, &acrh);
            let calls = Arc::new(AtomicUsize::new(0));
            let app = {
                let calls = calls.clone();
                tower::service_fn(move |_req: http::Request<()>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(())))
                })
            };
            let svc = corsair::tower::CorsLayer::new(policy_of(kind)).layer(app);
            let mut req = http::Request::new(());
            *req.method_mut() = method.clone();
            *req.headers_mut() = request_headers(&acrm, &acrh);
            let fut = std::pin::pin!(svc.oneshot(req));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(resp) = fut.poll(&mut cx) else {
                panic!("the layer's future was not ready at once");
            };
            let resp = resp.unwrap();
            prop_assert_eq!(resp.status().as_u16(), want.status.unwrap_or(200), "{:?}", kind);
            prop_assert_eq!(calls.load(Ordering::SeqCst), usize::from(want.status.is_none()), "{:?}", kind);
            check_headers(resp.headers(), &want)?;
        }
    }
}

/// The request generator reaches every branch of the oracle, on both sides of both bounds.
#[test]
fn request_generator_reaches_every_branch() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = request_strategy();
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    let mut bump = |k: &str| *tally.entry(k.to_owned()).or_default() += 1;
    for _ in 0..3_000 {
        let (method, acrm, acrh) = strategy.new_tree(&mut runner).unwrap().current();
        let length: usize = acrh.iter().map(Vec::len).sum();
        let items: usize = acrh
            .iter()
            .map(|l| l.iter().filter(|&&b| b == b',').count() + 1)
            .sum();
        if acrh.len() > 1 {
            bump("several header lines");
        }
        if acrm.len() > 1 {
            bump("several method lines");
        }
        if acrh
            .iter()
            .chain(&acrm)
            .any(|l| l.iter().any(|&b| b >= 0x80))
        {
            bump("obs-text");
        }
        for (lo, hi, name) in [
            (4090, 4096, "length 4090..=4096"),
            (4096, 4096, "length 4096"),
            (4097, 4097, "length 4097"),
            (4097, 4102, "length 4097..=4102"),
        ] {
            if (lo..=hi).contains(&length) {
                bump(name);
            }
        }
        for (n, name) in [(64, "64 items"), (65, "65 items")] {
            if items == n {
                bump(name);
            }
        }
        for kind in KINDS {
            let want = expect(kind, &method, &acrm, &acrh);
            let verdict = match want.faults.first() {
                None if want.status.is_none() => "forwarded".to_owned(),
                None => "allowed preflight".to_owned(),
                Some(r) => r.as_str().to_owned(),
            };
            bump(&format!("{kind:?} {verdict}"));
            if want.faults.is_empty() && want.status.is_some() && length > 4000 {
                bump(&format!("{kind:?} allowed near the length bound"));
            }
            if want.faults.is_empty() && want.status.is_some() && items == 64 {
                bump(&format!("{kind:?} allowed at 64 items"));
            }
        }
    }
    let mut wanted: Vec<String> = [
        "several header lines",
        "several method lines",
        "obs-text",
        "length 4090..=4096",
        "length 4096",
        "length 4097",
        "length 4097..=4102",
        "64 items",
        "65 items",
    ]
    .map(str::to_owned)
    .to_vec();
    for kind in KINDS {
        for v in [
            "forwarded",
            "allowed preflight",
            "method-invalid",
            "headers-too-long",
            "headers-invalid",
            "allowed near the length bound",
            "allowed at 64 items",
        ] {
            wanted.push(format!("{kind:?} {v}"));
        }
    }
    wanted.push("List method-not-allowed".to_owned());
    wanted.push("List header-not-allowed".to_owned());
    for w in &wanted {
        let n = tally.get(w).copied().unwrap_or(0);
        assert!(
            n >= 10,
            "only {n} generated requests for {w:?}; tally {tally:#?}"
        );
    }
}
