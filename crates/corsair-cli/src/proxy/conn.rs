//! One client connection, from its first byte to its close: HTTP/2 (with prior knowledge, or
//! by ALPN over TLS) or HTTP/1.1, and, for plain HTTP/1.1, the release of everything the
//! connection holds while it is idle between requests.
//!
//! hyper keeps a connection's state (two buffers of 8 KiB and the request's future, about
//! 22 KiB in all) for as long as the connection is open, idle or not; nginx gives its buffers
//! back when a request ends. So a plain HTTP/1.1 connection is served here in runs: hyper
//! serves it until it has been idle for [`RELEASE_AFTER`], then it is shut down gracefully
//! without closing the socket, and the socket waits for its next byte alone, parked outside any
//! task ([`park`]), as a new connection silent for [`FIRST_BYTES_IN_TASK`] does.
//! What hyper had read and not yet parsed (part of the next request) is handed to the next run
//! first. A connection is released only when no response is being written, the last request
//! had no body or its body was read to its end as it was forwarded (otherwise hyper might not
//! have read it to its end), and no write is waiting for the client (hyper may still have to
//! close after it), so no exchange is cut or changed.
//!
//! A connection that switched protocols (a WebSocket) lives on as its tunnel in the same task:
//! it stays counted open, within `--max-connections`, and shutdown waits for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::park::{self, Resume};
use super::{handle, Body, State};

/// How long a plain HTTP/1.1 connection stays idle before what hyper holds for it is released.
/// Long enough that a connection under load is never released between its requests (it pays
/// one check of its timer per period), short enough that idle connections cost little.
pub(super) const RELEASE_AFTER: Duration = Duration::from_millis(250);

/// What an HTTP/2 client sends first (prior knowledge, RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a connection waits in its task for its first bytes (a new one, or one woken from
/// the park) before it is parked ([`park`]): a client that connects and then writes its
/// request at once is served without the park's two system calls each way.
pub(super) const FIRST_BYTES_IN_TASK: Duration = RELEASE_AFTER;

/// Serves one client connection from its first byte (or, woken from the park, its next) to
/// its close, or, once `stop` changes, until its requests in flight are answered. The HTTP
/// machinery, its buffers and the connection's [`handle::Peer`] exist only while there is
/// something to serve (the peer's address too: it is asked of the socket when a run begins).
/// A connection silent for a while leaves its task for the worker's park, which costs it a
/// 16-byte slab entry, and comes back in a task of its own when its bytes come. It counts as
/// open until it ends (`open`, dropped after the socket).
pub(super) async fn connection(
    open: super::Open,
    state: Arc<State>,
    tcp: TcpStream,
    mut stop: watch::Receiver<()>,
    resume: Resume,
) {
    let Some((mut open, mut tcp, mut first)) =
        next_bytes(open, tcp, &state, &mut stop, FIRST_BYTES_IN_TASK, resume).await
    else {
        return;
    };
    if resume == Resume::Fresh {
        // `P` or `PR` alone (a client writing its request in small pieces): the next bytes
        // tell HTTP/2's preface from POST, PUT, PATCH or PROPFIND. Looked at again every
        // 10 ms, for a second at most; then served as HTTP/1.1, whose parser answers whatever
        // it is.
        let mut looks = 0;
        while first == First::TooFew && looks < 100 {
            looks += 1;
            // In a box: this rare wait does not make every connection's future larger.
            Box::pin(tokio::time::sleep(Duration::from_millis(10))).await;
            first = match first_bytes(&tcp, &state.metrics.idle, &mut stop, None).await {
                Wait::Bytes(first) => first,
                Wait::Gone | Wait::Quiet => return,
            };
        }
        // Each in a box of its own, so that the connection's future does not carry their size.
        if state.tls.is_some() {
            Box::pin(serve_tls(state, tcp, stop)).await;
            drop(open);
            return;
        }
        if first == First::Http2 {
            let Some(addr) = peer_addr(&tcp) else { return };
            let peer = Arc::new(handle::Peer::new(addr, false, None));
            Box::pin(serve_whole(state, TokioIo::new(tcp), peer, stop)).await;
            drop(open);
            return;
        }
    }
    let mut unread = Bytes::new();
    loop {
        let run = Box::pin(serve_http1(&state, tcp, unread, &mut stop));
        let Some((released, left)) = run.await else {
            return;
        };
        (tcp, unread) = (released, left);
        state.metrics.releases.fetch_add(1, Ordering::Relaxed);
        // Released: it has been idle for [`RELEASE_AFTER`] already, so without a byte waiting
        // it is parked at once; when woken, it is served over HTTP/1.1 still, whatever the
        // bytes.
        if unread.is_empty() {
            let Some((o, t, _)) =
                next_bytes(open, tcp, &state, &mut stop, Duration::ZERO, Resume::Http1).await
            else {
                return;
            };
            (open, tcp) = (o, t);
        }
    }
}

