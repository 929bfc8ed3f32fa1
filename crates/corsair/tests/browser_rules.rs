//! The browser engine's rules, offline: scripted responses in, requests and verdicts out.
//! Expected messages are the ones the installed Chromium 156 printed for the same exchanges;
//! browser-specific rows are the ones the differential suite found.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod common;
use common::{headers, Pairs};

use corsair::browser::{Blocked, Browser, Credentials, Fetch, Outgoing, Readable, RequestInit};

const PAGE: &str = "http://x.test:8131";
const API: &str = "http://127.0.0.1:8132/s/a";

/// Runs a fetch against scripted responses; returns the requests sent and the verdict.
fn run(
    browser: Browser,
    method: &str,
    req_headers: &[(&str, &str)],
    credentials: Credentials,
    responses: &[(u16, &[(&str, &str)])],
) -> (Vec<Outgoing>, Result<Readable, Blocked>) {
    let init = RequestInit {
        method: method.into(),
        headers: req_headers
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        credentials,
    };
    let mut fetch = Fetch::new(browser, PAGE, API, init).unwrap();
    let mut sent = Vec::new();
    for (status, h) in responses {
        sent.push(fetch.request().expect("a request to send"));
        if let Some(v) = fetch.receive(*status, &headers(h)) {
            assert!(fetch.request().is_none());
            return (sent, v);
        }
    }
    panic!(
        "more requests than scripted responses: {:?}",
        fetch.request()
    );
}

fn blocked_message(r: Result<Readable, Blocked>) -> String {
    match r {
        Err(Blocked::Cors(e)) => e.reason(),
        other => panic!("expected a CORS error, got {other:?}"),
    }
}

const ACAO_ANY: (&str, &str) = ("access-control-allow-origin", "*");
const ACAO_PAGE: (&str, &str) = ("access-control-allow-origin", PAGE);

#[test]
fn allow_origin_messages() {
    let valid = " Have the server send the header with a valid value.";
    let rows: Vec<(Pairs, Credentials, String)> = vec![
        (vec![], Credentials::Omit, "No 'Access-Control-Allow-Origin' header is present on the requested resource.".into()),
        (vec![ACAO_ANY, ACAO_ANY], Credentials::Omit, format!("The 'Access-Control-Allow-Origin' header contains multiple values '*, *', but only one is allowed.{valid}")),
        (vec![("access-control-allow-origin", "not a url")], Credentials::Omit, format!("The 'Access-Control-Allow-Origin' header contains multiple values 'not a url', but only one is allowed.{valid}")),
        (vec![("access-control-allow-origin", "http://other.test")], Credentials::Omit, format!("The 'Access-Control-Allow-Origin' header has a value 'http://other.test' that is not equal to the supplied origin.{valid}")),
        (vec![("access-control-allow-origin", "null")], Credentials::Omit, format!("The 'Access-Control-Allow-Origin' header has a value 'null' that is not equal to the supplied origin.{valid}")),
        (vec![("access-control-allow-origin", "x.test")], Credentials::Omit, format!("The 'Access-Control-Allow-Origin' header contains the invalid value 'x.test'.{valid}")),
        (vec![ACAO_ANY], Credentials::Include, "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'.".into()),
        (vec![ACAO_PAGE], Credentials::Include, "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which must be 'true' when the request's credentials mode is 'include'.".into()),
        (vec![ACAO_PAGE, ("access-control-allow-credentials", "TRUE")], Credentials::Include, "The value of the 'Access-Control-Allow-Credentials' header in the response is 'TRUE' which must be 'true' when the request's credentials mode is 'include'.".into()),
    ];
    for (h, creds, want) in rows {
        let (_, v) = run(Browser::Chromium, "GET", &[], creds, &[(200, &h)]);
        assert_eq!(blocked_message(v), want, "{h:?}");
    }
}

