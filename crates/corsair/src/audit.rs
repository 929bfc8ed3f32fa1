//! Auditing a live server's CORS, judged by what a browser would let an attacker's page read.
//!
//! Pure data and pure functions; no I/O. An [`Audit`] knows the target URL and the origins the
//! server is meant to trust. It crafts the [`Probe`]s (origins an attacker can obtain, made from
//! the target's host and from every trusted origin), says which request to send next for a probe
//! ([`Audit::next_request`]), and, given the answers, decides with the browser engine
//! ([`Fetch`]) whether a page on the probe's origin could read the response, with or without
//! the victim's cookies ([`Audit::judge`]). [`conclude`] keeps one finding per class and drops
//! the ones a broader finding explains.
//!
//! The answers are [`Answer`]s: header fields as the bytes on the wire, as `corsair check` reads
//! them ([`Fetch::receive_fields`]), so that a byte browsers accept but the `http` crate refuses
//! (a vertical tab in `Access-Control-Allow-Origin`, a NUL anywhere) is judged by the engine's
//! rules like any other answer. Each finding says what each engine does with the read it is
//! about ([`Finding::engines`]).
//!
//! Every class of finding lives once, in [`CLASSES`]: its stable id, its severity, what an
//! attacker can do, and the fix as a corsair policy line and in words.
//!
//! ```
//! use corsair::audit::{conclude, Answer, Audit, Severity};
//!
//! let audit = Audit::new("https://api.target.example/me", ["https://app.target.example"])?;
//! let probe = audit.probes().into_iter().find(|p| p.id == "origin-reflection").unwrap();
//! let request = audit.next_request(&probe, &[]).unwrap();
//!
//! // A server that echoes any origin, with cookies:
//! let answer = Answer::new(200, [
//!     ("Access-Control-Allow-Origin", probe.origin.as_bytes()),
//!     ("Access-Control-Allow-Credentials", b"true"),
//!     ("Vary", b"Origin"),
//! ]);
//! let findings = conclude(audit.judge(&probe, &[answer]));
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].id, "origin-reflection");
//! assert_eq!(findings[0].severity, Severity::Critical);
//! assert!(findings[0].credentials);
//!
//! // The same grant with a NUL byte in another header: every browser fails the response.
//! let answer = Answer::new(200, [
//!     ("Access-Control-Allow-Origin", probe.origin.as_bytes()),
//!     ("Access-Control-Allow-Credentials", b"true"),
//!     ("Vary", b"Origin"),
//!     ("X-Trace", b"a\0b"),
//! ]);
//! let findings = conclude(audit.judge(&probe, &[answer]));
//! assert_eq!(findings[0].severity, Severity::Info);
//! assert_eq!(findings[0].engines[2].message, "TypeError: Load failed");
//! # let _ = request;
//! # Ok::<(), corsair::browser::InvalidRequest>(())
//! ```

use std::fmt;

use url::Url;

use crate::browser::{
    combined, isomorphic, normalize_header_value, values, Browser, Credentials, Fetch, Fields,
    InvalidRequest, RequestInit,
};
use crate::syntax::{self, ListItem};

const ACCESS_CONTROL_ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
const ACCESS_CONTROL_ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK: &str = "access-control-allow-private-network";
const VARY: &str = "vary";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A browser blocks it anyway, or it changes nothing an attacker can do; said for the record.
    Info,
    /// Readable by an attacker only without cookies, or a broken intent without a leak.
    Low,
    /// Exploitable with a foothold (a subdomain, a network position) or by poisoning a cache.
    Medium,
    /// An attacker's page reads or drives the API with the victim's cookies.
    High,
    /// Any page on the web reads the API with the victim's cookies.
    Critical,
}

