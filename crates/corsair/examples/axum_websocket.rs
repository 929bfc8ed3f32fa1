//! axum serving a WebSocket that only the app's pages may open.
//!
//! Browsers apply no CORS check to WebSockets: a page on any site may open
//! `new WebSocket("ws://localhost:9000/ws")`, and the browser sends the user's cookies with the
//! handshake, so a socket that trusts the cookie would serve the user's data to that site
//! (cross-site WebSocket hijacking). What the browser does send, and a page cannot change, is
//! `Origin`. With `refuse_upgrades_from_disallowed_origins()`, the CORS layer checks it against
//! the policy, with the same rules as for `fetch()`: a handshake from an origin the policy does
//! not allow (another site, a sandboxed page's `null`) is answered `403 Forbidden` before the
//! handler runs, so no socket is opened, and the refusal is traced (`debug`, target `corsair`).
//!
//! A handshake without `Origin` comes from no browser page (browsers always send it on a
//! WebSocket handshake): a command-line client, another server. It passes, as it would without
//! the layer: such a client has no user's cookies to ride on, so authenticate it as you would
//! any API client (a token), not by the origin it does not claim.
//!
//! ```text
//! cargo run -p corsair --example axum_websocket --features tower
//! # refused: another site's handshake
//! curl -i http://localhost:9000/ws -H 'Origin: https://evil.example' \
//!   -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
//!   -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
//! # echoed: in the console of a page on http://localhost:8000
//! ws = new WebSocket("ws://localhost:9000/ws"); ws.onmessage = (e) => console.log(e.data); ws.onopen = () => ws.send("hi")
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use corsair::tower::CorsLayer;
use corsair::{ConfigErrors, Policy};

/// The page that may open the socket: scheme, host and port, exactly as the browser sends it.
const APP_ORIGIN: &str = "http://localhost:8000";

/// The service: an echo socket on `/ws`, behind a CORS layer that also checks handshakes.
pub fn app() -> Result<Router, ConfigErrors> {
    // The policy the page's `fetch()` calls would use; the socket reuses its origins.
    let cors = Policy::builder()
        .allow_origins([APP_ORIGIN])
        .allow_credentials(true)
        .build()?;
    Ok(Router::new()
        .route("/ws", get(upgrade))
        // Without this option the layer lets every handshake through: CORS itself says nothing
        // about WebSockets.
        .layer(CorsLayer::new(cors).refuse_upgrades_from_disallowed_origins()))
}

/// Reached only by handshakes the layer let through.
async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

/// Sends every text and binary message back, until the client closes.
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            // Pings are answered by the WebSocket implementation itself.
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let app = match app() {
        Ok(app) => app,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9000));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ws://localhost:9000/ws, an echo socket that pages of {APP_ORIGIN} may open");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
