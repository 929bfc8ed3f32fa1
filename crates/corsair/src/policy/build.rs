//! Validation and compilation of a [`CorsBuilder`]: every rule runs, every problem is kept.

use http::{HeaderValue, StatusCode};

use super::origin_set::OriginSet;
use super::{Allowed, Compiled, CorsBuilder};
use crate::error::{ConfigError, ConfigErrors, ErrorCode};
use crate::origin::OriginPattern;
use crate::syntax;

/// The longest preflight cache lifetime accepted: 24 hours, Firefox's own cap.
pub(crate) const MAX_AGE_LIMIT_SECS: u64 = 86_400;

pub(crate) fn build(b: &CorsBuilder) -> Result<Compiled, ConfigErrors> {
    let mut errors = Vec::new();

    let origins = origins(b, &mut errors);
    let methods = methods(&b.methods, &mut errors);
    let headers = request_headers(&b.headers, &mut errors);
    let expose = exposed_headers(b, &mut errors);

    let max_age = match b.max_age {
        Some(d) if d.as_secs() > MAX_AGE_LIMIT_SECS => {
            errors.push(ConfigError::new(
                ErrorCode::MaxAgeTooLarge,
                "max_age",
                Some(&d.as_secs().to_string()),
                "no browser keeps a preflight longer than 24 hours (Chromium: 2 hours), and a long cache delays every policy change.",
                "use at most 86400 seconds; 7200 is the most Chromium honours.",
            ));
            None
        }
        Some(d) => static_value(&d.as_secs().to_string()),
        None => None,
    };

    let preflight_status = match StatusCode::from_u16(b.preflight_status) {
        Ok(s) if s.is_success() => s,
        _ => {
            errors.push(ConfigError::new(
                ErrorCode::PreflightStatusInvalid,
                "preflight_status",
                Some(&b.preflight_status.to_string()),
                "browsers treat a preflight answered with a status outside 200-299 as failed.",
                "use 204 (the default) or 200.",
            ));
            StatusCode::NO_CONTENT
        }
    };

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let wildcard_origin = origins.allows_any() && !b.credentials;
    Ok(Compiled {
        origins,
        credentials: b.credentials,
        methods,
        headers,
        expose,
        max_age,
        private_network: b.private_network,
        preflight_status,
        wildcard_origin,
    })
}

fn origins(b: &CorsBuilder, errors: &mut Vec<ConfigError>) -> OriginSet {
    const SETTING: &str = "allow_origins";
    let mut parsed: Vec<(&str, OriginPattern)> = Vec::with_capacity(b.origins.len());
    for o in &b.origins {
        match OriginPattern::parse(o) {
            Ok(p) => parsed.push((o, p)),
            Err(e) => errors.push(e),
        }
    }
    let has = |want: &OriginPattern| parsed.iter().any(|(_, p)| p == want);
    let any = has(&OriginPattern::Any);
    if any && b.origins.len() > 1 {
        errors.push(ConfigError::new(
            ErrorCode::AnyOriginInList,
            SETTING,
            None,
            "`*` allows every origin, so listing others beside it is a mistake in one or the other.",
            "keep either `*` alone or only the specific origins.",
        ));
    }
    if b.origins.is_empty() && b.predicate.is_none() {
        errors.push(ConfigError::new(
            ErrorCode::NoOrigins,
            SETTING,
            None,
            "no origin is allowed, so the policy would refuse every cross-origin request.",
            "list the origins of the pages that call this server, e.g. allow_origins([\"https://app.example.com\"]).",
        ));
    }
    if has(&OriginPattern::Null) && !b.dangerous_null_origin {
        errors.push(ConfigError::new(
            ErrorCode::NullOrigin,
            SETTING,
            Some("null"),
            "sandboxed iframes and file: pages of any site send the origin `null`, so allowing it allows them all.",
            "allow the real origin of the page; if you must, use dangerously_allow_null_origin.",
        ));
    }
    if b.credentials {
        if any && !b.dangerous_credentials_any_origin {
            errors.push(ConfigError::new(
                ErrorCode::CredentialsWithAnyOrigin,
                SETTING,
                Some("*"),
                "credentials with any origin lets every website read this server's responses with its visitors' cookies.",
                "list the allowed origins, or turn credentials off; dangerously_allow_credentials_with_any_origin exists for public data only.",
            ));
        }
        if !b.dangerous_insecure_origins {
            for (raw, p) in &parsed {
                if !matches!(p, OriginPattern::Any | OriginPattern::Null)
                    && !p.is_secure_or_loopback()
                {
                    errors.push(ConfigError::new(
                        ErrorCode::InsecureOriginWithCredentials,
                        SETTING,
                        Some(raw),
                        "with credentials, a plain-http origin lets anyone on the network path inject script that reads authenticated responses.",
                        "use the https origin; for local development, loopback (localhost, 127.0.0.1) is accepted; or dangerously_allow_insecure_origins_with_credentials.",
                    ));
                }
            }
        }
    }
    let patterns: Vec<OriginPattern> = parsed.into_iter().map(|(_, p)| p).collect();
    OriginSet::new(&patterns, b.predicate.clone())
}

