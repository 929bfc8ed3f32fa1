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
//!
//! In Firefox, a frame with a case that may read the preflight cache (a cache mode other than
//! `no-store` and `reload`) first settles that cache. Before a cached preflight serves, Firefox
//! checks the host's DNS records (`CORSCacheEntry::CheckDNSCache` in Gecko's
//! `nsCORSListenerProxy.cpp`: an offline lookup per address family, any, IPv4 and IPv6, in the
//! frame's network partition) and drops the entry when a record is newer than it. Every test
//! host resolves to the literal `127.0.0.1` (`network.dns.forceResolve`), and the records of
//! such a literal are made by the first lookup that asks, stamped with that moment: so in a
//! fresh Firefox the first lookups, up to one per family, miss, and which of several sequences
//! running side by side loses a cached preflight depends on timing. The frame therefore
//! fetches `PUT /warm` on `warm.test` (cross-origin, preflighted, cached for 10 minutes) until a
//! fetch goes out without a preflight (the answer says how many it has seen): every record of
//! the partition then exists and is older than any entry the cases make, and literals are never
//! resolved again. It takes four fetches with Firefox ESR 153 (the frame's own loads have made
//! the record for any family; the second and third fetches' lookups make those for IPv4 and
//! IPv6, and miss); a frame that has not settled after eight makes [`PageServer::run`] fail.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
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
    /// The frames (by origin) that settle Firefox's preflight cache before their cases.
    settle: Mutex<HashSet<String>>,
    /// The preflights `/warm` has answered, by `Origin`.
    warm_preflights: Mutex<HashMap<String, u32>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Posted>>>,
}

#[derive(Deserialize)]
struct Posted {
    origin: String,
    results: Vec<Seen>,
    /// Why the frame could not settle the preflight cache (it then runs no case).
    #[serde(default)]
    unsettled: Option<String>,
}

/// What a frame gets from `/cases`.
#[derive(Serialize)]
struct FrameCases<'a> {
    /// Settle Firefox's preflight cache first (see the module documentation).
    settle: bool,
    cases: &'a [Case],
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
            .route("/warm", any(warm))
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
            let mut settle = lock(&self.shared.settle);
            map.clear();
            settle.clear();
            for f in frames {
                map.insert(f.origin.clone(), f.cases.clone());
                let reads_cache = f
                    .cases
                    .iter()
                    .any(|c| corsair::browser::reads_preflight_cache(&c.cache));
                if browser == Headless::Firefox && reads_cache {
                    settle.insert(f.origin.clone());
                }
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
                    if let Some(why) = posted.unsettled {
                        let console = tokio::task::spawn_blocking(move || running.stop())
                            .await
                            .unwrap_or_default();
                        return Err(format!(
                            "{}: the frame {} could not settle the preflight cache before its \
                             cases: {why}; browser stderr:\n{}",
                            browser.name(),
                            posted.origin,
                            tail(&console, 4000)
                        ));
                    }
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
    let settle = lock(&s.settle).contains(key);
    match lock(&s.frames).get(key) {
        Some(cases) => (ANY_ORIGIN, Json(FrameCases { settle, cases })).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no cases for {key}")).into_response(),
    }
}

/// The header in which `/warm` says how many preflights it has answered.
const PREFLIGHTS: &str = "x-preflights";

/// `/warm`, fetched cross-origin by a frame that settles Firefox's preflight cache: a
/// preflight for `PUT` is allowed and cached 10 minutes; the `PUT` answers how many preflights
/// this `Origin` has sent so far (`x-preflights`, readable by the page).
async fn warm(State(s): State<Arc<Shared>>, method: Method, headers: HeaderMap) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let allow = [(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone())];
    let mut counts = lock(&s.warm_preflights);
    let seen = counts.entry(origin).or_default();
    if method == Method::OPTIONS {
        *seen += 1;
        let cached = [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "PUT"),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ];
        return (StatusCode::NO_CONTENT, allow, cached).into_response();
    }
    let count = [
        (header::ACCESS_CONTROL_EXPOSE_HEADERS, PREFLIGHTS.to_owned()),
        (
            header::HeaderName::from_static(PREFLIGHTS),
            seen.to_string(),
        ),
    ];
    (StatusCode::OK, allow, count).into_response()
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
  const { settle, cases } = await (await fetch('/cases?key=' + key, { cache: 'no-store' })).json();
  const results = [];
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (settle) {
    // Firefox: until a fetch skips its preflight, so that the DNS records its preflight cache
    // checks exist before any case makes an entry (see the page server's documentation).
    const warm = new URL('/warm', location.href);
    warm.hostname = 'warm.test';
    let last = -1, unsettled = 'still preflighted after 8 fetches';
    for (let i = 0; i < 8; i++) {
      try {
        const r = await fetch(warm, { method: 'PUT', mode: 'cors', credentials: 'omit', cache: 'default' });
        const seen = Number(r.headers.get('x-preflights'));
        if (seen === last) { unsettled = null; break; }
        last = seen;
      } catch (e) { unsettled = String(e); break; }
    }
    if (unsettled) {
      await fetch('/results', { method: 'POST', body: JSON.stringify({ origin: key, results, unsettled }) });
      return;
    }
  }
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
