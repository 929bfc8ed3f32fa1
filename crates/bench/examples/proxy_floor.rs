//! The floor under `corsair proxy`: the least an HTTP/1.1 reverse proxy built on hyper and tokio
//! does for a request, and nothing more. hyper's server reads the request, hyper's client sends
//! it unchanged over a kept-alive upstream connection and reads the answer, and the server
//! writes that answer back: no CORS, no header changed, no timeout, no metrics, no log, one
//! event loop (tokio's current-thread runtime) and corsair's allocator with its settings.
//! It tells what corsair adds from what hyper and tokio cost (BENCHMARKS.md).
//!
//! `proxy_floor proxy --listen ADDR --upstream http://HOST:PORT [ignored...]` takes the
//! arguments of `corsair proxy` that the scripts pass, so that it runs where corsair does:
//! `CORSAIR=target/dist/examples/proxy_floor bash scripts/bench-proxy-instructions.sh` counts
//! its instructions a forwarded GET (its "preflight" row is an `OPTIONS` forwarded upstream).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // a bad argument stops the run

use std::cell::RefCell;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

thread_local! {
    /// The idle upstream connections: one event loop, so one list and no lock.
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        let at = args.iter().position(|a| a == flag);
        at.and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("usage: proxy_floor proxy --listen ADDR --upstream URL"))
            .clone()
    };
    let listen: SocketAddr = value("--listen").parse().unwrap();
    let upstream = value("--upstream");
    let upstream: SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await.unwrap();
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        loop {
            let tcp = tokio::select! {
                _ = term.recv() => return,
                accepted = listener.accept() => accepted.unwrap().0,
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| forward(upstream, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

/// Sends `req` over an idle upstream connection, or a new one, and answers with its response.
async fn forward(
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let idle = IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        while let Some(send) = idle.pop() {
            if send.is_ready() {
                return Some(send);
            }
        }
        None
    });
    let mut send = match idle {
        Some(send) => send,
        None => {
            let tcp = TcpStream::connect(upstream).await?;
            let _ = tcp.set_nodelay(true);
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            send
        }
    };
    let resp = send.send_request(req).await;
    // Back at once: it is ready again once hyper's connection task has read the answer's body,
    // which the next request's `is_ready` checks.
    IDLE.with(|idle| idle.borrow_mut().push(send));
    Ok(resp?)
}
