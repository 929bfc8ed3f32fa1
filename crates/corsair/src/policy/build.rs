//! Validation and compilation of a [`PolicyBuilder`]: every rule runs, every problem is kept.

use http::StatusCode;

use super::origin_set::{OriginRequest, OriginSet};
use super::pattern::{OriginPattern, ParsedOrigin, TRUSTED_APP_SCHEMES};
use super::{Compiled, ListSetting, PolicyBuilder};
use crate::error::{ConfigError, ConfigErrors, ConfigNote, ErrorCode};
use crate::server::PolicyValue;
use crate::syntax;

/// The longest preflight cache lifetime accepted: 24 hours, Firefox's own cap.
pub(crate) const MAX_AGE_LIMIT_SECS: u64 = 86_400;

/// Origins under the reserved `.invalid` top-level domain (RFC 6761: never registered, never
/// resolved), in the shapes a careless predicate lets through: an origin predicate that admits
/// any of them admits origins nobody vetted. The `localhost` and `127.0.0.1` labels catch
/// unanchored `starts_with("http://localhost")` and `contains("127.0.0.1")`.
pub(crate) const CANARY_ORIGINS: [&str; 6] = [
    "https://corsair-canary.invalid",
    "http://corsair-canary.invalid",
    "https://x.y.corsair-canary.invalid:8443",
    "http://x.y.invalid:8080",
    "http://localhost.corsair-canary.invalid",
    "https://127.0.0.1.corsair-canary.invalid",
];

/// What validation found: errors, and notes on what was accepted.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) notes: Vec<ConfigNote>,
}

