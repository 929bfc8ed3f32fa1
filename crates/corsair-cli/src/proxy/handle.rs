//! One request: the CORS decision, then the answer, the upstream's response, or a tunnel for
//! an upgraded connection (WebSocket).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corsair::server::{answer, answer_upgrade, is_upgrade, Action, Outcome, Reasons};
use http::header::{Entry, HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::log::access_log;
use super::metrics::{Limit, UpstreamError};
use super::policy::Upstream;
use super::pool::Failure;
use super::{Body, State};

/// `--dev`: an allowed origin may read every header the upstream sent, except those scripts
/// can never read (Set-Cookie, Set-Cookie2), those they can always read, and CORS's own.
fn expose_all(headers: &mut HeaderMap, upstream: &[HeaderName]) {
    if !headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for n in upstream {
        let n = n.as_str();
        if !corsair::browser::safelist::is_exposure_moot(n)
            && !n.starts_with("access-control-")
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    if names.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

/// Hop-by-hop headers, never forwarded (RFC 9110 §7.6.1). A static rather than a `const`: a
/// `const` array is built (and dropped) again wherever it is used.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What [`hop_by_hop_index`] says of a name that is no hop-by-hop header but an underscore
/// spelling of a forwarding header (`X_Forwarded_For`), which an upstream that reads names as
/// CGI does (`HTTP_X_FORWARDED_FOR`, as PHP and WSGI servers do) would take for the proxy's own.
const UNDERSCORED: usize = HOP_BY_HOP.len();

/// The place of `name` in [`HOP_BY_HOP`], or [`UNDERSCORED`]: a match on the name (by its
/// length, then its bytes) rather than nine comparisons for each header.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "x_forwarded_for" | "x-forwarded_for" | "x_forwarded-for" | "x_forwarded_proto"
        | "x-forwarded_proto" | "x_forwarded-proto" | "x_forwarded_host" | "x-forwarded_host"
        | "x_forwarded-host" => UNDERSCORED,
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "proxy-connection" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Removes the hop-by-hop headers, and those `Connection` names; from a `request`, the
/// underscore spellings of the forwarding headers too ([`UNDERSCORED`]). One pass over the
/// names finds which are there: most requests have none, and most responses only
/// `Connection`. Whether `Connection` named any header (which may then have gone).
fn strip_hop_by_hop(headers: &mut HeaderMap, request: bool) -> bool {
    let mut present = 0u16;
    let mut underscored = Vec::new();
    for name in headers.keys() {
        match hop_by_hop_index(name) {
            Some(UNDERSCORED) if request => underscored.push(name.clone()),
            Some(UNDERSCORED) | None => {}
            Some(i) => present |= 1 << i,
        }
    }
    // Rare: a Vec that stays empty allocates nothing.
    for name in underscored {
        headers.remove(name);
    }
    if present == 0 {
        return false;
    }
    let mut named_any = false;
    if present & 1 != 0 {
        // `Connection: keep-alive` or `close`, as most responses have, names nothing to remove:
        // then one look-up both reads and removes it.
        if let Entry::Occupied(connection) = headers.entry(CONNECTION) {
            let only_hop_by_hop = connection.iter().all(|v| {
                let v = v.as_bytes();
                v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")
            });
            if only_hop_by_hop {
                connection.remove_entry();
                present &= !1;
            } else {
                let named: Vec<HeaderName> = connection
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .filter(|n| {
                        !n.is_empty()
                            && !HOP_BY_HOP
                                .iter()
                                .any(|h| h.as_str().eq_ignore_ascii_case(n))
                    })
                    .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                    .collect();
                // Those it names go first, then the hop-by-hop ones, Connection first.
                named_any = !named.is_empty();
                for n in named {
                    headers.remove(n);
                }
            }
        }
    }
    // The rest, in the list's order: only the names present are looked at.
    while present != 0 {
        let i = present.trailing_zeros() as usize;
        present &= present - 1;
        if let Some(name) = HOP_BY_HOP.get(i) {
            headers.remove(name);
        }
    }
    named_any
}

/// A client connection's address, and the parts of the forwarding headers made from it:
/// written once a connection rather than once a request.
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    /// The client's IP, as `X-Forwarded-For` ends with it.
    ip: HeaderValue,
    /// `Forwarded` for a request without a host: `for=…;proto=…`.
    forwarded: HeaderValue,
    /// The last host a request of this connection named, and its `Forwarded` value: a
    /// connection's requests name one host, so the value is written once, not once a request.
    forwarded_host: Mutex<Option<(HeaderValue, HeaderValue)>>,
    /// `http` or `https`: what the client spoke to the proxy.
    proto: &'static str,
    /// The tunnel of an upgraded request, which the connection's task runs once hyper has
    /// handed the connection over ([`Peer::tunnel`]): the connection stays counted open (and
    /// within `--max-connections`), and shutdown waits for it as for a request in flight.
    tunnel: Mutex<Option<Tunnel>>,
    /// A plain HTTP/1.1 connection's state, told when a forwarded request body has been read
    /// to its end (the connection may then be released while idle).
    activity: Option<Arc<super::conn::Activity>>,
    /// A plain HTTP/1.1 connection's timer for the upstream's answer ([`Peer::deadline`]).
    timer: Option<Mutex<Pin<Box<tokio::time::Sleep>>>>,
}

/// A tunnel's copying, to be run by the connection's task.
type Tunnel = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Peer {
    pub(super) fn new(
        addr: SocketAddr,
        tls: bool,
        activity: Option<Arc<super::conn::Activity>>,
    ) -> Self {
        let ip = addr.ip().to_string();
        let proto = if tls { "https" } else { "http" };
        let forwarded = if addr.is_ipv6() {
            format!("for=\"[{ip}]\";proto={proto}")
        } else {
            format!("for={ip};proto={proto}")
        };
        Peer {
            addr,
            // An IP address and these parameters are visible ASCII, always a valid value.
            ip: HeaderValue::from_maybe_shared(Bytes::from(ip))
                .unwrap_or(HeaderValue::from_static("unknown")),
            forwarded: HeaderValue::from_maybe_shared(Bytes::from(forwarded))
                .unwrap_or(HeaderValue::from_static("for=unknown")),
            forwarded_host: Mutex::new(None),
            proto,
            tunnel: Mutex::new(None),
            // Set before each use (the first setting registers it with the timer wheel).
            timer: activity
                .is_some()
                .then(|| Mutex::new(Box::pin(tokio::time::sleep(Duration::ZERO)))),
            activity,
        }
    }

    /// The connection's timer for the upstream's answer, set to `deadline`; None when the
    /// connection has none (HTTP/2 and TLS: each request then has a timer of its own).
    ///
    /// An HTTP/1.1 connection has one request in flight at a time, so its requests can share
    /// one timer, set again for each. While the last deadline has not passed, as under load, a
    /// later one is an atomic store in tokio's timer; a timer of its own cost each request a
    /// registration and a removal under the timer wheel's lock (about 320 instructions,
    /// BENCHMARKS.md, twelfth pass), which the shared one pays only at the first request of a
    /// run (a connection's run ends when it has been idle for 250 ms), after a timeout, and
    /// after an idle gap longer than the timeout. When the wheel reaches the deadline the timer
    /// was registered for, it finds the later one and moves the timer there.
    fn deadline(
        &self,
        deadline: tokio::time::Instant,
    ) -> Option<&Mutex<Pin<Box<tokio::time::Sleep>>>> {
        let timer = self.timer.as_ref()?;
        timer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .reset(deadline);
        Some(timer)
    }

    /// `Forwarded` for a request that named `host`: `for=…;proto=…;host="…"`, or without the
    /// host when it is not one a client can name (letters, digits, `-._~`, a port, an IPv6
    /// literal's brackets and colons, percent-encoding): a Host such as `a";for=1.2.3.4` would
    /// otherwise end the quoted host and add a parameter of its own. The last one written is
    /// kept for the next request.
    fn forwarded(&self, host: &HeaderValue) -> HeaderValue {
        let mut last = self
            .forwarded_host
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((named, value)) = &*last {
            if named == host {
                return value.clone();
            }
        }
        let host_bytes = host.as_bytes();
        let plain = host_bytes.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'[' | b']' | b'%')
        });
        if !plain {
            return self.forwarded.clone();
        }
        let base = self.forwarded.as_bytes();
        let mut v = Vec::with_capacity(base.len() + host_bytes.len() + 8);
        v.extend_from_slice(base);
        v.extend_from_slice(b";host=\"");
        v.extend_from_slice(host_bytes);
        v.push(b'"');
        // Visible ASCII only, which a value allows.
        let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(v)) else {
            return self.forwarded.clone();
        };
        *last = Some((host.clone(), value.clone()));
        value
    }

    /// Runs the tunnel an upgraded request of this connection left, if any: called by the
    /// connection's task once hyper has finished with the connection.
    pub(super) async fn tunnel(&self) {
        let tunnel = self
            .tunnel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tunnel) = tunnel {
            tunnel.await;
        }
    }

    /// Leaves `tunnel` for the connection's task; spawned on its own should one already wait
    /// (an HTTP/1.1 connection upgrades at most once, so it never does).
    fn leave(&self, tunnel: Tunnel) {
        let mut slot = self.tunnel.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(tunnel);
        } else {
            drop(slot);
            tokio::spawn(tunnel);
        }
    }
}

