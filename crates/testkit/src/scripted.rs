//! A scripted server: for each case id, fixed answers to the preflight and to the actual request
//! of every hop of a redirect chain, so that browsers and corsair's engine see the same
//! responses; and a log of what the browsers sent, so that a test can count their preflights.
//!
//! Paths: `/c/{id}` is the first hop, `/c/{id}/r` the second, `/c/{id}/h/{n}` the hop `n`
//! (2 and more) of a longer chain. `OPTIONS` gets the hop's preflight script, any other method
//! its actual script. A request carrying [`ENGINE_MARK`] is answered but not logged: it is the
//! engine's, not a browser's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use axum::routing::any;
use axum::Router;

/// The request header that keeps a request out of the log.
pub const ENGINE_MARK: &str = "x-corsair-engine";

/// One scripted response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Header lines, in order; repeated names give repeated lines.
    pub headers: Vec<(String, String)>,
}

/// The answers for one case.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The answer to the first hop's preflight.
    pub preflight: Answer,
    /// The answer to the first hop's actual request.
    pub actual: Answer,
    /// The answer to the second hop's (`/c/{id}/r`) preflight.
    pub hop_preflight: Answer,
    /// The answer to the second hop's actual request.
    pub hop_actual: Answer,
    /// The answers (preflight, actual) of the hops `/c/{id}/h/{n}`, by `n`; the entries at 0
    /// and 1 are not used.
    pub hops: Vec<(Answer, Answer)>,
}

impl Script {
    /// The answer to `method` on the hop at `path` (the part after `/c/{id}`).
    pub fn answer_for(&self, path: &str, method: &str) -> Option<&Answer> {
        let preflight = method == "OPTIONS";
        match path {
            "" => Some(if preflight {
                &self.preflight
            } else {
                &self.actual
            }),
            "/r" => Some(if preflight {
                &self.hop_preflight
            } else {
                &self.hop_actual
            }),
            other => {
                let n: usize = other.strip_prefix("/h/")?.parse().ok()?;
                self.hops
                    .get(n)
                    .map(|(pre, act)| if preflight { pre } else { act })
            }
        }
    }
}

/// One request a browser sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The method.
    pub method: String,
    /// The hop: the path after `/c/{id}` (empty for the first).
    pub hop: String,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// `Access-Control-Request-Method`, if any.
    pub request_method: Option<String>,
    /// `Access-Control-Request-Headers`, if any.
    pub request_headers: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The request body's length.
    pub body_len: usize,
}

#[derive(Default)]
struct Shared {
    scripts: RwLock<HashMap<String, Script>>,
    log: Mutex<HashMap<String, Vec<Logged>>>,
}

/// A running scripted server on 127.0.0.1.
pub struct ScriptedServer {
    port: u16,
    shared: Arc<Shared>,
}

impl ScriptedServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> Result<ScriptedServer, String> {
        let shared: Arc<Shared> = Arc::default();
        let port = crate::serve_loopback(routes(shared.clone()), "scripted server").await?;
        Ok(ScriptedServer { port, shared })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same scripted routes, to mount on another server (a page server, so that pages can
    /// fetch them same-origin); they share this server's scripts and log.
    pub fn routes(&self) -> Router {
        routes(self.shared.clone())
    }

    /// Sets the script of a case.
    pub fn set(&self, id: &str, script: Script) {
        write(&self.shared.scripts).insert(id.to_owned(), script);
    }

    /// What browsers sent for case `id`, in the order it arrived.
    pub fn log(&self, id: &str) -> Vec<Logged> {
        lock(&self.shared.log).get(id).cloned().unwrap_or_default()
    }

    /// Forgets every logged request.
    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/c/{id}", any(first))
        .route("/c/{id}/r", any(second))
        .route("/c/{id}/h/{n}", any(nth))
        .with_state(shared)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn answer(a: &Answer) -> Response<Body> {
    let mut r = Response::new(Body::from("ok"));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &a.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn respond(
    shared: &Shared,
    id: &str,
    hop: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    if !headers.contains_key(ENGINE_MARK) {
        let text = |n: &str| {
            headers
                .get(n)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        lock(&shared.log)
            .entry(id.to_owned())
            .or_default()
            .push(Logged {
                method: method.as_str().to_owned(),
                hop: hop.to_owned(),
                origin: text("origin"),
                request_method: text("access-control-request-method"),
                request_headers: text("access-control-request-headers"),
                content_type: text("content-type"),
                body_len: body.len(),
            });
    }
    let scripts = shared
        .scripts
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match scripts
        .get(id)
        .and_then(|s| s.answer_for(hop, method.as_str()))
    {
        Some(a) => answer(a),
        None => {
            let mut r = Response::new(Body::from(format!("no script for {id}{hop}")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

fn hop_of(uri: &Uri, id: &str) -> String {
    let path = uri.path();
    let prefix = format!("/c/{id}");
    path.strip_prefix(&prefix).unwrap_or(path).to_owned()
}

async fn first(
    State(s): State<Arc<Shared>>,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    respond(&s, &id, "", &method, &headers, &body)
}

async fn second(
    State(s): State<Arc<Shared>>,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    respond(&s, &id, "/r", &method, &headers, &body)
}

async fn nth(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Path((id, _n)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    let hop = hop_of(&uri, &id);
    respond(&s, &id, &hop, &method, &headers, &body)
}
