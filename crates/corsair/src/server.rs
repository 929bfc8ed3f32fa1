//! The server engine: from a request's method and headers to a [`Decision`]: forward the request
//! and decorate its response, or answer a preflight now. [`Policy::decide`] is pure: no I/O, no
//! logging, no allocation on the paths a browser takes. [`answer`], the adapters' entry point,
//! adds only the `debug` event of a refusal, when a subscriber listens.
//!
//! The rules, in order:
//! 1. Cache safety, on every response: a policy whose answer is the same for every origin (any
//!    origin, no credentials) sends `Access-Control-Allow-Origin: *` and its exposed headers on
//!    every response, whatever `Origin` says or whether it is there, and no `Vary: Origin`;
//!    every other policy sends `Vary: Origin` on every response, CORS or not. An `OPTIONS`
//!    answer that is not a preflight's varies on `Origin`, `Access-Control-Request-Method` and
//!    `-Headers`, like a preflight's. A shared cache can then never hand a browser an answer
//!    made for another origin, a bare one, or a forwarded `OPTIONS` answer for a preflight.
//! 2. A preflight is exactly `OPTIONS` with `Origin` and `Access-Control-Request-Method`. It never
//!    reaches the application. Any other `OPTIONS` request is forwarded like any other request.
//! 3. A disallowed (or malformed) origin gets no `Access-Control-*` header at all: its preflight is
//!    answered `403`, its other requests are forwarded undecorated (but for `Vary`).
//! 4. An allowed origin's preflight is answered with the policy's status (204) and the full allowed
//!    lists, even when the requested method or headers are not in them: the browser then names
//!    the exact method or header at fault in its console.
//! 5. `Vary` is appended to, never overwritten, never duplicated.
//! 6. The policy owns the CORS response headers: whatever `Access-Control-Allow-*`,
//!    `Access-Control-Expose-Headers` or `Access-Control-Max-Age` the application set is removed
//!    before the policy's own are written, on every response that passes through.

use std::fmt;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, VARY,
};
use http::{Method, StatusCode};

use crate::policy::origin_set::{LookupParts, OriginMatch};
pub use crate::policy::Resolved;
use crate::policy::{Compiled, ListSetting};
use crate::syntax::{self, ListError, ListItem};
use crate::{Policy, PolicySet};

/// `Access-Control-Request-Private-Network` (Private Network Access preflights).
pub const ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");
/// `Access-Control-Allow-Private-Network`.
pub const ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

/// The longest `Access-Control-Request-Headers` (all lines together) a preflight may carry.
/// Browsers send one short line of sorted names; a longer value is refused unread.
pub const MAX_REQUEST_HEADERS_LEN: usize = 4096;
/// The most elements (empty ones included) `Access-Control-Request-Headers` may list.
pub const MAX_REQUEST_HEADERS_ITEMS: usize = 64;

/// A header map the engine reads a request from and writes its answer into, with the method
/// type of the same HTTP crate. Implemented for `http` 1's [`HeaderMap`] (with [`Method`]),
/// which tower, axum, hyper and tonic use, and, with feature `actix`, for actix-web 4's
/// `HeaderMap` (with its `Method`, from `http` 0.2).
///
/// [`answer`] and [`CorsHeaders::apply`] take either map as it is: the engine looks headers up
/// by the map's own names and keeps the request's values by reference-counted clones, so an
/// adapter converts nothing and allocates nothing per request. The trait is sealed: its methods
/// are the engine's private vocabulary. An adapter for a framework built on `http` 1 passes its
/// `HeaderMap`; one for another header type is written inside corsair, as `actix` is.
pub trait Headers: sealed::Sealed {
    /// The map's header value type.
    type Value: Clone + fmt::Debug;
    /// The request method type of the same HTTP crate.
    type Method;

    #[doc(hidden)]
    fn is_options(method: &Self::Method) -> bool;
    #[doc(hidden)]
    fn values(&self, name: Name) -> impl Iterator<Item = &Self::Value>;
    #[doc(hidden)]
    fn bytes(value: &Self::Value) -> &[u8];
    #[doc(hidden)]
    fn from_policy(value: &PolicyValue) -> Self::Value;
    #[doc(hidden)]
    fn from_static(value: &'static str) -> Self::Value;
    #[doc(hidden)]
    fn constant(value: Constant) -> Self::Value;
    #[doc(hidden)]
    fn from_bytes(value: &[u8]) -> Option<Self::Value>;
    #[doc(hidden)]
    fn has_cors_headers(&self) -> bool;
    #[doc(hidden)]
    fn remove(&mut self, name: Name);
    #[doc(hidden)]
    fn insert(&mut self, name: Name, value: Self::Value);
    #[doc(hidden)]
    fn append(&mut self, name: Name, value: Self::Value);
    /// Inserts `value` when the map has no `name`; whether it did. A map with an entry API
    /// looks the name up once.
    #[doc(hidden)]
    fn insert_if_absent(&mut self, name: Name, value: Self::Value) -> bool {
        if self.values(name).next().is_some() {
            return false;
        }
        self.insert(name, value);
        true
    }
}

pub(crate) use sealed::{Constant, Name, PolicyValue};

/// What only the engine (and the adapters inside corsair) names: the sealing trait, the headers
/// it reads and writes, and the values a policy writes.
pub(crate) mod sealed {
    use http::HeaderValue;

    /// Implemented by exactly the maps of [`super::Headers`].
    pub trait Sealed {}

    /// The headers the engine reads or writes; each map turns one into its own `HeaderName`
    /// (a constant: no parsing, no allocation).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Name {
        Origin,
        RequestMethod,
        RequestHeaders,
        RequestPrivateNetwork,
        AllowOrigin,
        AllowCredentials,
        ExposeHeaders,
        AllowMethods,
        AllowHeaders,
        MaxAge,
        AllowPrivateNetwork,
        Vary,
        Host,
        Upgrade,
        Connection,
    }

    /// The engine's constant header values: `*`, `true`, and the `Vary` lines of
    /// [`super::Vary`]. Each map gives them as `const` values of its own type
    /// ([`constant_value!`](crate::server::constant_value)): `from_static` checks its bytes
    /// one by one when it runs, which for the 70-byte `Vary` lines cost more than the rest of a
    /// preflight's decision.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Constant {
        Star,
        True,
        VaryO,
        VaryOHost,
        VaryOMH,
        VaryOMHHost,
        VaryMH,
        VaryOMHP,
        VaryOMHPHost,
        VaryMHP,
    }

    /// A header value a policy writes (its lists, `Access-Control-Max-Age`), made once when the
    /// policy is built, in the header type of every enabled adapter: writing it on a response
    /// is then a copy of an interned `'static` buffer whatever the framework.
    #[derive(Clone)]
    pub struct PolicyValue {
        pub(crate) http: HeaderValue,
        #[cfg(feature = "actix")]
        pub(crate) actix: actix_web::http::header::HeaderValue,
    }

    impl PolicyValue {
        /// A value over an interned buffer, already validated as a header value.
        pub(crate) fn interned(value: &'static str) -> Self {
            PolicyValue {
                http: HeaderValue::from_static(value),
                #[cfg(feature = "actix")]
                actix: actix_web::http::header::HeaderValue::from_static(value),
            }
        }

        /// A value with buffers of its own (reference-counted); `None` if `value` is not a
        /// valid header value.
        pub(crate) fn owned(value: &str) -> Option<Self> {
            Some(PolicyValue {
                http: HeaderValue::from_str(value).ok()?,
                #[cfg(feature = "actix")]
                actix: actix_web::http::header::HeaderValue::from_str(value).ok()?,
            })
        }

        /// The value's bytes.
        pub(crate) fn as_bytes(&self) -> &[u8] {
            self.http.as_bytes()
        }
    }

    impl std::fmt::Debug for PolicyValue {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Debug::fmt(&self.http, f)
        }
    }

    impl PartialEq<str> for PolicyValue {
        fn eq(&self, other: &str) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }

    impl PartialEq<&str> for PolicyValue {
        fn eq(&self, other: &&str) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }
}

