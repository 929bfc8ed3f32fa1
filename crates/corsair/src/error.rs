//! Configuration errors: every problem [`PolicyBuilder::build`](crate::PolicyBuilder::build) finds,
//! each with a stable code, the offending value and how to fix it; and configuration notes
//! ([`PolicyBuilder::notes`](crate::PolicyBuilder::notes)): what was accepted but deserves a look.

use std::fmt;

macro_rules! codes {
    (
        $(#[$enum_doc:meta])* $name:ident, $example:literal;
        $( $(#[$doc:meta])* $variant:ident = $code:literal, )*
    ) => {
        $(#[$enum_doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            #[doc = concat!("The code as a stable kebab-case string, e.g. `", $example, "`.")]
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $code, )* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes! {
    /// The stable code of a configuration problem.
    ///
    /// Codes never change meaning; tools may match on [`ErrorCode::as_str`].
    ErrorCode, "credentials-with-any-origin";

    /// Credentials together with any origin (`*`): origin reflection with credentials lets any
    /// site read authenticated responses.
    CredentialsWithAnyOrigin = "credentials-with-any-origin",
    /// Credentials together with `*` in the exposed headers, which browsers then read literally.
    CredentialsWithAnyExposedHeader = "credentials-with-any-exposed-header",
    /// Credentials with a plain-`http` origin that is not loopback: anyone on the network path
    /// can impersonate it.
    InsecureOriginWithCredentials = "insecure-origin-with-credentials",
    /// An origin predicate that admits origins under the reserved `.invalid` top-level domain,
    /// which no honest policy allows, together with credentials or Private Network Access.
    OriginPredicateTooBroad = "origin-predicate-too-broad",
    /// Private Network Access together with any origin (`*`): every public website could reach
    /// this server on the visitor's network.
    PrivateNetworkWithAnyOrigin = "private-network-with-any-origin",
    /// Private Network Access together with a plain-`http` origin that is not loopback (or a
    /// scheme not known to be secure): anyone on the network path can impersonate it.
    PrivateNetworkWithInsecureOrigin = "private-network-with-insecure-origin",
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
    /// A port of 0 or above 65535, which no page can be served from.
    OriginPortInvalid = "origin-port-invalid",
    /// A host longer than 253 bytes or with a label longer than 63 bytes (in its ASCII form),
    /// which no name server resolves.
    OriginHostTooLong = "origin-host-too-long",
    /// A host with an empty label (`example..com`, `.example.com`), which names no site.
    OriginEmptyLabel = "origin-empty-label",
    /// A scheme longer than 32 bytes; the longest a browser sends in `Origin` has 20.
    OriginSchemeTooLong = "origin-scheme-too-long",
    /// The origin's scheme never appears in an `Origin` header (`file:`, `data:`, …).
    OriginUnsupportedScheme = "origin-unsupported-scheme",
    /// A `*` other than a leading `*.` label or a `:*` port.
    OriginBadWildcard = "origin-bad-wildcard",
    /// A subdomain pattern over a public suffix, such as `https://*.com` or `https://*.github.io`.
    /// Suffixes of the Public Suffix List's private section (`github.io`, `vercel.app`) can be
    /// allowed with `dangerously_allow_public_suffix_subdomains`; registry suffixes (`com`,
    /// `co.uk`) and names the list does not know (`test`) never.
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
    /// A CORS protocol header (`Access-Control-*`) as an allowed request header: browsers send
    /// the ones they need themselves, and a script that sends another one is mistaken.
    HeaderCorsProtocol = "header-cors-protocol",
    /// An exposed header name that is not an HTTP token.
    ExposedHeaderInvalid = "exposed-header-invalid",
    /// `Set-Cookie` or `Set-Cookie2` in the exposed headers: scripts can never read them.
    ExposedHeaderForbidden = "exposed-header-forbidden",
    /// A CORS protocol header (`Access-Control-*`) in the exposed headers: they are the
    /// protocol's own, for the browser, not the script.
    ExposedHeaderCorsProtocol = "exposed-header-cors-protocol",
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
    /// Policy files: a route's `upstream` that is not an `http://` or `https://` base URL
    /// (`corsair proxy` forwards that route's requests there).
    UpstreamInvalid = "upstream-invalid",
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

codes! {
    /// The stable code of a configuration note: something accepted that a reviewer should see.
    ///
    /// Codes never change meaning; tools may match on [`NoteCode::as_str`].
    NoteCode, "origin-rewritten";
    /// An allowed origin was written in a form browsers never send (`http://127.1`, a leading
    /// zero in the port, an IPv4-mapped IPv6 address, an internationalized name, a trailing
    /// dot) and is matched in the form they do send ([`ConfigNote::rewritten`]).
    OriginRewritten = "origin-rewritten",
    /// A `dangerously_` option turned what would be an error into a grant
    /// ([`ConfigNote::refused`] says which error, [`ConfigNote::option`] which option).
    DangerouslyAllowed = "dangerously-allowed",
    /// A method listed in another case than the one browsers send: `get` (browsers upper-case
    /// DELETE, GET, HEAD, OPTIONS, POST and PUT, so it is matched as `GET`) or `patch` (sent
    /// exactly as the script writes it, so a script writing `PATCH` is refused).
    MethodCase = "method-case",
    /// A `dangerously_` option is on but waives nothing in this policy
    /// ([`ConfigNote::setting`] names it): it would grant silently what a later edit adds.
    DangerouslyUnused = "dangerously-unused",
}

/// Something a configuration does that it is allowed to do but that a reviewer should see: an
/// origin matched in another spelling than the one written, or a grant made only because a
/// `dangerously_` option asked for it. Listed by
/// [`PolicyBuilder::notes`](crate::PolicyBuilder::notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNote {
    code: NoteCode,
    setting: &'static str,
    value: Option<String>,
    rewritten: Option<String>,
    refused: Option<(ErrorCode, &'static str)>,
    message: String,
}

impl ConfigNote {
    pub(crate) fn origin_rewritten(setting: &'static str, written: &str, matched: String) -> Self {
        ConfigNote {
            code: NoteCode::OriginRewritten,
            setting,
            value: Some(written.to_owned()),
            message: format!(
                "matched as {matched}, the form browsers send in `Origin`; write it that way so that the configuration and the wire agree."
            ),
            rewritten: Some(matched),
            refused: None,
        }
    }

    pub(crate) fn method_case(setting: &'static str, written: &str, message: String) -> Self {
        ConfigNote {
            code: NoteCode::MethodCase,
            setting,
            value: Some(written.to_owned()),
            rewritten: None,
            refused: None,
            message,
        }
    }

    pub(crate) fn dangerously_unused(option: &'static str) -> Self {
        ConfigNote {
            code: NoteCode::DangerouslyUnused,
            setting: option,
            value: None,
            rewritten: None,
            refused: None,
            message: "is on but waives nothing in this policy; turn it off, so that a later change cannot be granted by it unnoticed.".to_owned(),
        }
    }

    pub(crate) fn dangerously_allowed(error: ConfigError, option: &'static str) -> Self {
        ConfigNote {
            code: NoteCode::DangerouslyAllowed,
            setting: error.setting,
            message: format!("allowed by {option} although {}", error.message),
            value: error.value,
            rewritten: None,
            refused: Some((error.code, option)),
        }
    }

    /// The stable code of this note.
    pub fn code(&self) -> NoteCode {
        self.code
    }

    /// The builder setting (and policy-file key) the note is about, e.g. `allow_origins`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// The value as it was written, when there is one.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// For [`NoteCode::OriginRewritten`]: the origin (or pattern) as it is matched, which is
    /// what browsers send.
    pub fn rewritten(&self) -> Option<&str> {
        self.rewritten.as_deref()
    }

    /// For [`NoteCode::DangerouslyAllowed`]: the error the option waived.
    pub fn refused(&self) -> Option<ErrorCode> {
        self.refused.map(|(code, _)| code)
    }

    /// For [`NoteCode::DangerouslyAllowed`]: the builder method (and policy-file key) that
    /// waived it, e.g. `dangerously_allow_null_origin`.
    pub fn option(&self) -> Option<&'static str> {
        self.refused.map(|(_, option)| option)
    }

    /// What the note says, in one sentence.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: ", self.setting, self.code)?;
        if let Some(v) = &self.value {
            write!(f, "{v:?}: ")?;
        }
        if let Some((code, _)) = self.refused {
            write!(f, "[{code}] ")?;
        }
        f.write_str(&self.message)
    }
}
