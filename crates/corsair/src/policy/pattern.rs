//! Allowed-origin patterns as a person writes them in a policy (`https://app.example.com`,
//! `https://*.example.com`, `http://localhost:*`): read with the `url` crate, which implements
//! the URL Standard, refused with a code and a fix unless exactly a serialized origin or one of
//! the two wildcard forms, and stored in the form browsers send.

use crate::error::{ConfigError, ErrorCode};
use crate::origin::{is_loopback_host, RequestOrigin, MAX_HOST_LEN, MAX_LABEL_LEN};

/// Which ports an origin pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PortPattern {
    /// The scheme's default port only (no port in the serialized origin).
    Default,
    /// Exactly this port.
    Exact(u16),
    /// Any port, written `:*`.
    Any,
}

impl PortPattern {
    /// Whether a request origin's port (`None`: the default port) is accepted.
    pub fn matches(self, port: Option<u16>) -> bool {
        match self {
            PortPattern::Default => port.is_none(),
            PortPattern::Exact(p) => port == Some(p),
            PortPattern::Any => true,
        }
    }
}

/// One entry of an allowed-origins list, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// The opaque origin `null`.
    Null,
    /// One serialized origin, such as `https://app.example.com`.
    Exact(String),
    /// A scheme and host with a port pattern, and whether subdomains (one or more labels, never
    /// the host itself) are meant: `https://*.example.com`, `http://localhost:*`,
    /// `https://*.example.com:*`.
    Pattern {
        /// The scheme, e.g. `https`.
        scheme: String,
        /// The host, or for a subdomain pattern the domain below which subdomains match.
        host: String,
        /// Whether this matches strict subdomains of `host` rather than `host` itself.
        subdomains: bool,
        /// The ports accepted.
        port: PortPattern,
    },
}

impl OriginPattern {
    /// Parses one allowed origin as written in a configuration.
    ///
    /// Accepted forms: `*`; `null`; a serialized origin (`https://app.example.com`,
    /// `http://localhost:8000`); a subdomain pattern `https://*.example.com`; an any-port pattern
    /// `http://localhost:*`; and both at once. Spellings the URL Standard rewrites are accepted
    /// and stored in the form browsers send: an internationalized name in its ASCII (punycode)
    /// form, `http://127.1` as `http://127.0.0.1`, a port without leading zeros, an IPv4-mapped
    /// IPv6 address in hexadecimal, a domain without its trailing dot
    /// ([`PolicyBuilder::notes`](crate::PolicyBuilder::notes) lists each rewrite).
    ///
    /// # Errors
    /// One [`ConfigError`] saying what is wrong and how to write it instead: a path, trailing
    /// slash, query, fragment, userinfo, uppercase letters, an explicit default port, a port of 0
    /// or above 65535, an empty label, a host or label too long for DNS, a misplaced `*`, a
    /// scheme that never appears in `Origin` headers or is longer than any browser sends, a
    /// subdomain pattern over a public suffix or an IP address.
    #[cfg(test)]
    pub(crate) fn parse(input: &str) -> Result<OriginPattern, ConfigError> {
        let parsed = ParsedOrigin::parse(input)?;
        match parsed.public_suffix {
            Some(e) => Err(e),
            None => Ok(parsed.pattern),
        }
    }

    /// An exact origin, or a pattern when `*.` or `:*` was written.
    fn from_parts(
        serialized: String,
        scheme: &str,
        host: &str,
        port: Option<u16>,
        subdomains: bool,
        any_port: bool,
    ) -> OriginPattern {
        if !subdomains && !any_port {
            return OriginPattern::Exact(serialized);
        }
        OriginPattern::Pattern {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            subdomains,
            port: match (any_port, port) {
                (true, _) => PortPattern::Any,
                (false, Some(p)) => PortPattern::Exact(p),
                (false, None) => PortPattern::Default,
            },
        }
    }

    /// Whether every origin this pattern matches is trusted with credentials and Private Network
    /// Access: `https`, `http` on a loopback host, or a browser-extension or app-shell scheme of
    /// [`TRUSTED_APP_SCHEMES`].
    pub(crate) fn is_secure_or_loopback(&self) -> bool {
        let trusted = |scheme: &str| scheme == "https" || TRUSTED_APP_SCHEMES.contains(&scheme);
        match self {
            OriginPattern::Any | OriginPattern::Null => false,
            OriginPattern::Exact(s) => match s.split_once("://") {
                Some(("http", _)) => {
                    RequestOrigin::parse(s.as_bytes()).is_some_and(|o| o.is_loopback())
                }
                Some((scheme, _)) => trusted(scheme),
                None => false,
            },
            OriginPattern::Pattern {
                scheme,
                host,
                subdomains,
                ..
            } => {
                trusted(scheme)
                    || (scheme == "http"
                        && is_loopback_host(host)
                        && (!*subdomains || host == "localhost"))
            }
        }
    }
}

