//! The demo's two servers: the app origin (the page, and the small endpoints the page uses to
//! switch policies, predict and read the API's log) and the API, protected by corsair's
//! [`CorsLayer`] reading a [`PolicyHandle`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use corsair::browser::Credentials;
use corsair::tower::CorsLayer;
use corsair::{Policy, PolicyHandle};
use serde_json::{json, Value};

use super::predict::{check_command, predict, to_json, PageRequest};
use super::scenario::{lesson, Scenario, ALL};

const PAGE_HTML: &str = include_str!("page.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");

/// The API's path.
pub const API_PATH: &str = "/api/endpoint";
/// How many decisions the log keeps.
const LOG_LEN: usize = 200;

/// The policy the API serves now.
#[derive(Debug, Clone)]
struct Current {
    scenario: Scenario,
    origin: String,
    policy: Option<Policy>,
}

/// One request the API received, and what it decided.
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    line: Value,
}

/// State shared by both servers.
#[derive(Debug)]
pub struct Demo {
    current: Mutex<Current>,
    handle: PolicyHandle,
    log: Mutex<(u64, VecDeque<Entry>)>,
    api_port: u16,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Demo {
    /// The demo's state, serving the correct policy for a page at `http://localhost:APP_PORT`.
    ///
    /// # Errors
    /// When corsair refuses the correct policy for `http://localhost:APP_PORT` (a bug: every
    /// loopback origin is accepted), with corsair's message.
    pub fn new(app_port: u16, api_port: u16) -> Result<Arc<Demo>, String> {
        let origin = format!("http://localhost:{app_port}");
        let policy = Scenario::Correct
            .policy(&origin)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the correct scenario has a corsair policy".to_owned())?;
        Ok(Arc::new(Demo {
            handle: PolicyHandle::new(policy.clone()),
            current: Mutex::new(Current {
                scenario: Scenario::Correct,
                origin,
                policy: Some(policy),
            }),
            log: Mutex::new((0, VecDeque::new())),
            api_port,
        }))
    }

    fn current(&self) -> Current {
        lock(&self.current).clone()
    }

    fn switch(&self, scenario: Scenario, origin: &str) -> Result<(), String> {
        let policy = scenario.policy(origin).map_err(|e| e.to_string())?;
        if let Some(p) = &policy {
            self.handle.store(p.clone());
        }
        *lock(&self.current) = Current {
            scenario,
            origin: origin.to_owned(),
            policy,
        };
        Ok(())
    }

    fn record(&self, line: Value) {
        let mut log = lock(&self.log);
        log.0 += 1;
        let seq = log.0;
        log.1.push_back(Entry { seq, line });
        while log.1.len() > LOG_LEN {
            log.1.pop_front();
        }
    }
}

/// The app origin's router: the page and its endpoints.
pub fn app(demo: Arc<Demo>) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/page.css",
            get(|| asset(PAGE_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/page.js",
            get(|| asset(PAGE_JS, "text/javascript; charset=utf-8")),
        )
        .route("/demo/state", get(state))
        .route("/demo/policy", post(switch))
        .route("/demo/predict", post(predict_endpoint))
        .route("/demo/log", get(log))
        .with_state(demo)
}

/// The API's router: `/api/endpoint` behind corsair, with the demo's gate in front that logs
/// each decision and, for the mistakes corsair refuses to make, answers with raw headers.
pub fn api(demo: Arc<Demo>) -> Router {
    Router::new()
        .route(API_PATH, any(endpoint))
        .layer(CorsLayer::reloadable(demo.handle.clone()))
        .layer(middleware::from_fn_with_state(demo, gate))
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn page(State(demo): State<Arc<Demo>>) -> Response {
    let html = PAGE_HTML.replace("__API_PORT__", &demo.api_port.to_string());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // A cookie for the credentialed request to carry: localhost:8000 and
            // localhost:9000 are the same site, and cookies ignore ports.
            (header::SET_COOKIE, "corsair_demo=1; Path=/; SameSite=Lax"),
        ],
        html,
    )
        .into_response()
}

async fn endpoint() -> Json<Value> {
    Json(json!({ "msg": "success" }))
}

fn header_str(headers: &HeaderMap, name: &str) -> Value {
    headers.get(name).map_or(Value::Null, |v| {
        String::from_utf8_lossy(v.as_bytes()).into()
    })
}

