//! `--tls-cert` and `--tls-key`: the listener speaks TLS (rustls), offering HTTP/2 and
//! HTTP/1.1 by ALPN; the certificate and key are read again with the policy (SIGHUP,
//! `--watch`), and a pair that does not load leaves the old one in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate files and the configuration made from them.
pub(super) struct Tls {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    pub(super) config: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Loads the pair.
    ///
    /// # Errors
    /// What is wrong with either file, naming it.
    pub(super) fn new(cert: PathBuf, key: PathBuf) -> Result<Self, String> {
        let config = load(&cert, &key)?;
        Ok(Tls {
            cert,
            key,
            config: ArcSwap::from(config),
        })
    }

    /// Loads the pair again; on failure the old configuration stays.
    pub(super) fn reload(&self) -> Result<(), String> {
        self.config.store(load(&self.cert, &self.key)?);
        Ok(())
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "--tls-cert {}: no PEM certificate chain can be read from it ({e})",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it: give the PEM chain, the server's certificate first",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "--tls-key {}: no PEM private key can be read from it ({e})",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            format!(
                "--tls-key {} does not go with --tls-cert {}: {e}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
