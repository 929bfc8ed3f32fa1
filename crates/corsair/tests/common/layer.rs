//! The middleware's behaviour, as tables shared by every adapter's tests (`tower_*.rs`,
//! `actix_*.rs`): each adapter puts the same application behind the same policies, sends the
//! same requests, and must give the answers written here by hand.
#![allow(dead_code)] // each test binary uses the part for its adapter

use std::time::Duration;

use corsair::Policy;

/// The policy of [`CASES`]: pages of `http://localhost:8000` may read, and send `PUT`.
pub fn policy() -> Policy {
    Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["PUT"])
        .build()
        .unwrap()
}

/// The allowed origin of [`policy`].
pub const ORIGIN: (&str, &str) = ("origin", "http://localhost:8000");
const EVIL: (&str, &str) = ("origin", "http://evil.test");
const PUT: (&str, &str) = ("access-control-request-method", "PUT");
const DELETE: (&str, &str) = ("access-control-request-method", "DELETE");

const ALLOWED: &[(&str, &str)] = &[
    ("access-control-allow-origin", "http://localhost:8000"),
    ("vary", "Origin"),
];
const VARY: &[(&str, &str)] = &[("vary", "Origin")];
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// One request through the middleware and what must come out.
#[derive(Debug)]
pub struct Case {
    /// The request's method, path and headers.
    pub method: &'static str,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    /// The response's status.
    pub status: u16,
    /// Whether the application saw the request.
    pub reaches_app: bool,
    /// Every `access-control-*` and `vary` line of the response, in any order.
    pub cors: &'static [(&'static str, &'static str)],
}

// The application every adapter's test serves behind [`policy`], any method:
// - `/ok`: 200;
// - `/fail`: 500, a response the handler returns;
// - `/error`: the handler fails (returns an `Err`), which the framework turns into a 500;
// - `/own`: 200 with CORS headers of the application's own ([`OWN_HEADERS`]);
// - anything else: 404, from the framework's fallback handler.
// Every call to a handler (the fallback's included) is counted.

/// The application's own headers on `/own`.
pub const OWN_HEADERS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("vary", "accept-encoding"),
];

/// The table: every kind of request a browser (or anything else) sends, and the answer.
#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // Allowed actual requests, errors included: the browser then shows the real error.
    Case { method: "GET", path: "/ok", headers: &[ORIGIN], status: 200, reaches_app: true, cors: ALLOWED },
    Case { method: "GET", path: "/missing", headers: &[ORIGIN], status: 404, reaches_app: true, cors: ALLOWED },
    Case { method: "GET", path: "/fail", headers: &[ORIGIN], status: 500, reaches_app: true, cors: ALLOWED },
    Case { method: "PUT", path: "/error", headers: &[ORIGIN], status: 500, reaches_app: true, cors: ALLOWED },
    // Not allowed, or not CORS: forwarded, with only `Vary`.
    Case { method: "GET", path: "/ok", headers: &[EVIL], status: 200, reaches_app: true, cors: VARY },
    Case { method: "GET", path: "/error", headers: &[EVIL], status: 500, reaches_app: true, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[], status: 200, reaches_app: true, cors: VARY },
    // Preflights are answered by the middleware, whatever the path, and never reach the app.
    Case {
        method: "OPTIONS", path: "/ok", headers: &[ORIGIN, PUT], status: 204, reaches_app: false,
        cors: &[
            ("access-control-allow-origin", "http://localhost:8000"),
            ("access-control-allow-methods", "PUT"),
            ("vary", PREFLIGHT_VARY),
        ],
    },
    // A method outside the list still gets the full list: the browser names the culprit.
    Case {
        method: "OPTIONS", path: "/missing", headers: &[ORIGIN, DELETE], status: 204, reaches_app: false,
        cors: &[
            ("access-control-allow-origin", "http://localhost:8000"),
            ("access-control-allow-methods", "PUT"),
            ("vary", PREFLIGHT_VARY),
        ],
    },
    Case { method: "OPTIONS", path: "/ok", headers: &[EVIL, PUT], status: 403, reaches_app: false, cors: &[("vary", PREFLIGHT_VARY)] },
    Case { method: "OPTIONS", path: "/missing", headers: &[EVIL, PUT], status: 403, reaches_app: false, cors: &[("vary", PREFLIGHT_VARY)] },
    // Any other OPTIONS request reaches the application, varying like a preflight.
    Case { method: "OPTIONS", path: "/ok", headers: &[], status: 200, reaches_app: true, cors: &[("vary", PREFLIGHT_VARY)] },
    Case {
        method: "OPTIONS", path: "/ok", headers: &[ORIGIN], status: 200, reaches_app: true,
        cors: &[("access-control-allow-origin", "http://localhost:8000"), ("vary", PREFLIGHT_VARY)],
    },
    Case { method: "OPTIONS", path: "/ok", headers: &[PUT], status: 200, reaches_app: true, cors: &[("vary", PREFLIGHT_VARY)] },
    // The policy owns the CORS headers; `Vary` is appended to.
    Case {
        method: "GET", path: "/own", headers: &[ORIGIN], status: 200, reaches_app: true,
        cors: &[
            ("access-control-allow-origin", "http://localhost:8000"),
            ("vary", "accept-encoding"),
            ("vary", "Origin"),
        ],
    },
    Case {
        method: "GET", path: "/own", headers: &[EVIL], status: 200, reaches_app: true,
        cors: &[("vary", "accept-encoding"), ("vary", "Origin")],
    },
];

