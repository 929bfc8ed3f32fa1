//! An adversarial `Origin` corpus (tests/data/adversarial_origins.txt: prefix, suffix and
//! substring tricks, unescaped dots, the special characters browsers accept in hosts, Unicode and
//! punycode look-alikes, mixed case, ports, trailing dots, userinfo, control and non-UTF-8 bytes,
//! very long values, several `Origin` headers) sent through the tower layer to exact, subdomain,
//! port-pattern and predicate policies, as a simple request and as a preflight. The oracle
//! (fuzz/src/oracle.rs) says what each policy means to allow: zero bypasses, no status of 500
//! or above, and every legitimate origin of the corpus is granted where it is meant to be.
#![cfg(all(feature = "tower", feature = "serde"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[allow(dead_code)]
#[path = "../../../fuzz/src/oracle.rs"]
mod oracle;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::Policy;
use http::HeaderValue;
use oracle::{Entry, Intent};
use tower::ServiceExt;

/// One corpus line: its family and the `Origin` header lines it stands for.
struct Probe {
    family: String,
    origins: Vec<Vec<u8>>,
}

/// Decodes `\xNN`, `\t` and `\\`; any other backslash is itself.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(b'x') => {
                    if let Some(v) = s
                        .get(i + 2..i + 4)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
                Some(b't') => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn corpus() -> Vec<Probe> {
    let text = include_str!("data/adversarial_origins.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (family, value) = l.split_once('\t').unwrap();
            let origins = if value == "<empty>" {
                vec![Vec::new()]
            } else {
                value.split(" || ").map(unescape).collect()
            };
            Probe {
                family: family.to_owned(),
                origins,
            }
        })
        .collect()
}

/// The safe way to write a predicate: parse, then compare the host or its parent domain.
fn partner(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("https://") else {
        return false;
    };
    host == "partner.example.net"
        || host.strip_suffix(".tenant.example.net").is_some_and(|sub| {
            !sub.is_empty()
                && sub.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                })
        })
}

struct Case {
    name: &'static str,
    cors: Policy,
    intent: Intent,
    /// Origins of the corpus's `legit` family this policy must grant.
    grants: &'static [&'static str],
}

fn entries(list: &[&str]) -> Vec<Entry> {
    list.iter().map(|s| Entry::parse(s).unwrap()).collect()
}

fn policies() -> Vec<Case> {
    let exact = ["https://app.example.com", "http://localhost:8000"];
    let subdomain = ["https://*.example.com"];
    let ports = ["http://localhost:*", "https://app.example.com:*"];
    vec![
        Case {
            name: "exact",
            cors: Policy::builder()
                .allow_origins(exact)
                .allow_credentials(true)
                .build()
                .unwrap(),
            intent: Intent {
                entries: entries(&exact),
                credentials: true,
                ..Intent::default()
            },
            grants: &["https://app.example.com", "http://localhost:8000"],
        },
        Case {
            name: "subdomain",
            cors: Policy::builder()
                .allow_origins(subdomain)
                .allow_credentials(true)
                .build()
                .unwrap(),
            intent: Intent {
                entries: entries(&subdomain),
                credentials: true,
                ..Intent::default()
            },
            grants: &[
                "https://app.example.com",
                "https://a.example.com",
                "https://x.y.example.com",
            ],
        },
        Case {
            name: "port-pattern",
            cors: Policy::builder()
                .allow_origins(ports)
                .allow_credentials(true)
                .build()
                .unwrap(),
            intent: Intent {
                entries: entries(&ports),
                credentials: true,
                ..Intent::default()
            },
            grants: &[
                "http://localhost:8000",
                "http://localhost:1",
                "http://localhost:65535",
                "https://app.example.com",
                "https://app.example.com:8443",
                "https://app.example.com:1",
            ],
        },
        Case {
            name: "predicate",
            cors: Policy::builder()
                .allow_origin_predicate(partner)
                .allow_credentials(true)
                .build()
                .unwrap(),
            intent: Intent {
                predicate: Some(partner),
                credentials: true,
                ..Intent::default()
            },
            grants: &[
                "https://partner.example.net",
                "https://x.tenant.example.net",
                "https://deep.a.tenant.example.net",
            ],
        },
    ]
}