impl Findings {
    fn refuse(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// An error, unless the `dangerously_` option named `option` is on: then a note.
    fn refuse_unless(&mut self, allowed: bool, option: &'static str, error: ConfigError) {
        if allowed {
            self.notes
                .push(ConfigNote::dangerously_allowed(error, option));
        } else {
            self.errors.push(error);
        }
    }
}

pub(crate) fn build(b: &PolicyBuilder) -> Result<Compiled, ConfigErrors> {
    build_noted(b).0
}

/// Validates and compiles once, returning the notes as well (for policy files, which report
/// both).
pub(crate) fn build_noted(b: &PolicyBuilder) -> (Result<Compiled, ConfigErrors>, Vec<ConfigNote>) {
    let mut findings = Findings::default();
    let compiled = check(b, &mut findings);
    let result = if findings.errors.is_empty() {
        Ok(compiled)
    } else {
        Err(ConfigErrors(findings.errors))
    };
    (result, findings.notes)
}

/// Runs every rule, recording every finding; the result is meaningful only without errors.
pub(crate) fn check(b: &PolicyBuilder, findings: &mut Findings) -> Compiled {
    let origins = origins(b, findings);
    let methods = methods(&b.methods, findings);
    let headers = request_headers(&b.headers, findings);
    let expose = exposed_headers(b, findings);

    let max_age = match b.max_age {
        Some(d) if d.as_secs() > MAX_AGE_LIMIT_SECS => {
            findings.refuse(ConfigError::new(
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
            findings.refuse(ConfigError::new(
                ErrorCode::PreflightStatusInvalid,
                "preflight_status",
                Some(&b.preflight_status.to_string()),
                "browsers treat a preflight answered with a status outside 200-299 as failed.",
                "use 204 (the default) or 200.",
            ));
            StatusCode::NO_CONTENT
        }
    };

    // Every `dangerously_` option that is on is noted: with what it waived, or as unused.
    for (on, option) in [
        (
            b.dangerous_credentials_any_origin,
            "dangerously_allow_credentials_with_any_origin",
        ),
        (b.dangerous_null_origin, "dangerously_allow_null_origin"),
        (
            b.dangerous_insecure_origins,
            "dangerously_allow_insecure_origins_with_credentials",
        ),
        (
            b.dangerous_private_network_any_origin,
            "dangerously_allow_private_network_with_any_origin",
        ),
        (
            b.dangerous_private_network_insecure_origins,
            "dangerously_allow_private_network_with_insecure_origins",
        ),
        (
            b.dangerous_public_suffix,
            "dangerously_allow_public_suffix_subdomains",
        ),
        (
            b.dangerous_broad_predicate,
            "dangerously_allow_broad_origin_predicate",
        ),
    ] {
        if on && !findings.notes.iter().any(|n| n.option() == Some(option)) {
            findings.notes.push(ConfigNote::dangerously_unused(option));
        }
    }

    let wildcard_origin = origins.allows_any() && !b.credentials;
    Compiled {
        origins,
        credentials: b.credentials,
        methods,
        headers,
        expose,
        max_age,
        private_network: b.private_network,
        preflight_status,
        wildcard_origin,
    }
}

fn origins(b: &PolicyBuilder, findings: &mut Findings) -> OriginSet {
    const SETTING: &str = "allow_origins";
    let mut parsed: Vec<(&str, OriginPattern)> = Vec::with_capacity(b.origins.len());
    for o in &b.origins {
        match ParsedOrigin::parse(o) {
            Ok(p) => {
                if let Some(e) = p.public_suffix {
                    findings.refuse_unless(
                        b.dangerous_public_suffix,
                        "dangerously_allow_public_suffix_subdomains",
                        e,
                    );
                }
                if let Some(matched) = p.rewritten {
                    findings
                        .notes
                        .push(ConfigNote::origin_rewritten(SETTING, o, matched));
                }
                parsed.push((o, p.pattern));
            }
            Err(e) => findings.refuse(e),
        }
    }
    let has = |want: &OriginPattern| parsed.iter().any(|(_, p)| p == want);
    let any = has(&OriginPattern::Any);
    if any && b.origins.len() > 1 {
        findings.refuse(ConfigError::new(
            ErrorCode::AnyOriginInList,
            SETTING,
            None,
            "`*` allows every origin, so listing others beside it is a mistake in one or the other.",
            "keep either `*` alone or only the specific origins.",
        ));
    }
    if b.origins.is_empty() && b.predicate.is_none() && !b.has_source() {
        findings.refuse(ConfigError::new(
            ErrorCode::NoOrigins,
            SETTING,
            None,
            "no origin is allowed, so the policy would refuse every cross-origin request.",
            "list the origins of the pages that call this server in allow_origins, such as \"https://app.example.com\".",
        ));
    }
    if has(&OriginPattern::Null) {
        findings.refuse_unless(
            b.dangerous_null_origin,
            "dangerously_allow_null_origin",
            ConfigError::new(
                ErrorCode::NullOrigin,
                SETTING,
                Some("null"),
                "sandboxed iframes and file: pages of any site send the origin `null`, so allowing it allows them all.",
                "allow the real origin of the page; if you must, use dangerously_allow_null_origin.",
            ),
        );
    }
    if b.credentials {
        if any {
            findings.refuse_unless(
                b.dangerous_credentials_any_origin,
                "dangerously_allow_credentials_with_any_origin",
                ConfigError::new(
                    ErrorCode::CredentialsWithAnyOrigin,
                    SETTING,
                    Some("*"),
                    "credentials with any origin lets every website read this server's responses with its visitors' cookies.",
                    "list the allowed origins, or turn credentials off; dangerously_allow_credentials_with_any_origin exists for public data only.",
                ),
            );
        }
        for (raw, p) in insecure(&parsed) {
            findings.refuse_unless(
                b.dangerous_insecure_origins,
                "dangerously_allow_insecure_origins_with_credentials",
                insecure_error(
                    ErrorCode::InsecureOriginWithCredentials,
                    raw,
                    p,
                    "with credentials",
                    "dangerously_allow_insecure_origins_with_credentials",
                ),
            );
        }
    }
    if b.private_network {
        if any {
            findings.refuse_unless(
                b.dangerous_private_network_any_origin,
                "dangerously_allow_private_network_with_any_origin",
                ConfigError::new(
                    ErrorCode::PrivateNetworkWithAnyOrigin,
                    "allow_origins",
                    Some("*"),
                    "Private Network Access with any origin lets every public website send requests to this server on its visitors' private networks.",
                    "list the origins of the pages that may reach this server; dangerously_allow_private_network_with_any_origin exists for devices meant to be reached from anywhere.",
                ),
            );
        }
        for (raw, p) in insecure(&parsed) {
            findings.refuse_unless(
                b.dangerous_private_network_insecure_origins,
                "dangerously_allow_private_network_with_insecure_origins",
                insecure_error(
                    ErrorCode::PrivateNetworkWithInsecureOrigin,
                    raw,
                    p,
                    "with Private Network Access",
                    "dangerously_allow_private_network_with_insecure_origins",
                ),
            );
        }
    }
    if let Some(predicate) = &b.predicate {
        if b.credentials || b.private_network {
            // A request-aware predicate is asked as for a request without a host and path, and
            // as for one to a host nobody serves.
            let admits = |c: &&&str| {
                [None, Some("corsair-canary.invalid")]
                    .into_iter()
                    .any(|host| predicate.admits(&OriginRequest::new(c, host, host.map(|_| "/"))))
            };
            if let Some(canary) = CANARY_ORIGINS.iter().find(admits) {
                let grant = if b.credentials {
                    "credentials"
                } else {
                    "Private Network Access"
                };
                findings.refuse_unless(
                    b.dangerous_broad_predicate,
                    "dangerously_allow_broad_origin_predicate",
                    ConfigError::new(
                        ErrorCode::OriginPredicateTooBroad,
                        "allow_origin_predicate",
                        Some(canary),
                        format!("the origin predicate admits an origin under the reserved .invalid domain, which no honest policy allows, so it admits origins nobody vetted, with {grant}."),
                        "anchor the predicate: parse the origin and compare its scheme and whole host, or check that the host ends with \".\" followed by your domain; dangerously_allow_broad_origin_predicate if it must admit unknown origins.",
                    ),
                );
            }
        }
    }
    let patterns: Vec<OriginPattern> = parsed.into_iter().map(|(_, p)| p).collect();
    // Without the `origin-source` feature the handle is `Infallible`, which is `Copy`.
    #[allow(clippy::clone_on_copy)]
    let source = b.source.clone();
    OriginSet::new(&patterns, b.predicate.clone(), source)
}

/// The listed origins that are not trusted with credentials or Private Network Access.
fn insecure<'a>(
    parsed: &'a [(&'a str, OriginPattern)],
) -> impl Iterator<Item = (&'a str, &'a OriginPattern)> + 'a {
    parsed
        .iter()
        .filter(|(_, p)| {
            !matches!(p, OriginPattern::Any | OriginPattern::Null) && !p.is_secure_or_loopback()
        })
        .map(|(raw, p)| (*raw, p))
}

