//! Per-route policies in a service: the tower layer serves a whole `PolicySet`, from code or
//! from the proxy's policy-file format, fixed or reloadable through the same handle.
#![cfg(all(feature = "tower", feature = "serde"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::config::PolicySet;
use corsair::tower::CorsLayer;
use corsair::{Policy, PolicyHandle};
use tower::ServiceExt;

const FILE: &str = r#"
allow_origins = ["https://app.example.com"]
allow_credentials = true

[[route]]
path = "/public"
allow_origins = ["*"]
"#;

fn app(layer: CorsLayer) -> Router {
    Router::new()
        .fallback(any(|| async { StatusCode::OK }))
        .layer(layer)
}

/// (access-control-allow-origin, access-control-allow-credentials) of a GET from `origin`.
async fn get(app: &Router, path: &str, origin: &str) -> (Option<String>, Option<String>) {
    let req = Request::builder()
        .uri(path)
        .header("origin", origin)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        h("access-control-allow-origin"),
        h("access-control-allow-credentials"),
    )
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

#[tokio::test]
async fn a_policy_file_serves_each_route_its_policy() {
    let app = app(CorsLayer::new(PolicySet::from_toml(FILE).unwrap()));
    let app_origin = "https://app.example.com";
    let other = "https://other.example";
    assert_eq!(
        get(&app, "/api/me", app_origin).await,
        (some(app_origin), some("true"))
    );
    assert_eq!(get(&app, "/api/me", other).await, (None, None));
    for public in ["/public", "/public/logo.png"] {
        assert_eq!(
            get(&app, public, other).await,
            (some("*"), None),
            "{public}"
        );
    }
    // Whole segments: /publicity is not the public route.
    assert_eq!(get(&app, "/publicity", other).await, (None, None));
}

#[tokio::test]
async fn one_handle_swaps_a_single_policy_for_a_whole_set() {
    let handle = PolicyHandle::new(
        Policy::builder()
            .allow_origins(["https://old.example"])
            .build()
            .unwrap(),
    );
    let app = app(CorsLayer::reloadable(handle.clone()));
    assert_eq!(
        get(&app, "/public/x", "https://other.example").await,
        (None, None)
    );
    handle.store(PolicySet::from_toml(FILE).unwrap());
    assert_eq!(
        get(&app, "/public/x", "https://other.example").await,
        (some("*"), None)
    );
    assert_eq!(get(&app, "/api", "https://old.example").await, (None, None));
}
