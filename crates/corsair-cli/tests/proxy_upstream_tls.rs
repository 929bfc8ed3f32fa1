//! `corsair proxy` in front of an `https://` upstream whose certificate a CA made here signed:
//! with `--upstream-ca` the requests pass with the policy's CORS headers, and a request lost with
//! a pooled TLS connection in the keep-alive race is sent again; without it the proxy answers 502
//! with the CORS headers and logs why; a file that holds no certificate is a usage error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const ORIGIN: &str = "http://localhost:3000";

/// A fresh CA (the testkit's, whose server certificate covers `127.0.0.1`), written to a PEM
/// file, and a TLS acceptor with a certificate it signed.
fn local_ca(name: &str) -> (PathBuf, tokio_rustls::TlsAcceptor) {
    let ca = corsair_testkit::tls::LocalCa::new().unwrap();
    let file = std::env::temp_dir().join(format!(
        "corsair-upstream-ca-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&file, ca.ca_pem()).unwrap();
    (file, ca.acceptor())
}

/// The request lines the upstream read, with the TLS connection (numbered from 1) and the
/// request's place on it (0 for a new connection's first).
type Log = Arc<Mutex<Vec<(usize, usize, String)>>>;

/// An HTTPS upstream on 127.0.0.1: `/lost…` on a kept-alive connection is read and the
/// connection closed (TLS `close_notify`, then FIN) without a byte of answer; anything else is
/// answered `200` with `tls connection C, request N` (and a CORS header of its own, which the
/// proxy replaces).
async fn upstream(acceptor: tokio_rustls::TlsAcceptor) -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    // Connections are numbered once their handshake is done: the proxy's probe at start, a
    // TCP connection alone, is not one.
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            let handshakes = handshakes.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let conn = handshakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    serve_connection(tls, conn, seen).await;
                }
            });
        }
    });
    (url, log)
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, conn: usize, seen: Log) {
    let mut buf = Vec::new();
    for nth in 0.. {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head: Vec<u8> = buf.drain(..head_end).collect();
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let lost = line.starts_with("GET /lost") && nth > 0;
        seen.lock().unwrap().push((conn, nth, line));
        if lost {
            let _ = io.shutdown().await;
            return;
        }
        let body = format!("tls connection {conn}, request {nth}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\naccess-control-allow-origin: *\r\n\r\n{body}",
            body.len()
        );
        if io.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A `GET path` with this test's `Origin` to the proxy on a new connection: the response head
/// (lowercase) and body (read by `Content-Length`).
async fn get(proxy: &str, path: &str) -> (String, String) {
    let run = async {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: proxy\r\norigin: {ORIGIN}\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        read_answer(&mut tcp).await
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s to {path}"))
}

async fn read_answer(tcp: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "closed after {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    tcp.read_exact(&mut body).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn proxy(upstream: &str, extra: &[&str]) -> corsair_testkit::ProxyProcess {
    let mut args = vec![
        "--upstream",
        upstream,
        "--allow-origin",
        ORIGIN,
        "--metrics",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    corsair_testkit::ProxyProcess::start(
        corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")),
        &args,
    )
    .unwrap()
}

/// The value of `name` (unlabelled) on the proxy's `--metrics` listener now.
async fn metric(proxy: &corsair_testkit::ProxyProcess, name: &str) -> u64 {
    proxy.metric(name).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_trusted_through_upstream_ca_and_refused_without_it() {
    let (ca, acceptor) = local_ca("trust");
    let (up, log) = upstream(acceptor).await;
    let trusting = proxy(&up, &["--upstream-ca", ca.to_str().unwrap()]);
    let (head, body) = get(&trusting.addr, "/ok?trusted").await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert_eq!(body, "tls connection 1, request 0");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ORIGIN}\r\n")),
        "{head}"
    );
    assert!(!head.contains("access-control-allow-origin: *"), "{head}");

    // Without the CA: the certificate is not trusted, nothing is sent; a 502 the page can read,
    // and the reason in the proxy's log.
    let refusing = proxy(&up, &[]);
    let (head, body) = get(&refusing.addr, "/ok?untrusted").await;
    assert!(head.starts_with("http/1.1 502 "), "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ORIGIN}\r\n")),
        "{head}"
    );
    let why = format!("corsair proxy: upstream failed: TLS failure: {up}/ok?untrusted: invalid peer certificate: UnknownIssuer");
    assert_eq!(body, format!("{why}\n"));
    assert!(
        refusing.stderr_contains(&why).await,
        "{:?}",
        refusing.stderr_lines()
    );
    assert_eq!(
        metric(&refusing, "corsair_proxy_upstream_resent_total").await,
        0
    );
    let lines: Vec<String> = log.lock().unwrap().iter().map(|s| s.2.clone()).collect();
    assert_eq!(lines, ["GET /ok?trusted HTTP/1.1"]);
    let _ = std::fs::remove_file(ca);
}

/// The keep-alive race over TLS: the upstream reads a GET on a pooled TLS connection and closes
/// it; the proxy sends it again on a new TLS connection, and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_lost_with_a_pooled_tls_connection_is_sent_again() {
    let (ca, acceptor) = local_ca("resend");
    let (up, log) = upstream(acceptor).await;
    // One worker: each keeps its own upstream connections, and the second GET comes on a new
    // client connection, which must find the first's upstream connection pooled.
    let proxy = proxy(
        &up,
        &["--upstream-ca", ca.to_str().unwrap(), "--workers", "1"],
    );
    let (head, body) = get(&proxy.addr, "/ok?warm").await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert_eq!(body, "tls connection 1, request 0");
    // Time for the proxy's connection task to see the end of the answer and take requests.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (head, body) = get(&proxy.addr, "/lost").await;
    assert!(head.starts_with("http/1.1 200 "), "{head}: {body}");
    assert_eq!(body, "tls connection 2, request 0");
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (1, 0, "GET /ok?warm HTTP/1.1".to_owned()),
            (1, 1, "GET /lost HTTP/1.1".to_owned()),
            (2, 0, "GET /lost HTTP/1.1".to_owned()),
        ]
    );
    assert_eq!(
        metric(&proxy, "corsair_proxy_upstream_resent_total").await,
        1
    );
    let _ = std::fs::remove_file(ca);
}

