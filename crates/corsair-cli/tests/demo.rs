//! `corsair demo` in real browsers: headless Chromium driven through WebDriver (Debian's
//! chromedriver, spoken to with plain HTTP and JSON), and Firefox ESR through Marionette, its own
//! remote protocol (Debian ships no geckodriver; Marionette is what geckodriver itself speaks).
//! Every request of the page is clicked under every policy; what the page shows is checked
//! against what the browser did (the real fetch's outcome, the requests that reached the API,
//! and in Chromium its own console message) and against hand-written expectations. A screenshot
//! per policy goes to target/demo-screenshots/. The page's accessibility basics are checked in
//! Chromium: labels, keyboard focus order, and the contrast of its colours, computed from its CSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Kills a child process when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- a minimal WebDriver client: HTTP/1.1 over a TcpStream, one request per connection ----

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes (chromedriver may keep the connection).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "chromedriver closed the connection mid-response");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut payload = raw[split + 4..].to_vec();
    match length {
        Some(len) => {
            while payload.len() < len {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "chromedriver closed the connection mid-body");
                payload.extend_from_slice(&buf[..n]);
            }
            payload.truncate(len);
        }
        None => {
            stream.read_to_end(&mut payload).unwrap();
            if head.contains("transfer-encoding: chunked") {
                payload = dechunk(&payload);
            }
        }
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
    (status, value)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

struct Driver {
    port: u16,
    session: String,
    _process: Reaper,
    _profile: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The browser binary (Debian's `chromium` is a shell wrapper that chromedriver cannot wait for).
fn chromium() -> PathBuf {
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.is_file() {
        return real.to_owned();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed; this test needs it and chromedriver: \
                 apt-get install -y chromium chromium-driver (scripts/test.sh does it)"
            )
        })
}

impl Driver {
    fn start() -> Driver {
        let browser = chromium();
        assert!(
            Path::new(CHROMEDRIVER).is_file(),
            "{CHROMEDRIVER} is missing; this test drives chromium through it: \
             apt-get install -y chromium-driver (scripts/test.sh does it)"
        );
        let port = free_port();
        let process = Reaper(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/status", None).1["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = TempDir(std::env::temp_dir().join(format!(
            "corsair-demo-chromium-{}-{port}",
            std::process::id()
        )));
        std::fs::create_dir_all(&profile.0).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": browser.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            },
        }}});
        let (status, v) = http(port, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "chromedriver refused the session: {v}");
        let session = v["value"]["sessionId"].as_str().unwrap().to_owned();
        Driver {
            port,
            session,
            _process: process,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn find(&self, css: &str) -> String {
        element_id(&self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        ))
    }

    fn press(&self, key: &str) {
        self.cmd(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
                ]}]}),
            ),
        );
    }

    fn screenshot(&self, file: &Path) {
        self.screenshot_of(None, file);
    }
}

/// A WebDriver element reference's id.
fn element_id(v: &Value) -> String {
    v.as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

/// What the page tests need from a browser under remote control.
trait Remote {
    fn name(&self) -> &'static str;
    fn goto(&self, url: &str);
    fn js(&self, script: &str) -> Value;
    fn click(&self, css: &str);
    /// A base64 PNG of the page, or of the element `css` when given.
    fn screenshot_base64(&self, css: Option<&str>) -> String;
    /// The console's messages since the last call, where the browser gives them (Chromium).
    fn console(&self) -> Option<Vec<String>>;

    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.js(script) != true {
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}",
                self.name()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot_of(&self, css: Option<&str>, file: &Path) {
        let png = decode_base64(&self.screenshot_base64(css));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        std::fs::write(file, png).unwrap();
    }
}

impl Remote for Driver {
    fn name(&self) -> &'static str {
        "chromium"
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn screenshot_base64(&self, css: Option<&str>) -> String {
        let path = match css {
            Some(css) => format!("/element/{}/screenshot", self.find(css)),
            None => "/screenshot".to_owned(),
        };
        self.cmd("GET", &path, None).as_str().unwrap().to_owned()
    }

    fn console(&self) -> Option<Vec<String>> {
        let entries = self.cmd("POST", "/se/log", Some(json!({ "type": "browser" })));
        Some(
            entries
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}

// ---- Firefox ESR through Marionette, its own remote protocol (Debian has no geckodriver):
// length-prefixed JSON over TCP, the WebDriver commands geckodriver itself sends ----

struct Marionette {
    conn: std::sync::Mutex<(BufReader<TcpStream>, u64)>,
    _process: Reaper,
    _profile: TempDir,
}

fn firefox() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("firefox-esr"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "firefox-esr is not installed; this test needs it: apt-get install -y firefox-esr \
                 (scripts/test.sh does it)"
            )
        })
}