async fn gate(State(demo): State<Arc<Demo>>, req: Request, next: Next) -> Response {
    let current = demo.current();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().to_owned();
    let answer = current
        .scenario
        .answer(current.policy.as_ref(), &method, &headers);
    let mut response = if current.scenario.served_by_corsair() {
        next.run(req).await
    } else {
        let mut r = match answer.respond {
            Some(status) => (status, Body::empty()).into_response(),
            None => endpoint().await.into_response(),
        };
        r.headers_mut().extend(answer.headers.clone());
        r
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    demo.record(json!({
        "method": method.as_str(),
        "path": path,
        "origin": header_str(&headers, "origin"),
        "request_method": header_str(&headers, "access-control-request-method"),
        "request_headers": header_str(&headers, "access-control-request-headers"),
        "cookie": headers.contains_key(header::COOKIE),
        "status": response.status().as_u16(),
        "decision": answer.decision,
        "policy": current.scenario.name(),
        "served_by": if current.scenario.served_by_corsair() { "corsair" } else { "raw headers" },
    }));
    response
}

fn bad(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

fn scenario_json(s: Scenario, origin: &str) -> Value {
    let l = lesson(s, origin);
    json!({
        "name": s.name(),
        "title": s.title(),
        "served_by": if s.served_by_corsair() { "corsair" } else { "raw headers" },
        "failure": l.failure,
        "breaks": l.breaks,
        "fix_builder": l.fix_builder,
        "fix_file": l.fix_file,
    })
}

async fn state(State(demo): State<Arc<Demo>>) -> Json<Value> {
    let current = demo.current();
    let last = lock(&demo.log).0;
    Json(json!({
        "policy": current.scenario.name(),
        "origin": current.origin,
        "api_path": API_PATH,
        "last": last,
        "policies": ALL.iter().map(|s| scenario_json(*s, &current.origin)).collect::<Vec<_>>(),
        "requests": super::presets().iter().map(|(id, label, r)| json!({
            "id": id,
            "label": label,
            "method": r.method,
            "headers": r.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "credentials": credentials_name(r.credentials),
        })).collect::<Vec<_>>(),
    }))
}

fn credentials_name(c: Credentials) -> &'static str {
    match c {
        Credentials::Omit => "omit",
        Credentials::SameOrigin => "same-origin",
        Credentials::Include => "include",
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, String> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the JSON body needs a string {name:?}"))
}

async fn switch(State(demo): State<Arc<Demo>>, Json(body): Json<Value>) -> Response {
    let (name, origin) = match (field(&body, "policy"), field(&body, "origin")) {
        (Ok(n), Ok(o)) => (n, o),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let Some(scenario) = Scenario::from_name(name) else {
        return bad(format!("{name:?} is not one of the demo's policies"));
    };
    if let Err(e) = demo.switch(scenario, origin) {
        return bad(e);
    }
    let mut info = scenario_json(scenario, origin);
    // The console message of the request this mistake breaks, from corsair's browser engine.
    let current = demo.current();
    let url = format!("{}{API_PATH}", api_origin(origin, demo.api_port));
    if let Some((_, _, request)) = super::presets()
        .into_iter()
        .find(|(id, _, _)| *id == info["breaks"])
    {
        if let Ok(p) = predict(scenario, current.policy.as_ref(), origin, &url, &request) {
            info["console"] = p.verdict.err().map_or(Value::Null, Value::from);
        }
    }
    Json(info).into_response()
}

/// The API's origin as the page sees it: the page's host, the API's port.
fn api_origin(page_origin: &str, api_port: u16) -> String {
    let host = page_origin
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(page_origin, |(h, _)| h);
    format!("{host}:{api_port}")
}

async fn predict_endpoint(State(demo): State<Arc<Demo>>, Json(body): Json<Value>) -> Response {
    let (url, origin, method, credentials) = match (
        field(&body, "url"),
        field(&body, "origin"),
        field(&body, "method"),
        field(&body, "credentials"),
    ) {
        (Ok(u), Ok(o), Ok(m), Ok(c)) => (u, o, m, c),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return bad(e),
    };
    let credentials: Credentials = match credentials.parse() {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let mut headers = Vec::new();
    for pair in body
        .get("headers")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        match (
            pair.get(0).and_then(Value::as_str),
            pair.get(1).and_then(Value::as_str),
        ) {
            (Some(n), Some(v)) => headers.push((n.to_owned(), v.to_owned())),
            _ => return bad("headers must be a list of [name, value] pairs of strings"),
        }
    }
    let request = PageRequest {
        method: method.to_owned(),
        headers,
        credentials,
    };
    let current = demo.current();
    match predict(
        current.scenario,
        current.policy.as_ref(),
        origin,
        url,
        &request,
    ) {
        Ok(p) => {
            let mut v = to_json(&p);
            v["check"] = check_command(origin, url, &request).into();
            v["policy"] = current.scenario.name().into();
            Json(v).into_response()
        }
        Err(e) => Json(json!({
            "allowed": false,
            "invalid": true,
            "message": format!("the browser throws before sending anything: {e}"),
            "exchanges": [],
            "check": check_command(origin, url, &request),
            "policy": current.scenario.name(),
        }))
        .into_response(),
    }
}

async fn log(State(demo): State<Arc<Demo>>, uri: Uri) -> Json<Value> {
    let after = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("after=")))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let log = lock(&demo.log);
    let entries: Vec<Value> = log
        .1
        .iter()
        .filter(|e| e.seq > after)
        .map(|e| {
            let mut line = e.line.clone();
            line["seq"] = e.seq.into();
            line
        })
        .collect();
    Json(json!({ "last": log.0, "entries": entries }))
}

#[cfg(test)]
mod tests {
    use super::api_origin;

    #[test]
    fn the_api_origin_keeps_the_page_host_and_takes_the_api_port() {
        assert_eq!(
            api_origin("http://localhost:8000", 9000),
            "http://localhost:9000"
        );
        assert_eq!(
            api_origin("http://127.0.0.1:41234", 9),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            api_origin("http://localhost", 9000),
            "http://localhost:9000"
        );
    }
}
