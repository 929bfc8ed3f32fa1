//! Why a browser blocks a request: one kind per Chromium `CorsError`, and a `Display` that is
//! exactly the console message the installed Chromium prints.

use std::fmt;

/// The kind of CORS failure, named after Chromium's `network::mojom::CorsError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorsErrorKind {
    /// The response has no `Access-Control-Allow-Origin`.
    MissingAllowOriginHeader,
    /// `Access-Control-Allow-Origin` has several values (or a space or comma).
    MultipleAllowOriginValues,
    /// `Access-Control-Allow-Origin` is not a valid origin.
    InvalidAllowOriginValue,
    /// `Access-Control-Allow-Origin` names another origin.
    AllowOriginMismatch,
    /// `Access-Control-Allow-Origin: *` with credentials included.
    WildcardOriginNotAllowed,
    /// Credentials included but `Access-Control-Allow-Credentials` is not exactly `true`.
    InvalidAllowCredentials,
    /// The preflight's status is not 200–299.
    PreflightInvalidStatus,
    /// The preflight was answered with a redirect.
    PreflightDisallowedRedirect,
    /// [`MissingAllowOriginHeader`](Self::MissingAllowOriginHeader), on the preflight.
    PreflightMissingAllowOriginHeader,
    /// [`MultipleAllowOriginValues`](Self::MultipleAllowOriginValues), on the preflight.
    PreflightMultipleAllowOriginValues,
    /// [`InvalidAllowOriginValue`](Self::InvalidAllowOriginValue), on the preflight.
    PreflightInvalidAllowOriginValue,
    /// [`AllowOriginMismatch`](Self::AllowOriginMismatch), on the preflight.
    PreflightAllowOriginMismatch,
    /// [`WildcardOriginNotAllowed`](Self::WildcardOriginNotAllowed), on the preflight.
    PreflightWildcardOriginNotAllowed,
    /// [`InvalidAllowCredentials`](Self::InvalidAllowCredentials), on the preflight.
    PreflightInvalidAllowCredentials,
    /// `Access-Control-Allow-Methods` does not parse as a list of methods.
    InvalidAllowMethodsPreflightResponse,
    /// `Access-Control-Allow-Headers` does not parse as a list of header names.
    InvalidAllowHeadersPreflightResponse,
    /// The method is not in `Access-Control-Allow-Methods`.
    MethodDisallowedByPreflightResponse,
    /// A request header is not in `Access-Control-Allow-Headers`.
    HeaderDisallowedByPreflightResponse,
    /// A redirect's location has a user name or password.
    RedirectContainsCredentials,
}

impl CorsErrorKind {
    /// A stable kebab-case name, e.g. `missing-allow-origin-header`.
    pub const fn as_str(self) -> &'static str {
        use CorsErrorKind::*;
        match self {
            MissingAllowOriginHeader => "missing-allow-origin-header",
            MultipleAllowOriginValues => "multiple-allow-origin-values",
            InvalidAllowOriginValue => "invalid-allow-origin-value",
            AllowOriginMismatch => "allow-origin-mismatch",
            WildcardOriginNotAllowed => "wildcard-origin-not-allowed",
            InvalidAllowCredentials => "invalid-allow-credentials",
            PreflightInvalidStatus => "preflight-invalid-status",
            PreflightDisallowedRedirect => "preflight-disallowed-redirect",
            PreflightMissingAllowOriginHeader => "preflight-missing-allow-origin-header",
            PreflightMultipleAllowOriginValues => "preflight-multiple-allow-origin-values",
            PreflightInvalidAllowOriginValue => "preflight-invalid-allow-origin-value",
            PreflightAllowOriginMismatch => "preflight-allow-origin-mismatch",
            PreflightWildcardOriginNotAllowed => "preflight-wildcard-origin-not-allowed",
            PreflightInvalidAllowCredentials => "preflight-invalid-allow-credentials",
            InvalidAllowMethodsPreflightResponse => "invalid-allow-methods-preflight-response",
            InvalidAllowHeadersPreflightResponse => "invalid-allow-headers-preflight-response",
            MethodDisallowedByPreflightResponse => "method-disallowed-by-preflight-response",
            HeaderDisallowedByPreflightResponse => "header-disallowed-by-preflight-response",
            RedirectContainsCredentials => "redirect-contains-credentials",
        }
    }

    /// Whether the failure was in the preflight response.
    pub const fn is_preflight(self) -> bool {
        use CorsErrorKind::*;
        matches!(
            self,
            PreflightInvalidStatus
                | PreflightDisallowedRedirect
                | PreflightMissingAllowOriginHeader
                | PreflightMultipleAllowOriginValues
                | PreflightInvalidAllowOriginValue
                | PreflightAllowOriginMismatch
                | PreflightWildcardOriginNotAllowed
                | PreflightInvalidAllowCredentials
                | InvalidAllowMethodsPreflightResponse
                | InvalidAllowHeadersPreflightResponse
                | MethodDisallowedByPreflightResponse
                | HeaderDisallowedByPreflightResponse
        )
    }

    /// The same check failing on the preflight rather than on the response.
    pub(crate) const fn on_preflight(self) -> Self {
        use CorsErrorKind::*;
        match self {
            MissingAllowOriginHeader => PreflightMissingAllowOriginHeader,
            MultipleAllowOriginValues => PreflightMultipleAllowOriginValues,
            InvalidAllowOriginValue => PreflightInvalidAllowOriginValue,
            AllowOriginMismatch => PreflightAllowOriginMismatch,
            WildcardOriginNotAllowed => PreflightWildcardOriginNotAllowed,
            InvalidAllowCredentials => PreflightInvalidAllowCredentials,
            other => other,
        }
    }
}

