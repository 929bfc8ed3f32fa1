//! `corsair audit` as a user runs it, against one local server with an endpoint per
//! misconfiguration, each written the way real code gets it wrong, and correct endpoints
//! (corsair's own middleware with a strict policy, and a public `*` API). The expected ids are
//! written by hand, per endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, options};
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::Policy;

const TRUSTED: &str = "https://app.target.example";

fn origin(h: &HeaderMap) -> Option<String> {
    h.get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The answer of an endpoint that decided to allow `origin` with cookies.
fn grant(origin: &str, vary: bool) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        "access-control-allow-origin",
        HeaderValue::from_str(origin).unwrap(),
    );
    h.insert(
        "access-control-allow-credentials",
        HeaderValue::from_static("true"),
    );
    if vary {
        h.insert("vary", HeaderValue::from_static("Origin"));
    }
    (h, "{\"secret\":42}").into_response()
}

fn refuse(vary: bool) -> Response {
    let mut h = HeaderMap::new();
    if vary {
        h.insert("vary", HeaderValue::from_static("Origin"));
    }
    (h, "{\"secret\":42}").into_response()
}

/// An endpoint that grants the origins `allowed` says yes to, with cookies and `Vary: Origin`.
fn checked(allowed: fn(&str) -> bool) -> axum::routing::MethodRouter {
    get(move |h: HeaderMap| async move {
        match origin(&h) {
            Some(o) if allowed(&o) => grant(&o, true),
            _ => refuse(true),
        }
    })
}

/// The host as a naive parser reads it: up to the first character that is not a letter, a
/// digit, a dot or a hyphen.
fn naive_host(origin: &str) -> &str {
    let rest = origin.strip_prefix("https://").unwrap_or("");
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    &rest[..end]
}

fn unescaped() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new("^https://app.target.example$").unwrap())
}

/// What the server saw on `/count`: the requests and their user agents.
#[derive(Default)]
struct Seen {
    count: AtomicUsize,
    agents: Mutex<Vec<String>>,
}