#[test]
fn preflight_messages() {
    let pre = "Response to preflight request doesn't pass access control check: ";
    let rows: Vec<(&str, Pairs, u16, Pairs, String)> = vec![
        ("PUT", vec![], 500, vec![ACAO_ANY], format!("{pre}It does not have HTTP ok status.")),
        ("PUT", vec![], 500, vec![], format!("{pre}No 'Access-Control-Allow-Origin' header is present on the requested resource.")),
        ("PUT", vec![], 302, vec![ACAO_ANY, ("location", "/s/b")], format!("{pre}Redirect is not allowed for a preflight request.")),
        ("PUT", vec![], 204, vec![ACAO_ANY, ("access-control-allow-methods", "P T")], "Cannot parse Access-Control-Allow-Methods response header field in preflight response.".into()),
        ("GET", vec![("x-a", "1")], 204, vec![ACAO_ANY, ("access-control-allow-headers", "x a")], "Cannot parse Access-Control-Allow-Headers response header field in preflight response.".into()),
        // Methods compare case-sensitively.
        ("PUT", vec![], 204, vec![ACAO_ANY, ("access-control-allow-methods", "put")], "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.".into()),
        ("patch", vec![], 204, vec![ACAO_ANY, ("access-control-allow-methods", "PATCH")], "Method patch is not allowed by Access-Control-Allow-Methods in preflight response.".into()),
        // The header name is reported lowercase.
        ("GET", vec![("X-A", "1")], 204, vec![ACAO_ANY, ("access-control-allow-headers", "x-b")], "Request header field x-a is not allowed by Access-Control-Allow-Headers in preflight response.".into()),
    ];
    for (method, req, status, h, want) in rows {
        let (sent, v) = run(
            Browser::Chromium,
            method,
            &req,
            Credentials::Omit,
            &[(status, &h)],
        );
        assert!(sent[0].preflight, "{method} {req:?}");
        assert_eq!(blocked_message(v), want, "{method} {req:?} {h:?}");
    }
}

#[test]
fn the_preflight_request_is_exact() {
    let (sent, _) = run(
        Browser::Chromium,
        "patch",
        &[
            ("X-B", "1"),
            ("x-a", "2"),
            ("Content-Type", "application/json"),
            ("Accept", "text/html"),
            ("Cookie", "dropped"),
        ],
        Credentials::Include,
        &[(500, &[])],
    );
    let p = &sent[0];
    assert_eq!((p.method.as_str(), p.credentials), ("OPTIONS", false));
    assert_eq!(
        p.headers,
        [
            ("Accept".to_owned(), "*/*".to_owned()),
            ("Origin".to_owned(), PAGE.to_owned()),
            (
                "Access-Control-Request-Method".to_owned(),
                "patch".to_owned()
            ),
            (
                "Access-Control-Request-Headers".to_owned(),
                "content-type,x-a,x-b".to_owned()
            ),
        ]
    );
}

#[test]
fn wildcards() {
    // Both installed browsers let `*` cover Authorization, unlike older documents.
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[("authorization", "t"), ("x-a", "1")],
        Credentials::Omit,
        &[
            (204, &[ACAO_ANY, ("access-control-allow-headers", "*")]),
            (200, &[ACAO_ANY]),
        ],
    );
    assert!(v.is_ok(), "{v:?}");
    // With credentials, `*` is a literal name.
    let (_, v) = run(
        Browser::Chromium,
        "PUT",
        &[],
        Credentials::Include,
        &[(
            204,
            &[
                ACAO_PAGE,
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "*"),
            ],
        )],
    );
    assert_eq!(
        blocked_message(v),
        "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response."
    );
    // Empty list elements are fine.
    let (_, v) = run(
        Browser::Chromium,
        "PUT",
        &[],
        Credentials::Omit,
        &[
            (204, &[ACAO_ANY, ("access-control-allow-methods", "PUT,,")]),
            (200, &[ACAO_ANY]),
        ],
    );
    assert!(v.is_ok(), "{v:?}");
}

#[test]
fn exposed_headers() {
    let actual: &[(&str, &str)] = &[
        ACAO_ANY,
        ("access-control-expose-headers", "X-Exposed, set-cookie"),
        ("x-exposed", "1"),
        ("x-hidden", "2"),
        ("content-type", "text/plain"),
        ("set-cookie", "a=b"),
        ("date", "now"),
    ];
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Omit,
        &[(200, actual)],
    );
    assert_eq!(v.unwrap().exposed, ["content-type", "x-exposed"]);
    let star: &[(&str, &str)] = &[
        ACAO_PAGE,
        ("access-control-expose-headers", "*"),
        ("x-hidden", "2"),
        ("set-cookie", "a=b"),
    ];
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Omit,
        &[(200, star)],
    );
    assert_eq!(
        v.unwrap().exposed,
        [
            "access-control-allow-origin",
            "access-control-expose-headers",
            "x-hidden"
        ]
    );
    let with_creds: Vec<(&str, &str)> = star
        .iter()
        .copied()
        .chain([("access-control-allow-credentials", "true")])
        .collect();
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Include,
        &[(200, &with_creds)],
    );
    assert_eq!(v.unwrap().exposed, Vec::<String>::new());
}

#[test]
fn client_hints_are_safelisted_by_chromium_only() {
    let (sent, _) = run(
        Browser::Chromium,
        "GET",
        &[("dpr", "2")],
        Credentials::Omit,
        &[(200, &[ACAO_ANY])],
    );
    assert!(!sent[0].preflight);
    let (sent, _) = run(
        Browser::Firefox,
        "GET",
        &[("dpr", "2")],
        Credentials::Omit,
        &[(500, &[])],
    );
    assert!(sent[0].preflight);
}

