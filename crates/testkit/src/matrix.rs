//! The foundation's real-browser matrix: policies mounted under path prefixes of one API server,
//! pages on several origins, and for every fetch the outcome a browser must show, written by hand
//! from the Fetch Standard.
//!
//! The same matrix serves two setups: the tower middleware in process ([`protected_api`]) and,
//! later, `corsair proxy` in front of [`upstream`], which knows nothing of CORS.
//!
//! A rejected `fetch()` is not enough to count as the expected block: the server side is
//! [`Observed`] (what the CORS server received, what reached the application), so a blocked case
//! must show the preflight the Fetch Standard calls for (or none) and no actual request when the
//! preflight failed; the script must see the browser's CORS network error, not another
//! exception; and the browser's console (Chromium's and WebKitGTK's standard streams, Firefox's
//! console service read through Marionette) must carry the CORS message for that very URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::{ConfigErrors, Policy};

use crate::pages::{Case, Frame, Run};

/// Path prefixes of the API server, one policy each.
pub const PREFIXES: [&str; 4] = ["/exact", "/sub", "/port", "/any"];

/// The policies, by prefix, for pages served on `page_port`:
/// - `/exact`: `http://localhost:{page_port}` only; PUT, DELETE, PATCH; `x-custom`,
///   `content-type`; exposes `x-request-id`; credentials.
/// - `/sub`: `http://*.corsair.test:{page_port}`; PUT; `x-custom`; no credentials.
/// - `/port`: `http://localhost:*`; any method; any header; credentials (reflection).
/// - `/any`: any origin (`*`); PUT; `x-custom`; exposes `*`; no credentials.
///
/// # Errors
/// Only if corsair refuses one of these policies, which would be a bug.
pub fn policies(page_port: u16) -> Result<Vec<(&'static str, Policy)>, ConfigErrors> {
    Ok(vec![
        (
            "/exact",
            Policy::builder()
                .allow_origins([format!("http://localhost:{page_port}")])
                .allow_methods(["PUT", "DELETE", "PATCH"])
                .allow_headers(["x-custom", "content-type"])
                .expose_headers(["x-request-id"])
                .allow_credentials(true)
                .build()?,
        ),
        (
            "/sub",
            Policy::builder()
                .allow_origins([format!("http://*.corsair.test:{page_port}")])
                .allow_methods(["PUT"])
                .allow_headers(["x-custom"])
                .build()?,
        ),
        (
            "/port",
            Policy::builder()
                .allow_origins(["http://localhost:*"])
                .allow_methods(["*"])
                .allow_headers(["*"])
                .allow_credentials(true)
                .build()?,
        ),
        (
            "/any",
            Policy::builder()
                .allow_origins(["*"])
                .allow_methods(["PUT"])
                .allow_headers(["x-custom"])
                .expose_headers(["*"])
                .max_age(Duration::from_secs(0))
                .build()?,
        ),
    ])
}

/// The same policies as [`policies`], as a policy file for `corsair proxy`: one `[[route]]` per
/// prefix (the top level, which no case reaches, repeats `/exact`).
pub fn policy_file(page_port: u16) -> String {
    let exact = format!(
        "allow_origins = [\"http://localhost:{page_port}\"]\nallow_methods = [\"PUT\", \"DELETE\", \"PATCH\"]\n\
         allow_headers = [\"x-custom\", \"content-type\"]\nexpose_headers = [\"x-request-id\"]\nallow_credentials = true\n"
    );
    format!(
        "{exact}\n[[route]]\npath = \"/exact/\"\n{exact}\n\
         [[route]]\npath = \"/sub/\"\nallow_origins = [\"http://*.corsair.test:{page_port}\"]\nallow_methods = [\"PUT\"]\nallow_headers = [\"x-custom\"]\n\n\
         [[route]]\npath = \"/port/\"\nallow_origins = [\"http://localhost:*\"]\nallow_methods = [\"*\"]\nallow_headers = [\"*\"]\nallow_credentials = true\n\n\
         [[route]]\npath = \"/any/\"\nallow_origins = [\"*\"]\nallow_methods = [\"PUT\"]\nallow_headers = [\"x-custom\"]\nexpose_headers = [\"*\"]\nmax_age = 0\n"
    )
}

