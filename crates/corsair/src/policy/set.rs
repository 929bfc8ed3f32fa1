//! Policies by path: a top-level policy and routes, each a path prefix with its own policy.
//! The proxy, the tower layer and policy files all choose a request's policy here.

use std::fmt;

use crate::error::{ConfigError, ErrorCode};
use crate::Policy;

/// A route's path prefix, matched on whole path segments: `/api` (or `/api/`) covers `/api`
/// and everything below `/api/`, never `/apiary` or `/api-admin`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Prefix(String);

impl Prefix {
    /// `/api/` and `/api` are one prefix; `/` covers every path.
    pub(crate) fn new(path: &str) -> Self {
        let trimmed = path.trim_end_matches('/');
        Prefix(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn covers(&self, path: &str) -> bool {
        let p = self.0.as_str();
        p == "/"
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Policies by path: a top-level policy, and routes (path prefixes with policies of their own)
/// tried in order. Built in code with [`single`](Self::single) and
/// [`route`](Self::route), or read from a policy file (`corsair::config`, feature `serde`).
///
/// Prefixes are compared case-sensitively with the request's path as servers read it (see
/// [`for_path`](Self::for_path)).
///
/// ```
/// use corsair::{Policy, PolicySet};
///
/// let set = PolicySet::single(
///     Policy::builder()
///         .allow_origins(["https://app.example.com"])
///         .allow_credentials(true)
///         .build()?,
/// )
/// .route("/public", Policy::builder().allow_origins(["*"]).build()?)?;
///
/// assert!(!set.for_path("/public").allows_credentials());
/// assert!(!set.for_path("/public/logo.png").allows_credentials());
/// assert!(set.for_path("/publicity").allows_credentials()); // not the route: the top level
/// assert!(set.for_path("/api").allows_credentials());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct PolicySet {
    default: Policy,
    routes: Vec<(Prefix, Policy)>,
}

impl PolicySet {
    /// One policy for every path.
    pub fn single(cors: Policy) -> Self {
        PolicySet {
            default: cors,
            routes: Vec::new(),
        }
    }

    /// Adds a route: requests whose path `prefix` covers (on whole segments) get `cors`, unless
    /// an earlier route covers them first.
    ///
    /// # Errors
    /// `route-path-invalid` when `prefix` does not start with `/` or holds a wildcard, query,
    /// fragment or space; `route-shadowed` when an earlier route covers every path this one
    /// does, so it would never be used.
    pub fn route(mut self, prefix: &str, cors: Policy) -> Result<Self, ConfigError> {
        if let Some(message) = path_problem(prefix) {
            return Err(ConfigError::new(
                ErrorCode::RoutePathInvalid,
                "path",
                Some(prefix),
                message,
                "write a path prefix such as \"/public\".",
            ));
        }
        let prefix = Prefix::new(prefix);
        if let Some(message) = self.shadowing(&prefix) {
            return Err(ConfigError::new(
                ErrorCode::RouteShadowed,
                "path",
                Some(prefix.as_str()),
                message,
                "put the more specific route first, or remove one of them.",
            ));
        }
        self.routes.push((prefix, cors));
        Ok(self)
    }

    #[cfg(feature = "serde")]
    pub(crate) fn with_routes(default: Policy, routes: Vec<(Prefix, Policy)>) -> Self {
        PolicySet { default, routes }
    }

    /// The policy for a request path: the first route whose prefix covers it (on whole
    /// segments), else the top-level policy.
    ///
    /// The path is read as servers behind the policy read it: percent-escapes decoded,
    /// repeated slashes merged, `;parameters` dropped from each segment, dot segments
    /// resolved. A browser sends `/%61dmin/x`, `//admin/x` or `/admin;v=1/x` as written, and
    /// many servers route all three to `/admin/x`, so they all get the `/admin` route's policy.
    /// (Case is kept: `/ADMIN` is another path.) Only such unusual paths cost an allocation.
    pub fn for_path(&self, path: &str) -> &Policy {
        self.route_index(path)
            .map_or(&self.default, |i| &self.routes[i].1)
    }

    /// The position (from 0, in the order of [`route_prefixes`](Self::route_prefixes)) of the
    /// route whose policy [`for_path`](Self::for_path) picks for `path`, or `None` for the
    /// top level: for what else hangs on a route, such as `corsair proxy`'s per-route upstream.
    ///
    /// ```
    /// use corsair::{Policy, PolicySet};
    ///
    /// let any = || Policy::builder().allow_origins(["*"]).build();
    /// let set = PolicySet::single(any()?).route("/a", any()?)?.route("/b", any()?)?;
    /// assert_eq!(set.route_index("/b/x"), Some(1));
    /// assert_eq!(set.route_index("/%61"), Some(0));
    /// assert_eq!(set.route_index("/c"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn route_index(&self, path: &str) -> Option<usize> {
        if self.routes.is_empty() {
            return None;
        }
        let normalized = normalize_path(path);
        self.routes
            .iter()
            .position(|(prefix, _)| prefix.covers(&normalized))
    }

    /// The route prefixes, in order, as matched (without a trailing slash).
    pub fn route_prefixes(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| p.as_str())
    }

    /// Why a route with `prefix` added after the existing ones would never be used, if so.
    pub(crate) fn shadowing(&self, prefix: &Prefix) -> Option<String> {
        shadowed_by(self.routes.iter().map(|(p, _)| p), prefix)
    }
}

/// A request path as servers behind the policy route it: `%XX` escapes decoded (once),
/// `;parameters` dropped from each segment, empty, `.` and `..` segments resolved. Borrowed
/// when there is nothing to do, which is the case for every path a browser sends for an
/// ordinary URL.
pub(crate) fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    let plain = !path.contains(['%', ';'])
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..");
    if plain {
        return std::borrow::Cow::Borrowed(path);
    }
    // Decode escapes first: `%2F` is a slash, `%2e%2e` a dot segment, to the servers that decode.
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || decoded.ends_with('/') {
        out.push('/');
    }
    std::borrow::Cow::Owned(out)
}