fn methods(input: &[String], errors: &mut Vec<ConfigError>) -> Allowed {
    const SETTING: &str = "allow_methods";
    if input.iter().any(|m| m == "*") {
        return Allowed::Any;
    }
    let mut out: Vec<Box<str>> = Vec::new();
    for m in input {
        if !syntax::is_token(m.as_bytes()) {
            errors.push(ConfigError::new(
                ErrorCode::MethodInvalid,
                SETTING,
                Some(m),
                "a method name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~, no spaces or commas.",
                "write one method per entry, such as \"PUT\".",
            ));
        } else if syntax::is_forbidden_method(m.as_bytes()) {
            errors.push(ConfigError::new(
                ErrorCode::MethodForbidden,
                SETTING,
                Some(m),
                "browsers refuse to send CONNECT, TRACE and TRACK, so allowing them does nothing.",
                "remove it.",
            ));
        } else {
            let m = syntax::normalize_method(m);
            if !out.iter().any(|x| &**x == m) {
                out.push(m.into());
            }
        }
    }
    list(out, ", ")
}

fn request_headers(input: &[String], errors: &mut Vec<ConfigError>) -> Allowed {
    const SETTING: &str = "allow_headers";
    if input.iter().any(|h| h == "*") {
        return Allowed::Any;
    }
    let mut out: Vec<Box<str>> = Vec::new();
    for h in input {
        if !syntax::is_token(h.as_bytes()) {
            errors.push(ConfigError::new(
                ErrorCode::HeaderInvalid,
                SETTING,
                Some(h),
                "a header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~, no spaces, colons or commas.",
                "write the bare name, such as \"x-request-id\", one per entry.",
            ));
        } else if syntax::is_forbidden_request_header(h.as_bytes()) {
            errors.push(ConfigError::new(
                ErrorCode::HeaderForbidden,
                SETTING,
                Some(h),
                "this is a forbidden request header: browsers set it themselves and scripts cannot, so it never needs allowing.",
                "remove it.",
            ));
        } else {
            let lower = h.to_ascii_lowercase();
            if !out.iter().any(|x| **x == *lower) {
                out.push(lower.into());
            }
        }
    }
    list(out, ", ")
}

fn exposed_headers(b: &CorsBuilder, errors: &mut Vec<ConfigError>) -> Option<HeaderValue> {
    const SETTING: &str = "expose_headers";
    let mut out: Vec<Box<str>> = Vec::new();
    for h in &b.expose {
        if h == "*" && b.credentials {
            errors.push(ConfigError::new(
                ErrorCode::CredentialsWithAnyExposedHeader,
                SETTING,
                Some("*"),
                "with credentials, browsers read `*` as a header literally named `*`, so nothing is exposed.",
                "list the response headers scripts need, such as \"x-request-id\".",
            ));
            continue;
        } else if !syntax::is_token(h.as_bytes()) {
            errors.push(ConfigError::new(
                ErrorCode::ExposedHeaderInvalid,
                SETTING,
                Some(h),
                "a header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~, no spaces, colons or commas.",
                "write the bare name, such as \"x-request-id\", one per entry.",
            ));
            continue;
        } else if syntax::FORBIDDEN_RESPONSE_HEADERS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(h))
        {
            errors.push(ConfigError::new(
                ErrorCode::ExposedHeaderForbidden,
                SETTING,
                Some(h),
                "browsers never let scripts read Set-Cookie, exposed or not.",
                "remove it; read the cookie's effect through another response header or the body.",
            ));
            continue;
        }
        let lower = h.to_ascii_lowercase();
        if !out.iter().any(|x| **x == *lower) {
            out.push(lower.into());
        }
    }
    match list(out, ", ") {
        Allowed::List(_, v) => v,
        Allowed::Any => None,
    }
}

