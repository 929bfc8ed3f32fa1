//! `corsair proxy` sends a request again when a kept-alive upstream connection closes under it
//! before any response (the keep-alive race), and only when that is safe: a pooled connection,
//! an idempotent method, an empty body, no upgrade, no byte of a response. Against an upstream
//! written here, byte by byte, that records every request it reads and on which connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running proxy process; killed when dropped. One worker: each worker keeps its own upstream
/// connections, and a test's second request must find the first's connection pooled even when
/// it comes on another client connection.
fn proxy(upstream: &str) -> corsair_testkit::ProxyProcess {
    corsair_testkit::ProxyProcess::start(
        corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")),
        &[
            "--upstream",
            upstream,
            "--allow-origin",
            "http://localhost:3000",
            "--workers",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ],
    )
    .unwrap()
}

/// `corsair_proxy_upstream_resent_total` as the proxy's `--metrics` listener says now.
async fn resent(proxy: &corsair_testkit::ProxyProcess) -> u64 {
    proxy
        .metric("corsair_proxy_upstream_resent_total")
        .await
        .unwrap()
}

/// One request as the upstream read it.
#[derive(Clone)]
struct Seen {
    /// The upstream connection, numbered from 1 in the order accepted.
    conn: usize,
    /// Its place on that connection: 0 for the first request of a new connection.
    nth: usize,
    /// The request's bytes, head and body, exactly as they came.
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.bytes);
        write!(f, "connection {} #{}: {text:?}", self.conn, self.nth)
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The upstream, by path:
/// - `/lost…`: on a connection that has answered before (kept alive), read and then closed
///   without a byte of answer (with `reset` in the path, by a TCP reset); on a new one,
///   answered;
/// - `/always-lost…`: closed without a byte of answer on any connection;
/// - `/partial…`: on a kept-alive connection, the start of a response head and then closed;
///   on a new one, answered;
/// - anything else: answered `200` with `connection C, request N` (no body for `HEAD`).
async fn upstream() -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            conn += 1;
            tokio::spawn(serve_connection(tcp, conn, seen.clone()));
        }
    });
    (url, log)
}

async fn serve_connection(mut tcp: TcpStream, conn: usize, seen: Log) {
    let mut buf = Vec::new();
    for nth in 0.. {
        let Some(bytes) = read_request(&mut tcp, &mut buf).await else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut line = text.split(' ');
        let method = line.next().unwrap_or_default().to_owned();
        let path = line.next().unwrap_or_default().to_owned();
        seen.lock().unwrap().push(Seen { conn, nth, bytes });
        let kept_alive = nth > 0;
        if path.starts_with("/always-lost") || (path.starts_with("/lost") && kept_alive) {
            if path.contains("reset") {
                // SO_LINGER 0: the close sends RST instead of FIN.
                tcp.set_zero_linger().unwrap();
            }
            return;
        }
        if path.starts_with("/partial") && kept_alive {
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-le").await;
            let _ = tcp.flush().await;
            return;
        }
        let body = format!("connection {conn}, request {nth}");
        let mut resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        if method != "HEAD" {
            resp.push_str(&body);
        }
        if tcp.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request (its head, then its body by `Content-Length` or to the chunked body's
/// last chunk) from `tcp`, `buf` holding what was read beyond the previous one. None once the
/// connection ends.
async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(tcp, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let end = if head.contains("transfer-encoding: chunked") {
        loop {
            if let Some(i) = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break head_end + i + 5;
            }
            read_more(tcp, buf).await?;
        }
    } else {
        while buf.len() < head_end + length {
            read_more(tcp, buf).await?;
        }
        head_end + length
    };
    Some(buf.drain(..end).collect())
}

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// Sends `head` (the request line and fields, without the blank line) and `body` to the proxy on
/// a new connection; the response's status and body (read by `Content-Length`; none for HEAD).
async fn exchange(proxy: &str, head: &str, body: &str) -> (u16, String) {
    let run = async {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        let req = format!("{head}\r\nhost: proxy\r\norigin: http://localhost:3000\r\n\r\n{body}");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                tcp.read(&mut byte).await.unwrap(),
                1,
                "closed after {got:?}"
            );
            got.push(byte[0]);
        }
        let got = String::from_utf8(got).unwrap().to_lowercase();
        let status = got[9..12].parse().unwrap();
        let length: usize = got
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0; if head.starts_with("HEAD ") { 0 } else { length }];
        tcp.read_exact(&mut body).await.unwrap();
        (status, String::from_utf8(body).unwrap())
    };
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap_or_else(|_| panic!("no answer within 5 s to {head:?}"))
}

/// The requests the upstream read whose request line contains `path`.
fn seen(log: &Log, path: &str) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| {
            let text = String::from_utf8_lossy(&s.bytes);
            text.lines().next().unwrap_or_default().contains(path)
        })
        .cloned()
        .collect()
}

