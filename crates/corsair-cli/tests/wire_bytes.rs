//! Byte-level fidelity: web-platform-tests' CORS scenarios and the bytes around them, in real
//! Chromium, Firefox ESR and WebKitGTK and through `corsair check`.
//!
//! A raw server on 127.0.0.1 answers each case with the exact bytes scripted (a vertical tab, a
//! form feed, `\x01`, DEL, obs-text, a NUL, a 407…), which no `http`-crate server can send, and
//! logs the request lines it receives. Each case runs in the browser (a page on another origin
//! calls `fetch()`), then through `check::run` with that browser's rules, against the same
//! answers. Asserted, per case:
//! - the browser's verdict is the one recorded here: the web-platform-tests expectation (or the
//!   Fetch Standard's) unless the case lists the browser as disagreeing with it; every such
//!   disagreement of each browser is printed;
//! - `corsair check` gives the browser's verdict, status and readable headers; for Chromium, its
//!   message is the console's, character for character; where Chromium fails the response
//!   before CORS (no console message; the code seen in a Chromium net-log run, recorded in the
//!   case), it is `TypeError: Failed to fetch (net::CODE)`;
//! - for WebKit, the same verdicts under `--browser safari`; where it printed its two console
//!   lines, check's Safari message is those lines; where it printed none, check reports a
//!   network error; for Firefox and WebKit, a network error's words are the exception the
//!   script got (`NetworkError when attempting to fetch resource.`, `Load failed`). WebKitGTK
//!   reaches the raw server through the harness's loopback proxy, which passes the response
//!   bytes through untouched and the request's header lines as written. One case does not run
//!   in it (`not_in_webkit` says why);
//! - for the request-side cases, the header line the browser put on the wire is the one
//!   `corsair check` put on the wire, byte for byte, and both sent a preflight or neither did.
//!
//! Ported from web-platform-tests (read, not copied): `cors/origin.htm` (values of
//! `Access-Control-Allow-Origin`), `cors/credentials-flag.htm` (`-Allow-Credentials`),
//! `fetch/api/cors/cors-preflight-status.any.js` (preflight statuses),
//! `fetch/api/cors/cors-preflight-response-validation.any.js` (unparsable `-Allow-Methods` and
//! `-Allow-Headers`), `cors/access-control-expose-headers-parsing.window.js` (byte-level
//! `-Expose-Headers` values) and `fetch/api/headers/header-values-normalize.any.js` (request
//! header values a script can set).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corsair::browser::{Browser as Rules, Credentials};
use corsair_cli::check::{self, CheckArgs};
use corsair_testkit::{Case, Frame, Headless, PageServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A scripted answer: status and header lines, bytes as sent.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a browser does with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The script reads the response: its status and the header it reads (`x-a`), if any.
    Allowed { status: u16, reads_x_a: bool },
    /// Blocked (by CORS, or by a network error the browser reports with no CORS message).
    Blocked,
}

struct ByteCase {
    id: String,
    method: &'static str,
    headers: Vec<(String, String)>,
    credentials: Credentials,
    preflight: Answer,
    actual: Answer,
    /// The verdict web-platform-tests (or the Fetch Standard) expects.
    wpt: Outcome,
    /// Browsers whose verdict differs from `wpt` (then their own verdict, as seen).
    chromium: Option<Outcome>,
    firefox: Option<Outcome>,
    webkit: Option<Outcome>,
    /// Why the case cannot run in WebKitGTK, if it cannot.
    not_in_webkit: Option<&'static str>,
    /// Chromium's network error, when it fails the response before CORS.
    chromium_net_error: Option<&'static str>,
    /// The request header line to compare on the wire (`x-a: …`), for request-side cases.
    wire: bool,
}

fn case(id: &str, actual: Answer, wpt: Outcome) -> ByteCase {
    ByteCase {
        id: id.to_owned(),
        method: "GET",
        headers: Vec::new(),
        credentials: Credentials::Omit,
        preflight: Answer {
            status: 204,
            headers: Vec::new(),
        },
        actual,
        wpt,
        chromium: None,
        firefox: None,
        webkit: None,
        not_in_webkit: None,
        chromium_net_error: None,
        wire: false,
    }
}

const OK: Outcome = Outcome::Allowed {
    status: 200,
    reads_x_a: false,
};
const OK_X_A: Outcome = Outcome::Allowed {
    status: 200,
    reads_x_a: true,
};
const BLOCKED: Outcome = Outcome::Blocked;