pub(super) fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Answers `req`. The decision, and the request as it goes upstream, are worked out when this
/// is called; the future returned holds only what the answer needs from then on, and awaits
/// once, so that it holds nothing twice (an `async fn` holds its arguments twice, and a future
/// awaited within another is held by both). It is what a connection keeps for its request in
/// flight: with 256 connections busy it has left the processor's caches by its next poll, so
/// its size costs each request (BENCHMARKS.md, tenth pass).
///
/// `wrap` is given the response last (the HTTP/1.1 connection tracks its body with it), so
/// that no other future is wrapped around this one.
pub(super) fn handle<B>(
    state: Arc<State>,
    peer: Arc<Peer>,
    mut req: Request<Incoming>,
    wrap: impl FnOnce(Response<Body>) -> Response<B> + Send,
) -> impl Future<Output = Result<Response<B>, Infallible>> + Send {
    let size = head_size(&req);
    let too_big = size > state.max_header_bytes;
    let reasons = if state.exact {
        Reasons::Always
    } else {
        Reasons::WhenTraced
    };
    // `Upgrade: h2c` asks for HTTP/2 on this connection: the proxy speaks HTTP/2 itself (with
    // prior knowledge, or by ALPN over TLS), so that offer is declined, never passed on.
    let upgrade = is_upgrade(req.headers())
        && req
            .headers()
            .get(UPGRADE)
            .is_some_and(|p| !p.as_bytes().eq_ignore_ascii_case(b"h2c"));
    // The policies and upstreams in force now; a reload during the request changes neither.
    let routing = state.routing.load();
    let decision = if upgrade {
        // A WebSocket handshake from a page the policy does not allow: refused (403) here,
        // since browsers apply no CORS check to the connection.
        answer_upgrade(
            &routing.policies,
            req.method(),
            req.uri().path(),
            req.headers(),
        )
    } else {
        answer(
            &routing.policies,
            req.method(),
            req.uri().path(),
            req.headers(),
            reasons,
        )
    };
    let outcome = decision.outcome();
    // What the access log needs of the request, taken only when there is one.
    let logged = state.log.map(|format| {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), ToString::to_string);
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        (format, Instant::now(), req.method().clone(), path, origin)
    });
    let (action, cors_headers) = decision.into_parts();
    if too_big {
        state.metrics.limited(Limit::HeaderBytes);
    } else if let Some(outcome) = outcome {
        state.metrics.request(outcome);
        match action {
            Action::Respond(_) if upgrade && matches!(outcome, Outcome::Rejected(_)) => {
                state.metrics.upgrade_refused();
            }
            Action::Respond(_) => state.metrics.preflight(outcome == Outcome::Allowed),
            Action::Forward => {}
        }
    }
    let forward_to = match action {
        Action::Forward if !too_big => {
            Some(routing.upstream(req.uri().path(), &state.upstream).clone())
        }
        _ => None,
    };
    drop(routing);
    let work = match (action, forward_to) {
        // Answered here, with the CORS headers an allowed origin needs to read why.
        _ if too_big => Work::Answer(text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "corsair proxy: the request line and headers are {size} bytes, over the limit of {} (--max-header-bytes)\n",
                state.max_header_bytes
            ),
        )),
        (Action::Respond(status), _) => {
            let mut r = Response::new(super::empty_body());
            *r.status_mut() = status;
            Work::Answer(r)
        }
        (Action::Forward, Some(upstream)) => {
            let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
            forwarding(upstream, state.forwarding, &peer, req, client_side)
        }
        (Action::Forward, None) => Work::Answer(unreachable_forward()),
    };
    // One await, in this block: a future awaited within another would be held by both.
    async move {
        let response = match work {
            Work::Answer(response) => response,
            Work::Forward {
                upstream,
                req,
                pq,
                client_side,
            } => {
                // One reading of the clock: the timeout's start, the pool's look at how long
                // its connections have been idle, and the latency's start.
                let now = tokio::time::Instant::now();
                let sent = state.metrics_on.then(|| now.into_std());
                let exchange = upstream.pool.send(
                    &state.connector,
                    &upstream.uri,
                    req,
                    client_side.is_some(),
                    now.into_std(),
                    &state.metrics.resent,
                );
                // The upstream's answer within the timeout, or None.
                let deadline = now + state.timeout;
                let result = match peer.deadline(deadline) {
                    Some(timer) => {
                        let mut exchange = std::pin::pin!(exchange);
                        std::future::poll_fn(|cx| {
                            if let Poll::Ready(answer) = exchange.as_mut().poll(cx) {
                                return Poll::Ready(Some(answer));
                            }
                            // Outside tokio's budget, as tokio's own timeout polls its timer
                            // when the exchange spent the budget: the deadline is always seen.
                            let mut timer = timer.lock().unwrap_or_else(PoisonError::into_inner);
                            let mut elapsed = tokio::task::coop::unconstrained(timer.as_mut());
                            Pin::new(&mut elapsed).poll(cx).map(|()| None)
                        })
                        .await
                    }
                    None => tokio::time::timeout_at(deadline, exchange).await.ok(),
                };
                settle(
                    &state,
                    &upstream,
                    &peer,
                    result,
                    pq.as_ref(),
                    client_side,
                    sent,
                )
            }
        };
        Ok(wrap(finish(
            &state,
            &peer,
            response,
            cors_headers,
            logged,
            outcome,
        )))
    }
}

