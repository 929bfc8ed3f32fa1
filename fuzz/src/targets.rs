//! The body of each fuzz target: decode the input, run corsair, and check invariants against
//! the independent oracle (`oracle.rs`), not only the absence of a panic. One definition, used by
//! the libFuzzer binaries in `fuzz/fuzz_targets/` and by the stable corpus replay
//! (`crates/corsair/tests/fuzz_corpus.rs`).
//!
//! Inputs are text-like so that corpus files read as the requests they stand for:
//! - `request_origin`: the bytes of an `Origin` header;
//! - `request_headers`: one header line per input line, `M…` an `Access-Control-Request-Method`
//!   line, `H…` (or anything else) an `Access-Control-Request-Headers` line;
//! - `server`: `METHOD`, request header lines `name: value`, a blank line, then the header lines
//!   the application's response already has;
//! - `browser`: `METHOD [omit|same-origin|include] [chromium|firefox|safari]`, the script's
//!   header lines, then one block per response (blank-line separated): a status line, header
//!   lines;
//! - `policy_file`: a TOML policy file.

use std::sync::OnceLock;

use corsair::browser::{Browser, Credentials, Fetch, RequestInit, MAX_REDIRECTS};
use corsair::origin::RequestOrigin;
use corsair::server::{self, Action, Decision, Outcome, Reasons};
use corsair::{Policy, PolicySet};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::oracle::{self, Entry, Intent, Port};

/// The lines of `data`, without a trailing `\r`.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Header lines `name: value` into a map, in order; lines that are not a valid header are
/// skipped, as a server's HTTP parser would refuse them.
fn header_map<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let start = value
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(value.len());
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&value[start..]),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// `first line`, the header lines up to a blank line, and the lines after it.
fn head(data: &[u8]) -> (&[u8], HeaderMap, HeaderMap) {
    let mut it = lines(data);
    let first = it.next().unwrap_or_default();
    let request: Vec<&[u8]> = it.by_ref().take_while(|l| !l.is_empty()).collect();
    (first, header_map(request), header_map(it))
}

/// A policy under test with what it means to allow.
pub struct Case {
    pub name: &'static str,
    pub cors: Policy,
    pub intent: Intent,
}

fn entry(s: &str) -> Entry {
    Entry::parse(s).unwrap_or_else(|| panic!("oracle entry {s}"))
}

/// A predicate written the safe way: parse, then compare the host with its parent domain.
pub fn tenant_predicate(origin: &str) -> bool {
    origin
        .strip_prefix("https://")
        .and_then(|host| host.strip_suffix(".tenant.example"))
        .is_some_and(|sub| {
            !sub.is_empty()
                && sub
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The fixed policies the server target runs every input against.
pub fn server_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let listed = [
            "https://app.example.com",
            "https://*.example.org",
            "http://localhost:*",
            "https://*.corp.example:8443",
            "http://[::1]:*",
        ];
        vec![
            Case {
                name: "list-credentials",
                cors: Policy::builder()
                    .allow_origins(listed)
                    .allow_methods(["PUT", "PATCH"])
                    .allow_headers(["x-custom", "content-type"])
                    .expose_headers(["x-request-id"])
                    .allow_credentials(true)
                    .max_age(std::time::Duration::from_secs(600))
                    .build()
                    .unwrap(),
                intent: Intent {
                    entries: listed.iter().map(|s| entry(s)).collect(),
                    credentials: true,
                    ..Intent::default()
                },
            },
            Case {
                name: "public",
                cors: Policy::builder()
                    .allow_origins(["*"])
                    .allow_methods(["*"])
                    .allow_headers(["*"])
                    .expose_headers(["x-request-id"])
                    .build()
                    .unwrap(),
                intent: Intent {
                    any: true,
                    ..Intent::default()
                },
            },
            Case {
                name: "any-origin-credentials",
                cors: Policy::builder()
                    .allow_origins(["*"])
                    .allow_methods(["*"])
                    .allow_headers(["*"])
                    .expose_headers(["x-request-id"])
                    .allow_credentials(true)
                    .dangerously_allow_credentials_with_any_origin(true)
                    .build()
                    .unwrap(),
                intent: Intent {
                    any: true,
                    credentials: true,
                    ..Intent::default()
                },
            },
            Case {
                name: "null-allowed",
                cors: Policy::builder()
                    .allow_origins(["null", "https://app.example.com"])
                    .dangerously_allow_null_origin(true)
                    .allow_private_network(true)
                    .build()
                    .unwrap(),
                intent: Intent {
                    null: true,
                    entries: vec![entry("https://app.example.com")],
                    ..Intent::default()
                },
            },
            Case {
                name: "predicate",
                cors: Policy::builder()
                    .allow_origin_predicate(tenant_predicate)
                    .allow_credentials(true)
                    .build()
                    .unwrap(),
                intent: Intent {
                    predicate: Some(tenant_predicate),
                    credentials: true,
                    ..Intent::default()
                },
            },
        ]
    })
}

