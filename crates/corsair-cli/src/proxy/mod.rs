//! `corsair proxy`: a corsair policy in front of any HTTP service.
//!
//! - The policy decides the CORS headers: preflights are answered here, and any
//!   `Access-Control-*` response headers of the upstream are replaced by the policy's.
//! - Bodies stream both ways (bounded memory); HTTP/1.1 keep-alive and a pooled upstream client;
//!   everything is forwarded except hop-by-hop headers; `Forwarded`, `X-Forwarded-For`,
//!   `X-Forwarded-Proto` and `X-Forwarded-Host` are added.
//! - Upgrades (WebSocket handshakes) pass when the policy allows their `Origin` (403 otherwise),
//!   then bytes are copied both ways.
//! - Each `[[route]]` of the policy file may name its own `upstream`.
//! - An unreachable or failing upstream gives 502, a slow one 504, both with the CORS headers an
//!   allowed origin needs, so the browser shows the real error rather than a CORS error.
//! - Client connections are served by workers, one a CPU by default (`--workers`): threads with
//!   an event loop each (tokio's current-thread runtime) polling a listener that two share
//!   (`bind`), each serving the connections it accepted and keeping its own upstream
//!   connections, as nginx's worker processes do. No request moves between threads. The policy,
//!   its reloads, the TLS certificate, the metrics and the connection limit are shared by all;
//!   signals, reloads and the metrics listener are the main thread's.
//! - SIGTERM or SIGINT: stop accepting, finish the requests in flight and wait for the open
//!   tunnels to close (both up to `--drain-timeout`), exit. SIGHUP, or a change
//!   of the file under `--watch`: reload the policy file; an invalid new file is logged and the
//!   old policy kept.
//!
//! Files: `policy.rs` (the policy and upstreams from the flags or the file), `conn.rs` (one
//! client connection: HTTP/2 or HTTP/1.1, and idle HTTP/1.1 connections releasing hyper's
//! state), `park.rs` (idle connections held outside any task), `handle.rs` (one request),
//! `pool.rs` (upstream connections), `tls.rs` (the certificate), `watch.rs` (reloads), `log.rs`
//! (the access log), `metrics.rs` (`--metrics`).

mod conn;
mod handle;
mod log;
mod metrics;
mod park;
mod policy;
mod pool;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::{self, Error, Verdict};

pub use log::LogFormat;
pub use policy::{routing, Routing, Upstream};