impl Severity {
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class of finding: one row of [`CLASSES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// The stable kebab-case id.
    pub id: &'static str,
    /// The severity when the attacker's page reads the response with the victim's cookies (or,
    /// for classes that are not about reading, the severity as found).
    pub severity: Severity,
    /// What an attacker can do.
    pub impact: &'static str,
    /// The fix as corsair policy lines (TOML, as `corsair proxy --config` reads them);
    /// `{origins}` stands for the trusted origins.
    pub policy: &'static str,
    /// The fix in words.
    pub fix: &'static str,
    /// Classes whose finding explains this one: when one of them is found, this one is not
    /// reported (an origin-reflecting server also allows every crafted origin).
    pub implied_by: &'static [&'static str],
}

/// The classes an arbitrary origin being allowed explains.
const REFLECTION: &[&str] = &["origin-reflection"];

/// Every class of finding, in report order.
pub const CLASSES: &[Class] = &[
    Class {
        id: "origin-reflection",
        severity: Severity::Critical,
        impact: "any page on the web can read this response: the server echoes whatever Origin it is sent",
        policy: "allow_origins = {origins}",
        fix: "compare the Origin against a fixed list of origins and never copy it into Access-Control-Allow-Origin unchecked",
        implied_by: &[],
    },
    Class {
        id: "null-origin",
        severity: Severity::High,
        impact: "sandboxed iframes, data: and file: pages send Origin: null, and any page can make one: they can read this response",
        policy: "allow_origins = {origins}",
        fix: "remove \"null\" from the allowed origins; corsair refuses it unless dangerously_allow_null_origin is set",
        implied_by: REFLECTION,
    },
    Class {
        id: "prefix-match",
        severity: Severity::High,
        impact: "the origin is checked with a prefix match: the owner of any domain that starts with a trusted host (such as https://app.example.attacker.test) can read this response",
        policy: "allow_origins = {origins}",
        fix: "compare the whole serialized origin for equality, not its start",
        implied_by: REFLECTION,
    },
    Class {
        id: "suffix-match",
        severity: Severity::High,
        impact: "the origin is checked with a suffix match: anyone who registers a domain ending in a trusted one (such as https://attackerexample.com) can read this response",
        policy: "allow_origins = {origins}",
        fix: "compare the whole serialized origin for equality; to trust subdomains, match whole labels (corsair's https://*.example.com)",
        implied_by: REFLECTION,
    },
    Class {
        id: "substring-match",
        severity: Severity::High,
        impact: "the origin is accepted when it is part of a trusted one (a substring check of a string, not a list): the owner of a shorter domain, such as the trusted one without its last letter, can read this response",
        policy: "allow_origins = {origins}",
        fix: "keep the trusted origins in a list and test membership, not a substring of a string",
        implied_by: REFLECTION,
    },
    Class {
        id: "unescaped-dot",
        severity: Severity::High,
        impact: "a regular expression with an unescaped '.' accepts another character in its place: the owner of such a domain (such as https://appxexample.com) can read this response",
        policy: "allow_origins = {origins}",
        fix: "escape the dots of a regular expression and anchor it, or better, compare against a list",
        implied_by: &["origin-reflection", "suffix-match"],
    },
    Class {
        id: "special-char-bypass",
        severity: Severity::High,
        impact: "the origin's host is cut at a character browsers accept in host names (such as '_' in https://app.example_.attacker.test): the owner of that domain can read this response",
        policy: "allow_origins = {origins}",
        fix: "parse the Origin as a URL (or compare the whole string) instead of splitting it on characters",
        implied_by: &["origin-reflection", "prefix-match"],
    },
    Class {
        id: "insecure-origin-trusted",
        severity: Severity::Medium,
        impact: "an http:// origin is trusted for an https site: anyone on the victim's network (public Wi-Fi) can inject a script into that plain-HTTP page and read this response",
        policy: "allow_origins = {origins}",
        fix: "trust only https:// origins (loopback excepted); corsair refuses http origins with credentials unless dangerously_allow_insecure_origins_with_credentials is set",
        implied_by: &["origin-reflection", "suffix-match"],
    },
    Class {
        id: "any-subdomain-trusted",
        severity: Severity::Medium,
        impact: "every subdomain is trusted: one XSS, one forgotten staging host or one dangling DNS record anywhere under the domain reads this response",
        policy: "allow_origins = {origins}",
        fix: "list the subdomains that need access; keep credentials off any subdomain wildcard",
        implied_by: &["origin-reflection", "suffix-match"],
    },
    Class {
        id: "third-party-trusted",
        severity: Severity::High,
        impact: "an origin anyone can publish on (a static-hosting or code-sharing site) is trusted: an attacker puts a page there and reads this response",
        policy: "allow_origins = {origins}",
        fix: "trust only origins you control; a custom domain instead of a shared hosting domain",
        implied_by: REFLECTION,
    },
    Class {
        id: "wildcard-with-credentials",
        severity: Severity::Low,
        impact: "the server answers Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true, meaning to share with cookies; browsers refuse every credentialed read of such a response and allow only reads without cookies",
        policy: "allow_origins = {origins}\nallow_credentials = true",
        fix: "for a public API, drop Access-Control-Allow-Credentials; for one used with cookies, list the origins instead of *",
        implied_by: &[],
    },
    Class {
        id: "missing-vary",
        severity: Severity::Medium,
        impact: "the answer depends on Origin but does not say Vary: Origin: a shared cache or CDN stores one origin's answer and serves it to the others, breaking them or leaking one origin's grant to another's request (cache poisoning)",
        policy: "",
        fix: "send Vary: Origin on every response whose CORS headers depend on Origin, including the ones without Origin (corsair's middleware does)",
        implied_by: &[],
    },
    Class {
        id: "preflight-allows-everything",
        severity: Severity::High,
        impact: "the preflight allows any method and any header from an arbitrary origin: any page can send PUT, DELETE or JSON requests to this API with the victim's cookies (cross-site request forgery), even where it cannot read the answer",
        policy: "allow_origins = {origins}\nallow_methods = [\"GET\", \"POST\"]\nallow_headers = [\"content-type\"]",
        fix: "answer preflights from trusted origins only, with the methods and headers the API uses, instead of echoing Access-Control-Request-Method and -Headers",
        implied_by: &[],
    },
    Class {
        id: "private-network",
        severity: Severity::High,
        impact: "Access-Control-Allow-Private-Network: true for an arbitrary origin: any public web page can reach this device or intranet service through the victim's browser",
        policy: "allow_origins = {origins}\nallow_private_network = true",
        fix: "grant private-network access to the origins that need it only; corsair refuses it with any origin",
        implied_by: &[],
    },
    Class {
        id: "sensitive-headers-exposed",
        severity: Severity::Medium,
        impact: "every origin may read this response and the headers it exposes look like credentials or tokens: any page on the web reads them (raised by lint, from the policy)",
        policy: "expose_headers = [\"x-request-id\"]",
        fix: "expose only harmless headers to any origin, or list the origins that need the sensitive ones",
        implied_by: &[],
    },
];

/// The class of `id`, if there is one.
pub fn class(id: &str) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.id == id)
}

/// A site anyone can publish pages on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThirdParty {
    /// The host.
    pub host: &'static str,
    /// Whether anyone gets a subdomain of it (`*.github.io`), rather than pages on it.
    pub subdomains: bool,
}

/// Origins anyone can publish on: static hosting, code sharing, pastebins. One table, used by
/// the audit's probes (and meant for lint warnings).
pub const THIRD_PARTY: &[ThirdParty] = &[
    ThirdParty {
        host: "github.io",
        subdomains: true,
    },
    ThirdParty {
        host: "gitlab.io",
        subdomains: true,
    },
    ThirdParty {
        host: "codepen.io",
        subdomains: false,
    },
    ThirdParty {
        host: "cdpn.io",
        subdomains: false,
    },
    ThirdParty {
        host: "jsfiddle.net",
        subdomains: false,
    },
    ThirdParty {
        host: "fiddle.jshell.net",
        subdomains: false,
    },
    ThirdParty {
        host: "jsbin.com",
        subdomains: false,
    },
    ThirdParty {
        host: "stackblitz.io",
        subdomains: true,
    },
    ThirdParty {
        host: "s3.amazonaws.com",
        subdomains: true,
    },
    ThirdParty {
        host: "cloudfront.net",
        subdomains: true,
    },
    ThirdParty {
        host: "herokuapp.com",
        subdomains: true,
    },
    ThirdParty {
        host: "netlify.app",
        subdomains: true,
    },
    ThirdParty {
        host: "vercel.app",
        subdomains: true,
    },
    ThirdParty {
        host: "pages.dev",
        subdomains: true,
    },
    ThirdParty {
        host: "workers.dev",
        subdomains: true,
    },
    ThirdParty {
        host: "web.app",
        subdomains: true,
    },
    ThirdParty {
        host: "firebaseapp.com",
        subdomains: true,
    },
    ThirdParty {
        host: "azurewebsites.net",
        subdomains: true,
    },
    ThirdParty {
        host: "appspot.com",
        subdomains: true,
    },
    ThirdParty {
        host: "glitch.me",
        subdomains: true,
    },
    ThirdParty {
        host: "surge.sh",
        subdomains: true,
    },
    ThirdParty {
        host: "ngrok-free.app",
        subdomains: true,
    },
    ThirdParty {
        host: "blogspot.com",
        subdomains: true,
    },
    ThirdParty {
        host: "pastebin.com",
        subdomains: false,
    },
];

/// The origin a third-party site gives an attacker: a subdomain of its own, or the site itself.
pub fn third_party_origin(site: &ThirdParty) -> String {
    if site.subdomains {
        format!("https://corsair-audit.{}", site.host)
    } else {
        format!("https://{}", site.host)
    }
}

/// Whether `host` (lowercase, no port) is on a third-party site of [`THIRD_PARTY`].
pub fn is_third_party_host(host: &str) -> bool {
    THIRD_PARTY.iter().any(|s| {
        host == s.host
            || (host.len() > s.host.len()
                && host.ends_with(s.host)
                && host.as_bytes()[host.len() - s.host.len() - 1] == b'.')
    })
}

/// Characters tried after a trusted host (`https://<host><c>.attacker.test`): ones that naive
/// origin parsers split a host on. Those the URL Standard forbids in a host (`^`, `|`) are
/// dropped by [`Audit::probes`], because no browser sends them.
pub const SPECIAL_CHARS: &[char] = &[
    '_', '-', '"', '{', '}', '+', '^', '`', '!', '~', ';', '|', '&', '\'', '(', ')', '*', ',', '$',
    '=',
];

/// The domain an attacker owns in crafted origins.
pub const ATTACKER_DOMAIN: &str = "attacker.test";

/// The arbitrary origin of the reflection probe.
pub const ARBITRARY_ORIGIN: &str = "https://corsair-audit.attacker.test";

/// The method and header of the preflight probe, which no API lists.
pub const PROBE_METHOD: &str = "CORSAIR-PROBE";
/// See [`PROBE_METHOD`].
pub const PROBE_HEADER: &str = "x-corsair-probe";

/// What a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The request as a page's `fetch()` sends it (preceded by a preflight when the audit's
    /// method or headers need one).
    Fetch,
    /// Only the preflight of a request with a method and a header no API lists.
    Preflight,
    /// A private-network preflight (`Access-Control-Request-Private-Network: true`).
    PrivateNetwork,
    /// The request from the probe's origin, then the same request without `Origin`.
    WithoutOrigin,
}

/// One probe: an origin and what to send from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The class this probe tests (a [`Class::id`]).
    pub id: &'static str,
    /// The origin the requests come from, serialized as browsers send it.
    pub origin: String,
    /// What to send.
    pub kind: ProbeKind,
}