/// The response a decision produces from the application's headers.
pub fn applied(decision: &Decision, app: &HeaderMap) -> HeaderMap {
    let mut resp = app.clone();
    decision.clone().into_parts().1.apply(&mut resp);
    resp
}

/// The middleware's answer (`server::answer`, which skips the checks that only explain a
/// refusal when nobody traces), as an action and the response it produces.
pub fn middleware(
    cors: &Policy,
    method: &Method,
    req: &HeaderMap,
    app: &HeaderMap,
) -> (Action, HeaderMap) {
    let set = PolicySet::single(cors.clone());
    let (action, headers) =
        server::answer(&set, method, "/", req, Reasons::WhenTraced).into_parts();
    let mut resp = app.clone();
    headers.apply(&mut resp);
    (action, resp)
}

/// The response headers as (name, lines) in name order, for comparing two responses.
fn normalized(h: &HeaderMap) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut v: Vec<_> = h
        .keys()
        .map(|k| {
            (
                k.as_str().to_owned(),
                h.get_all(k).iter().map(|v| v.as_bytes().to_vec()).collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Whether `Vary` names `token` (or is `*`).
pub fn varies_on(resp: &HeaderMap, token: &str) -> bool {
    oracle::elements(resp.get_all("vary").iter().map(|v| v.as_bytes()))
        .iter()
        .any(|t| *t == b"*" || t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The invariants every answer keeps, whatever the request:
/// - `Access-Control-Allow-Origin` only for an origin the policy means to allow, sent alone
///   (one `Origin` header), or `*` from a public policy;
/// - never `*` (origin, methods, headers, exposed) together with credentials;
/// - no other CORS header without `Access-Control-Allow-Origin`;
/// - a public policy answers `*` to every request but preflights; every other policy varies on
///   `Origin` on every response;
/// - only preflights are answered, with 403 or a success status.
pub fn check_answer(case: &Case, method: &Method, req: &HeaderMap, d: &Decision, resp: &HeaderMap) {
    let name = case.name;
    let preflight = method == Method::OPTIONS
        && req.contains_key("origin")
        && req.contains_key("access-control-request-method");
    match d.action() {
        Action::Respond(s) => {
            assert!(
                preflight,
                "{name}: answered a request that is not a preflight"
            );
            assert!(
                s.as_u16() == 403 || s.is_success(),
                "{name}: preflight answered {s}"
            );
        }
        Action::Forward => assert!(!preflight, "{name}: forwarded a preflight"),
    }
    let acao: Vec<&[u8]> = resp
        .get_all("access-control-allow-origin")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let acac: Vec<&[u8]> = resp
        .get_all("access-control-allow-credentials")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    assert!(acao.len() <= 1, "{name}: {} ACAO lines", acao.len());
    assert!(acac.len() <= 1, "{name}: {} ACAC lines", acac.len());
    match acao.first() {
        Some(&b"*") => {
            assert!(case.intent.public(), "{name}: `*` from a non-public policy");
            assert!(acac.is_empty(), "{name}: `*` with credentials");
        }
        Some(v) => {
            let origins: Vec<&[u8]> = req.get_all("origin").iter().map(|o| o.as_bytes()).collect();
            assert_eq!(origins, [*v], "{name}: ACAO is not the one Origin sent");
            assert!(
                case.intent.allows(v),
                "{name}: ACAO {:?} for an origin the policy does not allow",
                String::from_utf8_lossy(v)
            );
        }
        None => {
            for h in [
                "access-control-allow-credentials",
                "access-control-allow-methods",
                "access-control-allow-headers",
                "access-control-expose-headers",
                "access-control-max-age",
                "access-control-allow-private-network",
            ] {
                assert!(!resp.contains_key(h), "{name}: {h} without ACAO");
            }
        }
    }
    if let Some(v) = acac.first() {
        assert_eq!(*v, b"true", "{name}: ACAC value");
        assert!(
            case.intent.credentials,
            "{name}: credentials not granted by the policy"
        );
        for h in [
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-expose-headers",
        ] {
            let items = oracle::elements(resp.get_all(h).iter().map(|v| v.as_bytes()));
            assert!(
                !items.contains(&&b"*"[..]),
                "{name}: {h}: * with credentials"
            );
        }
    }
    if case.intent.public() {
        if !preflight {
            assert_eq!(acao, [b"*"], "{name}: a public policy's answer without `*`");
        }
    } else {
        assert!(varies_on(resp, "origin"), "{name}: no Vary: Origin");
    }
    if d.outcome() == Outcome::NotCors {
        assert!(
            !req.contains_key("origin"),
            "{name}: NotCors with an Origin"
        );
    }
}

/// Origin parsing agrees with the oracle: a value is accepted exactly when it is a serialized
/// origin (for IPv6 hosts the oracle knows only the canonical spelling, which must be accepted),
/// and an accepted value reassembles from its parts, lowercase, without the default port.
pub fn request_origin(data: &[u8]) {
    let parsed = RequestOrigin::parse(data);
    if oracle::origin_parts(data).is_some() {
        assert!(
            parsed.is_some(),
            "refused the serialized origin {:?}",
            String::from_utf8_lossy(data)
        );
    }
    let Some(o) = parsed else {
        return;
    };
    assert_eq!(o.as_str().as_bytes(), data);
    let rebuilt = match o.port() {
        Some(p) => format!("{}://{}:{p}", o.scheme(), o.host()),
        None => format!("{}://{}", o.scheme(), o.host()),
    };
    assert_eq!(rebuilt, o.as_str(), "parts do not reassemble");
    assert!(!o
        .as_str()
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace()));
    assert!(!o.host().bytes().any(|b| b"/?#@\\:".contains(&b)) || o.host().starts_with('['));
    assert!(!o.host().is_empty());
    match (o.scheme(), o.port()) {
        ("http" | "ws", Some(80)) | ("https" | "wss", Some(443)) => panic!("default port kept"),
        _ => {}
    }
    // Every origin the oracle calls serialized is accepted, and the other way round but for
    // IPv6 spellings the oracle keeps canonical only.
    if !o.host().starts_with('[') {
        assert!(
            oracle::origin_parts(data).is_some(),
            "accepted {:?}, which is not a serialized origin",
            o.as_str()
        );
    }
}

/// A preflight policy: the policy, whether it allows any header, its methods and headers.
type HeaderCase = (
    Policy,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

/// The preflight policies the `Access-Control-Request-Headers` target runs against.
fn header_cases() -> &'static [HeaderCase] {
    static CASES: OnceLock<Vec<HeaderCase>> = OnceLock::new();
    CASES.get_or_init(|| {
        const METHODS: &[&str] = &["PUT", "PATCH", "x-Custom"];
        const HEADERS: &[&str] = &["x-custom", "content-type", "authorization"];
        vec![
            (
                Policy::builder()
                    .allow_origins(["https://app.example.com"])
                    .allow_methods(METHODS.iter().copied())
                    .allow_headers(HEADERS.iter().copied())
                    .allow_credentials(true)
                    .build()
                    .unwrap(),
                false,
                METHODS,
                HEADERS,
            ),
            (
                Policy::builder()
                    .allow_origins(["https://app.example.com"])
                    .allow_methods(METHODS.iter().copied())
                    .allow_headers(["*"])
                    .allow_credentials(true)
                    .build()
                    .unwrap(),
                true,
                METHODS,
                &[],
            ),
            (
                Policy::builder()
                    .allow_origins(["https://app.example.com", "https://other.example"])
                    .allow_methods(METHODS.iter().copied())
                    .allow_headers(["*"])
                    .build()
                    .unwrap(),
                true,
                METHODS,
                &[],
            ),
        ]
    })
}

/// Preflights from an allowed origin with arbitrary `Access-Control-Request-Method` and
/// `-Headers` lines: the engine allows exactly what an independent reading of the lines and the
/// bounds (4096 bytes over all lines, 64 elements, empty ones included) allows, and the answer
/// lists every requested header.
pub fn request_headers(data: &[u8]) {
    let mut req = HeaderMap::new();
    req.insert(
        "origin",
        HeaderValue::from_static("https://app.example.com"),
    );
    let (mut acrm, mut acrh) = (Vec::new(), Vec::new());
    for line in lines(data) {
        let (target, value) = match line.first() {
            Some(b'M') => (&mut acrm, &line[1..]),
            Some(b'H') => (&mut acrh, &line[1..]),
            _ => (&mut acrh, line),
        };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            target.push(v);
        }
    }
    for v in &acrm {
        req.append("access-control-request-method", v.clone());
    }
    for v in &acrh {
        req.append("access-control-request-headers", v.clone());
    }
    if acrm.is_empty() {
        // Not a preflight; nothing of this target's to check.
        return;
    }
    let acrh_lines: Vec<&[u8]> = acrh.iter().map(|v| v.as_bytes()).collect();
    let within_bounds = acrh_lines.iter().map(|l| l.len()).sum::<usize>() <= 4096
        && acrh_lines
            .iter()
            .map(|l| l.iter().filter(|&&b| b == b',').count() + 1)
            .sum::<usize>()
            <= 64;
    let requested = oracle::elements(acrh_lines.iter().copied());
    for (cors, any_header, methods, headers) in header_cases() {
        let method_ok = acrm.len() == 1 && {
            let m = acrm[0].as_bytes();
            oracle::is_token(m)
                && (matches!(m, b"GET" | b"HEAD" | b"POST")
                    || methods.iter().any(|x| x.as_bytes() == m))
        };
        let headers_ok = within_bounds
            && requested.iter().all(|h| {
                oracle::is_token(h)
                    && (*any_header || headers.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(h)))
            });
        let d = cors.decide(&Method::OPTIONS, &req);
        assert_eq!(
            d.outcome() == Outcome::Allowed,
            method_ok && headers_ok,
            "any_header={any_header}: {:?} for ACRM {acrm:?} ACRH {acrh:?}",
            d.outcome()
        );
        let resp = applied(&d, &HeaderMap::new());
        let (action, fast) = middleware(cors, &Method::OPTIONS, &req, &HeaderMap::new());
        assert_eq!(action, d.action());
        assert_eq!(
            normalized(&resp),
            normalized(&fast),
            "the middleware's answer differs from decide's"
        );
        assert_eq!(
            resp.get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"https://app.example.com"[..])
        );
        let answered = oracle::elements(
            resp.get_all("access-control-allow-headers")
                .iter()
                .map(|v| v.as_bytes()),
        );
        assert!(
            answered.iter().all(|h| oracle::is_token(h)),
            "ACAH {answered:?}"
        );
        if d.outcome() == Outcome::Allowed {
            for h in &requested {
                assert!(
                    answered.iter().any(|a| a.eq_ignore_ascii_case(h)),
                    "requested {h:?} not in ACAH {answered:?}"
                );
            }
        }
        if !any_header {
            let want: Vec<&[u8]> = headers.iter().map(|h| h.as_bytes()).collect();
            assert_eq!(answered, want, "a listed policy answers its list");
        }
    }
}

/// Arbitrary requests (method and headers) against fixed policies, answers checked by
/// [`check_answer`]; the middleware's answer (`server::answer`) is the same as `decide`'s.
pub fn server(data: &[u8]) {
    let (first, req, app) = head(data);
    let Ok(method) = Method::from_bytes(first) else {
        return;
    };
    for case in server_cases() {
        let d = case.cors.decide(&method, &req);
        let (action, fast) = middleware(&case.cors, &method, &req, &app);
        assert_eq!(d.action(), action, "{}", case.name);
        let resp = applied(&d, &app);
        assert_eq!(
            normalized(&resp),
            normalized(&fast),
            "{}: the middleware's answer differs from decide's",
            case.name
        );
        check_answer(case, &method, &req, &d, &resp);
    }
}

const PAGE: &str = "http://localhost:8000";
const URL: &str = "http://localhost:9000/api";

/// One fetch from `http://localhost:8000` to `http://localhost:9000/api` fed arbitrary responses
/// (statuses, redirects, CORS headers): every response the engine lets through passes the
/// Fetch Standard's CORS check as restated by the oracle, every passed preflight was a success
/// status that lists the method and headers, preflights carry no credentials, the exposed names
/// are the response's own (never `Set-Cookie`), and redirects are bounded.
pub fn browser(data: &[u8]) {
    let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
    let mut blocks = text.split("\n\n");
    let mut request = blocks.next().unwrap_or_default().lines();
    let mut words = request.next().unwrap_or_default().split(' ');
    let method = words.next().unwrap_or_default().to_owned();
    let credentials = match words.next() {
        Some("include") => Credentials::Include,
        Some("omit") => Credentials::Omit,
        _ => Credentials::SameOrigin,
    };
    let browser = match words.next() {
        Some("firefox") => Browser::Firefox,
        Some("safari") => Browser::Safari,
        _ => Browser::Chromium,
    };
    let headers = request
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim_start().to_owned()))
        .collect();
    let init = RequestInit {
        method,
        headers,
        credentials,
    };
    let Ok(mut fetch) = Fetch::new(browser, PAGE, URL, init) else {
        return;
    };
    let include = credentials == Credentials::Include;
    let mut hops = 0;
    for block in blocks.take(2 * MAX_REDIRECTS + 8) {
        let Some(out) = fetch.request() else {
            break;
        };
        let mut it = block.lines();
        let status = it
            .next()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| (100..=999).contains(s))
            .unwrap_or(200);
        let resp = header_map(it.map(str::as_bytes));
        let sent = |name: &str| {
            out.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let origin = sent("origin");
        if out.preflight {
            assert_eq!(out.method, "OPTIONS");
            assert!(!out.credentials, "a preflight with credentials");
            assert_eq!(
                sent("access-control-request-method").as_deref(),
                Some(fetch.method())
            );
        } else {
            assert!(origin.is_some(), "a cross-origin request without Origin");
            if credentials == Credentials::Omit {
                assert!(!out.credentials);
            }
        }
        let unsafe_names = fetch.unsafe_header_names();
        let method = fetch.method().to_owned();
        let verdict = fetch.receive(status, &resp);
        let passed = matches!(verdict, None | Some(Ok(_)));
        let origin = origin.unwrap_or_default();
        if passed {
            assert!(
                oracle::cors_check(&resp, &origin, include),
                "passed a response that fails the CORS check (origin {origin}, status {status}, {resp:?})"
            );
        }
        if out.preflight && passed {
            assert!(
                (200..=299).contains(&status),
                "passed a preflight with status {status}"
            );
            assert!(oracle::preflight_allows_method(&resp, &method, include));
            for n in &unsafe_names {
                assert!(oracle::preflight_allows_header(&resp, n, include), "{n}");
            }
        }
        if !out.preflight && verdict.is_none() {
            hops += 1;
            assert!(
                hops <= MAX_REDIRECTS,
                "more than {MAX_REDIRECTS} redirects followed"
            );
        }
        if let Some(Ok(allowed)) = &verdict {
            assert_eq!(allowed.status, status);
            for n in &allowed.exposed {
                assert!(
                    resp.contains_key(n.as_str()),
                    "exposed {n}, not in the response"
                );
                assert!(!n.eq_ignore_ascii_case("set-cookie"));
            }
        }
        if verdict.is_some() {
            break;
        }
    }
}

