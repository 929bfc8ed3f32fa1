//! The CORS-preflight cache: what a successful preflight allowed, for how long.
//!
//! `Access-Control-Max-Age` is a number of seconds. Absent, browsers keep the answer 5
//! seconds; `0` keeps nothing; a larger value is capped per browser: Chromium 2 hours, Firefox
//! 24 hours, Safari 10 minutes. Chromium and Safari read a sign (`+3` is 3, a negative number
//! keeps nothing) and take a number past 2^63 - 1 or an unparsable value for absent; Firefox
//! keeps nothing for a value that is not all digits (`-1`, `+3`, `1.5`, `abc`, two values
//! `3, 1`).
//!
//! Chromium's cache, as the differential suite's `cache` family pins it: one entry per origin
//! and URL, whatever the credentials mode; an entry a credentialed preflight made serves
//! requests with or without credentials (its `*` is literal), one made without serves only
//! requests without; an entry that does not let a request skip its preflight is dropped; a
//! fetch whose cache mode is `no-store` or `reload` sends its preflight whatever the cache
//! holds ([`reads_preflight_cache`]), and only the `reload` one stores the answer
//! ([`writes_preflight_cache`]).
//!
//! Firefox ESR's cache (`nsPreflightCache` in Gecko's `nsCORSListenerProxy.cpp`, read for this
//! model, and pinned by the `cache` family and by the `merge` family, whose successive
//! preflights allow other names for other times) keeps, per origin, URL and credentials mode,
//! the method and header names of every successful preflight, each name with its own expiry:
//! a new preflight adds its names and renews the ones it repeats, and does not replace the
//! entry. A request skips its preflight when its method is `GET` or `POST` or a fresh cached
//! method (case-sensitive), and each unsafe header name is a fresh cached name
//! (case-insensitive); `*` is stored as a name like any other, so it never lets a request skip
//! its preflight. A fetch that is blocked (its preflight or its CORS check fails) drops the
//! origin's entries for that URL, with and without credentials ([`PreflightCache::blocked`]).
//! `no-store` and `reload` fetches send their preflight whatever the cache holds, and every
//! successful preflight is stored, theirs included ([`PreflightCache::writes`]).
//!
//! Not modelled: Firefox's check of the host's DNS record (`CheckDNSCache`): before an entry
//! serves, Firefox looks the URL's host up in its DNS cache (offline, once per address family:
//! any, IPv4 only, IPv6 only) and drops the entry when a record it finds was made or renewed
//! after the entry. The engine does no I/O and knows no DNS cache: it takes every record for
//! older than every entry, as they are once a host has been resolved. Where a record is made
//! by that offline lookup itself (an IP literal, such as the `127.0.0.1` every test host
//! resolves to), the lookup finds it newer than the entry: in a fresh Firefox the first lookups,
//! up to one per address family, miss whatever the entries hold. The differential suite's
//! harness makes those records before any fetch that reads the cache (see
//! `corsair_testkit::pages`), and its `cache` family is asserted as for the other engines.
//!
//! Not modelled either: Firefox's 100-entry limit (the least recently used entry goes), and its
//! partition of the cache by top-level site (every cache here serves one page).
//!
//! WebKit's cache (Safari; `CrossOriginPreflightResultCache` in WebKit's WebCore/loader, and
//! `validatePreflightResponse` in CrossOriginAccessControl.cpp, read for this model, and pinned
//! by the same `cache` family against WebKitGTK) keeps one entry per origin and URL, whatever
//! the credentials mode, replaced by each preflight; a lookup that does not let the request
//! skip its preflight drops the entry. An entry made with credentials serves requests with or
//! without them, one made without serves only requests without; a cached `*` is a wildcard for
//! a request without credentials, whatever the entry's (WebKit asks the request's). The cache is
//! read and written whatever the fetch's cache mode, and a preflight whose answer passed the
//! CORS check and parsed is stored even when it refused the request's method or a header
//! ([`Fetch::preflight_result`](super::Fetch::preflight_result) then keeps it). Not modelled:
//! the partition by top-level origin and session (every cache here serves one page).

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
        self.passes_method(method, self.credentials)
    }

    /// [`allows_method`](Self::allows_method), with `*` literal when `credentials` is set.
    fn passes_method(&self, method: &str, credentials: bool) -> bool {
        self.methods.iter().any(|m| m == method)
            || syntax::is_safelisted_method(method.as_bytes())
            || (!credentials && self.methods.iter().any(|m| m == "*"))
    }

    /// Whether a request header passes: listed (case-insensitively), or covered by `*` without
    /// credentials. Both installed browsers let `*` cover `Authorization` too, whatever older
    /// documents say; the differential suite pins it.
    pub fn allows_header(&self, name: &str) -> bool {
        self.passes_header(name, self.credentials)
    }

    /// [`allows_header`](Self::allows_header), with `*` literal when `credentials` is set.
    fn passes_header(&self, name: &str, credentials: bool) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
            || (!credentials && self.headers.iter().any(|h| h == "*"))
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
/// assert_eq!(effective_max_age(Browser::Firefox, Some("-1")), 0);
/// assert_eq!(effective_max_age(Browser::Safari, Some("-1")), 0);
/// assert_eq!(effective_max_age(Browser::Firefox, Some("abc")), 0);
/// assert_eq!(effective_max_age(Browser::Safari, Some("abc")), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("abc")), 5);
/// assert_eq!(effective_max_age(Browser::Chromium, Some("0")), 0);
/// ```
pub fn effective_max_age(browser: Browser, value: Option<&str>) -> u64 {
    const DEFAULT: u64 = 5;
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let Some(v) = value.map(str::trim) else {
        return DEFAULT;
    };
    if matches!(browser, Browser::Chromium | Browser::Safari) {
        // Chromium and WebKit read a 64-bit signed number, sign allowed: a negative one keeps
        // the answer no time, one they cannot read (too large included) the default time.
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
    match browser {
        // Firefox keeps the default time only for an empty value; anything but digits keeps
        // the answer no time.
        Browser::Firefox if !v.is_empty() => 0,
        _ => DEFAULT,
    }
}

/// Whether a fetch with this cache mode (`RequestInit.cache`: `default`, `no-store`, `reload`,
/// `no-cache`, `force-cache`, `only-if-cached`) may skip its preflight on a cache entry:
/// `no-store` and `reload` always send it, in Chromium and Firefox (where both bypass its
/// caches). Safari ignores the mode: ask [`PreflightCache::reads`], which knows the browser.
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

/// Whether the answer to the preflight of a fetch with this cache mode is stored in Chromium: not
/// for `no-store` (a `reload` fetch stores it). Firefox and Safari store every answer: ask
/// [`PreflightCache::writes`], which knows the browser.
///
/// ```
/// use corsair::browser::writes_preflight_cache;
/// assert!(writes_preflight_cache("reload"));
/// assert!(!writes_preflight_cache("no-store"));
/// ```
pub fn writes_preflight_cache(cache_mode: &str) -> bool {
    cache_mode != "no-store"
}

/// One cache entry: origin, URL and (in Firefox) credentials mode, with what it allows.
#[derive(Debug, Clone)]
struct Entry {
    origin: String,
    url: String,
    credentials: bool,
    kept: Kept,
}

/// What an entry keeps.
#[derive(Debug, Clone)]
enum Kept {
    /// Chromium's and Safari's: the last preflight's whole answer, one expiry.
    Whole {
        result: PreflightResult,
        expires: u64,
    },
    /// Firefox's: every method and header name any preflight listed, each with its own expiry.
    Tokens {
        methods: Vec<Token>,
        headers: Vec<Token>,
    },
}

/// A method or header name in a Firefox entry, and when it stops counting.
#[derive(Debug, Clone)]
struct Token {
    name: String,
    expires: u64,
}

/// Adds `names` to `tokens` as Firefox does: a name already there (same bytes) gets the new
/// expiry, a new one is appended; empty names are skipped.
fn merge(tokens: &mut Vec<Token>, names: &[String], expires: u64) {
    for name in names.iter().filter(|n| !n.is_empty()) {
        match tokens.iter_mut().find(|t| t.name == *name) {
            Some(t) => t.expires = expires,
            None => tokens.push(Token {
                name: name.clone(),
                expires,
            }),
        }
    }
}

/// A browser's preflight cache. Time is given by the caller (seconds on any monotonic clock),
/// so the cache stays pure.
///
/// - Chromium and Safari: an entry holds the last stored preflight's answer for one origin and
///   URL, whatever the credentials mode; a new preflight replaces it, and a lookup that misses
///   drops it. Safari reads a cached `*` by the request's credentials (Chromium by the entry's),
///   reads and writes whatever the cache mode ([`PreflightCache::reads`],
///   [`PreflightCache::writes`]), and stores answers that refused the request too
///   ([`Fetch::preflight_result`](super::Fetch::preflight_result)).
/// - Firefox: an entry per origin, URL and credentials mode holds method and header names, each
///   with its own expiry; a new preflight adds its names to the entry and renews the ones it
///   lists again. A request skips its preflight when its method is `GET` or `POST` or a fresh
///   listed method (case-sensitively), and each of its unsafe header names a fresh listed name
///   (case-insensitively); `*` is never a wildcard there. A blocked fetch drops the entries of
///   its origin and URL for both credentials modes ([`PreflightCache::blocked`]), and every
///   preflight is stored, whatever the fetch's cache mode ([`PreflightCache::writes`]).
///
/// ```
/// use corsair::browser::{Browser, PreflightCache, PreflightResult};
/// let allow = |methods: &[&str], max_age: &str| PreflightResult {
///     methods: methods.iter().map(|m| m.to_string()).collect(),
///     headers: vec!["x-a".into()],
///     credentials: false,
///     max_age: Some(max_age.into()),
/// };
/// let (page, api) = ("http://page.test", "http://api.test/x");
/// let mut firefox = PreflightCache::new(Browser::Firefox);
/// firefox.store(page, api, &allow(&["PUT"], "60"), 0);
/// firefox.store(page, api, &allow(&["PATCH"], "5"), 1);
/// // Both preflights' methods count, each until its own expiry; `x-a`, listed again with 5
/// // seconds, now expires at 6.
/// assert!(firefox.allows(page, api, false, "PUT", &["x-a".into()], 5));
/// assert!(firefox.allows(page, api, false, "PUT", &[], 10));
/// assert!(!firefox.allows(page, api, false, "PUT", &["x-a".into()], 10));
/// assert!(!firefox.allows(page, api, false, "PATCH", &[], 10));
/// // In Chromium the second answer replaced the first.
/// let mut chromium = PreflightCache::new(Browser::Chromium);
/// chromium.store(page, api, &allow(&["PUT"], "60"), 0);
/// chromium.store(page, api, &allow(&["PATCH"], "5"), 1);
/// assert!(!chromium.allows(page, api, false, "PUT", &[], 2));
/// ```
#[derive(Debug, Clone)]
pub struct PreflightCache {
    browser: Browser,
    entries: Vec<Entry>,
}

impl PreflightCache {
    /// An empty cache that follows `browser`'s rules.
    pub fn new(browser: Browser) -> Self {
        PreflightCache {
            browser,
            entries: Vec::new(),
        }
    }

    /// Whether an entry for a request with `credentials` is the entry `e` (Chromium and
    /// Safari keep one entry per origin and URL, Firefox one per credentials mode too).
    fn same_key(&self, e: &Entry, origin: &str, url: &str, credentials: bool) -> bool {
        e.origin == origin
            && e.url == url
            && (self.browser != Browser::Firefox || e.credentials == credentials)
    }

    /// Whether a fetch with this cache mode (`RequestInit.cache`) may skip its preflight on an
    /// entry: in Chromium and Firefox, not for `no-store` and `reload`
    /// ([`reads_preflight_cache`]); Safari looks its cache up whatever the mode.
    ///
    /// ```
    /// use corsair::browser::{Browser, PreflightCache};
    /// assert!(!PreflightCache::new(Browser::Chromium).reads("no-store"));
    /// assert!(PreflightCache::new(Browser::Safari).reads("no-store"));
    /// ```
    pub fn reads(&self, cache_mode: &str) -> bool {
        self.browser == Browser::Safari || reads_preflight_cache(cache_mode)
    }

    /// Whether the answer to the preflight of a fetch with this cache mode is stored (when
    /// [`Fetch::preflight_result`](super::Fetch::preflight_result) has one): Firefox and Safari
    /// store it whatever the mode, Chromium not a `no-store` fetch's
    /// ([`writes_preflight_cache`]).
    pub fn writes(&self, cache_mode: &str) -> bool {
        self.browser != Browser::Chromium || writes_preflight_cache(cache_mode)
    }

    /// Records a successful preflight at time `now`.
    pub fn store(&mut self, origin: &str, url: &str, result: &PreflightResult, now: u64) {
        let lifetime = result.lifetime(self.browser);
        let expires = now.saturating_add(lifetime);
        if self.browser == Browser::Firefox {
            // An answer Firefox keeps no time leaves its entry as it was.
            if lifetime == 0 {
                return;
            }
            let i = match self
                .entries
                .iter()
                .position(|e| self.same_key(e, origin, url, result.credentials))
            {
                Some(i) => i,
                None => {
                    self.entries.push(Entry {
                        origin: origin.to_owned(),
                        url: url.to_owned(),
                        credentials: result.credentials,
                        kept: Kept::Tokens {
                            methods: Vec::new(),
                            headers: Vec::new(),
                        },
                    });
                    self.entries.len() - 1
                }
            };
            if let Kept::Tokens { methods, headers } = &mut self.entries[i].kept {
                merge(methods, &result.methods, expires);
                merge(headers, &result.headers, expires);
            }
            return;
        }
        let browser = self.browser;
        self.entries.retain(|e| {
            !(e.origin == origin
                && e.url == url
                && (browser != Browser::Firefox || e.credentials == result.credentials))
        });
        if lifetime > 0 {
            self.entries.push(Entry {
                origin: origin.to_owned(),
                url: url.to_owned(),
                credentials: result.credentials,
                kept: Kept::Whole {
                    result: result.clone(),
                    expires,
                },
            });
        }
    }

    /// Whether a fresh entry lets this request skip its preflight: the method and every unsafe
    /// header name must pass the entry (by the browser's rules, see [`PreflightCache`]); a
    /// request with credentials needs an entry made with credentials. Chromium and Safari drop
    /// the entry when it does not.
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
        // Chromium reads `*` as literal when the entry was made with credentials, WebKit when
        // the request has them.
        let literal = if self.browser == Browser::Safari {
            credentials
        } else {
            self.entries[i].credentials
        };
        let e = &mut self.entries[i];
        let hit = match &mut e.kept {
            Kept::Whole { result, expires } => {
                now < *expires
                    && (e.credentials || !credentials)
                    && result.passes_method(method, literal)
                    && unsafe_names
                        .iter()
                        .all(|n| result.passes_header(n, literal))
            }
            Kept::Tokens { methods, headers } => {
                let fresh = |t: &&Token| now < t.expires;
                (matches!(method, "GET" | "POST")
                    || methods.iter().filter(fresh).any(|t| t.name == method))
                    && unsafe_names.iter().all(|n| {
                        headers
                            .iter()
                            .filter(fresh)
                            .any(|t| t.name.eq_ignore_ascii_case(n))
                    })
            }
        };
        if !hit && self.browser != Browser::Firefox {
            self.entries.remove(i);
        }
        hit
    }

    /// Records that a fetch from `origin` to `url` was blocked (its preflight or its CORS check
    /// failed): Firefox drops its entries for that origin and URL, with and without
    /// credentials; the other browsers keep theirs.
    pub fn blocked(&mut self, origin: &str, url: &str) {
        if self.browser == Browser::Firefox {
            self.entries
                .retain(|e| !(e.origin == origin && e.url == url));
        }
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
            // Firefox: `AddResultToCache` gives up on any byte but a digit; an empty value is
            // the default 5 seconds; the differential suite's `cache` family pins each.
            (Firefox, Some("-5"), 0),
            (Firefox, Some("+3"), 0),
            (Firefox, Some("1.5"), 0),
            (Firefox, Some("abc"), 0),
            (Firefox, Some("3, 1"), 0),
            (Firefox, Some(" 3 "), 3),
            (Firefox, Some(""), 5),
            (Firefox, None, 5),
            (Firefox, Some("0"), 0),
            (Safari, Some("abc"), 5),
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
            // WebKit: `parseAccessControlMaxAge` in CrossOriginPreflightResultCache.cpp reads a
            // signed 64-bit integer (a negative one expires at once), the default 5 seconds for
            // anything it cannot read, at most 600; the `cache` family pins -1, +3, the 20-digit
            // value, 1.5, abc and "3, 1" against WebKitGTK.
            (Safari, Some("-1"), 0),
            (Safari, Some("-5"), 0),
            (Safari, Some("+3"), 3),
            (Safari, Some(" 3 "), 3),
            (Safari, Some("99999999999999999999"), 5),
            (Safari, Some("1.5"), 5),
            (Safari, Some("3, 1"), 5),
            (Safari, Some(""), 5),
            (Safari, None, 5),
            (Safari, Some("0"), 0),
            (Safari, Some("86400"), 600),
        ];
        for (b, v, want) in rows {
            assert_eq!(effective_max_age(b, v), want, "{b:?} {v:?}");
        }
    }

    #[test]
    fn cache_hits_expire_and_respect_keys() {
        // Each lookup on a fresh cache: a miss drops the entry in Safari.
        let cache = || {
            let mut c = PreflightCache::new(Browser::Safari);
            c.store("http://a", "http://b/x", &result(Some("10")), 100);
            c
        };
        let x_a = vec!["x-a".to_owned()];
        let x_b = vec!["x-b".to_owned()];
        assert!(cache().allows("http://a", "http://b/x", false, "PUT", &x_a, 109));
        let (xa, xb) = (x_a.as_slice(), x_b.as_slice());
        let misses = [
            ("http://a", "http://b/x", false, "PUT", xa, 110),
            ("http://a", "http://b/y", false, "PUT", xa, 101),
            ("http://other", "http://b/x", false, "PUT", xa, 101),
            ("http://a", "http://b/x", true, "PUT", xa, 101),
            ("http://a", "http://b/x", false, "DELETE", xa, 101),
            ("http://a", "http://b/x", false, "PUT", xb, 101),
        ];
        for (origin, url, credentials, method, names, now) in misses {
            let mut c = cache();
            assert!(
                !c.allows(origin, url, credentials, method, names, now),
                "{origin} {url} {credentials} {method} {names:?} {now}"
            );
        }
        let mut c = cache();
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

    // Firefox ESR: each rule below is read from `nsPreflightCache` and `AddResultToCache` in
    // Gecko's netwerk/protocol/http/nsCORSListenerProxy.cpp, and pinned by the differential
    // suite's `cache` family against the installed Firefox ESR.

    const PAGE: &str = "http://page.test";
    const API: &str = "http://api.test/x";

    fn answer(methods: &[&str], headers: &[&str], credentials: bool, age: &str) -> PreflightResult {
        PreflightResult {
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            credentials,
            max_age: Some(age.to_owned()),
        }
    }

    fn firefox() -> PreflightCache {
        PreflightCache::new(Browser::Firefox)
    }

    const OTHER: &str = "http://api.test/y";

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    /// A second preflight adds its names to the entry instead of replacing it, and each name
    /// keeps the expiry of the last preflight that listed it (a shorter one included).
    #[test]
    fn firefox_merges_names_each_with_its_own_expiry() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &["x-a"], false, "60"), 0);
        c.store(PAGE, API, &answer(&["PATCH"], &["x-b"], false, "5"), 1);
        assert!(c.allows(PAGE, API, false, "PUT", &names(&["x-a", "x-b"]), 2));
        assert!(c.allows(PAGE, API, false, "PATCH", &names(&["x-a"]), 5));
        assert!(
            !c.allows(PAGE, API, false, "PATCH", &[], 6),
            "PATCH expired at 6"
        );
        assert!(
            !c.allows(PAGE, API, false, "PUT", &names(&["x-b"]), 6),
            "x-b expired at 6"
        );
        assert!(c.allows(PAGE, API, false, "PUT", &names(&["x-a"]), 59));
        // PUT listed again with 3 seconds: it now expires at 13, not 60.
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "3"), 10);
        assert!(c.allows(PAGE, API, false, "PUT", &[], 12));
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 13));
        assert!(
            c.allows(PAGE, API, false, "GET", &names(&["x-a"]), 13),
            "x-a kept its 60"
        );
    }

    /// `GET` and `POST` need no cached method; `HEAD` does; methods match case-sensitively,
    /// header names case-insensitively.
    #[test]
    fn firefox_lets_get_and_post_pass_and_matches_methods_exactly() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &["X-A"], false, "60"), 0);
        let x_a = names(&["x-a"]);
        assert!(c.allows(PAGE, API, false, "GET", &x_a, 1));
        assert!(c.allows(PAGE, API, false, "POST", &x_a, 1));
        assert!(!c.allows(PAGE, API, false, "HEAD", &x_a, 1));
        assert!(!c.allows(PAGE, API, false, "put", &x_a, 1));
        assert!(!c.allows(PAGE, API, false, "GET", &names(&["x-a", "x-b"]), 1));
    }

    /// `*` is kept as a name: it lets no method or header skip the preflight, with or without
    /// credentials.
    #[test]
    fn firefox_keeps_the_wildcard_as_a_literal_name() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["*"], &["*"], false, "60"), 0);
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1));
        assert!(!c.allows(PAGE, API, false, "GET", &names(&["x-a"]), 1));
        assert!(c.allows(PAGE, API, false, "GET", &names(&["*"]), 1));
    }

    /// One entry per credentials mode: neither serves the other, and a miss drops nothing.
    #[test]
    fn firefox_keys_by_credentials_and_keeps_an_entry_that_missed() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &[], true, "60"), 0);
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1));
        assert!(c.allows(PAGE, API, true, "PUT", &[], 1));
        assert!(!c.allows(PAGE, API, true, "DELETE", &[], 1));
        assert!(
            c.allows(PAGE, API, true, "PUT", &[], 1),
            "the miss dropped nothing"
        );
        c.store(PAGE, API, &answer(&["PATCH"], &[], false, "60"), 0);
        assert!(!c.allows(PAGE, API, true, "PATCH", &[], 1));
        assert!(c.allows(PAGE, API, false, "PATCH", &[], 1));
    }

    /// A `Max-Age` Firefox cannot read, or `0`, leaves the entry as it was.
    #[test]
    fn firefox_leaves_the_entry_alone_on_an_unreadable_max_age() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 0);
        for age in ["0", "-1", "+3", "abc", "3, 1"] {
            c.store(PAGE, API, &answer(&["PATCH"], &[], false, age), 1);
            assert!(!c.allows(PAGE, API, false, "PATCH", &[], 2), "{age}");
            assert!(c.allows(PAGE, API, false, "PUT", &[], 2), "{age}");
        }
    }

    /// A blocked fetch drops the URL's entries for both credentials modes; other URLs and
    /// other browsers keep theirs.
    #[test]
    fn firefox_drops_both_entries_of_a_blocked_url() {
        let other = OTHER;
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &[], true, "60"), 0);
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 0);
        c.store(PAGE, other, &answer(&["PUT"], &[], false, "60"), 0);
        c.blocked(PAGE, API);
        assert!(!c.allows(PAGE, API, true, "PUT", &[], 1));
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1));
        assert!(c.allows(PAGE, other, false, "PUT", &[], 1));
        for browser in [Browser::Chromium, Browser::Safari] {
            let mut c = PreflightCache::new(browser);
            c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 0);
            c.blocked(PAGE, API);
            assert!(c.allows(PAGE, API, false, "PUT", &[], 1), "{browser:?}");
        }
    }

    /// Firefox and Safari store the preflight of a `no-store` fetch; Chromium does not.
    /// Chromium and Firefox do not read their cache for `no-store` or `reload`; Safari does
    /// (WebKit's `canSkipPreflight` is asked whatever the request's cache mode; the `cache`
    /// family's `reload` and `no-store` fetches skip their preflight on a fresh entry).
    #[test]
    fn cache_modes_per_browser() {
        for (browser, no_store_writes, bypass_reads) in [
            (Browser::Firefox, true, false),
            (Browser::Chromium, false, false),
            (Browser::Safari, true, true),
        ] {
            let c = PreflightCache::new(browser);
            assert_eq!(c.writes("no-store"), no_store_writes, "{browser:?}");
            assert!(c.writes("reload") && c.writes("default"), "{browser:?}");
            assert_eq!(c.reads("no-store"), bypass_reads, "{browser:?}");
            assert_eq!(c.reads("reload"), bypass_reads, "{browser:?}");
            assert!(c.reads("default"), "{browser:?}");
        }
    }

    /// A Firefox entry serves from its first lookup, whether or not the URL was preflighted
    /// before (the misses the suite once saw after a URL's first preflight were Firefox's DNS
    /// check, `CheckDNSCache`, on records made by the lookup itself; the harness now makes
    /// them first, see the module documentation).
    #[test]
    fn firefox_serves_from_the_first_lookup() {
        let mut c = firefox();
        c.store(PAGE, API, &answer(&["PUT"], &["x-a"], false, "60"), 0);
        assert!(c.allows(PAGE, API, false, "PUT", &names(&["x-a"]), 0));
        c.store(PAGE, OTHER, &answer(&["PUT"], &[], true, "60"), 0);
        assert!(c.allows(PAGE, OTHER, true, "PUT", &[], 1));
        // After a blocked fetch, the next preflight's entry serves at once too.
        c.blocked(PAGE, API);
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1));
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 2);
        assert!(c.allows(PAGE, API, false, "PUT", &[], 2));
    }

    // Safari (WebKitGTK): each rule below is read from WebKit's
    // Source/WebCore/loader/CrossOriginPreflightResultCache.cpp (`canSkipPreflight`,
    // `allowsRequest`, `allowsCrossOriginMethod`, `validateCrossOriginHeaders`) and
    // CrossOriginAccessControl.cpp (`validatePreflightResponse`), and pinned by the differential
    // suite's `cache` family against WebKitGTK's MiniBrowser.

    /// One entry per origin and URL, whatever the credentials: an entry a credentialed
    /// preflight made serves a request without credentials, and a later preflight replaces it.
    #[test]
    fn safari_keeps_one_entry_per_url_for_both_credentials_modes() {
        let mut c = PreflightCache::new(Browser::Safari);
        c.store(PAGE, API, &answer(&["PUT"], &["x-a"], true, "60"), 0);
        assert!(c.allows(PAGE, API, false, "PUT", &names(&["x-a"]), 1));
        assert!(c.allows(PAGE, API, true, "PUT", &names(&["x-a"]), 1));
        c.store(PAGE, API, &answer(&["PATCH"], &[], false, "60"), 2);
        assert!(c.allows(PAGE, API, false, "PATCH", &[], 3));
        assert!(
            !c.allows(PAGE, API, false, "PUT", &names(&["x-a"]), 3),
            "replaced"
        );
    }

    /// A lookup that does not let the request skip its preflight drops the entry; an entry
    /// made without credentials does not serve a request with them.
    #[test]
    fn safari_drops_the_entry_on_a_miss() {
        let mut c = PreflightCache::new(Browser::Safari);
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 0);
        assert!(!c.allows(PAGE, API, true, "PUT", &[], 1));
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1), "dropped");
        c.store(PAGE, API, &answer(&["PUT"], &[], false, "60"), 0);
        assert!(!c.allows(PAGE, API, false, "DELETE", &[], 1));
        assert!(!c.allows(PAGE, API, false, "PUT", &[], 1), "dropped");
    }

    /// `*` is a wildcard for a request without credentials, whatever the entry's credentials:
    /// WebKit asks the request's credentials (Chromium the entry's).
    #[test]
    fn safari_reads_the_wildcard_by_the_requests_credentials() {
        let mut c = PreflightCache::new(Browser::Safari);
        c.store(PAGE, API, &answer(&["*"], &["*"], true, "60"), 0);
        assert!(c.allows(PAGE, API, false, "PATCH", &names(&["x-b"]), 1));
        assert!(!c.allows(PAGE, API, true, "PATCH", &[], 1));
        c.store(PAGE, API, &answer(&["*"], &["*"], true, "60"), 0);
        assert!(!c.allows(PAGE, API, true, "GET", &names(&["x-b"]), 1));
        c.store(PAGE, API, &answer(&["*"], &["*"], true, "60"), 0);
        assert!(c.allows(PAGE, API, true, "GET", &names(&["*"]), 1));
    }

    /// A preflight that passed the CORS check but refused the request's method or a header is
    /// cached all the same, and serves the next request it allows; one that failed the CORS
    /// check is not. Chromium and Firefox keep nothing of a refused preflight.
    #[test]
    fn safari_caches_a_preflight_that_refused_the_request() {
        use super::super::{Blocked, Credentials, Fetch, RequestInit};
        let answer = |origin: &str| {
            let mut m = http::HeaderMap::new();
            for (n, v) in [
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", "PUT"),
                ("access-control-allow-headers", "x-a"),
                ("access-control-max-age", "60"),
            ] {
                m.append(n, v.parse().unwrap());
            }
            m
        };
        let patch = RequestInit {
            method: "PATCH".into(),
            headers: vec![("x-b".into(), "1".into())],
            credentials: Credentials::Omit,
        };
        for (browser, origin, kept) in [
            (Browser::Safari, PAGE, true),
            (Browser::Safari, "http://elsewhere.test", false),
            (Browser::Chromium, PAGE, false),
            (Browser::Firefox, PAGE, false),
        ] {
            let mut f = Fetch::new(browser, PAGE, API, patch.clone()).unwrap();
            assert!(f.request().unwrap().preflight);
            let verdict = f.receive(204, &answer(origin));
            assert!(
                matches!(verdict, Some(Err(Blocked::Cors(_)))),
                "{browser:?}: {verdict:?}"
            );
            assert_eq!(f.preflight_result().is_some(), kept, "{browser:?} {origin}");
        }
        let mut f = Fetch::new(Browser::Safari, PAGE, API, patch).unwrap();
        f.request();
        f.receive(204, &answer(PAGE));
        let mut c = PreflightCache::new(Browser::Safari);
        c.store(PAGE, API, f.preflight_result().unwrap(), 0);
        assert!(c.allows(PAGE, API, false, "PUT", &names(&["x-a"]), 1));
    }
}
