//! Upgrade requests (WebSocket handshakes) under `refuse_upgrades_from_disallowed_origins`, from
//! origins that only the policy's origin source can admit: the handshake waits for the lookup
//! (the cache ordinary requests use, its timeout failing closed), then reaches the application
//! or is refused with 403, in both adapters. Before this, such a handshake was refused without
//! asking the source, so a tenant's page could not open its socket.
#![cfg(feature = "origin-source")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "common/tracing_recorder.rs"]
mod tracing_recorder;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corsair::origin_source::{OriginCache, OriginSource, SourceError};
use corsair::Policy;
use tokio::sync::Semaphore;

/// Listed in the policy: never looked up.
const APP: &str = "http://127.0.0.1:8000";
/// Admitted by the source only.
const TENANT: &str = "https://shop.tenant.example";
/// Refused by the source.
const EVIL: &str = "https://evil.example";
/// The source never answers about this one (the lookup outlives the timeout).
const SLOW: &str = "https://slow.tenant.example";

/// Tenants in a "database": counts its lookups; each lookup waits for a permit of `gate` (all
/// open unless a test closes it), and one about [`SLOW`] never ends.
#[derive(Clone)]
struct Tenants {
    lookups: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Tenants {
    fn new() -> Self {
        Tenants {
            lookups: Arc::default(),
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }
    fn gated() -> Self {
        Tenants {
            lookups: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
    /// Returns once a lookup has begun; fails the test after 5 s without one.
    async fn asked(&self) {
        let asked = async {
            while self.lookups() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .expect("the source was never asked");
    }
}

impl OriginSource for Tenants {
    async fn lookup(&self, origin: &str) -> Result<bool, SourceError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await.unwrap();
        if origin == SLOW {
            std::future::pending::<()>().await;
        }
        Ok(origin == TENANT)
    }
}

fn policy(source: &Tenants) -> Policy {
    let cache = OriginCache::builder(source.clone())
        .timeout(Duration::from_millis(300))
        .build();
    Policy::builder()
        .allow_origins([APP])
        .allow_origin_source(cache)
        .allow_credentials(true)
        .build()
        .unwrap()
}

/// A WebSocket handshake's headers, from `origin`.
fn handshake(origin: &str) -> [(&'static str, String); 5] {
    [
        ("connection", "Upgrade".into()),
        ("upgrade", "websocket".into()),
        ("sec-websocket-version", "13".into()),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".into()),
        ("origin", origin.into()),
    ]
}

/// The `reason`s of the events recorded, in order.
fn reasons(recorder: &tracing_recorder::Recorder) -> Vec<String> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

#[cfg(feature = "tower")]
mod tower_layer {
    use super::*;

    use ::tower::ServiceExt;
    use axum::body::Body;
    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::http::{Request, StatusCode};
    use axum::response::Response;
    use axum::routing::{any, get};
    use axum::Router;
    use corsair::tower::CorsLayer;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;

    /// An echo socket on `/ws`, behind the layer, served on loopback.
    async fn serve(source: &Tenants) -> std::net::SocketAddr {
        async fn upgrade(ws: WebSocketUpgrade) -> Response {
            ws.on_upgrade(|mut socket: WebSocket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, Message::Text(_)) && socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }
        let app = Router::new()
            .route("/ws", get(upgrade))
            .layer(CorsLayer::new(policy(source)).refuse_upgrades_from_disallowed_origins());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Opens a socket from `origin`: the handshake's status, and for a 101 the echo of a message.
    async fn open(addr: std::net::SocketAddr, origin: &str) -> (u16, Option<String>) {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut socket, response)) => {
                socket.send("hello".into()).await.unwrap();
                let echo = socket.next().await.unwrap().unwrap();
                (
                    response.status().as_u16(),
                    Some(echo.into_text().unwrap().to_string()),
                )
            }
            Err(WsError::Http(response)) => (response.status().as_u16(), None),
            Err(e) => panic!("handshake from {origin}: {e}"),
        }
    }

    #[tokio::test]
    async fn a_tenant_opens_its_socket_and_others_are_refused() {
        let source = Tenants::new();
        let addr = serve(&source).await;
        assert_eq!(open(addr, TENANT).await, (101, Some("hello".into())));
        assert_eq!(source.lookups(), 1);
        // Cached: the next handshake does not ask again.
        assert_eq!(open(addr, TENANT).await, (101, Some("hello".into())));
        assert_eq!(source.lookups(), 1);
        // Refused by the source, then from its cached answer.
        assert_eq!(open(addr, EVIL).await, (403, None));
        assert_eq!(open(addr, EVIL).await, (403, None));
        assert_eq!(source.lookups(), 2);
        // The listed origin never waits for the source.
        assert_eq!(open(addr, APP).await, (101, Some("hello".into())));
        assert_eq!(source.lookups(), 2);
    }

    fn counted(source: &Tenants, calls: Arc<AtomicUsize>) -> Router {
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
            .layer(CorsLayer::new(policy(source)).refuse_upgrades_from_disallowed_origins())
    }

    fn request(origin: &str) -> Request<Body> {
        let mut r = Request::get("/ws").body(Body::empty()).unwrap();
        for (name, value) in handshake(origin) {
            r.headers_mut().insert(name, value.parse().unwrap());
        }
        r
    }

    /// The handshake reaches the application only once the source has admitted its origin.
    #[tokio::test]
    async fn the_handshake_waits_for_the_lookup() {
        let source = Tenants::gated();
        let calls = Arc::new(AtomicUsize::new(0));
        let app = counted(&source, calls.clone());
        let handshake = tokio::spawn(app.clone().oneshot(request(TENANT)));
        source.asked().await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the application saw it first"
        );
        source.gate.add_permits(Semaphore::MAX_PERMITS);
        let response = handshake.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], TENANT);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refusals_are_traced_and_a_source_that_times_out_fails_closed() {
        let recorder = tracing_recorder::Recorder::default();
        let _guard = tracing::subscriber::set_default(recorder.clone());
        let source = Tenants::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let app = counted(&source, calls.clone());

        let refused = app.clone().oneshot(request(EVIL)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(refused.headers().get("access-control-allow-origin"), None);
        assert_eq!(reasons(&recorder), ["origin-not-allowed"]);

        let timed_out = app.clone().oneshot(request(SLOW)).await.unwrap();
        assert_eq!(timed_out.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            reasons(&recorder),
            [
                "origin-not-allowed",
                "origin-source-timeout",
                "origin-source-failed"
            ]
        );
        assert_eq!(source.lookups(), 2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "a refused handshake got through"
        );
    }
}

#[cfg(feature = "actix")]
mod actix_middleware {
    use super::*;

    use actix_web::http::StatusCode;
    use actix_web::{test, web, App, HttpResponse};
    use corsair::actix::Cors;

    fn request(origin: &str) -> test::TestRequest {
        handshake(origin)
            .into_iter()
            .fold(test::TestRequest::get().uri("/ws"), |r, h| {
                r.insert_header(h)
            })
    }

    macro_rules! app {
        ($source:expr, $calls:expr) => {{
            let calls = $calls.clone();
            test::init_service(
                App::new()
                    .wrap(Cors::new(policy($source)).refuse_upgrades_from_disallowed_origins())
                    .route(
                        "/ws",
                        web::get().to(move || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            async { HttpResponse::Ok().finish() }
                        }),
                    ),
            )
            .await
        }};
    }

    #[actix_web::test]
    async fn a_tenant_is_admitted_by_the_source_and_its_answer_cached() {
        let source = Tenants::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let app = app!(&source, calls);
        for _ in 0..2 {
            let response = test::call_service(&app, request(TENANT).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK);
            let allowed = response.headers().get("access-control-allow-origin");
            assert_eq!(allowed.unwrap(), TENANT);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(source.lookups(), 1, "the cached answer was asked again");
        let response = test::call_service(&app, request(APP).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(source.lookups(), 1);
    }

    #[actix_web::test]
    async fn the_handshake_waits_for_the_lookup() {
        let source = Tenants::gated();
        let calls = Arc::new(AtomicUsize::new(0));
        let app = std::rc::Rc::new(app!(&source, calls));
        let handshake = actix_web::rt::spawn({
            let app = app.clone();
            async move { test::call_service(&*app, request(TENANT).to_request()).await }
        });
        source.asked().await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the application saw it first"
        );
        source.gate.add_permits(Semaphore::MAX_PERMITS);
        let response = handshake.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[actix_web::test]
    async fn refusals_are_traced_and_a_source_that_times_out_fails_closed() {
        let recorder = tracing_recorder::Recorder::default();
        let _guard = tracing::subscriber::set_default(recorder.clone());
        let source = Tenants::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let app = app!(&source, calls);

        let refused = test::call_service(&app, request(EVIL).to_request()).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(refused.headers().get("access-control-allow-origin"), None);
        assert_eq!(reasons(&recorder), ["origin-not-allowed"]);
        // Cached: refused again without a lookup.
        let refused = test::call_service(&app, request(EVIL).to_request()).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(source.lookups(), 1);

        let timed_out = test::call_service(&app, request(SLOW).to_request()).await;
        assert_eq!(timed_out.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            reasons(&recorder),
            [
                "origin-not-allowed",
                "origin-not-allowed",
                "origin-source-timeout",
                "origin-source-failed"
            ]
        );
        assert_eq!(source.lookups(), 2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "a refused handshake got through"
        );
    }
}
