//! Network failures are classified by type, not by their wording, and say what to type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// `https://` against a port that speaks plain HTTP: the error names the fix.
#[test]
fn https_against_plain_http_suggests_http() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A plain-HTTP server: answers whatever arrives (a TLS ClientHello) with an HTTP response.
    let server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
        .args([
            "check",
            &format!("https://127.0.0.1:{port}/api"),
            "--origin",
            "http://localhost:8000",
            "--timeout",
            "5",
        ])
        .output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: TLS failure: https://127.0.0.1:{port}/api: the server answered plain HTTP; try http://127.0.0.1:{port}/api\n"
        )
    );
}