/// A response's status and its CORS lines: what [`cors_part`] and [`expected`] give.
pub type CorsPart = (u16, Vec<(String, String)>);

/// The CORS part of a response: its status, and its `access-control-*` and `vary` lines, sorted.
pub fn cors_part<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> CorsPart {
    let mut h: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| k.starts_with("access-control-") || *k == "vary")
        .map(|(k, v)| (k.to_owned(), String::from_utf8(v.to_vec()).unwrap()))
        .collect();
    h.sort();
    (status, h)
}

/// The expected CORS part, sorted as [`cors_part`] sorts.
pub fn expected(status: u16, pairs: &[(&str, &str)]) -> CorsPart {
    let mut h: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    h.sort();
    (status, h)
}

/// The two policies of the atomic-swap tests, which disagree in every header and in the
/// preflight status. A: public. B: one origin, credentials, private network, status 200. A
/// request from `https://a.example` is allowed by both, so each answers it with all of its
/// headers.
pub fn swap_policies() -> (Policy, Policy) {
    let a = Policy::builder()
        .allow_origins(["*"])
        .allow_methods(["PUT"])
        .allow_headers(["x-a"])
        .expose_headers(["x-from-a"])
        .max_age(Duration::from_secs(10))
        .build()
        .unwrap();
    let b = Policy::builder()
        .allow_origins(["https://a.example"])
        .allow_methods(["PATCH"])
        .allow_headers(["x-b"])
        .expose_headers(["x-from-b"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(20))
        .allow_private_network(true)
        .preflight_status(200)
        .build()
        .unwrap();
    (a, b)
}

/// The swap tests' two requests: (method, headers), a simple GET, then a preflight.
pub const SWAP_REQUESTS: [(&str, &[(&str, &str)]); 2] = [
    ("GET", &[("origin", "https://a.example")]),
    (
        "OPTIONS",
        &[
            ("origin", "https://a.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-a"),
            ("access-control-request-private-network", "true"),
        ],
    ),
];

/// Each swap policy's whole answer to each of [`SWAP_REQUESTS`]: `[policy][request]`.
pub fn swap_answers() -> [[CorsPart; 2]; 2] {
    [
        [
            expected(
                200,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-expose-headers", "x-from-a"),
                ],
            ),
            expected(
                204,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", "PUT"),
                    ("access-control-allow-headers", "x-a"),
                    ("access-control-max-age", "10"),
                    (
                        "vary",
                        "Access-Control-Request-Method, Access-Control-Request-Headers",
                    ),
                ],
            ),
        ],
        [
            expected(
                200,
                &[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-expose-headers", "x-from-b"),
                    ("vary", "Origin"),
                ],
            ),
            expected(
                200,
                &[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-allow-methods", "PATCH"),
                    ("access-control-allow-headers", "x-b"),
                    ("access-control-max-age", "20"),
                    ("access-control-allow-private-network", "true"),
                    (
                        "vary",
                        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
                    ),
                ],
            ),
        ],
    ]
}

/// Tallies the answers of a swap test: which policy gave `got` to request `kind`, or a panic
/// for an answer that is neither's (a torn read: one policy's origin check with the other's
/// lists).
pub fn which_policy(answers: &[[CorsPart; 2]; 2], kind: usize, got: &CorsPart) -> usize {
    answers
        .iter()
        .position(|a| a[kind] == *got)
        .unwrap_or_else(|| panic!("an answer that is neither policy's: {got:?}"))
}

/// The per-route tests' policy file: credentials for one origin, and a public route.
pub const ROUTES_FILE: &str = r#"
allow_origins = ["https://app.example.com"]
allow_credentials = true

[[route]]
path = "/public"
allow_origins = ["*"]
"#;

/// A GET of `path` from `origin` under [`ROUTES_FILE`], and its
/// (`access-control-allow-origin`, `access-control-allow-credentials`).
#[rustfmt::skip]
pub const ROUTE_CASES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("/api/me", "https://app.example.com", Some("https://app.example.com"), Some("true")),
    ("/api/me", "https://other.example", None, None),
    ("/public", "https://other.example", Some("*"), None),
    ("/public/logo.png", "https://other.example", Some("*"), None),
    // Whole segments: /publicity is not the public route.
    ("/publicity", "https://other.example", None, None),
];

/// The reload test: a handle first serving only `https://old.example` everywhere, then swapped
/// for [`ROUTES_FILE`]. (path, origin, allow-origin before, allow-origin after).
#[rustfmt::skip]
pub const RELOAD_CASES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("/public/x", "https://other.example", None, Some("*")),
    ("/api", "https://old.example", Some("https://old.example"), None),
    ("/api", "https://app.example.com", None, Some("https://app.example.com")),
];