/// The application, with no CORS at all: under every prefix, `/ok` answers 200 with a JSON body
/// and the headers `x-request-id: 42` and `x-secret: s`, `/404` answers 404 and `/500` answers
/// 500; any method.
pub fn upstream() -> Router {
    Router::new().route("/{prefix}/{kind}", any(endpoint))
}

/// [`upstream`], recording in `observed` every request that reaches it (the application).
pub fn observed_upstream(observed: &Observed) -> Router {
    record(upstream(), observed, Place::App)
}

/// Where a request was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At the CORS server (the middleware's outside, or the proxy): every request, preflights
    /// included.
    Front,
    /// At the application, behind the CORS layer.
    App,
}

/// The requests a setup received, by place, method and target (path and query): the server's
/// side of every case.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    hits: Arc<Mutex<Vec<(Place, String, String)>>>,
}

impl Observed {
    /// A new, empty record.
    pub fn new() -> Self {
        Observed::default()
    }

    /// Records one request.
    pub fn push(&self, place: Place, method: &str, target: &str) {
        self.hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((place, method.to_owned(), target.to_owned()));
    }

    /// How many requests with `method` for `target` were seen at `place`.
    pub fn count(&self, place: Place, method: &str, target: &str) -> usize {
        self.hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(p, m, t)| *p == place && m == method && t == target)
            .count()
    }

    /// The preflights for `target`: the `OPTIONS` requests the CORS server received but did not
    /// pass on to the application.
    pub fn preflights(&self, target: &str) -> usize {
        self.count(Place::Front, "OPTIONS", target)
            .saturating_sub(self.count(Place::App, "OPTIONS", target))
    }
}

/// `app`, recording every request it receives at `place`.
pub fn record(app: Router, observed: &Observed, place: Place) -> Router {
    let observed = observed.clone();
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let target = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
            observed.push(place, req.method().as_str(), &target);
            next.run(req)
        },
    ))
}

