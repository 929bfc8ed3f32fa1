//! The actix example (`examples/actix.rs`), its own code compiled in, answering as its comments
//! say: the app's origin reads `/api` and may preflight `PUT` with JSON; another origin reads
//! nothing there; any origin reads `/public/…`.
#![cfg(feature = "actix")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "../examples/actix.rs"]
#[allow(dead_code)] // its `main`
mod example;

use actix_web::dev::ServiceResponse;
use actix_web::test::{self, TestRequest};
use actix_web::App;

fn header<B>(r: &ServiceResponse<B>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[actix_web::test]
async fn the_actix_example_serves_each_path_its_policy() {
    let app = test::init_service(
        App::new()
            .configure(example::routes)
            .wrap(example::cors().unwrap()),
    )
    .await;

    let req = TestRequest::get()
        .uri("/api")
        .insert_header(("origin", "http://localhost:8000"))
        .to_request();
    let r = test::call_service(&app, req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://localhost:8000")
    );
    assert_eq!(header(&r, "vary").as_deref(), Some("Origin"));
    assert_eq!(test::read_body(r).await, r#"{"msg":"success"}"#);

    let req = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api")
        .insert_header(("origin", "http://localhost:8000"))
        .insert_header(("access-control-request-method", "PUT"))
        .insert_header(("access-control-request-headers", "content-type"))
        .to_request();
    let r = test::call_service(&app, req).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-methods").as_deref(),
        Some("PUT, DELETE")
    );
    assert_eq!(
        header(&r, "access-control-allow-headers").as_deref(),
        Some("content-type")
    );

    let req = TestRequest::get()
        .uri("/api")
        .insert_header(("origin", "http://evil.test"))
        .to_request();
    let r = test::call_service(&app, req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);

    let req = TestRequest::get()
        .uri("/public/logo.png")
        .insert_header(("origin", "http://evil.test"))
        .to_request();
    let r = test::call_service(&app, req).await;
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}