/// The handle's first policy in [`RELOAD_CASES`].
pub fn old_policy() -> Policy {
    Policy::builder()
        .allow_origins(["https://old.example"])
        .build()
        .unwrap()
}

/// The two headers of a WebSocket handshake (an upgrade request).
const WS_CONNECTION: (&str, &str) = ("connection", "Upgrade");
const WS_UPGRADE: (&str, &str) = ("upgrade", "websocket");

/// Upgrade requests under [`policy`] through a middleware that refuses upgrades from
/// disallowed origins (`refuse_upgrades_from_disallowed_origins`): refused with `403` before
/// the application, with only `Vary`, by the fetch rules for origins.
#[rustfmt::skip]
pub const UPGRADE_CASES: &[Case] = &[
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, ORIGIN], status: 200, reaches_app: true, cors: ALLOWED },
    // Without `Origin`: no browser page; passed on.
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE], status: 200, reaches_app: true, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, EVIL], status: 403, reaches_app: false, cors: VARY },
    Case { method: "GET", path: "/missing", headers: &[WS_CONNECTION, WS_UPGRADE, EVIL], status: 403, reaches_app: false, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, ("origin", "null")], status: 403, reaches_app: false, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, ("origin", "http://localhost:8000/")], status: 403, reaches_app: false, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, ORIGIN, ORIGIN], status: 403, reaches_app: false, cors: VARY },
    // `Connection` must name `upgrade`: otherwise an ordinary request, passed on.
    Case { method: "GET", path: "/ok", headers: &[("connection", "keep-alive"), WS_UPGRADE, EVIL], status: 200, reaches_app: true, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[("connection", "keep-alive, Upgrade"), WS_UPGRADE, EVIL], status: 403, reaches_app: false, cors: VARY },
];

/// Upgrade requests through a middleware without the option: handled like any other request.
#[rustfmt::skip]
pub const UPGRADES_AS_REQUESTS: &[Case] = &[
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, EVIL], status: 200, reaches_app: true, cors: VARY },
    Case { method: "GET", path: "/ok", headers: &[WS_CONNECTION, WS_UPGRADE, ORIGIN], status: 200, reaches_app: true, cors: ALLOWED },
];

/// A request-aware policy: `https://a.example` may read the API on `api.a.example`, and
/// anything under `/public` whatever the host; nothing else.
pub fn host_policy() -> Policy {
    Policy::builder()
        .allow_origin_request_predicate(|r| {
            r.origin() == "https://a.example"
                && (r.host() == Some("api.a.example")
                    || r.path().is_some_and(|p| p.starts_with("/public")))
        })
        .allow_methods(["PUT"])
        .build()
        .unwrap()
}

const FROM_A: (&str, &str) = ("origin", "https://a.example");
const HOST_A: (&str, &str) = ("host", "api.a.example");
const HOST_B: (&str, &str) = ("host", "api.b.example");
const HOST_VARY: &str = "Origin, Host";
const HOST_PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Host";

/// Requests under [`host_policy`]: the decision reads `Host` and the path, and every response
/// varies on `Host` wherever it varies on `Origin`.
#[rustfmt::skip]
pub const HOST_CASES: &[Case] = &[
    Case { method: "GET", path: "/ok", headers: &[HOST_A, FROM_A], status: 200, reaches_app: true, cors: &[("access-control-allow-origin", "https://a.example"), ("vary", HOST_VARY)] },
    Case { method: "GET", path: "/ok", headers: &[HOST_B, FROM_A], status: 200, reaches_app: true, cors: &[("vary", HOST_VARY)] },
    Case { method: "GET", path: "/public/x", headers: &[HOST_B, FROM_A], status: 404, reaches_app: true, cors: &[("access-control-allow-origin", "https://a.example"), ("vary", HOST_VARY)] },
    Case { method: "GET", path: "/ok", headers: &[HOST_A], status: 200, reaches_app: true, cors: &[("vary", HOST_VARY)] },
    // Two `Host` lines: no host, so no tenant.
    Case { method: "GET", path: "/ok", headers: &[HOST_A, HOST_A, FROM_A], status: 200, reaches_app: true, cors: &[("vary", HOST_VARY)] },
    Case {
        method: "OPTIONS", path: "/ok", headers: &[HOST_A, FROM_A, PUT], status: 204, reaches_app: false,
        cors: &[("access-control-allow-origin", "https://a.example"), ("access-control-allow-methods", "PUT"), ("vary", HOST_PREFLIGHT_VARY)],
    },
    Case { method: "OPTIONS", path: "/ok", headers: &[HOST_B, FROM_A, PUT], status: 403, reaches_app: false, cors: &[("vary", HOST_PREFLIGHT_VARY)] },
    Case { method: "OPTIONS", path: "/ok", headers: &[HOST_B], status: 200, reaches_app: true, cors: &[("vary", HOST_PREFLIGHT_VARY)] },
    Case {
        method: "GET", path: "/own", headers: &[HOST_A, FROM_A], status: 200, reaches_app: true,
        cors: &[("access-control-allow-origin", "https://a.example"), ("vary", "accept-encoding"), ("vary", "Origin"), ("vary", "Host")],
    },
];