/// What a request needs once its decision is taken: an answer, or its upstream's.
enum Work {
    Answer(Response<Body>),
    /// The request as it goes upstream, its path and query (for the messages of a failure: a
    /// reference count, not a copy), and the client's side of an upgrade it asks for.
    Forward {
        upstream: Arc<Upstream>,
        req: Request<Body>,
        pq: Option<PathAndQuery>,
        client_side: Option<hyper::upgrade::OnUpgrade>,
    },
}

/// The response as it goes to the client: hop-by-hop fields out (but an accepted upgrade's),
/// the CORS headers in, `Via`, and the access log's line.
fn finish(
    state: &State,
    peer: &Peer,
    mut response: Response<Body>,
    cors_headers: corsair::server::CorsHeaders,
    logged: Option<Logged>,
    outcome: Option<Outcome>,
) -> Response<Body> {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let protocol = if switching {
        response.headers().get(UPGRADE).cloned()
    } else {
        None
    };
    strip_hop_by_hop(response.headers_mut(), false);
    if switching {
        // The one hop-by-hop exchange that passes: the upstream accepted the upgrade.
        if let Some(p) = protocol {
            response.headers_mut().insert(UPGRADE, p);
        }
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let upstream_names: Option<Vec<HeaderName>> = state
        .dev
        .then(|| response.headers().keys().cloned().collect());
    cors_headers.apply(response.headers_mut());
    if let Some(names) = upstream_names {
        expose_all(response.headers_mut(), &names);
    }
    // RFC 9110 §7.6.3: an intermediary adds itself to Via; `corsair check` recognizes it.
    response
        .headers_mut()
        .append(http::header::VIA, HeaderValue::from_static("1.1 corsair"));
    // With a log, the reason was always worked out (Reasons::Always), so the outcome is there.
    if let (Some((format, started, method, path, origin)), Some(outcome)) = (logged, outcome) {
        access_log(
            format,
            peer.addr,
            &method,
            &path,
            origin.as_ref(),
            response.status(),
            started,
            outcome,
        );
    }
    response
}

/// What the access log needs of a request: its format, when it came, its method, path and
/// origin.
type Logged = (
    super::LogFormat,
    Instant,
    http::Method,
    String,
    Option<HeaderValue>,
);

/// A forwarded request always has its upstream (taken with the decision); should it not, a
/// 500 rather than a panic.
fn unreachable_forward() -> Response<Body> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "corsair proxy: no upstream for this request\n".to_owned(),
    )
}

