//! The actix middleware's logging, as the tower layer's: rejections (refused WebSocket
//! handshakes included) are `debug` events carrying their reason, and nothing else is logged
//! per request (tests/common/tracing_recorder.rs). In a
//! test binary of its own, because `tracing` caches each call site's interest process-wide.
#![cfg(feature = "actix")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/tracing_recorder.rs"]
mod recorder;

use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use corsair::actix::Cors;
use recorder::{
    expected_events, expected_upgrades, policy, upgrade_policy, Recorder, REQUESTS,
    UPGRADE_REQUESTS,
};

#[actix_web::test]
async fn rejections_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let app = test::init_service(
        App::new()
            .wrap(Cors::new(policy()))
            .route("/ok", web::route().to(HttpResponse::Ok)),
    )
    .await;
    for (method, headers) in REQUESTS {
        let mut r = TestRequest::default()
            .method(method.parse().unwrap())
            .uri("/ok");
        for &h in headers {
            r = r.append_header(h);
        }
        test::call_service(&app, r.to_request()).await;
    }
    assert_eq!(recorder.reasons(), expected_events());
}

#[actix_web::test]
async fn refused_upgrades_are_debug_events_with_their_reason() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let app = test::init_service(
        App::new()
            .wrap(Cors::new(upgrade_policy()).refuse_upgrades_from_disallowed_origins())
            .route("/ok", web::route().to(HttpResponse::Ok)),
    )
    .await;
    let mut statuses = [0; 4];
    for (status, (method, headers)) in statuses.iter_mut().zip(UPGRADE_REQUESTS) {
        let mut r = TestRequest::default()
            .method(method.parse().unwrap())
            .uri("/ok");
        for &h in headers {
            r = r.append_header(h);
        }
        *status = test::call_service(&app, r.to_request())
            .await
            .status()
            .as_u16();
    }
    assert_eq!((statuses, recorder.reasons()), expected_upgrades());
}
