//! The page server: serves, on 127.0.0.1, pages that run fetches from several origins and post
//! what they saw back.
//!
//! Every host name reaches the same server, so `http://localhost:P`, `http://app.corsair.test:P`
//! and `http://evil.test:P` are distinct origins served by one port. The top page embeds one
//! frame per origin; each frame asks its own origin for its cases, runs them one after another
//! with `fetch()`, and posts the outcomes to its own origin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
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
    /// The page's origin, e.g. `http://app.corsair.test:41234`.
    pub origin: String,
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// The outcome of running frames in a browser.
#[derive(Debug)]
pub struct Run {
    /// What the pages saw, by case id.
    pub seen: HashMap<String, Seen>,
    /// What the browser printed on stderr (Chromium's console messages among it).
    pub console: String,
}

#[derive(Default)]
struct Shared {
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
    shared: Arc<Shared>,
}

impl PageServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> Result<PageServer, String> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/", get(top))
            .route("/frame", get(frame))
            .route("/cases", get(cases))
            .route("/results", post(results))
            .with_state(shared.clone());
        let port = crate::serve_loopback(app, "page server").await?;
        Ok(PageServer { port, shared })
    }

    /// The port every page origin uses.
    pub fn port(&self) -> u16 {
        self.port
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
        let running = browser.launch(&top)?;
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

fn origin_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    format!("http://{host}")
}

async fn top(State(s): State<Arc<Shared>>) -> Html<String> {
    let mut origins: Vec<String> = lock(&s.frames).keys().cloned().collect();
    origins.sort();
    let frames: String = origins
        .iter()
        .map(|o| format!("<iframe src=\"{o}/frame\"></iframe>\n"))
        .collect();
    Html(format!(
        "<!doctype html><title>corsair matrix</title>\n{frames}"
    ))
}

async fn frame() -> Html<&'static str> {
    Html(FRAME)
}

async fn cases(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let origin = origin_of(&headers);
    match lock(&s.frames).get(&origin) {
        Some(cases) => Json(cases.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no cases for {origin}")).into_response(),
    }
}

async fn results(State(s): State<Arc<Shared>>, body: String) -> StatusCode {
    match serde_json::from_str::<Posted>(&body) {
        Ok(posted) => {
            if let Some(tx) = lock(&s.tx).as_ref() {
                let _ = tx.send(posted);
            }
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// The frame's script: run every case with `fetch()`, then post the outcomes.
const FRAME: &str = r#"<!doctype html><title>frame</title><script>
(async () => {
  const cases = await (await fetch('/cases', { cache: 'no-store' })).json();
  const results = [];
  for (const c of cases) {
    const init = { method: c.method, headers: c.headers, credentials: c.credentials,
                   mode: 'cors', cache: 'no-store' };
    if (c.body !== null) init.body = c.body;
    try {
      const r = await fetch(c.url, init);
      const header = c.read_header ? r.headers.get(c.read_header) : null;
      const visible = [...r.headers.keys()].map(k => k.toLowerCase()).sort();
      try { await r.text(); } catch (e) {}
      results.push({ id: c.id, ok: true, status: r.status, header, visible, error: null });
    } catch (e) {
      results.push({ id: c.id, ok: false, status: 0, header: null, visible: [], error: String(e) });
    }
  }
  await fetch('/results', { method: 'POST', body: JSON.stringify({ origin: location.origin, results }) });
})();
</script>"#;
