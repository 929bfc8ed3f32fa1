//! The upstream connections: HTTP/1.1 over hyper's connection API, kept alive in a small pool
//! per upstream.
//!
//! hyper-util's general client cost about 8,500 instructions a forwarded request (a third of
//! nginx's whole cost for one), and spawned a task per request to return its connection to the
//! pool once the response body had been read. Here the body itself returns the connection when
//! it is dropped after its end, and a request takes the most recently returned connection that
//! is ready, under a mutex held for a few pointer moves.
//!
//! Each worker (a thread with its own event loop, `mod.rs`) keeps its own idle connections: a
//! connection's task runs on the worker that made it, so a request sent on it by another
//! worker would cross threads twice (the request to that task, the response back). Like
//! nginx's `keepalive`, the bound on idle connections is per worker.
//!
//! A pooled connection the upstream has closed while idle is not used: hyper's connection task
//! sees the close while the connection is idle and marks it closed, and one still found closed
//! when the request is handed to it gives the request back unsent (`try_send_request`), which
//! then goes to the next pooled connection or a fresh one.
//!
//! A request already written when the upstream closes is sent again, once, on a fresh
//! connection, when all of these hold (nginx's `proxy_next_upstream error` without
//! `non_idempotent`, and Go's Transport, resend in the same case): the connection was a pooled
//! one (the keep-alive race: the upstream's idle timeout closed it as the request went out); the
//! method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and the body empty, so that
//! the request can be written again as it was; it asks for no upgrade; and the connection closed
//! or was reset before a byte of the response arrived. A request on a fresh connection is never
//! sent again (an upstream that fails on it does not get it twice because of the proxy), nor one
//! that got part of a response: those failures are a 502. hyper reports a close before the
//! response and a close within its head alike, so each connection counts the bytes read from it
//! (above TLS: a `close_notify` is no response). Each request sent again is counted
//! (`corsair_proxy_upstream_resent_total`). What is sent again is the request's head as it was
//! written to the lost connection, kept by the connection's stream as it writes it and read
//! back into a request: one copy of the bytes, where a copy of the request's fields cost two
//! short copies a field (BENCHMARKS.md, twelfth pass).
use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

use super::Body;

/// How the proxy connects to its upstreams (plain TCP, or TLS for `https://`).
pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Idle connections kept per upstream and worker; more are closed as they come back.
const MAX_IDLE: usize = 256;

/// A connection idle longer than this is closed rather than reused, when a request next looks
/// (upstreams commonly close theirs after 60 s or less).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The idle connections to one upstream, a stack per worker.
pub struct Pool {
    workers: Box<[Slot]>,
}

/// One worker's idle connections, on a cache line of its own: only that worker takes the lock
/// (uncontended: a few atomic operations), and no other core's writes invalidate it.
#[derive(Default)]
#[repr(align(64))]
struct Slot(Mutex<Vec<Idle>>);