/// The longest scheme accepted in an allowed origin, in bytes. The URL Standard sets no bound,
/// but the longest scheme a browser sends in `Origin` is 20 bytes (`safari-web-extension`); a
/// longer one is a paste of something else (a path, a URL, a token), not a scheme.
pub(crate) const MAX_SCHEME_LEN: usize = 32;

/// The schemes other than `https` that corsair trusts with credentials and Private Network
/// Access: browser extensions and app shells, whose pages are loaded from a package on the
/// user's device, never from the network, so no one on the network path can inject script
/// into them. `http` counts as secure only on loopback hosts.
pub(crate) const TRUSTED_APP_SCHEMES: [&str; 7] = [
    "chrome-extension",     // Chromium, Edge, Opera extensions
    "moz-extension",        // Firefox extensions
    "safari-web-extension", // Safari extensions
    "isolated-app",         // Chromium isolated web apps
    "tauri",                // Tauri on macOS and Linux (Windows uses http(s)://tauri.localhost)
    "capacitor",            // Capacitor on iOS (Android uses http(s)://localhost)
    "ionic",                // Ionic's iOS web view
];

/// An allowed origin as the builder reads it: the pattern, how browsers spell it when that
/// differs from what was written, and the public-suffix error a `dangerously_` option may waive.
#[derive(Debug)]
pub(crate) struct ParsedOrigin {
    pub(crate) pattern: OriginPattern,
    /// The pattern in the form browsers send, when it differs from the input.
    pub(crate) rewritten: Option<String>,
    /// A subdomain pattern over a public suffix of the Public Suffix List's private section
    /// (`https://*.github.io`): refused unless `dangerously_allow_public_suffix_subdomains`.
    pub(crate) public_suffix: Option<ConfigError>,
}