async fn server(seen: Arc<Seen>) -> String {
    let strict = Policy::builder()
        .allow_origins([TRUSTED])
        .allow_methods(["GET", "POST", "PUT"])
        .allow_headers(["content-type"])
        .allow_credentials(true)
        .build()
        .unwrap();
    let public = Policy::builder().allow_origins(["*"]).build().unwrap();
    let app = Router::new()
        // Reflects whatever it is sent.
        .route("/reflect", checked(|_| true))
        // "null" in the list, for local files.
        .route("/null", checked(|o| o == TRUSTED || o == "null"))
        // origin.startswith(TRUSTED)
        .route("/prefix", checked(|o| o.starts_with(TRUSTED)))
        // origin.endswith("target.example")
        .route("/suffix", checked(|o| o.ends_with("target.example")))
        // `origin in "https://app.target.example https://admin.target.example"`: a string, not a list
        .route(
            "/substring",
            checked(|o| "https://app.target.example https://admin.target.example".contains(o)),
        )
        // re.match("^https://app.target.example$", origin)
        .route("/regex", checked(|o| unescaped().is_match(o)))
        // A host cut at the first character a hostname "cannot" have.
        .route(
            "/special",
            checked(|o| naive_host(o) == "app.target.example"),
        )
        // The host compared, the scheme forgotten.
        .route(
            "/insecure",
            checked(|o| o.split_once("://").map(|(_, h)| h) == Some("app.target.example")),
        )
        // Every https subdomain, with cookies.
        .route(
            "/subdomains",
            checked(|o| o.starts_with("https://") && o.ends_with(".target.example")),
        )
        // The front-end's previews on GitHub Pages.
        .route(
            "/third-party",
            checked(|o| o == TRUSTED || (o.starts_with("https://") && o.ends_with(".github.io"))),
        )
        // `*` meant for everyone, with cookies.
        .route(
            "/wildcard-credentials",
            get(|| async {
                (
                    [
                        ("access-control-allow-origin", "*"),
                        ("access-control-allow-credentials", "true"),
                    ],
                    "{}",
                )
            }),
        )
        // The right origins, but no Vary: Origin.
        .route(
            "/no-vary",
            get(|h: HeaderMap| async move {
                match origin(&h) {
                    Some(o) if o == TRUSTED => grant(&o, false),
                    _ => refuse(false),
                }
            }),
        )
        // `*` only when there is an Origin, and no Vary.
        .route(
            "/no-vary-star",
            get(|h: HeaderMap| async move {
                if origin(&h).is_some() {
                    ([("access-control-allow-origin", "*")], "{}").into_response()
                } else {
                    "{}".into_response()
                }
            }),
        )
        // A device API: public reads, and private-network access for any page.
        .route(
            "/private-network",
            get(|| async { ([("access-control-allow-origin", "*")], "{}") }).options(
                |h: HeaderMap| async move {
                    let mut out = HeaderMap::new();
                    out.insert("access-control-allow-origin", HeaderValue::from_static("*"));
                    out.insert(
                        "access-control-allow-methods",
                        HeaderValue::from_static("GET"),
                    );
                    if h.contains_key("access-control-request-private-network") {
                        out.insert(
                            "access-control-allow-private-network",
                            HeaderValue::from_static("true"),
                        );
                    }
                    (StatusCode::NO_CONTENT, out)
                },
            ),
        )
        // Every preflight answered yes by echoing it; reads for the trusted origin only.
        .route(
            "/preflight-all",
            checked(|o| o == TRUSTED).merge(options(|h: HeaderMap| async move {
                let mut out = HeaderMap::new();
                for (from, to) in [
                    ("origin", "access-control-allow-origin"),
                    (
                        "access-control-request-method",
                        "access-control-allow-methods",
                    ),
                    (
                        "access-control-request-headers",
                        "access-control-allow-headers",
                    ),
                ] {
                    if let Some(v) = h.get(from) {
                        out.insert(to, v.clone());
                    }
                }
                out.insert(
                    "access-control-allow-credentials",
                    HeaderValue::from_static("true"),
                );
                out.insert("vary", HeaderValue::from_static("Origin"));
                (StatusCode::NO_CONTENT, out)
            })),
        )
        // Redirects to the same server under another host name.
        .route(
            "/redirect",
            get(|h: HeaderMap| async move {
                let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
                let port = host.rsplit(':').next().unwrap_or("");
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [("location", format!("http://localhost:{port}/count"))],
                )
            }),
        )
        .route(
            "/count",
            get(move |h: HeaderMap| {
                let seen = seen.clone();
                async move {
                    seen.count.fetch_add(1, Ordering::SeqCst);
                    let ua = h.get("user-agent").and_then(|v| v.to_str().ok());
                    seen.agents
                        .lock()
                        .unwrap()
                        .push(ua.unwrap_or("").to_owned());
                    "{}"
                }
            }),
        )
        .merge(
            Router::new()
                .route("/strict", get(|| async { "{\"secret\":42}" }))
                .layer(CorsLayer::new(strict)),
        )
        .merge(
            Router::new()
                .route("/public", get(|| async { "{\"public\":true}" }))
                .layer(CorsLayer::new(public)),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn corsair(args: Vec<String>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::corsair(&args).await
}

async fn audit(base: &str, path: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args: Vec<String> = vec![
        "audit".into(),
        format!("{base}{path}"),
        "--origin".into(),
        TRUSTED.into(),
        "--rate".into(),
        "2000".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let o = corsair(args).await;
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, v)
}

fn ids(v: &serde_json::Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// An endpoint, the findings expected there as (id, severity), and the exit status.
type Case = (&'static str, &'static [(&'static str, &'static str)], i32);

#[tokio::test]
async fn each_misconfiguration_is_found_with_its_id_and_nothing_else() {
    let base = server(Arc::default()).await;
    // (endpoint, [(id, severity)], exit status), by hand.
    let cases: &[Case] = &[
        ("/reflect", &[("origin-reflection", "critical")], 1),
        ("/null", &[("null-origin", "high")], 1),
        ("/prefix", &[("prefix-match", "high")], 1),
        ("/suffix", &[("suffix-match", "high")], 1),
        ("/substring", &[("substring-match", "high")], 1),
        ("/regex", &[("unescaped-dot", "high")], 1),
        ("/special", &[("special-char-bypass", "high")], 1),
        // The target is served over http itself: a network attacker reads it anyway.
        ("/insecure", &[("insecure-origin-trusted", "info")], 0),
        ("/subdomains", &[("any-subdomain-trusted", "medium")], 1),
        ("/third-party", &[("third-party-trusted", "high")], 1),
        // Browsers refuse credentialed reads of `*`: low, a broken intent.
        (
            "/wildcard-credentials",
            &[("wildcard-with-credentials", "low")],
            0,
        ),
        ("/no-vary", &[("missing-vary", "medium")], 1),
        ("/no-vary-star", &[("missing-vary", "medium")], 1),
        ("/private-network", &[("private-network", "high")], 1),
        (
            "/preflight-all",
            &[("preflight-allows-everything", "high")],
            1,
        ),
        ("/strict", &[], 0),
        ("/public", &[], 0),
    ];
    for (path, expected, code) in cases {
        let (o, v) = audit(&base, path, &[]).await;
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(i, s)| ((*i).to_owned(), (*s).to_owned()))
            .collect();
        assert_eq!(ids(&v), want, "{path}: {v:#}");
        assert_eq!(o.status.code(), Some(*code), "{path}");
        assert_eq!(v["version"], 1);
        assert_eq!(v["target"], format!("{base}{path}"));
        assert_eq!(
            v["skipped"], 0,
            "{path}: the default budget covers every probe"
        );
    }
}

#[tokio::test]
async fn a_finding_carries_origin_credentials_evidence_impact_and_fix() {
    let base = server(Arc::default()).await;
    let (_, v) = audit(&base, "/reflect", &[]).await;
    let f = &v["findings"][0];
    assert_eq!(f["origin"], "https://corsair-audit.attacker.test");
    assert_eq!(f["credentials"], true);
    let ex = &f["evidence"]["exchanges"][0];
    assert_eq!(ex["request"]["method"], "GET");
    assert!(ex["request"]["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!([
            "Origin",
            "https://corsair-audit.attacker.test"
        ])));
    assert!(ex["response"]["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!([
            "access-control-allow-origin",
            "https://corsair-audit.attacker.test"
        ])));
    assert_eq!(f["evidence"]["culprit"], "access-control-allow-origin");
    assert!(f["impact"]
        .as_str()
        .unwrap()
        .contains("any page on the web"));
    assert_eq!(
        f["fix"]["policy"],
        "allow_origins = [\"https://app.target.example\"]"
    );

    // Without cookies the same reflection is as public as `*`: low, and it says why.
    let (o, v) = audit(&base, "/wildcard-credentials", &[]).await;
    assert_eq!(o.status.code(), Some(0));
    let words = engines(&v["findings"][0]);
    let chromium = words[0].1.as_deref().unwrap();
    assert!(
        chromium.contains("must not be the wildcard '*'"),
        "{words:?}"
    );
}