fn hv(pairs: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
        .collect()
}

fn answer(status: u16, pairs: &[(&str, &[u8])]) -> Answer {
    Answer {
        status,
        headers: hv(pairs),
    }
}

/// An actual response with `Access-Control-Allow-Origin: value` (and `X-A: 1`).
fn allow_origin(value: &[u8]) -> Answer {
    answer(
        200,
        &[("Access-Control-Allow-Origin", value), ("X-A", b"1")],
    )
}

fn cases(origin: &str, host: &str) -> Vec<ByteCase> {
    let o = origin.as_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();
    let mut out = Vec::new();

    // cors/origin.htm: values of Access-Control-Allow-Origin that pass and that fail.
    let pass: Vec<Vec<u8>> = vec![
        b"*".to_vec(),
        b" *  ".to_vec(),
        b"\t*".to_vec(),
        o.to_vec(),
        cat(&[b" ", o]),
        cat(&[b" ", o, b"   \t "]),
        cat(&[b"\t", o]),
    ];
    for (i, v) in pass.iter().enumerate() {
        out.push(case(&format!("origin-pass-{i}"), allow_origin(v), OK));
    }
    let upper_origin = origin.to_ascii_uppercase();
    let fail: Vec<Vec<u8>> = vec![
        format!("http://sub.{host}").into_bytes(),
        format!("//{host}").into_bytes(),
        format!("://{host}").into_bytes(),
        format!("ftp://{host}").into_bytes(),
        format!("http:://{host}").into_bytes(),
        format!("http:/{host}").into_bytes(),
        format!("http:{host}").into_bytes(),
        host.as_bytes().to_vec(),
        cat(&[o, b"?"]),
        cat(&[o, b"/"]),
        cat(&[o, b" /"]),
        cat(&[o, b"#"]),
        cat(&[o, b"%23"]),
        cat(&[o, b":80"]),
        cat(&[o, b", *"]),
        upper_origin.into_bytes(),
        origin.replacen("http", "HTTP", 1).into_bytes(),
        b"-".to_vec(),
        b"**".to_vec(),
        b"'*'".to_vec(),
        b"\"*\"".to_vec(),
        b"* *".to_vec(),
        b"* null".to_vec(),
        cat(&[b"*", o]),
        cat(&[b"* ", o]),
        cat(&[b"*, ", o]),
        cat(&[b"null ", o]),
        b"http://example.net".to_vec(),
        b"null".to_vec(),
        b"null *".to_vec(),
        b"".to_vec(),
        cat(&[o, b"/page"]),
    ];
    for (i, v) in fail.iter().enumerate() {
        out.push(case(&format!("origin-fail-{i}"), allow_origin(v), BLOCKED));
    }
    // The same file's NUL cases: blocked, and in Chromium a network error before CORS.
    for (i, v) in [
        cat(&[o, b"\0"]),
        b"\0*".to_vec(),
        b"*\0".to_vec(),
        cat(&[b"\0", o]),
    ]
    .iter()
    .enumerate()
    {
        let mut c = case(&format!("origin-nul-{i}"), allow_origin(v), BLOCKED);
        c.chromium_net_error = Some("net::ERR_INVALID_HTTP_RESPONSE");
        out.push(c);
    }
    // Two header lines (cors/origin.htm's "multiple headers").
    for (i, (a, b)) in [
        (b"".to_vec(), b"*".to_vec()),
        (b"*".to_vec(), b"".to_vec()),
        (b"*".to_vec(), b"*".to_vec()),
        (b"".to_vec(), o.to_vec()),
        (b"*".to_vec(), o.to_vec()),
        (o.to_vec(), o.to_vec()),
    ]
    .iter()
    .enumerate()
    {
        out.push(case(
            &format!("origin-double-{i}"),
            answer(
                200,
                &[
                    ("Access-Control-Allow-Origin", a),
                    ("Access-Control-Allow-Origin", b),
                ],
            ),
            BLOCKED,
        ));
    }
    // Bytes the http crate refuses, around the page's origin and `*`. The Fetch Standard strips
    // only spaces and tabs from a value, so none of these match.
    for (name, v) in [
        ("vt-after", cat(&[o, b"\x0b"])),
        ("vt-before", cat(&[b"\x0b", o])),
        ("ff-after", cat(&[o, b"\x0c"])),
        ("ctl-01", cat(&[o, b"\x01"])),
        ("star-vt", b"*\x0b".to_vec()),
        ("del", cat(&[o, b"\x7f"])),
        ("obs-text", cat(&[o, b"\xe9"])),
        ("star-obs-text", b"*\xe9".to_vec()),
    ] {
        out.push(case(&format!("origin-{name}"), allow_origin(&v), BLOCKED));
    }
    // A NUL in another header: the whole response fails.
    let mut c = case(
        "nul-elsewhere",
        answer(200, &[("Access-Control-Allow-Origin", o), ("X-B", b"a\0b")]),
        BLOCKED,
    );
    c.chromium_net_error = Some("net::ERR_INVALID_HTTP_RESPONSE");
    out.push(c);
    // Other control bytes in another header change nothing.
    out.push(case(
        "controls-elsewhere",
        answer(
            200,
            &[
                ("Access-Control-Allow-Origin", o),
                ("X-B", b"a\x01\x0b\x0c\x7f\xe9b"),
            ],
        ),
        OK,
    ));

    // cors/credentials-flag.htm: Access-Control-Allow-Credentials must be exactly `true`.
    for (i, v) in [
        b"TRUE".as_slice(),
        b"True",
        b"\"true\"",
        b"false",
        b"1",
        b"0",
        b"true\x0b",
        b"\x0ctrue",
        b"true\x01",
    ]
    .iter()
    .enumerate()
    {
        let mut c = case(
            &format!("credentials-{i}"),
            answer(
                200,
                &[
                    ("Access-Control-Allow-Origin", o),
                    ("Access-Control-Allow-Credentials", v),
                ],
            ),
            BLOCKED,
        );
        c.credentials = Credentials::Include;
        out.push(c);
    }
    let mut c = case(
        "credentials-true-padded",
        answer(
            200,
            &[
                ("Access-Control-Allow-Origin", o),
                ("Access-Control-Allow-Credentials", b" true\t"),
            ],
        ),
        OK,
    );
    c.credentials = Credentials::Include;
    out.push(c);

    // cors/access-control-expose-headers-parsing: which lists expose `x-a`.
    for (i, (v, exposed)) in [
        (b"x-a".as_slice(), true),
        (b" x-a ,", true),
        (b",,x-a,,", true),
        (b"x-a\x0b", false),
        (b"\x0bx-a", false),
        (b"x-b,\x0cx-a", false),
        (b"x-a\xe9, x-b", false),
        (b"x-a x-b", false),
        (b"\"x-a\"", false),
    ]
    .iter()
    .enumerate()
    {
        out.push(case(
            &format!("expose-{i}"),
            answer(
                200,
                &[
                    ("Access-Control-Allow-Origin", o),
                    ("Access-Control-Expose-Headers", v),
                    ("X-A", b"1"),
                ],
            ),
            if *exposed { OK_X_A } else { OK },
        ));
    }

    // Preflights: fetch/api/cors/cors-preflight-status.any.js, and a 407.
    let preflighted = |id: String, status: u16, extra: &[(&str, &[u8])], wpt| {
        let mut headers = vec![
            ("Access-Control-Allow-Origin", o),
            ("Access-Control-Allow-Methods", b"PUT".as_slice()),
        ];
        headers.extend_from_slice(extra);
        let mut c = case(&id, answer(200, &[("Access-Control-Allow-Origin", o)]), wpt);
        c.method = "PUT";
        c.preflight = answer(status, &headers);
        c
    };
    for status in [
        200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 306, 307, 308, 400, 401,
        402, 403, 404, 405, 501, 502, 503, 504, 505,
    ] {
        let ok = (200..300).contains(&status);
        out.push(preflighted(
            format!("preflight-status-{status}"),
            status,
            &[],
            if ok { OK } else { BLOCKED },
        ));
    }
    let mut c = preflighted(
        "preflight-407".to_owned(),
        407,
        &[("Proxy-Authenticate", b"Basic realm=\"x\"")],
        BLOCKED,
    );
    c.chromium_net_error = Some("net::ERR_UNEXPECTED_PROXY_AUTH");
    out.push(c);
    // A 407 on the request itself: Chromium fails it; Firefox and the Fetch Standard (without
    // a proxy to prompt for) hand it to the script.
    let mut c = case(
        "actual-407",
        answer(
            407,
            &[
                ("Access-Control-Allow-Origin", o),
                ("Proxy-Authenticate", b"Basic realm=\"x\""),
            ],
        ),
        Outcome::Allowed {
            status: 407,
            reads_x_a: false,
        },
    );
    c.chromium = Some(BLOCKED);
    c.chromium_net_error = Some("net::ERR_UNEXPECTED_PROXY_AUTH");
    c.not_in_webkit = Some("WebKitGTK's network layer (libsoup) answers a 407 with a Proxy-Authenticate challenge by asking the user for proxy credentials: the headless page waits on that prompt for ever");
    out.push(c);
    // The same without a challenge: WebKitGTK, which prompts on the challenge, reads this one
    // as any other status, as Firefox does.
    let mut c = case(
        "actual-407-no-challenge",
        answer(407, &[("Access-Control-Allow-Origin", o)]),
        Outcome::Allowed {
            status: 407,
            reads_x_a: false,
        },
    );
    c.chromium = Some(BLOCKED);
    c.chromium_net_error = Some("net::ERR_UNEXPECTED_PROXY_AUTH");
    out.push(c);
    // fetch/api/cors/cors-preflight-response-validation.any.js, and the same with bytes.
    for (id, name, v) in [
        (
            "validation-headers",
            "Access-Control-Allow-Headers",
            b"x-a, header name with space".as_slice(),
        ),
        (
            "validation-methods",
            "Access-Control-Allow-Methods",
            b"Bad method name",
        ),
        (
            "validation-methods-vt",
            "Access-Control-Allow-Methods",
            b"PUT\x0b",
        ),
        (
            "validation-methods-vt-before",
            "Access-Control-Allow-Methods",
            b"\x0bPUT",
        ),
        (
            "validation-headers-ff",
            "Access-Control-Allow-Headers",
            b"x-a\x0c",
        ),
    ] {
        let mut c = case(
            id,
            answer(200, &[("Access-Control-Allow-Origin", o)]),
            BLOCKED,
        );
        c.method = "PUT";
        c.headers = vec![("x-a".to_owned(), "1".to_owned())];
        let mut headers = vec![
            ("Access-Control-Allow-Origin", o),
            ("Access-Control-Allow-Methods", b"PUT".as_slice()),
            ("Access-Control-Allow-Headers", b"x-a"),
        ];
        headers.retain(|(n, _)| *n != name);
        headers.push((name, v));
        c.preflight = answer(204, &headers);
        out.push(c);
    }
    let mut c = preflighted("preflight-origin-vt".to_owned(), 204, &[], BLOCKED);
    c.preflight.headers[0].1 = cat(&[o, b"\x0b"]);
    out.push(c);

    // Request header values a script can set (fetch/api/headers/header-values-normalize):
    // every byte but NUL, CR and LF, with only tabs, spaces, CR and LF stripped around it.
    for (id, name, v) in [
        ("request-01", "x-a", "\x01"),
        ("request-vt-ff", "x-a", "\x0bv\x0c"),
        ("request-stripped", "x-a", " \tv \t\r\n"),
        ("request-del", "x-a", "a\x7fb"),
        ("request-accept-vt", "accept", "\x0btext/plain"),
        ("request-accept-01", "accept", "text/plain\x01"),
    ] {
        let mut c = case(id, answer(200, &[("Access-Control-Allow-Origin", o)]), OK);
        c.headers = vec![(name.to_owned(), v.to_owned())];
        c.preflight = answer(
            204,
            &[
                ("Access-Control-Allow-Origin", o),
                ("Access-Control-Allow-Headers", name.as_bytes()),
            ],
        );
        c.wire = true;
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The raw server.

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, (Answer, Answer)>>,
    /// The request heads received, by case id.
    log: Mutex<HashMap<String, Vec<Vec<u8>>>>,
}

/// Serves the scripted answers on 127.0.0.1, one request per connection, heads of at most
/// 64 KiB read within 5 s; returns the port.
async fn raw_server(shared: Arc<Shared>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), serve_one(stream, shared)).await;
            });
        }
    });
    port
}

