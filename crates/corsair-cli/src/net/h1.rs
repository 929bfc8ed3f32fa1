//! `corsair check`'s own HTTP/1.1 exchange: one request, written byte for byte as given, and
//! one response head, read as a browser reads it, over TCP or rustls.
//!
//! The `http` crate's `HeaderValue` refuses bytes that browsers send and accept (a vertical tab,
//! a form feed, `\x01`…), so requests and responses here are bytes, bounded:
//! - the response head at most [`MAX_HEAD`] bytes (Chromium's own limit), a line at most
//!   [`MAX_LINE`], at most [`MAX_FIELDS`] header lines, at most [`MAX_INTERIM`] `1xx` answers
//!   before the final one;
//! - the body read only as far as [`BODY_START`] bytes (content-length, chunked or until the
//!   connection closes): the verdict is decided by the head;
//! - the whole exchange within the caller's timeout.
//!
//! Each bound crossed is a [`NetError`] that says which, never a panic. One request per
//! connection, dropped once read.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{tls_config, NetError, BODY_START};

/// The largest response head read: Chromium's limit (`net::ERR_RESPONSE_HEADERS_TOO_BIG`).
pub const MAX_HEAD: usize = 256 * 1024;
/// The longest line of a response head.
pub const MAX_LINE: usize = 64 * 1024;
/// The most header lines in a response head.
pub const MAX_FIELDS: usize = 1_000;
/// The most interim (`1xx`) responses before the final one.
pub const MAX_INTERIM: usize = 10;

/// A response as read: status, header fields as bytes, the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHead {
    /// The status code.
    pub status: u16,
    /// The header fields in order: the name as sent, the value's bytes without the leading and
    /// trailing spaces and tabs (obsolete line folding joined with a space).
    pub fields: Vec<(String, Vec<u8>)>,
    /// The first bytes of the body (at most [`BODY_START`]).
    pub body_start: Vec<u8>,
}

/// A client for [`RawClient::exchange`]: the trust roots for `https`.
#[derive(Clone)]
pub struct RawClient {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient").finish_non_exhaustive()
    }
}

impl RawClient {
    /// A client trusting the bundled web PKI roots.
    pub fn new() -> RawClient {
        RawClient {
            tls: tls_config(super::webpki_roots()).map(Arc::new),
        }
    }

    /// A client that also trusts the certificates of a PEM file (a local CA, such as mkcert's).
    ///
    /// # Errors
    /// When the file cannot be read or holds no valid certificate.
    pub fn with_ca_file(path: &std::path::Path) -> Result<RawClient, String> {
        let roots = super::roots_with_ca_file(path)?;
        Ok(RawClient {
            tls: tls_config(roots).map(Arc::new),
        })
    }

    /// Sends `method url` with `headers` exactly as given (after a `Host` line) and reads the
    /// response head and the start of its body, all within `timeout`.
    ///
    /// # Errors
    /// A [`NetError`]: a URL, method or header that cannot be written (a header holding CR, LF
    /// or NUL), connection refused, name not resolved, TLS failure, timeout, a response that is
    /// not HTTP/1.x or crosses a bound.
    pub async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<RawHead, NetError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| NetError::Invalid(format!("invalid URL {url}: {e}")))?;
        let request = request_bytes(method, &uri, url, headers)?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(NetError::Invalid(format!(
                    "invalid URL {url}: only http and https are supported"
                )))
            }
        };
        let Some(host) = uri.host() else {
            return Err(NetError::Invalid(format!("invalid URL {url}: no host")));
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let work = async {
            let addr = resolve(&host, port, url).await?;
            let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => NetError::Refused {
                    url: url.to_owned(),
                },
                std::io::ErrorKind::TimedOut => NetError::ConnectTimedOut {
                    url: url.to_owned(),
                },
                _ => NetError::Failed {
                    url: url.to_owned(),
                    detail: e.to_string(),
                },
            })?;
            if https {
                let Some(config) = self.tls.clone() else {
                    return Err(NetError::Failed {
                        url: url.to_owned(),
                        detail: "no TLS configuration".to_owned(),
                    });
                };
                let name = ServerName::try_from(host.clone()).map_err(|e| {
                    NetError::Invalid(format!("invalid URL {url}: host {host:?}: {e}"))
                })?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| io_error(&e, url))?;
                talk(stream, &request, method, url).await
            } else {
                talk(tcp, &request, method, url).await
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(NetError::TimedOut {
                url: url.to_owned(),
                after: timeout,
            }),
        }
    }
}

impl Default for RawClient {
    fn default() -> Self {
        RawClient::new()
    }
}