async fn endpoint(
    axum::extract::Path((_prefix, kind)): axum::extract::Path<(String, String)>,
) -> Response {
    let status = match kind.as_str() {
        "ok" => StatusCode::OK,
        "404" => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = (status, axum::Json(serde_json::json!({ "msg": "success" }))).into_response();
    r.headers_mut()
        .insert("x-request-id", HeaderValue::from_static("42"));
    r.headers_mut()
        .insert("x-secret", HeaderValue::from_static("s"));
    r
}

/// The application with each prefix behind its corsair policy (tower middleware), recording in
/// `observed` what reaches the middleware ([`Place::Front`]) and what passes it
/// ([`Place::App`]).
///
/// # Errors
/// Only if corsair refuses one of the policies.
pub fn protected_api(page_port: u16, observed: &Observed) -> Result<Router, ConfigErrors> {
    let mut app = Router::new();
    for (prefix, cors) in policies(page_port)? {
        let route = format!("{prefix}/{{kind}}");
        let inner = record(
            Router::new().route(&route, any(endpoint_under)),
            observed,
            Place::App,
        )
        .layer(CorsLayer::new(cors));
        app = app.merge(inner);
    }
    Ok(record(app, observed, Place::Front))
}

async fn endpoint_under(axum::extract::Path(kind): axum::extract::Path<String>) -> Response {
    endpoint(axum::extract::Path((String::new(), kind))).await
}

/// What a browser must show for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `fetch()` resolves with this status, and the case's header reads as given
    /// (`None`: not readable).
    Allowed(u16, Option<&'static str>),
    /// `fetch()` rejects with a network error.
    Blocked,
}

/// The matrix: frames for the page server on `page_port`, fetching from `api` (e.g.
/// `http://127.0.0.1:9000`), and what is expected of every case, by id.
pub fn cases(page_port: u16, api: &str) -> (Vec<Frame>, HashMap<String, CaseExpect>) {
    use Expect::{Allowed, Blocked};
    let local = format!("http://localhost:{page_port}");
    let app = format!("http://app.corsair.test:{page_port}");
    let deep = format!("http://deep.app.corsair.test:{page_port}");
    let apex = format!("http://corsair.test:{page_port}");
    let evil = format!("http://evil.test:{page_port}");
    const J: (&str, &str) = ("content-type", "application/json");
    const T: (&str, &str) = ("content-type", "text/plain");
    const X: (&str, &str) = ("x-custom", "1");
    const XO: (&str, &str) = ("x-other", "1");
    const AUTH: (&str, &str) = ("authorization", "Bearer t");
    const XA: (&str, &str) = ("x-a", "1");
    const XB: (&str, &str) = ("x-b", "2");
    const OK: Expect = Allowed(200, None);

    // (page origin, path, method, headers, credentials, header to read, expectation)
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        Option<&'a str>,
        Expect,
    );
    let rows: Vec<Row<'_>> = vec![
        // An exact origin with credentials and a method list.
        (
            &local,
            "/exact/ok",
            "GET",
            &[],
            "omit",
            Some("x-request-id"),
            Allowed(200, Some("42")),
        ),
        (&local, "/exact/ok", "GET", &[], "include", None, OK),
        (&local, "/exact/ok", "GET", &[], "same-origin", None, OK),
        (
            &local,
            "/exact/ok",
            "GET",
            &[],
            "omit",
            Some("x-secret"),
            Allowed(200, None),
        ),
        (&local, "/exact/ok", "HEAD", &[], "include", None, OK),
        (&local, "/exact/ok", "POST", &[T], "include", None, OK),
        (&local, "/exact/ok", "POST", &[J], "include", None, OK),
        (&local, "/exact/ok", "PUT", &[], "include", None, OK),
        (&local, "/exact/ok", "put", &[], "include", None, OK),
        (&local, "/exact/ok", "DELETE", &[], "include", None, OK),
        (&local, "/exact/ok", "PATCH", &[J], "include", None, OK),
        (&local, "/exact/ok", "patch", &[], "include", None, Blocked),
        (&local, "/exact/ok", "OPTIONS", &[], "omit", None, Blocked),
        (&local, "/exact/ok", "GET", &[X], "include", None, OK),
        (&local, "/exact/ok", "GET", &[XO], "include", None, Blocked),
        (
            &local,
            "/exact/ok",
            "GET",
            &[AUTH],
            "include",
            None,
            Blocked,
        ),
        (
            &local,
            "/exact/ok",
            "PUT",
            &[X, J],
            "include",
            Some("x-request-id"),
            Allowed(200, Some("42")),
        ),
        (
            &local,
            "/exact/404",
            "GET",
            &[],
            "include",
            None,
            Allowed(404, None),
        ),
        (
            &local,
            "/exact/500",
            "GET",
            &[],
            "include",
            None,
            Allowed(500, None),
        ),
        (
            &local,
            "/exact/404",
            "PUT",
            &[X],
            "include",
            None,
            Allowed(404, None),
        ),
        (
            &local,
            "/exact/500",
            "DELETE",
            &[],
            "omit",
            None,
            Allowed(500, None),
        ),
        // A subdomain pattern does not cover localhost.
        (&local, "/sub/ok", "GET", &[], "omit", None, Blocked),
        (&local, "/sub/ok", "PUT", &[X], "omit", None, Blocked),
        // Any port on localhost, any method and header, with credentials: reflected.
        (&local, "/port/ok", "GET", &[], "include", None, OK),
        (
            &local,
            "/port/ok",
            "PATCH",
            &[XA, AUTH],
            "include",
            None,
            OK,
        ),
        (&local, "/port/ok", "patch", &[], "include", None, OK),
        (&local, "/port/ok", "PROPFIND", &[XB], "omit", None, OK),
        (
            &local,
            "/port/ok",
            "PUT",
            &[XA, XB],
            "omit",
            Some("x-request-id"),
            Allowed(200, None),
        ),
        (
            &local,
            "/port/500",
            "DELETE",
            &[],
            "include",
            None,
            Allowed(500, None),
        ),
        // Any origin, anonymous: `*`.
        (
            &local,
            "/any/ok",
            "GET",
            &[],
            "omit",
            Some("x-request-id"),
            Allowed(200, Some("42")),
        ),
        (&local, "/any/ok", "GET", &[], "include", None, Blocked),
        (&local, "/any/ok", "PUT", &[X], "omit", None, OK),
        (&local, "/any/ok", "PUT", &[], "include", None, Blocked),
        (&local, "/any/ok", "DELETE", &[], "omit", None, Blocked),
        (&local, "/any/ok", "GET", &[X, AUTH], "omit", None, Blocked),
        (
            &local,
            "/any/404",
            "GET",
            &[],
            "omit",
            None,
            Allowed(404, None),
        ),
        // A subdomain of the pattern.
        (&app, "/sub/ok", "GET", &[], "omit", None, OK),
        (&app, "/sub/ok", "PUT", &[X], "omit", None, OK),
        (&app, "/sub/ok", "DELETE", &[], "omit", None, Blocked),
        (&app, "/sub/ok", "PUT", &[XO], "omit", None, Blocked),
        (&app, "/sub/ok", "GET", &[], "include", None, Blocked),
        (
            &app,
            "/sub/404",
            "GET",
            &[],
            "omit",
            None,
            Allowed(404, None),
        ),
        (
            &app,
            "/sub/500",
            "PUT",
            &[X],
            "omit",
            None,
            Allowed(500, None),
        ),
        (&app, "/exact/ok", "GET", &[], "omit", None, Blocked),
        (&app, "/exact/ok", "PUT", &[], "include", None, Blocked),
        (&app, "/port/ok", "GET", &[], "omit", None, Blocked),
        (&app, "/any/ok", "GET", &[], "omit", None, OK),
        (&app, "/any/ok", "PUT", &[X], "omit", None, OK),
        // Two labels deep still matches; the apex does not.
        (&deep, "/sub/ok", "GET", &[], "omit", None, OK),
        (
            &deep,
            "/sub/500",
            "PUT",
            &[X],
            "omit",
            None,
            Allowed(500, None),
        ),
        (&apex, "/sub/ok", "GET", &[], "omit", None, Blocked),
        (&apex, "/sub/ok", "PUT", &[X], "omit", None, Blocked),
        (&apex, "/any/ok", "GET", &[], "omit", None, OK),
        // A disallowed origin gets nothing, errors included.
        (&evil, "/exact/ok", "GET", &[], "omit", None, Blocked),
        (&evil, "/exact/ok", "GET", &[], "include", None, Blocked),
        (&evil, "/exact/ok", "PUT", &[X], "include", None, Blocked),
        (&evil, "/exact/500", "GET", &[], "omit", None, Blocked),
        (&evil, "/exact/404", "GET", &[], "omit", None, Blocked),
        (&evil, "/sub/ok", "GET", &[], "omit", None, Blocked),
        (&evil, "/port/ok", "GET", &[], "include", None, Blocked),
        (&evil, "/port/ok", "PATCH", &[], "include", None, Blocked),
        (&evil, "/any/ok", "GET", &[], "omit", None, OK),
        (&evil, "/any/ok", "PUT", &[], "omit", None, OK),
    ];

    let mut frames: Vec<Frame> = Vec::new();
    let mut expect = HashMap::new();
    for (i, (origin, path, method, headers, credentials, read, want)) in
        rows.into_iter().enumerate()
    {
        let host = origin.split("://").nth(1).unwrap_or(origin);
        let id = format!(
            "{i:02} {host} {method} {path} [{}] {credentials}",
            headers
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(",")
        );
        // A query of its own per case: the server's records and the console's messages name
        // the case, and no preflight is answered from another case's cache entry.
        let target = format!("{path}?case={i:02}");
        let case = Case {
            id: id.clone(),
            url: format!("{api}{target}"),
            method: method.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            credentials: credentials.to_owned(),
            body: matches!(method, "POST" | "PUT" | "PATCH" | "patch").then(|| "{}".to_owned()),
            read_header: read.map(str::to_owned),
            body_type: None,
            seq: 0,
            pause_ms: 0,
            cache: "no-store".to_owned(),
        };
        expect.insert(
            id,
            CaseExpect {
                want,
                preflight: needs_preflight(method, headers),
                method: sent_method(method).to_owned(),
                target,
                url: case.url.clone(),
                origin: origin.to_owned(),
            },
        );
        match frames.iter_mut().find(|f| f.origin == origin) {
            Some(f) => f.cases.push(case),
            None => frames.push(Frame {
                origin: origin.to_owned(),
                cases: vec![case],
            }),
        }
    }
    (frames, expect)
}

