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

/// A user-supplied predicate over a request's serialized origin.
pub(crate) type OriginPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync + 'static>;

/// The result of looking an `Origin` header up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginMatch {
    Allowed,
    NotAllowed,
    /// Not a serialized origin at all (and not `null`).
    Malformed,
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
}

impl OriginSet {
    pub(crate) fn new(patterns: &[OriginPattern], predicate: Option<OriginPredicate>) -> Self {
        let mut set = OriginSet {
            predicate,
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

    /// Looks an `Origin` header value up. Without `classify`, a value that matches nothing may be
    /// reported `NotAllowed` even when it is malformed (the response is the same).
    pub(crate) fn lookup(&self, origin: &[u8], classify: bool) -> OriginMatch {
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
        {
            return OriginMatch::NotAllowed;
        }
        let Some(o) = RequestOrigin::parse(origin) else {
            return OriginMatch::Malformed;
        };
        if self.any || self.matches(&o) {
            OriginMatch::Allowed
        } else {
            OriginMatch::NotAllowed
        }
    }

    fn matches(&self, o: &RequestOrigin<'_>) -> bool {
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
            Some(p) => p(o.as_str()),
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
        OriginSet::new(&ps, None)
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
            assert_eq!(s.lookup(origin.as_bytes(), true), want, "{origin}");
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
            assert_eq!(s.lookup(o.as_bytes(), true), OriginMatch::NotAllowed, "{o}");
        }
    }

    #[test]
    fn predicate_is_consulted_last() {
        let ps = vec![OriginPattern::parse("https://a.example").unwrap()];
        let s = OriginSet::new(
            &ps,
            Some(Arc::new(|o: &str| o.ends_with(".internal.example"))),
        );
        assert_eq!(s.lookup(b"https://a.example", true), OriginMatch::Allowed);
        assert_eq!(
            s.lookup(b"https://x.internal.example", true),
            OriginMatch::Allowed
        );
        assert_eq!(
            s.lookup(b"https://x.example", true),
            OriginMatch::NotAllowed
        );
        assert_eq!(
            s.lookup(b"https://x.internal.example/", true),
            OriginMatch::Malformed
        );
    }
}