/// A `--upstream-ca` (or `CORSAIR_UPSTREAM_CA`) that cannot be read or holds no certificate:
/// exit 2 and one line naming the file, before listening.
#[test]
fn a_bad_upstream_ca_file_is_a_usage_error() {
    let dir = std::env::temp_dir();
    let missing = dir.join(format!("corsair-no-such-ca-{}.pem", std::process::id()));
    let empty = dir.join(format!("corsair-not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let broken = dir.join(format!("corsair-broken-ca-{}.pem", std::process::id()));
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = |flag: bool, file: &PathBuf| {
        let mut cmd = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")));
        cmd.args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "https://127.0.0.1:9",
            "--allow-origin",
            ORIGIN,
        ]);
        if flag {
            cmd.arg("--upstream-ca").arg(file);
        } else {
            cmd.env("CORSAIR_UPSTREAM_CA", file);
        }
        // Bounded: a proxy that took the file would run until killed.
        let out = corsair_testkit::proxy::output_within(&mut cmd, Duration::from_secs(5)).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(true, &missing);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out, "");
    let start = format!(
        "error: --upstream-ca: cannot read CA file {}: ",
        missing.display()
    );
    assert!(err.starts_with(&start) && err.lines().count() == 1, "{err}");
    let (code, _, err) = run(false, &empty);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "error: --upstream-ca: no certificate in {}\n",
            empty.display()
        )
    );
    let (code, _, err) = run(true, &broken);
    assert_eq!(code, Some(2), "{err}");
    let start = format!(
        "error: --upstream-ca: invalid certificate in {}: ",
        broken.display()
    );
    assert!(err.starts_with(&start) && err.lines().count() == 1, "{err}");
    for f in [empty, broken] {
        let _ = std::fs::remove_file(f);
    }
}