/// Why a route with `prefix` after `earlier` routes would never be used, if so.
pub(crate) fn shadowed_by<'a>(
    earlier: impl IntoIterator<Item = &'a Prefix>,
    prefix: &Prefix,
) -> Option<String> {
    earlier
        .into_iter()
        .enumerate()
        .find(|(_, p)| p.covers(prefix.as_str()))
        .map(|(i, p)| {
            format!(
                "route {} ({}) comes first and covers every path this one does, so this route is never used.",
                i + 1,
                p.as_str()
            )
        })
}

/// What is wrong with a route's path, if anything.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("a route's path starts with `/`.")
    } else if path.contains(['*', '?', '#']) || path.contains(char::is_whitespace) {
        Some("a route's path is a plain prefix: no wildcards, query, fragment or spaces; `/api` already covers `/api/…`.")
    } else if path.trim_end_matches('/').is_empty() {
        Some("a route with the path `/` covers every path, so the top-level policy would never be used: put its settings at the top level instead.")
    } else if normalize_path(path).trim_end_matches('/') != path.trim_end_matches('/') {
        Some("request paths are matched as servers read them (escapes decoded, `//` merged, `;…` dropped, `.` and `..` resolved), so this prefix never matches: write it in that form, e.g. /admin rather than /%61dmin or /a/../admin.")
    } else {
        None
    }
}

impl From<Policy> for PolicySet {
    fn from(cors: Policy) -> Self {
        PolicySet::single(cors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(o: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("origin", http::HeaderValue::from_str(o).unwrap());
        h
    }

    fn cors(origin: &str) -> Policy {
        Policy::builder().allow_origins([origin]).build().unwrap()
    }

    #[test]
    fn routes_in_code_follow_the_file_rules() {
        let set = PolicySet::single(cors("https://a.example"));
        assert_eq!(
            set.clone().route("api", cors("*")).unwrap_err().code(),
            ErrorCode::RoutePathInvalid
        );
        for bad in [
            "/api/*",
            "/",
            "//",
            "/%61pi",
            "/a//b",
            "/a/../api",
            "/api;v=1",
        ] {
            assert_eq!(
                set.clone().route(bad, cors("*")).unwrap_err().code(),
                ErrorCode::RoutePathInvalid,
                "{bad}"
            );
        }
        let set = set.route("/api/", cors("*")).unwrap();
        let e = set.clone().route("/api/v1", cors("*")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::RouteShadowed);
        assert_eq!(
            e.message(),
            "route 1 (/api) comes first and covers every path this one does, so this route is never used."
        );
        let set = set.route("/apiary", cors("https://b.example")).unwrap();
        assert_eq!(
            set.route_prefixes().collect::<Vec<_>>(),
            ["/api", "/apiary"]
        );
    }

    /// The independent review's finding: a browser sends `/%61dmin`, `//admin` and `/admin;x`
    /// as written, and servers route them to `/admin`; so does the route choice.
    #[test]
    fn spellings_servers_route_to_a_path_get_its_route() {
        let admin = Policy::builder()
            .allow_origins(["https://admin.example"])
            .build()
            .unwrap();
        let set = PolicySet::single(cors("https://partner.example"))
            .route("/admin", admin)
            .unwrap();
        let is_admin = |p: &str| {
            set.for_path(p)
                .decide(&http::Method::GET, &origin("https://admin.example"))
                .headers()
                .allow_origin()
                .is_some()
        };
        for p in [
            "/admin",
            "/admin/users",
            "/%61dmin/users",
            "/%61%64%6D%69%6E",
            "//admin/users",
            "/admin;jsessionid=1/users",
            "/x/../admin/users",
            "/x/%2e%2e/admin",
            "/./admin",
            "%2Fadmin",
        ] {
            assert!(is_admin(p), "{p} should get the /admin route");
        }
        for p in [
            "/ADMIN",
            "/administrator",
            "/api/admin",
            "/",
            "/%",
            "/%zz/admin",
        ] {
            assert!(!is_admin(p), "{p} should not get the /admin route");
        }
        assert_eq!(normalize_path("/api/users"), "/api/users");
        assert!(matches!(
            normalize_path("/api/users"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(normalize_path("/a//b/"), "/a/b/");
        assert_eq!(normalize_path("/.."), "/");
    }
}