/// Everything expected of one case: what the script sees, and what the server sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseExpect {
    /// What the script sees.
    pub want: Expect,
    /// Whether the browser sends a preflight first.
    pub preflight: bool,
    /// The method on the wire.
    pub method: String,
    /// The path and query fetched.
    pub target: String,
    /// The URL fetched.
    pub url: String,
    /// The page's origin.
    pub origin: String,
}

/// The method a browser sends: the six names of the Fetch Standard's "normalize" upper-cased,
/// any other exactly as written.
fn sent_method(method: &str) -> &str {
    ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or(method)
}

/// Whether a browser preflights this request, by the Fetch Standard's rule restated for the
/// headers this matrix uses: a method other than GET, HEAD and POST, or a header other than a
/// `Content-Type` of `text/plain`, `application/x-www-form-urlencoded` or
/// `multipart/form-data`.
fn needs_preflight(method: &str, headers: &[(&str, &str)]) -> bool {
    let simple_method = matches!(sent_method(method), "GET" | "HEAD" | "POST");
    let simple_headers = headers.iter().all(|(name, value)| {
        name.eq_ignore_ascii_case("content-type")
            && matches!(
                value.to_ascii_lowercase().as_str(),
                "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
            )
    });
    !(simple_method && simple_headers)
}

/// Runs the whole matrix in `browser` against `api` (the protected server's base URL) and
/// compares: `Ok` with the summary line when every case went as the policy intends, `Err` with
/// every disagreement (or the browser's failure) otherwise. `observed` is the setup's record of
/// the requests its server received; `setup` names what was tested.
pub async fn run_matrix(
    pages: &crate::PageServer,
    browser: crate::Headless,
    api: &str,
    observed: &Observed,
    setup: &str,
) -> Result<String, String> {
    let (frames, expect) = cases(pages.port(), api);
    if expect.len() < 50 {
        return Err(format!("the matrix has only {} cases", expect.len()));
    }
    let run = pages
        .run(browser, &frames, std::time::Duration::from_secs(90))
        .await?;
    // A proxy's access log may trail its responses by a moment: wait for it to settle.
    let mut wrong = disagreements(browser, &run, &expect, observed);
    for _ in 0..30 {
        if wrong.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        wrong = disagreements(browser, &run, &expect, observed);
    }
    let blocked = expect
        .values()
        .filter(|e| e.want == Expect::Blocked)
        .count();
    let preflighted = expect.values().filter(|e| e.preflight).count();
    let summary = format!(
        "{} ({}) {setup}: {} of {} cases as the policy intends ({blocked} blocked, {preflighted} \
         preflighted; server records{} checked)",
        browser.name(),
        browser.version(),
        expect.len() - wrong.len(),
        expect.len(),
        if console_captured(browser) {
            " and console messages"
        } else {
            ""
        }
    );
    if wrong.is_empty() {
        Ok(summary)
    } else {
        Err(format!(
            "{summary}; {} disagreements:\n{}",
            wrong.len(),
            wrong.join("\n")
        ))
    }
}