/// [`Constant`]'s values as `const`s of a `HeaderValue` type (`http` 1's or 0.2's, whose
/// `from_static` are both `const fn`).
macro_rules! constant_value {
    ($value:ty, $which:expr) => {{
        use $crate::server::Constant as C;
        const STAR: $value = <$value>::from_static("*");
        const TRUE: $value = <$value>::from_static("true");
        const O: $value = <$value>::from_static("Origin");
        const OHOST: $value = <$value>::from_static("Origin, Host");
        const OMH: $value = <$value>::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        );
        const OMHHOST: $value = <$value>::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Host",
        );
        const MH: $value = <$value>::from_static(
            "Access-Control-Request-Method, Access-Control-Request-Headers",
        );
        const OMHP: $value = <$value>::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
        );
        const OMHPHOST: $value = <$value>::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network, Host",
        );
        const MHP: $value = <$value>::from_static(
            "Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
        );
        match $which {
            C::Star => STAR,
            C::True => TRUE,
            C::VaryO => O,
            C::VaryOHost => OHOST,
            C::VaryOMH => OMH,
            C::VaryOMHHost => OMHHOST,
            C::VaryMH => MH,
            C::VaryOMHP => OMHP,
            C::VaryOMHPHost => OMHPHOST,
            C::VaryMHP => MHP,
        }
    }};
}
#[allow(unused_imports)] // for the adapters behind features
pub(crate) use constant_value;

/// The [`Headers`] implementation of an `http`-shaped header map: `http` 1's here, actix-web's
/// (`http` 0.2) in the actix adapter. The two maps have the same methods but are different
/// types; `$name` turns a [`Name`] into the map's header name and `$field` picks the
/// [`PolicyValue`] of the map's value type. Any items after those replace default methods of
/// the trait (http 1's map does its `insert_if_absent` with its entry API).
macro_rules! impl_headers {
    ($map:ty, $value:ty, $method:ty, $name:path, $field:ident $(, $more:item)*) => {
        impl $crate::server::sealed::Sealed for $map {}

        impl $crate::server::Headers for $map {
            type Value = $value;
            type Method = $method;

            #[inline]
            fn is_options(method: &$method) -> bool {
                method == <$method>::OPTIONS
            }
            #[inline]
            #[allow(clippy::useless_conversion)] // `get_all` is an iterator in `http` 0.2 only
            fn values(&self, name: $crate::server::Name) -> impl Iterator<Item = &$value> {
                self.get_all($name(name)).into_iter()
            }
            #[inline]
            fn bytes(value: &$value) -> &[u8] {
                value.as_bytes()
            }
            #[inline]
            fn from_policy(value: &$crate::server::PolicyValue) -> $value {
                value.$field.clone()
            }
            #[inline]
            fn from_static(value: &'static str) -> $value {
                <$value>::from_static(value)
            }
            #[inline]
            fn constant(value: $crate::server::Constant) -> $value {
                $crate::server::constant_value!($value, value)
            }
            #[inline]
            fn from_bytes(value: &[u8]) -> Option<$value> {
                <$value>::from_bytes(value).ok()
            }
            #[inline]
            fn has_cors_headers(&self) -> bool {
                self.keys()
                    .any(|k| k.as_str().starts_with("access-control-"))
            }
            #[inline]
            fn remove(&mut self, name: $crate::server::Name) {
                <$map>::remove(self, $name(name));
            }
            #[inline]
            fn insert(&mut self, name: $crate::server::Name, value: $value) {
                <$map>::insert(self, $name(name), value);
            }
            #[inline]
            fn append(&mut self, name: $crate::server::Name, value: $value) {
                <$map>::append(self, $name(name), value);
            }
            $($more)*
        }
    };
}
#[allow(unused_imports)] // for the adapters behind features
pub(crate) use impl_headers;

impl_headers!(
    HeaderMap,
    HeaderValue,
    Method,
    http_name,
    http,
    #[inline]
    fn insert_if_absent(&mut self, name: Name, value: HeaderValue) -> bool {
        match self.entry(http_name(name)) {
            http::header::Entry::Vacant(e) => {
                e.insert(value);
                true
            }
            http::header::Entry::Occupied(_) => false,
        }
    }
);

/// `http` 1's name for a header the engine reads or writes.
#[inline]
fn http_name(name: Name) -> HeaderName {
    match name {
        Name::Origin => ORIGIN,
        Name::RequestMethod => ACCESS_CONTROL_REQUEST_METHOD,
        Name::RequestHeaders => ACCESS_CONTROL_REQUEST_HEADERS,
        Name::RequestPrivateNetwork => ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK,
        Name::AllowOrigin => ACCESS_CONTROL_ALLOW_ORIGIN,
        Name::AllowCredentials => ACCESS_CONTROL_ALLOW_CREDENTIALS,
        Name::ExposeHeaders => ACCESS_CONTROL_EXPOSE_HEADERS,
        Name::AllowMethods => ACCESS_CONTROL_ALLOW_METHODS,
        Name::AllowHeaders => ACCESS_CONTROL_ALLOW_HEADERS,
        Name::MaxAge => ACCESS_CONTROL_MAX_AGE,
        Name::AllowPrivateNetwork => ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK,
        Name::Vary => VARY,
        Name::Host => HOST,
        Name::Upgrade => http::header::UPGRADE,
        Name::Connection => http::header::CONNECTION,
    }
}

/// What the middleware does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass the request to the application, then add [`Decision::headers`] to its response.
    Forward,
    /// Answer now with this status, an empty body and [`Decision::headers`]; the application
    /// never sees the request.
    Respond(StatusCode),
}

/// Whether the request was a CORS request, and whether the policy allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No `Origin` header: not a CORS request.
    NotCors,
    /// Allowed by the policy.
    Allowed,
    /// Refused by the policy, for this reason.
    Rejected(Rejection),
}