/// `corsair proxy`'s command line. Every flag can also be set by the environment variable
/// shown in `--help` (`CORSAIR_` and the flag's name); the command line wins. A repeatable
/// flag's variable takes a comma-separated list.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on: 127.0.0.1:8080, localhost:8080, or a port alone (8080) for
    /// 127.0.0.1:8080.
    #[arg(long, env = "CORSAIR_LISTEN", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The service behind the proxy, e.g. `http://127.0.0.1:9000` (a route of the policy file
    /// may name its own).
    #[arg(long, env = "CORSAIR_UPSTREAM")]
    pub upstream: Uri,
    /// A policy file (TOML); reloaded on SIGHUP, and when it changes with --watch.
    #[arg(long, env = "CORSAIR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Reload --config when the file (or a symlink leading to it, as in a Kubernetes
    /// ConfigMap) changes.
    #[arg(long, env = "CORSAIR_WATCH", requires = "config")]
    pub watch: bool,
    /// Seconds between two looks at the watched file.
    #[arg(long, env = "CORSAIR_WATCH_INTERVAL", default_value = "1", value_parser = error::seconds)]
    pub watch_interval: Duration,
    /// An origin to allow (repeatable, or comma-separated), instead of a policy file.
    #[arg(
        long = "allow-origin",
        env = "CORSAIR_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,
    /// With --allow-origin: a method scripts may use besides GET, HEAD and POST (repeatable),
    /// written as browsers send it (PUT, PATCH).
    #[arg(
        long = "allow-method",
        env = "CORSAIR_ALLOW_METHOD",
        value_name = "METHOD",
        value_delimiter = ','
    )]
    pub allow_method: Vec<String>,
    /// With --allow-origin: a request header scripts may send (repeatable), e.g. x-token.
    #[arg(
        long = "allow-header",
        env = "CORSAIR_ALLOW_HEADER",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_header: Vec<String>,
    /// With --allow-origin: a response header scripts may read (repeatable), e.g. x-request-id.
    #[arg(
        long = "expose-header",
        env = "CORSAIR_EXPOSE_HEADER",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub expose_header: Vec<String>,
    /// With --allow-origin: let the pages send cookies and read the credentialed response.
    #[arg(long, env = "CORSAIR_ALLOW_CREDENTIALS")]
    pub allow_credentials: bool,
    /// Local development: the --allow-origin origins with any method and header, credentials,
    /// and every response header readable. Announced with a warning.
    #[arg(long, env = "CORSAIR_DEV")]
    pub dev: bool,
    /// Write an access line per request, with the CORS decision and its reason.
    #[arg(long, env = "CORSAIR_LOG")]
    pub log: bool,
    /// The access log format: text or json.
    #[arg(long, env = "CORSAIR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Seconds to connect to the upstream.
    #[arg(long, env = "CORSAIR_CONNECT_TIMEOUT", default_value = "5", value_parser = error::seconds)]
    pub connect_timeout: Duration,
    /// Seconds for the upstream to start answering (then 504).
    #[arg(long, env = "CORSAIR_TIMEOUT", default_value = "60", value_parser = error::seconds)]
    pub timeout: Duration,
    /// Seconds to finish requests in flight, and for open tunnels (WebSockets) to close, on
    /// SIGTERM/SIGINT.
    #[arg(long, env = "CORSAIR_DRAIN_TIMEOUT", default_value = "30", value_parser = error::seconds)]
    pub drain_timeout: Duration,
    /// Listen with TLS, with this certificate chain (PEM, the server's certificate first);
    /// reloaded with the policy. HTTP/2 and HTTP/1.1 are offered by ALPN.
    #[arg(
        long,
        env = "CORSAIR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "CORSAIR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// For an https:// upstream, trust the certificates of this PEM file (one or more: a private
    /// CA's) besides the bundled public roots.
    #[arg(long, env = "CORSAIR_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics, with /healthz and /readyz (an
    /// address or a port alone, as --listen).
    #[arg(long, env = "CORSAIR_METRICS", value_name = "ADDR", value_parser = parse_listen)]
    pub metrics: Option<SocketAddr>,
    /// Client connections open at once; one more is answered 503 and closed.
    #[arg(long, env = "CORSAIR_MAX_CONNECTIONS", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Bytes of request line and headers a request may have (431 beyond).
    #[arg(long, env = "CORSAIR_MAX_HEADER_BYTES", default_value = "65536", value_parser = clap::value_parser!(u32).range(1024..=1_048_576))]
    pub max_header_bytes: u32,
    /// Threads serving client connections, each with its own event loop and upstream
    /// connections [default: one a CPU the proxy may run on].
    #[arg(long, env = "CORSAIR_WORKERS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,
    /// The forwarding headers the proxy writes into each request it forwards (comma-separated):
    /// forwarded, x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-forwarded (the three
    /// X- ones), or none. A client's own value of one left out is removed, never passed on.
    #[arg(
        long,
        env = "CORSAIR_FORWARDED_HEADERS",
        value_name = "NAMES",
        value_delimiter = ',',
        default_value = "forwarded,x-forwarded"
    )]
    pub forwarded_headers: Vec<ForwardedHeader>,
}

/// A name `--forwarded-headers` takes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `Forwarded` (RFC 7239): `for`, `proto` and `host`.
    Forwarded,
    /// `X-Forwarded-For`: the client's address, after those the request came with.
    XForwardedFor,
    /// `X-Forwarded-Proto`: `http` or `https`, as the client spoke to the proxy.
    XForwardedProto,
    /// `X-Forwarded-Host`: the `Host` the client named.
    XForwardedHost,
    /// The three `X-Forwarded-` headers.
    XForwarded,
    /// No forwarding header.
    None,
}

/// Which forwarding headers go upstream ([`Args::forwarded_headers`]); those not sent are
/// removed from the client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // four independent headers, each on or off
pub struct Forwarding {
    /// `Forwarded`.
    pub forwarded: bool,
    /// `X-Forwarded-For`.
    pub x_for: bool,
    /// `X-Forwarded-Proto`.
    pub x_proto: bool,
    /// `X-Forwarded-Host`.
    pub x_host: bool,
}