#[test]
fn redirects() {
    let other = "http://localhost:8132/s/b";
    // A cross-origin redirect from a cross-origin URL hides the origin: `null` from then on.
    let (sent, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Omit,
        &[
            (302, &[ACAO_PAGE, ("location", other)]),
            (200, &[("access-control-allow-origin", "null")]),
        ],
    );
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(sent[1].headers[0], ("Origin".to_owned(), "null".to_owned()));
    // The failing hop is named, with where the chain started.
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Omit,
        &[
            (307, &[ACAO_ANY, ("location", "/s/b")]),
            (200, &[("access-control-allow-origin", "http://other.test")]),
        ],
    );
    match v {
        Err(Blocked::Cors(e)) => assert_eq!(
            e.to_string(),
            format!("Access to fetch at 'http://127.0.0.1:8132/s/b' (redirected from '{API}') from origin '{PAGE}' has been blocked by CORS policy: The 'Access-Control-Allow-Origin' header has a value 'http://other.test' that is not equal to the supplied origin. Have the server send the header with a valid value.")
        ),
        other => panic!("{other:?}"),
    }
    // Userinfo in a cross-origin location: Chromium prints the location as ''.
    let (_, v) = run(
        Browser::Chromium,
        "GET",
        &[],
        Credentials::Omit,
        &[(
            302,
            &[ACAO_ANY, ("location", "http://user:pw@localhost:8132/s/b")],
        )],
    );
    match v {
        Err(Blocked::Cors(e)) => {
            assert_eq!(e.to_string(), format!("Access to fetch at '{API}' from origin '{PAGE}' has been blocked by CORS policy: Redirect location '' contains a username and password, which is disallowed for cross-origin requests."));
            assert_eq!(e.value(), Some("http://user:pw@localhost:8132/s/b"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn firefox_preflights_every_hop_after_a_preflighted_redirect() {
    let pre: &[(&str, &str)] = &[ACAO_PAGE, ("access-control-allow-methods", "PATCH")];
    // PATCH, 303 to another origin: the redirected GET needs no preflight in Chromium...
    let script: &[(u16, &[(&str, &str)])] = &[
        (204, pre),
        (303, &[ACAO_PAGE, ("location", "http://localhost:8132/s/b")]),
        (204, &[ACAO_PAGE]),
        (200, &[("access-control-allow-origin", "null")]),
    ];
    let (sent, v) = run(
        Browser::Chromium,
        "PATCH",
        &[],
        Credentials::Omit,
        &script[..2]
            .iter()
            .copied()
            .chain([(200, &[("access-control-allow-origin", "null")][..])])
            .collect::<Vec<_>>(),
    );
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(sent.len(), 3);
    assert_eq!((sent[2].method.as_str(), sent[2].preflight), ("GET", false));
    // ...but Firefox preflights it, with the page's origin, then sends `null`.
    let (sent, v) = run(Browser::Firefox, "PATCH", &[], Credentials::Omit, script);
    assert!(v.is_ok(), "{v:?}");
    assert!(sent[2].preflight);
    assert_eq!(sent[2].headers[1], ("Origin".to_owned(), PAGE.to_owned()));
    assert_eq!(
        sent[2].headers[2],
        ("Access-Control-Request-Method".to_owned(), "GET".to_owned())
    );
    assert_eq!(sent[3].headers[0], ("Origin".to_owned(), "null".to_owned()));
}

#[test]
fn invalid_requests_are_refused_before_sending() {
    let init = |m: &str| RequestInit {
        method: m.into(),
        ..Default::default()
    };
    for (origin, url, method) in [
        (PAGE, "ftp://x.test/", "GET"),
        (PAGE, "not a url", "GET"),
        (PAGE, API, "TRACE"),
        (PAGE, API, "GE T"),
        ("no origin", API, "GET"),
    ] {
        assert!(
            Fetch::new(Browser::Chromium, origin, url, init(method)).is_err(),
            "{origin} {url} {method}"
        );
    }
}

#[test]
fn same_origin_requests_need_no_cors() {
    let init = RequestInit {
        method: "DELETE".into(),
        headers: vec![("x-a".into(), "1".into())],
        credentials: Credentials::SameOrigin,
    };
    let mut f = Fetch::new(Browser::Chromium, "http://127.0.0.1:8132", API, init).unwrap();
    let r = f.request().unwrap();
    assert!(!r.preflight && r.credentials);
    let v = f
        .receive(200, &headers(&[("x-anything", "1")]))
        .unwrap()
        .unwrap();
    assert_eq!(v.exposed, ["x-anything"]);
}