/// Why the policy refused a request: machine-readable, stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The origin is well-formed but not allowed.
    OriginNotAllowed,
    /// The `Origin` header is not a serialized origin.
    OriginMalformed,
    /// The request has more than one `Origin` header.
    MultipleOrigins,
    /// The requested method is not allowed.
    MethodNotAllowed,
    /// `Access-Control-Request-Method` is not a method token, or appears twice.
    MethodInvalid,
    /// A requested header is not allowed.
    HeaderNotAllowed,
    /// `Access-Control-Request-Headers` has an element that is not a header name.
    HeadersInvalid,
    /// `Access-Control-Request-Headers` is longer than [`MAX_REQUEST_HEADERS_LEN`] or lists more
    /// than [`MAX_REQUEST_HEADERS_ITEMS`] elements.
    HeadersTooLong,
    /// The preflight asks for private network access, which the policy does not allow.
    PrivateNetworkNotAllowed,
    /// Only the policy's origin source could admit the origin, and the adapter did not ask it
    /// (see [`RequestInfo::resolved`]).
    OriginUnresolved,
    /// Only the policy's origin source could admit the origin, and it failed or did not answer
    /// in time: refused (fail closed).
    OriginSourceFailed,
}

impl Rejection {
    /// The reason as a stable kebab-case string, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::OriginNotAllowed => "origin-not-allowed",
            Rejection::OriginMalformed => "origin-malformed",
            Rejection::MultipleOrigins => "multiple-origins",
            Rejection::MethodNotAllowed => "method-not-allowed",
            Rejection::MethodInvalid => "method-invalid",
            Rejection::HeaderNotAllowed => "header-not-allowed",
            Rejection::HeadersInvalid => "headers-invalid",
            Rejection::HeadersTooLong => "headers-too-long",
            Rejection::PrivateNetworkNotAllowed => "private-network-not-allowed",
            Rejection::OriginUnresolved => "origin-unresolved",
            Rejection::OriginSourceFailed => "origin-source-failed",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which `Vary` tokens a response needs. `host`: the decision may depend on `Host` (a
/// request-aware origin predicate), named wherever `Origin` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vary {
    None,
    Origin {
        host: bool,
    },
    Preflight {
        origin: bool,
        private_network: bool,
        host: bool,
    },
}

impl Vary {
    /// The tokens, and the same tokens as one header value for a response without `Vary`
    /// (a constant of each map's value type: see [`Constant`]).
    fn tokens(self) -> (&'static [&'static str], Option<Constant>) {
        const O: &str = "Origin";
        const M: &str = "Access-Control-Request-Method";
        const H: &str = "Access-Control-Request-Headers";
        const P: &str = "Access-Control-Request-Private-Network";
        const HOST: &str = "Host";
        match self {
            Vary::None => (&[], None),
            Vary::Origin { host: false } => (&[O], Some(Constant::VaryO)),
            Vary::Origin { host: true } => (&[O, HOST], Some(Constant::VaryOHost)),
            Vary::Preflight {
                origin: true,
                private_network: false,
                host: false,
            } => (&[O, M, H], Some(Constant::VaryOMH)),
            Vary::Preflight {
                origin: true,
                private_network: false,
                host: true,
            } => (&[O, M, H, HOST], Some(Constant::VaryOMHHost)),
            Vary::Preflight {
                origin: false,
                private_network: false,
                ..
            } => (&[M, H], Some(Constant::VaryMH)),
            Vary::Preflight {
                origin: true,
                private_network: true,
                host: false,
            } => (&[O, M, H, P], Some(Constant::VaryOMHP)),
            Vary::Preflight {
                origin: true,
                private_network: true,
                host: true,
            } => (&[O, M, H, P, HOST], Some(Constant::VaryOMHPHost)),
            Vary::Preflight {
                origin: false,
                private_network: true,
                ..
            } => (&[M, H, P], Some(Constant::VaryMHP)),
        }
    }
}

/// The CORS response headers a decision adds, as values of the request's header type `V`
/// (see [`Headers`]). Compact: the values are shared with the policy (static buffers) or the
/// request, so building and moving it copies no header bytes.
#[derive(Debug, Clone)]
pub struct CorsHeaders<V = HeaderValue>(Inner<V>);

#[derive(Debug, Clone)]
enum Inner<V> {
    /// Only `Vary` (not a CORS request, or a refused one).
    Vary(Vary),
    /// An allowed actual request.
    Actual {
        allow_origin: V,
        expose: Option<V>,
        credentials: bool,
        vary: Vary,
    },
    /// An answered preflight from an allowed origin.
    Preflight {
        allow_origin: V,
        methods: Option<V>,
        headers: Option<V>,
        max_age: Option<V>,
        credentials: bool,
        private_network: bool,
        vary: Vary,
    },
}

/// The engine's answer for one request, its header values of the request's type `V`.
#[derive(Debug, Clone)]
#[must_use]
pub struct Decision<V = HeaderValue> {
    action: Action,
    headers: CorsHeaders<V>,
    outcome: Outcome,
}