/// Waits for a connection's next bytes (its first, or a released one's next): in this task for
/// `grace`, then in the worker's park. What they say, with the socket and its guard; `None`
/// when the connection closed, the proxy stops, or the connection was parked (a task of its
/// own serves it once its bytes come, as `resume` says). A connection the park cannot take
/// waits on in its task.
async fn next_bytes(
    mut open: super::Open,
    mut tcp: TcpStream,
    state: &State,
    stop: &mut watch::Receiver<()>,
    grace: Duration,
    resume: Resume,
) -> Option<(super::Open, TcpStream, First)> {
    let mut grace = Some(grace);
    loop {
        match first_bytes(&tcp, &state.metrics.idle, stop, grace).await {
            Wait::Bytes(first) => return Some((open, tcp, first)),
            Wait::Gone => {
                drop(tcp);
                drop(open);
                return None;
            }
            Wait::Quiet => {
                (open, tcp) = park::park(open, tcp, resume, state)?;
                grace = None;
            }
        }
    }
}

/// The client's address; None when the connection is already gone (reset).
fn peer_addr(tcp: &TcpStream) -> Option<SocketAddr> {
    tcp.peer_addr().ok()
}

/// What a connection's first bytes say of its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    Http1,
    /// HTTP/2's preface, as far as it has come (3 bytes at least: no HTTP/1 method begins
    /// `PRI`).
    Http2,
    /// `P` or `PR`, which may begin either.
    TooFew,
}

/// The bytes of HTTP/2's preface that tell it from every HTTP/1 request line.
const PREFACE_DECIDES: usize = 3;

/// How a wait of [`first_bytes`] ended.
enum Wait {
    /// Bytes came: what they say.
    Bytes(First),
    /// The connection closed, or the proxy stops.
    Gone,
    /// Nothing came within the grace period.
    Quiet,
}

/// Waits for a connection's first bytes, or a released one's next (without reading them), or
/// for shutdown, counted idle; for `grace` at most, if given (one look only when it is zero).
/// (A peek, not `readable()`: a new socket is reported readable before any byte. And a peek by
/// `poll_peek`, whose waker the socket's registration keeps, rather than by `peek`'s future,
/// which would make the connection's future larger by its waiter.)
async fn first_bytes(
    tcp: &TcpStream,
    idle: &AtomicUsize,
    stop: &mut watch::Receiver<()>,
    grace: Option<Duration>,
) -> Wait {
    let _idle = Idle::count(idle);
    let stopped = stop.changed();
    tokio::pin!(stopped);
    // Set when the first look finds nothing: a connection whose bytes are there reads no
    // clock and sets no timer.
    let mut quiet = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        if stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Wait::Gone);
        }
        let mut first = [0u8; 24];
        let mut buf = tokio::io::ReadBuf::new(&mut first);
        match tcp.poll_peek(cx, &mut buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(1..)) => {
                let got = buf.filled();
                return Poll::Ready(Wait::Bytes(if H2_PREFACE.get(..got.len()) != Some(got) {
                    First::Http1
                } else if got.len() >= PREFACE_DECIDES {
                    First::Http2
                } else {
                    First::TooFew
                }));
            }
            Poll::Ready(_) => return Poll::Ready(Wait::Gone),
        }
        let Some(grace) = grace else {
            return Poll::Pending;
        };
        if grace.is_zero() {
            return Poll::Ready(Wait::Quiet);
        }
        if quiet.is_none() {
            quiet.set(Some(tokio::time::sleep(grace)));
        }
        match quiet.as_mut().as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Wait::Quiet),
            _ => Poll::Pending,
        }
    })
    .await
}

/// One run of a plain HTTP/1.1 connection (which has sent its first bytes, or `unread`): hyper
/// serves it until it closes (`None`, after its tunnel if it switched protocols) or has been
/// idle for [`RELEASE_AFTER`]: then the socket back, with what hyper read and did not parse.
async fn serve_http1(
    state: &Arc<State>,
    tcp: TcpStream,
    unread: Bytes,
    stop: &mut watch::Receiver<()>,
) -> Option<(TcpStream, Bytes)> {
    let addr = peer_addr(&tcp)?;
    let activity = Arc::new(Activity::default());
    let peer = Arc::new(handle::Peer::new(addr, false, Some(activity.clone())));
    let socket = Socket {
        tcp: TokioIo::new(tcp),
        unread,
        activity: activity.clone(),
    };
    let Some(idle) = run(state, &peer, socket, &activity, stop).await else {
        // A connection hyper handed over (an upgrade) lives on as its tunnel, in this task.
        peer.tunnel().await;
        return None;
    };
    Some((idle.tcp.into_inner(), idle.unread))
}