#[tokio::test]
async fn text_report_marks_the_offending_header() {
    let base = server(Arc::default()).await;
    let o = corsair(vec![
        "audit".into(),
        format!("{base}/null"),
        "--origin".into(),
        TRUSTED.into(),
        "--rate".into(),
        "2000".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[high] null-origin  origin null  with cookies"),
        "{out}"
    );
    assert!(
        out.contains("<   access-control-allow-origin: null   <-- here"),
        "{out}"
    );
    assert!(
        out.contains("allow_origins = [\"https://app.target.example\"]"),
        "{out}"
    );
}

#[tokio::test]
async fn requests_are_bounded_and_name_corsair_and_redirects_off_host_are_not_followed() {
    let seen = Arc::new(Seen::default());
    let base = server(seen.clone()).await;
    let (o, v) = audit(&base, "/count", &["--max-requests", "5"]).await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(seen.count.load(Ordering::SeqCst), 5);
    assert!(v["skipped"].as_u64().unwrap() > 0);
    let agents = seen.agents.lock().unwrap().clone();
    assert!(
        agents
            .iter()
            .all(|a| *a == format!("corsair-audit/{}", env!("CARGO_PKG_VERSION"))),
        "{agents:?}"
    );

    // /redirect sends every request to the same server as `localhost`: another host.
    let (o, _) = audit(&base, "/redirect", &[]).await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        seen.count.load(Ordering::SeqCst),
        5,
        "no redirect was followed"
    );
}

#[tokio::test]
async fn usage_and_network_errors_exit_two_with_one_line() {
    let o = corsair(vec!["audit".into(), "ftp://x.example/".into()]).await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not an http or https URL"), "{err}");

    let o = corsair(vec![
        "audit".into(),
        "http://127.0.0.1:1/api".into(),
        "--origin".into(),
        "not an origin".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--origin \"not an origin\" is not an origin"),
        "{err}"
    );

    let o = corsair(vec!["audit".into(), "http://127.0.0.1:1/api".into()]).await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("connection refused"), "{err}");

    // With --json, the error is also a JSON object on standard output.
    let o = corsair(vec![
        "audit".into(),
        "http://127.0.0.1:1/api".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["target"], "http://127.0.0.1:1/api");
    assert!(
        v["error"].as_str().unwrap().contains("connection refused"),
        "{v}"
    );
}

