//! The page server: serves, on 127.0.0.1, pages that run fetches from several origins and post
//! what they saw back.
//!
//! Every host name reaches the same server, so `http://localhost:P`, `http://app.corsair.test:P`
//! and `http://evil.test:P` are distinct origins served by one port. The top page embeds one
//! frame per origin; each frame asks its own origin for its cases, runs them with `fetch()`
//! (one after another, except that cases of different [`Case::seq`] groups run side by side),
//! and posts the outcomes to its own origin.
//!
//! Two kinds of frame origin go further: `https://…` origins are served over TLS by a second
//! port when the server was started with [`PageOptions::tls`] (a certificate of a local CA the
//! browsers are made to trust), and the origin `null` is a sandboxed frame
//! (`sandbox="allow-scripts"`, an opaque origin) served from `http://sandbox.test:P`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::browser::Headless;

/// One `fetch()` a page runs.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Unique name of the case.
    pub id: String,
    /// The URL fetched.
    pub url: String,
    /// The method, exactly as the script passes it (`patch` stays lowercase).
    pub method: String,
    /// Request headers the script sets, in order.
    pub headers: Vec<(String, String)>,
    /// `omit`, `same-origin` or `include`.
    pub credentials: String,
    /// A request body, if any.
    pub body: Option<String>,
    /// A response header the script tries to read.
    pub read_header: Option<String>,
    /// What the script makes of `body`: `None` passes the string itself, `urlsearchparams` a
    /// `URLSearchParams` of it, `formdata` a `FormData` with one field of that value,
    /// `blob:TYPE` a `Blob` of that MIME type.
    pub body_type: Option<String>,
    /// The group the case runs in: the cases of one group run in order, groups side by side.
    pub seq: u32,
    /// Milliseconds to wait before the fetch (after the group's previous case finished).
    pub pause_ms: u64,
    /// The request's cache mode (`no-store` unless said otherwise: `default` lets the browser
    /// use its preflight cache).
    pub cache: String,
}

impl Case {
    /// A case with no body, no header to read, in group 0, with no pause, cache mode `no-store`.
    pub fn new(
        id: &str,
        url: &str,
        method: &str,
        headers: &[(String, String)],
        credentials: &str,
    ) -> Case {
        Case {
            id: id.to_owned(),
            url: url.to_owned(),
            method: method.to_owned(),
            headers: headers.to_vec(),
            credentials: credentials.to_owned(),
            body: None,
            read_header: None,
            body_type: None,
            seq: 0,
            pause_ms: 0,
            cache: "no-store".to_owned(),
        }
    }
}

/// What a page saw for one case.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Seen {
    /// The case's id.
    pub id: String,
    /// `fetch()` resolved (the CORS checks passed).
    pub ok: bool,
    /// The status the script saw (0 when blocked).
    pub status: u16,
    /// The value of the header the case asked to read, if readable.
    pub header: Option<String>,
    /// The names of every response header the script could read, lowercase, sorted.
    pub visible: Vec<String>,
    /// The error's text when blocked.
    pub error: Option<String>,
}

/// The cases one origin runs.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The page's origin, e.g. `http://app.corsair.test:41234`, an `https://` origin on
    /// [`PageServer::tls_port`], or `null` for a sandboxed frame.
    pub origin: String,
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// The outcome of running frames in a browser.
#[derive(Debug)]
pub struct Run {
    /// What the pages saw, by case id.
    pub seen: HashMap<String, Seen>,
    /// What the browser printed on stderr (Chromium's and WebKitGTK's console messages among
    /// it), and Firefox's CORS console messages (see [`crate::browser::FIREFOX_CORS_TAG`]).
    pub console: String,
}

#[derive(Default)]
struct Shared {
    port: Mutex<u16>,
    frames: Mutex<HashMap<String, Vec<Case>>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Posted>>>,
}

#[derive(Deserialize)]
struct Posted {
    origin: String,
    results: Vec<Seen>,
}

/// A running page server.
pub struct PageServer {
    port: u16,
    tls: Option<(u16, String)>,
    shared: Arc<Shared>,
}

/// How to start a [`PageServer`].
#[derive(Default)]
pub struct PageOptions {
    /// More routes to serve on the pages' origins (e.g. a scripted API, fetched same-origin).
    pub routes: Option<Router>,
    /// Also serve every page over TLS, on a port of its own, with a certificate of a fresh local
    /// CA that the browsers launched by [`PageServer::run`] trust.
    pub tls: bool,
}

