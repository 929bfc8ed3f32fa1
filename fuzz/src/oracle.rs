//! Independent statements of intent, written without corsair's parser, matcher or browser
//! engine: which origins a policy means to allow, and the browser's CORS check as the Fetch
//! Standard states it. Shared by the fuzz targets (`targets.rs`) and the property tests, which
//! compile this file themselves with `#[path]`.

use http::HeaderMap;

/// The ports an allowed-origin entry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// No port in the origin (the scheme's default).
    Default,
    /// This port.
    Exact(u16),
    /// Any port (`:*`).
    Any,
}

/// One allowed-origin entry: `scheme://host`, `scheme://*.host` (strict subdomains), with a port
/// pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub scheme: String,
    pub host: String,
    pub subdomains: bool,
    pub port: Port,
}

impl Entry {
    /// Reads an entry written in the plain form this oracle knows: lowercase ASCII
    /// `scheme://[*.]host[:port|:*]`. `None` for anything else (the caller then cannot state the
    /// intent, and checks less).
    pub fn parse(s: &str) -> Option<Entry> {
        let (scheme, rest) = s.split_once("://")?;
        if !is_scheme(scheme) {
            return None;
        }
        let (subdomains, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(p) => {
                let n = port_number(p)?;
                if default_port(scheme) == Some(n) {
                    return None;
                }
                Port::Exact(n)
            }
        };
        if !is_host(host) || (subdomains && host.starts_with('[')) {
            return None;
        }
        Some(Entry {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            subdomains,
            port,
        })
    }

    /// The entry as a policy writes it.
    pub fn to_config(&self) -> String {
        let sub = if self.subdomains { "*." } else { "" };
        let port = match self.port {
            Port::Default => String::new(),
            Port::Exact(p) => format!(":{p}"),
            Port::Any => ":*".to_owned(),
        };
        format!("{}://{sub}{}{port}", self.scheme, self.host)
    }

    /// Whether a request origin's parts fit this entry.
    pub fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host_ok = if self.subdomains {
            !host.starts_with('[')
                && host.len() > self.host.len() + 1
                && host.ends_with(self.host.as_str())
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        let port_ok = match self.port {
            Port::Default => port.is_none(),
            Port::Exact(p) => port == Some(p),
            Port::Any => true,
        };
        scheme == self.scheme && host_ok && port_ok
    }
}

/// What a policy means to allow.
#[derive(Debug, Clone, Default)]
pub struct Intent {
    /// `*`: every origin (for a credentialed policy: every well-formed origin, never `null`).
    pub any: bool,
    /// The origin `null`, granted by its own dangerous option.
    pub null: bool,
    pub entries: Vec<Entry>,
    /// An extra rule over the serialized origin.
    pub predicate: Option<fn(&str) -> bool>,
    pub credentials: bool,
}

impl Intent {
    /// Whether the policy means to let `origin` read responses.
    pub fn allows(&self, origin: &[u8]) -> bool {
        if origin == b"null" {
            return self.null;
        }
        let Some((scheme, host, port)) = origin_parts(origin) else {
            return false;
        };
        self.any
            || self.entries.iter().any(|e| e.matches(scheme, host, port))
            || self
                .predicate
                .is_some_and(|p| std::str::from_utf8(origin).is_ok_and(p))
    }

    /// Whether the answer is the same for every origin (`*` without credentials).
    pub fn public(&self) -> bool {
        self.any && !self.credentials
    }
}

/// The parts of an `Origin` value, when it is a serialized origin as browsers send it:
/// `scheme://host[:port]`, lowercase, the host a domain of `[a-z0-9_-]` labels (at most 63
/// bytes each, 253 in all) or an IPv6 address in its canonical bracketed form, the port without a leading zero and not the
/// scheme's default.
pub fn origin_parts(origin: &[u8]) -> Option<(&str, &str, Option<u16>)> {
    let s = std::str::from_utf8(origin).ok()?;
    let (scheme, rest) = s.split_once("://")?;
    if !is_scheme(scheme) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    if !is_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => {
            let n = port_number(p)?;
            if default_port(scheme) == Some(n) {
                return None;
            }
            Some(n)
        }
    };
    Some((scheme, host, port))
}

fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
}

/// `host[:port]` → (host, port as written).
fn split_host_port(rest: &str) -> Option<(&str, Option<&str>)> {
    if rest.starts_with('[') {
        let close = rest.find(']')?;
        let (host, after) = rest.split_at(close + 1);
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match rest.split_once(':') {
        Some((h, p)) => Some((h, Some(p))),
        None => Some((rest, None)),
    }
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.to_string() == inner);
    }
    // DNS's limits: no browser loads a page from a longer name.
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

fn port_number(p: &str) -> Option<u16> {
    if p.is_empty()
        || p.len() > 5
        || (p.len() > 1 && p.starts_with('0'))
        || !p.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    u16::try_from(p.parse::<u32>().ok()?).ok()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// RFC 9110 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The non-empty elements of a comma-separated list over several lines, trimmed of spaces and
/// tabs (the Fetch Standard's "get, decode, and split" for tokens).
pub fn elements<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for line in lines {
        for part in line.split(|&b| b == b',') {
            let start = part.iter().position(|&b| b != b' ' && b != b'\t');
            let end = part.iter().rposition(|&b| b != b' ' && b != b'\t');
            if let (Some(s), Some(e)) = (start, end) {
                out.push(&part[s..=e]);
            }
        }
    }
    out
}

/// A header's lines as a browser reads them: each trimmed of spaces and tabs, joined by `, `.
pub fn combined(headers: &HeaderMap, name: &str) -> Option<String> {
    let lines: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim_matches([' ', '\t'])
                .to_owned()
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

/// The Fetch Standard's CORS check of a response for a request from `origin`: an
/// `Access-Control-Allow-Origin` that is `*` (only without credentials) or exactly the origin,
/// and with credentials `Access-Control-Allow-Credentials: true`.
pub fn cors_check(headers: &HeaderMap, origin: &str, include_credentials: bool) -> bool {
    match combined(headers, "access-control-allow-origin").as_deref() {
        None => false,
        Some("*") => !include_credentials,
        Some(v) => {
            v == origin
                && (!include_credentials
                    || combined(headers, "access-control-allow-credentials").as_deref()
                        == Some("true"))
        }
    }
}

/// Whether a preflight answer lets `method` through: safelisted, listed exactly, or `*`
/// without credentials.
pub fn preflight_allows_method(headers: &HeaderMap, method: &str, include: bool) -> bool {
    let listed = elements(
        headers
            .get_all("access-control-allow-methods")
            .iter()
            .map(|v| v.as_bytes()),
    );
    matches!(method, "GET" | "HEAD" | "POST")
        || listed.contains(&method.as_bytes())
        || (!include && listed.iter().any(|m| *m == b"*"))
}

/// Whether a preflight answer lets a request header through: listed in any case, or `*`
/// without credentials.
pub fn preflight_allows_header(headers: &HeaderMap, name: &str, include: bool) -> bool {
    let listed = elements(
        headers
            .get_all("access-control-allow-headers")
            .iter()
            .map(|v| v.as_bytes()),
    );
    listed
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name.as_bytes()))
        || (!include && listed.iter().any(|h| *h == b"*"))
}
