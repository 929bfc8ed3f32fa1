//! The policy: a builder that collects settings, validation that reports every problem at once,
//! and [`Policy`], the immutable compiled form the server engine reads on every request.

mod build;
pub(crate) mod origin_set;
pub(crate) mod pattern;
pub(crate) mod set;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::error::{ConfigErrors, ConfigNote};
use crate::server::PolicyValue;
use origin_set::{OriginPredicate, OriginSet, SourceHandle};
pub use origin_set::{OriginRequest, Resolved};

/// A validated, compiled CORS policy: immutable, cheap to clone (one reference count), and
/// shareable across threads.
///
/// Build one with [`Policy::builder`]; serve it with the server engine ([`Policy::decide`]) or the
/// tower middleware (`corsair::tower::CorsLayer`, feature `tower`).
///
/// ```
/// use std::time::Duration;
///
/// let cors = corsair::Policy::builder()
///     .allow_origins(["https://app.example.com", "https://*.example.com", "http://localhost:*"])
///     .allow_methods(["GET", "POST", "PUT", "DELETE"])
///     .allow_headers(["content-type", "authorization"])
///     .expose_headers(["x-request-id"])
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(600))
///     .build()?;
/// # Ok::<(), corsair::ConfigErrors>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Policy {
    pub(crate) inner: Arc<Compiled>,
}

impl Policy {
    /// Starts a policy that allows nothing; add origins with
    /// [`allow_origins`](PolicyBuilder::allow_origins).
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Whether this policy includes credentials (`Access-Control-Allow-Credentials: true`).
    pub fn allows_credentials(&self) -> bool {
        self.inner.credentials
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// A list setting: either specific values or any value (`*`).
#[derive(Debug, Clone)]
pub(crate) enum ListSetting {
    /// Any value: reflected from the request, or `*` where browsers honour it.
    Any,
    /// These values, and the header value listing them (`None` when the list is empty).
    List(Vec<Box<str>>, Option<PolicyValue>),
}

/// The compiled policy.
pub(crate) struct Compiled {
    pub(crate) origins: OriginSet,
    pub(crate) credentials: bool,
    /// Methods as written (the six that browsers normalize are upper-cased); compared
    /// case-sensitively.
    pub(crate) methods: ListSetting,
    /// Lowercase header names; compared case-insensitively.
    pub(crate) headers: ListSetting,
    /// `Access-Control-Expose-Headers` value.
    pub(crate) expose: Option<PolicyValue>,
    /// `Access-Control-Max-Age` value.
    pub(crate) max_age: Option<PolicyValue>,
    pub(crate) private_network: bool,
    pub(crate) preflight_status: StatusCode,
    /// The answer is `*` for every origin: anonymous any-origin policy.
    pub(crate) wildcard_origin: bool,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("origins", &self.origins)
            .field("credentials", &self.credentials)
            .field("methods", &self.methods)
            .field("headers", &self.headers)
            .field("expose", &self.expose)
            .field("max_age", &self.max_age)
            .field("private_network", &self.private_network)
            .field("preflight_status", &self.preflight_status)
            .finish()
    }
}

/// Collects the settings of a [`Policy`] policy; [`build`](PolicyBuilder::build) validates and
/// compiles them.
///
/// Every list setting replaces what an earlier call of the same setting gave. Lists accept
/// `"*"`, meaning any value.
///
/// Nothing here panics or fails: problems are found by `build`, all at once.
#[derive(Clone)]
#[must_use]
pub struct PolicyBuilder {
    pub(crate) origins: Vec<String>,
    pub(crate) predicate: Option<OriginPredicate>,
    pub(crate) source: Option<SourceHandle>,
    pub(crate) methods: Vec<String>,
    pub(crate) headers: Vec<String>,
    pub(crate) expose: Vec<String>,
    pub(crate) credentials: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) private_network: bool,
    pub(crate) preflight_status: u16,
    pub(crate) dangerous_credentials_any_origin: bool,
    pub(crate) dangerous_null_origin: bool,
    pub(crate) dangerous_insecure_origins: bool,
    pub(crate) dangerous_private_network_any_origin: bool,
    pub(crate) dangerous_private_network_insecure_origins: bool,
    pub(crate) dangerous_public_suffix: bool,
    pub(crate) dangerous_broad_predicate: bool,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        PolicyBuilder {
            origins: Vec::new(),
            predicate: None,
            source: None,
            methods: Vec::new(),
            headers: Vec::new(),
            expose: Vec::new(),
            credentials: false,
            max_age: None,
            private_network: false,
            preflight_status: 204,
            dangerous_credentials_any_origin: false,
            dangerous_null_origin: false,
            dangerous_insecure_origins: false,
            dangerous_private_network_any_origin: false,
            dangerous_private_network_insecure_origins: false,
            dangerous_public_suffix: false,
            dangerous_broad_predicate: false,
        }
    }
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder")
            .field("origins", &self.origins)
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
            .field("source", &self.source)
            .field("methods", &self.methods)
            .field("headers", &self.headers)
            .field("expose", &self.expose)
            .field("credentials", &self.credentials)
            .field("max_age", &self.max_age)
            .field("private_network", &self.private_network)
            .field("preflight_status", &self.preflight_status)
            .finish_non_exhaustive()
    }
}