impl PageServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> Result<PageServer, String> {
        PageServer::start_with(PageOptions::default()).await
    }

    /// Starts the server with more routes or TLS.
    ///
    /// # Errors
    /// When no port can be bound or the certificates cannot be made.
    pub async fn start_with(options: PageOptions) -> Result<PageServer, String> {
        let shared = Arc::new(Shared::default());
        let mut app = Router::new()
            .route("/", get(top))
            .route("/frame", get(frame))
            .route("/cases", get(cases))
            .route("/results", post(results))
            .with_state(shared.clone());
        if let Some(routes) = options.routes {
            app = app.merge(routes);
        }
        let tls = if options.tls {
            let ca = crate::tls::LocalCa::new()?;
            let port = ca.serve_loopback(app.clone(), "page server (TLS)").await?;
            Some((port, ca.ca_pem()))
        } else {
            None
        };
        let port = crate::serve_loopback(app, "page server").await?;
        *lock(&shared.port) = port;
        Ok(PageServer { port, tls, shared })
    }

    /// The port every `http` page origin uses.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port every `https` page origin uses, when started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(p, _)| *p)
    }

    /// Runs `frames` in `browser` and waits (at most `timeout`) for every frame's outcomes.
    ///
    /// # Errors
    /// When the browser is missing, fails to start, or some frame did not report in time
    /// (the error then carries the browser's stderr).
    pub async fn run(
        &self,
        browser: Headless,
        frames: &[Frame],
        timeout: Duration,
    ) -> Result<Run, String> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut map = lock(&self.shared.frames);
            map.clear();
            for f in frames {
                map.insert(f.origin.clone(), f.cases.clone());
            }
        }
        *lock(&self.shared.tx) = Some(tx);
        let top = format!("http://localhost:{}/", self.port);
        // Launching may block for seconds (Firefox: until Marionette answers and the page is
        // asked for): off the runtime's threads, which serve the page.
        let ca = self.tls.as_ref().map(|(_, ca)| ca.clone());
        let running =
            tokio::task::spawn_blocking(move || browser.launch_trusting(&top, ca.as_deref()))
                .await
                .map_err(|e| format!("launching {}: {e}", browser.name()))??;
        let mut seen = HashMap::new();
        let mut pending: Vec<&str> = frames.iter().map(|f| f.origin.as_str()).collect();
        let deadline = tokio::time::Instant::now() + timeout;
        while !pending.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(posted)) => {
                    pending.retain(|o| *o != posted.origin);
                    for s in posted.results {
                        seen.insert(s.id.clone(), s);
                    }
                }
                _ => {
                    let console = tokio::task::spawn_blocking(move || running.stop())
                        .await
                        .unwrap_or_default();
                    return Err(format!(
                        "{}: no results from {pending:?} within {timeout:?}; browser stderr:\n{}",
                        browser.name(),
                        tail(&console, 4000)
                    ));
                }
            }
        }
        let console = tokio::task::spawn_blocking(move || running.stop())
            .await
            .unwrap_or_default();
        Ok(Run { seen, console })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

async fn top(State(s): State<Arc<Shared>>) -> Html<String> {
    let mut origins: Vec<String> = lock(&s.frames).keys().cloned().collect();
    origins.sort();
    let port = *lock(&s.port);
    let frames: String = origins
        .iter()
        .map(|o| {
            if o == "null" {
                format!(
                    "<iframe sandbox=\"allow-scripts\" src=\"http://sandbox.test:{port}/frame\"></iframe>\n"
                )
            } else {
                format!("<iframe src=\"{o}/frame\"></iframe>\n")
            }
        })
        .collect();
    Html(format!(
        "<!doctype html><title>corsair matrix</title>\n{frames}"
    ))
}

async fn frame() -> Html<&'static str> {
    Html(FRAME)
}

/// Sandboxed frames fetch their cases and post their results cross-origin (from `null`).
const ANY_ORIGIN: [(header::HeaderName, &str); 1] = [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")];

/// The frame asks for `/cases?key=ORIGIN`, the origin unencoded (`:` and `/` may stand in a
/// query).
async fn cases(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let key = q
        .as_deref()
        .and_then(|q| q.strip_prefix("key="))
        .unwrap_or_default();
    match lock(&s.frames).get(key) {
        Some(cases) => (ANY_ORIGIN, Json(cases.clone())).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no cases for {key}")).into_response(),
    }
}

async fn results(State(s): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<Posted>(&body) {
        Ok(posted) => {
            if let Some(tx) = lock(&s.tx).as_ref() {
                let _ = tx.send(posted);
            }
            (StatusCode::NO_CONTENT, ANY_ORIGIN).into_response()
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The frame's script: run every case with `fetch()` (groups side by side, each in order),
/// then post the outcomes. A frame is known by its origin (`null` when sandboxed).
const FRAME: &str = r#"<!doctype html><title>frame</title><script>
(async () => {
  const key = self.origin; // "null" in a sandboxed frame, where location.origin is not
  const cases = await (await fetch('/cases?key=' + key, { cache: 'no-store' })).json();
  const results = [];
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const makeBody = c => {
    if (c.body === null) return undefined;
    const t = c.body_type;
    if (t === 'urlsearchparams') return new URLSearchParams(c.body);
    if (t === 'formdata') { const f = new FormData(); f.append('a', c.body); return f; }
    if (t && t.startsWith('blob:')) return new Blob([c.body], { type: t.slice(5) });
    return c.body;
  };
  const one = async c => {
    try {
      const init = { method: c.method, headers: c.headers, credentials: c.credentials,
                     mode: 'cors', cache: c.cache };
      const body = makeBody(c);
      if (body !== undefined) init.body = body;
      const r = await fetch(c.url, init);
      const header = c.read_header ? r.headers.get(c.read_header) : null;
      const visible = [...r.headers.keys()].map(k => k.toLowerCase()).sort();
      try { await r.text(); } catch (e) {}
      results.push({ id: c.id, ok: true, status: r.status, header, visible, error: null });
    } catch (e) {
      results.push({ id: c.id, ok: false, status: 0, header: null, visible: [], error: String(e) });
    }
  };
  const groups = new Map();
  for (const c of cases) {
    if (!groups.has(c.seq)) groups.set(c.seq, []);
    groups.get(c.seq).push(c);
  }
  await Promise.all([...groups.values()].map(async g => {
    for (const c of g) {
      if (c.pause_ms) await sleep(c.pause_ms);
      await one(c);
    }
  }));
  await fetch('/results', { method: 'POST', body: JSON.stringify({ origin: key, results }) });
})();
</script>"#;
