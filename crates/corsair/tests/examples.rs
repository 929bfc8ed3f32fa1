//! The examples in `examples/`, served on loopback and spoken to over HTTP/1.1 as a browser
//! would: an allowed origin's request, a refused origin's, and a preflight (for the WebSocket
//! example, handshakes by a real WebSocket client). Each example's own code (its router,
//! service or adapter) is compiled into this test, so that an example that stops doing what its
//! comments say fails here.
#![cfg(all(feature = "tower", feature = "serde"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

#[path = "../examples/axum_global.rs"]
#[allow(dead_code)] // its `main`
mod axum_global;
#[path = "../examples/axum_routes.rs"]
#[allow(dead_code)]
mod axum_routes;
#[path = "../examples/axum_websocket.rs"]
#[allow(dead_code)]
mod axum_websocket;
#[path = "../examples/hyper_plain.rs"]
#[allow(dead_code)]
mod hyper_plain;
#[path = "../examples/tonic_grpc_web.rs"]
#[allow(dead_code)]
mod tonic_grpc_web;

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A listener on a free loopback port.
async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Serves an axum router on a free loopback port.
async fn serve_axum(app: axum::Router) -> SocketAddr {
    let (l, addr) = listener().await;
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// One request on a fresh connection.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

const APP: &str = "http://localhost:8000";
const EVIL: &str = "https://evil.example";

/// Asserts that `reply` carries no `Access-Control-*` header at all.
fn assert_no_cors(reply: &Reply, what: &str) {
    let cors: Vec<_> = reply
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: {cors:?}");
}

#[tokio::test]
async fn axum_global_lets_the_app_in_with_cookies_and_no_one_else() {
    let addr = serve_axum(axum_global::app().unwrap()).await;

    let ok = send(addr, "GET", "/api/todos", &[("origin", APP)], b"").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        ok.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(ok.header("vary"), Some("Origin"));
    assert_eq!(&ok.body[..], br#"["write the docs"]"#);

    // The server still answers a refused origin (CORS is enforced by the browser), but without
    // the header that would let the page read the answer.
    let refused = send(addr, "GET", "/api/todos", &[("origin", EVIL)], b"").await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_no_cors(&refused, "refused origin");
    assert_eq!(refused.header("vary"), Some("Origin"));

    // The preflight of `fetch(url, {method: "PUT", headers: {"Content-Type": "application/json"}, credentials: "include"})`.
    let preflight = [
        ("origin", APP),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type"),
    ];
    let pre = send(addr, "OPTIONS", "/api/todos", &preflight, b"").await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("PUT, DELETE")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type, authorization")
    );
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(pre.header("access-control-max-age"), Some("600"));
    assert!(pre.body.is_empty());

    let evil_preflight = [("origin", EVIL), ("access-control-request-method", "PUT")];
    let pre = send(addr, "OPTIONS", "/api/todos", &evil_preflight, b"").await;
    assert_eq!(pre.status, StatusCode::FORBIDDEN);
    assert_no_cors(&pre, "refused preflight");

    // The PUT itself, once the preflight passed.
    let put = send(
        addr,
        "PUT",
        "/api/todos",
        &[("origin", APP), ("content-type", "application/json")],
        br#"["ship it"]"#,
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.header("access-control-allow-origin"), Some(APP));
    assert_eq!(&put.body[..], br#"["ship it"]"#);
}

#[tokio::test]
async fn axum_routes_serves_each_path_the_policy_of_its_file_route() {
    let addr = serve_axum(axum_routes::app(&axum_routes::default_policy_file()).unwrap()).await;

    // Top level: the app, with cookies; anyone else refused.
    let me = send(addr, "GET", "/api/me", &[("origin", APP)], b"").await;
    assert_eq!(me.header("access-control-allow-origin"), Some(APP));
    assert_eq!(me.header("access-control-allow-credentials"), Some("true"));
    let me = send(addr, "GET", "/api/me", &[("origin", EVIL)], b"").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_no_cors(&me, "/api/me from a refused origin");

    // /public: anyone, no cookies, ETag readable; the same answer for every origin, so no Vary.
    let public = send(addr, "GET", "/public/status", &[("origin", EVIL)], b"").await;
    assert_eq!(public.header("access-control-allow-origin"), Some("*"));
    assert_eq!(public.header("access-control-allow-credentials"), None);
    assert_eq!(public.header("access-control-expose-headers"), Some("etag"));
    assert_eq!(public.header("vary"), None);
    assert_eq!(&public.body[..], br#"{"status":"ok"}"#);

    // /partner: the partner's preflight for its POST with an API key passes; the app's does not
    // (the partner route does not inherit the top level's origins).
    let partner_preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-api-key"),
        ]
    };
    let pre = send(
        addr,
        "OPTIONS",
        "/partner/orders",
        &partner_preflight("https://partner.example"),
        b"",
    )
    .await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://partner.example")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    let pre = send(
        addr,
        "OPTIONS",
        "/partner/orders",
        &partner_preflight(APP),
        b"",
    )
    .await;
    assert_eq!(pre.status, StatusCode::FORBIDDEN);
    assert_no_cors(&pre, "the app on the partner route");
}