/// The request head's size as sent in HTTP/1.1: request line, then each `name: value` line.
fn head_size(req: &Request<Incoming>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len()
        + 1;
    req.headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}

/// The request target sent upstream (origin form): the upstream's path prefix, then the
/// request's path and query; None when there is none. When the upstream has no prefix (the
/// usual case) the request's path and query are shared, neither copied nor parsed again, and
/// a target already in origin form (HTTP/1.1's) is kept as it is ([`Target::Kept`]).
fn upstream_uri(upstream: &Uri, requested: &Uri) -> Option<Target> {
    let prefix = upstream.path().trim_end_matches('/');
    match requested.path_and_query() {
        Some(pq) if prefix.is_empty() && pq.as_str().starts_with('/') => {
            if super::origin_form(requested).is_some() {
                return Some(Target::Kept);
            }
            super::origin_target(pq.clone()).map(Target::New)
        }
        pq => format!("{prefix}{}", pq.map_or("/", PathAndQuery::as_str))
            .parse()
            .ok()
            .map(Target::New),
    }
}

/// What [`upstream_uri`] gives.
enum Target {
    /// The request's own target, which is the upstream's.
    Kept,
    /// The target to send instead.
    New(Uri),
}

/// The upstream's URL as the messages name it.
fn describe(upstream: &Uri, pq: &str) -> String {
    format!(
        "{}://{}{}{pq}",
        upstream.scheme_str().unwrap_or("http"),
        upstream.authority().map_or("", |a| a.as_str()),
        upstream.path().trim_end_matches('/')
    )
}