impl Forwarding {
    /// The headers `names` choose; an error when `none` comes with another name.
    ///
    /// # Errors
    /// `none` together with a header's name.
    pub fn from_names(names: &[ForwardedHeader]) -> Result<Self, Error> {
        let mut f = Forwarding {
            forwarded: false,
            x_for: false,
            x_proto: false,
            x_host: false,
        };
        for name in names {
            match name {
                ForwardedHeader::Forwarded => f.forwarded = true,
                ForwardedHeader::XForwardedFor => f.x_for = true,
                ForwardedHeader::XForwardedProto => f.x_proto = true,
                ForwardedHeader::XForwardedHost => f.x_host = true,
                ForwardedHeader::XForwarded => (f.x_for, f.x_proto, f.x_host) = (true, true, true),
                ForwardedHeader::None => {}
            }
        }
        if names.contains(&ForwardedHeader::None) && names.len() > 1 {
            return Err(Error::Usage(
                "--forwarded-headers: `none` sends no forwarding header, so it cannot come with a header's name; give either `none` or the names".to_owned(),
            ));
        }
        Ok(f)
    }
}

/// Runs `corsair proxy` until SIGTERM or SIGINT.
///
/// # Errors
/// An invalid policy or upstream, or an address that cannot be bound.
pub fn main(args: Args) -> Result<Verdict, Error> {
    let args = ProxyArgs {
        listen: args.listen,
        upstream: args.upstream,
        config: args.config,
        watch: args.watch.then_some(args.watch_interval),
        allow_origins: args.allow_origin,
        allow_methods: args.allow_method,
        allow_headers: args.allow_header,
        expose_headers: args.expose_header,
        allow_credentials: args.allow_credentials,
        dev: args.dev,
        log: args.log.then_some(if args.log_format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        }),
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        drain_timeout: args.drain_timeout,
        metrics: args.metrics,
        tls: args.tls_cert.zip(args.tls_key),
        upstream_ca: args.upstream_ca,
        max_connections: args.max_connections as usize,
        max_header_bytes: args.max_header_bytes as usize,
        workers: args.workers.map_or_else(default_workers, |n| n as usize),
        forwarding: Forwarding::from_names(&args.forwarded_headers)?,
    };
    run(args)?;
    Ok(Verdict::Pass)
}

/// One worker a CPU this process may run on (its affinity and cgroup quota counted), one if
/// that is unknown.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `--listen`: an address, `localhost:PORT`, or a port alone, both on 127.0.0.1.
///
/// # Errors
/// Anything else, answered with the forms accepted.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = s.strip_prefix("localhost:").unwrap_or(s);
    match port.parse::<u16>() {
        Ok(p) => Ok(SocketAddr::from(([127, 0, 0, 1], p))),
        Err(_) => Err(format!(
            "{s:?} is not an address to listen on: write a port (8080, meaning 127.0.0.1:8080), localhost:8080, 127.0.0.1:8080, or 0.0.0.0:8080 for every interface"
        )),
    }
}

/// The body type both directions use: streamed, boxed.
type Body = BoxBody<Bytes, hyper::Error>;

/// An empty [`Body`] (boxing it allocates nothing: the body has no size).
fn empty_body() -> Body {
    use http_body_util::BodyExt as _;
    http_body_util::Empty::new().map_err(|e| match e {}).boxed()
}

/// Whether `polled`, a frame just polled from `body`, ends it: no more frames, trailers (a
/// chunked body's last frame: the reading side stops asking after them, so waiting for the end
/// that follows would wait for nothing), or the last bytes of a body with a length. The one
/// rule for a body read to its end, whether it returns an upstream connection to its pool
/// (`pool.rs`) or lets a client connection be released (`conn.rs`).
fn ends(
    polled: &std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>>,
    body: &hyper::body::Incoming,
) -> bool {
    use hyper::body::Body as _;
    match polled {
        std::task::Poll::Ready(None) => true,
        std::task::Poll::Ready(Some(Ok(frame))) => frame.is_trailers() || body.is_end_stream(),
        _ => false,
    }
}