impl<V> Decision<V> {
    /// What to do with the request.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Whether this was a CORS request and whether it was allowed.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The reason, if the policy refused the request.
    pub fn rejection(&self) -> Option<Rejection> {
        match self.outcome {
            Outcome::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// The headers to write on the response (forwarded or answered).
    pub fn headers(&self) -> &CorsHeaders<V> {
        &self.headers
    }

    /// Splits the decision into its action and its headers.
    pub fn into_parts(self) -> (Action, CorsHeaders<V>) {
        (self.action, self.headers)
    }
}

/// The policy's own headers, which it removes from the application's responses.
const OWNED: [Name; 7] = [
    Name::AllowOrigin,
    Name::AllowCredentials,
    Name::ExposeHeaders,
    Name::AllowMethods,
    Name::AllowHeaders,
    Name::MaxAge,
    Name::AllowPrivateNetwork,
];

impl<V> CorsHeaders<V> {
    fn vary_only(vary: Vary) -> Self {
        CorsHeaders(Inner::Vary(vary))
    }

    /// The `Access-Control-Allow-Origin` value, if any.
    pub fn allow_origin(&self) -> Option<&V> {
        match &self.0 {
            Inner::Vary(_) => None,
            Inner::Actual { allow_origin, .. } | Inner::Preflight { allow_origin, .. } => {
                Some(allow_origin)
            }
        }
    }

    /// Writes these headers into a response's header map (of the request's [`Headers`] type):
    /// removes the CORS headers the application set, inserts the policy's, and appends the
    /// missing `Vary` tokens.
    pub fn apply<M: Headers<Value = V>>(self, headers: &mut M) {
        if headers.has_cors_headers() {
            for name in OWNED {
                headers.remove(name);
            }
        }
        let vary = match self.0 {
            Inner::Vary(vary) => vary,
            Inner::Actual {
                allow_origin,
                expose,
                credentials,
                vary,
            } => {
                headers.insert(Name::AllowOrigin, allow_origin);
                if credentials {
                    headers.insert(Name::AllowCredentials, M::constant(Constant::True));
                }
                if let Some(v) = expose {
                    headers.insert(Name::ExposeHeaders, v);
                }
                vary
            }
            Inner::Preflight {
                allow_origin,
                methods,
                headers: allowed_headers,
                max_age,
                credentials,
                private_network,
                vary,
            } => {
                headers.insert(Name::AllowOrigin, allow_origin);
                if credentials {
                    headers.insert(Name::AllowCredentials, M::constant(Constant::True));
                }
                if let Some(v) = methods {
                    headers.insert(Name::AllowMethods, v);
                }
                if let Some(v) = allowed_headers {
                    headers.insert(Name::AllowHeaders, v);
                }
                if let Some(v) = max_age {
                    headers.insert(Name::MaxAge, v);
                }
                if private_network {
                    headers.insert(Name::AllowPrivateNetwork, M::constant(Constant::True));
                }
                vary
            }
        };
        add_vary(headers, vary);
    }
}

/// Appends each token not already named by the response's `Vary` (case-insensitively); a
/// `Vary: *` already covers everything. A response without `Vary` gets one line with all tokens.
fn add_vary<M: Headers>(headers: &mut M, vary: Vary) {
    let (tokens, Some(joined)) = vary.tokens() else {
        return;
    };
    if headers.insert_if_absent(Name::Vary, M::constant(joined)) {
        return;
    }
    for &token in tokens {
        let mut present = false;
        for line in headers.values(Name::Vary) {
            let _ = syntax::for_each_list_item([M::bytes(line)], usize::MAX, usize::MAX, |item| {
                let name = match item {
                    ListItem::Token(t) | ListItem::Invalid(t) => t,
                };
                present = name == b"*" || name.eq_ignore_ascii_case(token.as_bytes());
                !present
            });
            if present {
                break;
            }
        }
        if !present {
            headers.append(Name::Vary, M::from_static(token));
        }
    }
}

/// What the engine may read about a request besides its method and headers: its path, its
/// authority when it has no `Host` header (HTTP/2), and what the policy's origin source said
/// about its origin. Only request-aware predicates
/// ([`allow_origin_request_predicate`](crate::PolicyBuilder::allow_origin_request_predicate))
/// read the path and host, and only policies with an origin source read
/// [`resolved`](Self::resolved); the defaults suit every other policy.
///
/// ```
/// use corsair::server::{RequestInfo, Resolved};
///
/// let info = RequestInfo::at("/api/orders").authority(Some("api.example")).resolved(Resolved::Allowed);
/// # let _ = info;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestInfo<'a> {
    path: Option<&'a str>,
    authority: Option<&'a str>,
    resolved: Resolved,
}

impl<'a> RequestInfo<'a> {
    /// A request for `path` (as the server reads it, without the query).
    pub fn at(path: &'a str) -> Self {
        RequestInfo {
            path: Some(path),
            ..RequestInfo::default()
        }
    }

    /// The request URI's authority, which stands for `Host` when the request has none (HTTP/2
    /// and HTTP/3 send `:authority` instead).
    pub fn authority(mut self, authority: Option<&'a str>) -> Self {
        self.authority = authority;
        self
    }

    /// What the policy's origin source said about the request's origin, as found by the
    /// adapter before deciding.
    pub fn resolved(mut self, resolved: Resolved) -> Self {
        self.resolved = resolved;
        self
    }

    /// The parts an origin lookup reads: the host only when the decision depends on it.
    fn lookup_parts<H: Headers>(&self, headers: &'a H, reads_host: bool) -> LookupParts<'a> {
        LookupParts {
            host: if reads_host {
                request_host(headers, self.authority)
            } else {
                None
            },
            path: self.path,
            resolved: self.resolved,
        }
    }
}

/// The request's one `Host`, else its authority; `None` for two `Host` lines or one that is
/// not visible ASCII.
fn request_host<'a, H: Headers>(headers: &'a H, authority: Option<&'a str>) -> Option<&'a str> {
    let mut lines = headers.values(Name::Host);
    match (lines.next(), lines.next()) {
        (None, _) => authority,
        (Some(one), None) => visible_ascii(H::bytes(one)),
        (Some(_), Some(_)) => None,
    }
}

/// `bytes` as text when they are visible ASCII (or tabs), as `HeaderValue::to_str` reads them.
fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    if bytes
        .iter()
        .all(|&b| (b == b'\t') || (0x20..0x7f).contains(&b))
    {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

impl Policy {
    /// Decides what to do with a request, from its method and headers.
    ///
    /// ```
    /// use corsair::server::{Action, Outcome};
    /// use http::{HeaderMap, Method, StatusCode};
    ///
    /// let cors = corsair::Policy::builder()
    ///     .allow_origins(["http://localhost:8000"])
    ///     .allow_methods(["PUT"])
    ///     .build()?;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("origin", "http://localhost:8000".parse().unwrap());
    /// headers.insert("access-control-request-method", "PUT".parse().unwrap());
    /// let decision = cors.decide(&Method::OPTIONS, &headers);
    /// assert_eq!(decision.action(), Action::Respond(StatusCode::NO_CONTENT));
    /// assert_eq!(decision.outcome(), Outcome::Allowed);
    ///
    /// let mut response = HeaderMap::new();
    /// decision.into_parts().1.apply(&mut response);
    /// assert_eq!(response["access-control-allow-origin"], "http://localhost:8000");
    /// assert_eq!(response["access-control-allow-methods"], "PUT");
    /// # Ok::<(), corsair::ConfigErrors>(())
    /// ```
    ///
    /// A request-aware origin predicate sees no path here; give it one with
    /// [`decide_in`](Self::decide_in).
    pub fn decide(&self, method: &Method, headers: &HeaderMap) -> Decision {
        decide(
            &self.inner,
            method,
            headers,
            &RequestInfo::default(),
            Explain::Yes,
        )
    }

    /// [`decide`](Self::decide), with what the engine may read besides the method and headers:
    /// the path and authority for a request-aware origin predicate, and the origin source's
    /// answer for a policy with one.
    pub fn decide_in<H: Headers>(
        &self,
        method: &H::Method,
        headers: &H,
        info: &RequestInfo<'_>,
    ) -> Decision<H::Value> {
        decide(&self.inner, method, headers, info, Explain::Yes)
    }
}

/// How much of a refusal's reason middleware needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasons {
    /// Work the reason out only when it will be traced: when a `debug` subscriber for target
    /// `corsair` listens. Otherwise the checks whose only product is the reason are skipped
    /// (the response is the same), and [`Answer::outcome`] is `None`.
    WhenTraced,
    /// Always work the reason out, for an access log; it is traced as well.
    Always,
}

/// The engine's answer for middleware: what to do, the headers to write, and the outcome
/// when it was worked out.
#[derive(Debug, Clone)]
#[must_use]
pub struct Answer<V = HeaderValue> {
    decision: Decision<V>,
    exact: bool,
}

impl<V> Answer<V> {
    /// What to do with the request.
    pub fn action(&self) -> Action {
        self.decision.action
    }

    /// Whether this was a CORS request and whether it was allowed: `Some` exactly when the
    /// reason was worked out ([`Reasons::Always`], or a `debug` subscriber listening), never a
    /// guess.
    pub fn outcome(&self) -> Option<Outcome> {
        self.exact.then_some(self.decision.outcome)
    }

