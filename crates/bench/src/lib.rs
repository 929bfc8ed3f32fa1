//! What the benchmarks and the allocation test share: the scenarios (identical requests), the
//! equivalent policies for corsair, tower-http and actix-cors, and a way to run a tower service
//! whose future is ready at once without an async runtime.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, Service};

/// The allowed origin every scenario's "allowed" requests come from.
pub const ALLOWED: &str = "https://app.example.com";
/// A disallowed origin.
pub const DISALLOWED: &str = "https://evil.example.net";

/// One benchmark scenario: a request and the policy size it runs against.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A short name, used in reports.
    pub name: &'static str,
    /// The method.
    pub method: Method,
    /// The request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The number of exact origins in the policy (the allowed one is the last).
    pub exact_origins: usize,
    /// The number of subdomain patterns in the policy (instead of exact origins).
    pub patterns: usize,
    /// The origin sending the request, if any.
    pub origin: Option<String>,
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("invalid"))
}

/// The hostile `Access-Control-Request-Headers`: 100 KB with 10,000 commas.
pub fn hostile_request_headers() -> String {
    let mut s = ",".repeat(10_000);
    s.push_str(&"x".repeat(100_000 - 10_000));
    s
}

/// Every scenario of BENCHMARKS.md.
pub fn scenarios() -> Vec<Scenario> {
    let origin = |o: &str| (http::header::ORIGIN, hv(o));
    let acrm = (http::header::ACCESS_CONTROL_REQUEST_METHOD, hv("PUT"));
    let acrh = (
        http::header::ACCESS_CONTROL_REQUEST_HEADERS,
        hv("authorization,content-type,x-request-id"),
    );
    let simple = |name, o: &str, exact_origins, patterns| Scenario {
        name,
        method: Method::GET,
        headers: vec![origin(o)],
        exact_origins,
        patterns,
        origin: Some(o.to_owned()),
    };
    let tenant = "https://app.tenant999.example.com";
    vec![
        Scenario {
            name: "no_origin",
            method: Method::GET,
            headers: vec![],
            exact_origins: 1,
            patterns: 0,
            origin: None,
        },
        simple("allowed_simple", ALLOWED, 1, 0),
        simple("disallowed_simple", DISALLOWED, 1, 0),
        Scenario {
            name: "allowed_preflight",
            method: Method::OPTIONS,
            headers: vec![origin(ALLOWED), acrm.clone(), acrh],
            exact_origins: 1,
            patterns: 0,
            origin: Some(ALLOWED.to_owned()),
        },
        Scenario {
            name: "rejected_preflight",
            method: Method::OPTIONS,
            headers: vec![origin(DISALLOWED), acrm.clone()],
            exact_origins: 1,
            patterns: 0,
            origin: Some(DISALLOWED.to_owned()),
        },
        Scenario {
            name: "hostile_preflight",
            method: Method::OPTIONS,
            headers: vec![
                origin(ALLOWED),
                acrm,
                (
                    http::header::ACCESS_CONTROL_REQUEST_HEADERS,
                    hv(&hostile_request_headers()),
                ),
            ],
            exact_origins: 1,
            patterns: 0,
            origin: Some(ALLOWED.to_owned()),
        },
        simple("origins_1", ALLOWED, 1, 0),
        simple("origins_100", ALLOWED, 100, 0),
        simple("origins_10000", ALLOWED, 10_000, 0),
        simple("patterns_1", "https://app.tenant0.example.com", 0, 1),
        simple("patterns_1000", tenant, 0, 1_000),
    ]
}

/// The exact origins of a policy of `n`: `n - 1` others, then [`ALLOWED`] last.
pub fn exact_origins(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (1..n)
        .map(|i| format!("https://app{i}.example.org"))
        .collect();
    v.push(ALLOWED.to_owned());
    v
}

/// The parent domains of `n` subdomain patterns, `tenant0.example.com` …
pub fn pattern_parents(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tenant{i}.example.com")).collect()
}

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const HEADERS: [&str; 3] = ["content-type", "authorization", "x-request-id"];

/// The corsair policy of a scenario.
///
/// # Errors
/// Only if corsair refuses it, which would be a bug.
pub fn corsair_policy(s: &Scenario) -> Result<corsair::Policy, corsair::ConfigErrors> {
    let origins: Vec<String> = if s.patterns > 0 {
        pattern_parents(s.patterns)
            .into_iter()
            .map(|p| format!("https://*.{p}"))
            .collect()
    } else {
        exact_origins(s.exact_origins)
    };
    corsair::Policy::builder()
        .allow_origins(origins)
        .allow_methods(METHODS)
        .allow_headers(HEADERS)
        .expose_headers(["x-request-id"])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
        .build()
}