#[tokio::test]
async fn axum_routes_refuses_a_broken_policy_file_with_its_line() {
    let dir = std::env::temp_dir().join(format!("corsair-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(&file, "allow_origins = [\"https://app.example.com/\"]\n").unwrap();
    let errors = axum_routes::app(&file).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        errors.with_file("broken.toml").to_string(),
        "broken.toml:1: [origin-trailing-slash] allow_origins: \"https://app.example.com/\": an \
         origin has no trailing slash; browsers send none, so this never matches. Fix: write \
         https://app.example.com."
    );
}

#[tokio::test]
async fn hyper_plain_answers_preflights_and_decorates_every_response() {
    let (l, addr) = listener().await;
    tokio::spawn(hyper_plain::serve(l, hyper_plain::policies().unwrap()));

    let ok = send(addr, "GET", "/api", &[("origin", APP)], b"").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(&ok.body[..], br#"{"msg":"success"}"#);

    // The application's 404 carries the CORS headers too: the page sees the real error.
    let missing = send(addr, "GET", "/nope", &[("origin", APP)], b"").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("access-control-allow-origin"), Some(APP));

    let refused = send(addr, "GET", "/api", &[("origin", EVIL)], b"").await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_no_cors(&refused, "refused origin");
    assert_eq!(refused.header("vary"), Some("Origin"));

    let preflight = [
        ("origin", APP),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type"),
    ];
    let pre = send(addr, "OPTIONS", "/api", &preflight, b"").await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert_eq!(pre.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert!(
        pre.body.is_empty(),
        "the application did not answer the preflight"
    );

    let pre = send(
        addr,
        "OPTIONS",
        "/api",
        &[("origin", EVIL), ("access-control-request-method", "PUT")],
        b"",
    )
    .await;
    assert_eq!(pre.status, StatusCode::FORBIDDEN);
    assert_no_cors(&pre, "refused preflight");
}

/// A gRPC-Web message frame: flag 0, big-endian length, the message.
fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The headers `grpc-web`'s JavaScript client sends with a unary call.
fn grpc_web_call(origin: &str) -> [(&str, &str); 4] {
    [
        ("origin", origin),
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("x-user-agent", "grpc-web-javascript/0.1"),
    ]
}

#[tokio::test]
async fn tonic_grpc_web_call_from_a_page() {
    let (l, addr) = listener().await;
    tokio::spawn(tonic_grpc_web::serve(
        l,
        tonic_grpc_web::grpc_web_policy().unwrap(),
    ));
    let method = "/hello.Greeter/SayHello";

    // The preflight the browser sends first: POST with a non-form content type and gRPC-Web's
    // own headers, and a deadline.
    let preflight = [
        ("origin", APP),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,grpc-timeout,x-grpc-web,x-user-agent",
        ),
    ];
    let pre = send(addr, "OPTIONS", method, &preflight, b"").await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type, x-grpc-web, x-user-agent, grpc-timeout")
    );
    assert_eq!(pre.header("access-control-max-age"), Some("600"));

    // The call: a gRPC-Web response, readable by the page, with the status in the body's
    // trailer frame (flag 0x80).
    let call = send(
        addr,
        "POST",
        method,
        &grpc_web_call(APP),
        &grpc_web_frame(b"Ada"),
    )
    .await;
    assert_eq!(call.status, StatusCode::OK);
    assert_eq!(
        call.header("content-type"),
        Some("application/grpc-web+proto")
    );
    assert_eq!(call.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        call.header("access-control-expose-headers"),
        Some("grpc-status, grpc-message, grpc-status-details-bin")
    );
    let greeting = grpc_web_frame(b"Hello, Ada!");
    assert_eq!(&call.body[..greeting.len()], &greeting[..]);
    let trailers = &call.body[greeting.len()..];
    assert_eq!(trailers[0], 0x80, "a trailer frame follows the message");
    assert!(
        String::from_utf8_lossy(&trailers[5..]).contains("grpc-status:0"),
        "{trailers:?}"
    );

    // A failed call is "trailers-only": its status travels in response headers, which the page
    // reads only because the policy exposes them.
    let failed = send(
        addr,
        "POST",
        method,
        &grpc_web_call(APP),
        &grpc_web_frame(b""),
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.header("grpc-status"), Some("3")); // INVALID_ARGUMENT
    assert_eq!(failed.header("grpc-message"), Some("name%20is%20empty"));
    assert_eq!(failed.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        failed.header("access-control-expose-headers"),
        Some("grpc-status, grpc-message, grpc-status-details-bin")
    );

    // Another site: its preflight is refused, and a call it makes anyway (a simple request
    // cannot carry these headers, but a server must not rely on that) is not readable.
    let mut evil_preflight = preflight;
    evil_preflight[0] = ("origin", EVIL);
    let pre = send(addr, "OPTIONS", method, &evil_preflight, b"").await;
    assert_eq!(pre.status, StatusCode::FORBIDDEN);
    assert_no_cors(&pre, "refused gRPC-Web preflight");
    let call = send(
        addr,
        "POST",
        method,
        &grpc_web_call(EVIL),
        &grpc_web_frame(b"Eve"),
    )
    .await;
    assert_no_cors(&call, "refused gRPC-Web call");
}

