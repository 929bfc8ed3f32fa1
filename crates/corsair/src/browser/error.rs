//! Why a browser blocks a request: one kind per Chromium `CorsError`, a `Display` that is
//! exactly the console message the installed Chromium prints, and
//! [`CorsError::console_message`] for the words of each browser (Firefox's and WebKit's as the
//! installed Firefox ESR and WebKitGTK print them).

use std::fmt;

use super::Browser;

/// A check of the CORS check proper (`Access-Control-Allow-Origin`, then, with credentials,
/// `Access-Control-Allow-Credentials`), which a browser runs on the preflight response and on the
/// actual response alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccessCheck {
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
}

impl AccessCheck {
    /// The stable names of this failure on the actual response and on the preflight.
    const fn names(self) -> (&'static str, &'static str) {
        use AccessCheck::*;
        match self {
            MissingAllowOriginHeader => (
                "missing-allow-origin-header",
                "preflight-missing-allow-origin-header",
            ),
            MultipleAllowOriginValues => (
                "multiple-allow-origin-values",
                "preflight-multiple-allow-origin-values",
            ),
            InvalidAllowOriginValue => (
                "invalid-allow-origin-value",
                "preflight-invalid-allow-origin-value",
            ),
            AllowOriginMismatch => ("allow-origin-mismatch", "preflight-allow-origin-mismatch"),
            WildcardOriginNotAllowed => (
                "wildcard-origin-not-allowed",
                "preflight-wildcard-origin-not-allowed",
            ),
            InvalidAllowCredentials => (
                "invalid-allow-credentials",
                "preflight-invalid-allow-credentials",
            ),
        }
    }

    /// The response header this check reads.
    pub const fn header(self) -> &'static str {
        use AccessCheck::*;
        match self {
            MissingAllowOriginHeader
            | MultipleAllowOriginValues
            | InvalidAllowOriginValue
            | AllowOriginMismatch
            | WildcardOriginNotAllowed => "access-control-allow-origin",
            InvalidAllowCredentials => "access-control-allow-credentials",
        }
    }

    /// Chromium's words for this failure, with the offending value `v`.
    fn message(self, v: &str) -> String {
        use AccessCheck::*;
        let valid = " Have the server send the header with a valid value.";
        match self {
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
        }
    }
}