/// The equivalent tower-http layer: a list of exact origins, or for patterns the predicate a
/// tower-http user writes (it has no subdomain patterns).
pub fn tower_http_layer(s: &Scenario) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow_origin = if s.patterns > 0 {
        let suffixes: Vec<String> = pattern_parents(s.patterns)
            .into_iter()
            .map(|p| format!(".{p}"))
            .collect();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| {
                o.starts_with("https://")
                    && suffixes.iter().any(|suffix| o.ends_with(suffix.as_str()))
            })
        })
    } else {
        AllowOrigin::list(exact_origins(s.exact_origins).iter().map(|o| hv(o)))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(METHODS.map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)))
        .allow_headers(HEADERS.map(HeaderName::from_static))
        .expose_headers([HeaderName::from_static("x-request-id")])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600))
}

/// Builds the scenario's request (part of every measurement, the floor included).
pub fn request(s: &Scenario) -> Request<()> {
    let mut r = Request::new(());
    *r.method_mut() = s.method.clone();
    *r.uri_mut() = http::Uri::from_static("/");
    let h = r.headers_mut();
    for (k, v) in &s.headers {
        h.append(k.clone(), v.clone());
    }
    r
}

/// The inner service: an empty 200.
pub async fn hello(_: Request<()>) -> Result<Response<()>, Infallible> {
    Ok(Response::new(()))
}

/// A boxed tower service of requests and responses of `()`.
pub type Svc = tower::util::BoxCloneService<Request<()>, Response<()>, Infallible>;

/// The inner service alone: the floor.
pub fn floor() -> Svc {
    tower::util::BoxCloneService::new(tower::service_fn(hello))
}

/// The inner service behind corsair.
///
/// # Errors
/// Only if corsair refuses the policy.
pub fn with_corsair(s: &Scenario) -> Result<Svc, corsair::ConfigErrors> {
    let layer = corsair::tower::CorsLayer::new(corsair_policy(s)?);
    Ok(tower::util::BoxCloneService::new(
        layer.layer(tower::service_fn(hello)),
    ))
}

/// The inner service behind tower-http's `CorsLayer`.
pub fn with_tower_http(s: &Scenario) -> Svc {
    tower::util::BoxCloneService::new(tower_http_layer(s).layer(tower::service_fn(hello)))
}

/// The inner service behind a layer that decides nothing and inserts, on every response, the
/// headers corsair adds to this scenario's response, precomputed with `'static` buffers: the
/// physical limit a CORS middleware can approach (issue 9's target is within 1.5× of it).
///
/// # Errors
/// Only if corsair refuses the scenario's policy.
pub fn with_static_headers(s: &Scenario) -> Result<Svc, corsair::ConfigErrors> {
    let added: Vec<(HeaderName, HeaderValue)> = added_headers(s)?
        .into_iter()
        .map(|(k, v)| {
            let leaked: &'static [u8] = Box::leak(v.as_bytes().to_vec().into_boxed_slice());
            let value = std::str::from_utf8(leaked)
                .map(HeaderValue::from_static)
                .unwrap_or(v);
            (k, value)
        })
        .collect();
    let layer = tower::util::MapResponseLayer::new(move |mut r: Response<()>| {
        let h = r.headers_mut();
        for (k, v) in &added {
            h.append(k.clone(), v.clone());
        }
        r
    });
    Ok(tower::util::BoxCloneService::new(
        layer.layer(tower::service_fn(hello)),
    ))
}

/// Polls a future that is ready at once (the services here never wait).
pub fn ready<F: Future>(f: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// One request through a service, start to finish.
pub fn call(svc: &mut Svc, req: Request<()>) -> Option<Response<()>> {
    ready(svc.call(req)).and_then(Result::ok)
}

/// The headers corsair adds to this scenario's response: what a bare insertion must insert.
///
/// # Errors
/// Only if corsair refuses the scenario's policy.
pub fn added_headers(
    s: &Scenario,
) -> Result<Vec<(HeaderName, HeaderValue)>, corsair::ConfigErrors> {
    let plain = call(&mut floor(), request(s));
    let decorated = call(&mut with_corsair(s)?, request(s));
    Ok(match (plain, decorated) {
        (Some(plain), Some(decorated)) => decorated
            .headers()
            .iter()
            .filter(|(k, _)| !plain.headers().contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Vec::new(),
    })
}

pub mod actix;
