//! Issue 15: the `corsair` command as a newcomer meets it. One test per requirement, driving the
//! built binary against servers started here on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::routing::any;
use axum::Router;
use common::{closed_port, corsair, raw, serve, stderr, stdout, Proxy};
use corsair::tower::CorsLayer;
use corsair::Policy;

const PAGE: &str = "http://localhost:8000";

/// An upstream without CORS of its own: `/api` answers with `x-request-id`, a cookie, and its
/// own `Access-Control-Expose-Headers`, as services behind a proxy often do.
async fn plain_upstream() -> String {
    serve(Router::new().route(
        "/api",
        any(|| async {
            (
                [
                    ("x-request-id", "7"),
                    ("x-trace", "t"),
                    ("set-cookie", "s=1"),
                    ("content-language", "en"),
                    ("access-control-expose-headers", "x-request-id"),
                ],
                "{\"msg\":\"success\"}",
            )
        }),
    ))
    .await
}

/// `--listen` with a port of its own.
fn listen() -> String {
    format!("127.0.0.1:{}", closed_port())
}

// ---- Silent surprises ----

#[tokio::test]
async fn conflicting_proxy_flags_are_refused_saying_which_to_keep() {
    let up = "http://127.0.0.1:9";
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--config", "cors.toml", "--dev"],
            &[
                "--dev works with --allow-origin, not with --config",
                "keep --config cors.toml",
                "allow_credentials = true",
            ],
        ),
        (
            &["--config", "cors.toml", "--allow-origin", PAGE],
            &["not both", "keep --config cors.toml", "keep --allow-origin"],
        ),
        (
            &[
                "--config",
                "cors.toml",
                "--allow-method",
                "PUT",
                "--allow-credentials",
            ],
            &[
                "--allow-method, --allow-credentials work with --allow-origin",
                "set allow_methods, allow_credentials in cors.toml",
            ],
        ),
        (
            &["--dev"],
            &["--dev needs the page's origin: add --allow-origin"],
        ),
    ];
    for (args, wants) in cases {
        let mut all = vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", up];
        all.extend_from_slice(args);
        let o = corsair(&all).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with("error: "), "{err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
        }
        assert!(stdout(&o).is_empty(), "{args:?} started: {}", stdout(&o));
    }
}