    /// Splits the answer into its action and the headers to write on the response.
    pub fn into_parts(self) -> (Action, CorsHeaders<V>) {
        self.decision.into_parts()
    }
}

/// The entry point for middleware and proxies: picks the request's policy by path, decides,
/// and traces a refusal as a `debug` event (target `corsair`, with a stable `reason`) when
/// anyone listens. Nothing is logged at `info` or above.
///
/// An adapter calls this once per request, then either forwards the request and applies the
/// headers to the response, or answers at once with them: see the tower layer's source for a
/// complete adapter in some forty lines.
///
/// ```
/// use corsair::server::{answer, Action, Reasons};
/// use corsair::{Policy, PolicySet};
/// use http::{HeaderMap, Method, StatusCode};
///
/// let policies = PolicySet::single(Policy::builder().allow_origins(["http://localhost:8000"]).build()?);
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "http://localhost:8000".parse()?);
/// headers.insert("access-control-request-method", "GET".parse()?);
///
/// let answer = answer(&policies, &Method::OPTIONS, "/api", &headers, Reasons::WhenTraced);
/// assert_eq!(answer.action(), Action::Respond(StatusCode::NO_CONTENT));
/// let (_, cors_headers) = answer.into_parts();
/// let mut response = HeaderMap::new();
/// cors_headers.apply(&mut response);
/// assert_eq!(response["access-control-allow-origin"], "http://localhost:8000");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn answer<H: Headers>(
    policies: &PolicySet,
    method: &H::Method,
    path: &str,
    headers: &H,
    reasons: Reasons,
) -> Answer<H::Value> {
    answer_in(policies, method, headers, &RequestInfo::at(path), reasons)
}

/// [`answer`], with the request's authority and its origin source's answer: the entry point of
/// an adapter that serves request-aware predicates over HTTP/2 or policies with an origin
/// source. The policy is chosen by the info's path (`/` when it has none).
pub fn answer_in<H: Headers>(
    policies: &PolicySet,
    method: &H::Method,
    headers: &H,
    info: &RequestInfo<'_>,
    reasons: Reasons,
) -> Answer<H::Value> {
    let explain = match reasons {
        Reasons::Always => Explain::Yes,
        Reasons::WhenTraced => Explain::if_logging(),
    };
    let policy = policies.for_path(info.path.unwrap_or("/"));
    let decision = decide(&policy.inner, method, headers, info, explain);
    let exact = explain == Explain::Yes;
    if exact {
        if let Some(reason) = decision.rejection() {
            tracing::debug!(
                target: "corsair",
                reason = reason.as_str(),
                origin = ?headers.values(Name::Origin).next(),
                request_method = ?headers.values(Name::RequestMethod).next(),
                request_headers = ?headers.values(Name::RequestHeaders).next(),
                "CORS request rejected"
            );
        }
    }
    Answer { decision, exact }
}

/// What an adapter must resolve before it asks the engine about a request whose policy has an
/// origin source (feature `origin-source`): the source's cache and the origin to look up. See
/// [`origin_lookup`].
#[cfg(feature = "origin-source")]
#[derive(Debug, Clone, Copy)]
pub struct OriginLookup<'a> {
    /// The cache in front of the policy's origin source.
    pub source: &'a crate::origin_source::OriginCache,
    /// The request's serialized origin.
    pub origin: &'a str,
}

/// The first step of an adapter serving policies with an origin source (feature
/// `origin-source`): `Some` when the request's policy (chosen by `info`'s path) has a source
/// and only the source could admit the request's origin, which is then one well-formed origin
/// that the listed origins, patterns and predicate all refuse. The adapter then finds the
/// source's answer ([`OriginCache::cached`](crate::origin_source::OriginCache::cached), or on a
/// miss [`OriginCache::resolve`](crate::origin_source::OriginCache::resolve)) and passes it in
/// [`RequestInfo::resolved`] to [`answer_in`]. `None`: decide now, nothing to resolve.
///
/// Whether the request is forwarded or answered does not depend on the origin's verdict (only
/// the headers and a preflight's status do), so an adapter may forward an actual request while
/// the lookup runs.
///
/// ```
/// use corsair::origin_source::{OriginCache, OriginSource, SourceError};
/// use corsair::server::{answer_in, origin_lookup, Reasons, RequestInfo, Resolved};
/// use corsair::{Policy, PolicySet};
/// use http::{HeaderMap, Method};
///
/// struct Tenants;
/// impl OriginSource for Tenants {
///     async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
///         Ok(origin == "https://tenant.example")
///     }
/// }
/// let cache = OriginCache::builder(Tenants).build();
/// let policies = PolicySet::single(
///     Policy::builder().allow_origins(["https://app.example"]).allow_origin_source(cache).build()?,
/// );
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "https://tenant.example".parse()?);
///
/// tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
///     let mut info = RequestInfo::at("/api");
///     if let Some(lookup) = origin_lookup(&policies, &headers, &info) {
///         let resolved = match lookup.source.cached(lookup.origin) {
///             Some(r) => r,
///             None => lookup.source.resolve(lookup.origin).await,
///         };
///         info = info.resolved(resolved);
///     }
///     let answer = answer_in(&policies, &Method::GET, &headers, &info, Reasons::WhenTraced);
///     let mut response = HeaderMap::new();
///     answer.into_parts().1.apply(&mut response);
///     assert_eq!(response["access-control-allow-origin"], "https://tenant.example");
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "origin-source")]
pub fn origin_lookup<'a, H: Headers>(
    policies: &'a PolicySet,
    headers: &'a H,
    info: &RequestInfo<'a>,
) -> Option<OriginLookup<'a>> {
    let p = &policies.for_path(info.path.unwrap_or("/")).inner;
    let source = p.origins.source.as_ref()?;
    if p.wildcard_origin {
        return None;
    }
    let mut lines = headers.values(Name::Origin);
    let (Some(origin), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let parts = info
        .resolved(Resolved::NotAsked)
        .lookup_parts(headers, p.origins.reads_host());
    match p.origins.lookup(H::bytes(origin), &parts, true) {
        OriginMatch::Unresolved => Some(OriginLookup {
            source,
            // A lookup that reached the source parsed the origin: visible ASCII.
            origin: visible_ascii(H::bytes(origin))?,
        }),
        _ => None,
    }
}

/// Whether a decision must carry its full rejection reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Explain {
    /// Check everything, so [`Decision::outcome`] is exact.
    Yes,
    /// Skip the checks that change only the reason, not the response.
    No,
}

impl Explain {
    /// `Yes` when `debug` events of target `corsair` are being recorded.
    fn if_logging() -> Self {
        if tracing::enabled!(target: "corsair", tracing::Level::DEBUG) {
            Explain::Yes
        } else {
            Explain::No
        }
    }
}