/// The kind of CORS failure, after Chromium's `network::mojom::CorsError`. Each kind is
/// defined once: its name, its console message and the header at fault are exhaustive matches
/// here, so a new kind cannot go unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorsErrorKind {
    /// The CORS check failed on the actual response.
    Response(AccessCheck),
    /// The CORS check failed on the preflight response.
    Preflight(AccessCheck),
    /// The preflight's status is not 200–299.
    PreflightInvalidStatus,
    /// The preflight was answered with a redirect.
    PreflightDisallowedRedirect,
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
    /// A stable kebab-case name, e.g. `missing-allow-origin-header` or
    /// `preflight-missing-allow-origin-header`.
    pub const fn as_str(self) -> &'static str {
        use CorsErrorKind::*;
        match self {
            Response(c) => c.names().0,
            Preflight(c) => c.names().1,
            PreflightInvalidStatus => "preflight-invalid-status",
            PreflightDisallowedRedirect => "preflight-disallowed-redirect",
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
        match self {
            Preflight(_)
            | PreflightInvalidStatus
            | PreflightDisallowedRedirect
            | InvalidAllowMethodsPreflightResponse
            | InvalidAllowHeadersPreflightResponse
            | MethodDisallowedByPreflightResponse
            | HeaderDisallowedByPreflightResponse => true,
            Response(_) | RedirectContainsCredentials => false,
        }
    }

    /// The response header at fault, when one is (`None` for a bad preflight status).
    pub const fn header(self) -> Option<&'static str> {
        use CorsErrorKind::*;
        match self {
            Response(c) | Preflight(c) => Some(c.header()),
            InvalidAllowMethodsPreflightResponse | MethodDisallowedByPreflightResponse => {
                Some("access-control-allow-methods")
            }
            InvalidAllowHeadersPreflightResponse | HeaderDisallowedByPreflightResponse => {
                Some("access-control-allow-headers")
            }
            PreflightDisallowedRedirect | RedirectContainsCredentials => Some("location"),
            PreflightInvalidStatus => None,
        }
    }

    /// The CORS check's failure, if this is one, whether on the preflight or the response.
    pub const fn access_check(self) -> Option<AccessCheck> {
        match self {
            CorsErrorKind::Response(c) | CorsErrorKind::Preflight(c) => Some(c),
            _ => None,
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
    status: Option<u16>,
    /// What only WebKit's words name, and whether the failing response was a redirect, which
    /// adds a line to Firefox's (boxed: most errors have none of it).
    webkit: Option<Box<WebKitDetail>>,
}

/// The `Origin` sent when it is not the page's, the target of a refused redirect, and whether
/// the field name `Access-Control-Allow-Origin` came more than once spelled exactly so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct WebKitDetail {
    request_origin: Option<String>,
    redirect_to: Option<String>,
    repeated_allow_origin: bool,
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
            status: None,
            webkit: None,
        }
    }

    /// The `Origin` the failing request sent, when it is not the page's (`null` after a
    /// cross-origin redirect chain): WebKit's message names it.
    pub fn with_request_origin(mut self, origin: impl Into<String>) -> Self {
        self.webkit.get_or_insert_with(Box::default).request_origin = Some(origin.into());
        self
    }

    /// Where the failing response redirected to, when it was a redirect: WebKit's message
    /// names it; Firefox's has a second line then.
    pub fn with_redirect_to(mut self, url: impl Into<String>) -> Self {
        self.webkit.get_or_insert_with(Box::default).redirect_to = Some(url.into());
        self
    }

    /// The failing response had the field name `Access-Control-Allow-Origin`, spelled exactly
    /// so, more than once: Firefox then says so (`Multiple CORS header …`) instead of naming
    /// the combined value.
    pub(crate) fn with_repeated_allow_origin_field(mut self) -> Self {
        self.webkit
            .get_or_insert_with(Box::default)
            .repeated_allow_origin = true;
        self
    }

    /// The HTTP status of the response that failed the check (WebKit and Firefox print it).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status of the failing response, when known.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The offending value: a header's value, a method, a header name or a redirect location.
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The URL first requested, when the failing request followed redirects (Chromium's message
    /// names it).
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
        let preflight = "Response to preflight request doesn't pass access control check: ";
        match self.kind {
            Response(c) => c.message(v),
            Preflight(c) => format!("{preflight}{}", c.message(v)),
            PreflightInvalidStatus => format!("{preflight}It does not have HTTP ok status."),
            PreflightDisallowedRedirect => {
                format!("{preflight}Redirect is not allowed for a preflight request.")
            }
            InvalidAllowMethodsPreflightResponse => "Cannot parse Access-Control-Allow-Methods response header field in preflight response.".to_owned(),
            InvalidAllowHeadersPreflightResponse => "Cannot parse Access-Control-Allow-Headers response header field in preflight response.".to_owned(),
            MethodDisallowedByPreflightResponse => {
                format!("Method {v} is not allowed by Access-Control-Allow-Methods in preflight response.")
            }
            HeaderDisallowedByPreflightResponse => format!(
                "Request header field {v} is not allowed by Access-Control-Allow-Headers in preflight response."
            ),
            // Chromium 156 prints the location as '' here (pinned by the differential suite);
            // the location itself stays available through `value()`.
            RedirectContainsCredentials => "Redirect location '' contains a username and password, which is disallowed for cross-origin requests.".to_owned(),
        }
    }
}

impl CorsError {
    /// The console message `browser` prints for this failure.
    ///
    /// - [`Browser::Chromium`]: exactly this error's `Display` text, one line.
    /// - [`Browser::Safari`]: WebKit's two lines, joined by `\n`, as WebKitGTK 2.50 prints them
    ///   (without the `CONSOLE SECURITY ERROR` / `CONSOLE JS ERROR` tags of its stdout log, which
    ///   Safari's console shows as levels): the reason, then `Fetch API cannot load URL due to
    ///   access control checks.` The differential suite compares them with WebKitGTK's on every
    ///   case it blocks.
    /// - [`Browser::Firefox`]: Firefox's `Cross-Origin Request Blocked: … (Reason: …)` line as
    ///   Firefox ESR 153 logs it, followed, after a failed preflight or a failed check of a
    ///   redirect, by the `CORS request did not succeed` line it logs next (joined by `\n`).
    ///   The differential suite compares them with the messages Firefox's console service
    ///   receives (read through Marionette: headless Firefox prints none on its standard
    ///   streams) on every case it blocks. When the field name `Access-Control-Allow-Origin`,
    ///   spelled exactly so, comes more than once, Firefox says `Multiple CORS header
    ///   ‘Access-Control-Allow-Origin’ not allowed` (the engine sees the spelling through
    ///   [`Fetch::receive_fields`](super::Fetch::receive_fields), as `corsair check` calls it;
    ///   a `HeaderMap` has lost it); in any other spelling, the combined value `does not match`.
    ///
    /// ```
    /// use corsair::browser::{Browser, CorsError, CorsErrorKind};
    /// let e = CorsError::new(
    ///     CorsErrorKind::MethodDisallowedByPreflightResponse,
    ///     "http://localhost:9000/api",
    ///     "http://localhost:8000",
    /// )
    /// .with_value("PUT")
    /// .with_status(204);
    /// assert_eq!(e.console_message(Browser::Chromium), e.to_string());
    /// assert_eq!(
    ///     e.console_message(Browser::Safari),
    ///     "Method PUT is not allowed by Access-Control-Allow-Methods.\n\
    ///      Fetch API cannot load http://localhost:9000/api due to access control checks."
    /// );
    /// assert_eq!(
    ///     e.console_message(Browser::Firefox),
    ///     "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote \
    ///      resource at http://localhost:9000/api. (Reason: Did not find method in CORS header \
    ///      ‘Access-Control-Allow-Methods’).\n\
    ///      Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote \
    ///      resource at http://localhost:9000/api. (Reason: CORS request did not succeed). \
    ///      Status code: (null)."
    /// );
    /// ```
    pub fn console_message(&self, browser: Browser) -> String {
        match browser {
            Browser::Chromium => self.to_string(),
            Browser::Safari => format!(
                "{}\nFetch API cannot load {} due to access control checks.",
                self.webkit_reason(),
                without_credentials(&self.url)
            ),
            Browser::Firefox => self.firefox_message(),
        }
    }