fn insecure_error(
    code: ErrorCode,
    raw: &str,
    p: &OriginPattern,
    grant: &str,
    option: &str,
) -> ConfigError {
    let http = match p {
        OriginPattern::Exact(s) => s.starts_with("http://"),
        OriginPattern::Pattern { scheme, .. } => scheme == "http",
        OriginPattern::Any | OriginPattern::Null => false,
    };
    let message = if http {
        format!("{grant}, a plain-http origin lets anyone on the network path inject script that reads authenticated responses.")
    } else {
        format!(
            "{grant}, only https, loopback http and the extension and app-shell schemes ({}) are trusted: pages of other schemes may come from anywhere.",
            TRUSTED_APP_SCHEMES.join(", ")
        )
    };
    ConfigError::new(
        code,
        "allow_origins",
        Some(raw),
        message,
        format!("use the https origin; for local development, loopback (localhost, 127.0.0.1) is accepted; or {option}."),
    )
}

fn methods(input: &[String], findings: &mut Findings) -> ListSetting {
    const SETTING: &str = "allow_methods";
    let mut out: Vec<Box<str>> = Vec::new();
    // Every entry is validated, those beside `*` too: a typo is a typo whatever else is listed.
    for m in input.iter().filter(|m| *m != "*") {
        if !syntax::is_token(m.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::MethodInvalid,
                SETTING,
                Some(m),
                "a method name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~, no spaces or commas.",
                "write one method per entry, such as \"PUT\".",
            ));
        } else if syntax::is_forbidden_method(m.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::MethodForbidden,
                SETTING,
                Some(m),
                "browsers refuse to send CONNECT, TRACE and TRACK, so allowing them does nothing.",
                "remove it.",
            ));
        } else {
            let normalized = syntax::normalize_method(m);
            let upper = m.to_ascii_uppercase();
            if normalized != m {
                findings.notes.push(ConfigNote::method_case(
                    SETTING,
                    m,
                    format!("browsers upper-case this method and send {normalized}, so it is matched as {normalized}; write \"{normalized}\" so that the configuration and the wire agree."),
                ));
            } else if upper != *m && !input.contains(&upper) {
                findings.notes.push(ConfigNote::method_case(
                    SETTING,
                    m,
                    format!("browsers send this method exactly as the script writes it (they upper-case only DELETE, GET, HEAD, OPTIONS, POST and PUT), so a script writing {upper} is refused; write \"{upper}\" (or list both)."),
                ));
            }
            if !out.iter().any(|x| &**x == normalized) {
                out.push(normalized.into());
            }
        }
    }
    if input.iter().any(|m| m == "*") {
        return ListSetting::Any;
    }
    list(out, ", ")
}

fn request_headers(input: &[String], findings: &mut Findings) -> ListSetting {
    const SETTING: &str = "allow_headers";
    let mut out: Vec<Box<str>> = Vec::new();
    // Every entry is validated, those beside `*` too (`["*", "authorization"]` is the usual
    // spelling for servers that follow the Fetch Standard, where `*` leaves out Authorization).
    for h in input.iter().filter(|h| *h != "*") {
        if !syntax::is_token(h.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::HeaderInvalid,
                SETTING,
                Some(h),
                "a header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~, no spaces, colons or commas.",
                "write the bare name, such as \"x-request-id\", one per entry.",
            ));
        } else if syntax::is_forbidden_request_header(h.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::HeaderForbidden,
                SETTING,
                Some(h),
                "this is a forbidden request header: browsers set it themselves and scripts cannot, so it never needs allowing.",
                "remove it.",
            ));
        } else if syntax::is_cors_protocol_header(h.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::HeaderCorsProtocol,
                SETTING,
                Some(h),
                "Access-Control-* headers are the CORS protocol's own: the server sends the Allow ones, the browser the Request ones; a script that sends one is mistaken, and allowing it hides the mistake.",
                "remove it, and remove the header from the script's request: Access-Control-Allow-* belongs in this server's responses, which the policy sends.",
            ));
        } else {
            let lower = h.to_ascii_lowercase();
            if !out.iter().any(|x| **x == *lower) {
                out.push(lower.into());
            }
        }
    }
    if input.iter().any(|h| h == "*") {
        return ListSetting::Any;
    }
    list(out, ", ")
}

