//! What to change: the exact response headers the server must send, and request-side changes
//! that avoid a preflight.

use corsair::browser::{CorsError, CorsErrorKind, Credentials};

/// The response header a failure is about, lowercase; `None` for the status line.
pub(super) fn culprit(kind: CorsErrorKind) -> Option<&'static str> {
    use CorsErrorKind::*;
    match kind {
        MissingAllowOriginHeader
        | MultipleAllowOriginValues
        | InvalidAllowOriginValue
        | AllowOriginMismatch
        | WildcardOriginNotAllowed
        | PreflightMissingAllowOriginHeader
        | PreflightMultipleAllowOriginValues
        | PreflightInvalidAllowOriginValue
        | PreflightAllowOriginMismatch
        | PreflightWildcardOriginNotAllowed => Some("access-control-allow-origin"),
        InvalidAllowCredentials | PreflightInvalidAllowCredentials => {
            Some("access-control-allow-credentials")
        }
        InvalidAllowMethodsPreflightResponse | MethodDisallowedByPreflightResponse => {
            Some("access-control-allow-methods")
        }
        InvalidAllowHeadersPreflightResponse | HeaderDisallowedByPreflightResponse => {
            Some("access-control-allow-headers")
        }
        PreflightDisallowedRedirect | RedirectContainsCredentials => Some("location"),
        _ => None,
    }
}

/// The server-side fix for a CORS failure.
pub(super) fn server_side(
    e: &CorsError,
    origin: &str,
    credentials: Credentials,
    method: &str,
    unsafe_names: &[String],
) -> Vec<String> {
    use CorsErrorKind::*;
    let include = credentials == Credentials::Include;
    let where_ = if e.kind().is_preflight() {
        "on the response to the OPTIONS preflight"
    } else {
        "on the response"
    };
    let allow_origin = format!("Access-Control-Allow-Origin: {origin}");
    let mut fix = Vec::new();
    match e.kind() {
        MissingAllowOriginHeader
        | PreflightMissingAllowOriginHeader
        | InvalidAllowOriginValue
        | PreflightInvalidAllowOriginValue
        | AllowOriginMismatch
        | PreflightAllowOriginMismatch => {
            fix.push(format!("send {where_}: {allow_origin}"));
            if include {
                fix.push("and: Access-Control-Allow-Credentials: true".to_owned());
            }
            fix.push(
                "and: Vary: Origin (when the value depends on the request's origin)".to_owned(),
            );
        }
        MultipleAllowOriginValues | PreflightMultipleAllowOriginValues => {
            fix.push(format!(
                "send exactly one {allow_origin} {where_} (is CORS added twice, e.g. by a proxy and by the application?)"
            ));
        }
        WildcardOriginNotAllowed | PreflightWildcardOriginNotAllowed => {
            fix.push(format!("send {where_}: {allow_origin} instead of *"));
            fix.push("and: Access-Control-Allow-Credentials: true".to_owned());
            fix.push("and: Vary: Origin".to_owned());
        }
        InvalidAllowCredentials | PreflightInvalidAllowCredentials => {
            fix.push(format!(
                "send {where_}: Access-Control-Allow-Credentials: true (exactly, lowercase)"
            ));
        }
        PreflightInvalidStatus => {
            fix.push(
                "answer the OPTIONS preflight with 204 (or 200) before authentication or routing rejects it: preflights carry no cookies or Authorization"
                    .to_owned(),
            );
        }
        PreflightDisallowedRedirect => {
            fix.push(
                "answer the OPTIONS preflight at this exact URL instead of redirecting (a trailing-slash or http-to-https redirect is the usual cause); or request the final URL"
                    .to_owned(),
            );
        }
        InvalidAllowMethodsPreflightResponse | MethodDisallowedByPreflightResponse => {
            fix.push(format!(
                "send on the response to the OPTIONS preflight: Access-Control-Allow-Methods: {method} (methods are case-sensitive; separate several with commas)"
            ));
        }
        InvalidAllowHeadersPreflightResponse | HeaderDisallowedByPreflightResponse => {
            fix.push(format!(
                "send on the response to the OPTIONS preflight: Access-Control-Allow-Headers: {}",
                unsafe_names.join(", ")
            ));
        }
        RedirectContainsCredentials => {
            fix.push("redirect to a URL without a user name or password".to_owned());
        }

        _ => fix.push(e.reason()),
    }
    fix
}

/// Request-side changes that avoid the preflight or the credentials requirement.
pub(super) fn request_side(
    method: &str,
    headers: &[(String, String)],
    unsafe_names: &[String],
    credentials: Credentials,
    preflight: bool,
) -> Vec<String> {
    let mut fix = Vec::new();
    if preflight {
        if !matches!(method, "GET" | "HEAD" | "POST") {
            let upper = method.to_ascii_uppercase();
            if upper != method && corsair::syntax::NORMALIZED_METHODS.contains(&upper.as_str()) {
                fix.push(format!("write the method as {upper}"));
            } else if upper != method {
                fix.push(format!(
                    "browsers send {method:?} as written (only DELETE, GET, HEAD, OPTIONS, POST and PUT are upper-cased): write {upper:?} if the server lists that"
                ));
            }
            fix.push(format!(
                "a preflight is needed because {method} is not GET, HEAD or POST"
            ));
        }
        for name in unsafe_names {
            let value = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| v.as_str());
            if name == "content-type" {
                fix.push(format!(
                    "Content-Type {value:?} needs a preflight; only text/plain, multipart/form-data and application/x-www-form-urlencoded do not"
                ));
            } else {
                fix.push(format!(
                    "the header {name} needs a preflight; without it none is sent"
                ));
            }
        }
    }
    if credentials == Credentials::Include {
        fix.push(
            "if the request needs no cookies or HTTP authentication, credentials: 'omit' lets the server answer with *"
                .to_owned(),
        );
    }
    fix
}