/// Policy files: a valid file's policies keep [`check_answer`]'s invariants for origins taken
/// from the file itself and a few others, where the file's origins can be restated by the
/// oracle; an invalid file gets errors whose lines exist.
pub fn policy_file(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let set = match PolicySet::from_toml(source) {
        Ok(set) => set,
        Err(errors) => {
            assert!(!errors.errors().is_empty(), "an error without problems");
            let lines = source.lines().count() + 1;
            for e in errors.errors() {
                assert!(
                    e.line().is_none_or(|l| (1..=lines).contains(&l)),
                    "{e}: line beyond the file"
                );
                assert!(!e.to_string().is_empty());
            }
            return;
        }
    };
    // The intent of the whole file: the union of its tables, when the oracle can read them all.
    let Ok(table) = source.parse::<toml::Table>() else {
        panic!("a file corsair accepts is not TOML");
    };
    let mut tables = vec![&table];
    if let Some(toml::Value::Array(routes)) = table.get("route") {
        tables.extend(routes.iter().filter_map(toml::Value::as_table));
    }
    let mut intent = Intent::default();
    let mut readable = true;
    let mut probes: Vec<String> = [
        "https://app.example.com",
        "http://localhost:8000",
        "https://evil.example",
        "null",
    ]
    .map(str::to_owned)
    .to_vec();
    for t in &tables {
        let flag = |k: &str| t.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
        intent.credentials |= flag("allow_credentials");
        let origins = t.get("allow_origins").and_then(toml::Value::as_array);
        for o in origins
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
        {
            match o {
                "*" => intent.any = true,
                "null" => intent.null |= flag("dangerously_allow_null_origin"),
                _ => match Entry::parse(o) {
                    Some(e) => {
                        probes.extend(instances(&e));
                        intent.entries.push(e);
                    }
                    None => readable = false,
                },
            }
        }
    }
    let public_somewhere = tables.iter().any(|t| {
        let creds = t.get("allow_credentials").and_then(toml::Value::as_bool) == Some(true);
        let any = t
            .get("allow_origins")
            .and_then(toml::Value::as_array)
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("*")));
        any && !creds
    });
    let mut paths = vec!["/".to_owned(), "/no-route-here".to_owned()];
    for p in set.route_prefixes() {
        paths.push(p.to_owned());
        paths.push(format!("{p}/x"));
    }
    for path in &paths {
        let cors = set.for_path(path);
        for origin in &probes {
            let Ok(value) = HeaderValue::from_str(origin) else {
                continue;
            };
            for (method, preflight) in [(Method::GET, false), (Method::OPTIONS, true)] {
                let mut req = HeaderMap::new();
                req.insert("origin", value.clone());
                if preflight {
                    req.insert(
                        "access-control-request-method",
                        HeaderValue::from_static("PUT"),
                    );
                    req.insert(
                        "access-control-request-headers",
                        HeaderValue::from_static("x-a"),
                    );
                }
                let resp = applied(&cors.decide(&method, &req), &HeaderMap::new());
                let acac = resp.get("access-control-allow-credentials");
                if let Some(acao) = resp.get("access-control-allow-origin") {
                    if acao == "*" {
                        assert!(acac.is_none(), "`*` with credentials");
                        assert!(public_somewhere, "`*` from a file without a public table");
                    } else {
                        assert_eq!(acao, value, "ACAO is not the request's origin");
                        assert!(
                            !readable || intent.allows(origin.as_bytes()),
                            "ACAO for {origin}, which no table of the file allows"
                        );
                        if origin == "null" {
                            assert!(intent.null || !readable, "null granted without its option");
                        }
                    }
                } else {
                    assert!(acac.is_none(), "ACAC without ACAO");
                }
                if acac.is_some() {
                    assert!(cors.allows_credentials());
                }
            }
        }
    }
}

/// Origins an entry is about: its own host, a subdomain, a look-alike, with ports around its
/// pattern.
fn instances(e: &Entry) -> Vec<String> {
    let ports = match e.port {
        Port::Default => vec![String::new(), ":8443".to_owned()],
        Port::Exact(p) => vec![format!(":{p}"), String::new()],
        Port::Any => vec![":1".to_owned(), ":65535".to_owned(), String::new()],
    };
    let hosts = [
        e.host.clone(),
        format!("a.{}", e.host),
        format!("a{}", e.host),
        format!("{}.evil", e.host),
    ];
    let mut out = Vec::new();
    for h in &hosts {
        for p in &ports {
            out.push(format!("{}://{h}{p}", e.scheme));
        }
    }
    out
}