fn exposed_headers(b: &PolicyBuilder, findings: &mut Findings) -> Option<PolicyValue> {
    const SETTING: &str = "expose_headers";
    let mut out: Vec<Box<str>> = Vec::new();
    for h in &b.expose {
        if h == "*" && b.credentials {
            findings.refuse(ConfigError::new(
                ErrorCode::CredentialsWithAnyExposedHeader,
                SETTING,
                Some("*"),
                "with credentials, browsers read `*` as a header literally named `*`, so nothing is exposed.",
                "list the response headers scripts need, such as \"x-request-id\".",
            ));
            continue;
        } else if !syntax::is_token(h.as_bytes()) {
            findings.refuse(ConfigError::new(
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
            findings.refuse(ConfigError::new(
                ErrorCode::ExposedHeaderForbidden,
                SETTING,
                Some(h),
                "browsers never let scripts read Set-Cookie, exposed or not.",
                "remove it; read the cookie's effect through another response header or the body.",
            ));
            continue;
        } else if syntax::is_cors_protocol_header(h.as_bytes()) {
            findings.refuse(ConfigError::new(
                ErrorCode::ExposedHeaderCorsProtocol,
                SETTING,
                Some(h),
                "Access-Control-* headers are the CORS protocol's own, read by the browser to decide whether the script may read the response; exposing them to the script is a mistake.",
                "remove it; expose the application's own headers, such as \"x-request-id\".",
            ));
            continue;
        }
        let lower = h.to_ascii_lowercase();
        if !out.iter().any(|x| **x == *lower) {
            out.push(lower.into());
        }
    }
    match list(out, ", ") {
        ListSetting::List(_, v) => v,
        ListSetting::Any => None,
    }
}

/// A list and its header value, joined by `sep`.
fn list(items: Vec<Box<str>>, sep: &str) -> ListSetting {
    let value = if items.is_empty() {
        None
    } else {
        static_value(&items.join(sep))
    };
    ListSetting::List(items, value)
}

/// The most bytes the interner keeps for the life of the process: 1 MiB, some thousand
/// distinct policies' worth of header values. Past it, values are ordinary reference-counted
/// ones: correct, a few nanoseconds slower to clone, and freed with their policy.
pub(crate) const INTERNED_BYTES_LIMIT: usize = 1 << 20;

/// A header value with a `'static` buffer, so that cloning it on every response is a plain copy
/// rather than an atomic reference count that every core would contend for. Each distinct value
/// is stored once for the life of the process (interned), however often policies are rebuilt,
/// up to [`INTERNED_BYTES_LIMIT`] in all, so reloading ever-new policies cannot grow memory
/// without bound. The same buffer backs the value in every enabled adapter's header type.
/// `None` if `s` is not a valid header value.
pub(crate) fn static_value(s: &str) -> Option<PolicyValue> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static INTERNED: OnceLock<Mutex<(HashSet<&'static str>, usize)>> = OnceLock::new();
    // Validate first: `from_static` would panic on what `from_str` rejects.
    let value = PolicyValue::owned(s)?;
    let mut guard = INTERNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (set, bytes) = &mut *guard;
    let interned: &'static str = match set.get(s) {
        Some(v) => v,
        None if *bytes + s.len() > INTERNED_BYTES_LIMIT => return Some(value),
        None => {
            let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
            set.insert(leaked);
            *bytes += s.len();
            leaked
        }
    };
    Some(PolicyValue::interned(interned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;
    use std::time::Duration;

    fn codes(b: PolicyBuilder) -> Vec<ErrorCode> {
        match b.build() {
            Ok(c) => panic!("expected errors, built {c:?}"),
            Err(e) => e.codes(),
        }
    }

    fn base() -> PolicyBuilder {
        Policy::builder().allow_origins(["https://app.example.com"])
    }

    /// One row per error code: a configuration that produces exactly that code.
    #[test]
    fn every_error_code_has_a_trigger() {
        use ErrorCode::*;
        let rows: Vec<(ErrorCode, PolicyBuilder)> = vec![
            (
                CredentialsWithAnyOrigin,
                Policy::builder()
                    .allow_origins(["*"])
                    .allow_credentials(true),
            ),
            (
                CredentialsWithAnyExposedHeader,
                base().allow_credentials(true).expose_headers(["*"]),
            ),
            (
                InsecureOriginWithCredentials,
                Policy::builder()
                    .allow_origins(["http://app.example.com"])
                    .allow_credentials(true),
            ),
            (NullOrigin, Policy::builder().allow_origins(["null"])),
            (
                AnyOriginInList,
                Policy::builder().allow_origins(["*", "https://a.example"]),
            ),
            (NoOrigins, Policy::builder()),
            (
                OriginInvalid,
                Policy::builder().allow_origins(["app.example.com"]),
            ),
            (
                OriginHasPath,
                Policy::builder().allow_origins(["https://app.example.com/api"]),
            ),
            (
                OriginTrailingSlash,
                Policy::builder().allow_origins(["https://app.example.com/"]),
            ),
            (
                OriginHasQuery,
                Policy::builder().allow_origins(["https://app.example.com?x=1"]),
            ),
            (
                OriginHasFragment,
                Policy::builder().allow_origins(["https://app.example.com#x"]),
            ),
            (
                OriginHasUserinfo,
                Policy::builder().allow_origins(["https://me@app.example.com"]),
            ),
            (
                OriginUppercase,
                Policy::builder().allow_origins(["https://App.example.com"]),
            ),
            (
                OriginDefaultPort,
                Policy::builder().allow_origins(["https://app.example.com:443"]),
            ),
            (
                OriginUnsupportedScheme,
                Policy::builder().allow_origins(["file://"]),
            ),
            (
                OriginBadWildcard,
                Policy::builder().allow_origins(["https://*app.example.com"]),
            ),
            (
                PatternOverPublicSuffix,
                Policy::builder().allow_origins(["https://*.github.io"]),
            ),
            (
                PatternOverIpAddress,
                Policy::builder().allow_origins(["https://*.10.0.0.1"]),
            ),
            (
                OriginPortInvalid,
                Policy::builder().allow_origins(["http://localhost:0"]),
            ),
            (
                OriginHostTooLong,
                Policy::builder().allow_origins([format!("https://{}.example", "a".repeat(64))]),
            ),
            (
                OriginEmptyLabel,
                Policy::builder().allow_origins(["https://example..com"]),
            ),
            (
                OriginSchemeTooLong,
                Policy::builder().allow_origins([format!("{}://app", "x".repeat(33))]),
            ),
            (
                PrivateNetworkWithAnyOrigin,
                Policy::builder()
                    .allow_origins(["*"])
                    .allow_private_network(true),
            ),
            (
                PrivateNetworkWithInsecureOrigin,
                Policy::builder()
                    .allow_origins(["http://app.example.com"])
                    .allow_private_network(true),
            ),
            (
                OriginPredicateTooBroad,
                base()
                    .allow_origin_predicate(|_| true)
                    .allow_credentials(true),
            ),
            (MethodInvalid, base().allow_methods(["GET, POST"])),
            (MethodForbidden, base().allow_methods(["CONNECT"])),
            (HeaderInvalid, base().allow_headers(["x-a: b"])),
            (HeaderForbidden, base().allow_headers(["cookie"])),
            (
                HeaderCorsProtocol,
                base().allow_headers(["Access-Control-Allow-Origin"]),
            ),
            (ExposedHeaderInvalid, base().expose_headers(["x a"])),
            (
                ExposedHeaderCorsProtocol,
                base().expose_headers(["Access-Control-Request-Method"]),
            ),
            (
                ExposedHeaderForbidden,
                base().expose_headers(["Set-Cookie"]),
            ),
            (MaxAgeTooLarge, base().max_age(Duration::from_secs(86_401))),
            (PreflightStatusInvalid, base().preflight_status(302)),
        ];
        let covered: Vec<ErrorCode> = rows.iter().map(|(c, _)| *c).collect();
        // Policy-file codes are triggered by the config module's tests.
        let file_codes = [
            UnknownKey,
            InvalidFile,
            RoutePathInvalid,
            RouteShadowed,
            UpstreamInvalid,
        ];
        for code in ErrorCode::ALL.iter().filter(|c| !file_codes.contains(c)) {
            assert!(covered.contains(code), "no test row for {code}");
        }
        for (code, builder) in rows {
            assert_eq!(codes(builder), vec![code], "{code}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let b = Policy::builder()
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
    fn notes_carry_value_setting_and_message() {
        let notes = Policy::builder()
            .allow_origins(["http://127.1:8000", "null"])
            .dangerously_allow_null_origin(true)
            .notes();
        let shown: Vec<String> = notes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "allow_origins [origin-rewritten]: \"http://127.1:8000\": matched as \
                 http://127.0.0.1:8000, the form browsers send in `Origin`; write it that way so \
                 that the configuration and the wire agree.",
                "allow_origins [dangerously-allowed]: \"null\": [null-origin] allowed by \
                 dangerously_allow_null_origin although sandboxed iframes and file: pages of any \
                 site send the origin `null`, so allowing it allows them all.",
            ]
        );
        // A clean policy has no notes; a refused one still has its notes.
        assert!(base().notes().is_empty());
        let b = Policy::builder().allow_origins(["https://bücher.example", "https://a.example/"]);
        assert!(b.build().is_err());
        assert_eq!(
            b.notes()
                .iter()
                .map(|n| n.rewritten().unwrap())
                .collect::<Vec<_>>(),
            ["https://xn--bcher-kva.example"]
        );
    }

    #[test]
    fn errors_carry_value_setting_and_fix() {
        let e = Policy::builder()
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
        assert!(Policy::builder()
            .allow_origins(["*"])
            .allow_credentials(true)
            .dangerously_allow_credentials_with_any_origin(true)
            .build()
            .is_ok());
        assert!(Policy::builder()
            .allow_origins(["null"])
            .dangerously_allow_null_origin(true)
            .build()
            .is_ok());
        assert!(Policy::builder()
            .allow_origins(["http://app.example.com"])
            .allow_credentials(true)
            .dangerously_allow_insecure_origins_with_credentials(true)
            .build()
            .is_ok());
        // Each one unlocks only its own rule.
        assert_eq!(
            codes(
                Policy::builder()
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
                Policy::builder()
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
            ListSetting::List(m, v) => {
                assert_eq!(
                    m.iter().map(|s| &**s).collect::<Vec<_>>(),
                    ["GET", "PATCH", "patch", "PUT"]
                );
                assert_eq!(v.as_ref().unwrap(), "GET, PATCH, patch, PUT");
            }
            ListSetting::Any => panic!("methods"),
        }
        match &inner.headers {
            ListSetting::List(_, v) => assert_eq!(v.as_ref().unwrap(), "x-custom, content-type"),
            ListSetting::Any => panic!("headers"),
        }
        assert_eq!(inner.expose.as_ref().unwrap(), "x-request-id");
        assert_eq!(inner.max_age.as_ref().unwrap(), "600");
    }

    fn builds(b: PolicyBuilder) -> bool {
        b.build().is_ok()
    }

    /// Issue 8, hole 2: "A predicate can admit everything with credentials".
    #[test]
    fn predicate_admitting_everything_with_credentials_is_refused() {
        type Predicate = fn(&str) -> bool;
        // The classic unanchored predicates, each of which admits an attacker's domain.
        let broad: [(&str, Predicate); 6] = [
            ("everything", |_| true),
            ("anything non-empty", |o| !o.is_empty()),
            ("any https", |o| o.starts_with("https://")),
            ("unanchored localhost", |o| {
                o.starts_with("http://localhost")
            }),
            ("substring localhost", |o| o.contains("localhost")),
            ("substring 127.0.0.1", |o| o.contains("127.0.0.1")),
        ];
        for (name, p) in broad {
            let b = || Policy::builder().allow_origin_predicate(p);
            assert_eq!(
                codes(b().allow_credentials(true)),
                [ErrorCode::OriginPredicateTooBroad],
                "{name}"
            );
            assert_eq!(
                codes(b().allow_private_network(true)),
                [ErrorCode::OriginPredicateTooBroad],
                "{name} with private network access"
            );
            // Without credentials or private network access a broad predicate is `*` spelled
            // another way: allowed, as `*` is.
            assert!(builds(b()), "{name} without credentials");
            let waived = b()
                .allow_credentials(true)
                .dangerously_allow_broad_origin_predicate(true);
            assert!(builds(waived.clone()), "{name} with the option");
            let notes = waived.notes();
            assert_eq!(notes.len(), 1, "{name}");
            assert_eq!(
                (notes[0].refused(), notes[0].option()),
                (
                    Some(ErrorCode::OriginPredicateTooBroad),
                    Some("dangerously_allow_broad_origin_predicate")
                )
            );
        }
        // Anchored predicates pass.
        let anchored: [Predicate; 3] = [
            |o| o == "https://app.example.com",
            |o| {
                crate::origin::RequestOrigin::parse(o.as_bytes())
                    .is_some_and(|o| o.scheme() == "https" && o.host().ends_with(".example.com"))
            },
            |o| o.starts_with("http://localhost:") || o == "http://localhost",
        ];
        for p in anchored {
            assert!(builds(
                Policy::builder()
                    .allow_origin_predicate(p)
                    .allow_credentials(true)
                    .allow_private_network(true)
            ));
        }
    }

    #[test]
    fn cors_protocol_headers_are_refused_in_both_lists() {
        for h in [
            "Access-Control-Allow-Origin",
            "access-control-allow-credentials",
            "Access-Control-Expose-Headers",
            "Access-Control-Max-Age",
            "Access-Control-Request-Private-Network",
        ] {
            assert_eq!(
                codes(base().allow_headers([h])),
                [ErrorCode::HeaderCorsProtocol],
                "{h}"
            );
            assert_eq!(
                codes(base().expose_headers([h])),
                [ErrorCode::ExposedHeaderCorsProtocol],
                "{h}"
            );
        }
        // The Fetch Standard's forbidden request-header names keep their own code.
        for h in [
            "Origin",
            "Access-Control-Request-Method",
            "access-control-request-headers",
            "Proxy-Authorization",
            "Sec-Fetch-Mode",
            "Cookie",
            "Host",
        ] {
            assert_eq!(
                codes(base().allow_headers([h])),
                [ErrorCode::HeaderForbidden],
                "{h}"
            );
        }
        for h in ["Set-Cookie", "set-cookie2"] {
            assert_eq!(
                codes(base().expose_headers([h])),
                [ErrorCode::ExposedHeaderForbidden],
                "{h}"
            );
        }
        // Names that merely resemble the protocol's are the application's own.
        assert!(builds(
            base()
                .allow_headers(["x-access-control", "access-controlled"])
                .expose_headers(["x-access-control-allow-origin"])
        ));
    }

    #[test]
    fn entries_beside_a_wildcard_are_validated() {
        use ErrorCode::*;
        assert_eq!(
            codes(base().allow_methods(["*", "TRACE", "bad method"])),
            [MethodForbidden, MethodInvalid]
        );
        assert_eq!(
            codes(base().allow_methods(["GET", "*", "CONNECT"])),
            [MethodForbidden]
        );
        assert_eq!(
            codes(base().allow_headers(["*", "cookie", "x a", "access-control-allow-origin"])),
            [HeaderForbidden, HeaderInvalid, HeaderCorsProtocol]
        );
        // Valid entries beside `*` are redundant, not wrong: `["*", "authorization"]` is how the
        // Fetch Standard's `*` (which leaves out Authorization) is usually completed.
        let c = base()
            .allow_methods(["*", "PUT"])
            .allow_headers(["*", "authorization"])
            .build()
            .unwrap();
        assert!(matches!(c.inner.methods, ListSetting::Any));
        assert!(matches!(c.inner.headers, ListSetting::Any));
    }

    #[test]
    fn private_network_access_needs_trusted_listed_origins() {
        use ErrorCode::*;
        let pna = |origins: &[&str]| {
            Policy::builder()
                .allow_origins(origins.to_vec())
                .allow_private_network(true)
        };
        for ok in [
            &["https://app.example.com"][..],
            &["http://localhost:*", "http://127.0.0.1:3000"],
            &["chrome-extension://abcdefghijklmnop"],
            &["https://*.example.com"],
        ] {
            assert!(builds(pna(ok)), "{ok:?}");
        }
        assert_eq!(codes(pna(&["*"])), [PrivateNetworkWithAnyOrigin]);
        assert_eq!(
            codes(pna(&[
                "http://app.example.com",
                "http://*.example.org",
                "app://x"
            ])),
            [
                PrivateNetworkWithInsecureOrigin,
                PrivateNetworkWithInsecureOrigin,
                PrivateNetworkWithInsecureOrigin
            ]
        );
        // Each option waives only its own rule.
        assert!(builds(
            pna(&["*"]).dangerously_allow_private_network_with_any_origin(true)
        ));
        assert!(builds(
            pna(&["http://app.example.com"])
                .dangerously_allow_private_network_with_insecure_origins(true)
        ));
        assert_eq!(
            codes(
                pna(&["http://app.example.com"])
                    .dangerously_allow_private_network_with_any_origin(true)
                    .dangerously_allow_insecure_origins_with_credentials(true)
            ),
            [PrivateNetworkWithInsecureOrigin]
        );
        assert_eq!(
            codes(
                pna(&["*"])
                    .dangerously_allow_private_network_with_insecure_origins(true)
                    .allow_credentials(true)
                    .dangerously_allow_credentials_with_any_origin(true)
            ),
            [PrivateNetworkWithAnyOrigin]
        );
    }

    #[test]
    fn trusted_schemes_with_credentials() {
        let creds = |o: &str| Policy::builder().allow_origins([o]).allow_credentials(true);
        for trusted in [
            "https://app.example.com",
            "http://localhost:8000",
            "http://tauri.localhost",
            "chrome-extension://abcdefghijklmnop",
            "moz-extension://0d0b4d2c-8c57-4a0c-9d5e-1b7a2f6c3e1a",
            "safari-web-extension://0d0b4d2c-8c57-4a0c-9d5e-1b7a2f6c3e1a",
            "isolated-app://aerugqztij5biqquuk3mfwpsaibuegaqcitgfchwuosuofdjabzqaaic",
            "tauri://localhost",
            "capacitor://localhost",
            "ionic://localhost",
        ] {
            assert!(builds(creds(trusted)), "{trusted}");
        }
        for untrusted in [
            "http://app.example.com",
            "http://192.168.1.10:8080",
            "app://my-electron-app",
            "x-custom://host",
            "vscode-webview://abcdef",
        ] {
            assert_eq!(
                codes(creds(untrusted)),
                [ErrorCode::InsecureOriginWithCredentials],
                "{untrusted}"
            );
            assert!(
                builds(creds(untrusted).dangerously_allow_insecure_origins_with_credentials(true)),
                "{untrusted}"
            );
        }
    }

    #[test]
    fn public_suffix_patterns_need_their_option_and_registry_suffixes_stay_refused() {
        let b = |o: &str| Policy::builder().allow_origins([o]);
        for private in [
            "https://*.vercel.app",
            "https://*.github.io",
            "https://*.myshopify.com",
        ] {
            let e = b(private).build().unwrap_err();
            assert_eq!(e.codes(), [ErrorCode::PatternOverPublicSuffix], "{private}");
            assert!(
                e.errors()[0].message().contains("anyone can register"),
                "{e}"
            );
            assert!(
                e.errors()[0]
                    .fix()
                    .contains("dangerously_allow_public_suffix_subdomains"),
                "{e}"
            );
            let waived = b(private).dangerously_allow_public_suffix_subdomains(true);
            assert!(builds(waived.clone()), "{private}");
            let notes = waived.notes();
            assert_eq!(
                notes.iter().map(|n| n.refused()).collect::<Vec<_>>(),
                [Some(ErrorCode::PatternOverPublicSuffix)],
                "{private}"
            );
        }
        for registry in [
            "https://*.com",
            "https://*.co.uk",
            "https://*.test",
            "https://*.app",
        ] {
            let e = codes(b(registry).dangerously_allow_public_suffix_subdomains(true));
            assert_eq!(e, [ErrorCode::PatternOverPublicSuffix], "{registry}");
        }
        // Subdomains of a name below a public suffix are fine without any option.
        assert!(builds(b("https://*.me.github.io")));
    }

    #[test]
    fn origins_browsers_spell_differently_are_noted() {
        let b = Policy::builder().allow_origins([
            "https://app.example.com",
            "http://127.1",
            "http://localhost:06060",
            "http://[::ffff:127.0.0.1]:8000",
            "https://bücher.example",
            "https://example.com.",
            "https://*.example.org.:*",
        ]);
        let c = b.build().unwrap();
        let rewrites: Vec<(String, String)> = b
            .notes()
            .into_iter()
            .map(|n| {
                assert_eq!(n.code(), crate::NoteCode::OriginRewritten);
                assert_eq!(n.setting(), "allow_origins");
                (
                    n.value().unwrap().to_owned(),
                    n.rewritten().unwrap().to_owned(),
                )
            })
            .collect();
        let want = [
            ("http://127.1", "http://127.0.0.1"),
            ("http://localhost:06060", "http://localhost:6060"),
            (
                "http://[::ffff:127.0.0.1]:8000",
                "http://[::ffff:7f00:1]:8000",
            ),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
            ("https://example.com.", "https://example.com"),
            ("https://*.example.org.:*", "https://*.example.org:*"),
        ];
        assert_eq!(rewrites, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
        // What browsers send is what matches.
        use crate::policy::origin_set::OriginMatch::Allowed;
        for (_, sent) in &want[..5] {
            assert_eq!(
                c.inner
                    .origins
                    .lookup(sent.as_bytes(), &Default::default(), true),
                Allowed,
                "{sent}"
            );
        }
        assert_eq!(
            c.inner
                .origins
                .lookup(b"https://a.example.org:8443", &Default::default(), true),
            Allowed
        );
    }

    #[test]
    fn new_problems_are_reported_with_the_others() {
        use ErrorCode::*;
        let b = Policy::builder()
            .allow_origins([
                "https://a..example",
                "http://b.example:0",
                "https://*.com",
                "*",
            ])
            .allow_origin_predicate(|_| true)
            .allow_headers(["access-control-allow-origin", "x-ok"])
            .expose_headers(["access-control-allow-origin"])
            .allow_private_network(true);
        assert_eq!(
            codes(b),
            vec![
                OriginEmptyLabel,
                OriginPortInvalid,
                PatternOverPublicSuffix,
                AnyOriginInList,
                PrivateNetworkWithAnyOrigin,
                OriginPredicateTooBroad,
                HeaderCorsProtocol,
                ExposedHeaderCorsProtocol,
            ]
        );
    }

    /// Issue 9: reloading ever-new policies must not grow the interner without bound. Past its
    /// limit, values are still right, only no longer interned.
    #[test]
    fn the_interner_is_bounded() {
        let value = "x".repeat(64 * 1024);
        // 20 distinct 64 KiB values: more than the limit holds.
        let mut interned = 0;
        for i in 0..20 {
            let s = format!("{i:02}{value}");
            let v = static_value(&s).unwrap();
            assert_eq!(v, s.as_str());
            // An interned value is the same 'static buffer every time it is asked for.
            let again = static_value(&s).unwrap();
            if std::ptr::eq(v.as_bytes().as_ptr(), again.as_bytes().as_ptr()) {
                interned += 1;
            }
        }
        assert!(interned >= 1, "nothing was interned");
        assert!(
            interned * value.len() <= INTERNED_BYTES_LIMIT,
            "{interned} values of 64 KiB interned, over the limit"
        );
        assert!(interned < 20);
    }

    /// Issue 15: methods that browsers never send as written are noted, each once.
    #[test]
    fn methods_in_another_case_are_noted() {
        let b = base().allow_methods(["get", "patch", "Put", "PATCH", "Merge", "DELETE"]);
        let notes: Vec<(String, String)> = b
            .notes()
            .into_iter()
            .map(|n| {
                assert_eq!(n.code(), crate::NoteCode::MethodCase);
                assert_eq!(n.setting(), "allow_methods");
                (n.value().unwrap().to_owned(), n.message().to_owned())
            })
            .collect();
        let values: Vec<&str> = notes.iter().map(|(v, _)| v.as_str()).collect();
        // `patch` is listed beside `PATCH` on purpose: no note.
        assert_eq!(values, ["get", "Put", "Merge"]);
        assert!(notes[0].1.contains("send GET"), "{}", notes[0].1);
        assert!(
            notes[2].1.contains("a script writing MERGE is refused"),
            "{}",
            notes[2].1
        );
        assert!(base().allow_methods(["GET", "PATCH"]).notes().is_empty());
    }

    /// Issue 15: every `dangerously_` option that is on is noted, also when it waives nothing.
    #[test]
    fn dangerous_options_that_waive_nothing_are_noted() {
        let b = base()
            .dangerously_allow_null_origin(true)
            .dangerously_allow_public_suffix_subdomains(true);
        let notes: Vec<(crate::NoteCode, &str)> =
            b.notes().iter().map(|n| (n.code(), n.setting())).collect();
        assert_eq!(
            notes,
            [
                (
                    crate::NoteCode::DangerouslyUnused,
                    "dangerously_allow_null_origin"
                ),
                (
                    crate::NoteCode::DangerouslyUnused,
                    "dangerously_allow_public_suffix_subdomains"
                ),
            ]
        );
        // One that waives something is noted once, as the grant.
        let b = Policy::builder()
            .allow_origins(["null"])
            .dangerously_allow_null_origin(true);
        let codes: Vec<crate::NoteCode> = b.notes().iter().map(|n| n.code()).collect();
        assert_eq!(codes, [crate::NoteCode::DangerouslyAllowed]);
    }
}
