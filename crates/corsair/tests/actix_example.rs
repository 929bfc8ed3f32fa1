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

#[path = "../examples/actix_websocket.rs"]
#[allow(dead_code)] // its `main`
mod websocket;

/// Opens a WebSocket to `/ws` at `addr` as a client would, with `origin` in the handshake.
async fn open_websocket(
    addr: std::net::SocketAddr,
    origin: Option<&str>,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut handshake = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        handshake
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(handshake, stream).await
}

/// The actix WebSocket example on a real socket (one worker, on loopback): the app's page
/// opens its socket, which echoes; another site's page and a sandboxed page get 403 and no
/// socket; a client without `Origin` passes.
#[actix_web::test]
async fn the_actix_websocket_example_opens_for_the_app_and_refuses_other_sites() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Error, Message};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cors = websocket::cors().unwrap();
    let server = actix_web::HttpServer::new(move || {
        App::new().configure(websocket::routes).wrap(cors.clone())
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    for origin in [Some("http://localhost:8000"), None] {
        let (mut socket, response) = open_websocket(addr, origin).await.unwrap();
        assert_eq!(response.status(), 101, "{origin:?}");
        for message in [Message::text("hello"), Message::binary(vec![0, 1, 2, 255])] {
            socket.send(message.clone()).await.unwrap();
            assert_eq!(socket.next().await.unwrap().unwrap(), message, "{origin:?}");
        }
        socket.close(None).await.unwrap();
    }
    for origin in ["https://evil.example", "null"] {
        match open_websocket(addr, Some(origin)).await {
            Err(Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}");
                assert_eq!(response.headers().get("upgrade"), None, "{origin}");
                assert_eq!(
                    response.headers().get("sec-websocket-accept"),
                    None,
                    "{origin}"
                );
                assert_eq!(
                    response.headers().get("access-control-allow-origin"),
                    None,
                    "{origin}"
                );
            }
            Ok((_, response)) => panic!("{origin}: upgraded: {response:?}"),
            Err(e) => panic!("{origin}: {e}"),
        }
    }
    handle.stop(false).await;
}