/// One request and its answer, for a finding's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The request headers.
    pub request_headers: Vec<(String, String)>,
    /// The response status.
    pub status: u16,
    /// The response headers, lowercase names, in order.
    pub response_headers: Vec<(String, String)>,
}

/// An answer to one of a probe's requests: the status and the header fields as the bytes on the
/// wire, `(name, value)` in the order received (the name as sent, the value without the spaces
/// and tabs around it), as `corsair check`'s client reads them and [`Fetch::receive_fields`]
/// takes them. Bytes the `http` crate refuses (a vertical tab, `\x01`, a NUL) are kept: the
/// engine judges them as browsers do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header fields, in order.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Answer {
    /// An answer with `status` and these fields, in order.
    pub fn new<N, V>(status: u16, fields: impl IntoIterator<Item = (N, V)>) -> Answer
    where
        N: Into<String>,
        V: AsRef<[u8]>,
    {
        Answer {
            status,
            fields: fields
                .into_iter()
                .map(|(n, v)| (n.into(), v.as_ref().to_vec()))
                .collect(),
        }
    }

    /// An answer from an `http` header map (which cannot hold the bytes browsers judge
    /// specially, so use [`Answer::new`] with the bytes read when there may be any).
    ///
    /// ```
    /// use corsair::audit::Answer;
    /// use http::{header::VARY, HeaderMap};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(VARY, "Origin".parse().unwrap());
    /// assert_eq!(Answer::from_headers(204, &headers), Answer::new(204, [("vary", b"Origin")]));
    /// ```
    pub fn from_headers(status: u16, headers: &http::HeaderMap) -> Answer {
        Answer::new(
            status,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        )
    }

    /// The fields as the engine reads them.
    fn borrowed(&self) -> Vec<(&str, &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }
}

/// What one engine does with the read a finding is about (with the victim's cookies, as the
/// attacker would have it), replayed over the same answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVerdict {
    /// The engine.
    pub browser: Browser,
    /// Whether a page reads the response (for a preflight-only probe: the preflight passes).
    pub readable: bool,
    /// When it does not, why, in the engine's own words
    /// ([`Blocked::words`](crate::browser::Blocked::words): its console message, or the
    /// script's `TypeError` for a network error or a request it refuses to send); empty when it
    /// reads.
    pub message: String,
}

/// A request to send for a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The headers, in order (`Origin` first when there is one).
    pub headers: Vec<(String, String)>,
}

/// A finding: a class, where it was found, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The class's id.
    pub id: &'static str,
    /// How bad it is, as found (see [`Class::severity`]).
    pub severity: Severity,
    /// The probe's origin (empty for a request without `Origin`).
    pub origin: String,
    /// Whether the attacker's page reads (or sends) with the victim's cookies.
    pub credentials: bool,
    /// Why the severity is what it is, in words (when a browser blocks the read, its own words
    /// are in [`engines`](Self::engines)).
    pub note: String,
    /// The requests and answers that show it.
    pub exchanges: Vec<Exchange>,
    /// The offending response header, lowercase.
    pub culprit: &'static str,
    /// The fix as corsair policy lines, with the trusted origins filled in.
    pub policy: String,
    /// What each engine of [`Browser::ALL`] does with the read, for the findings about reading the
    /// response or passing a preflight (empty for the others: a cache's or a server's fault).
    pub engines: Vec<EngineVerdict>,
}

impl Finding {
    /// The finding's class.
    pub fn class(&self) -> &'static Class {
        class(self.id).unwrap_or(&CLASSES[0])
    }
}

/// What an audit knows: the target, the trusted origins, and the request the site makes.
#[derive(Debug, Clone)]
pub struct Audit {
    target: Url,
    target_origin: String,
    trusted: Vec<String>,
    method: String,
    headers: Vec<(String, String)>,
    cookies_only: bool,
}

/// How a replayed fetch ended.
enum Outcome {
    /// The script reads the response.
    Readable,
    /// The preflight passed (for preflight-only probes).
    PreflightPassed,
    /// The browser blocks it, with this message (in its own words).
    Blocked(String),
    /// The answers ran out before a verdict (a redirect off the target's host).
    Unfinished,
    /// An engine other than Chromium would have sent another request than the one answered.
    Diverged,
}