    /// WebKit's first line, as WebKitGTK 2.50 prints it (pinned by the differential suite).
    fn webkit_reason(&self) -> String {
        use AccessCheck::*;
        use CorsErrorKind::*;
        let v = self.value.as_deref().unwrap_or("");
        let status = self.status.unwrap_or(0);
        let detail = self.webkit.as_deref();
        let origin = detail
            .and_then(|d| d.request_origin.as_deref())
            .unwrap_or(&self.origin);
        let not_allowed = || {
            format!("Origin {origin} is not allowed by Access-Control-Allow-Origin. Status code: {status}")
        };
        let check = |c: AccessCheck| match c {
            MissingAllowOriginHeader | AllowOriginMismatch | InvalidAllowOriginValue => {
                not_allowed()
            }
            // WebKit reads a comma as several origins; a value with only spaces is one that
            // does not match.
            MultipleAllowOriginValues if v.contains(',') => {
                "Access-Control-Allow-Origin cannot contain more than one origin.".to_owned()
            }
            MultipleAllowOriginValues => not_allowed(),
            WildcardOriginNotAllowed => {
                "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true."
                    .to_owned()
            }
            InvalidAllowCredentials => {
                "Credentials flag is true, but Access-Control-Allow-Credentials is not \"true\"."
                    .to_owned()
            }
        };
        let denied = |to: &str, why: &str| {
            format!("Cross-origin redirection to {to} denied by Cross-Origin Resource Sharing policy: {why}")
        };
        match self.kind {
            Response(c) => match detail.and_then(|d| d.redirect_to.as_deref()) {
                Some(to) => denied(&without_credentials(to), &check(c)),
                None => check(c),
            },
            Preflight(c) => check(c),
            PreflightInvalidStatus | PreflightDisallowedRedirect => {
                format!("Preflight response is not successful. Status code: {status}")
            }
            InvalidAllowMethodsPreflightResponse => {
                format!("Header Access-Control-Allow-Methods has an invalid value: {v}")
            }
            InvalidAllowHeadersPreflightResponse => {
                format!("Header Access-Control-Allow-Headers has an invalid value: {v}")
            }
            MethodDisallowedByPreflightResponse => {
                format!("Method {v} is not allowed by Access-Control-Allow-Methods.")
            }
            HeaderDisallowedByPreflightResponse => {
                format!("Request header field {v} is not allowed by Access-Control-Allow-Headers.")
            }
            RedirectContainsCredentials => denied(
                &without_credentials(v),
                &format!("redirection URL {v} has credentials"),
            ),
        }
    }

