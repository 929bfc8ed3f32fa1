//! What to change: the exact response headers the server must send, and request-side changes
//! that avoid a preflight.

use corsair::browser::{safelist, AccessCheck, CorsError, CorsErrorKind, Credentials};

/// The server-side fix for a CORS failure: every header a correct answer needs (not only the
/// first one found wrong), and a note on the usual cause.
pub(super) fn server_side(
    e: &CorsError,
    origin: &str,
    credentials: Credentials,
    method: &str,
    unsafe_names: &[String],
    proxy: bool,
    redirected_origin: bool,
) -> Vec<String> {
    use CorsErrorKind::*;
    let include = credentials == Credentials::Include;
    let mut fix = Vec::new();
    if e.kind() == RedirectContainsCredentials {
        fix.push("redirect to a URL without a user name or password".to_owned());
        return fix;
    }
    let policy_failure = !matches!(
        e.kind(),
        PreflightInvalidStatus
            | PreflightDisallowedRedirect
            | Response(AccessCheck::MultipleAllowOriginValues)
            | Preflight(AccessCheck::MultipleAllowOriginValues)
    );
    if proxy && policy_failure && origin != "null" {
        return proxy_side(origin, include, method, unsafe_names);
    }
    let note = match e.kind() {
        Response(AccessCheck::MultipleAllowOriginValues)
        | Preflight(AccessCheck::MultipleAllowOriginValues) => Some(
            "send Access-Control-Allow-Origin once, with one origin: is CORS added twice, e.g. by a proxy and by the application?",
        ),
        Response(AccessCheck::WildcardOriginNotAllowed)
        | Preflight(AccessCheck::WildcardOriginNotAllowed) => {
            Some("with credentials, browsers refuse `*`: echo the allowed origin instead")
        }
        PreflightInvalidStatus => Some(
            "answer the preflight before authentication or routing can reject it: preflights carry no cookies or Authorization",
        ),
        PreflightDisallowedRedirect => Some(
            "answer the preflight at this exact URL instead of redirecting it (trailing-slash and http-to-https redirects are the usual cause), or request the final URL",
        ),
        _ => None,
    };
    if e.kind().is_preflight() {
        fix.push("answer the OPTIONS preflight with status 204 and these headers:".to_owned());
        fix.push(format!("  Access-Control-Allow-Origin: {origin}"));
        if include {
            fix.push("  Access-Control-Allow-Credentials: true".to_owned());
        }
        if !safelist::is_safelisted_method(method) {
            fix.push(format!("  Access-Control-Allow-Methods: {method}"));
        }
        if !unsafe_names.is_empty() {
            fix.push(format!(
                "  Access-Control-Allow-Headers: {}",
                unsafe_names.join(", ")
            ));
        }
        fix.push("  Vary: Origin".to_owned());
        fix.push("then, on the actual response:".to_owned());
    } else {
        fix.push("send on the response:".to_owned());
    }
    fix.push(format!("  Access-Control-Allow-Origin: {origin}"));
    if include {
        fix.push("  Access-Control-Allow-Credentials: true".to_owned());
    }
    fix.push("  Vary: Origin".to_owned());
    if matches!(e.kind(), InvalidAllowMethodsPreflightResponse) {
        fix.push(
            "Access-Control-Allow-Methods is a comma-separated list of method names (GET, POST, PUT)"
                .to_owned(),
        );
    }
    if matches!(e.kind(), MethodDisallowedByPreflightResponse) {
        fix.push(
            "methods compare case-sensitively: list the method exactly as the browser sends it"
                .to_owned(),
        );
    }
    if let Some(n) = note {
        fix.push(n.to_owned());
    }
    if origin == "null" && redirected_origin {
        fix.push(
            "the origin is `null` because a cross-origin redirect chain hid it: request the final URL directly rather than allowing `null`"
                .to_owned(),
        );
    }
    fix
}

/// The fix for an answer of corsair proxy: its flags, or the policy file's keys.
fn proxy_side(origin: &str, include: bool, method: &str, unsafe_names: &[String]) -> Vec<String> {
    let mut flags = vec![format!("--allow-origin {origin}")];
    let mut keys = vec![format!("allow_origins = [\"{origin}\"]")];
    if !safelist::is_safelisted_method(method) {
        flags.push(format!("--allow-method {method}"));
        keys.push(format!("allow_methods = [\"{method}\"]"));
    }
    for name in unsafe_names {
        flags.push(format!("--allow-header {name}"));
    }
    if !unsafe_names.is_empty() {
        let quoted: Vec<String> = unsafe_names.iter().map(|n| format!("\"{n}\"")).collect();
        keys.push(format!("allow_headers = [{}]", quoted.join(", ")));
    }
    if include {
        flags.push("--allow-credentials".to_owned());
        keys.push("allow_credentials = true".to_owned());
    }
    let mut fix = vec![
        "this answer came from corsair proxy (Via: 1.1 corsair): start it with".to_owned(),
        format!("  corsair proxy ... {}", flags.join(" ")),
        "or, with --config FILE, set in the policy file:".to_owned(),
    ];
    fix.extend(keys.into_iter().map(|k| format!("  {k}")));
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
            if upper != method && safelist::normalize_method(method) == upper {
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
