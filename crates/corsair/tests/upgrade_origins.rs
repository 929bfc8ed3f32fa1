//! The origin rule for connection upgrades (WebSocket handshakes): the engine's
//! `answer_upgrade`, and the tower layer's opt-in refusal. Browsers apply no CORS check to
//! WebSockets, so these are the server's only defence against cross-site WebSocket hijacking.
#![cfg(feature = "tower")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::server::{answer_upgrade, is_upgrade, Action, Outcome, Rejection};
use corsair::tower::CorsLayer;
use corsair::{Policy, PolicyHandle, PolicySet};
use tower::ServiceExt;

const APP: &str = "https://app.example";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn handshake(extra: &[(&str, &str)]) -> HeaderMap {
    let mut pairs = vec![
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

fn policies() -> PolicySet {
    PolicySet::single(Policy::builder().allow_origins([APP]).build().unwrap())
        .route(
            "/public",
            Policy::builder().allow_origins(["*"]).build().unwrap(),
        )
        .unwrap()
}

#[test]
fn what_counts_as_an_upgrade() {
    assert!(is_upgrade(&handshake(&[])));
    assert!(is_upgrade(&headers(&[
        ("connection", "keep-alive"),
        ("connection", "UPGRADE"),
        ("upgrade", "h2c")
    ])));
    // Both headers are needed: `Upgrade` alone is only an offer a server may ignore, and
    // `Connection: upgrade` alone names nothing.
    assert!(!is_upgrade(&headers(&[("upgrade", "websocket")])));
    assert!(!is_upgrade(&headers(&[("connection", "upgrade")])));
    assert!(!is_upgrade(&headers(&[
        ("connection", "upgraded, keep-alive"),
        ("upgrade", "websocket")
    ])));
    assert!(!is_upgrade(&HeaderMap::new()));
}

#[test]
fn the_origin_decides_with_the_fetch_rules() {
    let set = policies();
    let at = |path: &str, extra: &[(&str, &str)]| {
        let a = answer_upgrade(&set, &Method::GET, path, &handshake(extra));
        (a.action(), a.outcome())
    };
    let forward = Action::Forward;
    let refuse = Action::Respond(StatusCode::FORBIDDEN);
    let rejected = |r| Some(Outcome::Rejected(r));
    assert_eq!(
        at("/ws", &[("origin", APP)]),
        (forward, Some(Outcome::Allowed))
    );
    // No Origin: not a browser page (a native client, a server), nothing to protect here.
    assert_eq!(at("/ws", &[]), (forward, Some(Outcome::NotCors)));
    assert_eq!(
        at("/ws", &[("origin", "https://evil.example")]),
        (refuse, rejected(Rejection::OriginNotAllowed))
    );
    // The attacker's look-alikes are refused as for fetch().
    for o in [
        "https://app.example.evil.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        assert_eq!(
            at("/ws", &[("origin", o)]),
            (refuse, rejected(Rejection::OriginNotAllowed)),
            "{o}"
        );
    }
    assert_eq!(
        at("/ws", &[("origin", "null")]),
        (refuse, rejected(Rejection::OriginNotAllowed))
    );
    assert_eq!(
        at("/ws", &[("origin", "https://app.example/")]),
        (refuse, rejected(Rejection::OriginMalformed))
    );
    assert_eq!(
        at("/ws", &[("origin", APP), ("origin", APP)]),
        (refuse, rejected(Rejection::MultipleOrigins))
    );
    // The route's policy decides: `*` admits every origin on /public.
    assert_eq!(
        at("/public/ws", &[("origin", "https://evil.example")]),
        (forward, Some(Outcome::Allowed))
    );
    assert_eq!(
        at("/publicity", &[("origin", "https://evil.example")]),
        (refuse, rejected(Rejection::OriginNotAllowed))
    );
}

#[test]
fn the_refusal_carries_no_cors_headers_and_an_allowed_handshake_keeps_them() {
    let set = policies();
    let mut response = HeaderMap::new();
    let (_, h) = answer_upgrade(
        &set,
        &Method::GET,
        "/ws",
        &handshake(&[("origin", "https://evil.example")]),
    )
    .into_parts();
    h.apply(&mut response);
    assert_eq!(response.get("access-control-allow-origin"), None);
    assert_eq!(response["vary"], "Origin");
    let mut response = HeaderMap::new();
    let (_, h) =
        answer_upgrade(&set, &Method::GET, "/ws", &handshake(&[("origin", APP)])).into_parts();
    h.apply(&mut response);
    assert_eq!(response["access-control-allow-origin"], APP);
}

fn app(calls: Arc<AtomicUsize>, layer: CorsLayer) -> Router {
    Router::new()
        .route(
            "/ws",
            any(move || {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        )
        .layer(layer)
}

fn request(extra: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::get("/ws").body(Body::empty()).unwrap();
    *r.headers_mut() = handshake(extra);
    r
}

#[tokio::test]
async fn the_layer_refuses_disallowed_handshakes_only_when_asked() {
    let calls = Arc::new(AtomicUsize::new(0));
    let strict = app(
        calls.clone(),
        CorsLayer::new(policies()).refuse_upgrades_from_disallowed_origins(),
    );
    let evil = request(&[("origin", "https://evil.example")]);
    let r = strict.clone().oneshot(evil).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers().get("access-control-allow-origin"), None);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the application saw it");
    for ok in [request(&[("origin", APP)]), request(&[])] {
        let r = strict.clone().oneshot(ok).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // An ordinary request from the same origin is not refused: the rule is for upgrades.
    let plain = Request::get("/ws")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let r = strict.clone().oneshot(plain).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Off by default: the handshake reaches the application (no CORS header, as for fetch()).
    let calls = Arc::new(AtomicUsize::new(0));
    let lax = app(calls.clone(), CorsLayer::new(policies()));
    let r = lax
        .oneshot(request(&[("origin", "https://evil.example")]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reloaded_policy_applies_to_the_next_handshake() {
    let handle = PolicyHandle::new(Policy::builder().allow_origins([APP]).build().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(
        calls,
        CorsLayer::reloadable(handle.clone()).refuse_upgrades_from_disallowed_origins(),
    );
    let other = || request(&[("origin", "https://other.example")]);
    assert_eq!(
        app.clone().oneshot(other()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    handle.store(
        Policy::builder()
            .allow_origins(["https://other.example"])
            .build()
            .unwrap(),
    );
    assert_eq!(app.oneshot(other()).await.unwrap().status(), StatusCode::OK);
}