    /// Firefox's console lines, as Firefox ESR 153 logs them (checked against its console
    /// service by the differential suite): one line from its message catalogue
    /// (`security.properties`; two for a refused preflight redirect, the redirect and the
    /// preflight's failure), then, when the request's channel fails after the check (see
    /// [`firefox_did_not_succeed`](Self::firefox_did_not_succeed)), the `CORS request did not
    /// succeed` line it logs next for the same URL.
    fn firefox_message(&self) -> String {
        if self.kind == CorsErrorKind::RedirectContainsCredentials {
            // Firefox refuses the redirect without a reason of its own: only the failed
            // request's line.
            return self.firefox_failed_line();
        }
        use AccessCheck::*;
        use CorsErrorKind::*;
        let v = self.value.as_deref().unwrap_or("");
        let status = self.status.map(|s| s.to_string());
        let status = status.as_deref().unwrap_or("(null)");
        let repeated = self
            .webkit
            .as_deref()
            .is_some_and(|d| d.repeated_allow_origin);
        let reason = match self.kind {
            Response(MultipleAllowOriginValues) | Preflight(MultipleAllowOriginValues)
                if repeated =>
            {
                "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed).".to_owned()
            }
            Response(MissingAllowOriginHeader) | Preflight(MissingAllowOriginHeader) => {
                format!("CORS header ‘Access-Control-Allow-Origin’ missing). Status code: {status}.")
            }
            // Firefox compares the whole (combined) value with the origin.
            Response(MultipleAllowOriginValues | AllowOriginMismatch | InvalidAllowOriginValue)
            | Preflight(MultipleAllowOriginValues | AllowOriginMismatch | InvalidAllowOriginValue) => {
                format!("CORS header ‘Access-Control-Allow-Origin’ does not match ‘{v}’).")
            }
            Response(WildcardOriginNotAllowed) | Preflight(WildcardOriginNotAllowed) => {
                // The one message that quotes the URL.
                return firefox_line(
                    &format!("‘{}’", self.url),
                    "Credential is not supported if the CORS header ‘Access-Control-Allow-Origin’ is ‘*’).",
                ) + &self.firefox_did_not_succeed();
            }
            Response(InvalidAllowCredentials) | Preflight(InvalidAllowCredentials) => {
                "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’).".to_owned()
            }
            PreflightInvalidStatus => {
                format!("CORS preflight response did not succeed). Status code: {status}.")
            }
            // Then the preflight's own failure, with the redirect's status.
            PreflightDisallowedRedirect | RedirectContainsCredentials => format!(
                "CORS request external redirect not allowed).\n{}",
                firefox_line(
                    &self.url,
                    &format!("CORS preflight response did not succeed). Status code: {status}.")
                )
            ),
            InvalidAllowMethodsPreflightResponse => format!(
                "invalid token ‘{}’ in CORS header ‘Access-Control-Allow-Methods’).",
                first_invalid_token(v)
            ),
            InvalidAllowHeadersPreflightResponse => format!(
                "invalid token ‘{}’ in CORS header ‘Access-Control-Allow-Headers’).",
                first_invalid_token(v)
            ),
            MethodDisallowedByPreflightResponse => {
                "Did not find method in CORS header ‘Access-Control-Allow-Methods’).".to_owned()
            }
            HeaderDisallowedByPreflightResponse => format!(
                "header ‘{v}’ is not allowed according to header ‘Access-Control-Allow-Headers’ from CORS preflight response)."
            ),
        };
        firefox_line(&self.url, &reason) + &self.firefox_did_not_succeed()
    }

    /// The `CORS request did not succeed` line Firefox logs after the reason (its status
    /// unknown: `(null)`), with its leading `\n`, when the request's channel is cancelled after
    /// the check failed elsewhere: after a failed preflight, and after a failed check of a
    /// redirect response. Empty when the check of a final response failed: its line is the only
    /// one, whether or not the request was redirected before.
    fn firefox_did_not_succeed(&self) -> String {
        let on_redirect = self
            .webkit
            .as_deref()
            .is_some_and(|d| d.redirect_to.is_some());
        if self.kind.is_preflight() || on_redirect {
            format!("\n{}", self.firefox_failed_line())
        } else {
            String::new()
        }
    }

    /// Firefox's `CORS request did not succeed` line for this URL.
    fn firefox_failed_line(&self) -> String {
        firefox_line(
            &self.url,
            "CORS request did not succeed). Status code: (null).",
        )
    }
}

/// One of Firefox's `Cross-Origin Request Blocked` lines: `url` as printed, `reason` up to the
/// end (the catalogue's closing parenthesis comes first, then any status).
fn firefox_line(url: &str, reason: &str) -> String {
    format!(
        "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at {url}. (Reason: {reason}"
    )
}

/// The first element of a comma-separated list that is not a token, as Firefox names it in
/// `invalid token ‘…’` (elements trimmed of spaces and tabs, empty ones skipped); the whole value
/// if every element is one.
fn first_invalid_token(list: &str) -> &str {
    list.split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
        .find(|t| !crate::syntax::is_token(t.as_bytes()))
        .unwrap_or(list)
}

/// A URL without its user name and password, as WebKit prints URLs (an unparsable one as is).
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.into()
        }
        Err(_) => url.to_owned(),
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