async fn serve_one(mut stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = buf[..head_end].to_vec();
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap()).into_owned();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    shared
        .log
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_default()
        .push(head);
    let script = shared.scripts.lock().unwrap().get(&id).cloned();
    let a = match script {
        Some((pre, act)) => {
            if method == "OPTIONS" {
                pre
            } else {
                act
            }
        }
        None => answer(404, &[]),
    };
    let mut out = format!("HTTP/1.1 {} Scripted\r\n", a.status).into_bytes();
    for (n, v) in &a.headers {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 2\r\nConnection: close\r\n\r\nok");
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The `name: …` line of a request head, bytes as received but the name lowercased (Firefox
/// writes `Accept` where the script wrote `accept`; names are not case-sensitive).
fn wire_line(head: &[u8], name: &str) -> Option<Vec<u8>> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && l[name.len()] == b':'
        })
        .map(|l| {
            let mut l = l.to_vec();
            l[..name.len()].make_ascii_lowercase();
            l
        })
}

/// Chromium's console messages about blocked fetches, by case id, with the `\uXXXX` escapes of
/// its log turned back into characters.
fn console_messages(console: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in console.lines() {
        let Some(start) = line.find("\"Access to fetch at '") else {
            continue;
        };
        let text = &line[start + 1..];
        let Some(end) = text.rfind("\", source:") else {
            continue;
        };
        let message = unescape(&text[..end]);
        let Some(id) = message
            .split("/c/")
            .nth(1)
            .and_then(|r| r.split('\'').next())
        else {
            continue;
        };
        out.insert(id.to_owned(), message.clone());
    }
    out
}

