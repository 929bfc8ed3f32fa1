//! A local certificate authority for `https` page origins, as mkcert makes one: a fresh CA per
//! run, and one server certificate for every `*.test` name, `localhost` and `127.0.0.1`.

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A fresh CA and a server configuration with a certificate it signed.
pub struct LocalCa {
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// The names the server certificate covers.
const NAMES: [&str; 5] = [
    "page.test",
    "sandbox.test",
    "api.test",
    "localhost",
    "*.test",
];

impl LocalCa {
    /// Makes the CA and the server certificate.
    ///
    /// # Errors
    /// When a key or certificate cannot be made.
    pub fn new() -> Result<LocalCa, String> {
        let err = |e: rcgen::Error| format!("local CA: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "corsair test CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(NAMES.map(str::to_owned).to_vec()).map_err(err)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS config: {e}"))?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| format!("TLS config: {e}"))?;
        Ok(LocalCa {
            ca_pem: ca_cert.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A TLS acceptor with the server certificate, for a test's own server.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }

    /// Serves `app` over TLS on an ephemeral 127.0.0.1 port in the background; returns the port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn serve_loopback(&self, app: Router, what: &str) -> Result<u16, String> {
        let listener =
            tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| format!("bind {what}: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("{what} address: {e}"))?
            .port();
        let acceptor = self.acceptor.clone();
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
        Ok(port)
    }
}