/// `uri`'s path and query when it is a request target in origin form (`/path?query`, or `*`),
/// as HTTP/1.1 sends one: neither a scheme nor an authority. None for the absolute and
/// authority forms (and for HTTP/2's targets, which carry both).
fn origin_form(uri: &http::Uri) -> Option<&http::uri::PathAndQuery> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return None;
    }
    uri.path_and_query()
}

/// The request target in origin form that is `pq` alone (shared, neither copied nor parsed
/// again).
fn origin_target(pq: http::uri::PathAndQuery) -> Option<http::Uri> {
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(pq);
    http::Uri::from_parts(parts).ok()
}

/// How to run the proxy.
#[derive(Debug, Clone)]
pub struct ProxyArgs {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The upstream's base URL (`http://` or `https://`, optionally with a path prefix), for
    /// every request no route with its own upstream covers.
    pub upstream: Uri,
    /// A policy file, reloaded on SIGHUP.
    pub config: Option<PathBuf>,
    /// Reload `config` when it changes, looking at it this often.
    pub watch: Option<Duration>,
    /// Origins to allow, without a file.
    pub allow_origins: Vec<String>,
    /// Methods to allow, with `allow_origins`.
    pub allow_methods: Vec<String>,
    /// Request headers to allow, with `allow_origins`.
    pub allow_headers: Vec<String>,
    /// Response headers to expose, with `allow_origins`.
    pub expose_headers: Vec<String>,
    /// Whether to allow credentials, with `allow_origins`.
    pub allow_credentials: bool,
    /// Development mode: the given origins with any method and header, and credentials.
    pub dev: bool,
    /// Access log format, if any.
    pub log: Option<LogFormat>,
    /// Time to connect to the upstream.
    pub connect_timeout: Duration,
    /// Time for the upstream to send its response head.
    pub timeout: Duration,
    /// Time to finish requests in flight on shutdown.
    pub drain_timeout: Duration,
    /// Where to serve metrics, `/healthz` and `/readyz`, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The certificate chain and key files (PEM) of a TLS listener.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Certificates (PEM) to trust for `https://` upstreams, besides the bundled public roots.
    pub upstream_ca: Option<PathBuf>,
    /// Client connections open at once (503 beyond).
    pub max_connections: usize,
    /// Bytes of request line and headers per request (431 beyond).
    pub max_header_bytes: usize,
    /// Threads serving client connections (one at least).
    pub workers: usize,
    /// The forwarding headers sent upstream.
    pub forwarding: Forwarding,
}

struct State {
    routing: ArcSwap<Routing>,
    upstream: Arc<Upstream>,
    /// How upstream connections are made (each upstream pools its own).
    connector: pool::Connector,
    /// How client connections are served (HTTP/1.1, and HTTP/2 by ALPN or prior knowledge).
    http: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    /// How plain HTTP/1.1 connections are served (run by run: [`conn`]).
    http1: hyper::server::conn::http1::Builder,
    log: Option<LogFormat>,
    timeout: Duration,
    dev: bool,
    max_header_bytes: usize,
    forwarding: Forwarding,
    metrics: Arc<metrics::Metrics>,
    tls: Option<tls::Tls>,
    /// Work out every request's CORS outcome (for the access log or the metrics).
    exact: bool,
    /// Whether metrics are served (the upstream latency is timed only then).
    metrics_on: bool,
}

/// Runs the proxy until SIGTERM or SIGINT. Prints `listening on http://ADDR` once bound.
///
/// The calling thread handles signals, reloads and the metrics listener; `args.workers`
/// threads of its own serve the client connections.
///
/// # Errors
/// An invalid policy, an address that cannot be bound, or threads that cannot be started.
pub fn run(args: ProxyArgs) -> Result<(), Error> {
    let control = error::runtime(false)?;
    let Started {
        listeners,
        state,
        signals,
    } = control.block_on(start(&args))?;
    // Shutdown: a value sent to every worker and connection task, then a wait until all have
    // ended (every receiver dropped); `finish` then ends the workers' event loops.
    let (drain, draining) = tokio::sync::watch::channel(());
    let (finish, finished) = tokio::sync::watch::channel(());
    let local = match listeners.first() {
        Some(l) => l.local_addr().map_err(|e| Error::System(e.to_string()))?,
        None => return Err(Error::System("no listener".to_owned())),
    };
    let mut workers = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        workers.push(spawn_worker(
            index,
            args.workers,
            listener,
            state.clone(),
            draining.clone(),
            finished.clone(),
            args.max_connections,
        )?);
    }
    drop((draining, finished));
    println!(
        "corsair proxy listening on {}://{local} -> {}",
        if state.tls.is_some() { "https" } else { "http" },
        args.upstream
    );
    control.block_on(supervise(&args, &state, signals, drain));
    drop(finish);
    for worker in workers {
        // A worker that panicked has nothing left to finish.
        let _ = worker.join();
    }
    Ok(())
}