/// The request as it goes to `upstream` (with the client's side of the upgrade it asks for,
/// if any); or the answer when it cannot go.
fn forwarding(
    upstream: Arc<Upstream>,
    forward: super::Forwarding,
    peer: &Peer,
    req: Request<Incoming>,
    client_side: Option<hyper::upgrade::OnUpgrade>,
) -> Work {
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().cloned();
    let Some(uri) = upstream_uri(&upstream.uri, &parts.uri) else {
        return Work::Answer(text(
            StatusCode::BAD_REQUEST,
            format!("cannot forward to {}\n", target_url(&upstream, pq.as_ref())),
        ));
    };
    // The client's Host, which the upstream's replaces in its place (one look-up for both);
    // HTTP/2 clients name the host in the URI's authority, not in Host.
    let (original_host, host_replaced) = match (&upstream.host, parts.headers.entry(HOST)) {
        (Some(host), Entry::Occupied(mut e)) => (Some(e.insert(host.clone())), true),
        (_, Entry::Occupied(e)) => (Some(e.get().clone()), false),
        (_, Entry::Vacant(_)) => (None, false),
    };
    let original_host = original_host.or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let protocol = if client_side.is_some() {
        parts.headers.get(UPGRADE).cloned()
    } else {
        None
    };
    // Host among the names Connection gave would have gone: then it is added again below.
    let named = strip_hop_by_hop(&mut parts.headers, true);
    if let Some(p) = protocol {
        // An upgrade asks the upstream to switch protocols: the two headers that say so pass.
        parts.headers.insert(UPGRADE, p);
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let h = &mut parts.headers;
    // The client's IP ends X-Forwarded-For: after the values it came with, joined, when they
    // are text; in their place when one is not. One look-up finds and replaces it. Each
    // forwarding header left out is removed: the upstream never gets one the client wrote
    // alone.
    if !forward.x_for {
        h.remove(X_FORWARDED_FOR);
    } else {
        match h.entry(X_FORWARDED_FOR) {
            Entry::Occupied(mut e) => {
                // Several lines are one list (RFC 9110 §5.3): every earlier hop is kept, in
                // order.
                let xff = if e.iter().all(|prev| prev.to_str().is_ok()) {
                    let hops = joined(e.iter().chain([&peer.ip]), b", ");
                    HeaderValue::from_maybe_shared(Bytes::from(hops)).ok()
                } else {
                    Some(peer.ip.clone())
                };
                if let Some(v) = xff {
                    e.insert(v);
                }
            }
            Entry::Vacant(e) => {
                e.insert(peer.ip.clone());
            }
        }
    }
    if forward.forwarded {
        let forwarded = match &original_host {
            Some(host) => peer.forwarded(host),
            None => peer.forwarded.clone(),
        };
        h.append(http::header::FORWARDED, forwarded);
    } else {
        h.remove(http::header::FORWARDED);
    }
    if forward.x_proto {
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(peer.proto));
    } else {
        h.remove(X_FORWARDED_PROTO);
    }
    match original_host {
        Some(host) if forward.x_host => h.insert(X_FORWARDED_HOST, host),
        _ => h.remove(X_FORWARDED_HOST),
    };
    // The upstream's own host, as an HTTP client writes it (in the client's Host's place, or
    // last).
    match &upstream.host {
        Some(host) if !host_replaced || named => h.insert(HOST, host.clone()),
        Some(_) => None,
        None => h.remove(HOST),
    };
    if let Target::New(uri) = uri {
        parts.uri = uri;
    }
    // The upstream is spoken to in HTTP/1.1, whatever the client spoke to the proxy. HTTP/2
    // may split Cookie into several fields, which HTTP/1.1 carries as one, joined with "; "
    // (RFC 9113 §8.2.3): an HTTP/1.1 server may read only the first line.
    if parts.version == http::Version::HTTP_2 {
        join_cookies(&mut parts.headers);
    }
    parts.version = http::Version::HTTP_11;
    // A request without a body (one already at its end) goes with an empty one, which boxes
    // without an allocation.
    let body = if hyper::body::Body::is_end_stream(&body) {
        super::empty_body()
    } else if let Some(end) = peer
        .activity
        .as_ref()
        .and_then(super::conn::Activity::body_end)
    {
        super::conn::ReadToEnd::new(body, end).boxed()
    } else {
        body.boxed()
    };
    Work::Forward {
        upstream,
        req: Request::from_parts(parts, body),
        pq,
        client_side,
    }
}

