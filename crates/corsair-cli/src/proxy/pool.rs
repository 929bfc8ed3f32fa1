//! The upstream connections: HTTP/1.1 over hyper's connection API, kept alive in a small pool
//! per upstream.
//!
//! hyper-util's general client cost about 8,500 instructions a forwarded request (a third of
//! nginx's whole cost for one), and spawned a task per request to return its connection to the
//! pool once the response body had been read. Here the body itself returns the connection when
//! it is dropped after its end, and a request takes the most recently returned connection that
//! is ready, under a mutex held for a few pointer moves.
//!
//! A pooled connection the upstream has closed while idle is not used: hyper's connection task
//! sees the close while the connection is idle and marks it closed, and one still found closed
//! when the request is handed to it gives the request back unsent (`try_send_request`), which
//! then goes to the next pooled connection or a fresh one. Like hyper-util's client, a request
//! already written when the upstream closes is not sent again: its failure is a 502.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use super::Body;

/// How the proxy connects to its upstreams (plain TCP, or TLS for `https://`).
pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Idle connections kept per upstream; more are closed as they come back.
const MAX_IDLE: usize = 256;

/// A connection idle longer than this is closed rather than reused, when a request next looks
/// (upstreams commonly close theirs after 60 s or less).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The idle connections to one upstream.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

struct Idle {
    send: SendRequest<Body>,
    since: Instant,
}

/// Why a request got no response from the upstream.
pub(super) enum Failure {
    /// No connection could be made (refused, unresolved, TLS, timed out).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed during the exchange.
    Http(hyper::Error),
}

impl Failure {
    pub(super) fn error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Failure::Connect(e) => e.as_ref(),
            Failure::Http(e) => e,
        }
    }
}

impl Pool {
    /// The most recently returned connection that can take a request now. Closed and expired
    /// ones are dropped; those still finishing their previous exchange stay for later, in
    /// their places.
    fn take(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let c = &idle[i];
            if c.send.is_closed() || c.since.elapsed() > IDLE_TIMEOUT {
                idle.remove(i);
            } else if c.send.is_ready() {
                // The top of the stack in the common case: no element moves.
                return Some(idle.remove(i).send);
            }
            // Otherwise its connection task has not yet seen the end of the last response
            // (rare: a connection comes back only once its response body has ended).
        }
        None
    }

    fn put(&self, send: SendRequest<Body>) {
        if send.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The bottom of the stack is the longest idle: once it has expired, so may others, which
        // a request taking from the top would never reach.
        if idle
            .first()
            .is_some_and(|c| c.since.elapsed() > IDLE_TIMEOUT)
        {
            idle.retain(|c| c.since.elapsed() <= IDLE_TIMEOUT && !c.send.is_closed());
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                send,
                since: Instant::now(),
            });
        }
    }

    /// Sends `req` (its URI in origin form) to the upstream at `base`, on a pooled connection or
    /// a new one. The response's body returns the connection here once it has been read.
    pub(super) async fn send(
        self: &Arc<Self>,
        connector: &Connector,
        base: &Uri,
        mut req: Request<Body>,
    ) -> Result<Response<Body>, Failure> {
        while let Some(mut send) = self.take() {
            match send.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(resp, send)),
                Err(mut e) => match e.take_message() {
                    // Closed before the request was written: the next connection takes it.
                    Some(unsent) => req = unsent,
                    None => return Err(Failure::Http(e.into_error())),
                },
            }
        }
        // Boxed: the connecting states are large, and only a new connection needs them (the
        // request's future, moved a few times, stays small).
        let mut send = Box::pin(connect(connector, base)).await?;
        match send.send_request(req).await {
            Ok(resp) => Ok(self.wrap(resp, send)),
            Err(e) => Err(Failure::Http(e)),
        }
    }

    fn wrap(self: &Arc<Self>, resp: Response<Incoming>, send: SendRequest<Body>) -> Response<Body> {
        // A connection that switched protocols belongs to the tunnel.
        let back =
            (resp.status() != http::StatusCode::SWITCHING_PROTOCOLS).then(|| (send, self.clone()));
        resp.map(|body| {
            http_body_util::BodyExt::boxed(Pooled {
                body,
                back,
                ended: false,
            })
        })
    }
}

/// A new connection to the upstream at `base`, its task spawned.
async fn connect(connector: &Connector, base: &Uri) -> Result<SendRequest<Body>, Failure> {
    let io = connector
        .clone()
        .call(base.clone())
        .await
        .map_err(Failure::Connect)?;
    let (send, conn) = http1::Builder::new()
        // Each connection reads at most this much ahead of the client (hyper's default, 400 KiB,
        // made a 1 MiB body cost about half a MiB a connection while it streamed); it also
        // bounds an upstream's response head, as nginx's proxy_buffer_size does.
        .max_buf_size(UPSTREAM_BUFFER)
        .handshake(io)
        .await
        .map_err(Failure::Http)?;
    // The connection's task: one per upstream connection, for as long as it lives.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(send)
}

/// The bytes an upstream connection reads ahead, and the longest response head it accepts.
pub(super) const UPSTREAM_BUFFER: usize = 64 * 1024;

/// The size of `resp`'s head when it is over [`UPSTREAM_BUFFER`], counted as its status line
/// and each field as `name: value` with its CRLF. hyper enforces its buffer size only between
/// reads, so a longer head that arrives within one read gets through; this makes the bound
/// exact whichever way the bytes arrived.
pub(super) fn head_over_limit<B>(resp: &Response<B>) -> Option<usize> {
    // "HTTP/1.1 200 ", its reason and CRLF; the blank line that ends the head.
    let status_line = 13 + resp.status().canonical_reason().map_or(0, str::len) + 2;
    let fields: usize = resp
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    let size = status_line + fields + 2;
    (size > UPSTREAM_BUFFER).then_some(size)
}

/// A response body that returns its connection to the pool when dropped after its end (a body
/// dropped before, by a client that went away, leaves its connection to close).
struct Pooled {
    body: Incoming,
    back: Option<(SendRequest<Body>, Arc<Pool>)>,
    ended: bool,
}

impl hyper::body::Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            // Trailers are a chunked body's last frame: the client's side stops asking after
            // them, so waiting for the end that follows would close a reusable connection.
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => self.ended = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.ended || self.body.is_end_stream() {
            if let Some((send, pool)) = self.back.take() {
                pool.put(send);
            }
        }
    }
}