/// What [`start`] made: a handle on a bound listener for each worker, the shared state, and
/// the signals, listened for before the proxy says it is listening.
struct Started {
    listeners: Vec<std::net::TcpListener>,
    state: Arc<State>,
    signals: Signals,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// Checks the arguments, binds the listeners, starts the metrics listener, probes the
/// upstreams.
async fn start(args: &ProxyArgs) -> Result<Started, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let routing = routing(args)?;
    if !matches!(args.upstream.scheme_str(), Some("http" | "https"))
        || args.upstream.host().is_none()
    {
        return Err(Error::Usage(format!(
            "--upstream {} is not an http(s) URL",
            args.upstream
        )));
    }
    let tls = match &args.tls {
        Some((cert, key)) => Some(tls::Tls::new(cert.clone(), key.clone()).map_err(Error::Usage)?),
        None => None,
    };
    let connector = upstream_connector(args)?;
    let listeners = bind(args.listen, args.workers.max(1))
        .map_err(|e| Error::System(format!("cannot listen on {}: {e}", args.listen)))?;
    if args.dev {
        eprintln!(
            "WARNING: --dev allows {} with ANY method and header, and credentials, and lets them read every response header the upstream sends (except Set-Cookie). For local development only.",
            args.allow_origins.join(", ")
        );
    }
    let metrics = Arc::new(metrics::Metrics::new());
    if let Some(addr) = args.metrics {
        let listener = metrics::bind(addr).await.map_err(Error::System)?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::System(e.to_string()))?;
        println!("corsair proxy metrics on http://{bound}/metrics");
        metrics::serve(listener, metrics.clone());
    }
    let mut upstreams = vec![&args.upstream];
    for u in routing.route_upstreams() {
        if !upstreams.contains(&u) {
            upstreams.push(u);
        }
    }
    for u in upstreams {
        if let Some(warning) = probe(u, args.connect_timeout).await {
            eprintln!("WARNING: {warning}; starting anyway, requests get 502 until it is up");
        }
    }
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper's own bound (a bare 431) lies beyond --max-header-bytes, so that the requests
    // between the two get handle's 431 that says which limit and how to raise it.
    let hard = (args.max_header_bytes + 16 * 1024).max(8192);
    http.http1().max_buf_size(hard);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.max_buf_size(hard);
    http.http2()
        .max_header_list_size(u32::try_from(hard).unwrap_or(u32::MAX));
    let state = Arc::new(State {
        routing: ArcSwap::from_pointee(routing),
        upstream: Arc::new(Upstream::new(args.upstream.clone(), args.workers)),
        connector,
        http,
        http1,
        log: args.log,
        timeout: args.timeout,
        dev: args.dev,
        max_header_bytes: args.max_header_bytes,
        forwarding: args.forwarding,
        metrics,
        tls,
        exact: args.log.is_some() || args.metrics.is_some(),
        metrics_on: args.metrics.is_some(),
    });
    let signal = |kind| signal(kind).map_err(|e| Error::System(format!("signals: {e}")));
    let signals = Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    };
    Ok(Started {
        listeners,
        state,
        signals,
    })
}

/// The most workers that poll one listener ([`bind`]).
const WORKERS_A_LISTENER: usize = 2;

