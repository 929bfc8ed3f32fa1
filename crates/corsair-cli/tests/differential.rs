//! The browser engine against real browsers, family by family.
//!
//! Every case is a `fetch()` a page runs in headless Chromium, in Firefox ESR and in WebKitGTK
//! (Safari's engine: Debian's `MiniBrowser` on an `Xvfb` display), against a
//! scripted server that answers each case's preflight and actual request (and each hop of a
//! redirect chain) as the case says, and logs what the browser sent. corsair's browser engine
//! (`corsair::browser::Fetch`, with a `PreflightCache` where a family repeats fetches) makes the
//! same requests to the same server. On every case the verdicts must agree, the exposed header
//! names must equal what the page could read, the requests the browser sent (method, hop,
//! `Origin`, `Access-Control-Request-Headers`) must be the ones the engine sent, and for every
//! case a browser blocked, the engine's message (`CorsError::console_message`) must equal the
//! browser's console message, word for word (when several headers are unlisted, the one
//! Chromium names in its header-map order; WebKit's two lines are paired by its `Fetch API
//! cannot load URL` line; Firefox's, read from its console service through Marionette, a reason
//! and the `CORS request did not succeed` line that follows it for the same URL, see
//! `corsair_testkit::matrix::firefox_messages`). Each run prints, per engine, its
//! verdict, readable-header and message agreement. Counted but not asserted, because the engine
//! does not model them: the `Content-Type` Firefox puts on the wire after a redirect (left out
//! of its request comparison), and WebKit's on hops after a method-changing redirect where it
//! differs (listed as `unmodelled`). Firefox's `cache` sequences are asserted like the other
//! engines': its frame first settles the DNS records its preflight cache checks (see
//! `corsair_testkit::pages`); without that, the first lookups in a fresh Firefox miss and which
//! sequence loses a cached preflight depends on timing. WebKitGTK has no host-resolver switch: it reaches the loopback servers
//! through the testkit's forward proxy, whose `Connection: close` is left out of the headers
//! WebKit could read.
//!
//! The families, each tallied on its own:
//! - `random`: 1,000 seeded cases (method, headers, credentials, answers right, wrong, missing,
//!   duplicated, wildcard, odd casing, non-2xx and one-hop redirects); these also go through
//!   `corsair check`'s own code path;
//! - `safelist`: request-header values on either side of each CORS-safelisted rule (the
//!   128-byte value, the 1024-byte total, MIME types with parameters, `Range` forms, language
//!   bytes, client hints, repeated headers): the oracle is whether the browser sent a preflight
//!   and which names it put in `Access-Control-Request-Headers`;
//! - `cache`: fetches repeated on one URL, with pauses, under varied `Access-Control-Max-Age`,
//!   methods, headers, credentials and cache modes: the browser's preflights against the
//!   engine's with a `PreflightCache` following the browser's rules (Chromium's, Firefox's
//!   merged per-name entries, or WebKit's, which also keeps refused preflights);
//! - `merge`: sequences whose successive preflights answer differently (the scripted server's
//!   `Script::preflights`, given in turn), allowing other methods and header names for other
//!   times, so that what a second preflight does to an entry shows: Firefox adds its names,
//!   each with its own expiry, Chromium and WebKit replace the entry;
//! - `unsafe`: several CORS-unsafe headers at once, some left unlisted (which one the console
//!   names);
//! - `redirects`: chains of two to four hops, statuses 301, 302, 303, 307, 308, across origins;
//! - `bodies`: strings, `URLSearchParams`, `FormData` and `Blob`s of several types;
//! - `same-origin`, `null` and `https` page origins (a page on the API's own origin, a sandboxed
//!   frame, a page over TLS with a local CA): seeded cases like `random`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use corsair::browser::{
    Blocked, Browser as Rules, Credentials, Fetch, PreflightCache, RequestBody, RequestInit,
};
use corsair_cli::check::{self, CheckArgs};
use corsair_testkit::matrix::console_captured;
use corsair_testkit::scripted::{Answer, Logged, Script, ScriptedServer, ENGINE_MARK};
use corsair_testkit::{Case, Frame, Headless, PageOptions, PageServer, Run, Seen};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CASES: usize = 1_000;
const SEED: u64 = 0x5eed_c0de_2026;

/// splitmix64: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// Picks from (weight, value) pairs.
    fn weighted<T: Clone>(&mut self, items: &[(usize, T)]) -> T {
        let total: usize = items.iter().map(|(w, _)| w).sum();
        let mut r = self.below(total);
        for (w, v) in items {
            if r < *w {
                return v.clone();
            }
            r -= w;
        }
        items[0].1.clone()
    }
}

/// Request headers a script may set, and whether Chromium safelists them (from the spec and
/// the safelist probes; the generator needs it to keep at most one header disallowed).
const HEADER_POOL: &[(&str, &str, bool)] = &[
    ("x-a", "1", false),
    ("X-B", "2", false),
    ("x-c", "3", false),
    ("authorization", "Bearer t", false),
    ("content-type", "text/plain", true),
    ("content-type", "application/json", false),
    ("accept", "application/json", true),
    ("accept-language", "en_US", false),
    ("range", "bytes=0-", true),
    ("dpr", "2", true),
];

struct Generated {
    id: String,
    method: String,
    headers: Vec<(String, String)>,
    credentials: Credentials,
    script: Script,
}

fn credentials_str(c: Credentials) -> &'static str {
    match c {
        Credentials::Omit => "omit",
        Credentials::SameOrigin => "same-origin",
        Credentials::Include => "include",
    }
}

/// An `Access-Control-Allow-Origin` variant (empty: leave the header out).
fn allow_origin(rng: &mut Rng, origin: &str, page_host_upper: &str) -> Vec<String> {
    rng.weighted(&[
        (40, vec![origin.to_owned()]),
        (12, vec!["*".to_owned()]),
        (10, vec![]),
        (5, vec!["http://other.test".to_owned()]),
        (4, vec![page_host_upper.to_owned()]),
        (4, vec![format!("{origin}/")]),
        (4, vec![origin.to_owned(), origin.to_owned()]),
        (4, vec![format!("{origin}, http://x.test")]),
        (5, vec![format!("  {origin}  ")]),
        (3, vec!["null".to_owned()]),
        (3, vec!["page.test".to_owned()]),
    ])
}

fn allow_credentials(rng: &mut Rng) -> Option<String> {
    rng.weighted(&[
        (40, None),
        (40, Some("true".to_owned())),
        (6, Some("TRUE".to_owned())),
        (6, Some("false".to_owned())),
        (8, Some(" true ".to_owned())),
    ])
}

fn cors_headers(rng: &mut Rng, origin: &str, upper: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = allow_origin(rng, origin, upper)
        .into_iter()
        .map(|v| ("access-control-allow-origin".to_owned(), v))
        .collect();
    if let Some(v) = allow_credentials(rng) {
        h.push(("access-control-allow-credentials".to_owned(), v));
    }
    h
}