#[tokio::test]
async fn many_targets_from_a_file_or_stdin_give_one_json_line_each() {
    let base = server(Arc::default()).await;
    let dir = std::env::temp_dir().join(format!("corsair-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("urls.txt");
    let paths = ["/reflect", "/strict", "/null", "/public", "/no-vary"];
    let text: String = std::iter::once("# targets\n\n".to_owned())
        .chain(paths.iter().map(|p| format!("{base}{p}\n")))
        .collect();
    std::fs::write(&list, &text).unwrap();
    let expected: std::collections::BTreeMap<String, Vec<&str>> = [
        ("/reflect", vec!["origin-reflection"]),
        ("/strict", vec![]),
        ("/null", vec!["null-origin"]),
        ("/public", vec![]),
        ("/no-vary", vec!["missing-vary"]),
    ]
    .into_iter()
    .map(|(p, ids)| (format!("{base}{p}"), ids))
    .collect();
    let check = |o: &Output| {
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut got = std::collections::BTreeMap::new();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids: Vec<String> = ids(&v).into_iter().map(|(i, _)| i).collect();
            got.insert(v["target"].as_str().unwrap().to_owned(), ids);
        }
        let want: std::collections::BTreeMap<String, Vec<String>> = expected
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect();
        assert_eq!(got, want);
    };
    let common = [
        "--origin",
        TRUSTED,
        "--rate",
        "2000",
        "--concurrency",
        "3",
        "--json",
    ];
    let mut args: Vec<String> = vec!["audit".into(), "--input".into(), list.display().to_string()];
    args.extend(common.iter().map(|s| (*s).to_owned()));
    check(&corsair(args).await);

    // The same list on standard input.
    let mut args: Vec<String> = vec!["audit".into(), "--input".into(), "-".into()];
    args.extend(common.iter().map(|s| (*s).to_owned()));
    let o = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    check(&o);

    // On a terminal (a pty, from util-linux's `script`), progress goes to standard error; off a
    // terminal (every run above), none does.
    let mut args: Vec<String> = vec!["audit".into(), "--input".into(), list.display().to_string()];
    args.extend(common.iter().map(|s| (*s).to_owned()));
    let line = std::iter::once(
        corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair"))
            .to_string_lossy()
            .into_owned(),
    )
    .chain(args.iter().map(|a| format!("'{a}'")))
    .collect::<Vec<_>>()
    .join(" ");
    let o = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .output()
            .expect("script, from util-linux, runs the audit on a pseudo-terminal")
    })
    .await
    .unwrap();
    let seen = String::from_utf8_lossy(&o.stdout);
    let total = expected.len();
    assert!(
        seen.contains(&format!("audited {total}/{total}")),
        "no progress on a terminal: {seen}"
    );
    assert!(!String::from_utf8_lossy(
        &corsair({
            let mut a: Vec<String> =
                vec!["audit".into(), "--input".into(), list.display().to_string()];
            a.extend(common.iter().map(|s| (*s).to_owned()));
            a
        })
        .await
        .stderr
    )
    .contains("audited"));

    // A target that cannot be reached is reported on its line; the others are audited; exit 2.
    std::fs::write(&list, format!("{base}/strict\nhttp://127.0.0.1:1/api\n")).unwrap();
    let mut args: Vec<String> = vec!["audit".into(), "--input".into(), list.display().to_string()];
    args.extend(common.iter().map(|s| (*s).to_owned()));
    let o = corsair(args).await;
    assert_eq!(o.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let failed = lines
        .iter()
        .find(|v| v["target"] == "http://127.0.0.1:1/api")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{failed}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The request heads a raw server received, in order.
type Heads = Arc<Mutex<Vec<Vec<u8>>>>;

/// A server that writes raw bytes: each request head (logged) is answered with
/// `answer(method, origin)`, one request per connection, heads of at most 64 KiB.
async fn raw_server(
    answer: impl Fn(&str, Option<&str>) -> Vec<u8> + Send + Sync + 'static,
) -> (String, Heads) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Heads::default();
    let (answer, log) = (Arc::new(answer), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (answer, log) = (answer.clone(), log.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let method = text.split(' ').next().unwrap_or_default();
                let origin = text.lines().find_map(|l| l.strip_prefix("Origin: "));
                let mut out = b"HTTP/1.1 200 OK\r\n".to_vec();
                out.extend_from_slice(&answer(method, origin));
                out.extend_from_slice(b"Content-Length: 2\r\nConnection: close\r\n\r\nok");
                log.lock().unwrap().push(head);
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (base, heads)
}

/// The raw header lines that grant `origin` with cookies: `Access-Control-Allow-Origin` is the
/// origin followed by `suffix`, `Vary` is `vary`; nothing without an origin.
fn grant_lines(origin: Option<&str>, suffix: &str, vary: &str) -> String {
    origin.map_or(String::new(), |o| {
        format!("Access-Control-Allow-Origin: {o}{suffix}\r\nAccess-Control-Allow-Credentials: true\r\nVary: {vary}\r\n")
    })
}

/// A server that reflects the request's `Origin` with credentials, from raw bytes: each answer
/// also carries `extra` (a header line hyper's parser refused, e.g. with `\x01`).
async fn raw_reflecting_server(extra: &'static [u8]) -> String {
    raw_server(move |_, origin| {
        let mut out = grant_lines(origin, "", "Origin").into_bytes();
        if origin.is_some() {
            out.extend_from_slice(b"Access-Control-Allow-Methods: GET\r\n");
        }
        out.extend_from_slice(extra);
        out
    })
    .await
    .0
}

/// The finding of class `id`.
fn finding<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {v:#}"))
}

/// What each engine says of a finding's read: (browser, message), `None` when it reads.
fn engines(f: &serde_json::Value) -> Vec<(String, Option<String>)> {
    f["evidence"]["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["readable"], e["message"].is_null(), "{e}");
            (
                e["browser"].as_str().unwrap().to_owned(),
                e["message"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Every class a crafted origin's read shows (the server grants each one), at `info`: no
/// browser reads the answer.
fn all_info() -> Vec<(String, String)> {
    [
        "origin-reflection",
        "null-origin",
        "prefix-match",
        "suffix-match",
        "substring-match",
        "unescaped-dot",
        "special-char-bypass",
        "insecure-origin-trusted",
        "any-subdomain-trusted",
        "third-party-trusted",
    ]
    .map(|id| (id.to_owned(), "info".to_owned()))
    .into()
}

/// The audit reads answers as browsers do (its client is `corsair check`'s): a control byte in
/// a header the verdict does not read changes nothing (hyper refused the whole answer as
/// "invalid HTTP header parsed"); a NUL anywhere, in an `Access-Control-*` header too, fails
/// the response in every browser: a finding at `info` with each engine's words for the
/// network error, not an error of the audit.
#[tokio::test]
async fn answers_are_read_as_browsers_read_them() {
    let base = raw_reflecting_server(b"X-B: a\x01\x0b\x7fb\r\n").await;
    let (o, v) = audit(&base, "/api", &[]).await;
    assert_eq!(
        ids(&v),
        [("origin-reflection".to_owned(), "critical".to_owned())],
        "{v:#}"
    );
    assert_eq!(o.status.code(), Some(1));

    for nul in [
        b"X-B: a\x00b\r\n".as_slice(),
        b"Access-Control-Expose-Headers: a\x00b\r\n",
    ] {
        let base = raw_reflecting_server(nul).await;
        let (o, v) = audit(&base, "/api", &[]).await;
        let line = String::from_utf8_lossy(nul);
        assert_eq!(o.status.code(), Some(0), "{line:?}: {v:#}");
        // Every grant is blocked: each class is reported for the record.
        assert_eq!(ids(&v), all_info(), "{line:?}: {v:#}");
        assert_eq!(
            engines(finding(&v, "null-origin")),
            [
                (
                    "chromium".to_owned(),
                    Some("TypeError: Failed to fetch (net::ERR_INVALID_HTTP_RESPONSE)".to_owned())
                ),
                (
                    "firefox".to_owned(),
                    Some("TypeError: NetworkError when attempting to fetch resource.".to_owned())
                ),
                (
                    "safari".to_owned(),
                    Some("TypeError: Load failed".to_owned())
                ),
            ],
            "{line:?}"
        );
    }
}

/// A control byte browsers accept in a header the verdict reads: the engines compare the bytes
/// as they are (`Access-Control-Allow-Origin` with a vertical tab matches no origin, and
/// `null` with one is no valid value for Chromium, which takes only `null` itself; a `Vary`
/// of `Origin` and a vertical tab names no header a cache varies on), and the audit says so in
/// each engine's words; it stopped with an error before.
#[tokio::test]
async fn control_bytes_in_judged_headers_get_findings_in_each_engines_words() {
    let (base, _) = raw_server(|_, o| grant_lines(o, "\x0b", "Origin").into_bytes()).await;
    let (o, v) = audit(&base, "/api", &[]).await;
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(ids(&v), all_info(), "{v:#}");
    let url = format!("{base}/api");
    assert_eq!(
        engines(finding(&v, "null-origin")),
        [
            (
                "chromium".to_owned(),
                Some(format!("Access to fetch at '{url}' from origin 'null' has been blocked by CORS policy: The 'Access-Control-Allow-Origin' header contains the invalid value 'null\u{b}'. Have the server send the header with a valid value."))
            ),
            (
                "firefox".to_owned(),
                Some(format!("Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {url}. (Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘null\u{b}’)."))
            ),
            (
                "safari".to_owned(),
                Some(format!("Origin null is not allowed by Access-Control-Allow-Origin. Status code: 200\nFetch API cannot load {url} due to access control checks."))
            ),
        ]
    );
    // The text report writes the control byte as Chromium's log does, and each engine's lines.
    let text = corsair(vec![
        "audit".into(),
        url.clone(),
        "--origin".into(),
        TRUSTED.into(),
        "--rate".into(),
        "2000".into(),
    ])
    .await;
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "  <   access-control-allow-origin: null\\u000B   <-- here\n".to_owned(),
        format!("  Safari: Origin null is not allowed by Access-Control-Allow-Origin. Status code: 200\n    Fetch API cannot load {url} due to access control checks.\n"),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    // An https page may not fetch this http URL in Safari: its fetch() throws before sending.
    let reflection = engines(finding(&v, "origin-reflection"));
    assert!(
        reflection[2]
            .1
            .as_deref()
            .unwrap()
            .starts_with("TypeError: mixed content: the https page https://corsair-audit.attacker.test may not fetch the http URL"),
        "{reflection:?}"
    );

    let (base, _) = raw_server(|_, o| grant_lines(o, "", "Origin\x0b").into_bytes()).await;
    let (o, v) = audit(&base, "/api", &[]).await;
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(
        ids(&v),
        [
            ("origin-reflection".to_owned(), "critical".to_owned()),
            ("missing-vary".to_owned(), "medium".to_owned()),
        ],
        "{v:#}"
    );
    // The evidence shows the byte, one character per byte as browsers show values.
    let headers = &finding(&v, "missing-vary")["evidence"]["exchanges"][0]["response"]["headers"];
    assert!(
        headers
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["vary", "Origin\u{b}"])),
        "{headers}"
    );
}

/// `--header` values are taken as fetch() takes them, as `corsair check` takes them: only tabs,
/// spaces, CR and LF around a value are removed. A vertical tab stays (`str::trim` removed it),
/// which makes `Accept` unsafe: every probe is preflighted, and the value is sent as typed.
#[tokio::test]
async fn header_values_are_normalized_as_fetch_does() {
    let (base, heads) = raw_server(|method, origin| {
        let mut out = grant_lines(origin, "", "Origin");
        if method == "OPTIONS" {
            out.push_str(
                "Access-Control-Allow-Methods: GET\r\nAccess-Control-Allow-Headers: accept\r\n",
            );
        }
        out.into_bytes()
    })
    .await;
    let (o, v) = audit(&base, "/api", &["-H", "Accept: \x0bapplication/json \t"]).await;
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    let heads = heads.lock().unwrap().clone();
    let has = |head: &[u8], line: &[u8]| head.windows(line.len()).any(|w| w == line);
    let preflights: Vec<&Vec<u8>> = heads
        .iter()
        .filter(|h| h.starts_with(b"OPTIONS "))
        .collect();
    assert!(
        preflights
            .iter()
            .any(|h| has(h, b"\r\nAccess-Control-Request-Headers: accept\r\n")),
        "no preflight for the unsafe Accept"
    );
    let gets: Vec<&Vec<u8>> = heads.iter().filter(|h| h.starts_with(b"GET ")).collect();
    assert!(!gets.is_empty());
    for get in gets {
        assert!(
            has(get, b"\r\nAccept: \x0bapplication/json\r\n"),
            "{}",
            String::from_utf8_lossy(get)
        );
    }
}
