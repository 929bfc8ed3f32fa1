//! Per-route policies in an actix service: the middleware serves a whole `PolicySet`, from the
//! proxy's policy-file format, fixed or reloadable through the same handle as a single policy.
//! The cases are the tower layer's (tests/common/layer.rs).
#![cfg(all(feature = "actix", feature = "serde"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/layer.rs"]
mod layer;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use corsair::actix::Cors;
use corsair::config::PolicySet;
use corsair::PolicyHandle;
use layer::{old_policy, RELOAD_CASES, ROUTES_FILE, ROUTE_CASES};

async fn service(
    cors: Cors,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .wrap(cors)
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await
}

/// (access-control-allow-origin, access-control-allow-credentials) of a GET from `origin`.
async fn get<S, B>(app: &S, path: &str, origin: &str) -> (Option<String>, Option<String>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let req = TestRequest::get()
        .uri(path)
        .insert_header(("origin", origin))
        .to_request();
    let resp = test::call_service(app, req).await;
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

#[actix_web::test]
async fn a_policy_file_serves_each_route_its_policy() {
    let app = service(Cors::new(PolicySet::from_toml(ROUTES_FILE).unwrap())).await;
    for &(path, origin, acao, acac) in ROUTE_CASES {
        assert_eq!(
            get(&app, path, origin).await,
            (owned(acao), owned(acac)),
            "{path} from {origin}"
        );
    }
}

#[actix_web::test]
async fn one_handle_swaps_a_single_policy_for_a_whole_set() {
    let handle = PolicyHandle::new(old_policy());
    let app = service(Cors::reloadable(handle.clone())).await;
    for &(path, origin, before, _) in RELOAD_CASES {
        assert_eq!(get(&app, path, origin).await.0, owned(before), "{path}");
    }
    handle.store(PolicySet::from_toml(ROUTES_FILE).unwrap());
    for &(path, origin, _, after) in RELOAD_CASES {
        assert_eq!(get(&app, path, origin).await.0, owned(after), "{path}");
    }
}