pub(crate) fn decide<H: Headers>(
    p: &Compiled,
    method: &H::Method,
    headers: &H,
    info: &RequestInfo<'_>,
    explain: Explain,
) -> Decision<H::Value> {
    let mut origins = headers.values(Name::Origin);
    let origin = origins.next();
    let options = H::is_options(method);
    // Looked up once, and only for `OPTIONS` (no other request is a preflight): its first line
    // decides whether this is a preflight, and the rest whether the requested method is one
    // token.
    let mut request_method = options.then(|| headers.values(Name::RequestMethod));
    let first_method = request_method.as_mut().and_then(Iterator::next);
    let preflight = origin.is_some() && first_method.is_some();

    // The cache rule (Fetch Standard, "CORS protocol and HTTP caches"): an answer that is the
    // same for every origin carries `Access-Control-Allow-Origin: *` on every response, whatever
    // `Origin` says (absent, malformed, repeated), and needs no `Vary: Origin`; an answer that
    // depends on the origin carries `Vary: Origin` on every response, CORS or not. Either way a
    // shared cache that stores one response can hand it to any browser.
    //
    // An `OPTIONS` request that is not a preflight is forwarded; its answer varies on everything
    // that makes a preflight (`Origin` included, even under `*`: a request without it is no
    // preflight), so that a cache that stores `OPTIONS` answers never serves it for a preflight,
    // which needs the allowed lists.
    //
    // A decision that reads `Host` (a request-aware predicate) varies on it wherever it varies
    // on `Origin`; the path needs no token, being part of every cache key.
    let reads_host = !p.wildcard_origin && p.origins.reads_host();
    let preflight_vary = Vary::Preflight {
        origin: !p.wildcard_origin,
        private_network: p.private_network,
        host: reads_host,
    };
    let forward_vary = if options {
        Vary::Preflight {
            origin: true,
            private_network: p.private_network,
            host: reads_host,
        }
    } else if p.wildcard_origin {
        Vary::None
    } else {
        Vary::Origin { host: reads_host }
    };
    if p.wildcard_origin && !preflight {
        return Decision {
            action: Action::Forward,
            headers: CorsHeaders(Inner::Actual {
                allow_origin: H::constant(Constant::Star),
                expose: p.expose.as_ref().map(H::from_policy),
                credentials: false,
                vary: forward_vary,
            }),
            outcome: if origin.is_some() {
                Outcome::Allowed
            } else {
                Outcome::NotCors
            },
        };
    }
    let Some(origin) = origin else {
        return Decision {
            action: Action::Forward,
            headers: CorsHeaders::vary_only(forward_vary),
            outcome: Outcome::NotCors,
        };
    };

    // Any origin without credentials: the answer is `*` whatever the origin is, so it is not
    // looked at (a `null` or malformed origin reads a `*` response in every browser anyway).
    let verdict = if p.wildcard_origin {
        Ok(())
    } else if origins.next().is_some() {
        Err(Rejection::MultipleOrigins)
    } else {
        let parts = info.lookup_parts(headers, reads_host);
        match p
            .origins
            .lookup(H::bytes(origin), &parts, explain == Explain::Yes)
        {
            OriginMatch::Allowed => Ok(()),
            OriginMatch::NotAllowed => Err(Rejection::OriginNotAllowed),
            OriginMatch::Malformed => Err(Rejection::OriginMalformed),
            OriginMatch::Unresolved => Err(Rejection::OriginUnresolved),
            OriginMatch::SourceFailed => Err(Rejection::OriginSourceFailed),
        }
    };
    if let Err(r) = verdict {
        return if preflight {
            Decision {
                action: Action::Respond(StatusCode::FORBIDDEN),
                headers: CorsHeaders::vary_only(preflight_vary),
                outcome: Outcome::Rejected(r),
            }
        } else {
            Decision {
                action: Action::Forward,
                headers: CorsHeaders::vary_only(forward_vary),
                outcome: Outcome::Rejected(r),
            }
        };
    }

    let allow_origin = if p.wildcard_origin {
        H::constant(Constant::Star)
    } else {
        origin.clone()
    };

    if !preflight {
        return Decision {
            action: Action::Forward,
            headers: CorsHeaders(Inner::Actual {
                allow_origin,
                expose: p.expose.as_ref().map(H::from_policy),
                credentials: p.credentials,
                vary: forward_vary,
            }),
            outcome: Outcome::Allowed,
        };
    }

    let mut rejection = None;
    let (allow_methods, method_rejection) =
        preflight_methods::<H>(p, first_method, request_method.and_then(|mut m| m.next()));
    rejection = rejection.or(method_rejection);
    let (allow_headers, header_rejection) = match (&p.headers, explain) {
        // The configured list is the answer whatever was asked: nothing to read.
        (ListSetting::List(_, listed), Explain::No) => (listed.as_ref().map(H::from_policy), None),
        _ => preflight_headers(p, headers),
    };
    rejection = rejection.or(header_rejection);

    let wants_private_network = (p.private_network || explain == Explain::Yes)
        && headers
            .values(Name::RequestPrivateNetwork)
            .next()
            .is_some_and(|v| H::bytes(v) == b"true");
    if wants_private_network && !p.private_network {
        rejection = rejection.or(Some(Rejection::PrivateNetworkNotAllowed));
    }

    Decision {
        action: Action::Respond(p.preflight_status),
        headers: CorsHeaders(Inner::Preflight {
            allow_origin,
            methods: allow_methods,
            headers: allow_headers,
            max_age: p.max_age.as_ref().map(H::from_policy),
            credentials: p.credentials,
            private_network: wants_private_network && p.private_network,
            vary: preflight_vary,
        }),
        outcome: rejection.map_or(Outcome::Allowed, Outcome::Rejected),
    }
}

/// The `Access-Control-Allow-Methods` value of a preflight, and whether the requested method
/// fails. Compared case-sensitively, as browsers do.
fn preflight_methods<H: Headers>(
    p: &Compiled,
    first: Option<&H::Value>,
    second: Option<&H::Value>,
) -> (Option<H::Value>, Option<Rejection>) {
    let requested = match (first, second) {
        (Some(v), None) if syntax::is_token(H::bytes(v)) => v,
        _ => {
            let listed = match &p.methods {
                ListSetting::List(_, v) => v.as_ref().map(H::from_policy),
                ListSetting::Any => None,
            };
            return (listed, Some(Rejection::MethodInvalid));
        }
    };
    let m = H::bytes(requested);
    match &p.methods {
        ListSetting::Any if p.credentials => (Some(requested.clone()), None),
        ListSetting::Any => (Some(H::constant(Constant::Star)), None),
        ListSetting::List(list, value) => {
            let ok = syntax::is_safelisted_method(m) || list.iter().any(|x| x.as_bytes() == m);
            (
                value.as_ref().map(H::from_policy),
                (!ok).then_some(Rejection::MethodNotAllowed),
            )
        }
    }
}