/// hyper serving `socket` over HTTP/1.1 until the connection closes (`None`) or has been idle
/// for [`RELEASE_AFTER`] (the socket back, with the bytes hyper read and did not parse).
async fn run(
    state: &Arc<State>,
    peer: &Arc<handle::Peer>,
    socket: Socket,
    activity: &Arc<Activity>,
    stop: &mut watch::Receiver<()>,
) -> Option<Socket> {
    activity.releasing.store(false, Ordering::Relaxed);
    let service = {
        let (state, peer, activity) = (state.clone(), peer.clone(), activity.clone());
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let in_flight =
                InFlight::start(&activity, !hyper::body::Body::is_end_stream(req.body()));
            handle::handle(state.clone(), peer.clone(), req, |response| {
                response.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                })
            })
        })
    };
    let mut conn = state
        .http1
        .serve_connection(socket, service)
        .with_upgrades();
    let release = tokio::time::sleep(RELEASE_AFTER);
    tokio::pin!(release);
    // The requests received when the run began, and when the timer was last set: it fires
    // once per period, and the connection is released only if none came since. Not before
    // the run has answered one: hyper counts a connection between requests only from then on
    // (before, shutting it down would close it after its next answer).
    let start = activity.served.load(Ordering::Relaxed);
    let mut armed = start;
    // Once its first poll has left this task's waker with the channel, the wait for shutdown
    // is polled again only when the channel has news: a poll of it costs more than the look,
    // and the connection's task is polled about twice a request. Outside tokio's budget, so
    // that the first poll always leaves the waker (an exhausted budget would make it return
    // before, and nothing would poll it again).
    let news = stop.clone();
    let mut waiting = false;
    let stopped = tokio::task::coop::unconstrained(stop.changed());
    tokio::pin!(stopped);
    loop {
        // The connection first; then, once it is between requests (which only its own poll can
        // bring about), the timer.
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(done) = Pin::new(&mut conn).poll(cx) {
                return Poll::Ready(Next::Done(done.is_ok()));
            }
            if !waiting || news.has_changed().unwrap_or(true) {
                if stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Next::Stop);
                }
                waiting = true;
            }
            let idle = activity.idle()
                && activity.served.load(Ordering::Relaxed) != start
                && !activity.releasing.load(Ordering::Relaxed);
            if idle && release.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Next::Timer);
            }
            Poll::Pending
        })
        .await;
        match next {
            Next::Done(ok) => {
                if !ok || !activity.releasing.load(Ordering::Relaxed) {
                    return None;
                }
                let parts = conn.into_parts()?;
                let mut socket = parts.io;
                socket.unread = join(parts.read_buf, std::mem::take(&mut socket.unread));
                return Some(socket);
            }
            Next::Stop => {
                Pin::new(&mut conn).graceful_shutdown();
                let _ = conn.await;
                return None;
            }
            Next::Timer => {
                let served = activity.served.load(Ordering::Relaxed);
                if served == armed {
                    // hyper is between requests: it stops at once, without shutting the socket.
                    activity.releasing.store(true, Ordering::Relaxed);
                    Pin::new(&mut conn).graceful_shutdown();
                } else {
                    armed = served;
                    release
                        .as_mut()
                        .reset(tokio::time::Instant::now() + RELEASE_AFTER);
                }
            }
        }
    }
}

/// What ended a wait of [`run`].
enum Next {
    /// The connection ended (`true` without an error).
    Done(bool),
    /// The proxy is stopping.
    Stop,
    /// The release timer fired while the connection was between requests.
    Timer,
}

/// Bytes read from the client and not yet served: hyper's leftover, then the run's own.
fn join(first: Bytes, then: Bytes) -> Bytes {
    match (first.is_empty(), then.is_empty()) {
        (true, _) => then,
        (_, true) => first,
        _ => {
            let mut both = BytesMut::with_capacity(first.len() + then.len());
            both.extend_from_slice(&first);
            both.extend_from_slice(&then);
            both.freeze()
        }
    }
}

/// Serves one TLS client connection: the handshake, then HTTP/2 or HTTP/1.1 as ALPN chose. A
/// future of its own, so that plain connections do not carry the TLS state's size.
async fn serve_tls(state: Arc<State>, tcp: TcpStream, stop: watch::Receiver<()>) {
    let (Some(tls), Some(addr)) = (&state.tls, peer_addr(&tcp)) else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.load_full());
    let handshake = tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(tcp));
    if let Ok(Ok(stream)) = handshake.await {
        let peer = Arc::new(handle::Peer::new(addr, true, None));
        serve_whole(state, TokioIo::new(stream), peer, stop).await;
    }
}