/// The exception a script sees when `fetch()` fails with a network error, CORS included.
pub fn network_error(browser: crate::Headless) -> &'static str {
    match browser {
        crate::Headless::Chromium => "TypeError: Failed to fetch",
        crate::Headless::Firefox => "TypeError: NetworkError when attempting to fetch resource.",
        crate::Headless::WebKit => "TypeError: Load failed",
    }
}

/// Whether the browser's CORS console messages reach [`Run::console`]: Chromium logs them to
/// stderr, WebKitGTK too (`--enable-write-console-messages-to-stdout`), and Firefox's are read
/// from its console service through Marionette (see [`crate::marionette`]). All three are.
pub fn console_captured(browser: crate::Headless) -> bool {
    matches!(
        browser,
        crate::Headless::Chromium | crate::Headless::Firefox | crate::Headless::WebKit
    )
}

/// Firefox's CORS console messages, in the order logged: for each fetch it blocked, the URL its
/// message names and the message, a line per message logged for it, joined by `\n`. A fetch's
/// lines are the reason, then, when the request's channel failed after it, the `CORS request did
/// not succeed` line Firefox logs next for the same URL (after a refused preflight redirect,
/// the preflight's `CORS preflight response did not succeed` line comes between the two). This
/// is the text of `corsair::browser::CorsError::console_message(Browser::Firefox)`.
///
/// A failed capture is a message of its own, under the URL `capture failed`, so that every
/// comparison with it fails loudly.
pub fn firefox_messages(console: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    // Per URL, the index in `out` of its last message and that message's category, while a
    // line that follows a reason may still join it.
    let mut open: HashMap<String, (usize, String)> = HashMap::new();
    for line in console.lines() {
        let Some(text) = line
            .find(crate::browser::FIREFOX_CORS_TAG)
            .map(|i| &line[i + crate::browser::FIREFOX_CORS_TAG.len()..])
        else {
            continue;
        };
        let Some((category, message)) = text.strip_prefix('[').and_then(|t| t.split_once("] "))
        else {
            out.push(("capture failed".to_owned(), text.to_owned()));
            continue;
        };
        let url = firefox_url(message).unwrap_or_default().to_owned();
        let joins = |last: &str| match category {
            "CORSDidNotSucceed2" => true,
            "CORSPreflightDidNotSucceed3" => last == "CORSExternalRedirectNotAllowed",
            _ => false,
        };
        match open.remove(&url) {
            Some((i, last)) if joins(&last) => {
                out[i].1.push('\n');
                out[i].1.push_str(message);
                if category != "CORSDidNotSucceed2" {
                    open.insert(url, (i, category.to_owned()));
                }
            }
            _ => {
                if category != "CORSDidNotSucceed2" {
                    open.insert(url.clone(), (out.len(), category.to_owned()));
                }
                out.push((url, message.to_owned()));
            }
        }
    }
    out
}