/// The `Access-Control-Allow-Headers` value of a preflight, and whether a requested header
/// fails. Names compare case-insensitively; the request's list is read in one bounded pass.
fn preflight_headers<H: Headers>(
    p: &Compiled,
    headers: &H,
) -> (Option<H::Value>, Option<Rejection>) {
    let lines = || headers.values(Name::RequestHeaders);
    let listed = match &p.headers {
        ListSetting::List(_, v) => v.as_ref().map(H::from_policy),
        ListSetting::Any => None,
    };
    let mut rejection = None;
    let mut count = 0usize;
    let read = syntax::for_each_list_item(
        lines().map(H::bytes),
        MAX_REQUEST_HEADERS_LEN,
        MAX_REQUEST_HEADERS_ITEMS,
        |item| {
            count += 1;
            match item {
                ListItem::Invalid(_) => rejection = Some(Rejection::HeadersInvalid),
                ListItem::Token(name) => {
                    if let ListSetting::List(list, _) = &p.headers {
                        if !list.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name)) {
                            rejection = Some(Rejection::HeaderNotAllowed);
                        }
                    }
                }
            }
            rejection.is_none()
        },
    );
    if let Err(ListError::TooLong | ListError::TooManyItems) = read {
        return (listed, Some(Rejection::HeadersTooLong));
    }
    if rejection.is_some() || count == 0 {
        return (listed, rejection);
    }
    match &p.headers {
        ListSetting::List(..) => (listed, None),
        // Any header: reflect the request's list, which was just checked to be well-formed.
        ListSetting::Any => {
            let mut it = lines();
            let reflected = match (it.next(), it.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => {
                    let joined: Vec<&[u8]> = lines().map(H::bytes).collect();
                    H::from_bytes(&joined.join(&b","[..]))
                }
            };
            (reflected, None)
        }
    }
}

/// Whether a request asks to switch protocols on its connection (HTTP/1.1 `Upgrade`, as a
/// WebSocket handshake does): an `Upgrade` header, and `upgrade` among `Connection`'s tokens.
///
/// ```
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", "keep-alive, Upgrade".parse()?);
/// headers.insert("upgrade", "websocket".parse()?);
/// assert!(corsair::server::is_upgrade(&headers));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_upgrade<H: Headers>(headers: &H) -> bool {
    headers.values(Name::Upgrade).next().is_some()
        && headers.values(Name::Connection).any(|line| {
            let mut found = false;
            let _ = syntax::for_each_list_item([H::bytes(line)], 1024, 64, |item| {
                found = matches!(item, ListItem::Token(t) if t.eq_ignore_ascii_case(b"upgrade"));
                !found
            });
            found
        })
}

/// The entry point for upgrade requests ([`is_upgrade`]), WebSocket handshakes above all:
/// [`answer`] with the origin rule applied to the connection itself.
///
/// Browsers send `Origin` on a WebSocket handshake but make no CORS check of the answer: any
/// page may open a WebSocket to any server, with the user's cookies, and read what comes back
/// (cross-site WebSocket hijacking). So the server must refuse the origins its policy does not
/// allow, with the same rules as for `fetch()`: an origin the policy refuses (not allowed,
/// malformed, `null` unless the policy names it, or several `Origin` headers) is answered
/// `403` at once, and the refusal is traced like any other (`debug`, target `corsair`, with a
/// stable `reason`). A request without `Origin` comes from no browser page and is forwarded,
/// as is every request from an allowed origin. An `*` policy admits every origin here too:
/// an endpoint that authenticates its WebSockets by cookie needs a list of origins.
///
/// The reason is always worked out ([`Answer::outcome`] is `Some`): a handshake opens a
/// connection, so this is not on the per-request path.
///
/// ```
/// use corsair::server::{answer_upgrade, Action, Outcome, Rejection};
/// use corsair::{Policy, PolicySet};
/// use http::{HeaderMap, Method, StatusCode};
///
/// let policies = PolicySet::single(Policy::builder().allow_origins(["https://app.example"]).build()?);
/// let handshake = |origin: &str| {
///     let mut headers = HeaderMap::new();
///     headers.insert("connection", "Upgrade".parse().unwrap());
///     headers.insert("upgrade", "websocket".parse().unwrap());
///     headers.insert("origin", origin.parse().unwrap());
///     answer_upgrade(&policies, &Method::GET, "/ws", &headers)
/// };
/// assert_eq!(handshake("https://app.example").action(), Action::Forward);
/// let refused = handshake("https://evil.example");
/// assert_eq!(refused.action(), Action::Respond(StatusCode::FORBIDDEN));
/// assert_eq!(refused.outcome(), Some(Outcome::Rejected(Rejection::OriginNotAllowed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn answer_upgrade<H: Headers>(
    policies: &PolicySet,
    method: &H::Method,
    path: &str,
    headers: &H,
) -> Answer<H::Value> {
    upgrade_in(policies, method, headers, &RequestInfo::at(path))
}

/// [`answer_upgrade`], with the request's authority (for a request-aware predicate).
fn upgrade_in<H: Headers>(
    policies: &PolicySet,
    method: &H::Method,
    headers: &H,
    info: &RequestInfo<'_>,
) -> Answer<H::Value> {
    let policy = policies.for_path(info.path.unwrap_or("/"));
    let mut decision = decide(&policy.inner, method, headers, info, Explain::Yes);
    if let Some(reason) = decision.rejection() {
        if decision.action == Action::Forward {
            // Not a preflight (those are answered already): the connection itself is refused.
            decision.action = Action::Respond(StatusCode::FORBIDDEN);
        }
        tracing::debug!(
            target: "corsair",
            reason = reason.as_str(),
            origin = ?headers.values(Name::Origin).next(),
            upgrade = ?headers.values(Name::Upgrade).next(),
            "upgrade request rejected"
        );
    }
    Answer {
        decision,
        exact: true,
    }
}

/// How an adapter treats upgrade requests ([`is_upgrade`]): the option of
/// `refuse_upgrades_from_disallowed_origins` on the tower layer and the actix middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upgrades {
    /// Like any other request: CORS headers added, never refused.
    #[default]
    AsRequests,
    /// Refused (`403`) when the policy does not allow their origin: [`answer_upgrade`].
    RefuseDisallowedOrigins,
}

/// What an adapter does next with a request: the one question every adapter asks the engine
/// ([`ask`]).
#[derive(Debug)]
#[must_use]
pub enum Step<'a, V> {
    /// The engine's answer: forward the request or respond, then apply the headers.
    Answer(Answer<V>),
    /// Only the policy's origin source can decide, and its cache does not know the origin
    /// (feature `origin-source`): resolve it
    /// ([`OriginCache::resolve`](crate::origin_source::OriginCache::resolve)), then ask
    /// [`answer_resolved`] with the answer in [`RequestInfo::resolved`]. Meanwhile forward the
    /// request or not as `action` says: the verdict on the origin does not change it.
    #[cfg(feature = "origin-source")]
    Resolve {
        /// The source's cache and the origin to look up.
        lookup: OriginLookup<'a>,
        /// Whether the request is forwarded or answered, whatever the source says.
        action: Action,
    },
    /// An upgrade request under [`Upgrades::RefuseDisallowedOrigins`] whose origin only the
    /// policy's source can decide, not cached (feature `origin-source`): hold it, forwarding
    /// nothing, until the origin is resolved; then [`answer_resolved`] says whether it goes to
    /// the application or is refused (`403`). Unlike an ordinary request's, its fate depends
    /// on the verdict.
    #[cfg(feature = "origin-source")]
    Hold {
        /// The source's cache and the origin to look up.
        lookup: OriginLookup<'a>,
    },
    /// Without origin sources there is nothing to resolve: never made.
    #[doc(hidden)]
    #[cfg(not(feature = "origin-source"))]
    Never(std::convert::Infallible, std::marker::PhantomData<&'a ()>),
}