impl Audit {
    /// An audit of `target` (an http(s) URL) by a site whose pages are on `trusted` origins.
    /// The target's own origin is trusted too. Trusted origins are never reported.
    ///
    /// # Errors
    /// A target that is not an http(s) URL, or a trusted origin that is not an origin.
    pub fn new<I, S>(target: &str, trusted: I) -> Result<Audit, InvalidRequest>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let url = Url::parse(target)
            .map_err(|e| InvalidRequest(format!("invalid URL {target:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(InvalidRequest(format!(
                "{target:?} is not an http or https URL"
            )));
        }
        let target_origin = url.origin().ascii_serialization();
        let mut list = vec![target_origin.clone()];
        for t in trusted {
            let t = t.as_ref();
            let origin = serialize_origin(t).ok_or_else(|| {
                InvalidRequest(format!(
                    "--origin {t:?} is not an origin such as https://app.example.com"
                ))
            })?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        Ok(Audit {
            target: url,
            target_origin,
            trusted: list,
            method: "GET".to_owned(),
            headers: Vec::new(),
            cookies_only: false,
        })
    }

    /// The method and headers the site's pages send (a non-simple request adds a preflight to
    /// every probe).
    ///
    /// # Errors
    /// When a browser would refuse to send such a request.
    pub fn with_request(
        mut self,
        method: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Audit, InvalidRequest> {
        // As fetch() takes them, so that the requests sent without the engine carry them too.
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(n, v)| {
                let v = normalize_header_value(&v).to_owned();
                (n, v)
            })
            .collect();
        Fetch::new(
            Browser::Chromium,
            ARBITRARY_ORIGIN,
            self.target.as_str(),
            RequestInit {
                method: method.to_owned(),
                headers: headers.clone(),
                credentials: Credentials::Include,
            },
        )?;
        self.method = method.to_owned();
        self.headers = headers;
        Ok(self)
    }

    /// Report only what an attacker reads or sends with the victim's cookies (`credentials:
    /// 'include'`): reads possible only without cookies are left out.
    pub fn cookies_only(mut self, yes: bool) -> Audit {
        self.cookies_only = yes;
        self
    }

    /// The target URL.
    pub fn target(&self) -> &str {
        self.target.as_str()
    }

    /// The trusted origins, the target's first.
    pub fn trusted(&self) -> &[String] {
        &self.trusted
    }

    /// The probes, most telling first (a budget of requests keeps a prefix of them): the
    /// arbitrary origin, `null`, the cache checks, the origins crafted from each trusted host,
    /// the preflights, third-party hosting, then special characters.
    pub fn probes(&self) -> Vec<Probe> {
        let mut out: Vec<Probe> = Vec::new();
        let push = |out: &mut Vec<Probe>, id: &'static str, origin: String, kind| {
            let Some(origin) = (if origin == "null" {
                Some(origin)
            } else {
                serialize_origin(&origin)
            }) else {
                return;
            };
            let trusted = self.trusted.contains(&origin);
            let is_vary = id == "missing-vary";
            if (trusted != is_vary) || out.iter().any(|p| p.origin == origin && p.kind == kind) {
                return;
            }
            out.push(Probe { id, origin, kind });
        };
        push(
            &mut out,
            "origin-reflection",
            ARBITRARY_ORIGIN.to_owned(),
            ProbeKind::Fetch,
        );
        push(&mut out, "null-origin", "null".to_owned(), ProbeKind::Fetch);
        if let Some(own) = self.trusted.iter().find(|t| **t != self.target_origin) {
            push(&mut out, "missing-vary", own.clone(), ProbeKind::Fetch);
        }
        out.push(Probe {
            id: "missing-vary",
            origin: ARBITRARY_ORIGIN.to_owned(),
            kind: ProbeKind::WithoutOrigin,
        });
        let bases: Vec<Base> = self.trusted.iter().filter_map(|t| Base::of(t)).collect();
        for b in &bases {
            push(
                &mut out,
                "prefix-match",
                b.with_host(&format!("{}.{ATTACKER_DOMAIN}", b.host)),
                ProbeKind::Fetch,
            );
            push(
                &mut out,
                "suffix-match",
                b.with_host(&format!("attacker{}", b.site)),
                ProbeKind::Fetch,
            );
            if b.host.len() > 1 {
                push(
                    &mut out,
                    "substring-match",
                    b.with_host(&b.host[..b.host.len() - 1]),
                    ProbeKind::Fetch,
                );
            }
            if let Some(i) = b.host.find('.') {
                let h = format!("{}x{}", &b.host[..i], &b.host[i + 1..]);
                push(&mut out, "unescaped-dot", b.with_host(&h), ProbeKind::Fetch);
            }
            if b.scheme == "https" {
                let port = b.port.map_or(String::new(), |p| format!(":{p}"));
                push(
                    &mut out,
                    "insecure-origin-trusted",
                    format!("http://{}{port}", b.host),
                    ProbeKind::Fetch,
                );
            }
            push(
                &mut out,
                "any-subdomain-trusted",
                b.with_host(&format!("corsair-audit.{}", b.site)),
                ProbeKind::Fetch,
            );
        }
        push(
            &mut out,
            "preflight-allows-everything",
            ARBITRARY_ORIGIN.to_owned(),
            ProbeKind::Preflight,
        );
        push(
            &mut out,
            "private-network",
            ARBITRARY_ORIGIN.to_owned(),
            ProbeKind::PrivateNetwork,
        );
        for site in THIRD_PARTY {
            push(
                &mut out,
                "third-party-trusted",
                third_party_origin(site),
                ProbeKind::Fetch,
            );
        }
        for b in &bases {
            for c in SPECIAL_CHARS {
                push(
                    &mut out,
                    "special-char-bypass",
                    b.with_host(&format!("{}{c}.{ATTACKER_DOMAIN}", b.host)),
                    ProbeKind::Fetch,
                );
            }
        }
        out
    }

    fn fetch(
        &self,
        probe: &Probe,
        browser: Browser,
        credentials: Credentials,
    ) -> Result<Fetch, InvalidRequest> {
        let (method, headers) = match probe.kind {
            ProbeKind::Preflight => (
                PROBE_METHOD.to_owned(),
                vec![(PROBE_HEADER.to_owned(), "1".to_owned())],
            ),
            ProbeKind::PrivateNetwork => ("GET".to_owned(), Vec::new()),
            ProbeKind::Fetch | ProbeKind::WithoutOrigin => {
                (self.method.clone(), self.headers.clone())
            }
        };
        Fetch::new(
            browser,
            &probe.origin,
            self.target.as_str(),
            RequestInit {
                method,
                headers,
                credentials,
            },
        )
    }

    /// The request to send next for `probe`, given the answers so far; `None` when the probe
    /// is done: the browser has its verdict, the preflight-only probe has its preflight answer,
    /// or the next request would leave the target's host (a redirect is followed on it only).
    pub fn next_request(&self, probe: &Probe, answers: &[Answer]) -> Option<Request> {
        let origin = || ("Origin".to_owned(), probe.origin.clone());
        let url = self.target.to_string();
        match probe.kind {
            ProbeKind::PrivateNetwork => answers.is_empty().then(|| Request {
                method: "OPTIONS".to_owned(),
                url,
                headers: vec![
                    origin(),
                    ("Access-Control-Request-Method".to_owned(), "GET".to_owned()),
                    (
                        "Access-Control-Request-Private-Network".to_owned(),
                        "true".to_owned(),
                    ),
                ],
            }),
            ProbeKind::WithoutOrigin => {
                let mut headers: Vec<(String, String)> = self.headers.clone();
                match answers.len() {
                    0 => headers.insert(0, origin()),
                    1 => {}
                    _ => return None,
                }
                Some(Request {
                    method: self.method.clone(),
                    url,
                    headers,
                })
            }
            ProbeKind::Fetch | ProbeKind::Preflight => {
                let mut fetch = self
                    .fetch(probe, Browser::Chromium, Credentials::Include)
                    .ok()?;
                for answer in answers {
                    fetch.request()?;
                    if fetch
                        .receive_fields(answer.status, &answer.borrowed())
                        .is_some()
                    {
                        return None;
                    }
                }
                let out = fetch.request()?;
                if (probe.kind == ProbeKind::Preflight && !out.preflight)
                    || out.url.host_str() != self.target.host_str()
                {
                    return None;
                }
                let mut headers = out.headers;
                // The audit sends the Origin a browser would send even on a same-origin GET.
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("origin"))
                {
                    headers.insert(0, origin());
                }
                Some(Request {
                    method: out.method,
                    url: out.url.to_string(),
                    headers,
                })
            }
        }
    }

    /// Replays `probe` over `answers` with a credentials mode, by Chromium's rules.
    fn replay(&self, probe: &Probe, credentials: Credentials, answers: &[Answer]) -> Outcome {
        self.replay_in(probe, Browser::Chromium, credentials, answers)
    }

    /// Replays `probe` over `answers` in `browser`. The answers are to the requests Chromium
    /// sends ([`Audit::next_request`]): another engine that would send another request (a
    /// preflight Chromium does not send, say) is not judged on them.
    fn replay_in(
        &self,
        probe: &Probe,
        browser: Browser,
        credentials: Credentials,
        answers: &[Answer],
    ) -> Outcome {
        let mut fetch = match self.fetch(probe, browser, credentials) {
            Ok(fetch) => fetch,
            // This engine's fetch() throws (Safari's mixed-content rule, say).
            Err(e) if browser != Browser::Chromium => {
                return Outcome::Blocked(format!("TypeError: {}", e.0))
            }
            Err(_) => return Outcome::Unfinished,
        };
        for (i, answer) in answers.iter().enumerate() {
            let Some(out) = fetch.request() else {
                break;
            };
            if browser != Browser::Chromium
                && self
                    .next_request(probe, &answers[..i])
                    .is_none_or(|sent| sent.method != out.method || sent.url != out.url.as_str())
            {
                return Outcome::Diverged;
            }
            match fetch.receive_fields(answer.status, &answer.borrowed()) {
                Some(Ok(_)) => return Outcome::Readable,
                Some(Err(blocked)) => return Outcome::Blocked(blocked.words(browser)),
                None => {
                    if probe.kind == ProbeKind::Preflight && fetch.preflight_result().is_some() {
                        return Outcome::PreflightPassed;
                    }
                }
            }
        }
        Outcome::Unfinished
    }

    /// What each engine does with `probe`'s read, with the victim's cookies.
    fn engines(&self, probe: &Probe, answers: &[Answer]) -> Vec<EngineVerdict> {
        Browser::ALL
            .iter()
            .map(|&browser| {
                let (readable, message) =
                    match self.replay_in(probe, browser, Credentials::Include, answers) {
                        Outcome::Readable | Outcome::PreflightPassed => (true, String::new()),
                        Outcome::Blocked(m) => (false, m),
                        Outcome::Unfinished => (
                            false,
                            "no verdict: the next request leaves the target's host, where the audit does not follow".to_owned(),
                        ),
                        Outcome::Diverged => (
                            false,
                            "not judged: this engine sends other requests than the ones answered".to_owned(),
                        ),
                    };
                EngineVerdict {
                    browser,
                    readable,
                    message,
                }
            })
            .collect()
    }

    fn exchanges(&self, probe: &Probe, answers: &[Answer]) -> Vec<Exchange> {
        (0..answers.len())
            .filter_map(|i| {
                let req = self.next_request(probe, &answers[..i])?;
                let answer = &answers[i];
                Some(Exchange {
                    method: req.method,
                    url: req.url,
                    request_headers: req.headers,
                    status: answer.status,
                    response_headers: pairs(&answer.fields),
                })
            })
            .collect()
    }

    /// A finding of class `id` with the offending header `culprit`, as judged.
    fn finding(
        &self,
        probe: &Probe,
        (id, culprit): (&'static str, &'static str),
        (severity, credentials, note): (Severity, bool, String),
        exchanges: Vec<Exchange>,
    ) -> Finding {
        let origins: Vec<&String> = self
            .trusted
            .iter()
            .filter(|t| **t != self.target_origin)
            .collect();
        let list = format!(
            "[{}]",
            origins
                .iter()
                .map(|o| format!("{o:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let policy = class(id).map_or(String::new(), |c| c.policy.replace("{origins}", &list));
        Finding {
            id,
            severity,
            origin: probe.origin.clone(),
            credentials,
            note,
            exchanges,
            culprit,
            policy,
            engines: Vec::new(),
        }
    }

    /// What the answers to `probe` show: every finding, before [`conclude`] merges them.
    ///
    /// A crafted origin is a finding when a page on it could read the response: with the
    /// victim's cookies at the class's severity, without them at `low` (as public as `*`), and
    /// when the server grants the origin but the browser blocks the read anyway, at `info`; each
    /// engine's words are in [`Finding::engines`]. `*` without credentials is public by design
    /// and never a finding.
    pub fn judge(&self, probe: &Probe, answers: &[Answer]) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(answer) = answers.last() else {
            return out;
        };
        let (status, fields) = (&answer.status, answer.borrowed());
        let last: &Fields<'_> = &fields;
        let exchanges = self.exchanges(probe, answers);
        let acao = combined(last, ACCESS_CONTROL_ALLOW_ORIGIN);
        match probe.kind {
            ProbeKind::WithoutOrigin => {
                if let [with, without] = answers {
                    let (with, without) = (with.borrowed(), without.borrowed());
                    if combined(&with, ACCESS_CONTROL_ALLOW_ORIGIN).as_deref() == Some("*")
                        && values(&without, ACCESS_CONTROL_ALLOW_ORIGIN)
                            .next()
                            .is_none()
                        && !varies_on_origin(&without)
                    {
                        out.push(self.finding(probe, ("missing-vary", "vary"), (Severity::Medium, false, "Access-Control-Allow-Origin: * is sent only when the request has an Origin, and the answer without one has no Vary: Origin: a cache that stores it serves it to pages, which the browser then blocks".to_owned()), exchanges));
                    }
                }
                return out;
            }
            ProbeKind::PrivateNetwork => {
                let granted = combined(last, ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                if granted && (200..=299).contains(status) {
                    // The preflight's CORS check is the actual response's: replay it as one.
                    let as_get = Probe {
                        kind: ProbeKind::Fetch,
                        ..probe.clone()
                    };
                    let simple = Audit {
                        method: "GET".to_owned(),
                        headers: Vec::new(),
                        ..self.clone()
                    };
                    let answer = [Answer {
                        status: 200,
                        ..answer.clone()
                    }];
                    let inc = matches!(
                        simple.replay(&as_get, Credentials::Include, &answer),
                        Outcome::Readable
                    );
                    let omit = matches!(
                        simple.replay(&as_get, Credentials::Omit, &answer),
                        Outcome::Readable
                    );
                    if inc || (omit && !self.cookies_only) {
                        out.push(
                            self.finding(
                                probe,
                                ("private-network", "access-control-allow-private-network"),
                                (
                                    Severity::High,
                                    inc,
                                    "the private-network preflight from an arbitrary origin passes"
                                        .to_owned(),
                                ),
                                exchanges,
                            ),
                        );
                    }
                }
                return out;
            }
            ProbeKind::Preflight => {
                let inc = self.replay(probe, Credentials::Include, answers);
                let omit = self.replay(probe, Credentials::Omit, answers);
                let found = match (&inc, &omit) {
                    (Outcome::PreflightPassed | Outcome::Readable, _) => Some((Severity::High, true, "the preflight of an unlisted method and header passes with cookies".to_owned())),
                    (_, Outcome::PreflightPassed | Outcome::Readable) if !self.cookies_only => Some((Severity::Low, false, "the preflight of an unlisted method and header passes, without cookies only: no more than a script outside a browser can do, unless the API trusts the caller's network".to_owned())),
                    _ => None,
                };
                if let Some((severity, credentials, note)) = found {
                    let mut finding = self.finding(
                        probe,
                        (probe.id, "access-control-allow-methods"),
                        (severity, credentials, note),
                        exchanges,
                    );
                    finding.engines = self.engines(probe, answers);
                    out.push(finding);
                }
                return out;
            }
            ProbeKind::Fetch => {}
        }
        // The cache: an answer that names the origin must vary on it.
        if let Some(v) = acao.as_deref().filter(|v| *v != "*") {
            if !varies_on_origin(last) {
                out.push(self.finding(probe, ("missing-vary", "vary"), (Severity::Medium, false, format!("Access-Control-Allow-Origin: {v} depends on the request's Origin, without Vary: Origin")), exchanges.clone()));
            }
        }
        let wildcard = acao.as_deref() == Some("*");
        let inc = self.replay(probe, Credentials::Include, answers);
        let omit = self.replay(probe, Credentials::Omit, answers);
        if wildcard
            && combined(last, ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            let note = match &inc {
                Outcome::Blocked(_) => "with cookies the browser blocks the read".to_owned(),
                _ => String::new(),
            };
            let mut finding = self.finding(
                probe,
                (
                    "wildcard-with-credentials",
                    "access-control-allow-credentials",
                ),
                (Severity::Low, false, note),
                exchanges.clone(),
            );
            finding.engines = self.engines(probe, answers);
            out.push(finding);
        }
        if probe.id == "missing-vary" {
            return out;
        }
        let class = class(probe.id).map_or(Severity::High, |c| c.severity);
        let class = if probe.id == "insecure-origin-trusted" && self.target.scheme() == "http" {
            None
        } else {
            Some(class)
        };
        let (severity, credentials, note) = match (&inc, &omit) {
            (Outcome::Readable, _) => match class {
                Some(s) => (s, true, "readable with the victim's cookies".to_owned()),
                None => (Severity::Info, true, "readable with the victim's cookies, but the target itself is served over http: a network attacker reads it directly".to_owned()),
            },
            (Outcome::Blocked(_), Outcome::Readable) if !wildcard && !self.cookies_only => (
                if class.is_some() { Severity::Low } else { Severity::Info },
                false,
                "readable without cookies only (as public as *); with cookies the browser blocks the read".to_owned(),
            ),
            (Outcome::Blocked(_), Outcome::Blocked(_))
                if !self.cookies_only && acao.as_deref().is_some_and(|v| v.contains(probe.origin.as_str())) =>
            {
                (Severity::Info, false, "the server grants the origin, but the browser blocks the read".to_owned())
            }
            _ => return out,
        };
        let mut finding = self.finding(
            probe,
            (probe.id, "access-control-allow-origin"),
            (severity, credentials, note),
            exchanges,
        );
        finding.engines = self.engines(probe, answers);
        out.push(finding);
        out
    }
}

/// A risky but valid setting of a policy, in the terms of the audit's [`CLASSES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    /// The class's id.
    pub id: &'static str,
    /// The setting at fault, as written (an origin, or an exposed header).
    pub value: String,
}

impl PolicyWarning {
    /// The warning's class (its impact and fix).
    pub fn class(&self) -> &'static Class {
        class(self.id).unwrap_or(&CLASSES[0])
    }
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.class();
        write!(
            f,
            "[{}] {:?}: {}. Fix: {}",
            self.id, self.value, c.impact, c.fix
        )
    }
}

