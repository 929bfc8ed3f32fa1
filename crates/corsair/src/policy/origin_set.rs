//! The compiled set of allowed origins: hash lookups whose cost does not grow with the number of
//! origins or patterns, on borrowed bytes, with no allocation.

use std::fmt;

// foldhash through hashbrown: several times faster than SipHash on short keys. The tables are
// built from configuration only, so a client chooses lookups, never insertions, and cannot
// degrade them.
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;

use super::pattern::{OriginPattern, PortPattern};
use crate::origin::RequestOrigin;

/// A user-supplied predicate: over the request's serialized origin alone, or over the origin
/// and the request parts beside it ([`OriginRequest`]).
#[derive(Clone)]
pub(crate) enum OriginPredicate {
    Origin(Arc<dyn Fn(&str) -> bool + Send + Sync + 'static>),
    Request(Arc<dyn Fn(&OriginRequest<'_>) -> bool + Send + Sync + 'static>),
}

impl OriginPredicate {
    pub(crate) fn admits(&self, request: &OriginRequest<'_>) -> bool {
        match self {
            OriginPredicate::Origin(f) => f(request.origin),
            OriginPredicate::Request(f) => f(request),
        }
    }

    /// Whether the answer may depend on `Host`, which responses must then vary on.
    pub(crate) fn reads_host(&self) -> bool {
        matches!(self, OriginPredicate::Request(_))
    }
}

/// What a request-aware origin predicate
/// ([`allow_origin_request_predicate`](crate::PolicyBuilder::allow_origin_request_predicate))
/// sees: the request's origin, its `Host` and its path.
///
/// The layer adds `Vary: Host` to the responses of a policy with such a predicate, so that a
/// shared cache keyed without the host (nginx's default `proxy_cache_key` names the upstream,
/// not the client's `Host`) never hands one tenant's answer to another. The path needs no
/// `Vary`: it is part of every cache key.
///
/// ```
/// use corsair::OriginRequest;
///
/// let request = OriginRequest::new("https://shop.example", Some("api.tenant-a.example"), Some("/v1/cart"));
/// assert_eq!(request.origin(), "https://shop.example");
/// assert_eq!(request.host(), Some("api.tenant-a.example"));
/// assert_eq!(request.path(), Some("/v1/cart"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginRequest<'a> {
    origin: &'a str,
    host: Option<&'a str>,
    path: Option<&'a str>,
}

impl<'a> OriginRequest<'a> {
    /// An origin with its request's `Host` and path: for testing a predicate.
    pub fn new(origin: &'a str, host: Option<&'a str>, path: Option<&'a str>) -> Self {
        OriginRequest { origin, host, path }
    }

    /// The request's serialized origin, already checked to be a well-formed, lowercase origin
    /// (`scheme://host[:port]`).
    pub fn origin(&self) -> &'a str {
        self.origin
    }

    /// The host the request was sent to: its one `Host` header, or the URI's authority (HTTP/2
    /// sends `:authority` instead of `Host`), as the client wrote it: compare it
    /// case-insensitively, and expect a port (`api.example:8443`) when it is not the default.
    /// `None` when the request names no host, names two, or its `Host` is not visible ASCII.
    pub fn host(&self) -> Option<&'a str> {
        self.host
    }

    /// The request's path, as the server read it (no query); `None` when the caller of
    /// [`Policy::decide`](crate::Policy::decide) did not give one (adapters always do; see
    /// [`RequestInfo`](crate::server::RequestInfo)).
    pub fn path(&self) -> Option<&'a str> {
        self.path
    }
}

/// A policy's origin source: the cache the adapter asks (feature `origin-source`).
#[cfg(feature = "origin-source")]
pub(crate) type SourceHandle = crate::origin_source::OriginCache;
/// Without the feature no policy has a source.
#[cfg(not(feature = "origin-source"))]
pub(crate) type SourceHandle = std::convert::Infallible;

/// The request parts an origin lookup may read besides the origin.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LookupParts<'a> {
    pub(crate) host: Option<&'a str>,
    pub(crate) path: Option<&'a str>,
    /// What the policy's origin source said, when the adapter asked it.
    pub(crate) resolved: Resolved,
}