/// The entry point of a middleware: the rules of which engine function answers which request,
/// in one place for every adapter. An origin only the policy's source can decide is looked up
/// in its cache, and on a miss the adapter is told to resolve it ([`Step::Resolve`], or
/// [`Step::Hold`] for an upgrade request it must refuse or pass on according to the verdict);
/// once it is resolved, [`answer_resolved`] decides. An upgrade request under
/// [`Upgrades::RefuseDisallowedOrigins`] is answered by [`answer_upgrade`]'s rule, everything
/// else by [`answer_in`]'s. A cached answer costs no allocation.
///
/// ```
/// use corsair::server::{ask, Action, Reasons, RequestInfo, Step, Upgrades};
/// use corsair::{Policy, PolicySet};
/// use http::{HeaderMap, Method, StatusCode};
///
/// let policies = PolicySet::single(Policy::builder().allow_origins(["https://app.example"]).build()?);
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", "Upgrade".parse()?);
/// headers.insert("upgrade", "websocket".parse()?);
/// headers.insert("origin", "https://evil.example".parse()?);
/// let info = RequestInfo::at("/ws");
/// let step = ask(&policies, &Method::GET, &headers, info, Upgrades::RefuseDisallowedOrigins, Reasons::WhenTraced);
/// let Step::Answer(answer) = step else { unreachable!("no origin source") };
/// assert_eq!(answer.action(), Action::Respond(StatusCode::FORBIDDEN));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ask<'a, H: Headers>(
    policies: &'a PolicySet,
    method: &H::Method,
    headers: &'a H,
    info: RequestInfo<'a>,
    upgrades: Upgrades,
    reasons: Reasons,
) -> Step<'a, H::Value> {
    #[allow(unused_mut)] // without origin sources nothing is resolved
    let mut info = info;
    #[cfg(feature = "origin-source")]
    if let Some(lookup) = origin_lookup(policies, headers, &info) {
        match lookup.source.cached(lookup.origin) {
            Some(resolved) => info = info.resolved(resolved),
            None if upgrades.refuse(headers) => return Step::Hold { lookup },
            None => {
                let policy = policies.for_path(info.path.unwrap_or("/"));
                let action = decide(&policy.inner, method, headers, &info, Explain::No).action;
                return Step::Resolve { lookup, action };
            }
        }
    }
    Step::Answer(answer_resolved(
        policies, method, headers, &info, upgrades, reasons,
    ))
}

/// The last step of an adapter ([`ask`]): the engine's answer once the origin source's verdict,
/// if one was needed, is in `info` ([`RequestInfo::resolved`]). An upgrade request under
/// [`Upgrades::RefuseDisallowedOrigins`] is answered as [`answer_upgrade`] does (forwarded, or
/// refused with `403` and the reason traced), any other request as [`answer_in`] does.
///
/// ```
/// use corsair::server::{answer_resolved, Action, Reasons, RequestInfo, Resolved, Upgrades};
/// use corsair::{Policy, PolicySet};
/// use http::{HeaderMap, Method, StatusCode};
///
/// let policies = PolicySet::single(Policy::builder().allow_origins(["https://app.example"]).build()?);
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", "Upgrade".parse()?);
/// headers.insert("upgrade", "websocket".parse()?);
/// headers.insert("origin", "https://tenant.example".parse()?);
/// let refuse = Upgrades::RefuseDisallowedOrigins;
/// let failed = RequestInfo::at("/ws").resolved(Resolved::Failed);
/// let answer = answer_resolved(&policies, &Method::GET, &headers, &failed, refuse, Reasons::WhenTraced);
/// assert_eq!(answer.action(), Action::Respond(StatusCode::FORBIDDEN));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn answer_resolved<H: Headers>(
    policies: &PolicySet,
    method: &H::Method,
    headers: &H,
    info: &RequestInfo<'_>,
    upgrades: Upgrades,
    reasons: Reasons,
) -> Answer<H::Value> {
    if upgrades.refuse(headers) {
        upgrade_in(policies, method, headers, info)
    } else {
        answer_in(policies, method, headers, info, reasons)
    }
}

/// A request the adapter could not answer at once ([`Step::Resolve`] or [`Step::Hold`]): its
/// origin's lookup, and what deciding it once the lookup ends needs: the request's parts,
/// copied, and the policies it was looked up in (the request's snapshot, not the handle's
/// policies by then). Each adapter keeps one in its future; [`Pending::poll_lookup`] and
/// [`Pending::answer`] are the way every adapter finishes such a request, so the rule lives
/// here once.
#[cfg(feature = "origin-source")]
pub(crate) struct Pending<H: Headers> {
    lookup: std::pin::Pin<Box<dyn std::future::Future<Output = Resolved> + Send>>,
    resolved: Option<Resolved>,
    policies: std::sync::Arc<PolicySet>,
    method: H::Method,
    path: String,
    authority: Option<String>,
    headers: H,
    upgrades: Upgrades,
}

#[cfg(feature = "origin-source")]
impl<H: Headers + Clone> Pending<H>
where
    H::Method: Clone,
{
    /// Starts `lookup` for a request with these parts (`info` as the adapter gave it to
    /// [`ask`]).
    pub(crate) fn new(
        lookup: OriginLookup<'_>,
        policies: &std::sync::Arc<PolicySet>,
        method: &H::Method,
        headers: &H,
        info: &RequestInfo<'_>,
        upgrades: Upgrades,
    ) -> Box<Self> {
        let cache = lookup.source.clone();
        let origin = lookup.origin.to_owned();
        Box::new(Pending {
            lookup: Box::pin(async move { cache.resolve(&origin).await }),
            resolved: None,
            policies: std::sync::Arc::clone(policies),
            method: method.clone(),
            path: info.path.unwrap_or("/").to_owned(),
            authority: info.authority.map(str::to_owned),
            headers: headers.clone(),
            upgrades,
        })
    }

    /// Drives the lookup: ready once the source (or its cache) has answered, which stays so.
    pub(crate) fn poll_lookup(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.resolved.is_none() {
            if let std::task::Poll::Ready(r) = self.lookup.as_mut().poll(cx) {
                self.resolved = Some(r);
            }
        }
        if self.resolved.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }

    /// The engine's answer ([`answer_resolved`]) once [`poll_lookup`](Self::poll_lookup) is
    /// ready; before, the origin counts as not looked up, which the engine refuses.
    pub(crate) fn answer(&self) -> Answer<H::Value> {
        let info = RequestInfo::at(&self.path)
            .authority(self.authority.as_deref())
            .resolved(self.resolved.unwrap_or_default());
        answer_resolved(
            &self.policies,
            &self.method,
            &self.headers,
            &info,
            self.upgrades,
            Reasons::WhenTraced,
        )
    }
}

impl Upgrades {
    /// Whether `headers` are an upgrade request that the origin rule of [`answer_upgrade`]
    /// applies to.
    fn refuse<H: Headers>(self, headers: &H) -> bool {
        self == Upgrades::RefuseDisallowedOrigins && is_upgrade(headers)
    }
}