/// The request's bytes: request line, `Host`, the headers as given, `Content-Length: 0` for a
/// method that may carry a body (as browsers send). No `Connection: close`: browsers keep the
/// connection, and a server answering `close` would show a header browsers never see; the
/// connection is dropped once the head and the start of the body are read.
fn request_bytes(
    method: &str,
    uri: &Uri,
    url: &str,
    headers: &[(String, String)],
) -> Result<Vec<u8>, NetError> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(NetError::Invalid(format!("invalid method {method:?}")));
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let Some(authority) = uri.authority() else {
        return Err(NetError::Invalid(format!("invalid URL {url}: no host")));
    };
    // The authority without user information.
    let host = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(NetError::Invalid(format!("invalid header name {name:?}")));
        }
        if value.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
            return Err(NetError::Invalid(format!(
                "invalid header value {value:?}: it holds NUL, CR or LF"
            )));
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        out.extend_from_slice(b"Content-Length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

async fn resolve(host: &str, port: u16, url: &str) -> Result<std::net::SocketAddr, NetError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok((ip, port).into());
    }
    let unresolved = || NetError::Unresolved {
        url: url.to_owned(),
    };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| unresolved())?
        .next()
        .ok_or_else(unresolved)
}

/// An I/O error of the TLS handshake or the exchange, classified by its inner errors.
fn io_error(e: &std::io::Error, url: &str) -> NetError {
    super::io_cause(e, url).unwrap_or_else(|| NetError::Failed {
        url: url.to_owned(),
        detail: e.to_string(),
    })
}

fn bad(url: &str, detail: impl Into<String>) -> NetError {
    NetError::Failed {
        url: url.to_owned(),
        detail: detail.into(),
    }
}

/// Writes the request and reads the answer.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    method: &str,
    url: &str,
) -> Result<RawHead, NetError> {
    stream
        .write_all(request)
        .await
        .map_err(|e| io_error(&e, url))?;
    stream.flush().await.map_err(|e| io_error(&e, url))?;
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        eof: false,
    };
    let mut interim = 0;
    loop {
        let head = reader.head(url).await?;
        let mut parsed = parse_head(&head, url)?;
        if (100..200).contains(&parsed.status) && parsed.status != 101 {
            interim += 1;
            if interim > MAX_INTERIM {
                return Err(bad(
                    url,
                    format!("more than {MAX_INTERIM} interim (1xx) responses"),
                ));
            }
            continue;
        }
        if has_body(method, parsed.status) {
            parsed.body_start = reader.body_start(&parsed.fields, url).await?;
        }
        return Ok(parsed);
    }
}

fn has_body(method: &str, status: u16) -> bool {
    method != "HEAD" && !matches!(status, 101 | 204 | 304)
}

struct Reader<S> {
    stream: S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    /// Reads more bytes into the buffer; `false` at the end of the stream.
    async fn fill(&mut self, url: &str) -> Result<bool, NetError> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| io_error(&e, url))?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// The next response head, up to and without its empty line; the rest stays buffered.
    async fn head(&mut self, url: &str) -> Result<Vec<u8>, NetError> {
        let mut searched = 0;
        loop {
            if let Some((end, rest)) = end_of_head(&self.buf, searched) {
                let head = self.buf[..end].to_vec();
                self.buf.drain(..rest);
                return Ok(head);
            }
            searched = self.buf.len().saturating_sub(3);
            if self.buf.len() > MAX_HEAD {
                return Err(bad(
                    url,
                    format!(
                        "the response head is larger than {} KiB (net::ERR_RESPONSE_HEADERS_TOO_BIG in Chromium)",
                        MAX_HEAD / 1024
                    ),
                ));
            }
            if !self.fill(url).await? {
                return Err(bad(
                    url,
                    if self.buf.is_empty() {
                        "the server closed the connection without answering (net::ERR_EMPTY_RESPONSE in Chromium)".to_owned()
                    } else {
                        "the server closed the connection in the middle of the response head"
                            .to_owned()
                    },
                ));
            }
        }
    }

    /// Up to [`BODY_START`] bytes of the body, by `Transfer-Encoding: chunked`,
    /// `Content-Length`, or until the connection closes.
    async fn body_start(
        &mut self,
        fields: &[(String, Vec<u8>)],
        url: &str,
    ) -> Result<Vec<u8>, NetError> {
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
        };
        let chunked = field("transfer-encoding").is_some_and(|t| t.ends_with("chunked"));
        let length: Option<usize> = if chunked {
            None
        } else {
            field("content-length").and_then(|l| l.parse().ok())
        };
        let mut out = Vec::new();
        if chunked {
            // Chunks until BODY_START bytes are in; a malformed size ends the reading (the
            // verdict does not depend on the body).
            while out.len() < BODY_START {
                let Some(line) = self.line(url).await? else {
                    break;
                };
                let size = String::from_utf8_lossy(&line);
                let size = size.split(';').next().unwrap_or_default().trim();
                let Ok(size) = usize::from_str_radix(size, 16) else {
                    break;
                };
                if size == 0 {
                    break;
                }
                let want = size.min(BODY_START - out.len());
                while self.buf.len() < want && self.fill(url).await? {}
                let take = want.min(self.buf.len());
                out.extend(self.buf.drain(..take));
                if take < size {
                    break;
                }
                // The chunk's CRLF.
                if self.line(url).await?.is_none() {
                    break;
                }
            }
            return Ok(out);
        }
        let want = length.unwrap_or(usize::MAX).min(BODY_START);
        while self.buf.len() < want && self.fill(url).await? {}
        let take = want.min(self.buf.len());
        out.extend(self.buf.drain(..take));
        Ok(out)
    }

    /// One line (without its CRLF) of a chunked body; `None` at the end of the stream.
    async fn line(&mut self, url: &str) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_LINE {
                return Ok(None);
            }
            if !self.fill(url).await? {
                return Ok(None);
            }
        }
    }
}