/// Sends a GET the upstream answers, so that the proxy holds a kept-alive connection, and
/// returns that connection's number.
async fn warm(proxy: &str, log: &Log, case: usize) -> usize {
    let path = format!("/ok?warm={case}");
    let (status, _) = exchange(proxy, &format!("GET {path} HTTP/1.1"), "").await;
    assert_eq!(status, 200);
    let warm = seen(log, &format!("{path} "));
    // Time for the proxy's connection task to see the end of the answer and take requests.
    tokio::time::sleep(Duration::from_millis(20)).await;
    warm[0].conn
}

/// The keep-alive race: the upstream reads the request on a kept-alive connection and closes
/// it. GET, HEAD, OPTIONS, TRACE, PUT and DELETE without a body are sent again once, on a new
/// connection, byte for byte as the first time, and get that connection's answer; POST and
/// PATCH, a body, and an upgrade are not sent again: a 502, and the upstream saw them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lost_on_a_kept_alive_connection_is_sent_again_once_when_safe() {
    let (up, log) = upstream().await;
    let proxy = proxy(&up);
    let upgrade = "connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==";
    // (method, path, extra fields, body, sent again)
    let cases: [(&str, &str, &str, &str, bool); 13] = [
        ("GET", "/lost", "", "", true),
        ("GET", "/lost-reset", "", "", true),
        ("HEAD", "/lost", "", "", true),
        ("OPTIONS", "/lost", "", "", true),
        ("TRACE", "/lost", "", "", true),
        ("PUT", "/lost", "content-length: 0", "", true),
        ("DELETE", "/lost", "", "", true),
        ("POST", "/lost", "content-length: 0", "", false),
        ("PATCH", "/lost", "content-length: 0", "", false),
        ("PUT", "/lost", "content-length: 3", "abc", false),
        (
            "PUT",
            "/lost",
            "transfer-encoding: chunked",
            "3\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        ("POST", "/lost-reset", "content-length: 0", "", false),
        ("GET", "/lost", upgrade, "", false),
    ];
    for (case, (method, path, extra, body, again)) in cases.into_iter().enumerate() {
        let what = format!("{method} {path} {extra:?}");
        let kept = warm(&proxy.addr, &log, case).await;
        let resent_before = resent(&proxy).await;
        let target = format!("{path}?case={case}");
        let mut head = format!("{method} {target} HTTP/1.1");
        if !extra.is_empty() {
            head = format!("{head}\r\n{extra}");
        }
        let (status, answer) = exchange(&proxy.addr, &head, body).await;
        let seen = seen(&log, &format!("{target} "));
        assert_eq!(
            resent(&proxy).await - resent_before,
            u64::from(again),
            "{what}: corsair_proxy_upstream_resent_total"
        );
        // First on the kept-alive connection, after the warm-up request.
        assert!(!seen.is_empty(), "{what}: the upstream never saw it");
        assert_eq!((seen[0].conn, seen[0].nth > 0), (kept, true), "{what}");
        if again {
            assert_eq!(status, 200, "{what}");
            assert_eq!(seen.len(), 2, "{what}: {seen:?}");
            assert_ne!(seen[1].conn, kept, "{what}");
            assert_eq!(seen[1].nth, 0, "{what}: not on a new connection");
            assert_eq!(
                String::from_utf8_lossy(&seen[1].bytes),
                String::from_utf8_lossy(&seen[0].bytes),
                "{what}: sent again differently"
            );
            if method != "HEAD" {
                assert_eq!(answer, format!("connection {}, request 0", seen[1].conn));
            }
        } else {
            assert_eq!(status, 502, "{what}: {answer}");
            assert_eq!(seen.len(), 1, "{what}: {seen:?}");
        }
    }
}

/// A request on a new connection is never sent again: an upstream that closes (or crashes) on
/// it gets it once, and the client a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lost_on_a_new_connection_is_not_sent_again() {
    let (up, log) = upstream().await;
    let proxy = proxy(&up);
    for (case, path) in ["/always-lost", "/always-lost-reset"].iter().enumerate() {
        let target = format!("{path}?case={case}");
        let (status, answer) = exchange(&proxy.addr, &format!("GET {target} HTTP/1.1"), "").await;
        assert_eq!(status, 502, "{path}: {answer}");
        let seen = seen(&log, &format!("{target} "));
        assert_eq!(seen.len(), 1, "{path}: {seen:?}");
        assert_eq!(seen[0].nth, 0, "{path}: on a kept-alive connection");
    }
    assert_eq!(resent(&proxy).await, 0);
}

/// A connection that closes within the response head has answered, in part: the request is
/// not sent again, and the client gets a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_answer_began_is_not_sent_again() {
    let (up, log) = upstream().await;
    let proxy = proxy(&up);
    for (case, method) in ["GET", "HEAD"].iter().enumerate() {
        let kept = warm(&proxy.addr, &log, case).await;
        let target = format!("/partial?case={case}");
        let (status, answer) =
            exchange(&proxy.addr, &format!("{method} {target} HTTP/1.1"), "").await;
        assert_eq!(status, 502, "{method}: {answer}");
        let seen = seen(&log, &format!("{target} "));
        assert_eq!(seen.len(), 1, "{method}: {seen:?}");
        assert_eq!((seen[0].conn, seen[0].nth > 0), (kept, true), "{method}");
    }
    assert_eq!(resent(&proxy).await, 0);
}