/// What an origin source said about a request's origin: found by the adapter before it asks
/// the engine (see [`server::origin_lookup`](crate::server::origin_lookup)), and read by the
/// engine as the last step of the origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resolved {
    /// The source was not asked. The engine refuses an origin only the source could admit
    /// ([`Rejection::OriginUnresolved`](crate::server::Rejection::OriginUnresolved)).
    #[default]
    NotAsked,
    /// The source admits the origin.
    Allowed,
    /// The source does not know the origin.
    NotAllowed,
    /// The source failed or did not answer in time: refused
    /// ([`Rejection::OriginSourceFailed`](crate::server::Rejection::OriginSourceFailed)).
    Failed,
}

/// The result of looking an `Origin` header up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginMatch {
    Allowed,
    NotAllowed,
    /// Not a serialized origin at all (and not `null`).
    Malformed,
    /// Nothing but the policy's origin source could admit it, and it was not asked.
    Unresolved,
    /// Nothing but the policy's origin source could admit it, and it failed.
    SourceFailed,
}

#[derive(Default)]
pub(crate) struct OriginSet {
    pub(crate) any: bool,
    pub(crate) null: bool,
    /// Full serialized origins, as bytes: a byte-exact hit needs no parsing.
    exact: HashSet<Box<[u8]>>,
    /// Host → (scheme, ports) for patterns over one host: `http://localhost:*`.
    hosts: HashMap<Box<str>, Vec<(Box<str>, PortPattern)>>,
    /// Parent domain → (scheme, ports) for subdomain patterns: `https://*.example.com`.
    parents: HashMap<Box<str>, Vec<(Box<str>, PortPattern)>>,
    predicate: Option<OriginPredicate>,
    /// The policy's origin source, which the adapter asks before the engine decides; the
    /// engine only reads what it said.
    pub(crate) source: Option<SourceHandle>,
}

impl OriginSet {
    pub(crate) fn new(
        patterns: &[OriginPattern],
        predicate: Option<OriginPredicate>,
        source: Option<SourceHandle>,
    ) -> Self {
        let mut set = OriginSet {
            predicate,
            source,
            ..OriginSet::default()
        };
        for p in patterns {
            match p {
                OriginPattern::Any => set.any = true,
                OriginPattern::Null => set.null = true,
                OriginPattern::Exact(s) => {
                    set.exact.insert(s.as_bytes().into());
                }
                OriginPattern::Pattern {
                    scheme,
                    host,
                    subdomains,
                    port,
                } => {
                    let map = if *subdomains {
                        &mut set.parents
                    } else {
                        &mut set.hosts
                    };
                    let entry = map.entry(host.as_str().into()).or_default();
                    let item = (Box::from(scheme.as_str()), *port);
                    if !entry.contains(&item) {
                        entry.push(item);
                    }
                }
            }
        }
        set
    }

    /// Whether the policy allows every origin.
    pub(crate) fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a decision may depend on the request's `Host`.
    pub(crate) fn reads_host(&self) -> bool {
        self.predicate
            .as_ref()
            .is_some_and(OriginPredicate::reads_host)
    }

    /// Looks an `Origin` header value up: the listed origins and patterns, then the predicate,
    /// then what the origin source said. Without `classify`, a value that matches nothing may be
    /// reported `NotAllowed` even when it is malformed (the response is the same).
    pub(crate) fn lookup(
        &self,
        origin: &[u8],
        parts: &LookupParts<'_>,
        classify: bool,
    ) -> OriginMatch {
        // Configured origins are valid serialized origins, so a byte-exact hit is an answer.
        if self.exact.contains(origin) {
            return OriginMatch::Allowed;
        }
        if origin == b"null" {
            // `null` is granted only where the policy names it (`dangerously_allow_null_origin`),
            // never as part of "any origin": under `*` without credentials the engine sends `*`
            // without asking, and with credentials reflecting `null` would be a grant of its own.
            return if self.null {
                OriginMatch::Allowed
            } else {
                OriginMatch::NotAllowed
            };
        }
        if !classify
            && !self.any
            && self.hosts.is_empty()
            && self.parents.is_empty()
            && self.predicate.is_none()
            && self.source.is_none()
        {
            return OriginMatch::NotAllowed;
        }
        let Some(o) = RequestOrigin::parse(origin) else {
            return OriginMatch::Malformed;
        };
        if self.any || self.matches(&o, parts) {
            return OriginMatch::Allowed;
        }
        if self.source.is_none() {
            return OriginMatch::NotAllowed;
        }
        match parts.resolved {
            Resolved::Allowed => OriginMatch::Allowed,
            Resolved::NotAllowed => OriginMatch::NotAllowed,
            Resolved::Failed => OriginMatch::SourceFailed,
            Resolved::NotAsked => OriginMatch::Unresolved,
        }
    }