#[tokio::test]
async fn dev_exposes_every_upstream_header_but_set_cookie_and_says_so() {
    let up = plain_upstream().await;
    let l = listen();
    let proxy = Proxy::start(&[
        "--listen",
        &l,
        "--upstream",
        &up,
        "--allow-origin",
        PAGE,
        "--dev",
    ]);
    let banner = proxy.wait_stderr("WARNING: --dev");
    assert!(banner.contains("every response header"), "{banner}");
    let r = raw(
        &proxy.addr,
        "GET",
        "/api",
        &[("Origin", PAGE), ("Cookie", "a=b")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.get("access-control-allow-origin"), Some(PAGE));
    assert_eq!(r.get("access-control-allow-credentials"), Some("true"));
    let exposed: Vec<&str> = r
        .get("access-control-expose-headers")
        .unwrap()
        .split(", ")
        .collect();
    assert!(exposed.contains(&"x-request-id"), "{exposed:?}");
    assert!(exposed.contains(&"x-trace"), "{exposed:?}");
    for never in [
        "set-cookie",
        "content-language",
        "access-control-expose-headers",
    ] {
        assert!(!exposed.contains(&never), "{never} in {exposed:?}");
    }
    // An origin not allowed is told nothing.
    let r = raw(
        &proxy.addr,
        "GET",
        "/api",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(r.get("access-control-expose-headers"), None);

    // As the browser sees it: corsair check says the script can read x-request-id.
    let o = corsair(&[
        "check",
        &proxy.url("/api"),
        "--origin",
        PAGE,
        "--credentials",
        "include",
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("x-request-id"), "{}", stdout(&o));
}

/// Each request's method and Cookie header, as the server received them.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Records the Cookie header of every request, by method.
async fn recording_api(seen: Seen) -> String {
    let cors = Policy::builder()
        .allow_origins([PAGE])
        .allow_methods(["PUT"])
        .allow_credentials(true)
        .build()
        .unwrap();
    // Recorded outside the CORS layer, which answers preflights itself.
    let record = move |req: Request, next: axum::middleware::Next| {
        let seen = seen.clone();
        async move {
            let cookie = req
                .headers()
                .get("cookie")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.lock()
                .unwrap()
                .push((req.method().to_string(), cookie));
            next.run(req).await
        }
    };
    serve(
        Router::new()
            .route("/api", any(|| async { "ok" }))
            .layer(CorsLayer::new(cors))
            .layer(axum::middleware::from_fn(record)),
    )
    .await
}

#[tokio::test]
async fn headers_a_script_cannot_set_are_reported_as_dropped() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = recording_api(seen.clone()).await;
    let url = format!("{base}/api");
    let o = corsair(&[
        "check",
        &url,
        "--origin",
        PAGE,
        "-H",
        "Cookie: a=b",
        "-H",
        "Origin: http://other.example",
        "-H",
        "Sec-Fetch-Mode: no-cors",
    ])
    .await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Not sent (as a browser would not send them):"),
        "{out}"
    );
    assert!(out.contains("  cookie: scripts cannot set Cookie"), "{out}");
    assert!(
        out.contains("use --cookie 'name=value' --credentials include"),
        "{out}"
    );
    assert!(out.contains("  origin: scripts cannot set Origin"), "{out}");
    assert!(
        out.contains("  sec-fetch-mode: Sec-Fetch-Mode is a forbidden request header"),
        "{out}"
    );
    // And indeed not sent.
    assert_eq!(seen.lock().unwrap().clone(), [("GET".to_owned(), None)]);

    let o = corsair(&[
        "check",
        &url,
        "--origin",
        PAGE,
        "-H",
        "Cookie: a=b",
        "--json",
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["dropped"][0]["name"], "cookie");
    assert!(v["dropped"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("scripts cannot set Cookie"));
}

#[tokio::test]
async fn cookie_goes_on_the_actual_request_only_and_only_with_include() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = recording_api(seen.clone()).await;
    let url = format!("{base}/api");
    let o = corsair(&[
        "check",
        &url,
        "--origin",
        PAGE,
        "-X",
        "PUT",
        "--cookie",
        "session=42",
        "--credentials",
        "include",
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(">   Cookie: session=42"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [
            ("OPTIONS".to_owned(), None),
            ("PUT".to_owned(), Some("session=42".to_owned()))
        ]
    );

    // Without include, the browser sends no cookie cross-origin, and says so.
    let o = corsair(&["check", &url, "--origin", PAGE, "--cookie", "session=42"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("  cookie: --cookie is sent only with --credentials include"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [("GET".to_owned(), None)]
    );
}

// ---- Advice that fits the server in front of the user ----

#[tokio::test]
async fn a_fix_for_corsair_proxy_names_its_flags_and_they_work() {
    let up = plain_upstream().await;
    let l = listen();
    let proxy = Proxy::start(&["--listen", &l, "--upstream", &up, "--allow-origin", PAGE]);
    let url = proxy.url("/api");
    let check = [
        "check",
        url.as_str(),
        "--origin",
        PAGE,
        "-X",
        "PUT",
        "-H",
        "X-Token: 1",
        "--credentials",
        "include",
    ];
    let o = corsair(&check).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("<   via: 1.1 corsair"), "{out}");
    assert!(out.contains("this answer came from corsair proxy"), "{out}");
    let flags = format!(
        "--allow-origin {PAGE} --allow-method PUT --allow-header x-token --allow-credentials"
    );
    assert!(
        out.contains(&format!("  corsair proxy ... {flags}")),
        "{out}"
    );
    assert!(out.contains("allow_methods = [\"PUT\"]"), "{out}");
    assert!(out.contains("allow_headers = [\"x-token\"]"), "{out}");
    assert!(!out.contains("Access-Control-Allow-Methods: PUT"), "{out}");
    drop(proxy);

    // Doing what it says makes the request pass.
    let l = listen();
    let mut args = vec!["--listen", l.as_str(), "--upstream", up.as_str()];
    args.extend(flags.split(' '));
    args.extend(["--expose-header", "x-request-id"]);
    let proxy = Proxy::start(&args);
    let url = proxy.url("/api");
    let mut check = check;
    check[1] = &url;
    let o = corsair(&check).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("content-type, x-request-id."),
        "{}",
        stdout(&o)
    );
}

#[tokio::test]
async fn without_a_recognizable_server_the_fix_stays_raw_headers() {
    let cors = Policy::builder().allow_origins([PAGE]).build().unwrap();
    let base = serve(
        Router::new()
            .route("/api", any(|| async { "ok" }))
            .layer(CorsLayer::new(cors)),
    )
    .await;
    let o = corsair(&[
        "check",
        &format!("{base}/api"),
        "--origin",
        PAGE,
        "-X",
        "PUT",
    ])
    .await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("    Access-Control-Allow-Methods: PUT"),
        "{out}"
    );
    assert!(!out.contains("--allow-method"), "{out}");
    assert!(!out.contains("via"), "{out}");
}

#[tokio::test]
async fn fixes_speak_the_syntax_of_where_they_are_read() {
    let dir = std::env::temp_dir().join(format!("corsair-newcomer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let o = corsair(&["lint", empty.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("[no-origins]"), "{out}");
    assert!(
        out.contains("in allow_origins, such as \"https://app.example.com\""),
        "{out}"
    );
    assert!(!out.contains("(["), "builder syntax in lint: {out}");

    // On the command line: the flag, and what to do about an option that has no flag.
    let o = corsair(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:9",
        "--allow-origin",
        "null",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("allow_origins [null-origin]: \"null\":"),
        "{err}"
    );
    assert!(
        err.contains("\nallow_origins is --allow-origin on the command line\n"),
        "{err}"
    );
    assert!(
        err.contains("\ndangerously_ options have no flag: write a policy file with that key set to true and pass it with --config FILE"),
        "{err}"
    );
}

#[tokio::test]
async fn origin_null_is_explained_as_what_it_usually_is() {
    let cors = Policy::builder().allow_origins([PAGE]).build().unwrap();
    let base = serve(
        Router::new()
            .route("/api", any(|| async { "ok" }))
            .layer(CorsLayer::new(cors)),
    )
    .await;
    let o = corsair(&["check", &format!("{base}/api"), "--origin", "null"]).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("the origin `null` is what a sandboxed iframe, a page opened from a file: URL, or a request after a cross-origin redirect sends"),
        "{out}"
    );
    // Not a redirect here, so the redirect-only advice is not given.
    assert!(
        !out.contains("a cross-origin redirect chain hid it"),
        "{out}"
    );
    let o = corsair(&[
        "check",
        &format!("{base}/api"),
        "--origin",
        "file:///home/me/index.html",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use --origin null"), "{}", stderr(&o));
}

#[tokio::test]
async fn origins_that_differ_by_localhost_or_port_are_said_to_differ() {
    // A server that always answers with one fixed origin, as `cors({ origin: '…' })` does.
    let base = serve(Router::new().route(
        "/api",
        any(|| async {
            (
                [("access-control-allow-origin", "http://localhost:8000")],
                "ok",
            )
        }),
    ))
    .await;
    let url = format!("{base}/api");
    for (origin, why) in [
        ("http://127.0.0.1:8000", "differ only by the host name of the loopback address (localhost is not 127.0.0.1)"),
        ("http://localhost:3000", "differ only by the port"),
        ("http://[::1]:3000", "differ by the host name of the loopback address (localhost is not 127.0.0.1) and by the port"),
    ] {
        let o = corsair(&["check", &url, "--origin", origin]).await;
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            out.contains(&format!("the page's origin {origin} and the allowed origin http://localhost:8000 {why}")),
            "{origin}: {out}"
        );
        assert!(out.contains("they are different origins"), "{out}");
    }
    let o = corsair(&["check", &url, "--origin", "https://app.example.com"]).await;
    assert!(!stdout(&o).contains("different origins"), "{}", stdout(&o));

    // A value that is no origin is not a look-alike: "open the page at http://localhost:*" is
    // no advice.
    let base = serve(Router::new().route(
        "/api",
        any(|| async {
            (
                [("access-control-allow-origin", "http://localhost:*")],
                "ok",
            )
        }),
    ))
    .await;
    let o = corsair(&[
        "check",
        &format!("{base}/api"),
        "--origin",
        "http://localhost:3000",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(!stdout(&o).contains("different origins"), "{}", stdout(&o));
}

// ---- Errors that say what to type ----

#[tokio::test]
async fn a_url_or_origin_without_scheme_gets_what_to_type() {
    let o = corsair(&["check", "localhost:9000/api", "--origin", PAGE]).await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: \"localhost:9000/api\" is not a URL: it has no scheme; did you mean http://localhost:9000/api?\n"
    );
    let o = corsair(&[
        "check",
        "http://127.0.0.1:9/api",
        "--origin",
        "localhost:8000",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(
        err,
        "error: --origin \"localhost:8000\" is not an origin: did you mean --origin http://localhost:8000?\n"
    );
    assert!(!err.contains("tuple"));
}

#[tokio::test]
async fn https_against_a_plain_http_port_says_try_http() {
    let cors = Policy::builder().allow_origins([PAGE]).build().unwrap();
    let base = serve(
        Router::new()
            .route("/api", any(|| async { "ok" }))
            .layer(CorsLayer::new(cors)),
    )
    .await;
    let https = base.replacen("http://", "https://", 1) + "/api";
    let o = corsair(&["check", &https, "--origin", PAGE]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("the server answered plain HTTP; try {base}/api")),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn listen_takes_a_port_alone_or_localhost() {
    let up = plain_upstream().await;
    for form in ["{port}", "localhost:{port}"] {
        let port = closed_port();
        let listen = form.replace("{port}", &port.to_string());
        let proxy = Proxy::start(&[
            "--listen",
            &listen,
            "--upstream",
            &up,
            "--allow-origin",
            PAGE,
        ]);
        assert_eq!(proxy.addr, format!("127.0.0.1:{port}"), "{listen}");
        let r = raw(&proxy.addr, "GET", "/api", &[("Origin", PAGE)]).await;
        assert_eq!(r.status, 200);
    }
    let o = corsair(&[
        "proxy",
        "--listen",
        "my-laptop:80",
        "--upstream",
        &up,
        "--allow-origin",
        PAGE,
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "write a port (8080, meaning 127.0.0.1:8080), localhost:8080, 127.0.0.1:8080"
        ),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn lint_and_proxy_print_problems_alike_and_lint_exits_2_on_a_missing_file() {
    let o = corsair(&["lint", "/nonexistent/cors.toml"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: /nonexistent/cors.toml: cannot be read"),
        "{}",
        stderr(&o)
    );

    let dir = std::env::temp_dir().join(format!("corsair-newcomer-lp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cors.toml");
    std::fs::write(
        &file,
        "allow_origins = [\"https://app.example.com/\"]\nalow_methods = [\"PUT\"]\n",
    )
    .unwrap();
    let name = file.to_str().unwrap();
    let o = corsair(&["lint", name]).await;
    assert_eq!(o.status.code(), Some(1));
    let lint: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.contains(": ["))
        .map(str::to_owned)
        .collect();
    assert_eq!(lint.len(), 2, "{}", stdout(&o));
    assert!(
        lint[0].starts_with(&format!("{name}:1: [origin-trailing-slash] ")),
        "{lint:?}"
    );
    assert!(
        lint[1].starts_with(&format!("{name}:2: [unknown-key] ")),
        "{lint:?}"
    );
    let o = corsair(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "http://127.0.0.1:9",
        "--config",
        name,
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    for line in &lint {
        assert!(
            stderr(&o).contains(line.as_str()),
            "{line} not in {}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn lint_warns_about_methods_in_a_case_browsers_never_send() {
    let dir = std::env::temp_dir().join(format!("corsair-newcomer-m-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cors.toml");
    std::fs::write(&file, "allow_origins = [\"https://app.example.com\"]\nallow_methods = [\"get\", \"patch\", \"PUT\"]\n").unwrap();
    let name = file.to_str().unwrap();
    let o = corsair(&["lint", name]).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains(&format!("{name}:2: note: allow_methods [method-case]: \"get\": browsers upper-case this method and send GET")), "{out}");
    assert!(out.contains(&format!("{name}:2: note: allow_methods [method-case]: \"patch\": browsers send this method exactly as the script writes it")), "{out}");
    assert!(out.contains("write \"PATCH\""), "{out}");
    assert!(!out.contains("\"PUT\": "), "{out}");
}

#[tokio::test]
async fn the_proxy_notes_a_method_flag_in_a_case_browsers_never_send() {
    let up = plain_upstream().await;
    let l = listen();
    let proxy = Proxy::start(&[
        "--listen",
        &l,
        "--upstream",
        &up,
        "--allow-origin",
        PAGE,
        "--allow-method",
        "patch",
    ]);
    let note = proxy.wait_stderr("[method-case]");
    assert!(
        note.starts_with("note: --allow-method [method-case]: \"patch\": browsers send this method exactly as the script writes it"),
        "{note}"
    );
}

#[tokio::test]
async fn lint_notes_every_dangerous_option_that_is_on() {
    let dir = std::env::temp_dir().join(format!("corsair-newcomer-d-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cors.toml");
    std::fs::write(
        &file,
        "allow_origins = [\"null\"]\ndangerously_allow_null_origin = true\ndangerously_allow_credentials_with_any_origin = true\n",
    )
    .unwrap();
    let name = file.to_str().unwrap();
    let o = corsair(&["lint", name]).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{name}:1: note: allow_origins [dangerously-allowed]: \"null\": [null-origin] allowed by dangerously_allow_null_origin")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{name}:3: note: dangerously_allow_credentials_with_any_origin [dangerously-unused]: is on but waives nothing")),
        "{out}"
    );
    assert!(out.contains("2 notes"), "{out}");
}

#[tokio::test]
async fn the_proxy_warns_about_its_upstream_and_check_recognizes_its_502() {
    // Refused.
    let port = closed_port();
    let up = format!("http://127.0.0.1:{port}");
    let l = listen();
    let proxy = Proxy::start(&["--listen", &l, "--upstream", &up, "--allow-origin", PAGE]);
    let w = proxy.wait_stderr("WARNING: the upstream");
    assert!(
        w.contains(&format!("the upstream {up}/ refuses connections")),
        "{w}"
    );
    assert!(w.contains("starting anyway"), "{w}");
    // A failure is logged without --log.
    let o = corsair(&["check", &proxy.url("/api"), "--origin", PAGE]).await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("this 502 is corsair proxy's own answer, not the service's"),
        "{out}"
    );
    assert!(
        out.contains("corsair proxy: upstream failed: connection refused"),
        "{out}"
    );
    let logged = proxy.wait_stderr("corsair proxy: upstream failed");
    assert!(
        logged.contains(&format!("127.0.0.1:{port}/api")),
        "{logged}"
    );
    drop(proxy);

    // Not resolved.
    let l = listen();
    let proxy = Proxy::start(&[
        "--listen",
        &l,
        "--upstream",
        "http://name.invalid:9000",
        "--allow-origin",
        PAGE,
    ]);
    let w = proxy.wait_stderr("WARNING: the upstream");
    assert!(w.contains("does not resolve"), "{w}");

    // A healthy upstream: no warning, and a 502 of the service itself gets no proxy hint.
    let up = serve(Router::new().route(
        "/api",
        any(|| async { (axum::http::StatusCode::BAD_GATEWAY, "the service is down") }),
    ))
    .await;
    let l = listen();
    let proxy = Proxy::start(&["--listen", &l, "--upstream", &up, "--allow-origin", PAGE]);
    let o = corsair(&["check", &proxy.url("/api"), "--origin", PAGE]).await;
    assert!(!stdout(&o).contains("own answer"), "{}", stdout(&o));
    assert!(
        !proxy.stderr().iter().any(|l| l.contains("WARNING")),
        "{:?}",
        proxy.stderr()
    );
}

#[tokio::test]
async fn the_proxy_adds_via_to_what_it_forwards_and_what_it_answers() {
    let up = plain_upstream().await;
    let l = listen();
    let proxy = Proxy::start(&["--listen", &l, "--upstream", &up, "--allow-origin", PAGE]);
    let r = raw(&proxy.addr, "GET", "/api", &[]).await;
    assert_eq!(r.get("via"), Some("1.1 corsair"));
    let r = raw(
        &proxy.addr,
        "OPTIONS",
        "/api",
        &[("Origin", PAGE), ("Access-Control-Request-Method", "POST")],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.get("via"), Some("1.1 corsair"));
}
