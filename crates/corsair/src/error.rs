//! Configuration errors: every problem [`CorsBuilder::build`](crate::CorsBuilder::build) finds,
//! each with a stable code, the offending value and how to fix it.

use std::fmt;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, )*) => {
        /// The stable code of a configuration problem.
        ///
        /// Codes never change meaning; tools may match on [`ErrorCode::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as a stable kebab-case string, e.g. `credentials-with-any-origin`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }
        }
    };
}

codes! {
    /// Credentials together with any origin (`*`): origin reflection with credentials lets any
    /// site read authenticated responses.
    CredentialsWithAnyOrigin = "credentials-with-any-origin",
    /// Credentials together with `*` in the exposed headers, which browsers then read literally.
    CredentialsWithAnyExposedHeader = "credentials-with-any-exposed-header",
    /// Credentials with a plain-`http` origin that is not loopback: anyone on the network path
    /// can impersonate it.
    InsecureOriginWithCredentials = "insecure-origin-with-credentials",
    /// `null` as an allowed origin: sandboxed iframes and `file:` pages of any site send it.
    NullOrigin = "null-origin",
    /// `*` together with other origins in one list.
    AnyOriginInList = "any-origin-in-list",
    /// No origin is allowed at all: the policy would never allow anything.
    NoOrigins = "no-origins",
    /// The origin cannot be parsed.
    OriginInvalid = "origin-invalid",
    /// The origin has a path.
    OriginHasPath = "origin-has-path",
    /// The origin ends with `/`.
    OriginTrailingSlash = "origin-trailing-slash",
    /// The origin has a query.
    OriginHasQuery = "origin-has-query",
    /// The origin has a fragment.
    OriginHasFragment = "origin-has-fragment",
    /// The origin has a user name or password.
    OriginHasUserinfo = "origin-has-userinfo",
    /// The origin has uppercase letters; browsers send origins in lowercase.
    OriginUppercase = "origin-uppercase",
    /// The origin spells out its scheme's default port, which browsers omit.
    OriginDefaultPort = "origin-default-port",
    /// The origin's scheme never appears in an `Origin` header (`file:`, `data:`, …).
    OriginUnsupportedScheme = "origin-unsupported-scheme",
    /// A `*` other than a leading `*.` label or a `:*` port.
    OriginBadWildcard = "origin-bad-wildcard",
    /// A subdomain pattern over a public suffix, such as `https://*.com` or `https://*.github.io`.
    PatternOverPublicSuffix = "pattern-over-public-suffix",
    /// A subdomain pattern over an IP address.
    PatternOverIpAddress = "pattern-over-ip-address",
    /// A method name that is not an HTTP token.
    MethodInvalid = "method-invalid",
    /// CONNECT, TRACE or TRACK, which browsers never send.
    MethodForbidden = "method-forbidden",
    /// A request-header name that is not an HTTP token.
    HeaderInvalid = "header-invalid",
    /// A forbidden request-header name, which scripts cannot set.
    HeaderForbidden = "header-forbidden",
    /// An exposed header name that is not an HTTP token.
    ExposedHeaderInvalid = "exposed-header-invalid",
    /// `Set-Cookie` or `Set-Cookie2` in the exposed headers: scripts can never read them.
    ExposedHeaderForbidden = "exposed-header-forbidden",
    /// A max-age beyond 86400 seconds (24 hours), longer than any browser keeps a preflight.
    MaxAgeTooLarge = "max-age-too-large",
    /// A preflight status outside 200–299, which every browser treats as a failed preflight.
    PreflightStatusInvalid = "preflight-status-invalid",
    /// Policy files: a key that is not a setting.
    UnknownKey = "unknown-key",
    /// Policy files: unreadable, not TOML, or a value of the wrong type.
    InvalidFile = "invalid-file",
    /// Policy files: a route whose `path` is missing or does not start with `/`.
    RoutePathInvalid = "route-path-invalid",
    /// Policy files: a route that an earlier route covers, so it is never used.
    RouteShadowed = "route-shadowed",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configuration problem: what is wrong, with which value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    code: ErrorCode,
    setting: &'static str,
    value: Option<String>,
    message: String,
    fix: String,
}

impl ConfigError {
    pub(crate) fn new(
        code: ErrorCode,
        setting: &'static str,
        value: Option<&str>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            code,
            setting,
            value: value.map(str::to_owned),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The stable code of this problem.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The builder setting (and policy-file key) the problem is in, e.g. `allow_origins`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// The offending value as it was given, when there is one.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What is wrong, in one sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it, in one sentence.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: ", self.setting, self.code)?;
        if let Some(v) = &self.value {
            write!(f, "{v:?}: ")?;
        }
        write!(f, "{} Fix: {}", self.message, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub(crate) Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in the order of the settings they concern.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// The codes of the problems, in order.
    pub fn codes(&self) -> Vec<ErrorCode> {
        self.0.iter().map(ConfigError::code).collect()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid CORS policy: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
