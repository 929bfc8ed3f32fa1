//! The policies the demo's API can serve, and what each one teaches: pure functions, no I/O.
//!
//! Four are corsair policies, built with [`Policy::builder`] and served through
//! [`corsair::tower::CorsLayer`]. Two are mistakes corsair refuses to make (`*` with credentials,
//! no `Vary`): the demo serves those with raw headers, the way a misconfigured server would.

use std::time::Duration;

use corsair::server::{Action, Outcome};
use corsair::{ConfigErrors, Policy};
use http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{Method, StatusCode};

/// The methods the correct policy allows.
pub const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
/// The request headers the correct policy allows.
pub const HEADERS: [&str; 2] = ["Content-Type", "X-Request-Id"];
/// An origin that is not the page's, for the "origin missing" mistake.
pub const OTHER_ORIGIN: &str = "http://localhost:3000";

/// One policy the API can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The page's origin, its methods and headers, credentials: everything works.
    Correct,
    /// Another origin instead of the page's.
    OriginMissing,
    /// `PUT` left out of the methods.
    MethodMissing,
    /// `X-Request-Id` left out of the headers.
    HeaderMissing,
    /// `Access-Control-Allow-Origin: *` with `Access-Control-Allow-Credentials: true`.
    WildcardWithCredentials,
    /// The page's origin echoed, without `Vary: Origin`.
    NoVary,
}

/// Every scenario, in the order the page lists them.
pub const ALL: [Scenario; 6] = [
    Scenario::Correct,
    Scenario::OriginMissing,
    Scenario::MethodMissing,
    Scenario::HeaderMissing,
    Scenario::WildcardWithCredentials,
    Scenario::NoVary,
];

/// How the API answers a request under a scenario.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None`: forward to the handler (200 with its body); `Some`: answer now, empty body.
    pub respond: Option<StatusCode>,
    /// The CORS headers on the response.
    pub headers: HeaderMap,
    /// The server's decision, in words: `allowed`, `not a CORS request`, or the refusal's reason.
    pub decision: String,
}

impl Scenario {
    /// The stable name the page and the command line use.
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Correct => "correct",
            Scenario::OriginMissing => "origin-missing",
            Scenario::MethodMissing => "method-missing",
            Scenario::HeaderMissing => "header-missing",
            Scenario::WildcardWithCredentials => "wildcard-credentials",
            Scenario::NoVary => "no-vary",
        }
    }

    /// The scenario of a name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        ALL.into_iter().find(|s| s.name() == name)
    }

    /// A short title for the policy panel.
    pub const fn title(self) -> &'static str {
        match self {
            Scenario::Correct => "Correct policy",
            Scenario::OriginMissing => "The page's origin is missing",
            Scenario::MethodMissing => "PUT is missing from the methods",
            Scenario::HeaderMissing => "X-Request-Id is missing from the headers",
            Scenario::WildcardWithCredentials => "* with credentials",
            Scenario::NoVary => "No Vary: Origin",
        }
    }

    /// Whether corsair serves this scenario (`false`: raw headers, as a misconfigured server).
    pub const fn served_by_corsair(self) -> bool {
        !matches!(self, Scenario::WildcardWithCredentials | Scenario::NoVary)
    }

    /// The corsair policy of this scenario for a page of `origin`; `None` for the raw ones.
    ///
    /// # Errors
    /// When `origin` is not an origin corsair accepts.
    pub fn policy(self, origin: &str) -> Result<Option<Policy>, ConfigErrors> {
        let methods: &[&str] = match self {
            Scenario::MethodMissing => &["GET", "POST", "DELETE"],
            _ => &METHODS,
        };
        let headers: &[&str] = match self {
            Scenario::HeaderMissing => &["Content-Type"],
            _ => &HEADERS,
        };
        let origin = match self {
            Scenario::OriginMissing => OTHER_ORIGIN,
            Scenario::WildcardWithCredentials | Scenario::NoVary => return Ok(None),
            _ => origin,
        };
        Policy::builder()
            .allow_origins([origin])
            .allow_methods(methods.iter().copied())
            .allow_headers(headers.iter().copied())
            .allow_credentials(true)
            // Every click shows its preflight: nothing is cached between policy switches.
            .max_age(Duration::ZERO)
            .build()
            .map(Some)
    }

    /// How the API answers `method` with `headers` (the request's) for a page of `origin`,
    /// using the scenario's policy when it has one. The same function serves real requests and
    /// predictions, so the page's prediction and the API's behaviour cannot drift apart.
    pub fn answer(self, policy: Option<&Policy>, method: &Method, headers: &HeaderMap) -> Answer {
        if let Some(policy) = policy {
            let decision = policy.decide(method, headers);
            let words = match decision.outcome() {
                Outcome::NotCors => "not a CORS request (no Origin)".to_owned(),
                Outcome::Allowed => "allowed".to_owned(),
                Outcome::Rejected(r) => format!("refused: {r}"),
            };
            let (action, cors) = decision.into_parts();
            let mut out = HeaderMap::new();
            cors.apply(&mut out);
            let respond = match action {
                Action::Forward => None,
                Action::Respond(status) => Some(status),
            };
            return Answer {
                respond,
                headers: out,
                decision: words,
            };
        }
        raw_answer(self, method, headers)
    }
}