/// The listeners on `addr`, one handle a worker. Up to [`WORKERS_A_LISTENER`] workers poll a
/// listener: a new connection wakes them all, and the first to accept takes it (the others find
/// nothing to accept), usually one that was idle. A listener of each worker's own
/// (`SO_REUSEPORT`) is filled by a hash of each connection's addresses whatever the worker's
/// load, and with 10 busy connections on two cores cost 4 to 5 µs more CPU a request; but each
/// worker woken for a connection it does not get costs CPU too (eight workers on two cores, a
/// new connection a request, µs a request: in one run 66 to 70 with a listener each, 77 to 83
/// with one for four, 89 to 91 with one for all; in another 56 to 64 with a listener each, 65
/// to 70 with one for two, 73 to 76 with one for four: BENCHMARKS.md, thirteenth pass). So
/// more workers have several listeners on the address, with `SO_REUSEPORT`; before those binds,
/// a plain one, released at once, keeps "address in use" for a port that another process
/// listens on (`SO_REUSEPORT` would share it with another corsair), and picks the port for
/// port 0.
fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let groups = workers.div_ceil(WORKERS_A_LISTENER).max(1);
    let shared_port = groups > 1;
    let addr = if shared_port {
        std::net::TcpListener::bind(addr)?.local_addr()?
    } else {
        addr
    };
    let mut listeners = Vec::with_capacity(groups);
    for _ in 0..groups {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As `std::net::TcpListener::bind` does: a port whose earlier connections linger in
        // TIME_WAIT can be bound again; one another socket listens on cannot.
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(shared_port)?;
        socket.bind(addr)?;
        // tokio's own backlog for `TcpListener::bind`.
        listeners.push(socket.listen(1024)?.into_std()?);
    }
    // Worker i polls listener i % groups.
    listeners
        .iter()
        .cycle()
        .take(workers.max(1))
        .map(std::net::TcpListener::try_clone)
        .collect()
}

/// Starts worker `index`: a thread whose event loop accepts from `listener` and serves the
/// connections it accepted, until `draining` changes; then it finishes them, until `finished`
/// changes.
fn spawn_worker(
    index: usize,
    workers: usize,
    listener: std::net::TcpListener,
    state: Arc<State>,
    draining: tokio::sync::watch::Receiver<()>,
    mut finished: tokio::sync::watch::Receiver<()>,
    max_connections: usize,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let runtime = worker_runtime(workers)?;
    let listener = {
        let _in = runtime.enter();
        listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|e| Error::System(format!("cannot listen: {e}")))?
    };
    std::thread::Builder::new()
        .name(format!("worker-{index}"))
        .spawn(move || {
            pool::set_worker(index);
            runtime.block_on(async move {
                if let Err(e) = park::start(&state, &draining) {
                    eprintln!(
                        "corsair proxy: worker {index}: idle connections wait in their tasks: {e}"
                    );
                }
                accept(listener, state, draining, max_connections).await;
                let _ = finished.changed().await;
            });
            // Past the drain: a DNS lookup still running on a blocking thread (a slow
            // resolver) does not hold up the exit.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })
        .map_err(|e| Error::System(format!("cannot start a worker thread: {e}")))
}

/// A worker's event loop: tokio's current-thread runtime. Its blocking threads (which resolve
/// upstream host names) are bounded so that all workers together have tokio's default of 512,
/// 16 each at least.
fn worker_runtime(workers: usize) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads((512 / workers.max(1)).max(16))
        .build()
        .map_err(|e| Error::System(format!("cannot start a worker's event loop: {e}")))
}