fn generate(id: String, rng: &mut Rng, origin: &str, upper: &str, api2: &str) -> Generated {
    let method: String = rng
        .weighted(&[
            (30, "GET"),
            (14, "POST"),
            (5, "HEAD"),
            (14, "PUT"),
            (8, "DELETE"),
            (8, "PATCH"),
            (5, "patch"),
            (4, "put"),
            (4, "PROPFIND"),
        ])
        .to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut unsafe_names: Vec<String> = Vec::new();
    for _ in 0..rng.weighted(&[(35, 0), (35, 1), (20, 2), (10, 3)]) {
        let (n, v, safe) = HEADER_POOL[rng.below(HEADER_POOL.len())];
        if headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
            continue;
        }
        headers.push((n.to_owned(), v.to_owned()));
        if !safe {
            unsafe_names.push(n.to_ascii_lowercase());
        }
    }
    let credentials = rng.weighted(&[
        (35, Credentials::Omit),
        (30, Credentials::SameOrigin),
        (35, Credentials::Include),
    ]);
    let include = credentials == Credentials::Include;

    // The preflight answer.
    let mut pre = cors_headers(rng, origin, upper);
    let upper_method = method.to_ascii_uppercase();
    let methods: Option<String> = rng.weighted(&[
        (10, None),
        (30, Some(method.clone())),
        (8, Some(method.to_ascii_lowercase())),
        (8, Some(upper_method.clone())),
        (12, Some("*".to_owned())),
        (14, Some("GET, PUT, DELETE, PATCH".to_owned())),
        (4, Some("PUT DELETE".to_owned())),
        (6, Some(format!(",{method},, POST"))),
    ]);
    if let Some(m) = methods {
        pre.push(("access-control-allow-methods".to_owned(), m));
    }
    // At most one unsafe header may be left unlisted: which one Chromium names then is not
    // specified (it follows its own header map's order).
    let listed_all = |rng: &mut Rng| {
        unsafe_names
            .iter()
            .map(|n| {
                if rng.chance(30) {
                    n.to_ascii_uppercase()
                } else {
                    n.clone()
                }
            })
            .collect::<Vec<_>>()
    };
    let mut choices: Vec<(usize, Option<String>)> = vec![
        (30, Some(listed_all(rng).join(", "))),
        (4, Some("x-a y".to_owned())),
    ];
    if !include || unsafe_names.len() <= 1 {
        choices.push((14, Some("*".to_owned())));
    }
    if unsafe_names.len() <= 1 {
        choices.push((12, None));
    }
    if !unsafe_names.is_empty() {
        let mut some = listed_all(rng);
        some.remove(rng.below(some.len()));
        some.push("x-unrelated".to_owned());
        choices.push((12, Some(some.join(","))));
    }
    if let Some(h) = rng.weighted(&choices) {
        pre.push(("access-control-allow-headers".to_owned(), h));
    }
    if let Some(age) = rng.weighted(&[
        (50, None),
        (10, Some("0")),
        (10, Some("5")),
        (10, Some("-1")),
        (10, Some("abc")),
        (10, Some("86400")),
    ]) {
        pre.push(("access-control-max-age".to_owned(), age.to_owned()));
    }
    let pre_status = rng.weighted(&[(50, 204), (25, 200), (7, 403), (8, 500), (10, 302)]);
    if pre_status == 302 {
        pre.push(("location".to_owned(), format!("/c/{id}/r")));
    }

    // The actual answer.
    let mut act = cors_headers(rng, origin, upper);
    if let Some(e) = rng.weighted(&[
        (40, None),
        (20, Some("x-exposed")),
        (15, Some("*")),
        (10, Some("X-Exposed, x-other")),
        (5, Some("x-exposed x")),
        (10, Some("set-cookie, x-other")),
    ]) {
        act.push(("access-control-expose-headers".to_owned(), e.to_owned()));
    }
    act.push(("x-exposed".to_owned(), "1".to_owned()));
    if rng.chance(50) {
        act.push(("x-other".to_owned(), "2".to_owned()));
    }
    if rng.chance(30) {
        act.push(("content-language".to_owned(), "en".to_owned()));
    }
    if rng.chance(20) {
        act.push(("set-cookie".to_owned(), "a=b".to_owned()));
    }
    let act_status = rng.weighted(&[
        (52, 200),
        (6, 201),
        (6, 204),
        (8, 404),
        (8, 500),
        (10, 302),
        (5, 307),
        (5, 303),
    ]);
    let mut hop_pre = Vec::new();
    let mut hop_act = Vec::new();
    if matches!(act_status, 302 | 307 | 303) {
        let cross = rng.chance(40);
        let location = if cross {
            if rng.chance(10) {
                format!(
                    "{}/c/{id}/r",
                    api2.replacen("http://", "http://user:pw@", 1)
                )
            } else {
                format!("{api2}/c/{id}/r")
            }
        } else {
            format!("/c/{id}/r")
        };
        act.push(("location".to_owned(), location));
        // After a cross-origin redirect from a cross-origin URL the origin is `null`.
        let hop_origin = if cross { "null" } else { origin };
        hop_act = cors_headers(rng, hop_origin, upper);
        hop_pre = cors_headers(rng, hop_origin, upper);
        hop_pre.push(("access-control-allow-methods".to_owned(), method.clone()));
        hop_pre.push((
            "access-control-allow-headers".to_owned(),
            if include {
                listed_all(rng).join(",")
            } else {
                "*".to_owned()
            },
        ));
    }
    Generated {
        id,
        method,
        headers,
        credentials,
        script: Script {
            preflight: Answer {
                status: pre_status,
                headers: pre,
            },
            actual: Answer {
                status: act_status,
                headers: act,
            },
            hop_preflight: Answer {
                status: 204,
                headers: hop_pre,
            },
            hop_actual: Answer {
                status: 200,
                headers: hop_act,
            },
            hops: Vec::new(),
            preflights: Vec::new(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The cases of every family, as the page runs them and as the engine replays them.

/// One fetch of one family.
#[derive(Debug, Clone)]
struct Planned {
    family: &'static str,
    /// The case's own id (unique).
    id: String,
    /// The id in the URL (`/c/{key}`): shared by the fetches of one `cache` sequence.
    key: String,
    origin: String,
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    credentials: Credentials,
    /// The body as the engine sees it and as the page makes it (`body_type`).
    body: Option<(RequestBody, Option<String>)>,
    /// The `cache` family: the group, the pause before the fetch, and the planned second
    /// (since the group's start) at which the fetch happens.
    seq: u32,
    pause_ms: u64,
    at: u64,
    /// Whether `corsair check` runs it too.
    check: bool,
    /// The cache mode (`default` lets the browser use its preflight cache).
    cache: &'static str,
}

impl Planned {
    fn new(family: &'static str, id: String, origin: &str, url: String) -> Planned {
        Planned {
            family,
            key: id.clone(),
            id,
            origin: origin.to_owned(),
            url,
            method: "GET".to_owned(),
            headers: Vec::new(),
            credentials: Credentials::Omit,
            body: None,
            seq: 0,
            pause_ms: 0,
            at: 0,
            check: false,
            cache: "no-store",
        }
    }

    fn case(&self) -> Case {
        let mut c = Case::new(
            &self.id,
            &self.url,
            &self.method,
            &self.headers,
            credentials_str(self.credentials),
        );
        if let Some((_, body_type)) = &self.body {
            c.body = Some("a=1&b=2".to_owned());
            c.body_type = body_type.clone();
        }
        c.seq = self.seq;
        c.pause_ms = self.pause_ms;
        c.cache = self.cache.to_owned();
        c
    }
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn answer(status: u16, headers: Vec<(String, String)>) -> Answer {
    Answer { status, headers }
}

/// A preflight answer that allows everything but credentials, cached for no time.
fn allow_all(origin: &str) -> Answer {
    answer(
        204,
        h(&[
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", "*"),
            ("access-control-allow-headers", "*"),
            ("access-control-max-age", "0"),
        ]),
    )
}

fn ok_for(origin: &str) -> Answer {
    answer(200, h(&[("access-control-allow-origin", origin)]))
}

// ---- safelist -------------------------------------------------------------------------------

/// Header sets on either side of each safelist rule of `corsair::browser::safelist`.
fn safelist_headers() -> Vec<(&'static str, Vec<(String, String)>)> {
    let a = |n: usize| "a".repeat(n);
    let d = |n: usize| "1".repeat(n);
    let one = |n: &str, v: String| vec![(n.to_owned(), v)];
    let mut out: Vec<(&'static str, Vec<(String, String)>)> = Vec::new();
    // The 128-byte value limit, per safelisted name.
    for name in ["accept", "accept-language", "content-language"] {
        for n in [127, 128, 129, 200] {
            out.push(("GET", one(name, a(n))));
        }
    }
    let ct = |n: usize| format!("text/plain;a={}", "b".repeat(n - 13));
    for n in [127, 128, 129] {
        out.push(("POST", one("content-type", ct(n))));
    }
    for n in [127, 128, 129] {
        out.push(("GET", one("range", format!("bytes=0-{}", d(n - 8)))));
    }
    // Bytes that make a value unsafe, in `accept`, and the same bytes in a language.
    for b in [
        // (0x7f and controls other than tab never reach the server: its HTTP parser refuses them)
        "\"", "(", ")", ":", "<", ">", "?", "@", "[", "\\", "]", "{", "}", "\t", "/", "_", "'", "+",
        "!", "#", "é",
    ] {
        out.push(("GET", one("accept", format!("a{b}b"))));
        out.push(("GET", one("accept-language", format!("en{b}us"))));
    }
    for v in [
        "en-US,en;q=0.9",
        "*",
        "",
        "en US",
        "en.US=1;*",
        "de-CH, fr;q=0.5",
        "123",
    ] {
        out.push(("GET", one("accept-language", v.to_owned())));
        out.push(("GET", one("content-language", v.to_owned())));
    }
    // Content-Type: essences, parameters, case, whitespace, malformed types.
    for v in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "TEXT/PLAIN",
        "text/plain;",
        "text/plain ;x=y",
        "text/plain; charset=\"utf-8\"",
        "text/plain;charset=utf-8;format=flowed",
        "multipart/form-data",
        "multipart/form-data; boundary=----x",
        "multipart/form-data;boundary=\"q\"",
        "Multipart/Form-Data; Boundary=abc",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded;charset=UTF-8",
        "application/x-www-form-urlencoded ; x",
        "application/json",
        "text/html",
        "text/plainx",
        "text/ plain",
        "text /plain",
        "text",
        "text/",
        "/plain",
        "text/plain/x",
        "multipart/mixed; boundary=x",
        "text/plain, application/json",
        "application/json, text/plain",
        "text/plain;a=b,c",
        "text/plain,text/plain",
        "text/plain, multipart/form-data",
        "text/plain,",
        ",text/plain",
        "text/plain;a=é",
        "*/*",
        "",
    ] {
        out.push(("POST", one("content-type", v.to_owned())));
    }
    // Range forms.
    for v in [
        "bytes=0-",
        "bytes=0-0",
        "bytes=1-0",
        "bytes=5-10",
        "bytes=-5",
        "bytes=0-1,2-3",
        "bytes= 0-1",
        "bytes=0 -1",
        "bytes=00-01",
        "Bytes=0-1",
        "BYTES=0-",
        "bytes=0-1 ,",
        "items=0-1",
        "bytes=",
        "bytes=-",
        "bytes=a-1",
        "bytes=99999999999999999999-",
        "bytes=0-99999999999999999999",
        "bytes=18446744073709551616-18446744073709551617",
        "bytes=2-1",
    ] {
        out.push(("GET", one("range", v.to_owned())));
    }
    // Client hints (Chromium safelists them when well-formed).
    for (n, v) in [
        ("dpr", "2"),
        ("dpr", "2.5"),
        ("dpr", "-1"),
        ("dpr", "abc"),
        ("dpr", "1e3"),
        ("dpr", ".5"),
        ("dpr", "5."),
        ("dpr", "1.2.3"),
        ("dpr", "05"),
        ("dpr", "+1"),
        ("dpr", "0.5"),
        ("device-memory", "0.25"),
        ("device-memory", "8"),
        ("downlink", "1.5"),
        ("rtt", "100"),
        ("rtt", "1.5"),
        ("ect", "4g"),
        ("ect", "5g"),
        ("ect", "slow-2g"),
        ("save-data", "on"),
        ("save-data", "off"),
        ("viewport-width", "800"),
        ("viewport-width", "80.5"),
        ("width", "100"),
        ("width", "-1"),
        ("sec-ch-ua", "x"),
    ] {
        out.push(("GET", one(n, v.to_owned())));
    }
    // Repeated headers: the combined value is what is checked.
    out.push((
        "GET",
        h(&[("accept-language", "en"), ("accept-language", "fr")]),
    ));
    out.push((
        "POST",
        h(&[
            ("content-type", "text/plain"),
            ("content-type", "text/plain"),
        ]),
    ));
    out.push(("GET", h(&[("range", "bytes=0-1"), ("range", "bytes=2-3")])));
    out.push(("GET", h(&[("accept", &a(70)), ("accept", &a(70))])));
    out.push((
        "POST",
        h(&[
            ("content-type", "text/plain"),
            ("content-type", "application/json"),
        ]),
    ));
    // Repeated entries of 128 bytes each, 1024 and 1152 in all.
    for n in [8, 9] {
        out.push((
            "GET",
            (0..n).map(|_| ("accept".to_owned(), a(128))).collect(),
        ));
    }
    // The 1024-byte total: four full safelisted values (512 bytes) and client hints making up
    // the rest, to just under, at and just over the limit.
    let base = |extra: usize| {
        let mut v = vec![
            ("accept".to_owned(), a(128)),
            ("accept-language".to_owned(), a(128)),
            ("content-language".to_owned(), a(128)),
            ("content-type".to_owned(), ct(128)),
        ];
        let mut left = extra;
        for n in [
            "dpr",
            "device-memory",
            "downlink",
            "rtt",
            "viewport-width",
            "width",
        ] {
            let take = left.min(128);
            if take == 0 {
                break;
            }
            v.push((n.to_owned(), d(take)));
            left -= take;
        }
        v
    };
    for extra in [511, 512, 513, 640] {
        out.push(("POST", base(extra)));
    }
    // Without client hints: accept, both languages, content-type and range at 128 each.
    out.push((
        "POST",
        vec![
            ("accept".to_owned(), a(128)),
            ("accept-language".to_owned(), a(128)),
            ("content-language".to_owned(), a(128)),
            ("content-type".to_owned(), ct(128)),
            ("range".to_owned(), format!("bytes=0-{}", d(120))),
        ],
    ));
    // A safelisted header next to an unsafe one.
    out.push(("GET", h(&[("accept", "x"), ("x-a", "1")])));
    out
}

fn safelist_family(scripts: &mut Vec<(String, Script)>, origin: &str, api: &str) -> Vec<Planned> {
    safelist_headers()
        .into_iter()
        .enumerate()
        .map(|(i, (method, headers))| {
            let id = format!("s{i:03}");
            scripts.push((
                id.clone(),
                Script {
                    preflight: allow_all(origin),
                    actual: ok_for(origin),
                    ..Script::default()
                },
            ));
            let mut p = Planned::new("safelist", id.clone(), origin, format!("{api}/c/{id}"));
            p.method = method.to_owned();
            p.headers = headers;
            p
        })
        .collect()
}

// ---- cache ----------------------------------------------------------------------------------

const CACHE_SEQUENCES: usize = 48;

/// Each sequence fetches from a host of its own (`k012.api.test`, resolved to 127.0.0.1), so
/// that the browsers' six connections per host do not queue one sequence's fetches behind
/// another's and its pauses stay what they say.
fn cache_family(
    rng: &mut Rng,
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    api_port: u16,
    first_seq: u32,
) -> Vec<Planned> {
    let mut out = Vec::new();
    for i in 0..CACHE_SEQUENCES {
        let key = format!("k{i:03}");
        let api = format!("http://{key}.api.test:{api_port}");
        let mut pre = vec![
            ("access-control-allow-origin".to_owned(), origin.to_owned()),
            (
                "access-control-allow-credentials".to_owned(),
                "true".to_owned(),
            ),
        ];
        let methods = rng.weighted(&[(40, "PUT"), (30, "PUT, PATCH"), (30, "*")]);
        pre.push((
            "access-control-allow-methods".to_owned(),
            methods.to_owned(),
        ));
        let names = rng.weighted(&[(30, "x-a"), (40, "x-a, x-b"), (30, "*")]);
        pre.push(("access-control-allow-headers".to_owned(), names.to_owned()));
        // Pauses are 0, 3 or 6 seconds and lifetimes 0, 3, 5 or long: a lifetime is either
        // reached (the time between two fetches is at least their pause, never less) or at
        // least 2 seconds away, which the fetches' own time, even on a loaded machine, does not
        // use up.
        let ages: Vec<&str> = rng.weighted(&[
            (12, vec![]),
            (10, vec!["0"]),
            (8, vec!["-1"]),
            (14, vec!["3"]),
            (6, vec!["5"]),
            (8, vec!["86400"]),
            (5, vec!["99999999999999999999"]),
            (6, vec!["abc"]),
            (5, vec!["1.5"]),
            (5, vec![" 3 "]),
            (5, vec!["+3"]),
            (4, vec!["3", "1"]),
            (4, vec!["3, 1"]),
        ]);
        for a in ages {
            pre.push(("access-control-max-age".to_owned(), a.to_owned()));
        }
        let status = rng.weighted(&[(70, 204), (30, 200)]);
        let act = vec![
            ("access-control-allow-origin".to_owned(), origin.to_owned()),
            (
                "access-control-allow-credentials".to_owned(),
                "true".to_owned(),
            ),
        ];
        scripts.push((
            key.clone(),
            Script {
                preflight: answer(status, pre),
                actual: answer(200, act),
                ..Script::default()
            },
        ));
        let fetches = 3 + rng.below(4);
        let mut at_ms = 0u64;
        let long_gap = i % 8 == 0; // a few sequences wait past the 5-second default
        for j in 0..fetches {
            let mut p = Planned::new(
                "cache",
                format!("{key}.{j}"),
                origin,
                format!("{api}/c/{key}"),
            );
            p.key = key.clone();
            p.seq = first_seq + u32::try_from(i).unwrap();
            p.method = rng
                .weighted(&[(45, "PUT"), (20, "PATCH"), (10, "DELETE"), (25, "GET")])
                .to_owned();
            let mut headers = Vec::new();
            for (n, pct) in [("x-a", 50), ("x-b", 30)] {
                if rng.chance(pct) {
                    headers.push((n.to_owned(), "1".to_owned()));
                }
            }
            if p.method == "GET" && headers.is_empty() {
                headers.push(("x-a".to_owned(), "1".to_owned()));
            }
            p.headers = headers;
            p.credentials = rng.weighted(&[(75, Credentials::Omit), (25, Credentials::Include)]);
            p.cache = rng.weighted(&[(80, "default"), (10, "no-store"), (10, "reload")]);
            if j > 0 {
                p.pause_ms = if long_gap && j == fetches - 1 {
                    6_000
                } else if !long_gap && at_ms < 6_000 && rng.chance(35) {
                    3_000
                } else {
                    0
                };
            }
            at_ms += p.pause_ms;
            p.at = at_ms / 1_000;
            out.push(p);
        }
    }
    out
}

// ---- merge ----------------------------------------------------------------------------------

/// One preflight answer of a `merge` sequence: the methods and header names it allows (left
/// out when empty) and its `Access-Control-Max-Age`.
struct Allows(&'static str, &'static str, &'static str);

/// One fetch of a `merge` sequence: method, unsafe header names, cache mode, pause before it
/// in milliseconds.
struct Does(&'static str, &'static [&'static str], &'static str, u64);

/// The `merge` scenarios: successive preflights on one URL answer differently (the scripted
/// server gives a key's preflights its answers in turn), so that what a second preflight does
/// to the entry the first made shows: Firefox adds its names, each with its own expiry, and
/// renews the names it repeats; Chromium and WebKit replace the entry. Each scenario is
/// written so that the rules part somewhere (the comments say where, C: Chromium, F: Firefox,
/// S: WebKit). Pauses of 3 seconds reach the 3-second lifetimes; the 30-second ones are never
/// reached.
fn merge_scenarios() -> Vec<(Vec<Allows>, Vec<Does>)> {
    vec![
        // Names with their own expiry. PATCH x-b: F keeps PUT x-a (30 s) and adds PATCH x-b
        // (3 s); C and S hold PATCH x-b only. PUT x-a x-b: F from its cache, C and S preflight.
        // After 3 s, PUT x-a: F's PUT and x-a are fresh; PATCH x-a: F's PATCH has expired.
        (
            vec![
                Allows("PUT", "x-a", "30"),
                Allows("PATCH", "x-b", "3"),
                Allows("PUT, PATCH", "x-a, x-b", "30"),
            ],
            vec![
                Does("PUT", &["x-a"], "default", 0),
                Does("PATCH", &["x-b"], "default", 0),
                Does("PUT", &["x-a", "x-b"], "default", 0),
                Does("PUT", &["x-a"], "default", 3_000),
                Does("PATCH", &["x-a"], "default", 0),
            ],
        ),
        // A `reload` fetch's preflight, sent without a look at the cache (C, F; S looks and
        // drops the entry), replaces C's entry and adds to F's: then PUT x-a is a miss in C.
        (
            vec![
                Allows("PUT", "x-a", "30"),
                Allows("PUT", "x-b", "30"),
                Allows("PUT", "x-a, x-b", "30"),
            ],
            vec![
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-b"], "reload", 0),
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-a", "x-b"], "default", 0),
            ],
        ),
        // Methods: PATCH (3 s) after PUT (30 s), by a `reload` fetch. After 3 s, PUT is still
        // fresh in F and has expired everywhere else; F's PATCH has expired.
        (
            vec![
                Allows("PUT", "", "30"),
                Allows("PATCH", "", "3"),
                Allows("PUT, PATCH", "", "3"),
            ],
            vec![
                Does("PUT", &[], "default", 0),
                Does("PATCH", &[], "reload", 0),
                Does("PUT", &[], "default", 0),
                Does("PUT", &[], "default", 3_000),
                Does("PATCH", &[], "default", 0),
            ],
        ),
        // A second preflight kept no time: C drops its entry, F leaves its entry as it was.
        (
            vec![
                Allows("PUT", "x-a", "30"),
                Allows("PUT", "x-b", "0"),
                Allows("PUT", "x-a, x-b", "30"),
            ],
            vec![
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-b"], "reload", 0),
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-a", "x-b"], "default", 0),
            ],
        ),
        // A `no-store` fetch's preflight: C neither reads nor stores it (its entry keeps x-a),
        // F adds x-b, S looks (a miss: the entry goes) and stores x-b.
        (
            vec![
                Allows("PUT", "x-a", "30"),
                Allows("PUT", "x-b", "30"),
                Allows("PUT", "x-a, x-b", "30"),
            ],
            vec![
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-b"], "no-store", 0),
                Does("PUT", &["x-a"], "default", 0),
                Does("PUT", &["x-a", "x-b"], "default", 0),
            ],
        ),
        // Three preflights, three names and two methods: F holds them all at the fourth fetch.
        (
            vec![
                Allows("PUT", "x-a", "30"),
                Allows("PATCH", "x-b", "30"),
                Allows("PUT", "x-c", "30"),
                Allows("PUT, PATCH", "x-a, x-b, x-c", "30"),
            ],
            vec![
                Does("PUT", &["x-a"], "default", 0),
                Does("PATCH", &["x-b"], "default", 0),
                Does("PUT", &["x-c"], "default", 0),
                Does("PUT", &["x-a", "x-b", "x-c"], "default", 0),
                Does("PATCH", &["x-a"], "default", 0),
            ],
        ),
    ]
}

/// The `merge` family: each scenario of [`merge_scenarios`] without and with credentials, each
/// on a host of its own (`m003.api.test`) like the `cache` family's sequences.
fn merge_family(
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    api_port: u16,
    first_seq: u32,
) -> Vec<Planned> {
    let mut out = Vec::new();
    let scenarios = merge_scenarios();
    let runs = [Credentials::Omit, Credentials::Include]
        .into_iter()
        .flat_map(|c| scenarios.iter().map(move |s| (c, s)));
    for (i, (credentials, (answers, fetches))) in runs.enumerate() {
        let key = format!("m{i:03}");
        let api = format!("http://{key}.api.test:{api_port}");
        let cors = h(&[
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
        ]);
        let preflights = answers
            .iter()
            .map(|Allows(methods, names, age)| {
                let mut pre = cors.clone();
                for (n, v) in [
                    ("access-control-allow-methods", methods),
                    ("access-control-allow-headers", names),
                ] {
                    if !v.is_empty() {
                        pre.push((n.to_owned(), (*v).to_owned()));
                    }
                }
                pre.push(("access-control-max-age".to_owned(), (*age).to_owned()));
                answer(204, pre)
            })
            .collect();
        scripts.push((
            key.clone(),
            Script {
                actual: answer(200, cors),
                preflights,
                ..Script::default()
            },
        ));
        let mut at_ms = 0;
        for (j, Does(method, names, cache, pause_ms)) in fetches.iter().enumerate() {
            let mut p = Planned::new(
                "merge",
                format!("{key}.{j}"),
                origin,
                format!("{api}/c/{key}"),
            );
            p.key = key.clone();
            p.seq = first_seq + u32::try_from(i).unwrap();
            p.method = (*method).to_owned();
            p.headers = names
                .iter()
                .map(|n| ((*n).to_owned(), "1".to_owned()))
                .collect();
            p.credentials = credentials;
            p.cache = cache;
            p.pause_ms = *pause_ms;
            at_ms += pause_ms;
            p.at = at_ms / 1_000;
            out.push(p);
        }
    }
    out
}

// ---- several unsafe headers -----------------------------------------------------------------

const UNSAFE_POOL: &[(&str, &str)] = &[
    ("X-Alpha", "1"),
    ("x-beta", "2"),
    ("X-GAMMA", "3"),
    ("authorization", "Bearer t"),
    ("x-delta", "4"),
    ("content-type", "application/json"),
    ("accept-language", "en_US"),
    ("x-zeta", "6"),
    ("X-Eta", "7"),
    ("range", "bytes=-1"),
];

fn unsafe_family(
    rng: &mut Rng,
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    api: &str,
) -> Vec<Planned> {
    (0..80)
        .map(|i| {
            let id = format!("u{i:03}");
            let mut pool: Vec<(&str, &str)> = UNSAFE_POOL.to_vec();
            let mut headers = Vec::new();
            for _ in 0..2 + rng.below(4) {
                let (n, v) = pool.remove(rng.below(pool.len()));
                headers.push((n.to_owned(), v.to_owned()));
            }
            let credentials = rng.weighted(&[(70, Credentials::Omit), (30, Credentials::Include)]);
            let mut listed: Vec<String> = Vec::new();
            for (n, _) in &headers {
                if rng.chance(55) {
                    listed.push(if rng.chance(30) {
                        n.to_ascii_uppercase()
                    } else {
                        n.to_ascii_lowercase()
                    });
                }
            }
            if rng.chance(30) {
                listed.push("x-unrelated".to_owned());
            }
            let allow_headers = if rng.chance(12) {
                "*".to_owned()
            } else {
                listed.join(", ")
            };
            let method = rng.weighted(&[(40, "GET"), (30, "PUT"), (30, "POST")]);
            let pre = h(&[
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "PUT"),
                ("access-control-allow-headers", &allow_headers),
                ("access-control-max-age", "0"),
            ]);
            let act = h(&[
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
            ]);
            scripts.push((
                id.clone(),
                Script {
                    preflight: answer(204, pre),
                    actual: answer(200, act),
                    ..Script::default()
                },
            ));
            let mut p = Planned::new("unsafe", id.clone(), origin, format!("{api}/c/{id}"));
            p.method = method.to_owned();
            p.headers = headers;
            p.credentials = credentials;
            p
        })
        .collect()
}

// ---- redirects ------------------------------------------------------------------------------

/// A hop's path under `/c/{id}`: the first hop is the case's URL, the second `/r`, then `/h/n`.
fn hop_path(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "/r".to_owned(),
        n => format!("/h/{n}"),
    }
}

fn allow_origin_variant(rng: &mut Rng, origin: &str) -> Vec<(String, String)> {
    let v: Option<&str> = rng.weighted(&[
        (50, Some(origin)),
        (20, Some("*")),
        (20, Some("null")),
        (10, None),
    ]);
    v.map(|v| vec![("access-control-allow-origin".to_owned(), v.to_owned())])
        .unwrap_or_default()
}

fn redirect_family(
    rng: &mut Rng,
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    hosts: &[String],
) -> Vec<Planned> {
    (0..100)
        .map(|i| {
            let id = format!("r{i:03}");
            let hops = 2 + rng.below(3); // redirects
            let method = rng.weighted(&[(35, "GET"), (35, "POST"), (30, "PUT")]);
            let headers: Vec<(String, String)> = rng.weighted(&[
                (40, vec![]),
                (25, h(&[("x-a", "1")])),
                (20, h(&[("content-type", "text/plain")])),
                (15, h(&[("content-type", "application/json")])),
            ]);
            let credentials = rng.weighted(&[(70, Credentials::Omit), (30, Credentials::Include)]);
            let include = credentials == Credentials::Include;
            let mut answers: Vec<(Answer, Answer)> = Vec::new();
            let first_host = hosts[rng.below(hosts.len())].clone();
            for n in 0..=hops {
                let mut pre = allow_origin_variant(rng, origin);
                if include || rng.chance(30) {
                    pre.push((
                        "access-control-allow-credentials".to_owned(),
                        "true".to_owned(),
                    ));
                }
                pre.push((
                    "access-control-allow-methods".to_owned(),
                    rng.weighted(&[(60, "PUT, POST"), (25, "*"), (15, "PATCH")])
                        .to_owned(),
                ));
                pre.push((
                    "access-control-allow-headers".to_owned(),
                    rng.weighted(&[(60, "x-a, content-type"), (25, "*"), (15, "x-b")])
                        .to_owned(),
                ));
                pre.push(("access-control-max-age".to_owned(), "0".to_owned()));
                let mut act = allow_origin_variant(rng, origin);
                if include || rng.chance(30) {
                    act.push((
                        "access-control-allow-credentials".to_owned(),
                        "true".to_owned(),
                    ));
                }
                let status = if n == hops {
                    200
                } else {
                    let status =
                        rng.weighted(&[(20, 301), (20, 302), (20, 303), (20, 307), (20, 308)]);
                    let host = &hosts[rng.below(hosts.len())];
                    let location = if rng.chance(20) {
                        // A relative reference: the same origin as this hop.
                        format!("/c/{id}{}", hop_path(n + 1))
                    } else {
                        format!("{host}/c/{id}{}", hop_path(n + 1))
                    };
                    act.push(("location".to_owned(), location));
                    if rng.chance(20) {
                        act.push(("x-hop".to_owned(), n.to_string()));
                    }
                    status
                };
                answers.push((answer(204, pre), answer(status, act)));
            }
            let mut it = answers.into_iter();
            let (preflight, actual) = it.next().unwrap();
            let (hop_preflight, hop_actual) = it.next().unwrap();
            let mut rest = vec![(Answer::default(), Answer::default()); 2];
            rest.extend(it);
            scripts.push((
                id.clone(),
                Script {
                    preflight,
                    actual,
                    hop_preflight,
                    hop_actual,
                    hops: rest,
                    preflights: Vec::new(),
                },
            ));
            let mut p = Planned::new(
                "redirects",
                id.clone(),
                origin,
                format!("{first_host}/c/{id}"),
            );
            p.method = method.to_owned();
            p.headers = headers;
            p.credentials = credentials;
            if method != "GET" {
                p.body = Some((RequestBody::Text, None));
            }
            p
        })
        .collect()
}

// ---- bodies ---------------------------------------------------------------------------------

fn body_family(
    rng: &mut Rng,
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    api: &str,
) -> Vec<Planned> {
    let kinds: Vec<(RequestBody, Option<String>)> = vec![
        (RequestBody::Text, None),
        (
            RequestBody::UrlSearchParams,
            Some("urlsearchparams".to_owned()),
        ),
        (RequestBody::FormData, Some("formdata".to_owned())),
        (RequestBody::Blob(String::new()), Some("blob:".to_owned())),
        (
            RequestBody::Blob("application/json".to_owned()),
            Some("blob:application/json".to_owned()),
        ),
        (
            RequestBody::Blob("text/plain".to_owned()),
            Some("blob:text/plain".to_owned()),
        ),
        (
            RequestBody::Blob("text/csv".to_owned()),
            Some("blob:text/csv".to_owned()),
        ),
        (
            RequestBody::Blob("multipart/form-data".to_owned()),
            Some("blob:multipart/form-data".to_owned()),
        ),
    ];
    let mut out = Vec::new();
    for i in 0..80 {
        let id = format!("b{i:03}");
        let kind = kinds[i % kinds.len()].clone();
        let method = rng.weighted(&[
            (40, "POST"),
            (20, "PUT"),
            (10, "patch"),
            (8, "GET"),
            (4, "HEAD"),
            (8, "post"),
        ]);
        let headers: Vec<(String, String)> = rng.weighted(&[
            (55, vec![]),
            (15, h(&[("content-type", "text/plain")])),
            (15, h(&[("Content-Type", "application/json")])),
            (15, h(&[("x-a", "1")])),
        ]);
        let allow = rng.weighted(&[(40, "*"), (40, "x-a"), (20, "content-type")]);
        let pre = h(&[
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", "PUT, patch"),
            ("access-control-allow-headers", allow),
            ("access-control-max-age", "0"),
        ]);
        scripts.push((
            id.clone(),
            Script {
                preflight: answer(204, pre),
                actual: ok_for(origin),
                ..Script::default()
            },
        ));
        let mut p = Planned::new("bodies", id.clone(), origin, format!("{api}/c/{id}"));
        p.method = method.to_owned();
        p.headers = headers;
        p.body = Some(kind);
        out.push(p);
    }
    out
}

// ---- page origins: same-origin, null, https -------------------------------------------------

fn origin_family(
    family: &'static str,
    prefix: char,
    rng: &mut Rng,
    scripts: &mut Vec<(String, Script)>,
    origin: &str,
    api: &str,
    api2: &str,
) -> Vec<Planned> {
    let upper = origin.to_ascii_uppercase();
    (0..150)
        .map(|i| {
            let g = generate(format!("{prefix}{i:03}"), rng, origin, &upper, api2);
            scripts.push((g.id.clone(), g.script.clone()));
            let mut p = Planned::new(family, g.id.clone(), origin, format!("{api}/c/{}", g.id));
            p.method = g.method;
            p.headers = g.headers;
            p.credentials = g.credentials;
            p
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The engine's side.

/// What the engine concluded, and what it sent.
#[derive(Debug)]
struct EngineOutcome {
    /// Allowed: the status and the exposed names; blocked: `None`.
    allowed: Option<(u16, Vec<String>)>,
    /// The browser's console message (`CorsError::console_message`), when blocked by CORS.
    message: Option<String>,
    /// Why fetch() threw (a network error or an invalid request).
    #[allow(dead_code)] // shown in the description of a disagreement
    invalid: Option<String>,
    sent: Vec<String>,
}

/// One request as the log shows it: method, hop, `Origin`, `Access-Control-Request-Method`
/// and `-Headers`, `Content-Type` (a multipart boundary, random, replaced by its length).
fn describe_request(method: &str, hop: &str, header: impl Fn(&str) -> Option<String>) -> String {
    // A byte above 0x7F is one byte to a browser and two (UTF-8) to this test: shown as `?`.
    let content_type = header("content-type").map(|t| match t.split_once("boundary=") {
        Some((head, _)) if t.starts_with("multipart/form-data") => format!("{head}boundary=…"),
        _ => t
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect(),
    });
    let show = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    format!(
        "{method} {} origin={} acrm={} acrh={} type={}",
        if hop.is_empty() { "/" } else { hop },
        show(header("origin")),
        show(header("access-control-request-method")),
        show(header("access-control-request-headers")),
        show(content_type),
    )
}

/// Whether two request sequences differ only in the `type=` of requests after the first.
fn same_but_later_types(ours: &[String], theirs: &[String]) -> bool {
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .enumerate()
            .map(|(i, r)| match r.find(" type=") {
                Some(at) if i > 0 => r[..at].to_owned(),
                _ => r.clone(),
            })
            .collect()
    };
    strip(ours) == strip(theirs)
}

/// Firefox's `Content-Type` on the requests after a redirect (what it puts on the wire after a
/// method change) is not modelled by the engine: left out of the comparison.
fn wire_type_compared(browser: Headless, hop: &str) -> bool {
    browser != Headless::Firefox || hop.is_empty()
}

fn describe_logged(browser: Headless, l: &Logged) -> String {
    describe_request(&l.method, &l.hop, |name| match name {
        "origin" => l.origin.clone(),
        "access-control-request-method" => l.request_method.clone(),
        "access-control-request-headers" => l.request_headers.clone(),
        "content-type" if wire_type_compared(browser, &l.hop) => l.content_type.clone(),
        _ => None,
    })
}

/// Sends one request to the scripted server on 127.0.0.1 (whatever the URL's host), marked as
/// the engine's so that the server does not log it; returns the status and headers.
async fn send(method: &str, url: &str, headers: &[(String, String)]) -> (u16, HeaderMap) {
    let url: http::Uri = url.parse().unwrap();
    let port = url.port_u16().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}:{port}\r\nConnection: close\r\n{ENGINE_MARK}: 1\r\n",
        url.path_and_query().unwrap(),
        url.host().unwrap(),
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut map = HeaderMap::new();
    for line in lines {
        let (n, v) = line.split_once(':').unwrap();
        // The server answers `Connection: close` only because this client asked to close; the
        // browsers keep the connection and never see it.
        if n.eq_ignore_ascii_case("connection") {
            continue;
        }
        map.append(
            HeaderName::from_bytes(n.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    (status, map)
}

fn hop_of(url: &str, key: &str) -> String {
    let url: http::Uri = url.parse().unwrap();
    let prefix = format!("/c/{key}");
    url.path()
        .strip_prefix(&prefix)
        .unwrap_or(url.path())
        .to_owned()
}

/// Runs one fetch through the engine, against the scripted server, with a preflight cache.
async fn engine(
    browser: Headless,
    rules: Rules,
    p: &Planned,
    cache: &mut PreflightCache,
) -> EngineOutcome {
    let init = RequestInit {
        method: p.method.clone(),
        headers: p.headers.clone(),
        credentials: p.credentials,
    };
    let fetch = match &p.body {
        Some((body, _)) => Fetch::with_body(rules, &p.origin, &p.url, init, body),
        None => Fetch::new(rules, &p.origin, &p.url, init),
    };
    let mut fetch = match fetch {
        Ok(f) => f,
        Err(e) => {
            return EngineOutcome {
                allowed: None,
                message: None,
                invalid: Some(e.to_string()),
                sent: Vec::new(),
            }
        }
    };
    let include = p.credentials == Credentials::Include;
    let mut sent = Vec::new();
    // The server answers a key's successive preflights in turn (`Script::preflights`),
    // counting the engine's (marked) apart from the browser's: the nth preflight sent here gets
    // the answer the browser's nth got, so a preflight one sends and the other skips shows in
    // the requests both sent and in the answers after it.
    while let Some(out) = fetch.request() {
        let header = |name: &str| {
            out.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let origin = header("origin");
        let url = out.url.to_string();
        if out.preflight && cache.reads(p.cache) {
            let names = fetch.unsafe_header_names();
            if cache.allows(
                origin.as_deref().unwrap_or_default(),
                &url,
                include,
                fetch.method(),
                &names,
                p.at,
            ) {
                fetch.skip_preflight();
                continue;
            }
        }
        let hop = hop_of(&url, &p.key);
        sent.push(describe_request(&out.method, &hop, |name| {
            if name == "content-type" && !wire_type_compared(browser, &hop) {
                return None;
            }
            header(name)
        }));
        let (status, headers) = send(&out.method, &url, &out.headers).await;
        let verdict = fetch.receive(status, &headers);
        if out.preflight && cache.writes(p.cache) {
            if let Some(result) = fetch.preflight_result() {
                cache.store(origin.as_deref().unwrap_or_default(), &url, result, p.at);
            }
        }
        if let Some(v) = verdict {
            if v.is_err() {
                cache.blocked(origin.as_deref().unwrap_or_default(), &url);
            }
            return match v {
                Ok(r) => EngineOutcome {
                    allowed: Some((r.status, r.exposed)),
                    message: None,
                    invalid: None,
                    sent,
                },
                Err(Blocked::Cors(e)) => EngineOutcome {
                    allowed: None,
                    message: Some(e.console_message(rules)),
                    invalid: None,
                    sent,
                },
                Err(Blocked::Network(m)) => EngineOutcome {
                    allowed: None,
                    message: None,
                    invalid: Some(m),
                    sent,
                },
            };
        }
    }
    unreachable!("the engine stopped without a verdict")
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// The case key of a URL or message naming `…/c/{key}…`.
fn case_key(text: &str) -> Option<&str> {
    text.split("/c/")
        .nth(1)
        .and_then(|r| r.split(['/', '\'', '?', ' ']).next())
}

/// The browser's console messages about blocked fetches, by the URL's case key, in order:
/// Chromium's one line, WebKit's two, Firefox's one or two (as `CorsError::console_message`
/// renders them).
fn console_messages(browser: Headless, console: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if browser != Headless::Chromium {
        let pairs = if browser == Headless::WebKit {
            corsair_testkit::matrix::webkit_messages(console)
        } else {
            corsair_testkit::matrix::firefox_messages(console)
        };
        for (url, message) in pairs {
            if let Some(key) = case_key(&url) {
                out.entry(key.to_owned()).or_default().push(message);
            }
        }
        return out;
    }
    for line in console.lines() {
        let Some(start) = line.find("\"Access to fetch at '") else {
            continue;
        };
        let text = &line[start + 1..];
        let Some(end) = text.rfind("\", source:") else {
            continue;
        };
        let message = &text[..end];
        let Some(key) = case_key(message) else {
            continue;
        };
        out.entry(key.to_owned())
            .or_default()
            .push(message.to_owned());
    }
    out
}

/// Whether a family's fetches come in sequences on one URL, each sequence in a group of its own,
/// with one preflight cache: `cache` and `merge`.
fn sequenced(family: &str) -> bool {
    matches!(family, "cache" | "merge")
}

#[derive(Default)]
struct Tally {
    cases: usize,
    verdicts: usize,
    exposed: (usize, usize),
    messages: (usize, usize),
    requests: (usize, usize),
    checks: (usize, usize),
    preflighted: usize,
    blocked: usize,
    /// Request sequences that differ where the engine does not model the browser.
    unmodelled: usize,
}

async fn differential(browser: Headless, rules: Rules) {
    let api = ScriptedServer::start().await.unwrap();
    let pages = PageServer::start_with(PageOptions {
        routes: Some(api.routes()),
        tls: true,
    })
    .await
    .unwrap();
    let origin = format!("http://page.test:{}", pages.port());
    let upper = format!("http://PAGE.test:{}", pages.port());
    let api1 = format!("http://127.0.0.1:{}", api.port());
    let api2 = format!("http://localhost:{}", api.port());
    let same = format!("http://127.0.0.1:{}", pages.port());
    let secure = format!("https://page.test:{}", pages.tls_port().unwrap());

    // CI uses the fixed seed; set CORSAIR_DIFF_SEED to explore others.
    let seed = std::env::var("CORSAIR_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let mut scripts: Vec<(String, Script)> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    for i in 0..CASES {
        let g = generate(format!("{i:04}"), &mut rng, &origin, &upper, &api2);
        scripts.push((g.id.clone(), g.script.clone()));
        let mut p = Planned::new(
            "random",
            g.id.clone(),
            &origin,
            format!("{api1}/c/{}", g.id),
        );
        p.method = g.method;
        p.headers = g.headers;
        p.credentials = g.credentials;
        p.check = true;
        planned.push(p);
    }
    planned.extend(safelist_family(&mut scripts, &origin, &api1));
    planned.extend(cache_family(&mut rng, &mut scripts, &origin, api.port(), 1));
    planned.extend(merge_family(&mut scripts, &origin, api.port(), 200));
    planned.extend(unsafe_family(&mut rng, &mut scripts, &origin, &api1));
    let hosts = [api1.clone(), api2.clone(), origin.clone()];
    planned.extend(redirect_family(&mut rng, &mut scripts, &origin, &hosts));
    planned.extend(body_family(&mut rng, &mut scripts, &origin, &api1));
    planned.extend(origin_family(
        "same-origin",
        'o',
        &mut rng,
        &mut scripts,
        &same,
        &same,
        &api2,
    ));
    planned.extend(origin_family(
        "null",
        'n',
        &mut rng,
        &mut scripts,
        "null",
        &api1,
        &api2,
    ));
    planned.extend(origin_family(
        "https",
        't',
        &mut rng,
        &mut scripts,
        &secure,
        &api1,
        &api2,
    ));
    for (id, s) in &scripts {
        api.set(id, s.clone());
    }
    let scripts: HashMap<String, Script> = scripts.into_iter().collect();
    // One frame per page origin; within the main frame, each family's cases in a group of their
    // own (the `cache` family: a group per sequence), so that families run side by side.
    let mut frames: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    let group = |family: &str| match family {
        "random" => 0,
        "safelist" => 100,
        "unsafe" => 101,
        "redirects" => 102,
        "bodies" => 103,
        _ => 0,
    };
    for p in &planned {
        let mut c = p.case();
        if !sequenced(p.family) {
            c.seq = group(p.family);
        }
        frames.entry(p.origin.clone()).or_default().push(c);
    }
    let frames: Vec<Frame> = frames
        .into_iter()
        .map(|(origin, cases)| Frame { origin, cases })
        .collect();
    let started = std::time::Instant::now();
    let run: Run = pages
        .run(browser, &frames, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{}: {} cases in {:.1?}",
        browser.name(),
        planned.len(),
        started.elapsed()
    );
    // CORSAIR_DIFF_CONSOLE=FILE keeps what the browser printed, for a look by hand.
    if let Some(path) = std::env::var_os("CORSAIR_DIFF_CONSOLE") {
        std::fs::write(path, &run.console).unwrap();
    }
    let messages = console_messages(browser, &run.console);
    // What the browser sent, before the engine sends anything of its own.
    let mut logs: HashMap<String, Vec<String>> = HashMap::new();
    for p in &planned {
        logs.entry(p.key.clone()).or_insert_with(|| {
            api.log(&p.key)
                .iter()
                .map(|l| describe_logged(browser, l))
                .collect()
        });
    }

    let client = corsair_cli::net::RawClient::new();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut caches: HashMap<String, PreflightCache> = HashMap::new();
    let mut engine_sent: HashMap<String, Vec<String>> = HashMap::new();
    let mut message_cursor: HashMap<String, usize> = HashMap::new();
    for p in &planned {
        let cache = caches
            .entry(p.key.clone())
            .or_insert_with(|| PreflightCache::new(rules));
        // Only the sequences keep entries from one fetch to the next.
        if !sequenced(p.family) {
            *cache = PreflightCache::new(rules);
        }
        let e = engine(browser, rules, p, cache).await;
        engine_sent
            .entry(p.key.clone())
            .or_default()
            .extend(e.sent.iter().cloned());
        let seen: &Seen = run
            .seen
            .get(&p.id)
            .unwrap_or_else(|| panic!("no browser result for {}", p.id));
        let t = tallies.entry(p.family).or_default();
        t.cases += 1;
        let describe = || {
            format!(
                "[{}] case {} {} {} {:?} {:?} body={:?} at={}s cache={} from {}\n    script: {:?}\n    engine: {:?}\n    {}: ok={} status={} visible={:?} error={:?}\n    browser sent: {:?}",
                p.family, p.id, p.method, p.url, p.headers, p.credentials, p.body, p.at, p.cache, p.origin,
                scripts.get(&p.key), e,
                browser.name(), seen.ok, seen.status, seen.visible, seen.error, logs.get(&p.key)
            )
        };
        t.preflighted += usize::from(e.sent.iter().any(|s| s.starts_with("OPTIONS")));
        let verdict_ok = match &e.allowed {
            Some((status, _)) => seen.ok && seen.status == *status,
            None => !seen.ok,
        };
        if verdict_ok {
            t.verdicts += 1;
        } else {
            wrong.push(format!("verdict: {}", describe()));
        }
        // WebKit reaches the loopback servers through the harness's proxy, which asks each
        // server to close the connection (one exchange per connection): the `Connection` header
        // that brings back is the harness's, not the scenario's.
        let visible: Vec<String> = seen
            .visible
            .iter()
            .filter(|n| browser != Headless::WebKit || *n != "connection")
            .cloned()
            .collect();
        if let (Some((_, exposed)), true) = (&e.allowed, seen.ok) {
            t.exposed.1 += 1;
            if *exposed == visible {
                t.exposed.0 += 1;
            } else {
                wrong.push(format!("exposed: {}", describe()));
            }
        }
        if !seen.ok {
            t.blocked += 1;
        }
        if let (Some(m), true) = (&e.message, console_captured(browser)) {
            t.messages.1 += 1;
            let cursor = message_cursor.entry(p.key.clone()).or_default();
            let console = messages.get(&p.key).and_then(|v| v.get(*cursor));
            *cursor += 1;
            if console == Some(m) {
                t.messages.0 += 1;
            } else {
                wrong.push(format!("message: {}\n    console: {console:?}", describe()));
            }
        }
        // The requests: per case, or per sequence once its last fetch is done.
        let last_of_key = planned
            .iter()
            .rev()
            .find(|q| q.key == p.key)
            .is_some_and(|q| q.id == p.id);
        if last_of_key {
            t.requests.1 += 1;
            let ours = engine_sent.get(&p.key).cloned().unwrap_or_default();
            let theirs = logs.get(&p.key).cloned().unwrap_or_default();
            if ours == theirs {
                t.requests.0 += 1;
            } else if browser == Headless::WebKit && same_but_later_types(&ours, &theirs) {
                // The one wire difference left unmodelled for WebKit: the `Content-Type` it
                // puts back (or not) on hops after a method-changing redirect. Counted, listed.
                t.unmodelled += 1;
                println!(
                    "  unmodelled ({}): {} engine {ours:?} webkit {theirs:?}",
                    p.family, p.id
                );
            } else {
                let sequence: Vec<String> = planned
                    .iter()
                    .filter(|q| q.key == p.key)
                    .map(|q| {
                        format!(
                            "{} {:?} {:?} cache={} at={}s",
                            q.method, q.headers, q.credentials, q.cache, q.at
                        )
                    })
                    .collect();
                wrong.push(format!(
                    "requests: {}\n    engine sent:  {ours:?}\n    fetches: {sequence:?}",
                    describe()
                ));
            }
        }
        if p.check {
            t.checks.1 += 1;
            let args = CheckArgs {
                url: p.url.clone(),
                origin: p.origin.clone(),
                method: p.method.clone(),
                headers: p.headers.clone(),
                cookie: None,
                credentials: p.credentials,
                browser: rules,
                timeout: Duration::from_secs(10),
            };
            let report = check::run(&args, &client).await.unwrap();
            let same_exposed = e.allowed.as_ref().is_none_or(|(_, x)| *x == report.exposed);
            if report.allowed == seen.ok
                && (!seen.ok || report.status == Some(seen.status))
                && same_exposed
                && (seen.ok || browser != Headless::Chromium || report.message == e.message)
            {
                t.checks.0 += 1;
            } else {
                wrong.push(format!(
                    "corsair check: {}\n    check: allowed={} status={:?} exposed={:?} message={:?}",
                    describe(),
                    report.allowed,
                    report.status,
                    report.exposed,
                    report.message
                ));
            }
        }
    }
    println!("{} ({}):", browser.name(), browser.version());
    for (family, t) in &tallies {
        println!(
            "  {family:<12} {:>4} cases: verdicts {}/{}, requests sent {}/{}, exposed headers {}/{}, console messages {}/{}{}{}; {} preflighted, {} blocked",
            t.cases,
            t.verdicts,
            t.cases,
            t.requests.0,
            t.requests.1,
            t.exposed.0,
            t.exposed.1,
            t.messages.0,
            t.messages.1,
            if t.unmodelled > 0 {
                format!(
                    "; {} request sequences differ where the engine does not model the browser",
                    t.unmodelled
                )
            } else {
                String::new()
            },
            if t.checks.1 > 0 {
                format!(", corsair check {}/{}", t.checks.0, t.checks.1)
            } else {
                String::new()
            },
            t.preflighted,
            t.blocked,
        );
    }
    let sum = |f: fn(&Tally) -> (usize, usize)| {
        tallies
            .values()
            .map(f)
            .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
    };
    let rate = |(a, b): (usize, usize)| {
        if b == 0 {
            "n/a".to_owned()
        } else {
            format!("{a}/{b} ({:.2} %)", 100.0 * a as f64 / b as f64)
        }
    };
    println!(
        "  {} total: verdict agreement {}, readable-header agreement {}, message agreement {}",
        browser.name(),
        rate(sum(|t| (t.verdicts, t.cases))),
        rate(sum(|t| t.exposed)),
        if console_captured(browser) {
            rate(sum(|t| t.messages))
        } else {
            "not captured".to_owned()
        },
    );
    let shown: Vec<&String> = wrong.iter().take(1000).collect();
    assert!(
        wrong.is_empty(),
        "{} disagreements with {}; the first {}:\n{}",
        wrong.len(),
        browser.name(),
        shown.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_chromium() {
    differential(Headless::Chromium, Rules::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_firefox() {
    differential(Headless::Firefox, Rules::Firefox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_webkit() {
    differential(Headless::WebKit, Rules::Safari).await;
}
