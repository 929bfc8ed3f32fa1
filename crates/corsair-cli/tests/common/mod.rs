//! What the newcomer tests share: servers on 127.0.0.1, the built `corsair` binary, a proxy
//! process, and raw HTTP/1.1 exchanges that nothing in between can tidy up.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;

/// Serves `app` on 127.0.0.1 and returns its base URL, `http://127.0.0.1:PORT`.
pub async fn serve(app: Router) -> String {
    let port = corsair_testkit::serve_loopback(app, "test server")
        .await
        .unwrap();
    format!("http://127.0.0.1:{port}")
}

/// A port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs the built `corsair` with `args`, off the async runtime.
pub async fn corsair(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `corsair proxy` (the test kit's), with blocking waits on its output.
pub struct Proxy(corsair_testkit::ProxyProcess);

impl std::ops::Deref for Proxy {
    type Target = corsair_testkit::ProxyProcess;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Proxy {
    /// Starts `corsair proxy ARGS` (give --listen) and waits for its listening line.
    pub fn start(args: &[&str]) -> Proxy {
        Proxy(
            corsair_testkit::ProxyProcess::start_listening_as_given(
                corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")),
                args,
            )
            .unwrap(),
        )
    }

    /// Waits (at most 5 s) for a line of standard error containing `needle`.
    pub fn wait_stderr(&self, needle: &str) -> String {
        Self::wait(&self.0.stderr, needle)
    }

    /// Waits (at most 5 s) for a line of standard output containing `needle`.
    pub fn wait_stdout(&self, needle: &str) -> String {
        Self::wait(&self.0.stdout, needle)
    }

    fn wait(lines: &Mutex<Vec<String>>, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no {needle:?} in {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.0.stderr_lines()
    }
}

/// One raw HTTP/1.1 exchange: the response's status, headers (lowercase names, in order) and
/// body.
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `headers` to `addr` (`host:port`) and reads the whole answer.
pub async fn raw(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Raw {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .unwrap()
}