/// Joins the fields of an HTTP/2 request's `Cookie` into one, with "; " (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let Entry::Occupied(mut cookies) = headers.entry(http::header::COOKIE) else {
        return;
    };
    if cookies.iter().nth(1).is_none() {
        return;
    }
    // Fields joined by a visible separator are a field (each was one).
    if let Ok(one) = HeaderValue::from_maybe_shared(Bytes::from(joined(cookies.iter(), b"; "))) {
        cookies.insert(one);
    }
}

/// The bytes of `lines`, the lines of one field, joined with `separator` into one line.
fn joined<'a>(lines: impl Iterator<Item = &'a HeaderValue>, separator: &[u8]) -> Vec<u8> {
    let mut one = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            one.extend_from_slice(separator);
        }
        one.extend_from_slice(line.as_bytes());
    }
    one
}

/// The upstream's URL for this request, as the messages name it.
fn target_url(upstream: &Upstream, pq: Option<&PathAndQuery>) -> String {
    describe(&upstream.uri, pq.map_or("/", PathAndQuery::as_str))
}

/// The client's answer once the upstream's has come (the tunnel started when both sides
/// switched protocols), or once the exchange failed or timed out (`None`) (502 or 504, counted
/// and logged).
fn settle(
    state: &State,
    upstream: &Upstream,
    peer: &Peer,
    result: Option<Result<Response<Body>, Failure>>,
    pq: Option<&PathAndQuery>,
    client_side: Option<hyper::upgrade::OnUpgrade>,
    sent: Option<Instant>,
) -> Response<Body> {
    let target = || target_url(upstream, pq);
    let failed = |e: &(dyn std::error::Error + 'static)| {
        (
            StatusCode::BAD_GATEWAY,
            format!(
                "corsair proxy: upstream failed: {}",
                crate::net::classify(e, &target())
            ),
        )
    };
    let (status, message) = match result {
        Some(Ok(mut resp)) => {
            if let Some(sent) = sent {
                state.metrics.upstream_latency(sent.elapsed());
            }
            if let Some(client_side) = client_side {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    peer.leave(Box::pin(tunnel(
                        client_side,
                        hyper::upgrade::on(&mut resp),
                        target(),
                    )));
                }
            }
            return resp;
        }
        Some(Err(Failure::HeadOverLimit(size))) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "corsair proxy: upstream's response head is {size} bytes, over the {} KiB limit: {}",
                super::pool::UPSTREAM_BUFFER / 1024,
                target()
            ),
        ),
        Some(Err(Failure::Connect(e))) => failed(e.as_ref()),
        Some(Err(Failure::Http(e))) => failed(&e),
        None => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "corsair proxy: upstream did not answer within {}s: {}",
                state.timeout.as_secs_f64(),
                target()
            ),
        ),
    };
    state
        .metrics
        .upstream_error(if status == StatusCode::GATEWAY_TIMEOUT {
            UpstreamError::Timeout
        } else {
            UpstreamError::Failed
        });
    // Logged whether or not --log is on: the page sees only a 502 or 504.
    eprintln!("{message} ({})", status.as_u16());
    text(status, format!("{message}\n"))
}