#[tokio::test]
async fn no_origin_in_the_corpus_gets_more_than_the_policy_grants() {
    let probes = corpus();
    let families: std::collections::BTreeSet<&str> =
        probes.iter().map(|p| p.family.as_str()).collect();
    assert!(probes.len() >= 500, "{} entries", probes.len());
    assert!(families.len() >= 15, "{families:?}");

    let (mut requests, mut unsendable, mut granted, mut bypasses) = (0, 0, 0, Vec::new());
    for policy in policies() {
        let app = Router::new()
            .fallback(any(|| async { StatusCode::OK }))
            .layer(CorsLayer::new(policy.cors.clone()));
        for probe in &probes {
            // Values no HTTP parser would pass on (control bytes) cannot reach the layer.
            let Ok(values) = probe
                .origins
                .iter()
                .map(|o| HeaderValue::from_bytes(o))
                .collect::<Result<Vec<_>, _>>()
            else {
                unsendable += 1;
                continue;
            };
            for preflight in [false, true] {
                let mut req = Request::builder()
                    .method(if preflight { "OPTIONS" } else { "GET" })
                    .uri("/api");
                for v in &values {
                    req = req.header("origin", v.clone());
                }
                if preflight {
                    req = req.header("access-control-request-method", "PUT");
                }
                let resp = app
                    .clone()
                    .oneshot(req.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                requests += 1;
                let what = format!(
                    "{} {} {:?} (preflight: {preflight})",
                    policy.name,
                    probe.family,
                    probe
                        .origins
                        .iter()
                        .map(|o| String::from_utf8_lossy(o)
                            .chars()
                            .take(80)
                            .collect::<String>())
                        .collect::<Vec<_>>()
                );
                assert!(resp.status().as_u16() < 500, "{what}: {}", resp.status());
                let h = resp.headers();
                assert!(
                    h.get_all("vary").iter().any(|v| v
                        .to_str()
                        .unwrap_or("")
                        .to_ascii_lowercase()
                        .contains("origin")),
                    "{what}: no Vary: Origin"
                );
                let Some(acao) = h.get("access-control-allow-origin") else {
                    assert!(
                        !h.keys().any(|k| k.as_str().starts_with("access-control-")),
                        "{what}: CORS headers without ACAO"
                    );
                    continue;
                };
                granted += 1;
                let ok =
                    values.len() == 1 && acao == values[0] && policy.intent.allows(acao.as_bytes());
                if !ok {
                    bypasses.push(format!("{what}: ACAO {acao:?}"));
                }
                assert_eq!(h.get_all("access-control-allow-origin").iter().count(), 1);
            }
        }
        // Each policy grants what it is meant to grant, so the test has teeth.
        for origin in policy.grants {
            let resp = app
                .clone()
                .oneshot(
                    Request::builder()
                        .uri("/api")
                        .header("origin", *origin)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                resp.headers()
                    .get("access-control-allow-origin")
                    .map(|v| v.as_bytes()),
                Some(origin.as_bytes()),
                "{}: {origin} refused",
                policy.name
            );
            assert!(
                probes
                    .iter()
                    .any(|p| p.family == "legit" && p.origins == [origin.as_bytes()]),
                "{origin} is not in the corpus's legit family"
            );
        }
    }
    println!(
        "adversarial origins: {} entries in {} families, {requests} requests through the layer, \
         {granted} granted, {unsendable} policy×entry pairs not sendable over HTTP, {} bypasses",
        probes.len(),
        families.len(),
        bypasses.len()
    );
    assert!(
        bypasses.is_empty(),
        "{} bypasses:\n{}",
        bypasses.len(),
        bypasses.join("\n")
    );
}
