//! The HTTP client the subcommands share: HTTP/1.1 over TCP or rustls (bundled web PKI roots),
//! with a timeout, and failures explained in one line.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A client for plain and TLS connections.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client that speaks HTTP/1.1 over TCP or TLS, trusting the bundled web PKI roots.
pub fn client() -> HttpClient {
    client_with_roots(webpki_roots())
}

fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A client that also trusts the certificates of a PEM file (a local CA, such as mkcert's).
///
/// # Errors
/// When the file cannot be read or holds no valid certificate.
pub fn client_with_ca_file(path: &std::path::Path) -> Result<HttpClient, String> {
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
    Ok(client_with_roots(roots))
}

fn client_with_roots(roots: rustls::RootCertStore) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(connector(roots, None))
}

/// A connector for plain and TLS connections trusting the bundled roots, with an optional
/// connect timeout; for clients of any body type (the proxy streams bodies).
pub fn https_connector(
    connect_timeout: Option<Duration>,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    connector(webpki_roots(), connect_timeout)
}

fn connector(
    roots: rustls::RootCertStore,
    connect_timeout: Option<Duration>,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    match tls {
        Ok(tls) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
        // The ring provider always supports the default versions; should it not, plain HTTP
        // still works and HTTPS fails with a TLS error.
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http),
    }
}

/// A response's status and headers; the body is read and dropped.
#[derive(Debug, Clone)]
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// The headers, as received.
    pub headers: HeaderMap,
}

/// Sends a request without a body and returns the response's head.
///
/// # Errors
/// A one-line explanation: connection refused, name not resolved, TLS failure, timeout, or an
/// invalid request.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Head, String> {
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| format!("invalid method {method:?}: {e}"))?;
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("invalid header name {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| format!("invalid header value {value:?}: {e}"))?;
        req = req.header(name, value);
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| explain(&e, url))?;
        let (parts, mut body) = resp.into_parts();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        Ok(Head {
            status: parts.status,
            headers: parts.headers,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {}s: {url}", timeout.as_secs_f64())),
    }
}

/// Turns a client error into one line, naming the cause.
pub fn explain(e: &hyper_util::client::legacy::Error, url: &str) -> String {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("connection refused: {url} (is the server running?)")
                }
                std::io::ErrorKind::TimedOut => return format!("connection timed out: {url}"),
                _ => {}
            }
        }
        source = s.source();
    }
    let all = chain.join(": ");
    let lower = all.to_ascii_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        format!("name not resolved: {url}")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!(
            "TLS failure: {url}: {}",
            chain.last().map_or("", String::as_str)
        )
    } else if lower.contains("connection refused") {
        format!("connection refused: {url} (is the server running?)")
    } else {
        format!("request failed: {url}: {all}")
    }
}