/// What a hand-written, misconfigured server sends: no checks at all.
fn raw_answer(scenario: Scenario, method: &Method, headers: &HeaderMap) -> Answer {
    let mut out = HeaderMap::new();
    let origin = headers.get(ORIGIN).cloned();
    let preflight = method == Method::OPTIONS
        && origin.is_some()
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let allow_origin = match scenario {
        Scenario::WildcardWithCredentials => Some(HeaderValue::from_static("*")),
        _ => origin.clone(),
    };
    if let Some(v) = allow_origin {
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if preflight {
            out.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PUT, DELETE"),
            );
            out.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Content-Type, X-Request-Id"),
            );
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("0"));
        }
    }
    let decision = match (&origin, scenario) {
        (None, _) => "not a CORS request (no Origin); raw headers, no checks",
        (Some(_), Scenario::WildcardWithCredentials) => {
            "raw headers: * and credentials for everyone (corsair refuses to build this)"
        }
        (Some(_), _) => "raw headers: Origin echoed, no Vary (corsair always sends Vary)",
    };
    Answer {
        respond: preflight.then_some(StatusCode::NO_CONTENT),
        headers: out,
        decision: decision.to_owned(),
    }
}

/// What the policy panel shows for a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    /// What goes wrong, in words.
    pub failure: &'static str,
    /// Which of the page's requests it breaks, by id (the page's buttons).
    pub breaks: &'static str,
    /// The fix with corsair's builder.
    pub fix_builder: String,
    /// The fix in a policy file.
    pub fix_file: String,
}

