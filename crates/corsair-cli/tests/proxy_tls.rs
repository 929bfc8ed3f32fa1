//! `corsair proxy` with TLS (a local CA made here) and HTTP/2 to clients, checked with curl:
//! HTTP/2 by ALPN and HTTP/1.1 over TLS, h2c with prior knowledge on a plain listener, the
//! certificate reloaded on SIGHUP, a bad one refused while the old one stays, and a connection
//! silent before its handshake served once it speaks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::any;
use axum::Router;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a certificate it signed for `localhost`: (CA PEM, chain PEM, key PEM).
fn local_ca(name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // OpenSSL (curl) takes a certificate whose issuer is its subject for a self-signed one:
    // the CA and the server need names of their own (rcgen gives both the same default).
    ca_params.distinguished_name.push(DnType::CommonName, name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// An upstream answering every path with the request's `x-forwarded-proto`.
async fn upstream() -> String {
    let app = Router::new().fallback(any(|h: HeaderMap| async move {
        format!(
            "proto={}",
            h.get("x-forwarded-proto")
                .map_or("-", |v| v.to_str().unwrap())
        )
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Proxy {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(args: &[&str]) -> Proxy {
        let mut child = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args(["proxy", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("did not start: {first:?} {:?}", stderr.lock().unwrap()));
        Proxy {
            child,
            port,
            stderr,
        }
    }

    fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    async fn stderr_contains(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl; returns its exit code, the response head's first line, the
/// `access-control-allow-origin` value and the body.
async fn curl(args: Vec<String>) -> (i32, String, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args([
                "-s",
                "-D",
                "-",
                "--max-time",
                "10",
                "-H",
                "Origin: http://localhost:3000",
            ])
            .args(&args)
            .output()
            .expect("curl is not installed: scripts/test.sh installs it (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.lines().next().unwrap_or_default().trim().to_owned();
        let acao = head
            .lines()
            .find_map(|l| l.strip_prefix("access-control-allow-origin: "))
            .unwrap_or_default()
            .trim()
            .to_owned();
        (
            out.status.code().unwrap_or(-1),
            status,
            acao,
            body.to_owned(),
        )
    })
    .await
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_http2_by_alpn_and_certificates_reloaded_with_the_policy() {
    let up = upstream().await;
    let dir = std::env::temp_dir().join(format!("corsair-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca1, chain1, key1) = local_ca("corsair test CA 1");
    let ca1 = write(&dir, "ca1.pem", &ca1);
    let cert = write(&dir, "cert.pem", &chain1);
    let key = write(&dir, "key.pem", &key1);
    let policy = write(
        &dir,
        "cors.toml",
        "allow_origins = [\"http://localhost:3000\"]\n",
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let proxy = Proxy::start(&[
        "--upstream",
        &up,
        "--config",
        &s(&policy),
        "--tls-cert",
        &s(&cert),
        "--tls-key",
        &s(&key),
    ]);
    let url = format!("https://localhost:{}/api", proxy.port);
    let resolve = format!("localhost:{}:127.0.0.1", proxy.port);
    let with = |ca: &Path, version: &str| {
        vec![
            version.to_owned(),
            "--cacert".to_owned(),
            s(ca),
            "--resolve".to_owned(),
            resolve.clone(),
            url.clone(),
        ]
    };
    assert_eq!(
        curl(with(&ca1, "--http2")).await,
        (
            0,
            "HTTP/2 200".to_owned(),
            "http://localhost:3000".to_owned(),
            "proto=https".to_owned()
        )
    );
    let (code, status, acao, _) = curl(with(&ca1, "--http1.1")).await;
    assert_eq!(
        (code, status.as_str(), acao.as_str()),
        (0, "HTTP/1.1 200 OK", "http://localhost:3000")
    );

    // A new certificate from another CA, picked up on SIGHUP with the policy.
    let (ca2, chain2, key2) = local_ca("corsair test CA 2");
    let ca2 = write(&dir, "ca2.pem", &ca2);
    write(&dir, "cert.pem", &chain2);
    write(&dir, "key.pem", &key2);
    proxy.hup();
    assert!(proxy.stderr_contains("certificate reloaded").await);
    assert_eq!(curl(with(&ca2, "--http2")).await.1, "HTTP/2 200");
    // curl's exit status 60: the peer's certificate cannot be verified with the old CA.
    assert_eq!(curl(with(&ca1, "--http2")).await.0, 60);

    // A key that does not go with the certificate: refused, the current pair stays.
    write(&dir, "key.pem", &key1);
    proxy.hup();
    assert!(
        proxy
            .stderr_contains("certificate rejected, keeping the current one")
            .await
    );
    assert!(proxy.stderr_contains("does not go with --tls-cert").await);
    assert_eq!(curl(with(&ca2, "--http2")).await.1, "HTTP/2 200");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_with_prior_knowledge_and_http1_for_an_h2c_upgrade_offer() {
    let up = upstream().await;
    let proxy = Proxy::start(&["--upstream", &up, "--allow-origin", "http://localhost:3000"]);
    let url = format!("http://127.0.0.1:{}/api", proxy.port);
    assert_eq!(
        curl(vec!["--http2-prior-knowledge".to_owned(), url.clone()]).await,
        (
            0,
            "HTTP/2 200".to_owned(),
            "http://localhost:3000".to_owned(),
            "proto=http".to_owned()
        )
    );
    // curl --http2 on http:// offers `Upgrade: h2c`: the request is answered in HTTP/1.1 (the
    // offer is not passed to the upstream as a WebSocket's would be).
    let (code, status, acao, body) = curl(vec!["--http2".to_owned(), url]).await;
    assert_eq!(
        (code, status.as_str(), acao.as_str(), body.as_str()),
        (0, "HTTP/1.1 200 OK", "http://localhost:3000", "proto=http")
    );
}

/// HTTP/2 may carry Cookie in several fields; the HTTP/1.1 upstream gets one, the fields
/// joined with "; " (RFC 9113 §8.2.3), where it might otherwise read only the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cookie_fields_reach_the_http1_upstream_as_one() {
    let app = Router::new().fallback(any(|h: HeaderMap| async move {
        h.get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("|")
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let proxy = Proxy::start(&["--upstream", &up, "--allow-origin", "http://localhost:3000"]);
    let url = format!("http://127.0.0.1:{}/api", proxy.port);
    let args = |extra: &[&str]| {
        let mut args = vec!["--http2-prior-knowledge".to_owned(), url.clone()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let (_, status, _, body) = curl(args(&["-H", "Cookie: a=1", "-H", "Cookie: b=2"])).await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/2 200", "a=1; b=2"));
    // One field stays as it is.
    let (_, _, _, body) = curl(args(&["-H", "Cookie: a=1; b=2"])).await;
    assert_eq!(body, "a=1; b=2");
}

#[test]
fn a_bad_certificate_or_key_is_a_usage_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("corsair-proxy-badtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, chain, key) = local_ca("corsair test CA");
    let cert = write(&dir, "cert.pem", &chain);
    let key = write(&dir, "key.pem", &key);
    let junk = write(&dir, "junk.pem", "not pem\n");
    let run = |extra: &[&str]| {
        let out = Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:1",
            ])
            .args(["--allow-origin", "http://localhost:3000"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "--tls-cert",
        junk.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "error: --tls-cert {}: no certificate in it",
            junk.display()
        )),
        "{err}"
    );
    let (code, err) = run(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "error: --tls-key {}: no PEM private key",
            junk.display()
        )),
        "{err}"
    );
    let (code, err) = run(&["--tls-cert", cert.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--tls-key <FILE>"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A TLS connection that says nothing for 600 ms is parked (out of its task) before its
/// handshake, and is served over TLS once its ClientHello comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_silent_before_its_handshake_is_served_when_it_speaks() {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = upstream().await;
    let dir = std::env::temp_dir().join(format!("corsair-proxy-tls-park-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, chain, key) = local_ca("corsair test CA park");
    let cert = write(&dir, "cert.pem", &chain);
    let key = write(&dir, "key.pem", &key);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let proxy = Proxy::start(&[
        "--upstream",
        &up,
        "--allow-origin",
        "http://localhost:3000",
        "--tls-cert",
        &s(&cert),
        "--tls-key",
        &s(&key),
    ]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("no handshake within 5 s")
    .unwrap();
    tls.write_all(b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("proto=https"), "{answer}");
    let _ = std::fs::remove_dir_all(dir);
}
