//! The foundation's real-browser matrix: policies mounted under path prefixes of one API server,
//! pages on several origins, and for every fetch the outcome a browser must show, written by hand
//! from the Fetch Standard.
//!
//! The same matrix serves two setups: the tower middleware in process ([`protected_api`]) and,
//! later, `corsair proxy` in front of [`upstream`], which knows nothing of CORS.

use std::collections::HashMap;
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

/// The application with each prefix behind its corsair policy (tower middleware).
///
/// # Errors
/// Only if corsair refuses one of the policies.
pub fn protected_api(page_port: u16) -> Result<Router, ConfigErrors> {
    let mut app = Router::new();
    for (prefix, cors) in policies(page_port)? {
        let route = format!("{prefix}/{{kind}}");
        let inner = Router::new()
            .route(&route, any(endpoint_under))
            .layer(CorsLayer::new(cors));
        app = app.merge(inner);
    }
    Ok(app)
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
/// `http://127.0.0.1:9000`), and the expected outcome of every case by id.
pub fn cases(page_port: u16, api: &str) -> (Vec<Frame>, HashMap<String, Expect>) {
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
        let case = Case {
            id: id.clone(),
            url: format!("{api}{path}"),
            method: method.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            credentials: credentials.to_owned(),
            body: matches!(method, "POST" | "PUT" | "PATCH" | "patch").then(|| "{}".to_owned()),
            read_header: read.map(str::to_owned),
        };
        match frames.iter_mut().find(|f| f.origin == origin) {
            Some(f) => f.cases.push(case),
            None => frames.push(Frame {
                origin: origin.to_owned(),
                cases: vec![case],
            }),
        }
        expect.insert(id, want);
    }
    (frames, expect)
}

/// Runs the whole matrix in `browser` against `api` (the protected server's base URL) and
/// compares: `Ok` with the summary line when every case went as the policy intends, `Err` with
/// every disagreement (or the browser's failure) otherwise. `setup` names what was tested.
pub async fn run_matrix(
    pages: &crate::PageServer,
    browser: crate::Browser,
    api: &str,
    setup: &str,
) -> Result<String, String> {
    let (frames, expect) = cases(pages.port(), api);
    if expect.len() < 50 {
        return Err(format!("the matrix has only {} cases", expect.len()));
    }
    let run = pages
        .run(browser, &frames, std::time::Duration::from_secs(90))
        .await?;
    let wrong = disagreements(&run, &expect);
    let summary = format!(
        "{} ({}) {setup}: {} of {} cases as the policy intends",
        browser.name(),
        browser.version(),
        expect.len() - wrong.len(),
        expect.len()
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

/// Compares what a browser showed with the expectations; returns one line per disagreement.
pub fn disagreements(run: &Run, expect: &HashMap<String, Expect>) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids: Vec<&String> = expect.keys().collect();
    ids.sort();
    for id in ids {
        let want = expect[id];
        let Some(seen) = run.seen.get(id) else {
            out.push(format!("{id}: no result"));
            continue;
        };
        let got = if seen.ok {
            format!("allowed {} header={:?}", seen.status, seen.header)
        } else {
            "blocked".to_owned()
        };
        let matches = match want {
            Expect::Blocked => !seen.ok,
            Expect::Allowed(status, header) => {
                seen.ok && seen.status == status && seen.header.as_deref() == header
            }
        };
        if !matches {
            out.push(format!("{id}: expected {want:?}, browser showed {got}"));
        }
    }
    out
}
