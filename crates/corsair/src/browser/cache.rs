//! The CORS-preflight cache: what a successful preflight allowed, for how long.
//!
//! `Access-Control-Max-Age` is a number of seconds. Absent, negative or unparsable, browsers keep
//! the answer 5 seconds; `0` keeps nothing; a larger value is capped per browser: Chromium 2
//! hours, Firefox 24 hours, Safari 10 minutes.

use super::Browser;
use crate::syntax;

/// What one preflight allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightResult {
    /// `Access-Control-Allow-Methods`, as sent.
    pub methods: Vec<String>,
    /// `Access-Control-Allow-Headers`, as sent.
    pub headers: Vec<String>,
    /// Whether the preflight was for a request with credentials (then `*` is literal).
    pub credentials: bool,
    /// `Access-Control-Max-Age`, as sent.
    pub max_age: Option<String>,
}

impl PreflightResult {
    /// Whether a method passes: listed (case-sensitively), safelisted, or covered by `*`
    /// without credentials.
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
            || syntax::is_safelisted_method(method.as_bytes())
            || (!self.credentials && self.methods.iter().any(|m| m == "*"))
    }

    /// Whether a request header passes: listed (case-insensitively), or covered by `*` without
    /// credentials. Both installed browsers let `*` cover `Authorization` too, whatever older
    /// documents say; the differential suite pins it.
    pub fn allows_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
            || (!self.credentials && self.headers.iter().any(|h| h == "*"))
    }

    /// How many seconds `browser` keeps this result.
    pub fn lifetime(&self, browser: Browser) -> u64 {
        effective_max_age(browser, self.max_age.as_deref())
    }
}

/// The number of seconds `browser` caches a preflight whose `Access-Control-Max-Age` is `value`.
///
/// ```
/// use corsair::browser::{effective_max_age, Browser};
/// assert_eq!(effective_max_age(Browser::Chromium, None), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("86400")), 7200);
/// assert_eq!(effective_max_age(Browser::Firefox, Some("86400")), 86400);
/// assert_eq!(effective_max_age(Browser::Safari, Some("3600")), 600);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("-1")), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("0")), 0);
/// ```
pub fn effective_max_age(browser: Browser, value: Option<&str>) -> u64 {
    const DEFAULT: u64 = 5;
    let parsed = value
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    match parsed {
        Some(secs) => secs.min(browser.max_age_cap()),
        None => DEFAULT,
    }
}

#[derive(Debug, Clone)]
struct Entry {
    origin: String,
    url: String,
    credentials: bool,
    result: PreflightResult,
    expires: u64,
}

/// A browser's preflight cache, keyed by origin, URL and credentials mode. Time is given by the
/// caller (seconds on any monotonic clock), so the cache stays pure.
#[derive(Debug, Clone)]
pub struct PreflightCache {
    browser: Browser,
    entries: Vec<Entry>,
}

impl PreflightCache {
    /// An empty cache that follows `browser`'s caps.
    pub fn new(browser: Browser) -> Self {
        PreflightCache {
            browser,
            entries: Vec::new(),
        }
    }

    /// Records a successful preflight at time `now`.
    pub fn store(&mut self, origin: &str, url: &str, result: &PreflightResult, now: u64) {
        let lifetime = result.lifetime(self.browser);
        self.entries.retain(|e| {
            !(e.origin == origin && e.url == url && e.credentials == result.credentials)
        });
        if lifetime > 0 {
            self.entries.push(Entry {
                origin: origin.to_owned(),
                url: url.to_owned(),
                credentials: result.credentials,
                result: result.clone(),
                expires: now.saturating_add(lifetime),
            });
        }
    }

    /// Whether a fresh entry lets this request skip its preflight: every unsafe header name and
    /// the method must pass the cached result.
    pub fn allows(
        &self,
        origin: &str,
        url: &str,
        credentials: bool,
        method: &str,
        unsafe_names: &[String],
        now: u64,
    ) -> bool {
        self.entries.iter().any(|e| {
            e.origin == origin
                && e.url == url
                && e.credentials == credentials
                && now < e.expires
                && e.result.allows_method(method)
                && unsafe_names.iter().all(|n| e.result.allows_header(n))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(max_age: Option<&str>) -> PreflightResult {
        PreflightResult {
            methods: vec!["PUT".into()],
            headers: vec!["x-a".into()],
            credentials: false,
            max_age: max_age.map(str::to_owned),
        }
    }

    #[test]
    fn max_age_table() {
        use Browser::*;
        let rows = [
            (Chromium, None, 5),
            (Chromium, Some("600"), 600),
            (Chromium, Some("7201"), 7200),
            (Firefox, Some("7201"), 7201),
            (Firefox, Some("100000"), 86400),
            (Safari, Some("601"), 600),
            (Chromium, Some("0"), 0),
            (Chromium, Some("-5"), 5),
            (Chromium, Some("abc"), 5),
            (Chromium, Some("1.5"), 5),
            (Chromium, Some(""), 5),
            (Chromium, Some("99999999999999999999999"), 7200),
        ];
        for (b, v, want) in rows {
            assert_eq!(effective_max_age(b, v), want, "{b:?} {v:?}");
        }
    }

    #[test]
    fn cache_hits_expire_and_respect_keys() {
        let mut c = PreflightCache::new(Browser::Chromium);
        c.store("http://a", "http://b/x", &result(Some("10")), 100);
        let names = vec!["x-a".to_owned()];
        assert!(c.allows("http://a", "http://b/x", false, "PUT", &names, 109));
        assert!(!c.allows("http://a", "http://b/x", false, "PUT", &names, 110));
        assert!(!c.allows("http://a", "http://b/y", false, "PUT", &names, 101));
        assert!(!c.allows("http://other", "http://b/x", false, "PUT", &names, 101));
        assert!(!c.allows("http://a", "http://b/x", true, "PUT", &names, 101));
        assert!(!c.allows("http://a", "http://b/x", false, "DELETE", &names, 101));
        assert!(!c.allows(
            "http://a",
            "http://b/x",
            false,
            "PUT",
            &["x-b".to_owned()],
            101
        ));
        c.store("http://a", "http://b/z", &result(Some("0")), 100);
        assert!(!c.allows("http://a", "http://b/z", false, "PUT", &[], 100));
    }

    #[test]
    fn wildcards_are_literal_with_credentials() {
        let r = PreflightResult {
            methods: vec!["*".into()],
            headers: vec!["*".into()],
            credentials: false,
            max_age: None,
        };
        assert!(
            r.allows_method("PATCH")
                && r.allows_header("x-any")
                && r.allows_header("authorization")
        );
        let r = PreflightResult {
            credentials: true,
            ..r
        };
        assert!(!r.allows_method("PATCH") && !r.allows_header("x-any"));
        assert!(r.allows_method("GET"), "safelisted methods always pass");
    }
}
