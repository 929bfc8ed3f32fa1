//! A scripted server: for each case id, fixed answers to the preflight and to the actual request
//! of every hop of a redirect chain, so that browsers and corsair's engine see the same
//! responses; and a log of what the browsers sent, so that a test can count their preflights.
//!
//! Paths: `/c/{id}` is the first hop, `/c/{id}/r` the second, `/c/{id}/h/{n}` the hop `n`
//! (2 and more) of a longer chain. `OPTIONS` gets the hop's preflight script, any other method
//! its actual script. A request carrying [`ENGINE_MARK`] is answered but not logged: it is the
//! engine's, not a browser's.
//!
//! A script may answer the first hop's preflights in turn ([`Script::preflights`]): the server
//! counts them per case id, the browsers' and the engine's (marked) apart, so that the engine
//! replaying a sequence after a browser gets the answers in the same order the browser got
//! them, as long as both send the same number of preflights; where one skips a preflight the
//! other sends, the answers that follow differ, and so do the requests both sent.

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
    /// The answers to the first hop's successive preflights, in turn: the nth preflight (from
    /// 0, counted per case id) gets the nth, and the last answers every one after it. Empty:
    /// `preflight` answers them all.
    pub preflights: Vec<Answer>,
}

impl Script {
    /// The answer to the first hop's preflight number `n` (from 0): the nth of
    /// [`preflights`](Self::preflights), its last one past its end, or `preflight` when it is
    /// empty.
    pub fn preflight_answer(&self, n: usize) -> &Answer {
        self.preflights
            .get(n)
            .or(self.preflights.last())
            .unwrap_or(&self.preflight)
    }

    /// The answer to `method` on the hop at `path` (the part after `/c/{id}`), when it is the
    /// first hop's preflight, to its preflight number `n` (from 0).
    pub fn answer_to(&self, path: &str, method: &str, n: usize) -> Option<&Answer> {
        let preflight = method == "OPTIONS";
        match path {
            "" => Some(if preflight {
                self.preflight_answer(n)
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
    /// First-hop preflights answered so far, by case id and whether the engine sent them.
    preflights: Mutex<HashMap<(String, bool), usize>>,
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

    /// Forgets every logged request, and the count of preflights answered (the next preflight
    /// of every case gets its first answer).
    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
        lock(&self.shared.preflights).clear();
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
    let engine = headers.contains_key(ENGINE_MARK);
    if !engine {
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
    // The first hop's preflights, counted in the order they arrive.
    let n = if hop.is_empty() && method == Method::OPTIONS {
        let mut counts = lock(&shared.preflights);
        let count = counts.entry((id.to_owned(), engine)).or_default();
        *count += 1;
        *count - 1
    } else {
        0
    };
    let scripts = shared
        .scripts
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match scripts
        .get(id)
        .and_then(|s| s.answer_to(hop, method.as_str(), n))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::{Answer, Script, ScriptedServer, ENGINE_MARK};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
        }
    }

    /// The status of the server's answer to `method path`, marked as the engine's or not.
    async fn ask(port: u16, method: &str, path: &str, engine: bool) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mark = if engine {
            format!("{ENGINE_MARK}: 1\r\n")
        } else {
            String::new()
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{mark}\
             Content-Length: 0\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf);
        head.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// A key's first-hop preflights get its answers in turn, the last repeating; the browsers'
    /// and the engine's are counted apart; actual requests, other hops and other keys do not
    /// move the count, and a script without turns answers every preflight alike.
    #[tokio::test]
    async fn preflights_are_answered_in_turn_counted_per_key_and_sender() {
        let server = ScriptedServer::start().await.unwrap();
        let port = server.port();
        server.set(
            "t",
            Script {
                preflight: status(500),
                actual: status(200),
                hop_preflight: status(205),
                preflights: vec![status(201), status(202), status(203)],
                ..Script::default()
            },
        );
        server.set(
            "u",
            Script {
                preflight: status(204),
                actual: status(200),
                ..Script::default()
            },
        );
        let mut browser = Vec::new();
        for _ in 0..2 {
            browser.push(ask(port, "OPTIONS", "/c/t", false).await);
        }
        assert_eq!(ask(port, "OPTIONS", "/c/t", true).await, 201);
        assert_eq!(ask(port, "PUT", "/c/t", false).await, 200);
        assert_eq!(ask(port, "OPTIONS", "/c/t/r", false).await, 205);
        assert_eq!(ask(port, "OPTIONS", "/c/u", false).await, 204);
        assert_eq!(ask(port, "OPTIONS", "/c/u", false).await, 204);
        for _ in 0..3 {
            browser.push(ask(port, "OPTIONS", "/c/t", false).await);
        }
        assert_eq!(browser, [201, 202, 203, 203, 203]);
        assert_eq!(ask(port, "OPTIONS", "/c/t", true).await, 202);
        server.clear_log();
        assert_eq!(ask(port, "OPTIONS", "/c/t", false).await, 201);
        assert_eq!(ask(port, "OPTIONS", "/c/t", true).await, 201);
    }
}