/// The URL a Firefox CORS message names: `… remote resource at URL. (Reason: …`, the URL in
/// `‘…’` in some messages.
fn firefox_url(message: &str) -> Option<&str> {
    let rest = message.split_once(" remote resource at ")?.1;
    let url = rest.split_once(". (Reason: ")?.0;
    Some(
        url.strip_prefix('\u{2018}')
            .and_then(|u| u.strip_suffix('\u{2019}'))
            .unwrap_or(url),
    )
}

/// WebKit's CORS console messages, in the order printed: for each fetch it blocked, the URL of
/// its `Fetch API cannot load URL due to access control checks.` line and the two lines joined
/// by `\n` (the reason, its `CONSOLE SECURITY ERROR` line before it, then that line), without
/// WebKitGTK's `[source:line:column: ]CONSOLE …` prefixes: the text of
/// `corsair::browser::CorsError::console_message(Browser::Safari)`.
pub fn webkit_messages(console: &str) -> Vec<(String, String)> {
    const SECURITY: &str = "CONSOLE SECURITY ERROR ";
    const JS: &str = "CONSOLE JS ERROR ";
    let (head, tail) = ("Fetch API cannot load ", " due to access control checks.");
    fn after<'l>(line: &'l str, tag: &str) -> Option<&'l str> {
        line.find(tag).map(|i| &line[i + tag.len()..])
    }
    let mut out = Vec::new();
    let mut reason: Option<&str> = None;
    for line in console.lines() {
        if let Some(r) = after(line, SECURITY) {
            reason = Some(r);
        } else if let Some(text) = after(line, JS) {
            let Some(url) = text.strip_prefix(head).and_then(|t| t.strip_suffix(tail)) else {
                continue;
            };
            let message = match reason.take() {
                Some(r) => format!("{r}\n{text}"),
                None => text.to_owned(),
            };
            out.push((url.to_owned(), message));
        }
    }
    out
}

/// The browser's CORS console message about `url` fetched from `origin`, if it printed one:
/// Chromium's reason, or WebKit's two lines.
fn console_message(
    browser: crate::Headless,
    console: &str,
    url: &str,
    origin: &str,
) -> Option<String> {
    if browser == crate::Headless::WebKit {
        return webkit_messages(console)
            .into_iter()
            .find(|(u, _)| u == url)
            .map(|(_, m)| m);
    }
    if browser == crate::Headless::Firefox {
        return firefox_messages(console)
            .into_iter()
            .find(|(u, _)| u == url)
            .map(|(_, m)| m);
    }
    let head = format!(
        "Access to fetch at '{url}' from origin '{origin}' has been blocked by CORS policy: "
    );
    console.lines().find_map(|line| {
        let start = line.find(&head)?;
        let text = &line[start + head.len()..];
        Some(
            text.rfind("\", source:")
                .map_or(text, |end| &text[..end])
                .to_owned(),
        )
    })
}