/// WebKit's console messages about blocked fetches (its two lines), by case id.
fn webkit_console_messages(console: &str) -> HashMap<String, String> {
    corsair_testkit::matrix::webkit_messages(console)
        .into_iter()
        .filter_map(|(url, message)| {
            let id = url
                .split("/c/")
                .nth(1)?
                .split(['/', '?'])
                .next()?
                .to_owned();
            Some((id, message))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\u") {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 6).unwrap_or_default();
        match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
            Some(c) if hex.len() == 4 => {
                out.push(c);
                rest = &rest[i + 6..];
            }
            _ => {
                out.push_str("\\u");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn credentials_str(c: Credentials) -> &'static str {
    match c {
        Credentials::Omit => "omit",
        Credentials::SameOrigin => "same-origin",
        Credentials::Include => "include",
    }
}

async fn bytes_in(browser: Headless, rules: Rules) {
    let shared = Arc::new(Shared::default());
    let port = raw_server(shared.clone()).await;
    let pages = PageServer::start().await.unwrap();
    let host = format!("page.test:{}", pages.port());
    let origin = format!("http://{host}");
    let mut cases = cases(&origin, &host);
    if browser == Headless::WebKit {
        for c in cases.iter().filter(|c| c.not_in_webkit.is_some()) {
            println!(
                "webkit: {} not run: {}",
                c.id,
                c.not_in_webkit.unwrap_or_default()
            );
        }
        cases.retain(|c| c.not_in_webkit.is_none());
    }
    for c in &cases {
        shared
            .scripts
            .lock()
            .unwrap()
            .insert(c.id.clone(), (c.preflight.clone(), c.actual.clone()));
    }
    let url = |c: &ByteCase| format!("http://127.0.0.1:{port}/c/{}", c.id);
    let frame = Frame {
        origin: origin.clone(),
        cases: cases
            .iter()
            .map(|c| {
                let mut case = Case::new(
                    &c.id,
                    &url(c),
                    c.method,
                    &c.headers,
                    credentials_str(c.credentials),
                );
                case.read_header = Some("x-a".to_owned());
                case
            })
            .collect(),
    };
    let started = std::time::Instant::now();
    let run = pages
        .run(browser, &[frame], Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{}: {} cases in {:.1?}",
        browser.version(),
        cases.len(),
        started.elapsed()
    );
    let browser_log = std::mem::take(&mut *shared.log.lock().unwrap());
    let messages = if browser == Headless::WebKit {
        webkit_console_messages(&run.console)
    } else {
        console_messages(&run.console)
    };
    let client = corsair_cli::net::RawClient::new();
    let mut wrong = Vec::new();
    let mut against_wpt = Vec::new();
    let mut checked_messages = 0;
    let mut checked_network = 0;
    // Cases WebKit blocked without a console message (a network error before CORS).
    let mut no_webkit_message: Vec<String> = Vec::new();
    for c in &cases {
        let seen = run
            .seen
            .get(&c.id)
            .unwrap_or_else(|| panic!("no browser result for {}", c.id));
        let theirs = if seen.ok {
            Outcome::Allowed {
                status: seen.status,
                reads_x_a: seen.header.is_some(),
            }
        } else {
            Outcome::Blocked
        };
        let recorded = match browser {
            Headless::Chromium => c.chromium,
            Headless::Firefox => c.firefox,
            Headless::WebKit => c.webkit,
        };
        if theirs != c.wpt {
            against_wpt.push(format!("{} ({:?}, WPT: {:?})", c.id, theirs, c.wpt));
        }
        if theirs != recorded.unwrap_or(c.wpt) {
            wrong.push(format!(
                "{}: {} gave {theirs:?}, recorded {:?} ({:?})",
                c.id,
                browser.name(),
                recorded.unwrap_or(c.wpt),
                seen.error
            ));
        }
        // corsair check, against the same answers.
        let args = CheckArgs {
            url: url(c),
            origin: origin.clone(),
            method: c.method.to_owned(),
            headers: c.headers.clone(),
            cookie: None,
            credentials: c.credentials,
            browser: rules,
            timeout: Duration::from_secs(5),
        };
        let report = check::run(&args, &client)
            .await
            .unwrap_or_else(|e| panic!("{}: corsair check failed: {e}", c.id));
        let exposed_x_a = report.exposed.iter().any(|h| h == "x-a");
        let ours = if report.allowed {
            Outcome::Allowed {
                status: report.status.unwrap_or_default(),
                reads_x_a: exposed_x_a,
            }
        } else {
            Outcome::Blocked
        };
        if ours != theirs {
            wrong.push(format!(
                "{}: corsair check gave {ours:?}, {} {theirs:?}; message {:?}",
                c.id,
                browser.name(),
                report.message
            ));
        }
        if browser == Headless::Chromium && !seen.ok {
            let expected = match c.chromium_net_error {
                Some(code) => Some(format!("TypeError: Failed to fetch ({code})")),
                None => messages.get(&c.id).cloned(),
            };
            if c.chromium_net_error.is_some() && messages.contains_key(&c.id) {
                wrong.push(format!(
                    "{}: Chromium printed a CORS message for a network error: {:?}",
                    c.id, messages[&c.id]
                ));
            }
            checked_messages += 1;
            if expected.is_none() || report.message != expected {
                wrong.push(format!(
                    "{}: message\n    corsair:  {:?}\n    chromium: {expected:?}",
                    c.id, report.message
                ));
            }
        }
        if browser == Headless::WebKit && !seen.ok {
            // The engine's own words: WebKit's two lines, as check renders them for Safari.
            let ours = report
                .engines
                .iter()
                .find(|e| e.browser == Rules::Safari)
                .and_then(|e| e.message.clone());
            match messages.get(&c.id) {
                Some(theirs) => {
                    checked_messages += 1;
                    if ours.as_deref() != Some(theirs.as_str()) {
                        wrong.push(format!(
                            "{}: message\n    corsair: {ours:?}\n    webkit:  {theirs:?}",
                            c.id
                        ));
                    }
                }
                // No console line: a network error before CORS, which check must call one.
                None => {
                    no_webkit_message.push(c.id.clone());
                    if report.error.as_deref() != Some("network") {
                        wrong.push(format!(
                            "{}: WebKit printed no CORS message, corsair check gave {:?}",
                            c.id, report.error
                        ));
                    }
                }
            }
        }
        // A network error in Firefox's and WebKit's words: the exception the script got.
        if browser != Headless::Chromium && !seen.ok && report.error.as_deref() == Some("network") {
            let ours = report
                .engines
                .iter()
                .find(|e| e.browser == rules)
                .and_then(|e| e.message.clone());
            checked_network += 1;
            if ours != seen.error {
                wrong.push(format!(
                    "{}: network error\n    corsair: {ours:?}\n    {}: {:?}",
                    c.id,
                    browser.name(),
                    seen.error
                ));
            }
        }
        // What went on the wire.
        let check_log = std::mem::take(&mut *shared.log.lock().unwrap());
        if c.wire {
            let name = &c.headers[0].0;
            let theirs: Vec<Vec<u8>> = browser_log
                .get(&c.id)
                .into_iter()
                .flatten()
                .map(|h| wire_line(h, name).unwrap_or_default())
                .collect();
            let ours: Vec<Vec<u8>> = check_log
                .get(&c.id)
                .into_iter()
                .flatten()
                .map(|h| wire_line(h, name).unwrap_or_default())
                .collect();
            if theirs != ours {
                wrong.push(format!(
                    "{}: on the wire, {} sent {:?}, corsair check {:?}",
                    c.id,
                    browser.name(),
                    theirs
                        .iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect::<Vec<_>>(),
                    ours.iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    println!(
        "{}: {} cases, {} console messages and {} network-error exceptions compared, {} disagreements; where {} differs from web-platform-tests: {:?}",
        browser.name(),
        cases.len(),
        checked_messages,
        checked_network,
        wrong.len(),
        browser.name(),
        against_wpt
    );
    if browser == Headless::WebKit {
        println!(
            "webkitgtk: blocked without a console message (network errors): {no_webkit_message:?}"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_as_chromium_handles_them() {
    bytes_in(Headless::Chromium, Rules::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_as_firefox_handles_them() {
    bytes_in(Headless::Firefox, Rules::Firefox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_as_webkit_handles_them() {
    bytes_in(Headless::WebKit, Rules::Safari).await;
}

/// A NUL in a response header, checked for the three engines at once: each says the network
/// error in its own words, the words the page's script got in the browser arms above
/// (Chromium's console code; Firefox's and WebKit's exception, WebKit printing no console line).
#[tokio::test]
async fn a_nul_is_each_engines_network_error_in_its_own_words() {
    let shared = Arc::new(Shared::default());
    let port = raw_server(shared.clone()).await;
    let origin = "http://page.test:8000";
    let ok = answer(200, &[("Access-Control-Allow-Origin", origin.as_bytes())]);
    shared.scripts.lock().unwrap().insert(
        "nul".to_owned(),
        (
            ok,
            answer(
                200,
                &[
                    ("Access-Control-Allow-Origin", origin.as_bytes()),
                    ("X-B", b"a\0b"),
                ],
            ),
        ),
    );
    let out = corsair(vec![
        "check".into(),
        format!("http://127.0.0.1:{port}/c/nul"),
        "--origin".into(),
        origin.into(),
        "--json".into(),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let words: Vec<(&str, &str)> = v["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["browser"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        words,
        [
            (
                "chromium",
                "TypeError: Failed to fetch (net::ERR_INVALID_HTTP_RESPONSE)"
            ),
            (
                "firefox",
                "TypeError: NetworkError when attempting to fetch resource."
            ),
            ("safari", "TypeError: Load failed"),
        ],
        "{v}"
    );
}

/// Runs the built `corsair` with `args` (bytes as the shell passes them), off the runtime.
async fn corsair(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `--header` from the command line to the wire: the lines Chromium put on the wire for the
/// same values set by a script (seen in the `request-*` cases above, written out here), and
/// fetch()'s TypeError for NUL, CR and LF.
#[tokio::test]
async fn header_values_go_from_the_command_line_to_the_wire_as_fetch_sends_them() {
    let shared = Arc::new(Shared::default());
    let port = raw_server(shared.clone()).await;
    let origin = "http://page.test:8000";
    shared.scripts.lock().unwrap().insert(
        "cli".to_owned(),
        (
            answer(
                204,
                &[
                    ("Access-Control-Allow-Origin", origin.as_bytes()),
                    ("Access-Control-Allow-Headers", b"x-a"),
                ],
            ),
            answer(200, &[("Access-Control-Allow-Origin", origin.as_bytes())]),
        ),
    );
    let url = format!("http://127.0.0.1:{port}/c/cli");
    for (typed, wire) in [
        ("x-a:\x0bv\x0c", b"x-a: \x0bv\x0c".as_slice()),
        ("x-a: \x01", b"x-a: \x01"),
        ("x-a: \t v \t", b"x-a: v"),
        ("x-a:a\x7fb", b"x-a: a\x7fb"),
    ] {
        let out = corsair(vec![
            "check".into(),
            url.clone(),
            "--origin".into(),
            origin.into(),
            "-H".into(),
            typed.into(),
        ])
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{typed:?}: {stdout}");
        let log = std::mem::take(&mut *shared.log.lock().unwrap());
        let heads = log.get("cli").cloned().unwrap_or_default();
        // The preflight names the header; the request carries it, byte for byte.
        assert_eq!(heads.len(), 2, "{typed:?}: {stdout}");
        assert_eq!(
            wire_line(&heads[0], "access-control-request-headers").as_deref(),
            Some(b"access-control-request-headers: x-a".as_slice())
        );
        assert_eq!(
            wire_line(&heads[1], "x-a").as_deref(),
            Some(wire),
            "{typed:?}"
        );
        // The report shows control characters escaped, as Chromium's log does.
        assert!(
            !stdout.contains(['\x01', '\x0b', '\x0c', '\x7f']),
            "{stdout}"
        );
    }
    // A NUL cannot pass through argv (the engine's own tests refuse it); CR and LF can.
    for typed in ["x-a: a\rb", "x-a: a\nb"] {
        let out = corsair(vec![
            "check".into(),
            url.clone(),
            "--origin".into(),
            origin.into(),
            "-H".into(),
            typed.into(),
        ])
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{typed:?}: {stderr}");
        assert!(
            stderr.contains("holds NUL, CR or LF (fetch() throws a TypeError)"),
            "{stderr}"
        );
        assert!(shared.log.lock().unwrap().is_empty(), "nothing is sent");
    }
}

/// Answers every connection on 127.0.0.1 with `bytes` (after reading the request head), then
/// keeps it open for `hold`; returns the URL.
async fn blob_server(bytes: Vec<u8>, hold: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&bytes).await;
                tokio::time::sleep(hold).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}

/// Each bound of check's reader is an error that says which, never a panic; bodies are read
/// as far as their first bytes, chunked or not, after interim answers.
#[tokio::test]
async fn the_reader_is_bounded_and_says_which_bound() {
    let client = corsair_cli::net::RawClient::new();
    let get = |bytes: Vec<u8>, hold: u64, timeout: u64| {
        let client = client.clone();
        async move {
            let url = blob_server(bytes, Duration::from_millis(hold)).await;
            client
                .exchange("GET", &url, &[], Duration::from_millis(timeout))
                .await
        }
    };
    let head = |lines: &str| format!("HTTP/1.1 200 OK\r\n{lines}\r\n").into_bytes();
    let error = |r: Result<corsair_cli::net::RawHead, corsair_cli::net::NetError>| {
        r.map(|h| h.status).unwrap_err().to_string()
    };

    let big = "x-big: ".to_owned() + &"a".repeat(1000) + "\r\n";
    let e = error(get(head(&big.repeat(300)), 2000, 3000).await);
    assert!(
        e.contains("larger than 256 KiB") && e.contains("ERR_RESPONSE_HEADERS_TOO_BIG"),
        "{e}"
    );
    let long = "x-long: ".to_owned() + &"a".repeat(70 * 1024) + "\r\n";
    let e = error(get(head(&long), 2000, 3000).await);
    assert!(e.contains("longer than 64 KiB"), "{e}");
    let e = error(get(head(&"x: 1\r\n".repeat(1001)), 2000, 3000).await);
    assert!(e.contains("more than 1000 header lines"), "{e}");
    let e = error(get(Vec::new(), 2000, 300).await);
    assert!(e.starts_with("timed out after 0.3s"), "{e}");
    let e = error(get(Vec::new(), 0, 3000).await);
    assert!(e.contains("closed the connection without answering"), "{e}");
    let e = error(get(b"ICY 200 OK\r\n\r\n".to_vec(), 0, 3000).await);
    assert!(e.contains("not an HTTP/1.x response"), "{e}");
    let e = error(get(b"HTTP/1.1 100 Continue\r\n\r\n".repeat(11), 2000, 3000).await);
    assert!(e.contains("more than 10 interim"), "{e}");

    // Bodies: their first 512 bytes at most, by length, chunks, or the connection's end.
    let body = |r: Result<corsair_cli::net::RawHead, corsair_cli::net::NetError>| {
        String::from_utf8(r.unwrap().body_start).unwrap()
    };
    let mut chunked = head("Transfer-Encoding: chunked\r\n");
    chunked.extend_from_slice(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n");
    assert_eq!(body(get(chunked, 2000, 3000).await), "hello world");
    let mut sized = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    sized.extend(head("Content-Length: 3\r\n"));
    sized.extend_from_slice(b"abcdef");
    assert_eq!(body(get(sized, 2000, 3000).await), "abc");
    let mut long_body = head("");
    long_body.extend(std::iter::repeat_n(b'z', 5000));
    assert_eq!(body(get(long_body, 0, 3000).await).len(), 512);
}
