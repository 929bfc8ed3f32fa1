//! The policy: a builder that collects settings, validation that reports every problem at once,
//! and [`Cors`], the immutable compiled form the server engine reads on every request.

mod build;
pub(crate) mod origin_set;
pub(crate) mod set;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

use crate::error::ConfigErrors;
use origin_set::{OriginPredicate, OriginSet};

/// A validated, compiled CORS policy: immutable, cheap to clone (one reference count), and
/// shareable across threads.
///
/// Build one with [`Cors::builder`]; serve it with the server engine ([`Cors::decide`]) or the
/// tower middleware (`corsair::tower::CorsLayer`, feature `tower`).
///
/// ```
/// use std::time::Duration;
///
/// let cors = corsair::Cors::builder()
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
pub struct Cors {
    pub(crate) inner: Arc<Compiled>,
}

impl Cors {
    /// Starts a policy that allows nothing; add origins with
    /// [`allow_origins`](CorsBuilder::allow_origins).
    pub fn builder() -> CorsBuilder {
        CorsBuilder::default()
    }

    /// Whether this policy includes credentials (`Access-Control-Allow-Credentials: true`).
    pub fn allows_credentials(&self) -> bool {
        self.inner.credentials
    }
}

impl fmt::Debug for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// A list setting: either specific values or any value (`*`).
#[derive(Debug, Clone)]
pub(crate) enum Allowed {
    /// Any value: reflected from the request, or `*` where browsers honour it.
    Any,
    /// These values, and the header value listing them (`None` when the list is empty).
    List(Vec<Box<str>>, Option<HeaderValue>),
}

/// The compiled policy.
pub(crate) struct Compiled {
    pub(crate) origins: OriginSet,
    pub(crate) credentials: bool,
    /// Methods as written (the six that browsers normalize are upper-cased); compared
    /// case-sensitively.
    pub(crate) methods: Allowed,
    /// Lowercase header names; compared case-insensitively.
    pub(crate) headers: Allowed,
    /// `Access-Control-Expose-Headers` value.
    pub(crate) expose: Option<HeaderValue>,
    /// `Access-Control-Max-Age` value.
    pub(crate) max_age: Option<HeaderValue>,
    pub(crate) private_network: bool,
    pub(crate) preflight_status: StatusCode,
    /// The answer is `*` for every origin: anonymous any-origin policy.
    pub(crate) wildcard_origin: bool,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cors")
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

/// Collects the settings of a [`Cors`] policy; [`build`](CorsBuilder::build) validates and
/// compiles them.
///
/// Every list setting replaces what an earlier call of the same setting gave. Lists accept
/// `"*"`, meaning any value.
///
/// Nothing here panics or fails: problems are found by `build`, all at once.
#[derive(Clone)]
#[must_use]
pub struct CorsBuilder {
    pub(crate) origins: Vec<String>,
    pub(crate) predicate: Option<OriginPredicate>,
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
}

impl Default for CorsBuilder {
    fn default() -> Self {
        CorsBuilder {
            origins: Vec::new(),
            predicate: None,
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
        }
    }
}

impl fmt::Debug for CorsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsBuilder")
            .field("origins", &self.origins)
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
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

impl CorsBuilder {
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
    /// ```
    /// let cors = corsair::Cors::builder()
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
    /// well-formed, lowercase origin) after the list found no match. Replaces an earlier
    /// predicate.
    ///
    /// ```
    /// let cors = corsair::Cors::builder()
    ///     .allow_origin_predicate(|origin| origin.starts_with("https://") && origin.ends_with(".corp.example"))
    ///     .build()?;
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    pub fn allow_origin_predicate<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.predicate = Some(Arc::new(predicate));
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
    /// let cors = corsair::Cors::builder()
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
    /// let cors = corsair::Cors::builder()
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

    /// Validates every setting and compiles the policy.
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem found, each with a stable
    /// [`ErrorCode`](crate::ErrorCode), the offending value and a fix.
    ///
    /// ```
    /// use corsair::{Cors, ErrorCode};
    ///
    /// let errors = Cors::builder()
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
    pub fn build(&self) -> Result<Cors, ConfigErrors> {
        build::build(self).map(|c| Cors { inner: Arc::new(c) })
    }
}
