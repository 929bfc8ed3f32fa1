//! `corsair check` over HTTPS (rustls): a local CA, as mkcert makes, trusted with `--cacert`;
//! without it the check fails with a one-line TLS error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::process::Command;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::Policy;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Starts an HTTPS server for `localhost` whose certificate a fresh CA signed; returns its
/// port and the CA's PEM.
async fn https_server() -> (u16, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let cors = Policy::builder()
        .allow_origins(["https://app.example.com"])
        .allow_credentials(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "{\"msg\":\"success\"}" }))
        .layer(CorsLayer::new(cors));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                }
            });
        }
    });
    (port, ca_cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_trusted_local_ca() {
    let (port, ca) = https_server().await;
    let dir = std::env::temp_dir().join(format!("corsair-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let url = format!("https://localhost:{port}/api");

    let run = |extra: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(corsair_testkit::corsair_bin(env!("CARGO_BIN_EXE_corsair")))
                .args([
                    "check",
                    &url,
                    "--origin",
                    "https://app.example.com",
                    "--credentials",
                    "include",
                ])
                .args(extra)
                .output()
                .unwrap()
        })
    };
    let trusted = run(vec!["--cacert".into(), ca_file.display().to_string()])
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&trusted.stdout);
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(
        out.starts_with(&format!(
            "ALLOWED  GET {url} from https://app.example.com (credentials: include"
        )),
        "{out}"
    );

    let untrusted = run(vec![]).await.unwrap();
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(2));
    assert!(
        err.starts_with(&format!("error: TLS failure: {url}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