/// Once both sides have switched protocols, copies bytes both ways until either closes.
async fn tunnel(
    client_side: hyper::upgrade::OnUpgrade,
    upstream_side: hyper::upgrade::OnUpgrade,
    target: String,
) {
    match tokio::try_join!(client_side, upstream_side) {
        Ok((client, upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
        Err(e) => eprintln!("corsair proxy: upgrade to {target} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forwarded_names_each_request_s_own_host_on_a_connection_that_changes_host() {
        let peer = Peer::new(SocketAddr::from(([192, 0, 2, 7], 4000)), false, None);
        let host = |h: &'static [u8]| HeaderValue::from_bytes(h).unwrap();
        // The same host twice (the second from the kept value), another, the first again.
        for (h, expected) in [
            (&b"a.test"[..], r#"for=192.0.2.7;proto=http;host="a.test""#),
            (b"a.test", r#"for=192.0.2.7;proto=http;host="a.test""#),
            (
                b"b.test:8080",
                r#"for=192.0.2.7;proto=http;host="b.test:8080""#,
            ),
            (b"a.test", r#"for=192.0.2.7;proto=http;host="a.test""#),
            // Not text: no host parameter (a quoted string could not carry it as is).
            (b"caf\xe9.test", "for=192.0.2.7;proto=http"),
            // A quote would end the host and add a parameter: no host parameter either.
            (br#"a";for=1.2.3.4"#, "for=192.0.2.7;proto=http"),
            (b"a;for=1.2.3.4", "for=192.0.2.7;proto=http"),
            (b"a b", "for=192.0.2.7;proto=http"),
            // An IPv6 literal with a port, and a percent-encoded name, are hosts.
            (
                b"[::1]:8080",
                r#"for=192.0.2.7;proto=http;host="[::1]:8080""#,
            ),
            (
                b"xn--caf-dma.test",
                r#"for=192.0.2.7;proto=http;host="xn--caf-dma.test""#,
            ),
            (
                b"caf%C3%A9.test",
                r#"for=192.0.2.7;proto=http;host="caf%C3%A9.test""#,
            ),
            (b"a.test", r#"for=192.0.2.7;proto=http;host="a.test""#),
        ] {
            assert_eq!(peer.forwarded(&host(h)), expected);
        }
    }

    #[test]
    fn the_hop_by_hop_match_agrees_with_the_list() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        for name in [
            "host",
            "origin",
            "x-forwarded-for",
            "x-forwarded-host",
            "content-length",
            "tee",
            "upgrades",
            "x_request_id",
            "x_forwarded_fo",
            "x__forwarded_for",
        ] {
            assert_eq!(hop_by_hop_index(&HeaderName::from_static(name)), None);
        }
        // Every underscore spelling of the three X-Forwarded- names, written out by hand.
        for name in [
            "x_forwarded_for",
            "x-forwarded_for",
            "x_forwarded-for",
            "x_forwarded_proto",
            "x-forwarded_proto",
            "x_forwarded-proto",
            "x_forwarded_host",
            "x-forwarded_host",
            "x_forwarded-host",
        ] {
            let n = HeaderName::from_static(name);
            assert_eq!(hop_by_hop_index(&n), Some(UNDERSCORED), "{name}");
        }
    }

    #[test]
    fn connection_names_are_removed_unless_it_only_says_keep_alive_or_close() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Keep-Alive"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-a"], "1");
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("close"));
        h.append(CONNECTION, HeaderValue::from_static("x-a, TE"));
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("x-b", HeaderValue::from_static("2"));
        h.insert(http::header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-b"], "2");
    }
}