/// Compares what a browser showed, and what the server received, with the expectations;
/// returns one line per disagreement.
pub fn disagreements(
    browser: crate::Headless,
    run: &Run,
    expect: &HashMap<String, CaseExpect>,
    observed: &Observed,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids: Vec<&String> = expect.keys().collect();
    ids.sort();
    for id in ids {
        let e = &expect[id];
        let Some(seen) = run.seen.get(id) else {
            out.push(format!("{id}: no result"));
            continue;
        };
        let got = if seen.ok {
            format!("allowed {} header={:?}", seen.status, seen.header)
        } else {
            format!("blocked ({:?})", seen.error)
        };
        let matches = match e.want {
            Expect::Blocked => !seen.ok && seen.error.as_deref() == Some(network_error(browser)),
            Expect::Allowed(status, header) => {
                seen.ok && seen.status == status && seen.header.as_deref() == header
            }
        };
        if !matches {
            out.push(format!("{id}: expected {:?}, browser showed {got}", e.want));
        }
        // The server's side: the preflight when the request calls for one, and the actual
        // request unless the preflight failed.
        let preflights = observed.preflights(&e.target);
        let want_preflights = usize::from(e.preflight);
        if preflights != want_preflights {
            out.push(format!(
                "{id}: the server received {preflights} preflights, expected {want_preflights}"
            ));
        }
        let actual = observed.count(Place::App, &e.method, &e.target);
        let want_actual = usize::from(e.want != Expect::Blocked || !e.preflight);
        if actual != want_actual {
            out.push(format!(
                "{id}: the application received {actual} {} requests, expected {want_actual}",
                e.method
            ));
        }
        if console_captured(browser) {
            let message = console_message(browser, &run.console, &e.url, &e.origin);
            // Chromium says which response failed; Firefox follows a failed preflight's reason
            // with a `CORS request did not succeed` line; WebKit's words do not always tell.
            let blames_preflight = |m: &str| match browser {
                crate::Headless::Chromium => Some(m.contains("preflight")),
                crate::Headless::Firefox => {
                    Some(m.contains("(Reason: CORS request did not succeed)"))
                }
                crate::Headless::WebKit => None,
            };
            match (e.want, message) {
                (Expect::Blocked, None) => {
                    out.push(format!("{id}: no CORS message in the console"));
                }
                (Expect::Blocked, Some(m))
                    if blames_preflight(&m).is_some_and(|p| p != e.preflight) =>
                {
                    out.push(format!(
                        "{id}: the console blames the {}: {m}",
                        if e.preflight {
                            "actual response, not the preflight"
                        } else {
                            "preflight, which should not have been sent"
                        }
                    ));
                }
                (Expect::Allowed(..), Some(m)) => {
                    out.push(format!("{id}: allowed, yet the console says: {m}"));
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::firefox_messages;
    use crate::browser::FIREFOX_CORS_TAG;

    /// Lines as the harness writes them: Firefox's category and message after the tag.
    fn log(lines: &[(&str, &str, &str)]) -> String {
        lines
            .iter()
            .map(|(category, url, reason)| {
                format!(
                    "{FIREFOX_CORS_TAG}[{category}] Cross-Origin Request Blocked: The Same Origin \
                     Policy disallows reading the remote resource at {url}. (Reason: {reason}\n"
                )
            })
            .collect()
    }

    #[test]
    fn firefox_lines_of_one_fetch_are_joined_by_url() {
        // Two fetches side by side: a preflight redirect refused for /a (three lines), a
        // missing header for /b (one line), then a method refused for /b (two lines).
        let console = log(&[
            ("CORSExternalRedirectNotAllowed", "http://x/a", "R)."),
            (
                "CORSMissingAllowOrigin2",
                "http://x/b",
                "M). Status code: 200.",
            ),
            (
                "CORSPreflightDidNotSucceed3",
                "http://x/a",
                "P). Status code: 302.",
            ),
            ("CORSMethodNotFound", "‘http://x/b’", "N)."),
            (
                "CORSDidNotSucceed2",
                "http://x/a",
                "D). Status code: (null).",
            ),
            (
                "CORSDidNotSucceed2",
                "http://x/b",
                "D). Status code: (null).",
            ),
        ]);
        let got: Vec<(String, usize)> = firefox_messages(&console)
            .into_iter()
            .map(|(url, m)| (url, m.lines().count()))
            .collect();
        assert_eq!(
            got,
            [
                ("http://x/a".to_owned(), 3),
                ("http://x/b".to_owned(), 1),
                ("http://x/b".to_owned(), 2),
            ]
        );
        // A capture that failed is a message that matches nothing.
        let failed = format!("{FIREFOX_CORS_TAG}capture failed: no listener\n");
        assert_eq!(firefox_messages(&failed)[0].0, "capture failed");
    }
}