    fn matches(&self, o: &RequestOrigin<'_>, parts: &LookupParts<'_>) -> bool {
        let fits = |list: &Vec<(Box<str>, PortPattern)>| {
            list.iter()
                .any(|(scheme, port)| &**scheme == o.scheme() && port.matches(o.port()))
        };
        if !self.hosts.is_empty() && self.hosts.get(o.host()).is_some_and(fits) {
            return true;
        }
        if !self.parents.is_empty() && !o.host().starts_with('[') {
            // Every strict parent domain of the host, nearest first: one lookup per label.
            let host = o.host();
            let dots = host.bytes().enumerate().filter(|&(_, b)| b == b'.');
            for (i, _) in dots {
                if self.parents.get(&host[i + 1..]).is_some_and(fits) {
                    return true;
                }
            }
        }
        match &self.predicate {
            Some(p) => p.admits(&OriginRequest {
                origin: o.as_str(),
                host: parts.host,
                path: parts.path,
            }),
            None => false,
        }
    }
}

impl fmt::Debug for OriginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginSet")
            .field("any", &self.any)
            .field("null", &self.null)
            .field("exact", &self.exact.len())
            .field("host_patterns", &self.hosts.len())
            .field("subdomain_patterns", &self.parents.len())
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
            .field("source", &self.source.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> OriginSet {
        let ps: Vec<_> = patterns
            .iter()
            .map(|p| OriginPattern::parse(p).unwrap())
            .collect();
        OriginSet::new(&ps, None, None)
    }

    fn lookup(s: &OriginSet, origin: &str) -> OriginMatch {
        s.lookup(origin.as_bytes(), &LookupParts::default(), true)
    }

    #[test]
    fn matching_table() {
        use OriginMatch::*;
        let s = set(&[
            "https://app.example.com",
            "https://*.example.org",
            "https://*.example.net:8443",
            "http://localhost:*",
            "https://*.dev.example:*",
            "http://[::1]:*",
        ]);
        let table = [
            ("https://app.example.com", Allowed),
            ("https://app.example.com:444", NotAllowed),
            ("http://app.example.com", NotAllowed),
            ("https://evil.app.example.com", NotAllowed),
            ("https://app.example.com.evil.com", NotAllowed),
            ("https://a.example.org", Allowed),
            ("https://a.b.example.org", Allowed),
            ("https://example.org", NotAllowed),
            ("https://badexample.org", NotAllowed),
            ("https://a.example.org:444", NotAllowed),
            ("http://a.example.org", NotAllowed),
            ("https://a.example.net:8443", Allowed),
            ("https://a.example.net", NotAllowed),
            ("http://localhost:8000", Allowed),
            ("http://localhost", Allowed),
            ("http://app.localhost:8000", NotAllowed),
            ("https://localhost:8000", NotAllowed),
            ("https://x.dev.example:1234", Allowed),
            ("https://dev.example:1234", NotAllowed),
            ("http://[::1]:3000", Allowed),
            ("null", NotAllowed),
            ("https://app.example.com/", Malformed),
            ("HTTPS://APP.EXAMPLE.COM", Malformed),
            ("", Malformed),
        ];
        for (origin, want) in table {
            assert_eq!(lookup(&s, origin), want, "{origin}");
        }
    }

    #[test]
    fn two_patterns_do_not_combine() {
        // The radix-tree bug of a Go peer: foo.com + bar.com must not let barfoo.com through.
        let s = set(&["https://foo.com", "https://bar.com", "https://*.foo.com"]);
        for o in [
            "https://barfoo.com",
            "https://foobar.com",
            "https://bar.foo.com.evil",
        ] {
            assert_eq!(lookup(&s, o), OriginMatch::NotAllowed, "{o}");
        }
    }

    #[test]
    fn predicate_is_consulted_last() {
        let ps = vec![OriginPattern::parse("https://a.example").unwrap()];
        let s = OriginSet::new(
            &ps,
            Some(OriginPredicate::Origin(Arc::new(|o: &str| {
                o.ends_with(".internal.example")
            }))),
            None,
        );
        assert_eq!(lookup(&s, "https://a.example"), OriginMatch::Allowed);
        assert_eq!(
            lookup(&s, "https://x.internal.example"),
            OriginMatch::Allowed
        );
        assert_eq!(lookup(&s, "https://x.example"), OriginMatch::NotAllowed);
        assert_eq!(
            lookup(&s, "https://x.internal.example/"),
            OriginMatch::Malformed
        );
    }
}
