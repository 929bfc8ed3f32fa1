//! The command's bounds (docs/LIMITS.md): `corsair proxy`'s limits on a request head, at and past
//! each bound, and the durations both subcommands accept (positive, capped). The upstream is a
//! raw TCP server with no limits of its own, so that every 431 seen here is the proxy's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// An upstream that reads a request head of any size and answers `200 ok`.
fn raw_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 65536];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

struct Proxy(corsair_testkit::ProxyProcess);

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        Proxy(
            corsair_testkit::ProxyProcess::start(
                corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")),
                &[
                    "--upstream",
                    &format!("http://127.0.0.1:{upstream}"),
                    "--allow-origin",
                    "http://localhost:8000",
                ],
            )
            .unwrap(),
        )
    }

    /// Sends `GET /` with `Host` and `Connection: close` plus `extra` header lines (each ending
    /// in CRLF); returns the status code.
    fn status(&self, extra: &[u8]) -> u16 {
        let mut conn = TcpStream::connect(&self.0.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut req = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_vec();
        req.extend_from_slice(extra);
        req.extend_from_slice(b"\r\n");
        // The proxy may answer 431 and close before reading everything: ignore write errors.
        let _ = conn.write_all(&req);
        let mut resp = Vec::new();
        let _ = conn.read_to_end(&mut resp);
        let line = String::from_utf8_lossy(&resp);
        line.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", &line[..line.len().min(200)]))
    }
}

fn lines(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("x-h{i}: v\r\n").into_bytes())
        .collect()
}

#[test]
fn a_request_head_of_100_header_lines_passes_and_101_is_refused_with_431() {
    let proxy = Proxy::start(raw_upstream());
    // Host and Connection are two of the hundred.
    assert_eq!(proxy.status(&lines(98)), 200);
    assert_eq!(proxy.status(&lines(99)), 431);
}

/// `--max-header-bytes` (64 KiB by default) counts the head as sent: request line and header
/// lines with their CRLFs. Here `GET / HTTP/1.1` (16 bytes), `host: x` (9), `connection:
/// close` (19) and `x-big: …` (9 + n): 53 + n bytes.
#[test]
fn a_request_head_of_64_kib_passes_one_byte_more_gets_431_and_1_mib_gets_431_from_hyper() {
    let proxy = Proxy::start(raw_upstream());
    let header = |n: usize| {
        let mut h = b"x-big: ".to_vec();
        h.extend(std::iter::repeat_n(b'a', n));
        h.extend_from_slice(b"\r\n");
        h
    };
    assert_eq!(proxy.status(&header(65536 - 53)), 200);
    assert_eq!(proxy.status(&header(65536 - 52)), 431);
    assert_eq!(proxy.status(&header(1024 * 1024)), 431);
}

#[test]
fn durations_must_be_positive_numbers_of_seconds() {
    for flag in ["--connect-timeout", "--timeout", "--drain-timeout"] {
        for bad in ["0", "-1", "NaN", "inf"] {
            let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
                .arg("proxy")
                .args(["--listen", "127.0.0.1:0"])
                .args(["--upstream", "http://127.0.0.1:9"])
                .args(["--allow-origin", "http://localhost:8000"])
                .arg(format!("{flag}={bad}"))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{flag}={bad}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(flag) && err.contains("is not a positive number of seconds"),
                "{flag}={bad}: {err}"
            );
        }
    }
}

#[test]
fn forwarded_headers_takes_known_names_and_none_alone() {
    for (bad, says) in [
        ("none,forwarded", "cannot come with a header's name"),
        (
            "x-forwarded-port",
            "possible values: forwarded, x-forwarded-for",
        ),
    ] {
        let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .arg("proxy")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--upstream", "http://127.0.0.1:9"])
            .args(["--allow-origin", "http://localhost:8000"])
            .args(["--forwarded-headers", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--forwarded-headers") && err.contains(says),
            "{bad}: {err}"
        );
    }
}

#[test]
fn huge_durations_are_capped_not_a_panic() {
    // Duration::from_secs_f64(1e300) would panic: the proxy caps at a day and starts.
    let mut proxy = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .arg("proxy")
        .args(["--listen", "127.0.0.1:0"])
        .args(["--upstream", "http://127.0.0.1:9"])
        .args(["--allow-origin", "http://localhost:8000"])
        .args(["--timeout", "1e300", "--connect-timeout", "1e300"])
        .args(["--drain-timeout", "1e300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert!(
        first.starts_with("corsair proxy listening on http://"),
        "{first:?}"
    );
    // `corsair check` caps at a day too: a refused connection is still reported as one.
    let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args([
            "check",
            "http://127.0.0.1:9/",
            "--origin",
            "http://localhost:8000",
        ])
        .args(["--timeout", "1e300"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connection refused")
            || String::from_utf8_lossy(&out.stdout).contains("connection refused"),
        "{out:?}"
    );
}