impl ParsedOrigin {
    pub(crate) fn parse(input: &str) -> Result<ParsedOrigin, ConfigError> {
        const SETTING: &str = "allow_origins";
        let err = |code, message: String, fix: String| {
            ConfigError::new(code, SETTING, Some(input), message, fix)
        };
        let plain = |pattern| ParsedOrigin {
            pattern,
            rewritten: None,
            public_suffix: None,
        };
        match input {
            "*" => return Ok(plain(OriginPattern::Any)),
            "null" => return Ok(plain(OriginPattern::Null)),
            _ => {}
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(err(
                ErrorCode::OriginInvalid,
                "not an origin: an origin is scheme://host[:port].".into(),
                "write it like https://app.example.com or http://localhost:8000.".into(),
            ));
        };
        // Take the two wildcard forms off, then let the URL parser judge the rest.
        let (subdomains, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (any_port, rest_owned) = if rest[..authority_end].ends_with(":*") {
            let mut r = String::with_capacity(rest.len());
            r.push_str(&rest[..authority_end - 2]);
            r.push_str(&rest[authority_end..]);
            (true, r)
        } else {
            (false, rest.to_owned())
        };
        if rest_owned.contains('*') || scheme.contains('*') {
            return Err(err(
                ErrorCode::OriginBadWildcard,
                "`*` may only stand as a leading `*.` label (any subdomain) or as the port `:*` (any port).".into(),
                "write https://*.example.com for subdomains, http://localhost:* for any port, or list the origins.".into(),
            ));
        }
        if scheme.len() > MAX_SCHEME_LEN {
            return Err(err(
                ErrorCode::OriginSchemeTooLong,
                format!("a scheme of {} bytes: browsers send schemes of at most 20 (safari-web-extension), so this never matches.", scheme.len()),
                "write the origin of the page, such as https://app.example.com or chrome-extension://<id>.".into(),
            ));
        }
        if let Some(digits) = written_port(&rest_owned) {
            let value = digits.trim_start_matches('0');
            if digits.bytes().all(|b| b.is_ascii_digit())
                && (value.is_empty()
                    || value.len() > 5
                    || value.parse::<u32>().is_ok_and(|p| p > 65_535))
            {
                return Err(err(
                    ErrorCode::OriginPortInvalid,
                    format!("port {digits}: ports run from 1 to 65535 and no page is served from port 0, so this never matches."),
                    "write the port the page is served from, or leave it out for the scheme's default.".into(),
                ));
            }
        }
        let lower_scheme = scheme.to_ascii_lowercase();
        match lower_scheme.as_str() {
            "http" | "https" => {}
            "file" | "data" | "blob" | "javascript" | "about" | "ws" | "wss" | "ftp" => {
                return Err(err(
                    ErrorCode::OriginUnsupportedScheme,
                    format!("browsers never send an `Origin` with the scheme {scheme:?} (file: and data: pages send `null`)."),
                    "allow the http(s) origin of the page instead.".into(),
                ))
            }
            _ => {
                return parse_custom_scheme(input, scheme, &rest_owned, subdomains, any_port)
                    .map(plain)
            }
        }
        let candidate = format!("{lower_scheme}://{rest_owned}");
        let url = match url::Url::parse(&candidate) {
            Ok(u) => u,
            Err(e) => {
                return Err(err(
                    ErrorCode::OriginInvalid,
                    format!("not a valid origin ({e})."),
                    "write it like https://app.example.com or http://localhost:8000.".into(),
                ))
            }
        };
        let Some(host) = url.host_str() else {
            return Err(err(
                ErrorCode::OriginInvalid,
                "the origin has no host.".into(),
                "write it like https://app.example.com.".into(),
            ));
        };
        let is_domain = matches!(url.host(), Some(url::Host::Domain(_)));
        // A fully qualified name's trailing dot: browsers send the name without it (an `Origin`
        // with one is not a serialized origin corsair accepts), so match the name without it.
        let host = match host.strip_suffix('.') {
            Some(h) if is_domain => h,
            _ => host,
        };
        let serialized = match url.port() {
            Some(p) => format!("{lower_scheme}://{host}:{p}"),
            None => format!("{lower_scheme}://{host}"),
        };
        let pretty = |s: &str| rebuild(s, subdomains, any_port);
        if let Some((code, message)) = shape_problem(input, &url, &rest_owned) {
            return Err(err(
                code,
                message.into(),
                format!("write {}.", pretty(&serialized)),
            ));
        }
        if is_domain {
            check_dns_name(input, host, subdomains)?;
        }
        let public_suffix = if subdomains {
            subdomain_pattern_problem(input, &lower_scheme, host, is_domain)?
        } else {
            None
        };
        let canonical = pretty(&serialized);
        Ok(ParsedOrigin {
            pattern: OriginPattern::from_parts(
                serialized,
                &lower_scheme,
                host,
                url.port(),
                subdomains,
                any_port,
            ),
            rewritten: (canonical != input).then_some(canonical),
            public_suffix,
        })
    }
}

/// Whether a subdomain pattern over `host` can be allowed: never over an IP address or a
/// registry suffix (`*.com`, `*.co.uk`: `Err`); over a private suffix of the Public Suffix List
/// (`*.github.io`) only with `dangerously_allow_public_suffix_subdomains` (`Ok(Some(error))`,
/// which the option waives).
fn subdomain_pattern_problem(
    input: &str,
    scheme: &str,
    host: &str,
    is_domain: bool,
) -> Result<Option<ConfigError>, ConfigError> {
    let err = |code, message: String, fix: String| {
        ConfigError::new(code, "allow_origins", Some(input), message, fix)
    };
    if !is_domain {
        return Err(err(
            ErrorCode::PatternOverIpAddress,
            "an IP address has no subdomains.".into(),
            "list the origin itself without `*.`.".into(),
        ));
    }
    if host == "localhost" || !is_public_suffix(host) {
        return Ok(None);
    }
    let reason = format!("{host:?} is a public suffix: anyone can register a site below it, so this allows origins you do not control.");
    let fix = format!("allow subdomains of a domain you own, such as {scheme}://*.yourname.{host}");
    if is_private_suffix(host) {
        Ok(Some(err(
            ErrorCode::PatternOverPublicSuffix,
            reason,
            format!("{fix}; if you operate {host} yourself, dangerously_allow_public_suffix_subdomains."),
        )))
    } else {
        Err(err(
            ErrorCode::PatternOverPublicSuffix,
            reason,
            format!("{fix} (no option allows a pattern over a registry suffix)."),
        ))
    }
}

/// The first way a parsed http(s) origin is not spelled as browsers send it, with its code and
/// why: each has the same fix, the origin as browsers spell it. In the order a reader would
/// notice them.
fn shape_problem(input: &str, url: &url::Url, rest: &str) -> Option<(ErrorCode, &'static str)> {
    let checks: [(bool, ErrorCode, &'static str); 7] = [
        (
            !url.username().is_empty() || url.password().is_some(),
            ErrorCode::OriginHasUserinfo,
            "an origin has no user name or password.",
        ),
        (
            url.query().is_some(),
            ErrorCode::OriginHasQuery,
            "an origin has no query; browsers send only scheme://host[:port].",
        ),
        (
            url.fragment().is_some(),
            ErrorCode::OriginHasFragment,
            "an origin has no fragment; browsers send only scheme://host[:port].",
        ),
        (
            url.path() != "/",
            ErrorCode::OriginHasPath,
            "an origin has no path; browsers send only scheme://host[:port], so this never matches.",
        ),
        (
            rest.ends_with('/'),
            ErrorCode::OriginTrailingSlash,
            "an origin has no trailing slash; browsers send none, so this never matches.",
        ),
        (
            url.port().is_none() && written_port(rest).is_some(),
            ErrorCode::OriginDefaultPort,
            "browsers omit the scheme's default port, so an origin that spells it out never matches.",
        ),
        (
            input.is_ascii() && input.bytes().any(|b| b.is_ascii_uppercase()),
            ErrorCode::OriginUppercase,
            "browsers send origins in lowercase, so this never matches.",
        ),
    ];
    checks
        .into_iter()
        .find(|(bad, _, _)| *bad)
        .map(|(_, code, message)| (code, message))
}

/// Refuses a domain no browser can load a page from: an empty label, a label over 63 bytes, a
/// name over 253 bytes (counting, for a subdomain pattern, the shortest subdomain `x.`).
fn check_dns_name(input: &str, host: &str, subdomains: bool) -> Result<(), ConfigError> {
    let err = |code, message: String, fix: &str| {
        ConfigError::new(code, "allow_origins", Some(input), message, fix)
    };
    if host.split('.').any(str::is_empty) {
        return Err(err(
            ErrorCode::OriginEmptyLabel,
            format!("{host:?} has an empty label (two dots in a row, or a leading dot): no site has such a name, so this never matches."),
            "write the host name with one dot between labels, such as app.example.com.",
        ));
    }
    let len = host.len() + if subdomains { 2 } else { 0 };
    if len > MAX_HOST_LEN || host.split('.').any(|l| l.len() > MAX_LABEL_LEN) {
        return Err(err(
            ErrorCode::OriginHostTooLong,
            format!("a host name has at most {MAX_HOST_LEN} bytes and labels of at most {MAX_LABEL_LEN} (in ASCII form); DNS cannot resolve this one, so no page is served from it."),
            "check the host name for a paste error.",
        ));
    }
    Ok(())
}

/// The port as written in `host[:port][/...]`, if any, skipping userinfo and IPv6 brackets.
fn written_port(rest: &str) -> Option<&str> {
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    after_host.strip_prefix(':').filter(|p| !p.is_empty())
}

/// Puts the wildcards back into a serialized origin, for a fix suggestion.
fn rebuild(serialized: &str, subdomains: bool, any_port: bool) -> String {
    let mut s = serialized.to_owned();
    if subdomains {
        if let Some(i) = s.find("://") {
            s.insert_str(i + 3, "*.");
        }
    }
    if any_port {
        // A pattern's port is replaced by `*`.
        if let Some(i) = s
            .rfind(':')
            .filter(|&i| s[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i > 6)
        {
            s.truncate(i);
        }
        s.push_str(":*");
    }
    s
}

/// Origins of non-special schemes that browsers do send in `Origin` for extensions and app
/// shells, such as `chrome-extension://abcdef` or `tauri://localhost`: taken literally.
fn parse_custom_scheme(
    input: &str,
    scheme: &str,
    rest: &str,
    subdomains: bool,
    any_port: bool,
) -> Result<OriginPattern, ConfigError> {
    let candidate = format!("{scheme}://{rest}");
    let host = rest.split([':', '/', '?', '#']).next().unwrap_or(rest);
    if !host.is_empty() && !host.starts_with('[') {
        check_dns_name(input, host, subdomains)?;
    }
    match RequestOrigin::parse(candidate.as_bytes()) {
        Some(o) if !o.host().starts_with('[') => Ok(OriginPattern::from_parts(
            candidate.clone(),
            scheme,
            o.host(),
            o.port(),
            subdomains,
            any_port,
        )),
        _ => Err(ConfigError::new(
            ErrorCode::OriginInvalid,
            "allow_origins",
            Some(input),
            "not a serialized origin: scheme://host[:port] in lowercase, with no path.",
            "write it like chrome-extension://abcdefghijklmnop or tauri://localhost.",
        )),
    }
}

/// Whether `domain` is itself a public suffix (`com`, `co.uk`, `github.io`), by the Public Suffix
/// List, including its private section. A name the list does not know has its last label as its
/// public suffix, as the list's default rule says.
pub(crate) fn is_public_suffix(domain: &str) -> bool {
    match psl::suffix(domain.as_bytes()) {
        Some(s) => s.as_bytes() == domain.as_bytes(),
        None => true,
    }
}

/// Whether `domain` is a public suffix of the Public Suffix List's private section, one that a
/// company operates for its customers (`github.io`, `vercel.app`, `myshopify.com`), rather than
/// a registry's (`com`, `co.uk`) or one the list does not know.
fn is_private_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes())
        .is_some_and(|s| s.as_bytes() == domain.as_bytes() && s.typ() == Some(psl::Type::Private))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_stored_as_browsers_send_origins() {
        assert_eq!(
            OriginPattern::parse("http://localhost:*").unwrap(),
            OriginPattern::Pattern {
                scheme: "http".into(),
                host: "localhost".into(),
                subdomains: false,
                port: PortPattern::Any,
            }
        );
        assert_eq!(
            OriginPattern::parse("http://127.1:06060").unwrap(),
            OriginPattern::Exact("http://127.0.0.1:6060".into())
        );
        let err = OriginPattern::parse("https://example.com/").unwrap_err();
        assert_eq!(err.code(), ErrorCode::OriginTrailingSlash);
        assert_eq!(
            OriginPattern::parse("https://*.com").unwrap_err().code(),
            ErrorCode::PatternOverPublicSuffix
        );
        assert_eq!(
            OriginPattern::parse("https://example..com")
                .unwrap_err()
                .code(),
            ErrorCode::OriginEmptyLabel
        );
    }
    fn code(s: &str) -> ErrorCode {
        OriginPattern::parse(s)
            .map(|p| panic!("{s} parsed as {p:?}"))
            .unwrap_err()
            .code()
    }

    #[test]
    fn config_origins_refused_with_codes() {
        use ErrorCode::*;
        let table = [
            ("example.com", OriginInvalid),
            ("https://", OriginInvalid),
            ("https://exa mple.com", OriginInvalid),
            ("https://example.com/app", OriginHasPath),
            ("https://example.com/", OriginTrailingSlash),
            ("https://example.com?a=1", OriginHasQuery),
            ("https://example.com#top", OriginHasFragment),
            ("https://user:pw@example.com", OriginHasUserinfo),
            ("https://Example.com", OriginUppercase),
            ("HTTPS://example.com", OriginUppercase),
            ("https://example.com:443", OriginDefaultPort),
            ("http://localhost:80", OriginDefaultPort),
            ("file:///home/me/index.html", OriginUnsupportedScheme),
            ("https://*example.com", OriginBadWildcard),
            ("https://app.*.example.com", OriginBadWildcard),
            ("https://example.*", OriginBadWildcard),
            ("*://example.com", OriginBadWildcard),
            ("https://*.com", PatternOverPublicSuffix),
            ("https://*.co.uk", PatternOverPublicSuffix),
            ("https://*.github.io", PatternOverPublicSuffix),
            ("https://*.test", PatternOverPublicSuffix),
            ("http://*.127.0.0.1", PatternOverIpAddress),
            ("http://example.com:0", OriginPortInvalid),
            ("http://example.com:00", OriginPortInvalid),
            ("http://example.com:65536", OriginPortInvalid),
            ("http://example.com:99999", OriginPortInvalid),
            ("http://example.com:123456", OriginPortInvalid),
            ("http://*.example.com:0", OriginPortInvalid),
            ("chrome-extension://abc:0", OriginPortInvalid),
            ("tauri://localhost:70000", OriginPortInvalid),
            ("https://example..com", OriginEmptyLabel),
            ("https://.example.com", OriginEmptyLabel),
            ("https://example.com..", OriginEmptyLabel),
            ("https://*..example.com", OriginEmptyLabel),
            ("x-app://a..b", OriginEmptyLabel),
            (
                "ssssssssssssssssssssssssssssssssx://app",
                OriginSchemeTooLong,
            ),
        ];
        for (input, want) in table {
            assert_eq!(code(input), want, "{input}");
        }
    }

    #[test]
    fn hosts_too_long_for_dns_are_refused() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        // 4 labels of 63 bytes and 3 dots: 255 bytes; 3 of 63, one of 61: 253.
        let host255 = [label63.as_str(); 4].join(".");
        let host253 = format!("{}.{}", [label63.as_str(); 3].join("."), "b".repeat(61));
        assert_eq!(host253.len(), 253);
        for ok in [
            format!("https://{label63}.example"),
            format!("https://{host253}"),
            format!("x-app://{label63}"),
        ] {
            assert!(OriginPattern::parse(&ok).is_ok(), "{ok}");
        }
        for bad in [
            format!("https://{label64}.example"),
            format!("https://{host255}"),
            format!("https://*.{host253}"),
            format!("x-app://{label64}"),
            // 64 bytes once encoded: 58 letters and one ü become xn-- plus 60 bytes.
            format!("https://{}ü.example", "a".repeat(58)),
        ] {
            assert_eq!(code(&bad), ErrorCode::OriginHostTooLong, "{bad}");
        }
        let scheme32 = "s".repeat(32);
        assert!(OriginPattern::parse(&format!("{scheme32}://app")).is_ok());
    }