/// Opens a WebSocket to `/ws` as a client would, with `origin` in the handshake (a browser
/// always sends one; other clients need not).
async fn open_websocket(
    addr: SocketAddr,
    origin: Option<&str>,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<TcpStream>,
        tungstenite::handshake::client::Response,
    ),
    tungstenite::Error,
> {
    let mut handshake = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        handshake
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(handshake, stream).await
}

/// Sends a text and a binary message and expects each back, then closes.
async fn assert_echoes(mut socket: tokio_tungstenite::WebSocketStream<TcpStream>, what: &str) {
    for message in [
        tungstenite::Message::text("hello"),
        tungstenite::Message::binary(vec![0, 1, 2, 255]),
    ] {
        socket.send(message.clone()).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), message, "{what}");
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn axum_websocket_opens_for_the_app_and_refuses_other_sites() {
    let addr = serve_axum(axum_websocket::app().unwrap()).await;

    // The app's page: upgraded, and the socket echoes.
    let (socket, response) = open_websocket(addr, Some(APP)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_echoes(socket, "the app's socket").await;

    // Another site's page, and a sandboxed page (`null`): 403 before the handler, so the
    // connection is never switched to WebSocket, and nothing in the answer lets a page read it.
    for origin in [EVIL, "null"] {
        match open_websocket(addr, Some(origin)).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
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

    // No `Origin`: not a browser page (see the example's comment), so it passes.
    let (socket, response) = open_websocket(addr, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_echoes(socket, "a socket without Origin").await;

    // An ordinary request to the socket's path is no handshake: the layer treats it as any
    // request (no CORS header for another site) and axum's extractor refuses it.
    let plain = send(addr, "GET", "/ws", &[("origin", EVIL)], b"").await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    assert_no_cors(&plain, "a plain GET from another site");
}
