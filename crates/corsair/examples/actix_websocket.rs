//! actix-web serving a WebSocket that only the app's pages may open.
//!
//! Browsers apply no CORS check to WebSockets: a page on any site may open
//! `new WebSocket("ws://localhost:9000/ws")`, and the browser sends the user's cookies with the
//! handshake, so a socket that trusts the cookie would serve the user's data to that site
//! (cross-site WebSocket hijacking). What the browser does send, and a page cannot change, is
//! `Origin`. With `refuse_upgrades_from_disallowed_origins()`, the CORS middleware checks it
//! against the policy, with the same rules as for `fetch()`: a handshake from an origin the
//! policy does not allow (another site, a sandboxed page's `null`) is answered `403 Forbidden`
//! before the handler runs, so no socket is opened, and the refusal is traced (`debug`, target
//! `corsair`). A handshake without `Origin` comes from no browser page and passes (see
//! `axum_websocket.rs`, the same endpoint for axum).
//!
//! The handshake and the frames are actix-ws's, the actix project's WebSocket support for
//! actix-web without actors.
//!
//! ```text
//! cargo run -p corsair --example actix_websocket --features actix
//! # refused: another site's handshake
//! curl -i http://localhost:9000/ws -H 'Origin: https://evil.example' \
//!   -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
//!   -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
//! # echoed: in the console of a page on http://localhost:8000
//! ws = new WebSocket("ws://localhost:9000/ws"); ws.onmessage = (e) => console.log(e.data); ws.onopen = () => ws.send("hi")
//! ```

use std::process::ExitCode;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::{Message, MessageStream, Session};
use corsair::actix::Cors;
use corsair::{ConfigErrors, Policy};

/// The page that may open the socket: scheme, host and port, exactly as the browser sends it.
const APP_ORIGIN: &str = "http://localhost:8000";

/// The CORS middleware: the policy the page's `fetch()` calls would use, and the socket reuses
/// its origins. Without the option the middleware lets every handshake through: CORS itself
/// says nothing about WebSockets.
pub fn cors() -> Result<Cors, ConfigErrors> {
    let policy = Policy::builder()
        .allow_origins([APP_ORIGIN])
        .allow_credentials(true)
        .build()?;
    Ok(Cors::new(policy).refuse_upgrades_from_disallowed_origins())
}

/// The routes: an echo socket on `/ws`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// Reached only by handshakes the middleware let through: answers `101 Switching Protocols`
/// (or `400` for a request that is no valid handshake) and serves the socket meanwhile.
async fn upgrade(req: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    actix_web::rt::spawn(echo(session, messages));
    Ok(response)
}

/// Sends every text and binary message back, answers pings, until the client closes.
async fn echo(mut session: Session, mut messages: MessageStream) {
    while let Some(Ok(message)) = messages.recv().await {
        let sent = match message {
            Message::Text(text) => session.text(text).await,
            Message::Binary(bytes) => session.binary(bytes).await,
            Message::Ping(bytes) => session.pong(&bytes).await,
            Message::Close(reason) => {
                let _ = session.close(reason).await;
                return;
            }
            Message::Pong(_) | Message::Continuation(_) | Message::Nop => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cors = match cors() {
        Ok(cors) => cors,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    // The last `wrap` is the outermost middleware: wrap CORS last, so that it sees the
    // handshake before anything else does.
    let server = HttpServer::new(move || App::new().configure(routes).wrap(cors.clone()));
    let server = match server.bind(("127.0.0.1", 9000)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:9000: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ws://localhost:9000/ws, an echo socket that pages of {APP_ORIGIN} may open");
    if let Err(e) = server.run().await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