fn strings<I>(items: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl PolicyBuilder {
    /// Sets the origins allowed to read responses ([`Access-Control-Allow-Origin`][spec]).
    ///
    /// Each entry is one of:
    /// - a serialized origin, exactly as browsers send it: `https://app.example.com`,
    ///   `http://localhost:8000` (lowercase, no path, no trailing slash, no default port);
    /// - a subdomain pattern `https://*.example.com`: one or more labels below `example.com`,
    ///   never `example.com` itself (list it too if you mean it);
    /// - an any-port pattern `http://localhost:*`, combinable with a subdomain pattern;
    /// - `"*"`: any origin. Without credentials the response says `*`; with credentials this is
    ///   refused unless [`dangerously_allow_credentials_with_any_origin`](Self::dangerously_allow_credentials_with_any_origin).
    ///
    /// Matching compares the whole serialized origin; its cost does not depend on how many
    /// origins are listed. Replaces the list of an earlier call.
    ///
    /// Spellings that browsers never send but the URL Standard rewrites (`http://127.1`, a port
    /// with leading zeros, an IPv4-mapped IPv6 address, an internationalized name, a trailing
    /// dot) are matched in the form browsers send; [`notes`](Self::notes) lists each one.
    /// Origins that can never match are errors: a port of 0 or above 65535, an empty label, a
    /// host too long for DNS, a scheme longer than 32 bytes.
    ///
    /// **Which origins are trusted** with credentials and Private Network Access: `https`;
    /// `http` on loopback only (`localhost` and its subdomains, `127.0.0.0/8`, `[::1]`); and
    /// the browser-extension and app-shell schemes `chrome-extension`, `moz-extension`,
    /// `safari-web-extension`, `isolated-app`, `tauri`, `capacitor` and `ionic`, whose pages come
    /// from a package on the user's device, not from the network. Every other origin (plain
    /// `http` elsewhere, any other scheme, such as an Electron app's `app://`) needs
    /// [`dangerously_allow_insecure_origins_with_credentials`](Self::dangerously_allow_insecure_origins_with_credentials)
    /// or [`dangerously_allow_private_network_with_insecure_origins`](Self::dangerously_allow_private_network_with_insecure_origins).
    ///
    /// A subdomain pattern over a public suffix (`https://*.github.io`, `https://*.vercel.app`,
    /// `https://*.com`) is refused: anyone can publish a site there. A company that operates a
    /// suffix of the Public Suffix List's private section may allow its own with
    /// [`dangerously_allow_public_suffix_subdomains`](Self::dangerously_allow_public_suffix_subdomains);
    /// registry suffixes (`com`, `co.uk`) and unknown ones (`test`) stay refused.
    ///
    /// ```
    /// let cors = corsair::Policy::builder()
    ///     .allow_origins(["https://app.example.com", "https://*.example.com"])
    ///     .build()?;
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-allow-origin
    pub fn allow_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.origins = strings(origins);
        self
    }

    /// Also allows every origin for which `predicate` returns `true`, for cases a list cannot
    /// express. It receives the request's serialized origin (already checked to be a
    /// well-formed, lowercase origin: `scheme://host[:port]`) after the list found no match.
    /// Replaces an earlier predicate.
    ///
    /// Compare whole parts, never substrings of the serialized origin. The classic mistakes,
    /// each of which an attacker passes by registering a domain:
    ///
    /// | Predicate | Meant | Also admits |
    /// |---|---|---|
    /// | `o.ends_with("example.com")` | `https://app.example.com` | `https://notexample.com` |
    /// | `o.starts_with("https://app.example.com")` | `https://app.example.com` | `https://app.example.com.evil.io` |
    /// | `o.contains("example.com")` | subdomains | `https://example.com.evil.io` |
    /// | a regex `https://.*.example.com` | subdomains | `https://evilxexample.com` (unescaped dot) |
    ///
    /// The safe way: parse the origin, compare the scheme exactly, and compare the host
    /// exactly or check that it ends with `.` followed by your domain.
    ///
    /// ```
    /// use corsair::origin::RequestOrigin;
    ///
    /// // Any subdomain of corp.example, over https, on any port.
    /// fn is_corp(origin: &str) -> bool {
    ///     RequestOrigin::parse(origin.as_bytes()).is_some_and(|o| {
    ///         o.scheme() == "https" && o.host().ends_with(".corp.example")
    ///     })
    /// }
    /// assert!(is_corp("https://wiki.corp.example"));
    /// assert!(is_corp("https://a.b.corp.example:8443"));
    /// assert!(!is_corp("https://notcorp.example"));
    /// assert!(!is_corp("https://wiki.corp.example.evil.io"));
    /// assert!(!is_corp("http://wiki.corp.example"));
    ///
    /// let cors = corsair::Policy::builder()
    ///     .allow_origin_predicate(is_corp)
    ///     .allow_credentials(true)
    ///     .build()?;
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    ///
    /// With credentials or Private Network Access, [`build`](Self::build) calls the predicate
    /// on a few origins under the reserved `.invalid` top-level domain
    /// (`https://corsair-canary.invalid`, `http://x.y.invalid:8080`,
    /// `http://localhost.corsair-canary.invalid`, …), which no honest policy admits; admitting
    /// one is the error [`OriginPredicateTooBroad`](crate::ErrorCode::OriginPredicateTooBroad)
    /// unless [`dangerously_allow_broad_origin_predicate`](Self::dangerously_allow_broad_origin_predicate).
    ///
    /// ```
    /// use corsair::{Policy, ErrorCode};
    ///
    /// let errors = Policy::builder()
    ///     .allow_origin_predicate(|o| o.starts_with("http://localhost"))
    ///     .allow_credentials(true)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(errors.codes(), [ErrorCode::OriginPredicateTooBroad]);
    /// ```
    pub fn allow_origin_predicate<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.predicate = Some(OriginPredicate::Origin(Arc::new(predicate)));
        self
    }

    /// Like [`allow_origin_predicate`](Self::allow_origin_predicate), for a decision that also
    /// depends on the request: the predicate sees the origin, the `Host` the request was sent
    /// to, and its path ([`OriginRequest`]). Replaces an earlier predicate of either kind.
    ///
    /// Every response of the policy then carries `Vary: Host` beside `Vary: Origin`, so that a
    /// shared cache never serves one host's answer for another (the path is part of every
    /// cache key already). The same rules of anchoring and the same build-time check apply:
    /// the predicate is also asked about the `.invalid` origins for a request without a host
    /// and for one to `corsair-canary.invalid`.
    ///
    /// ```
    /// use corsair::server::{answer, Reasons};
    /// use corsair::{OriginRequest, Policy, PolicySet};
    /// use http::{HeaderMap, Method};
    ///
    /// // Each tenant's API, on its own host, admits its own front end; /public admits both.
    /// fn tenant_origin(request: &OriginRequest<'_>) -> bool {
    ///     let tenant = match request.host() {
    ///         Some(h) if h.eq_ignore_ascii_case("api.a.example") => "https://a.example",
    ///         Some(h) if h.eq_ignore_ascii_case("api.b.example") => "https://b.example",
    ///         _ => return false,
    ///     };
    ///     request.origin() == tenant
    ///         || (request.path() == Some("/public")
    ///             && ["https://a.example", "https://b.example"].contains(&request.origin()))
    /// }
    /// let policies = PolicySet::single(
    ///     Policy::builder()
    ///         .allow_origin_request_predicate(tenant_origin)
    ///         .allow_credentials(true)
    ///         .build()?,
    /// );
    ///
    /// let ask = |host: &str, path: &str| {
    ///     let mut headers = HeaderMap::new();
    ///     headers.insert("origin", "https://a.example".parse().unwrap());
    ///     headers.insert("host", host.parse().unwrap());
    ///     let (_, cors) = answer(&policies, &Method::GET, path, &headers, Reasons::WhenTraced).into_parts();
    ///     let mut response = HeaderMap::new();
    ///     cors.apply(&mut response);
    ///     response
    /// };
    /// let own = ask("api.a.example", "/orders");
    /// assert_eq!(own["access-control-allow-origin"], "https://a.example");
    /// assert_eq!(own["vary"], "Origin, Host");
    /// assert!(ask("api.b.example", "/orders").get("access-control-allow-origin").is_none());
    /// assert!(ask("api.b.example", "/public").get("access-control-allow-origin").is_some());
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    pub fn allow_origin_request_predicate<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&OriginRequest<'_>) -> bool + Send + Sync + 'static,
    {
        self.predicate = Some(OriginPredicate::Request(Arc::new(predicate)));
        self
    }

    /// Also allows the origins an [`OriginSource`](crate::origin_source::OriginSource) admits,
    /// through the cache in front of it (feature `origin-source`): tenants' origins in a
    /// database. The source is asked last, after the listed origins, patterns and predicate
    /// refused the origin; a source that fails or times out refuses it. Replaces an earlier
    /// source.
    ///
    /// The adapter resolves the origin before the engine decides (see
    /// [`origin_source`](crate::origin_source)); the tower layer does. An adapter that does
    /// not refuses every origin only the source could admit
    /// ([`Rejection::OriginUnresolved`](crate::server::Rejection::OriginUnresolved)).
    ///
    /// The origins a source admits are not validated when the policy is built, as listed ones
    /// are: store only `https` origins (or loopback `http`) when the policy allows credentials
    /// or Private Network Access, and never `null` or `*`, which a source compares literally.
    #[cfg(feature = "origin-source")]
    pub fn allow_origin_source(mut self, cache: crate::origin_source::OriginCache) -> Self {
        self.source = Some(cache);
        self
    }

    /// Sets the methods allowed in addition to the CORS-safelisted GET, HEAD and POST
    /// ([`Access-Control-Allow-Methods`][spec]).
    ///
    /// Browsers compare methods case-sensitively after upper-casing only DELETE, GET, HEAD,
    /// OPTIONS, POST and PUT; corsair normalizes those six the same way and keeps every other
    /// name as written, so `"PATCH"` does not allow a script's `method: "patch"`.
    /// `"*"` allows any method (sent as `*` without credentials, reflected with them).
    /// Replaces the list of an earlier call.
    ///
    /// ```
    /// let cors = corsair::Policy::builder()
    ///     .allow_origins(["https://app.example.com"])
    ///     .allow_methods(["GET", "PUT", "PATCH", "DELETE"])
    ///     .build()?;
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-allow-methods
    pub fn allow_methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.methods = strings(methods);
        self
    }

    /// Sets the request headers a script may send beyond the CORS-safelisted ones
    /// ([`Access-Control-Allow-Headers`][spec]); names are case-insensitive.
    ///
    /// `"*"` allows any header, `Authorization` included: corsair reflects the names the
    /// preflight asks for, because browsers never let a literal `*` cover `Authorization` and
    /// ignore it altogether with credentials. Replaces the list of an earlier call.
    ///
    /// ```
    /// let cors = corsair::Policy::builder()
    ///     .allow_origins(["https://app.example.com"])
    ///     .allow_headers(["content-type", "authorization", "x-request-id"])
    ///     .build()?;
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-allow-headers
    pub fn allow_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.headers = strings(headers);
        self
    }

    /// Sets the response headers scripts may read beyond the CORS-safelisted ones
    /// ([`Access-Control-Expose-Headers`][spec]). `"*"` exposes all of them, and is refused
    /// with credentials (browsers would then look for a header literally named `*`).
    /// Replaces the list of an earlier call.
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-expose-headers
    pub fn expose_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.expose = strings(headers);
        self
    }

    /// Whether scripts may send cookies and HTTP authentication and read the response
    /// ([`Access-Control-Allow-Credentials: true`][spec]). Off by default.
    ///
    /// With credentials, corsair never sends `*` (browsers reject it): it reflects the origin,
    /// method and headers when the policy allows any of them.
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-allow-credentials
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long browsers may cache a preflight answer ([`Access-Control-Max-Age`][spec]),
    /// in whole seconds, at most 24 hours. Browsers cap it themselves (Chromium at 2 hours,
    /// Firefox at 24); without it they keep an answer 5 seconds.
    ///
    /// [spec]: https://fetch.spec.whatwg.org/#http-access-control-max-age
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Whether to answer Private Network Access preflights
    /// (`Access-Control-Request-Private-Network: true`) with
    /// `Access-Control-Allow-Private-Network: true`, letting public sites reach this server on a
    /// private network. Off by default.
    ///
    /// Refused together with any origin (`*`) and with origins that are not trusted (see
    /// [`allow_origins`](Self::allow_origins)), since either lets public websites reach devices
    /// on the visitor's network, unless
    /// [`dangerously_allow_private_network_with_any_origin`](Self::dangerously_allow_private_network_with_any_origin)
    /// or [`dangerously_allow_private_network_with_insecure_origins`](Self::dangerously_allow_private_network_with_insecure_origins).
    pub fn allow_private_network(mut self, allow: bool) -> Self {
        self.private_network = allow;
        self
    }

    /// The status of answered preflights: 204 by default. It must be 200–299, since browsers
    /// treat any other status as a failed preflight; 200 suits some old clients.
    pub fn preflight_status(mut self, status: u16) -> Self {
        self.preflight_status = status;
        self
    }

    /// **Dangerous.** Allows credentials together with any origin, by reflecting the request's
    /// origin. Every website can then read every authenticated response of this server with its
    /// visitors' cookies: the classic CORS vulnerability. Only for servers whose responses are
    /// public anyway, or that authenticate with something a third party cannot make a browser
    /// send.
    pub fn dangerously_allow_credentials_with_any_origin(mut self, allow: bool) -> Self {
        self.dangerous_credentials_any_origin = allow;
        self
    }

    /// **Dangerous.** Allows the origin `null`. Sandboxed iframes, `file:` pages, `data:` URLs
    /// and some redirects send it, so any site can produce a `null` origin by putting its code in
    /// a sandboxed iframe.
    pub fn dangerously_allow_null_origin(mut self, allow: bool) -> Self {
        self.dangerous_null_origin = allow;
        self
    }

    /// **Dangerous.** Allows plain-`http` origins that are not loopback together with
    /// credentials. Anyone on the network path between a visitor and such an origin can inject
    /// script into it and read this server's authenticated responses.
    pub fn dangerously_allow_insecure_origins_with_credentials(mut self, allow: bool) -> Self {
        self.dangerous_insecure_origins = allow;
        self
    }

    /// **Dangerous.** Allows Private Network Access together with any origin (`*`): every
    /// public website a visitor opens can then send requests to this server on the visitor's
    /// network. Only for devices designed to be reached from any website, whose every endpoint
    /// is safe to call from one.
    pub fn dangerously_allow_private_network_with_any_origin(mut self, allow: bool) -> Self {
        self.dangerous_private_network_any_origin = allow;
        self
    }

    /// **Dangerous.** Allows Private Network Access together with origins that are not trusted
    /// (plain `http` other than loopback, or a scheme not known to be secure). Anyone on the
    /// network path to such an origin can inject script into it and reach this server on the
    /// visitor's network.
    pub fn dangerously_allow_private_network_with_insecure_origins(mut self, allow: bool) -> Self {
        self.dangerous_private_network_insecure_origins = allow;
        self
    }

    /// **Dangerous.** Allows subdomain patterns over a public suffix of the Public Suffix List's
    /// private section, such as `https://*.vercel.app` or `https://*.myshopify.com`. Anyone can
    /// publish a site there, so this allows origins you do not control. Only for the company
    /// that operates the suffix, allowing its own customers' sites. Registry suffixes
    /// (`https://*.com`, `https://*.co.uk`) and names the list does not know stay refused.
    ///
    /// ```
    /// use corsair::{Policy, ErrorCode};
    ///
    /// let b = Policy::builder().allow_origins(["https://*.vercel.app"]);
    /// assert_eq!(b.build().unwrap_err().codes(), [ErrorCode::PatternOverPublicSuffix]);
    /// assert!(b.dangerously_allow_public_suffix_subdomains(true).build().is_ok());
    /// ```
    pub fn dangerously_allow_public_suffix_subdomains(mut self, allow: bool) -> Self {
        self.dangerous_public_suffix = allow;
        self
    }

    /// **Dangerous.** Allows, with credentials or Private Network Access, an
    /// [origin predicate](Self::allow_origin_predicate) that admits origins under the reserved
    /// `.invalid` domain, that is, origins nobody vetted. Only for a predicate that really means
    /// to admit unknown origins (one that consults a registry of tenants at request time and
    /// admits anything while it is unreachable is not one).
    pub fn dangerously_allow_broad_origin_predicate(mut self, allow: bool) -> Self {
        self.dangerous_broad_predicate = allow;
        self
    }

    /// Whether the policy reads an origin source (feature `origin-source`).
    pub(crate) fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// What the policy does that it may do but a reviewer should see, whether or not
    /// [`build`](Self::build) succeeds: each allowed origin matched in another spelling than
    /// the one written ([`NoteCode::OriginRewritten`](crate::NoteCode::OriginRewritten)), and
    /// each grant made only because a `dangerously_` option asked for it
    /// ([`NoteCode::DangerouslyAllowed`](crate::NoteCode::DangerouslyAllowed)), in the order
    /// of the settings. Meant for linters and reviews; serving needs none of it.
    ///
    /// ```
    /// use corsair::{Policy, ErrorCode, NoteCode};
    ///
    /// let b = Policy::builder()
    ///     .allow_origins(["http://127.1:06060", "https://bücher.example", "null"])
    ///     .dangerously_allow_null_origin(true);
    /// let notes = b.notes();
    /// let rewrites: Vec<_> = notes
    ///     .iter()
    ///     .filter(|n| n.code() == NoteCode::OriginRewritten)
    ///     .map(|n| (n.value().unwrap(), n.rewritten().unwrap()))
    ///     .collect();
    /// assert_eq!(
    ///     rewrites,
    ///     [
    ///         ("http://127.1:06060", "http://127.0.0.1:6060"),
    ///         ("https://bücher.example", "https://xn--bcher-kva.example"),
    ///     ]
    /// );
    /// let dangerous = &notes[2];
    /// assert_eq!(dangerous.code(), NoteCode::DangerouslyAllowed);
    /// assert_eq!(dangerous.refused(), Some(ErrorCode::NullOrigin));
    /// assert_eq!(dangerous.option(), Some("dangerously_allow_null_origin"));
    /// ```
    pub fn notes(&self) -> Vec<ConfigNote> {
        build::build_noted(self).1
    }

    /// Validates every setting and compiles the policy.
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem found, each with a stable
    /// [`ErrorCode`](crate::ErrorCode), the offending value and a fix.
    ///
    /// ```
    /// use corsair::{Policy, ErrorCode};
    ///
    /// let errors = Policy::builder()
    ///     .allow_origins(["*", "https://example.com/"])
    ///     .allow_methods(["TRACE"])
    ///     .allow_credentials(true)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     errors.codes(),
    ///     [
    ///         ErrorCode::OriginTrailingSlash,
    ///         ErrorCode::AnyOriginInList,
    ///         ErrorCode::CredentialsWithAnyOrigin,
    ///         ErrorCode::MethodForbidden,
    ///     ]
    /// );
    /// ```
    pub fn build(&self) -> Result<Policy, ConfigErrors> {
        build::build(self).map(|c| Policy { inner: Arc::new(c) })
    }

    /// [`build`](Self::build) and [`notes`](Self::notes) in one pass of the rules.
    #[cfg(feature = "serde")]
    pub(crate) fn build_noted(&self) -> (Result<Policy, ConfigErrors>, Vec<ConfigNote>) {
        let (result, notes) = build::build_noted(self);
        (result.map(|c| Policy { inner: Arc::new(c) }), notes)
    }
}