/// Where the head in `buf` ends (before its empty line) and where the body starts: the head
/// ends at an empty line, `\r\n\r\n` or `\n\n` (browsers accept lines ended by a bare LF).
fn end_of_head(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl, nl + 2)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl, nl + 3)),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// Parses a response head: the status line and header fields, as browsers read them.
fn parse_head(head: &[u8], url: &str) -> Result<RawHead, NetError> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| match l.last() {
        Some(b'\r') => &l[..l.len() - 1],
        _ => l,
    });
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line).ok_or_else(|| {
        bad(
            url,
            format!(
                "the answer is not an HTTP/1.x response: {:?}",
                String::from_utf8_lossy(&status_line[..status_line.len().min(80)])
            ),
        )
    })?;
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.len() > MAX_LINE {
            return Err(bad(
                url,
                format!(
                    "a response header line is longer than {} KiB",
                    MAX_LINE / 1024
                ),
            ));
        }
        // Obsolete line folding: a line starting with a space or tab continues the last value.
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some((_, value)) = fields.last_mut() {
                let more = trim_ows(line);
                if !more.is_empty() {
                    if !value.is_empty() {
                        value.push(b' ');
                    }
                    value.extend_from_slice(more);
                }
            }
            continue;
        }
        // A line without a colon is ignored, as browsers do.
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(trim_ows(&line[..colon])).into_owned();
        let value = trim_ows(&line[colon + 1..]).to_vec();
        if fields.len() >= MAX_FIELDS {
            return Err(bad(
                url,
                format!("the response has more than {MAX_FIELDS} header lines; corsair check reads at most {MAX_FIELDS}"),
            ));
        }
        fields.push((name, value));
    }
    Ok(RawHead {
        status,
        fields,
        body_start: Vec::new(),
    })
}

/// `HTTP/1.x SSS reason`: the status, if the line is one.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (_, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Without leading and trailing spaces and tabs (what browsers strip from a value).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_an_empty_line_with_or_without_carriage_returns() {
        assert_eq!(
            end_of_head(b"HTTP/1.1 200 OK\r\n\r\nbody", 0),
            Some((16, 19))
        );
        assert_eq!(end_of_head(b"HTTP/1.1 200 OK\n\nbody", 0), Some((15, 17)));
        assert_eq!(end_of_head(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn values_keep_every_byte_but_the_surrounding_spaces_and_tabs() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nA: \x0b x\x01\x7f\xe9 \t\r\nno colon\r\nB:\tone\r\n two\r\nC: a\x00b",
            "u",
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(
            head.fields,
            vec![
                ("A".to_owned(), b"\x0b x\x01\x7f\xe9".to_vec()),
                ("B".to_owned(), b"one two".to_vec()),
                ("C".to_owned(), b"a\x00b".to_vec()),
            ]
        );
    }

    #[test]
    fn a_status_line_is_http_1_x_and_three_digits() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 407"), Some(407));
        assert_eq!(parse_status_line(b"HTTP/2 200 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line(b"ICY 200 OK"), None);
    }

    #[test]
    fn requests_are_written_byte_for_byte_and_refuse_cr_lf_and_nul() {
        let uri: Uri = "http://u:p@a.test:81/x?y=1".parse().unwrap();
        let h = |v: &str| vec![("X-A".to_owned(), v.to_owned())];
        let bytes = request_bytes("PUT", &uri, "u", &h("\x0bv\x01\x0c")).unwrap();
        assert_eq!(
            bytes,
            b"PUT /x?y=1 HTTP/1.1\r\nHost: a.test:81\r\nX-A: \x0bv\x01\x0c\r\nContent-Length: 0\r\n\r\n"
        );
        for v in ["a\rb", "a\nb", "a\0b"] {
            assert!(matches!(
                request_bytes("GET", &uri, "u", &h(v)),
                Err(NetError::Invalid(_))
            ));
        }
        assert!(request_bytes("G T", &uri, "u", &[]).is_err());
    }
}