    #[test]
    fn fixes_suggest_the_right_spelling() {
        let e = OriginPattern::parse("https://Example.COM:443/").unwrap_err();
        assert!(e.fix().contains("https://example.com"), "{e}");
        let e = OriginPattern::parse("https://*.example.com/").unwrap_err();
        assert!(e.fix().contains("https://*.example.com."), "{e}");
        let e = OriginPattern::parse("http://localhost:*/").unwrap_err();
        assert!(e.fix().contains("http://localhost:*."), "{e}");
    }

    #[test]
    fn config_origins_accepted() {
        let exact = |s: &str| OriginPattern::Exact(s.to_owned());
        let pat = |scheme: &str, host: &str, subdomains, port| OriginPattern::Pattern {
            scheme: scheme.into(),
            host: host.into(),
            subdomains,
            port,
        };
        let table = [
            ("*", OriginPattern::Any),
            ("null", OriginPattern::Null),
            ("https://example.com", exact("https://example.com")),
            ("http://localhost:8000", exact("http://localhost:8000")),
            ("http://[::1]:8000", exact("http://[::1]:8000")),
            (
                "https://bücher.example",
                exact("https://xn--bcher-kva.example"),
            ),
            (
                "chrome-extension://abcdef",
                exact("chrome-extension://abcdef"),
            ),
            ("tauri://localhost", exact("tauri://localhost")),
            ("http://127.1", exact("http://127.0.0.1")),
            ("http://0x7f.0.0.1:8000", exact("http://127.0.0.1:8000")),
            ("http://example.com:06060", exact("http://example.com:6060")),
            ("http://[::ffff:127.0.0.1]", exact("http://[::ffff:7f00:1]")),
            ("http://[0:0::1]:3000", exact("http://[::1]:3000")),
            ("https://example.com.", exact("https://example.com")),
            (
                "https://example.com.:8443",
                exact("https://example.com:8443"),
            ),
            (
                "https://*.example.com.",
                pat("https", "example.com", true, PortPattern::Default),
            ),
            (
                "https://*.example.com",
                pat("https", "example.com", true, PortPattern::Default),
            ),
            (
                "https://*.example.com:8443",
                pat("https", "example.com", true, PortPattern::Exact(8443)),
            ),
            (
                "http://localhost:*",
                pat("http", "localhost", false, PortPattern::Any),
            ),
            (
                "http://*.localhost:*",
                pat("http", "localhost", true, PortPattern::Any),
            ),
            (
                "http://[::1]:*",
                pat("http", "[::1]", false, PortPattern::Any),
            ),
            (
                "https://*.corsair.test",
                pat("https", "corsair.test", true, PortPattern::Default),
            ),
        ];
        for (input, want) in table {
            assert_eq!(OriginPattern::parse(input).unwrap(), want, "{input}");
        }
    }
}