fn read_message(reader: &mut BufReader<TcpStream>) -> Value {
    let mut len = Vec::new();
    reader.read_until(b':', &mut len).unwrap();
    len.pop();
    let len: usize = String::from_utf8(len).unwrap().trim().parse().unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

impl Marionette {
    fn start() -> Marionette {
        let exe = firefox();
        let port = free_port();
        let profile = TempDir(std::env::temp_dir().join(format!(
            "corsair-demo-firefox-{}-{port}",
            std::process::id()
        )));
        std::fs::create_dir_all(&profile.0).unwrap();
        std::fs::write(
            profile.0.join("user.js"),
            format!(
                r#"user_pref("marionette.port", {port});
user_pref("network.dns.disableIPv6", true);
user_pref("network.proxy.type", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("extensions.update.enabled", false);
"#
            ),
        )
        .unwrap();
        let process = Reaper(
            Command::new(exe)
                .args(["--headless", "--marionette", "--no-remote", "--profile"])
                .arg(&profile.0)
                .arg("about:blank")
                .env("MOZ_CRASHREPORTER_DISABLE", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "firefox's Marionette did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let hello = read_message(&mut reader);
        assert_eq!(hello["marionetteProtocol"], 3, "{hello}");
        let m = Marionette {
            conn: std::sync::Mutex::new((reader, 0)),
            _process: process,
            _profile: profile,
        };
        m.call("WebDriver:NewSession", json!({"capabilities": {}}));
        m
    }

    /// Sends a command; returns its result, panicking on an error.
    fn call(&self, name: &str, params: Value) -> Value {
        let mut conn = self.conn.lock().unwrap();
        conn.1 += 1;
        let id = conn.1;
        let body = json!([0, id, name, params]).to_string();
        let stream = conn.0.get_mut();
        write!(stream, "{}:{body}", body.len()).unwrap();
        loop {
            let reply = read_message(&mut conn.0);
            if reply[0] == 1 && reply[1] == id {
                assert!(reply[2].is_null(), "Marionette {name}: {}", reply[2]);
                return reply[3].clone();
            }
        }
    }
}

impl Remote for Marionette {
    fn name(&self) -> &'static str {
        "firefox"
    }

    fn goto(&self, url: &str) {
        self.call("WebDriver:Navigate", json!({ "url": url }));
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "WebDriver:ExecuteScript",
            json!({ "script": script, "args": [] }),
        )["value"]
            .clone()
    }

    fn click(&self, css: &str) {
        let found = self.call(
            "WebDriver:FindElement",
            json!({ "using": "css selector", "value": css }),
        );
        let id = element_id(&found["value"]);
        self.call("WebDriver:ElementClick", json!({ "id": id }));
    }

    fn screenshot_base64(&self, css: Option<&str>) -> String {
        let mut params = json!({});
        if let Some(css) = css {
            let found = self.call(
                "WebDriver:FindElement",
                json!({ "using": "css selector", "value": css }),
            );
            params["id"] = element_id(&found["value"]).into();
        }
        self.call("WebDriver:TakeScreenshot", params)["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn console(&self) -> Option<Vec<String>> {
        None
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ---- the demo itself ----

struct Demo {
    _process: Reaper,
    page: String,
    api: String,
}

fn start_demo() -> Demo {
    let mut child = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args(["demo", "--app-port", "0", "--api-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut urls = Vec::new();
    let mut line = String::new();
    while urls.len() < 2 {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the demo exited");
        if let Some(i) = line.find("http://") {
            urls.push(line[i..].trim().to_owned());
        }
    }
    // Keep reading, so that the demo never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Demo {
        _process: Reaper(child),
        page: urls[0].clone(),
        api: urls[1].clone(),
    }
}

/// What the browser must do with each request under each policy, written by hand from the
/// Fetch Standard and Chromium's messages: `None` allowed, `Some(reason)` blocked with this
/// console reason. Also how many requests reach the API (the preflight, the actual request).
fn expected(policy: &str, request: &str) -> (Option<&'static str>, usize) {
    const NO_ACAO: &str =
        "No 'Access-Control-Allow-Origin' header is present on the requested resource.";
    const PREFLIGHT_NO_ACAO: &str = "Response to preflight request doesn't pass access control \
         check: No 'Access-Control-Allow-Origin' header is present on the requested resource.";
    const NO_PUT: &str =
        "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.";
    const NO_HEADER: &str = "Request header field x-request-id is not allowed by \
         Access-Control-Allow-Headers in preflight response.";
    const WILDCARD: &str = "The value of the 'Access-Control-Allow-Origin' header in the \
         response must not be the wildcard '*' when the request's credentials mode is 'include'.";
    const PREFLIGHT_WILDCARD: &str = "Response to preflight request doesn't pass access control \
         check: The value of the 'Access-Control-Allow-Origin' header in the response must not \
         be the wildcard '*' when the request's credentials mode is 'include'.";
    let preflighted = !matches!(request, "simple-get" | "credentialed");
    let allowed = (None, if preflighted { 2 } else { 1 });
    match (policy, request) {
        ("origin-missing", _) if preflighted => (Some(PREFLIGHT_NO_ACAO), 1),
        ("origin-missing", _) => (Some(NO_ACAO), 1),
        ("method-missing", "put" | "composed") => (Some(NO_PUT), 1),
        ("header-missing", "delete-header" | "composed") => (Some(NO_HEADER), 1),
        ("wildcard-credentials", "credentialed") => (Some(WILDCARD), 1),
        ("wildcard-credentials", "composed") => (Some(PREFLIGHT_WILDCARD), 1),
        _ => allowed,
    }
}

const POLICIES: [&str; 6] = [
    "correct",
    "origin-missing",
    "method-missing",
    "header-missing",
    "wildcard-credentials",
    "no-vary",
];
const REQUESTS: [&str; 6] = [
    "simple-get",
    "post-json",
    "put",
    "delete-header",
    "credentialed",
    "composed",
];

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("demo-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_request_under_every_policy_in_chromium() {
    let demo = start_demo();
    let driver = Driver::start();
    driver.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 900, "height": 2400})),
    );
    exercise(&driver, &demo, "");
}

#[test]
fn every_request_under_every_policy_in_firefox() {
    let demo = start_demo();
    let firefox = Marionette::start();
    firefox.call(
        "WebDriver:SetWindowRect",
        json!({"width": 900, "height": 2400}),
    );
    exercise(&firefox, &demo, "firefox-");
}

/// Clicks every request under every policy in `driver`'s browser; screenshots are named
/// `{prefix}{policy}.png`.
fn exercise(driver: &dyn Remote, demo: &Demo, prefix: &str) {
    driver.goto(&demo.page);
    driver.wait_for(
        "the page to start",
        "return document.body.dataset.ready === 'true'",
    );
    let page_origin = demo.page.trim_end_matches('/').to_owned();
    assert_eq!(
        driver.js("return location.origin"),
        Value::from(page_origin.clone())
    );
    let dir = screenshots_dir();
    let mut failures = Vec::new();
    for policy in POLICIES {
        driver.click(&format!("#policy-{policy}"));
        driver.wait_for(
            &format!("policy {policy}"),
            &format!("return document.body.dataset.policy === '{policy}'"),
        );
        let _ = driver.console();
        for request in REQUESTS {
            driver.js("document.getElementById('result').dataset.state = 'idle'");
            let button = if request == "composed" {
                "#send-composed".to_owned()
            } else {
                format!("#send-{request}")
            };
            driver.click(&button);
            driver.wait_for(
                &format!("{request} under {policy}"),
                "return document.getElementById('result').dataset.state === 'done'",
            );
            let shown = driver.js(
                "const r = document.getElementById('result');
                 return { request: r.dataset.request, policy: r.dataset.policy,
                   predicted: r.dataset.predicted, real: r.dataset.real,
                   exchanges: Number(r.dataset.exchanges), received: Number(r.dataset.received),
                   message: document.getElementById('console-message').textContent,
                   messageShown: !document.getElementById('console-box').hidden,
                   verdict: document.getElementById('verdict').textContent,
                   marked: [...document.querySelectorAll('#exchanges mark')].map(m => m.textContent),
                   check: document.getElementById('check-command').textContent,
                   log: document.getElementById('server-log').textContent };",
            );
            let console = driver.console();
            let (blocked, received) = expected(policy, request);
            let what = format!("{}: {request} under {policy}", driver.name());
            let mut check = |ok: bool, msg: String| {
                if !ok {
                    failures.push(format!("{what}: {msg}"));
                }
            };
            check(
                shown["request"] == request && shown["policy"] == policy,
                format!("the page shows another request: {shown}"),
            );
            let want = if blocked.is_some() {
                "blocked"
            } else {
                "allowed"
            };
            // What the browser really did (the page's own fetch) and what corsair predicted.
            check(
                shown["real"] == want,
                format!("the browser: {} (expected {want})", shown["real"]),
            );
            check(
                shown["predicted"] == shown["real"],
                format!(
                    "prediction {} but the browser {}",
                    shown["predicted"], shown["real"]
                ),
            );
            check(
                shown["verdict"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{want} by the browser")),
                format!("verdict text {}", shown["verdict"]),
            );
            // How many requests the API saw: its log, shown on the page.
            check(
                shown["received"] == received,
                format!(
                    "the API received {} requests, expected {received}: {}",
                    shown["received"], shown["log"]
                ),
            );
            match blocked {
                Some(reason) => {
                    let message = format!(
                        "Access to fetch at '{}' from origin '{page_origin}' has been blocked by CORS policy: {reason}",
                        demo.api
                    );
                    check(
                        shown["messageShown"] == true && shown["message"] == message.as_str(),
                        format!(
                            "page shows message {}, expected {message:?}",
                            shown["message"]
                        ),
                    );
                    // The browser's own console says the same (Chromium's words: Chromium only).
                    if let Some(console) = &console {
                        check(
                            console.iter().any(|line| line.contains(&message)),
                            format!("the console does not say {message:?}: {console:?}"),
                        );
                    }
                    check(
                        shown["marked"].as_array().is_some_and(|m| !m.is_empty()),
                        "no deciding header marked".to_owned(),
                    );
                }
                None => {
                    check(
                        shown["messageShown"] == false,
                        "a console message is shown for an allowed request".to_owned(),
                    );
                    if let Some(console) = &console {
                        check(
                            !console.iter().any(|l| l.contains("blocked by CORS policy")),
                            format!("the console reports a CORS error: {console:?}"),
                        );
                    }
                    check(
                        shown["exchanges"] == received,
                        format!(
                            "{} exchanges shown, {received} expected",
                            shown["exchanges"]
                        ),
                    );
                }
            }
            let command = shown["check"].as_str().unwrap();
            check(
                command.starts_with(&format!(
                    "corsair check {} --origin {page_origin}",
                    demo.api
                )),
                format!("check command {command:?}"),
            );
        }
        driver.screenshot_of(None, &dir.join(format!("{prefix}{policy}.png")));
        // The parts the README shows: the policy panel, and the last request's result.
        driver.screenshot_of(
            Some("#policy-panel"),
            &dir.join(format!("{prefix}{policy}-panel.png")),
        );
        driver.screenshot_of(
            Some("#result"),
            &dir.join(format!("{prefix}{policy}-result.png")),
        );
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "demo ({}): {} requests x {} policies agree; screenshots in {}",
        driver.name(),
        REQUESTS.len(),
        POLICIES.len(),
        dir.display()
    );
}

/// A colour of the form `#rrggbb` as linear-light relative luminance (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim_start_matches('#');
    assert_eq!(hex.len(), 6, "colour {hex} is not #rrggbb");
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// The custom properties of the first `:root { … }` block at or after `from` in the CSS.
fn root_colours(css: &str, from: usize) -> HashMap<String, String> {
    let start = from + css[from..].find(":root {").unwrap();
    let end = start + css[start..].find('}').unwrap();
    css[start..end]
        .lines()
        .filter_map(|l| {
            let (name, value) = l.trim().strip_prefix("--")?.split_once(':')?;
            Some((
                name.trim().to_owned(),
                value.trim().trim_end_matches(';').to_owned(),
            ))
        })
        .collect()
}

fn rgb(hex: &str) -> String {
    let h = hex.trim_start_matches('#');
    let c = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap();
    format!("rgb({}, {}, {})", c(0), c(2), c(4))
}

#[test]
fn the_page_is_labelled_keyboard_reachable_readable_and_dark_aware() {
    let css =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/page.css"))
            .unwrap();
    let light = root_colours(&css, 0);
    let dark_at = css.find("prefers-color-scheme: dark").unwrap();
    let dark = root_colours(&css, dark_at);
    // Text on the backgrounds it is used on: WCAG AA for normal text is 4.5:1.
    let pairs = [
        ("fg", "bg"),
        ("fg", "surface"),
        ("muted", "bg"),
        ("muted", "surface"),
        ("ok", "bg"),
        ("bad", "bg"),
        ("on-accent", "accent"),
        ("on-mark", "mark"),
    ];
    for (scheme, colours) in [("light", &light), ("dark", &dark)] {
        for (text, background) in pairs {
            let ratio = contrast(&colours[text], &colours[background]);
            assert!(
                ratio >= 4.5,
                "{scheme}: --{text} {} on --{background} {} has contrast {ratio:.2}, below 4.5",
                colours[text],
                colours[background]
            );
        }
        // The focus ring is not text: 3:1 against the page (WCAG 1.4.11).
        let ring = contrast(&colours["focus"], &colours["bg"]);
        assert!(ring >= 3.0, "{scheme}: focus ring contrast {ring:.2}");
    }

    let demo = start_demo();
    let driver = Driver::start();
    driver.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 1100, "height": 1400})),
    );
    driver.goto(&demo.page);
    driver.wait_for(
        "the page to start",
        "return document.body.dataset.ready === 'true'",
    );

    // Offline: everything the page loads comes from its own origin (no CDN).
    let foreign = driver.js(
        "return performance.getEntriesByType('resource').map(e => e.name)
           .filter(n => !n.startsWith(location.origin + '/'));",
    );
    assert_eq!(foreign, json!([]), "the page loads from elsewhere");

    // The colours the browser uses are the CSS file's, in both schemes.
    let body = "const s = getComputedStyle(document.body); return [s.color, s.backgroundColor];";
    assert_eq!(
        driver.js(body),
        json!([rgb(&light["fg"]), rgb(&light["bg"])])
    );

    // Every control has a label a screen reader announces.
    let controls = driver.js(
        "return [...document.querySelectorAll('button, input, select, textarea')].map(el => ({
           id: el.id,
           label: ([...(el.labels || [])].map(l => l.textContent.trim()).join(' ')
             || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' ? el.textContent.trim() : ''))
         }));",
    );
    let controls = controls.as_array().unwrap();
    // 6 policies, 5 preset requests, and the composer's 4 fields and its button.
    assert_eq!(controls.len(), 16, "{controls:?}");
    let unlabelled: Vec<&Value> = controls
        .iter()
        .filter(|c| c["label"].as_str().unwrap_or("").is_empty())
        .collect();
    assert!(
        unlabelled.is_empty(),
        "controls without a label: {unlabelled:?}"
    );

    // Tab reaches every control, in page order (a radio group is one stop: the checked radio),
    // and the focused control shows a focus ring.
    driver.js("document.activeElement.blur(); window.scrollTo(0, 0);");
    let mut reached = Vec::new();
    for _ in 0..40 {
        driver.press("\u{E004}");
        let focused = driver.js("const el = document.activeElement;
             return { id: el.id, outline: getComputedStyle(el).outlineStyle };");
        let id = focused["id"].as_str().unwrap_or("").to_owned();
        if id.is_empty() || reached.contains(&id) {
            if !reached.is_empty() {
                break;
            }
            continue;
        }
        assert_ne!(
            focused["outline"], "none",
            "{id} shows no focus ring when focused from the keyboard"
        );
        reached.push(id);
    }
    let expected_order = [
        "policy-correct",
        "send-simple-get",
        "send-post-json",
        "send-put",
        "send-delete-header",
        "send-credentialed",
        "c-method",
        "c-header-name",
        "c-header-value",
        "c-credentials",
        "send-composed",
    ];
    assert_eq!(reached, expected_order, "the tab order");

    // The keyboard alone sends a request and switches the policy.
    driver.js("document.getElementById('send-simple-get').focus()");
    driver.press("\u{E007}");
    driver.wait_for(
        "Enter on a request button",
        "return document.getElementById('result').dataset.state === 'done'",
    );
    driver.js("document.getElementById('policy-correct').focus()");
    driver.press("\u{E015}"); // ArrowDown moves to and selects the next policy
    driver.wait_for(
        "ArrowDown in the policy group",
        "return document.body.dataset.policy === 'origin-missing'",
    );

    // A phone-sized screen: nothing wider than the viewport.
    driver.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 1600})),
    );
    let widths = driver
        .js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];");
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "the page scrolls sideways on a phone: {widths}"
    );
    let dir = screenshots_dir();
    driver.screenshot(&dir.join("phone.png"));

    // Dark mode follows the user's preference.
    driver.cmd(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]
        }})),
    );
    assert_eq!(driver.js(body), json!([rgb(&dark["fg"]), rgb(&dark["bg"])]));
    driver.screenshot(&dir.join("phone-dark.png"));
}

