//! The HTTP clients the subcommands share: HTTP/1.1 over TCP or rustls (bundled web PKI roots),
//! with a timeout, and failures explained in one line. `corsair check` and `corsair audit` use
//! [`RawClient`], which sends and reads the bytes browsers do; the proxy forwards through
//! hyper's HTTP/1 connections over [`https_connector`].

mod h1;

pub use h1::{RawClient, RawHead, MAX_FIELDS, MAX_HEAD, MAX_INTERIM, MAX_LINE};

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The bundled roots and the certificates of a PEM file.
fn roots_with_ca_file(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = webpki_roots();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    let mut added = 0;
    for cert in certs {
        let cert = cert.map_err(|e| format!("invalid certificate in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(roots)
}

/// A TLS client configuration (ring, the safe default versions) trusting `roots`.
fn tls_config(roots: rustls::RootCertStore) -> Option<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .ok()
}

/// A connector for plain and TLS connections trusting the bundled roots, with an optional
/// connect timeout; for clients of any body type (the proxy streams bodies).
pub fn https_connector(
    connect_timeout: Option<Duration>,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    connector(webpki_roots(), connect_timeout)
}

/// [`https_connector`] trusting also the certificates of a PEM file (one or more: a private
/// CA's, say), as `corsair proxy --upstream-ca` does.
///
/// # Errors
/// A file that cannot be read, or holds no certificate or an unusable one, naming it.
pub fn https_connector_trusting(
    ca_file: &std::path::Path,
    connect_timeout: Option<Duration>,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, String> {
    Ok(connector(roots_with_ca_file(ca_file)?, connect_timeout))
}

fn connector(
    roots: rustls::RootCertStore,
    connect_timeout: Option<Duration>,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let tls = tls_config(roots);
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    // A request goes out at once (Nagle's algorithm would hold the last piece of a streamed
    // body until the upstream's ACK).
    http.set_nodelay(true);
    match tls {
        Some(tls) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
        // The ring provider always supports the default versions; should it not, plain HTTP
        // still works and HTTPS fails with a TLS error.
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
    }
}

/// How much of a response body [`RawClient::exchange`] keeps (to recognize a proxy's own error
/// page).
pub const BODY_START: usize = 512;

/// Why a request could not be made or answered: one line each, naming the URL.
#[derive(Debug)]
pub enum NetError {
    /// The URL, method or a header cannot be sent.
    Invalid(String),
    /// Nothing listens on the port.
    Refused {
        /// The URL.
        url: String,
    },
    /// The host name does not resolve.
    Unresolved {
        /// The URL.
        url: String,
    },
    /// An `https` URL whose server answered in plain HTTP.
    PlainHttp {
        /// The URL.
        url: String,
    },
    /// The TLS handshake failed (an untrusted or mismatched certificate, say).
    Tls {
        /// The URL.
        url: String,
        /// rustls's reason.
        reason: rustls::Error,
    },
    /// Connecting took too long.
    ConnectTimedOut {
        /// The URL.
        url: String,
    },
    /// The answer took longer than the timeout.
    TimedOut {
        /// The URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// Any other failure, with its chain of causes.
    Failed {
        /// The URL.
        url: String,
        /// The causes, outermost first, joined by `: `.
        detail: String,
    },
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Invalid(m) => f.write_str(m),
            NetError::Refused { url } => {
                write!(f, "connection refused: {url} (is the server running?)")
            }
            NetError::Unresolved { url } => write!(f, "name not resolved: {url}"),
            NetError::PlainHttp { url } => write!(
                f,
                "TLS failure: {url}: the server answered plain HTTP; try {}",
                url.replacen("https://", "http://", 1)
            ),
            NetError::Tls { url, reason } => write!(f, "TLS failure: {url}: {reason}"),
            NetError::ConnectTimedOut { url } => write!(f, "connection timed out: {url}"),
            NetError::TimedOut { url, after } => {
                write!(f, "timed out after {}s: {url}", after.as_secs_f64())
            }
            NetError::Failed { url, detail } => write!(f, "request failed: {url}: {detail}"),
        }
    }
}

impl std::error::Error for NetError {}

/// Classifies a client error (the proxy's connector's, or its upstream connection's) by the
/// types in its chain of causes.
pub fn classify(e: &(dyn std::error::Error + 'static), url: &str) -> NetError {
    let url = url.to_owned();
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return tls_error(url, tls);
        }
        if let Some(known) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|e| io_cause(e, &url))
        {
            return known;
        }
        source = s.source();
    }
    NetError::Failed {
        url,
        detail: chain.join(": "),
    }
}

/// What an I/O error says by its kind or the errors it wraps: a refused connection, a timeout,
/// a TLS failure; `None` for any other. io::Error's own `source()` skips the errors it wraps,
/// and connectors nest them (io::Error(Other, io::Error(InvalidData, rustls::Error))): they are
/// walked by hand.
fn io_cause(e: &std::io::Error, url: &str) -> Option<NetError> {
    let url = url.to_owned();
    let mut io = Some(e);
    while let Some(e) = io {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => return Some(NetError::Refused { url }),
            std::io::ErrorKind::TimedOut => return Some(NetError::ConnectTimedOut { url }),
            _ => {}
        }
        let inner = e.get_ref();
        if let Some(tls) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return Some(tls_error(url, tls));
        }
        io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
    }
    None
}

fn tls_error(url: String, e: &rustls::Error) -> NetError {
    match e {
        // A plain-HTTP answer is not a TLS record.
        rustls::Error::InvalidMessage(_) => NetError::PlainHttp { url },
        reason => NetError::Tls {
            url,
            reason: reason.clone(),
        },
    }
}
