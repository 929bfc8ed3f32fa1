//! Per-route policies in a service: the tower layer serves a whole `PolicySet`, from code or
//! from the proxy's policy-file format, fixed or reloadable through the same handle. The cases
//! are shared with actix's tests (tests/common/layer.rs).
#![cfg(all(feature = "tower", feature = "serde"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/layer.rs"]
mod layer;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use corsair::config::PolicySet;
use corsair::tower::CorsLayer;
use corsair::PolicyHandle;
use layer::{old_policy, RELOAD_CASES, ROUTES_FILE, ROUTE_CASES};
use tower::ServiceExt;

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

fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

#[tokio::test]
async fn a_policy_file_serves_each_route_its_policy() {
    let app = app(CorsLayer::new(PolicySet::from_toml(ROUTES_FILE).unwrap()));
    for &(path, origin, acao, acac) in ROUTE_CASES {
        assert_eq!(
            get(&app, path, origin).await,
            (owned(acao), owned(acac)),
            "{path} from {origin}"
        );
    }
}

#[tokio::test]
async fn one_handle_swaps_a_single_policy_for_a_whole_set() {
    let handle = PolicyHandle::new(old_policy());
    let app = app(CorsLayer::reloadable(handle.clone()));
    for &(path, origin, before, _) in RELOAD_CASES {
        assert_eq!(get(&app, path, origin).await.0, owned(before), "{path}");
    }
    handle.store(PolicySet::from_toml(ROUTES_FILE).unwrap());
    for &(path, origin, _, after) in RELOAD_CASES {
        assert_eq!(get(&app, path, origin).await.0, owned(after), "{path}");
    }
}