thread_local! {
    /// The worker this thread is (0 on any other thread).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `index`: the connections it makes and takes are its own.
pub(super) fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// One connection to an upstream: hyper's handle on it, and what its stream shares.
struct Conn {
    send: SendRequest<Body>,
    shared: Arc<Shared>,
}

/// What an upstream connection's stream ([`Counted`], in the connection's task) shares with
/// the requests sent on it.
struct Shared {
    /// The bytes read from the connection (after TLS). Written only by the stream.
    read: AtomicU64,
    /// Whether the request going out may be sent again: its head is then kept, as written.
    keep: AtomicBool,
    /// That head.
    written: Mutex<Written>,
}

/// A head as a connection writes it: hyper offers each write the whole rest of it (the
/// upstream connection writes with a queue of buffers, [`connect`], and the head of a request
/// without a body is one buffer), so what the writes took, then what the last write not taken
/// was offered, is the whole head, however the connection fails.
#[derive(Default)]
struct Written {
    /// The bytes the connection took, then those a failed write was offered.
    taken: Vec<u8>,
    /// What the last write the connection was not ready for was offered (copied only then):
    /// should the connection fail before the next write, the rest of the head.
    waiting: Vec<u8>,
}

impl Shared {
    /// Keeps what a write of `bufs` took of them (all of them when it failed: the rest of the
    /// head, which a resend writes again), or, when the connection was not ready, what it was
    /// offered.
    fn wrote(&self, bufs: &[io::IoSlice<'_>], polled: &Poll<io::Result<usize>>) {
        let mut guard = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let w = &mut *guard;
        w.waiting.clear();
        let (mut take, kept) = match polled {
            Poll::Ready(Ok(n)) => (*n, &mut w.taken),
            Poll::Ready(Err(_)) => (usize::MAX, &mut w.taken),
            Poll::Pending => (usize::MAX, &mut w.waiting),
        };
        for buf in bufs {
            let n = take.min(buf.len());
            kept.extend_from_slice(&buf[..n]);
            take -= n;
        }
    }

    /// The head kept: what the writes took, then what a write not taken was offered.
    fn head(&self) -> Vec<u8> {
        let w = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        [&w.taken[..], &w.waiting[..]].concat()
    }

    /// Stops keeping heads, and forgets the one kept (a large buffer with it).
    fn forget(&self) {
        self.keep.store(false, Ordering::Relaxed);
        let mut guard = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let w = &mut *guard;
        for kept in [&mut w.taken, &mut w.waiting] {
            kept.clear();
            if kept.capacity() > HEAD_BUFFER_KEPT {
                *kept = Vec::new();
            }
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Why a request got no response from the upstream.
pub(super) enum Failure {
    /// No connection could be made (refused, unresolved, TLS, timed out).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed during the exchange.
    Http(hyper::Error),
    /// The response's head is over [`UPSTREAM_BUFFER`]: its size ([`head_over_limit`]).
    HeadOverLimit(usize),
}

/// A connection's kept head beyond this is not kept once the response has come: 256 idle
/// connections keep at most 4 MiB between them.
const HEAD_BUFFER_KEPT: usize = 16 * 1024;

/// Whether `req` may be sent again after its connection closes before the response: an
/// idempotent method (RFC 9110 §9.2.2), an empty body, and no `upgrade` asked for (a request
/// asking to switch protocols, which is the only one the proxy passes `Upgrade` for).
fn replayable(req: &Request<Body>, upgrade: bool) -> bool {
    matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) && req.body().is_end_stream()
        && !upgrade
}

/// The request whose head is `head`, as a connection wrote it, to be sent again (with an
/// empty body, which hyper frames as it framed the first: no body, the request's own
/// `Content-Length: 0` if it had one); None unless `head` is one whole request head, as it is
/// unless the connection failed before taking it all and hyper offered the rest to no write.
///
/// The head is hyper's writing of a request: a request line, then `name: value` lines, each
/// ended by CRLF, then CRLF. Each part is checked again as `http`'s types read it. (httparse,
/// hyper's parser, would read it too, but a second caller of it stops the compiler from
/// inlining it into hyper's own, which then costs each request more than this rare read saves.)
fn replay(head: &[u8]) -> Option<Request<Body>> {
    let head = head.strip_suffix(b"\r\n\r\n")?;
    // No part has a line feed or a carriage return (`HeaderValue` refuses them), so each line
    // feed ends a line.
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut line = lines.next()?.splitn(3, |&b| b == b' ');
    let mut req = Request::new(super::empty_body());
    *req.method_mut() = Method::from_bytes(line.next()?).ok()?;
    *req.uri_mut() = Uri::try_from(line.next()?).ok()?;
    *req.version_mut() = match line.next()? {
        b"HTTP/1.1" => Version::HTTP_11,
        b"HTTP/1.0" => Version::HTTP_10,
        _ => return None,
    };
    let headers = req.headers_mut();
    for field in lines {
        let colon = field.iter().position(|&b| b == b':')?;
        let (name, value) = field.split_at(colon);
        let value = value.get(1..)?;
        headers.append(
            HeaderName::from_bytes(name).ok()?,
            HeaderValue::from_bytes(value.strip_prefix(b" ").unwrap_or(value)).ok()?,
        );
    }
    Some(req)
}

/// Whether `e` says the connection closed or was reset, rather than that the upstream sent
/// something wrong (a malformed or oversized head) or that the proxy's side failed.
fn closed_or_reset(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

impl Pool {
    /// An empty pool for `workers` workers (at least one).
    pub(super) fn new(workers: usize) -> Self {
        Pool {
            workers: (0..workers.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    /// The idle connections of worker `index` (a thread that is no worker has the first's).
    fn idle(&self, index: usize) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let slot = match self.workers.get(index) {
            Some(slot) => slot,
            // Never empty: `new` makes one at least.
            None => &self.workers[0],
        };
        slot.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently returned connection of worker `index` that can take a request now.
    /// Closed and expired ones are dropped; those still finishing their previous exchange stay
    /// for later, in their places.
    fn take(&self, index: usize, now: Instant) -> Option<Conn> {
        let mut idle = self.idle(index);
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let c = &idle[i];
            if c.conn.send.is_closed() || now.saturating_duration_since(c.since) > IDLE_TIMEOUT {
                idle.remove(i);
            } else if c.conn.send.is_ready() {
                // The top of the stack in the common case: no element moves.
                return Some(idle.remove(i).conn);
            }
            // Otherwise its connection task has not yet seen the end of the last response
            // (rare: a connection comes back only once its response body has ended).
        }
        None
    }

    fn put(&self, index: usize, conn: Conn) {
        if conn.send.is_closed() {
            return;
        }
        let mut idle = self.idle(index);
        // One reading of the clock for the expiry and the connection's idle start.
        let now = Instant::now();
        // The bottom of the stack is the longest idle: once it has expired, so may others, which
        // a request taking from the top would never reach.
        if idle
            .first()
            .is_some_and(|c| now.saturating_duration_since(c.since) > IDLE_TIMEOUT)
        {
            idle.retain(|c| {
                now.saturating_duration_since(c.since) <= IDLE_TIMEOUT && !c.conn.send.is_closed()
            });
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }

    /// Sends `req` (its URI in origin form) to the upstream at `base`, on a connection of this
    /// worker's pool or a new one. The response's body returns the connection here once it has
    /// been read. A request a pooled connection lost before any response is sent again on a new
    /// one, when that is safe (see the module's documentation: `upgrade` says whether it asks
    /// to switch protocols); each request sent again adds one to `resent`. `now`: the time
    /// the request goes, which tells how long pooled connections have been idle.
    #[allow(clippy::manual_async_fn)] // An `async fn` would hold the request twice.
    pub(super) fn send<'a>(
        self: &'a Arc<Self>,
        connector: &'a Connector,
        base: &'a Uri,
        mut req: Request<Body>,
        upgrade: bool,
        now: Instant,
        resent: &'a AtomicU64,
    ) -> impl std::future::Future<Output = Result<Response<Body>, Failure>> + Send + 'a {
        async move {
            let worker = WORKER.with(Cell::get);
            let mut resending = false;
            while let Some(mut conn) = self.take(worker, now) {
                // Its head is kept as the connection writes it (the kept one is empty: it is
                // forgotten when a response comes). The request reaches the connection's task
                // through a channel, which orders this store before the stream's load.
                let keep = replayable(&req, upgrade);
                conn.shared.keep.store(keep, Ordering::Relaxed);
                // Bytes read before the request goes out: any more are its response's.
                let read = conn.shared.read.load(Ordering::Relaxed);
                match conn.send.try_send_request(req).await {
                    Ok(resp) => {
                        if keep {
                            conn.shared.forget();
                        }
                        let over = over_limit(&resp, &conn, read);
                        return checked(self.wrap(resp, conn, worker), over);
                    }
                    Err(mut e) => match e.take_message() {
                        // Closed before the request was written: the next connection takes it.
                        Some(unsent) => req = unsent,
                        None => {
                            let e = e.into_error();
                            let again = if keep
                                && closed_or_reset(&e)
                                && conn.shared.read.load(Ordering::Relaxed) == read
                            {
                                replay(&conn.shared.head())
                            } else {
                                None
                            };
                            match again {
                                Some(again) => {
                                    req = again;
                                    resending = true;
                                    break;
                                }
                                None => return Err(Failure::Http(e)),
                            }
                        }
                    },
                }
            }
            // Boxed: the connecting states are large, and only a new connection needs them (the
            // request's future, moved a few times, stays small). A new connection is never in the
            // keep-alive race, so a request sent again goes there, and is not sent a third time.
            let mut conn = Box::pin(connect(connector, base)).await?;
            if resending {
                // Counted once it goes out again: a resend whose connection fails is a 502 only.
                resent.fetch_add(1, Ordering::Relaxed);
            }
            let read = conn.shared.read.load(Ordering::Relaxed);
            match conn.send.send_request(req).await {
                Ok(resp) => {
                    let over = over_limit(&resp, &conn, read);
                    checked(self.wrap(resp, conn, worker), over)
                }
                Err(e) => Err(Failure::Http(e)),
            }
        }
    }

    fn wrap(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        conn: Conn,
        worker: usize,
    ) -> Response<Body> {
        // A connection that switched protocols belongs to the tunnel.
        let back = (resp.status() != http::StatusCode::SWITCHING_PROTOCOLS)
            .then(|| (conn, self.clone(), worker));
        resp.map(|body| {
            BodyExt::boxed(Pooled {
                body,
                back,
                ended: false,
            })
        })
    }
}

/// A new connection to the upstream at `base`, its task spawned.
async fn connect(connector: &Connector, base: &Uri) -> Result<Conn, Failure> {
    let stream = connector
        .clone()
        .call(base.clone())
        .await
        .map_err(Failure::Connect)?;
    let shared = Arc::new(Shared {
        read: AtomicU64::new(0),
        keep: AtomicBool::new(false),
        written: Mutex::new(Written::default()),
    });
    let io = Counted {
        stream: match stream {
            MaybeHttpsStream::Http(tcp) => Stream::Plain(tcp.into_inner()),
            MaybeHttpsStream::Https(tls) => Stream::Tls(Box::new(tls.into_inner())),
        },
        shared: shared.clone(),
    };
    let (send, conn) = http1::Builder::new()
        // A queue of buffers, which the stream writes with one system call when it can, and
        // whatever the stream: a request's head stays a buffer of its own, never joined to the
        // end of the last request's body, so the head kept for a resend is that head alone
        // ([`Written`]).
        .writev(true)
        // Each connection reads at most this much ahead of the client (hyper's default, 400 KiB,
        // made a 1 MiB body cost about half a MiB a connection while it streamed); it also
        // bounds an upstream's response head, as nginx's proxy_buffer_size does.
        .max_buf_size(UPSTREAM_BUFFER)
        .handshake(TokioIo::new(io))
        .await
        .map_err(Failure::Http)?;
    // The connection's task: one per upstream connection, for as long as it lives.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(Conn { send, shared })
}

/// The connector's stream, unwrapped from hyper's I/O traits to tokio's (which show how many
/// bytes a read brought) and wrapped back once, in [`Counted`]: as many layers as before.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TokioIo<TokioIo<TcpStream>>>>),
}

/// An upstream connection's stream, counting the bytes read from it (after TLS): a request
/// lost with its connection may be sent again only if none of a response had come; and
/// keeping the head of a request that may be sent again as it writes it.
struct Counted {
    stream: Stream,
    /// Its count is written only by the connection's task (or its tunnel), read by the
    /// request's.
    shared: Arc<Shared>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            // One writer: a load and a store, no read-modify-write needed.
            let read = &self.shared.read;
            read.store(read.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if self.shared.keep.load(Ordering::Relaxed) {
            self.shared.wrote(&[io::IoSlice::new(buf)], &polled);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if self.shared.keep.load(Ordering::Relaxed) {
            self.shared.wrote(bufs, &polled);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The bytes an upstream connection reads ahead, and the longest response head it accepts.
pub(super) const UPSTREAM_BUFFER: usize = 64 * 1024;

/// A response that brought at most these bytes has a head within [`UPSTREAM_BUFFER`] as
/// [`head_over_limit`] counts it ([`over_limit`]).
const HEAD_SURELY_WITHIN: u64 = (UPSTREAM_BUFFER as u64 - 67) / 2;

/// `resp`, or its head's size should it be over the limit ([`over_limit`]): the response is
/// then dropped here, as its caller dropped it before, and its connection goes back to the pool
/// only if its body had already ended.
fn checked(resp: Response<Body>, over: Option<usize>) -> Result<Response<Body>, Failure> {
    match over {
        None => Ok(resp),
        Some(size) => Err(Failure::HeadOverLimit(size)),
    }
}

/// The size of `resp`'s head when it is over [`UPSTREAM_BUFFER`]; `read`: the count of bytes
/// read from `conn` before its request went out.
///
/// The head came within the bytes read since, and [`head_over_limit`] counts it as at most
/// twice those bytes and 67 more (each field at least 3 bytes read, `n:` and a line feed,
/// counted with 2 more, `: ` and CRLF; the status line counted 3 bytes more than its shortest
/// form, with a reason of at most 64): a response that brought fewer than half the limit's
/// bytes is within it, without counting its fields one by one.
fn over_limit(resp: &Response<Incoming>, conn: &Conn, read: u64) -> Option<usize> {
    let since = conn
        .shared
        .read
        .load(Ordering::Relaxed)
        .saturating_sub(read);
    if since <= HEAD_SURELY_WITHIN {
        None
    } else {
        head_over_limit(resp)
    }
}

/// The size of `resp`'s head when it is over [`UPSTREAM_BUFFER`], counted as its status line
/// and each field as `name: value` with its CRLF. hyper enforces its buffer size only between
/// reads, so a longer head that arrives within one read gets through; this makes the bound
/// exact whichever way the bytes arrived.
fn head_over_limit<B>(resp: &Response<B>) -> Option<usize> {
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

/// A response body that returns its connection to its worker's pool when dropped after its end
/// (a body dropped before, by a client that went away, leaves its connection to close).
struct Pooled {
    body: Incoming,
    back: Option<(Conn, Arc<Pool>, usize)>,
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
        if super::ends(&polled, &self.body) {
            self.ended = true;
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
            if let Some((conn, pool, worker)) = self.back.take() {
                pool.put(worker, conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shared() -> Shared {
        Shared {
            read: AtomicU64::new(0),
            keep: AtomicBool::new(true),
            written: Mutex::new(Written::default()),
        }
    }

    #[test]
    fn the_kept_head_is_what_writes_took_then_what_the_last_write_not_taken_was_offered() {
        let s = shared();
        let (a, b) = (
            io::IoSlice::new(b"GET / HT"),
            io::IoSlice::new(b"TP/1.1\r\n"),
        );
        // Not ready: the whole rest is kept aside, as the head should the connection fail now.
        s.wrote(&[a, b], &Poll::Pending);
        assert_eq!(s.head(), b"GET / HTTP/1.1\r\n");
        // Part of the first buffer, then the rest of it and part of the second.
        s.wrote(&[a, b], &Poll::Ready(Ok(3)));
        assert_eq!(s.head(), b"GET");
        let (a, b) = (io::IoSlice::new(b" / HT"), io::IoSlice::new(b"TP/1.1\r\n"));
        s.wrote(&[a, b], &Poll::Ready(Ok(7)));
        assert_eq!(s.head(), b"GET / HTTP");
        // Not ready for the rest, which is offered again later: taken, then what waits.
        let rest = io::IoSlice::new(b"/1.1\r\n");
        s.wrote(&[rest], &Poll::Pending);
        assert_eq!(s.head(), b"GET / HTTP/1.1\r\n");
        s.wrote(&[rest], &Poll::Pending);
        assert_eq!(s.head(), b"GET / HTTP/1.1\r\n");
        // A write that fails was offered the rest: all of it is kept, once.
        s.wrote(&[rest], &Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())));
        assert_eq!(s.head(), b"GET / HTTP/1.1\r\n");
        s.forget();
        assert_eq!(s.head(), b"");
        assert!(!s.keep.load(Ordering::Relaxed));
    }

    #[test]
    fn a_kept_head_reads_back_into_the_same_request_and_a_partial_one_into_none() {
        let head = b"PUT /a/b?c=d HTTP/1.1\r\nhost: up.test:9000\r\nx-a: 1\r\n\
                     content-length: 0\r\nx-a: 2\r\nforwarded: for=192.0.2.7;proto=http\r\n\r\n";
        let req = replay(head).unwrap();
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri(), "/a/b?c=d");
        assert_eq!(req.version(), Version::HTTP_11);
        let fields: Vec<(&str, &[u8])> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        assert_eq!(
            fields,
            [
                ("host", &b"up.test:9000"[..]),
                ("x-a", b"1"),
                ("x-a", b"2"),
                ("content-length", b"0"),
                ("forwarded", b"for=192.0.2.7;proto=http"),
            ]
        );
        assert!(req.body().is_end_stream());
        // Cut anywhere, or with bytes after it, it is no request to send again.
        for cut in [0, 5, 30, head.len() - 2, head.len() - 1] {
            assert!(replay(&head[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = head.to_vec();
        longer.extend_from_slice(b"abc");
        assert!(replay(&longer).is_none());
    }

    /// A response, and its head's bytes as an upstream may send it at its shortest:
    /// the status line `HTTP/1.1 511` and a line feed, each field `name:value` and a line
    /// feed, then a line feed.
    fn response(fields: &[(&'static str, usize)]) -> (Response<()>, u64) {
        let mut resp = Response::new(());
        // The longest canonical reason ("Network Authentication Required", 31 bytes).
        *resp.status_mut() = http::StatusCode::NETWORK_AUTHENTICATION_REQUIRED;
        let mut wire = "HTTP/1.1 511\n".len() + 1;
        for &(name, len) in fields {
            resp.headers_mut().append(
                HeaderName::from_static(name),
                HeaderValue::from_str(&"v".repeat(len)).unwrap(),
            );
            wire += name.len() + 1 + len + 1;
        }
        (resp, wire as u64)
    }

    #[test]
    fn a_response_within_half_the_buffer_is_never_over_the_limit() {
        // The shapes head_over_limit counts longest against their bytes: the most fields (one
        // letter, no value), and one field that fills it all.
        let fields = vec![("a", 0); ((HEAD_SURELY_WITHIN - 14) / 3) as usize];
        let (many, wire) = response(&fields);
        assert!(wire <= HEAD_SURELY_WITHIN, "{wire}");
        assert_eq!(head_over_limit(&many), None);
        let (one, wire) = response(&[("a", HEAD_SURELY_WITHIN as usize - 17)]);
        assert_eq!(wire, HEAD_SURELY_WITHIN);
        assert_eq!(head_over_limit(&one), None);
        // The bound is needed: the same field at the buffer's size is over.
        let (big, _) = response(&[("a", UPSTREAM_BUFFER - 17)]);
        assert_eq!(head_over_limit(&big), Some(UPSTREAM_BUFFER + 36));
    }
}