/// A worker's accept loop: each connection gets a task on this worker, until `draining`
/// changes.
async fn accept(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut draining: tokio::sync::watch::Receiver<()>,
    max_connections: usize,
) {
    loop {
        let (tcp, _) = tokio::select! {
            // Once draining, no connection is taken from the backlog only to be closed.
            biased;
            _ = draining.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors (or another passing failure): a pause rather than a
                // loop that retries at once.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Each answer goes out at once, as nginx's `tcp_nodelay` (its default) does: without,
        // the last part of a response written in several pieces waits for the client's ACK.
        let _ = tcp.set_nodelay(true);
        let Some(guard) = Open::new(&state.metrics.open, max_connections) else {
            state.metrics.limited(metrics::Limit::Connections);
            refuse_connection(tcp, max_connections);
            continue;
        };
        tokio::spawn(conn::connection(
            guard,
            state.clone(),
            tcp,
            draining.clone(),
            park::Resume::Fresh,
        ));
    }
}

/// The main thread's loop: reloads on SIGHUP and file changes, until SIGTERM or SIGINT; then
/// the workers stop accepting, and the requests in flight get `--drain-timeout` to finish.
async fn supervise(
    args: &ProxyArgs,
    state: &State,
    mut signals: Signals,
    drain: tokio::sync::watch::Sender<()>,
) {
    let mut watcher = match (&args.config, args.watch) {
        (Some(path), Some(every)) => {
            let mut paths = vec![path.clone()];
            paths.extend(args.tls.iter().flat_map(|(c, k)| [c.clone(), k.clone()]));
            Some(watch::Watcher::new(paths, every))
        }
        _ => None,
    };
    loop {
        tokio::select! {
            () = watch::changed(&mut watcher) => {
                if let Some(path) = &args.config {
                    reload(state, path, args.workers, "changed");
                }
            }
            _ = signals.hup.recv() => match &args.config {
                Some(path) => reload(state, path, args.workers, "SIGHUP"),
                None => eprintln!("corsair proxy: SIGHUP ignored: no --config file to reload"),
            },
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
        }
    }
    state.metrics.draining.store(true, Ordering::Relaxed);
    eprintln!("corsair proxy: shutting down, finishing requests in flight and open tunnels");
    let _ = drain.send(());
    match tokio::time::timeout(args.drain_timeout, drain.closed()).await {
        Ok(()) => eprintln!("corsair proxy: stopped"),
        Err(_) => eprintln!(
            "corsair proxy: stopped with requests in flight or tunnels open after {:?}",
            args.drain_timeout
        ),
    }
}

/// How upstream connections are made: TLS trusts the bundled public roots, and
/// `--upstream-ca`'s certificates.
fn upstream_connector(args: &ProxyArgs) -> Result<pool::Connector, Error> {
    let timeout = Some(args.connect_timeout);
    match &args.upstream_ca {
        Some(file) => crate::net::https_connector_trusting(file, timeout)
            .map_err(|e| Error::Usage(format!("--upstream-ca: {e}"))),
        None => Ok(crate::net::https_connector(timeout)),
    }
}

/// A connection counted as open until dropped.
pub(super) struct Open(Arc<AtomicUsize>);

impl Open {
    /// Counts one more open connection, unless `max` are open: the count is the workers'
    /// together, and two of them accepting at once cannot both take the last place.
    fn new(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Open(count.clone()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection over `--max-connections`: its first request is read and answered 503 with
/// `Retry-After` and `Connection: close`, so the client sees why rather than a reset.
fn refuse_connection(tcp: tokio::net::TcpStream, limit: usize) {
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |_req| async move {
            let mut r = handle::text(
                http::StatusCode::SERVICE_UNAVAILABLE,
                format!("corsair proxy: too many connections: {limit} are open (--max-connections); try again\n"),
            );
            r.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            Ok::<_, std::convert::Infallible>(r)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(TokioIo::new(tcp), service);
        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
    });
}

/// Whether the upstream resolves and accepts a connection: a warning if not.
async fn probe(upstream: &Uri, timeout: Duration) -> Option<String> {
    let host = upstream
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = upstream
        .port_u16()
        .unwrap_or(if upstream.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Some(format!(
            "the upstream {upstream} does not resolve: no address for {host}"
        ));
    }
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {}s", timeout.as_secs_f64()),
        }
    }
    Some(format!(
        "the upstream {upstream} refuses connections ({last}): is the service running?"
    ))
}

/// Reads the policy file again (its upstreams with pools for `workers` workers): the new
/// policies and upstreams replace the old ones at once, or, when the file has problems, they
/// are printed and the old ones stay.
fn reload(state: &State, path: &std::path::Path, workers: usize, why: &str) {
    if let Some(tls) = &state.tls {
        match tls.reload() {
            Ok(()) => eprintln!("corsair proxy: certificate reloaded ({why})"),
            Err(e) => {
                state.metrics.reload(false);
                eprintln!(
                    "corsair proxy: certificate rejected, keeping the current one ({why}): {e}"
                );
            }
        }
    }
    match policy::from_file(path, workers) {
        Ok(routing) => {
            state.routing.store(Arc::new(routing));
            state.metrics.reload(true);
            eprintln!(
                "corsair proxy: policy reloaded from {} ({why})",
                path.display()
            );
        }
        Err(e) => {
            state.metrics.reload(false);
            eprintln!(
                "corsair proxy: {} rejected, keeping the current policy ({why}):\n{e}",
                path.display()
            );
        }
    }
}