/// A list and its header value, joined by `sep`.
fn list(items: Vec<Box<str>>, sep: &str) -> Allowed {
    let value = if items.is_empty() {
        None
    } else {
        static_value(&items.join(sep))
    };
    Allowed::List(items, value)
}

/// A header value with a `'static` buffer, so that cloning it on every response is a plain copy
/// rather than an atomic reference count that every core would contend for. Each distinct value
/// is stored once for the life of the process (interned), however often policies are rebuilt.
/// `None` if `s` is not a valid header value.
pub(crate) fn static_value(s: &str) -> Option<HeaderValue> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // Validate first: `from_static` would panic on what `from_str` rejects.
    HeaderValue::from_str(s).ok()?;
    let mut set = INTERNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let interned: &'static str = match set.get(s) {
        Some(v) => v,
        None => {
            let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
            set.insert(leaked);
            leaked
        }
    };
    Some(HeaderValue::from_static(interned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cors;
    use std::time::Duration;

    fn codes(b: CorsBuilder) -> Vec<ErrorCode> {
        match b.build() {
            Ok(c) => panic!("expected errors, built {c:?}"),
            Err(e) => e.codes(),
        }
    }

    fn base() -> CorsBuilder {
        Cors::builder().allow_origins(["https://app.example.com"])
    }

    /// One row per error code: a configuration that produces exactly that code.
    #[test]
    fn every_error_code_has_a_trigger() {
        use ErrorCode::*;
        let rows: Vec<(ErrorCode, CorsBuilder)> = vec![
            (
                CredentialsWithAnyOrigin,
                Cors::builder().allow_origins(["*"]).allow_credentials(true),
            ),
            (
                CredentialsWithAnyExposedHeader,
                base().allow_credentials(true).expose_headers(["*"]),
            ),
            (
                InsecureOriginWithCredentials,
                Cors::builder()
                    .allow_origins(["http://app.example.com"])
                    .allow_credentials(true),
            ),
            (NullOrigin, Cors::builder().allow_origins(["null"])),
            (
                AnyOriginInList,
                Cors::builder().allow_origins(["*", "https://a.example"]),
            ),
            (NoOrigins, Cors::builder()),
            (
                OriginInvalid,
                Cors::builder().allow_origins(["app.example.com"]),
            ),
            (
                OriginHasPath,
                Cors::builder().allow_origins(["https://app.example.com/api"]),
            ),
            (
                OriginTrailingSlash,
                Cors::builder().allow_origins(["https://app.example.com/"]),
            ),
            (
                OriginHasQuery,
                Cors::builder().allow_origins(["https://app.example.com?x=1"]),
            ),
            (
                OriginHasFragment,
                Cors::builder().allow_origins(["https://app.example.com#x"]),
            ),
            (
                OriginHasUserinfo,
                Cors::builder().allow_origins(["https://me@app.example.com"]),
            ),
            (
                OriginUppercase,
                Cors::builder().allow_origins(["https://App.example.com"]),
            ),
            (
                OriginDefaultPort,
                Cors::builder().allow_origins(["https://app.example.com:443"]),
            ),
            (
                OriginUnsupportedScheme,
                Cors::builder().allow_origins(["file://"]),
            ),
            (
                OriginBadWildcard,
                Cors::builder().allow_origins(["https://*app.example.com"]),
            ),
            (
                PatternOverPublicSuffix,
                Cors::builder().allow_origins(["https://*.github.io"]),
            ),
            (
                PatternOverIpAddress,
                Cors::builder().allow_origins(["https://*.10.0.0.1"]),
            ),
            (MethodInvalid, base().allow_methods(["GET, POST"])),
            (MethodForbidden, base().allow_methods(["CONNECT"])),
            (HeaderInvalid, base().allow_headers(["x-a: b"])),
            (HeaderForbidden, base().allow_headers(["cookie"])),
            (ExposedHeaderInvalid, base().expose_headers(["x a"])),
            (
                ExposedHeaderForbidden,
                base().expose_headers(["Set-Cookie"]),
            ),
            (MaxAgeTooLarge, base().max_age(Duration::from_secs(86_401))),
            (PreflightStatusInvalid, base().preflight_status(302)),
        ];
        let covered: Vec<ErrorCode> = rows.iter().map(|(c, _)| *c).collect();
        // Policy-file codes are triggered by the config module's tests.
        let file_codes = [UnknownKey, InvalidFile, RoutePathInvalid, RouteShadowed];
        for code in ErrorCode::ALL.iter().filter(|c| !file_codes.contains(c)) {
            assert!(covered.contains(code), "no test row for {code}");
        }
        for (code, builder) in rows {
            assert_eq!(codes(builder), vec![code], "{code}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let b = Cors::builder()
            .allow_origins([
                "https://a.example/",
                "null",
                "http://b.example",
                "https://*.com",
            ])
            .allow_methods(["GET", "TRACE", "bad method"])
            .allow_headers(["host", "x-ok"])
            .expose_headers(["*", "set-cookie"])
            .allow_credentials(true)
            .max_age(Duration::from_secs(100_000))
            .preflight_status(500);
        use ErrorCode::*;
        assert_eq!(
            codes(b),
            vec![
                OriginTrailingSlash,
                PatternOverPublicSuffix,
                NullOrigin,
                InsecureOriginWithCredentials,
                MethodForbidden,
                MethodInvalid,
                HeaderForbidden,
                CredentialsWithAnyExposedHeader,
                ExposedHeaderForbidden,
                MaxAgeTooLarge,
                PreflightStatusInvalid,
            ]
        );
    }

    #[test]
    fn errors_carry_value_setting_and_fix() {
        let e = Cors::builder()
            .allow_origins(["https://app.example.com/"])
            .build()
            .unwrap_err();
        let e = &e.errors()[0];
        assert_eq!(e.setting(), "allow_origins");
        assert_eq!(e.value(), Some("https://app.example.com/"));
        assert_eq!(e.fix(), "write https://app.example.com.");
        assert_eq!(
            e.to_string(),
            "allow_origins [origin-trailing-slash]: \"https://app.example.com/\": an origin has no \
             trailing slash; browsers send none, so this never matches. Fix: write https://app.example.com."
        );
    }

    #[test]
    fn dangerous_options_unlock_exactly_their_rule() {
        assert!(Cors::builder()
            .allow_origins(["*"])
            .allow_credentials(true)
            .dangerously_allow_credentials_with_any_origin(true)
            .build()
            .is_ok());
        assert!(Cors::builder()
            .allow_origins(["null"])
            .dangerously_allow_null_origin(true)
            .build()
            .is_ok());
        assert!(Cors::builder()
            .allow_origins(["http://app.example.com"])
            .allow_credentials(true)
            .dangerously_allow_insecure_origins_with_credentials(true)
            .build()
            .is_ok());
        // Each one unlocks only its own rule.
        assert_eq!(
            codes(
                Cors::builder()
                    .allow_origins(["http://app.example.com"])
                    .allow_credentials(true)
                    .dangerously_allow_credentials_with_any_origin(true)
                    .dangerously_allow_null_origin(true)
            ),
            vec![ErrorCode::InsecureOriginWithCredentials]
        );
    }

    #[test]
    fn loopback_http_is_fine_with_credentials() {
        for o in [
            "http://localhost:8000",
            "http://localhost:*",
            "http://127.0.0.1:3000",
            "http://[::1]:*",
            "http://*.localhost:*",
        ] {
            assert!(
                Cors::builder()
                    .allow_origins([o])
                    .allow_credentials(true)
                    .build()
                    .is_ok(),
                "{o}"
            );
        }
    }

    #[test]
    fn lists_are_normalized() {
        let c = base()
            .allow_methods(["get", "PATCH", "patch", "GET", "Put"])
            .allow_headers(["X-Custom", "x-custom", "Content-Type"])
            .expose_headers(["X-Request-Id"])
            .max_age(Duration::from_millis(600_900))
            .build()
            .unwrap();
        let inner = &c.inner;
        match &inner.methods {
            Allowed::List(m, v) => {
                assert_eq!(
                    m.iter().map(|s| &**s).collect::<Vec<_>>(),
                    ["GET", "PATCH", "patch", "PUT"]
                );
                assert_eq!(v.as_ref().unwrap(), "GET, PATCH, patch, PUT");
            }
            Allowed::Any => panic!("methods"),
        }
        match &inner.headers {
            Allowed::List(_, v) => assert_eq!(v.as_ref().unwrap(), "x-custom, content-type"),
            Allowed::Any => panic!("headers"),
        }
        assert_eq!(inner.expose.as_ref().unwrap(), "x-request-id");
        assert_eq!(inner.max_age.as_ref().unwrap(), "600");
    }
}