/// Serves a connection as one whole (HTTP/2, or HTTP/1.1 over TLS) until it closes, or, once
/// `stop` changes, until its requests in flight are answered.
async fn serve_whole<I>(
    state: Arc<State>,
    io: TokioIo<I>,
    peer: Arc<handle::Peer>,
    mut stop: watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let (state, peer) = (state.clone(), peer.clone());
        hyper::service::service_fn(move |req| {
            handle::handle(state.clone(), peer.clone(), req, |response| response)
        })
    };
    let conn = state.http.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    // A connection hyper handed over (an upgrade) lives on as its tunnel, in this task.
    peer.tunnel().await;
}

/// The time a client has to finish its TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// A connection counted as idle (waiting with no HTTP state) until dropped.
struct Idle<'a>(&'a AtomicUsize);

impl<'a> Idle<'a> {
    fn count(idle: &'a AtomicUsize) -> Self {
        idle.fetch_add(1, Ordering::Relaxed);
        Idle(idle)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a plain HTTP/1.1 connection's runs share: whether hyper is between requests.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Requests received whose response is not yet written out (its body dropped by hyper).
    in_flight: AtomicUsize,
    /// Requests received, counting round: a change means the connection was not idle.
    served: AtomicU32,
    /// The last request had a body, which hyper may not have read to its end: the connection
    /// is kept whole until its next request, or until the body forwarded upstream has been
    /// read to its end ([`ReadToEnd`]). 0 when not; otherwise the request's number (`served`
    /// once it came) plus one, so that a body ending late clears only its own request's mark.
    body: AtomicU64,
    /// The run is stopping to release the connection: its socket stays open.
    releasing: AtomicBool,
    /// hyper's last write or flush is waiting for the client to take bytes: a response body
    /// hyper has dropped may still be on its way, and with it the close that ends a response
    /// without a length (HTTP/1.0, `Connection: close`), which a release would skip.
    writing: AtomicBool,
}

impl Activity {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.body.load(Ordering::Relaxed) == 0
            && !self.writing.load(Ordering::Relaxed)
    }

    /// Notes whether a write or flush is still waiting, and passes its result on.
    fn wrote<T>(&self, polled: Poll<T>) -> Poll<T> {
        self.writing.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }

    /// For the request being handled (the last one received: hyper reads the next only once
    /// this one is answered), what clears its body's mark once the body has been read to its
    /// end; None when it has no body.
    pub(super) fn body_end(self: &Arc<Self>) -> Option<BodyEnd> {
        let mark = self.body.load(Ordering::Relaxed);
        (mark != 0).then(|| BodyEnd {
            activity: self.clone(),
            mark,
        })
    }
}

/// A request counted in flight until its response body is dropped (written out, or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>, body: bool) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let served = activity
            .served
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        let mark = if body { u64::from(served) + 1 } else { 0 };
        activity.body.store(mark, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Clears a request's body mark ([`Activity::body`]) when told its body was read to the end.
pub(super) struct BodyEnd {
    activity: Arc<Activity>,
    mark: u64,
}

/// A request body forwarded upstream that notes when it has been read to its end. hyper's
/// decoder leaves the body's state before it hands over the last bytes, so by then what hyper
/// holds for the connection is what it holds after a request without a body: the connection
/// may be released.
pub(super) struct ReadToEnd {
    body: Incoming,
    end: Option<BodyEnd>,
}

impl ReadToEnd {
    pub(super) fn new(body: Incoming, end: BodyEnd) -> Self {
        ReadToEnd {
            body,
            end: Some(end),
        }
    }

    fn ended(&mut self) {
        if let Some(end) = self.end.take() {
            // Only if it is still this request's mark (never a later request's).
            let _ = end.activity.body.compare_exchange(
                end.mark,
                0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

impl hyper::body::Body for ReadToEnd {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if super::ends(&polled, &self.body) {
            self.ended();
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

/// A response body that keeps its request counted in flight.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A plain client socket as hyper reads it: first the bytes an earlier run read and left, and
/// a shutdown that does nothing while the connection is being released.
struct Socket {
    tcp: TokioIo<TcpStream>,
    unread: Bytes,
    activity: Arc<Activity>,
}

impl Read for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            return Pin::new(&mut self.tcp).poll_read(cx, buf);
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(self.unread.get(..n).unwrap_or_default());
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Write for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.activity.wrote(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.tcp).poll_flush(cx);
        self.activity.wrote(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.releasing.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