#[test]
fn a_taken_port_is_a_clear_error_naming_the_port_and_its_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for flag in ["--app-port", "--api-port"] {
        let other = if flag == "--app-port" {
            "--api-port"
        } else {
            "--app-port"
        };
        let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(["demo", flag, &port, other, "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("port {port} is taken ({flag} {port})")),
            "{flag}: {stderr}"
        );
    }
}

/// Runs `corsair demo --open` with `PATH` set to `path`; returns its first `n` lines of output.
fn demo_open_with_path(path: &Path, n: usize) -> Vec<String> {
    let mut child = Reaper(
        Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(["demo", "--open", "--app-port", "0", "--api-port", "0"])
            .env("PATH", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.trim_end().to_owned());
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the demo stopped after --open: {lines:?}"
    );
    lines
}

#[test]
fn open_runs_xdg_open_with_the_page_and_says_so_when_there_is_none() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("corsair-demo-open-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();

    // No xdg-open: the demo says so and keeps serving.
    let lines = demo_open_with_path(&dir.0, 5);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("xdg-open is not installed here")),
        "{lines:?}"
    );

    // A stand-in xdg-open records what it was asked to open: the page's URL.
    let record = dir.0.join("opened");
    let fake = dir.0.join("xdg-open");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", record.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    let path = std::env::join_paths([
        dir.0.clone(),
        PathBuf::from("/bin"),
        PathBuf::from("/usr/bin"),
    ])
    .unwrap();
    let lines = demo_open_with_path(Path::new(&path), 4);
    let page = lines
        .iter()
        .find_map(|l| {
            l.split_once("app origin):")
                .map(|(_, url)| url.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no page URL in {lines:?}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !record.is_file() {
        assert!(Instant::now() < deadline, "xdg-open was not run: {lines:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), page);
}