/// Names of exposed headers that look like credentials or tokens.
const SENSITIVE_HEADER_WORDS: &[&str] = &[
    "auth", "token", "session", "secret", "key", "csrf", "xsrf", "cookie", "password",
];

/// The valid but risky settings of a policy, for `corsair lint`: an `http://` origin that is not
/// loopback (`insecure-origin-trusted`), a subdomain pattern with credentials
/// (`any-subdomain-trusted`), an origin on a site anyone can publish on
/// (`third-party-trusted`), and any origin with exposed headers that look sensitive
/// (`sensitive-headers-exposed`). Settings `build` refuses are its business, not this one's.
///
/// ```
/// use corsair::{audit::policy_warnings, Policy};
///
/// let builder = Policy::builder()
///     .allow_origins(["https://*.example.com", "https://someone.github.io"])
///     .allow_credentials(true);
/// let ids: Vec<&str> = policy_warnings(&builder).iter().map(|w| w.id).collect();
/// assert_eq!(ids, ["any-subdomain-trusted", "third-party-trusted"]);
/// ```
pub fn policy_warnings(builder: &crate::PolicyBuilder) -> Vec<PolicyWarning> {
    let mut out = Vec::new();
    let mut warn = |id: &'static str, value: &str| {
        let w = PolicyWarning {
            id,
            value: value.to_owned(),
        };
        if !out.contains(&w) {
            out.push(w);
        }
    };
    let mut any = false;
    for origin in &builder.origins {
        let origin = origin.trim();
        if origin == "*" {
            any = true;
            continue;
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            continue;
        };
        let (subdomains, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let host = if rest.starts_with('[') {
            rest.find(']').map_or(rest, |i| &rest[..=i])
        } else {
            rest.split(':').next().unwrap_or(rest)
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // As the URL Standard reads it, so `127.1` is the loopback 127.0.0.1 it is.
        let host = url::Host::parse(&host).map_or(host, |h| h.to_string());
        if scheme.eq_ignore_ascii_case("http") && !crate::origin::is_loopback_host(&host) {
            warn("insecure-origin-trusted", origin);
        }
        if subdomains && builder.credentials {
            warn("any-subdomain-trusted", origin);
        }
        if is_third_party_host(&host) {
            warn("third-party-trusted", origin);
        }
    }
    if any {
        for name in &builder.expose {
            let lower = name.trim().to_ascii_lowercase();
            if lower == "*" || SENSITIVE_HEADER_WORDS.iter().any(|w| lower.contains(w)) {
                warn("sensitive-headers-exposed", name);
            }
        }
    }
    out
}

/// One finding per class (the most severe), without the classes a broader finding explains
/// ([`Class::implied_by`]), in the order of [`CLASSES`].
pub fn conclude(findings: Vec<Finding>) -> Vec<Finding> {
    let mut best: Vec<Finding> = Vec::new();
    for f in findings {
        match best.iter_mut().find(|b| b.id == f.id) {
            Some(b) if (f.severity, f.credentials) > (b.severity, b.credentials) => *b = f,
            Some(_) => {}
            None => best.push(f),
        }
    }
    let serious = |id: &str| {
        best.iter()
            .any(|b| b.id == id && b.severity > Severity::Info)
    };
    let keep: Vec<bool> = best
        .iter()
        .map(|f| !f.class().implied_by.iter().any(|by| serious(by)))
        .collect();
    let mut out: Vec<Finding> = best
        .into_iter()
        .zip(keep)
        .filter_map(|(f, k)| k.then_some(f))
        .collect();
    out.sort_by_key(|f| CLASSES.iter().position(|c| c.id == f.id));
    out
}

/// The origins a probe is crafted from: scheme, host, port, and the registrable domain.
struct Base {
    scheme: String,
    host: String,
    port: Option<u16>,
    site: String,
}

impl Base {
    /// A trusted origin with a domain host (crafting from an IP address means nothing).
    fn of(origin: &str) -> Option<Base> {
        let url = Url::parse(origin).ok()?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return None;
        };
        let site = psl::domain_str(host).unwrap_or(host).to_owned();
        Some(Base {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port: url.port(),
            site,
        })
    }

    fn with_host(&self, host: &str) -> String {
        match self.port {
            Some(p) => format!("{}://{host}:{p}", self.scheme),
            None => format!("{}://{host}", self.scheme),
        }
    }
}

