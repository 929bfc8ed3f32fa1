//! Request origins as the URL Standard serializes them: [`RequestOrigin::parse`] reads an
//! `Origin` header value as bytes, in one pass, without allocating, and accepts only the
//! serialized form browsers send. (What a person writes in a policy is read by the policy's
//! origin patterns, `policy/pattern.rs`.)

use std::net::IpAddr;

/// A syntactically valid serialized origin taken from an `Origin` request header:
/// `scheme "://" host [ ":" port ]`, lowercase, as browsers send it. Borrowed, never allocated.
///
/// ```
/// use corsair::origin::RequestOrigin;
/// let o = RequestOrigin::parse(b"https://app.example.com:8443").unwrap();
/// assert_eq!((o.scheme(), o.host(), o.port()), ("https", "app.example.com", Some(8443)));
/// assert!(RequestOrigin::parse(b"https://app.example.com/").is_none());
/// assert!(RequestOrigin::parse(b"null").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOrigin<'a> {
    serialized: &'a str,
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

impl<'a> RequestOrigin<'a> {
    /// Parses the bytes of an `Origin` header. Returns `None` for `null` and for anything that is
    /// not a lowercase serialized tuple origin (a path, userinfo, uppercase, a default or invalid
    /// port, stray bytes).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        // The scheme: a lowercase letter, then letters, digits, `+`, `-` or `.`, up to `://`
        // (none of them is `:`, so the first `:` must start the `://`).
        let sb = s.as_bytes();
        if !sb.first()?.is_ascii_lowercase() {
            return None;
        }
        let end = sb.iter().position(|&b| {
            !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        })?;
        if sb.get(end..end + 3)? != b"://" {
            return None;
        }
        let (scheme, rest) = (&s[..end], &s[end + 3..]);
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let v6 = &inner[..close];
            // At most 45 characters (`ffff:…:255.255.255.255`), and an address.
            if v6.len() > 45
                || v6.bytes().any(|b| b.is_ascii_uppercase())
                || v6.parse::<std::net::Ipv6Addr>().is_err()
            {
                return None;
            }
            let after = &inner[close + 1..];
            (&rest[..close + 2], after)
        } else {
            match rest.bytes().position(|b| b == b':') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        if !host.starts_with('[') && !valid_host(host) {
            return None;
        }
        let port = if port.is_empty() {
            None
        } else {
            let digits = port.strip_prefix(':')?;
            let p = parse_port(digits)?;
            if default_port(scheme) == Some(p) {
                return None;
            }
            Some(p)
        };
        Some(RequestOrigin {
            serialized: s,
            scheme,
            host,
            port,
        })
    }

    /// The whole serialized origin.
    pub fn as_str(&self) -> &'a str {
        self.serialized
    }

    /// The scheme, without `://`.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The host: a lowercase domain, an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port, when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the host is loopback: `localhost`, a subdomain of it, `127.0.0.0/8` or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.host)
    }
}

/// The longest host a browser can have loaded a page from: DNS's limit on a name, in bytes.
/// Longer `Origin` hosts are malformed, which also bounds the cost of matching subdomain
/// patterns (one lookup per label of what follows it).
pub(crate) const MAX_HOST_LEN: usize = 253;
/// The longest DNS label, in bytes.
pub(crate) const MAX_LABEL_LEN: usize = 63;

/// A lowercase domain or IPv4 address: non-empty labels of `[a-z0-9_-]`, at most 63 bytes each,
/// separated by dots, at most 253 bytes in all.
fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return false;
    }
    // One pass over the bytes, one table lookup each: the length of the current label, reset
    // at each dot.
    const fn classes() -> [u8; 256] {
        let mut t = [INVALID; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' {
                t[b] = LABEL;
            }
            b += 1;
        }
        t[b'.' as usize] = DOT;
        t
    }
    const INVALID: u8 = 0;
    const LABEL: u8 = 1;
    const DOT: u8 = 2;
    static CLASS: [u8; 256] = classes();
    let mut label = 0usize;
    for &b in host.as_bytes() {
        match CLASS[usize::from(b)] {
            LABEL => label += 1,
            DOT if label > 0 && label <= MAX_LABEL_LEN => label = 0,
            _ => return false,
        }
    }
    label > 0 && label <= MAX_LABEL_LEN
}

/// A port number without a leading zero, 0–65535.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty()
        || digits.len() > 5
        || (digits.len() > 1 && digits.starts_with('0'))
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// The default port of a special scheme that can be an origin.
pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Whether a host names this machine: `localhost` and its subdomains, `127.0.0.0/8`, `[::1]`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_origins_accepted() {
        let table: &[(&str, &str, &str, Option<u16>)] = &[
            ("http://localhost:8000", "http", "localhost", Some(8000)),
            ("https://example.com", "https", "example.com", None),
            ("http://127.0.0.1:9000", "http", "127.0.0.1", Some(9000)),
            ("http://[::1]:3000", "http", "[::1]", Some(3000)),
            (
                "https://xn--bcher-kva.example",
                "https",
                "xn--bcher-kva.example",
                None,
            ),
            (
                "chrome-extension://abcdef",
                "chrome-extension",
                "abcdef",
                None,
            ),
            ("http://my_app.example", "http", "my_app.example", None),
        ];
        for &(s, scheme, host, port) in table {
            let o = RequestOrigin::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(
                (o.scheme(), o.host(), o.port(), o.as_str()),
                (scheme, host, port, s)
            );
        }
    }

    #[test]
    fn request_origins_refused() {
        for s in [
            "null",
            "",
            "https://",
            "https://example.com/",
            "https://example.com/path",
            "HTTPS://example.com",
            "https://Example.com",
            "https://example.com:443",
            "http://example.com:80",
            "http://example.com:",
            "http://example.com:08080",
            "http://example.com:65536",
            "https://user@example.com",
            "https://a..example.com",
            "https://.example.com",
            "https://example.com.",
            "https://exa mple.com",
            "https://example.com?x",
            "http://[::1",
            "http://[]:80",
            "://example.com",
            "1http://example.com",
        ] {
            assert!(
                RequestOrigin::parse(s.as_bytes()).is_none(),
                "{s:?} should be refused"
            );
        }
        assert!(RequestOrigin::parse(b"https://\xffexample.com").is_none());
    }

    #[test]
    fn loopback() {
        for h in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.5.6.7",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["localhost.example.com", "10.0.0.1", "example.com", "[::2]"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
