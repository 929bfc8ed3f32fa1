//! The CORS-preflight cache: what a successful preflight allowed, for how long.
//!
//! `Access-Control-Max-Age` is a number of seconds. Absent or unparsable, browsers keep the
//! answer 5 seconds; `0` keeps nothing; a larger value is capped per browser: Chromium 2 hours,
//! Firefox 24 hours, Safari 10 minutes. Chromium reads a sign (`+3` is 3, a negative number
//! keeps nothing) and takes a number past 2^63 - 1 for unparsable.
//!
//! Chromium's cache, as the differential suite's `cache` family pins it: one entry per origin
//! and URL, whatever the credentials mode; an entry a credentialed preflight made serves
//! requests with or without credentials (its `*` is literal), one made without serves only
//! requests without; an entry that does not let a request skip its preflight is dropped; a
//! fetch whose cache mode is `no-store` or `reload` sends its preflight whatever the cache
//! holds ([`reads_preflight_cache`]), and only the `reload` one stores the answer
//! ([`writes_preflight_cache`]). Firefox's cache is not modelled: it preflights again in many
//! cases where its entry would allow the request, by rules the suite has not pinned; for
//! Firefox the engine keeps the Fetch Standard's cache (one entry per origin, URL and
//! credentials mode), which can skip preflights Firefox sends. WebKit's cache is not modelled
//! either (the engine keeps the same cache for Safari): WebKitGTK sends preflights again that
//! such a cache would spare, and skips some it would send (it ignores the request's cache
//! mode), by rules the differential suite has not pinned.

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
/// assert_eq!(effective_max_age(Browser::Chromium, Some("-1")), 0);
/// assert_eq!(effective_max_age(Browser::Firefox, Some("-1")), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("abc")), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("0")), 0);
/// ```
pub fn effective_max_age(browser: Browser, value: Option<&str>) -> u64 {
    const DEFAULT: u64 = 5;
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let Some(v) = value.map(str::trim) else {
        return DEFAULT;
    };
    if browser == Browser::Chromium {
        // Chromium reads a 64-bit signed number, sign allowed: a negative one keeps the answer
        // no time, one it cannot read (too large included) the default time.
        let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
        return match (digits(unsigned), v.parse::<i64>()) {
            (true, Ok(secs)) => u64::try_from(secs).map_or(0, |s| s.min(browser.max_age_cap())),
            _ => DEFAULT,
        };
    }
    if digits(v) {
        return v
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .min(browser.max_age_cap());
    }
    DEFAULT
}

/// Whether a fetch with this cache mode (`RequestInit.cache`: `default`, `no-store`, `reload`,
/// `no-cache`, `force-cache`, `only-if-cached`) may skip its preflight on a cache entry:
/// `no-store` and `reload` always send it.
///
/// ```
/// use corsair::browser::reads_preflight_cache;
/// assert!(reads_preflight_cache("default"));
/// assert!(!reads_preflight_cache("no-store"));
/// assert!(!reads_preflight_cache("reload"));
/// ```
pub fn reads_preflight_cache(cache_mode: &str) -> bool {
    !matches!(cache_mode, "no-store" | "reload")
}

/// Whether the answer to the preflight of a fetch with this cache mode is stored: not for
/// `no-store` (a `reload` fetch stores it).
///
/// ```
/// use corsair::browser::writes_preflight_cache;
/// assert!(writes_preflight_cache("reload"));
/// assert!(!writes_preflight_cache("no-store"));
/// ```
pub fn writes_preflight_cache(cache_mode: &str) -> bool {
    cache_mode != "no-store"
}

#[derive(Debug, Clone)]
struct Entry {
    origin: String,
    url: String,
    credentials: bool,
    result: PreflightResult,
    expires: u64,
}

/// A browser's preflight cache: keyed by origin and URL, and by credentials mode except in
/// Chromium. Time is given by the caller (seconds on any monotonic clock), so the cache stays
/// pure.
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

    /// Whether an entry for a request with `credentials` is the entry `e` (Chromium keeps one
    /// entry per origin and URL).
    fn same_key(&self, e: &Entry, origin: &str, url: &str, credentials: bool) -> bool {
        e.origin == origin
            && e.url == url
            && (self.browser == Browser::Chromium || e.credentials == credentials)
    }

    /// Records a successful preflight at time `now`.
    pub fn store(&mut self, origin: &str, url: &str, result: &PreflightResult, now: u64) {
        let lifetime = result.lifetime(self.browser);
        let browser = self.browser;
        self.entries.retain(|e| {
            !(e.origin == origin
                && e.url == url
                && (browser == Browser::Chromium || e.credentials == result.credentials))
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
    /// the method must pass the cached result, and a request with credentials needs an entry
    /// made with credentials. Chromium drops the entry when it does not.
    pub fn allows(
        &mut self,
        origin: &str,
        url: &str,
        credentials: bool,
        method: &str,
        unsafe_names: &[String],
        now: u64,
    ) -> bool {
        let Some(i) = self
            .entries
            .iter()
            .position(|e| self.same_key(e, origin, url, credentials))
        else {
            return false;
        };
        let e = &self.entries[i];
        let hit = now < e.expires
            && (e.credentials || !credentials)
            && e.result.allows_method(method)
            && unsafe_names.iter().all(|n| e.result.allows_header(n));
        if !hit && self.browser == Browser::Chromium {
            self.entries.remove(i);
        }
        hit
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
            (Chromium, Some("-5"), 0),
            (Firefox, Some("-5"), 5),
            (Chromium, Some("abc"), 5),
            (Chromium, Some("1.5"), 5),
            (Chromium, Some(""), 5),
            // Pinned by the differential suite's `cache` family (Chromium 156).
            (Chromium, Some("+3"), 3),
            (Chromium, Some("99999999999999999999999"), 5),
            (Chromium, Some("9223372036854775807"), 7200),
            (Chromium, Some("-9223372036854775808"), 0),
            (Chromium, Some("+-3"), 5),
            (Firefox, Some("99999999999999999999999"), 86400),
        ];
        for (b, v, want) in rows {
            assert_eq!(effective_max_age(b, v), want, "{b:?} {v:?}");
        }
    }

    #[test]
    fn cache_hits_expire_and_respect_keys() {
        let mut c = PreflightCache::new(Browser::Firefox);
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

    /// Chromium, as the differential suite's `cache` family found it: one entry per origin and
    /// URL; a credentialed entry serves requests without credentials, not the reverse; a miss
    /// drops the entry.
    #[test]
    fn chromium_keeps_one_entry_per_url_and_drops_it_on_a_miss() {
        let mut c = PreflightCache::new(Browser::Chromium);
        let names = vec!["x-a".to_owned()];
        let with_credentials = PreflightResult {
            credentials: true,
            ..result(Some("10"))
        };
        c.store("http://a", "http://b/x", &with_credentials, 100);
        assert!(c.allows("http://a", "http://b/x", false, "PUT", &names, 101));
        assert!(c.allows("http://a", "http://b/x", true, "PUT", &names, 101));
        c.store("http://a", "http://b/x", &result(Some("10")), 100);
        assert!(!c.allows("http://a", "http://b/x", true, "PUT", &names, 101));
        // The miss above dropped the entry: a request it would serve now misses too.
        assert!(!c.allows("http://a", "http://b/x", false, "PUT", &names, 101));
        c.store("http://a", "http://b/x", &result(Some("10")), 100);
        assert!(!c.allows("http://a", "http://b/x", false, "DELETE", &names, 101));
        assert!(!c.allows("http://a", "http://b/x", false, "PUT", &names, 101));
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