/// The lesson of a scenario, for a page of `origin`.
pub fn lesson(scenario: Scenario, origin: &str) -> Lesson {
    let builder = format!(
        "Policy::builder()\n    .allow_origins([\"{origin}\"])\n    .allow_methods([\"GET\", \"POST\", \"PUT\", \"DELETE\"])\n    .allow_headers([\"Content-Type\", \"X-Request-Id\"])\n    .allow_credentials(true)\n    .build()?"
    );
    let file = format!(
        "allow_origins = [\"{origin}\"]\nallow_methods = [\"GET\", \"POST\", \"PUT\", \"DELETE\"]\nallow_headers = [\"Content-Type\", \"X-Request-Id\"]\nallow_credentials = true"
    );
    let (failure, breaks, fix_builder, fix_file) = match scenario {
        Scenario::Correct => (
            "Nothing fails: every request from the page is allowed. The composed request fails only if you ask for something the policy does not list.",
            "",
            builder,
            file,
        ),
        Scenario::OriginMissing => (
            "The API allows http://localhost:3000, not the page's origin. It sends no Access-Control-Allow-Origin to this page, so the browser blocks every request: the simple ones after the server has run them, the preflighted ones at the preflight (answered 403).",
            "simple-get",
            format!("// was .allow_origins([\"{OTHER_ORIGIN}\"])\n.allow_origins([\"{OTHER_ORIGIN}\", \"{origin}\"])"),
            format!("# was allow_origins = [\"{OTHER_ORIGIN}\"]\nallow_origins = [\"{OTHER_ORIGIN}\", \"{origin}\"]"),
        ),
        Scenario::MethodMissing => (
            "The preflight of PUT lists GET, POST, DELETE: the browser never sends the PUT. GET, POST and DELETE still work.",
            "put",
            "// was .allow_methods([\"GET\", \"POST\", \"DELETE\"])\n.allow_methods([\"GET\", \"POST\", \"PUT\", \"DELETE\"])".to_owned(),
            "# was allow_methods = [\"GET\", \"POST\", \"DELETE\"]\nallow_methods = [\"GET\", \"POST\", \"PUT\", \"DELETE\"]".to_owned(),
        ),
        Scenario::HeaderMissing => (
            "The DELETE sets X-Request-Id, which the preflight's Access-Control-Allow-Headers does not list: the browser never sends the DELETE. Requests without the header still work.",
            "delete-header",
            "// was .allow_headers([\"Content-Type\"])\n.allow_headers([\"Content-Type\", \"X-Request-Id\"])".to_owned(),
            "# was allow_headers = [\"Content-Type\"]\nallow_headers = [\"Content-Type\", \"X-Request-Id\"]".to_owned(),
        ),
        Scenario::WildcardWithCredentials => (
            "The server sends Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true. Browsers refuse * for a request with credentials, so the credentialed request is blocked; requests without credentials work. corsair refuses to build this policy (error credentials-with-any-origin).",
            "credentialed",
            format!("// corsair refuses .allow_origins([\"*\"]).allow_credentials(true); name the origins:\n.allow_origins([\"{origin}\"])\n.allow_credentials(true)"),
            format!("# `corsair lint` reports allow_origins = [\"*\"] with credentials; name the origins:\nallow_origins = [\"{origin}\"]\nallow_credentials = true"),
        ),
        Scenario::NoVary => (
            "Every request from this page works: the failure needs a cache. The server echoes the Origin without Vary: Origin, so a shared cache (CDN, proxy) or the browser's HTTP cache may hand the answer made for one origin, or for a request without Origin, to another page, which is then blocked with \"has a value … that is not equal to the supplied origin\" or \"No 'Access-Control-Allow-Origin' header is present\". corsair always sends Vary, so the demo's API serves this by hand (and no-store, so this page is never the victim).",
            "",
            "// corsair sends Vary: Origin on every response whose answer depends on the origin;\n// serve the API through corsair instead of writing the headers by hand:\n.layer(CorsLayer::new(policy))".to_owned(),
            "# nothing to write: corsair adds Vary: Origin itself;\n# `corsair proxy --config policy.toml` puts it in front of a hand-written server".to_owned(),
        ),
    };
    Lesson {
        failure,
        breaks,
        fix_builder,
        fix_file,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(method: &str, pairs: &[(&str, &str)]) -> (Method, HeaderMap) {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        (method.parse().unwrap(), h)
    }

    const PAGE: &str = "http://localhost:8000";

    #[test]
    fn names_round_trip_and_are_distinct() {
        for s in ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("nonsense"), None);
    }

    #[test]
    fn corsair_scenarios_build_for_the_page_and_raw_ones_do_not() {
        for s in ALL {
            let p = s.policy(PAGE).unwrap();
            assert_eq!(p.is_some(), s.served_by_corsair(), "{s:?}");
        }
        assert!(Scenario::Correct.policy("not an origin").is_err());
    }

    #[test]
    fn wildcard_with_credentials_sends_both_headers() {
        let (m, h) = request("GET", &[("origin", PAGE)]);
        let a = Scenario::WildcardWithCredentials.answer(None, &m, &h);
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(a.headers["access-control-allow-credentials"], "true");
        assert!(a.respond.is_none());
    }

    #[test]
    fn no_vary_echoes_the_origin_and_sends_no_vary() {
        let (m, h) = request(
            "OPTIONS",
            &[("origin", PAGE), ("access-control-request-method", "PUT")],
        );
        let a = Scenario::NoVary.answer(None, &m, &h);
        assert_eq!(a.respond, Some(StatusCode::NO_CONTENT));
        assert_eq!(a.headers["access-control-allow-origin"], PAGE);
        assert!(!a.headers.contains_key("vary"));
    }

    #[test]
    fn method_missing_policy_answers_the_put_preflight_without_put() {
        let p = Scenario::MethodMissing.policy(PAGE).unwrap();
        let (m, h) = request(
            "OPTIONS",
            &[("origin", PAGE), ("access-control-request-method", "PUT")],
        );
        let a = Scenario::MethodMissing.answer(p.as_ref(), &m, &h);
        assert_eq!(a.decision, "refused: method-not-allowed");
        assert_eq!(
            a.headers["access-control-allow-methods"],
            "GET, POST, DELETE"
        );
    }
}