/// The serialized origin of `s`, if it parses as an http(s) URL with a domain or address and
/// the serialization is a valid header value.
fn serialize_origin(s: &str) -> Option<String> {
    let url = Url::parse(s).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let o = url.origin();
    if !o.is_tuple() {
        return None;
    }
    let out = o.ascii_serialization();
    http::HeaderValue::from_str(&out).ok()?;
    Some(out)
}

/// Whether a `Vary` field names `Origin` (or is `*`), read as a list like the engine's (an
/// element holding a control byte is no name: a cache that reads it does not vary on Origin).
fn varies_on_origin(fields: &Fields<'_>) -> bool {
    let mut found = false;
    let _ = syntax::for_each_list_item(values(fields, VARY), usize::MAX, usize::MAX, |item| {
        if let ListItem::Token(t) = item {
            found = t.eq_ignore_ascii_case(b"origin") || t == b"*";
        }
        !found
    });
    found
}

/// Header fields for a finding's evidence: names lowercase, values one character per byte (as
/// browsers show them).
fn pairs(fields: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), isomorphic(v)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn probes(target: &str, trusted: &[&str]) -> Vec<(&'static str, String, ProbeKind)> {
        Audit::new(target, trusted)
            .unwrap()
            .probes()
            .into_iter()
            .map(|p| (p.id, p.origin, p.kind))
            .collect()
    }

    #[test]
    fn probes_are_crafted_from_every_trusted_host_and_never_a_trusted_origin() {
        let got = probes(
            "https://api.target.example/v1",
            &["https://app.target.example:8443"],
        );
        for want in [
            ("origin-reflection", "https://corsair-audit.attacker.test"),
            ("null-origin", "null"),
            ("missing-vary", "https://app.target.example:8443"),
            ("prefix-match", "https://api.target.example.attacker.test"),
            (
                "prefix-match",
                "https://app.target.example.attacker.test:8443",
            ),
            ("suffix-match", "https://attackertarget.example"),
            ("suffix-match", "https://attackertarget.example:8443"),
            ("substring-match", "https://api.target.exampl"),
            ("unescaped-dot", "https://appxtarget.example:8443"),
            ("insecure-origin-trusted", "http://api.target.example"),
            ("insecure-origin-trusted", "http://app.target.example:8443"),
            (
                "any-subdomain-trusted",
                "https://corsair-audit.target.example",
            ),
            ("third-party-trusted", "https://corsair-audit.github.io"),
            ("third-party-trusted", "https://codepen.io"),
            (
                "special-char-bypass",
                "https://api.target.example_.attacker.test",
            ),
            (
                "special-char-bypass",
                "https://app.target.example`.attacker.test:8443",
            ),
            (
                "special-char-bypass",
                "https://app.target.example\".attacker.test:8443",
            ),
        ] {
            assert!(
                got.iter().any(|(id, o, _)| (*id, o.as_str()) == want),
                "{want:?} missing"
            );
        }
        // The URL Standard forbids ^ and | in hosts: no browser sends such an origin.
        assert!(!got
            .iter()
            .any(|(_, o, _)| o.contains('^') || o.contains('|')));
        assert_eq!(
            got.iter()
                .filter(|(id, _, _)| *id == "special-char-bypass")
                .count(),
            2 * 18
        );
        // Trusted origins are probed only for the cache check.
        for (id, o, _) in &got {
            if o == "https://api.target.example" || o == "https://app.target.example:8443" {
                assert_eq!(*id, "missing-vary");
            }
        }
        assert!(got.contains(&(
            "preflight-allows-everything",
            ARBITRARY_ORIGIN.to_owned(),
            ProbeKind::Preflight
        )));
    }

    #[test]
    fn an_address_is_not_crafted_from() {
        let got = probes("http://127.0.0.1:9000/api", &[]);
        let ids: Vec<&str> = got.iter().map(|(id, _, _)| *id).collect();
        assert!(!ids.contains(&"prefix-match") && !ids.contains(&"special-char-bypass"));
        assert_eq!(
            ids[..3],
            ["origin-reflection", "null-origin", "missing-vary"]
        );
        assert_eq!(got[2].2, ProbeKind::WithoutOrigin);
    }

    fn answer(status: u16, pairs: &[(&str, &str)]) -> Answer {
        Answer::new(status, pairs.iter().copied())
    }

    fn judge(pairs: &[(&str, &str)]) -> Vec<Finding> {
        let audit = Audit::new(
            "https://api.target.example/",
            ["https://app.target.example"],
        )
        .unwrap();
        let probe = audit.probes().remove(0);
        conclude(audit.judge(&probe, &[answer(200, pairs)]))
    }

    #[test]
    fn a_reflection_without_credentials_is_low_and_says_why() {
        let f = judge(&[
            ("access-control-allow-origin", ARBITRARY_ORIGIN),
            ("vary", "Origin"),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id, f[0].severity, f[0].credentials),
            ("origin-reflection", Severity::Low, false)
        );
        let chromium = &f[0].engines[0];
        assert_eq!(chromium.browser, Browser::Chromium);
        assert!(
            chromium
                .message
                .contains("'Access-Control-Allow-Credentials' header in the response is ''"),
            "{}",
            chromium.message
        );
    }

    #[test]
    fn a_grant_the_browser_blocks_is_informational_with_the_browsers_reason() {
        let listed = format!("https://app.target.example, {ARBITRARY_ORIGIN}");
        let f = judge(&[
            ("access-control-allow-origin", &listed),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id, f[0].severity),
            ("origin-reflection", Severity::Info)
        );
        let words: Vec<(Browser, bool, &str)> = f[0]
            .engines
            .iter()
            .map(|e| (e.browser, e.readable, e.message.as_str()))
            .collect();
        assert!(words[0].2.contains("contains multiple values"), "{words:?}");
        assert!(
            words[1].2.ends_with(&format!(
                "(Reason: CORS header ‘Access-Control-Allow-Origin’ does not match ‘{listed}’)."
            )),
            "{words:?}"
        );
        assert!(
            words[2]
                .2
                .starts_with("Access-Control-Allow-Origin cannot contain more than one origin.\n"),
            "{words:?}"
        );
        assert!(words.iter().all(|(_, readable, _)| !readable));
    }

    #[test]
    fn answers_keep_the_bytes_browsers_judge() {
        let audit = Audit::new("https://api.target.example/", [] as [&str; 0]).unwrap();
        let probe = audit.probes().remove(0);
        let grant = |vary: &[u8]| {
            Answer::new(
                200,
                [
                    ("Access-Control-Allow-Origin", ARBITRARY_ORIGIN.as_bytes()),
                    ("Access-Control-Allow-Credentials", b"true"),
                    ("Vary", vary),
                ],
            )
        };
        let ids = |a: Answer| {
            conclude(audit.judge(&probe, &[a]))
                .iter()
                .map(|f| (f.id, f.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(grant(b"Accept, origin")),
            [("origin-reflection", Severity::Critical)]
        );
        // A vertical tab makes another name: no cache varies on it.
        assert_eq!(
            ids(grant(b"Origin\x0b")),
            [
                ("origin-reflection", Severity::Critical),
                ("missing-vary", Severity::Medium)
            ]
        );
        let f = conclude(audit.judge(&probe, &[grant(b"Origin\x0b")]));
        assert!(f[0]
            .engines
            .iter()
            .all(|e| e.readable && e.message.is_empty()));
        assert_eq!(
            f[1].exchanges[0].response_headers[2],
            ("vary".to_owned(), "Origin\u{b}".to_owned())
        );
        // A redirect to a Location with a control byte is no redirect a browser follows.
        let mut moved = grant(b"Origin");
        moved.status = 302;
        moved
            .fields
            .push(("Location".to_owned(), b"/b\x0b".to_vec()));
        let answers = [moved];
        assert_eq!(audit.next_request(&probe, &answers), None);
        let f = conclude(audit.judge(&probe, &answers));
        assert_eq!(
            (f[0].id, f[0].severity),
            ("origin-reflection", Severity::Info)
        );
        assert_eq!(
            f[0].engines[0].message,
            "TypeError: Failed to fetch (invalid redirect location \"/b\\u{b}\")"
        );
    }

    #[test]
    fn request_headers_are_normalized_as_fetch_does() {
        let audit = Audit::new("https://api.target.example/", [] as [&str; 0])
            .unwrap()
            .with_request("GET", vec![("X-A".into(), " \t\u{b}v\u{c} \r\n".into())])
            .unwrap();
        // The request without Origin is sent as the site's own, outside the engine.
        let probe = audit
            .probes()
            .into_iter()
            .find(|p| p.kind == ProbeKind::WithoutOrigin)
            .unwrap();
        let first = audit.next_request(&probe, &[]).unwrap();
        let second = audit.next_request(&probe, &[Answer::default()]).unwrap();
        for req in [first, second] {
            assert!(
                req.headers
                    .contains(&("X-A".to_owned(), "\u{b}v\u{c}".to_owned())),
                "{:?}",
                req.headers
            );
        }
    }

    #[test]
    fn public_star_is_no_finding_and_a_missing_vary_is() {
        assert!(judge(&[("access-control-allow-origin", "*")]).is_empty());
        let f = judge(&[("access-control-allow-origin", "https://app.target.example")]);
        assert_eq!(f.iter().map(|f| f.id).collect::<Vec<_>>(), ["missing-vary"]);
    }

    #[test]
    fn redirects_are_followed_on_the_targets_host_only() {
        let audit = Audit::new("https://api.target.example/a", [] as [&str; 0]).unwrap();
        let probe = audit.probes().remove(0);
        // A cross-origin redirect passes the CORS check first, as browsers require.
        let grant = [
            ("access-control-allow-origin", ARBITRARY_ORIGIN),
            ("access-control-allow-credentials", "true"),
        ];
        let on = answer(302, &[grant[0], grant[1], ("location", "/b")]);
        let next = audit.next_request(&probe, &[on]).unwrap();
        assert_eq!(next.url, "https://api.target.example/b");
        let off = answer(
            302,
            &[
                grant[0],
                grant[1],
                ("location", "https://elsewhere.example/b"),
            ],
        );
        assert_eq!(audit.next_request(&probe, &[off]), None);
    }

    #[test]
    fn a_non_simple_request_is_preflighted_and_judged_on_both_answers() {
        let audit = Audit::new("https://api.target.example/a", [] as [&str; 0])
            .unwrap()
            .with_request(
                "PUT",
                vec![("Content-Type".into(), "application/json".into())],
            )
            .unwrap();
        let probe = audit.probes().remove(0);
        let first = audit.next_request(&probe, &[]).unwrap();
        assert_eq!(first.method, "OPTIONS");
        let preflight = answer(
            204,
            &[
                ("access-control-allow-origin", ARBITRARY_ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "PUT"),
                ("access-control-allow-headers", "content-type"),
            ],
        );
        let second = audit
            .next_request(&probe, std::slice::from_ref(&preflight))
            .unwrap();
        assert_eq!(second.method, "PUT");
        let actual = answer(
            200,
            &[
                ("access-control-allow-origin", ARBITRARY_ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("vary", "Origin"),
            ],
        );
        let answers = [preflight, actual];
        assert_eq!(audit.next_request(&probe, &answers), None);
        let f = conclude(audit.judge(&probe, &answers));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id, f[0].severity),
            ("origin-reflection", Severity::Critical)
        );
        assert_eq!(f[0].exchanges.len(), 2);
        // --credentials: a read without cookies only is left out.
        let cookies = audit.clone().cookies_only(true);
        let star = [
            answer(
                204,
                &[
                    ("access-control-allow-origin", ARBITRARY_ORIGIN),
                    ("access-control-allow-methods", "PUT"),
                    ("access-control-allow-headers", "content-type"),
                ],
            ),
            answer(
                200,
                &[
                    ("access-control-allow-origin", ARBITRARY_ORIGIN),
                    ("vary", "Origin"),
                ],
            ),
        ];
        assert_eq!(
            conclude(audit.judge(&probe, &star))[0].severity,
            Severity::Low
        );
        assert!(conclude(cookies.judge(&probe, &star)).is_empty());
    }

    #[test]
    fn third_party_hosts_match_whole_labels() {
        assert!(is_third_party_host("someone.github.io"));
        assert!(is_third_party_host("codepen.io"));
        assert!(!is_third_party_host("notgithub.io"));
        assert!(!is_third_party_host("example.com"));
    }

    fn warnings(b: crate::PolicyBuilder) -> Vec<(&'static str, String)> {
        policy_warnings(&b)
            .into_iter()
            .map(|w| (w.id, w.value))
            .collect()
    }

    #[test]
    fn lint_warns_of_risky_but_valid_settings() {
        let b = crate::Policy::builder;
        assert_eq!(
            warnings(b().allow_origins([
                "http://app.example.com",
                "http://localhost:8000",
                "http://127.0.0.1:*",
                "https://app.example.com"
            ])),
            [(
                "insecure-origin-trusted",
                "http://app.example.com".to_owned()
            )]
        );
        // A subdomain pattern is a warning with credentials only.
        assert!(warnings(b().allow_origins(["https://*.example.com"])).is_empty());
        assert_eq!(
            warnings(
                b().allow_origins(["https://*.example.com"])
                    .allow_credentials(true)
            ),
            [("any-subdomain-trusted", "https://*.example.com".to_owned())]
        );
        assert_eq!(
            warnings(b().allow_origins([
                "https://codepen.io",
                "https://*.s3.amazonaws.com",
                "https://notcodepen.io"
            ])),
            [
                ("third-party-trusted", "https://codepen.io".to_owned()),
                (
                    "third-party-trusted",
                    "https://*.s3.amazonaws.com".to_owned()
                ),
            ]
        );
        assert_eq!(
            warnings(b().allow_origins(["*"]).expose_headers([
                "x-request-id",
                "X-Auth-Token",
                "x-csrf"
            ])),
            [
                ("sensitive-headers-exposed", "X-Auth-Token".to_owned()),
                ("sensitive-headers-exposed", "x-csrf".to_owned()),
            ]
        );
        // The same headers for listed origins are their business.
        assert!(warnings(
            b().allow_origins(["https://app.example.com"])
                .expose_headers(["x-auth-token"])
        )
        .is_empty());
    }

    #[test]
    fn every_class_has_a_unique_id_and_known_implications() {
        for (i, c) in CLASSES.iter().enumerate() {
            assert!(CLASSES[..i].iter().all(|d| d.id != c.id), "{}", c.id);
            assert!(
                c.implied_by.iter().all(|by| class(by).is_some()),
                "{}",
                c.id
            );
        }
    }
}