impl fmt::Display for CorsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request blocked by CORS: its kind, the request, and the value at fault.
///
/// `Display` prints Chromium's console message:
///
/// ```
/// use corsair::browser::{CorsError, CorsErrorKind};
/// let e = CorsError::new(
///     CorsErrorKind::MethodDisallowedByPreflightResponse,
///     "http://localhost:9000/api/endpoint",
///     "http://localhost:8000",
/// )
/// .with_value("PUT");
/// assert_eq!(
///     e.to_string(),
///     "Access to fetch at 'http://localhost:9000/api/endpoint' from origin 'http://localhost:8000' \
///      has been blocked by CORS policy: Method PUT is not allowed by Access-Control-Allow-Methods \
///      in preflight response."
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsError {
    kind: CorsErrorKind,
    url: String,
    redirected_from: Option<String>,
    origin: String,
    value: Option<String>,
}

impl CorsError {
    /// A failure of `kind` for a fetch of `url` from a page of `origin`.
    pub fn new(kind: CorsErrorKind, url: impl Into<String>, origin: impl Into<String>) -> Self {
        CorsError {
            kind,
            url: url.into(),
            redirected_from: None,
            origin: origin.into(),
            value: None,
        }
    }

    /// The offending value: a header's value, a method, a header name or a redirect location.
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The URL first requested, when the failing request followed redirects.
    pub fn with_redirected_from(mut self, url: impl Into<String>) -> Self {
        self.redirected_from = Some(url.into());
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> CorsErrorKind {
        self.kind
    }

    /// The URL of the failing request.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The offending value, if the message names one.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The reason part of the message (after "has been blocked by CORS policy: ").
    pub fn reason(&self) -> String {
        use CorsErrorKind::*;
        let v = self.value.as_deref().unwrap_or("");
        let valid = " Have the server send the header with a valid value.";
        let core = match self.kind.on_actual() {
            MissingAllowOriginHeader => {
                "No 'Access-Control-Allow-Origin' header is present on the requested resource."
                    .to_owned()
            }
            MultipleAllowOriginValues => format!(
                "The 'Access-Control-Allow-Origin' header contains multiple values '{v}', but only one is allowed.{valid}"
            ),
            InvalidAllowOriginValue => format!(
                "The 'Access-Control-Allow-Origin' header contains the invalid value '{v}'.{valid}"
            ),
            AllowOriginMismatch => format!(
                "The 'Access-Control-Allow-Origin' header has a value '{v}' that is not equal to the supplied origin.{valid}"
            ),
            WildcardOriginNotAllowed => "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'.".to_owned(),
            InvalidAllowCredentials => format!(
                "The value of the 'Access-Control-Allow-Credentials' header in the response is '{v}' which must be 'true' when the request's credentials mode is 'include'."
            ),
            PreflightInvalidStatus => "It does not have HTTP ok status.".to_owned(),
            PreflightDisallowedRedirect => "Redirect is not allowed for a preflight request.".to_owned(),
            InvalidAllowMethodsPreflightResponse => {
                return "Cannot parse Access-Control-Allow-Methods response header field in preflight response.".to_owned()
            }
            InvalidAllowHeadersPreflightResponse => {
                return "Cannot parse Access-Control-Allow-Headers response header field in preflight response.".to_owned()
            }
            MethodDisallowedByPreflightResponse => {
                return format!("Method {v} is not allowed by Access-Control-Allow-Methods in preflight response.")
            }
            HeaderDisallowedByPreflightResponse => {
                return format!("Request header field {v} is not allowed by Access-Control-Allow-Headers in preflight response.")
            }
            RedirectContainsCredentials => {
                // Chromium 156 prints the location as '' here (pinned by the differential
                // suite); the location itself stays available through `value()`.
                return "Redirect location '' contains a username and password, which is disallowed for cross-origin requests.".to_owned()
            }
            _ => String::new(),
        };
        if self.kind.is_preflight() {
            format!("Response to preflight request doesn't pass access control check: {core}")
        } else {
            core
        }
    }
}

impl CorsErrorKind {
    /// The actual-response kind of a preflight origin/credentials failure (identity otherwise).
    const fn on_actual(self) -> Self {
        use CorsErrorKind::*;
        match self {
            PreflightMissingAllowOriginHeader => MissingAllowOriginHeader,
            PreflightMultipleAllowOriginValues => MultipleAllowOriginValues,
            PreflightInvalidAllowOriginValue => InvalidAllowOriginValue,
            PreflightAllowOriginMismatch => AllowOriginMismatch,
            PreflightWildcardOriginNotAllowed => WildcardOriginNotAllowed,
            PreflightInvalidAllowCredentials => InvalidAllowCredentials,
            other => other,
        }
    }
}

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Access to fetch at '{}' ", self.url)?;
        if let Some(from) = &self.redirected_from {
            write!(f, "(redirected from '{from}') ")?;
        }
        write!(
            f,
            "from origin '{}' has been blocked by CORS policy: {}",
            self.origin,
            self.reason()
        )
    }
}

impl std::error::Error for CorsError {}
